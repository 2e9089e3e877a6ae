r"""Optimality certificate for the AHFDA aggregation, independent of every solver.

For any :math:`w \in \Delta` and :math:`f(w) = w^\top\psi - \tfrac{\mu}{2}\|w - c\|^2` (concave),
with :math:`g = \nabla f(w) = \psi - \mu(w - c)`,

.. math::

    0 \le \Phi(\psi) - f(w) \le \max_t g_t - w^\top g =: \mathrm{gap}(w),

because :math:`f(w') \le f(w) + g^\top(w' - w)` for every :math:`w' \in \Delta` and the
linear function :math:`g^\top w'` is maximised over the simplex at a vertex.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._utils.array import Array, to_numpy
from .._utils.validation import check_array, check_positive, check_same_device, check_tol
from ..simplex._objective import _gap, _value, check_present, default_rtol, underflow_floor
from ._qp import pow2_exponent

__all__ = ["AggregationCertificate", "certify_aggregation", "default_rtol", "underflow_floor"]


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
        ``gap`` finite and ``<= rtol * scale`` (plus an underflow floor of :math:`16 (T+1)`
        float64 subnormal units) and ``primal_feasibility <= rtol``.
    absent_mass : float
        :math:`\max_{t \notin P} |w_t|` (0 without a ``present`` mask).
    """

    gap: float
    sum_residual: float
    negativity: float
    objective: float
    upper_bound: float
    scale: float
    rtol: float
    ok: bool
    absent_mass: float = 0.0

    @property
    def primal_feasibility(self) -> float:
        """:math:`\\max(|\\mathbf 1^\\top w - 1|, \\max(0, -\\min_t w_t),
        \\max_{t\\notin P}|w_t|)`."""
        return max(self.sum_residual, self.negativity, self.absent_mass)


def certify_aggregation(
    psi: Array,
    mu: float,
    w: Array,
    *,
    present: Array | None = None,
    rtol: float | None = None,
) -> AggregationCertificate:
    r"""Certify a candidate solution ``w`` of the AHFDA aggregation.

    For :math:`\Phi(\psi) = \max_{w \in \Delta_P} f(w)`,
    :math:`f(w) = \sum_{t\in P} w_t\psi_t - \tfrac{\mu}{2}\sum_{t\in P}(w_t - c)^2`
    (:math:`P` the present tasks, all by default, :math:`c = 1/|P|`), computes the gradient
    :math:`g = \psi - \mu(w - c)`, the Frank–Wolfe duality gap
    :math:`\mathrm{gap} = \max_{t\in P} g_t - w^\top g \ge \Phi - f(w) \ge 0` (for
    :math:`w \in \Delta_P`), the primal feasibility residuals :math:`|\mathbf 1^\top w - 1|`,
    :math:`\max(0, -\min_t w_t)` and :math:`\max_{t\notin P}|w_t|`, :math:`f(w)`, and the
    bound :math:`f(w) \le \Phi \le f(w) + \mathrm{gap}`. It calls no solver: the formulas
    are those of :func:`fairmt_opt.simplex.aggregation_value`'s module.

    The gap is evaluated on :math:`\psi - \max_t\psi_t` (equal in exact arithmetic when
    :math:`\mathbf 1^\top w = 1`, and free of the cancellation of a large common offset), on
    data rescaled by an exact power of two when :math:`\max(|\psi|, \mu) > 2^{960}`, so that
    nothing overflows. ``ok`` is ``gap <= rtol * s`` with
    :math:`s = \max(\max\psi - \min\psi, \mu)` (plus :math:`16 (T+1)` float64 subnormal
    units for data at the subnormal scale) and ``primal_feasibility <= rtol``; a NaN or
    infinite gap never passes.

    Cost: :math:`O(T)`; runs on the host in float64 (tensors are copied).

    Parameters
    ----------
    psi : array_like
        Task violations, shape ``(T,)``.
    mu : float
        Regularisation strength, ``> 0``.
    w : array_like
        Candidate weights, shape ``(T,)``.
    present : bool array, optional
        The present tasks (shape ``(T,)``); ``None``: all. Absent entries of ``psi`` are not
        read; ``w`` must be 0 there. With no task present, ``w = 0`` is the solution.
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
        For NaN or inf (in present entries), shapes other than ``(T,)``, mismatched lengths
        or devices, a ``present`` that is not a bool array, ``mu <= 0`` or a negative
        ``rtol``.

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
    >>> certify_aggregation(psi, 1.0, np.array([0.75, 0.0, 0.25]),
    ...                     present=np.array([True, False, True])).ok
    True
    """
    psi = check_array(psi, "psi", ndim=1, finite=present is None)
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
    m = None
    absent = 0.0
    pp = p
    if present is not None:
        m = to_numpy(check_present(present, psi), dtype=bool)
        pp = p[m]
        if not np.isfinite(pp).all():
            raise ValueError("psi contains NaN" if np.isnan(pp).any() else "psi contains inf")
        p = np.where(m, p, 0.0)
        absent = float(np.max(np.abs(x[~m]), initial=0.0))
    big = max(float(np.max(np.abs(pp), initial=0.0)), mu_f)
    k = -pow2_exponent(big)  # huge data: centring would overflow
    pk = np.ldexp(p, k) if k else p
    mu_k = math.ldexp(mu_f, k)
    gap_k = float(_gap(np, pk, x, mu_k, m))
    obj_k = float(_value(np, pk, x, mu_k, m))
    ppk = pk if m is None else pk[m]
    scale_k = max(float(np.ptp(ppk)) if ppk.size else 0.0, mu_k)
    sum_res = abs(float(np.sum(x)) - (1.0 if m is None or m.any() else 0.0))
    neg = max(0.0, -float(np.min(x)))
    ok = bool(
        math.isfinite(gap_k)
        and gap_k <= rtol_f * scale_k + math.ldexp(underflow_floor(T), k)
        and max(sum_res, neg, absent) <= rtol_f
    )
    with np.errstate(over="ignore"):  # back in the units of psi: may overflow to inf
        gap, obj, scale = (float(np.ldexp(v, -k)) for v in (gap_k, obj_k, scale_k))
    return AggregationCertificate(gap, sum_res, neg, obj, obj + gap, scale, rtol_f, ok, absent)


def _eps_of(x: Any) -> float:
    dt = _np_dtype(x)
    if np.issubdtype(dt, np.floating):
        return float(np.finfo(dt).eps)
    return float(np.finfo(np.float64).eps)
