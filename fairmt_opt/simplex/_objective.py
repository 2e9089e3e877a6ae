r"""The AHFDA objective, written once: its value :math:`f(w)`, its Frank–Wolfe gap and the
tolerances used to judge them.

For violations :math:`\psi \in \mathbb R^T`, a set :math:`P` of present tasks
(:math:`T_P = |P|`, :math:`c = 1/T_P`) and weights :math:`w` (zero off :math:`P`),

.. math::

    f(w) = \sum_{t \in P} w_t\psi_t - \tfrac{\mu}{2}\sum_{t \in P}(w_t - c)^2,
    \qquad
    \mathrm{gap}(w) = \max_{t \in P} g_t - \sum_{t \in P} w_t g_t,
    \quad g = \psi - \max_{t\in P}\psi_t - \mu(w - c).

:math:`\Phi(\psi) = \max_{w\in\Delta_P} f(w)` and, for :math:`w \in \Delta_P`,
:math:`0 \le \Phi - f(w) \le \mathrm{gap}(w)`. The solvers (:mod:`._aggregation`) and the
independent certificate (:mod:`fairmt_opt.certificates`) both evaluate these formulas from here;
this module imports no solver.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._utils.array import Array, is_torch, namespace
from .._utils.validation import check_array, check_positive, check_same_device
from ._ops import Ops, as_ops, ops_of

__all__ = ["aggregation_value", "default_rtol", "underflow_floor"]


def default_rtol(T: int, dtype: Any = np.float64) -> float:
    r"""Default relative tolerance of :func:`~fairmt_opt.certify_aggregation`:
    :math:`16\,(T + 1)\,\epsilon`, :math:`\epsilon` the machine epsilon of ``dtype``
    (a bound on the round-off of the sums of :math:`T` terms in the gap)."""
    eps = float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else float(
        np.finfo(np.float64).eps
    )
    return 16.0 * (T + 1) * eps


def underflow_floor(T: int) -> float:
    r"""Absolute floor added to the gap tolerance: :math:`16 (T + 1)` times the smallest
    float64 subnormal. It matters only for data at the subnormal scale (below about
    :math:`10^{-307}`), where round-off is absolute rather than relative."""
    return 16.0 * (T + 1) * float(np.finfo(np.float64).smallest_subnormal)


def check_mu(mu: Any) -> float:
    """``mu`` as a float, finite and > 0 (a Python float in range is taken as is)."""
    if type(mu) is float and 0.0 < mu < math.inf:
        return mu
    return check_positive(mu, "mu")


def _centre(o: Ops, m: Array | None, T: int, w: Array) -> Array:
    """``w - c`` on the present entries, 0 elsewhere (every row with nothing present)."""
    if m is None:
        return w - o.const(1.0 / T, w)
    c = o.recip(o.count(m, w))  # inf where nothing is present: discarded
    return o.where(m, w - c, 0.0)


def _pmax(o: Ops, p: Array, m: Array | None, pmax: Array | None = None) -> Array:
    r""":math:`\max_{t\in P} \psi_t` (shape ``(..., 1)``), 0 where nothing is present;
    ``pmax`` is that maximum if already known (``-inf`` where nothing is present)."""
    if pmax is None:
        pmax = o.amax(p if m is None else o.where(m, p, -math.inf))
    return pmax if m is None else o.or_zero(pmax)


def _value(xp: Any, psi: Array, w: Array, mu: float, m: Array | None,
           pmax: Array | None = None) -> Array:
    r""":math:`f(w)` along the last axis (no validation), evaluated as
    :math:`\bar\psi + \sum_t w_t(\psi_t - \bar\psi) - \tfrac{\mu}{2}\|w - c\|^2` with
    :math:`\bar\psi = \max_{t\in P}\psi_t` held fixed (detached): equal to
    :math:`w^\top\psi - \tfrac{\mu}{2}\|w - c\|^2` on the simplex, free of the round-off of
    a large common offset, and with gradient exactly ``w`` with respect to ``psi``. Entries
    of zero weight add nothing (even where :math:`\psi_t - \bar\psi` overflows). ``xp`` is an
    array namespace (``numpy`` itself included) or an :class:`~._ops.Ops`; ``pmax`` the
    maximum of the present entries of ``psi`` if already known."""
    o = as_ops(xp)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # discarded entries
        dw = _centre(o, m, psi.shape[-1], w)
        pmax = _pmax(o, o.detach(psi), m, pmax)
        keep = o.nonzero(w) if m is None else m & o.nonzero(w)
        d = o.where(keep, psi - pmax, 0.0)  # absent or no weight: nothing, even if NaN
        return pmax[..., 0] + (o.dot(w, d) - o.const(0.5 * mu, dw) * o.dot(dw, dw))


def _gap(xp: Any, psi: Array, w: Array, mu: float, m: Array | None,
         pmax: Array | None = None) -> Array:
    r"""The Frank–Wolfe gap at ``w`` along the last axis, on the centred ``psi`` (no
    validation). Entries with zero weight add nothing to :math:`w^\top g`, even where
    :math:`g = -\infty` (a centred entry beyond the floating range). ``pmax`` as for
    :func:`_value`."""
    o = as_ops(xp)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # discarded entries
        g = (psi - _pmax(o, psi, m, pmax)) - o.const(mu, w) * _centre(o, m, psi.shape[-1], w)
        if m is None:
            return o.max(g) - o.dot(w, o.where(o.nonzero(w), g, 0.0))
        g = o.where(m, g, -math.inf)
        gmax = o.max(g)
        wg = o.dot(w, o.where(m & o.nonzero(w), g, 0.0))
        return o.where(gmax > -math.inf, gmax - wg, 0.0)


def _scalar(x: Any) -> Any:
    """A 0-d NumPy array as a NumPy scalar (what the vector case returns); others as is."""
    return x[()] if isinstance(x, np.ndarray) and x.ndim == 0 else x


def check_present(present: Any, psi: Array) -> Array:
    """Validate a ``present`` mask: a bool array of the shape (and library, device) of
    ``psi``; NumPy bool arrays and lists of bools are accepted for NumPy ``psi``."""
    if getattr(present, "shape", None) == psi.shape:  # the usual case, checked cheaply
        o = ops_of(psi)
        if ops_of(present) is o and o.is_bool(present) and o.same_device(present, psi):
            return present
    if is_torch(psi):
        if not is_torch(present):
            raise ValueError("present must be a torch bool tensor when psi is a tensor")
        check_same_device(("psi", psi), ("present", present))
    else:
        if not hasattr(present, "dtype"):
            present = np.asarray(present)
        if is_torch(present):
            raise ValueError("present must be a NumPy bool array when psi is not a tensor")
    if str(present.dtype).rsplit(".", 1)[-1] != "bool":
        raise ValueError(f"present must be a bool array, got dtype {present.dtype}")
    if tuple(present.shape) != tuple(psi.shape):
        raise ValueError(
            f"present must have the shape of psi {tuple(psi.shape)}, got {tuple(present.shape)}"
        )
    return present


def aggregation_value(
    psi: Array, weights: Array, mu: float, *, present: Array | None = None
) -> Array:
    r"""The AHFDA objective :math:`f(w)` at given weights (the value :math:`\Phi(\psi)` at the
    maximiser).

    .. math::

        f(w) = \sum_{t \in P} w_t\psi_t - \tfrac{\mu}{2}\sum_{t \in P}\Big(w_t -
        \tfrac{1}{T_P}\Big)^2,

    with :math:`P` the present tasks (all of them when ``present`` is ``None``) and
    :math:`T_P = |P|`; absent entries contribute nothing (whatever ``psi`` holds there) and
    no present task gives 0. At :math:`w = w^*` (from :func:`aggregate_violations`) this is
    :math:`\Phi(\psi)`; with ``weights`` held fixed (detached), its gradient with respect to
    ``psi`` is ``weights`` on the present entries, which is :math:`\nabla_\psi\Phi` by
    Danskin's theorem: the training loop's differentiable :math:`\Phi`.

    Cost: :math:`O(T)` array operations, batched over leading axes, array-API native with no
    host synchronisation (no finiteness check is made).

    Parameters
    ----------
    psi : array, shape (..., T)
        Task violations (a ``torch.Tensor`` that requires grad stays in the graph).
    weights : array, shape (..., T)
        Weights :math:`w` (any point, usually ``aggregate_violations(...).weights``).
    mu : float
        Regularisation strength :math:`\mu > 0` (a Python or NumPy number).
    present : bool array, shape (..., T), optional
        The present tasks; ``None`` means all.

    Returns
    -------
    array, shape (...)
        :math:`f(w)`; a NumPy scalar for NumPy vectors, a 0-d tensor for a tensor vector.

    Raises
    ------
    ValueError
        For mismatched shapes or devices, a non-bool ``present`` or ``mu`` not finite and > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt import aggregate_violations
    >>> from fairmt_opt.simplex import aggregation_value
    >>> psi = np.array([0.5, 0.2, 0.0])
    >>> w = aggregate_violations(psi, 1.0).weights
    >>> round(float(aggregation_value(psi, w, 1.0)), 6)
    0.296667
    >>> present = np.array([True, False, True])  # the middle task is absent
    >>> res = aggregate_violations(psi, 1.0, present=present)
    >>> res.weights
    array([0.75, 0.  , 0.25])
    >>> float(aggregation_value(psi, res.weights, 1.0, present=present))
    0.3125
    """
    o = ops_of(psi) if hasattr(psi, "dtype") else None
    if not (  # the usual case, checked cheaply: floating arrays of one library, one shape
        o is not None and hasattr(weights, "dtype") and ops_of(weights) is o
        and o.is_float(psi) and o.is_float(weights) and weights.shape == psi.shape
        and psi.ndim >= 1 and 0 not in psi.shape and o.same_device(weights, psi)
    ):
        psi = check_array(psi, "psi", min_ndim=1, finite=False)
        weights = check_array(weights, "weights", min_ndim=1, finite=False)
        check_same_device(("psi", psi), ("weights", weights))
        if tuple(weights.shape) != tuple(psi.shape):
            raise ValueError(f"weights must have the shape of psi {tuple(psi.shape)}, got "
                             f"{tuple(weights.shape)}")
        o = as_ops(namespace(psi, weights))
        if not o.is_float(psi):
            psi = o.astype(psi, o.xp.float64)
    mu_f = check_mu(mu)
    if present is not None:
        present = check_present(present, psi)
    if weights.dtype != psi.dtype:
        weights = o.astype(weights, psi.dtype)
    return _scalar(_value(o, psi, weights, mu_f, present))
