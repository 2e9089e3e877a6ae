r"""Per-group rates of the studies (``groups.csv``) and the summary metrics of a task.

Everything here is computed by the fairness layer: :func:`fairmt_opt.fairness.by_group`
(the rates of ``groups.csv``), :func:`fairmt_opt.fairness.hard_stats` (counts per group and
class), :func:`fairmt_opt.fairness.group_rates` (the headline rate of the verdicts) and
:func:`fairmt_opt.fairness.metrics_from_stats` / :func:`fairmt_opt.fairness.evaluate_task`
(EO, KS and the utility metrics of a task).

Rows of ``groups.csv`` (:data:`GROUP_COLUMNS`): ``method, seed, split, task, group, metric,
value, count``, where ``count`` is the denominator of the rate (labelled positives for a TPR,
labelled negatives for an FPR, labelled samples for accuracy and MAE):

=============== ==========================================================================
task kind       metrics per group
=============== ==========================================================================
detection       ``tpr``, ``fpr``, ``accuracy``
classification  ``tpr[c]``, ``fpr[c]``, ``accuracy[c]`` per class ``c`` (one-vs-rest),
                ``macro_tpr`` (the mean of ``tpr[c]`` over the classes with a labelled
                sample: the balanced accuracy within the group), ``accuracy``
regression      ``mae``
=============== ==========================================================================

A rate whose denominator is empty in a group (no labelled positive, ...) is left out (no NaN
row). The *headline* rate of a group (:data:`HEADLINE_RATE`: TPR, macro TPR, MAE) is the one
the verdicts of the studies follow: the lift-only constraints of FairMT raise the worst
group's TPR (lower its MAE) towards the best group's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fairness import (
    Task,
    by_group,
    evaluate_task,
    group_rates,
    hard_predictions,
    hard_stats,
    metrics_from_stats,
)

__all__ = ["FAIRNESS_METRIC", "GROUP_COLUMNS", "HEADLINE_RATE", "UTILITY_METRIC",
           "HeadlineResampler", "SummaryResampler", "group_rate_rows", "headline_rates",
           "summary_metrics"]

#: the fairness metric and the utility metric that summarise each task kind
FAIRNESS_METRIC = {"detection": "eo", "classification": "eo", "regression": "ks"}
UTILITY_METRIC = {"detection": "accuracy", "classification": "accuracy", "regression": "ccc"}
#: the per-group rate of each task kind the verdicts follow, and whether higher is better
HEADLINE_RATE: dict[str, tuple[str, bool]] = {
    "detection": ("tpr", True), "classification": ("macro_tpr", True),
    "regression": ("mae", False)}

GROUP_COLUMNS = ("method", "seed", "split", "task", "group", "metric", "value", "count")


def _rates(task: Task, stats: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rates, valid = group_rates(task, stats, regression_score="mae")
    return ({k: np.asarray(v, dtype=np.float64) for k, v in rates.items()},
            {k: np.asarray(v, dtype=bool) for k, v in valid.items()})


def headline_rates(task: Task, stats: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""The headline rate of every group (:data:`HEADLINE_RATE`) from hard statistics.

    Detection :math:`\mathrm{TPR}_g`; classification the mean over the classes with a labelled
    positive in :math:`g` of the one-vs-rest :math:`\mathrm{TPR}_{gc}`; regression
    :math:`\mathrm{MAE}_g`, all from :func:`fairmt_opt.fairness.group_rates`. Returns
    ``(values, valid)`` of shape ``(G,)``; an invalid group (empty denominator) holds NaN.
    Cost :math:`O(GK)`.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, hard_stats
    >>> t = Task("y", "detection")
    >>> s = hard_stats(t, [1.0, -1.0, 1.0, -1.0], [1, 1, 1, 0], None, [0, 0, 1, 1], 2)
    >>> headline_rates(t, s)
    (array([0.5, 1. ]), array([ True,  True]))
    """
    rates, valid = _rates(task, stats)
    if task.kind == "regression":
        ok = valid["score"]
        return np.where(ok, -rates["score"], np.nan), ok
    tpr, ok = rates["tpr"], valid["tpr"]
    n_ok = ok.sum(axis=1)
    mean = np.where(ok, tpr, 0.0).sum(axis=1) / np.maximum(n_ok, 1)
    return np.where(n_ok > 0, mean, np.nan), n_ok > 0


