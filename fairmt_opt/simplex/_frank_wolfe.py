r"""Frank–Wolfe solvers for the AHFDA aggregation (host, float64 NumPy).

All three maximise the strongly concave
:math:`f(w) = w^\top\psi - \tfrac{\mu}{2}\|w - c\|^2` over the simplex, starting from the
barycentre :math:`w^0 = c`, with the gradient :math:`g = \psi - \mu(w - c)`, the Frank–Wolfe
vertex :math:`s = e_{\arg\max_t g_t}` and the duality gap :math:`g^\top(s - w)`, which bounds
:math:`\Phi - f(w)` at every iterate. Every step uses the exact line search of the quadratic
along its direction :math:`d`, :math:`\gamma = \min(\gamma_{\max}, g^\top d / (\mu\|d\|^2))`:

* ``frank_wolfe``: :math:`d = s - w`, :math:`\gamma_{\max} = 1` (SPEC Algorithm 1);
* ``away``: the better of the FW direction and the away direction :math:`d = w - e_a`,
  :math:`a = \arg\min_{t : w_t > 0} g_t`, :math:`\gamma_{\max} = w_a/(1 - w_a)`;
* ``pairwise``: :math:`d = s - e_a`, :math:`\gamma_{\max} = w_a`.

A step that reaches :math:`\gamma_{\max}` (a *drop step*) sets :math:`w_a` to exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FWOutput", "solve_fw"]


@dataclass
class FWOutput:
    w: np.ndarray
    nit: int
    gap: float
    converged: bool
    history: np.ndarray | None


def solve_fw(
    psi: np.ndarray, mu: float, *, variant: str, tol: float, max_iter: int, keep_history: bool
) -> FWOutput:
    """Run one Frank–Wolfe variant on the (centred) float64 vector ``psi``."""
    T = psi.shape[0]
    c = 1.0 / T
    w = np.full(T, c)
    hist: list[float] = []
    nit = 0
    converged = False
    gap = 0.0
    inf = np.inf
    while True:
        w /= w.sum()  # keep the round-off drift of the sum out of the iterates
        g = psi - mu * (w - c)
        s = int(np.argmax(g))
        wg = float(w @ g)
        gap = float(g[s]) - wg
        if keep_history:
            hist.append(gap)
        if gap <= tol:
            converged = True
            break
        if nit >= max_iter:
            break
        nit += 1
        if variant == "frank_wolfe":
            _fw_step(w, s, gap, mu)
            continue
        a = int(np.argmin(np.where(w > 0.0, g, inf)))
        if variant == "away":
            away_gap = wg - float(g[a])
            if gap >= away_gap or a == s:
                _fw_step(w, s, gap, mu)
            else:
                wa = float(w[a])
                gmax = wa / (1.0 - wa)
                d2 = float(w @ w) - 2.0 * wa + 1.0
                gamma = min(gmax, away_gap / (mu * d2))
                w *= 1.0 + gamma
                w[a] -= gamma
                if gamma >= gmax:
                    w[a] = 0.0
        else:  # pairwise
            if a == s:
                _fw_step(w, s, gap, mu)
                continue
            wa = float(w[a])
            gamma = min(wa, (float(g[s]) - float(g[a])) / (2.0 * mu))
            w[s] += gamma
            if gamma >= wa:
                w[a] = 0.0
            else:
                w[a] -= gamma
    return FWOutput(w, nit, gap, converged,
                    np.asarray(hist, dtype=np.float64) if keep_history else None)


def _fw_step(w: np.ndarray, s: int, gap: float, mu: float) -> None:
    """In place: :math:`w \\leftarrow w + \\gamma (e_s - w)` with exact line search."""
    ws = float(w[s])
    d2 = float(w @ w) - 2.0 * ws + 1.0
    gamma = min(1.0, gap / (mu * d2)) if d2 > 0.0 else 0.0
    w *= 1.0 - gamma
    w[s] += gamma
