"""``method="apg"`` in low precision and at extreme scales (issue #13): no overflow of its
momentum or of its data, NaN never reported as success on the host, its warm start
validated."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmt_opt import certify_simplex_qp, solve_simplex_qp

K3 = np.diag([2.0, 1.0, 3.0])
X3 = np.array([3.0, 6.0, 2.0]) / 11.0  # the minimiser of diag(2, 1, 3): x_t proportional to 1/d_t


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).cpu().numpy()
    return np.asarray(x, dtype=np.float64)


@pytest.mark.parametrize(
    ("dtype", "atol"),
    [(np.float64, 1e-12), (np.float32, 1e-6), (np.float16, 2e-3),
     (torch.float16, 2e-3), (torch.bfloat16, 1e-2), (torch.float32, 1e-6)],
)
@pytest.mark.parametrize("n_iter", [1, 300, 3000])
def test_long_runs_in_low_precision_stay_finite(dtype: Any, atol: float, n_iter: int) -> None:
    """3000 iterations: the momentum t_k ~ k / 2 squared is about 2e6, beyond float16."""
    K = torch.tensor(K3).to(dtype) if isinstance(dtype, torch.dtype) else K3.astype(dtype)
    res = solve_simplex_qp(K, method="apg", max_iter=n_iter)
    assert res.success and res.status == 2 and res.nit == n_iter
    assert res.x.dtype == dtype
    x = _np(res.x)
    assert np.all(np.isfinite(x)) and math.isfinite(float(res.gap))
    if n_iter >= 300:
        np.testing.assert_allclose(x, X3, atol=atol)


@pytest.mark.parametrize(
    ("dtype", "top"),
    [(np.float16, 6.0e4), (np.float32, 3.0e38), (torch.bfloat16, 3.0e38),
     (torch.float32, 3.0e38), (np.float64, 1.7e308)],
)
def test_data_near_the_largest_value_of_its_dtype(dtype: Any, top: float) -> None:
    """K / max|K| and K/2 + K^T/2: no intermediate overflows, the minimiser is scale-free."""
    base = np.array([[1.0, 0.2, 0.0], [0.2, 0.5, 0.1], [0.0, 0.1, 0.75]])
    b = np.array([-0.5, 0.25, 0.0])
    if isinstance(dtype, torch.dtype):
        K, bb = torch.tensor(base * top).to(dtype), torch.tensor(b * top).to(dtype)
    else:
        K, bb = (base * top).astype(dtype), (b * top).astype(dtype)
    res = solve_simplex_qp(K, bb, method="apg", max_iter=2000)
    assert res.success, res
    ref = solve_simplex_qp(base, b)
    tol = 1e-2 if dtype in (np.float16, torch.bfloat16) else 1e-5
    np.testing.assert_allclose(_np(res.x), ref.x, atol=tol)
    assert np.isfinite(_np(res.fun)) and np.isfinite(_np(res.gap))


def test_batch_mixes_scales_per_instance() -> None:
    """Each instance is divided by its own scale: 1e-30 and 1e30 in one float32 batch."""
    K = np.stack([K3 * 1e-30, K3 * 1e30, K3]).astype(np.float32)
    res = solve_simplex_qp(K, method="apg", max_iter=1000)
    assert res.x.shape == (3, 3)
    for i in range(3):
        np.testing.assert_allclose(res.x[i], X3, atol=1e-6)


@given(e=st.integers(-990, 990), seed=st.integers(0, 2**16), T=st.integers(1, 6))
@settings(max_examples=40, deadline=None)
def test_iterates_are_invariant_under_power_of_two_scaling(e: int, seed: int, T: int) -> None:
    """(2^e K, 2^e b) has the same minimisers, and the per-instance scaling makes the
    iterates bit for bit the same, from 2^-990 to 2^990."""
    rng = np.random.default_rng(seed)
    R = rng.uniform(-1.0, 1.0, (T, max(1, T - 1)))  # singular for T >= 2
    K, b = R @ R.T, rng.uniform(-1.0, 1.0, T)
    base = solve_simplex_qp(K, b, method="apg", max_iter=200)
    res = solve_simplex_qp(np.ldexp(K, e), np.ldexp(b, e), method="apg", max_iter=200)
    np.testing.assert_array_equal(res.x, base.x)
    assert res.success
    cert = certify_simplex_qp(np.ldexp(K, e), np.ldexp(b, e), res.x)
    assert cert.gap == pytest.approx(math.ldexp(float(base.gap), e), rel=1e-9,
                                     abs=1e-15 * cert.scale)


@pytest.mark.parametrize(
    ("K", "b"),
    [
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), None),
        (np.array([[1.0, 0.0, np.inf], [0.0, 1.0, 0.0], [np.inf, 0.0, 1.0]]), None),
        (np.eye(3), np.array([0.0, np.nan, 1.0])),
    ],
)
def test_nan_is_never_success_on_the_host(K: np.ndarray, b: np.ndarray | None) -> None:
    res = solve_simplex_qp(K, b, method="apg", check_input=False)
    assert not res.success and res.status == 3
    assert "non-finite" in res.message
    with pytest.raises(ValueError, match=r"(K|b) contains (NaN|inf)"):
        solve_simplex_qp(K, b, method="apg")
    with pytest.raises(ValueError, match=r"(K|b) contains (NaN|inf)"):
        solve_simplex_qp(torch.tensor(K), None if b is None else torch.tensor(b),
                         method="apg")


def test_batched_nan_instance_fails_the_batch_on_the_host() -> None:
    K = np.stack([K3, K3])
    K[1, 0, 0] = np.nan
    res = solve_simplex_qp(K, method="apg", check_input=False)
    assert res.status == 3 and not res.success
    np.testing.assert_allclose(res.x[0], X3, atol=1e-8)  # the good instance is still solved


def test_torch_without_checks_never_synchronises_and_flags_nan_in_gap() -> None:
    """Torch with check_input=False reads nothing on the host (status 2, documented): the
    NaN is visible in x and gap, which the caller may test on the device."""
    K = torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]], dtype=torch.float64)
    res = solve_simplex_qp(K, method="apg", check_input=False)
    assert res.status == 2
    assert bool(torch.isnan(res.gap)) and bool(torch.isnan(res.x).all())


# ------------------------------------------------------------------ warm start
def test_warm_start_at_the_optimum_stays_there() -> None:
    for ws in (X3, X3.tolist(), X3.astype(np.float32), solve_simplex_qp(K3)):
        res = solve_simplex_qp(K3, method="apg", max_iter=0, warm_start=ws)
        np.testing.assert_allclose(res.x, X3, atol=1e-7)
    # any finite point is projected onto the simplex first (zeros: the barycentre)
    res = solve_simplex_qp(K3, method="apg", max_iter=0, warm_start=np.zeros(3))
    np.testing.assert_allclose(res.x, np.full(3, 1 / 3), atol=1e-15)
    res = solve_simplex_qp(K3, method="apg", max_iter=0, warm_start=np.array([5.0, -1.0, 0.0]))
    np.testing.assert_array_equal(res.x, [1.0, 0.0, 0.0])
    # torch: batched, on the tensor's device and dtype
    Kt = torch.tensor(np.stack([K3, K3]), dtype=torch.float32)
    ws = torch.tensor(np.stack([X3, X3]), dtype=torch.float64)
    res = solve_simplex_qp(Kt, method="apg", max_iter=0, warm_start=ws)
    assert res.x.dtype == torch.float32
    np.testing.assert_allclose(res.x.numpy(), np.stack([X3, X3]), atol=1e-6)


def test_warm_start_speeds_up_the_fixed_count() -> None:
    cold = solve_simplex_qp(K3, method="apg", max_iter=5)
    warm = solve_simplex_qp(K3, method="apg", max_iter=5, warm_start=X3 + 1e-3)
    assert float(warm.gap) < float(cold.gap)


@pytest.mark.parametrize(
    ("ws", "match"),
    [
        (np.array([1.0, 0.0]), r"warm_start for method 'apg' must be a point of shape \(3,\)"),
        (np.ones((2, 3)), r"must be a point of shape \(3,\)"),
        (np.array([np.nan, 0.0, 1.0]), "warm_start contains NaN"),
        (np.array([np.inf, 0.0, 1.0]), "warm_start contains inf"),
        (np.array([1j, 0.0, 0.0]), "warm_start must have a real dtype"),
        (np.array([True, False, True]), "warm_start must have a real dtype"),
        ("abc", "warm_start must be an array"),
        (torch.tensor([1.0, 0.0, 0.0]), "warm_start is a torch tensor but K is not"),
    ],
)
def test_warm_start_errors_name_it(ws: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solve_simplex_qp(K3, method="apg", warm_start=ws)


def test_unchecked_non_finite_warm_start_is_not_success_on_the_host() -> None:
    res = solve_simplex_qp(K3, method="apg", warm_start=np.array([np.inf, 0.0, 0.0]),
                           check_input=False)
    assert not res.success and res.status == 3


def test_numpy_scalar_options() -> None:
    res = solve_simplex_qp(K3, method="apg", max_iter=np.int64(400), tol=np.float32(1e-6))
    assert res.nit == 400 and res.success
    np.testing.assert_allclose(res.x, X3, atol=1e-10)
    with pytest.raises(ValueError, match="max_iter must be >= 0"):
        solve_simplex_qp(K3, method="apg", max_iter=-1)


@pytest.mark.parametrize("offset", [1e5, -1e5, 0.0])
@pytest.mark.parametrize("dtype", [np.float32, torch.float32])
def test_common_offset_of_b_does_not_swamp_k_in_float32(offset: float, dtype: Any) -> None:
    """b - min b is iterated on: with b = b0 + 1e5 in float32, K x was lost in the round-off
    of the offset (dual residual 1e-3 after 3000 iterations)."""
    rng = np.random.default_rng(11)
    R = rng.uniform(-1.0, 1.0, (4, 5))
    K, b = R @ R.T * 1e-6, (rng.uniform(-1.0, 1.0, 4) + offset) * 1e-6
    if isinstance(dtype, torch.dtype):
        Kd, bd = torch.tensor(K, dtype=dtype), torch.tensor(b, dtype=dtype)
    else:
        Kd, bd = K.astype(dtype), b.astype(dtype)
    res = solve_simplex_qp(Kd, bd, method="apg", max_iter=3000)
    x = _np(res.x)
    Kr, br = _np(Kd), _np(bd)  # the data as rounded to float32
    assert certify_simplex_qp(Kr, br, x / x.sum(), rtol=1e-4).ok
    np.testing.assert_allclose(x, solve_simplex_qp(Kr, br).x, atol=1e-4)


def test_range_of_b_beyond_the_dtype_is_halved_not_overflowed() -> None:
    b = np.array([3e38, -3e38, 0.0], dtype=np.float32)
    res = solve_simplex_qp(np.eye(3, dtype=np.float32), b, method="apg", max_iter=500)
    assert res.success
    np.testing.assert_allclose(res.x, [0.0, 1.0, 0.0], atol=1e-6)