def summary_metrics(task: Task, outputs: Any, targets: Any, mask: Any, groups: Any,
                    num_groups: int, *, train_median: float | None = None
                    ) -> tuple[float, float, np.ndarray]:
    r"""The fairness metric, the utility metric (:data:`FAIRNESS_METRIC`,
    :data:`UTILITY_METRIC`) and the headline group rates (:func:`headline_rates`) of one task
    on one sample, the quantities every verdict of the studies compares.

    Detection and classification: EO and accuracy by
    :func:`fairmt_opt.fairness.metrics_from_stats`; regression: KS and CCC by
    :func:`fairmt_opt.fairness.evaluate_task`. Undefined values are NaN (the bootstrap of
    :func:`~fairmt_opt.studies._verdicts.bootstrap_intervals` leaves such resamples out).
    Cost :math:`O(N K G)` (regression :math:`O(G^2 N \log N)` for KS).

    Examples
    --------
    >>> from fairmt_opt.fairness import Task
    >>> eo, acc, tpr = summary_metrics(Task("y", "detection"), [1.0, -1.0, 1.0, -1.0],
    ...                                [1, 1, 1, 0], None, [0, 0, 1, 1], 2)
    >>> eo, acc, tpr.tolist()
    (0.5, 0.75, [0.5, 1.0])
    """
    stats = hard_stats(task, outputs, targets, mask, groups, num_groups,
                       train_median=train_median)
    fk, uk = FAIRNESS_METRIC[task.kind], UTILITY_METRIC[task.kind]
    if task.kind == "regression":
        rep = evaluate_task(task, outputs, targets, mask, groups, num_groups,
                            train_median=train_median)
    else:
        rep = metrics_from_stats(task, stats)
    return float(rep[fk]), float(rep[uk]), headline_rates(task, stats)[0]


