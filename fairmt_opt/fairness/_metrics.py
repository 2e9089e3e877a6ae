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
from typing import Any

import numpy as np

from .._utils.array import Array
from ._stats import HardStats, hard_predictions, hard_stats
from ._tasks import Task
from ._violation import _check_stats, group_rates

__all__ = ["MetricReport", "evaluate_task", "ks_statistic", "metrics_from_stats"]

METRIC_KEYS = {
    "detection": ("eod", "eo", "ks", "csp", "accuracy", "f1"),
    "classification": ("eod", "eo", "csp", "accuracy", "macro_f1"),
    "regression": ("ks", "csp", "ccc", "mae", "rmse"),
}


class MetricReport(dict[str, float]):
    """A ``dict[str, float]`` of metrics with ``undefined``: the reason for each NaN value.

    A value is NaN exactly when its key is in ``undefined`` (checked at construction).

    Examples
    --------
    >>> r = MetricReport({"eod": float("nan"), "accuracy": 0.5}, undefined={"eod": "one group"})
    >>> r
    MetricReport({'eod': nan, 'accuracy': 0.5}, undefined={'eod': 'one group'})
    """

    def __init__(self, values: dict[str, float], *, undefined: dict[str, str] | None = None):
        super().__init__(values)
        self.undefined: dict[str, str] = dict(undefined or {})
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


