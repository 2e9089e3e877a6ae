"""Tests of aggregate_violations (AHFDA, SPEC §4 and P1–P4): every method against cvxpy and
against the independent certificate on adversarial inputs, closed forms and limits, Danskin's
gradient, batching, torch inputs, float32, and errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fairmt_opt import aggregate_violations, certify_aggregation, reference
from fairmt_opt.testing.strategies import PSI_KINDS, finite_arrays, mus, psi_mu, psi_vectors
from fairmt_opt.testing.sync import HostSync, forbid_host_sync

torch = pytest.importorskip("torch")

METHODS = ("exact", "frank_wolfe", "away", "pairwise")
_COMPILED: dict[int, reference.ParametricAggregation] = {}
NO_OFFSET = tuple(k for k in PSI_KINDS if k != "offset")
TINY = float(np.finfo(np.float64).smallest_subnormal)


def cvxpy_aggregation(psi: np.ndarray, mu: float) -> tuple[np.ndarray, float, str]:
    """(w*, Phi) from cvxpy, on well-scaled data: Phi(psi, mu) = m + s Phi((psi - m)/s, mu/s)
    with m = max psi and s = max(spread, mu); the compiled problem has mu = 1, so it is solved
    as Phi(p, mu') = mu' Phi(p / mu', 1) with the same maximiser (for mu' not too small)."""
    T = psi.shape[0]
    m = float(psi.max())
    s = max(float(psi.max() - psi.min()), mu)
    import cvxpy as cp

    mu_n = mu / s

    def direct() -> tuple[np.ndarray, float, str]:
        try:
            sol = reference.aggregate_violations((psi - m) / s, mu_n)
        except cp.error.SolverError:  # Clarabel fails now and then: DAQP instead
            sol = reference.aggregate_violations((psi - m) / s, mu_n, solver="DAQP")
        assert sol.status.startswith("optimal"), sol.status
        return sol.x, m + s * sol.value, sol.status

    if mu_n < 1e-2:  # psi / mu would be badly scaled: solve the normalised problem directly
        return direct()
    if T not in _COMPILED:
        _COMPILED[T] = reference.ParametricAggregation(T, 1.0)
    try:
        sol = _COMPILED[T].solve((psi - m) / s / mu_n)
    except cp.error.SolverError:
        return direct()
    assert sol.status.startswith("optimal"), sol.status
    return sol.x, m + s * mu_n * sol.value, sol.status


def exact_phi(psi: np.ndarray, mu: float) -> float:
    return float(aggregate_violations(psi, mu).value)


def test_cvxpy_helper_agrees_with_plain_reference() -> None:
    psi, mu = np.array([3.0, 1.0, 0.5, 0.0]), 2.5
    w, phi, _ = cvxpy_aggregation(psi, mu)
    ref = reference.aggregate_violations(psi, mu)
    np.testing.assert_allclose(w, ref.x, atol=1e-7)
    assert abs(phi - ref.value) < 1e-7


@given(psi_mu(max_size=40))
def test_exact_matches_cvxpy(pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    res = aggregate_violations(psi, mu)
    w_ref, phi_ref, status = cvxpy_aggregation(psi, mu)
    s = max(float(np.ptp(psi)), mu)
    # Phi: ours is exact, cvxpy accurate to its tolerance; w is unique (strong concavity)
    assert abs(float(res.value) - phi_ref) <= 1e-8 * s + 1e-15 * abs(float(psi.max()))
    # interior-point w is accurate to ~1e-6 on degenerate instances; mu/s small makes the
    # normalised problem badly scaled for cvxpy, so w is compared where it is well posed
    if mu / s >= 1e-3 and status == "optimal":
        np.testing.assert_allclose(res.weights, w_ref, rtol=0, atol=1e-5)
    # and cvxpy never does better than the exact solution
    f_ref = float(np.clip(w_ref, 0, None) / np.clip(w_ref, 0, None).sum() @ psi) - 0.5 * mu * (
        float(np.sum((np.clip(w_ref, 0, None) / np.clip(w_ref, 0, None).sum() - 1 / psi.size)
                     ** 2))
    )
    assert f_ref <= float(res.value) + 1e-12 * s + 1e-15 * abs(float(psi.max()))


@given(psi_mu(max_size=60))
def test_exact_passes_certificate_and_water_filling(pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    res = aggregate_violations(psi, mu)
    cert = certify_aggregation(psi, mu, res.weights)
    assert cert.ok, (cert, res)
    assert res.success and res.nit == 0 and res.history is None
    w = res.weights
    assert np.all(w >= 0)
    assert abs(float(res.value) - cert.objective) <= 1e-13 * max(abs(cert.objective), cert.scale)
    assert abs(float(res.gap)) <= cert.rtol * cert.scale
    # water-filling: w_t = (psi_t / mu - nu)_+ (P1), and the support is a top-k set of psi
    s = max(float(np.ptp(psi)), mu)
    nu = float(res.threshold)
    pc = (psi - psi.max()) / mu
    nuc = nu - float(psi.max()) / mu  # the threshold of the centred problem
    # nu carries the rounding of its magnitude |max psi / mu|
    tol = 64 * psi.size * (np.finfo(float).eps * s + TINY) / mu + 4 * np.finfo(float).eps * abs(nu)
    np.testing.assert_allclose(w, np.clip(pc - nuc, 0, None), rtol=0, atol=tol + 1e-15)
    np.testing.assert_array_equal(res.support, w > 0)
    if res.support.any() and (~res.support).any():
        assert psi[res.support].min() >= psi[~res.support].max()


@given(psi_mu(max_size=500))
def test_exact_certified_up_to_500_tasks(pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    assert certify_aggregation(psi, mu, aggregate_violations(psi, mu).weights).ok


@pytest.mark.parametrize("method", ["away", "pairwise"])
@given(pm=psi_mu(max_size=40))
def test_away_and_pairwise_reach_exact_phi(method: str, pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    res = aggregate_violations(psi, mu, method=method, keep_history=True)
    exact = aggregate_violations(psi, mu)
    s = max(float(np.ptp(psi)), mu)
    assert res.success, res
    assert res.nit <= 10_000
    assert res.history is not None and len(res.history) == res.nit + 1
    assert res.history[-1] == res.gap <= 8 * (psi.size + 1) * np.finfo(float).eps * s
    cert = certify_aggregation(psi, mu, res.weights)
    assert cert.ok, (cert, res)
    assert abs(float(res.value) - float(exact.value)) <= cert.rtol * s + 1e-15 * abs(psi.max())
    # strong concavity: mu/2 |w - w*|^2 <= Phi - f(w) <= gap
    dist2 = float(np.sum((res.weights - exact.weights) ** 2))
    assert 0.5 * mu * dist2 <= cert.gap + cert.rtol * s


@given(psi_mu(max_size=30))
def test_frank_wolfe_gap_bounds_suboptimality(pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    s = max(float(np.ptp(psi)), mu)
    res = aggregate_violations(psi, mu, method="frank_wolfe", max_iter=200, tol=1e-6 * s)
    phi = exact_phi(psi, mu)
    slack = 1e-12 * s + 1e-15 * abs(float(psi.max()))
    # the gap bounds the suboptimality at the returned iterate (P4), whatever the status
    assert -slack <= phi - float(res.value) <= float(res.gap) + slack
    if res.success:
        assert res.gap <= 1e-6 * s and certify_aggregation(psi, mu, res.weights,
                                                           rtol=1e-6).ok
    else:
        assert res.nit == 200 and "maximum number of iterations" in res.message


@given(psi_vectors(min_size=2, max_size=12, min_exp=0, max_exp=0, kinds=NO_OFFSET), mus(-2, 1))
def test_frank_wolfe_sublinear_rate(psi: np.ndarray, mu: float) -> None:
    """P4: vanilla FW with line search from c: Phi - f(w_k) <= 4 mu / (k + 2)."""
    phi = exact_phi(psi, mu)
    for k in (1, 2, 5, 20, 100):
        res = aggregate_violations(psi, mu, method="frank_wolfe", max_iter=k, tol=0.0)
        assert phi - float(res.value) <= 4 * mu / (k + 2) + 1e-12


def test_frank_wolfe_converges_on_interior_optimum() -> None:
    # every task has positive weight: FW converges linearly, down to the default tolerance
    psi, mu = np.array([0.3, 0.2, 0.25, 0.1]), 1.0
    res = aggregate_violations(psi, mu, method="frank_wolfe")
    assert res.success and res.nit < 10_000
    assert certify_aggregation(psi, mu, res.weights).ok
    np.testing.assert_allclose(res.weights, aggregate_violations(psi, mu).weights, atol=1e-12)


def test_pairwise_and_away_beat_frank_wolfe_on_a_face() -> None:
    psi, mu = np.array([1.0, 0.9, 0.5, 0.0, 0.0]), 1.5  # w* = (7, 6, 2, 0, 0) / 15
    fw = aggregate_violations(psi, mu, method="frank_wolfe", max_iter=2000, keep_history=True)
    pw = aggregate_violations(psi, mu, method="pairwise")
    aw = aggregate_violations(psi, mu, method="away")
    assert not fw.success and fw.nit == 2000 and fw.gap > 1e-8
    assert "maximum number of iterations (2000)" in fw.message
    assert pw.success and aw.success and pw.nit < 50 and aw.nit < 50
    for r in (pw, aw):  # drop steps put exact zeros on the inactive tasks
        np.testing.assert_array_equal(r.support, [True, True, True, False, False])
        np.testing.assert_allclose(r.weights, np.array([7, 6, 2, 0, 0]) / 15, atol=1e-15)
    assert fw.support.all()  # vanilla FW never drops a task: its zeros decay as O(1/k)


# ---------------------------------------------------------------------------- P2 and P3


@given(psi_mu(max_size=60))
def test_bounds(pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    T = psi.size
    phi = exact_phi(psi, mu)
    slack = 1e-12 * max(float(np.ptp(psi)), mu) + 4e-16 * T * float(np.abs(psi).max())
    assert psi.max() - 0.5 * mu * (1 - 1 / T) - slack <= phi <= psi.max() + slack
    assert psi.mean() - slack <= phi


@given(psi_vectors(max_size=30, min_exp=-3, max_exp=3), st.floats(1.01, 100.0))
def test_interior_closed_form(psi: np.ndarray, factor: float) -> None:
    T = psi.size
    pc = psi - psi.max()  # centred: exact differences, so the mean is accurate (near-ties)
    spread = T * (pc.mean() - pc.min())
    mu = factor * spread if spread > 0 else factor
    res = aggregate_violations(psi, mu)
    assert res.support.all()
    d = pc - pc.mean()
    atol = 1e-12 + 8 * T * np.finfo(float).eps * float(np.abs(pc).max()) / mu
    np.testing.assert_allclose(res.weights, 1 / T + d / mu, rtol=0, atol=atol)
    mean = float(psi.max()) + pc.mean()
    assert math.isclose(float(res.value), mean + d @ d / (2 * mu), rel_tol=1e-12,
                        abs_tol=1e-12 * max(1.0, float(np.abs(psi).max())))


def test_positive_weights_exactly_when_mu_above_threshold() -> None:
    psi = np.array([0.7, 0.1, 0.4, 0.1])
    mu0 = psi.size * (psi.mean() - psi.min())
    assert aggregate_violations(psi, mu0 * (1 + 1e-9)).support.all()
    assert not aggregate_violations(psi, mu0 * (1 - 1e-9)).support.all()


def test_limits_in_mu() -> None:
    psi = np.array([0.2, 0.9, 0.5, 0.1])
    big = aggregate_violations(psi, 1e9)
    np.testing.assert_allclose(big.weights, 0.25, atol=1e-9)
    assert abs(float(big.value) - psi.mean()) < 1e-9
    small = aggregate_violations(psi, 1e-9)
    np.testing.assert_allclose(small.weights, [0, 1, 0, 0], rtol=0, atol=1e-15)
    assert abs(float(small.value) - psi.max()) < 1e-9


@given(psi_vectors(min_size=2, max_size=20, min_exp=0, max_exp=0, kinds=NO_OFFSET), mus(-2, 1),
       st.data())
def test_convex_lipschitz_and_danskin_finite_differences(
    psi: np.ndarray, mu: float, data: st.DataObject
) -> None:
    other = np.asarray(data.draw(st.lists(st.floats(0, 1), min_size=psi.size,
                                          max_size=psi.size)))
    a, b = exact_phi(psi, mu), exact_phi(other, mu)
    assert exact_phi(0.5 * (psi + other), mu) <= 0.5 * (a + b) + 1e-12  # convex
    assert abs(a - b) <= np.max(np.abs(psi - other)) + 1e-12  # 1-Lipschitz in the inf-norm
    w = aggregate_violations(psi, mu).weights
    h = 1e-6
    fd = np.array([(exact_phi(psi + h * e, mu) - exact_phi(psi - h * e, mu)) / (2 * h)
                   for e in np.eye(psi.size)])
    np.testing.assert_allclose(fd, w, atol=1e-4)  # kinks are only where ties sit on nu


# ------------------------------------------------------------------- array types, batching


@given(finite_arrays(), mus(-2, 2))
def test_batched_equals_loop(a: np.ndarray, mu: float) -> None:
    res = aggregate_violations(a, mu)
    flat = a.reshape(-1, a.shape[-1])
    loop = [aggregate_violations(r, mu) for r in flat]
    np.testing.assert_allclose(res.weights.reshape(flat.shape),
                               np.stack([r.weights for r in loop]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.reshape(res.value, -1), [float(r.value) for r in loop],
                               rtol=1e-14, atol=1e-14 * max(float(np.abs(a).max()), mu))
    np.testing.assert_allclose(np.reshape(res.threshold, -1), [float(r.threshold) for r in loop],
                               rtol=1e-12, atol=1e-12 * float(np.abs(a).max()) / mu)
    assert np.shape(res.value) == a.shape[:-1] == np.shape(res.gap)
    assert res.support.shape == a.shape


@given(psi_mu(max_size=40))
def test_fast_paths_agree_with_generic_path(pm: tuple[np.ndarray, float]) -> None:
    """The short-vector (pure Python) and NumPy fast paths equal the array-API path."""
    psi, mu = pm
    fast = aggregate_violations(psi, mu)
    generic = aggregate_violations(psi[None, :], mu)  # batched: array-API code path
    s = max(float(np.ptp(psi)), mu)
    # round-off is relative (eps) for normal numbers, absolute (TINY) for subnormal ones
    ulp = np.finfo(float).eps * s + TINY
    np.testing.assert_allclose(fast.weights, generic.weights[0], rtol=0,
                               atol=16 * psi.size * ulp / mu)
    assert abs(float(fast.value) - float(generic.value[0])) <= 1e-13 * (
        s + abs(float(psi.max()))) + 16 * TINY
    assert abs(float(fast.gap)) <= 16 * (psi.size + 1) * ulp
    assert type(fast.value) is np.float64 and type(fast.threshold) is np.float64


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", METHODS)
def test_torch_inputs(device: str, dtype: str, method: str) -> None:
    psi_np = np.array([0.5, 0.2, 0.45, 0.0, 0.1])
    mu = 0.3
    psi = torch.tensor(psi_np, dtype=getattr(torch, dtype), device=device, requires_grad=True)
    res = aggregate_violations(psi, mu, method=method)
    ref = aggregate_violations(psi_np, mu)
    assert isinstance(res.weights, torch.Tensor) and res.weights.device == psi.device
    assert res.weights.dtype == psi.dtype and not res.weights.requires_grad
    assert isinstance(res.value, torch.Tensor) and res.value.ndim == 0
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(res.weights.detach().cpu().numpy(), ref.weights, atol=tol)
    assert abs(float(res.value.detach()) - float(ref.value)) < tol
    # Danskin: d Phi / d psi = w*
    res.value.backward()
    assert psi.grad is not None
    np.testing.assert_allclose(psi.grad.cpu().numpy(), res.weights.cpu().numpy(), atol=tol)
    cert = certify_aggregation(psi.detach(), mu, res.weights)
    assert cert.ok, cert


def test_torch_batched_and_no_grad(device: str) -> None:
    rng = np.random.default_rng(1)
    a = rng.random((3, 4, 6))
    t = torch.as_tensor(a, device=device)
    res = aggregate_violations(t, 0.2, check_finite=False)
    ref = aggregate_violations(a, 0.2)
    assert res.value.shape == (3, 4) and res.gap.shape == (3, 4) and res.support.dtype == (
        torch.bool)
    np.testing.assert_allclose(res.weights.cpu().numpy(), ref.weights, atol=1e-14)
    np.testing.assert_allclose(res.value.cpu().numpy(), ref.value, atol=1e-14)
    np.testing.assert_allclose(res.threshold.cpu().numpy(), ref.threshold, atol=1e-12)
    assert not res.value.requires_grad


def test_float32_numpy_and_lists() -> None:
    psi = np.array([0.5, 0.2, 0.45, 0.0], dtype=np.float32)
    res = aggregate_violations(psi, 0.3)
    assert res.weights.dtype == np.float32
    assert certify_aggregation(psi, 0.3, res.weights).ok
    res_fw = aggregate_violations(psi, 0.3, method="pairwise")
    assert res_fw.weights.dtype == np.float32
    from_list = aggregate_violations([0.5, 0.2, 0.45, 0.0], 0.3)
    np.testing.assert_allclose(from_list.weights, res.weights, atol=1e-6)
    from_int = aggregate_violations(np.array([3, 1, 0]), 1.0)
    assert from_int.weights.dtype == np.float64


def test_single_task_and_read_only() -> None:
    for method in METHODS:
        res = aggregate_violations(np.array([0.7]), 2.0, method=method)
        np.testing.assert_array_equal(res.weights, [1.0])
        assert float(res.value) == 0.7 and res.success
    psi = np.linspace(0, 1, 40)[::2]
    psi.flags.writeable = False
    for method in METHODS:
        assert certify_aggregation(psi, 0.1, aggregate_violations(psi, 0.1,
                                                                  method=method).weights).ok


def test_repr_and_history() -> None:
    res = aggregate_violations(np.array([0.5, 0.2, 0.0]), 1.0)
    text = repr(res)
    for part in ("AggregationResult(", "method='exact'", "value=0.296667", "support=3/3 tasks",
                 "success=True", "threshold=-0.1", "history=None"):
        assert part in text, text
    fw = aggregate_violations(np.array([0.5, 0.2, 0.0]), 1.0, method="away", keep_history=True)
    assert f"<{fw.nit + 1} gaps>" in repr(fw)
    assert aggregate_violations(np.array([0.5, 0.2, 0.0]), 1.0, method="away").history is None
    batched = aggregate_violations(np.ones((7, 3)), 1.0)
    assert "<array shape (7,)>" in repr(batched) and "<mask shape (7, 3)>" in repr(batched)


@pytest.mark.parametrize(
    ("psi", "mu", "kwargs", "match"),
    [
        (np.array([0.1, np.nan]), 1.0, {}, "psi contains NaN"),
        (np.array([0.1, np.inf] + [0.0] * 20), 1.0, {}, "psi contains inf"),
        (np.array([0.1, -np.inf]), 1.0, {}, "psi contains inf"),
        (np.array([0.1, np.nan]), 1.0, {"method": "pairwise"}, "psi contains NaN"),
        (np.array([[0.1, np.nan]]), 1.0, {}, "psi contains NaN"),
        (np.array([0.1, 0.2]), 0.0, {}, "mu must be > 0"),
        (np.array([0.1, 0.2]), -1.0, {}, "mu must be > 0"),
        (np.array([0.1, 0.2]), float("nan"), {}, "mu must be finite"),
        (np.array([0.1, 0.2]), "a", {}, "mu must be a real number"),
        (np.array([0.1, 0.2]), 1.0, {"method": "newton"}, "method must be one of"),
        (np.array([0.1, 0.2]), 1.0, {"tol": -1.0}, "tol must be >= 0"),
        (np.array([0.1, 0.2]), 1.0, {"max_iter": -1}, "max_iter must be >= 0"),
        (np.array([0.1, 0.2]), 1.0, {"max_iter": 2.5}, "max_iter must be an integer"),
        (np.ones((2, 2)), 1.0, {"method": "away"}, "psi must be 1-dimensional"),
        (np.array(0.5), 1.0, {}, "psi must have at least 1 dimension"),
        (np.array([]), 1.0, {}, "psi must not be empty"),
    ],
)
def test_errors(psi: Any, mu: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        aggregate_violations(psi, mu, **kwargs)


def test_torch_nan_raises() -> None:
    with pytest.raises(ValueError, match="psi contains NaN"):
        aggregate_violations(torch.tensor([0.1, float("nan")]), 1.0)


@given(psi_mu(max_size=20))
def test_reported_gap_equals_certificate_gap(pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    for method in ("exact", "pairwise"):
        res = aggregate_violations(psi, mu, method=method)
        cert = certify_aggregation(psi, mu, res.weights)
        assume(cert.scale > 0)
        assert abs(float(res.gap) - cert.gap) <= 4 * psi.size * np.finfo(float).eps * cert.scale + (
            16 * (psi.size + 1) * TINY)


def test_array_api_strict_namespace() -> None:
    xps = pytest.importorskip("array_api_strict")
    a = np.random.default_rng(4).random((3, 7))
    res = aggregate_violations(xps.asarray(a), 0.1)
    ref = aggregate_violations(a, 0.1)
    assert type(res.weights) is type(xps.asarray(a))
    np.testing.assert_allclose(np.asarray(res.weights), ref.weights, atol=1e-15)
    np.testing.assert_allclose(np.asarray(res.value), ref.value, atol=1e-15)
    fw = aggregate_violations(xps.asarray(a[0]), 0.1, method="away")
    assert type(fw.weights) is type(xps.asarray(a)) and fw.success
    np.testing.assert_allclose(np.asarray(fw.weights), ref.weights[0], atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["away", "pairwise"])
@given(pm=psi_mu(min_size=100, max_size=500))
def test_away_and_pairwise_certified_up_to_500_tasks(method: str,
                                                     pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    res = aggregate_violations(psi, mu, method=method)
    assert res.success, res
    assert certify_aggregation(psi, mu, res.weights).ok


@pytest.mark.parametrize(
    ("name", "condition"),
    [
        ("T = 1", lambda p: p.size == 1),
        ("T = 2", lambda p: p.size == 2),
        ("T = max_size", lambda p: p.size == 60),
        ("exact ties", lambda p: p.size >= 3 and len(np.unique(p)) < p.size and np.ptp(p) > 0),
        ("all equal", lambda p: p.size >= 3 and np.ptp(p) == 0),
        ("zeros among non-zeros", lambda p: (p == 0).any() and (p != 0).any()),
        ("tiny scale", lambda p: 0 < np.abs(p).max() <= 1e-11),
        ("huge scale", lambda p: np.abs(p).max() >= 1e7 and np.ptp(p) >= 1e6),
        ("large offset", lambda p: p.min() >= 1e8 - 1 and 0 < np.ptp(p) <= 1),
        ("near ties", lambda p: 0 < np.ptp(p) <= 1e-14 * np.abs(p).max()),
        ("negative entries", lambda p: (p < 0).any()),
    ],
)
def test_strategy_reaches_adversarial_cases(name: str, condition: Any) -> None:
    """The psi strategy actually generates each adversarial case it promises."""
    from hypothesis import find, settings

    found = find(psi_vectors(max_size=60), condition,
                 settings=settings(max_examples=2000, database=None))
    assert condition(found), name


@pytest.mark.parametrize("mu", [2.2250738585072014e-309, 1e-300, 1.0, 1e300])
@pytest.mark.parametrize("base", [[0.0, 2.2250738585072014e-308], [1.0, 0.5, 0.2],
                                  [1e300, -1e300, 0.0]])
@pytest.mark.parametrize("T_rep", [1, 10])  # T <= 16 (plain Python path) and T > 16 (NumPy)
def test_extreme_mu_and_psi_stay_finite_without_warnings(mu: float, base: list[float],
                                                         T_rep: int) -> None:
    """1 / mu overflows for a subnormal mu and psi / mu for huge psi: the weights and the
    value must stay exact (the threshold may be infinite) and no warning may be raised."""
    import warnings

    psi = np.array(base * T_rep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = aggregate_violations(psi, mu)
        batched = aggregate_violations(psi[None], mu)
        for method in METHODS:
            res = aggregate_violations(psi, mu, method=method)
            assert np.all(np.isfinite(res.weights)) and np.isfinite(res.value)
            if method != "frank_wolfe":
                assert certify_aggregation(psi, mu, res.weights).ok, (method, res)
    np.testing.assert_allclose(batched.weights[0], ref.weights, atol=1e-15)
    assert certify_aggregation(psi, mu, ref.weights).ok


def test_exact_torch_no_host_sync(device: str) -> None:
    psi = torch.rand(6, 9, device=device, dtype=torch.float64, requires_grad=True)
    with forbid_host_sync():
        res = aggregate_violations(psi, 0.1, check_finite=False)
        res.value.sum().backward()
        w, v, nu, gap, supp = res.weights, res.value, res.threshold, res.gap, res.support
    ref = aggregate_violations(psi.detach().cpu().numpy(), 0.1)
    np.testing.assert_allclose(w.cpu().numpy(), ref.weights, atol=1e-14)
    np.testing.assert_allclose(v.detach().cpu().numpy(), ref.value, atol=1e-14)
    np.testing.assert_allclose(psi.grad.cpu().numpy(), ref.weights, atol=1e-14)
    assert nu.shape == gap.shape == (6,) and supp.shape == (6, 9)
    with pytest.raises(HostSync), forbid_host_sync():  # the default NaN check synchronises
        aggregate_violations(psi.detach(), 0.1)


def test_result_is_a_dataclass_with_lazy_gap() -> None:
    import dataclasses

    psi = np.linspace(0.0, 1.0, 30)
    res = aggregate_violations(psi, 0.1)
    assert dataclasses.is_dataclass(res)
    names = [f.name for f in dataclasses.fields(res)]
    assert names[:10] == ["weights", "value", "threshold", "support", "gap", "nit", "success",
                          "message", "method", "history"]
    gap = res.gap  # computed on first access, then cached
    assert gap is res.gap
    assert abs(gap - certify_aggregation(psi, 0.1, res.weights).gap) <= 1e-15
    copy = dataclasses.replace(res, message="copied")
    assert copy.gap == gap and copy.message == "copied"
    np.testing.assert_array_equal(copy.support, res.support)
