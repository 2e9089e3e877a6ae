"""ctypes loader of the optional compiled active-set kernel (``fairmt_opt/qp/_qpkernel.c``).

``KERNEL`` is a :class:`QPKernel`, or ``None`` when the shared object was not built (no C
compiler at install time) or cannot be loaded; ``LOAD_ERROR`` then says why. Callers fall back
to the pure-Python implementation whenever ``KERNEL`` is ``None`` or the kernel reports
anything but a verified optimum.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
import shutil
import sysconfig
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np

__all__ = [
    "KERNEL", "LOAD_ERROR", "Buffers", "QPKernel", "c_compiler_available", "kernel_path",
    "load_kernel", "load_library", "shared_object",
]

T_K = TypeVar("T_K")

#: most float64 work entries cached per thread (32 MB) before its large sizes are dropped
_MAX_CACHED = 4_000_000
#: buffers of sizes below this are never dropped from the cache (a few KiB each): the plain
#: calls of ``_fast_path`` (T < 32) keep their addresses in plans of their own
KEEP_T = 64


def shared_object(directory: Path, stem: str) -> Path | None:
    """The built shared object ``stem`` (any extension suffix) in ``directory``, if any."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        p = directory / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def load_library(path: Path | None, source: str) -> tuple[ctypes.CDLL | None, str]:
    """Load the shared object at ``path`` built from the C file ``source`` (next to it).

    Returns ``(library, "")`` or ``(None, why)``: disabled by ``FAIRMT_OPT_NO_KERNEL``, not
    built, older than its source in a source checkout (a stale build), or not loadable."""
    if os.environ.get("FAIRMT_OPT_NO_KERNEL"):
        return None, "disabled by FAIRMT_OPT_NO_KERNEL"
    if path is None:
        return None, "not built (no C compiler at install time?)"
    src = path.with_name(source)  # present in a source checkout (editable install)
    try:
        if src.is_file() and src.stat().st_mtime > path.stat().st_mtime:
            return None, f"{path.name} is older than {src.name}: rebuild (pip install -e .)"
    except OSError:
        pass
    try:
        return ctypes.CDLL(str(path)), ""
    except OSError as exc:
        return None, f"cannot load {path.name}: {exc}"


def load_kernel(path: Path | None, source: str, wrap: Callable[[ctypes.CDLL], T_K]
                ) -> tuple[T_K | None, str]:
    """:func:`load_library`, then ``wrap`` (which binds the entry points) on the library;
    ``(None, why)`` when either fails."""
    lib, why = load_library(path, source)
    if lib is None:
        return None, why
    try:
        return wrap(lib), ""
    except AttributeError as exc:  # a missing entry point (or, for the QP kernel, LAPACK)
        return None, f"cannot load {path}: {exc}"


