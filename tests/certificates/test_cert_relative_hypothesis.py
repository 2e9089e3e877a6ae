"""Property tests of the certificates on adversarial inputs (issue #13): relative to the data
scale with no absolute floor, so the optimum passes and a point 1e-6 relatively suboptimal is
rejected at every scale from 1e-300 to 1e300; ``b`` optional; NaN or infinite gaps never
certify; float16/32/64 data; singular, rank-one and zero ``K``; ties; T = 1 and 2."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fairmt_opt import (
    aggregate_violations,
    certify_aggregation,
    certify_primal_dual,
    certify_simplex_qp,
    reference,
    solve_simplex_qp,
)

#: scales of the data: powers of ten across the whole float64 range, and the extremes
SCALES = st.one_of(st.integers(-300, 300).map(lambda e: 10.0**e),
                   st.sampled_from([1e-300, 2.0**-990, 1.0, 2.0**990, 1e300]))


@st.composite
def factored_qps(draw: st.DrawFn, max_T: int = 6) -> tuple[np.ndarray, np.ndarray | None,
                                                            float]:
    """(K / s, b / s or None, s): a unit-scale problem and its scale, K = R R^T with R of full
    rank, rank one, zero or with duplicated (tied) rows; b zero, None, random or tied."""
    T = draw(st.integers(1, max_T))
    kind = draw(st.sampled_from(["full", "one", "zero", "tied"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    d = {"full": T + 1, "one": 1, "zero": 1, "tied": T + 1}[kind]
    R = rng.uniform(-1.0, 1.0, (T, d))
    if kind == "zero":
        R[:] = 0.0
    if kind == "tied" and T >= 2:
        R[1:] = R[0]
    K = R @ R.T
    bkind = draw(st.sampled_from(["none", "zero", "random", "tied"]))
    b = {"none": None, "zero": np.zeros(T), "random": rng.uniform(-1.0, 1.0, T),
         "tied": np.full(T, rng.uniform(-1.0, 1.0))}[bkind]
    if b is not None and bkind == "tied" and T >= 2:
        b[0] -= 0.25  # one vertex better than the others, the rest tied
    return K, b, draw(SCALES)


def _suboptimal_point(K: np.ndarray, b: np.ndarray | None, x: np.ndarray,
                      rel: float) -> np.ndarray | None:
    """A point of the simplex whose suboptimality on the unit-scale data (K, b) is about
    ``rel`` times the data scale: along an edge from the optimum ``x`` to the vertex that makes
    f grow fastest, with the step solved in closed form. None when f is constant on the
    simplex (no suboptimal point exists)."""
    T = K.shape[0]
    bb = np.zeros(T) if b is None else b
    g = K @ x + bb
    s = max(float(np.max(np.abs(K))), float(np.ptp(bb)))
    best = None
    for j in range(T):
        dvec = -x.copy()
        dvec[j] += 1.0
        p, q = float(g @ dvec), float(dvec @ K @ dvec)  # f(x + c d) - f(x) = c p + c^2 q / 2
        growth = p + 0.5 * q
        if best is None or growth > best[0]:
            best = (growth, j, p, q)
    assert best is not None
    growth, j, p, q = best
    target = rel * s
    if not growth > 10.0 * target:  # the whole edge is flatter than the target: no such point
        return None
    p = max(p, 0.0)  # >= 0 at an optimum up to round-off
    c = target / p if q <= 1e-300 else (-p + math.sqrt(p * p + 2.0 * q * target)) / q
    xs = (1.0 - c) * x
    xs[j] += c
    return xs


@given(factored_qps())
@settings(max_examples=120, deadline=None)
def test_qp_optimum_passes_and_1e6_suboptimal_point_fails_at_every_scale(
    case: tuple[np.ndarray, np.ndarray | None, float],
) -> None:
    K1, b1, s = case
    K = K1 * s
    b = None if b1 is None else b1 * s
    res = solve_simplex_qp(K, b)
    assert res.success
    x = np.asarray(res.x, dtype=np.float64)
    cert = certify_simplex_qp(K, b, x)
    assert cert.ok, (cert, s)
    assert math.isfinite(cert.gap) and math.isfinite(cert.fun)
    # the reference solution of the unit-scale problem passes the scaled certificate too
    if K1.shape[0] >= 3 and 1e-200 < s < 1e200:
        ref = reference.solve_simplex_qp(K1, b1)
        xr = np.maximum(ref.x, 0.0)
        xr /= xr.sum()
        assert certify_simplex_qp(K, b, xr, rtol=1e-6).ok
    xs = _suboptimal_point(K1, b1, x, 1e-6)
    if xs is None:  # f constant on the simplex: every point is optimal, and certified
        assert certify_simplex_qp(K, b, np.full(K.shape[0], 1.0 / K.shape[0])).ok
        return
    bad = certify_simplex_qp(K, b, xs)
    assert not bad.ok, (bad, s)
    assert bad.gap >= 0.5e-6 * bad.scale  # the gap bounds the suboptimality from above
    # the same 1e-6 relative error at a far smaller tolerance is rejected, at a larger accepted
    assert not certify_simplex_qp(K, b, xs, rtol=1e-9).ok
    assert certify_simplex_qp(K, b, xs, rtol=1e-2).ok


@pytest.mark.parametrize("s", [1e-300, 1e-200, 1e-9, 1.0, 1e9, 1e200, 1e300])
def test_qp_known_suboptimality_rejected_with_default_rtol(s: float) -> None:
    # K = s diag(2, 1): f(1/3 + d, 2/3 - d) - f* = 1.5 s d^2; d = 1e-3 is 1.5e-6 relative
    K = s * np.diag([2.0, 1.0])
    d = 1e-3
    cert = certify_simplex_qp(K, np.array([1 / 3 + d, 2 / 3 - d]))
    assert not cert.ok
    # g = s (2/3 + 2d, 2/3 - d), x^T g = s (2/3 + 3 d^2): gap = x^T g - min g = s d (1 + 3d)
    assert cert.gap == pytest.approx(s * d * (1.0 + 3.0 * d), rel=1e-9)
    assert cert.fun == pytest.approx(s / 3 + 1.5 * s * d * d, rel=1e-9)
    assert certify_simplex_qp(K, np.array([1 / 3, 2 / 3])).ok
    # with b: K = s I, b = s (0.5, 0, 0): optimum (0, 1/2, 1/2), f* = s / 4
    K3, b3 = s * np.eye(3), s * np.array([0.5, 0.0, 0.0])
    assert certify_simplex_qp(K3, b3, np.array([0.0, 0.5, 0.5])).ok
    near = certify_simplex_qp(K3, b3, np.array([0.0, 0.5 + d, 0.5 - d]))
    assert not near.ok and near.fun == pytest.approx(s / 4 + s * d * d, rel=1e-9)


@pytest.mark.parametrize(
    ("dtype", "exponents"),
    [(np.float64, range(-300, 301, 60)), (np.float32, range(-30, 31, 10)),
     (np.float16, range(-3, 4))],
)
def test_qp_low_precision_data_judged_at_their_precision(dtype: type,
                                                         exponents: range) -> None:
    rng = np.random.default_rng(3)
    R = rng.uniform(-1.0, 1.0, (4, 2))  # rank two of four: singular
    for e in exponents:
        K = (R @ R.T * 10.0**e).astype(dtype)
        res = solve_simplex_qp(K)
        x = np.asarray(res.x)
        assert x.dtype == dtype
        assert certify_simplex_qp(K, x).ok, (dtype, e)  # default rtol: sqrt(eps) of x
        worst = np.zeros(4, dtype=dtype)
        worst[int(np.argmax(np.diagonal(K.astype(np.float64))))] = 1.0
        assert not certify_simplex_qp(K, worst).ok, (dtype, e)


def test_b_optional_in_every_form() -> None:
    K = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 3.0]])
    x = np.array([0.2, 0.5, 0.3])
    forms = [certify_simplex_qp(K, x), certify_simplex_qp(K, None, x),
             certify_simplex_qp(K, x=x), certify_simplex_qp(K, b=None, x=x)]
    zero = certify_simplex_qp(K, np.zeros(3), x)
    for c in forms:
        assert c == forms[0]
        assert (c.ok, c.gap, c.fun, c.scale) == (zero.ok, zero.gap, zero.fun, zero.scale)
    with pytest.raises(TypeError, match="takes"):
        certify_simplex_qp(K)
    with pytest.raises(TypeError, match="takes"):
        certify_simplex_qp(K, None, x, x)
    for method in ("active_set", "frank_wolfe", "away", "pairwise", "apg", "cvxpy", "daqp"):
        r0 = solve_simplex_qp(K, method=method)
        r1 = solve_simplex_qp(K, np.zeros(3), method=method)
        np.testing.assert_allclose(r0.x, r1.x, atol=1e-12, err_msg=method)
        assert certify_simplex_qp(K, r0.x, rtol=1e-5).ok, method


@pytest.mark.parametrize(
    ("K", "b", "x", "finite"),
    [
        # x far off the simplex: x^T K x overflows even on the rescaled data: gap inf or NaN
        (np.eye(2), None, [1e300, 1e300], False),
        (np.eye(3), np.array([0.0, 1.0, 2.0]), [1e200, -1e200, 1e200], False),
        # f(x) = 3.4e318 + ... beyond the range: f is inf in the caller's units
        (np.eye(2), np.array([1.7e308, 1.7e308]), [1e10, 1e10], False),
        # off the simplex with representable values: rejected on the primal residual
        (np.diag([1e308, 1e308]), None, [1.0, 1.0], True),
    ],
)
def test_infinite_or_nan_gaps_never_certify(K: np.ndarray, b: np.ndarray | None, x: list,
                                            finite: bool) -> None:
    cert = certify_simplex_qp(K, b, np.array(x))
    assert not cert.ok, cert
    assert (math.isfinite(cert.gap) and math.isfinite(cert.fun)) == finite, cert
    if not finite:  # no tolerance, however large, lets a non-finite gap or f through
        assert not certify_simplex_qp(K, b, np.array(x), rtol=1e300).ok


@pytest.mark.parametrize("x", [[np.nan, 1.0], [np.inf, 0.0]])
def test_non_finite_point_is_an_error_naming_x(x: list) -> None:
    with pytest.raises(ValueError, match="x contains"):
        certify_simplex_qp(np.eye(2), np.array(x))


def test_data_near_the_float_range_certified_exactly() -> None:
    # |b0 - b1| = 2e308 is beyond the range: the optimum (0, 1) still certifies, and the
    # midpoint (gap 1e308 of a scale beyond the range) is still rejected
    K, b = np.eye(2), np.array([1e308, -1e308])
    good = certify_simplex_qp(K, b, np.array([0.0, 1.0]))
    assert good.ok and good.fun == -1e308 and good.gap == 0.0
    mid = certify_simplex_qp(K, b, np.array([0.5, 0.5]))
    assert not mid.ok and mid.gap == pytest.approx(1e308, rel=1e-12)
    big = certify_simplex_qp(np.diag([1.7e308, 1.7e308, 1.7e308]), np.full(3, 1 / 3))
    assert big.ok and big.fun == pytest.approx(1.7e308 / 6, rel=1e-12)


@pytest.mark.parametrize("offset", [0.0, 1.0, -1e200, 1e308, -1.7e308])
@pytest.mark.parametrize("s", [1e-300, 1e-9, 1.0])
def test_a_constant_offset_of_b_changes_nothing(offset: float, s: float) -> None:
    """b + c 1 has the minimisers and gaps of b: a huge offset must not absorb K x in
    round-off (K = 1e-300 diag(2, 1), b = (1e308, 1e308) once certified every point)."""
    K = s * np.diag([2.0, 1.0])
    b = np.full(2, offset)
    assert certify_simplex_qp(K, b, np.array([1 / 3, 2 / 3])).ok
    assert not certify_simplex_qp(K, b, np.array([1.0, 0.0])).ok
    assert not certify_simplex_qp(K, b, np.array([1 / 3 + 1e-3, 2 / 3 - 1e-3])).ok
    cert = certify_simplex_qp(K, b, np.array([0.5, 0.5]))
    assert cert.gap == pytest.approx(certify_simplex_qp(K, np.array([0.5, 0.5])).gap,
                                     rel=1e-12)
    res = solve_simplex_qp(K, b)
    np.testing.assert_allclose(res.x, [1 / 3, 2 / 3], rtol=1e-14)


# --------------------------------------------------------------------- aggregation
@st.composite
def aggregation_cases(draw: st.DrawFn) -> tuple[np.ndarray, float]:
    """(psi, mu) at a common scale from 1e-300 to 1e300, with ties and zeros."""
    T = draw(st.integers(1, 7))
    base = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, -0.25, 0.125]) | st.floats(-1, 1),
                         min_size=T, max_size=T))
    s = draw(SCALES)
    mu_rel = draw(st.sampled_from([1e-3, 0.1, 1.0, 10.0]))
    return np.array(base) * s, mu_rel * s


@given(aggregation_cases())
@settings(max_examples=120, deadline=None)
def test_aggregation_optimum_passes_and_perturbation_fails_at_every_scale(
    case: tuple[np.ndarray, float],
) -> None:
    psi, mu = case
    T = psi.size
    for method in ("exact", "pairwise"):
        res = aggregate_violations(psi, mu, method=method)
        assert res.success
        assert certify_aggregation(psi, mu, res.weights).ok, (method, psi, mu)
    w = aggregate_violations(psi, mu).weights
    if T == 1:
        return
    # move mass 1e-3 from the best-weighted task to another one: f drops by at least
    # mu * 1e-6 (strong concavity), 1e-6 of the scale max(ptp psi, mu) or more when mu dominates
    i = int(np.argmax(w))
    j = (i + 1) % T
    v = w.copy()
    delta = min(1e-3, float(w[i]))
    v[i] -= delta
    v[j] += delta
    scale = max(float(np.ptp(psi)), mu)
    drop = mu * delta * delta  # a lower bound on Phi - f(v) (strong concavity, modulus mu)
    assume(drop >= 1e-8 * scale)
    assert not certify_aggregation(psi, mu, v).ok, (psi, mu, v)
    # and a point off the simplex is rejected whatever the gap
    assert not certify_aggregation(psi, mu, w * (1.0 + 1e-6)).ok


def test_aggregation_infinite_spread_never_certifies_uniform() -> None:
    psi = np.array([1e308, -1e308, 0.0, 0.0])
    assert not certify_aggregation(psi, 1.0, np.full(4, 0.25)).ok
    assert certify_aggregation(psi, 1.0, np.array([1.0, 0.0, 0.0, 0.0])).ok


# --------------------------------------------------------------------- argument types
def test_numpy_scalars_wherever_a_number_is_and_booleans_refused() -> None:
    K, x = np.diag([2.0, 1.0]), np.array([1 / 3, 2 / 3])
    psi, w = np.array([0.5, 0.2, 0.0]), np.array([0.6, 0.3, 0.1])
    G, gphi, alpha = np.eye(2), np.array([-1.0, -1.0]), np.array([0.5, 0.5])
    for r in (np.float16(1e-3), np.float32(1e-6), np.float64(1e-6), np.array(1e-6)):
        assert certify_simplex_qp(K, x, rtol=r).ok
        assert certify_aggregation(psi, np.float32(1.0), w, rtol=r).ok
        assert certify_primal_dual(G, gphi, alpha, np.float32(0.5), np.float16(0.25),
                                   np.array(0.25), rtol=r).ok
    assert certify_aggregation(psi, np.int64(1), w).ok
    for bad in (True, np.bool_(True), "1e-6"):
        with pytest.raises(ValueError, match="rtol must be a real number"):
            certify_simplex_qp(K, x, rtol=bad)
        with pytest.raises(ValueError, match="mu must be a real number"):
            certify_aggregation(psi, bad, w)
        with pytest.raises(ValueError, match="eta must be a real number"):
            certify_primal_dual(G, gphi, alpha, bad, 0.25, 0.25)
    with pytest.raises(ValueError, match="phi must be a real number"):
        certify_primal_dual(G, gphi, alpha, 0.5, torch.tensor(True), 0.25)
    cert = certify_primal_dual(G, gphi, alpha, torch.tensor(0.5), torch.tensor(0.25), 0.25)
    assert cert.ok
