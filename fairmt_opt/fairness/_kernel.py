"""ctypes loader of the optional compiled kernel of the training-step losses and soft
violations (``fairmt_opt/fairness/_fairkernel.c``).

``KERNEL`` is a :class:`FairKernel`, or ``None`` when the shared object was not built (no C
compiler at install time), is stale, is disabled by ``FAIRMT_OPT_NO_KERNEL`` or cannot be
loaded; ``LOAD_ERROR`` then says why. The torch backend uses it on CPU tensors
(:class:`fairmt_opt.torch.FairMT`, option ``kernel``) and falls back to its torch / NumPy
implementation otherwise; both compute the same quantities (the tests compare them).

The arrays passed to the kernel follow the enums at the top of the C file: ``ip`` (int64
parameters), ``dp`` (double parameters), ``ti`` (one int64 row of parameters per task) and the
buffers (an array of addresses).
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..qp._kernel import load_kernel, shared_object

__all__ = ["KERNEL", "LOAD_ERROR", "FairBuffers", "FairKernel", "kernel_path"]

# int64 parameters (order of the C enum)
(IP_N, IP_T, IP_G, IP_Q, IP_GPTR, IP_GDT, IP_GSTRIDE, IP_REG_LOSS, IP_REG_SCORE, IP_SYMMETRIC,
 IP_GROUP_MAX, IP_INCLUDE_FPR, IP_HAS_SCALE, IP_FAIR, IP_ERR_TASK, IP_ERR_ROW, IP_SIZE) = range(17)
# double parameters
DP_TEMPERATURE, DP_SCALE, DP_LOSS_FACTOR, DP_PHI_FACTOR, DP_ETA, DP_SIZE = range(6)
# per-task parameters
(TI_KIND, TI_C, TI_COL, TI_ZPTR, TI_ZDT, TI_ZSTRIDE, TI_YPTR, TI_YDT, TI_YSTRIDE, TI_MPTR,
 TI_MSTRIDE, TI_OUTPTR, TI_OUTDT, TI_SIZE) = range(14)
#: kind codes
KINDS = {"detection": 0, "classification": 1, "regression": 2}
#: dtype codes by NumPy-style name (torch dtypes map through ``str(dtype)``)
DTYPES = {"float32": 0, "float64": 1, "int64": 2, "int32": 3, "uint8": 4, "bool": 4,
          "int16": 5, "int8": 6}
#: return codes
OK, BAD_CLASS, BAD_GROUP, BAD_DTYPE = 0, 1, 2, 3


def kernel_path() -> Path | None:
    """The built shared object next to this module, if any."""
    return shared_object(Path(__file__).resolve().parent, "_fairkernel")


class FairBuffers(NamedTuple):
    """Parameters, outputs and work arrays of one layout (one thread), at fixed addresses."""

    ip: np.ndarray     # (IP_SIZE,) int64
    dp: np.ndarray     # (DP_SIZE,) float64
    ti: np.ndarray     # (T, TI_SIZE) int64; kind, C, col filled once
    tot: np.ndarray    # (T,) loss sums
    cnt: np.ndarray    # (T,) label counts
    psi: np.ndarray    # (T,) violations
    P: np.ndarray      # (N * Q,) probabilities (errors for regression)
    Gl: np.ndarray     # (N * Q,) logit gradients of the losses
    gsum: np.ndarray   # (Q,) their column sums
    S: np.ndarray      # (4, G, Q) statistics
    gS: np.ndarray     # (2, G, Q) coefficients
    w: np.ndarray      # (T,) input of backward
    dphi: np.ndarray   # (N * Q,) logit gradients of sum_t w_t psi_t
    dsum: np.ndarray   # (Q,) their column sums
    alpha: np.ndarray  # (T,) input of combine
    buf: np.ndarray    # the addresses (intp)
    work: np.ndarray
    args: tuple[int, int, int, int]  # addresses of ip, dp, ti, buf


class FairKernel:
    """The loaded kernel with its buffers cached per layout and thread (ctypes releases the
    GIL during the calls)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        vp = ctypes.c_void_p
        for name in ("fairmt_fk_forward", "fairmt_fk_backward", "fairmt_fk_combine"):
            fn = getattr(lib, name)
            fn.restype = ctypes.c_int
            fn.argtypes = [vp, vp, vp, vp]
        ws = lib.fairmt_fk_work_size
        ws.restype = ctypes.c_int64
        ws.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
        self._forward = lib.fairmt_fk_forward
        self._backward = lib.fairmt_fk_backward
        self._combine = lib.fairmt_fk_combine
        self._work_size = ws
        self._local = threading.local()

    def buffers(self, N: int, G: int, kinds: tuple[int, ...], widths: tuple[int, ...]
                ) -> FairBuffers:
        """The buffers of ``N`` samples, ``G`` groups and tasks of the given kind codes and
        output widths (allocated once per thread and layout, reused by every call)."""
        try:
            cache = self._local.bufs
        except AttributeError:
            cache = self._local.bufs = {}
        key = (N, G, kinds, widths)
        b: FairBuffers | None = cache.get(key)
        if b is None:
            T, Q = len(kinds), sum(widths)
            ip = np.zeros(IP_SIZE, dtype=np.int64)
            ip[[IP_N, IP_T, IP_G, IP_Q]] = (N, T, G, Q)
            dp = np.zeros(DP_SIZE)
            ti = np.zeros((T, TI_SIZE), dtype=np.int64)
            ti[:, TI_KIND] = kinds
            ti[:, TI_C] = widths
            ti[:, TI_COL] = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
            arrays = {
                "tot": np.zeros(T), "cnt": np.zeros(T), "psi": np.zeros(T),
                "P": np.zeros(N * Q), "Gl": np.zeros(N * Q), "gsum": np.zeros(Q),
                "S": np.zeros((4, G, Q)), "gS": np.zeros((2, G, Q)), "w": np.zeros(T),
                "dphi": np.zeros(N * Q), "dsum": np.zeros(Q), "alpha": np.zeros(T),
            }
            work = np.zeros(int(self._work_size(N, G, max(widths))))
            order = ("tot", "cnt", "psi", "P", "Gl", "gsum", "S", "gS", "w", "dphi", "dsum",
                     "alpha")
            addr = np.array([arrays[k].ctypes.data for k in order] + [work.ctypes.data],
                            dtype=np.intp)
            args = (ip.ctypes.data, dp.ctypes.data, ti.ctypes.data, addr.ctypes.data)
            b = FairBuffers(ip, dp, ti, buf=addr, work=work, args=args, **arrays)
            if len(cache) > 16:
                cache.clear()  # bound the memory held per thread
            cache[key] = b
        return b

    def forward(self, b: FairBuffers) -> int:
        """Losses, loss gradients, statistics, ψ and its coefficients into ``b``."""
        return int(self._forward(*b.args))

    def backward(self, b: FairBuffers) -> int:
        """``b.dphi`` and ``b.dsum`` from the weights ``b.w`` (after :meth:`forward`)."""
        return int(self._backward(*b.args))

    def combine(self, b: FairBuffers) -> int:
        """``alpha_t * Gl + eta * dphi`` into the per-task output addresses of ``b.ti``."""
        return int(self._combine(*b.args))


def _load() -> tuple[FairKernel | None, str]:
    return load_kernel(kernel_path(), "_fairkernel.c", FairKernel)


KERNEL: FairKernel | None
LOAD_ERROR: str
KERNEL, LOAD_ERROR = _load()
