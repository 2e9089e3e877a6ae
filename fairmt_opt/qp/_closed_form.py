r"""The simplex QP for :math:`T \le 2` in closed form (``solve_simplex_qp``'s ``active_set``
for one or two tasks), with the result fields of the general solver."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from .._utils.array import from_numpy
from ..certificates._qp import check_symmetric_psd_small, data_scale
from ._result import Lazy, SimplexQPResult, _kernel_result

__all__ = ["closed_form_t2", "entries_result", "lazy_fields", "small_result",
           "sym_entries_result"]

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
    # (db - db == 0 tests that db is finite: b0, b1 are)
    c = k01 - k11 + (db / scale if db - db == 0.0 else b0 / scale - b1 / scale)
    if a > 0.0:
        t = -c / a  # clipped to [0, 1] (-0.0 to 0.0, as max(0.0, t) does)
        return 1.0 if t > 1.0 else t if t > 0.0 else 0.0
    d = 0.5 * a + c
    return 1.0 if d < 0.0 else 0.0 if d > 0.0 else 0.5


def small_result(K: np.ndarray, b: np.ndarray | None, like: Any,
                 check: bool) -> SimplexQPResult | None:
    r"""The ``active_set`` result for a float64 ``K`` of size ``T <= 2`` (``b`` float64 or
    None), checked when ``check`` (:func:`check_symmetric_psd_small` with float64's tolerance):
    the closed form, with the lazy certificate fields of the general solver
    (:func:`lazy_fields`, run on first access: the gap and the residuals read on
    :math:`b - \min_t b_t`); ``x`` like ``like`` (NumPy when None). None when an entry is
    not finite (or a sum of entries overflows): the general path then words the error."""
    return entries_result(K.ravel().tolist(), None if b is None else b.tolist(),
                          None if like is None else partial(_like, like), check)


def _like(like: Any, x: np.ndarray) -> Any:
    return from_numpy(x, like)


def entries_result(k: list[float], bl: list[float] | None,
                   wrap: Callable[[np.ndarray], Any] | None,
                   check: bool) -> SimplexQPResult | None:
    """:func:`small_result` on the row-major entries ``k`` of ``K`` (1 or 4 Python floats)
    and the entries ``bl`` of ``b`` (or None): read from a NumPy array or a torch tensor
    alike (``tolist``, no conversion of the array); ``x`` is ``wrap`` of the float64 NumPy
    solution (itself when None)."""
    if bl is None:
        b0 = b1 = 0.0
    else:
        b0, b1 = bl[0], bl[-1]
    if not math.isfinite(sum(k) + b0 + b1) and not _finite(k, b0, b1):
        return None
    if check:
        check_symmetric_psd_small(k, "K", _FLOAT64_RTOL)
    if len(k) == 1:
        x = np.ones(1)
        return _kernel_result(x if wrap is None else wrap(x), 0, "optimal (T = 1)",
                              partial(lazy_fields, k, b0, b0, x))
    k00, k01, k10, k11 = k
    kabs = max(abs(k00), abs(k01), abs(k10), abs(k11))
    scale = max(kabs, abs(b0 - b1))
    if scale > 0.0:
        # |b0 - b1| beyond the float range (b0 = -b1 = 1e308): half of it is in range, and
        # the entries divided by it are still at most 2 in modulus
        t = closed_form_t2(k00, 0.5 * k01 + 0.5 * k10, k11, b0, b1,
                           scale if scale < math.inf else max(kabs, abs(0.5 * b0 - 0.5 * b1)))
        message = "optimal (closed form, T = 2)"
    else:
        t = 0.5
        message = "optimal (f is constant on the simplex)"
    x = np.array([t, 1.0 - t])
    return _kernel_result(x if wrap is None else wrap(x), 0, message,
                          partial(lazy_fields, k, b0, b1, x))


def sym_entries_result(k: list[float], bl: list[float] | None,
                       wrap: Callable[[np.ndarray], Any] | None, rtol: float,
                       check: bool) -> SimplexQPResult | None:
    r""":func:`entries_result` for data given in another dtype than float64 (``k`` and ``bl``
    its entries widened to Python floats), as the general path of ``solve_simplex_qp`` reads
    them: checked when ``check`` on the entries as given with the dtype's tolerance ``rtol``
    (:func:`check_symmetric_psd_small`), then solved, with the lazy fields, on the entries of
    :math:`S = K/2 + K^\top/2` (halves first, the diagonal as given): the same answer and
    fields. None when an entry is not finite (the general path words the error)."""
    b0, b1 = (0.0, 0.0) if bl is None else (bl[0], bl[-1])
    if not _finite(k, b0, b1):
        return None
    if check:
        check_symmetric_psd_small(k, "K", rtol)
    if len(k) == 4:
        k00, k01, k10, k11 = k
        k = [k00, 0.5 * k01 + 0.5 * k10, 0.5 * k10 + 0.5 * k01, k11]
    return entries_result(k, bl, wrap, False)


def _finite(k: list[float], b0: float, b1: float) -> bool:
    """Whether the entries are finite (a sum that overflows alone is no reason to refuse)."""
    return math.isfinite(sum(k) + b0 + b1) or all(map(math.isfinite, [*k, b0, b1]))


def lazy_fields(k: list[float], b0: float, b1: float, x: np.ndarray) -> Lazy:
    r"""The lazy certificate fields (see :data:`~fairmt_opt.qp._result.Lazy`) of a point ``x``
    of the simplex for :math:`T \le 2` (``k`` the row-major entries of ``K``, finite Python
    floats; ``b1`` ignored for :math:`T = 1`), read as the certificate reads them: the
    gradient :math:`(Kx + b - \min_t b_t)/u` with the shift :math:`\min_t b_t` (a large
    common offset of ``b`` would otherwise absorb :math:`Kx` in round-off) and the unit
    :math:`u` the data scale :math:`s = \max(\|K\|_{\max}, |b_0 - b_1|)` (data scale 1 in
    these units; every term at most 1 in modulus: no overflow near the float range). When
    :math:`s` overflows (:math:`|b_0 - b_1|` beyond the float range) the unit is
    :math:`\max(\|K\|_{\max}, |b_0 - b_1|)/2`, computed from the halves, and the data scale
    2; when :math:`s = 0` the unit is 1 and the data scale :func:`data_scale`'s
    :math:`\|b\|_{\max}` (or 1). Cost :math:`O(1)`."""
    if len(k) == 1:
        return (x, np.array([k[0]]), b0 * float(x[0]), data_scale(abs(k[0]), 0.0, abs(b0)),
                b0, 1.0)
    k00, k01, k10, k11 = k
    t, u = float(x[0]), float(x[1])
    kabs = max(abs(k00), abs(k01), abs(k10), abs(k11))
    bmin = min(b0, b1)
    scale = max(kabs, abs(b0 - b1))
    if scale == 0.0:  # K = 0 and b0 = b1: g = 0
        unit, dscale = 1.0, data_scale(0.0, 0.0, abs(b0))
        c0 = c1 = 0.0
    elif scale < math.inf:
        unit, dscale = scale, 1.0
        c0, c1 = (b0 - bmin) / unit, (b1 - bmin) / unit
    else:
        unit, dscale = max(0.5 * kabs, 0.5 * max(b0, b1) - 0.5 * bmin), 2.0
        c0, c1 = ((0.5 * b0 - 0.5 * bmin) / unit) * 2.0, ((0.5 * b1 - 0.5 * bmin) / unit) * 2.0
    g = np.array([(k00 / unit) * t + (k01 / unit) * u + c0,
                  (k10 / unit) * t + (k11 / unit) * u + c1])
    return (x, g, b0 * t + b1 * u, dscale, bmin, unit)
