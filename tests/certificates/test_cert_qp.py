"""certify_simplex_qp: exact values, the gap bound f(x) - f* <= gap, optimal points pass and
perturbed ones fail, scaling, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fairmt_opt import certify_simplex_qp, reference
from fairmt_opt.testing.qp_strategies import QPInstance, simplex_qps


def _n(default: int) -> int:
    """Example count: ``default`` under the default profile (60 examples), scaled with the
    loaded hypothesis profile (e.g. HYPOTHESIS_PROFILE=thorough)."""
    return max(1, default * settings.default.max_examples // 60)


def _f(K: np.ndarray, b: np.ndarray | None, x: np.ndarray) -> float:
    return float(0.5 * x @ K @ x + (0.0 if b is None else b @ x))


def _ref_point(qp: QPInstance) -> np.ndarray:
    K = qp.K.astype(np.float64)
    b = np.zeros(qp.T) if qp.b is None else qp.b.astype(np.float64)
    s = max(float(np.max(np.abs(K))), float(np.max(np.abs(b))), 1e-300)
    x = np.maximum(reference.solve_simplex_qp(K / s, b / s).x, 0.0)
    return x / x.sum()


def test_exact_values_by_hand() -> None:
    K = np.diag([2.0, 1.0])
    c = certify_simplex_qp(K, None, np.array([0.5, 0.5]))
    # g = (1, 0.5), lambda = 0.75, s = (0.25, -0.25); scale = max(1, 2, 0) = 2
    assert c.gap == pytest.approx(0.25)
    assert c.multiplier == pytest.approx(0.75)
    assert c.scale == 2.0
    assert c.kkt.primal == 0.0
    assert c.kkt.dual == pytest.approx(0.125)
    assert c.kkt.complementarity == pytest.approx(0.0625)
    assert c.fun == pytest.approx(0.375)
    assert not c.ok
    c = certify_simplex_qp(K, None, np.array([1 / 3, 2 / 3]))
    assert c.ok and c.gap <= 1e-15 and c.fun == pytest.approx(1 / 3)


@given(simplex_qps(max_T=15, big_T=40), st.integers(0, 2**32 - 1))
@settings(max_examples=_n(40))
def test_gap_bounds_suboptimality_at_any_feasible_point(qp: QPInstance, seed: int) -> None:
    K = qp.K.astype(np.float64)
    b = None if qp.b is None else qp.b.astype(np.float64)
    x = np.random.default_rng(seed).dirichlet(np.full(qp.T, 0.5))
    c = certify_simplex_qp(K, b, x)
    s = c.scale
    # >= 0 up to round-off, which is relative to the larger of K's and b's magnitudes
    assert c.gap >= -1e-15 * max(s, 0.0 if b is None else float(np.max(np.abs(b))))
    xr = _ref_point(qp)
    # f(xr) >= f*, hence f(x) - f(xr) <= f(x) - f* <= gap
    assert _f(K, b, x) - _f(K, b, xr) <= c.gap + 1e-9 * s
    assert c.fun == pytest.approx(_f(K, b, x), rel=1e-12, abs=1e-14 * s)


@given(simplex_qps(max_T=15, big_T=40))
@settings(max_examples=_n(40))
def test_reference_optimum_passes_and_perturbations_fail(qp: QPInstance) -> None:
    K = qp.K.astype(np.float64)
    b = None if qp.b is None else qp.b.astype(np.float64)
    x = _ref_point(qp)
    assert certify_simplex_qp(K, b, x, rtol=1e-6).ok  # conic solver accuracy
    # infeasible perturbations always fail (primal residual, dimensionless)
    assert not certify_simplex_qp(K, b, x + 1e-3 / qp.T, rtol=1e-6).ok
    y = x.copy()
    y[0] -= 1e-3 + y[0]
    y[1 % qp.T] += 1e-3 + x[0] if qp.T > 1 else 0.0
    assert not certify_simplex_qp(K, b, y, rtol=1e-6).ok
    # a feasible move of mass toward the worst coordinate fails whenever f is not flat
    g = K @ x + (0.0 if b is None else b)
    c = certify_simplex_qp(K, b, x)
    assume(float(g.max() - g.min()) > 1e-3 * c.scale)
    z = 0.9 * x
    z[int(np.argmax(g))] += 0.1
    assert not certify_simplex_qp(K, b, z, rtol=1e-6).ok


def test_scale_invariance() -> None:
    rng = np.random.default_rng(0)
    R = rng.standard_normal((6, 3))
    K, b = R @ R.T, rng.standard_normal(6)
    x = rng.dirichlet(np.ones(6))
    c1 = certify_simplex_qp(K, b, x)
    c2 = certify_simplex_qp(1e6 * K, 1e6 * b, x)
    assert c2.gap == pytest.approx(1e6 * c1.gap)
    assert c2.kkt.dual == pytest.approx(c1.kkt.dual * 1e6 * c1.scale / c2.scale)
    assert c2.kkt.primal == c1.kkt.primal


def test_default_rtol_follows_dtype_and_torch_inputs() -> None:
    K = np.diag([2.0, 1.0])
    assert certify_simplex_qp(K, None, np.array([1 / 3, 2 / 3])).rtol == pytest.approx(
        np.sqrt(np.finfo(np.float64).eps))
    c32 = certify_simplex_qp(K, None, np.array([1 / 3, 2 / 3], dtype=np.float32))
    assert c32.rtol == pytest.approx(np.sqrt(np.finfo(np.float32).eps)) and c32.ok
    torch = pytest.importorskip("torch")
    ct = certify_simplex_qp(torch.tensor(K), torch.zeros(2, dtype=torch.float64),
                            torch.tensor([1 / 3, 2 / 3], dtype=torch.float64))
    assert ct.ok and ct.gap <= 1e-15


def test_repr() -> None:
    text = repr(certify_simplex_qp(np.eye(2), None, np.array([0.5, 0.5])))
    assert text.startswith("QPCertificate(ok=True") and "KKTResiduals(primal=0" in text


@pytest.mark.parametrize(
    ("K", "b", "x", "kw", "match"),
    [
        (np.eye(2), None, np.array([0.5, np.nan]), {}, "x contains NaN"),
        (np.eye(2), None, np.array([1.0, 0.0, 0.0]), {}, "x must have length 2"),
        (np.eye(2), np.zeros(3), np.array([1.0, 0.0]), {}, "b must have length 2"),
        (np.array([[1.0, 1.0], [0.0, 1.0]]), None, np.array([1.0, 0.0]), {},
         "K must be symmetric"),
        (np.diag([1.0, -2.0]), None, np.array([1.0, 0.0]), {}, "K must be positive semidef"),
        (np.eye(2), None, np.array([1.0, 0.0]), {"rtol": -1.0}, "rtol must be >= 0"),
        (np.eye(2)[None], None, np.array([1.0, 0.0]), {}, "K must be 2-dimensional"),
        (np.eye(2), np.array([0.0, np.inf]), np.array([1.0, 0.0]), {}, "b contains inf"),
    ],
)
def test_invalid_inputs(K: np.ndarray, b: np.ndarray | None, x: np.ndarray, kw: dict,
                        match: str) -> None:
    with pytest.raises(ValueError, match=match):
        certify_simplex_qp(K, b, x, **kw)
