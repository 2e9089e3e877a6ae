"""Array-API plumbing shared by the framework-agnostic layer.

Every public solver accepts NumPy arrays and, through ``array_api_compat``, PyTorch tensors on
CPU or CUDA, and returns the caller's array type. Two patterns are used:

* *native*: the algorithm is written against the array namespace ``xp`` returned by
  :func:`namespace` (sorting, cumulative sums, matrix products) and runs where the data lives;
* *host*: sequential algorithms (active set, Frank–Wolfe) convert to a float64 NumPy array with
  :func:`to_numpy`, solve there and convert back with :func:`from_numpy`.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

Array = Any  # an array of any array-API namespace (numpy.ndarray, torch.Tensor, ...)

__all__ = [
    "Array",
    "device_of",
    "from_numpy",
    "is_numpy",
    "is_torch",
    "namespace",
    "to_numpy",
]


def namespace(*arrays: Any) -> Any:
    """Array-API namespace of ``arrays`` (NumPy's compat namespace for lists and scalars)."""
    arrs = [a for a in arrays if a is not None and not isinstance(a, (int, float, list, tuple))]
    if not arrs:
        return array_api_compat.array_namespace(np.empty(0))
    return array_api_compat.array_namespace(*arrs)


def is_torch(x: Any) -> bool:
    return bool(array_api_compat.is_torch_array(x))


def is_numpy(x: Any) -> bool:
    return bool(array_api_compat.is_numpy_array(x))


def device_of(x: Any) -> Any:
    return array_api_compat.device(x)


def to_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """Copy/convert ``x`` (NumPy array, torch tensor on any device and of any real dtype,
    bfloat16 included, list) to a NumPy array."""
    if is_torch(x):
        x = x.detach()
        if x.is_cuda or str(x.device) != "cpu":
            x = x.cpu()
        if str(x.dtype) == "torch.bfloat16":  # NumPy has no bfloat16: widened exactly
            x = x.float()
        return np.asarray(x.numpy(), dtype=dtype)
    return np.asarray(x, dtype=dtype)


def from_numpy(x: np.ndarray, like: Any, dtype: Any = None) -> Any:
    """Convert NumPy ``x`` to the array type, device and (floating) dtype of ``like``.

    ``like`` may be ``None`` or a non-array (list, scalar): the result is then a NumPy array.
    """
    if like is None or not hasattr(like, "dtype") or is_numpy(like):
        out = np.asarray(x)
        if dtype is not None:
            out = out.astype(dtype, copy=False)
        elif like is not None and hasattr(like, "dtype") and np.issubdtype(like.dtype, np.floating):
            out = out.astype(like.dtype, copy=False)
        return out
    if is_torch(like):
        import torch

        tdtype = dtype if dtype is not None else (
            like.dtype if like.dtype.is_floating_point else torch.float64
        )
        return torch.as_tensor(np.ascontiguousarray(x), device=like.device).to(tdtype)
    xp = namespace(like)
    return xp.asarray(x, device=device_of(like))
