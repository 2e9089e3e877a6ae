r"""Linear algebra of the working sets of the active-set methods (:mod:`._active_set`,
:mod:`._polish`): the KKT matrix

.. math::  M_F = \begin{pmatrix} 0 & \mathbf 1^\top \\ \mathbf 1 & K_{FF} \end{pmatrix}

of a working set :math:`F`, its inverse (LAPACK ``dgesv``) and the :math:`O(|F|^2)` bordering and
Schur updates of that inverse, the solve of the subproblem on :math:`F`, and the choice of a
maximal subset of :math:`F` with a nonsingular :math:`M_F` (pivoted Cholesky, ``dpstrf``). The
compiled kernel (``_qpkernel.c``: ``kkt_matrix``, ``kkt_inverse_lim``, ``border``, ``drop``,
``solve_on``, ``affine_basis``) has the same routines (its LU with partial pivoting inline for
small systems, where LAPACK's call overhead exceeds the arithmetic: the same algorithm, the
same answers to round-off).

All inputs are float64 NumPy arrays already scaled to ``max(|K|, |b|) <= 1``.
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.linalg import lapack

__all__ = ["SING", "kkt_matrix"]

SING = 1e-9       # curvature (relative to max|K|) treated as zero when adding an index


def _record(trace: list[tuple[int, ...]], F: np.ndarray) -> None:
    """Append the working set ``F`` (sorted) to ``trace``."""
    trace.append(tuple(sorted(int(i) for i in F)))


def kkt_matrix(K: np.ndarray, F: np.ndarray) -> np.ndarray:
    r"""The KKT matrix :math:`M_F = \begin{pmatrix} 0 & \mathbf 1^\top \\ \mathbf 1 & K_{FF}
    \end{pmatrix}` of the working set ``F``."""
    k = F.size
    M = np.empty((k + 1, k + 1))
    M[0, 0] = 0.0
    M[0, 1:] = 1.0
    M[1:, 0] = 1.0
    M[1:, 1:] = K[np.ix_(F, F)]
    return M


def _kkt_inverse(K: np.ndarray, F: np.ndarray, limit: float = 1e12) -> np.ndarray | None:
    """Inverse of M_F, or None if M_F is singular, the inverse is not finite, or
    ``max|N| max(1, |F|)`` exceeds ``limit`` (numerically singular; ``math.inf``: no limit)."""
    k = F.size
    _, _, N, info = lapack.dgesv(kkt_matrix(K, F), np.eye(k + 1), overwrite_a=1, overwrite_b=1)
    m = float(np.max(np.abs(N)))
    if info != 0 or not (m * max(1.0, k) <= limit and m <= sys.float_info.max):  # also NaN
        return None
    return np.ascontiguousarray(N)


def _affine_basis_keep(K: np.ndarray, F: np.ndarray, j: int) -> np.ndarray:
    """A maximal subset of F containing j with a nonsingular KKT matrix (pivoted Cholesky
    of the Gram matrix of the differences to j)."""
    rest = F[F != j]
    if rest.size == 0:
        return np.array([j], dtype=np.intp)
    k0 = K[rest, j]
    G = K[rest[:, None], rest] - k0[:, None] - k0[None, :] + K[j, j]
    gmax = float(G.diagonal().max())
    if not gmax > SING:
        return np.array([j], dtype=np.intp)
    _, piv, rank, info = lapack.dpstrf(G, tol=SING)
    keep = rest[piv[:rank] - 1] if info >= 0 else rest[:0]
    return np.append(keep, j).astype(np.intp)


def _drop(N: np.ndarray, F: np.ndarray, pos: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove F[pos] (row/column pos + 1 of the inverse N) by a Schur downdate."""
    q, last = pos + 1, N.shape[0] - 1
    if q != last:
        N[[q, last], :] = N[[last, q], :]
        N[:, [q, last]] = N[:, [last, q]]
        F[[pos, last - 1]] = F[[last - 1, pos]]
    col = N[:-1, -1]
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero pivot is caught by the caller
        N = N[:-1, :-1] - np.outer(col, N[-1, :-1] / N[-1, -1])
    return N, F[:-1]


def _add(N: np.ndarray, w: np.ndarray, s: float) -> np.ndarray:
    """Border the inverse N with a new index (w = N c, s = Schur complement)."""
    k1 = N.shape[0]
    out = np.empty((k1 + 1, k1 + 1))
    ws = w / s
    out[:k1, :k1] = N + np.outer(w, ws)
    out[:k1, k1] = -ws
    out[k1, :k1] = -ws
    out[k1, k1] = 1.0 / s
    return out


