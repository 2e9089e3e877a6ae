"""T = 1 and T = 2 in closed form: exact values at every scale, the degenerate segments, data
near the float range, and an exact rational check of the minimiser (issue #13)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmt_opt import certify_simplex_qp, reference, solve_simplex_qp
from fairmt_opt.qp._closed_form import closed_form_t2, lazy_fields
from fairmt_opt.qp._result import _kernel_result

SCALES = [1e-300, 1e-150, 1e-9, 1.0, 1e9, 1e150, 1e300]


@pytest.mark.parametrize("s", SCALES)
def test_t2_diagonal_optimum_is_one_third_two_thirds_at_every_scale(s: float) -> None:
    # f(t) = s (t^2 + (1 - t)^2 / 2): f'(t) = s (3t - 1) = 0 at t = 1/3
    K = s * np.diag([2.0, 1.0])
    for Kin in (K, K.tolist(), torch.tensor(K)):
        res = solve_simplex_qp(Kin)
        x = np.asarray(res.x, dtype=np.float64)
        np.testing.assert_allclose(x, [1 / 3, 2 / 3], rtol=1e-15)
        assert res.success and res.nit == 0 and "closed form" in res.message
        assert res.fun == pytest.approx(s / 3, rel=1e-15)
        assert float(res.gap) <= 1e-15 * s
    # the same through every other method, with b given as zeros
    for method in ("frank_wolfe", "away", "pairwise", "cvxpy", "daqp"):
        res = solve_simplex_qp(K, np.zeros(2), method=method)
        assert res.success, (method, res)
        np.testing.assert_allclose(res.x, [1 / 3, 2 / 3], rtol=1e-7, err_msg=method)


@pytest.mark.parametrize(
    ("K", "b", "x"),
    [
        # a = K00 - 2 K01 + K11 = 0 (identical tasks): the vertex of the smaller b
        ([[1.0, 1.0], [1.0, 1.0]], [0.3, 0.1], [0.0, 1.0]),
        ([[1.0, 1.0], [1.0, 1.0]], [-0.3, 0.1], [1.0, 0.0]),
        # f constant on the simplex: the midpoint
        ([[1.0, 1.0], [1.0, 1.0]], [0.2, 0.2], [0.5, 0.5]),
        ([[0.0, 0.0], [0.0, 0.0]], None, [0.5, 0.5]),
        ([[0.0, 0.0], [0.0, 0.0]], [2.0, -1.0], [0.0, 1.0]),
        # the unconstrained minimiser of the segment lies outside [0, 1]: clipped
        ([[1.0, 0.0], [0.0, 1.0]], [5.0, 0.0], [0.0, 1.0]),
        ([[1.0, 0.0], [0.0, 1.0]], [-5.0, 0.0], [1.0, 0.0]),
        # interior: t = (K11 - K01 + b1 - b0) / a = (3 - 1 + 0.5) / 3
        ([[2.0, 1.0], [1.0, 3.0]], [0.0, 0.5], [2.5 / 3, 0.5 / 3]),
        # rank one of modulus 1.5e308: a = 6e308 would overflow unscaled
        ([[1.5e308, -1.5e308], [-1.5e308, 1.5e308]], None, [0.5, 0.5]),
        # |b0 - b1| = 2e308 beyond the float range: still the vertex of the smaller b
        ([[1.0, 0.0], [0.0, 1.0]], [1e308, -1e308], [0.0, 1.0]),
        ([[1.0, 0.0], [0.0, 1.0]], [-1.7e308, 1.7e308], [1.0, 0.0]),
        # a large common offset of b changes nothing (it would absorb K unscaled)
        ([[2e-300, 0.0], [0.0, 1e-300]], [1e308, 1e308], [1 / 3, 2 / 3]),
        ([[2.0, 0.0], [0.0, 1.0]], [-1.7e308, -1.7e308], [1 / 3, 2 / 3]),
        # a sum of entries that overflows while every entry is finite
        ([[1.0, 0.0], [0.0, 1.0]], [1e308, 1e308], [0.5, 0.5]),
        ([[1.7e308, 0.0], [0.0, 1.7e308]], None, [0.5, 0.5]),
        # tiny and subnormal data
        ([[5e-324, 0.0], [0.0, 0.0]], None, [0.0, 1.0]),
        ([[2e-300, 0.0], [0.0, 1e-300]], [1e-300, 0.0], [0.0, 1.0]),
    ],
)
def test_t2_known_answers(K: list, b: list | None, x: list) -> None:
    Ka = np.array(K)
    ba = None if b is None else np.array(b)
    res = solve_simplex_qp(Ka, ba)
    assert res.success and res.status == 0, res
    np.testing.assert_allclose(res.x, x, rtol=1e-14, atol=1e-15)
    assert float(res.gap) == 0.0 or float(res.gap) <= 1e-14 * float(np.max(np.abs(Ka)))
    assert certify_simplex_qp(Ka, ba, res.x).ok


@pytest.mark.parametrize(
    ("K", "b"),
    [([[0.0]], None), ([[3.0]], [-2.0]), ([[1e-300]], [5e-324]), ([[1e300]], [-1e300]),
     ([[1.7e308]], None)],
)
def test_t1_is_the_single_vertex(K: list, b: list | None) -> None:
    Ka = np.array(K)
    ba = None if b is None else np.array(b)
    expected = 0.5 * Ka[0, 0] + (0.0 if ba is None else ba[0])
    # NumPy and torch alike, up to 1.7e308 (no overflow there on either path)
    for Kin, bin_ in ((Ka, ba), (torch.tensor(Ka), None if ba is None else torch.tensor(ba))):
        res = solve_simplex_qp(Kin, bin_)
        assert res.success and res.nit == 0
        assert np.asarray(res.x).tolist() == [1.0]
        assert res.fun == pytest.approx(expected, rel=1e-15)
        assert res.gap == 0.0 and res.kkt.max() == 0.0


# ----------------------------------------------------------------------------- gap and KKT read
#                                                                               on b - min b
_K2 = np.array([[2.0, 0.5], [0.5, 1.0]])  # interior minimiser for the b below


def _assert_matches_certificate(res: object, K: np.ndarray, b: np.ndarray) -> None:
    cert = certify_simplex_qp(K, b, np.asarray(res.x))  # type: ignore[attr-defined]
    assert res.gap == pytest.approx(cert.gap, rel=1e-9,  # type: ignore[attr-defined]
                                    abs=1e-14 * cert.scale)
    for name in ("primal", "dual", "complementarity"):
        assert getattr(res.kkt, name) == pytest.approx(  # type: ignore[attr-defined]
            getattr(cert.kkt, name), rel=1e-9, abs=1e-14), name
    # f = lambda/2 + b'x/2: round-off relative to max |b| (a point where they cancel)
    assert res.fun == pytest.approx(cert.fun, rel=1e-14,  # type: ignore[attr-defined]
                                    abs=1e-15 * float(np.max(np.abs(b))))


@pytest.mark.parametrize("s", [1e-300, 1.0, 1e300])
@pytest.mark.parametrize("c", [0.0, 1e300, -1e300, 1e5, -1e5])
def test_t2_gap_and_residuals_match_the_certificate(s: float, c: float) -> None:
    # b = c + (small), c a huge common offset (1e300, or 1e5 times the scale): g = K x + b
    # would absorb K x in round-off, and the gap of the exact point then read a rounding
    # error of c
    K = s * _K2
    offset = c if abs(c) > 1e5 else c * s
    b = s * np.array([0.1, -0.05]) + offset
    for Kin, bin_ in ((K, b), (torch.tensor(K), torch.tensor(b))):
        res = solve_simplex_qp(Kin, bin_)
        assert "closed form" in res.message
        x = np.asarray(res.x)
        assert 0.0 < x[0] < 1.0  # interior
        _assert_matches_certificate(res, K, b)
        assert res.gap <= 1e-14 * s and res.kkt.max() <= 1e-14
    # suboptimal points of the segment read through the same lazy fields: a gap > 0, the
    # certificate's
    k = K.ravel().tolist()
    for t in (0.0, 0.2, 1.0):
        x = np.array([t, 1.0 - t])
        res = _kernel_result(x, 0, "test point", lazy_fields(k, float(b[0]), float(b[1]), x))
        _assert_matches_certificate(res, K, b)
        assert res.gap > 1e-3 * s and not certify_simplex_qp(K, b, x).ok


@pytest.mark.parametrize(
    ("K", "b"),
    [([[1.0, 0.0], [0.0, 1.0]], [1e308, -1e308]),  # range of b beyond the float range
     ([[1.7e308, 0.0], [0.0, 1.7e308]], [1.7e308, 0.0]),  # K x + b - min b overflows
     ([[0.0, 0.0], [0.0, 0.0]], [1e300, 1e300]),  # f constant on the simplex
     ([[3.0]], [1e300])],
)
def test_t1_t2_certificate_fields_near_the_float_range(K: list, b: list) -> None:
    Ka, ba = np.array(K), np.array(b)
    res = solve_simplex_qp(Ka, ba)
    _assert_matches_certificate(res, Ka, ba)
    assert res.gap <= 1e-14 * certify_simplex_qp(Ka, ba, res.x).scale
    if Ka.shape[0] == 2:
        # points where x^T (b - min b) is a float (at t = 1 for b = (1e308, -1e308) it is
        # 2e308, and the result's f = lambda/2 + b'x/2 then reads inf)
        for t in (0.0, 0.25, 0.5):
            x = np.array([t, 1.0 - t])
            pt = _kernel_result(x, 0, "test point",
                                lazy_fields(Ka.ravel().tolist(), *ba.tolist(), x))
            _assert_matches_certificate(pt, Ka, ba)


@pytest.mark.parametrize("method", ["active_set", "pairwise"])
@pytest.mark.parametrize(
    ("K", "b", "x"),
    [([[1.7e308, 0.0], [0.0, 1.7e308]], None, [0.5, 0.5]),
     ([[1.0, 0.0], [0.0, 1.0]], [1e308, -1e308], [0.0, 1.0])],
)
def test_general_path_near_the_float_range(method: str, K: list, b: list | None,
                                           x: list) -> None:
    Kt = torch.tensor(K, dtype=torch.float64)
    bt = None if b is None else torch.tensor(b, dtype=torch.float64)
    res = solve_simplex_qp(Kt, bt, method=method, tol=1e-12)
    np.testing.assert_allclose(res.x.numpy(), x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("K", "match"),
    [
        ([[-1.0]], "K must be positive semidefinite"),
        ([[1.0, 2.0], [2.0, 1.0]], "K must be positive semidefinite"),
        ([[1.0, 0.5], [0.0, 1.0]], "K must be symmetric"),
        ([[1e-300, 0.5e-300], [0.0, 1e-300]], "K must be symmetric"),  # relative, no floor
        ([[1.0, np.nan], [np.nan, 1.0]], "K contains NaN"),
    ],
)
def test_t1_t2_input_errors_name_k(K: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solve_simplex_qp(np.array(K))
    with pytest.raises(ValueError, match=match):
        solve_simplex_qp(torch.tensor(K, dtype=torch.float64))


def test_closed_form_t2_is_invariant_under_its_scale_argument() -> None:
    # the scale only divides the entries: the minimiser is the same for every positive scale
    for scale in (1.0, 3.0, 1e-300, 1e300):
        assert closed_form_t2(2.0, 1.0, 3.0, 0.0, 0.5, max(3.0, 0.5) * scale / 3.0) == (
            pytest.approx(2.5 / 3, rel=1e-15))


def _exact_argmin(K: np.ndarray, b: np.ndarray) -> tuple[Fraction, Fraction]:
    """(min f, a minimiser t) over t in [0, 1] for x = (t, 1 - t), in exact rationals: f is a
    quadratic in t, so the minimum is at 0, at 1 or at the stationary point inside."""
    k00, k01, k11 = (Fraction(float(v)) for v in (K[0, 0], K[0, 1], K[1, 1]))
    b0, b1 = Fraction(float(b[0])), Fraction(float(b[1]))

    def f(t: Fraction) -> Fraction:
        u = 1 - t
        return (k00 * t * t + 2 * k01 * t * u + k11 * u * u) / 2 + b0 * t + b1 * u

    cands = [Fraction(0), Fraction(1)]
    a = k00 - 2 * k01 + k11
    if a > 0:
        t = (k11 - k01 + b1 - b0) / a
        if 0 < t < 1:
            cands.append(t)
    best = min(cands, key=f)
    return f(best), best


def _f_exact(K: np.ndarray, b: np.ndarray, x: np.ndarray) -> Fraction:
    xf = [Fraction(float(v)) for v in x]
    Kf = [[Fraction(float(v)) for v in row] for row in K]
    bf = [Fraction(float(v)) for v in b]
    quad = sum(xf[i] * Kf[i][j] * xf[j] for i in range(2) for j in range(2))
    return quad / 2 + sum(bi * xi for bi, xi in zip(bf, xf))


@given(
    R=st.lists(st.integers(-6, 6), min_size=4, max_size=4),
    b=st.lists(st.integers(-20, 20), min_size=2, max_size=2),
    k=st.integers(-1000, 980),
    kb=st.sampled_from([None, 0, -30, 30]),
)
@settings(max_examples=150, deadline=None)
def test_t2_matches_exact_rational_minimum(R: list, b: list, k: int, kb: int | None) -> None:
    """K = 2^k R R^T with integer R, b = 2^(k + kb) b_int: representable exactly, so the
    exact minimum over the segment is known, and the returned point must reach it to
    round-off relative to the data scale, at every scale from 2^-1000 to 2^980."""
    Rm = np.array(R, dtype=np.float64).reshape(2, 2)
    K = np.ldexp(Rm @ Rm.T, k)
    bv = np.zeros(2) if kb is None else np.ldexp(np.array(b, dtype=np.float64), k + kb)
    res = solve_simplex_qp(K, None if kb is None else bv)
    assert res.success
    x = np.asarray(res.x)
    assert x.min() >= 0.0 and x.sum() == pytest.approx(1.0, abs=1e-15)
    fstar, _ = _exact_argmin(K, bv)
    scale = Fraction(max(float(np.max(np.abs(K))), float(abs(bv[0] - bv[1]))))
    assert _f_exact(K, bv, x) - fstar <= Fraction(1, 10**14) * scale
    assert certify_simplex_qp(K, bv, x).ok


@given(
    R=st.lists(st.floats(-2.0, 2.0), min_size=4, max_size=4),
    b=st.lists(st.floats(-2.0, 2.0), min_size=2, max_size=2),
)
@settings(max_examples=25, deadline=None)
def test_t2_agrees_with_cvxpy(R: list, b: list) -> None:
    Rm = np.array(R).reshape(2, 2)
    K = Rm @ Rm.T
    bv = np.array(b)
    res = solve_simplex_qp(K, bv)
    ref = reference.solve_simplex_qp(K, bv)
    assert ref.status in ("optimal", "optimal_inaccurate")
    # the closed form is exact: never worse than the interior-point reference
    assert res.fun <= reference_fun(K, bv, ref.x) + 1e-9 * max(1.0, float(np.abs(K).max()))


def reference_fun(K: np.ndarray, b: np.ndarray, x: np.ndarray) -> float:
    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    x = x / x.sum()
    return float(0.5 * x @ K @ x + b @ x)