def c_compiler_available() -> bool:
    """Whether the C compiler the extensions would be built with is on the PATH."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(cc.split()[0]) is not None


def kernel_path() -> Path | None:
    """The built shared object next to this package, if any."""
    return shared_object(Path(__file__).resolve().parent, "_qpkernel")


def _lapack_pointers() -> tuple[int, int, int]:
    """Addresses of SciPy's LAPACK ``dgesv``, ``dpstrf`` and ``dpotrf``
    (``scipy.linalg.cython_lapack``): the kernel calls the very routines the Python
    implementation calls."""
    from scipy.linalg import cython_lapack

    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    caps = cython_lapack.__pyx_capi__  # type: ignore[attr-defined]
    out = []
    for name in ("dgesv", "dpstrf", "dpotrf"):
        cap = caps[name]
        out.append(int(api.PyCapsule_GetPointer(cap, api.PyCapsule_GetName(cap))))
    return out[0], out[1], out[2]


class Buffers(NamedTuple):
    """Input, output and work buffers of one problem size (one thread), fixed addresses."""

    K: np.ndarray      # (T, T) input copy (when the caller's K cannot be read in place)
    b: np.ndarray      # (T,) input
    warm: np.ndarray   # (T,) input
    x: np.ndarray      # (T,) output
    g: np.ndarray      # (T,) output: K x + b
    info: np.ndarray   # (8,) output: b'x, max|K|, max|b|, proximal gap, outer steps, nit, mode,
    #                    max b - min b
    iinfo: np.ndarray  # (4,) nit, mode (out); trace capacity (in), trace length (out)
    ptrs: np.ndarray   # (11,) the addresses the kernel reads (K, b and trace change per call)
    ctx: int           # address of ptrs
    kaddr: int         # address of the K buffer
    baddr: int         # address of the b buffer
    params: np.ndarray  # (6,) T, tol, max_iter, flags, roundoff_gap, rtol (read by solve_ctx)
    last: list[tuple[float, int, int, float, float]]  # what params holds (one entry)
    keep: tuple[np.ndarray, ...]  # the work arrays (kept alive here)


class QPKernel:
    """The loaded kernel with buffers cached per problem size ``T`` and thread (ctypes releases
    the GIL during the call)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        vp, ci, cd = ctypes.c_void_p, ctypes.c_int, ctypes.c_double
        fn = lib.fairmt_qp_solve
        fn.restype = ci
        fn.argtypes = [vp, ci, cd, ci, ci, cd, cd]
        fc = lib.fairmt_qp_solve_ctx
        fc.restype = ci
        fc.argtypes = [vp]
        ws = lib.fairmt_qp_work_size
        ws.restype = ci
        ws.argtypes = [ci, ci]
        setl = lib.fairmt_qp_set_lapack
        setl.restype = None
        setl.argtypes = [vp, vp, vp]
        try:
            gesv, pstrf, potrf = _lapack_pointers()
        except (ImportError, KeyError, AttributeError, ValueError) as exc:
            raise AttributeError(f"no LAPACK from scipy.linalg.cython_lapack: {exc}") from exc
        setl(gesv, pstrf, potrf)
        #: ``solve(ctx, T, tol, max_iter, flags, roundoff_gap, rtol)``, flags: 1 use b, 2 use
        #: warm, 4 check the input with a Cholesky factorisation (``T <= FULL_CHECK_T``), 8 with
        #: the O(T^2) conditions and the curvature at the solution (larger ``T``); ``rtol`` the
        #: relative tolerance of these checks (``input_rtol`` of the caller's dtype)
        self.solve = fn
        #: ``solve_ctx(ctx)``: ``solve`` with ``(T, tol, max_iter, flags, roundoff_gap, rtol)``
        #: read from the buffers' ``params`` (see :meth:`call`)
        self.solve_ctx = fc
        self._work_size = ws
        self._local = threading.local()

    def call(self, buf: Buffers, tol: float, max_iter: int, flags: int, roundoff: float,
             rtol: float) -> int:
        """``solve(buf.ctx, T, tol, max_iter, flags, roundoff, rtol)`` through ``solve_ctx``:
        the arguments are written to ``buf.params`` only when they differ from the last call's.
        """
        p = (tol, max_iter, flags, roundoff, rtol)
        if p != buf.last[0]:
            buf.params[1:] = p
            buf.last[0] = p
        return int(self.solve_ctx(buf.ctx))

    def buffers(self, T: int) -> Buffers:
        """The buffers for size ``T`` (allocated once per thread, reused by every call)."""
        try:
            cache = self._local.bufs
        except AttributeError:
            cache = self._local.bufs = {}
        bufs: Buffers | None = cache.get(T)
        if bufs is None:
            K = np.zeros((T, T))
            b, warm, x, g = (np.zeros(T) for _ in range(4))
            info = np.zeros(8)
            iinfo = np.zeros(4, dtype=np.intc)
            work = np.empty(int(self._work_size(T, 0)))
            iwork = np.empty(int(self._work_size(T, 1)), dtype=np.intc)
            params = np.zeros(6)
            params[0] = T
            arrays = (K, b, warm, x, g, info, iinfo, work, iwork)
            ptrs = np.array([a.ctypes.data for a in arrays] + [0, params.ctypes.data],
                            dtype=np.intp)
            bufs = Buffers(K, b, warm, x, g, info, iinfo, ptrs, ptrs.ctypes.data, K.ctypes.data,
                           b.ctypes.data, params, [(-1.0, 0, 0, 0.0, 0.0)], (work, iwork))
            if sum(v.keep[0].size for v in cache.values()) + work.size > _MAX_CACHED:
                for size in [t for t in cache if t >= KEEP_T]:  # bound the memory per thread
                    del cache[size]
            cache[T] = bufs
        return bufs


def _load() -> tuple[QPKernel | None, str]:
    return load_kernel(kernel_path(), "_qpkernel.c", QPKernel)


KERNEL: QPKernel | None
LOAD_ERROR: str
KERNEL, LOAD_ERROR = _load()
