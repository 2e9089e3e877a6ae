"""The compiled active-set kernel (fairmt_opt/qp/_qpkernel.c) against the Python implementation,
cvxpy and the certificate; the fallback when it is missing or fails; that it is used when built.

Set FAIRMT_OPT_NO_KERNEL=1 to run without the kernel (the tests that need it are then skipped,
the fallback tests still run)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fairmt_opt import certify_simplex_qp, reference, solve_simplex_qp
from fairmt_opt.certificates._qp import FULL_CHECK_T
from fairmt_opt.qp import _kernel as _qp_kernel
from fairmt_opt.qp._solve import record_working_sets
from fairmt_opt.testing.qp_strategies import QPInstance, simplex_qps

KERNEL = _qp_kernel.KERNEL
DISABLED = bool(os.environ.get("FAIRMT_OPT_NO_KERNEL"))
needs_kernel = pytest.mark.skipif(KERNEL is None, reason=f"kernel: {_qp_kernel.LOAD_ERROR}")


def _n(default: int) -> int:
    return max(1, default * settings.default.max_examples // 60)


@contextmanager
def _record() -> Iterator[list[int]]:
    """Record the return codes of every kernel call made inside the block."""
    assert KERNEL is not None
    codes: list[int] = []
    raw = KERNEL.solve_ctx

    def wrapped(*args: object) -> int:
        code = int(raw(*args))
        codes.append(code)
        return code

    KERNEL.solve_ctx = wrapped  # type: ignore[assignment]
    try:
        yield codes
    finally:
        KERNEL.solve_ctx = raw


@contextmanager
def _python_only() -> Iterator[None]:
    saved = _qp_kernel.KERNEL
    _qp_kernel.KERNEL = None
    try:
        yield
    finally:
        _qp_kernel.KERNEL = saved


def _raw(K: np.ndarray, b: np.ndarray | None = None, check: bool = True,
         rtol: float = 1e-8) -> int:
    """Return code of one direct kernel call (no fallback), with the input checks that
    ``solve_simplex_qp`` asks for at this size (flag 4 up to ``FULL_CHECK_T``, else 8)."""
    assert KERNEL is not None
    T = K.shape[0]
    buf = KERNEL.buffers(T)
    buf.K[...] = K
    buf.ptrs[0] = buf.kaddr
    flags = (4 if T <= FULL_CHECK_T else 8) if check else 0
    if b is not None:
        buf.b[...] = b
        flags |= 1
    return int(KERNEL.solve(buf.ctx, T, 1e-12, 50 * T + 1000, flags, 1e-10, rtol))


def _fval(K: np.ndarray, b: np.ndarray | None, x: np.ndarray) -> float:
    return float(0.5 * x @ K @ x + (0.0 if b is None else b @ x))


def _scale(K: np.ndarray, b: np.ndarray | None) -> float:
    return max(1.0, float(np.abs(K).max()), 0.0 if b is None else float(np.abs(b).max()))


# ------------------------------------------------------------------ built and used
def test_kernel_built_loaded_and_used() -> None:
    """A silently broken build (no shared object, or one that does not load) fails here."""
    if DISABLED:
        pytest.skip("FAIRMT_OPT_NO_KERNEL is set")
    if _qp_kernel.kernel_path() is None and not _qp_kernel.c_compiler_available():
        pytest.skip("no C compiler on this machine: the optional kernel cannot be built, the "
                    "pure-Python active set answers (tested by the fallback tests)")
    assert _qp_kernel.kernel_path() is not None, "the compiled kernel was not built"
    assert KERNEL is not None, _qp_kernel.LOAD_ERROR
    rng = np.random.default_rng(0)
    R = rng.standard_normal((12, 30))
    with _record() as codes:
        res = solve_simplex_qp(R @ R.T, rng.standard_normal(12))
    assert codes == [0]
    assert res.success and res.message == "optimal"


@needs_kernel
def test_kernel_validation_codes_and_messages() -> None:
    """The kernel's own checks reject bad data; the Python path then words the error."""
    good = np.diag([1.0, 2.0, 3.0])
    assert _raw(good) == 0
    cases = [
        (np.array([[1.0, np.nan, 0], [np.nan, 1.0, 0], [0, 0, 1.0]]), None, -1, "K contains NaN"),
        (np.array([[1.0, np.inf, 0], [np.inf, 1.0, 0], [0, 0, 1.0]]), None, -1, "K contains inf"),
        (good, np.array([0.0, np.nan, 0.0]), -2, "b contains NaN"),
        (good, np.array([0.0, -np.inf, 0.0]), -2, "b contains inf"),
        (np.array([[1.0, 0.5, 0], [0.0, 1.0, 0], [0, 0, 1.0]]), None, -3, "K must be symmetric"),
        (np.diag([1.0, -1.0, 2.0]), None, -4, "K must be positive semidefinite"),
    ]
    for K, b, code, match in cases:
        assert _raw(K, b) == code
        with pytest.raises(ValueError, match=match):
            solve_simplex_qp(K, b)
    # the Cholesky pre-check pivots in pairs: a negative pivot at every position, and a dense
    # indefinite K, are caught
    rng = np.random.default_rng(1)
    for T in (3, 4, 5, 6):
        for i in range(T):
            d = np.ones(T)
            d[i] = -1e-3
            Q, _ = np.linalg.qr(rng.standard_normal((T, T)))
            for K in (np.diag(d), (Q * d) @ Q.T):
                K = 0.5 * (K + K.T)
                assert _raw(K) == -4
                with pytest.raises(ValueError, match="K must be positive semidefinite"):
                    solve_simplex_qp(K)
    # a round-off sized negative eigenvalue passes the kernel's shifted Cholesky
    R = np.random.default_rng(0).standard_normal((20, 3))
    assert _raw(R @ R.T - 1e-13 * np.eye(20)) == 0
    # f constant on the simplex: left to the Python path (code 3)
    assert _raw(np.zeros((4, 4)), np.full(4, 2.0)) == 3


