r"""Support polishing: the last phase of :func:`~fairmt_opt.qp._active_set.solve_active_set`.

The primal method and the proximal-point refinement stop when every bound multiplier
:math:`\mu_j = g_j - \lambda` (:math:`g = Kx + b`, :math:`\lambda = x^\top g`) is at least
``-tol``. On an ill-conditioned :math:`K` (eigenvalues spread over 1e12) the optimal value itself
can be of the order of ``tol`` (MGDA: :math:`f^\star = \lambda^\star / 2`), so a multiplier of
``-tol / 10`` still leaves a relative error of 1e-3 in :math:`f`, and the proximal refinement,
which converges at the rate :math:`\rho / (\rho + \sigma)` along curvature :math:`\sigma \ll
\rho`, creeps before reaching it. This phase identifies the support exactly: a primal active-set
method with the multiplier test at round-off level (``min(tol, POLISH_TOL)``) and no
zero-curvature test, up to ``BLOCK_ENTRY`` indices entering per step (the most negative
multipliers at the current point, in order, each bordered into the inverse without a solve in
between; the next subproblem solution and its ratio test / drops restore feasibility), the KKT
inverse of the working set kept by the bordering / Schur updates of the primal method and every
subproblem solution checked by iterative refinement against :math:`M_F` itself
(:math:`z \leftarrow z + N(r - M_F z)`, twice): when the correction does not contract, the
inverse is rebuilt (LAPACK ``dgesv``, without the conditioning limit of the primal method, whose
working sets it would refuse here), and when it still does not, or a Schur complement is not
positive (a numerically singular working set), the last index to enter is banned. Every step
decreases :math:`f` (in exact arithmetic), so the phase ends; a point worse than its start
(round-off) is discarded.

Cost: nothing more than one gradient when no multiplier is below the test (well-conditioned
:math:`K`: the primal method's answer is returned unchanged), else :math:`O(|F|^3)` once and
:math:`O(|F|^2)` per working-set change, plus one :math:`O(T |F|)` gradient and one refined
solve per step (a block of entries shares them).

The compiled kernel (``_qpkernel.c``, ``polish_support``) runs the same steps in the same order.
"""

from __future__ import annotations

import math

import numpy as np

from ._kkt import _add, _drop, _kkt_inverse, _record

__all__ = ["POLISH_MAX_TOL", "POLISH_TOL", "polish_support"]

#: the multiplier test of the polishing phase (relative to the data scale max|K| = 1):
#: below the float64 round-off of the gradient entries (only a negative multiplier computed
#: this far below zero lets an index enter; the residuals are summed in extended precision)
POLISH_TOL = 1e-16
#: the phase runs for ``tol`` up to this (the default of ``active_set``); a looser ``tol`` asks
#: for a point within ``tol``, not for the exact support
POLISH_MAX_TOL = 1e-12
_Z_MAX = 1e8  # a subproblem solution beyond this (the data scaled to 1) is singular
_REFINE = 3  # refinement steps at most
_STAT = 1e-14  # stationarity residual on the support that calls for the exact solve,
_STAT_REL = 1e-6  # or this fraction of |lambda| (the level of the multipliers),
_LAM_MIN = 1e-14  # the phase runs when |lambda| is above this (below, f is 0 to round-off and
#                   the multipliers are round-off too: nothing to gain)
#: indices entering per step at most (the most negative multipliers first)
BLOCK_ENTRY = 16
_RES_TOL = 1e-15  # residual of an accepted subproblem solution, relative to 1 + max|z|


def _refined(K: np.ndarray, N: np.ndarray, F: np.ndarray, rhs: np.ndarray, *,
             ext: bool = False) -> np.ndarray | None:
    """z = N rhs refined against M_F by z += N (rhs - M_F z), up to _REFINE times: in float64
    until the residual max|rhs - M_F z| is at most _RES_TOL (1 + max|z|); with ``ext``, always
    _REFINE times, the residual summed in extended precision (``np.longdouble``), then the same
    test. None if it fails, or z is not finite or beyond _Z_MAX."""
    z = N @ rhs
    KF = K[np.ix_(F, F)]
    if ext:
        KF = KF.astype(np.longdouble)
        rhs = rhs.astype(np.longdouble)
    r = np.empty(rhs.size, dtype=KF.dtype)
    rd = np.empty(rhs.size)

    def accepted() -> bool:
        zmax = float(np.abs(z).max())
        return zmax < _Z_MAX and float(np.abs(rd).max()) <= _RES_TOL * (1.0 + zmax)

    for step in range(_REFINE + 1):
        zl = z.astype(KF.dtype)
        r[0] = rhs[0] - zl[1:].sum()
        r[1:] = rhs[1:] - (zl[0] + KF @ zl[1:])
        rd[:] = r
        if not ext and accepted():
            return z
        if step < _REFINE:
            z = z + N @ rd
    return z if accepted() else None


