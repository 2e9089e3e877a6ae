r"""External QP backends (cvxpy, daqp, proxsuite) behind ``solve_simplex_qp(method=...)``.

Each ``backend_*`` returns ``(x, nit, status, message)`` on the data it is given;
:func:`solve_external` gives them the problem divided by its scale, turns their exceptions
into a status, and certifies their answer before reporting it optimal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..certificates._qp import _residuals

__all__ = ["backend_cvxpy", "backend_daqp", "backend_proxsuite", "solve_external"]

_INT_MAX = 2**31 - 1  # the backends' iteration counters are C ints
_FEAS_TOL = 1e-9      # primal residual above which a backend's point is not cleaned up
_CERT_RTOL = 1.5e-8   # least gap (relative to the scale) certified: sqrt(eps) of float64


def solve_external(
    method: str, K: np.ndarray, bs: np.ndarray, scale: float, tol: float, max_iter: int,
    x0: np.ndarray | None,
) -> tuple[np.ndarray, int, int, str]:
    r"""Solve with the backend ``method`` on :math:`(K, b_s)/s` (``bs`` = :math:`b - \min b`,
    ``scale`` :math:`= s`; the minimisers are those of the caller's problem), then certify.

    Returns ``(x, nit, status, message)``: status 0 only when the backend reports an optimum,
    its point is on the simplex up to ``1e-9`` (then clipped at 0 and renormalised, which keeps
    it feasible exactly) and its Frank–Wolfe gap on the scaled data is at most
    :math:`\max(\mathrm{tol}, 1.5\cdot 10^{-8})`; 3 when the backend fails or raises (its
    exception named in the message, ``x`` the barycentre); 4 when its answer fails the
    certificate. An :class:`ImportError` (backend not installed) propagates.
    """
    T = K.shape[0]
    if scale > 0.0:
        Ks, bss = K / scale, bs / scale
    else:  # f constant on the simplex: any point is optimal, the backend sees zeros
        Ks, bss = np.zeros_like(K), np.zeros_like(bs)
    max_iter = min(int(max_iter), _INT_MAX)
    try:
        if method == "cvxpy":
            x, nit, status, message = backend_cvxpy(Ks, bss)
        elif method == "daqp":
            x, nit, status, message = backend_daqp(Ks, bss, tol, max_iter, x0)
        else:
            x, nit, status, message = backend_proxsuite(Ks, bss, tol, max_iter)
    except ImportError:
        raise
    except Exception as exc:  # the backend's own failure is a status, not its exception
        return (np.full(T, 1.0 / T), 0, 3,
                f"{method} raised {type(exc).__name__}: {exc}; x is the barycentre")
    xa = None if x is None else np.asarray(x, dtype=np.float64).reshape(-1)
    if xa is None or xa.shape != (T,) or not np.all(np.isfinite(xa)):
        return (np.full(T, 1.0 / T), nit, 3,
                f"{message}; no finite point of length {T} returned, x is the barycentre")
    if status != 0:
        return xa, nit, status, message
    infeas = max(abs(float(xa.sum()) - 1.0), float(max(0.0, -xa.min())))
    if infeas > _FEAS_TOL:
        return xa, nit, 4, (f"{message}, but its point is off the simplex (primal residual "
                            f"{infeas:.2e} > {_FEAS_TOL:g}): not certified")
    xa = np.maximum(xa, 0.0)
    xa /= xa.sum()
    gap = _residuals(xa, Ks @ xa + bss, 1.0)[0]
    rtol = max(tol, _CERT_RTOL)
    if not gap <= rtol:  # also NaN
        return xa, nit, 4, (f"{message}, but its gap {gap:.2e} (relative to the data scale) "
                            f"exceeds {rtol:.2g}: not certified")
    return xa, nit, 0, f"{message}; certified (relative gap {gap:.1e})"


def backend_daqp(
    K: np.ndarray, b: np.ndarray, tol: float, max_iter: int, x0: np.ndarray | None
) -> tuple[np.ndarray, int, int, str]:
    try:
        import daqp
    except ImportError as exc:
        raise ImportError(
            "method='daqp' needs the daqp package: pip install daqp "
            "(or pip install 'fairmt_opt[daqp]')"
        ) from exc
    T = K.shape[0]
    A = np.ones((1, T))
    bu = np.concatenate([np.full(T, 1e30), [1.0]])
    bl = np.concatenate([np.zeros(T), [1.0]])
    sense = np.concatenate([np.zeros(T), [5]]).astype(np.int32)
    kw: dict[str, Any] = {"iter_limit": max_iter}
    if x0 is not None:
        kw["primal_start"] = np.array(x0, dtype=np.float64)
    K, b = np.array(K, dtype=np.float64), np.array(b, dtype=np.float64)  # writable copies
    x, _, flag, info = daqp.solve(K, b, A, bu, bl, sense, eps_prox=0.0, **kw)
    if flag < 0:  # singular Hessian: daqp's proximal-point outer loop (exact in the limit)
        x, _, flag, info = daqp.solve(K, b, A, bu, bl, sense, eps_prox=1e-6, **kw)
    nit = int(info.get("iterations", 0)) if isinstance(info, dict) else 0
    if flag in (1, 2):
        return np.asarray(x, dtype=np.float64), nit, 0, f"daqp exit flag {flag} (optimal)"
    return np.asarray(x, dtype=np.float64), nit, 3, f"daqp failed with exit flag {flag}"


def backend_proxsuite(
    K: np.ndarray, b: np.ndarray, tol: float, max_iter: int
) -> tuple[np.ndarray, int, int, str]:
    try:
        import proxsuite
    except ImportError as exc:
        raise ImportError(
            "method='proxsuite' needs the proxsuite package: pip install proxsuite"
        ) from exc
    T = K.shape[0]
    qp = proxsuite.proxqp.dense.QP(T, 1, T)
    qp.settings.eps_abs = tol
    qp.settings.max_iter = max_iter
    qp.init(K, b, np.ones((1, T)), np.ones(1), np.eye(T), np.zeros(T), np.full(T, 1e20))
    qp.solve()
    x = np.asarray(qp.results.x, dtype=np.float64)
    nit = int(qp.results.info.iter)
    status = str(qp.results.info.status)
    ok = "SOLVED" in status.upper() and "CLOSEST" not in status.upper()
    return x, nit, 0 if ok else 3, f"proxsuite status {status}"


def backend_cvxpy(K: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    from .. import reference

    sol = reference.solve_simplex_qp(K, b)
    ok = sol.status == "optimal"
    return sol.x, 0, 0 if ok else 3, f"cvxpy ({sol.solver}) status {sol.status}"
