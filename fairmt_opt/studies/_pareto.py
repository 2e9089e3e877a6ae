r"""Pareto fronts, hypervolumes and attainment curves of fairness–utility points.

Every point is a pair :math:`(f, u)`: a fairness gap :math:`f` (lower is fairer: EO, KS, Φ)
and a utility :math:`u` (higher is better: accuracy, CCC). A point :math:`(f, u)` *dominates*
:math:`(f', u')` when :math:`f \le f'` and :math:`u \ge u'` with at least one inequality
strict; the Pareto front is the set of points that no other point dominates (two identical
points are both on it, neither dominates the other).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["attainment", "hypervolume", "leaders", "pareto_front", "reference_point"]


def _points(fairness: Any, utility: Any) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(fairness, dtype=np.float64).reshape(-1)
    u = np.asarray(utility, dtype=np.float64).reshape(-1)
    if f.shape != u.shape:
        raise ValueError(f"fairness and utility must have the same length, got {f.size} "
                         f"and {u.size}")
    if not (np.isfinite(f).all() and np.isfinite(u).all()):
        raise ValueError("fairness and utility must be finite (no NaN or inf)")
    return f, u


def pareto_front(fairness: Any, utility: Any) -> np.ndarray:
    r"""Mask of the points on the Pareto front of :math:`\min f`, :math:`\max u`.

    Point :math:`i` is on the front when no :math:`j` has :math:`f_j \le f_i`,
    :math:`u_j \ge u_i` and :math:`(f_j, u_j) \ne (f_i, u_i)`. Cost :math:`O(n \log n)`
    (one sort, one sweep).

    Parameters
    ----------
    fairness, utility : array_like of shape (n,)
        Finite values; ``n = 0`` gives an empty mask.

    Returns
    -------
    ndarray of bool, shape (n,)

    Raises
    ------
    ValueError
        Different lengths or a non-finite value.

    Examples
    --------
    >>> pareto_front([0.1, 0.2, 0.3, 0.2, 0.1], [0.80, 0.85, 0.84, 0.85, 0.80]).tolist()
    [True, True, False, True, True]
    """
    f, u = _points(fairness, utility)
    order = np.lexsort((-u, f))  # by fairness ascending, then utility descending
    mask = np.zeros(f.size, dtype=bool)
    best_u, best_f = -np.inf, np.nan
    for i in order:
        if u[i] > best_u:
            mask[i] = True
            best_u, best_f = u[i], f[i]
        elif u[i] == best_u and f[i] == best_f:
            mask[i] = True  # a duplicate of a front point
    return mask


def reference_point(fairness: Any, utility: Any) -> tuple[float, float]:
    r"""The nadir :math:`(\max_i f_i, \min_i u_i)` of a set of points, the reference point of
    :func:`hypervolume` when several fronts are compared on one task.

    Raises
    ------
    ValueError
        No point, different lengths or a non-finite value.

    Examples
    --------
    >>> reference_point([0.1, 0.3], [0.9, 0.7])
    (0.3, 0.7)
    """
    f, u = _points(fairness, utility)
    if f.size == 0:
        raise ValueError("reference_point needs at least one point")
    return float(f.max()), float(u.min())


def hypervolume(fairness: Any, utility: Any, reference: Sequence[float]) -> float:
    r"""Area dominated by the points and bounded by the reference point :math:`(f_r, u_r)`:

    .. math::

        \mathrm{HV} = \Big|\bigcup_i\, [f_i, f_r] \times [u_r, u_i]\Big|,

    where a point with :math:`f_i \ge f_r` or :math:`u_i \le u_r` adds nothing. Larger is
    better. Cost :math:`O(n \log n)`: the front sorted by :math:`f`, a sum of rectangles
    :math:`\sum_k (f_{k+1} - f_k)(u_k - u_r)` with :math:`f_{K+1} = f_r`.

    Parameters
    ----------
    fairness, utility : array_like of shape (n,)
        Finite values (dominated points may be included; ``n = 0`` gives 0).
    reference : (float, float)
        :math:`(f_r, u_r)`, finite.

    Raises
    ------
    ValueError
        Different lengths, a non-finite value or a malformed reference.

    Examples
    --------
    >>> round(hypervolume([0.1, 0.2], [0.6, 0.8], (0.3, 0.5)), 12)  # 0.1*0.1 + 0.1*0.3
    0.04
    """
    f, u = _points(fairness, utility)
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != (2,) or not np.isfinite(ref).all():
        raise ValueError(f"reference must be two finite numbers (fairness, utility), got "
                         f"{reference!r}")
    fr, ur = float(ref[0]), float(ref[1])
    keep = (f < fr) & (u > ur)
    f, u = f[keep], u[keep]
    if f.size == 0:
        return 0.0
    on = pareto_front(f, u)
    f, u = f[on], u[on]
    order = np.lexsort((u, f))
    f, u = f[order], u[order]
    edges = np.append(f, fr)
    return float(np.sum(np.diff(edges) * (u - ur)))


def attainment(levels: Any, fairness: Any, utility: Any) -> np.ndarray:
    r"""The best utility reachable at each fairness level,
    :math:`a(\ell) = \max\{u_i : f_i \le \ell\}` (:math:`-\infty` where no point is fair
    enough). Cost :math:`O((n + m) \log n)` for ``m`` levels.

    Examples
    --------
    >>> attainment([0.05, 0.1, 0.25], [0.1, 0.2], [0.6, 0.8]).tolist()
    [-inf, 0.6, 0.8]
    """
    f, u = _points(fairness, utility)
    lv = np.asarray(levels, dtype=np.float64).reshape(-1)
    if np.isnan(lv).any():
        raise ValueError("levels must not contain NaN")
    order = np.argsort(f, kind="stable")
    best = np.maximum.accumulate(u[order]) if f.size else np.zeros(0)
    pos = np.searchsorted(f[order], lv, side="right")
    out = np.full(lv.shape, -np.inf)
    hit = pos > 0
    out[hit] = best[pos[hit] - 1]
    return out


def leaders(fronts: Mapping[str, tuple[Any, Any]], *, tol: float = 0.0
            ) -> list[tuple[float, float, tuple[str, ...]]]:
    r"""Which method reaches the highest utility at each fairness level.

    The attainment curves :func:`attainment` are step functions that change only at the
    fairness values of the points, so the fairness axis splits into intervals
    :math:`[\ell_k, \ell_{k+1})` (the last one unbounded) on which the set of leaders (the
    methods within ``tol`` of the best utility) is constant; neighbouring intervals with the
    same leaders are merged. Levels below every point (nobody fair enough) are left out.
    Where the leader changes, the fronts cross.

    Parameters
    ----------
    fronts : mapping name -> (fairness, utility)
        Points of each method (dominated ones may be included).
    tol : float
        Utility tolerance of a tie (>= 0).

    Returns
    -------
    list of (start, end, names)
        ``end`` is ``inf`` for the last interval.

    Examples
    --------
    >>> leaders({"a": ([0.1, 0.3], [0.6, 0.9]), "b": ([0.2], [0.8])})
    [(0.1, 0.2, ('a',)), (0.2, 0.3, ('b',)), (0.3, inf, ('a',))]
    """
    if not isinstance(tol, (int, float)) or not tol >= 0 or not np.isfinite(tol):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    pts = {name: _points(f, u) for name, (f, u) in fronts.items()}
    if not pts or all(f.size == 0 for f, _ in pts.values()):
        return []
    levels = np.unique(np.concatenate([f for f, _ in pts.values()]))
    names = list(pts)
    curves = np.stack([attainment(levels, *pts[n]) for n in names])  # (methods, levels)
    best = curves.max(axis=0)
    out: list[tuple[float, float, tuple[str, ...]]] = []
    for k, level in enumerate(levels):
        who = tuple(n for n, c in zip(names, curves[:, k]) if c >= best[k] - tol)
        end = float(levels[k + 1]) if k + 1 < levels.size else float("inf")
        if out and out[-1][2] == who:
            out[-1] = (out[-1][0], end, who)
        else:
            out.append((float(level), end, who))
    return out
