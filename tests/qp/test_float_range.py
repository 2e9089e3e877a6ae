"""The general simplex QP path near the float range, the result's certificate fields read on
b - min b, and NumPy scalar arguments (issue #13)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from fairmt_opt import certify_simplex_qp, solve_simplex_qp
from fairmt_opt.qp import _kernel


@pytest.fixture(params=["kernel", "python"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test through the compiled kernel (when built) and through the Python path."""
    if request.param == "kernel":
        if _kernel.KERNEL is None:
            pytest.skip(f"the compiled kernel is not built: {_kernel.LOAD_ERROR}")
    else:
        monkeypatch.setattr(_kernel, "KERNEL", None)
    yield request.param


def _rank_two(T: int, seed: int) -> np.ndarray:
    R = np.random.default_rng(seed).standard_normal((T, 2))
    K = R @ R.T
    return 0.5 * K + 0.5 * K.T


# ----------------------------------------------------------------------------- K and b near
#                                                                               the float range
def test_entries_above_half_the_float_range(path: str) -> None:
    # K + K^T overflows for every off-diagonal entry here; K / 1.7e308 has the same minimisers
    A = np.array([[1.0, 0.7, -0.6], [0.7, 1.0, -0.5], [-0.6, -0.5, 1.0]])
    expected = solve_simplex_qp(A, tol=1e-14).x
    for K in (1.7e308 * A, torch.tensor(1.7e308 * A)):
        res = solve_simplex_qp(K)
        assert res.success, res
        np.testing.assert_allclose(np.asarray(res.x), expected, rtol=1e-12, atol=1e-14)
        f_expected = 1.7e308 * float(0.5 * expected @ A @ expected)
        assert res.fun == pytest.approx(f_expected, rel=1e-12)
        assert 0.0 <= res.gap <= 1e-12 * 1.7e308
        assert certify_simplex_qp(K, res.x).ok


@pytest.mark.parametrize("method", ["active_set", "pairwise", "daqp"])
def test_range_of_b_beyond_the_float_range(path: str, method: str) -> None:
    # max b - min b = 2e308 is not a float: the solver works on the halves
    K = np.eye(4)
    b = np.array([1e308, -1e308, 0.0, 5e307])
    for Kin, bin_ in ((K, b), (torch.tensor(K), torch.tensor(b))):
        res = solve_simplex_qp(Kin, bin_, method=method, tol=1e-12)
        assert res.success, res
        np.testing.assert_allclose(np.asarray(res.x), [0.0, 1.0, 0.0, 0.0], atol=1e-12)
        assert res.fun == pytest.approx(-1e308, rel=1e-15)  # 1/2 - 1e308
        assert res.gap == pytest.approx(0.0, abs=1e-12 * 1e308)
        assert res.kkt.max() <= 1e-12
        assert certify_simplex_qp(K, b, np.asarray(res.x)).ok


def test_t1_near_the_float_range_through_torch() -> None:
    res = solve_simplex_qp(torch.tensor([[1.7e308]], dtype=torch.float64))
    assert res.x.tolist() == [1.0]
    assert res.fun == pytest.approx(0.85e308, rel=1e-15)


# ----------------------------------------------------------------------------- fun
@pytest.mark.parametrize("T", [2, 3])
def test_fun_does_not_overflow_when_f_is_representable(path: str, T: int) -> None:
    # f(x*) = 1/2 - 1e308 = -1e308; (lambda + b'x) / 2 formed -2e308 = -inf first
    K = np.eye(T)
    b = np.array([1e308, -1e308, 0.0][:T])
    x = [0.0, 1.0, 0.0][:T]
    for Kin, bin_ in ((K, b), (torch.tensor(K), torch.tensor(b))):
        for tol in (None, 1e-12):  # the closed form (T = 2) and the general path
            res = solve_simplex_qp(Kin, bin_, tol=tol)
            np.testing.assert_allclose(np.asarray(res.x), x, atol=1e-15)
            assert res.fun == -1e308, (T, tol, res.fun)


def test_fun_of_a_diagonal_near_the_float_range(path: str) -> None:
    for T in (2, 3, 5):
        res = solve_simplex_qp(np.diag(np.full(T, 1.7e308)), tol=1e-12)
        np.testing.assert_allclose(res.x, np.full(T, 1.0 / T), rtol=1e-14)
        assert res.fun == pytest.approx(1.7e308 / (2 * T), rel=1e-14)


# ----------------------------------------------------------------------------- gap and KKT read
#                                                                               on b - min b
@pytest.mark.parametrize("offset", [0.0, 1e308, -1.7e308, 1e200])
@pytest.mark.parametrize(
    ("method", "options"),
    [("frank_wolfe", {"max_iter": 1}), ("away", {"max_iter": 2}),
     ("active_set", {"tol": 0.9}), ("active_set", {})],
)
def test_gap_and_residuals_match_the_certificate(path: str, offset: float, method: str,
                                                 options: dict) -> None:
    # A large common offset of b: g = K x + b would absorb K x in round-off (the gap and the
    # residuals then read 0 at any x); read on b - min b, as the certificate reads it, they
    # measure the point. Early stops give points that are not optimal (gap > 0).
    K = _rank_two(4, 3)
    b = np.array([0.03, -0.02, 0.01, 0.0]) * float(np.max(np.abs(K))) + offset
    res = solve_simplex_qp(K, b, method=method, **options)
    cert = certify_simplex_qp(K, b, res.x)
    scale = cert.scale
    assert res.gap == pytest.approx(cert.gap, rel=1e-9, abs=1e-14 * scale)
    for name in ("primal", "dual", "complementarity"):
        assert getattr(res.kkt, name) == pytest.approx(getattr(cert.kkt, name), rel=1e-9,
                                                       abs=1e-14), name
    assert res.fun == pytest.approx(cert.fun, rel=1e-14)
    if options:  # stopped early: not optimal, and both say so
        assert res.gap > 1e-3 * scale and not cert.ok
    else:
        assert res.gap <= 1e-12 * scale and cert.ok


