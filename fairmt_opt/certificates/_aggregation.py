r"""Optimality certificate for the AHFDA aggregation, independent of every solver.

For any :math:`w \in \Delta` and :math:`f(w) = w^\top\psi - \tfrac{\mu}{2}\|w - c\|^2` (concave),
with :math:`g = \nabla f(w) = \psi - \mu(w - c)`,

.. math::

    0 \le \Phi(\psi) - f(w) \le \max_t g_t - w^\top g =: \mathrm{gap}(w),

because :math:`f(w') \le f(w) + g^\top(w' - w)` for every :math:`w' \in \Delta` and the
linear function :math:`g^\top w'` is maximised over the simplex at a vertex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._utils.array import Array, to_numpy
from .._utils.validation import check_array, check_positive, check_same_device, check_tol

__all__ = ["AggregationCertificate", "certify_aggregation", "default_rtol", "underflow_floor"]


def default_rtol(T: int, dtype: Any = np.float64) -> float:
    r"""Default relative tolerance of :func:`certify_aggregation`:
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


def _np_dtype(x: Any) -> Any:
    dt = x.dtype
    if isinstance(dt, np.dtype):
        return dt
    name = str(dt).rsplit(".", 1)[-1]  # "torch.float32", "array_api_strict.float64", ...
    try:
        return np.dtype(name)
    except TypeError:
        return np.dtype(np.float32)  # bfloat16 and other low-precision types: be lenient


@dataclass(frozen=True)
class AggregationCertificate:
    r"""Certificate returned by :func:`certify_aggregation` (all floats, host side).

    Attributes
    ----------
    gap : float
        Frank–Wolfe duality gap :math:`\max_t g_t - w^\top g` (an upper bound on
        :math:`\Phi - f(w)` when :math:`w \in \Delta`).
    sum_residual : float
        :math:`|\mathbf 1^\top w - 1|`.
    negativity : float
        :math:`\max(0, -\min_t w_t)`.
    objective : float
        :math:`f(w)`.
    upper_bound : float
        :math:`f(w) + \mathrm{gap}`, an upper bound on :math:`\Phi(\psi)` when :math:`w` is
        feasible (then :math:`f(w) \le \Phi \le f(w) + \mathrm{gap}`).
    scale : float
        :math:`s = \max(\max\psi - \min\psi, \mu)`, the scale of the gradient differences.
    rtol : float
        The relative tolerance used.
    ok : bool
        ``gap <= rtol * scale`` (plus an underflow floor of :math:`16 (T+1)` float64
        subnormal units) and ``max(sum_residual, negativity) <= rtol``.
    """

    gap: float
    sum_residual: float
    negativity: float
    objective: float
    upper_bound: float
    scale: float
    rtol: float
    ok: bool

    @property
    def primal_feasibility(self) -> float:
        """:math:`\\max(|\\mathbf 1^\\top w - 1|, \\max(0, -\\min_t w_t))`."""
        return max(self.sum_residual, self.negativity)


def certify_aggregation(
    psi: Array, mu: float, w: Array, *, rtol: float | None = None
) -> AggregationCertificate:
    r"""Certify a candidate solution ``w`` of the AHFDA aggregation.

    For :math:`\Phi(\psi) = \max_{w \in \Delta} f(w)`,
    :math:`f(w) = w^\top\psi - \tfrac{\mu}{2}\|w - c\|^2`, computes the gradient
    :math:`g = \psi - \mu(w - c)`, the Frank–Wolfe duality gap
    :math:`\mathrm{gap} = \max_t g_t - w^\top g \ge \Phi - f(w) \ge 0` (for :math:`w \in \Delta`),
    the primal feasibility residuals :math:`|\mathbf 1^\top w - 1|` and
    :math:`\max(0, -\min_t w_t)`, :math:`f(w)`, and the bound
    :math:`f(w) \le \Phi \le f(w) + \mathrm{gap}`. It calls no solver.

    The gap is evaluated on :math:`\psi - \max_t\psi_t` (equal in exact arithmetic when
    :math:`\mathbf 1^\top w = 1`, and free of the cancellation of a large common offset).
    ``ok`` is ``gap <= rtol * s`` with :math:`s = \max(\max\psi - \min\psi, \mu)` (plus
    :math:`16 (T+1)` float64 subnormal units for data at the subnormal scale) and
    ``max(sum_residual, negativity) <= rtol``.

    Cost: :math:`O(T)`; runs on the host in float64 (tensors are copied).

    Parameters
    ----------
    psi : array_like
        Task violations, shape ``(T,)``.
    mu : float
        Regularisation strength, ``> 0``.
    w : array_like
        Candidate weights, shape ``(T,)``.
    rtol : float, optional
        Relative tolerance of ``ok``. Default :math:`16 (T + 1)\epsilon`, with
        :math:`\epsilon` the machine epsilon of the coarser floating dtype of ``psi`` and ``w``
        (so a float32 solution is judged at float32 precision).

    Returns
    -------
    AggregationCertificate

    Raises
    ------
    ValueError
        For NaN or inf, shapes other than ``(T,)`` for both, mismatched lengths or devices,
        ``mu <= 0`` or a negative ``rtol``.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt import certify_aggregation
    >>> psi = np.array([0.5, 0.2, 0.0])
    >>> cert = certify_aggregation(psi, 1.0, np.array([0.6, 0.3, 0.1]))
    >>> cert.ok, round(cert.objective, 6)
    (True, 0.296667)
    >>> bad = certify_aggregation(psi, 1.0, np.array([0.5, 0.4, 0.1]))  # perturbed
    >>> bad.ok, round(bad.gap, 6)
    (False, 0.09)
    """
    psi = check_array(psi, "psi", ndim=1)
    w = check_array(w, "w", ndim=1)
    check_same_device(("psi", psi), ("w", w))
    if w.shape[0] != psi.shape[0]:
        raise ValueError(f"w must have the length of psi ({psi.shape[0]}), got {w.shape[0]}")
    mu_f = check_positive(mu, "mu")
    T = int(psi.shape[0])
    if rtol is None:
        eps = max(_eps_of(psi), _eps_of(w))
        rtol_f = 16.0 * (T + 1) * eps
    else:
        rtol_f = check_tol(rtol, "rtol")
    p = to_numpy(psi)
    x = to_numpy(w)
    c = 1.0 / T
    pmax = float(p.max())
    pc = p - pmax
    dw = x - c
    g = pc - mu_f * dw
    gap = float(np.max(g) - x @ g)
    sum_res = abs(float(np.sum(x)) - 1.0)
    neg = max(0.0, -float(np.min(x)))
    obj = float(x @ p - 0.5 * mu_f * (dw @ dw))
    scale = max(float(-pc.min()), mu_f)
    ok = bool(gap <= rtol_f * scale + underflow_floor(T) and max(sum_res, neg) <= rtol_f)
    return AggregationCertificate(gap, sum_res, neg, obj, obj + gap, scale, rtol_f, ok)


def _eps_of(x: Any) -> float:
    dt = _np_dtype(x)
    if np.issubdtype(dt, np.floating):
        return float(np.finfo(dt).eps)
    return float(np.finfo(np.float64).eps)
