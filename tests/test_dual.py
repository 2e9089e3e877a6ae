"""Tests of DualAscent (SPEC §5): the projected update, the running-mean option, tensor mode
without host transfers, exact state_dict round trips, repr, validation, and convergence of a
small primal-dual loop to the KKT point of a convex problem (checked by certify_primal_dual)."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairmt_opt import DualAscent, certify_primal_dual

torch = pytest.importorskip("torch")

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-4, 1e2, allow_nan=False, allow_infinity=False)


@given(positive, finite, st.floats(0, 1e3), st.lists(finite, min_size=1, max_size=20),
       st.one_of(st.just(float("inf")), st.floats(1e-3, 1e3)))
def test_batch_update_rule(rho: float, eps: float, eta0: float, phis: list[float],
                           eta_max: float) -> None:
    eta0 = min(eta0, eta_max)
    dual = DualAscent(rho, eps, eta=eta0, eta_max=eta_max)
    eta = eta0
    for p in phis:
        eta = min(eta_max, max(0.0, eta + rho * (p - eps)))
        assert dual.step(p) == eta == dual.eta
        assert 0.0 <= dual.eta <= eta_max
    assert dual.steps == len(phis)


@given(positive, finite, st.floats(0.0, 0.99), st.lists(finite, min_size=1, max_size=20))
def test_running_mean_update_rule(rho: float, eps: float, beta: float,
                                  phis: list[float]) -> None:
    dual = DualAscent(rho, eps, mode="running_mean", beta=beta)
    eta, mean = 0.0, None
    for p in phis:
        mean = p if mean is None else beta * mean + (1 - beta) * p
        eta = max(0.0, eta + rho * (mean - eps))
        assert dual.step(p) == eta
        assert dual.phi_mean == mean


def test_running_mean_smooths_noise() -> None:
    rng = np.random.default_rng(0)
    phis = 0.1 + 0.5 * rng.standard_normal(200)
    batch, smooth = DualAscent(0.1, 0.1), DualAscent(0.1, 0.1, mode="running_mean", beta=0.95)
    etas_b = [batch.step(p) for p in phis]
    etas_s = [smooth.step(p) for p in phis]
    assert np.std(np.diff(etas_s)) < np.std(np.diff(etas_b))


@pytest.mark.parametrize("mode", ["batch", "running_mean"])
def test_tensor_mode_matches_float_mode(device: str, mode: str) -> None:
    phis = [0.3, 0.05, 0.5, -0.2, 0.0]
    ref = DualAscent(0.5, 0.1, eta=0.2, eta_max=0.6, mode=mode)
    dual = DualAscent(0.5, 0.1, eta=0.2, eta_max=0.6, mode=mode)
    for p in phis:
        expected = ref.step(p)
        phi = torch.tensor(p, dtype=torch.float64, device=device, requires_grad=True)
        eta = dual.step(phi)
        assert isinstance(eta, torch.Tensor) and eta.ndim == 0 and eta.device == phi.device
        assert not eta.requires_grad
        assert float(eta) == pytest.approx(expected, abs=1e-15)
    assert dual.eta is eta
    # a float phi after tensors keeps eta a tensor on its device
    assert isinstance(dual.step(0.1), torch.Tensor)


def test_tensor_mode_performs_no_host_transfer(device: str) -> None:
    dual = DualAscent(0.5, 0.1)
    phi = torch.tensor(0.3, device=device)
    dual.step(phi)
    # every tensor update goes through tensor ops only: item(), tolist() and float() forbidden
    orig = (torch.Tensor.item, torch.Tensor.__float__, torch.Tensor.tolist,
            torch.Tensor.__bool__)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("host synchronisation")

    torch.Tensor.item = torch.Tensor.__float__ = boom  # type: ignore[method-assign]
    torch.Tensor.tolist = torch.Tensor.__bool__ = boom  # type: ignore[method-assign]
    try:
        for _ in range(3):
            dual.step(phi, check_finite=False)
    finally:
        (torch.Tensor.item, torch.Tensor.__float__, torch.Tensor.tolist,
         torch.Tensor.__bool__) = orig  # type: ignore[method-assign]
    assert float(dual.eta) == pytest.approx(0.4)
    with pytest.raises(AssertionError, match="host synchronisation"):
        torch.Tensor.__bool__ = boom  # type: ignore[method-assign]
        try:
            dual.step(phi)  # the default NaN check does synchronise
        finally:
            torch.Tensor.__bool__ = orig[3]  # type: ignore[method-assign]


@pytest.mark.parametrize("mode", ["batch", "running_mean"])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_state_dict_round_trip_exact(mode: str, as_tensor: bool) -> None:
    rng = np.random.default_rng(3)
    phis = rng.normal(0.2, 0.3, size=30)

    def conv(p: float) -> Any:
        return torch.tensor(p, dtype=torch.float64) if as_tensor else float(p)

    a = DualAscent(0.3, 0.1, eta=0.05, eta_max=2.0, mode=mode, beta=0.8)
    for p in phis[:10]:
        a.step(conv(p))
    state = a.state_dict()
    b = DualAscent(1.0, 0.0)
    b.load_state_dict(state)
    assert b.state_dict().keys() == state.keys()
    for key, value in b.state_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, state[key])
        else:
            assert value == state[key], key
    # continuing both gives bit-identical multipliers
    for p in phis[10:]:
        assert float(a.step(conv(p))) == float(b.step(conv(p)))
    # the saved state is a copy: later steps do not change it
    if as_tensor:
        assert state["eta"] is not a.eta
    assert repr(a) == repr(b)


def test_repr() -> None:
    dual = DualAscent(0.5, 0.05, eta=0.25, eta_max=10.0, mode="running_mean", beta=0.5)
    assert repr(dual) == (
        "DualAscent(rho=0.5, eps=0.05, eta=0.25, eta_max=10.0, mode='running_mean', beta=0.5)"
    )
    assert "eta_max=inf" in repr(DualAscent(1.0, 0.0))


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((0.0, 0.1), {}, "rho must be > 0"),
        ((-1.0, 0.1), {}, "rho must be > 0"),
        ((float("nan"), 0.1), {}, "rho must be finite"),
        ((1.0, float("inf")), {}, "eps must be finite"),
        ((1.0, "x"), {}, "eps must be a real number"),
        ((1.0, 0.1), {"eta": -0.1}, "eta must be >= 0"),
        ((1.0, 0.1), {"eta": 2.0, "eta_max": 1.0}, "eta must be <= eta_max"),
        ((1.0, 0.1), {"eta_max": 0.0}, "eta_max must be > 0"),
        ((1.0, 0.1), {"eta_max": float("nan")}, "eta_max must be > 0"),
        ((1.0, 0.1), {"mode": "ema"}, "mode must be one of"),
        ((1.0, 0.1), {"beta": 1.0}, r"beta must be in \[0, 1\)"),
    ],
)
def test_constructor_errors(args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DualAscent(*args, **kwargs)


def test_step_errors() -> None:
    dual = DualAscent(1.0, 0.1)
    for bad, match in [(float("nan"), "phi must be finite"), (float("inf"), "phi must be finite"),
                       (np.ones(2), "phi must be a scalar"), ("a", "phi must be a real number"),
                       (torch.tensor(float("nan")), "phi must be finite"),
                       (torch.ones(2), "phi must be a scalar")]:
        with pytest.raises(ValueError, match=match):
            dual.step(bad)
    assert dual.eta == 0.0 and dual.steps == 0  # failed steps change nothing
    with pytest.raises(ValueError, match="state is missing keys"):
        dual.load_state_dict({"rho": 1.0})
    state = dual.state_dict()
    state["rho"] = -1.0
    with pytest.raises(ValueError, match="rho must be > 0"):
        dual.load_state_dict(state)


def test_primal_dual_loop_reaches_kkt_point() -> None:
    """min_theta (theta - 2)^2  s.t.  Phi(theta) = theta <= 1: KKT point theta* = 1, eta* = 2.

    Gradient descent on the Lagrangian in theta with DualAscent on eta converges to it, and
    certify_primal_dual accepts the limit and rejects the start."""
    dual = DualAscent(rho=0.2, eps=1.0)
    theta = 0.0
    for _ in range(3000):
        phi = theta
        grad = 2 * (theta - 2) + dual.eta * 1.0
        theta -= 0.2 * grad
        dual.step(phi)
    assert theta == pytest.approx(1.0, abs=1e-8) and dual.eta == pytest.approx(2.0, abs=1e-7)
    cert = certify_primal_dual(np.array([[2 * (theta - 2)]]), np.array([1.0]), np.array([1.0]),
                               dual.eta, theta, 1.0)
    assert cert.ok, cert
    start = certify_primal_dual(np.array([[-4.0]]), np.array([1.0]), np.array([1.0]), 0.0, 0.0,
                                1.0)
    assert not start.ok and start.stationarity == 4.0


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("steps", "abc", r"state\['steps'\]: steps must be an integer"),
        ("steps", -1, r"state\['steps'\]: steps must be >= 0"),
        ("steps", 2.5, r"state\['steps'\]: steps must be an integer"),
        ("rho", "x", r"state\['rho'\]: rho must be a real number"),
        ("eps", float("nan"), r"state\['eps'\]: eps must be finite"),
        ("eta", -1.0, r"state\['eta'\]: eta must be >= 0"),
        ("eta", 5.0, r"state\['eta'\]: eta must be <= eta_max"),
        ("eta", "0.1", r"state\['eta'\]: eta must be a real number"),
        ("eta_max", 0.0, r"state\['eta_max'\]: eta_max must be > 0"),
        ("mode", 3, r"state\['mode'\]: mode must be one of"),
        ("beta", 1.5, r"state\['beta'\]: beta must be in \[0, 1\)"),
        ("phi_mean", "m", r"state\['phi_mean'\]: phi_mean must be a real number"),
        ("phi_mean", float("inf"), r"state\['phi_mean'\]: phi_mean must be finite"),
    ],
)
def test_load_state_dict_validates_every_field(key: str, value: Any, match: str) -> None:
    dual = DualAscent(0.5, 0.1, eta=0.5, eta_max=2.0, mode="running_mean")
    dual.step(0.3)
    before = dual.state_dict()
    state = dict(before)
    state[key] = value
    fresh = DualAscent(1.0, 0.0)
    with pytest.raises(ValueError, match=match):
        fresh.load_state_dict(state)
    assert fresh.state_dict() == DualAscent(1.0, 0.0).state_dict()  # nothing changed


def test_load_state_dict_rejects_unknown_keys_tensors_and_non_mappings() -> None:
    dual = DualAscent(1.0, 0.0)
    with pytest.raises(ValueError, match="unknown keys"):
        dual.load_state_dict({**dual.state_dict(), "extra": 1})
    with pytest.raises(ValueError, match="state must be a mapping"):
        dual.load_state_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"state\['eta'\]: eta must be a 0-d floating"):
        dual.load_state_dict({**dual.state_dict(), "eta": torch.ones(2)})
    state = {**dual.state_dict(), "steps": np.int64(7), "rho": np.float32(0.5)}
    dual.load_state_dict(state)
    assert dual.steps == 7 and type(dual.steps) is int and dual.rho == 0.5


@pytest.mark.parametrize("as_tensor", [False, True])
def test_eta_stays_finite_for_huge_phi(as_tensor: bool) -> None:
    """eta is clipped at the largest finite float of its dtype (inf with eta_max = inf)."""
    dual = DualAscent(1.0, 0.0)
    phi: Any = torch.tensor(3e38) if as_tensor else 1e308
    for _ in range(3):
        eta = dual.step(phi)
    top = float(torch.finfo(torch.float32).max) if as_tensor else sys.float_info.max
    assert float(eta) == top and math.isfinite(float(eta))
    dual.step(-phi)
    assert float(dual.step(-phi)) == 0.0  # and comes back down
    clipped = DualAscent(1.0, 0.0, eta_max=10.0)
    clipped.step(1e308)
    assert clipped.eta == 10.0


def test_numpy_scalars_accepted_strings_and_booleans_rejected() -> None:
    dual = DualAscent(np.float32(0.5), np.float64(0.1), eta=np.float16(0.25),
                      eta_max=np.float32(4.0), beta=np.float32(0.5))
    assert dual.rho == 0.5 and dual.eta_max == 4.0
    assert dual.step(np.float32(0.6)) == pytest.approx(0.5)
    for kwargs, match in [({"rho": "1"}, "rho must be a real number"),
                          ({"rho": True}, "rho must be a real number"),
                          ({"eta_max": "inf"}, "eta_max must be a real number"),
                          ({"eps": np.array([0.1])}, "eps must be a real number")]:
        args = {"rho": 1.0, "eps": 0.0, **kwargs}
        with pytest.raises(ValueError, match=match):
            DualAscent(args.pop("rho"), args.pop("eps"), **args)
