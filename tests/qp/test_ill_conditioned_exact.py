"""active_set on ill-conditioned MGDA Gramians: the answer is exact, not only within ``tol``.

The Gramians K = R R^T have the singular values of R spread over 1e0..1e-6 (K over 1e0..1e-12),
so the optimal value is about 1e-12 of max|K|, the order of the default ``tol`` itself: a point
that passes the multiplier test at ``tol`` can still be off by 1e-3 in relative terms, and the
support is easily off by a few indices. The reference is quadprog (a dual method on the
Cholesky factor of the positive definite K), which does not share any code with fairmt; the
objective is read in extended precision, and the error is relative to the best objective found
(ours or the reference), with the floor 1e-15 max|K| of the benchmark."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from fairmt_opt import solve_simplex_qp
from fairmt_opt.qp import _kernel as _qp_kernel
from fairmt_opt.qp import _polish
from fairmt_opt.qp._solve import record_working_sets

quadprog = pytest.importorskip("quadprog")

#: (f - f_best) / max(f_best, 1e-15 max|K|) accepted as exact
TARGET = 1e-9
PATHS = ["kernel", "python"]


def _gramian(seed: int, T: int) -> np.ndarray:
    """K = R R^T, R = G diag(logspace(0, -6)) with rows scaled by lognormal norms."""
    rng = np.random.default_rng(seed)
    spread = np.logspace(0.0, -6.0, T)
    R = rng.standard_normal((T, T)) * spread[None, :] * np.exp(rng.standard_normal(T))[:, None]
    K = R @ R.T
    return 0.5 * (K + K.T)


def _objective(K: np.ndarray, x: np.ndarray) -> float:
    """x'Kx / 2 at the renormalised nonnegative part of x, summed in np.longdouble."""
    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    xl = (x / x.sum()).astype(np.longdouble)
    return float(0.5 * (xl @ (K.astype(np.longdouble) @ xl)))


def _quadprog(K: np.ndarray) -> np.ndarray:
    T = K.shape[0]
    C = np.hstack([np.ones((T, 1)), np.eye(T)])
    lower = np.concatenate([[1.0], np.zeros(T)])
    return np.asarray(quadprog.solve_qp(K, np.zeros(T), C, lower, 1)[0])


@contextmanager
def _on(path: str) -> Iterator[None]:
    """Solve through the compiled kernel or through the Python implementation only."""
    if path == "kernel" and _qp_kernel.KERNEL is None:
        pytest.skip(f"kernel: {_qp_kernel.LOAD_ERROR}")
    saved = _qp_kernel.KERNEL
    if path == "python":
        _qp_kernel.KERNEL = None
    try:
        yield
    finally:
        _qp_kernel.KERNEL = saved


def _relative_error(K: np.ndarray, path: str) -> float:
    with _on(path):
        res = solve_simplex_qp(K)
    assert res.success, res.message
    ours, ref = _objective(K, res.x), _objective(K, _quadprog(K))
    best = min(ours, ref)
    return (ours - best) / max(best, 1e-15 * float(np.abs(K).max()))


# the seeds are instances where the method without its polishing phase is off by 1e-8 to 1
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("T", "seed"), [(120, 0), (120, 2), (120, 4), (120, 5), (200, 0),
                                         (200, 1)])
def test_ill_conditioned_answer_is_exact(path: str, T: int, seed: int) -> None:
    err = _relative_error(_gramian(seed, T), path)
    assert err <= TARGET, err


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("T", "seed"), [(300, 11), (300, 13), (1000, 12)])
def test_ill_conditioned_answer_is_exact_large(path: str, T: int, seed: int) -> None:
    err = _relative_error(_gramian(seed, T), path)
    assert err <= TARGET, err


