r"""Hard evaluation metrics of one task (SPEC §3): fairness gaps and utility.

Undefined metrics
-----------------
A metric that cannot be computed (no labelled sample, fewer than two non-empty groups, an F1
with neither a positive label nor a positive prediction, ...) is reported as an explicit NaN
*and* its reason is recorded in :attr:`MetricReport.undefined` under the same key. A value is
NaN exactly when its key is in ``undefined``: no NaN is ever silent. Empty cells (a group
without positives, a stratum with a single group) are left out of the reductions, as in
training; a metric is undefined only when nothing is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._utils.array import Array, is_torch
from .._utils.validation import check_int
from ._groups import GroupEncoding, as_values, encode_groups
from ._hard import hard_predictions, hard_stats
from ._inputs import binary_labels, hard_outputs, resolve_pos_label
from ._rates import check_zero_division, confusion_table, spread
from ._stats import HardStats, regression_scores
from ._tasks import Task
from ._violation import _check_stats

__all__ = ["MetricReport", "evaluate_task", "ks_statistic", "metrics_from_stats"]

OutputKind = Literal["logits", "probabilities", "labels"]

METRIC_KEYS = {
    "detection": ("eod", "eo", "ks", "csp", "accuracy", "f1"),
    "classification": ("eod", "eo", "csp", "accuracy", "macro_f1"),
    "regression": ("ks", "csp", "ccc", "mae", "rmse"),
}


class MetricReport(dict[str, float]):
    """A ``dict[str, float]`` of metrics with ``undefined``: the reason for each NaN value.

    A value is NaN exactly when its key is in ``undefined`` (checked at construction);
    ``group_labels`` (from :func:`evaluate_task`) are the labels of the groups compared, in the
    order of their codes.

    Examples
    --------
    >>> r = MetricReport({"eod": float("nan"), "accuracy": 0.5}, undefined={"eod": "one group"})
    >>> r
    MetricReport({'eod': nan, 'accuracy': 0.5}, undefined={'eod': 'one group'})
    """

    def __init__(self, values: dict[str, float], *, undefined: dict[str, str] | None = None,
                 group_labels: tuple[Any, ...] | None = None):
        super().__init__(values)
        self.undefined: dict[str, str] = dict(undefined or {})
        self.group_labels = group_labels
        for k, v in self.items():
            if math.isnan(v) != (k in self.undefined):
                raise ValueError(f"metric {k!r}: a value is NaN exactly when a reason is recorded")

    def __repr__(self) -> str:
        return f"MetricReport({dict(self)!r}, undefined={self.undefined!r})"


class _Collector:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.undefined: dict[str, str] = {}

    def put(self, key: str, value: float | None, reason: str = "") -> None:
        if value is None or not math.isfinite(value):
            self.values[key] = math.nan
            self.undefined[key] = reason or "undefined"
        else:
            self.values[key] = float(value)

    def report(self, keys: tuple[str, ...]) -> MetricReport:
        return MetricReport({k: self.values[k] for k in keys}, undefined=self.undefined)


def _csp(stats: HardStats, fill: float | None = None) -> tuple[float | None, str]:
    """Class-averaged conditional statistical parity from the strata counts (with a numeric
    ``zero_division`` a stratum with a single group counts, with gap 0)."""
    n = np.asarray(stats["strata_count"])  # (S, G)
    q = np.asarray(stats["strata_pos"])  # (S, G, K)
    nonempty = n > 0
    valid_s = nonempty.sum(axis=1) >= (2 if fill is None else 1)
    if not valid_s.any():
        return None, "no stratum of conditioning has two groups with a labelled sample"
    weights = n.sum(axis=1)[valid_s]
    per_class = []
    for k in range(q.shape[2]):
        gaps = []
        for s in np.flatnonzero(valid_s):
            rates = q[s, nonempty[s], k] / n[s, nonempty[s]]
            gaps.append(rates.max() - rates.min())
        per_class.append(float(np.dot(weights, gaps) / weights.sum()))
    return float(np.mean(per_class)), ""


def metrics_from_stats(
    task: Task, stats: HardStats, *, zero_division: float | str = "empty"
) -> MetricReport:
    r"""Every metric of :func:`evaluate_task` except KS, from (summed) hard statistics.

    With the per-group hard rates of :mod:`fairmt_opt.fairness._rates` over the groups with a
    labelled sample:

    * :math:`\mathrm{EOD} = \max_g \mathrm{TPR}_g - \min_g \mathrm{TPR}_g` (detection; the mean
      over classes of the one-vs-rest EOD for classification);
    * :math:`\mathrm{EO} = \max(\Delta\mathrm{TPR}, \Delta\mathrm{FPR})` as fairlearn's
      ``equalized_odds_difference`` (class-averaged one-vs-rest);
    * CSP [choice of SPEC §3]: :math:`\sum_s n_s (\max_g q_{sg}/n_{sg} - \min_g q_{sg}/n_{sg})
      / \sum_s n_s` over the strata with two or more non-empty groups (class-averaged);
    * accuracy, F1 (detection), macro-F1 over the classes present in the labels or the
      predictions (classification, scikit-learn's default), and for regression MAE, RMSE and
      Lin's CCC :math:`2\sigma_{\hat y y} / (\sigma_{\hat y}^2 + \sigma_y^2 +
      (\mu_{\hat y} - \mu_y)^2)` over all labelled samples (population moments).

    ``zero_division`` (:func:`~fairmt_opt.fairness._rates.check_zero_division`): ``"empty"``
    (default) leaves a 0/0 rate (a group without labelled positives for TPR, without
    negatives for FPR) out of EOD and EO, and a term with fewer than two groups left has no
    comparison; ``0.0`` (fairlearn's convention) counts it as 0, so that the ranges run over
    every group with a labelled sample, a single group gives 0 (also a single-group stratum of
    CSP), and an undefined F1 is ``0.0``. Undefined metrics are NaN with the reason in
    ``.undefined`` (module docstring).

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, hard_stats, metrics_from_stats
    >>> t = Task("y", "detection")
    >>> s = hard_stats(t, [1., -1., 1., 1.], [1, 1, 0, 0], None, [0, 1, 0, 1], 2)
    >>> m = metrics_from_stats(t, s)  # TPR = (1, 0), FPR = (1, 1)
    >>> m["accuracy"], m["eod"], m["eo"]
    (0.25, 1.0, 1.0)

    With groups ``[0, 0, 1, 1]`` only group 0 has positives and only group 1 negatives:

    >>> s = hard_stats(t, [1., -1., 1., 1.], [1, 1, 0, 0], None, [0, 0, 1, 1], 2)
    >>> m = metrics_from_stats(t, s)
    >>> m["eod"], m.undefined["eod"]
    (nan, 'fewer than two groups have a labelled positive')
    >>> metrics_from_stats(t, s, zero_division=0.0)["eod"]  # fairlearn: TPR = (0.5, 0)
    0.5
    """
    _check_stats(task, stats)
    if not isinstance(stats, HardStats):
        raise ValueError(f"stats must be HardStats (from hard_stats), got {type(stats).__name__}")
    fill = check_zero_division(zero_division)
    c = _Collector()
    s = {k: np.asarray(v, dtype=np.float64) for k, v in stats.sums.items()}
    keys = tuple(k for k in METRIC_KEYS[task.kind] if k != "ks")
    if task.kind == "regression":
        n = float(s["n"].sum())
    else:
        n = float(s["pos"][:, 0].sum() + s["neg"][:, 0].sum())
    if n == 0:
        for k in keys:
            c.put(k, None, "no labelled sample")
        return c.report(keys)

    csp, why = _csp(stats, fill)
    c.put("csp", csp, why)
    if task.kind == "regression":
        sc, ok = regression_scores(stats, ("mae", "rmse", "ccc"), overall=True)
        c.put("mae", float(sc["mae"][0]))
        c.put("rmse", float(sc["rmse"][0]))
        c.put("ccc", float(sc["ccc"][0]) if bool(ok["ccc"][0]) else None,
              "predictions and targets are one and the same constant")
        return c.report(keys)

    table = confusion_table({k: s[k] for k in ("tp", "pos", "fp", "neg")}, fill)
    K = task.out_dim
    dt = [spread(table["tpr"][0][:, k], table["tpr"][1][:, k], fill)[0] for k in range(K)]
    df = [spread(table["fpr"][0][:, k], table["fpr"][1][:, k], fill)[0] for k in range(K)]
    eo_k = [a if b is None else b if a is None else max(a, b) for a, b in zip(dt, df)]
    in_any = " in any class" if task.kind == "classification" else ""
    few = "fewer than two groups" if fill is None else "no group"
    c.put("eod", _mean_or_none(dt), f"{few} have a labelled positive{in_any}")
    c.put("eo", _mean_or_none(eo_k), f"{few} have a labelled positive and {few} a labelled "
          f"negative{in_any}")
    TP, P, FP = s["tp"].sum(axis=0), s["pos"].sum(axis=0), s["fp"].sum(axis=0)
    FN = P - TP
    if task.kind == "detection":
        overall = confusion_table({k: s[k].sum(axis=0) for k in ("tp", "pos", "fp", "neg")},
                                  fill)
        c.put("accuracy", float(overall["accuracy"][0][0]))
        den = 2 * TP[0] + FP[0] + FN[0]
        f1 = 2 * TP[0] / den if den > 0 else fill
        c.put("f1", f1, "no positive label and no positive prediction")
        return c.report(keys)
    c.put("accuracy", TP.sum() / n)
    den = 2 * TP + FP + FN
    present = den > 0
    c.put("macro_f1", float(np.mean(2 * TP[present] / den[present])))
    return c.report(keys)


def _mean_or_none(x: list[float | None]) -> float | None:
    v = [a for a in x if a is not None]
    return float(np.mean(v)) if v else None


def ks_statistic(a: Array, b: Array, *, weights_a: Array | None = None,
                 weights_b: Array | None = None) -> float:
    r"""Two-sample Kolmogorov–Smirnov statistic :math:`\sup_x |F_a(x) - F_b(x)|`.

    :math:`F` are the empirical distribution functions, weighted when weights are given
    (:math:`F_a(x) = \sum_i w_i [a_i \le x] / \sum_i w_i`; integer weights equal repeated
    samples). Unweighted, the same arithmetic as ``scipy.stats.ks_2samp(a, b).statistic``;
    cost :math:`O((n_a + n_b) \log(n_a + n_b))`.

    Examples
    --------
    >>> from fairmt_opt.fairness import ks_statistic
    >>> ks_statistic([0.0, 1.0, 2.0], [1.5, 2.5])
    0.6666666666666666
    >>> ks_statistic([0.0, 2.0], [1.5, 2.5], weights_a=[2, 1])  # a = (0, 0, 2)
    0.6666666666666666
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError("ks_statistic needs two non-empty samples")
    cdfs = []
    for v, w, nm in ((x, weights_a, "weights_a"), (y, weights_b, "weights_b")):
        if w is None:
            cw = np.arange(1, v.size + 1, dtype=np.float64)
            order = np.argsort(v, kind="stable")
        else:
            wv = np.asarray(w, dtype=np.float64).ravel()
            if wv.shape != v.shape or not np.all(np.isfinite(wv)) or np.any(wv < 0):
                raise ValueError(f"{nm} must be finite nonnegative weights, one per sample")
            if not wv.sum() > 0:
                raise ValueError(f"{nm} must not all be zero")
            order = np.argsort(v, kind="stable")
            cw = np.cumsum(wv[order])
        cdfs.append((v[order], cw / cw[-1]))
    allv = np.concatenate([x, y])
    vals = []
    for v, cdf in cdfs:
        idx = np.searchsorted(v, allv, side="right")
        vals.append(np.where(idx > 0, cdf[np.maximum(idx - 1, 0)], 0.0))
    return float(np.max(np.abs(vals[0] - vals[1])))


@dataclass(frozen=True)
class Prepared:
    """Inputs of one task normalised for the hard statistics (see :func:`prepare_hard`)."""

    z: np.ndarray
    scores: np.ndarray | None
    y: Any
    m: np.ndarray
    encoding: GroupEncoding
    num_groups: int
    weight: np.ndarray | None
    conditioning: Any
    pos_label: Any


def prepare_hard(
    task: Task, outputs: Any, targets: Any, mask: Any, groups: Any, num_groups: Any = None, *,
    output: str | None = None, pos_label: Any = None, sample_weight: Any = None,
    conditioning: Any = None, intersections: str = "present", feature_names: str = "any",
) -> Prepared:
    """Normalise the inputs of :func:`evaluate_task` and :func:`~fairmt_opt.fairness.by_group`
    (pandas, group labels, detection labels, the declared kind of outputs, the weights)."""
    if not isinstance(task, Task):
        raise ValueError(f"task must be a Task, got {type(task).__name__}")
    if outputs is None:
        raise ValueError("outputs must be an array, got None")
    if num_groups is not None:
        check_int(num_groups, "num_groups", minimum=2)
    # a single value (a Python or NumPy scalar, a 0-d array) is one sample, as in fairlearn
    outputs, targets = (np.reshape(x, (1,)) if isinstance(x, bool | int | float | str | np.generic)
                        or (isinstance(x, np.ndarray) and x.ndim == 0) else x
                        for x in (outputs, targets))
    ov = as_values(outputs, "outputs")
    N = len(ov) if not hasattr(ov, "shape") else int(ov.shape[0])
    enc = encode_groups(groups, num_groups, intersections=intersections,
                        feature_names=feature_names)
    if enc.codes.shape != (N,):
        raise ValueError(f"groups must have shape ({N},) like outputs, got {enc.codes.shape}")
    if mask is None:
        m = np.ones(N, dtype=bool)
    else:
        mv = as_values(mask, "mask")
        mv = np.asarray(mv.detach().cpu().numpy() if is_torch(mv) else mv)
        if mv.shape != (N,):
            raise ValueError(f"mask must have shape ({N},) like outputs, got {mv.shape}")
        if mv.dtype != np.bool_ and not np.all((mv == 0) | (mv == 1)):
            raise ValueError("mask must be boolean (or hold only 0 and 1)")
        m = mv != 0
    y: Any = targets
    pos = pos_label
    if task.kind == "detection":
        if targets is None:
            raise ValueError("targets must be an array, got None")
        tv = as_values(targets, "targets")
        tv = np.asarray(tv.detach().cpu().numpy() if is_torch(tv) else tv)
        if tv.ndim == 2 and tv.shape[1] == 1:
            tv = tv[:, 0]
        if tv.shape != (N,):
            raise ValueError(f"targets must have shape ({N},) like outputs, got {tv.shape}")
        others: tuple[np.ndarray, ...] = ()
        if output == "labels":
            ov = as_values(outputs, "outputs")
            ov = np.asarray(ov.detach().cpu().numpy() if is_torch(ov) else ov).reshape(-1)
            if ov.shape == (N,):
                others = (ov[m],)
        lab = tv[m]
        if lab.dtype.kind == "f" and not np.all(np.isfinite(lab)):
            raise ValueError("targets contains NaN or inf on a labelled sample")
        pos = resolve_pos_label(pos_label, lab, *others)
        y = binary_labels(tv, m, pos)
    z, scores = hard_outputs(task, outputs, m, output, pos_label=pos, targets=None)
    from ._stats import check_sample_weight

    w = check_sample_weight(as_values(sample_weight, "sample_weight"), N)
    if w is not None and N and m.any() and not float(w[m].sum()) > 0:
        raise ValueError("sample_weight is 0 on every labelled sample: nothing to evaluate")
    if conditioning is not None:
        conditioning = as_values(conditioning, "conditioning")
    return Prepared(z, scores, y, m, enc, max(enc.num_groups, 2), w, conditioning, pos)


def prepared_stats(task: Task, p: Prepared, *, num_strata: int | None = None,
                   train_median: float | None = None) -> HardStats:
    """:func:`hard_stats` of prepared inputs (with at least two group slots: a single
    inferred group gets an empty second slot, which every reduction leaves out)."""
    kw: dict[str, Any] = {}
    if p.weight is not None:
        kw["sample_weight"] = p.weight
    return hard_stats(task, p.z, p.y, p.m, p.encoding.codes, p.num_groups,
                      conditioning=p.conditioning, num_strata=num_strata,
                      train_median=train_median, **kw)


def _ks(task: Task, p: Prepared) -> tuple[float | None, str]:
    vals = p.scores if task.kind == "detection" else hard_predictions(task, p.z)
    assert vals is not None
    samples = []
    for g in range(p.encoding.num_groups):
        sel = p.m & (p.encoding.codes == g)
        if p.weight is not None:
            sel = sel & (p.weight > 0)
        if sel.any():
            samples.append((vals[sel], None if p.weight is None else p.weight[sel]))
    if len(samples) < 2:
        return None, "fewer than two groups have a labelled sample"
    best = 0.0
    for i in range(len(samples)):
        for j in range(i + 1, len(samples)):
            best = max(best, ks_statistic(samples[i][0], samples[j][0],
                                          weights_a=samples[i][1], weights_b=samples[j][1]))
    return best, ""


def evaluate_task(
    task: Task,
    outputs: Array,
    targets: Array,
    mask: Array | None,
    groups: Any,
    num_groups: int | None = None,
    *,
    conditioning: Array | None = None,
    train_median: float | None = None,
    output: OutputKind | None = None,
    pos_label: Any = None,
    sample_weight: Array | None = None,
    zero_division: float | str = "empty",
) -> MetricReport:
    r"""Hard evaluation metrics of one task over its labelled samples (SPEC §3).

    Keys — detection: ``eod``, ``eo``, ``ks``, ``csp``, ``accuracy``, ``f1``; classification:
    ``eod``, ``eo``, ``csp``, ``accuracy``, ``macro_f1``; regression: ``ks``, ``csp``, ``ccc``,
    ``mae``, ``rmse``. Predictions are :math:`[z > 0]` (detection) and :math:`\arg\max_k z_k`
    (classification); KS compares the group distributions of :math:`\sigma(z)` (detection) or of
    the predictions (regression): :math:`\max_{g < g'} \sup_x |F_g(x) - F_{g'}(x)|` over the
    groups with a labelled sample. All other metrics are those of :func:`metrics_from_stats`
    applied to :func:`hard_stats`. Unlabelled samples never count (also for CSP and KS).

    Parameters
    ----------
    task : Task
    outputs : array-like, pandas Series or one-column DataFrame
        Of the kind ``output`` declares (NumPy arrays, lists, torch tensors, pandas).
    targets, mask
        As in :func:`hard_stats`; detection targets may be any two labels (``pos_label``).
    groups : array-like, Series or DataFrame
        Group labels (any hashable labels, or several sensitive features whose intersections
        are the groups: :func:`encode_groups`); with ``num_groups`` integer codes.
    num_groups : int, optional
        ``None`` (default): inferred from the labels (``.group_labels`` of the report).
    conditioning : array of int, optional
        Stratum of every sample for CSP (``None``: one stratum, i.e. demographic parity).
    train_median : float, optional
        Regression threshold for CSP (default: median of the labelled targets passed).
    output : {"logits", "probabilities", "labels"}, optional
        The kind of ``outputs`` (:func:`~fairmt_opt.fairness._inputs.hard_outputs`). Default
        ``None``: logits, not declared; then detection outputs that all lie in [0, 1] and
        classification rows that are all probability vectors raise a ``UserWarning`` naming
        ``output=`` (pass ``output="logits"`` to declare logits and silence it).
    pos_label : optional
        The positive detection label (default 1 for labels in {0, 1} or {-1, 1}, ``True``
        for booleans; other labels must name it). Applies to targets and, with
        ``output="labels"``, to the outputs.
    sample_weight : array of shape (N,), optional
        Finite nonnegative weights (scikit-learn's and fairlearn's semantics: every count and
        sum, KS's distributions and the CSP median included, is weighted); not all zero on the
        labelled samples.
    zero_division : {"empty", 0.0, 1.0}, default "empty"
        The 0/0 convention of the rates (:func:`metrics_from_stats`); ``0.0`` is fairlearn's.

    Returns
    -------
    MetricReport
        A ``dict[str, float]``; a metric is NaN exactly when ``.undefined`` records why:
        ``"no labelled sample"`` (every metric), ``"fewer than two groups have a labelled
        positive"`` (EOD), the same for positives and negatives (EO), ``"fewer than two groups
        have a labelled sample"`` (KS), no stratum with two non-empty groups (CSP), no
        positive label and no positive prediction (F1), predictions and targets one and the
        same constant (CCC). Empty cells are left out first; a metric is undefined only when
        nothing is left. ``.group_labels``: the group of each code.

    Notes
    -----
    Cost :math:`O(N K |G| + |G|^2 N \log N)`. The 0/0 cases under ``zero_division="empty"``:

    * a group without a labelled positive: its TPR is empty, left out of EOD and of EO's TPR
      term (fairlearn, ``zero_division=0.0``: TPR 0, counted);
    * a group without a labelled negative: its FPR is empty, left out of EO's FPR term
      (fairlearn: FPR 0);
    * a single group with labelled samples (or a single one with positives): no comparison,
      EOD/EO/KS/CSP undefined (fairlearn: difference 0; ``zero_division=0.0`` gives 0 for EOD,
      EO and CSP; KS stays undefined);
    * an empty group (a code of ``num_groups`` without any labelled sample, or of zero total
      weight): no value under either convention, never counted;
    * a CSP stratum with fewer than two groups: left out (``0.0``: gap 0, counted);
    * F1 without positive labels and positive predictions: undefined (``0.0``: 0.0).

    Outputs must be finite on every row, labelled or not (the rule of the torch batch
    check, :mod:`fairmt_opt.fairness._finite`): a NaN or an infinity raises ``ValueError``
    naming the task and the first bad row. Targets need only be finite where labelled. A
    single value (a scalar) is one sample.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, evaluate_task
    >>> m = evaluate_task(Task("y", "detection"), [2., -1., 1., -3., 2., 1.], [1, 1, 0, 1, 1, 0],
    ...                   None, [0, 0, 0, 1, 1, 1])
    >>> {k: round(v, 4) for k, v in m.items()}
    {'eod': 0.0, 'eo': 0.0, 'ks': 0.3333, 'csp': 0.0, 'accuracy': 0.3333, 'f1': 0.5}

    Labels, string groups and fairlearn's convention:

    >>> m = evaluate_task(Task("y", "detection"), ["yes", "no", "yes", "no"],
    ...                   ["yes", "yes", "no", "no"], None, ["a", "a", "b", "b"],
    ...                   output="labels", pos_label="yes", zero_division=0.0)
    >>> m["eod"], m["eo"], m.group_labels  # TPR (0.5, 0), FPR (0, 0.5): b has no positive
    (0.5, 0.5, ('a', 'b'))
    """
    p = prepare_hard(task, outputs, targets, mask, groups, num_groups, output=output,
                     pos_label=pos_label, sample_weight=sample_weight, conditioning=conditioning)
    m = metrics_from_stats(task, prepared_stats(task, p, train_median=train_median),
                           zero_division=zero_division)
    values = dict(m)
    undefined = dict(m.undefined)
    if task.kind != "classification":
        ks, why = _ks(task, p)
        if ks is None:
            values["ks"] = math.nan
            undefined["ks"] = "no labelled sample" if not p.m.any() else why
        else:
            values["ks"] = ks
    keys = METRIC_KEYS[task.kind]
    return MetricReport({k: values[k] for k in keys}, undefined=undefined,
                        group_labels=p.encoding.labels)
