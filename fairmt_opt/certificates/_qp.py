r"""Optimality certificate for the simplex QP, independent of every solver.

For any point :math:`x` of (or near) the probability simplex :math:`\Delta` and the problem

.. math::  \min_{\alpha \in \Delta} f(\alpha) = \tfrac12 \alpha^\top K \alpha + b^\top \alpha,
           \qquad K \succeq 0,

let :math:`g = Kx + b`. Convexity gives the Frank–Wolfe duality gap bound

.. math::  \mathrm{gap}(x) = x^\top g - \min_t g_t \;\ge\; f(x) - f^\star \;\ge\; 0
           \qquad (x \in \Delta),

and with :math:`\lambda = x^\top g`, :math:`s = g - \lambda\mathbf 1` the KKT residuals are
primal :math:`\max(|\mathbf 1^\top x - 1|, \max_t(-x_t))`, dual :math:`\max_t(-s_t)` and
complementarity :math:`\max_t x_t |s_t|`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import lapack

from .._utils.array import to_numpy
from .._utils.validation import check_array, check_psd, check_symmetric, check_tol

__all__ = [
    "KKTResiduals", "QPCertificate", "certify_simplex_qp", "check_psd_fast", "check_symmetric_psd"
]


def _g(v: Any) -> str:
    if isinstance(v, (float, int, np.floating)):
        return f"{float(v):.3g}"
    return f"<array shape={tuple(getattr(v, 'shape', ()))}>"


def check_psd_fast(K: np.ndarray, name: str = "K", *, rtol: float = 1e-8) -> None:
    """Same verdict as :func:`check_psd` at a fraction of the cost for PSD inputs: a Cholesky
    factorisation of ``K + delta I`` with ``delta = rtol * T * max(1, max|K|)`` succeeds only
    if no eigenvalue is below ``-delta`` (and ``max|K| <= max|eig|``, so such a ``K`` passes
    :func:`check_psd`); when it fails, :func:`check_psd` decides and words the error."""
    T = K.shape[-1]
    delta = rtol * T * max(1.0, float(np.max(np.abs(K))))
    try:
        np.linalg.cholesky(K + delta * np.eye(T))
    except np.linalg.LinAlgError:
        check_psd(K, name, rtol=rtol)


def check_symmetric_psd(K: np.ndarray, name: str = "K") -> None:
    """:func:`check_symmetric` then :func:`check_psd_fast`, with the same verdicts and
    messages, at low overhead for a 2-D float64 ``K`` (direct LAPACK Cholesky)."""
    if K.ndim != 2 or K.dtype != np.float64:
        check_symmetric(K, name)
        check_psd_fast(K, name)
        return
    T = K.shape[0]
    kscale = max(1.0, float(abs(K).max()))
    if float(abs(K - K.T).max()) > 1e-8 * kscale:
        check_symmetric(K, name)  # raises with the standard message
    A = K.copy()
    A.flat[:: T + 1] += 1e-8 * T * kscale
    _, info = lapack.dpotrf(A, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        check_psd(K, name)


@dataclass(frozen=True)
class KKTResiduals:
    r"""KKT residuals of a point of the simplex QP (floats; arrays of the batch shape for the
    batched ``apg`` method).

    Attributes
    ----------
    primal : float
        :math:`\max(|\mathbf 1^\top x - 1|, \max_t(-x_t), 0)`; dimensionless (``x`` is a
        probability vector), hence never rescaled.
    dual : float
        :math:`\max(\max_t(-s_t), 0)` divided by the data scale
        :math:`\max(1, \|K\|_{\max}, \|b\|_{\max})`.
    complementarity : float
        :math:`\max_t x_t |s_t|` divided by the same data scale.
    """

    primal: Any
    dual: Any
    complementarity: Any

    def max(self) -> float:
        """The largest of the three residuals (scalar residuals only)."""
        return max(float(self.primal), float(self.dual), float(self.complementarity))

    def __repr__(self) -> str:
        return (
            f"KKTResiduals(primal={_g(self.primal)}, dual={_g(self.dual)}, "
            f"complementarity={_g(self.complementarity)})"
        )


@dataclass(frozen=True)
class QPCertificate:
    r"""Certificate of a candidate solution of the simplex QP (see :func:`certify_simplex_qp`).

    Attributes
    ----------
    ok : bool
        ``gap / scale <= rtol`` and every KKT residual ``<= rtol``.
    fun : float
        :math:`f(x)`.
    gap : float
        Frank–Wolfe duality gap :math:`x^\top g - \min_t g_t` (absolute, in the units of
        :math:`f`); an upper bound on :math:`f(x) - f^\star` when :math:`x \in \Delta`.
    kkt : KKTResiduals
        Primal, dual and complementarity residuals (dual ones divided by ``scale``).
    multiplier : float
        :math:`\lambda = x^\top g`, the multiplier of :math:`\mathbf 1^\top x = 1`.
    scale : float
        :math:`\max(1, \|K\|_{\max}, \|b\|_{\max})`.
    rtol : float
        Tolerance used for ``ok``.
    """

    ok: bool
    fun: float
    gap: float
    kkt: KKTResiduals
    multiplier: float
    scale: float
    rtol: float

    def __repr__(self) -> str:
        return (
            f"QPCertificate(ok={self.ok}, fun={self.fun:.12g}, gap={self.gap:.3g}, "
            f"kkt={self.kkt!r}, scale={self.scale:.3g}, rtol={self.rtol:.3g})"
        )


def _data_scale(K: np.ndarray, b: np.ndarray) -> float:
    return max(1.0, float(np.max(np.abs(K))), float(np.max(np.abs(b))) if b.size else 0.0)


def _residuals(
    x: np.ndarray, g: np.ndarray, scale: float
) -> tuple[float, float, KKTResiduals]:
    """(gap, multiplier, residuals) for a float64 point ``x`` with gradient ``g``."""
    lam = float(x @ g)
    s = g - lam
    gap = lam - float(g.min())  # = max_t(-s_t), the dual residual before scaling
    primal = max(abs(float(x.sum()) - 1.0), -float(x.min()), 0.0)
    comp = float(abs(x * s).max()) / scale
    return gap, lam, KKTResiduals(primal, max(gap, 0.0) / scale, comp)


def certify_simplex_qp(K: Any, b: Any, x: Any, *, rtol: float | None = None) -> QPCertificate:
    r"""Certify a candidate solution :math:`x` of the simplex QP, independently of any solver.

    .. math::  \min_{\alpha \in \Delta} \tfrac12 \alpha^\top K \alpha + b^\top \alpha,
               \qquad \Delta = \{\alpha \ge 0,\ \mathbf 1^\top\alpha = 1\}.

    With :math:`g = Kx + b`, the Frank–Wolfe gap :math:`x^\top g - \min_t g_t` bounds
    :math:`f(x) - f^\star` from above for every :math:`x \in \Delta` (convexity), and the KKT
    residuals (primal, dual, complementarity; see :class:`KKTResiduals`) vanish exactly at the
    solutions. Cost: one matrix-vector product, :math:`O(T^2)`, plus the input checks
    (symmetry and positive semidefiniteness, :math:`O(T^3)`).

    Parameters
    ----------
    K : array, shape (T, T)
        Symmetric positive semidefinite matrix (NumPy array or torch tensor).
    b : array, shape (T,), or None
        Linear term (``None`` means zero).
    x : array, shape (T,)
        Candidate point.
    rtol : float, optional
        Tolerance for ``ok``, relative to ``scale`` :math:`= \max(1, \|K\|_{\max},
        \|b\|_{\max})`: ``ok`` holds when ``gap <= rtol * scale``, the primal residual is
        ``<= rtol`` and the scaled dual and complementarity residuals are ``<= rtol``. Default:
        the square root of the machine epsilon of ``x``'s dtype (1.5e-8 for float64, 3.5e-4 for
        float32).

    Returns
    -------
    QPCertificate

    Examples
    --------
    >>> import numpy as np
    >>> K = np.array([[2.0, 0.0], [0.0, 1.0]])
    >>> certify_simplex_qp(K, None, np.array([1 / 3, 2 / 3])).ok
    True
    >>> certify_simplex_qp(K, None, np.array([0.5, 0.5])).ok
    False
    """
    K = check_array(K, "K", ndim=2)
    Kn = to_numpy(K)
    check_symmetric_psd(Kn, "K")
    T = Kn.shape[0]
    x = check_array(x, "x", ndim=1)
    xdtype = x.dtype
    xn = to_numpy(x)
    if xn.shape[0] != T:
        raise ValueError(f"x must have length {T} (the size of K), got {xn.shape[0]}")
    if b is None:
        bn = np.zeros(T)
    else:
        b = check_array(b, "b", ndim=1)
        bn = to_numpy(b)
        if bn.shape[0] != T:
            raise ValueError(f"b must have length {T} (the size of K), got {bn.shape[0]}")
    if rtol is None:
        rtol = float(np.sqrt(_eps(xdtype)))
    else:
        rtol = check_tol(rtol, "rtol")
    scale = _data_scale(Kn, bn)
    g = Kn @ xn + bn
    gap, lam, res = _residuals(xn, g, scale)
    fun = float(0.5 * xn @ (g + bn))
    ok = bool(gap <= rtol * scale and res.max() <= rtol)
    return QPCertificate(ok, fun, gap, res, lam, scale, rtol)


def _eps(dtype: Any) -> float:
    """Machine epsilon of a NumPy or torch floating dtype (float64's for other dtypes)."""
    name = str(dtype).replace("torch.", "")
    return {"float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}.get(name, 2.0**-52)
