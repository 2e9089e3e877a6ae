"""External QP backends (cvxpy, daqp, proxsuite) behind ``solve_simplex_qp(method=...)``: each
returns ``(x, nit, status, message)`` on the data as given."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["backend_cvxpy", "backend_daqp", "backend_proxsuite"]


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
        kw["primal_start"] = x0
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
