"""The plain small-T call of ``solve_simplex_qp`` (default options, T < 32, float64 or float32,
NumPy or CPU torch): the same answers and errors as the general route, in the caller's dtype
and array type, for every layout, and the kernel's buffers left as the other callers expect."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch

from fairmt_opt import solve_simplex_qp
from fairmt_opt.qp import _fast_path
from fairmt_opt.qp import _kernel as _qp_kernel
from fairmt_opt.qp._result import SimplexQPResult
from fairmt_opt.qp._solve import record_working_sets

needs_kernel = pytest.mark.skipif(_qp_kernel.KERNEL is None,
                                  reason=f"kernel: {_qp_kernel.LOAD_ERROR}")


def _gram(T: int, seed: int, rank: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((T, rank or 2 * T)) * np.exp(rng.standard_normal(T))[:, None]
    K = R @ R.T
    return 0.5 * K + 0.5 * K.T


def _general(K: Any, b: Any = None) -> SimplexQPResult:
    """The general route (an explicit ``tol`` equal to the default skips the plain path)."""
    return solve_simplex_qp(K, b, tol=1e-12)


def _same(res: SimplexQPResult, ref: SimplexQPResult) -> None:
    """Bit-identical answers and fields."""
    x, xr = res.x, ref.x
    assert type(x) is type(xr) and x.dtype == xr.dtype
    np.testing.assert_array_equal(np.asarray(x), np.asarray(xr))
    assert (res.nit, res.status, res.success, res.message, res.method) == (
        ref.nit, ref.status, ref.success, ref.message, ref.method)
    assert res.fun == ref.fun and res.gap == ref.gap
    assert res.kkt == ref.kkt
    np.testing.assert_array_equal(res.active_set, ref.active_set)


@contextmanager
def _kernel_calls() -> Iterator[list[int]]:
    """The return codes of the kernel calls made inside the block."""
    kern = _qp_kernel.KERNEL
    assert kern is not None
    codes: list[int] = []
    raw = kern.solve_ctx

    def spy(*args: Any) -> int:
        code = int(raw(*args))
        codes.append(code)
        return code

    kern.solve_ctx = spy  # type: ignore[assignment]
    try:
        yield codes
    finally:
        kern.solve_ctx = raw  # type: ignore[method-assign]


@pytest.mark.parametrize("T", [1, 2, 3, 5, 10, 31, 32, 40, 70])
@pytest.mark.parametrize("with_b", [False, True])
def test_plain_call_matches_the_general_route(T: int, with_b: bool) -> None:
    K = _gram(T, 10 + T)
    b = np.linspace(-0.2, 0.3, T) * float(K.diagonal().mean()) if with_b else None
    _same(solve_simplex_qp(K, b), _general(K, b))
    Kt = torch.from_numpy(K)
    bt = None if b is None else torch.from_numpy(b)
    _same(solve_simplex_qp(Kt, bt), _general(Kt, bt))
    assert solve_simplex_qp(Kt, bt).x.dtype == torch.float64


@pytest.mark.parametrize("T", [1, 2, 5, 10])
def test_float32_input_returns_float32_with_the_general_answer(T: int) -> None:
    K64 = _gram(T, 20 + T)
    b64 = np.linspace(0.1, -0.1, T) * float(K64.diagonal().mean())
    K32, b32 = K64.astype(np.float32), b64.astype(np.float32)
    for K, b in ((K32, None), (torch.from_numpy(K32), None), (torch.from_numpy(K32),
                                                               torch.from_numpy(b32))):
        res = solve_simplex_qp(K, b)
        _same(res, _general(K, b))
        assert res.x.dtype == K.dtype and type(res.x) is type(K)
        if isinstance(K, torch.Tensor):
            assert res.x.device == K.device
        # the float64 problem of the same (widened) data has the same minimiser to float32
        K_w = np.asarray(K, dtype=np.float64)
        b_w = None if b is None else np.asarray(b, dtype=np.float64)
        np.testing.assert_allclose(np.asarray(res.x, dtype=np.float64),
                                   solve_simplex_qp(0.5 * K_w + 0.5 * K_w.T, b_w).x,
                                   rtol=0, atol=1e-5)
    # a float32 K with a float64 b (NumPy, T <= 2): the general answer too
    if T <= 2:
        _same(solve_simplex_qp(K32, b64), _general(K32, b64))


@pytest.mark.parametrize("T", [2, 6])
def test_layouts_and_read_only_inputs(T: int) -> None:
    K = _gram(T, 30 + T)
    b = np.arange(T, dtype=np.float64) * 0.01
    ref = solve_simplex_qp(K, b)
    Kf = np.asfortranarray(K)
    Kr = K.copy()
    Kr.setflags(write=False)
    br = b.copy()
    br.setflags(write=False)
    Ks = np.zeros((2 * T, 2 * T))
    Ks[::2, ::2] = K  # a strided view
    bs = np.repeat(b, 2)[::2]
    for Kc, bc in ((Kf, b), (Kr, br), (Ks[::2, ::2], bs)):
        _same(solve_simplex_qp(Kc, bc), ref)
    Kt = torch.from_numpy(K)
    tref = solve_simplex_qp(Kt, torch.from_numpy(b))
    for Kc in (Kt.t().contiguous().t(), torch.from_numpy(Ks)[::2, ::2],
               Kt.clone().requires_grad_(True)):
        res = solve_simplex_qp(Kc, torch.from_numpy(bs.copy()).requires_grad_(True))
        _same(res, tref)
        assert not res.x.requires_grad
    K32 = torch.from_numpy(K.astype(np.float32))
    r32 = solve_simplex_qp(K32)
    for Kc in (K32.clone().requires_grad_(True), K32.t().contiguous().t()):
        _same(solve_simplex_qp(Kc), r32)


def test_bad_input_raises_the_same_clear_errors() -> None:
    cases: list[tuple[Any, Any, str]] = []
    for T in (2, 5):
        K = _gram(T, 40 + T)
        asym = K.copy()
        asym[0, 1] += 1e-4 * float(np.abs(K).max())
        nan = K.copy()
        nan[1, 0] = np.nan
        cases += [
            (asym, None, "K must be symmetric"),
            (nan, None, "K contains NaN"),
            (np.diag(np.r_[1.0, -1.0, np.ones(T - 2)]), None, "K must be positive semidefinite"),
            (K, np.r_[np.inf, np.zeros(T - 1)], "b contains inf"),
            (K, np.zeros(T + 1), "b must have shape"),
        ]
    for K, b, match in cases:
        for Kc, bc in ((K, b), (torch.from_numpy(K), None if b is None else torch.from_numpy(b)),
                       (K.astype(np.float32), b)):
            if match == "K must be symmetric" and Kc.dtype in (np.float32, torch.float32):
                continue  # float32's tolerance: an asymmetry of 1e-4 is an error there too
            with pytest.raises(ValueError, match=match):
                solve_simplex_qp(Kc, bc)
            with pytest.raises(ValueError, match=match):
                _general(Kc, bc)
    # float32's tolerance (7.6e-6 of max|K|) accepts what float64's (1e-8) refuses
    for T in (2, 4):
        K = _gram(T, 7)
        K[0, 1] += 1e-6 * float(np.abs(K).max())
        for Kc in (K.astype(np.float32), torch.from_numpy(K).float()):
            res = solve_simplex_qp(Kc)
            assert res.success
            _same(res, _general(Kc))  # solved on the symmetric part, as the general path does
        with pytest.raises(ValueError, match="K must be symmetric"):
            solve_simplex_qp(torch.from_numpy(K))
    big = _gram(4, 8)
    big[0, 1] += 1e-3 * float(np.abs(big).max())
    with pytest.raises(ValueError, match="K must be symmetric"):
        solve_simplex_qp(big.astype(np.float32))


@needs_kernel
def test_declined_data_take_the_python_path_without_a_second_kernel_call() -> None:
    kern = _qp_kernel.KERNEL
    assert kern is not None
    K = _gram(6, 50)
    bad = K.copy()
    bad[2, 3] += 1e-3 * float(np.abs(K).max())
    buf = kern.buffers(6)
    for Kc in (bad, torch.from_numpy(bad)):
        with _kernel_calls() as codes, pytest.raises(ValueError, match="K must be symmetric"):
            solve_simplex_qp(Kc, torch.zeros(6, dtype=torch.float64)
                             if isinstance(Kc, torch.Tensor) else None)
        assert len(codes) == 1 and codes[0] != 0
        assert (int(buf.ptrs[0]), int(buf.ptrs[1])) == (buf.kaddr, buf.baddr)
    with _kernel_calls() as codes:
        res = solve_simplex_qp(torch.from_numpy(K), torch.zeros(6, dtype=torch.float64))
    assert codes == [0] and res.success
    assert (int(buf.ptrs[0]), int(buf.ptrs[1])) == (buf.kaddr, buf.baddr)


@needs_kernel
def test_plain_calls_use_the_kernel_now_loaded() -> None:
    K = _gram(5, 60)
    ref = solve_simplex_qp(K)
    saved = _qp_kernel.KERNEL
    other, why = _qp_kernel._load()
    assert other is not None, why
    try:
        _qp_kernel.KERNEL = other
        with _kernel_calls() as codes:
            _same(solve_simplex_qp(K), ref)
        assert codes == [0]
        _qp_kernel.KERNEL = None  # not loaded: the Python path
        res = solve_simplex_qp(K)
        np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-12)
    finally:
        _qp_kernel.KERNEL = saved
    _same(solve_simplex_qp(K), ref)


def test_results_are_plain_immutable_results_and_steps_are_recorded() -> None:
    K = _gram(5, 70)
    for Kc in (K, torch.from_numpy(K), np.array([[2.0, 1.0], [1.0, 3.0]])):
        res = solve_simplex_qp(Kc)
        assert type(res) is SimplexQPResult
        with pytest.raises(AttributeError, match="immutable"):
            res.nit = 3  # type: ignore[misc]
    with record_working_sets() as sets:
        res = solve_simplex_qp(K)
    assert sets and tuple(res.active_set.tolist()) == sets[-1]
    assert _fast_path._TRACE is None


def test_threads_share_no_buffers() -> None:
    Ks = [_gram(7, 80 + i) for i in range(6)] + [_gram(7, 90, rank=2)]
    expect = [solve_simplex_qp(K).x for K in Ks]
    out: dict[int, list[np.ndarray]] = {}

    def work(i: int) -> None:
        data = [torch.from_numpy(K) if i % 2 else K for K in Ks]
        out[i] = [np.asarray(solve_simplex_qp(K).x) for K in data for _ in range(30)][::30]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        for x, e in zip(out[i], expect):
            np.testing.assert_array_equal(x, e)


@pytest.mark.skipif(_qp_kernel.KERNEL is None, reason="the compiled kernel is not built")
def test_a_plan_outlives_the_kernel_cache_that_made_it() -> None:
    # The kernel's per-size buffer cache is bounded and may drop a size's buffers; a plain
    # call's cached plan must keep alive every array whose address the kernel writes (here the
    # integer outputs and the work space), or the next call writes freed memory.
    import gc
    import weakref

    kern = _qp_kernel.KERNEL
    T = 7
    _fast_path._LOCAL.__dict__.pop("plans", None)
    kern._local.__dict__.pop("bufs", None)
    rng = np.random.default_rng(11)
    R = rng.normal(size=(T, 2 * T))
    K = R @ R.T
    first = solve_simplex_qp(K)
    buf = kern.buffers(T)
    alive = [weakref.ref(a) for a in (buf.iinfo, buf.info, buf.x, *buf.keep)]
    del buf
    kern._local.bufs.clear()  # what the cache does when it passes its memory bound
    gc.collect()
    assert all(r() is not None for r in alive)
    # new allocations of the same sizes, filled with garbage, then the same solve again
    junk = [np.full(a().size, -7, dtype=a().dtype) for a in alive]  # type: ignore[union-attr]
    try:
        again = solve_simplex_qp(K)
        np.testing.assert_array_equal(again.x, first.x)
        assert again.nit == first.nit and junk
    finally:  # the next tests start from fresh plans, which use the cache's buffers again
        _fast_path._LOCAL.__dict__.pop("plans", None)


@pytest.mark.skipif(_qp_kernel.KERNEL is None, reason="the compiled kernel is not built")
def test_large_plans_are_bounded_and_read_k_in_place() -> None:
    # from KEEP_T on a plan's buffers are large: one such plan per thread at most
    _fast_path._LOCAL.__dict__.pop("plans", None)
    big = [_qp_kernel.KEEP_T, _qp_kernel.KEEP_T + 6]
    for T in [*big, 7]:
        K = _gram(T, T)
        _same(solve_simplex_qp(K), _general(K))
    plans = _fast_path._LOCAL.plans
    assert (7, 7) in plans and (big[1], big[1]) in plans and (big[0], big[0]) not in plans
    # a C-contiguous float64 K from T = 32 on is read in place: the K buffer is not written
    T = 40
    K = _gram(T, 4)
    solve_simplex_qp(K)
    kern = _qp_kernel.KERNEL
    assert kern is not None
    buf = kern.buffers(T)
    buf.K[...] = -1.0
    res = solve_simplex_qp(K)
    assert float(buf.K.min()) == -1.0 and res.success
    _same(res, _general(K))
    # a Fortran-ordered one is copied, with the same answer
    _same(solve_simplex_qp(np.asfortranarray(K)), res)


@pytest.mark.skipif(_qp_kernel.KERNEL is None, reason="the compiled kernel is not built")
@pytest.mark.parametrize("T", [3, 12, 40])
def test_float32_k_with_float32_b_takes_the_kernel(T: int) -> None:
    K64 = _gram(T, 60 + T)
    b64 = np.linspace(-0.3, 0.2, T) * float(K64.diagonal().mean())
    K32, b32 = K64.astype(np.float32), b64.astype(np.float32)
    with _kernel_calls() as codes:
        res = solve_simplex_qp(K32, b32)
    assert codes == [0]  # solved by the kernel, not the Python path
    assert res.x.dtype == np.float32
    _same(res, _general(K32, b32))
    saved = _qp_kernel.KERNEL
    _qp_kernel.KERNEL = None
    try:
        ref = solve_simplex_qp(K32, b32)
    finally:
        _qp_kernel.KERNEL = saved
    assert ref.x.dtype == np.float32
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-6)
    # an asymmetric float32 K is still refused with the Python path's error
    Ka = K32.copy()
    Ka[0, 1] += np.float32(0.5) * np.abs(K32).max()
    with pytest.raises(ValueError, match="K must be symmetric"):
        solve_simplex_qp(Ka, b32)
