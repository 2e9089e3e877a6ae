"""Dtype-aware inputs of solve_simplex_qp: float32 Gramians accepted, a truly asymmetric K
rejected, low-precision inputs solved and returned in the caller's dtype."""

from __future__ import annotations

import numpy as np
import pytest

from fairmt_opt import certify_simplex_qp, solve_simplex_qp

torch = pytest.importorskip("torch")


def test_float32_gramians_are_accepted_and_certified() -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(40):
        T = int(torch.randint(3, 30, (1,), generator=gen))
        J = torch.randn(T, int(torch.randint(2, 60, (1,), generator=gen)), generator=gen)
        G = J @ J.T
        res = solve_simplex_qp(G)
        assert res.success and res.x.dtype == torch.float32
        assert certify_simplex_qp(G, res.x, rtol=1e-5).ok


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_truly_asymmetric_k_is_rejected(dtype: torch.dtype) -> None:
    K = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    with pytest.raises(ValueError, match="K must be symmetric"):
        solve_simplex_qp(K)


@pytest.mark.parametrize("T", [2, 3, 5])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, "bfloat16"])
def test_low_precision_solved_in_callers_dtype(T: int, dtype: object) -> None:
    d = np.arange(1.0, T + 1.0)
    exact = (1.0 / d) / (1.0 / d).sum()
    if dtype == "bfloat16":
        K = torch.diag(torch.tensor(d)).to(torch.bfloat16)
        res = solve_simplex_qp(K)
        assert res.x.dtype == torch.bfloat16
        x = res.x.double().numpy()
    else:
        res = solve_simplex_qp(np.diag(d).astype(dtype))
        assert res.x.dtype == dtype
        x = res.x.astype(np.float64)
    assert res.success
    np.testing.assert_allclose(x, exact, atol=1e-2)
