"""Tests of certify_primal_dual (SPEC §5): the four KKT residuals on constructed KKT points
and perturbations of each, scale invariance of the relative stationarity, no rescaling of
alpha, torch inputs, and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fairmt_opt import certify_primal_dual

torch = pytest.importorskip("torch")

elems = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@st.composite
def kkt_points(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """(G, grad Phi, alpha, eta, eps) with sum_t alpha_t G_t + eta grad Phi = 0 exactly in
    exact arithmetic: grad Phi is built as -(alpha^T G) / eta."""
    T = draw(st.integers(1, 6))
    p = draw(st.integers(1, 8))
    G = draw(hnp.arrays(np.float64, (T, p), elements=elems))
    alpha = np.asarray(draw(st.lists(st.floats(0.01, 5.0), min_size=T, max_size=T)))
    eta = draw(st.floats(0.1, 10.0))
    gphi = -(alpha @ G) / eta
    eps = draw(st.floats(-1.0, 1.0))
    return G, gphi, alpha, eta, eps


@given(kkt_points())
def test_kkt_point_is_accepted(pt: tuple[np.ndarray, np.ndarray, np.ndarray, float, float]) -> None:
    G, gphi, alpha, eta, eps = pt
    cert = certify_primal_dual(G, gphi, alpha, eta, eps, eps)  # active constraint: Phi = eps
    assert cert.ok, cert
    assert cert.primal_feasibility == cert.dual_feasibility == 0.0
    assert cert.complementary_slackness == 0.0
    assert cert.stationarity_rel <= 1e-12


@given(kkt_points(), st.floats(1e-3, 1.0))
def test_each_violation_is_detected(
    pt: tuple[np.ndarray, np.ndarray, np.ndarray, float, float], delta: float
) -> None:
    G, gphi, alpha, eta, eps = pt
    # primal infeasible: Phi above eps
    c = certify_primal_dual(G, gphi, alpha, eta, eps + delta, eps)
    assert not c.ok and c.primal_feasibility == pytest.approx(delta)
    assert c.complementary_slackness == pytest.approx(eta * delta)
    # complementary slackness broken: Phi strictly below eps with eta > 0
    c = certify_primal_dual(G, gphi, alpha, eta, eps - delta, eps)
    assert not c.ok and c.primal_feasibility == 0.0
    assert c.complementary_slackness == pytest.approx(eta * delta)
    # dual infeasible: negative eta (with the gradient flipped to keep stationarity)
    c = certify_primal_dual(G, -gphi, alpha, -eta, eps, eps)
    assert not c.ok and c.dual_feasibility == pytest.approx(eta)
    assert c.stationarity_rel <= 1e-12


@given(kkt_points(), st.floats(0.05, 1.0))
def test_stationarity_violation_is_detected(
    pt: tuple[np.ndarray, np.ndarray, np.ndarray, float, float], frac: float
) -> None:
    G, gphi, alpha, eta, eps = pt
    cert = certify_primal_dual(G, gphi * (1 + frac), alpha, eta, eps, eps)
    expected = frac * eta * np.linalg.norm(gphi)
    assert cert.stationarity == pytest.approx(expected, rel=1e-9, abs=1e-12)
    scale = alpha @ np.linalg.norm(G, axis=1) + eta * (1 + frac) * np.linalg.norm(gphi)
    if scale > 0:
        assert cert.stationarity_rel == pytest.approx(expected / scale, rel=1e-9, abs=1e-15)
    assert cert.ok == bool(cert.stationarity <= cert.rtol * max(1.0, float(scale)))


def test_relative_stationarity_is_scale_invariant_and_bounded() -> None:
    G = np.array([[1.0, 2.0], [0.5, -1.0]])
    gphi = np.array([0.3, 0.1])
    alpha = np.array([0.7, 0.3])
    a = certify_primal_dual(G, gphi, alpha, 0.4, 0.0, 0.1)
    b = certify_primal_dual(1e6 * G, 1e6 * gphi, alpha, 0.4, 0.0, 0.1)
    assert a.stationarity_rel == pytest.approx(b.stationarity_rel, rel=1e-12)
    assert b.stationarity == pytest.approx(1e6 * a.stationarity, rel=1e-12)
    assert 0.0 <= a.stationarity_rel <= 1.0
    # nothing cancels: relative residual 1
    same = certify_primal_dual(np.array([[1.0, 0.0]]), np.array([2.0, 0.0]), np.array([1.0]),
                               1.0, 0.0, 0.1)
    assert same.stationarity_rel == pytest.approx(1.0)


def test_alpha_is_used_as_given_not_rescaled() -> None:
    """Training uses alpha~ = T alpha by default: the caller passes that, it is not rescaled."""
    G = np.array([[1.0, 0.0], [0.0, 1.0]])
    alpha = np.array([0.5, 0.5])
    gphi = -(2 * alpha @ G) / 1.0  # stationary for alpha~ = T alpha with T = 2 and eta = 1
    assert certify_primal_dual(G, gphi, 2 * alpha, 1.0, 0.0, 0.0).ok
    wrong = certify_primal_dual(G, gphi, alpha, 1.0, 0.0, 0.0)
    assert not wrong.ok and wrong.stationarity == pytest.approx(np.sqrt(0.5))


def test_zero_gradients_and_inactive_constraint() -> None:
    cert = certify_primal_dual(np.zeros((3, 4)), np.zeros(4), np.ones(3) / 3, 0.0, -0.5, 0.1)
    assert cert.ok and cert.stationarity == 0.0 and cert.stationarity_rel == 0.0


def test_torch_inputs_and_repr(device: str) -> None:
    G = torch.tensor([[1.0, 0.0], [0.0, 1.0]], device=device)
    gphi = torch.tensor([-1.0, -1.0], device=device)
    alpha = torch.tensor([0.5, 0.5], device=device)
    cert = certify_primal_dual(G, gphi, alpha, torch.tensor(0.5, device=device),
                               torch.tensor(0.2, device=device), 0.2)
    assert cert.ok and isinstance(cert.stationarity, float)
    text = repr(cert)
    for part in ("PrimalDualCertificate(", "stationarity=0.0", "complementary_slackness=",
                 "ok=True"):
        assert part in text


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((np.ones(3), np.ones(3), np.ones(1), 0.0, 0.0, 0.0), {}, "task_grads must be 2-dim"),
        ((np.ones((2, 3)), np.ones(2), np.ones(2), 0.0, 0.0, 0.0), {},
         "fairness_grad must have length p"),
        ((np.ones((2, 3)), np.ones(3), np.ones(3), 0.0, 0.0, 0.0), {}, "alpha must have length T"),
        ((np.ones((2, 3)), np.ones(3), np.ones(2), np.ones(2), 0.0, 0.0), {},
         "eta must be a scalar"),
        ((np.ones((2, 3)), np.ones(3), np.ones(2), 0.0, float("nan"), 0.0), {},
         "phi contains NaN"),
        ((np.ones((2, 3)), np.ones(3), np.ones(2), 0.0, 0.0, float("inf")), {},
         "eps contains inf"),
        ((np.full((2, 3), np.nan), np.ones(3), np.ones(2), 0.0, 0.0, 0.0), {},
         "task_grads contains NaN"),
        ((np.ones((2, 3)), np.ones(3), np.ones(2), 0.0, 0.0, 0.0), {"rtol": -1.0},
         "rtol must be >= 0"),
        ((np.ones((2, 3)), np.ones(3), np.ones(2), "x", 0.0, 0.0), {}, "eta must be a real"),
    ],
)
def test_errors(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        certify_primal_dual(*args, **kwargs)


def test_mixed_types_raise() -> None:
    with pytest.raises(ValueError, match="mix torch tensors and other arrays"):
        certify_primal_dual(torch.ones(2, 3), np.ones(3), np.ones(2), 0.0, 0.0, 0.0)


def test_stationary_point_with_round_off_gradients_is_accepted() -> None:
    # every gradient is round-off: the relative residual is meaningless (0/0-like), the
    # absolute one is tiny, and the point is a KKT point of an inactive constraint (eta = 0)
    G = np.array([[1e-17, -2e-17], [3e-17, 1e-17]])
    cert = certify_primal_dual(G, np.zeros(2), np.array([1.0, 1.0]), 0.0, 0.01, 0.05)
    assert cert.stationarity_rel > 0.5
    assert cert.ok
    # a real stationarity violation of unit scale is still caught
    bad = certify_primal_dual(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2),
                              np.array([1.0, 1.0]), 0.0, 0.01, 0.05)
    assert not bad.ok
