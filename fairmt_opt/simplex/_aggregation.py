r"""AHFDA: aggregation of task violations on the simplex (SPEC §4).

.. math::

    \Phi(\psi) = \max_{w \in \Delta}\ w^\top\psi - \tfrac{\mu}{2}\,\|w - c\|_2^2,
    \qquad c = \tfrac1T \mathbf 1,\ \mu > 0.

Completing the square, :math:`w^* = \Pi_\Delta(c + \psi/\mu) = \Pi_\Delta(\psi/\mu)`
(water-filling): :math:`w^*_t = (\psi_t/\mu - \nu)_+` with the threshold :math:`\nu` fixed by
:math:`\mathbf 1^\top w^* = 1`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._utils.array import Array, from_numpy, is_torch, namespace, to_numpy
from .._utils.validation import check_int, check_positive, check_tol
from ..certificates._aggregation import default_rtol
from ._frank_wolfe import solve_fw
from ._projection import _np_project_last, _prepare, _xp_project_last

__all__ = ["AggregationMethod", "AggregationResult", "aggregate_violations"]

AggregationMethod = Literal["exact", "frank_wolfe", "away", "pairwise"]
_METHODS = ("exact", "frank_wolfe", "away", "pairwise")


def _fmt(x: Any) -> str:
    """Short text for a scalar or an array inside a ``__repr__``."""
    if x is None:
        return "None"
    shape = tuple(getattr(x, "shape", ()))
    if shape == ():
        return f"{float(x):.6g}"
    if len(shape) == 1 and shape[0] <= 6:
        return "[" + ", ".join(f"{float(v):.4g}" for v in to_numpy(x)) + "]"
    return f"<array shape {shape}>"


def _support_of(res: AggregationResult) -> Any:
    return res.weights > 0


def _gap_of(res: AggregationResult) -> Any:
    if res.lazy is None:
        return None
    pc, mu = res.lazy
    w = res.weights
    c = 1.0 / w.shape[0]
    if isinstance(pc, list):  # short vector: plain Python floats
        wl = w.tolist()
        g = [x - mu * (a - c) for x, a in zip(pc, wl)]
        return np.float64(max(g) - sum([a * b for a, b in zip(wl, g)]))
    g = pc - mu * (w - c)
    return np.float64(g.max() - np.dot(w, g))


class _Lazy:
    """Descriptor-typed dataclass field: a value passed as ``None`` is computed on first
    access by ``compute(result)`` and cached (the default of the field is ``None``)."""

    def __init__(self, compute: Any) -> None:
        self._compute = compute
        self._attr = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr = "_" + name

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return None  # the dataclass default
        val = obj.__dict__.get(self._attr)
        if val is None:
            val = self._compute(obj)
            obj.__dict__[self._attr] = val
        return val

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._attr] = value


@dataclass(repr=False, eq=False)
class AggregationResult:
    r"""Result of :func:`aggregate_violations`.

    Attributes
    ----------
    weights : array
        The maximiser :math:`w^*` (shape ``psi.shape``, array type and device of ``psi``),
        detached from any autograd graph.
    value : array or float
        :math:`\Phi(\psi)` (shape ``psi.shape[:-1]``; a NumPy float for a NumPy vector). For a
        ``torch.Tensor`` ``psi`` it is a tensor computed as
        :math:`w^{*\top}\psi - \tfrac{\mu}{2}\|w^* - c\|^2` with :math:`w^*` held fixed, so it
        is differentiable whenever ``psi`` requires grad and, by Danskin's theorem, its gradient
        with respect to ``psi`` is exactly ``weights``.
    threshold : array or float
        The water-filling threshold :math:`\nu`, :math:`w^*_t = (\psi_t/\mu - \nu)_+`. For the
        Frank–Wolfe methods it is the average of :math:`\psi_t/\mu - w_t` over the support of
        the final iterate. It is :math:`\pm\infty` when :math:`|\psi|/\mu` exceeds the
        floating range (the weights and the value stay exact).
    support : array of bool
        ``weights > 0``: the tasks that carry weight (a top-k set of ``psi``).
    gap : array or float
        Frank–Wolfe duality gap :math:`\max_t g_t - w^\top g`, :math:`g = \psi - \mu(w - c)`,
        evaluated on the centred :math:`\psi - \max_t\psi_t` at the returned weights: an upper
        bound on :math:`\Phi(\psi) - f(w)`. For a NumPy vector with ``method="exact"`` it is
        computed on first access (as is ``support``), which keeps the solve itself cheap.
    nit : int
        Iterations performed (0 for ``exact``).
    success : bool
        ``True`` for ``exact``; for the Frank–Wolfe methods, whether the gap reached ``tol``.
    message : str
        Why the solver stopped.
    method : str
        The method used.
    history : numpy.ndarray or None
        The gap at every iterate (Frank–Wolfe methods with ``keep_history=True``), else ``None``.
    lazy : tuple or None
        Internal: the data from which ``gap`` is computed on first access (fast path).
    """

    weights: Array
    value: Any
    threshold: Any
    support: Any = _Lazy(_support_of)
    gap: Any = _Lazy(_gap_of)
    nit: int = 0
    success: bool = True
    message: str = ""
    method: str = "exact"
    history: np.ndarray | None = None
    lazy: tuple[Any, float] | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        w = self.weights
        if getattr(w, "ndim", 1) == 1:
            k = int(to_numpy(self.support, dtype=bool).sum())
            supp = f"{k}/{w.shape[0]} tasks"
        else:
            supp = f"<mask shape {tuple(self.support.shape)}>"
        hist = "None" if self.history is None else f"<{len(self.history)} gaps>"
        return (
            f"AggregationResult(method={self.method!r}, value={_fmt(self.value)}, "
            f"weights={_fmt(w)}, threshold={_fmt(self.threshold)}, support={supp}, "
            f"gap={_fmt(self.gap)}, nit={self.nit}, success={self.success}, "
            f"message={self.message!r}, history={hist})"
        )


_EXACT_MSG = "exact water-filling solution"
# Below this mu the fast paths, which work in the units of psi, would meet subnormal
# round-off (absolute, not relative); the generic path divides by mu first and stays exact.
_MU_FAST = 2.0**-960
# Frank–Wolfe data below this scale is rescaled by an exact power of two.
_FW_SCALE = 2.0**-960
_KINV: dict[int, np.ndarray] = {}
_SMALL_T = 16


def _py_exact_vec(psi: np.ndarray, mu: float) -> AggregationResult:
    """Fast path for a short float64 NumPy vector: plain Python floats (no NumPy call
    overhead); the same algorithm as :func:`_np_exact_vec`."""
    p = psi.tolist()
    T = len(p)
    if not all(map(math.isfinite, p)):
        _raise_nonfinite(psi)
    pmax = max(p)
    pc = [x - pmax for x in p]
    u = sorted(pc, reverse=True)
    s = -mu
    tmu = -math.inf  # mu * theta, theta the threshold of the projection of pc / mu
    k = 0
    for x in u:
        if x <= tmu:
            break
        k += 1
        s += x
        t = s / k
        if t > tmu:
            tmu = t
    w = [(x - tmu) / mu if x > tmu else 0.0 for x in pc]  # divide: 1/mu may overflow
    value = sum([a * b for a, b in zip(w, p)]) - 0.5 * mu * (
        sum([a * a for a in w]) - 1.0 / T
    )
    weights = np.array(w)
    return AggregationResult(weights, np.float64(value), np.float64(tmu / mu + pmax / mu),
                             None, None, 0, True, _EXACT_MSG, "exact",
                             lazy=(pc, mu))


def _np_exact_vec(psi: np.ndarray, mu: float) -> AggregationResult:
    r"""Fast path for a float64 NumPy vector, with a minimal number of NumPy calls.

    Sorting ``psi`` gives its maximum; the cumulative sums run on the centred values and
    :math:`\mu\theta = \max_k (\sum_{i\le k} u_i - \mu)/k`, so that ``psi / mu`` is never
    formed. Non-finite inputs are caught from the sorted extremes (NaN sorts last).
    """
    T = psi.shape[0]
    kinv = _KINV.get(T)
    if kinv is None:
        kinv = _KINV.setdefault(T, 1.0 / np.arange(1, T + 1, dtype=np.float64))
    u = psi.copy()
    u.sort()  # in place: cheaper than np.sort's dispatch on short vectors
    pmax = u[-1]
    if not (math.isfinite(pmax) and math.isfinite(u[0])):  # NaN sorts last
        _raise_nonfinite(psi)
    us = np.subtract(u[::-1], pmax)
    us[0] -= mu
    np.add.accumulate(us, out=us)  # cumulative sums minus mu
    us *= kinv
    tmu = us.max()
    pc = psi - pmax
    w = pc - tmu
    np.maximum(w, 0.0, out=w)
    w /= mu  # not * (1 / mu): that overflows for a subnormal mu
    value = np.dot(w, psi) - 0.5 * mu * (np.dot(w, w) - 1.0 / T)
    nu = np.float64((float(tmu) + float(pmax)) / mu)  # Python floats: inf, not a warning
    return AggregationResult(w, value, nu, None, None, 0, True, _EXACT_MSG,
                             "exact", lazy=(pc, mu))


def _raise_nonfinite(psi: np.ndarray) -> None:
    if np.isnan(psi).any():
        raise ValueError("psi contains NaN")
    raise ValueError("psi contains inf")


def _xp_exact(psi: Array, mu: float) -> AggregationResult:
    """Array-API path (any namespace, batched over leading axes, Danskin value for torch)."""
    xp = namespace(psi)
    p = psi.detach() if is_torch(psi) else psi
    T = p.shape[-1]
    if isinstance(p, np.ndarray):
        pmax = np.max(p, axis=-1, keepdims=True)
        pc = p - pmax
        with np.errstate(over="ignore"):  # psi / mu beyond the float range: -inf, weight 0
            w, theta = _np_project_last(pc / mu)
    else:
        pmax = xp.max(p, axis=-1, keepdims=True)
        pc = p - pmax
        w, theta = _xp_project_last(xp, pc / mu)
    with np.errstate(over="ignore"):
        nu = (theta + pmax / mu)[..., 0]
    if isinstance(nu, np.ndarray) and nu.ndim == 0:
        nu = nu[()]  # a NumPy scalar, as from the fast paths
    dw = w - 1.0 / T
    # Danskin: w is held fixed, so d value / d psi = w
    value = xp.sum(w * psi, axis=-1) - 0.5 * mu * xp.sum(dw * dw, axis=-1)
    g = pc - mu * dw
    gap = xp.max(g, axis=-1) - xp.sum(w * g, axis=-1)
    return AggregationResult(w, value, nu, w > 0, gap, 0, True, "exact water-filling solution",
                             "exact")


def aggregate_violations(
    psi: Array,
    mu: float,
    *,
    method: AggregationMethod = "exact",
    tol: float | None = None,
    max_iter: int = 10_000,
    keep_history: bool = False,
    check_finite: bool = True,
) -> AggregationResult:
    r"""Aggregate task violations with AHFDA (adaptive, simplex-constrained weights).

    Solves

    .. math::

        \Phi(\psi) = \max_{w \in \Delta}\ f(w), \qquad
        f(w) = w^\top\psi - \tfrac{\mu}{2}\|w - c\|_2^2, \qquad c = \tfrac1T\mathbf 1,

    whose unique maximiser is the water-filling solution
    :math:`w^*_t = (\psi_t/\mu - \nu)_+ = \Pi_\Delta(\psi/\mu)_t`. Tasks with
    :math:`\psi_t \le \mu\nu` get exactly zero weight; large :math:`\mu` spreads the weight
    towards uniform (:math:`\Phi \to \bar\psi`), small :math:`\mu` concentrates it on the worst
    task (:math:`\Phi \to \max_t \psi_t`). By Danskin's theorem :math:`\nabla_\psi\Phi = w^*`.

    Parameters
    ----------
    psi : array_like
        Task violations, shape ``(T,)``; ``exact`` also accepts a batch ``(..., T)``. NumPy
        arrays, lists or any array-API array (``torch.Tensor`` on CPU or CUDA).
    mu : float
        Regularisation strength :math:`\mu > 0`.
    method : {"exact", "frank_wolfe", "away", "pairwise"}, optional
        ``"exact"`` (default): sort-based water-filling, :math:`O(T \log T)`, array-API native
        (batched, stays on the device of ``psi``, no host synchronisation beyond the optional
        finiteness check). ``"frank_wolfe"``: SPEC Algorithm 1 from :math:`w^0 = c` with exact
        line search :math:`\gamma = \min(1, \mathrm{gap}/(\mu\|s - w\|^2))`, :math:`O(T)` per
        iteration, sublinear :math:`O(\mu/k)` rate when the optimum lies on a face.
        ``"away"`` and ``"pairwise"``: away-step and pairwise Frank–Wolfe with exact line search
        capped at the largest feasible step (linear rate on this strongly concave problem). The
        Frank–Wolfe methods run on the host in float64 NumPy.
    tol : float, optional
        Frank–Wolfe methods stop when the duality gap is :math:`\le` ``tol`` (absolute, in the
        units of :math:`\Phi`). Default: :math:`8 (T + 1)\,\epsilon_{64}\,
        \max(\max\psi - \min\psi, \mu)`, half the tolerance of :func:`certify_aggregation`.
        Data below :math:`2^{-960}` is rescaled by an exact power of two for the iterations.
        Unused by ``exact``.
    max_iter : int, optional
        Iteration budget of the Frank–Wolfe methods (default 10 000).
    keep_history : bool, optional
        Keep the gap of every Frank–Wolfe iterate in ``result.history``.
    check_finite : bool, optional
        Raise ``ValueError`` if ``psi`` holds NaN or inf (default ``True``; on a CUDA tensor
        this synchronises with the host, pass ``False`` to avoid it).

    Returns
    -------
    AggregationResult
        ``weights``, ``value`` (:math:`\Phi`), ``threshold`` (:math:`\nu`), ``support``,
        ``gap``, ``nit``, ``success``, ``message``, ``method``, ``history``. For a
        ``torch.Tensor`` ``psi`` that requires grad, ``value`` is a differentiable tensor whose
        gradient with respect to ``psi`` is ``weights`` (Danskin), and ``weights`` is detached.

    Raises
    ------
    ValueError
        For NaN or inf in ``psi``, an empty or 0-dimensional ``psi``, a batched ``psi`` with a
        Frank–Wolfe method, ``mu <= 0`` or not finite, a negative ``tol``, a negative
        ``max_iter`` or an unknown ``method``.

    Notes
    -----
    Cost: ``exact`` :math:`O(T \log T)` per vector; the Frank–Wolfe methods :math:`O(T)` per
    iteration. Every result can be checked independently with :func:`certify_aggregation`.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt import aggregate_violations
    >>> psi = np.array([0.5, 0.2, 0.0])
    >>> res = aggregate_violations(psi, 1.0)
    >>> res.weights
    array([0.6, 0.3, 0.1])
    >>> round(float(res.value), 6), round(float(res.threshold), 6)
    (0.296667, -0.1)
    >>> aggregate_violations(psi, 0.1).weights  # small mu: weight on the worst tasks only
    array([1., 0., 0.])
    >>> fw = aggregate_violations(psi, 1.0, method="pairwise")
    >>> bool(abs(fw.value - res.value) < 1e-12), fw.success
    (True, True)

    Danskin's gradient through a torch tensor:

    >>> import torch
    >>> psi = torch.tensor([0.5, 0.2, 0.0], dtype=torch.float64, requires_grad=True)
    >>> res = aggregate_violations(psi, 1.0)
    >>> res.value.backward()
    >>> bool(torch.allclose(psi.grad, res.weights))
    True
    """
    # fast path: a float64 NumPy vector and a plain positive float mu (the training-loop case)
    if (
        method == "exact"
        and type(psi) is np.ndarray
        and psi.ndim == 1
        and psi.dtype == np.float64
        and psi.shape[0] > 0
        and type(mu) in (float, np.float64)
        and _MU_FAST <= mu < math.inf
        and (tol is None or (type(tol) is float and 0.0 <= tol < math.inf))
        and type(max_iter) is int
        and max_iter >= 0
    ):
        if psi.shape[0] <= _SMALL_T:
            return _py_exact_vec(psi, float(mu))
        return _np_exact_vec(psi, float(mu))
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    mu_f = check_positive(mu, "mu")
    max_iter_i = check_int(max_iter, "max_iter", minimum=0)
    if tol is not None:
        tol = check_tol(tol, "tol")
    arr, xp, _ = _prepare(psi, "psi", check_finite)
    if method == "exact":
        return _xp_exact(arr, mu_f)
    if arr.ndim != 1:
        raise ValueError(
            f"psi must be 1-dimensional for method={method!r} (only 'exact' is batched), "
            f"got shape {tuple(arr.shape)}"
        )
    p = to_numpy(arr)
    T = p.shape[0]
    pmax = float(p.max())
    pc = p - pmax
    # data at the subnormal scale: iterate on an exact power-of-two rescaling (w is invariant,
    # gaps scale linearly), so that round-off stays relative
    scale = max(float(-pc.min()), mu_f)
    k = -math.frexp(scale)[1] if scale < _FW_SCALE else 0
    if tol is None:
        tol_k = 0.5 * default_rtol(T, np.float64) * math.ldexp(scale, k)
        tol = math.ldexp(tol_k, -k)
    else:
        tol_k = math.ldexp(tol, k)
    with np.errstate(over="ignore", divide="ignore"):  # step sizes / mu for a subnormal mu
        out = solve_fw(np.ldexp(pc, k), math.ldexp(mu_f, k),
                       variant="frank_wolfe" if method == "frank_wolfe" else method,
                       tol=tol_k, max_iter=max_iter_i, keep_history=keep_history)
        if k:
            out.gap = math.ldexp(out.gap, -k)
            if out.history is not None:
                out.history = np.ldexp(out.history, -k)
        w = out.w
        supp = w > 0
        nu = float(np.mean(pc[supp] / mu_f - w[supp])) + pmax / mu_f
    message = (
        f"converged: gap {out.gap:.3g} <= tol {tol:.3g}"
        if out.converged
        else f"maximum number of iterations ({max_iter_i}) reached: gap {out.gap:.3g} > tol "
        f"{tol:.3g}"
    )
    if isinstance(arr, np.ndarray):
        weights: Any = w.astype(arr.dtype, copy=False)
        dw = w - 1.0 / T
        value: Any = arr.dtype.type(w @ p - 0.5 * mu_f * (dw @ dw))
        return AggregationResult(weights, value, nu, weights > 0, out.gap, out.nit,
                                 out.converged, message, method, out.history)
    weights = from_numpy(w, arr)
    dwx = weights - 1.0 / T
    value = xp.sum(weights * arr, axis=-1) - 0.5 * mu_f * xp.sum(dwx * dwx, axis=-1)
    return AggregationResult(weights, value, nu, weights > 0, out.gap, out.nit, out.converged,
                             message, method, out.history)