def _range_valid(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """max - min over valid cells of each column; NaN where fewer than two valid cells."""
    out = np.full(r.shape[1], np.nan)
    for k in range(r.shape[1]):
        vals = r[v[:, k], k]
        if vals.size >= 2:
            out[k] = float(vals.max() - vals.min())
    return out


def _nanmean_or_none(x: np.ndarray) -> float | None:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else None


def _csp(stats: HardStats) -> tuple[float | None, str]:
    """Class-averaged conditional statistical parity from the strata counts."""
    n = np.asarray(stats["strata_count"])  # (S, G)
    q = np.asarray(stats["strata_pos"])  # (S, G, K)
    nonempty = n > 0
    valid_s = nonempty.sum(axis=1) >= 2
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


def metrics_from_stats(task: Task, stats: HardStats) -> MetricReport:
    r"""Every metric of :func:`evaluate_task` except KS, from (summed) hard statistics.

    With the per-group hard rates of :func:`group_rates` over the non-empty cells:

    * :math:`\mathrm{EOD} = \max_g \mathrm{TPR}_g - \min_g \mathrm{TPR}_g` (detection; the mean
      over classes of the one-vs-rest EOD for classification);
    * :math:`\mathrm{EO} = \max(\Delta\mathrm{TPR}, \Delta\mathrm{FPR})` as fairlearn's
      ``equalized_odds_difference`` (class-averaged one-vs-rest); a term with fewer than two
      non-empty groups is left out;
    * CSP [choice of SPEC §3]: :math:`\sum_s n_s (\max_g q_{sg}/n_{sg} - \min_g q_{sg}/n_{sg})
      / \sum_s n_s` over the strata with two or more non-empty groups (class-averaged);
    * accuracy, F1 (detection), macro-F1 over the classes present in the labels or the
      predictions (classification, scikit-learn's default), and for regression MAE, RMSE and
      Lin's CCC :math:`2\sigma_{\hat y y} / (\sigma_{\hat y}^2 + \sigma_y^2 +
      (\mu_{\hat y} - \mu_y)^2)` over all labelled samples (population moments from sums).

    Undefined metrics are NaN with the reason in ``.undefined`` (module docstring).

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, hard_stats, metrics_from_stats
    >>> t = Task("y", "detection")
    >>> s = hard_stats(t, [1., -1., 1., 1.], [1, 1, 0, 0], None, [0, 1, 0, 1], 2)
    >>> m = metrics_from_stats(t, s)  # TPR = (1, 0), FPR = (1, 1)
    >>> m["accuracy"], m["eod"], m["eo"]
    (0.25, 1.0, 1.0)

    With groups ``[0, 0, 1, 1]`` only group 0 has positives and only group 1 negatives:

    >>> m = metrics_from_stats(t, hard_stats(t, [1., -1., 1., 1.], [1, 1, 0, 0], None,
    ...                                      [0, 0, 1, 1], 2))
    >>> m["eod"], m.undefined["eod"]
    (nan, 'fewer than two groups have a labelled positive')
    """
    _check_stats(task, stats)
    if not isinstance(stats, HardStats):
        raise ValueError(f"stats must be HardStats (from hard_stats), got {type(stats).__name__}")
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

    csp, why = _csp(stats)
    c.put("csp", csp, why)
    if task.kind == "regression":
        tot = {k: float(s[k].sum()) for k in ("abs_err", "sq_err", "pred", "target",
                                              "pred_sq", "target_sq", "cross")}
        c.put("mae", tot["abs_err"] / n)
        c.put("rmse", math.sqrt(tot["sq_err"] / n))
        mp, mt = tot["pred"] / n, tot["target"] / n
        vp = tot["pred_sq"] / n - mp * mp
        vt = tot["target_sq"] / n - mt * mt
        cov = tot["cross"] / n - mp * mt
        den = vp + vt + (mp - mt) ** 2
        eps = 64 * np.finfo(np.float64).eps * (tot["pred_sq"] + tot["target_sq"]) / n
        if den > eps:
            c.put("ccc", 2 * cov / den)
        else:
            c.put("ccc", None, "predictions and targets are one and the same constant")
        return c.report(keys)

    rates, valid = group_rates(task, stats)
    tpr, vt_ = np.asarray(rates["tpr"]), np.asarray(valid["tpr"])
    fpr, vf_ = np.asarray(rates["fpr"]), np.asarray(valid["fpr"])
    dt = _range_valid(tpr, vt_)
    df = _range_valid(fpr, vf_)
    eo_k = np.where(np.isnan(dt), df, np.where(np.isnan(df), dt, np.maximum(dt, df)))
    c.put("eod", _nanmean_or_none(dt), "fewer than two groups have a labelled positive"
          + (" in any class" if task.kind == "classification" else ""))
    c.put("eo", _nanmean_or_none(eo_k), "fewer than two groups have a labelled positive and "
          "fewer than two a labelled negative" + (" in any class" if
                                                  task.kind == "classification" else ""))
    TP, P, FP = s["tp"].sum(axis=0), s["pos"].sum(axis=0), s["fp"].sum(axis=0)
    FN = P - TP
    if task.kind == "detection":
        correct = TP[0] + (s["neg"][:, 0].sum() - FP[0])
        c.put("accuracy", correct / n)
        den = 2 * TP[0] + FP[0] + FN[0]
        c.put("f1", 2 * TP[0] / den if den > 0 else None,
              "no positive label and no positive prediction")
        return c.report(keys)
    c.put("accuracy", TP.sum() / n)
    den = 2 * TP + FP + FN
    present = den > 0
    c.put("macro_f1", float(np.mean(2 * TP[present] / den[present])))
    return c.report(keys)


def ks_statistic(a: Array, b: Array) -> float:
    r"""Two-sample Kolmogorov–Smirnov statistic :math:`\sup_x |F_a(x) - F_b(x)|`.

    Same arithmetic as ``scipy.stats.ks_2samp(a, b).statistic``; cost
    :math:`O((n_a + n_b) \log(n_a + n_b))`.

    Examples
    --------
    >>> from fairmt_opt.fairness import ks_statistic
    >>> ks_statistic([0.0, 1.0, 2.0], [1.5, 2.5])
    0.6666666666666666
    """
    x = np.sort(np.asarray(a, dtype=np.float64).ravel())
    y = np.sort(np.asarray(b, dtype=np.float64).ravel())
    if x.size == 0 or y.size == 0:
        raise ValueError("ks_statistic needs two non-empty samples")
    allv = np.concatenate([x, y])
    cx = np.searchsorted(x, allv, side="right") / x.size
    cy = np.searchsorted(y, allv, side="right") / y.size
    return float(np.max(np.abs(cx - cy)))


def _ks(task: Task, outputs: Any, mask: np.ndarray, groups: np.ndarray, G: int) -> tuple[
    float | None, str
]:
    if task.kind == "detection":
        from scipy.special import expit

        vals = expit(np.asarray(outputs, dtype=np.float64).reshape(-1))
    else:
        vals = hard_predictions(task, outputs)
    samples = [vals[mask & (groups == g)] for g in range(G)]
    samples = [x for x in samples if x.size]
    if len(samples) < 2:
        return None, "fewer than two groups have a labelled sample"
    best = 0.0
    for i in range(len(samples)):
        for j in range(i + 1, len(samples)):
            best = max(best, ks_statistic(samples[i], samples[j]))
    return best, ""


def evaluate_task(
    task: Task,
    outputs: Array,
    targets: Array,
    mask: Array | None,
    groups: Array,
    num_groups: int,
    *,
    conditioning: Array | None = None,
    train_median: float | None = None,
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
    task, outputs, targets, mask, groups, num_groups
        As in :func:`hard_stats` (NumPy arrays, lists or torch tensors).
    conditioning : array of int, optional
        Stratum of every sample for CSP (``None``: one stratum, i.e. demographic parity).
    train_median : float, optional
        Regression threshold for CSP (default: median of the labelled targets passed).

    Returns
    -------
    MetricReport
        A ``dict[str, float]``; a metric is NaN exactly when ``.undefined`` records why:
        ``"no labelled sample"`` (every metric), ``"fewer than two groups have a labelled
        positive"`` (EOD), the same for positives and negatives (EO), ``"fewer than two groups
        have a labelled sample"`` (KS), no stratum with two non-empty groups (CSP), no
        positive label and no positive prediction (F1), predictions and targets one and the
        same constant (CCC). Empty cells are left out first; a metric is undefined only when
        nothing is left.

    Notes
    -----
    Cost :math:`O(N K |G| + |G|^2 N \log N)`. Groups without positives are *left out* of EOD
    and EO; fairlearn instead counts their TPR as 0.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, evaluate_task
    >>> m = evaluate_task(Task("y", "detection"), [2., -1., 1., -3., 2., 1.], [1, 1, 0, 1, 1, 0],
    ...                   None, [0, 0, 0, 1, 1, 1], 2)
    >>> {k: round(v, 4) for k, v in m.items()}
    {'eod': 0.0, 'eo': 0.0, 'ks': 0.3333, 'csp': 0.0, 'accuracy': 0.3333, 'f1': 0.5}
    """
    stats = hard_stats(
        task, outputs, targets, mask, groups, num_groups,
        conditioning=conditioning, train_median=train_median,
    )
    m = metrics_from_stats(task, stats)
    values = dict(m)
    undefined = dict(m.undefined)
    if task.kind != "classification":
        from ._stats import _to_numpy_any

        z = np.asarray(_to_numpy_any(outputs), dtype=np.float64)
        msk = (
            np.ones(z.shape[0], dtype=bool) if mask is None
            else np.asarray(_to_numpy_any(mask)) != 0
        )
        g = np.asarray(_to_numpy_any(groups)).astype(np.int64)
        ks, why = _ks(task, z, msk, g, num_groups)
        if ks is None:
            values["ks"] = math.nan
            undefined["ks"] = "no labelled sample" if not msk.any() else why
        else:
            values["ks"] = ks
    keys = METRIC_KEYS[task.kind]
    return MetricReport({k: values[k] for k in keys}, undefined=undefined)