# ------------------------------------------------------------------ kernel == Python == cvxpy
@needs_kernel
@given(simplex_qps(min_T=3, max_T=25, big_T=120))
@settings(max_examples=_n(50))
def test_kernel_and_python_agree_with_cvxpy(qp: QPInstance) -> None:
    K = qp.K.astype(np.float64)
    b = None if qp.b is None else qp.b.astype(np.float64)
    with _record() as codes:
        fast = solve_simplex_qp(K, b)
    with _python_only():
        slow = solve_simplex_qp(K, b)
    assert codes and codes[0] >= 0  # valid data never fails the kernel's checks
    if codes[0] == 0:
        assert "optimal" in fast.message
    s = _scale(K, b)
    for res in (fast, slow):
        assert res.success, res
        x = np.asarray(res.x)
        assert np.all(x >= 0.0) and abs(x.sum() - 1.0) <= 1e-13 * qp.T
        assert certify_simplex_qp(K, b, x).ok
    # same optimum; R^T x is unique: |R^T (x1 - x2)|^2 <= 2 (gap1 + gap2)
    assert fast.fun == pytest.approx(slow.fun, abs=1e-10 * s)
    du = qp.R.T @ (np.asarray(fast.x) - np.asarray(slow.x))
    assert float(du @ du) <= 2.0 * (fast.gap + slow.gap) + 1e-10 * s
    # cvxpy on the data divided by its scale (same minimisers)
    sc = max(float(np.abs(K).max()), 0.0 if b is None else float(np.abs(b).max()), 1e-300)
    ref = reference.solve_simplex_qp(K / sc, np.zeros(qp.T) if b is None else b / sc)
    xr = np.maximum(ref.x, 0.0)
    xr /= xr.sum()
    assert fast.fun <= _fval(K, b, xr) + 1e-9 * s


@needs_kernel
@given(simplex_qps(min_T=3, max_T=30, big_T=60, b_kinds=("zero", "random", "ties")),
       st.integers(0, 2**32 - 1))
@settings(max_examples=_n(30))
def test_kernel_warm_start_agrees_with_python(qp: QPInstance, seed: int) -> None:
    rng = np.random.default_rng(seed)
    R2 = qp.R + 1e-4 * np.sqrt(qp.scale) * rng.standard_normal(qp.R.shape)
    K2 = 0.5 * (R2 @ R2.T + (R2 @ R2.T).T)
    b = None if qp.b is None else qp.b.astype(np.float64)
    first = solve_simplex_qp(qp.K.astype(np.float64), b)
    with _record() as codes:
        warm = solve_simplex_qp(K2, b, warm_start=first.x)
    with _python_only():
        warm_py = solve_simplex_qp(K2, b, warm_start=first.x)
    assert codes and codes[0] >= 0
    assert warm.success and warm_py.success
    assert warm.fun == pytest.approx(warm_py.fun, abs=1e-10 * _scale(K2, b))
    assert certify_simplex_qp(K2, b, warm.x).ok