class SummaryResampler:
    r"""Everything :func:`summary_metrics` gives (fairness metric, utility metric, headline
    group rates) for one task and one model on bootstrap resamples of a sample: the same
    numbers, bit for bit, as :func:`summary_metrics` on the resampled rows, but cheaper.

    Detection and classification: every row falls into one *cell* (group, label, predicted
    class, labelled), and the hard counts of a resample are those of the cells weighted by
    how often the resample draws each (:func:`fairmt_opt.fairness.hard_stats` with
    ``sample_weight``). The counts are exact integers either way, and EO, accuracy and the
    headline rates are functions of the counts alone
    (:func:`fairmt_opt.fairness.metrics_from_stats`, :func:`headline_rates`); cost
    :math:`O(N)` for the counts plus :math:`O(C K G)` for ``C`` cells instead of
    :math:`O(N K G)`.

    Regression: the MAE per group and the CCC from :func:`fairmt_opt.fairness.hard_stats` on
    the rows ``idx`` (their sums are not integers: a weighted sum would round differently),
    :math:`O(N G)`; KS from the labelled predictions sorted once: the empirical distribution
    function of group :math:`g` at :math:`x` is :math:`c_g(x) / n_g` with :math:`c_g(x)` the
    resample's draws of the group's rows at or below :math:`x` (exact integer cumulative
    sums), evaluated at every distinct value and then maximised over pairs of groups, the
    same divisions and the same maximum as :func:`fairmt_opt.fairness.ks_statistic` on the
    resampled rows, :math:`O(N G + G^2 N)` per resample instead of
    :math:`O(G^2 N \log N)`.

    ``whole`` holds :func:`summary_metrics` of the whole sample (computed at construction,
    which also checks the inputs). :meth:`rates` gives the headline rates alone (cheaper:
    no EO, accuracy, KS or CCC).

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness import Task
    >>> t = Task("y", "detection")
    >>> z, y = np.array([1.0, -1.0, 1.0, -1.0, 2.0]), np.array([1, 1, 1, 0, 1])
    >>> g = np.array([0, 0, 1, 1, 0])
    >>> r = SummaryResampler(t, z, y, None, g, 2)
    >>> idx = np.array([0, 1, 1, 4, 2])
    >>> r(idx)
    (0.5, 0.6, array([0.5, 1. ]))
    >>> summary_metrics(t, z[idx], y[idx], None, g[idx], 2)
    (0.5, 0.6, array([0.5, 1. ]))
    """

    def __init__(self, task: Task, outputs: Any, targets: Any, mask: Any, groups: Any,
                 num_groups: int) -> None:
        self.task, self.num_groups = task, int(num_groups)
        self.whole = summary_metrics(task, outputs, targets, mask, groups, num_groups)
        self.z = np.asarray(outputs, dtype=np.float64)
        self.y = np.asarray(targets)
        n = self.y.shape[0]
        self.m = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        self.g = np.asarray(groups).astype(np.int64)
        self.cells: np.ndarray | None = None
        if task.kind != "regression":
            pred = hard_predictions(task, self.z).astype(np.int64)
            # the label's code (0 on unlabelled rows, whose labels are never read)
            labels, ycode = np.unique(np.where(self.m, self.y, 0), return_inverse=True)
            key = ((self.g * labels.shape[0] + ycode.reshape(-1)) * max(task.out_dim, 2)
                   + pred) * 2 + self.m
            _, self.rep, cells = np.unique(key, return_index=True, return_inverse=True)
            self.cells = cells.reshape(-1)
        else:
            # KS: the labelled rows in the order of their predictions, the group of each,
            # and the last position of every run of equal predictions
            lab = np.flatnonzero(self.m)
            pred = hard_predictions(task, self.z)[lab]
            order = np.argsort(pred, kind="stable")
            self.ks_rows = lab[order]
            v = pred[order]
            self.ks_onehot = (self.g[self.ks_rows][None, :]
                              == np.arange(self.num_groups)[:, None])
            self.ks_last = np.flatnonzero(np.append(v[1:] != v[:-1], True))

    def stats(self, idx: np.ndarray) -> Any:
        """:func:`fairmt_opt.fairness.hard_stats` of the rows ``idx`` (detection and
        classification: of the cells, weighted; the same integer counts)."""
        t, G = self.task, self.num_groups
        if self.cells is None:
            return hard_stats(t, self.z[idx], self.y[idx], self.m[idx], self.g[idx], G)
        r = self.rep
        w = np.bincount(self.cells[idx], minlength=r.shape[0]).astype(np.float64)
        return hard_stats(t, self.z[r], self.y[r], self.m[r], self.g[r], G, sample_weight=w)

    def rates(self, idx: np.ndarray) -> np.ndarray:
        """The headline rate of every group on the rows ``idx`` (NaN where undefined)."""
        return headline_rates(self.task, self.stats(idx))[0]

    def _ks(self, idx: np.ndarray) -> float:
        w = np.bincount(idx, minlength=self.z.shape[0]).astype(np.float64)[self.ks_rows]
        cum = np.cumsum(np.where(self.ks_onehot, w, 0.0), axis=1)  # (G, L), integers
        n = cum[:, -1] if cum.shape[1] else np.zeros(self.num_groups)
        present = np.flatnonzero(n > 0)
        if present.size < 2:
            return float("nan")
        F = cum[present][:, self.ks_last] / n[present][:, None]
        best = 0.0
        for i in range(present.size):
            for j in range(i + 1, present.size):
                best = max(best, float(np.max(np.abs(F[i] - F[j]))))
        return best

    def __call__(self, idx: np.ndarray) -> tuple[float, float, np.ndarray]:
        """``(fairness, utility, headline rates)`` of the rows ``idx``, as
        :func:`summary_metrics` of those rows."""
        t = self.task
        stats = self.stats(idx)
        rep = metrics_from_stats(t, stats)  # regression: the CCC, as evaluate_task has it
        fair = self._ks(idx) if t.kind == "regression" else float(rep[FAIRNESS_METRIC[t.kind]])
        return fair, float(rep[UTILITY_METRIC[t.kind]]), headline_rates(t, stats)[0]


