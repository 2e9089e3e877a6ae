r"""Reports by group in the spirit of fairlearn's ``MetricFrame``, and helpers over all tasks.

:func:`by_group` computes the hard statistics of one task once (:func:`hard_stats`, weighted
when ``sample_weight`` is given) and forms every column of the report from them with the
formulas of :mod:`fairmt_opt.fairness._rates`, per group and overall (the same formula on the
sums over the groups). Aggregates over the groups, per column, over the groups that have a
value (module :mod:`~fairmt_opt.fairness._rates` for the 0/0 convention):

.. math::

    \mathrm{difference}_{\mathrm{between}} = \max_g v_g - \min_g v_g,\quad
    \mathrm{difference}_{\mathrm{overall}} = \max_g |v_g - v|,\quad
    \mathrm{ratio}_{\mathrm{between}} = \frac{\min_g v_g}{\max_g v_g},\quad
    \mathrm{ratio}_{\mathrm{overall}} = \min_g \frac{\min(v_g, v)}{\max(v_g, v)}

(a ratio whose terms are both 0 is left out, as fairlearn's NaN). A group without any
labelled sample (or of zero total weight) has no value in any column and takes no part.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._metrics import MetricReport, OutputKind, evaluate_task, prepare_hard, prepared_stats
from ._rates import check_zero_division, confusion_table
from ._stats import group_matrix, regression_scores
from ._tasks import Task

__all__ = ["GroupReport", "by_group", "by_group_all", "evaluate_all"]

_METHODS = ("between_groups", "to_overall")
_COUNTS = ("tp", "fp", "tn", "fn")  # (weighted) confusion counts: exact 0 in an empty group


class GroupReport:
    """Per-group values of one task's metrics (rows: groups, columns: metrics).

    Attributes
    ----------
    task : Task or None
        ``None`` for a report of user metric functions (:func:`by_group_metrics`).
    columns : tuple of str
    group_labels : tuple
        The label of each row (tuples for intersectional groups).
    feature_names : tuple or None
        The names of the sensitive features of intersectional groups.
    values : ndarray of shape (G, C)
        NaN exactly where a cell has no value (its reason in :attr:`undefined_cells`).
    overall : MetricReport
        Every column over all labelled samples.
    """

    def __init__(self, task: Task | None, columns: tuple[str, ...], labels: tuple[Any, ...],
                 names: tuple[Any, ...] | None, values: np.ndarray, valid: np.ndarray,
                 present: np.ndarray, overall: np.ndarray, overall_valid: np.ndarray,
                 fill: float | None) -> None:
        self.task = task
        self.columns = columns
        self.group_labels = labels
        self.feature_names = names
        self.values = np.where(valid, values, np.nan)
        self._valid = valid & present[:, None]
        self._present = present
        self._fill = fill
        self.undefined_cells: dict[tuple[Any, str], str] = {}
        for g, lab in enumerate(labels):
            for j, col in enumerate(columns):
                if not valid[g, j]:
                    self.undefined_cells[(lab, col)] = (
                        "no labelled sample in the group" if not present[g]
                        else "0/0 (empty denominator)")
        ov = {c: float(overall[j]) if overall_valid[j] else math.nan
              for j, c in enumerate(columns)}
        self.overall = MetricReport(
            ov, undefined={c: "0/0 (empty denominator)" for c, v in ov.items()
                           if math.isnan(v)})

    def _what(self) -> str:
        if self.task is None:
            return "the report is of user metrics (by_group_metrics)"
        return f"task {self.task.name!r} is {self.task.kind}"

    def __repr__(self) -> str:
        name = None if self.task is None else self.task.name
        return (f"GroupReport(task={name!r}, groups={len(self.group_labels)}, "
                f"columns={list(self.columns)})")

    @property
    def by_group(self) -> Any:
        """A pandas DataFrame indexed by the group labels (a MultiIndex named by the
        sensitive features for intersections) when pandas is installed, else a dict mapping
        each label to a dict of its values (NaN exactly in :attr:`undefined_cells`)."""
        try:
            import pandas as pd
        except ImportError:  # pandas is optional (tested with pandas made absent)
            return {lab: dict(zip(self.columns, map(float, row), strict=True))
                    for lab, row in zip(self.group_labels, self.values, strict=True)}
        if self.group_labels and isinstance(self.group_labels[0], tuple):
            index = pd.MultiIndex.from_tuples(
                list(self.group_labels),
                names=list(self.feature_names) if self.feature_names else None)
        else:
            index = pd.Index(list(self.group_labels), name="group")
        return pd.DataFrame(self.values, index=index, columns=list(self.columns))

    def _reduce(self, fn: Any, need: int, why: str) -> MetricReport:
        out: dict[str, float] = {}
        undefined: dict[str, str] = {}
        for j, col in enumerate(self.columns):
            v = self.values[self._valid[:, j], j]
            if v.size < need:
                out[col], undefined[col] = math.nan, why
                continue
            r = fn(v, j)
            if r is None or not math.isfinite(r):
                out[col], undefined[col] = math.nan, "every value compared is 0"
            else:
                out[col] = float(r)
        return MetricReport(out, undefined=undefined)

    def group_min(self) -> MetricReport:
        """The smallest value of each column over the groups that have one."""
        return self._reduce(lambda v, j: v.min(), 1, "no group has a value")

    def group_max(self) -> MetricReport:
        """The largest value of each column over the groups that have one."""
        return self._reduce(lambda v, j: v.max(), 1, "no group has a value")

    def _need(self) -> tuple[int, str]:
        if self._fill is None:
            return 2, "fewer than two groups have a value"
        return 1, "no group has a value"

    def difference(self, method: str = "between_groups") -> MetricReport:
        """``max - min`` over the groups (``"between_groups"``) or the largest distance to
        the overall value (``"to_overall"``), per column (module docstring). Under
        ``zero_division="empty"`` a difference between groups needs two groups with a value;
        under a number one (a single group gives 0, as fairlearn)."""
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        if method == "between_groups":
            need, why = self._need()
            return self._reduce(lambda v, j: v.max() - v.min(), need, why)
        ov = self.overall

        def to_overall(v: np.ndarray, j: int) -> float | None:
            o = ov[self.columns[j]]
            return None if math.isnan(o) else float(np.max(np.abs(v - o)))

        return self._reduce(to_overall, 1, "no group has a value")

    def ratio(self, method: str = "between_groups") -> MetricReport:
        """``min / max`` over the groups (``"between_groups"``) or the smallest
        ``min(v_g, v) / max(v_g, v)`` to the overall value (``"to_overall"``), per column;
        pairs whose terms are both 0 are left out (module docstring)."""
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
        if method == "between_groups":
            need, why = self._need()
            return self._reduce(lambda v, j: v.min() / v.max() if v.max() > 0 else None,
                                need, why)
        ov = self.overall

        def to_overall(v: np.ndarray, j: int) -> float | None:
            o = ov[self.columns[j]]
            if math.isnan(o):
                return None
            hi = np.maximum(v, o)
            lo = np.minimum(v, o)
            keep = hi > 0
            return float(np.min(lo[keep] / hi[keep])) if keep.any() else None

        return self._reduce(to_overall, 1, "no group has a value")

    def confusion_matrix(self, normalize: str | None = None, *, overall: bool = False
                         ) -> np.ndarray:
        r"""The confusion matrix of each group of a detection report, in scikit-learn's
        layout ``[[tn, fp], [fn, tp]]`` (rows: true label 0, 1; columns: predicted 0, 1),
        from the (weighted) counts ``tn``, ``fp``, ``fn``, ``tp`` of the report.

        ``normalize`` as in scikit-learn's ``confusion_matrix``: ``None`` the counts,
        ``"true"`` each row divided by its sum (the cells are TNR, FPR / FNR, TPR),
        ``"pred"`` each column divided by its sum, ``"all"`` every cell divided by the
        group's total:

        .. math::

            C^{\mathrm{true}}_{ij} = rac{C_{ij}}{\sum_k C_{ik}},\quad
            C^{\mathrm{pred}}_{ij} = rac{C_{ij}}{\sum_k C_{kj}},\quad
            C^{\mathrm{all}}_{ij} = rac{C_{ij}}{\sum_{kl} C_{kl}}

        A 0/0 cell (a row or column without samples) follows the report's
        ``zero_division``: NaN under ``"empty"``, the fill value under a number
        (``zero_division=0.0`` gives scikit-learn's 0). A group without labelled samples
        is NaN throughout when normalised (its counts are 0). Cost :math:`O(G)`.

        Returns
        -------
        ndarray of shape (G, 2, 2), rows in the order of :attr:`group_labels`; with
        ``overall=True`` the ``(2, 2)`` matrix over all labelled samples.

        Examples
        --------
        >>> from fairmt_opt.fairness import Task, by_group
        >>> r = by_group(Task("y", "detection"), [1, 0, 1, 1, 0, 0], [1, 0, 1, 0, 1, 0],
        ...              None, ["a", "a", "a", "b", "b", "b"], output="labels")
        >>> r.confusion_matrix()[1].tolist(), r.confusion_matrix("true")[1].tolist()
        ([[1.0, 1.0], [1.0, 0.0]], [[0.5, 0.5], [1.0, 0.0]])
        >>> r.confusion_matrix("all", overall=True).tolist()
        [[0.3333333333333333, 0.16666666666666666], [0.16666666666666666, 0.3333333333333333]]
        """
        if normalize not in (None, "true", "pred", "all"):
            raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got "
                             f"{normalize!r}")
        if "tn" not in self.columns:
            raise ValueError(f"confusion_matrix needs a detection report; "
                             f"{self._what()}")
        j = [self.columns.index(c) for c in ("tn", "fp", "fn", "tp")]
        if overall:
            cm = np.array([self.overall[c] for c in ("tn", "fp", "fn", "tp")],
                          dtype=np.float64).reshape(1, 2, 2)
        else:
            cm = self.values[:, j].reshape(-1, 2, 2)
        if normalize is not None:
            from ._rates import ratio

            axes = {"true": (2,), "pred": (1,), "all": (1, 2)}[normalize]
            den = np.broadcast_to(cm.sum(axis=axes, keepdims=True), cm.shape)
            present = np.ones(cm.shape, dtype=bool)
            if not overall:
                present &= self._present[:, None, None]
            cm, _ = ratio(cm, den, present, self._fill)
        return cm[0] if overall else cm

    def equalized_odds(self, kind: str = "difference", method: str = "between_groups",
                       agg: str = "worst_case") -> float:
        r"""fairlearn's equalized-odds aggregate of a detection report: the ``difference``
        (or ``ratio``) by ``method`` of the ``tpr`` and of the ``fpr`` columns, combined by
        ``agg``: ``"worst_case"`` (the larger difference, the smaller ratio) or ``"mean"``.

        .. math::

            \mathrm{EO}_{\mathrm{diff}} = \max(d_{\mathrm{TPR}}, d_{\mathrm{FPR}}),\quad
            \mathrm{EO}_{\mathrm{ratio}} = \min(r_{\mathrm{TPR}}, r_{\mathrm{FPR}})

        A term without a value (``zero_division="empty"``) is left out; NaN when neither
        has one. Cost :math:`O(G)`.

        Examples
        --------
        >>> from fairmt_opt.fairness import Task, by_group
        >>> r = by_group(Task("y", "detection"), [1, 0, 1, 1, 0, 0], [1, 0, 1, 0, 1, 0],
        ...              None, ["a", "a", "a", "b", "b", "b"], output="labels")
        >>> r.equalized_odds(), r.equalized_odds(agg="mean"), r.equalized_odds("ratio")
        (1.0, 0.75, 0.0)
        """
        if kind not in ("difference", "ratio"):
            raise ValueError(f"kind must be 'difference' or 'ratio', got {kind!r}")
        if agg not in ("worst_case", "mean"):
            raise ValueError(f"agg must be one of 'worst_case' or 'mean', got {agg!r}")
        if "tpr" not in self.columns or "fpr" not in self.columns:
            raise ValueError(f"equalized_odds needs a detection report; "
                             f"{self._what()}")
        red = self.difference(method) if kind == "difference" else self.ratio(method)
        terms = [red[c] for c in ("tpr", "fpr") if not math.isnan(red[c])]
        if not terms:
            return math.nan
        if agg == "mean":
            return float(np.mean(terms))
        return float(max(terms) if kind == "difference" else min(terms))


def _stack(table: Mapping[str, tuple[np.ndarray, np.ndarray]], keys: Sequence[str],
           K: int, per_class: bool) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    cols, vals, oks = [], [], []
    for key in keys:
        v, ok = table[key]
        for k in range(K):
            cols.append(f"{key}[{k}]" if per_class else key)
            vals.append(v[..., k])
            oks.append(ok[..., k])
    return cols, vals, oks


def by_group(
    task: Task,
    outputs: Any,
    targets: Any,
    mask: Any,
    groups: Any,
    num_groups: int | None = None,
    *,
    output: OutputKind | None = None,
    pos_label: Any = None,
    sample_weight: Any = None,
    zero_division: float | str = "empty",
    conditioning: Any = None,
    train_median: float | None = None,
    intersections: str = "present",
    feature_names: str = "any",
) -> GroupReport:
    r"""A report by group of one task, in the spirit of fairlearn's ``MetricFrame``.

    Columns — detection: ``tpr``, ``fpr``, ``tnr``, ``fnr``, ``selection_rate``,
    ``precision``, ``accuracy``, ``balanced_accuracy``, the confusion counts ``tp``, ``fp``,
    ``tn``, ``fn`` (weighted; 0 in an empty group), ``count``; classification: per class
    ``c`` the one-vs-rest ``tpr[c]``, ``fpr[c]``, ``selection_rate[c]``, ``accuracy[c]`` and
    ``support[c]`` (labelled weight of class ``c``), then ``accuracy`` and ``count``;
    regression: ``mae``, ``mse``, ``r2`` (:math:`1 - \mathrm{SSE}/\mathrm{SST}`, from the
    centred moments; no value when the targets are all equal), ``mean_prediction``,
    ``mean_target``, ``count`` and
    ``above_median`` (the rate of predictions above ``train_median``, the CSP rate). With
    ``conditioning``, the positive-prediction rate of each stratum ``s`` (the terms of CSP)
    as ``selection_rate@s`` (detection and regression). ``count`` is the number of labelled
    samples; with ``sample_weight`` also ``weight``, their total weight (every rate is
    weighted). Rates from :mod:`fairmt_opt.fairness._rates` on the counts of
    :func:`hard_stats`.

    Parameters are those of :func:`evaluate_task`: ``groups`` any hashable labels or several
    sensitive features (intersections), ``output`` the kind of the outputs, ``pos_label``,
    ``sample_weight``, ``zero_division`` (``"empty"``: a 0/0 rate has no value; ``0.0``:
    fairlearn's convention); ``intersections`` (:func:`encode_groups`: ``"all"`` lists
    every combination of several sensitive features, as fairlearn's rows, a combination
    without samples having no value); ``feature_names`` (:func:`encode_groups`: ``"any"``
    accepts integer feature names such as an unnamed DataFrame's, ``"strings"`` refuses
    them as fairlearn does).

    Returns
    -------
    GroupReport
        ``.overall``, ``.by_group``, ``.group_min()``, ``.group_max()``,
        ``.difference(method=)``, ``.ratio(method=)``.

    Notes
    -----
    Cost :math:`O(N K |G|)` plus :math:`O(N \log N)` to infer the groups.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, by_group
    >>> r = by_group(Task("y", "detection"), [1, 0, 1, 1, 0, 0], [1, 0, 1, 0, 1, 0], None,
    ...              ["a", "a", "a", "b", "b", "b"], output="labels")
    >>> r.by_group[["tpr", "fpr", "selection_rate", "count"]]  # doctest: +NORMALIZE_WHITESPACE
           tpr  fpr  selection_rate  count
    group
    a      1.0  0.0        0.666667    3.0
    b      0.0  0.5        0.333333    3.0
    >>> r.difference()["tpr"], r.ratio()["selection_rate"], r.overall["accuracy"]
    (1.0, 0.5, 0.6666666666666666)
    """
    fill = check_zero_division(zero_division)
    p = prepare_hard(task, outputs, targets, mask, groups, num_groups, output=output,
                     pos_label=pos_label, sample_weight=sample_weight,
                     conditioning=conditioning, intersections=intersections,
                     feature_names=feature_names)
    stats = prepared_stats(task, p, train_median=train_median)
    G = p.encoding.num_groups
    s = {k: np.asarray(v, dtype=np.float64)[:G] for k, v in stats.sums.items()
         if k not in ("strata_count", "strata_pos")}
    tot = {k: v.sum(axis=0, keepdims=True) for k, v in s.items()}
    Gm = group_matrix(np, p.encoding.codes, G, np.float64)
    count = Gm.T @ p.m.astype(np.float64)
    cols: list[str] = []
    vals: list[np.ndarray] = []
    oks: list[np.ndarray] = []
    ovals: list[np.ndarray] = []
    ooks: list[np.ndarray] = []

    def add(table: Any, otable: Any, keys: Sequence[str], K: int, per_class: bool) -> None:
        c, v, o = _stack(table, keys, K, per_class)
        _, ov, oo = _stack(otable, keys, K, per_class)
        cols.extend(c)
        vals.extend(v)
        oks.extend(o)
        ovals.extend(ov)
        ooks.extend(oo)

    if task.kind == "regression":
        n_w = s["n"]
        rkeys = ("mae", "mse", "r2", "mean_pred", "mean_target")
        g_sc, g_ok = regression_scores(stats, rkeys)
        o_sc, o_ok = regression_scores(stats, rkeys, overall=True)
        for k, col in zip(rkeys, ("mae", "mse", "r2", "mean_prediction", "mean_target"),
                          strict=True):
            cols.append(col)
            vals.append(np.asarray(g_sc[k], dtype=np.float64)[:G])
            oks.append(np.asarray(g_ok[k], dtype=bool)[:G])
            ovals.append(np.asarray(o_sc[k], dtype=np.float64))
            ooks.append(np.asarray(o_ok[k], dtype=bool))
    else:
        n_w = s["pos"][:, 0] + s["neg"][:, 0]
        conf = confusion_table(s, fill)
        oconf = confusion_table(tot, fill)
        if task.kind == "detection":
            add(conf, oconf, ("tpr", "fpr", "tnr", "fnr", "selection_rate", "precision",
                              "accuracy", "balanced_accuracy"), 1, False)

            def counts(t: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
                c = {"tp": t["tp"], "fp": t["fp"], "tn": t["neg"] - t["fp"],
                     "fn": t["pos"] - t["tp"]}
                return {k: (v, np.ones_like(v, dtype=bool)) for k, v in c.items()}

            add(counts(s), counts(tot), _COUNTS, 1, False)
        else:
            add(conf, oconf, ("tpr", "fpr", "selection_rate", "accuracy"), task.out_dim, True)
            sup = {"support": (s["pos"], np.ones_like(s["pos"], dtype=bool))}
            osup = {"support": (tot["pos"], np.ones_like(tot["pos"], dtype=bool))}
            add(sup, osup, ("support",), task.out_dim, True)
            from ._rates import ratio

            acc = ratio(s["tp"].sum(axis=1), n_w, n_w > 0, fill)
            oacc = ratio(tot["tp"].sum(axis=1), tot["pos"][:, 0] + tot["neg"][:, 0],
                         tot["pos"][:, 0] + tot["neg"][:, 0] > 0, fill)
            add({"accuracy": (acc[0][:, None], acc[1][:, None])},
                {"accuracy": (oacc[0][:, None], oacc[1][:, None])}, ("accuracy",), 1, False)
    present = n_w > 0
    one = np.ones(G, dtype=bool)
    cols.append("count")
    vals.append(count)
    oks.append(one)
    ovals.append(np.array([count.sum()]))
    ooks.append(np.array([True]))
    if p.weight is not None:
        cols.append("weight")
        vals.append(n_w)
        oks.append(one)
        ovals.append(np.array([n_w.sum()]))
        ooks.append(np.array([True]))
    if task.kind != "classification":
        from ._rates import ratio

        sc = np.asarray(stats["strata_count"], dtype=np.float64)[:, :G]  # (S, G)
        sp = np.asarray(stats["strata_pos"], dtype=np.float64)[:, :G, 0]
        ids = np.asarray(getattr(stats, "strata_ids", None) if getattr(
            stats, "strata_ids", None) is not None else np.arange(sc.shape[0]))
        if conditioning is not None or task.kind == "regression":
            for st in range(sc.shape[0]):
                name = ("above_median" if conditioning is None else
                        ("selection_rate" if task.kind == "detection" else "above_median")
                        + f"@{int(ids[st])}")
                v, ok = ratio(sp[st], sc[st], sc[st] > 0, None)
                ov, oo = ratio(sp[st].sum(keepdims=True), sc[st].sum(keepdims=True),
                               sc[st].sum(keepdims=True) > 0, None)
                cols.append(name)
                vals.append(v)
                oks.append(ok)
                ovals.append(ov)
                ooks.append(oo)
    values = np.stack(vals, axis=1)
    valid = np.stack(oks, axis=1)
    valid[:, :] &= present[:, None] | (np.array([c in ("count", "weight", *_COUNTS)
                                                 for c in cols]))
    return GroupReport(task, tuple(cols), p.encoding.labels, p.encoding.names, values, valid,
                       present, np.concatenate([np.ravel(x) for x in ovals]),
                       np.concatenate([np.ravel(x) for x in ooks]), fill)


def _per_task(tasks: Sequence[Task], x: Any, name: str, *, outputs: bool = False) -> list[Any]:
    """One entry per task from a sequence or a mapping by name, or split from one 2-D array
    (``outputs``: the tasks' out_dim columns side by side; else one column per task)."""
    T = len(tasks)
    if x is None:
        return [None] * T
    if isinstance(x, Mapping):
        missing = [t.name for t in tasks if t.name not in x]
        if missing:
            raise ValueError(f"{name} has no entry for the tasks {missing}")
        return [x[t.name] for t in tasks]
    if isinstance(x, list | tuple):
        if len(x) != T:
            raise ValueError(f"{name} must have one entry per task ({T}), got {len(x)}")
        return list(x)
    from ._groups import as_values, is_pandas

    if is_pandas(x):
        x = np.asarray(as_values(x, name) if x.ndim == 1 else x.to_numpy())
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") and hasattr(x, "cpu") else x
    arr = np.asarray(arr)
    width = sum(t.out_dim for t in tasks) if outputs else T
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{name} must have shape (N, {width}) (the tasks side by side), a "
                         f"sequence or a mapping by task name, got shape {arr.shape}")
    if not outputs:
        return [arr[:, t] for t in range(T)]
    out, j = [], 0
    for t in tasks:
        out.append(arr[:, j] if t.out_dim == 1 else arr[:, j:j + t.out_dim])
        j += t.out_dim
    return out


def _option(value: Any, task: Task, default: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get(task.name, default)
    return value


def _options(options: Mapping[str, Any], task: Task) -> dict[str, Any]:
    """The options of one task: a value for all tasks, or its entry in a mapping by name."""
    return {k: (v[task.name] if isinstance(v, Mapping) else v) for k, v in options.items()
            if not isinstance(v, Mapping) or task.name in v}


def by_group_all(tasks: Sequence[Task], outputs: Any, targets: Any, masks: Any, groups: Any,
                 num_groups: int | None = None, *, output: Any = None,
                 **options: Any) -> dict[str, GroupReport]:
    """:func:`by_group` for every task of a model: ``{task.name: GroupReport}``.

    ``outputs`` one entry per task (a sequence, a mapping by name) or one ``(N, sum of
    out_dim)`` array; ``targets`` and ``masks`` a sequence, a mapping or an ``(N, T)`` array
    (``masks=None``: all labelled); ``output`` and every option of :func:`by_group` one value
    for all tasks or a mapping by task name.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness import Task, by_group_all
    >>> tasks = [Task("a", "detection"), Task("b", "regression")]
    >>> z = np.array([[2.0, 0.5], [-1.0, 1.5], [3.0, 2.0], [-2.0, 0.0]])
    >>> y = np.array([[1, 1.0], [0, 1.0], [1, 2.5], [1, 0.0]])
    >>> r = by_group_all(tasks, z, y, None, ["u", "u", "v", "v"])
    >>> r["a"].by_group["tpr"].tolist(), r["b"].overall["mae"]
    ([1.0, 0.5], 0.375)
    """
    tasks = list(tasks)
    outs = _per_task(tasks, outputs, "outputs", outputs=True)
    ys = _per_task(tasks, targets, "targets")
    ms = _per_task(tasks, masks, "masks")
    return {t.name: by_group(t, z, y, m, groups, num_groups, output=_option(output, t, None),
                             **_options(options, t))
            for t, z, y, m in zip(tasks, outs, ys, ms, strict=True)}


def evaluate_all(tasks: Sequence[Task], outputs: Any, targets: Any, masks: Any, groups: Any,
                 num_groups: int | None = None, *, output: Any = None,
                 **options: Any) -> dict[str, MetricReport]:
    """:func:`evaluate_task` for every task of a model: ``{task.name: MetricReport}``, with
    the inputs and options of :func:`by_group_all` (``output=`` declared per task or for all;
    the same warnings for undeclared outputs that look like probabilities or labels).

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness import Task, evaluate_all
    >>> tasks = [Task("a", "detection"), Task("b", "regression")]
    >>> z = np.array([[2.0, 0.5], [-1.0, 1.5], [3.0, 2.0], [-2.0, 0.0]])
    >>> y = np.array([[1, 1.0], [0, 1.0], [1, 2.5], [1, 0.0]])
    >>> evaluate_all(tasks, z, y, None, ["u", "u", "v", "v"])["a"]["eod"]
    0.5
    """
    tasks = list(tasks)
    outs = _per_task(tasks, outputs, "outputs", outputs=True)
    ys = _per_task(tasks, targets, "targets")
    ms = _per_task(tasks, masks, "masks")
    return {t.name: evaluate_task(t, z, y, m, groups, num_groups,
                                  output=_option(output, t, None),
                                  **_options(options, t))
            for t, z, y, m in zip(tasks, outs, ys, ms, strict=True)}
