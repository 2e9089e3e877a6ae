"""The Frank–Wolfe aggregation (and the Frank–Wolfe QP code it shares) on the edges found by
fuzzing (issue #13): subnormal and huge mu, spreads beyond the float range, ties, NaN and inf
never reported as success, NumPy scalar arguments; checked against the exact water-filling
and the independent certificate."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmt_opt import aggregate_violations, certify_aggregation, solve_simplex_qp
from fairmt_opt.qp._frank_wolfe import frank_wolfe_qp

FMAX = sys.float_info.max
FW = ["frank_wolfe", "away", "pairwise"]
LINEAR = ["away", "pairwise"]  # linear rate: they reach the default tolerance


@pytest.mark.parametrize("method", FW)
@pytest.mark.parametrize("mu", [5e-324, 1e-320, 1e-300, 2.0**-1000])
def test_subnormal_mu_puts_all_weight_on_the_worst_task(method: str, mu: float) -> None:
    """aggregate_violations(psi, 5e-324, method='away') raised ZeroDivisionError."""
    psi = np.array([0.2, 0.9, 0.5, 0.9 - 1e-12])
    res = aggregate_violations(psi, mu, method=method)
    np.testing.assert_array_equal(res.weights, [0.0, 1.0, 0.0, 0.0])
    assert res.success and float(res.value) == 0.9
    assert certify_aggregation(psi, mu, res.weights).ok


@pytest.mark.parametrize("method", FW)
@pytest.mark.parametrize(
    ("psi", "mu", "weights"),
    [
        ([1e308, -1e308, 0.0, 0.0], 1.0, [1.0, 0.0, 0.0, 0.0]),
        ([FMAX, -FMAX], 1.0, [1.0, 0.0]),
        ([-FMAX, FMAX, 0.0], FMAX, [0.0, 1.0, 0.0]),  # z = 2 FMAX / mu = 2 beyond the level
        ([FMAX, FMAX, -FMAX], 1.0, None),  # a tie at the top: any split of it is optimal
        ([FMAX, FMAX, -FMAX], FMAX, [0.5, 0.5, 0.0]),
        ([-FMAX, -FMAX, -FMAX], FMAX, [1 / 3, 1 / 3, 1 / 3]),
        ([1e300, -1e300, 0.0], 1e-300, [1.0, 0.0, 0.0]),
        ([1e-300, -1e-300], 1e300, [0.5, 0.5]),
        ([5e-324, 0.0, 5e-324], 1.0, [1 / 3, 1 / 3, 1 / 3]),
    ],
)
def test_spreads_at_the_float_range(method: str, psi: list, mu: float,
                                    weights: list | None) -> None:
    """(1e308, -1e308, 0, 0) returned uniform weights with success=True, and the certificate
    passed them (gap = inf <= rtol * inf)."""
    p = np.array(psi)
    res = aggregate_violations(p, mu, method=method)
    exact = aggregate_violations(p, mu)
    assert res.success, res
    if weights is None:
        assert res.weights[2] == 0.0 and res.weights.sum() == pytest.approx(1.0)
    else:
        np.testing.assert_allclose(res.weights, weights, atol=1e-9)
        np.testing.assert_allclose(exact.weights, weights, atol=1e-15)
    value, ref = float(res.value), float(exact.value)
    assert math.isfinite(value) and math.isfinite(float(res.gap))
    assert value == pytest.approx(ref, rel=1e-12, abs=1e-300)
    assert certify_aggregation(p, mu, res.weights).ok
    uniform = certify_aggregation(p, mu, np.full(p.size, 1.0 / p.size))
    assert uniform.ok == bool(np.allclose(exact.weights, 1.0 / p.size, atol=1e-12))


def test_value_of_a_small_weight_far_below_the_maximum_is_finite() -> None:
    """A Frank–Wolfe iterate with weight 3.7e-17 on psi = -FMAX (below max psi = FMAX by
    2 FMAX) once reported Phi = -inf; the value is now formed on rescaled data."""
    psi = np.array([FMAX, FMAX, -FMAX])
    res = aggregate_violations(psi, FMAX, method="frank_wolfe")
    exact = aggregate_violations(psi, FMAX)
    assert float(res.value) == pytest.approx(float(exact.value), rel=1e-12)


@st.composite
def adversarial_psi(draw: st.DrawFn) -> tuple[np.ndarray, float]:
    T = draw(st.integers(1, 8))
    mant = st.sampled_from([0.0, 1.0, -1.0, 0.5, 0.25]) | st.floats(-1.0, 1.0)
    base = np.array(draw(st.lists(mant, min_size=T, max_size=T)))
    s = draw(st.one_of(st.integers(-300, 300).map(lambda e: 10.0**e),
                       st.sampled_from([5e-324, 1e-310, FMAX / 2])))
    mu = draw(st.sampled_from([5e-324, 1e-3 * s, s, 1e3 * s, FMAX]))
    return base * s, min(max(mu, 5e-324), FMAX)


@pytest.mark.parametrize("method", LINEAR)
@given(case=adversarial_psi())
@settings(max_examples=60, deadline=None)
def test_linear_variants_match_the_exact_solution(method: str,
                                                  case: tuple[np.ndarray, float]) -> None:
    psi, mu = case
    res = aggregate_violations(psi, mu, method=method)
    exact = aggregate_violations(psi, mu)
    assert res.success, (res, psi, mu)
    assert certify_aggregation(psi, mu, res.weights).ok
    # f is mu-strongly concave: |w - w*|^2 <= 2 gap / mu
    err = float(np.sum((res.weights - exact.weights) ** 2))
    assert err <= 2.0 * max(float(res.gap), 0.0) / mu + 1e-24  # the gap may be -round-off
    scale = max(float(np.ptp(psi)), mu)
    assert abs(float(res.value) - float(exact.value)) <= 1e-12 * scale + 1e-300


@given(case=adversarial_psi())
@settings(max_examples=40, deadline=None)
def test_vanilla_frank_wolfe_is_honest(case: tuple[np.ndarray, float]) -> None:
    """Vanilla FW converges sublinearly and may stop at max_iter: then success is False; a
    reported success always certifies, and the value and gap are finite."""
    psi, mu = case
    res = aggregate_violations(psi, mu, method="frank_wolfe", max_iter=2000)
    assert math.isfinite(float(res.value)) and math.isfinite(float(res.gap))
    cert = certify_aggregation(psi, mu, res.weights)
    if res.success:
        assert cert.ok, (res, cert)
    assert cert.gap == pytest.approx(float(res.gap), rel=1e-6, abs=1e-12 * cert.scale)


@pytest.mark.parametrize("method", FW)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_psi_is_never_success(method: str, bad: float) -> None:
    """With check_finite=False a NaN or inf entry is not looked for: the iteration stops at a
    non-finite gap (a -inf entry made the default tol inf, and inf <= inf passed)."""
    psi = np.array([bad, 0.0, 1.0])
    res = aggregate_violations(psi, 1.0, method=method, check_finite=False)
    assert not res.success and "non-finite" in res.message
    with pytest.raises(ValueError, match=r"psi contains (NaN|inf)"):
        aggregate_violations(psi, 1.0, method=method)
    # an absent task is never read, even NaN
    ok = aggregate_violations(psi, 1.0, method=method, present=np.array([False, True, True]))
    assert ok.success and ok.weights[0] == 0.0


def test_frank_wolfe_qp_tests_finiteness_before_tol() -> None:
    K = np.array([[1.0, np.inf], [np.inf, 1.0]])
    for variant in FW:
        _, gap, _, status, message = frank_wolfe_qp(
            K, np.zeros(2), np.array([0.5, 0.5]), variant=variant, tol=math.inf, max_iter=10)
        assert status == 3 and not math.isfinite(gap) and "not finite" in message


@pytest.mark.parametrize("method", FW)
def test_qp_frank_wolfe_family_with_nan_and_no_checks(method: str) -> None:
    """'pairwise' with check_input=False and a NaN K raised 'argmax of an empty sequence'."""
    K = np.array([[1.0, np.nan, 0.0], [np.nan, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="K contains NaN or inf"):
        solve_simplex_qp(K, method=method, check_input=False)
    with pytest.raises(ValueError, match="b contains NaN or inf"):
        solve_simplex_qp(np.eye(3), np.array([0.0, np.inf, 0.0]), method=method,
                         check_input=False)


@pytest.mark.parametrize("method", FW)
def test_numpy_scalar_arguments_and_torch(method: str) -> None:
    psi = np.array([0.5, 0.2, 0.0, 0.45])
    ref = aggregate_violations(psi, 0.25)
    res = aggregate_violations(psi, np.float16(0.25), method=method, tol=np.float32(1e-14),
                               max_iter=np.uint16(60000), keep_history=np.bool_(True))
    np.testing.assert_allclose(res.weights, ref.weights, atol=1e-6)
    assert res.history is not None and len(res.history) == res.nit + 1
    t = torch.tensor(psi, requires_grad=True)
    rt = aggregate_violations(t, np.float64(0.25), method=method, tol=1e-14, max_iter=60000)
    rt.value.backward()
    assert isinstance(rt.weights, torch.Tensor)
    assert torch.allclose(t.grad, rt.weights)  # Danskin: the gradient is the weights
    for bad, match in [(np.bool_(True), "mu must be a real number"),
                       (np.float32(np.nan), "mu must be finite"),
                       (np.float64(-1.0), "mu must be > 0")]:
        with pytest.raises(ValueError, match=match):
            aggregate_violations(psi, bad, method=method)
    with pytest.raises(ValueError, match="max_iter must be an integer"):
        aggregate_violations(psi, 0.25, method=method, max_iter=np.float64(10))
    with pytest.raises(ValueError, match="tol must be"):
        aggregate_violations(psi, 0.25, method=method, tol=np.float32(-1.0))


@pytest.mark.parametrize("method", FW)
def test_zero_budget_reports_the_barycentre_honestly(method: str) -> None:
    psi = np.array([0.5, 0.2, 0.0])
    res = aggregate_violations(psi, 1.0, method=method, max_iter=0)
    np.testing.assert_array_equal(res.weights, np.full(3, 1 / 3))
    assert res.nit == 0 and not res.success and "maximum number of iterations" in res.message
    assert float(res.gap) == pytest.approx(certify_aggregation(psi, 1.0, res.weights).gap)
    flat = aggregate_violations(np.zeros(3), 1.0, method=method, max_iter=0)
    assert flat.success  # the barycentre is optimal for equal violations
