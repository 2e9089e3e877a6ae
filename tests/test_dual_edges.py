"""DualAscent at the edges of the float range and with NumPy scalar types (issue #13):
``DualAscent.step(1e308)`` twice gave eta = inf; every input is a number or a clear error."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmt_opt import DualAscent

FMAX = sys.float_info.max


@pytest.mark.parametrize("mode", ["batch", "running_mean"])
def test_step_1e308_twice_is_the_largest_float_not_inf(mode: str) -> None:
    dual = DualAscent(1.0, 0.0, mode=mode, beta=0.0)
    assert dual.step(1e308) == 1e308
    assert dual.step(1e308) == FMAX
    assert dual.step(FMAX) == FMAX  # stays there
    assert dual.step(-FMAX) == pytest.approx(0.0, abs=1e292)  # and can come back down


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16,
                                   torch.bfloat16])
def test_tensor_eta_clipped_at_its_dtype_max(dtype: torch.dtype) -> None:
    top = float(torch.finfo(dtype).max)
    dual = DualAscent(1.0, 0.0)
    phi = torch.tensor(top, dtype=dtype)
    for _ in range(3):
        eta = dual.step(phi)
    assert eta.dtype == dtype and float(eta) == top and math.isfinite(float(eta))


@pytest.mark.parametrize(("rho", "phi", "eps"), [(1e308, 10.0, 0.0), (FMAX, FMAX, -FMAX),
                                                 (1e-320, 1e308, 0.0)])
def test_huge_products_stay_finite(rho: float, phi: float, eps: float) -> None:
    dual = DualAscent(rho, eps)
    eta = dual.step(phi)
    assert math.isfinite(eta) and 0.0 <= eta <= FMAX
    assert dual.state_dict()["eta"] == eta


def test_eta_max_respected_above_the_float_range() -> None:
    dual = DualAscent(1.0, 0.0, eta_max=1e300)
    dual.step(1e308)
    assert dual.eta == 1e300
    inf_clip = DualAscent(1.0, 0.0, eta_max=np.float32(np.inf))
    inf_clip.step(1e308)
    inf_clip.step(1e308)
    assert inf_clip.eta == FMAX


@given(phis=st.lists(st.floats(-FMAX, FMAX), min_size=1, max_size=12),
       rho=st.floats(1e-300, FMAX), eps=st.floats(-FMAX, FMAX),
       mode=st.sampled_from(["batch", "running_mean"]), beta=st.floats(0.0, 0.99))
@settings(max_examples=200, deadline=None)
def test_eta_always_finite_and_in_range(phis: list[float], rho: float, eps: float, mode: str,
                                        beta: float) -> None:
    dual = DualAscent(rho, eps, mode=mode, beta=beta)  # type: ignore[arg-type]
    for p in phis:
        eta = dual.step(p)
        assert math.isfinite(eta) and 0.0 <= eta <= FMAX
    if mode == "running_mean":
        assert math.isfinite(dual.phi_mean)


@pytest.mark.parametrize(
    "kwargs",
    [{"rho": np.float32(0.5), "eps": np.int64(0)},
     {"rho": np.float16(0.5), "eps": np.float64(0.0), "eta": np.int8(0)},
     {"rho": 0.5, "eps": np.array(0.0), "eta_max": np.float32(10.0), "beta": np.float64(0.5)},
     {"rho": np.uint8(1) / 2, "eps": 0, "eta": np.array(0.0)}],
)
def test_numpy_scalars_wherever_a_number_is(kwargs: dict[str, Any]) -> None:
    dual = DualAscent(**kwargs)
    ref = DualAscent(0.5, 0.0)
    for phi in (np.float32(1.0), np.array(0.5), np.int64(2), np.float16(0.25), 1):
        assert dual.step(phi) == pytest.approx(ref.step(float(phi)))
    assert type(dual.eta) is float
    state = dual.state_dict()
    state.update(steps=np.int64(state["steps"]), eta=np.float32(0.5), rho=np.float64(0.5))
    clone = DualAscent(1.0, 0.0)
    clone.load_state_dict(state)
    assert clone.steps == 5 and type(clone.steps) is int and clone.eta == 0.5


@pytest.mark.parametrize(
    ("phi", "match"),
    [(True, "phi must be a real number"), (np.bool_(False), "phi must be a real number"),
     (np.array(True), "phi must be a real number"), (1 + 0j, "phi must be a real number"),
     ("0.5", "phi must be a real number"), (None, "phi must be a real number"),
     (np.ones(2), "phi must be a scalar"), (np.float64(np.nan), "phi must be finite"),
     (np.float32(np.inf), "phi must be finite"),
     (torch.tensor(True), "phi must be a real number"),
     (torch.tensor(1 + 1j), "phi must be a real number"),
     (torch.ones(1), "phi must be a scalar")],
)
def test_bad_phi_is_refused_and_changes_nothing(phi: Any, match: str) -> None:
    dual = DualAscent(0.5, 0.1, eta=0.25)
    with pytest.raises(ValueError, match=match):
        dual.step(phi)
    assert dual.eta == 0.25 and dual.steps == 0


def test_integer_tensor_phi_is_a_number() -> None:
    dual = DualAscent(0.5, 0.0)
    eta = dual.step(torch.tensor(2))
    assert eta.dtype == torch.float64 and float(eta) == 1.0
