r"""Frank–Wolfe variants for :math:`\min_{x\in\Delta} \tfrac12 x^\top Kx + b^\top x`.

All three use the exact line search of a quadratic along the chosen direction :math:`d`:
:math:`\gamma = \min(\gamma_{\max}, -g^\top d / d^\top K d)` (:math:`\gamma_{\max}` when the
curvature vanishes), and stop when the Frank–Wolfe gap :math:`x^\top g - \min_t g_t` (an upper
bound on :math:`f(x) - f^\star`) is at most ``tol``. ``Kx`` is updated in :math:`O(T)` per
iteration from one or two columns of :math:`K`, so an iteration costs :math:`O(T)`.

* ``frank_wolfe``: toward the best vertex :math:`s = \arg\min_t g_t` (the MGDA min-norm solver);
* ``away``: the better of the toward step and the away step from the worst vertex of the support
  (Guélat–Marcotte, Lacoste-Julien–Jaggi), which converges linearly;
* ``pairwise``: mass moves from the worst support vertex to the best vertex.

All inputs are float64 NumPy arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["frank_wolfe_qp"]


def frank_wolfe_qp(
    K: np.ndarray,
    b: np.ndarray,
    x0: np.ndarray,
    *,
    variant: str,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, float, int, int, str]:
    """Run ``variant`` in {"frank_wolfe", "away", "pairwise"} from the feasible ``x0``.

    Returns ``(x, gap, nit, status, message)``; status 0 when ``gap <= tol`` (absolute),
    1 when ``max_iter`` iterations were spent.
    """
    x = x0.copy()
    Kx = K @ x
    diag = K.diagonal()
    nit = 0
    while True:
        g = Kx + b
        s = int(np.argmin(g))
        xg = float(x @ g)
        gap = xg - float(g[s])
        if gap <= tol:
            return x, gap, nit, 0, "converged: Frank-Wolfe gap <= tol"
        if nit >= max_iter:
            return x, gap, nit, 1, "iteration limit reached"
        nit += 1
        if nit % 128 == 0:  # refresh the incrementally updated K x against round-off drift
            Kx = K @ x
        if variant == "frank_wolfe":
            # d = e_s - x
            gd = -gap
            xKx = float(x @ Kx)
            curv = float(diag[s]) - 2.0 * float(Kx[s]) + xKx
            gamma = 1.0 if curv <= 0.0 else min(1.0, -gd / curv)
            x *= 1.0 - gamma
            x[s] += gamma
            Kx = (1.0 - gamma) * Kx + gamma * K[:, s]
            continue
        # the away vertex: worst gradient on the support
        supp = np.flatnonzero(x > 0.0)
        a = int(supp[np.argmax(g[supp])])
        if variant == "away":
            away_gap = float(g[a]) - xg
            if gap >= away_gap:  # toward step, d = e_s - x
                xKx = float(x @ Kx)
                curv = float(diag[s]) - 2.0 * float(Kx[s]) + xKx
                gamma = 1.0 if curv <= 0.0 else min(1.0, gap / curv)
                x *= 1.0 - gamma
                x[s] += gamma
                Kx = (1.0 - gamma) * Kx + gamma * K[:, s]
            else:  # away step, d = x - e_a, gamma_max = x_a / (1 - x_a)
                xa = float(x[a])
                gmax = xa / (1.0 - xa) if xa < 1.0 else np.inf
                xKx = float(x @ Kx)
                curv = xKx - 2.0 * float(Kx[a]) + float(diag[a])
                gamma = gmax if curv <= 0.0 else min(gmax, away_gap / curv)
                if not np.isfinite(gamma):  # x = e_a and flat: cannot happen when gap > 0
                    return x, gap, nit, 2, "away step unbounded (numerical)"
                x *= 1.0 + gamma
                x[a] -= gamma
                if gamma == gmax:
                    x[a] = 0.0
                Kx = (1.0 + gamma) * Kx - gamma * K[:, a]
        else:  # pairwise: d = e_s - e_a, gamma_max = x_a
            gd = float(g[s] - g[a])
            xa = float(x[a])
            curv = float(diag[s]) - 2.0 * float(K[s, a]) + float(diag[a])
            gamma = xa if curv <= 0.0 else min(xa, -gd / curv)
            x[s] += gamma
            x[a] -= gamma
            if gamma == xa:
                x[a] = 0.0
            Kx = Kx + gamma * (K[:, s] - K[:, a])
