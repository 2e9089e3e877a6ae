r"""The array operations the simplex formulas are written with, and their dispatch.

The projection, the water-filling, the objective and its gap are each written once
(:mod:`._projection`, :mod:`._aggregation`, :mod:`._objective`) against the dozen operations
of :class:`Ops`, all of them along the last axis. :func:`ops_of` picks the binding of those
operations for the library of an array: NumPy ufuncs and methods, PyTorch tensor functions, or
the generic array-API namespace of ``array_api_compat`` for any other library. Each binding
is the same operation spelled in that library's own API, without the argument translation of
the generic wrappers (which cost several microseconds per call, more than the arithmetic on a
vector of a few dozen entries). No operation reads data back to the host except
:meth:`Ops.all_finite`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._utils.array import Array, device_of, namespace

__all__ = ["Ops", "as_ops", "ops_of"]


class Ops:
    """Operations along the last axis, generic array-API binding (``xp`` the namespace)."""

    name = "array-api"

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self._k: dict[Any, Array] = {}

    def amax(self, x: Array) -> Array:
        """Maximum along the last axis, kept as an axis of size 1 (NaN propagates)."""
        return self.xp.max(x, axis=-1, keepdims=True)

    def amin(self, x: Array) -> Array:
        """Minimum along the last axis, kept as an axis of size 1 (NaN propagates)."""
        return self.xp.min(x, axis=-1, keepdims=True)

    def max(self, x: Array) -> Array:
        """Maximum along the last axis, which is dropped."""
        return self.xp.max(x, axis=-1)

    def sum(self, x: Array) -> Array:
        """Sum along the last axis, which is dropped."""
        return self.xp.sum(x, axis=-1)

    def ksum(self, x: Array) -> Array:
        """Sum along the last axis, kept as an axis of size 1."""
        return self.xp.sum(x, axis=-1, keepdims=True)

    def dot(self, a: Array, b: Array) -> Array:
        """``sum(a * b)`` along the last axis, which is dropped."""
        return self.xp.vecdot(a, b, axis=-1)

    def sort(self, x: Array) -> Array:
        """A sorted (increasing) copy along the last axis."""
        return self.xp.sort(x, axis=-1)

    def cumsum(self, x: Array) -> Array:
        """Inclusive cumulative sum along the last axis."""
        return self.xp.cumulative_sum(x, axis=-1)

    def relu(self, x: Array) -> Array:
        """``max(x, 0)`` elementwise (NaN propagates)."""
        return self.xp.clip(x, min=0.0)

    def where(self, c: Array, x: Array, s: float) -> Array:
        """``x`` where ``c``, the Python number ``s`` elsewhere (dtype of ``x``)."""
        return self.xp.where(c, x, self.xp.asarray(s, dtype=x.dtype, device=device_of(x)))

    def any(self, m: Array) -> Array:
        """Logical or along the last axis, which is dropped."""
        return self.xp.any(m, axis=-1)

    def count(self, m: Array, like: Array) -> Array:
        """The number of true entries of the bool ``m`` along the last axis, kept as an axis
        of size 1, in the floating dtype of ``like``."""
        return self.xp.sum(self.xp.astype(m, like.dtype), axis=-1, keepdims=True)

    def recip(self, x: Array) -> Array:
        """``1 / x`` elementwise."""
        return 1.0 / x

    def nonzero(self, x: Array) -> Array:
        """``x != 0`` elementwise (true for NaN)."""
        return x != 0.0

    def or_zero(self, x: Array) -> Array:
        """``x`` where ``x > -inf``, 0 elsewhere (for NaN and ``-inf``)."""
        return self.where(x > -math.inf, x, 0.0)

    def const(self, value: float, like: Array) -> Any:
        """The number ``value`` as an operand next to ``like`` (a Python float, or a cached
        0-d array of the dtype and device of ``like`` where that is cheaper)."""
        return value

    def astype(self, x: Array, dtype: Any) -> Array:
        return self.xp.astype(x, dtype)

    def detach(self, x: Array) -> Array:
        """``x`` outside any autograd graph (the identity for libraries without one)."""
        return x

    def is_float(self, x: Array) -> bool:
        return bool(self.xp.isdtype(x.dtype, "real floating"))

    def is_bool(self, x: Array) -> bool:
        return str(x.dtype).rsplit(".", 1)[-1] == "bool"

    def same_device(self, a: Array, b: Array) -> bool:
        return bool(device_of(a) == device_of(b))

    def all_finite(self, x: Array) -> bool:
        """Whether ``x`` holds no NaN and no inf (reads the answer back to the host)."""
        return bool(self.xp.all(self.xp.isfinite(x)))

    def counts(self, like: Array) -> Array:
        r""":math:`1, 2, \dots, T` (``T = like.shape[-1]``) in the dtype and on the device of
        ``like``, cached: never modify it."""
        key = (like.shape[-1], like.dtype, self._device(like))
        k = self._k.get(key)
        if k is None:
            if len(self._k) > 64:
                self._k.clear()
            k = self._k[key] = self._arange(key[0], like)
        return k

    def _device(self, like: Array) -> Any:
        return str(device_of(like))

    def _arange(self, T: int, like: Array) -> Array:
        return self.xp.arange(1, T + 1, dtype=like.dtype, device=device_of(like))


class _NumpyOps(Ops):
    """NumPy binding: ufunc reductions and accumulations, an in-place sort of a copy."""

    name = "numpy"

    def amax(self, x: Array) -> Array:
        return np.maximum.reduce(x, -1, keepdims=True)

    def amin(self, x: Array) -> Array:
        return np.minimum.reduce(x, -1, keepdims=True)

    def max(self, x: Array) -> Array:
        return np.maximum.reduce(x, -1)

    def sum(self, x: Array) -> Array:
        return np.add.reduce(x, -1)

    def ksum(self, x: Array) -> Array:
        return np.add.reduce(x, -1, keepdims=True)

    def dot(self, a: Array, b: Array) -> Array:
        return np.vecdot(a, b)

    def sort(self, x: Array) -> Array:
        s = x.copy()
        s.sort(axis=-1)
        return s

    def cumsum(self, x: Array) -> Array:
        return np.add.accumulate(x, -1)

    def relu(self, x: Array) -> Array:
        return np.maximum(x, 0.0)

    def where(self, c: Array, x: Array, s: float) -> Array:
        return np.where(c, x, s)

    def any(self, m: Array) -> Array:
        return np.logical_or.reduce(m, -1)

    def count(self, m: Array, like: Array) -> Array:
        return np.add.reduce(m, -1, dtype=like.dtype, keepdims=True)

    def or_zero(self, x: Array) -> Array:
        return np.where(x > -math.inf, x, 0.0)

    def astype(self, x: Array, dtype: Any) -> Array:
        return x.astype(dtype)

    def is_float(self, x: Array) -> bool:
        return x.dtype.kind == "f"

    def is_bool(self, x: Array) -> bool:
        return x.dtype.kind == "b"

    def same_device(self, a: Array, b: Array) -> bool:
        return True

    def all_finite(self, x: Array) -> bool:
        return bool(np.logical_and.reduce(np.isfinite(x), axis=None))

    def _device(self, like: Array) -> Any:
        return None

    def _arange(self, T: int, like: Array) -> Array:
        k = np.arange(1, T + 1, dtype=like.dtype)
        k.flags.writeable = False
        return k


class _TorchOps(Ops):
    """PyTorch binding: tensor functions with ``dim``/``keepdim``, no host synchronisation."""

    name = "torch"

    def __init__(self, xp: Any) -> None:
        super().__init__(xp)
        import torch

        self.torch = torch
        self._c: dict[Any, Array] = {}

    def amax(self, x: Array) -> Array:
        return x.amax(-1, keepdim=True)

    def amin(self, x: Array) -> Array:
        return x.amin(-1, keepdim=True)

    def max(self, x: Array) -> Array:
        return x.amax(-1)

    def sum(self, x: Array) -> Array:
        return x.sum(-1)

    def ksum(self, x: Array) -> Array:
        return x.sum(-1, keepdim=True)

    def dot(self, a: Array, b: Array) -> Array:
        return self.torch.linalg.vecdot(a, b)

    def sort(self, x: Array) -> Array:
        return x.sort(-1)[0]

    def cumsum(self, x: Array) -> Array:
        return x.cumsum(-1)

    def relu(self, x: Array) -> Array:
        return x.clamp_min(0.0)

    def where(self, c: Array, x: Array, s: float) -> Array:
        return self.torch.where(c, x, self.const(s, x))

    def any(self, m: Array) -> Array:
        return m.any(-1)

    def count(self, m: Array, like: Array) -> Array:
        return m.sum(-1, keepdim=True, dtype=like.dtype)

    def recip(self, x: Array) -> Array:
        return x.reciprocal()

    def nonzero(self, x: Array) -> Array:
        return x.bool()

    def or_zero(self, x: Array) -> Array:
        return self.torch.nan_to_num(x, 0.0, math.inf, 0.0)

    def const(self, value: float, like: Array) -> Any:
        # a Python number costs a conversion to a tensor in every operation; a 0-d tensor
        # made by a fill (no copy from the host) is reused instead
        key = (value, like.dtype, like.device)
        c = self._c.get(key)
        if c is None:
            if len(self._c) > 256:
                self._c.clear()
            with self.torch.inference_mode(False):
                c = self._c[key] = self.torch.full((), value, dtype=like.dtype,
                                                   device=like.device)
        return c

    def astype(self, x: Array, dtype: Any) -> Array:
        return x.to(dtype)

    def detach(self, x: Array) -> Array:
        return x.detach()

    def is_float(self, x: Array) -> bool:
        return bool(x.dtype.is_floating_point)

    def is_bool(self, x: Array) -> bool:
        return x.dtype is self.torch.bool

    def same_device(self, a: Array, b: Array) -> bool:
        return bool(a.device == b.device)

    def all_finite(self, x: Array) -> bool:
        return bool(self.torch.isfinite(x).all())

    def _device(self, like: Array) -> Any:
        return like.device

    def _arange(self, T: int, like: Array) -> Array:
        # an ordinary tensor even when first needed under inference mode (autograd may save it)
        with self.torch.inference_mode(False):
            return self.torch.arange(1, T + 1, dtype=like.dtype, device=like.device)


_BY_TYPE: dict[type, Ops] = {}
_BY_NAMESPACE: dict[int, Ops] = {}
_NUMPY = _NumpyOps(np)
_BY_TYPE[np.ndarray] = _NUMPY
_BY_NAMESPACE[id(np)] = _NUMPY


def ops_of(x: Array) -> Ops:
    """The operations for the library of the array ``x`` (one dictionary look-up once its
    type has been seen)."""
    o = _BY_TYPE.get(type(x))
    if o is None:
        o = as_ops(namespace(x))
        _BY_TYPE[type(x)] = o
    return o


def as_ops(xp: Any) -> Ops:
    """The operations for an array-API namespace ``xp`` (``numpy`` itself, a namespace of
    ``array_api_compat`` or of any other library), or ``xp`` if it already is an :class:`Ops`."""
    if isinstance(xp, Ops):
        return xp
    o = _BY_NAMESPACE.get(id(xp))
    if o is None:
        mod = getattr(xp, "__name__", "")
        if mod in ("numpy", "array_api_compat.numpy"):
            o = _NUMPY
        elif mod in ("torch", "array_api_compat.torch"):
            import array_api_compat.torch as compat_torch

            o = _TorchOps(compat_torch)
        else:
            o = Ops(xp)
        _BY_NAMESPACE[id(xp)] = o
    return o
