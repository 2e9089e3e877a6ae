r"""Task violations :math:`\psi_t` from additive statistics (SPEC §3).

Written once against the array API: on torch statistics the result is differentiable (the
best-group reference is detached), on NumPy statistics (e.g. :func:`hard_stats`) it is the
hard violation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._utils.array import Array, device_of, is_torch, namespace
from .._utils.validation import check_bool, check_positive, check_real
from ._moments import moment_scores
from ._stats import SoftStats, _Sums, soft_stats
from ._tasks import Task

__all__ = [
    "GroupReduction",
    "RegressionScore",
    "RunningScale",
    "ViolationResult",
    "group_rates",
    "soft_violation",
    "violation_from_stats",
]

GroupReduction = Literal["mean", "max"]
RegressionScore = Literal["mae", "mse", "ccc"]


def _sg(x: Array) -> Array:
    """Stop-gradient: ``detach`` for torch, identity elsewhere."""
    return x.detach() if is_torch(x) else x


def _safe_div(xp: Any, num: Array, den: Array) -> tuple[Array, Array]:
    ok = den > 0
    one = xp.ones_like(den)
    q = num / xp.where(ok, den, one)
    return xp.where(ok, q, xp.zeros_like(q)), ok


def group_rates(
    task: Task, stats: _Sums, *, regression_score: RegressionScore = "mae"
) -> tuple[dict[str, Array], dict[str, Array]]:
    r"""Per-group rates (detection, classification) or scores (regression) and their validity.

    Returns ``(rates, valid)``: for detection and classification ``rates["tpr"]`` and
    ``rates["fpr"]`` of shape ``(G, K)`` (:math:`\mathrm{tp}/\mathrm{pos}`,
    :math:`\mathrm{fp}/\mathrm{neg}`); for regression ``rates["score"]`` of shape ``(G,)``,
    :math:`P_g = -\mathrm{MAE}_g` (``"mae"``), :math:`-\mathrm{MSE}_g` (``"mse"``) or
    :math:`\mathrm{CCC}_g` (``"ccc"``). ``valid`` flags the cells with a non-empty denominator
    (for CCC also a non-zero :math:`\sigma_{\hat y}^2 + \sigma_y^2 + (\mu_{\hat y} - \mu_y)^2`);
    an invalid cell holds 0 and is left out of every reduction. Differentiable through torch
    statistics (no NaN in values or gradients).

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, hard_stats, group_rates
    >>> s = hard_stats(Task("y", "detection"), [1.0, -1.0, 1.0, 1.0], [1, 1, 0, 0], None,
    ...                [0, 0, 1, 1], 2)
    >>> r, v = group_rates(Task("y", "detection"), s)
    >>> r["tpr"].ravel(), v["tpr"].ravel()
    (array([0.5, 0. ]), array([ True, False]))
    """
    _check_stats(task, stats)
    _check_score(regression_score)
    xp = namespace(next(iter(stats.sums.values())))
    rates, valid = stacked_rates(xp, task.kind, {k: v[None, ...] for k, v in stats.sums.items()},
                                 regression_score)
    return {k: v[0, ...] for k, v in rates.items()}, {k: v[0, ...] for k, v in valid.items()}


def _confusion_rates(xp: Any, s: Mapping[str, Array]) -> tuple[Array, Array]:
    """TPR and FPR stacked on a new leading axis (``(2, k, G, K)``) and their validity."""
    return _safe_div(xp, xp.stack([s["tp"], s["fp"]]), xp.stack([s["pos"], s["neg"]]))


def _check_score(regression_score: Any) -> None:
    if regression_score not in ("mae", "mse", "ccc"):
        raise ValueError(
            f"regression_score must be one of 'mae', 'mse', 'ccc', got {regression_score!r}"
        )


def stacked_rates(xp: Any, kind: str, s: Mapping[str, Array], regression_score: str = "mae"
                  ) -> tuple[dict[str, Array], dict[str, Array]]:
    """:func:`group_rates` of a stack of tasks of one kind: the sums carry a leading task axis
    (``(k, G, K)``, regression ``(k, G)``), and so do the rates."""
    if kind != "regression":
        q, ok = _confusion_rates(xp, s)
        return {"tpr": q[0, ...], "fpr": q[1, ...]}, {"tpr": ok[0, ...], "fpr": ok[1, ...]}
    if "pred_m2" in s:  # hard statistics: the centred, scaled moments (see _moments)
        sc, ok = moment_scores(s, (regression_score,))
        v = sc[regression_score]
        return {"score": v if regression_score == "ccc" else -v}, {"score": ok[regression_score]}
    n = s["n"]
    if regression_score == "mae":
        mae, ok = _safe_div(xp, s["abs_err"], n)
        return {"score": -mae}, {"score": ok}
    if regression_score == "mse":
        mse, ok = _safe_div(xp, s["sq_err"], n)
        return {"score": -mse}, {"score": ok}
    mp, ok = _safe_div(xp, s["pred"], n)
    mt, _ = _safe_div(xp, s["target"], n)
    ep2, _ = _safe_div(xp, s["pred_sq"], n)
    et2, _ = _safe_div(xp, s["target_sq"], n)
    ept, _ = _safe_div(xp, s["cross"], n)
    vp = ep2 - mp * mp
    vt = et2 - mt * mt
    cov = ept - mp * mt
    den = vp + vt + (mp - mt) ** 2
    eps = 64 * float(xp.finfo(den.dtype).eps)
    ok = ok & (den > eps * _sg(ep2 + et2))
    ccc, ok2 = _safe_div(xp, 2 * cov, xp.where(ok, den, xp.zeros_like(den)))
    return {"score": ccc}, {"score": ok2}


def _check_stats(task: Task, stats: Any) -> None:
    if not isinstance(task, Task):
        raise ValueError(f"task must be a Task, got {type(task).__name__}")
    if not isinstance(stats, _Sums):
        raise ValueError(
            f"stats must be SoftStats or HardStats (from soft_stats / hard_stats), "
            f"got {type(stats).__name__}"
        )
    if stats.kind != task.kind or stats.num_classes != task.out_dim:
        raise ValueError(
            f"stats describe a {stats.kind} task with {stats.num_classes} output(s), but task "
            f"{task.name!r} is {task.kind} with {task.out_dim}"
        )


def _gaps(xp: Any, r: Array, v: Array) -> tuple[Array, Array]:
    r"""Lift gaps :math:`(\mathrm{sg}(\max_{g'} r_{g'}) - r_g)_+` per cell of ``r`` (``(..., G,
    K)``, groups on axis -2; higher is better) over the valid cells of each column; a column
    with fewer than two valid cells has no comparison. Returns ``(gap, cell)`` with ``cell``
    the cells that take part."""
    count = xp.sum(xp.astype(v, xp.int64), axis=-2, keepdims=True)
    comparable = count >= 2
    rd = _sg(r)
    ref = xp.max(xp.where(v, rd, xp.full_like(rd, -math.inf)), axis=-2, keepdims=True)
    d = ref - r
    cell = v & comparable
    # where(d > 0, ...) rather than maximum(d, 0): the reference cell has d == 0 exactly and
    # must receive an exactly zero gradient (torch's maximum splits ties 1/2 - 1/2)
    gap = xp.where(cell & (d > 0), d, xp.zeros_like(d))
    return gap, cell


def _range(xp: Any, r: Array, v: Array) -> tuple[Array, Array]:
    r""":math:`\max_{g,g'} |r_g - r_{g'}|` over the valid cells of each column (no stop-gradient),
    and whether the column has a comparison."""
    count = xp.sum(xp.astype(v, xp.int64), axis=-2)
    comparable = count >= 2
    hi = xp.max(xp.where(v, r, xp.full_like(r, -math.inf)), axis=-2)
    lo = xp.min(xp.where(v, r, xp.full_like(r, math.inf)), axis=-2)
    d = hi - lo
    return xp.where(comparable, d, xp.zeros_like(d)), comparable


def _masked_mean(xp: Any, x: Array, keep: Array, axis: int) -> Array:
    k = xp.astype(keep, x.dtype)
    n = xp.sum(k, axis=axis)
    tot = xp.sum(xp.where(keep, x, xp.zeros_like(x)), axis=axis)
    return tot / xp.where(n > 0, n, xp.ones_like(n))


class RunningScale:
    r"""Running scale :math:`s_t` of a violation, for ``violation_from_stats(scale=...)``.

    An exponential moving average with bias correction of the raw violation values it is fed:
    :math:`e_k = \beta e_{k-1} + (1-\beta)|\psi_k|`, :math:`s_k = e_k / (1 - \beta^k)`; the scaled
    violation is :math:`\psi / \max(s, \epsilon)` with :math:`s` treated as a constant
    [choice of SPEC §3: divide each :math:`\psi_t` by a running scale so that tasks of different
    scales weigh alike]. State is a pair of floats (``state_dict`` / ``load_state_dict``).

    Parameters
    ----------
    momentum : float, default 0.99
        :math:`\beta \in [0, 1)`.
    eps : float, default 1e-8
        Floor of the scale.

    Examples
    --------
    >>> from fairmt_opt.fairness import RunningScale
    >>> s = RunningScale(momentum=0.5)
    >>> s.update_(2.0), s.update_(4.0)
    (2.0, 3.3333333333333335)
    >>> t = RunningScale(momentum=0.5); t.load_state_dict(s.state_dict()); t.value
    3.3333333333333335
    """

    def __init__(self, momentum: float = 0.99, *, eps: float = 1e-8) -> None:
        m = float(momentum)
        if not (0.0 <= m < 1.0):
            raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
        self.momentum = m
        self.eps = check_positive(eps, "eps")
        self._ema = 0.0
        self.steps = 0

    @property
    def value(self) -> float:
        """Current scale :math:`\\max(s_k, \\epsilon)` (``eps`` before the first update)."""
        if self.steps == 0:
            return self.eps
        return max(self._ema / (1.0 - self.momentum**self.steps), self.eps)

    def update_(self, x: Any) -> float:
        """Feed one raw violation value (a float or 0-d array; synchronises a GPU) and return
        the new scale."""
        v = float(_sg(x)) if is_torch(x) else float(x)
        if not math.isfinite(v):
            raise ValueError(f"RunningScale.update_: the value must be finite, got {v}")
        self._ema = self.momentum * self._ema + (1.0 - self.momentum) * abs(v)
        self.steps += 1
        return self.value

    def state_dict(self) -> dict[str, float]:
        return {"momentum": self.momentum, "eps": self.eps, "ema": self._ema, "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        """Restore :meth:`state_dict`; every field is checked before anything changes
        (``ValueError`` naming the key)."""
        if not isinstance(state, Mapping):
            raise ValueError(f"RunningScale state must be a dict, got {type(state).__name__}")
        missing = sorted({"momentum", "eps", "ema", "steps"} - set(state))
        if missing:
            raise ValueError(f"RunningScale state is missing keys {missing}")
        m = check_real(state["momentum"], "momentum")
        if not 0.0 <= m < 1.0:
            raise ValueError(f"RunningScale state: 'momentum' must lie in [0, 1), got {m}")
        eps = check_positive(state["eps"], "eps")
        ema = check_positive(state["ema"], "ema", allow_zero=True)
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"RunningScale state: 'steps' must be an integer >= 0, "
                             f"got {steps!r}")
        self.momentum, self.eps, self._ema, self.steps = m, eps, ema, int(steps)

    def __repr__(self) -> str:
        return f"RunningScale(momentum={self.momentum}, eps={self.eps}, value={self.value:.6g})"


@dataclass(frozen=True, repr=False)
class ViolationResult:
    r"""Violation :math:`\psi_t` of one task.

    Attributes
    ----------
    value : 0-d array
        :math:`\psi_t` after scaling (differentiable for torch statistics), :math:`\geq 0`.
    raw : 0-d array
        :math:`\psi_t` before scaling.
    rates : dict of arrays
        Detached per-group rates: ``"tpr"``, ``"fpr"`` of shape ``(G,)`` (detection) or
        ``(G, C)`` (classification), or ``"score"`` of shape ``(G,)`` (regression). Empty cells
        hold 0.
    empty : dict of bool arrays
        Same keys and shapes: ``True`` for the cells whose denominator was empty (no positives
        of the group, no labelled sample, ...), left out of every reduction.
    kind : str
        The task type.
    symmetric : bool
        Whether the symmetric counterpart was computed.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, hard_stats, violation_from_stats
    >>> t = Task("y", "detection")
    >>> violation_from_stats(t, hard_stats(t, [1., -1., 1., 1.], [1, 1, 1, 0], None,
    ...                                    [0, 0, 1, 1], 2))  # doctest: +NORMALIZE_WHITESPACE
    ViolationResult(value=0.25, raw=0.25, kind='detection', symmetric=False,
                    rates={'tpr': [0.5, 1. ], 'fpr': [0., 1.]}, empty_cells={'tpr': 0, 'fpr': 1})
    """

    value: Array
    raw: Array
    rates: Mapping[str, Array] = field(default_factory=dict)
    empty: Mapping[str, Array] = field(default_factory=dict)
    kind: str = "detection"
    symmetric: bool = False

    def __float__(self) -> float:
        return float(_sg(self.value))

    def __repr__(self) -> str:
        def fmt(a: Array) -> str:
            import numpy as np

            arr = a.cpu().numpy() if is_torch(a) else np.asarray(a)
            return np.array2string(arr, precision=4, separator=", ")

        rates = ", ".join(f"{k!r}: {fmt(v)}" for k, v in self.rates.items())
        empty = ", ".join(f"{k!r}: {int(_to_float_sum(v))}" for k, v in self.empty.items())
        return (
            f"ViolationResult(value={float(self):.6g}, raw={float(_sg(self.raw)):.6g}, "
            f"kind={self.kind!r}, symmetric={self.symmetric}, rates={{{rates}}}, "
            f"empty_cells={{{empty}}})"
        )


def _to_float_sum(a: Array) -> float:
    xp = namespace(a)
    return float(xp.sum(xp.astype(a, xp.int64)))


def stacked_violations(
    xp: Any,
    kind: str,
    sums: Mapping[str, Array],
    *,
    symmetric: bool = False,
    group_reduction: str = "mean",
    include_fpr: bool = True,
    regression_score: str = "mae",
) -> tuple[Array, dict[str, Array], dict[str, Array]]:
    """The unscaled violations ``(k,)`` of a stack of tasks of one kind from their sums with a
    leading task axis, and the stacked rates and validity flags: the one implementation of the
    formulas of :func:`violation_from_stats` (which is its case k = 1). Options are not
    checked here."""
    # the terms on a leading axis, each oriented so that higher is better (the FPR negated:
    # its lift gap (FPR_g - min FPR)_+ is the gap of -FPR below its maximum, bit for bit)
    if kind == "regression":
        rates, valid = stacked_rates(xp, kind, sums, regression_score)
        r, v = rates["score"][None, ..., None], valid["score"][None, ..., None]
    else:
        q, ok = _confusion_rates(xp, sums)
        rates = {"tpr": q[0, ...], "fpr": q[1, ...]}
        valid = {"tpr": ok[0, ...], "fpr": ok[1, ...]}
        if include_fpr:
            sign = xp.reshape(xp.asarray([1.0, -1.0], dtype=q.dtype, device=device_of(q)),
                              (2, 1, 1, 1))
            r, v = q * sign, ok
        else:
            r, v = q[0:1, ...], ok[0:1, ...]
    if symmetric:
        d, comparable = _range(xp, r, v)
        per_class = xp.sum(d, axis=0)
        has = xp.any(comparable, axis=0)
    else:
        gap, cell = _gaps(xp, r, v)
        bracket = xp.sum(gap, axis=0)
        member = xp.any(cell, axis=0)
        if group_reduction == "mean":
            per_class = _masked_mean(xp, bracket, member, axis=-2)
        else:
            per_class = xp.max(xp.where(member, bracket, xp.zeros_like(bracket)), axis=-2)
        has = xp.any(member, axis=-2)
    return _masked_mean(xp, per_class, has, axis=-1), rates, valid


def violation_from_stats(
    task: Task,
    stats: _Sums,
    *,
    symmetric: bool = False,
    group_reduction: GroupReduction = "mean",
    include_fpr: bool = True,
    regression_score: RegressionScore = "mae",
    scale: float | RunningScale | None = None,
) -> ViolationResult:
    r"""Violation :math:`\psi_t` of one task from its statistics (SPEC §3).

    With :math:`r_g` the group rates of :func:`group_rates` over the non-empty cells
    :math:`G^+` and :math:`\mathrm{sg}` the stop-gradient:

    * **AEOD** (detection)

      .. math::

          \psi = \operatorname*{red}_{g \in G^+}\Big[
             \big(\mathrm{sg}(\max_{g'} \mathrm{TPR}_{g'}) - \mathrm{TPR}_g\big)_+
           + \big(\mathrm{FPR}_g - \mathrm{sg}(\min_{g'} \mathrm{FPR}_{g'})\big)_+ \Big]

      where ``red`` is the mean (default) or the max over the groups that have at least one
      non-empty cell; a term whose cell is empty is left out of its group's bracket, and a
      term with fewer than two non-empty cells has no comparison and is 0.
    * **CAEOD** (classification): the mean over classes :math:`k` of the AEOD of the
      one-vs-rest rates of class :math:`k` (classes without any comparison are left out).
    * **AEP** (regression): :math:`\psi = \operatorname{red}_{g}
      (\mathrm{sg}(\max_{g'} P_{g'}) - P_g)_+` with :math:`P_g = -\mathrm{MAE}_g` by default.
    * **symmetric** counterparts: :math:`\max_{g,g'} |\mathrm{TPR}_g - \mathrm{TPR}_{g'}|
      + \max_{g,g'} |\mathrm{FPR}_g - \mathrm{FPR}_{g'}|` (class-averaged) and
      :math:`\max_{g,g'}|P_g - P_{g'}|`. They have no stop-gradient, so they also pull the best
      group down; ``group_reduction`` does not apply to them (SPEC defines them as maxima).

    The asymmetric violations are lift-only (SPEC P5): the derivative with respect to the best
    group's rate is exactly 0 and with respect to any other rate :math:`\leq 0`. When no
    comparison exists (no label, a single non-empty group), :math:`\psi = 0` exactly with a
    zero gradient. :math:`\psi` is never NaN.

    Parameters
    ----------
    task : Task
    stats : SoftStats or HardStats
        From :func:`soft_stats` (differentiable through torch) or :func:`hard_stats`.
    symmetric : bool, default False
        Compute the symmetric counterpart (for the symmetric-constraint baseline).
    group_reduction : {"mean", "max"}, default "mean"
        [choice of SPEC §3] reduction of the per-group lift gaps.
    include_fpr : bool, default True
        [choice of SPEC §3] include the FPR term (detection and classification).
    regression_score : {"mae", "mse", "ccc"}, default "mae"
        [choice of SPEC §2] :math:`P_g = -\mathrm{MAE}_g`, :math:`-\mathrm{MSE}_g` or
        :math:`\mathrm{CCC}_g`.
    scale : float or RunningScale, optional
        [choice of SPEC §3] divide :math:`\psi` by a fixed scale :math:`> 0`, or by the value
        of a :class:`RunningScale` after feeding it the raw :math:`\psi` (state changes).

    Returns
    -------
    ViolationResult

    Notes
    -----
    Cost :math:`O(|G| K)` on top of the statistics.

    Examples
    --------
    Group 0 detects one positive in two and both negatives, group 1 both positives and one
    negative in two; group 0 lags by 0.5 in TPR and by 0.5 in FPR:

    >>> import numpy as np
    >>> from fairmt_opt.fairness import Task, hard_stats, violation_from_stats
    >>> t = Task("y", "detection")
    >>> s = hard_stats(t, [1., -1., 1., 1., 1., 1., 1., -1.], [1, 1, 0, 0, 1, 1, 0, 0], None,
    ...                [0, 0, 0, 0, 1, 1, 1, 1], 2)
    >>> float(violation_from_stats(t, s).value)  # mean_g [(1 - TPR_g)_+ + (FPR_g - 0.5)_+]
    0.5
    >>> float(violation_from_stats(t, s, symmetric=True).value)  # |1 - 0.5| + |1 - 0.5|
    1.0
    """
    _check_stats(task, stats)
    if group_reduction not in ("mean", "max"):
        raise ValueError(f"group_reduction must be 'mean' or 'max', got {group_reduction!r}")
    symmetric = check_bool(symmetric, "symmetric")
    include_fpr = check_bool(include_fpr, "include_fpr")
    if scale is not None and not isinstance(scale, RunningScale):
        scale = check_positive(scale, "scale")
    _check_score(regression_score)
    xp = namespace(next(iter(stats.sums.values())))
    raws, rates, valid = stacked_violations(
        xp, task.kind, {k: v[None, ...] for k, v in stats.sums.items()}, symmetric=symmetric,
        group_reduction=group_reduction, include_fpr=include_fpr,
        regression_score=regression_score)
    raw = raws[0]
    rates = {k: v[0, ...] for k, v in rates.items()}
    valid = {k: v[0, ...] for k, v in valid.items()}

    if scale is None:
        value = raw
    elif isinstance(scale, RunningScale):
        value = raw / scale.update_(raw)
    else:
        value = raw / scale

    squeeze = task.kind == "detection"

    def out(a: Array) -> Array:
        a = _sg(a)
        return a[:, 0] if squeeze and a.ndim == 2 else a

    return ViolationResult(
        value=value,
        raw=raw,
        rates={k: out(v) for k, v in rates.items()},
        empty={k: out(~v) for k, v in valid.items()},
        kind=task.kind,
        symmetric=symmetric,
    )


def soft_violation(
    task: Task,
    outputs: Array,
    targets: Array,
    mask: Array | None,
    groups: Array,
    num_groups: int,
    *,
    temperature: float = 1.0,
    symmetric: bool = False,
    group_reduction: GroupReduction = "mean",
    include_fpr: bool = True,
    regression_score: RegressionScore = "mae",
    scale: float | RunningScale | None = None,
    validate: bool = True,
) -> ViolationResult:
    r"""Soft violation of one batch: :func:`violation_from_stats` of :func:`soft_stats`.

    See those two functions for the formulas and options. Differentiable with respect to
    torch ``outputs``; cost :math:`O(N K |G|)`.

    Examples
    --------
    >>> import torch
    >>> from fairmt_opt.fairness import Task, soft_violation
    >>> z = torch.tensor([3.0, -1.0, 2.0, 2.0], requires_grad=True)
    >>> res = soft_violation(Task("y", "detection"), z, torch.tensor([1, 1, 1, 1]), None,
    ...                      torch.tensor([0, 0, 1, 1]), 2, include_fpr=False)
    >>> res.value.backward()
    >>> bool(res.value > 0), bool((z.grad[2:] == 0).all()), bool((z.grad[:2] <= 0).all())
    (True, True, True)
    """
    stats: SoftStats = soft_stats(
        task, outputs, targets, mask, groups, num_groups, temperature=temperature,
        validate=validate,
    )
    return violation_from_stats(
        task, stats, symmetric=symmetric, group_reduction=group_reduction,
        include_fpr=include_fpr, regression_score=regression_score, scale=scale,
    )