class HeadlineResampler(SummaryResampler):
    r"""A :class:`SummaryResampler` called for the headline group rates alone
    (:meth:`SummaryResampler.rates`, the same numbers as :func:`headline_rates` of
    :func:`fairmt_opt.fairness.hard_stats` on the rows ``idx``).

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness import Task, hard_stats
    >>> t = Task("y", "detection")
    >>> z, y, g = [1.0, -1.0, 1.0, -1.0, 2.0], [1, 1, 1, 0, 1], [0, 0, 1, 1, 0]
    >>> r = HeadlineResampler(t, z, y, None, g, 2)
    >>> idx = np.array([0, 1, 1, 4, 2])
    >>> r(idx), headline_rates(t, hard_stats(t, np.take(z, idx), np.take(y, idx), None,
    ...                                      np.take(g, idx), 2))[0]
    (array([0.5, 1. ]), array([0.5, 1. ]))
    """

    def __call__(self, idx: np.ndarray) -> np.ndarray:  # type: ignore[override]
        """The headline rate of every group on the rows ``idx`` (NaN where undefined)."""
        return self.rates(idx)


def group_rate_rows(task: Task, outputs: Any, targets: Any, mask: Any, groups: Any,
                    num_groups: int) -> list[tuple[int, str, float, int]]:
    r"""``(group, metric, value, count)`` of every per-group rate of one task (module
    docstring): the rates of :func:`fairmt_opt.fairness.by_group` (``output="logits"`` for
    detection and classification), the macro TPR of :func:`headline_rates`, and as ``count``
    the denominators of :func:`fairmt_opt.fairness.hard_stats`. Rates with an empty
    denominator are left out. Cost :math:`O(N K G)`.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task
    >>> rows = group_rate_rows(Task("y", "detection"), [1.0, -1.0, 1.0, -1.0], [1, 1, 1, 0],
    ...                        None, [0, 0, 1, 1], 2)
    >>> [r for r in rows if r[0] == 1]
    [(1, 'tpr', 1.0, 1), (1, 'fpr', 0.0, 1), (1, 'accuracy', 1.0, 2)]
    """
    z = np.asarray(outputs, dtype=np.float64)
    y = np.asarray(targets)
    m = np.ones(z.shape[0], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    g = np.asarray(groups).astype(np.int64)
    stats = hard_stats(task, z, y, m, g, num_groups)
    rep = by_group(task, z, y, m, g, num_groups,
                   output=None if task.kind == "regression" else "logits")
    col = {c: j for j, c in enumerate(rep.columns)}
    count = rep.values[:, col["count"]]
    rows: list[tuple[int, str, float, int]] = []

    def put(gi: int, name: str, column: str, n: float) -> None:
        v = rep.values[gi, col[column]]
        if not np.isnan(v) and n > 0:
            rows.append((gi, name, float(v), int(n)))

    if task.kind == "regression":
        for gi in range(num_groups):
            put(gi, "mae", "mae", count[gi])
        return rows
    pos, neg = (np.asarray(stats[k], dtype=np.float64) for k in ("pos", "neg"))
    head, head_ok = headline_rates(task, stats)
    for gi in range(num_groups):
        if task.kind == "detection":
            put(gi, "tpr", "tpr", pos[gi, 0])
            put(gi, "fpr", "fpr", neg[gi, 0])
        else:
            for c in range(task.out_dim):
                put(gi, f"tpr[{c}]", f"tpr[{c}]", pos[gi, c])
                put(gi, f"fpr[{c}]", f"fpr[{c}]", neg[gi, c])
                put(gi, f"accuracy[{c}]", f"accuracy[{c}]", count[gi])
            if head_ok[gi]:
                rows.append((gi, "macro_tpr", float(head[gi]), int(pos[gi, :].sum())))
        put(gi, "accuracy", "accuracy", count[gi])
    return rows
