"""The fixed cost of small solves: the certificate fields of the closed form (T <= 2) are
computed on first access, from the data as they were at solve time (issue #13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fairmt_opt import certify_simplex_qp, solve_simplex_qp


@pytest.mark.parametrize("T", [1, 2])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_closed_form_fields_are_deferred_and_read_the_solve_time_data(T: int, kind: str) -> None:
    K0 = np.array([[2.0, 0.5], [0.5, 1.0]])[:T, :T]
    b0 = np.array([0.3, -0.2])[:T]
    K, b = K0.copy(), b0.copy()
    Kin, bin_ = (K, b) if kind == "numpy" else (torch.from_numpy(K), torch.from_numpy(b))
    res = solve_simplex_qp(Kin, bin_)
    assert callable(res._lazy)  # nothing but x computed yet
    K[...] = 7.0  # the caller reuses its buffers (shared with the tensors) before reading
    b[...] = -3.0
    x = np.asarray(res.x)
    ref = certify_simplex_qp(K0, b0, x)
    assert res.fun == pytest.approx(ref.fun, rel=1e-15, abs=0.0)
    assert res._lazy is None  # evaluated once, on the first read
    assert res.gap == pytest.approx(ref.gap, abs=1e-16)
    assert res.kkt.max() == pytest.approx(ref.kkt.max(), abs=1e-16)
    assert res.active_set.tolist() == np.flatnonzero(x > 0.0).tolist()
    assert "fun=" in repr(res)


def test_closed_form_reads_torch_entries_without_conversion() -> None:
    K = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.25, 0.0], dtype=torch.float64)
    res = solve_simplex_qp(K, b)  # t = (1 - 0.5 + 0 - 0.25) / (2 - 1 + 1) = 1/8
    assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
    assert not res.x.requires_grad
    assert res.x.tolist() == pytest.approx([0.125, 0.875], rel=1e-15)
    assert "closed form" in res.message
    # anything else takes the general path, which words the errors
    with pytest.raises(ValueError, match="NaN"):
        solve_simplex_qp(torch.tensor([[1.0, float("nan")], [0.0, 1.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="symmetric"):
        solve_simplex_qp(torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=torch.float64))
    mixed = solve_simplex_qp(K, b.float())  # b float32: converted by the general path
    assert mixed.x.tolist() == pytest.approx([0.125, 0.875], rel=1e-7)
