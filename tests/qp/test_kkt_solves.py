"""The subproblem solve of block pivoting (``_kkt._solve_on``): the Cholesky route of large
working sets against the LU of the KKT matrix, and the cases where it must step aside."""

from __future__ import annotations

import numpy as np
import pytest

from fairmt_opt import certify_simplex_qp, solve_simplex_qp
from fairmt_opt.qp import _kernel as _qp_kernel
from fairmt_opt.qp._kkt import _CHOL_MIN_K, _solve_on, _solve_on_chol, kkt_matrix
from fairmt_opt.qp._solve import record_working_sets


def _lu(K: np.ndarray, b: np.ndarray, F: np.ndarray) -> np.ndarray:
    rhs = np.concatenate([[1.0], -b[F]])
    return np.linalg.solve(kkt_matrix(K, F), rhs)


def _pd(T: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((T, 2 * T))
    K = R @ R.T
    return (0.5 * K + 0.5 * K.T) / float(np.abs(K).max())


@pytest.mark.parametrize("k", [_CHOL_MIN_K, 40, 90])
def test_cholesky_route_solves_the_kkt_system(k: int) -> None:
    K = _pd(k + 5, k)
    b = np.linspace(-0.1, 0.1, k + 5)
    F = np.arange(2, k + 2)
    z = _solve_on_chol(K, b, F)
    assert z is not None
    np.testing.assert_allclose(z, _lu(K, b, F), rtol=0, atol=1e-11)
    M = kkt_matrix(K, F)
    rhs = np.concatenate([[1.0], -b[F]])
    assert float(np.abs(M @ z - rhs).max()) <= 1e-12
    np.testing.assert_array_equal(_solve_on(K, b, F), z)  # the route taken from k on


def test_cholesky_route_steps_aside_where_k_ff_is_singular_or_ill_conditioned() -> None:
    k = 30
    ones = np.ones((k, k))
    b = np.zeros(k)
    F = np.arange(k)
    # identical tasks up to 1e-10: K_FF nearly rank one (pivots 1e-10, below the threshold)
    K = ones + 1e-10 * np.eye(k)
    assert _solve_on_chol(K, b, F) is None
    z = _solve_on(K, b, F)
    assert z is not None  # the LU of M_F: the symmetric answer to its conditioning (~1e11)
    np.testing.assert_allclose(z[1:], np.full(k, 1.0 / k), rtol=1e-4)
    # the same at a spread of 1e-4: pivots above the threshold, the Cholesky route's answer
    K4 = ones + 1e-4 * np.eye(k)
    z4 = _solve_on_chol(K4, b, F)
    assert z4 is not None
    np.testing.assert_allclose(z4[1:], np.full(k, 1.0 / k), rtol=1e-10)
    # rank-deficient K_FF (rank 5): not positive definite, the LU of M_F decides
    rng = np.random.default_rng(3)
    R = rng.standard_normal((k, 5))
    Ks = R @ R.T
    assert _solve_on_chol(Ks, b, F) is None
    z = _solve_on(Ks, b, F)
    if z is not None:  # M_F may be singular too; if it is solved, it is solved
        M = kkt_matrix(Ks, F)
        assert float(np.abs(M @ z - np.concatenate([[1.0], b])).max()) <= 1e-8
    # a non-finite or non-positive diagonal is refused, not propagated
    Kn = K.copy()
    Kn[3, 3] = np.nan
    assert _solve_on_chol(Kn, b, F) is None
    assert _solve_on_chol(-K, b, F) is None


@pytest.mark.skipif(_qp_kernel.KERNEL is None, reason="the compiled kernel is not built")
@pytest.mark.parametrize("T", [30, 60])
@pytest.mark.parametrize("spread", [1e-3, 1e-9])
def test_near_duplicate_tasks_kernel_and_python_agree(T: int, spread: float) -> None:
    # many tasks with almost the same gradient: the block solves meet a K_FF whose Cholesky
    # pivots fall below the threshold (the LU takes over) at the small spread
    rng = np.random.default_rng(T)
    g0 = rng.standard_normal(3 * T)
    G = g0[None, :] + spread * rng.standard_normal((T, 3 * T))
    K = G @ G.T
    K = 0.5 * K + 0.5 * K.T
    with record_working_sets() as fast_trace:
        fast = solve_simplex_qp(K)
    saved = _qp_kernel.KERNEL
    _qp_kernel.KERNEL = None
    try:
        with record_working_sets() as slow_trace:
            slow = solve_simplex_qp(K)
    finally:
        _qp_kernel.KERNEL = saved
    assert fast.success and slow.success
    assert certify_simplex_qp(K, None, fast.x).ok
    assert certify_simplex_qp(K, None, slow.x).ok
    np.testing.assert_allclose(fast.x, slow.x, rtol=0, atol=1e-9)
    assert fast_trace[0] == slow_trace[0]  # the same first block
