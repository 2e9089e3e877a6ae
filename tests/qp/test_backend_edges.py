"""External backends (cvxpy, daqp, proxsuite) behind ``solve_simplex_qp`` (issue #13): they
see the data divided by its scale, their answer is certified before ``success``, their
exceptions become a status with a message, and extreme scales, huge iteration budgets and
read-only arrays work."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

import fairmt_opt.qp._backends as qb
from fairmt_opt import certify_simplex_qp, solve_simplex_qp
from fairmt_opt.testing.qp_strategies import QPInstance, simplex_qps

pytest.importorskip("cvxpy", reason="the cvxpy backend tests need cvxpy")
pytest.importorskip("daqp", reason="the daqp backend tests need daqp")

BACKENDS = ["cvxpy", "daqp"]
FAKE = "daqp"  # the backend replaced by a fake in the monkeypatched tests


def _problem(T: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((T, 3))  # rank 3 of T: singular for T > 3
    return R @ R.T, 0.3 * rng.standard_normal(T)


def _rel_excess(K: np.ndarray, b: np.ndarray, x: Any, fstar: float, scale: float) -> float:
    x = np.asarray(x, dtype=np.float64)
    return (float(0.5 * x @ K @ x + b @ x) - fstar) / scale


@pytest.mark.parametrize("method", BACKENDS)
@pytest.mark.parametrize("s", [1e-300, 1e-12, 1e-9, 1.0, 1e9, 1e150, 1e300])
def test_backends_exact_at_every_scale(method: str, s: float) -> None:
    """Unscaled, cvxpy and daqp reported 'optimal' answers 4-23 % off on tiny data and cvxpy
    raised its SolverError at 1e150; on the rescaled data they agree with the exact solver."""
    K1, b1 = _problem()
    K, b = K1 * s, b1 * s
    exact = solve_simplex_qp(K1, b1)
    res = solve_simplex_qp(K, b, method=method)
    assert res.success and res.status == 0, res
    assert "certified" in res.message
    assert _rel_excess(K1, b1, res.x, exact.fun, float(np.abs(K1).max())) <= 1e-7
    assert certify_simplex_qp(K, b, res.x, rtol=1e-6).ok


@pytest.mark.parametrize("method", BACKENDS)
@pytest.mark.parametrize("s", [1e-12, 1e150])
def test_backends_see_the_data_divided_by_its_scale(method: str, s: float,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = getattr(qb, f"backend_{method}")

    def spy(K: np.ndarray, b: np.ndarray, *args: Any) -> Any:
        seen.append((K.copy(), b.copy()))
        return real(K, b, *args)

    monkeypatch.setattr(qb, f"backend_{method}", spy)
    K1, b1 = _problem()
    res = solve_simplex_qp(K1 * s, b1 * s, method=method)
    assert res.success
    (Ks, bs), = seen
    # (K, b - min b) / max(|K|, max(b - min b)): entries at most 1, the largest exactly 1
    assert max(float(np.abs(Ks).max()), float(bs.max())) == pytest.approx(1.0, rel=1e-15)
    assert float(bs.min()) == 0.0
    scale = max(float(np.abs(K1).max()), float(np.ptp(b1)))
    np.testing.assert_allclose(Ks, K1 / scale, rtol=1e-13)


def _fake(x: Any, status: int = 0, message: str = "fake optimal") -> Any:
    def backend(K: np.ndarray, b: np.ndarray, *args: Any) -> Any:
        return x, 7, status, message
    return backend


@pytest.mark.parametrize(
    ("x", "status", "expect", "words"),
    [
        # on the simplex but 1e-3 suboptimal: the certificate refuses it
        (np.array([0.4, 0.3, 0.3]), 0, 4, "exceeds"),
        # off the simplex
        (np.array([0.5, 0.5, 0.5]), 0, 4, "off the simplex"),
        # NaN or wrong length: no finite point, the barycentre instead
        (np.array([np.nan, 0.5, 0.5]), 0, 3, "no finite point"),
        (np.array([1.0, 0.0]), 0, 3, "no finite point"),
        (None, 0, 3, "no finite point"),
        # the backend's own failure keeps its status and message
        (np.full(3, 1 / 3), 3, 3, "fake optimal"),
    ],
)
def test_backend_answer_is_certified_before_success(
    x: Any, status: int, expect: int, words: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(qb, f"backend_{FAKE}", _fake(x, status))
    K = np.diag([1.0, 2.0, 3.0])
    res = solve_simplex_qp(K, method=FAKE)
    assert res.status == expect and not res.success, res
    assert words in res.message
    if expect == 3 and status == 0:
        np.testing.assert_array_equal(res.x, np.full(3, 1 / 3))
    # the exact optimum (6, 3, 2) / 11 passes through the same path
    monkeypatch.setattr(qb, f"backend_{FAKE}", _fake(np.array([6.0, 3.0, 2.0]) / 11))
    good = solve_simplex_qp(K, method=FAKE)
    assert good.success and good.status == 0 and "certified" in good.message


@pytest.mark.parametrize("method", BACKENDS)
def test_backend_exceptions_become_a_status(method: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import cvxpy

    def boom(*args: Any) -> Any:
        raise cvxpy.error.SolverError("Solver 'CLARABEL' failed. Try another solver.")

    monkeypatch.setattr(qb, f"backend_{method}", boom)
    res = solve_simplex_qp(np.eye(4), method=method)
    assert res.status == 3 and not res.success
    assert res.message.startswith(f"{method} raised SolverError: Solver 'CLARABEL' failed")
    assert "barycentre" in res.message
    np.testing.assert_array_equal(res.x, np.full(4, 0.25))

    def overflow(*args: Any) -> Any:
        raise OverflowError("Python int too large to convert to C int")

    monkeypatch.setattr(qb, f"backend_{method}", overflow)
    res = solve_simplex_qp(np.eye(4), method=method)
    assert res.status == 3 and "raised OverflowError" in res.message


def test_cvxpy_solver_error_inside_the_reference_is_a_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cvxpy

    from fairmt_opt import reference

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise cvxpy.error.SolverError("numerical trouble")

    monkeypatch.setattr(reference, "solve_simplex_qp", boom)
    res = solve_simplex_qp(1e150 * np.eye(3), method="cvxpy")
    assert res.status == 3 and "cvxpy raised SolverError: numerical trouble" in res.message


@pytest.mark.parametrize("max_iter", [2**31, 2**40, np.int64(2**40), np.uint64(2**63)])
def test_daqp_huge_iteration_budget(max_iter: Any) -> None:
    K, b = _problem()
    res = solve_simplex_qp(K, b, method="daqp", max_iter=max_iter)
    assert res.success and certify_simplex_qp(K, b, res.x, rtol=1e-9).ok


@pytest.mark.parametrize("method", BACKENDS)
def test_backends_read_only_and_non_contiguous_inputs(method: str) -> None:
    K, b = _problem(6, seed=2)
    Kf = np.asfortranarray(K)
    Kf.setflags(write=False)
    bb = np.repeat(b, 2)[::2]  # a strided view
    bb.setflags(write=False)
    res = solve_simplex_qp(Kf, bb, method=method)
    assert res.success, res
    assert certify_simplex_qp(K, b, res.x, rtol=1e-7).ok
    warm = np.full(6, 1 / 6)
    warm.setflags(write=False)
    assert solve_simplex_qp(Kf, bb, method=method, warm_start=warm).success
    assert not Kf.flags.writeable and not bb.flags.writeable


@pytest.mark.parametrize("method", BACKENDS)
def test_backends_on_degenerate_problems(method: str) -> None:
    # K = 0, b = 0: f constant, the backend sees zeros and any point certifies
    res = solve_simplex_qp(np.zeros((3, 3)), method=method)
    assert res.success and certify_simplex_qp(np.zeros((3, 3)), res.x).ok
    # rank one with ties: K = 1 1^T, the vertex of smallest b is the unique minimiser
    res = solve_simplex_qp(np.ones((4, 4)), np.array([0.2, 0.1, 0.2, 0.3]), method=method)
    assert res.success
    np.testing.assert_allclose(res.x, [0.0, 1.0, 0.0, 0.0], atol=1e-7)
    # T = 1 and T = 2
    assert np.asarray(solve_simplex_qp(np.array([[2.0]]), method=method).x).tolist() == [1.0]
    res = solve_simplex_qp(1e-9 * np.diag([2.0, 1.0]), method=method)
    np.testing.assert_allclose(res.x, [1 / 3, 2 / 3], rtol=1e-7)


def test_proxsuite_backend() -> None:
    pytest.importorskip("proxsuite", reason="proxsuite is not installed: its backend is "
                                            "untested here")
    K, b = _problem()
    for s in (1e-12, 1.0, 1e150):
        res = solve_simplex_qp(K * s, b * s, method="proxsuite")
        assert res.success and certify_simplex_qp(K * s, b * s, res.x, rtol=1e-7).ok


@pytest.mark.parametrize("method", BACKENDS)
@given(qp=simplex_qps(max_T=8, big_T=8))
@settings(max_examples=15, deadline=None)
def test_backends_agree_with_the_exact_solver(method: str, qp: QPInstance) -> None:
    exact = solve_simplex_qp(qp.K, qp.b)
    res = solve_simplex_qp(qp.K, qp.b, method=method)
    K = qp.K.astype(np.float64)
    b = np.zeros(qp.T) if qp.b is None else qp.b.astype(np.float64)
    scale = max(float(np.abs(K).max()), float(np.ptp(b)))
    if not res.success:  # a refusal must be honest: the point is not certified
        assert res.status in (3, 4)
        assert not certify_simplex_qp(K, b, np.asarray(res.x, dtype=np.float64)).ok or (
            res.status == 3)
        return
    if scale > 0.0:
        assert _rel_excess(K, b, res.x, float(exact.fun), scale) <= 1e-7, res