@needs_kernel
def test_kernel_used_on_singular_and_ill_conditioned_k() -> None:
    """Zero-curvature steps (rank-deficient K) and the proximal refinement (eigenvalues over
    1e0..1e-12) run inside the kernel, with certified answers."""
    rng = np.random.default_rng(3)
    for T in (10, 40, 100):
        norms = np.exp(rng.standard_normal(T))[:, None]
        R_sing = rng.standard_normal((T, max(1, T // 4))) * norms
        R_ill = rng.standard_normal((T, T)) * np.logspace(0, -6, T)[None, :] * norms
        for R, b in ((R_sing, 0.3 * rng.standard_normal(T)), (R_ill, np.zeros(T))):
            K = R @ R.T
            with _record() as codes:
                res = solve_simplex_qp(K, b)
            assert codes == [0], codes
            assert res.success and certify_simplex_qp(K, b, res.x).ok
            with _python_only():
                ref = solve_simplex_qp(K, b)
            assert res.fun == pytest.approx(ref.fun, abs=1e-10 * _scale(K, b))


@needs_kernel
def test_kernel_inputs_layouts_options_and_threads() -> None:
    rng = np.random.default_rng(5)
    R = rng.standard_normal((9, 9))
    K = R @ R.T
    b = rng.standard_normal(18)[::2]  # non-contiguous
    Kf = np.asfortranarray(K)
    Kf.setflags(write=False)
    with _record() as codes:
        r1 = solve_simplex_qp(Kf, b)
        r2 = solve_simplex_qp(K, b, check_input=False, tol=1e-10, max_iter=500)
        r3 = solve_simplex_qp(K, b, warm_start=r1)  # a previous result
    assert codes == [0, 0, 0]
    for r in (r1, r2, r3):
        assert r.success and certify_simplex_qp(K, b, r.x).ok
    assert r3.nit == 0
    # work buffers are per thread: concurrent solves of the same size give the same answers
    Ks = [(lambda A: A @ A.T)(rng.standard_normal((30, 40))) for _ in range(8)]
    expect = [solve_simplex_qp(k).x for k in Ks]
    out: dict[int, list[np.ndarray]] = {}

    def work(i: int) -> None:
        out[i] = [solve_simplex_qp(k).x for k in Ks for _ in range(20)][::20]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        for x, e in zip(out[i], expect):
            np.testing.assert_array_equal(x, e)


# ------------------------------------------------------------------ fallback
def test_fallback_without_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """No kernel (not built): the Python path answers, certified, with the same messages."""
    monkeypatch.setattr(_qp_kernel, "KERNEL", None)
    rng = np.random.default_rng(7)
    R = rng.standard_normal((15, 4))
    K, b = R @ R.T, rng.standard_normal(15)
    res = solve_simplex_qp(K, b)
    assert res.success and certify_simplex_qp(K, b, res.x).ok
    with pytest.raises(ValueError, match="K must be positive semidefinite"):
        solve_simplex_qp(np.diag([1.0, -1.0, 2.0]))
    with pytest.raises(ValueError, match="b contains NaN"):
        solve_simplex_qp(np.eye(3), np.array([0.0, np.nan, 0.0]))


@needs_kernel
@pytest.mark.parametrize("code", [1, 2, 3])
def test_fallback_when_kernel_fails(code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernel that reports anything but a verified optimum hands over to Python."""
    assert KERNEL is not None
    calls: list[int] = []

    def failing(*args: object) -> int:
        calls.append(1)
        return code

    monkeypatch.setattr(KERNEL, "solve_ctx", failing)
    rng = np.random.default_rng(8)
    R = rng.standard_normal((20, 6))
    K, b = R @ R.T, rng.standard_normal(20)
    res = solve_simplex_qp(K, b)
    assert calls == [1]
    assert res.success and certify_simplex_qp(K, b, res.x).ok
    monkeypatch.undo()
    assert solve_simplex_qp(K, b).fun == pytest.approx(res.fun, abs=1e-12 * _scale(K, b))


def test_loader_refuses_stale_or_disabled_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared object older than its C source (edited, not rebuilt) is not loaded, and the
    environment variable turns the kernel off; both leave the Python path in charge."""
    so = tmp_path / "_qpkernel.so"
    src = tmp_path / "_qpkernel.c"
    so.write_bytes(b"")
    src.write_text("/* newer */")
    os.utime(so, (1_000_000, 1_000_000))
    monkeypatch.delenv("FAIRMT_OPT_NO_KERNEL", raising=False)
    monkeypatch.setattr(_qp_kernel, "kernel_path", lambda: so)
    kern, why = _qp_kernel._load()
    assert kern is None and "older than" in why
    monkeypatch.setenv("FAIRMT_OPT_NO_KERNEL", "1")
    kern, why = _qp_kernel._load()
    assert kern is None and "FAIRMT_OPT_NO_KERNEL" in why


# ------------------------------------------------------------------ same algorithm, same steps
def _traced(K: Any, b: Any = None, **kw: Any) -> tuple[Any, list[tuple[int, ...]]]:
    with record_working_sets() as trace:
        res = solve_simplex_qp(K, b, **kw)
    return res, list(trace)


def _instance(rng: np.random.Generator, T: int, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    norms = np.exp(rng.standard_normal(T))[:, None]
    if kind in ("pd", "biased", "sparse"):
        R = rng.standard_normal((T, 2 * T)) * norms
    elif kind == "singular":
        R = rng.standard_normal((T, max(1, T // 4))) * norms
    else:  # ill-conditioned: eigenvalues over 1e0..1e-12
        R = rng.standard_normal((T, T)) * np.logspace(0, -6, T)[None, :] * norms
    K = R @ R.T
    mean = float(np.mean(K.diagonal()))
    b = {"biased": 0.3 * mean * rng.standard_normal(T),
         "sparse": 3.0 * mean * rng.standard_normal(T),
         "singular": 0.3 * mean * rng.standard_normal(T)}.get(kind)
    return K, b


@needs_kernel
@pytest.mark.parametrize("T", [3, 4, 7, 12, 25, 60, 120, 200])
@pytest.mark.parametrize("kind", ["pd", "biased", "sparse"])
def test_kernel_takes_the_python_steps(T: int, kind: str) -> None:
    """K positive definite (unique solution): the kernel visits the same working sets as the
    Python reference, in the same order, makes the same number of changes and returns the
    same x to round-off."""
    rng = np.random.default_rng(17 * T + len(kind))
    for _ in range(3 if T <= 60 else 1):
        K, b = _instance(rng, T, kind)
        with _record() as codes:
            fast, tr_fast = _traced(K, b)
        with _python_only():
            slow, tr_slow = _traced(K, b)
        assert codes == [0]
        assert tr_fast == tr_slow and len(tr_fast) >= 1
        assert fast.nit == slow.nit and fast.message == slow.message
        np.testing.assert_allclose(fast.x, slow.x, rtol=0, atol=1e-12)


@needs_kernel
@pytest.mark.parametrize("T", [5, 20, 60, 150])
@pytest.mark.parametrize("kind", ["singular", "ill"])
def test_kernel_and_python_agree_on_degenerate_problems(T: int, kind: str) -> None:
    """Singular or ill-conditioned K (zero-curvature steps, bans, the proximal refinement):
    the same optimum (objective, R^T x); the steps agree too unless round-off in the sums
    tips a near-tie, which is allowed here."""
    rng = np.random.default_rng(5 * T + len(kind))
    for _ in range(3):
        K, b = _instance(rng, T, kind)
        with _record() as codes:
            fast, _ = _traced(K, b)
        with _python_only():
            slow, _ = _traced(K, b)
        assert codes == [0]
        assert fast.success and slow.success
        s = _scale(K, b)
        assert fast.fun == pytest.approx(slow.fun, abs=1e-12 * s)
        assert certify_simplex_qp(K, b, fast.x).ok


@needs_kernel
def test_kernel_takes_the_python_steps_from_a_warm_start() -> None:
    rng = np.random.default_rng(11)
    for T in (6, 30, 90):
        K, b = _instance(rng, T, "biased")
        first = solve_simplex_qp(K, b)
        R = np.linalg.cholesky(K) + 1e-2 * rng.standard_normal((T, T))
        K2 = R @ R.T
        with _record() as codes:
            fast, tr_fast = _traced(K2, b, warm_start=first.x)
        with _python_only():
            slow, tr_slow = _traced(K2, b, warm_start=first.x)
        assert codes == [0]
        assert tr_fast == tr_slow and fast.nit == slow.nit
        np.testing.assert_allclose(fast.x, slow.x, rtol=0, atol=1e-12)


@needs_kernel
def test_kernel_reads_torch_cpu_tensors() -> None:
    """torch CPU tensors reach the kernel (float64 read in place, float32 converted once) and
    come back in their dtype; the steps are the Python path's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    K, b = _instance(rng, 40, "biased")
    assert b is not None
    ref, tr_ref = _traced(K, b)
    for dtype in (torch.float64, torch.float32):
        Kt = torch.tensor(K, dtype=dtype, requires_grad=True)
        bt = torch.tensor(b, dtype=dtype)
        with _record() as codes:
            res, tr = _traced(Kt, bt, warm_start=None)
        with _python_only():
            slow, tr_slow = _traced(Kt, bt)
        assert codes == [0]
        assert isinstance(res.x, torch.Tensor) and res.x.dtype == dtype
        assert tr == tr_slow and res.nit == slow.nit
        torch.testing.assert_close(res.x, slow.x, rtol=0, atol=1e-12 if dtype == torch.float64
                                   else 1e-6)
        if dtype == torch.float64:
            assert tr == tr_ref
            np.testing.assert_allclose(res.x.numpy(), ref.x, rtol=0, atol=1e-12)
        with _record() as codes:  # a torch warm start
            warm = solve_simplex_qp(Kt, bt, warm_start=res.x)
        assert codes == [0] and warm.nit == 0


def test_python_path_records_its_steps() -> None:
    """Without the kernel too: a block step from the best vertex solves this instance."""
    with _python_only():
        res, trace = _traced(np.diag([1.0, 2.0, 4.0]))
    assert res.success and res.nit == 0 and trace == [(0, 1, 2)]


def test_ill_conditioned_k_rebuilds_and_refinement_steps_are_bounded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ill-conditioned K (the Python reference, whose steps the kernel takes): the KKT inverse
    is rebuilt about once per max(60, |F|) updates, not again at every update once a rebuild
    was refused; block pivoting gives up at its first slow step; the proximal refinement stops
    within a few steps once its gap is within 5 tol. Every answer is certified."""
    from fairmt_opt.qp import _active_set

    counts = {"inverse": 0, "block": 0}
    inverse, block = _active_set._kkt_inverse, _active_set._solve_on

    def count_inverse(*args: Any) -> Any:
        counts["inverse"] += 1
        return inverse(*args)

    def count_block(*args: Any) -> Any:
        counts["block"] += 1
        return block(*args)

    monkeypatch.setattr(_active_set, "_kkt_inverse", count_inverse)
    monkeypatch.setattr(_active_set, "_solve_on", count_block)
    rng = np.random.default_rng(2104)
    with _python_only():
        for T in (80, 200):
            for _ in range(2):
                counts.update(inverse=0, block=0)
                K, b = _instance(rng, T, "ill")
                res = solve_simplex_qp(K, b)
                assert res.success and certify_simplex_qp(K, b, res.x).ok
                assert counts["inverse"] <= 6 + res.nit // 60, (counts, res.nit)
                assert counts["block"] <= 3, counts
                if "proximal-point steps" in res.message:
                    outer = int(res.message.split(" proximal-point steps")[0].split()[-1])
                    assert outer <= 60, res.message


# ------------------------------------------------------------------ the kernel's input checks
@needs_kernel
@pytest.mark.parametrize("T", [5, 80])  # the Cholesky check, and the O(T^2) + curvature checks
def test_kernel_checks_are_relative_to_the_scale(T: int) -> None:
    """The kernel's symmetry and PSD checks read max|K| with no absolute floor: the same
    verdict at every scale, and the same as the Python checks (the error worded there)."""
    rng = np.random.default_rng(40 + T)
    R = rng.standard_normal((T, T))
    A = R @ R.T / T
    A = 0.5 * (A + A.T)
    E = np.zeros((T, T))
    E[0, 1] = 1e-6 * float(np.abs(A).max())  # 100 times the float64 tolerance 1e-8
    neg = A.copy()
    neg[0, 0] = -1e-2 * float(np.abs(A).max())  # clearly indefinite, seen at every T
    for s in (1e-20, 1.0, 1e20):
        assert _raw(s * A) == 0
        assert _raw(s * (A + E)) == -3
        with pytest.raises(ValueError, match="K must be symmetric"):
            solve_simplex_qp(s * (A + E))
        code = _raw(s * neg)
        assert code in (-4, -5)
        with _record() as codes, pytest.raises(ValueError, match="positive semidefinite"):
            solve_simplex_qp(s * neg)
        assert codes == [code]
        # a round-off sized asymmetry and negative eigenvalue pass, relative to the scale
        tiny = s * (A + 1e-12 * E - 1e-13 * float(np.abs(A).max()) * np.eye(T))
        assert _raw(tiny) == 0


@needs_kernel
def test_kernel_large_t_checks_agree_with_python() -> None:
    """Above FULL_CHECK_T the kernel runs the O(T^2) conditions of check_symmetric_psd and
    check_curvature_at at its solution: on indefinite K of several kinds it rejects exactly
    when the Python checks do, at the stage they do (-4 before the solve, -5 after)."""
    from fairmt_opt.certificates._qp import check_curvature_at, check_symmetric_psd

    rng = np.random.default_rng(77)
    T = FULL_CHECK_T + 16
    seen = set()
    for trial in range(24):
        R = rng.standard_normal((T, T // 2))
        K = R @ R.T
        kind = trial % 3
        if kind == 0:  # a negative diagonal entry
            K[trial % T, trial % T] = -1e-3 * float(np.abs(K).max())
        elif kind == 1:  # a large off-diagonal pair: a negative 2 x 2 minor
            i, j = rng.choice(T, 2, replace=False)
            K[i, j] = K[j, i] = 3.0 * float(np.abs(K).max())
        else:  # a negative direction, seen or not by the 2 x 2 minors and at the solution
            v = rng.standard_normal(T)
            K = K - (1.0 + rng.uniform(0.0, 1.0)) * float(np.linalg.eigvalsh(K).max()) * \
                np.outer(v, v) / float(v @ v) * rng.uniform(0.0, 1.5)
        K = 0.5 * (K + K.T)
        b = rng.standard_normal(T)
        try:
            check_symmetric_psd(K, "K")
        except ValueError:
            expected = -4
        else:
            res = solve_simplex_qp(K, b, check_input=False)
            try:
                check_curvature_at(K, np.asarray(res.x), "K")
            except ValueError:
                expected = -5
            else:
                expected = 0
        assert _raw(K, b) == expected, (trial, expected)
        seen.add(expected)
        if expected:
            with pytest.raises(ValueError, match="positive semidefinite"):
                solve_simplex_qp(K, b)
    assert {-4, -5} <= seen


@needs_kernel
def test_kernel_checks_use_the_callers_dtype() -> None:
    """float32 data are checked with float32's tolerance (7.6e-6 relative) in the kernel, as
    the Python path checks them; the same values in float64 are rejected (1e-8)."""
    torch = pytest.importorskip("torch")
    for T in (6, 70):
        rng = np.random.default_rng(T)
        R = rng.standard_normal((T, 2 * T))
        K = R @ R.T
        K[0, 1] += 1e-6 * float(np.abs(K).max())  # between the two tolerances
        K32 = K.astype(np.float32)
        assert float(np.abs(K32 - K32.T).max()) > 1e-8 * float(np.abs(K32).max())
        for Kin in (K32, torch.from_numpy(K32)):
            with _record() as codes:
                res = solve_simplex_qp(Kin)
            assert codes == [0] and res.success and res.x.dtype == Kin.dtype
        with _record() as codes, pytest.raises(ValueError, match="K must be symmetric"):
            solve_simplex_qp(K32.astype(np.float64))
        assert codes == [-3]


@needs_kernel
def test_torch_cpu_float64_is_read_in_place() -> None:
    """A CPU float64 contiguous K and b reach the kernel by address (zero-copy, even with
    requires_grad); the b address is restored for the next NumPy call; x comes back as a
    torch tensor sharing the result's float64 buffer."""
    torch = pytest.importorskip("torch")
    assert KERNEL is not None
    rng = np.random.default_rng(3)
    for T in (5, 40, 90):
        K, b = _instance(rng, T, "biased")
        assert b is not None
        Kt = torch.tensor(K, requires_grad=True)
        bt = torch.tensor(b)
        buf = KERNEL.buffers(T)
        seen: list[tuple[int, int]] = []
        raw = KERNEL.solve_ctx

        def spy(*args: Any, buf: Any = buf, seen: list[tuple[int, int]] = seen,
                raw: Any = raw) -> int:
            seen.append((int(buf.ptrs[0]), int(buf.ptrs[1])))
            return int(raw(*args))

        KERNEL.solve_ctx = spy  # type: ignore[assignment]
        try:
            res = solve_simplex_qp(Kt, bt)
        finally:
            KERNEL.solve_ctx = raw
        assert seen == [(Kt.data_ptr(), bt.data_ptr())]
        assert (int(buf.ptrs[0]), int(buf.ptrs[1])) == (buf.kaddr, buf.baddr)
        assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
        np.testing.assert_allclose(res.x.numpy(), solve_simplex_qp(K, b).x, rtol=0, atol=1e-12)
        assert res.fun == pytest.approx(solve_simplex_qp(K, b).fun, rel=1e-12, abs=1e-300)


def test_torch_t2_closed_form() -> None:
    """T = 1, 2 torch float64 tensors take the closed form (same answer and fields as NumPy),
    with x in torch; float32 and other cases keep the general path's answer."""
    torch = pytest.importorskip("torch")
    K = np.array([[2.0, 1.0], [1.0, 3.0]])
    b = np.array([0.5, 0.0])
    for bb in (None, b):
        ref = solve_simplex_qp(K, bb)
        res = solve_simplex_qp(torch.from_numpy(K), None if bb is None else torch.from_numpy(bb))
        assert isinstance(res.x, torch.Tensor) and res.x.dtype == torch.float64
        assert res.message == ref.message == "optimal (closed form, T = 2)"
        np.testing.assert_array_equal(res.x.numpy(), ref.x)
        assert res.fun == ref.fun and res.gap == ref.gap
    r1 = solve_simplex_qp(torch.tensor([[4.0]]))
    assert isinstance(r1.x, torch.Tensor) and r1.x.tolist() == [1.0] and r1.fun == 2.0
    r32 = solve_simplex_qp(torch.from_numpy(K).float())
    assert r32.x.dtype == torch.float32
    np.testing.assert_allclose(r32.x.numpy(), solve_simplex_qp(K).x, atol=1e-6)
    with pytest.raises(ValueError, match="K must be symmetric"):
        solve_simplex_qp(torch.tensor([[1.0, 0.5], [0.0, 1.0]], dtype=torch.float64))


@needs_kernel
def test_kernel_call_rewrites_changed_arguments() -> None:
    """``QPKernel.call`` (one-argument entry point, arguments kept in the buffers) returns what
    the seven-argument entry point returns, also when the arguments change between calls."""
    assert KERNEL is not None
    rng = np.random.default_rng(8)
    K, b = _instance(rng, 9, "biased")
    bad = K.copy()
    bad[0, 1] += 1e-3 * float(np.abs(K).max())
    for Kc, flags, tol, max_iter in ((K, 5, 1e-12, 1450), (bad, 5, 1e-12, 1450),
                                     (bad, 1, 1e-12, 1450), (K, 5, 1e-9, 1), (K, 5, 1e-12, 1450)):
        buf = KERNEL.buffers(9)
        buf.K[...] = Kc
        buf.ptrs[0] = buf.kaddr
        buf.b[...] = b
        one = KERNEL.call(buf, tol, max_iter, flags, 1e-10, 1e-8)
        x1 = buf.x.copy()
        seven = int(KERNEL.solve(buf.ctx, 9, tol, max_iter, flags, 1e-10, 1e-8))
        assert one == seven
        if one == 0:
            np.testing.assert_array_equal(buf.x, x1)
    assert _raw(bad, b) == -3
