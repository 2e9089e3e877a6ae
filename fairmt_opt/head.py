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

import numpy as np

from ._utils.array import Array, is_torch, namespace
from ._utils.validation import check_array, check_positive, check_same_device

__all__ = ["HeadQP", "head_aware_qp", "head_gram"]


def _float(xp: Any, x: Array) -> Array:
    return x if xp.isdtype(x.dtype, "real floating") else xp.astype(x, xp.float64)


def _matrix_and_vector(
    M: Array, m_name: str, v: Array, v_name: str, axis: int, check_finite: bool
) -> tuple[Any, Array, Array]:
    """Validate a 2-D ``M`` and a 1-D ``v`` of length ``M.shape[axis]`` on one device; return
    the namespace and both in ``M``'s floating dtype."""
    M = check_array(M, m_name, ndim=2, finite=check_finite)
    v = check_array(v, v_name, ndim=1, finite=check_finite)
    check_same_device((m_name, M), (v_name, v))
    if v.shape[0] != M.shape[axis]:
        raise ValueError(f"{v_name} must have length {m_name}.shape[{axis}] = "
                         f"{M.shape[axis]}, got {v.shape[0]}")
    xp = namespace(M, v)
    M = _float(xp, M)
    return xp, M, xp.astype(_float(xp, v), M.dtype)


def _pow2_scale(xp: Any, X: Array) -> Array:
    r"""A power of two close to :math:`\max|X|` (0-d, 1 for a zero ``X``): dividing by it is
    exact, so products of the scaled entries neither overflow nor underflow."""
    m = xp.max(xp.abs(X))
    with np.errstate(divide="ignore"):
        e = xp.floor(xp.log2(xp.where(m > 0.0, m, 1.0)))
    return xp.where(m > 0.0, 2.0**e, 1.0)


def _gram(xp: Any, R: Array) -> tuple[Array, Array]:
    r""":math:`K = RR^\top` (exactly symmetric) computed on :math:`R/s`, :math:`s` a power of
    two, and scaled back: bit for bit the plain product whenever that product is in range, and
    no spurious overflow or underflow otherwise. Returns ``(K, s)``."""
    with np.errstate(over="ignore", invalid="ignore"):  # out of range: checked by callers
        sR = _pow2_scale(xp, R)
        Rn = R / sR
        K = ((Rn @ xp.matrix_transpose(Rn)) * sR) * sR
        return 0.5 * (K + xp.matrix_transpose(K)), sR


def _check_range(xp: Any, K: Array, nonzero: Array, names: str) -> None:
    r"""Raise ``ValueError`` if :math:`K = RR^\top` is not representable in ``K``'s dtype:
    an overflow to inf, or every entry zero or subnormal while the exact :math:`R` has a
    non-zero entry (``nonzero``, a bool array)."""
    hint = ("; rescale the inputs (the QP's solution is unchanged when K and b are multiplied "
            "by the same positive factor)")
    if not bool(xp.all(xp.isfinite(K))):
        raise ValueError(f"K computed from {names} overflows the range of {K.dtype}{hint}")
    tiny = float(xp.finfo(K.dtype).smallest_normal)
    d = xp.max(xp.abs(K))
    if bool(d < tiny) and bool(xp.any(nonzero)):
        raise ValueError(f"K computed from {names} underflows the range of {K.dtype} "
                         f"(largest |K_st| = {float(d):.3g}){hint}")


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
    xp, A, u = _matrix_and_vector(A, "A", u, "u", 0, check_finite)
    with np.errstate(over="ignore"):
        K, _ = _gram(xp, u[:, None] * A)
    if check_finite:  # R itself out of range makes K so too: judged on the exact zeros
        _check_range(xp, K, (u != 0.0)[:, None] & (A != 0.0), "A and u")
    return K


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
    xp, R, r_phi = _matrix_and_vector(R, "R", r_phi, "r_phi", 1, check_finite)
    if hasattr(eta, "shape") and hasattr(eta, "dtype"):
        if tuple(eta.shape) != ():
            raise ValueError(f"eta must be a scalar (0-d), got shape {tuple(eta.shape)}")
        if is_torch(eta) or is_torch(R):
            check_same_device(("R", R), ("eta", eta))
        if is_torch(eta) and (str(eta.dtype) == "torch.bool" or eta.is_complex()):
            raise ValueError(f"eta must be a real number, got a tensor of dtype {eta.dtype}")
        if not is_torch(eta):  # a NumPy scalar or 0-d array (not a bool), checked as a number
            eta = check_positive(eta, "eta", allow_zero=True)
    else:
        eta = check_positive(eta, "eta", allow_zero=True)
    K, sR = _gram(xp, R)
    sp = _pow2_scale(xp, r_phi)
    with np.errstate(over="ignore", invalid="ignore"):
        b = eta * ((((R / sR) @ (r_phi / sp)) * sR) * sp)
    if check_finite:
        _check_range(xp, K, R != 0.0, "R")
        if not bool(xp.all(xp.isfinite(b))):
            raise ValueError(f"b = eta R r_phi overflows the range of {b.dtype}; rescale R, "
                             "r_phi or eta")
    return HeadQP(K, b)
