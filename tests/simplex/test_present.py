"""The present mask of aggregate_violations and the shared objective aggregation_value: the
masked aggregation equals the aggregation of the subset (and cvxpy's), absent tasks get weight
exactly 0 whatever they hold, nothing present gives zeros, the torch path stays on the device
with no host read, and the Danskin gradient of aggregation_value is the weights. Also the
Frank-Wolfe family shared with the simplex QP and the numerical edges of the aggregation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairmt_opt import aggregate_violations, certify_aggregation, reference, solve_simplex_qp
from fairmt_opt.simplex import aggregation_value
from fairmt_opt.testing.strategies import psi_mu
from fairmt_opt.testing.sync import forbid_host_sync

torch = pytest.importorskip("torch")
METHODS = ("exact", "frank_wolfe", "away", "pairwise")
EPS = np.finfo(np.float64).eps


@st.composite
def masked(draw: st.DrawFn, max_size: int = 30) -> tuple[np.ndarray, float, np.ndarray]:
    psi, mu = draw(psi_mu(max_size=max_size))
    mask = np.array(draw(st.lists(st.booleans(), min_size=psi.size, max_size=psi.size)))
    return psi, mu, mask


def _tol(psi: np.ndarray, mu: float) -> float:
    s = max(float(np.ptp(psi)), mu) if psi.size else mu
    return 64 * (psi.size + 1) * EPS * s / mu + 1e-300


@given(masked())
def test_present_equals_the_subset(data: tuple[np.ndarray, float, np.ndarray]) -> None:
    psi, mu, mask = data
    for method in ("exact", "pairwise"):
        res = aggregate_violations(psi, mu, method=method, present=mask)
        assert np.all(res.weights[~mask] == 0.0)  # exactly zero
        if not mask.any():
            assert float(res.value) == 0.0 and np.all(res.weights == 0.0) and res.success
            assert float(res.gap) == 0.0
            continue
        sub = aggregate_violations(psi[mask], mu, method=method)
        np.testing.assert_allclose(res.weights[mask], sub.weights, rtol=0,
                                   atol=_tol(psi[mask], mu))
        scale = max(float(np.ptp(psi[mask])), mu)
        assert abs(float(res.value) - float(sub.value)) <= 1e-13 * (
            scale + abs(float(psi[mask].max()))) + 1e-300
        cert = certify_aggregation(psi, mu, res.weights, present=mask)
        assert cert.ok, (method, cert)
        assert res.success


@given(masked(max_size=12))
def test_present_matches_cvxpy(data: tuple[np.ndarray, float, np.ndarray]) -> None:
    psi, mu, mask = data
    if not mask.any() or np.ptp(psi) > 1e6 or np.abs(psi).max() > 1e6 or mu < 1e-6:
        return  # cvxpy's accuracy is absolute (about 1e-8): stay at moderate scales
    ref = reference.aggregate_violations(psi[mask], mu)
    res = aggregate_violations(psi, mu, present=mask)
    np.testing.assert_allclose(res.weights[mask], ref.x, atol=1e-5)
    assert abs(float(res.value) - ref.value) <= 1e-6 * max(1.0, abs(ref.value))


def test_absent_entries_are_never_read() -> None:
    psi = np.array([0.3, np.nan, 0.1, np.inf, -np.inf])
    mask = np.array([True, False, True, False, False])
    for method in METHODS:
        res = aggregate_violations(psi, 0.5, method=method, present=mask)
        np.testing.assert_allclose(res.weights, [0.7, 0, 0.3, 0, 0], atol=1e-12)
        assert math.isfinite(float(res.value)) and math.isfinite(float(res.gap))
    with pytest.raises(ValueError, match="psi contains NaN"):
        aggregate_violations(psi, 0.5, present=~mask)


@pytest.mark.parametrize("T", [1, 2, 3, 40])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_small_sizes_dtypes_and_all_absent(T: int, dtype: str) -> None:
    rng = np.random.default_rng(T)
    psi = rng.random(T).astype(dtype)
    none = np.zeros(T, dtype=bool)
    for method in METHODS:
        res = aggregate_violations(psi, 0.2, method=method, present=none)
        assert res.weights.dtype == psi.dtype and np.all(res.weights == 0)
        assert float(res.value) == 0.0 and float(res.gap) == 0.0 and res.success
        one = np.zeros(T, dtype=bool)
        one[-1] = True
        res = aggregate_violations(psi, 0.2, method=method, present=one)
        np.testing.assert_array_equal(res.weights, one.astype(dtype))
        assert float(res.value) == pytest.approx(float(psi[-1]), rel=1e-3)
    assert aggregate_violations(psi, 0.2, present=none).threshold == math.inf


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_present_danskin_and_subset(dtype: str) -> None:
    rng = np.random.default_rng(3)
    p = rng.random(7)
    mask = np.array([True, False, True, True, False, True, False])
    psi = torch.tensor(p, dtype=getattr(torch, dtype), requires_grad=True)
    present = torch.as_tensor(mask)
    res = aggregate_violations(psi.detach(), 0.1, present=present)
    assert res.weights.dtype == psi.dtype and not res.weights.requires_grad
    phi = aggregation_value(psi, res.weights, 0.1, present=present)
    phi.backward()
    ref = aggregate_violations(p[mask], 0.1)
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(res.weights.numpy()[mask], ref.weights, atol=tol)
    assert float(phi) == pytest.approx(float(ref.value), abs=tol)
    # Danskin: the gradient is the weights on the present tasks, 0 elsewhere
    np.testing.assert_array_equal(psi.grad.numpy(), res.weights.numpy())
    assert float(res.value) == pytest.approx(float(phi), abs=tol)


def test_torch_present_no_host_sync_batched() -> None:
    psi = torch.rand(5, 9, dtype=torch.float64, requires_grad=True)
    present = torch.rand(5, 9) > 0.4
    present[0] = False  # a row with nothing present
    present[1] = True
    with forbid_host_sync():
        res = aggregate_violations(psi.detach(), 0.3, present=present, check_finite=False)
        phi = aggregation_value(psi, res.weights, 0.3, present=present)
        phi.sum().backward()
        gap, nu, supp = res.gap, res.threshold, res.support
    assert gap.shape == nu.shape == (5,) and supp.shape == (5, 9)
    for i in range(5):
        m = present[i].numpy()
        row = res.weights[i].numpy()
        assert np.all(row[~m] == 0)
        if m.any():
            ref = aggregate_violations(psi[i].detach().numpy()[m], 0.3)
            np.testing.assert_allclose(row[m], ref.weights, atol=1e-14)
            assert float(phi[i]) == pytest.approx(float(ref.value), abs=1e-14)
        else:
            assert float(phi[i]) == 0.0 and float(gap[i]) == 0.0
    np.testing.assert_array_equal(psi.grad.numpy(), res.weights.numpy())


def test_aggregation_value_formula_and_errors() -> None:
    psi = np.array([0.4, 0.1, -0.2])
    w = np.array([0.5, 0.25, 0.25])
    expected = w @ psi - 0.5 * 0.3 * np.sum((w - 1 / 3) ** 2)
    assert float(aggregation_value(psi, w, 0.3)) == pytest.approx(expected, abs=1e-15)
    assert float(aggregation_value(psi, w, np.float32(0.5))) == pytest.approx(
        w @ psi - 0.25 * np.sum((w - 1 / 3) ** 2), abs=1e-8)
    with pytest.raises(ValueError, match="weights must have the shape of psi"):
        aggregation_value(psi, w[:2], 0.3)
    with pytest.raises(ValueError, match="mu must be > 0"):
        aggregation_value(psi, w, 0.0)
    with pytest.raises(ValueError, match="present must be a bool array"):
        aggregation_value(psi, w, 0.3, present=np.ones(3))
    with pytest.raises(ValueError, match="present must have the shape of psi"):
        aggregate_violations(psi, 0.3, present=np.ones(2, dtype=bool))
    with pytest.raises(ValueError, match="present must be a torch bool tensor"):
        aggregate_violations(torch.tensor(psi), 0.3, present=np.ones(3, dtype=bool))


@pytest.mark.parametrize("method", ["frank_wolfe", "away", "pairwise"])
@given(pm=psi_mu(max_size=20))
def test_aggregation_fw_is_the_qp_fw(method: str, pm: tuple[np.ndarray, float]) -> None:
    """The aggregation's Frank-Wolfe is the simplex QP's on K = mu I, b = -psi - mu c."""
    psi, mu = pm
    if np.ptp(psi) > 1e6 * mu or mu > 1e6 or mu < 1e-6 or np.abs(psi).max() > 1e6:
        return  # the QP solver normalises K and b: compare at moderate scales
    T = psi.size
    pc = psi - psi.max()
    qp = solve_simplex_qp(mu * np.eye(T), -pc - mu / T, method=method, tol=1e-13 * mu,
                          max_iter=10_000)
    res = aggregate_violations(psi, mu, method=method, tol=1e-13 * mu)
    np.testing.assert_allclose(res.weights, qp.x, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_huge_spread_is_solved_not_certified_blindly(method: str) -> None:
    psi = np.array([1e308, -1e308, 0.0, 0.0])
    res = aggregate_violations(psi, 1.0, method=method)
    np.testing.assert_array_equal(res.weights, [1.0, 0.0, 0.0, 0.0])
    assert res.success and float(res.value) == 1e308 and math.isfinite(float(res.gap))
    assert certify_aggregation(psi, 1.0, res.weights).ok
    uniform = certify_aggregation(psi, 1.0, np.full(4, 0.25))
    assert not uniform.ok and uniform.gap > 1e307


@pytest.mark.parametrize("mu", [5e-324, 1e-320, 2.0**-1000])
@pytest.mark.parametrize("method", METHODS)
def test_subnormal_mu(method: str, mu: float) -> None:
    res = aggregate_violations(np.array([0.5, 0.2, 0.0, 0.45]), mu, method=method)
    np.testing.assert_allclose(res.weights, [1, 0, 0, 0], atol=1e-12)
    assert res.success and float(res.value) == pytest.approx(0.5)


def test_nonfinite_gap_never_certifies() -> None:
    """A NaN or infinite gap fails the certificate (it used to pass as inf <= rtol * inf)."""
    psi = np.array([1.7e308, -1.7e308])
    for w in ([0.5, 0.5], [0.0, 1.0]):
        cert = certify_aggregation(psi, 1.0, np.array(w))
        assert not cert.ok, cert


def test_numpy_scalar_arguments() -> None:
    psi = np.array([0.5, 0.2, 0.0])
    ref = aggregate_violations(psi, 0.5)
    for mu in (np.float32(0.5), np.float64(0.5), np.float16(0.5), np.int64(1) / 2):
        res = aggregate_violations(psi, mu, method="away", tol=np.float32(1e-12),
                                   max_iter=np.int32(100))
        np.testing.assert_allclose(res.weights, ref.weights, atol=1e-12)
    for bad, match in [("0.5", "mu must be a real number"), (True, "mu must be a real number"),
                       (np.array([0.5]), "mu must be a real number")]:
        with pytest.raises(ValueError, match=match):
            aggregate_violations(psi, bad)


def test_result_fields_are_lazy_on_the_exact_path() -> None:
    res: Any = aggregate_violations(torch.rand(4), 0.1, check_finite=False)
    computed = {k for k in ("_value", "_gap", "_threshold", "_support") if vars(res).get(k)
                is not None}
    assert computed == set()  # the solve formed the weights only
    gap = res.gap
    assert vars(res)["_gap"] is gap and vars(res)["_value"] is None
