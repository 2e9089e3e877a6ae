"""solve_simplex_qp: every method against the cvxpy reference and the certificate, on
adversarial instances (singular and rank-one K, duplicated rows, scales 1e-12..1e8, T = 1, 2)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmt_opt import certify_simplex_qp, reference, solve_simplex_qp
from fairmt_opt.qp._solve import DEFAULT_TOL
from fairmt_opt.testing.qp_strategies import QPInstance, simplex_qps


def _n(default: int) -> int:
    """Example count: ``default`` under the default profile (60 examples), scaled with the
    loaded hypothesis profile (e.g. HYPOTHESIS_PROFILE=thorough)."""
    return max(1, default * settings.default.max_examples // 60)


def _f(K: np.ndarray, b: np.ndarray | None, x: np.ndarray) -> float:
    K = np.asarray(K, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    lin = 0.0 if b is None else float(np.asarray(b, dtype=np.float64) @ x)
    return float(0.5 * x @ K @ x + lin)


def _scale(qp: QPInstance) -> float:
    K = qp.K.astype(np.float64)
    bs = 0.0 if qp.b is None else float(np.max(np.abs(qp.b.astype(np.float64))))
    return max(1.0, float(np.max(np.abs(K))), bs)


def _ref(qp: QPInstance) -> reference.ReferenceSolution:
    """cvxpy on the data divided by its scale (same minimisers; conic solvers dislike 1e-12)."""
    K = qp.K.astype(np.float64)
    b = np.zeros(qp.T) if qp.b is None else qp.b.astype(np.float64)
    s = max(float(np.max(np.abs(K))), float(np.max(np.abs(b))), 1e-300)
    return reference.solve_simplex_qp(K / s, b / s)


def _gap(K: np.ndarray, b: np.ndarray | None, x: np.ndarray) -> float:
    """FW gap of x after projecting it onto the simplex (cvxpy points are slightly off)."""
    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    x = x / x.sum()
    g = K.astype(np.float64) @ x + (0.0 if b is None else b.astype(np.float64))
    return float(x @ g - g.min()), x


def _check_against_reference(qp: QPInstance, x: np.ndarray, slack: float) -> None:
    """f(x) <= f(ref) + slack and ||R^T (x - x_ref)||^2 <= 2 (gap(x) + gap(ref)) + slack."""
    ref = _ref(qp)
    assert ref.status in ("optimal", "optimal_inaccurate")
    gref, xref = _gap(qp.K, qp.b, ref.x)
    fx, fref = _f(qp.K, qp.b, x), _f(qp.K, qp.b, xref)
    assert fx <= fref + slack, (fx, fref)
    gx, _ = _gap(qp.K, qp.b, x)
    du = qp.R.T @ (np.asarray(x, dtype=np.float64) - xref)
    assert float(du @ du) <= 2.0 * (gx + gref) + slack


# ------------------------------------------------------------------ active set (exact)
@given(simplex_qps(max_T=25, big_T=120))
@settings(max_examples=_n(60))
def test_active_set_matches_reference_and_certificate(qp: QPInstance) -> None:
    res = solve_simplex_qp(qp.K, qp.b)
    assert res.success, res
    assert res.status == 0
    x = np.asarray(res.x, dtype=np.float64)
    cert = certify_simplex_qp(qp.K, qp.b, x)
    assert cert.ok, (cert, res)
    # the exact solver is at least as good as cvxpy (up to round-off) and agrees on R^T x
    _check_against_reference(qp, x, slack=1e-9 * _scale(qp))
    # exact zeros off the support, reported active set is the support
    assert np.all(x >= 0.0)
    assert np.array_equal(res.active_set, np.flatnonzero(x > 0))
    assert res.fun == pytest.approx(_f(qp.K, qp.b, x), rel=1e-12, abs=1e-12 * _scale(qp))


@given(simplex_qps(max_T=25, big_T=60, dtypes=("float32",)))
@settings(max_examples=_n(25))
def test_active_set_float32_inputs(qp: QPInstance) -> None:
    res = solve_simplex_qp(qp.K, qp.b)
    assert res.x.dtype == np.float32
    assert res.success
    # solved in float64 on the float32 data: certified in float64 up to float32 rounding of x
    cert = certify_simplex_qp(qp.K.astype(np.float64),
                              None if qp.b is None else qp.b.astype(np.float64),
                              res.x.astype(np.float64), rtol=1e-5)
    assert cert.ok, cert


@pytest.mark.parametrize("T", [1, 2])
@given(data=st.data())
@settings(max_examples=_n(30))
def test_closed_forms_t1_t2(T: int, data: st.DataObject) -> None:
    qp = data.draw(simplex_qps(min_T=T, max_T=T, big_T=T))
    res = solve_simplex_qp(qp.K, qp.b)
    assert res.nit == 0 and res.success
    assert certify_simplex_qp(qp.K, qp.b, res.x).ok
    _check_against_reference(qp, res.x, slack=1e-9 * _scale(qp))


def test_t2_known_values() -> None:
    # segment between (1, 0) and (0, 2): alpha = (0.8, 0.2), f = 0.4
    res = solve_simplex_qp(np.diag([1.0, 4.0]))
    np.testing.assert_allclose(res.x, [0.8, 0.2], atol=1e-15)
    assert res.fun == pytest.approx(0.4, abs=1e-15)
    # identical tasks (zero curvature along the simplex): the vertex with the smaller b
    res = solve_simplex_qp(np.ones((2, 2)), np.array([0.3, 0.1]))
    np.testing.assert_array_equal(res.x, [0.0, 1.0])


def test_singular_k_no_ridge_exact() -> None:
    # rank one, b chosen so that the minimiser set is a segment; f* known in closed form
    r = np.array([[1.0], [2.0], [-1.0], [2.0]])
    K = r @ r.T
    b = np.array([0.0, 0.1, 0.3, 0.1])
    res = solve_simplex_qp(K, b)
    assert res.fun == pytest.approx(0.13875, abs=1e-15)
    assert res.gap <= 1e-15


def test_duplicated_tasks_and_all_equal_k() -> None:
    K = np.ones((5, 5))
    res = solve_simplex_qp(K)
    assert res.success and res.fun == pytest.approx(0.5, abs=1e-15)
    res = solve_simplex_qp(np.zeros((4, 4)))
    np.testing.assert_array_equal(res.x, np.full(4, 0.25))
    assert res.gap == 0.0


def test_common_descent_direction_p7() -> None:
    # SPEC P7: with b = 0, <r_t, d> >= ||d||^2 for every task, d = R^T alpha*
    rng = np.random.default_rng(3)
    R = rng.standard_normal((12, 5))
    res = solve_simplex_qp(R @ R.T)
    d = R.T @ res.x
    assert np.all(R @ d >= d @ d - 1e-12)


# ------------------------------------------------------------------ warm start
@given(simplex_qps(min_T=3, max_T=30, big_T=60, b_kinds=("zero", "random", "ties")),
       st.integers(0, 2**32 - 1))
@settings(max_examples=_n(40))
def test_warm_start_same_optimum_fewer_iterations(qp: QPInstance, seed: int) -> None:
    rng = np.random.default_rng(seed)
    R2 = qp.R + 1e-4 * np.sqrt(qp.scale) * rng.standard_normal(qp.R.shape)
    K2 = R2 @ R2.T
    K2 = 0.5 * (K2 + K2.T)
    first = solve_simplex_qp(qp.K, qp.b)
    cold = solve_simplex_qp(K2, qp.b)
    for ws in (first.x, first.active_set, first.x > 0, first):
        warm = solve_simplex_qp(K2, qp.b, warm_start=ws)
        assert warm.success
        s = max(1.0, float(np.max(np.abs(K2))), 0.0 if qp.b is None else float(np.abs(qp.b).max()))
        assert warm.fun == pytest.approx(cold.fun, abs=1e-10 * s)
        assert certify_simplex_qp(K2, qp.b, warm.x).ok
    if qp.rank == "full" and qp.conditioning == "well" and qp.b_kind != "ties":
        # unique, well-separated optimum: the previous support is (nearly) right
        warm = solve_simplex_qp(K2, qp.b, warm_start=first.x)
        assert warm.nit <= cold.nit


def test_warm_start_strictly_fewer_iterations_training_loop() -> None:
    rng = np.random.default_rng(0)
    R = rng.standard_normal((40, 60))
    K = R @ R.T
    first = solve_simplex_qp(K)
    R2 = R + 1e-4 * rng.standard_normal(R.shape)
    cold = solve_simplex_qp(R2 @ R2.T)
    warm = solve_simplex_qp(R2 @ R2.T, warm_start=first.x)
    assert warm.nit == 0 < cold.nit
    assert warm.fun == pytest.approx(cold.fun, rel=1e-12)


def test_warm_start_wrong_support_still_exact() -> None:
    rng = np.random.default_rng(1)
    R = rng.standard_normal((15, 4))  # rank 4: many supports are singular
    K = R @ R.T
    b = rng.standard_normal(15)
    cold = solve_simplex_qp(K, b)
    for ws in (np.arange(15), np.array([0]), np.arange(15) % 2 == 0):
        warm = solve_simplex_qp(K, b, warm_start=ws)
        assert warm.fun == pytest.approx(cold.fun, abs=1e-12)


# ------------------------------------------------------------------ Frank-Wolfe family
@pytest.mark.parametrize("method", ["frank_wolfe", "away", "pairwise"])
@given(qp=simplex_qps(max_T=20, big_T=40))
@settings(max_examples=_n(30))
def test_fw_family_certified_at_reported_gap(method: str, qp: QPInstance) -> None:
    res = solve_simplex_qp(qp.K, qp.b, method=method)
    x = np.asarray(res.x, dtype=np.float64)
    assert abs(x.sum() - 1.0) <= 1e-12 and np.all(x >= 0)
    assert res.nit <= {"frank_wolfe": 250, "away": 1000, "pairwise": 1000}[method]
    cert = certify_simplex_qp(qp.K, qp.b, x, rtol=1.0)
    s = _scale(qp)
    # the reported gap is the certificate's gap, and it bounds the suboptimality
    assert cert.gap == pytest.approx(res.gap, rel=1e-6, abs=1e-12 * s)
    ref = _ref(qp)
    gref, xref = _gap(qp.K, qp.b, ref.x)
    assert _f(qp.K, qp.b, x) - _f(qp.K, qp.b, xref) <= res.gap + gref + 1e-10 * s
    # it passes the certificate at its reported gap
    assert certify_simplex_qp(qp.K, qp.b, x, rtol=max(1e-8, 1.01 * res.gap / cert.scale)).ok \
        or cert.kkt.complementarity > 1.01 * res.gap / cert.scale
    if res.success:
        assert res.gap <= DEFAULT_TOL[method] * s * 1.0001 + 1e-300


def test_frank_wolfe_mgda_budget_and_counted_iterations() -> None:
    rng = np.random.default_rng(0)
    R = rng.standard_normal((30, 30)) * np.logspace(0, -4, 30)
    K = R @ R.T
    res = solve_simplex_qp(K, method="frank_wolfe")
    exact = solve_simplex_qp(K)
    assert res.nit == 250 and res.status == 1 and not res.success
    assert "iteration limit" in res.message
    assert res.fun - exact.fun <= res.gap
    assert res.gap > 0
    # away / pairwise converge linearly on a strongly convex instance, vanilla FW does not
    R = rng.standard_normal((30, 60))
    K, b = R @ R.T, rng.standard_normal(30)
    exact = solve_simplex_qp(K, b)
    fw = solve_simplex_qp(K, b, method="frank_wolfe", max_iter=2000)
    assert fw.status == 1 and fw.gap > 1e-4
    for m in ("away", "pairwise"):
        r = solve_simplex_qp(K, b, method=m)
        assert r.success and r.nit < 1000
        assert r.fun - exact.fun <= r.gap <= 1e-10 * np.abs(K).max()


def test_fw_exact_line_search_one_step_on_segment() -> None:
    # T = 2 from the barycentre: exact line search reaches the optimum in one step
    res = solve_simplex_qp(np.diag([1.0, 4.0]), method="frank_wolfe", tol=1e-14, max_iter=5)
    assert res.fun == pytest.approx(0.4, abs=1e-15)
    assert res.nit == 1 and res.success


# ------------------------------------------------------------------ APG (batched, native)
@given(st.lists(simplex_qps(min_T=5, max_T=5, big_T=5, b_kinds=("zero", "random"),
                            scales=(1e-3, 1.0, 1e3)), min_size=1, max_size=4))
@settings(max_examples=_n(20))
def test_apg_batched_equals_per_instance(qps: list[QPInstance]) -> None:
    K = np.stack([q.K for q in qps])
    b = np.stack([np.zeros(5) if q.b is None else q.b for q in qps])
    batch = solve_simplex_qp(K, b, method="apg", max_iter=300)
    assert batch.x.shape == (len(qps), 5) and batch.status == 2
    for i, q in enumerate(qps):
        one = solve_simplex_qp(q.K, b[i], method="apg", max_iter=300)
        np.testing.assert_allclose(batch.x[i], one.x, atol=1e-12)
        assert float(batch.gap[i]) == pytest.approx(float(one.gap), abs=1e-12 * _scale(q))
        cert = certify_simplex_qp(q.K, b[i], one.x, rtol=1.0)
        assert cert.gap == pytest.approx(float(one.gap), rel=1e-6, abs=1e-12 * _scale(q))
        ex = solve_simplex_qp(q.K, b[i])
        assert float(one.fun) - ex.fun <= float(one.gap) + 1e-12 * _scale(q)


def test_apg_converges_on_well_conditioned() -> None:
    rng = np.random.default_rng(0)
    R = rng.standard_normal((3, 10, 12))
    K = R @ np.swapaxes(R, -1, -2)
    res = solve_simplex_qp(K, method="apg", max_iter=2000)
    for i in range(3):
        ex = solve_simplex_qp(K[i])
        assert float(res.fun[i]) == pytest.approx(ex.fun, rel=1e-9)
    assert np.all(res.gap <= 1e-8 * np.abs(K).max())
    assert np.all(res.active_set == (res.x > 0))


def test_apg_batch_shape_leading_axes() -> None:
    rng = np.random.default_rng(2)
    R = rng.standard_normal((2, 3, 4, 4))
    K = R @ np.swapaxes(R, -1, -2)
    res = solve_simplex_qp(K, rng.standard_normal((2, 3, 4)), method="apg", max_iter=50)
    assert res.x.shape == (2, 3, 4) and res.fun.shape == (2, 3) and res.kkt.dual.shape == (2, 3)
    np.testing.assert_allclose(res.x.sum(-1), 1.0, atol=1e-12)


# ------------------------------------------------------------------ backends
def test_daqp_backend_agrees() -> None:
    pytest.importorskip("daqp")
    rng = np.random.default_rng(5)
    for rank in (12, 4):
        R = rng.standard_normal((12, rank))
        K = R @ R.T
        b = 0.1 * rng.standard_normal(12)
        d = solve_simplex_qp(K, b, method="daqp")
        a = solve_simplex_qp(K, b)
        assert d.success, d
        assert d.fun == pytest.approx(a.fun, abs=1e-8)
        assert a.fun <= d.fun + 1e-12


def test_cvxpy_backend_agrees() -> None:
    rng = np.random.default_rng(6)
    R = rng.standard_normal((6, 3))
    res = solve_simplex_qp(R @ R.T, method="cvxpy")
    assert res.success and res.fun == pytest.approx(solve_simplex_qp(R @ R.T).fun, abs=1e-8)


@pytest.mark.parametrize("name", ["daqp", "proxsuite"])
def test_missing_backend_import_error(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=f"pip install {name}"):
        solve_simplex_qp(np.eye(3), method=name)  # type: ignore[arg-type]


# ------------------------------------------------------------------ torch
@pytest.mark.parametrize("method", ["active_set", "pairwise", "apg"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_inputs_return_torch(method: str, dtype: str, device: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    R = rng.standard_normal((6, 6))
    K = R @ R.T
    b = 0.1 * rng.standard_normal(6)
    tdt = getattr(torch, dtype)
    Kt = torch.tensor(K, dtype=tdt, device=device)
    bt = torch.tensor(b, dtype=tdt, device=device)
    res = solve_simplex_qp(Kt, bt, method=method, max_iter=3000)  # type: ignore[arg-type]
    assert isinstance(res.x, torch.Tensor)
    assert res.x.dtype == tdt and res.x.device.type == device
    ex = solve_simplex_qp(K, b)
    tol = 1e-5 if dtype == "float32" else 1e-9
    assert float(res.fun) == pytest.approx(ex.fun, abs=tol * 10)
    assert certify_simplex_qp(Kt, bt, res.x, rtol=1e-3 if dtype == "float32" else 1e-6).ok


def test_torch_apg_no_validation_stays_native(device: str) -> None:
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    R = torch.randn(8, 5, 7, generator=g, dtype=torch.float64).to(device)
    K = R @ R.transpose(-1, -2)
    res = solve_simplex_qp(K, method="apg", max_iter=100, check_input=False)
    assert res.x.device.type == device and res.gap.device.type == device
    assert res.x.shape == (8, 5)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("K", "b", "kw", "match"),
    [
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), None, {}, "K contains NaN"),
        (np.array([[1.0, np.inf], [np.inf, 1.0]]), None, {}, "K contains inf"),
        (np.eye(3), np.array([0.0, np.nan, 0.0]), {}, "b contains NaN"),
        (np.ones((2, 3)), None, {}, "K must be square"),
        (np.ones(3), None, {}, "K must have at least 2"),
        (np.ones((2, 3, 3)), None, {}, "K must be 2-dimensional"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), None, {}, "K must be symmetric"),
        (np.diag([1.0, -1.0, 2.0]), None, {}, "K must be positive semidefinite"),
        (np.eye(3), np.zeros(4), {}, r"b must have shape \(3,\)"),
        (np.eye(3), None, {"tol": -1.0}, "tol must be >= 0"),
        (np.eye(3), None, {"max_iter": 0}, "max_iter must be >= 1"),
        (np.eye(3), None, {"max_iter": 2.5}, "max_iter must be an integer"),
        (np.eye(3), None, {"method": "simplex"}, "method must be one of"),
        (np.eye(3), None, {"warm_start": np.array([0, 5])}, r"warm_start indices must lie"),
        (np.eye(3), None, {"warm_start": np.ones(4)}, "warm_start point must have length 3"),
        (np.eye(3), None, {"warm_start": np.zeros(3)}, "warm_start point must have a positive"),
        (np.eye(3), None, {"warm_start": np.ones((3, 3))}, "warm_start must be 1-dimensional"),
        (np.zeros((0, 0)), None, {}, "K must not be empty"),
        (np.eye(3), None, {"check_input": 1}, "check_input must be a bool"),
    ],
)
def test_invalid_input_messages(K: np.ndarray, b: np.ndarray | None, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        solve_simplex_qp(K, b, **kw)


def test_small_negative_roundoff_eigenvalue_accepted() -> None:
    rng = np.random.default_rng(0)
    R = rng.standard_normal((20, 3))
    K = R @ R.T
    K -= 1e-13 * np.eye(20)  # round-off sized, not "clearly" negative
    assert solve_simplex_qp(K).success


# ------------------------------------------------------------------ result object
def test_result_repr_and_fields() -> None:
    res = solve_simplex_qp(np.diag([1.0, 4.0, 9.0]))
    text = repr(res)
    for field in ("method='active_set'", "success=True", "fun=", "gap=", "nit=", "x=[",
                  "active_set=[0, 1, 2]", "KKTResiduals("):
        assert field in text
    assert res.kkt.max() <= 1e-15
    with pytest.raises(AttributeError, match="immutable"):
        res.x = np.zeros(3)  # type: ignore[misc]


def test_lazy_fields_use_the_data_at_solve_time() -> None:
    K = np.diag([1.0, 4.0, 9.0])
    b = np.array([0.0, 0.1, 0.2])
    res = solve_simplex_qp(K, b)
    K[:] = 0.0  # the caller reuses its buffers before reading the lazy fields
    b[:] = 5.0
    ref = certify_simplex_qp(np.diag([1.0, 4.0, 9.0]), np.array([0.0, 0.1, 0.2]), res.x)
    assert res.fun == pytest.approx(ref.fun, rel=1e-14)
    assert res.gap == pytest.approx(ref.gap, abs=1e-15)


def test_read_only_and_non_contiguous_inputs() -> None:
    rng = np.random.default_rng(4)
    R = rng.standard_normal((7, 7))
    K = np.asfortranarray(R @ R.T)
    K.setflags(write=False)
    b = np.arange(14.0)[::2] * 0.01
    res = solve_simplex_qp(K, b)
    assert certify_simplex_qp(K, b, res.x).ok
    assert not K.flags.writeable


def test_external_backend_off_the_simplex_is_not_reported_as_success(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backend that answers 'optimal' with an infeasible point must not pass as success."""
    import fairmt_opt.qp._backends as qb
    import fairmt_opt.qp._solve as sq

    def fake(K: np.ndarray, b: np.ndarray, *args: object) -> tuple[np.ndarray, int, int, str]:
        return np.array([0.5, 0.5 + 1e-6, 0.0]), 3, 0, "fake optimal"

    monkeypatch.setattr(qb, "backend_daqp", fake)
    res = sq.solve_simplex_qp(np.eye(3), method="daqp")
    assert not res.success and res.status == 4 and "off the simplex" in res.message

    def fake_ok(K: np.ndarray, b: np.ndarray, *args: object) -> tuple[np.ndarray, int, int, str]:
        return np.full(3, 1.0 / 3.0), 3, 0, "fake optimal"  # the optimum: certified

    monkeypatch.setattr(qb, "backend_daqp", fake_ok)
    assert sq.solve_simplex_qp(np.eye(3), method="daqp").success