def test_polishing_is_what_makes_the_answer_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without its last phase (support polishing), the Python path stops at a point within
    tol that is off by more than the target; with it, exact."""
    K = _gramian(2, 120)
    exact = _relative_error(K, "python")
    monkeypatch.setattr(_polish, "polish_support", lambda K, b, x, **kw: (x, 0))
    assert exact <= TARGET < _relative_error(K, "python")


@pytest.mark.parametrize("T", [12, 60, 120])
def test_polishing_leaves_well_conditioned_answers_alone(T: int) -> None:
    """K positive definite and well conditioned: no multiplier is near the test, so the phase
    makes no step (the same working sets as the primal method alone) on both paths."""
    rng = np.random.default_rng(T)
    R = rng.standard_normal((T, 2 * T))
    K = R @ R.T
    for path in PATHS:
        with _on(path), record_working_sets() as sets:
            res = solve_simplex_qp(K)
        assert res.success
        support = tuple(int(i) for i in np.flatnonzero(np.asarray(res.x) > 0.0))
        assert sets[-1] == support and (len(sets) < 2 or sets[-2] != support), path


def test_loose_tolerance_keeps_the_point_within_tol() -> None:
    """A loose tol asks for a point within tol, not for the exact support: the polishing phase
    does not run, and the answer (certified within tol) is then not the exact one."""
    K = _gramian(2, 120)
    s = float(np.abs(K).max())
    with _on("python"):
        loose = solve_simplex_qp(K, tol=1e-11)
        tight = solve_simplex_qp(K)
    assert loose.success and loose.gap <= 1e-11 * s
    assert _objective(K, tight.x) < _objective(K, loose.x)


_POLISHED = re.compile(r"support polished: Frank-Wolfe gap (\S+) of the scale\)$")


@pytest.mark.parametrize(("T", "seed"), [(120, 0), (200, 0), (200, 1)])
def test_polished_message_quotes_the_returned_gap(T: int, seed: int) -> None:
    """When polishing moves the point, both paths say so and quote the gap of the point they
    return (round-off level here), not the larger one the refinement stopped at; the rest of
    the message is the refinement's, with its count of proximal-point steps."""
    K = _gramian(seed, T)
    s = float(np.abs(K).max())
    words = set()
    for path in PATHS:
        with _on(path):
            res = solve_simplex_qp(K)
        found = _POLISHED.search(res.message)
        assert res.success and found, res.message
        quoted, actual = float(found.group(1)), float(res.gap) / s
        assert quoted <= max(3.0 * actual, 1e-18) and actual <= max(3.0 * quoted, 1e-18)
        if "proximal-point steps" in res.message:
            assert int(res.message.split(" proximal-point steps")[0].split()[-1]) >= 1
        words.add(re.sub(r"\d[\d.e+-]*", "#", res.message))
    assert len(words) == 1, words


def _rel(K: np.ndarray, x: np.ndarray, ref: float) -> float:
    return (_objective(K, x) - ref) / max(ref, 1e-15 * float(np.abs(K).max()))


@pytest.mark.parametrize(("T", "seed"), [(60, 3), (120, 2), (200, 1)])
def test_block_entry_takes_other_steps_to_the_same_exact_answer(T: int, seed: int) -> None:
    """From the best vertex (every other index outside the working set), one index per step
    and a block of them per step visit different working sets; both end at the exact
    optimum (quadprog's objective to the target)."""
    K = _gramian(seed, T)
    Ks, b = K / float(np.abs(K).max()), np.zeros(T)
    x0 = np.zeros(T)
    x0[int(np.argmin(Ks.diagonal()))] = 1.0
    ref = _objective(K, _quadprog(K))
    runs = {}
    for block in (1, _polish.BLOCK_ENTRY):
        trace: list[tuple[int, ...]] = []
        x, nit = _polish.polish_support(Ks, b, x0, tol=1e-12, max_iter=50 * T, trace=trace,
                                        block=block)
        assert nit < 50 * T and _rel(K, x, ref) <= TARGET, (block, _rel(K, x, ref))
        runs[block] = trace
    one, many = runs[1], runs[_polish.BLOCK_ENTRY]
    assert _polish.BLOCK_ENTRY > 1 and one[0] == many[0] and one != many


@pytest.mark.parametrize(("T", "seed"), [(60, 1), (120, 0), (120, 4), (200, 0)])
def test_kernel_and_python_agree_on_ill_conditioned_gramians(T: int, seed: int) -> None:
    """Both paths return the same support and the same x to 1e-10 (the Gramian's small
    eigenvalues leave x determined to about that), both exact in objective."""
    K = _gramian(seed, T)
    ref = _objective(K, _quadprog(K))
    xs = []
    for path in ("kernel", "python"):
        with _on(path):
            res = solve_simplex_qp(K)
        assert res.success and _rel(K, np.asarray(res.x), ref) <= TARGET, path
        xs.append(np.asarray(res.x))
    assert np.array_equal(xs[0] > 0.0, xs[1] > 0.0)
    np.testing.assert_allclose(xs[0], xs[1], rtol=0, atol=1e-10)
