r"""Accelerated projected gradient (FISTA with adaptive restart) for batched simplex QPs.

Written against the Python array API: it runs wherever ``K`` lives (NumPy, torch CPU or CUDA)
and performs exactly ``n_iter`` iterations with no data-dependent control flow, so nothing in it
synchronises a GPU with its host. Per instance, ``K`` and :math:`b - \min_t b_t` are divided
by :math:`\max(\|K\|_{\max}, \max_t b_t - \min_t b_t)` (the minimiser is unchanged; a
large common offset of ``b`` no longer swamps :math:`Kx` in low precision; both are halved
first where the range of ``b`` overflows), and the step is
:math:`1/L` with :math:`L = \max(\min(\operatorname{tr} K, \|K\|_F), 10^{-6})`, an upper bound
on :math:`\lambda_{\max}(K)` for positive semidefinite :math:`K` computed with array operations
only. Restart (O'Donoghue–Candès, gradient scheme): the momentum is reset where
:math:`(y_k - x_{k+1})^\top (x_{k+1} - x_k) > 0`, selected with ``where``.

Low precision: float16 and bfloat16 data are computed in float32 (the momentum sequence
:math:`t_k \approx k/2` squared overflows float16 after about 250 iterations, and the sums of
the projection lose every digit); the scaled data have entries at most 1 in modulus and the
symmetrisation is :math:`K/2 + K^\top/2`, so no intermediate overflows for finite data of any
dtype (float32 :math:`K` near 1e38 included), and the result is cast back to the caller's
dtype.

Non-finite results: a NaN or infinite iterate or gap is status 3 (never ``success``)
whenever it is read on the host: always for NumPy data, and for tensors when
``check_input=True``. With ``check_input=False`` a tensor result is not read (no host
synchronisation), so its status stays 2: test ``gap`` on the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils.array import is_numpy, is_torch, namespace, to_numpy
from .._utils.validation import check_finite, check_same_device
from ..certificates._qp import KKTResiduals, _eps, check_symmetric_psd, data_scale
from ..simplex._projection import project_simplex
from ._result import SimplexQPResult

__all__ = ["apg_qp", "solve_apg"]


def apg_qp(K: Any, b: Any, *, n_iter: int, x0: Any = None) -> Any:
    """Return ``x`` of shape ``(..., T)`` after ``n_iter`` restarted FISTA iterations from
    ``x0`` (projected onto the simplex; default the barycentre)."""
    xp = namespace(K)
    T = K.shape[-1]
    dtype = K.dtype
    dev = getattr(K, "device", None)
    # b - min b has the minimisers of b on the simplex and no common offset (which, at the
    # data's precision, would swamp K x); where its range overflows, K and b are halved first
    bmin = xp.min(b, axis=-1, keepdims=True)
    bs = b - bmin
    over = ~xp.isfinite(xp.max(bs, axis=-1))
    if bool(xp.any(over)) if not is_torch(K) else True:  # tensors: no host read, always
        K = xp.where(over[..., None, None], 0.5 * K, K)
        bs = xp.where(over[..., None], 0.5 * b - 0.5 * bmin, bs)
    absmax = xp.maximum(xp.max(xp.abs(K), axis=(-2, -1)), xp.max(bs, axis=-1))
    s = xp.where(absmax > 0, absmax, xp.ones_like(absmax))
    Kn = K / s[..., None, None]
    bn = bs / s[..., None]
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


def _warm_point(warm_start: Any, K: Any, b: Any, xp: Any, check_input: bool) -> Any:
    """The validated ``warm_start`` of ``apg``: a point of ``b``'s (batch) shape, in ``K``'s
    library and on its device, real, finite (checked when ``check_input``), cast to the
    working dtype; :func:`apg_qp` projects it onto the simplex."""
    if isinstance(warm_start, SimplexQPResult):
        warm_start = warm_start.x
    if not (hasattr(warm_start, "shape") and hasattr(warm_start, "dtype")):
        try:
            warm_start = np.asarray(warm_start, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"warm_start must be an array (a point): {exc}") from exc
    if is_torch(K) != is_torch(warm_start):
        if is_torch(warm_start):
            raise ValueError("warm_start is a torch tensor but K is not")
        warm_start = xp.asarray(np.asarray(warm_start), device=K.device)
    check_same_device(("K", K), ("warm_start", warm_start))
    if tuple(warm_start.shape) != tuple(b.shape):
        raise ValueError(f"warm_start for method 'apg' must be a point of shape "
                         f"{tuple(b.shape)}, got {tuple(warm_start.shape)}")
    if not (xp.isdtype(warm_start.dtype, "real floating")
            or xp.isdtype(warm_start.dtype, "integral")):
        raise ValueError(f"warm_start must have a real dtype, got {warm_start.dtype}")
    if check_input:
        check_finite(warm_start, "warm_start")
    return xp.astype(warm_start, K.dtype)


def solve_apg(
    K: Any, b: Any, tol: float, n_iter: int, warm_start: Any, check_input: bool
) -> SimplexQPResult:
    """``solve_simplex_qp(method="apg")`` on validated shapes: the dtype handling, the checks
    (when ``check_input``), :func:`apg_qp` and the result fields, all native."""
    xp = namespace(K)
    if not xp.isdtype(K.dtype, "real floating"):
        K = xp.astype(K, xp.float64)
    out_dtype = K.dtype
    if _eps(out_dtype) > 2.0**-23:  # float16, bfloat16: computed in float32
        K = xp.astype(K, xp.float32)
    b = (xp.zeros(K.shape[:-1], dtype=K.dtype, device=getattr(K, "device", None))
         if b is None else xp.astype(b, K.dtype))
    if check_input:
        check_symmetric_psd(to_numpy(K), "K", dtype=out_dtype)
    x0 = None if warm_start is None else _warm_point(warm_start, K, b, xp, check_input)
    K = 0.5 * K + 0.5 * xp.matrix_transpose(K)  # no overflow near the dtype's largest value
    x = apg_qp(K, b, n_iter=n_iter, x0=x0)
    Kx = (K @ x[..., None])[..., 0]
    g = Kx + b
    lam = xp.sum(x * g, axis=-1)
    s = g - lam[..., None]
    gap = lam - xp.min(g, axis=-1)
    bmax, bmin = xp.max(b, axis=-1), xp.min(b, axis=-1)
    cscale = data_scale(xp.max(xp.abs(K), axis=(-2, -1)), bmax - bmin,
                        xp.maximum(xp.abs(bmax), xp.abs(bmin)))
    zero = xp.zeros_like(lam)
    primal = xp.maximum(xp.abs(xp.sum(x, axis=-1) - 1.0), xp.maximum(xp.max(-x, axis=-1), zero))
    dual = xp.maximum(xp.max(-s, axis=-1), zero) / cscale
    comp = xp.max(xp.abs(x) * xp.abs(s), axis=-1) / cscale
    fun = xp.sum(x * (0.5 * Kx + b), axis=-1)
    status, message = 2, (
        f"fixed iteration count ({n_iter}) run; no convergence test (no host "
        f"synchronisation): compare gap with tol={tol:g} times the data scale")
    # NumPy results are always read (no device to wait for): a NaN never passes as success;
    # a tensor is read only when check_input (the host synchronisation the caller allowed)
    if (check_input or is_numpy(x)) and not (bool(xp.all(xp.isfinite(x)))
                                             and bool(xp.all(xp.isfinite(gap)))):
        status, message = 3, ("non-finite iterate or gap (NaN or inf in the data, or an "
                              "overflow in the data's dtype)")
    if x.dtype != out_dtype:
        x = xp.astype(x, out_dtype)
    return SimplexQPResult(
        x=x, fun=fun, gap=gap, kkt=KKTResiduals(primal, dual, comp), nit=n_iter,
        active_set=x > 0, status=status, success=status == 2, message=message, method="apg",
    )
