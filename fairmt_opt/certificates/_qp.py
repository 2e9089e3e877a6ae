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

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import lapack

from .._utils.array import namespace, to_numpy
from .._utils.validation import check_array, check_tol

__all__ = [
    "FULL_CHECK_T", "KKTResiduals", "QPCertificate", "certify_simplex_qp", "check_curvature_at",
    "data_scale",
    "check_symmetric_psd", "input_rtol",
]


def _g(v: Any) -> str:
    if isinstance(v, (float, int, np.floating)):
        return f"{float(v):.3g}"
    return f"<array shape={tuple(getattr(v, 'shape', ()))}>"


#: up to this size the positive-semidefiniteness check is a shifted Cholesky factorisation
#: (:math:`O(T^3/3)`, a full test); above it, :math:`O(T^2)` necessary conditions (see
#: :func:`check_symmetric_psd`), so that the checks never cost more than a solve
FULL_CHECK_T = 64
_BLOCK = 512  # rows and columns per block of the O(T^2) checks (2 MB of float64)


def _eps(dtype: Any) -> float:
    """Machine epsilon of a NumPy or torch floating dtype (float64's for other dtypes)."""
    name = str(dtype).replace("torch.", "")
    return {"float32": 2.0**-23, "float16": 2.0**-10, "bfloat16": 2.0**-7}.get(name, 2.0**-52)


def input_rtol(dtype: Any) -> float:
    r"""Relative tolerance of the symmetry and positive-semidefiniteness checks of data given
    in ``dtype``: :math:`\max(10^{-8}, 64\,\varepsilon)` with :math:`\varepsilon` the
    dtype's machine epsilon (1e-8 for float64, 7.6e-6 for float32, 0.0625 for float16, 0.5 for
    bfloat16). A Gram matrix rounded to the dtype is asymmetric by at most about one
    :math:`\varepsilon` of its largest entry, far inside that bound.

    >>> input_rtol("float64"), input_rtol("float32")
    (1e-08, 7.62939453125e-06)
    """
    return max(1e-8, 64.0 * _eps(dtype))


def _not_psd(name: str, detail: str) -> ValueError:
    return ValueError(f"{name} must be positive semidefinite ({detail})")


def _asym_error(name: str, asym: float, r: float, kabs: float) -> ValueError:
    return ValueError(f"{name} must be symmetric (max |K - K^T| = {asym:.3g}, more than "
                      f"{r:.2g} of max |K| = {kabs:.3g})")


def check_symmetric_psd_small(k: list[float], name: str, r: float) -> None:
    r""":func:`check_symmetric_psd` for :math:`T \le 2` on the row-major entries ``k``
    (finite Python floats) with tolerance ``r``: in closed form, on the entries divided by
    :math:`\max|K_{ij}|` (no overflow), :math:`S + \delta I \succeq 0` is
    :math:`S_{00} + \delta \ge 0`, :math:`S_{11} + \delta \ge 0` and
    :math:`S_{01}^2 \le (S_{00} + \delta)(S_{11} + \delta)`."""
    if len(k) == 1:
        if k[0] < 0.0:  # -r |k| < k < 0 passes only for r >= 1
            if k[0] < -r * abs(k[0]):
                raise _not_psd(name, f"{name}[0, 0] = {k[0]:.3g}")
        return
    k00, k01, k10, k11 = k
    kabs = max(abs(k00), abs(k01), abs(k10), abs(k11))
    if kabs == 0.0:
        return
    k00, k01, k10, k11 = k00 / kabs, k01 / kabs, k10 / kabs, k11 / kabs
    asym = abs(k01 - k10)
    if asym > r:
        raise _asym_error(name, asym * kabs, r, kabs)
    s01 = 0.5 * (k01 + k10)
    d = 2.0 * r
    if k00 + d < 0.0 or k11 + d < 0.0 or (k00 + d) * (k11 + d) < s01 * s01:
        lo = 0.5 * (k00 + k11 - math.hypot(k00 - k11, 2.0 * s01)) * kabs
        raise _not_psd(name, f"smallest eigenvalue {lo:.3g}")


