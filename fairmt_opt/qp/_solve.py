r"""Solvers for the simplex QP
:math:`\min_{\alpha\in\Delta} \tfrac12\alpha^\top K\alpha + b^\top\alpha`.

One public entry point, :func:`solve_simplex_qp`, dispatching to private modules: the exact
active-set method (``_active_set``, and the compiled kernel of the same algorithm loaded by
``_kernel``, called with its torch plumbing by ``_fast_path``), the Frank–Wolfe family
(``_frank_wolfe``), the batched accelerated projected gradient (``_apg``) and the external
backends (``_backends``: cvxpy, daqp, proxsuite); the result object lives in ``_result``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, cast, get_args

import numpy as np

from .._utils.array import from_numpy, to_numpy
from .._utils.validation import check_array, check_bool, check_int, check_same_device, check_tol
from ..certificates._qp import (
    FULL_CHECK_T,
    _eps,
    check_curvature_at,
    check_symmetric_psd,
    data_scale,
)
from . import _fast_path
from . import _kernel as _qp_kernel
from ._active_set import solve_active_set
from ._apg import solve_apg
from ._backends import solve_external
from ._closed_form import small_result
from ._fast_path import (
    _F64,
    _SMALL_SHAPES,
    _is_tensor,
    _small_torch,
    _solve_kernel,
    solve_plain,
    solve_plain_torch,
)
from ._fast_path import record_working_sets as record_working_sets
from ._frank_wolfe import frank_wolfe_qp
from ._result import Lazy, SimplexQPResult

__all__ = ["QPMethod", "SimplexQPResult", "solve_simplex_qp"]

QPMethod = Literal[
    "active_set", "frank_wolfe", "away", "pairwise", "apg", "cvxpy", "daqp", "proxsuite"
]
_METHODS: tuple[str, ...] = get_args(QPMethod)

#: default ``tol`` of each method (relative to the data scale, see :func:`solve_simplex_qp`)
DEFAULT_TOL: dict[str, float] = {
    "active_set": 1e-12,
    "frank_wolfe": 1e-8,
    "away": 1e-10,
    "pairwise": 1e-10,
    "apg": 1e-8,
    "cvxpy": 1e-8,
    "daqp": 1e-10,
    "proxsuite": 1e-10,
}


def _default_max_iter(method: str, T: int) -> int:
    """Default ``max_iter`` of each method (``T`` is the problem size; 250 is the classic MGDA
    budget; cvxpy has none)."""
    return {
        "active_set": 50 * T + 1000,
        "frank_wolfe": 250,
        "away": 1000,
        "pairwise": 1000,
        "apg": 500,
        "cvxpy": 0,
        "daqp": 1000,
        "proxsuite": 1000,
    }[method]


# ----------------------------------------------------------------------------- validation
def _is_f64(x: Any, min_ndim: int = 1) -> bool:
    """A float64 NumPy array with at least ``min_ndim`` dimensions (fast validation path)."""
    return type(x) is np.ndarray and x.dtype == np.float64 and x.ndim >= min_ndim


def _check_method(method: Any) -> QPMethod:
    if not isinstance(method, str) or method not in _METHODS:
        raise ValueError(f"method must be one of {list(_METHODS)}, got {method!r}")
    return cast(QPMethod, method)


def _warm_numpy(warm_start: Any, T: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(support indices, feasible point or None) from a warm start (indices, mask or point)."""
    if isinstance(warm_start, SimplexQPResult):
        warm_start = warm_start.x
    if (isinstance(warm_start, np.ndarray) and warm_start.dtype == np.float64
            and warm_start.shape == (T,)):  # fast path: a previous solution
        x0 = np.where(warm_start > 1e-12, warm_start, 0.0)
        tot = float(x0.sum())
        if not 0.0 < tot < np.inf:
            raise ValueError("warm_start point must have a positive entry and be finite")
        x0 /= tot
        return np.flatnonzero(x0), x0
    if hasattr(warm_start, "detach"):
        w = np.asarray(warm_start.detach().cpu().numpy())
    else:
        try:
            w = np.asarray(warm_start)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"warm_start must be an array: {exc}") from exc
    if w.ndim != 1:
        raise ValueError(f"warm_start must be 1-dimensional, got shape {w.shape}")
    if w.dtype == np.bool_:
        if w.size != T:
            raise ValueError(f"warm_start mask must have length {T}, got {w.size}")
        return np.flatnonzero(w), None
    if np.issubdtype(w.dtype, np.integer):
        if w.size and (w.min() < 0 or w.max() >= T):
            raise ValueError(f"warm_start indices must lie in [0, {T}), got {w.tolist()}")
        return np.unique(w).astype(np.intp), None
    if not np.issubdtype(w.dtype, np.floating):
        raise ValueError(f"warm_start must be indices, a boolean mask or a point, got {w.dtype}")
    if w.size != T:
        raise ValueError(f"warm_start point must have length {T}, got {w.size}")
    if not np.all(np.isfinite(w)):
        raise ValueError("warm_start contains NaN or inf")
    x0 = np.where(w > 1e-12, w.astype(np.float64), 0.0)
    tot = float(x0.sum())
    if tot <= 0.0:
        raise ValueError("warm_start point must have a positive entry")
    x0 /= tot
    return np.flatnonzero(x0 > 0.0), x0


