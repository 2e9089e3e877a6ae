"""Tests of certify_aggregation: it accepts exact solutions, rejects perturbed ones (feasible
moves of 1e-3 of the mass, infeasible scalings, negative entries), its bounds
f(w) <= Phi <= f(w) + gap hold at arbitrary feasible points, its tolerance follows the dtype,
and bad input raises ValueError."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairmt_opt import aggregate_violations, certify_aggregation, reference
from fairmt_opt.testing.strategies import psi_mu, simplex_points

torch = pytest.importorskip("torch")
EPS = np.finfo(np.float64).eps
_COMPILED: dict[int, reference.ParametricAggregation] = {}


@given(psi_mu(max_size=80))
def test_accepts_exact_solution(pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    cert = certify_aggregation(psi, mu, aggregate_violations(psi, mu).weights)
    assert cert.ok, cert
    assert cert.rtol == 16 * (psi.size + 1) * EPS
    assert cert.primal_feasibility <= cert.rtol
    assert cert.upper_bound == cert.objective + cert.gap


def _feasible_perturbation(psi: np.ndarray, mu: float, w: np.ndarray, delta: float) -> np.ndarray:
    """Move delta of the mass from the heaviest task to the task with the lowest gradient
    (another task if the gradient is constant): a feasible point at distance ~delta."""
    g = psi - mu * (w - 1 / psi.size)
    i = int(np.argmax(w))
    j = int(np.argmin(g))
    if j == i:
        j = (i + 1) % psi.size
    out = w.copy()
    out[i] -= delta
    out[j] += delta
    return out


@given(psi_mu(min_size=2, max_size=80))
def test_rejects_feasible_perturbation(pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    w = aggregate_violations(psi, mu).weights
    bad = _feasible_perturbation(psi, mu, w, 1e-3)
    cert = certify_aggregation(psi, mu, bad)
    assert cert.primal_feasibility <= cert.rtol  # still feasible ...
    assert not cert.ok, cert  # ... but visibly suboptimal
    assert cert.gap > cert.rtol * cert.scale


@given(psi_mu(max_size=80), st.sampled_from([1e-9, -1e-9, 1e-3]))
def test_rejects_infeasible_points(pm: tuple[np.ndarray, float], rel: float) -> None:
    psi, mu = pm
    w = aggregate_violations(psi, mu).weights
    scaled = certify_aggregation(psi, mu, w * (1 + rel))
    assert not scaled.ok and scaled.sum_residual > scaled.rtol
    neg = w.copy()
    neg[int(np.argmin(w))] -= 1e-9  # a negative (or reduced) entry breaks the sum as well
    assert not certify_aggregation(psi, mu, neg).ok


def test_negative_entry_with_unit_sum_fails_on_negativity() -> None:
    psi = np.array([0.5, 0.2, 0.0])
    cert = certify_aggregation(psi, 1.0, np.array([0.6 + 1e-6, 0.4, -1e-6]))
    assert cert.negativity == pytest.approx(1e-6) and cert.sum_residual < 1e-15
    assert not cert.ok


@given(psi_mu(max_size=30), st.data())
def test_bounds_hold_at_any_feasible_point(pm: tuple[np.ndarray, float],
                                          data: st.DataObject) -> None:
    psi, mu = pm
    w = data.draw(simplex_points(psi.size))
    cert = certify_aggregation(psi, mu, w)
    phi = float(aggregate_violations(psi, mu).value)
    slack = 1e-12 * cert.scale + 4 * psi.size * EPS * float(np.abs(psi).max())
    assert cert.gap >= -slack
    assert cert.objective - slack <= phi <= cert.upper_bound + slack


@given(psi_mu(max_size=20, min_size=1))
def test_objective_matches_cvxpy_value_at_optimum(pm: tuple[np.ndarray, float]) -> None:
    psi, mu = pm
    s = max(float(np.ptp(psi)), mu)
    m = float(psi.max())
    if mu / s >= 1e-2:  # compiled problem with mu = 1: Phi(p, mu) = mu Phi(p / mu, 1)
        if psi.size not in _COMPILED:
            _COMPILED[psi.size] = reference.ParametricAggregation(psi.size, 1.0)
        phi_ref = m + mu * _COMPILED[psi.size].solve((psi - m) / mu).value
    else:
        phi_ref = m + s * reference.aggregate_violations((psi - m) / s, mu / s).value
    w = aggregate_violations(psi, mu).weights
    cert = certify_aggregation(psi, mu, w)
    assert abs(cert.objective - phi_ref) <= 1e-8 * s + 4 * EPS * abs(m)


def test_rtol_keyword_and_float32_default() -> None:
    psi = np.array([0.5, 0.2, 0.0])
    w = np.array([0.6, 0.3, 0.1]) + np.array([1e-7, -1e-7, 0.0])
    assert not certify_aggregation(psi, 1.0, w).ok
    assert certify_aggregation(psi, 1.0, w, rtol=1e-6).ok
    w32 = aggregate_violations(psi.astype(np.float32), 1.0).weights
    cert32 = certify_aggregation(psi.astype(np.float32), 1.0, w32)
    assert cert32.ok and cert32.rtol == 16 * 4 * float(np.finfo(np.float32).eps)
    # the same float32-rounded weights judged as float64 data: out of float64 tolerance
    assert not certify_aggregation(psi, 1.0, w32.astype(np.float64)).ok


def test_torch_inputs(device: str) -> None:
    psi = torch.tensor([0.5, 0.2, 0.0], device=device, dtype=torch.float32)
    w = aggregate_violations(psi, 1.0).weights
    cert = certify_aggregation(psi, 1.0, w)
    assert cert.ok and isinstance(cert.gap, float)
    cert64 = certify_aggregation(psi.double(), 1.0, aggregate_violations(psi.double(), 1.0)
                                 .weights)
    assert cert64.ok and cert64.rtol < cert.rtol


def test_repr_names_fields() -> None:
    text = repr(certify_aggregation(np.array([1.0, 0.0]), 1.0, np.array([1.0, 0.0])))
    for part in ("AggregationCertificate(", "gap=", "sum_residual=", "ok=True"):
        assert part in text


@pytest.mark.parametrize(
    ("psi", "mu", "w", "kwargs", "match"),
    [
        (np.array([0.1, np.nan]), 1.0, np.array([0.5, 0.5]), {}, "psi contains NaN"),
        (np.array([0.1, 0.2]), 1.0, np.array([0.5, np.inf]), {}, "w contains inf"),
        (np.array([0.1, 0.2]), 1.0, np.array([1.0, 0.0, 0.0]), {}, "w must have the length"),
        (np.ones((2, 2)), 1.0, np.ones((2, 2)), {}, "psi must be 1-dimensional"),
        (np.array([0.1, 0.2]), 1.0, np.ones((1, 2)), {}, "w must be 1-dimensional"),
        (np.array([0.1, 0.2]), 0.0, np.array([0.5, 0.5]), {}, "mu must be > 0"),
        (np.array([0.1, 0.2]), 1.0, np.array([0.5, 0.5]), {"rtol": -1.0}, "rtol must be >= 0"),
    ],
)
def test_errors(psi: Any, mu: Any, w: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        certify_aggregation(psi, mu, w, **kwargs)


def test_mixed_array_types_raise() -> None:
    with pytest.raises(ValueError, match="mix torch tensors and other arrays"):
        certify_aggregation(torch.tensor([0.1, 0.2]), 1.0, np.array([0.5, 0.5]))


def test_independent_of_solvers() -> None:
    """The certificate module imports no solver (it must be able to catch their bugs): from
    the simplex package it takes only the objective module (the formulas of f and its gap),
    and that module imports no solver either."""
    import ast
    import pathlib

    import fairmt_opt.certificates._aggregation as mod
    import fairmt_opt.simplex._objective as objective

    def imported(m: object) -> set[str]:
        tree = ast.parse(pathlib.Path(m.__file__).read_text())  # type: ignore[attr-defined]
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    mods = imported(mod)
    assert {m for m in mods if m.split(".")[0] in ("simplex", "qp")} == {"simplex._objective"}
    assert not any(m.split(".")[0] in ("simplex", "qp") or m.startswith(".")
                   or m in ("_aggregation", "_projection") for m in imported(objective))


def test_array_api_strict_inputs_use_their_dtype() -> None:
    xps = pytest.importorskip("array_api_strict")
    psi = np.array([0.5, 0.2, 0.0])
    w = aggregate_violations(psi, 1.0).weights
    cert = certify_aggregation(xps.asarray(psi), 1.0, xps.asarray(w))
    assert cert.ok and cert.rtol == 16 * 4 * EPS
    cert32 = certify_aggregation(xps.asarray(psi, dtype=xps.float32), 1.0,
                                 xps.asarray(w, dtype=xps.float32))
    assert cert32.rtol == 16 * 4 * float(np.finfo(np.float32).eps)


@pytest.mark.parametrize("scale", [1.1125369292536e-310, 1.1125369292535e-311, 5e-323])
@pytest.mark.parametrize("T", [2, 8, 40])
def test_subnormal_scale(scale: float, T: int) -> None:
    """At the subnormal scale round-off is absolute: the exact solution still passes (the
    underflow floor), a perturbed one still fails."""
    psi = np.full(T, scale)
    psi[0] = 0.0
    for method in ("exact", "away", "pairwise"):
        res = aggregate_violations(psi, scale, method=method)
        cert = certify_aggregation(psi, scale, res.weights)
        assert cert.ok and res.success, (method, cert)
        np.testing.assert_allclose(res.weights, [0.0] + [1 / (T - 1)] * (T - 1), atol=1e-14)
    batched = aggregate_violations(psi[None], scale).weights[0]
    assert certify_aggregation(psi, scale, batched).ok
    w = aggregate_violations(psi, scale).weights
    bad = _feasible_perturbation(psi, scale, w, 0.25)
    assert not certify_aggregation(psi, scale, bad).ok or scale < 1e-320
