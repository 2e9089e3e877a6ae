"""Input validation shared by every public function.

Every check raises :class:`ValueError` (or :class:`TypeError` for a wrong type) with a message
that names the argument and the problem, e.g. ``"K must be symmetric (max |K - K^T| = 0.3)"``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .array import is_torch, namespace

__all__ = [
    "check_array",
    "check_bool",
    "check_finite",
    "check_int",
    "check_positive",
    "check_psd",
    "check_real",
    "check_same_device",
    "check_symmetric",
    "check_tol",
    "to_float",
]


def _is_array(x: Any) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | None = None,
    min_ndim: int | None = None,
    finite: bool = True,
    allow_empty: bool = False,
) -> Any:
    """Return ``x`` as an array of its own namespace (lists become float64 NumPy arrays).

    Raises ``ValueError`` naming ``name`` for a wrong number of dimensions, an empty array, a
    non-numeric dtype, NaN or inf (when ``finite``; this check synchronises a GPU with its host).
    """
    if x is None:
        raise ValueError(f"{name} must be an array, got None")
    if not _is_array(x):
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a numeric array: {exc}") from exc
    if not is_torch(x) and isinstance(x, np.ndarray):
        if x.dtype == np.bool_ or not (
            np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
        ):
            raise ValueError(f"{name} must have a real numeric dtype, got {x.dtype}")
    elif is_torch(x):
        if x.is_complex() or x.dtype.__str__() == "torch.bool":
            raise ValueError(f"{name} must have a real numeric dtype, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.ndim < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(x.shape)}"
        )
    if not allow_empty and math.prod(x.shape) == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if finite:
        check_finite(x, name)
    return x


def check_finite(x: Any, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN or inf."""
    xp = namespace(x)
    if xp.isdtype(x.dtype, "integral"):
        return
    if bool(xp.any(xp.isnan(x))):
        raise ValueError(f"{name} contains NaN")
    if bool(xp.any(xp.isinf(x))):
        raise ValueError(f"{name} contains inf")


def to_float(value: Any, name: str) -> float:
    """``value`` as a float (``inf`` and NaN included): a Python or NumPy real number or a
    0-d real array. Booleans, strings, complex numbers and arrays with more than one
    dimension raise ``ValueError`` naming ``name``."""
    if isinstance(value, (bool, np.bool_, str, bytes, complex, np.complexfloating)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if getattr(value, "ndim", 0) != 0:
        raise ValueError(f"{name} must be a real number (a scalar), got shape "
                         f"{tuple(value.shape)}")
    dtype = getattr(value, "dtype", None)
    if dtype is not None and (str(dtype).rsplit(".", 1)[-1] == "bool" or "complex" in str(dtype)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real number, got {value!r}") from exc


def check_real(value: Any, name: str) -> float:
    """Return ``value`` as a float; raise ``ValueError`` unless it is a finite real number
    (Python or NumPy scalars and 0-d real arrays are accepted, see :func:`to_float`)."""
    v = to_float(value, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float; raise ``ValueError`` unless finite and > 0 (>= 0)."""
    v = check_real(value, name)
    if allow_zero and v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    if not allow_zero and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    return v


def check_tol(tol: Any, name: str = "tol") -> float:
    """A tolerance: finite and >= 0."""
    return check_positive(tol, name, allow_zero=True)


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as a Python bool: ``True``, ``False`` or a NumPy bool
    (``np.True_``, ``np.False_``, what comparisons of NumPy scalars give). Integers (0 and 1
    included), floats, strings, None and arrays raise ``ValueError`` naming ``name``: an
    option written ``1`` or ``"False"`` is more likely a mistake than a choice.

    >>> check_bool(np.True_, "symmetric")
    True
    >>> check_bool(1, "symmetric")
    Traceback (most recent call last):
    ...
    ValueError: symmetric must be a bool, got 1
    """
    if type(value) is bool:
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be a bool, got {value!r}")


def check_int(value: Any, name: str, *, minimum: int = 0) -> int:
    """Return ``value`` as an int: a Python or NumPy integer (not a bool), ``>= minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_symmetric(K: np.ndarray, name: str = "K", *, rtol: float = 1e-8) -> None:
    """Raise unless the (batched) square matrix ``K`` is symmetric up to ``rtol * max|K|``
    (relative, no absolute floor)."""
    if K.ndim < 2 or K.shape[-1] != K.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (..., T, T), got shape {K.shape}")
    asym = float(np.max(np.abs(K - np.swapaxes(K, -1, -2)))) if K.size else 0.0
    scale = float(np.max(np.abs(K))) if K.size else 0.0
    if asym > rtol * scale:
        raise ValueError(f"{name} must be symmetric (max |K - K^T| = {asym:.3g})")


def check_psd(K: np.ndarray, name: str = "K", *, rtol: float = 1e-8) -> None:
    """Raise unless the symmetric (batched) ``K`` has no clearly negative eigenvalue.

    "Clearly" means below ``-rtol * max |eig| * T`` (relative, no absolute floor): round-off
    in a Gram matrix built in float64 stays far inside that bound.
    """
    if K.size == 0:
        return
    eig = np.linalg.eigvalsh(0.5 * (K + np.swapaxes(K, -1, -2)))
    lo = float(np.min(eig))
    scale = float(np.max(np.abs(eig))) * K.shape[-1]
    if lo < -rtol * scale:
        raise ValueError(
            f"{name} must be positive semidefinite (smallest eigenvalue {lo:.3g})"
        )


def check_same_device(*pairs: tuple[str, Any]) -> None:
    """Raise ``ValueError`` if torch tensors among ``pairs`` (name, array) live on different
    devices, or mix torch tensors with arrays of another library."""
    devs = [(n, a) for n, a in pairs if a is not None and _is_array(a)]
    torch_ones = [(n, a) for n, a in devs if is_torch(a)]
    if torch_ones and len(torch_ones) != len(devs):
        names = ", ".join(n for n, _ in devs)
        raise ValueError(f"arguments {names} mix torch tensors and other arrays")
    if torch_ones:
        d0 = torch_ones[0][1].device
        for n, a in torch_ones[1:]:
            if a.device != d0:
                raise ValueError(
                    f"{n} is on device {a.device} but {torch_ones[0][0]} is on {d0}"
                )
