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
from typing import Any, Literal, NamedTuple

import numpy as np

from .._utils.array import Array, from_numpy, to_numpy
from .._utils.validation import check_int, check_tol
from ..certificates._qp import pow2_exponent
from ..qp._frank_wolfe import ScaledIdentity, frank_wolfe_qp
from ._objective import _gap, _scalar, _value, check_mu, check_present, default_rtol
from ._ops import Ops
from ._projection import _prepare, _water_fill

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


def _lazy_data(res: AggregationResult) -> _LazyData:
    if res.lazy is None:
        raise AttributeError("this AggregationResult holds no data to compute it from")
    return res.lazy


def _value_of(res: AggregationResult) -> Any:
    d = _lazy_data(res)
    pmax = None if d.level is None else d.level[1]
    return _scalar(_value(d.ops, d.psi, res.weights, d.mu, d.present, pmax))


def _gap_of(res: AggregationResult) -> Any:
    d = _lazy_data(res)
    pmax = None if d.level is None else d.level[1]
    return _scalar(_gap(d.ops, d.ops.detach(d.psi), res.weights, d.mu, d.present, pmax))


def _nonfinite_of(res: AggregationResult) -> str:
    """``""`` when every present entry of ``psi`` is finite, else ``"NaN"`` or ``"inf"``
    (the exact method without the finiteness check: computed on first access)."""
    d = _lazy_data(res)
    return _nonfinite(d.ops, d.ops.detach(d.psi), d.present)


def _success_of(res: AggregationResult) -> bool:
    return not _nonfinite_of(res)


def _message_of(res: AggregationResult) -> str:
    bad = _nonfinite_of(res)
    if not bad:
        return _EXACT_MSG
    return (f"psi contains {bad} (check_finite=False skipped the check): the weights are not "
            "a solution")


def _threshold_of(res: AggregationResult) -> Any:
    d = _lazy_data(res)
    level, pmax = d.level
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        nu = (pmax / d.mu - level)[..., 0]
    if d.present is not None:  # nothing present: no finite threshold gives w = 0
        nu = d.ops.where(d.ops.any(d.present), nu, math.inf)
    return _scalar(nu)


