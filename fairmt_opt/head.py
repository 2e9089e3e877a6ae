r"""Head-aware proxy of the task Gram matrix (SPEC §6), framework-agnostic.

For a scalar :math:`F` of the logits, its representation direction is
:math:`r_F = \nabla_s F(h + s)|_{s=0}` (one shift :math:`s \in \mathbb R^d` added to every
sample's representation). Through a linear one-logit head :math:`z_{it} = a_t^\top h_i + c_t`,
:math:`r_t = u_t a_t` with :math:`u_t = \sum_i \partial L_t/\partial z_{it}` the summed logit
sensitivity, so the Gram matrix of the directions is
:math:`K = R R^\top = \mathrm{Diag}(u)\, A A^\top \mathrm{Diag}(u)`, at a cost independent of the
size of the shared encoder.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._utils.array import Array, is_torch, namespace
from ._utils.validation import check_array, check_positive, check_same_device

__all__ = ["HeadQP", "head_aware_qp", "head_gram"]


def _sym(xp: Any, K: Array) -> Array:
    """Exactly symmetric copy of a Gram matrix (BLAS need not return one)."""
    return 0.5 * (K + xp.matrix_transpose(K))


def _float(xp: Any, x: Array) -> Array:
    return x if xp.isdtype(x.dtype, "real floating") else xp.astype(x, xp.float64)


def head_gram(A: Array, u: Array, *, check_finite: bool = True) -> Array:
    r"""Gram matrix of the head-aware task directions of one-logit linear heads.

    .. math::

        K = \mathrm{Diag}(u)\, A A^\top\, \mathrm{Diag}(u), \qquad
        K_{st} = u_s u_t\, \langle a_s, a_t\rangle,

    i.e. :math:`K = R R^\top` for the rows :math:`r_t = u_t a_t` (SPEC §6).

    Cost: :math:`O(T^2 d)` (one :math:`T \times d` by :math:`d \times T` product), independent
    of the number of encoder parameters. Array-API native: torch tensors stay on their device.

    Parameters
    ----------
    A : array, shape (T, d)
        Stacked weight rows :math:`a_t` of the one-logit task heads.
    u : array, shape (T,)
        Summed logit sensitivities :math:`u_t = \sum_i \partial L_t/\partial z_{it}`.
    check_finite : bool, optional
        Raise ``ValueError`` on NaN or inf (default ``True``; on a CUDA tensor this
        synchronises with the host, pass ``False`` to avoid it in a training loop).

    Returns
    -------
    K : array, shape (T, T)
        Symmetric positive semidefinite (exactly symmetric), array type, device and floating
        dtype of ``A`` (integer input gives float64).

    Raises
    ------
    ValueError
        If ``A`` is not 2-D, ``u`` is not 1-D of length ``A.shape[0]``, either holds NaN or
        inf, or they live on different devices.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt import head_gram
    >>> A = np.array([[1.0, 0.0], [1.0, 1.0]])
    >>> head_gram(A, np.array([2.0, -1.0]))
    array([[ 4., -2.],
           [-2.,  2.]])
    """
    A = check_array(A, "A", ndim=2, finite=check_finite)
    u = check_array(u, "u", ndim=1, finite=check_finite)
    check_same_device(("A", A), ("u", u))
    if u.shape[0] != A.shape[0]:
        raise ValueError(
            f"u must have one entry per row of A ({A.shape[0]}), got length {u.shape[0]}"
        )
    xp = namespace(A, u)
    A = _float(xp, A)
    u = xp.astype(_float(xp, u), A.dtype)
    R = u[:, None] * A
    return _sym(xp, R @ xp.matrix_transpose(R))


class HeadQP(NamedTuple):
    r"""Data of the head-aware simplex QP :math:`\min_{\alpha\in\Delta}
    \tfrac12\alpha^\top K\alpha + b^\top\alpha` returned by :func:`head_aware_qp`."""

    K: Array
    b: Array


def head_aware_qp(
    R: Array, r_phi: Array, eta: Any, *, check_finite: bool = True
) -> HeadQP:
    r"""Data of the head-aware QP that sets the task weights :math:`\alpha` (SPEC §6).

    .. math::

        K = R R^\top, \qquad b = \eta\, R\, r_\Phi, \qquad
        \tfrac12 \alpha^\top K \alpha + b^\top\alpha
        = \tfrac12 \|R^\top\alpha + \eta\, r_\Phi\|^2 - \tfrac{\eta^2}{2}\|r_\Phi\|^2,

    so :math:`\alpha^* = \arg\min_{\alpha\in\Delta} \tfrac12\alpha^\top K\alpha + b^\top\alpha`
    is the convex combination of task directions closest to :math:`-\eta\, r_\Phi`
    (:math:`b_t = \eta\langle r_t, r_\Phi\rangle` is a [choice] of SPEC §6).

    Cost: :math:`O(T^2 d)` for :math:`K`, :math:`O(T d)` for :math:`b`. Array-API native: torch
    tensors stay on their device (``eta`` may be a 0-d tensor, e.g. ``DualAscent.eta``).

    Parameters
    ----------
    R : array, shape (T, d)
        Stacked representation directions :math:`r_t` of the task losses.
    r_phi : array, shape (d,)
        Representation direction :math:`r_\Phi` of the aggregated violation.
    eta : float or 0-d array
        Dual variable :math:`\eta \ge 0`. A Python number is checked (finite, >= 0); a 0-d
        tensor is used as it is, without a host synchronisation.
    check_finite : bool, optional
        Raise ``ValueError`` on NaN or inf in ``R`` or ``r_phi`` (default ``True``; on a CUDA
        tensor this synchronises with the host, pass ``False`` to avoid it).

    Returns
    -------
    HeadQP
        Named tuple ``(K, b)``: ``K`` of shape (T, T), exactly symmetric PSD; ``b`` of shape
        (T,); array type, device and floating dtype of ``R``.

    Raises
    ------
    ValueError
        For wrong shapes (``R`` not 2-D, ``r_phi`` not of length ``R.shape[1]``, ``eta`` not a
        scalar), NaN or inf, a negative ``eta``, or arrays on different devices.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt import head_aware_qp
    >>> qp = head_aware_qp(np.array([[1.0, 0.0], [0.0, 2.0]]), np.array([1.0, 1.0]), 0.5)
    >>> qp.K
    array([[1., 0.],
           [0., 4.]])
    >>> qp.b
    array([0.5, 1. ])
    """
    R = check_array(R, "R", ndim=2, finite=check_finite)
    r_phi = check_array(r_phi, "r_phi", ndim=1, finite=check_finite)
    check_same_device(("R", R), ("r_phi", r_phi))
    if r_phi.shape[0] != R.shape[1]:
        raise ValueError(
            f"r_phi must have length d = R.shape[1] = {R.shape[1]}, got {r_phi.shape[0]}"
        )
    xp = namespace(R, r_phi)
    R = _float(xp, R)
    r_phi = xp.astype(_float(xp, r_phi), R.dtype)
    if hasattr(eta, "shape") and hasattr(eta, "dtype"):
        if tuple(eta.shape) != ():
            raise ValueError(f"eta must be a scalar (0-d), got shape {tuple(eta.shape)}")
        if is_torch(eta) or is_torch(R):
            check_same_device(("R", R), ("eta", eta))
        if not is_torch(eta):
            eta = check_positive(float(eta), "eta", allow_zero=True)
    else:
        eta = check_positive(eta, "eta", allow_zero=True)
    K = _sym(xp, R @ xp.matrix_transpose(R))
    b = eta * (R @ r_phi)
    return HeadQP(K, b)
