r"""Primal active-set method for :math:`\min_{x\in\Delta} \tfrac12 x^\top Kx + b^\top x`.

The free set :math:`F` (support of ``x``) is kept such that the KKT matrix of the
equality-constrained subproblem on :math:`F`,

.. math::  M_F = \begin{pmatrix} 0 & \mathbf 1^\top \\ \mathbf 1 & K_{FF} \end{pmatrix},

is nonsingular, i.e. :math:`K_{FF}` is positive definite on :math:`\{d : \mathbf 1^\top d = 0\}`.
Its inverse is updated by bordering (add an index) and by a Schur downdate (drop an index),
:math:`O(|F|^2)` each. When adding index :math:`j` would make :math:`M_F` singular (a direction
of zero curvature :math:`d` with :math:`d_j = 1`, possible for singular :math:`K`), :math:`d` is a
strict descent direction (:math:`g^\top d = g_j - \lambda < 0`) and the method moves along it with
an exact line search until a coordinate of :math:`F` hits zero; dropping that coordinate restores
nonsingularity. No ridge is ever added. Every step decreases :math:`f` strictly and the working
sets never repeat, so the method terminates finitely (in exact arithmetic).

Before it, :func:`block_pivot` runs a few block principal pivoting steps (Júdice–Pires,
Kim–Park): solve the KKT system on a guessed support, then drop every negative coordinate and add
every bound with a negative multiplier at once. On well-conditioned problems this finds the
optimal support in a handful of dense solves; when it fails to make progress (singular or
ill-conditioned :math:`K`) the exact primal method takes over from its best iterate, so the
combination keeps finite termination.

All inputs are float64 NumPy arrays already scaled to ``max(|K|, |b|) <= 1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._kkt import SING as _SING
from ._kkt import (
    _add,
    _affine_basis,
    _affine_basis_keep,
    _drop,
    _kkt_inverse,
    _record,
    _solve_on,
)

__all__ = ["active_set_qp", "block_pivot", "solve_active_set"]

_REFRESH = 60      # rebuild the inverse from scratch after max(_REFRESH, |F|) updates
_STAT_TOL = 1e-12  # stationarity residual on F that triggers a rebuild before stopping


def active_set_qp(
    K: np.ndarray,
    b: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    support: np.ndarray | None = None,
    x0: np.ndarray | None = None,
    trace: list[tuple[int, ...]] | None = None,
    state: dict[str, Any] | None = None,
) -> tuple[np.ndarray, int, int, str]:
    """Run the primal active-set method.

    Returns ``(x, nit, status, message)`` with status 0 (optimal) or 1 (iteration limit).
    ``support`` (sorted int indices) and ``x0`` (a feasible point supported on it) warm-start
    the method; otherwise it starts at the best vertex. The index that enters is the one of
    most negative bound multiplier per unit ``K``-length of its edge ``e_j - x`` (steepest
    edge: ``mu_j^2 / (K_jj - 2 (Kx)_j + x'Kx)`` largest, O(1) per index from the gradient).
    ``trace``, if given, receives every working set (sorted indices) the method visits.
    ``state`` (the proximal subproblems, which share ``K``) carries the working set, its
    inverse and the update count from one call to the next: when it holds them, the method
    starts there (``x0`` is then supported on that working set) instead of rebuilding the
    inverse; on return it holds the final ones (emptied when the working set became
    numerically singular).
    """
    T = K.shape[0]
    x = np.zeros(T)
    N = None
    updates = 0
    if state:
        F, N, updates = state["F"], state["N"], state["updates"]
        assert x0 is not None
        x[F] = x0[F]
    elif support is not None and support.size > 0:
        F = support.astype(np.intp, copy=True)
        N = _kkt_inverse(K, F)
        if N is not None:
            if x0 is not None:
                x[F] = x0[F]
            else:
                x[F] = 1.0 / F.size
    if N is None:  # cold start at the best vertex
        i0 = int(np.argmin(0.5 * K.diagonal() + b))
        F = np.array([i0], dtype=np.intp)
        N = np.array([[-K[i0, i0], 1.0], [1.0, 0.0]])
        x[:] = 0.0
        x[i0] = 1.0
    if trace is not None:
        _record(trace, F)
    x, nit, status, msg, F, N, updates = _primal(K, b, x, F, N, updates, tol=tol,
                                                  max_iter=max_iter, trace=trace)
    if state is not None:
        state.clear()
        if not msg.startswith("stopped"):
            state.update(F=F, N=N, updates=updates)
    return x, nit, status, msg


def _primal(
    K: np.ndarray, b: np.ndarray, x: np.ndarray, F: np.ndarray, N: np.ndarray, updates: int,
    *, tol: float, max_iter: int, trace: list[tuple[int, ...]] | None,
) -> tuple[np.ndarray, int, int, str, np.ndarray, np.ndarray, int]:
    """The iterations of :func:`active_set_qp` from the feasible ``x`` supported on the working
    set ``F`` with inverse ``N``; returns ``(x, nit, status, message, F, N, updates)``."""
    T = K.shape[0]
    nit = 0
    banned: list[int] = []  # indices whose addition stalled at a zero step (round-off)
    last_added = -1
    restarts = 0
    rhs = np.empty(T + 1)
    rhs[0] = 1.0
    nb = -b
    diag = K.diagonal()
    zfix: np.ndarray | None = None  # a refined solution on F, used instead of N (1, -b_F)
    refined_at = -1
    while True:
        # ---- move to the minimiser of the subproblem on F (dropping blocking indices)
        while True:
            k = F.size
            rhs[1 : k + 1] = nb[F]
            if zfix is not None:
                z, zfix = zfix, None
            else:
                z = N @ rhs[: k + 1]
            if not math.isfinite(float(z.sum())):  # round-off broke the inverse
                return x, nit, 1, "stopped: working set numerically singular", F, N, updates
            xF_new = z[1:]
            if xF_new.min() >= 0.0:
                x[F] = xF_new
                break
            xF = x[F]
            p = xF_new - xF
            neg = np.flatnonzero(p < 0.0)
            if neg.size == 0:  # round-off broke the inverse
                return x, nit, 1, "stopped: working set numerically singular", F, N, updates
            ratios = np.maximum(xF[neg], 0.0) / -p[neg]
            r = int(np.argmin(ratios))
            t = float(ratios[r])
            pos = int(neg[r])
            x[F] = np.maximum(xF + t * p, 0.0)
            x[F[pos]] = 0.0
            if t > 0.0:
                banned.clear()
            elif F[pos] == last_added:
                banned.append(last_added)
            N, F = _drop(N, F, pos)
            if trace is not None:
                _record(trace, F)
            nit += 1
            updates += 1
            if nit >= max_iter:
                return x, nit, 1, "iteration limit reached", F, N, updates
        # ---- optimality test on the multipliers of the bounds x_j >= 0, j not in F
        g = K @ x + b
        lam = float(x @ g)
        mu = g - lam
        mu[F] = np.inf
        if banned:
            mu[banned] = np.inf
        j = int(np.argmin(mu))
        if mu[j] >= -tol:
            stat = float(np.max(np.abs(g[F] - lam)))
            if stat > _STAT_TOL and updates > 0:  # accumulated round-off in N
                if refined_at != nit:
                    # one step of iterative refinement first, O(|F|^2): z += N (rhs - M_F z),
                    # the residual being (1 - 1'x_F, -(g_F + nu)); then a rebuild if needed
                    refined_at = nit
                    res = np.empty(k + 1)
                    res[0] = 1.0 - float(x[F].sum())
                    res[1:] = -(g[F] + z[0])
                    zfix = z + N @ res
                    continue
                Nf = _kkt_inverse(K, F)
                if Nf is not None:
                    N = Nf
                    updates = 0
                    continue
            return x, nit, 0, "optimal", F, N, updates
        if nit >= max_iter:
            return x, nit, 1, "iteration limit reached", F, N, updates
        # steepest edge among the negative multipliers: |e_j - x|_K^2 = K_jj - 2 (Kx)_j + x'Kx
        kx = g - b
        cv = np.maximum(diag - 2.0 * kx + float(x @ kx), 1e-300)
        score = np.where(mu < -tol, -(mu * mu) / cv, 0.0)
        j = int(np.argmin(score))
        last_added = j
        # ---- add j to F
        k = F.size
        c = np.empty(k + 1)
        c[0] = 1.0
        c[1:] = K[F, j]
        w = N @ c
        s = float(K[j, j] - c @ w)
        nit += 1
        updates += 1
        if not math.isfinite(s):
            return x, nit, 1, "stopped: working set numerically singular", F, N, updates
        if s > _SING:
            N = _add(N, w, s)
            F = np.append(F, j)
            if trace is not None:
                _record(trace, F)
        else:
            # zero (or negligible) curvature on F + {j}: d_F = -w_x, d_j = 1 is a descent
            # direction with slope g^T d = mu_j < 0 along which f is (nearly) linear
            dF = -w[1:]
            xF = x[F]
            neg = np.flatnonzero(dF < 0.0)
            ratios = np.maximum(xF[neg], 0.0) / -dF[neg]
            r = int(np.argmin(ratios))
            t_block = float(ratios[r])
            gd = float(mu[j])
            if s > 0.0 and -gd < s * t_block:
                # the line minimum comes before the bound: then |mu_j| < s <= _SING and the
                # whole decrease available along d is below mu_j^2 / (2 s) < _SING / 2
                # (relative to the data scale); adding j would make M_F numerically singular
                banned.append(j)
                continue
            x[F] = np.maximum(xF + t_block * dF, 0.0)
            x[j] = t_block
            pos = int(neg[r])
            x[F[pos]] = 0.0
            banned.clear()
            if F.size == 1:  # from vertex F[0] straight to vertex j
                F = np.array([j], dtype=np.intp)
                N = np.array([[-K[j, j], 1.0], [1.0, 0.0]])
                if trace is not None:
                    _record(trace, F)
                continue
            N, F = _drop(N, F, pos)
            c = np.empty(F.size + 1)
            c[0] = 1.0
            c[1:] = K[F, j]
            w = N @ c
            s = float(K[j, j] - c @ w)
            if s > _SING:
                N = _add(N, w, s)
                F = np.append(F, j)
            else:  # round-off made F + {j} - {i} look singular: rebuild it from a basis
                restarts += 1
                if restarts > 3:
                    return x, nit, 1, "stopped: working set numerically singular", F, N, updates
                F = _affine_basis_keep(K, np.append(F, j), j)
                xs = np.zeros(T)
                xs[F] = x[F]
                x = xs / xs.sum()
                Nf = _kkt_inverse(K, F)
                if Nf is None:
                    return x, nit, 1, "stopped: working set numerically singular", F, N, updates
                N = Nf
                updates = 0
            if trace is not None:
                _record(trace, F)
        if updates >= max(_REFRESH, F.size):  # O(|F|^3) rebuild, amortised over |F| updates
            Nf = _kkt_inverse(K, F)
            if Nf is None:  # M_F numerically singular: the proximal refinement takes over
                return x, nit, 1, "stopped: working set numerically singular", F, N, updates
            N = Nf
            updates = 0


def block_pivot(
    K: np.ndarray, b: np.ndarray, inF: np.ndarray, *, tol: float, max_steps: int,
    trace: list[tuple[int, ...]] | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Block principal pivoting from the support mask ``inF``.

    Returns ``(x_opt, x_best, changes)``: ``x_opt`` is the optimum if found (else None);
    ``x_best`` is the iterate with the fewest infeasibilities (possibly infeasible, None when
    every solve failed); ``changes`` counts the working-set exchanges made. ``trace``, if
    given, receives every working set solved on.
    """
    best_count = None
    x_best = None
    changes = 0
    T = K.shape[0]
    for _ in range(max_steps):
        F = np.flatnonzero(inF)
        if F.size == 0:
            break
        if trace is not None:
            _record(trace, F)
        z = _solve_on(K, b, F)
        if z is None:  # singular M_F: keep a maximal nonsingular part of F and retry
            F2 = _affine_basis(K, b, F)
            if F2.size == F.size:
                break
            inF = np.zeros(T, dtype=bool)
            inF[F2] = True
            F = F2
            changes += 1
            if trace is not None:
                _record(trace, F)
            z = _solve_on(K, b, F)
            if z is None:
                break
        xF = z[1:]
        x = np.zeros(T)
        x[F] = xF
        mu = K @ x + b
        mu += z[0]  # g - lambda, lambda = -nu
        mu[F] = 0.0
        negmu = mu < -tol
        if xF.min() >= 0.0 and not negmu.any():
            return x, x, changes
        negx = x < 0.0
        count = int(np.count_nonzero(negx)) + int(np.count_nonzero(negmu))
        # progress: a third fewer infeasibilities than the best iterate (on well-conditioned K
        # the count falls geometrically, by half or more per step; when it does not, K is
        # singular or ill-conditioned and the primal method takes over at once)
        slow = best_count is not None and 3 * count > 2 * best_count
        if best_count is None or count < best_count:
            best_count, x_best = count, x
        if slow:
            break
        inF = (inF & ~negx) | negmu
        changes += 1
    return None, x_best, changes


def solve_active_set(
    K: np.ndarray,
    b: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    support: np.ndarray | None = None,
    x0: np.ndarray | None = None,
    block_steps: int = 8,
    polish: bool = True,
    roundoff_gap: float = 1e-10,
    trace: list[tuple[int, ...]] | None = None,
) -> tuple[np.ndarray, int, int, str]:
    """Block pivoting from ``support``, then the exact primal method.

    Without a warm start, the first working set is the best vertex ``i0`` plus every index
    whose bound multiplier is negative there (``g_j < g_i0`` at ``x = e_i0``): one block step
    from the vertex, which is all indices when the solution is dense and a few when it is
    sparse (``b`` dominating). ``trace``, if given, receives every working set visited (block
    steps, the primal method, the proximal refinement), in order.

    This is the reference implementation; the compiled kernel (``_qpkernel.c``) runs the same
    steps in the same order.
    """
    T = K.shape[0]
    inF = np.zeros(T, dtype=bool)
    if support is not None and support.size > 0:
        inF[support] = True
    else:
        i0 = int(np.argmin(0.5 * K.diagonal() + b))
        g0 = K[:, i0] + b
        inF = g0 < g0[i0] - tol
        inF[i0] = True
    x_opt, x_best, steps = block_pivot(K, b, inF, tol=tol, max_steps=min(block_steps, max_iter),
                                       trace=trace)
    if x_opt is not None:
        msg = "optimal"
        if polish and steps < max_iter:  # the exact support (see _polish)
            from ._polish import polish_support

            xp, n3 = polish_support(K, b, x_opt, tol=tol, max_iter=max_iter - steps,
                                    trace=trace)
            steps += n3
            if not np.array_equal(xp, x_opt):
                msg = polished_message(0, 0, _fw_gap(K, b, xp))
            x_opt = xp
        return x_opt, steps, 0, msg
    start_support = None
    start_x = None
    if x0 is not None:
        start_support = np.flatnonzero(x0 > 0.0)
        start_x = x0
    elif x_best is not None:
        xp = np.maximum(x_best, 0.0)
        if xp.sum() > 0:  # its positive part, reduced to a nonsingular working set
            start_support = _affine_basis(K, b, np.flatnonzero(xp > 0.0))
            start_x = np.zeros(T)
            start_x[start_support] = xp[start_support]
            tot = start_x.sum()
            if tot > 0:
                start_x /= tot
            else:
                start_support = start_x = None
    # the primal method needs about |support| + drops changes; many more mean cycling on
    # round-off (numerically singular working sets): then the proximal refinement takes over
    budget = max(1, max_iter - steps)
    if polish:
        budget = min(budget, 5 * T + 50)
    primal: dict[str, Any] = {}  # the primal method's last working set and inverse
    x, nit, status, msg = active_set_qp(
        K, b, tol=tol, max_iter=budget, support=start_support, x0=start_x, trace=trace,
        state=primal,
    )
    nit += steps
    if status == 0 and polish:  # verify on the scaled data: round-off in the inverse updates
        g = K @ x + b
        if abs(float(x.sum()) - 1.0) > 1e-13 * T or float(x @ g - g.min()) > max(tol, 1e-13):
            status = 1
    face = (primal["F"], primal["N"]) if status == 0 and primal else None
    mode = outer = 0  # refinement_message's mode and the proximal-point steps
    if status != 0 and polish and nit < max_iter:
        x, n2, status, mode, outer, gap = _proximal_refinement(
            K, b, x, tol=tol, max_iter=max_iter - nit, roundoff_gap=roundoff_gap, trace=trace
        )
        nit += n2
        msg = refinement_message(mode, outer, gap, nit >= max_iter)
    if status == 0 and polish and nit < max_iter:  # the exact support (see _polish)
        from ._polish import polish_support

        xp, n3 = polish_support(K, b, x, tol=tol, max_iter=max_iter - nit, trace=trace,
                                face=face)
        nit += n3
        if not np.array_equal(xp, x):
            msg = polished_message(mode, outer, _fw_gap(K, b, xp))
        x = xp
    return x, nit, status, msg


#: the start of the proximal-point refinement's ``message``
_PROX = "optimal (proximal-point refinement with rho = {:g} relative, "


def refinement_message(mode: int, outer: int, gap: float, limit: bool = False) -> str:
    """The ``message`` after the proximal-point refinement (``mode`` 1: the gap reached
    ``tol``; 2: stopped at round-off, ``gap``; else failed: ``limit`` says whether the
    iteration limit was reached), the Python path's and the kernel's."""
    if mode == 1:
        return (f"{_PROX.format(_RHO)}{outer} outer steps, after a numerically singular "
                "working set)")
    if mode == 2:
        return (f"optimal to round-off (Frank-Wolfe gap {gap:.1e} of the scale after "
                f"{outer} proximal-point steps; the working sets are numerically singular)")
    return ("iteration limit reached in the proximal-point refinement" if limit
            else "proximal-point refinement stalled")


def polished_message(mode: int, outer: int, gap: float) -> str:
    """The ``message`` of an optimum that the polishing phase moved (``mode`` 0: reached by
    block pivoting or the primal method; 1, 2: by the proximal-point refinement, as in
    :func:`refinement_message`, after ``outer`` steps), quoting the Frank-Wolfe ``gap`` of the
    returned point (the one before polishing no longer applies)."""
    tail = f"support polished: Frank-Wolfe gap {gap:.1e} of the scale"
    if mode == 0:
        return f"optimal ({tail})"
    if mode == 1:
        return (f"{_PROX.format(_RHO)}{outer} outer steps, after a numerically singular "
                f"working set; {tail})")
    return (f"optimal to round-off after {outer} proximal-point steps (the working sets are "
            f"numerically singular; {tail})")


def kernel_message(mode: float, outer: float, pgap: float) -> str:
    """The compiled kernel's ``message`` for its ``mode`` (0: block pivoting or the primal
    method; 1: proximal steps after a numerically singular working set; 2: stopped at
    round-off; 3 more when the polishing phase moved the point, ``pgap`` then being the
    returned point's gap), worded as the Python path words it."""
    m, polished = int(mode) % 3, mode >= 3
    if polished:
        return polished_message(m, int(outer), pgap)
    return "optimal" if m == 0 else refinement_message(m, int(outer), pgap)


def _fw_gap(K: np.ndarray, b: np.ndarray, x: np.ndarray) -> float:
    """The Frank-Wolfe gap x'g - min g, g = K x + b."""
    g = K @ x + b
    return float(x @ g - g.min())


_RHO = 1e-8  # proximal weight of the fallback (relative to max|K| = 1)
_ROUNDOFF_GAP = 1e-10  # gap (relative) accepted as optimal once the refinement stagnates


def _proximal_refinement(
    K: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    roundoff_gap: float = _ROUNDOFF_GAP,
    trace: list[tuple[int, ...]] | None = None,
) -> tuple[np.ndarray, int, int, int, int, float]:
    """Proximal-point iterations x+ = argmin f(a) + (rho/2)||a - x||^2 over the simplex.

    The fallback for numerically singular working sets (curvature near round-off): each
    subproblem has Hessian K + rho I (condition number <= 1/rho on the scaled data) and is
    solved exactly by the primal active-set method from the previous iterate, continuing from
    the previous subproblem's working set and KKT inverse (every subproblem has the same
    Hessian, only the linear term moves; the first starts from the support of ``x``), so a
    step costs O(|F|^2) per working-set change instead of a dense solve. The iterates
    converge to a minimiser of the original problem (proximal-point method: the centre moves,
    so this is not a ridge); the loop stops when the Frank-Wolfe gap of the original problem
    is <= tol, or when it creeps at a gap below ``roundoff_gap`` (round-off level: 1e-10 of
    the scale for float64 data, more for lower-precision inputs; creeping: the gap fell by
    less than 5% in the last 10 steps, or, once it is within 5 tol, did not halve in the last
    3). Returns ``(x, nit, status, mode, outer, gap)``: ``mode`` and ``outer`` as
    :func:`refinement_message` reads them, ``gap`` the returned point's.
    """
    T = K.shape[0]
    x = np.maximum(x, 0.0)
    x /= x.sum()
    Kp = K + _RHO * np.eye(T)
    nit = 0
    best_gap = np.inf
    best_x = x
    hist: list[float] = []
    outer = 0
    state: dict[str, Any] = {}
    for outer in range(1, 1001):
        xn, k, _, _ = active_set_qp(
            Kp, b - _RHO * x, tol=tol, max_iter=max(1, max_iter - nit),
            support=np.flatnonzero(x > 0.0), x0=x, trace=trace, state=state,
        )
        nit += k
        x = np.maximum(xn, 0.0)
        x /= x.sum()
        g = K @ x + b
        gap = float(x @ g - g.min())
        if gap <= tol:
            return x, nit, 0, 1, outer, gap
        hist.append(gap)
        if gap < best_gap:
            best_gap, best_x = gap, x
        if len(hist) > 3 and best_gap <= min(roundoff_gap, 5.0 * tol) and gap > 0.5 * hist[-4]:
            break  # within a few tol and creeping (the gap did not halve in 3 steps)
        if len(hist) > 10 and best_gap <= roundoff_gap and gap > 0.95 * hist[-11]:
            break  # converged to round-off level, now creeping
        if len(hist) > 20 and gap > (1.0 - 1e-3) * hist[-21]:
            break  # stalled
        if nit >= max_iter:
            break
    if best_gap <= roundoff_gap:
        return best_x, nit, 0, 2, outer, best_gap
    return best_x, nit, 1, 0, outer, best_gap