class _LazyData(NamedTuple):
    """What the lazy fields of an :class:`AggregationResult` are computed from."""

    ops: Ops
    psi: Any  # as given (a tensor keeps its graph: the value is differentiable)
    mu: float
    present: Any
    level: Any = None  # (water level m of psi / mu, max of psi) of the exact method


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
        :math:`\Phi(\psi)` (shape ``psi.shape[:-1]``; a NumPy float for a NumPy vector),
        :func:`aggregation_value` at ``weights``. For a ``torch.Tensor`` ``psi`` it is a tensor
        computed with :math:`w^*` held fixed, so it is differentiable whenever ``psi`` requires
        grad and, by Danskin's theorem, its gradient with respect to ``psi`` is exactly
        ``weights``.
    threshold : array or float
        The water-filling threshold :math:`\nu`, :math:`w^*_t = (\psi_t/\mu - \nu)_+`. For the
        Frank–Wolfe methods it is the average of :math:`\psi_t/\mu - w_t` over the support of
        the final iterate. It is :math:`\pm\infty` when :math:`|\psi|/\mu` exceeds the
        floating range (the weights and the value stay exact), and :math:`+\infty` when no
        task is present.
    support : array of bool
        ``weights > 0``: the tasks that carry weight (a top-k set of ``psi``).
    gap : array or float
        Frank–Wolfe duality gap :math:`\max_t g_t - w^\top g`, :math:`g = \psi - \mu(w - c)`
        (over the present tasks), evaluated on the centred :math:`\psi - \max_t\psi_t` at the
        returned weights: an upper bound on :math:`\Phi(\psi) - f(w)`.
    nit : int
        Iterations performed (0 for ``exact``).
    success : bool
        For ``exact``, ``True`` unless a present entry of ``psi`` is NaN or :math:`\pm\infty`
        (possible only with ``check_finite=False``; then it is tested on first access, one
        host synchronisation, and a NaN or inf in any row of a batch makes it ``False``); for
        the Frank–Wolfe methods, whether the gap reached ``tol`` (never for a non-finite gap).
    message : str
        Why the solver stopped (for ``exact`` with a non-finite ``psi``: which value).
    method : str
        The method used.
    history : numpy.ndarray or None
        The gap at every iterate (Frank–Wolfe methods with ``keep_history=True``), else ``None``.
    lazy : object or None
        Internal: the data from which ``value``, ``threshold``, ``support``, ``gap`` (and, for
        ``exact`` with ``check_finite=False``, ``success`` and ``message``) are computed on
        first access (then cached): the exact solve itself only forms ``weights``.
    """

    weights: Array
    value: Any = _Lazy(_value_of)
    threshold: Any = _Lazy(_threshold_of)
    support: Any = _Lazy(_support_of)
    gap: Any = _Lazy(_gap_of)
    nit: int = 0
    success: bool = _Lazy(_success_of)  # type: ignore[assignment]  # descriptor
    message: str = _Lazy(_message_of)  # type: ignore[assignment]  # descriptor
    method: str = "exact"
    history: np.ndarray | None = None
    lazy: _LazyData | None = field(default=None, repr=False, compare=False)

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
# the instance dictionary of an exact result before its weights and lazy data (built without
# the dataclass __init__; the lazy fields are unset, the others have their exact values)
_EXACT_FIELDS = {"_value": None, "_threshold": None, "_support": None, "_gap": None, "nit": 0,
                 "_success": True, "_message": _EXACT_MSG, "method": "exact", "history": None}
# the same when psi was not checked for finiteness: success and message on first access
_UNCHECKED_FIELDS = {**_EXACT_FIELDS, "_success": None, "_message": None}
# Frank–Wolfe data outside [2^-960, 2^960] is rescaled by an exact power of two (above:
# certificates.pow2_exponent, the rule the certificate shares)
_FW_SMALL = 2.0**-960


def _nonfinite(o: Ops, arr: Array, present: Array | None) -> str:
    """``"NaN"`` or ``"inf"`` for a non-finite present entry of ``arr`` (absent ones are
    ignored), ``""`` when all are finite (one host synchronisation, two for a non-finite)."""
    vals = arr if present is None else o.where(present, arr, 0.0)
    if o.all_finite(vals):
        return ""
    return "NaN" if bool(o.xp.any(o.xp.isnan(vals))) else "inf"


def _check_present_finite(o: Ops, arr: Array, present: Array | None) -> None:
    """``psi contains NaN/inf`` for a non-finite present entry (absent ones are ignored)."""
    bad = _nonfinite(o, arr, present)
    if bad:
        raise ValueError(f"psi contains {bad}")


def _exact(o: Ops, psi: Array, mu: float, present: Array | None,
           checked: bool = True) -> AggregationResult:
    r"""Water-filling :math:`w^* = \Pi_\Delta(\psi/\mu)` by the one water-filling routine
    on :math:`z = (\max\psi - \psi)/\mu`, batched, with no host synchronisation: ten array
    operations. Absent entries are read as :math:`-\infty`, so :math:`z = +\infty`, above
    the water level: weight exactly 0; the mask then zeroes the weights of a row with nothing
    present (two more operations in all). Only ``weights`` is formed here; the other fields
    are computed from the stored level and maximum on first access; so are ``success`` and
    ``message`` when ``psi`` was not ``checked`` for finiteness."""
    p = o.detach(psi)
    with np.errstate(over="ignore", invalid="ignore"):  # (max - psi) / mu beyond the range
        if present is None:
            pmax = o.amax(p)
            w, level = _water_fill(o, (pmax - p) / o.const(mu, p))
        else:  # absent: z = +inf; nothing present: pmax = -inf, z = NaN, then w = 0
            pm = o.where(present, p, -math.inf)
            pmax = o.amax(pm)
            w, level = _water_fill(o, (pmax - pm) / o.const(mu, p))
            w = o.where(present, w, 0.0)
    res = object.__new__(AggregationResult)
    res.__dict__ = {**(_EXACT_FIELDS if checked else _UNCHECKED_FIELDS), "weights": w,
                    "lazy": _LazyData(o, psi, mu, present, (level, pmax))}
    return res


def _frank_wolfe(
    p: np.ndarray, mu: float, method: str, tol: float | None, max_iter: int, keep_history: bool
) -> tuple[np.ndarray, float, int, bool, str, np.ndarray | None, float, float]:
    """One Frank–Wolfe variant on the float64 vector ``p``: the QP
    :math:`\\min_w \\tfrac12 w^\\top(\\mu I)w - (\\psi + \\mu c)^\\top w` solved by
    :func:`fairmt_opt.qp._frank_wolfe.frank_wolfe_qp` from :math:`c`, on data rescaled by an
    exact power of two when it lies outside :math:`[2^{-960}, 2^{960}]` (the weights are
    invariant, the gaps scale linearly), so that nothing overflows and round-off stays
    relative. Returns ``(w, gap, nit, success, message, history, nu, value)``."""
    T = p.shape[0]
    big = float(np.max(np.abs(p)))
    k = -pow2_exponent(big)  # huge data: centring would overflow
    pk = np.ldexp(p, k) if k else p
    mu_k = math.ldexp(mu, k)
    pmax = np.float64(pk.max())
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        nu_max = float(pmax / np.float64(mu_k))  # psi_max / mu (inf when it overflows)
    pc = pk - pmax
    # data at the subnormal scale: iterate on a rescaling by 2^k2 too
    scale = max(float(-pc.min()), mu_k)
    k2 = -math.frexp(scale)[1] if 0.0 < scale < _FW_SMALL else 0
    if k2:
        pc, mu_k, scale, k = np.ldexp(pc, k2), math.ldexp(mu_k, k2), math.ldexp(scale, k2), k + k2
    if tol is None:
        tol_k = 0.5 * default_rtol(T, np.float64) * scale
        tol = math.ldexp(tol_k, -k)
    else:
        tol_k = math.ldexp(tol, k)
    c = 1.0 / T
    hist: list[float] | None = [] if keep_history else None
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        w, gap_k, nit, status, _ = frank_wolfe_qp(
            ScaledIdentity(mu_k, T), -pc - mu_k * c, np.full(T, c),
            variant=method, tol=tol_k, max_iter=max_iter, history=hist)
        supp = w > 0
        nu = float(np.mean(pc[supp] / mu_k - w[supp])) + nu_max
        # f(w) on the centred, rescaled data (a small weight on psi_t far below the maximum
        # would overflow psi_t - max psi unscaled), plus the maximum, in the caller's units
        value = float(p.max()) + math.ldexp(float(_value(np, pc, w, mu_k, None)), -k)
    gap = math.ldexp(gap_k, -k)
    history = None if hist is None else np.ldexp(np.asarray(hist, dtype=np.float64), -k)
    if status == 0:
        message = f"converged: gap {gap:.3g} <= tol {tol:.3g}"
    elif status == 1:
        message = (f"maximum number of iterations ({max_iter}) reached: gap {gap:.3g} > tol "
                   f"{tol:.3g}")
    else:
        message = f"stopped at a non-finite gap ({gap}): numerical failure"
    return w, gap, nit, status == 0, message, history, nu, value


def aggregate_violations(
    psi: Array,
    mu: float,
    *,
    method: AggregationMethod = "exact",
    present: Array | None = None,
    tol: float | None = None,
    max_iter: int = 10_000,
    keep_history: bool = False,
    check_finite: bool = True,
) -> AggregationResult:
    r"""Aggregate task violations with AHFDA (adaptive, simplex-constrained weights).

    Solves, over the present tasks :math:`P` (all of them by default, :math:`T_P = |P|`),

    .. math::

        \Phi(\psi) = \max_{w \in \Delta_P}\ f(w), \qquad
        f(w) = \sum_{t\in P} w_t\psi_t - \tfrac{\mu}{2}\sum_{t \in P}(w_t - c)^2,
        \qquad c = \tfrac1{T_P},

    :math:`\Delta_P = \{w \in \Delta : w_t = 0 \text{ for } t \notin P\}`, whose unique
    maximiser is the water-filling solution
    :math:`w^*_t = (\psi_t/\mu - \nu)_+ = \Pi_\Delta(\psi/\mu)_t` on :math:`P`. Tasks with
    :math:`\psi_t \le \mu\nu` get exactly zero weight; large :math:`\mu` spreads the weight
    towards uniform (:math:`\Phi \to \bar\psi`), small :math:`\mu` concentrates it on the worst
    task (:math:`\Phi \to \max_t \psi_t`). By Danskin's theorem :math:`\nabla_\psi\Phi = w^*`.

    Parameters
    ----------
    psi : array_like
        Task violations, shape ``(T,)``; ``exact`` also accepts a batch ``(..., T)``. NumPy
        arrays, lists or any array-API array (``torch.Tensor`` on CPU or CUDA).
    mu : float
        Regularisation strength :math:`\mu > 0` (a Python or NumPy number).
    method : {"exact", "frank_wolfe", "away", "pairwise"}, optional
        ``"exact"`` (default): sort-based water-filling, :math:`O(T \log T)`, array-API native
        (batched, stays on the device of ``psi``, no host synchronisation beyond the optional
        finiteness check, with or without ``present``). ``"frank_wolfe"``: SPEC Algorithm 1
        from :math:`w^0 = c` with exact line search
        :math:`\gamma = \min(1, \mathrm{gap}/(\mu\|s - w\|^2))`, :math:`O(T)` per
        iteration, sublinear :math:`O(\mu/k)` rate when the optimum lies on a face.
        ``"away"`` and ``"pairwise"``: away-step and pairwise Frank–Wolfe with exact line search
        capped at the largest feasible step (linear rate on this strongly concave problem). The
        Frank–Wolfe methods are those of :func:`solve_simplex_qp` on the QP
        :math:`\min_w \tfrac12 w^\top(\mu I)w - (\psi + \mu c)^\top w` (with :math:`\mu I` an
        implicit operator) and run on the host in float64 NumPy, on the present tasks.
    present : bool array, optional
        Which tasks take part, same shape as ``psi`` (a NumPy bool array, or a torch bool
        tensor on the device of a tensor ``psi``). Absent tasks get weight exactly 0 and
        contribute nothing (their entries of ``psi`` are never read, even NaN), :math:`c` is
        :math:`1/T_P`, and a row with no present task has all weights 0, value 0 and gap 0
        (threshold :math:`+\infty`). The result equals ``aggregate_violations`` on the
        subset, scattered back. Default ``None``: every task is present.
    tol : float, optional
        Frank–Wolfe methods stop when the duality gap is :math:`\le` ``tol`` (absolute, in the
        units of :math:`\Phi`). Default: :math:`8 (T_P + 1)\,\epsilon_{64}\,
        \max(\max\psi - \min\psi, \mu)`, half the tolerance of :func:`certify_aggregation`.
        Data outside :math:`[2^{-960}, 2^{960}]` is rescaled by an exact power of two for the
        iterations. Unused by ``exact``.
    max_iter : int, optional
        Iteration budget of the Frank–Wolfe methods (default 10 000).
    keep_history : bool, optional
        Keep the gap of every Frank–Wolfe iterate in ``result.history``.
    check_finite : bool, optional
        Raise ``ValueError`` if a present entry of ``psi`` is NaN or inf (default ``True``; on
        a CUDA tensor this synchronises with the host, pass ``False`` to avoid it: the
        ``exact`` method then tests finiteness only when ``success`` or ``message`` is read).

    Returns
    -------
    AggregationResult
        ``weights``, ``value`` (:math:`\Phi`), ``threshold`` (:math:`\nu`), ``support``,
        ``gap``, ``nit``, ``success``, ``message``, ``method``, ``history``. The ``exact``
        method forms ``weights`` only; the other fields are computed on first access. For a
        ``torch.Tensor`` ``psi`` that requires grad, ``value`` is a differentiable tensor whose
        gradient with respect to ``psi`` is ``weights`` (Danskin), and ``weights`` is detached.
        A Frank–Wolfe result whose gap is NaN or infinite never reports ``success``, and an
        ``exact`` result for a ``psi`` with a NaN or inf present entry (``check_finite=False``)
        has ``success=False`` and says so in ``message``.

    Raises
    ------
    ValueError
        For NaN or inf in a present entry of ``psi``, an empty or 0-dimensional ``psi``, a
        batched ``psi`` with a Frank–Wolfe method, a ``present`` that is not a bool array of the
        shape of ``psi``, ``mu <= 0`` or not finite, a negative ``tol``, a negative
        ``max_iter`` or an unknown ``method``.

    Notes
    -----
    Cost: ``exact`` :math:`O(T \log T)` per vector (ten array operations, the mask adds
    two); the Frank–Wolfe methods :math:`O(T)` per iteration. Every result can be
    checked independently with :func:`certify_aggregation`. In a training loop on tensors:
    ``res = aggregate_violations(psi.detach(), mu, present=present, check_finite=False)``
    then ``phi = aggregation_value(psi, res.weights, mu, present=present)``.

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

    Only some tasks present (the others get weight 0, c = 1/2):

    >>> aggregate_violations(psi, 1.0, present=np.array([True, False, True])).weights
    array([0.75, 0.  , 0.25])

    Danskin's gradient through a torch tensor:

    >>> import torch
    >>> psi = torch.tensor([0.5, 0.2, 0.0], dtype=torch.float64, requires_grad=True)
    >>> res = aggregate_violations(psi, 1.0)
    >>> res.value.backward()
    >>> bool(torch.allclose(psi.grad, res.weights))
    True
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    mu_f = check_mu(mu)
    max_iter_i = max_iter if type(max_iter) is int and max_iter >= 0 else check_int(
        max_iter, "max_iter", minimum=0)
    if tol is not None:
        tol = check_tol(tol, "tol")
    arr, o = _prepare(psi, "psi", False)
    if present is not None:
        present = check_present(present, arr)
    if check_finite:
        _check_present_finite(o, arr, present)
    if method == "exact":
        return _exact(o, arr, mu_f, present, check_finite)
    if arr.ndim != 1:
        raise ValueError(
            f"psi must be 1-dimensional for method={method!r} (only 'exact' is batched), "
            f"got shape {tuple(arr.shape)}"
        )
    p = to_numpy(arr)
    T = p.shape[0]
    idx = None
    if present is not None:
        pr = to_numpy(present, dtype=bool)
        idx = None if pr.all() else np.flatnonzero(pr)
    if idx is not None and idx.size == 0:
        w, gap, nit, ok, message, history = np.zeros(T), 0.0, 0, True, "no task present", None
        if keep_history:
            history = np.zeros(1)
        nu, phi = math.inf, 0.0
    else:
        w, gap, nit, ok, message, history, nu, phi = _frank_wolfe(
            p if idx is None else p[idx], mu_f, method, tol, max_iter_i, keep_history)
        if idx is not None:
            w_sub, w = w, np.zeros(T)
            w[idx] = w_sub
    weights = from_numpy(w, arr) if not isinstance(arr, np.ndarray) else w.astype(
        arr.dtype, copy=False)
    value = None  # other arrays (tensors: differentiable) get the value on first access
    if isinstance(arr, np.ndarray):
        value = arr.dtype.type(phi)
    return AggregationResult(weights, value, nu, None, np.float64(gap), nit, ok, message,
                             method, history, lazy=_LazyData(o, arr, mu_f, present))