_CHOL_MIN_K = 24  # from this |F| on, _solve_on tries the Cholesky factor of K_FF first
_CHOL_PIV = 1e-8  # ... taken when every pivot L_jj^2 is at least this times max_j K_jj


def _solve_on_chol(K: np.ndarray, b: np.ndarray, F: np.ndarray) -> np.ndarray | None:
    r"""(nu, x_F) through the Cholesky factor :math:`K_{FF} = LL^\top` (half the work of the
    LU of :math:`M_F`): :math:`x = u - \nu v` with :math:`K_{FF} u = -b_F`,
    :math:`K_{FF} v = \mathbf 1` and :math:`\nu = (\mathbf 1^\top u - 1)/\mathbf 1^\top v`;
    None unless ``K_FF`` is numerically positive definite (every pivot :math:`L_{jj}^2` at
    least ``_CHOL_PIV`` :math:`\max_j K_{jj}`), :math:`\mathbf 1^\top v > 0` and
    ``max|z| < 1e8``: a singular or ill-conditioned ``K_FF`` (where ``M_F`` may still be well
    conditioned) goes to the LU of ``M_F``."""
    KF = K[np.ix_(F, F)]
    dmax = float(KF.diagonal().max())
    L, info = lapack.dpotrf(KF, lower=1, clean=0, overwrite_a=1)
    if info != 0 or not bool(np.all(L.diagonal() ** 2 >= _CHOL_PIV * dmax)):
        return None
    rhs = np.empty((F.size, 2))
    rhs[:, 0] = -b[F]
    rhs[:, 1] = 1.0
    w, info = lapack.dpotrs(L, rhs, lower=1, overwrite_b=1)
    su, sv = (float(s) for s in w.sum(axis=0))
    if info != 0 or not sv > 0.0:
        return None
    nu = (su - 1.0) / sv
    z = np.empty(F.size + 1)
    z[0] = nu
    z[1:] = w[:, 0] - nu * w[:, 1]
    if not float(abs(z).max()) < 1e8:
        return None
    return z


def _solve_on(K: np.ndarray, b: np.ndarray, F: np.ndarray) -> np.ndarray | None:
    """Solution (nu, x_F) of M_F z = (1, -b_F), or None if singular / non-finite: from
    ``_CHOL_MIN_K`` indices on through the Cholesky factor of ``K_FF`` when it is
    numerically positive definite (:func:`_solve_on_chol`), else by the LU of ``M_F``."""
    if F.size >= _CHOL_MIN_K:
        z = _solve_on_chol(K, b, F)
        if z is not None:
            return z
    rhs = np.empty(F.size + 1)
    rhs[0] = 1.0
    rhs[1:] = -b[F]
    _, _, z, info = lapack.dgesv(kkt_matrix(K, F), rhs, overwrite_a=1, overwrite_b=1)
    if info != 0 or not float(abs(z).max()) < 1e8:  # singular; the test also catches NaN
        return None
    return z


def _affine_basis(K: np.ndarray, b: np.ndarray, F: np.ndarray) -> np.ndarray:
    """A largest subset F' of F with M_F' nonsingular (for a singular M_F).

    M_F is nonsingular iff K_FF is positive definite on {1^T d = 0}, i.e. iff the Gram matrix
    G_ij = K_ij - K_i0 - K_0j + K_00 (i, j in F minus a reference index 0) is positive
    definite; a pivoted Cholesky factorisation (LAPACK dpstrf) of G picks a maximal
    well-conditioned subset. The reference index is the best vertex of F.
    """
    i0 = int(F[np.argmin(0.5 * K.diagonal()[F] + b[F])])
    rest = F[F != i0]
    if rest.size == 0:
        return F
    k0 = K[rest, i0]
    G = K[rest[:, None], rest] - k0[:, None] - k0[None, :] + K[i0, i0]
    gmax = float(G.diagonal().max())
    if not gmax > SING:
        return np.array([i0], dtype=np.intp)
    _, piv, rank, info = lapack.dpstrf(G, tol=1e-9 * gmax)
    if info < 0:
        return np.array([i0], dtype=np.intp)
    keep = rest[piv[:rank] - 1]
    return np.sort(np.append(keep, i0)).astype(np.intp)
