"""Slow checks of solve_simplex_qp: large T (up to 500), more examples, every method."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmt_opt import certify_simplex_qp, reference, solve_simplex_qp
from fairmt_opt.testing.qp_strategies import QPInstance, simplex_qps


def _n(default: int) -> int:
    """Example count: ``default`` under the default profile (60 examples), scaled with the
    loaded hypothesis profile (e.g. HYPOTHESIS_PROFILE=thorough)."""
    return max(1, default * settings.default.max_examples // 60)

pytestmark = pytest.mark.slow


def _f(K: np.ndarray, b: np.ndarray | None, x: np.ndarray) -> float:
    return float(0.5 * x @ K @ x + (0.0 if b is None else b @ x))


def _ref_point(K: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    bb = np.zeros(K.shape[0]) if b is None else b
    s = max(float(np.max(np.abs(K))), float(np.max(np.abs(bb))), 1e-300)
    x = np.maximum(reference.solve_simplex_qp(K / s, bb / s).x, 0.0)
    return x / x.sum()


@given(simplex_qps(min_T=3, max_T=200, big_T=500))
@settings(max_examples=_n(60))
def test_active_set_large_against_reference(qp: QPInstance) -> None:
    res = solve_simplex_qp(qp.K, qp.b)
    assert res.success, res
    assert certify_simplex_qp(qp.K, qp.b, res.x).ok
    xr = _ref_point(qp.K, qp.b)
    s = max(1.0, float(np.abs(qp.K).max()), 0.0 if qp.b is None else float(np.abs(qp.b).max()))
    assert res.fun <= _f(qp.K, qp.b, xr) + 1e-9 * s
    g = qp.K @ xr + (0.0 if qp.b is None else qp.b)
    gap_ref = float(xr @ g - g.min())
    du = qp.R.T @ (res.x - xr)
    assert float(du @ du) <= 2.0 * (res.gap + gap_ref) + 1e-9 * s


@pytest.mark.parametrize("method", ["away", "pairwise", "frank_wolfe"])
@given(qp=simplex_qps(min_T=3, max_T=150, big_T=300))
@settings(max_examples=_n(30))
def test_fw_family_large_gap_is_certified(method: str, qp: QPInstance) -> None:
    res = solve_simplex_qp(qp.K, qp.b, method=method)  # type: ignore[arg-type]
    cert = certify_simplex_qp(qp.K, qp.b, res.x, rtol=1.0)
    s = cert.scale
    assert cert.gap == pytest.approx(res.gap, rel=1e-6, abs=1e-12 * s)
    ex = solve_simplex_qp(qp.K, qp.b)
    assert res.fun - ex.fun <= res.gap + 1e-12 * s
    assert res.fun >= ex.fun - 1e-12 * s


@given(st.lists(simplex_qps(min_T=8, max_T=8, big_T=8, b_kinds=("zero", "random")),
                min_size=2, max_size=16))
@settings(max_examples=_n(20))
def test_apg_batched_gap_bounds_suboptimality(qps: list[QPInstance]) -> None:
    K = np.stack([q.K for q in qps])
    b = np.stack([np.zeros(8) if q.b is None else q.b for q in qps])
    res = solve_simplex_qp(K, b, method="apg", max_iter=1000)
    for i, q in enumerate(qps):
        ex = solve_simplex_qp(q.K, b[i])
        s = max(1.0, float(np.abs(q.K).max()), float(np.abs(b[i]).max()))
        assert float(res.fun[i]) - ex.fun <= float(res.gap[i]) + 1e-12 * s
        assert float(res.fun[i]) >= ex.fun - 1e-12 * s


@pytest.mark.parametrize("T", [200, 500])
def test_active_set_large_gram_and_warm_start(T: int) -> None:
    rng = np.random.default_rng(T)
    R = rng.standard_normal((T, T // 2)) * np.exp(rng.standard_normal(T))[:, None]
    K = R @ R.T
    b = 0.01 * rng.standard_normal(T) * float(np.mean(np.diag(K)))
    res = solve_simplex_qp(K, b)
    assert res.success and certify_simplex_qp(K, b, res.x).ok
    dq = pytest.importorskip("daqp")
    del dq
    d = solve_simplex_qp(K, b, method="daqp")
    assert res.fun <= d.fun + 1e-10 * max(1.0, abs(d.fun))
    R2 = R + 1e-4 * rng.standard_normal(R.shape)
    K2 = R2 @ R2.T
    warm = solve_simplex_qp(K2, b, warm_start=res)
    cold = solve_simplex_qp(K2, b)
    assert warm.fun == pytest.approx(cold.fun, rel=1e-10, abs=1e-12)
    assert warm.nit <= cold.nit
