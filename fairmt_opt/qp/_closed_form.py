r"""The simplex QP for :math:`T \le 2` in closed form (``solve_simplex_qp``'s ``active_set``
for one or two tasks), with the result fields of the general solver."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._utils.array import from_numpy
from ..certificates._qp import check_symmetric_psd_small, data_scale
from ._result import SimplexQPResult, _kernel_result

__all__ = ["closed_form_t2", "small_result"]

_FLOAT64_RTOL = 1e-8  # input_rtol("float64")


def closed_form_t2(k00: float, k01: float, k11: float, b0: float, b1: float,
                   scale: float) -> float:
    r"""The first coordinate :math:`t` of the minimiser :math:`x = (t, 1 - t)` for
    :math:`T = 2` (symmetric PSD ``K``, Python floats, ``scale`` :math:`> 0` the data scale
    :math:`\max(\|K\|_{\max}, |b_0 - b_1|)` by which the entries are divided: no overflow, the
    ratio is unchanged).

    Along the segment :math:`f = \tfrac12 a t^2 + c t +` const with
    :math:`a = K_{00} - 2K_{01} + K_{11} \ge 0` and :math:`c = K_{01} - K_{11} + b_0 - b_1`, so
    :math:`t = \operatorname{clip}(-c/a, 0, 1) = \operatorname{clip}((K_{11} - K_{01} + b_1 -
    b_0)/(K_{00} - 2K_{01} + K_{11}), 0, 1)`. When :math:`a \le 0` (0, or negative by
    round-off) ``f`` is linear (or concave) along the segment and the better vertex is taken:
    :math:`t = 1` when :math:`f(1) - f(0) = \tfrac12 a + c < 0`, :math:`t = 0` when it is
    positive, :math:`t = \tfrac12` when ``f`` is constant.

    >>> round(closed_form_t2(2.0, 1.0, 3.0, 0.0, 0.0, 3.0), 12)  # (3 - 1) / (2 - 2 + 3)
    0.666666666667
    >>> closed_form_t2(1.0, 1.0, 1.0, 0.0, 1.0, 1.0)  # a = 0: the vertex of smaller b
    1.0
    """
    k00, k01, k11 = k00 / scale, k01 / scale, k11 / scale
    a = k00 - 2.0 * k01 + k11
    db = b0 - b1  # not b0 / scale - b1 / scale: a large common offset would overflow there
    c = k01 - k11 + (db / scale if math.isfinite(db) else b0 / scale - b1 / scale)
    if a > 0.0:
        return min(1.0, max(0.0, -c / a))
    d = 0.5 * a + c
    return 1.0 if d < 0.0 else 0.0 if d > 0.0 else 0.5


def small_result(K: np.ndarray, b: np.ndarray | None, like: Any,
                 check: bool) -> SimplexQPResult | None:
    """The ``active_set`` result for a float64 ``K`` of size ``T <= 2`` (``b`` float64 or
    None), checked when ``check`` (:func:`check_symmetric_psd_small` with float64's tolerance):
    the closed form, with ``g = Kx + b``, the data scale and the lazy certificate fields of the
    general solver; ``x`` like ``like`` (NumPy when None). None when an entry is not finite
    (or a sum of entries overflows): the general path then words the error."""
    k = K.ravel().tolist()
    if b is None:
        b0 = b1 = 0.0
    else:
        bl = b.tolist()
        b0, b1 = bl[0], bl[-1]
    if not math.isfinite(sum(k) + b0 + b1) and not all(map(math.isfinite, [*k, b0, b1])):
        return None  # a NaN or inf entry (a sum that overflows alone is no reason)
    if check:
        check_symmetric_psd_small(k, "K", _FLOAT64_RTOL)
    if len(k) == 1:
        x = np.ones(1)
        g = np.array([k[0] + b0])
        return _kernel_result(x if like is None else from_numpy(x, like), 0, "optimal (T = 1)",
                              (x, g, b0, data_scale(abs(k[0]), 0.0, abs(b0))))
    k00, k01, k10, k11 = k
    kabs = max(abs(k00), abs(k01), abs(k10), abs(k11))
    brange = abs(b0 - b1)
    scale = max(kabs, brange)
    if scale > 0.0:
        # |b0 - b1| beyond the float range (b0 = -b1 = 1e308): half of it is in range, and
        # the entries divided by it are still at most 2 in modulus
        t = closed_form_t2(k00, 0.5 * k01 + 0.5 * k10, k11, b0, b1,
                           scale if scale < math.inf else max(kabs, abs(0.5 * b0 - 0.5 * b1)))
        message = "optimal (closed form, T = 2)"
    else:
        t = 0.5
        message = "optimal (f is constant on the simplex)"
    u = 1.0 - t
    x = np.array([t, u])
    g = np.array([k00 * t + k01 * u + b0, k10 * t + k11 * u + b1])
    lazy = (x, g, b0 * t + b1 * u,
            scale if scale > 0.0 else data_scale(0.0, 0.0, max(abs(b0), abs(b1))))
    return _kernel_result(x if like is None else from_numpy(x, like), 0, message, lazy)
