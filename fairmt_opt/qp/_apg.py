r"""Accelerated projected gradient (FISTA with adaptive restart) for batched simplex QPs.

Written against the Python array API: it runs wherever ``K`` lives (NumPy, torch CPU or CUDA)
and performs exactly ``n_iter`` iterations with no data-dependent control flow, so nothing in it
synchronises a GPU with its host. Per instance, ``K`` and ``b`` are divided by
:math:`\max(\|K\|_{\max}, \|b\|_{\max})` (the minimiser is unchanged), and the step is
:math:`1/L` with :math:`L = \max(\min(\operatorname{tr} K, \|K\|_F), 10^{-6})`, an upper bound
on :math:`\lambda_{\max}(K)` for positive semidefinite :math:`K` computed with array operations
only. Restart (O'Donoghue–Candès, gradient scheme): the momentum is reset where
:math:`(y_k - x_{k+1})^\top (x_{k+1} - x_k) > 0`, selected with ``where``.
"""

from __future__ import annotations

from typing import Any

from .._utils.array import namespace
from ..simplex._projection import project_simplex

__all__ = ["apg_qp"]


def apg_qp(K: Any, b: Any, *, n_iter: int, x0: Any = None) -> Any:
    """Return ``x`` of shape ``(..., T)`` after ``n_iter`` restarted FISTA iterations from
    ``x0`` (projected onto the simplex; default the barycentre)."""
    xp = namespace(K)
    T = K.shape[-1]
    dtype = K.dtype
    dev = getattr(K, "device", None)
    absmax = xp.maximum(xp.max(xp.abs(K), axis=(-2, -1)), xp.max(xp.abs(b), axis=-1))
    s = xp.where(absmax > 0, absmax, xp.ones_like(absmax))
    Kn = K / s[..., None, None]
    bn = b / s[..., None]
    eye = xp.eye(T, dtype=dtype, device=dev)
    trace = xp.sum(Kn * eye, axis=(-2, -1))
    fro = xp.sqrt(xp.sum(Kn * Kn, axis=(-2, -1)))
    L = xp.maximum(xp.minimum(trace, fro), xp.asarray(1e-6, dtype=dtype, device=dev))
    step = (1.0 / L)[..., None]
    x = xp.ones_like(bn) / T if x0 is None else project_simplex(
        x0 + xp.zeros_like(bn), axis=-1, check_finite=False
    )
    y = x
    t = xp.ones_like(s)
    one = xp.ones_like(s)
    zero = xp.zeros_like(s)
    for _ in range(n_iter):
        grad = (Kn @ y[..., None])[..., 0] + bn
        x_new = project_simplex(y - step * grad, axis=-1, check_finite=False)
        t_new = 0.5 * (1.0 + xp.sqrt(1.0 + 4.0 * t * t))
        restart = xp.sum((y - x_new) * (x_new - x), axis=-1) > 0
        beta = xp.where(restart, zero, (t - 1.0) / t_new)
        t = xp.where(restart, one, t_new)
        y = x_new + beta[..., None] * (x_new - x)
        x = x_new
    return x