def check_symmetric_psd(K: np.ndarray, name: str = "K", *, dtype: Any = None) -> None:
    r"""Check that the float64 ``K`` (shape ``(T, T)`` or ``(..., T, T)``, finite) is
    symmetric and positive semidefinite up to round-off in ``dtype`` (the caller's dtype;
    default ``K``'s), relative to :math:`s = \max|K_{ij}|` with no absolute floor.

    With :math:`r` = :func:`input_rtol` and :math:`\delta = r\,T\,s`:

    * symmetric: :math:`\max|K - K^\top| \le r\,s`; the tests below read
      :math:`S = (K + K^\top)/2`;
    * :math:`T \le 2`: the same test in closed form (:func:`check_symmetric_psd_small`);
    * :math:`T \le` ``FULL_CHECK_T`` (64) or batched: a Cholesky factorisation of
      :math:`S + \delta I` (it succeeds when no eigenvalue is below :math:`-\delta`); when it
      fails, an eigenvalue test rejects below :math:`-r\,T\max|\lambda|`;
    * larger :math:`T`: the :math:`O(T^2)` necessary conditions of :math:`S + \delta I
      \succeq 0`, a diagonal :math:`S_{ii} \ge -\delta` and every :math:`2\times 2` principal
      minor :math:`S_{ij}^2 \le (S_{ii} + \delta)(S_{jj} + \delta)`, read in blocks; the
      solver and the certificate then test the curvature at the point they return
      (:func:`check_curvature_at`).

    Raises ``ValueError`` naming ``name``. A zero ``K`` passes.
    """
    if K.size == 0:
        return
    kabs = float(np.max(np.abs(K)))
    if kabs == 0.0:
        return
    r = input_rtol(K.dtype if dtype is None else dtype)
    T = K.shape[-1]
    if K.ndim == 2 and T <= 2:
        check_symmetric_psd_small(K.ravel().tolist(), name, r)
        return
    delta = r * T * kabs
    if K.ndim > 2 or T <= FULL_CHECK_T:
        asym = float(np.max(np.abs(K - np.swapaxes(K, -1, -2))))
        if asym > r * kabs:
            raise _asym_error(name, asym, r, kabs)
        S = 0.5 * K + 0.5 * np.swapaxes(K, -1, -2)  # no overflow near the range
        if K.ndim == 2:
            A = S.copy()
            A.flat[:: T + 1] += delta
            _, info = lapack.dpotrf(A, lower=1, overwrite_a=1, clean=0)
            if info == 0:
                return
        eig = np.linalg.eigvalsh(S)
        lo = float(np.min(eig))
        if lo < -r * T * float(np.max(np.abs(eig))):
            raise _not_psd(name, f"smallest eigenvalue {lo:.3g}")
        return
    d = np.diagonal(K).copy()
    if float(d.min()) < -delta:
        i = int(np.argmin(d))
        raise _not_psd(name, f"diagonal entry {name}[{i}, {i}] = {d[i]:.3g}")
    dd = np.sqrt(np.maximum(d + delta, 0.0))
    for i0 in range(0, T, _BLOCK):
        i1 = min(T, i0 + _BLOCK)
        for j0 in range(0, i1, _BLOCK):
            j1 = min(T, j0 + _BLOCK)
            A, B = K[i0:i1, j0:j1], K[j0:j1, i0:i1].T
            asym = float(np.max(np.abs(A - B)))
            if asym > r * kabs:
                raise _asym_error(name, asym, r, kabs)
            excess = np.abs(0.5 * A + 0.5 * B) - np.outer(dd[i0:i1], dd[j0:j1])
            if float(excess.max()) > r * kabs:
                i, j = (int(v) for v in np.unravel_index(int(np.argmax(excess)), excess.shape))
                raise _not_psd(name, f"the 2x2 principal minor of rows {i0 + i} and {j0 + j} "
                                     "is negative")