# ----------------------------------------------------------------------------- fast paths
def _fast(K: Any, b: Any, tol: Any, max_iter: Any, warm_start: Any, check_input: bool,
          plain: bool) -> SimplexQPResult | None:
    """The ``active_set`` fast paths for what :func:`solve_plain` does not take: the closed
    form of ``T <= 2`` (float64 NumPy, torch) and the compiled kernel (floating NumPy input
    and torch tensors, any options); None when neither takes the call."""
    if type(K) is np.ndarray:
        if (K.dtype == _F64 and K.shape in _SMALL_SHAPES and plain
                and (b is None or (type(b) is np.ndarray and b.dtype == _F64
                                   and b.shape == K.shape[:1]))):
            res = small_result(K, b, None, check_input)  # T = 1, 2: closed form
            if res is not None:
                return res
        fast = K.ndim == 2 and K.dtype.kind == "f"
    else:
        fast = _is_tensor(K) and K.ndim == 2
        if fast and K.shape in _SMALL_SHAPES and plain:
            res = _small_torch(K, b, check_input)
            if res is not None:
                return res
    kern = _qp_kernel.KERNEL
    if fast and kern is not None:
        return _solve_kernel(kern, K, b, tol, max_iter, warm_start, check_input)
    return None


# ----------------------------------------------------------------------------- entry point
def solve_simplex_qp(
    K: Any,
    b: Any = None,
    *,
    method: QPMethod = "active_set",
    tol: float | None = None,
    max_iter: int | None = None,
    warm_start: Any = None,
    check_input: bool = True,
) -> SimplexQPResult:
    r"""Solve the simplex-constrained convex quadratic program

    .. math::
        \min_{\alpha \in \Delta} \; f(\alpha) = \tfrac12 \alpha^\top K \alpha + b^\top \alpha,
        \qquad \Delta = \{\alpha \in \mathbb R^T : \alpha \ge 0,\ \mathbf 1^\top\alpha = 1\},

    for a symmetric positive semidefinite, possibly singular :math:`K` (the MGDA min-norm
    problem is :math:`K = RR^\top`, :math:`b = 0`). The solution need not be unique when
    :math:`K` is singular; :math:`f^\star` and :math:`R^\top\alpha^\star` are.

    Methods (all but ``apg`` convert to float64 NumPy and return the caller's array type):

    * ``"active_set"`` (default, exact): block principal pivoting from one block step at the
      best vertex (or from the warm start), then, if that stalls, a primal active-set method
      whose working set keeps the KKT matrix of its subproblem nonsingular (bordered inverse,
      rank-one updates); a zero-curvature direction of a singular :math:`K` is followed by an
      exact line search to the next bound, so no ridge is ever added. Finite termination in
      exact arithmetic; closed forms for :math:`T = 1, 2`. Cost :math:`O(|F|^3)` per block
      step and :math:`O(T|F|)` per working-set change (:math:`F` the support). ``tol`` bounds
      the negative multipliers (relative) and ``max_iter`` the working-set changes (default
      ``50 T + 1000``). When round-off makes working sets numerically singular (curvatures
      within about 1e-9 of the scale, e.g. :math:`K` with eigenvalues spread over 1e12), the
      method hands over to proximal-point refinement steps (each an exact active-set solve
      with Hessian :math:`K + \rho I` and a moving centre, :math:`\rho = 10^{-8}` of the
      scale; not a ridge: the iterates converge to a minimiser of the original problem),
      stopped at gap ``<= tol`` or, when progress creeps at round-off level, at a gap below
      1e-10 of the scale (reported in ``message``). The primal method's entering index is
      the one of most negative multiplier per unit :math:`K`-length of its edge
      :math:`e_j - \alpha` (steepest edge). For floating NumPy input and torch tensors (a
      CPU float64 contiguous tensor is read in place, by address, with no copy; other
      floating dtypes are converted once; a CUDA tensor is copied once to the host, the one
      synchronisation of this host method) with :math:`T \ge 3` the same algorithm runs in
      a compiled C kernel (built at install time when a C compiler is available; the input
      checks below, the same block steps, primal steps and proximal refinement, with the
      same LAPACK routines as the Python code, so it visits the same working sets and
      returns the same ``x`` to round-off); any case the kernel does not finish with a
      verified optimum uses the Python implementation, which also words every error
      (``fairmt_opt.qp._kernel.KERNEL`` is ``None`` when the kernel is not built; the
      environment variable ``FAIRMT_OPT_NO_KERNEL=1`` disables it). For :math:`T \le 2`
      (float64 NumPy or torch) the minimiser is computed in closed form (:math:`T = 2`:
      :math:`\alpha_0 = \operatorname{clip}((K_{11} - K_{01} + b_1 - b_0)/(K_{00} - 2K_{01} +
      K_{11}), 0, 1)`), about as fast as the call itself.
    * ``"frank_wolfe"``: Frank–Wolfe with exact line search from the barycentre, the MGDA
      min-norm solver done right; stops when the Frank–Wolfe gap is ``<= tol`` (default 1e-8)
      or after ``max_iter`` steps (default 250, the classic MGDA budget). :math:`O(T)` per step.
    * ``"away"``, ``"pairwise"``: away-step and pairwise Frank–Wolfe (linear convergence on
      strongly convex problems); default ``tol`` 1e-10, ``max_iter`` 1000.
    * ``"apg"``: accelerated projected gradient with adaptive restart for batched problems,
      ``K`` of shape ``(..., T, T)`` and ``b`` of shape ``(..., T)``; exactly ``max_iter``
      iterations (default 500) with step :math:`1/L`, :math:`L = \min(\operatorname{tr}K,
      \|K\|_F)`, computed natively (torch CUDA stays on the GPU). With ``check_input=False`` it
      performs no host synchronisation at all; ``success`` then only reports that the fixed
      count ran (status 2): read ``gap``.
    * ``"cvxpy"`` (:mod:`fairmt_opt.reference`), ``"daqp"``, ``"proxsuite"``: external
      solvers, when installed (an :class:`ImportError` says what to install otherwise).

    Tolerances are relative: the problem is solved on :math:`(K, b - \min_t b_t)` divided by
    :math:`s = \max(\|K\|_{\max}, \max_t b_t - \min_t b_t)` (which leaves the minimisers
    unchanged), so a gap below ``tol`` on the scaled problem is a gap below ``tol`` times
    :math:`s`; when :math:`s` exceeds the float range (:math:`b = (10^{308}, -10^{308})`) the
    scaled data are formed from the halves of the entries. The solvers see the symmetrised
    :math:`S = K/2 + K^\top/2` (halves first: finite for every finite ``K``). The input checks
    use the tolerance of the caller's dtype, :math:`r = \max(10^{-8}, 64\,\varepsilon)`
    (``certificates.input_rtol``: 1e-8 for float64, 7.6e-6 for float32), relative to
    :math:`\|K\|_{\max}` with no absolute floor (the same verdict at every scale), and
    :math:`\delta = r\,T\,\|K\|_{\max}`: symmetric when :math:`\|K - K^\top\|_{\max} \le
    r\|K\|_{\max}`; positive semidefinite when :math:`S + \delta I` has a Cholesky
    factorisation (:math:`T \le 64`; when it fails, an eigenvalue test rejects only below
    :math:`-r\,T\max|\lambda|`), and above :math:`T = 64` when the :math:`O(T^2)` necessary
    conditions hold (:math:`S_{ii} \ge -\delta`, every :math:`2\times2` principal minor of
    :math:`S + \delta I` nonnegative to :math:`r\|K\|_{\max}`) and the curvature at the
    returned point is nonnegative to :math:`\delta` (along :math:`\alpha`, along every edge
    :math:`e_j - \alpha` and on the support: a Cholesky factorisation of :math:`S_{FF} +
    \delta I`), so that the checks never cost more than the solve. When the working sets turn
    numerically singular the refinement stops at a Frank–Wolfe gap below
    :math:`\max(10^{-10}, 10\,\varepsilon)` of :math:`s` (``message`` says so).

    Cost (one core, measured on MGDA Gramians): :math:`T = 2` and :math:`5`: 2-3 µs for
    float64 NumPy input (at :math:`T = 5` about 1.5 µs of it is the call itself: argument
    checks, the kernel call, the result), about 1 µs more for a torch tensor, 2-3 µs more
    for float32 torch data; :math:`T = 100`:
    0.1-0.5 ms; :math:`T = 1000`: 50-150 ms on well-conditioned or rank-deficient Gramians,
    about 0.5 s on ill-conditioned ones (see the performance page for the figures against
    daqp, quadprog, cvxpy, TorchJD and LibMTL).

    Parameters
    ----------
    K : array, shape (T, T) (``(..., T, T)`` for ``apg``)
        Symmetric positive semidefinite matrix (NumPy array, torch tensor or nested lists).
    b : array, shape (T,) (``(..., T)`` for ``apg``), optional
        Linear term; ``None`` means zero.
    method : {"active_set", "frank_wolfe", "away", "pairwise", "apg", "cvxpy", "daqp", \
"proxsuite"}
        The algorithm (see above).
    tol : float, optional
        Relative tolerance (defaults in ``DEFAULT_TOL``: 1e-12 for ``active_set``).
    max_iter : int, optional
        Iteration budget (defaults: ``50 T + 1000`` working-set changes for ``active_set``,
        250 for ``frank_wolfe``, 1000 for ``away``, ``pairwise`` and the backends, 500 for
        ``apg``).
    warm_start : array or SimplexQPResult, optional
        A previous solution (a point of length ``T``), an active set (int indices or boolean
        mask of length ``T``), or a previous :class:`SimplexQPResult`. Used by ``active_set``
        (initial working set and point), the Frank–Wolfe family and ``daqp`` (initial point),
        ``apg`` (initial point, batched, native array); ignored by ``cvxpy``/``proxsuite``.
    check_input : bool, default True
        (A Python or NumPy bool; an int is refused.)
        Check for NaN/inf, symmetry and positive semidefiniteness with the tolerances above
        (:math:`O(T^3/3)` up to :math:`T = 64`, :math:`O(T^2 + T|F| + |F|^3)` beyond; run inside
        the compiled kernel when it is used). ``False`` skips these value checks (shapes are
        always checked): use it in a training loop where ``K = RR^\top`` by construction.

    Returns
    -------
    SimplexQPResult

    Raises
    ------
    ValueError
        For NaN/inf, a wrong shape, a non-symmetric or clearly indefinite ``K``, ``b`` of the
        wrong length, a negative ``tol``, a bad ``max_iter`` or ``warm_start``, or an unknown
        ``method``.

    Examples
    --------
    The min-norm point of the segment between :math:`(1, 0)` and :math:`(0, 2)`:

    >>> import numpy as np
    >>> from fairmt_opt import solve_simplex_qp, certify_simplex_qp
    >>> R = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> res = solve_simplex_qp(R @ R.T)
    >>> res.x, round(res.fun, 12)
    (array([0.8, 0.2]), 0.4)
    >>> certify_simplex_qp(R @ R.T, None, res.x).ok
    True

    A singular ``K`` (three tasks, rank one) and a warm start from the previous solution:

    >>> r = np.array([[1.0], [2.0], [-1.0]])
    >>> res = solve_simplex_qp(r @ r.T, np.array([0.0, 0.1, 0.3]))
    >>> res.success, round(res.fun, 6), res.active_set.tolist()
    (True, 0.13875, [0, 2])
    >>> solve_simplex_qp(r @ r.T, np.array([0.0, 0.1, 0.3]), warm_start=res.x).nit
    0

    The input checks read the caller's dtype: an asymmetry of 5e-7 of max|K| is round-off for
    float32 data (tolerance 7.6e-6), an error for float64 data (1e-8):

    >>> K32 = np.array([[2.0, 1.0, 0.0], [1.000001, 2.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    >>> solve_simplex_qp(K32).x.dtype
    dtype('float32')
    >>> solve_simplex_qp(K32.astype(np.float64))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: K must be symmetric (max |K - K^T| = 9.54e-07, more than 1e-08 of max |K| = 2)
    """
    if type(check_input) is not bool:  # a NumPy bool is a bool here (an int is not)
        check_input = check_bool(check_input, "check_input")
    if method == "active_set":  # the fast paths; anything they do not take goes on below
        plain = tol is None and max_iter is None and warm_start is None
        # a small float64/float32 K (NumPy or CPU torch) with the default options; False: the
        # kernel ran and declined the data (the Python path below words the error)
        if not plain:
            res = None
        elif type(K) is _fast_path._TENSOR:
            res = solve_plain_torch(K, b, check_input)
        else:
            res = solve_plain(K, b, check_input)
        if res:
            return res
        if res is None:
            res = _fast(K, b, tol, max_iter, warm_start, check_input, plain)
            if res is not None:
                return res
    method = _check_method(method)
    K_in = K
    if not (_is_f64(K, 2) and K.size and not (check_input and not np.isfinite(K).all())):
        K = check_array(K, "K", min_ndim=2, finite=check_input)  # general path; raises
    if K.shape[-1] != K.shape[-2]:
        raise ValueError(f"K must be square (..., T, T), got shape {tuple(K.shape)}")
    if method != "apg" and K.ndim != 2:
        raise ValueError(
            f"K must be 2-dimensional (T, T) for method {method!r} (batches need method='apg'),"
            f" got shape {tuple(K.shape)}"
        )
    T = int(K.shape[-1])
    if b is not None:
        b_fast = _is_f64(b) and b.size and not (check_input and not np.isfinite(b).all())
        if not b_fast:
            b = check_array(b, "b", min_ndim=1, finite=check_input)
        if tuple(b.shape) != tuple(K.shape[:-1]):
            raise ValueError(
                f"b must have shape {tuple(K.shape[:-1])} to match K of shape "
                f"{tuple(K.shape)}, got {tuple(b.shape)}"
            )
        if not (b_fast and _is_f64(K)):
            check_same_device(("K", K), ("b", b))
    tol = DEFAULT_TOL[method] if tol is None else check_tol(tol, "tol")
    max_iter = (
        _default_max_iter(method, T) if max_iter is None
        else check_int(max_iter, "max_iter", minimum=1 if method != "apg" else 0)
    )
    if method == "apg":
        return solve_apg(K, b, tol, max_iter, warm_start, check_input)

    Kn = K if _is_f64(K) else to_numpy(K)
    dtype = getattr(K, "dtype", _F64)
    if check_input:
        check_symmetric_psd(Kn, "K", dtype=dtype)
    # as the kernel does: the solvers see an exactly symmetric K, halves first (K + K^T
    # overflows for entries above half the float range), the diagonal as given (half of a
    # subnormal entry would lose its last bit)
    S = 0.5 * Kn + 0.5 * Kn.T
    np.fill_diagonal(S, np.diagonal(Kn))
    Kn = S
    if b is None:
        bn = np.zeros(T)
    else:
        bn = b if _is_f64(b) else to_numpy(b)
    support = x0 = None
    if warm_start is not None:
        support, x0 = _warm_numpy(warm_start, T)

    # scaled problem: (K, b - min b) / scale has the same minimisers
    kabs = float(abs(Kn).max())
    bmin, bmax = float(bn.min()), float(bn.max())
    if not (math.isfinite(kabs) and math.isfinite(bmin) and math.isfinite(bmax)):
        name = "K" if not math.isfinite(kabs) else "b"
        raise ValueError(f"{name} contains NaN or inf (check_input=False skips the check that "
                         "finds where)")
    babs = max(abs(bmax), abs(bmin))
    brange = bmax - bmin  # inf when the range of b exceeds the float range
    scale = max(kabs, brange)
    if method == "active_set" and T <= 2:
        res = small_result(Kn, None if b is None else bn,
                           None if _is_f64(K_in) else (K if hasattr(K_in, "dtype") else None),
                           False)
        assert res is not None  # finite: checked above
        return res
    # the scaled data (Ks, bss) = (K, b - min b) / scale, or, when scale overflows, the same
    # from the halves (finite: the entries of b are) divided by unit = scale / 2; the result
    # reads the gradient in units of ``unit`` (finite): g = (Ks x + bss) / half
    if scale < math.inf:
        half, unit = 1.0, scale
    else:
        half = 0.5
        unit = max(0.5 * kabs, 0.5 * bmax - 0.5 * bmin)
    nit, status, message = 0, 0, "optimal"
    Ks = bss = None
    if scale > 0.0:
        inv = half / unit  # 1 / scale, the kernel's scaling to the last bit (when finite)
        Ks = Kn * inv
        bss = (bn - bmin) * inv if half == 1.0 else (0.5 * bn - 0.5 * bmin) * (1.0 / unit)
    if method in ("cvxpy", "daqp", "proxsuite"):
        if half == 1.0:
            x, nit, status, message = solve_external(method, Kn, bn - bmin, scale, tol,
                                                     max_iter, x0)
        else:  # the scaled data (the backend divides by the scale)
            assert Ks is not None and bss is not None
            x, nit, status, message = solve_external(method, Ks, bss, 1.0, tol, max_iter, x0)
    elif Ks is None or bss is None:  # scale = 0: f is constant on the simplex
        x = np.full(T, 1.0 / T) if x0 is None else x0
        message = "optimal (f is constant on the simplex)"
    elif method == "active_set":
        # a gap at this level is round-off for data given in K's precision
        roundoff = max(1e-10, 10.0 * _eps(dtype))
        x, nit, status, message = solve_active_set(
            Ks, bss, tol=tol, max_iter=max_iter, support=support, x0=x0,
            roundoff_gap=roundoff, trace=_fast_path._TRACE,
        )
    else:
        if x0 is None:
            x0 = np.full(T, 1.0 / T)
            if support is not None and support.size:
                x0 = np.zeros(T)
                x0[support] = 1.0 / support.size
        x, _, nit, status, message = frank_wolfe_qp(
            Ks, bss, x0, variant=method, tol=tol, max_iter=max_iter
        )
    if check_input and T > FULL_CHECK_T:
        check_curvature_at(Kn, x, "K", dtype=dtype)
    # the lazy certificate fields read g on b - min b, in units of ``unit`` (see Lazy); K and
    # b may be the caller's arrays: use them now, not lazily
    if Ks is None or bss is None:
        lazy: Lazy = (x, Kn @ x + (bn - bmin), float(bn @ x), data_scale(0.0, 0.0, babs),
                      bmin, 1.0)
    else:
        g = Ks @ x + bss
        if half != 1.0:
            g *= 2.0  # (K x + b - min b) / unit, the data scale 2 in these units
        lazy = (x, g, float(bn @ x), 1.0 / half, bmin, unit)
    return SimplexQPResult(
        x=x if _is_f64(K_in) else from_numpy(
            x, K if hasattr(K_in, "dtype") else None),
        nit=int(nit),
        status=int(status),
        success=status == 0,
        message=message,
        method=method,
        lazy=lazy,
    )