def test_gap_with_a_constant_b_of_the_float_range(path: str) -> None:
    # b constant: the problem is K's alone; one Frank-Wolfe step from the barycentre is not
    # optimal for this K, which the gap must show at every offset
    K = _rank_two(5, 7)
    gaps = []
    for c in (0.0, 1e300, 1.7e308, -1.7e308):
        res = solve_simplex_qp(K, np.full(5, c), method="frank_wolfe", max_iter=1)
        gaps.append(res.gap)
        assert res.gap == pytest.approx(certify_simplex_qp(K, np.full(5, c), res.x).gap,
                                        rel=1e-9)
    assert gaps[0] > 1e-3 * float(np.max(np.abs(K)))
    np.testing.assert_allclose(gaps, gaps[0], rtol=1e-12)


# ----------------------------------------------------------------------------- NumPy scalars
@pytest.mark.parametrize("method", ["active_set", "frank_wolfe", "pairwise", "apg", "daqp"])
@pytest.mark.parametrize("T", [2, 4])
def test_check_input_accepts_numpy_bools(path: str, method: str, T: int) -> None:
    K = _rank_two(T, 11) + np.eye(T)
    for Kin in (K, torch.tensor(K)):
        for flag in (True, False):
            ref = solve_simplex_qp(Kin, method=method, check_input=flag)
            res = solve_simplex_qp(Kin, method=method, check_input=np.bool_(flag))
            np.testing.assert_array_equal(np.asarray(res.x), np.asarray(ref.x))
    # np.bool_(True) still checks, np.bool_(False) still skips the value checks
    bad = K.copy()
    bad[0, 1] += 0.1
    with pytest.raises(ValueError, match="K must be symmetric"):
        solve_simplex_qp(bad, method=method, check_input=np.bool_(True))
    solve_simplex_qp(bad, method=method, check_input=np.bool_(False))


@pytest.mark.parametrize("flag", [1, 0, np.int64(1), 1.0, "yes", None])
@pytest.mark.parametrize("T", [2, 4])
def test_check_input_refuses_what_is_not_a_bool(path: str, flag: object, T: int) -> None:
    for Kin in (np.eye(T), torch.eye(T, dtype=torch.float64)):
        for method in ("active_set", "frank_wolfe"):
            with pytest.raises(ValueError, match="check_input must be a bool"):
                solve_simplex_qp(Kin, method=method, check_input=flag)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["active_set", "frank_wolfe", "away", "apg", "daqp"])
def test_numpy_scalar_tol_and_max_iter(path: str, method: str) -> None:
    K = _rank_two(5, 13) + 0.1 * np.eye(5)
    for Kin in (K, torch.tensor(K)):
        ref = solve_simplex_qp(Kin, method=method, tol=1e-10, max_iter=300)
        res = solve_simplex_qp(Kin, method=method, tol=np.float64(1e-10),
                               max_iter=np.int64(300))
        np.testing.assert_array_equal(np.asarray(res.x), np.asarray(ref.x))
        assert (res.nit, res.status) == (ref.nit, ref.status)
    with pytest.raises(ValueError, match="max_iter must be an integer"):
        solve_simplex_qp(K, method=method, max_iter=np.bool_(True))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "options"),
    [("frank_wolfe", {"max_iter": 1}), ("away", {"max_iter": 2}),
     ("active_set", {"tol": 0.9}), ("active_set", {}), ("pairwise", {})],
)
def test_gap_and_residuals_when_the_range_of_b_overflows(path: str, method: str,
                                                         options: dict) -> None:
    # max b - min b = 1.8e308 is not a float; K of the same size keeps the minimiser inside
    # (about (0, 0.6, 0.2, 0.2)): one Frank-Wolfe step is not optimal
    K = np.diag([1.7e308, 1.5e308, 1.6e308, 1.7e308])
    b = np.array([0.9e308, -0.9e308, 0.0, 0.0])
    res = solve_simplex_qp(K, b, method=method, **options)
    cert = certify_simplex_qp(K, b, res.x)
    assert cert.scale == np.inf  # not representable: the certificate says so
    assert res.gap == pytest.approx(cert.gap, rel=1e-9, abs=1e-14 * 1.8e308)
    for name in ("primal", "dual", "complementarity"):
        assert getattr(res.kkt, name) == pytest.approx(getattr(cert.kkt, name), rel=1e-9,
                                                       abs=1e-14), name
    assert res.fun == pytest.approx(cert.fun, rel=1e-12)
    if method == "frank_wolfe":  # one step from the barycentre: not optimal
        assert res.gap > 1e-3 * 1e308 and res.kkt.dual > 1e-4
    if not options:
        assert res.success and res.gap <= 1e-12 * 1.8e308 and cert.ok
