r"""KKT residuals of the fairness-constrained multi-task problem (SPEC §5).

At a KKT point :math:`(\theta^*, \alpha^*, \eta^*)` of
:math:`\min_\theta (L_1, \dots, L_T)` s.t. :math:`\Phi \le \varepsilon`:

* stationarity: :math:`\sum_t \alpha_t \nabla L_t + \eta\nabla\Phi = 0`;
* primal feasibility: :math:`\Phi \le \varepsilon`;
* dual feasibility: :math:`\eta \ge 0`;
* complementary slackness: :math:`\eta(\Phi - \varepsilon) = 0`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._utils.array import Array, to_numpy
from .._utils.validation import check_array, check_same_device, check_tol, to_float

__all__ = ["PrimalDualCertificate", "certify_primal_dual"]


def _scalar(x: Any, name: str) -> float:
    if hasattr(x, "shape") and tuple(x.shape) != ():
        raise ValueError(f"{name} must be a scalar, got shape {tuple(x.shape)}")
    if hasattr(x, "detach"):  # a 0-d tensor: a real dtype (not bool, not complex)
        if str(x.dtype) == "torch.bool" or x.is_complex():
            raise ValueError(f"{name} must be a real number, got a tensor of dtype {x.dtype}")
        v = float(x.detach().cpu())
    else:  # a Python or NumPy real number or 0-d array; booleans and strings refused
        v = to_float(x, name)
    if math.isnan(v):
        raise ValueError(f"{name} contains NaN")
    if math.isinf(v):
        raise ValueError(f"{name} contains inf")
    return v


@dataclass(frozen=True)
class PrimalDualCertificate:
    r"""The four KKT residuals of SPEC §5, returned by :func:`certify_primal_dual`.

    Attributes
    ----------
    stationarity : float
        :math:`\|\sum_t \alpha_t \nabla L_t + \eta \nabla\Phi\|_2`.
    stationarity_rel : float
        ``stationarity`` divided by the gradient scale
        :math:`\sum_t |\alpha_t| \|\nabla L_t\| + |\eta| \|\nabla\Phi\|` (0 when that is 0):
        a number in :math:`[0, 1]`, 0 at a stationary point, 1 when nothing cancels.
    primal_feasibility : float
        :math:`\max(0, \Phi - \varepsilon)`.
    dual_feasibility : float
        :math:`\max(0, -\eta)`.
    complementary_slackness : float
        :math:`|\eta(\Phi - \varepsilon)|`.
    rtol : float
        The tolerance of ``ok``.
    ok : bool
        ``stationarity <= rtol * max(1, scale)`` (that is ``stationarity_rel <= rtol`` when the
        gradient scale is at least 1, and an absolute test below it, so that a stationary point
        whose gradients are all round-off is accepted),
        ``primal_feasibility <= rtol * max(1, |eps|)``,
        ``dual_feasibility <= rtol * max(1, |eta|)`` and
        ``complementary_slackness <= rtol * max(1, |eta|) * max(1, |phi|, |eps|)``.
    """

    stationarity: float
    stationarity_rel: float
    primal_feasibility: float
    dual_feasibility: float
    complementary_slackness: float
    rtol: float
    ok: bool


def certify_primal_dual(
    task_grads: Array,
    fairness_grad: Array,
    alpha: Array,
    eta: Any,
    phi: Any,
    eps: Any,
    *,
    rtol: float = 1e-6,
) -> PrimalDualCertificate:
    r"""KKT residuals of :math:`\min_\theta (L_1,\dots,L_T)` s.t. :math:`\Phi(\theta) \le
    \varepsilon` at a candidate :math:`(\theta, \alpha, \eta)`.

    .. math::

        r_{\mathrm{stat}} = \Big\|\sum_t \alpha_t \nabla L_t + \eta \nabla\Phi\Big\|_2,\quad
        r_{\mathrm{primal}} = (\Phi - \varepsilon)_+,\quad
        r_{\mathrm{dual}} = (-\eta)_+,\quad
        r_{\mathrm{cs}} = |\eta(\Phi - \varepsilon)|.

    ``alpha`` must be the weights that actually multiply the losses in the objective whose
    stationarity is checked: in training that is :math:`\tilde\alpha = T\alpha` by default
    (SPEC §5 [choice]; :math:`\tilde\alpha = \alpha` under the other option). The function does
    not rescale it, and does not require :math:`\alpha \in \Delta`.

    Cost: :math:`O(T p)`; runs on the host in float64 (tensors are copied).

    Parameters
    ----------
    task_grads : array, shape (T, p)
        Row :math:`t` is :math:`\nabla_\theta L_t` (flattened parameters).
    fairness_grad : array, shape (p,)
        :math:`\nabla_\theta \Phi`.
    alpha : array, shape (T,)
        Task weights multiplying the losses (see above).
    eta : float
        Dual variable :math:`\eta`.
    phi : float
        Constraint value :math:`\Phi`.
    eps : float
        Constraint level :math:`\varepsilon`.
    rtol : float, optional
        Tolerance of ``ok`` (default ``1e-6``; the residuals are relative, see
        :class:`PrimalDualCertificate`).

    Returns
    -------
    PrimalDualCertificate

    Raises
    ------
    ValueError
        For NaN or inf, a ``task_grads`` that is not 2-D, a ``fairness_grad`` of the wrong
        length, an ``alpha`` of the wrong length, non-scalar ``eta``, ``phi`` or ``eps``,
        arrays on different devices, or a negative ``rtol``.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt import certify_primal_dual
    >>> G = np.array([[1.0, 0.0], [0.0, 1.0]])        # grad L_1, grad L_2
    >>> gphi = np.array([-1.0, -1.0])                  # grad Phi
    >>> cert = certify_primal_dual(G, gphi, np.array([0.5, 0.5]), 0.5, 0.2, 0.2)
    >>> cert.stationarity, cert.complementary_slackness, cert.ok
    (0.0, 0.0, True)
    >>> certify_primal_dual(G, gphi, np.array([0.5, 0.5]), 0.5, 0.3, 0.2).ok  # infeasible
    False
    """
    G = check_array(task_grads, "task_grads", ndim=2)
    gphi = check_array(fairness_grad, "fairness_grad", ndim=1)
    a = check_array(alpha, "alpha", ndim=1)
    check_same_device(("task_grads", G), ("fairness_grad", gphi), ("alpha", a))
    T, p = G.shape
    if gphi.shape[0] != p:
        raise ValueError(
            f"fairness_grad must have length p = task_grads.shape[1] = {p}, got {gphi.shape[0]}"
        )
    if a.shape[0] != T:
        raise ValueError(
            f"alpha must have length T = task_grads.shape[0] = {T}, got {a.shape[0]}"
        )
    eta_f = _scalar(eta, "eta")
    phi_f = _scalar(phi, "phi")
    eps_f = _scalar(eps, "eps")
    rtol_f = check_tol(rtol, "rtol")
    Gn, gn, an = to_numpy(G), to_numpy(gphi), to_numpy(a)
    v = an @ Gn + eta_f * gn
    stat = float(np.linalg.norm(v))
    scale = float(np.abs(an) @ np.linalg.norm(Gn, axis=1)) + abs(eta_f) * float(
        np.linalg.norm(gn)
    )
    stat_rel = stat / scale if scale > 0 else 0.0
    primal = max(0.0, phi_f - eps_f)
    dual = max(0.0, -eta_f)
    cs = abs(eta_f * (phi_f - eps_f))
    ok = (
        stat <= rtol_f * max(1.0, scale)
        and primal <= rtol_f * max(1.0, abs(eps_f))
        and dual <= rtol_f * max(1.0, abs(eta_f))
        and cs <= rtol_f * max(1.0, abs(eta_f)) * max(1.0, abs(phi_f), abs(eps_f))
    )
    return PrimalDualCertificate(stat, stat_rel, primal, dual, cs, rtol_f, bool(ok))
