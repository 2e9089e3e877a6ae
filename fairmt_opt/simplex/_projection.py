r"""Euclidean projection onto the probability simplex (sort-based, array-API native).

The projection of :math:`v \in \mathbb R^T` onto
:math:`\Delta = \{x \in \mathbb R^T : x \ge 0,\ \mathbf 1^\top x = 1\}` is
:math:`x_t = (v_t - \theta)_+` with the threshold :math:`\theta` fixed by
:math:`\mathbf 1^\top x = 1`. With :math:`u` the entries of :math:`v` sorted in decreasing order
and :math:`t_k = (\sum_{i \le k} u_i - 1)/k`, the sequence :math:`t_k` increases exactly while
:math:`u_k > t_k` (a prefix of :math:`k`) and then decreases, so :math:`\theta = \max_k t_k`: one
sort, one cumulative sum and one maximum, with no gather and no data-dependent branch. This is
what lets the same code run batched on PyTorch tensors (CPU or CUDA) without a host
synchronisation.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .._utils.array import Array, device_of, namespace
from .._utils.validation import check_array

__all__ = ["project_simplex"]


def _normalize_axis(axis: Any, ndim: int) -> int:
    try:
        ax = operator.index(axis)
    except TypeError as exc:
        raise ValueError(f"axis must be an integer, got {axis!r}") from exc
    if not -ndim <= ax < ndim:
        raise ValueError(f"axis {ax} is out of bounds for v with {ndim} dimension(s)")
    return ax % ndim


def _project_last(xp: Any, v: Array) -> tuple[Array, Array, Array]:
    """The projection along the last axis, its threshold relative to the maximum and the
    maximum (both of shape ``(..., 1)``; the threshold is their sum).

    The one implementation of the sort-threshold formula: every namespace (NumPy included)
    runs this code. Sizes 1 and 2 (static shapes, not data) use their closed forms.
    """
    T = v.shape[-1]
    vmax = xp.max(v, axis=-1, keepdims=True)
    if T == 1:
        return xp.ones_like(v), xp.full_like(v, -1.0), vmax
    if T == 2:
        a = xp.clip(0.5 * (v[..., :1] - v[..., 1:] + 1.0), 0.0, 1.0)
        theta = xp.maximum(0.5 * (v[..., :1] + v[..., 1:] - 1.0) - vmax, xp.full_like(a, -1.0))
        return xp.concat((a, 1.0 - a), axis=-1), theta, vmax
    y = v - vmax  # shift invariance: keeps the relevant entries in [-1, 0]
    u = xp.sort(y, axis=-1, descending=True)
    css = xp.cumulative_sum(u, axis=-1) - 1.0
    k = xp.arange(1, T + 1, dtype=v.dtype, device=device_of(v))
    theta = xp.max(css / k, axis=-1, keepdims=True)
    x = y - theta
    return xp.where(x > 0.0, x, 0.0), theta, vmax


def _prepare(v: Any, name: str, check_finite: bool) -> tuple[Any, Any]:
    """Validate ``v``; return (array, namespace) with a floating dtype."""
    if isinstance(v, np.ndarray) or not hasattr(v, "dtype"):
        arr = np.asarray(v) if isinstance(v, np.ndarray) else v
        arr = check_array(arr, name, min_ndim=1, finite=False)
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float64)
        if check_finite and not np.isfinite(arr).all():
            if np.isnan(arr).any():
                raise ValueError(f"{name} contains NaN")
            raise ValueError(f"{name} contains inf")
        return arr, namespace(arr)
    arr = check_array(v, name, min_ndim=1, finite=check_finite)
    xp = namespace(arr)
    if not xp.isdtype(arr.dtype, "real floating"):
        arr = xp.astype(arr, xp.float64)
    return arr, xp


def project_simplex(v: Array, *, axis: int = -1, check_finite: bool = True) -> Array:
    r"""Euclidean projection onto the probability simplex, batched over the other axes.

    Solves, for every slice :math:`v` of the input along ``axis``,

    .. math::

        \Pi_\Delta(v) = \arg\min_{x \in \mathbb R^T} \tfrac12 \|x - v\|_2^2
        \quad \text{s.t.} \quad x \ge 0,\ \mathbf 1^\top x = 1,

    whose solution is :math:`x_t = (v_t - \theta)_+` with
    :math:`\theta = \max_k \big(\sum_{i \le k} u_i - 1\big)/k`, :math:`u` the entries of
    :math:`v` sorted in decreasing order. Size 2 uses the closed form
    :math:`x_1 = \mathrm{clip}\big((v_1 - v_2 + 1)/2, 0, 1\big)`, size 1 returns 1. The input is
    shifted by its maximum first (the projection is invariant to adding a constant), so entries
    of magnitude :math:`10^{8}` or more are handled without cancellation.

    Cost: :math:`O(T \log T)` per slice (one sort and one cumulative sum), fully vectorised
    over the leading axes. The computation is written against the Python array API: PyTorch
    tensors (CPU or CUDA) stay on their device, with no data-dependent host synchronisation
    except the optional finiteness check.

    Parameters
    ----------
    v : array_like
        Input of at least one dimension: a NumPy array, a list, or any array-API array
        (e.g. a ``torch.Tensor``). Read-only and non-contiguous inputs are accepted and never
        modified.
    axis : int, optional
        The axis along which to project (default: the last one). Every other axis is a batch
        axis.
    check_finite : bool, optional
        Raise ``ValueError`` if ``v`` holds NaN or inf (default ``True``). On a CUDA tensor this
        check synchronises with the host; pass ``False`` to skip it inside a training loop.

    Returns
    -------
    x : array
        The projection, same shape and array type as ``v`` (same device); floating inputs keep
        their dtype, integer inputs give float64.

    Raises
    ------
    ValueError
        If ``v`` is 0-dimensional or empty, holds NaN or inf, or ``axis`` is out of bounds.

    See Also
    --------
    fairmt_opt.reference.project_simplex : the same problem solved by cvxpy.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt import project_simplex
    >>> project_simplex(np.array([0.5, 0.2, -0.3]))
    array([0.65, 0.35, 0.  ])
    >>> project_simplex(np.array([[3.0, 0.0], [0.2, 0.4]]))  # batched; size-2 closed form
    array([[1. , 0. ],
           [0.4, 0.6]])

    It agrees with a generic conic solver:

    >>> from fairmt_opt import reference
    >>> v = np.array([0.9, 0.8, 0.1, -2.0])
    >>> bool(np.allclose(project_simplex(v), reference.project_simplex(v).x, atol=1e-7))
    True
    """
    arr, xp = _prepare(v, "v", check_finite)
    ax = _normalize_axis(axis, arr.ndim)
    last = arr.ndim - 1
    if ax == last:
        return _project_last(xp, arr)[0]
    return xp.moveaxis(_project_last(xp, xp.moveaxis(arr, ax, last))[0], last, ax)
