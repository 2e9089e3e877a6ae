"""The cvxpy reference (fairmt_opt.reference) at every data scale (issue #13): it solves the
problems at unit scale and scales back, so it agrees with the exact solvers from 1e-300 to
1e300, and a failing conic solve raises ReferenceSolveError naming the problem, never cvxpy's
bare SolverError. Unscaled, it was 0.4 % off at 1e-12 and raised SolverError at 1e150."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

cp = pytest.importorskip("cvxpy", reason="the reference needs cvxpy")

from fairmt_opt import (  # noqa: E402
    aggregate_violations,
    project_simplex,
    reference,
    solve_simplex_qp,
)

SCALES = [1e-300, 1e-150, 1e-12, 1.0, 1e12, 1e150, 1e300]
FMAX = sys.float_info.max
_QP_COMPILED: dict[int, reference.ParametricSimplexQP] = {}
_AGG_COMPILED: dict[tuple[int, float], reference.ParametricAggregation] = {}


def _qp(T: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((T, max(1, T // 2)))  # singular for T > 1
    return A @ A.T, rng.standard_normal(T)


def _f(K: np.ndarray, b: np.ndarray, x: np.ndarray) -> float:
    return float(0.5 * x @ K @ x + b @ x)


def _assert_qp_agrees(K: np.ndarray, b: np.ndarray, sol: reference.ReferenceSolution) -> None:
    exact = solve_simplex_qp(K, b)
    assert exact.success
    fstar = _f(K, b, exact.x)
    assert sol.status == "optimal"
    # 1e-6 relative in the objective, and the reported value is the objective at x
    assert abs(sol.value - fstar) <= 1e-6 * abs(fstar), (sol.value, fstar)
    assert abs(sol.value - _f(K, b, sol.x)) <= 1e-12 * abs(fstar)
    # x itself is not unique for a singular K; K x (= R^T R x) is
    kabs = float(np.max(np.abs(K)))
    np.testing.assert_allclose(sol.x @ K / kabs, exact.x @ K / kabs, atol=1e-5)


@pytest.mark.parametrize("s", SCALES)
@pytest.mark.parametrize("seed", [0, 1])
def test_qp_agrees_with_exact_solver_at_every_scale(s: float, seed: int) -> None:
    K0, b0 = _qp(6, seed)
    _assert_qp_agrees(K0 * s, b0 * s, reference.solve_simplex_qp(K0 * s, b0 * s))


@pytest.mark.parametrize("s", [1e-12, 1.0, 1e150])
def test_compiled_qp_agrees_at_every_scale(s: float) -> None:
    K0, b0 = _qp(5, 3)
    if 5 not in _QP_COMPILED:
        _QP_COMPILED[5] = reference.ParametricSimplexQP(5)
    _assert_qp_agrees(K0 * s, b0 * s, _QP_COMPILED[5].solve(K0 * s, b0 * s))


@pytest.mark.parametrize(
    ("K", "b"),
    [
        (np.diag([1e-12, 2e-12, 3e-12]), 1e150 * np.array([1.0, 1.5, 2.0])),  # b rules
        (np.diag([1e150, 2e150, 3e150]), np.array([1e-12, 0.0, -1e-12])),  # K rules
        (np.diag([FMAX, FMAX / 2, FMAX / 4]), np.zeros(3)),  # 1/2 x K x near the top
        (1e-300 * np.ones((3, 3)), np.array([1e-300, 0.0, 3e-300])),
    ],
)
def test_qp_mixed_and_extreme_scales(K: np.ndarray, b: np.ndarray) -> None:
    _assert_qp_agrees(K, b, reference.solve_simplex_qp(K, b))


def test_qp_b_spanning_the_float_range() -> None:
    """b - min b overflows unless the data is first divided by a power of two."""
    K = np.eye(3)
    b = np.array([1e308, -1e308, 0.0])
    sol = reference.solve_simplex_qp(K, b)
    np.testing.assert_allclose(sol.x, [0.0, 1.0, 0.0], atol=1e-9)
    assert sol.value == pytest.approx(-1e308, rel=1e-12)


def test_qp_constant_objective_is_any_feasible_point() -> None:
    sol = reference.solve_simplex_qp(np.zeros((3, 3)), np.full(3, 2.0))
    assert sol.x.sum() == pytest.approx(1.0) and sol.value == pytest.approx(2.0)


@pytest.mark.parametrize("s", SCALES)
@pytest.mark.parametrize("ratio", [1e-6, 1e-3, 1.0, 1e3, 1e6])
def test_aggregation_agrees_with_water_filling_at_every_scale(s: float, ratio: float) -> None:
    rng = np.random.default_rng(7)
    psi0 = rng.standard_normal(6)
    psi, mu = psi0 * s, ratio * s
    sol = reference.aggregate_violations(psi, mu)
    exact = aggregate_violations(psi, mu)
    phi = float(exact.value)
    spread = max(float(np.ptp(psi)), mu)
    assert sol.status == "optimal"
    assert abs(sol.value - phi) <= 1e-6 * max(abs(phi), spread), (sol.value, phi)
    np.testing.assert_allclose(sol.x, exact.weights, atol=1e-5)
    # the multiplier of sum w = 1, in the caller's units: mu (nu + 1/T)
    lam = mu * (float(exact.threshold) + 1.0 / psi.size)
    assert abs(sol.extra["dual_sum"] - lam) <= 1e-6 * max(abs(lam), spread)


@pytest.mark.parametrize("s", [1e-12, 1.0, 1e150])
def test_compiled_aggregation_agrees_at_every_scale(s: float) -> None:
    psi = s * np.array([0.4, -0.2, 0.35, 0.0])
    for ratio in (1e-3, 1.0, 1e3):
        key = (4, ratio * s)
        if key not in _AGG_COMPILED:
            _AGG_COMPILED[key] = reference.ParametricAggregation(4, ratio * s)
        sol = _AGG_COMPILED[key].solve(psi)
        exact = aggregate_violations(psi, ratio * s)
        phi = float(exact.value)
        assert abs(sol.value - phi) <= 1e-6 * max(abs(phi), ratio * s, 0.6 * s)
        np.testing.assert_allclose(sol.x, exact.weights, atol=1e-5)


def test_aggregation_at_the_float_range() -> None:
    psi = np.array([FMAX, -FMAX, 0.0])
    sol = reference.aggregate_violations(psi, FMAX)
    exact = aggregate_violations(psi, FMAX)
    # psi / mu - max = (0, -2, -1): the last weight is at its threshold (degenerate), so an
    # interior-point solver finds it to about the square root of its tolerance
    np.testing.assert_allclose(sol.x, exact.weights, atol=1e-6)
    assert sol.value == pytest.approx(float(exact.value), rel=1e-6)


@pytest.mark.parametrize("s", SCALES)
def test_projection_agrees_at_every_scale(s: float) -> None:
    v = s * np.array([0.9, 0.8, 0.1, -2.0, 0.85])
    sol = reference.project_simplex(v)
    np.testing.assert_allclose(sol.x, project_simplex(v), atol=1e-7)
    assert sol.status == "optimal"


def test_projection_near_one_with_large_offset() -> None:
    """Shift-invariance: only v - max v matters."""
    v = np.array([0.9, 0.8, 0.1, -2.0]) + 1e12
    np.testing.assert_allclose(reference.project_simplex(v).x,
                               project_simplex(v - 1e12), atol=1e-6)


def _raising(*args: Any, **kwargs: Any) -> Any:
    raise cp.error.SolverError("Solver 'CLARABEL' failed. Try another solver.")


def _infeasible(self: Any, *args: Any, **kwargs: Any) -> Any:
    self._status = "infeasible"


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda: reference.solve_simplex_qp(np.eye(3)), "reference simplex QP (T = 3)"),
        (lambda: reference.aggregate_violations(np.array([1.0, 0.0]), 0.5),
         "reference aggregation (T = 2, mu = 0.5)"),
        (lambda: reference.project_simplex(np.array([0.2, 0.1])),
         "reference projection onto the simplex (T = 2)"),
        (lambda: reference.ParametricSimplexQP(2).solve(np.eye(2)),
         "reference simplex QP (T = 2, compiled)"),
        (lambda: reference.ParametricAggregation(2, 1.0).solve(np.array([1.0, 0.0])),
         "reference aggregation (T = 2, mu = 1, compiled)"),
    ],
)
def test_a_failing_solve_raises_a_clear_error(call: Any, what: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cp.Problem, "solve", _raising)
    with pytest.raises(reference.ReferenceSolveError, match="found no solution") as info:
        call()
    err = info.value
    assert str(err).startswith(what), str(err)
    assert "raised SolverError: Solver 'CLARABEL' failed" in str(err)
    assert isinstance(err.__cause__, cp.error.SolverError)
    assert isinstance(err, cp.error.SolverError)  # callers catching cvxpy's error still do
    monkeypatch.setattr(cp.Problem, "solve", _infeasible)
    with pytest.raises(reference.ReferenceSolveError,
                       match="returned status 'infeasible' with default settings"):
        call()


def test_bad_arguments_name_themselves() -> None:
    with pytest.raises(ValueError, match="K must be a non-empty square matrix"):
        reference.solve_simplex_qp(np.ones((2, 3)))
    with pytest.raises(ValueError, match="b must have length 2"):
        reference.solve_simplex_qp(np.eye(2), np.ones(3))
    with pytest.raises(ValueError, match="K must be 3 x 3"):
        reference.ParametricSimplexQP(3).solve(np.eye(2))
    with pytest.raises(ValueError, match="psi must have length 3"):
        reference.ParametricAggregation(3, 1.0).solve(np.ones(2))
    with pytest.raises(ValueError, match="mu must be > 0"):
        reference.aggregate_violations(np.ones(2), 0.0)
    with pytest.raises(ValueError, match="psi must be finite"):
        reference.aggregate_violations(np.array([1.0, np.nan]), 1.0)
