r"""The Frank–Wolfe family for :math:`\min_{x\in\Delta} \tfrac12 x^\top Kx + b^\top x`, written
once: the simplex QP (:func:`fairmt_opt.solve_simplex_qp`) and the AHFDA aggregation (the QP
with :math:`K = \mu I`, :math:`b = -\psi - \mu c`) both run this code.

All three variants use the exact line search of a quadratic along the chosen direction
:math:`d`: :math:`\gamma = \min(\gamma_{\max}, -g^\top d / d^\top K d)` (:math:`\gamma_{\max}`
when the curvature vanishes), and stop when the Frank–Wolfe gap :math:`x^\top g - \min_t g_t`
(an upper bound on :math:`f(x) - f^\star`) is at most ``tol``. An iteration costs :math:`O(T)`:
``Kx`` is updated from one or two columns of a dense :math:`K` (and recomputed every 128
iterations against round-off drift), or recomputed outright by an implicit operator such as
:class:`ScaledIdentity`. The iterate is renormalised to sum 1 at every iteration.

* ``frank_wolfe``: toward the best vertex :math:`s = \arg\min_t g_t` (the MGDA min-norm solver,
  SPEC Algorithm 1 for the aggregation);
* ``away``: the better of the toward step and the away step from the worst vertex of the support
  :math:`a = \arg\max_{t: x_t > 0} g_t`, :math:`\gamma_{\max} = x_a/(1 - x_a)`
  (Guélat–Marcotte, Lacoste-Julien–Jaggi), which converges linearly;
* ``pairwise``: mass moves from :math:`a` to :math:`s`, :math:`\gamma_{\max} = x_a`.

A step that reaches :math:`\gamma_{\max}` (a *drop step*) sets :math:`x_a` to exactly zero.
All inputs are float64 NumPy arrays (or a :class:`ScaledIdentity`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ScaledIdentity", "frank_wolfe_qp"]


class ScaledIdentity:
    """The implicit operator :math:`K = \\mu I` of size ``T``: products in :math:`O(T)`,
    entries in :math:`O(1)`, no matrix formed."""

    exact_matvec = True  # K x is cheap: recompute it every iteration

    def __init__(self, mu: float, T: int) -> None:
        self.mu = float(mu)
        self.T = int(T)

    def matvec(self, x: np.ndarray) -> np.ndarray:
        return self.mu * x

    def column(self, j: int) -> np.ndarray:
        e = np.zeros(self.T)
        e[j] = self.mu
        return e

    def diag(self, j: int) -> float:
        return self.mu

    def entry(self, i: int, j: int) -> float:
        return self.mu if i == j else 0.0


class _Dense:
    """A dense symmetric ``K`` behind the operator interface of :class:`ScaledIdentity`."""

    exact_matvec = False

    def __init__(self, K: np.ndarray) -> None:
        self.K = K
        self.d = K.diagonal()

    def matvec(self, x: np.ndarray) -> np.ndarray:
        return self.K @ x

    def column(self, j: int) -> np.ndarray:
        return self.K[:, j]

    def diag(self, j: int) -> float:
        return float(self.d[j])

    def entry(self, i: int, j: int) -> float:
        return float(self.K[i, j])


def frank_wolfe_qp(
    K: np.ndarray | ScaledIdentity,
    b: np.ndarray,
    x0: np.ndarray,
    *,
    variant: str,
    tol: float,
    max_iter: int,
    history: list[float] | None = None,
) -> tuple[np.ndarray, float, int, int, str]:
    """Run ``variant`` in {"frank_wolfe", "away", "pairwise"} from the feasible ``x0``.

    ``K`` is a dense symmetric PSD array or an implicit operator (:class:`ScaledIdentity`).
    When ``history`` is a list, the gap of every iterate is appended to it.

    Returns ``(x, gap, nit, status, message)``; status 0 when ``gap <= tol`` (absolute),
    1 when ``max_iter`` iterations were spent, 2 for an unbounded away step, 3 for a NaN or
    infinite gap (never a success).
    """
    op: Any = K if isinstance(K, ScaledIdentity) else _Dense(K)
    x = x0.copy()
    Kx = op.matvec(x)
    nit = 0
    while True:
        x /= x.sum()  # keep the round-off drift of the sum out of the iterates
        if op.exact_matvec:
            Kx = op.matvec(x)
        g = Kx + b
        s = int(np.argmin(g))
        xg = float(x @ g)
        gap = xg - float(g[s])
        if history is not None:
            history.append(gap)
        if not np.isfinite(gap):  # before the test against tol, which may be inf itself
            return x, gap, nit, 3, "the Frank-Wolfe gap is not finite (numerical)"
        if gap <= tol:
            return x, gap, nit, 0, "converged: Frank-Wolfe gap <= tol"
        if nit >= max_iter:
            return x, gap, nit, 1, "iteration limit reached"
        nit += 1
        if not op.exact_matvec and nit % 128 == 0:  # refresh K x against round-off drift
            Kx = op.matvec(x)
        if variant == "frank_wolfe":
            Kx = _toward(op, x, Kx, s, gap)
            continue
        # the away vertex: worst gradient on the support
        supp = np.flatnonzero(x > 0.0)
        a = int(supp[np.argmax(g[supp])])
        if a == s:  # the support is flat in g: only the toward step can progress
            Kx = _toward(op, x, Kx, s, gap)
        elif variant == "away":
            away_gap = float(g[a]) - xg
            if gap >= away_gap:
                Kx = _toward(op, x, Kx, s, gap)
                continue
            # away step, d = x - e_a, gamma_max = x_a / (1 - x_a)
            xa = float(x[a])
            gmax = xa / (1.0 - xa) if xa < 1.0 else np.inf
            curv = float(x @ Kx) - 2.0 * float(Kx[a]) + op.diag(a)
            gamma = gmax if curv <= 0.0 else min(gmax, away_gap / curv)
            if not np.isfinite(gamma):  # x = e_a and flat: cannot happen when gap > 0
                return x, gap, nit, 2, "away step unbounded (numerical)"
            x *= 1.0 + gamma
            x[a] -= gamma
            if gamma >= gmax:
                x[a] = 0.0
            if not op.exact_matvec:
                Kx = (1.0 + gamma) * Kx - gamma * op.column(a)
        else:  # pairwise: d = e_s - e_a, gamma_max = x_a
            xa = float(x[a])
            curv = op.diag(s) - 2.0 * op.entry(s, a) + op.diag(a)
            gamma = xa if curv <= 0.0 else min(xa, float(g[a] - g[s]) / curv)
            x[s] += gamma
            x[a] -= gamma
            if gamma >= xa:
                x[a] = 0.0
            if not op.exact_matvec:
                Kx = Kx + gamma * (op.column(s) - op.column(a))


def _toward(op: Any, x: np.ndarray, Kx: np.ndarray, s: int, gap: float) -> np.ndarray:
    """In place :math:`x \\leftarrow x + \\gamma (e_s - x)` with exact line search; returns the
    updated ``K x``."""
    curv = op.diag(s) - 2.0 * float(Kx[s]) + float(x @ Kx)
    gamma = 1.0 if curv <= 0.0 else min(1.0, gap / curv)
    x *= 1.0 - gamma
    x[s] += gamma
    if op.exact_matvec:
        return Kx
    return (1.0 - gamma) * Kx + gamma * op.column(s)