def _f_ext(K: np.ndarray, b: np.ndarray, x: np.ndarray) -> float:
    """f(x) summed in extended precision over the support of x."""
    F = np.flatnonzero(x)
    xl = x[F].astype(np.longdouble)
    return float(0.5 * (xl @ (K[np.ix_(F, F)].astype(np.longdouble) @ xl))
                 + b[F].astype(np.longdouble) @ xl)


def polish_support(
    K: np.ndarray, b: np.ndarray, x: np.ndarray, *, tol: float, max_iter: int,
    trace: list[tuple[int, ...]] | None = None,
    face: tuple[np.ndarray, np.ndarray] | None = None, block: int = 0,
) -> tuple[np.ndarray, int]:
    """Identify the support of the optimum from the feasible ``x`` (see the module docstring).

    Returns ``(x, nit)``: the polished point (``x`` itself when ``tol > POLISH_MAX_TOL``, when no
    multiplier is below ``min(tol, POLISH_TOL)`` and the support's stationarity residual is
    small, or when polishing did not lower :math:`f`) and the working-set changes made.
    ``trace``, if given, receives every working set the phase visits. ``face``: the primal
    method's last working set and inverse of its KKT matrix (the refinement checks it), used
    instead of a new inverse when that working set is the support of ``x``. ``block``: the
    indices entering per step at most (0: ``BLOCK_ENTRY``).
    """
    if not tol <= POLISH_MAX_TOL:
        return x, 0
    T = K.shape[0]
    block = block if block > 0 else BLOCK_ENTRY
    tp = min(tol, POLISH_TOL)
    g = K @ x + b
    mu = g - float(x @ g)
    inF = x > 0.0
    stat = float(np.abs(mu[inF]).max())
    mu[inF] = np.inf
    lam = abs(float(x @ g))
    if not (lam > _LAM_MIN and (float(mu.min()) < -tp or stat > min(_STAT, _STAT_REL * lam))):
        return x, 0
    F = np.flatnonzero(inF)
    N: np.ndarray | None
    if face is not None and face[0].size == F.size and bool(inF[face[0]].all()):
        F, N = face[0].copy(), face[1]
    else:
        N = _kkt_inverse(K, F, limit=math.inf)
    if N is None:
        return x, 0
    xs = x.copy()
    banned = np.zeros(T, dtype=bool)
    rhs = np.empty(T + 1)
    rhs[0] = 1.0
    nb = -b
    nit = 0
    last = -1  # the index that entered at the last change (banned when singular)
    if trace is not None:
        _record(trace, F)
    while nit < max_iter:
        k = F.size
        rhs[1 : k + 1] = nb[F]
        z = _refined(K, N, F, rhs[: k + 1])
        if z is None:  # the updates lost the inverse: rebuild it once
            Nf = _kkt_inverse(K, F, limit=math.inf)
            if Nf is not None:
                N = Nf
                z = _refined(K, N, F, rhs[: k + 1])
            if z is None:  # still not: the last entering index made M_F singular
                if last < 0:
                    break
                banned[last] = True
                F = F[F != last]
                last = -1
                Nf = _kkt_inverse(K, F, limit=math.inf)
                if Nf is None:
                    break
                N = Nf
                nit += 1
                if trace is not None:
                    _record(trace, F)
                continue
        xF_new = z[1:]
        if xF_new.min() < 0.0:  # move towards z until the first coordinate hits zero; drop it
            xF = xs[F]
            p = xF_new - xF
            neg = np.flatnonzero(p < 0.0)
            if neg.size == 0:
                break
            ratios = np.maximum(xF[neg], 0.0) / -p[neg]
            r = int(np.argmin(ratios))
            pos = int(neg[r])
            xs[F] = np.maximum(xF + float(ratios[r]) * p, 0.0)
            xs[F[pos]] = 0.0
            last = -1
            N, F = _drop(N, F, pos)
            nit += 1
            if trace is not None:
                _record(trace, F)
            continue
        xs[F] = xF_new
        g = K @ xs + b
        mu = g - float(xs @ g)
        mu[F] = np.inf
        mu[banned] = np.inf
        j = int(np.argmin(mu))
        if not mu[j] < -tp:  # optimal: the last face solved once more, residual extended
            z = _refined(K, N, F, rhs[: k + 1], ext=True)
            if z is not None and z[1:].min() >= 0.0:
                xs[F] = z[1:]
            break
        for _ in range(block):  # the most negative multipliers enter, in order
            c = np.empty(F.size + 1)
            c[0] = 1.0
            c[1:] = K[F, j]
            w = N @ c
            s = float(K[j, j] - c @ w)
            nit += 1
            mu[j] = np.inf
            if not s > 0.0:  # numerically singular: j cannot enter
                banned[j] = True
            else:
                N = _add(N, w, s)
                F = np.append(F, j)
                last = j
                if trace is not None:
                    _record(trace, F)
            j = int(np.argmin(mu))
            if not (mu[j] < -tp and nit < max_iter):
                break
    xs = np.maximum(xs, 0.0)
    xs /= xs.sum()
    if not _f_ext(K, b, xs) <= _f_ext(K, b, x):  # round-off: keep the start
        return x, nit
    return xs, nit
