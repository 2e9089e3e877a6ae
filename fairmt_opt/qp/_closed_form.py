r"""The simplex QP for :math:`T \le 2` in closed form (``solve_simplex_qp``'s ``active_set``
for one or two tasks), with the result fields of the general solver."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils.array import from_numpy
from ..certificates._qp import data_scale
from ._result import SimplexQPResult, _kernel_result

__all__ = ["closed_form", "small_result"]


def closed_form(k: list[float], bv: list[float] | None) -> tuple[list[float], str]:
    r"""The exact solution for :math:`T \le 2` from the row-major entries ``k`` of a symmetric
    PSD ``K`` and ``bv`` (``None``: zero), as Python floats; returns ``(x, message)``.

    :math:`T = 2`: with :math:`x = (t, 1 - t)`, :math:`f = \tfrac12 a t^2 + c t +` const,
    :math:`a = K_{00} - 2K_{01} + K_{11} \ge 0` and :math:`c = K_{01} - K_{11} + b_0 - b_1`, so
    :math:`t = \operatorname{clip}(-c/a, 0, 1) = \operatorname{clip}((K_{11} - K_{01} + b_1 -
    b_0)/(K_{00} - 2K_{01} + K_{11}), 0, 1)`. When :math:`a \le 0` (0, or negative by
    round-off) ``f`` is linear (or concave) along the segment and the better vertex is taken
    (:math:`t = 1` when :math:`f(1) - f(0) = \tfrac12 a + c < 0`, :math:`t = 0` when it is
    positive, :math:`t = \tfrac12` when ``f`` is constant). Computed on the data divided by
    :math:`\max(\|K\|_{\max}, \max b - \min b)` (no overflow; the ratio is unchanged).
    """
    if len(k) == 1:
        return [1.0], "optimal (T = 1)"
    b0, b1 = (0.0, 0.0) if bv is None else (bv[0], bv[1])
    scale = max(max(abs(v) for v in k), abs(b0 - b1))
    if scale == 0.0:
        return [0.5, 0.5], "optimal (f is constant on the simplex)"
    k00, k01, k10, k11 = (v / scale for v in k)
    k01 = 0.5 * (k01 + k10)
    a = k00 - 2.0 * k01 + k11
    c = k01 - k11 + (b0 / scale - b1 / scale)
    if a > 0.0:
        t = min(1.0, max(0.0, -c / a))
    else:
        d = 0.5 * a + c
        t = 1.0 if d < 0.0 else 0.0 if d > 0.0 else 0.5
    return [t, 1.0 - t], "optimal (closed form, T = 2)"


def small_result(K: np.ndarray, b: np.ndarray | None, like: Any,
                  k: list[float] | None = None) -> SimplexQPResult:
    """The ``active_set`` result for a float64 ``K`` of size ``T <= 2`` (checked; ``k`` its
    entries when already read): the closed form, with ``g``, the scale and the lazy
    certificate fields of the general solver."""
    if k is None:
        k = K.ravel().tolist()
    bv = None if b is None else b.tolist()
    xl, message = closed_form(k, bv)
    x = np.array(xl)
    g = K @ x if b is None else K @ x + b
    kabs = max(abs(v) for v in k)
    if bv is None:
        bx, scale = 0.0, data_scale(kabs, 0.0, 0.0)
    else:
        bx = sum(u * v for u, v in zip(bv, xl))
        scale = data_scale(kabs, max(bv) - min(bv), max(abs(v) for v in bv))
    return _kernel_result(x if like is None else from_numpy(x, like), 0, message,
                          (x, g, bx, scale))
