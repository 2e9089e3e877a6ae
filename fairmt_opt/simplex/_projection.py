r"""Euclidean projection onto the probability simplex (sort-based, array-API native).

The projection of :math:`v \in \mathbb R^T` onto
:math:`\Delta = \{x \in \mathbb R^T : x \ge 0,\ \mathbf 1^\top x = 1\}` is
:math:`x_t = (v_t - \theta)_+` with the threshold :math:`\theta` fixed by
:math:`\mathbf 1^\top x = 1`. Write :math:`z = \max_t v_t - v \ge 0` (the distances below the
maximum, which makes the computation shift invariant) and :math:`s` the entries of :math:`z`
sorted in increasing order. The levels :math:`m_k = (1 + \sum_{i \le k} s_i)/k` decrease
exactly while :math:`s_k < m_k` (a prefix of :math:`k`) and then increase, so the water level
is :math:`m = \min_k m_k` and :math:`x = (m - z)_+`, :math:`\theta = \max_t v_t - m`: one
sort, one cumulative sum and one minimum, with no gather and no data-dependent branch, for
every size (:math:`T = 1` gives :math:`m = 1`, :math:`x = 1` exactly). This is what lets the
same code run batched on NumPy arrays and PyTorch tensors (CPU or CUDA) without a host
synchronisation.
"""

from __future__ import annotations

import operator
from typing import Any

from .._utils.array import Array
from .._utils.validation import check_array
from ._ops import _NUMPY, Ops, ops_of

__all__ = ["project_simplex"]


def _normalize_axis(axis: Any, ndim: int) -> int:
    try:
        ax = operator.index(axis)
    except TypeError as exc:
        raise ValueError(f"axis must be an integer, got {axis!r}") from exc
    if not -ndim <= ax < ndim:
        raise ValueError(f"axis {ax} is out of bounds for v with {ndim} dimension(s)")
    return ax % ndim


def _water_fill(o: Ops, z: Array) -> tuple[Array, Array]:
    r"""The water-filling along the last axis: ``(x, m)`` with :math:`x = (m - z)_+`,
    :math:`\mathbf 1^\top x = 1`, for ``z`` whose smallest entry is 0 (distances below the
    maximum); ``m`` has shape ``(..., 1)``.

    The one implementation of the sort-threshold formula: the projection and the exact
    aggregation (every namespace, NumPy included) run this code, seven array operations.
    """
    m = o.amin((o.cumsum(o.sort(z)) + o.const(1.0, z)) / o.counts(z))
    return o.relu(m - z), m


def _project_last(o: Ops, v: Array) -> Array:
    """The projection of ``v`` onto the simplex along the last axis."""
    return _water_fill(o, o.amax(v) - v)[0]


def _prepare(v: Any, name: str, check_finite: bool) -> tuple[Any, Ops]:
    """Validate ``v``; return (array, operations) with a floating dtype. A floating array of
    at least one dimension and one entry is taken as is (no copy, no conversion)."""
    if hasattr(v, "dtype") and hasattr(v, "shape"):
        o = ops_of(v)
        if not (o.is_float(v) and v.ndim >= 1 and 0 not in v.shape):
            v = check_array(v, name, min_ndim=1, finite=False)
            if not o.is_float(v):
                v = o.astype(v, o.xp.float64)
    else:  # lists and other sequences: a float64 NumPy array
        v = check_array(v, name, min_ndim=1, finite=False)
        o = _NUMPY
    if check_finite and not o.all_finite(v):
        raise ValueError(f"{name} contains NaN" if bool(o.xp.any(o.xp.isnan(v))) else
                         f"{name} contains inf")
    return v, o


def project_simplex(v: Array, *, axis: int = -1, check_finite: bool = True) -> Array:
    r"""Euclidean projection onto the probability simplex, batched over the other axes.

    Solves, for every slice :math:`v` of the input along ``axis``,

    .. math::

        \Pi_\Delta(v) = \arg\min_{x \in \mathbb R^T} \tfrac12 \|x - v\|_2^2
        \quad \text{s.t.} \quad x \ge 0,\ \mathbf 1^\top x = 1,

    whose solution is :math:`x_t = (v_t - \theta)_+` with
    :math:`\theta = \max_k \big(\sum_{i \le k} u_i - 1\big)/k`, :math:`u` the entries of
    :math:`v` sorted in decreasing order (every size, 1 and 2 included, uses this formula). The
    input is shifted by its maximum first (the projection is invariant to adding a constant),
    so entries of magnitude :math:`10^{8}` or more are handled without cancellation.

    Cost: :math:`O(T \log T)` per slice (one sort, one cumulative sum, nine array operations
    in all), fully vectorised
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
    >>> project_simplex(np.array([[3.0, 0.0], [0.2, 0.4]]))  # batched
    array([[1. , 0. ],
           [0.4, 0.6]])

    It agrees with a generic conic solver:

    >>> from fairmt_opt import reference
    >>> v = np.array([0.9, 0.8, 0.1, -2.0])
    >>> bool(np.allclose(project_simplex(v), reference.project_simplex(v).x, atol=1e-7))
    True
    """
    arr, o = _prepare(v, "v", check_finite)
    ax = _normalize_axis(axis, arr.ndim)
    last = arr.ndim - 1
    if ax == last:
        return _project_last(o, arr)
    xp = o.xp
    return xp.moveaxis(_project_last(o, xp.moveaxis(arr, ax, last)), last, ax)