def check_curvature_at(K: np.ndarray, x: np.ndarray, name: str = "K", *,
                       dtype: Any = None) -> None:
    r"""The curvature test at a point ``x`` of the simplex, with :math:`\delta` as in
    :func:`check_symmetric_psd`: :math:`v^\top K v \ge -\delta\|v\|^2` along :math:`v = x`
    and every edge :math:`v = e_j - x`, and :math:`K_{FF} + \delta I \succ 0` on the support
    :math:`F` of ``x`` (a Cholesky factorisation). Cost :math:`O(T|F| + |F|^3)`, below the cost
    of the solve that found ``x``. Used after the :math:`O(T^2)` checks of large inputs; raises
    ``ValueError`` naming ``name``."""
    T = K.shape[0]
    kabs = float(np.max(np.abs(K)))
    F = np.flatnonzero(x > 0.0)
    if kabs == 0.0 or F.size == 0:
        return
    delta = input_rtol(K.dtype if dtype is None else dtype) * T * kabs
    Kx = K[:, F] @ x[F]
    xKx = float(x[F] @ Kx[F])
    xx = float(x[F] @ x[F])
    if xKx < -delta * xx:
        raise _not_psd(name, f"negative curvature x^T K x = {xKx:.3g} at the solution")
    curv = np.diagonal(K) - 2.0 * Kx + xKx + delta * (1.0 - 2.0 * x + xx)
    if float(curv.min()) < 0.0:
        j = int(np.argmin(curv))
        raise _not_psd(name, f"negative curvature along the edge from the solution to vertex "
                             f"{j}")
    if F.size > 1:
        A = K[np.ix_(F, F)]
        A = 0.5 * A + 0.5 * A.T
        A.flat[:: F.size + 1] += delta
        _, info = lapack.dpotrf(A, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise _not_psd(name, "negative curvature on the support of the solution")


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
        :math:`\max(\|K\|_{\max}, \max_t b_t - \min_t b_t)` (:func:`data_scale`).
    complementarity : float
        :math:`\max_t x_t |s_t|` divided by the same data scale.
    """

    primal: Any
    dual: Any
    complementarity: Any

    def max(self) -> float:
        """The largest of the three residuals (scalar residuals only; NaN if any is NaN)."""
        return float(np.max([float(self.primal), float(self.dual),
                             float(self.complementarity)]))

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
        :math:`\max(\|K\|_{\max}, \max_t b_t - \min_t b_t)` (:func:`data_scale`; no
        absolute floor).
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


def data_scale(kabs: Any, brange: Any, babs: Any) -> Any:
    r"""The scale of the residuals: :math:`s = \max(\|K\|_{\max}, \max_t b_t - \min_t b_t)`
    (``kabs``, ``brange``), relative with no absolute floor and unchanged by a constant added
    to :math:`b` (which moves neither the minimisers nor the gap); when :math:`s = 0` (``f``
    constant on the simplex) it is :math:`\|b\|_{\max}` (``babs``), or 1 for :math:`b = 0`,
    so round-off there is read relative to ``b``. Floats, or arrays of one namespace (batched
    problems, computed where they live)."""
    if isinstance(kabs, float):
        s = max(kabs, brange)
        if s > 0.0:
            return s
        return babs if babs > 0.0 else 1.0
    xp = namespace(kabs)
    s = xp.maximum(kabs, brange)
    return xp.where(s > 0, s, xp.where(babs > 0, babs, xp.ones_like(babs)))


def _data_scale(K: np.ndarray, b: np.ndarray) -> float:
    if not b.size:
        return data_scale(float(np.max(np.abs(K))), 0.0, 0.0)
    bmin, bmax = float(b.min()), float(b.max())
    return data_scale(float(np.max(np.abs(K))), bmax - bmin, max(abs(bmin), abs(bmax)))


def _residuals(
    x: np.ndarray, g: np.ndarray, scale: float
) -> tuple[float, float, KKTResiduals]:
    """(gap, multiplier, residuals) for a float64 point ``x`` with gradient ``g``."""
    lam = float(x @ g)
    gap = lam - float(g.min())  # = max_t(-s_t), the dual residual before scaling
    primal = max(abs(float(x.sum()) - 1.0), -float(x.min()), 0.0)
    with np.errstate(over="ignore", invalid="ignore"):  # s_t may overflow where x_t = 0
        s = g - lam
        comp = float(np.max(abs(x * s), where=x != 0.0, initial=0.0)) / scale
    return gap, lam, KKTResiduals(primal, max(gap, 0.0) / scale, comp)


def certify_simplex_qp(
    K: Any, *args: Any, b: Any = None, x: Any = None, rtol: float | None = None
) -> QPCertificate:
    r"""Certify a candidate solution :math:`x` of the simplex QP, independently of any solver.

    .. math::  \min_{\alpha \in \Delta} \tfrac12 \alpha^\top K \alpha + b^\top \alpha,
               \qquad \Delta = \{\alpha \ge 0,\ \mathbf 1^\top\alpha = 1\}.

    With :math:`g = Kx + b`, the Frank–Wolfe gap :math:`x^\top g - \min_t g_t` bounds
    :math:`f(x) - f^\star` from above for every :math:`x \in \Delta` (convexity), and the KKT
    residuals (primal, dual, complementarity; see :class:`KKTResiduals`) vanish exactly at the
    solutions. Called as ``certify_simplex_qp(K, x)`` (:math:`b = 0`) or
    ``certify_simplex_qp(K, b, x)`` (``b`` may be ``None``), or with keywords.

    Every test is relative to the data scale ``scale`` :math:`= \max(\|K\|_{\max},
    \max_t b_t - \min_t b_t)` with no absolute floor (see :func:`data_scale`), so a point
    ``rtol``-suboptimal relative to that scale is rejected at every scale (1e-300 to 1e300
    alike); a NaN or infinite gap or residual never certifies. The gap and the residuals
    are read on :math:`b - \min_t b_t` (the same on the simplex, and free of the round-off
    of a large common offset), on data divided by an exact power of two when its scale
    exceeds :math:`2^{960}` (no overflow of :math:`Kx`, of the range of ``b`` or of
    :math:`f`; the reported values are in the caller's units, inf when they are not
    representable there). Cost: one matrix-vector
    product, :math:`O(T^2)`, plus the input checks of :func:`check_symmetric_psd` (symmetry
    and positive semidefiniteness with tolerances of ``K``'s dtype; a Cholesky factorisation,
    :math:`O(T^3/3)`, up to ``T = 64``, :math:`O(T^2)` necessary conditions and the curvature
    at ``x`` above). The gap bounds :math:`f(x) - f^\star` only when :math:`K \succeq 0`, which
    for large ``T`` is checked by necessary conditions: it stays the caller's promise.

    Parameters
    ----------
    K : array, shape (T, T)
        Symmetric positive semidefinite matrix (NumPy array or torch tensor, any floating
        dtype).
    b : array, shape (T,), or None
        Linear term (``None``, or omitted, means zero).
    x : array, shape (T,)
        Candidate point.
    rtol : float, optional
        Tolerance for ``ok``, relative to ``scale``: ``ok`` holds when
        ``gap <= rtol * scale``, the primal residual is ``<= rtol`` and the scaled dual and
        complementarity residuals are ``<= rtol``. Default: the square root of the machine
        epsilon of ``x``'s dtype (1.5e-8 for float64, 3.5e-4 for float32).

    Returns
    -------
    QPCertificate

    Examples
    --------
    >>> import numpy as np
    >>> K = np.array([[2.0, 0.0], [0.0, 1.0]])
    >>> certify_simplex_qp(K, None, np.array([1 / 3, 2 / 3])).ok
    True
    >>> certify_simplex_qp(K, np.array([0.5, 0.5])).ok  # b omitted
    False

    Relative at every scale: the vertex (1, 0) is far from optimal for :math:`10^{-9} K` too.

    >>> certify_simplex_qp(1e-9 * K, np.array([1.0, 0.0])).ok
    False
    """
    if len(args) == 1 and x is None:
        (x,) = args
    elif len(args) == 2 and b is None and x is None:
        b, x = args
    elif args or x is None:
        raise TypeError("certify_simplex_qp takes (K, x) or (K, b, x) (b may be None), "
                        f"got {1 + len(args)} positional argument(s)"
                        + ("" if x is not None or args else " and no x"))
    K = check_array(K, "K", ndim=2)
    kdtype = K.dtype
    Kn = to_numpy(K)
    check_symmetric_psd(Kn, "K", dtype=kdtype)
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
    if T > FULL_CHECK_T:
        check_curvature_at(Kn, xn, "K", dtype=kdtype)
    # The tests read g on b - min b: a constant added to b moves neither the minimisers nor
    # the gap on the simplex, and a large common offset would otherwise absorb K x in
    # round-off (K = 1e-300 I, b = (1e308, 1e308) certified every point). Data whose scale
    # max(|K_ij|, (max b - min b) / 2) exceeds 2^960 is first divided by an exact power of two,
    # so that neither K x, nor the range of b, nor f overflows; f, the gap, the multiplier and
    # the scale are reported back in the caller's units (inf where they are not representable
    # there), and ``ok`` is judged in the scaled units.
    kabs = float(np.max(np.abs(Kn)))
    bmin, bmax = (float(bn.min()), float(bn.max())) if T else (0.0, 0.0)
    big = max(kabs, 0.5 * bmax - 0.5 * bmin)
    k = -pow2_exponent(big)
    if k:
        Kn, bn, bmin = np.ldexp(Kn, k), np.ldexp(bn, k), math.ldexp(bmin, k)
    scale = _data_scale(Kn, bn)
    with np.errstate(over="ignore", invalid="ignore"):
        Kx = Kn @ xn
        gap, lam, res = _residuals(xn, Kx + (bn - bmin), scale)
        lam += bmin * float(xn.sum())
        fun = float(0.5 * (xn @ Kx)) + float(xn @ bn)
    ok = bool(math.isfinite(gap) and math.isfinite(fun) and gap <= rtol * scale
              and res.max() <= rtol)
    if k:
        with np.errstate(over="ignore"):
            fun, gap, lam, scale = (float(np.ldexp(v, -k)) for v in (fun, gap, lam, scale))
    return QPCertificate(ok, fun, gap, res, lam, scale, rtol)


_LARGE = 2.0**960


def pow2_exponent(big: float) -> int:
    r"""The exponent :math:`e` of the exact power-of-two division applied to data of size
    ``big`` (a float :math:`\ge 0`) above :math:`2^{960}`: ``math.frexp(big)[1]``, so that
    :math:`\mathrm{big}/2^e \in [\tfrac12, 1)`, when :math:`2^{960} < \mathrm{big} < \infty`,
    and 0 otherwise (no division; also for inf and NaN). Dividing by :math:`2^e` is exact
    (barring underflow of entries below :math:`2^{e - 1074}`) and leaves room for sums and
    products of a few entries without overflow. Shared by the certificate and the reference
    solvers.

    >>> pow2_exponent(1e288), pow2_exponent(1e300), pow2_exponent(float("inf"))
    (0, 997, 0)
    """
    return math.frexp(big)[1] if _LARGE < big < math.inf else 0
