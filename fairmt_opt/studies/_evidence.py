r"""The evidence behind the verdicts of the training studies: summary metrics of every method
and seed on the test split and on its bootstrap resamples, paired verdicts between methods,
the per-group statement on lift-only constraints, and the ``groups.csv`` rows.

Usage (as ``compare`` does; ``frontier`` the same at each of its points)::

    outputs = {(label, seed): split_outputs(ds, trainer, "test"), ...}   # _training
    for (label, seed), outs in outputs.items():
        record_group_rates(w, ds, label, seed, outs)                     # groups.csv
    samples = sample_metrics(ds, outputs, resamples=500)
    v = samples.verdict("fairmt", "linear", task.name, "fairness")       # a Verdict
    section, lines = lift_only_section(samples)                          # report text

Intervals are at level 0.95 (:data:`~fairmt_opt.studies._verdicts.LEVEL`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._utils.validation import check_bool
from ..datasets import MTLDataset
from ._common import markdown_table
from ._groups import HEADLINE_RATE, SummaryResampler, group_rate_rows
from ._verdicts import (
    Interval,
    Verdict,
    difference_verdict,
    percentile_interval,
    resample_indices,
    t_interval,
)

__all__ = ["LiftOnlyVerdict", "MetricSamples", "lift_only_section", "lift_only_verdicts",
           "record_group_rates", "sample_metrics"]

Outputs = Mapping[tuple[str, int], Sequence[np.ndarray]]


def record_group_rates(w: Any, ds: MTLDataset, label: str, seed: int,
                       outputs: Sequence[np.ndarray], split: str = "test") -> None:
    """Add the per-group rates of every task (:func:`~fairmt_opt.studies._groups.
    group_rate_rows`) of one trained model to the writer ``w`` (``groups.csv``); ``outputs``
    are the model's outputs on ``split``, one array per task."""
    sp = ds.split(split)
    for t, task in enumerate(ds.tasks):
        for g, metric, value, count in group_rate_rows(task, outputs[t], sp.targets[t],
                                                       sp.mask[:, t], sp.groups, ds.n_groups):
            w.group(label, seed, split, task.name, ds.group_names[g], metric, value, count)


#: the columns of :attr:`MetricSamples.values` before the per-group rates
COLUMNS = ("fairness", "utility")


@dataclass(frozen=True)
class MetricSamples:
    """Summary metrics of methods on one split, on the whole split and on its resamples.

    ``values[(label, task)]`` has shape ``(n_seeds, 1 + resamples, 2 + G)``: row 0 is the whole
    split, rows ``1..`` the bootstrap resamples (the same for every method and seed); columns
    ``fairness``, ``utility`` (:data:`~fairmt_opt.studies._groups.FAIRNESS_METRIC`,
    :data:`~fairmt_opt.studies._groups.UTILITY_METRIC`), then the headline rate of each group
    (:data:`~fairmt_opt.studies._groups.HEADLINE_RATE`). With ``rates_only`` the resamples
    hold the group rates only (``fairness`` and ``utility`` NaN there, their intervals and
    verdicts refused).
    """

    ds: MTLDataset
    seeds: tuple[int, ...]
    resamples: int
    values: dict[tuple[str, str], np.ndarray]
    rates_only: bool = False

    def _col(self, task: str, column: str | int, *, resampled: bool = True) -> int:
        if isinstance(column, int):
            return 2 + column
        if column not in COLUMNS:
            raise ValueError(f"column must be one of {COLUMNS} or a group index, got "
                             f"{column!r}")
        if resampled and self.rates_only:
            raise ValueError(f"column {column!r} was not resampled (rates_only): only the "
                             "group rates have intervals and verdicts here")
        return COLUMNS.index(column)

    def per_seed(self, label: str, task: str, column: str | int) -> np.ndarray:
        """The values on the whole split, one per seed."""
        return self.values[(label, task)][:, 0, self._col(task, column, resampled=False)]

    def interval(self, label: str, task: str, column: str | int) -> Interval:
        """The 95% interval of a method's mean over seeds: the hull of the t-interval over
        seeds and the bootstrap percentile interval of the mean (the bootstrap alone with one
        seed)."""
        v = self.values[(label, task)][:, :, self._col(task, column)]
        boot = percentile_interval(float(np.mean(v[:, 0])), np.mean(v[:, 1:], axis=0))
        if v.shape[0] < 2:
            return boot
        t = t_interval(v[:, 0])
        return Interval(t.estimate, min(t.low, boot.low), max(t.high, boot.high), t.level,
                        f"hull of {t.method} and {boot.method}", boot.dropped)

    def verdict(self, a: str, b: str, task: str, column: str | int, *,
                margin: float = 0.0) -> Verdict:
        """:func:`~fairmt_opt.studies._verdicts.difference_verdict` of ``a - b``: per-seed
        differences on the whole split (seed ``s`` of ``a`` against seed ``s`` of ``b``) and
        the bootstrap of their mean."""
        c = self._col(task, column)
        d = self.values[(a, task)][:, :, c] - self.values[(b, task)][:, :, c]
        boot = percentile_interval(float(np.mean(d[:, 0])), np.mean(d[:, 1:], axis=0))
        return difference_verdict(d[:, 0], boot, margin=margin)

    @property
    def method(self) -> str:
        """How the intervals were obtained (for the reports)."""
        return (f"95% intervals: Student t over {len(self.seeds)} seed(s) combined (hull) "
                f"with a paired percentile bootstrap over the test samples ({self.resamples} "
                "resamples, seeded)")


def sample_metrics(ds: MTLDataset, outputs: Outputs, *, split: str = "test",
                   resamples: int = 500, seed: int = 0,
                   labels: Sequence[str] | None = None,
                   rates_only: bool = False) -> MetricSamples:
    r"""The :class:`MetricSamples` of the methods in ``outputs`` (``(label, seed)`` to the
    outputs on ``split``, one array per task), for the labels given (default: all) and the
    seeds every one of them has.

    Every value is :func:`~fairmt_opt.studies._groups.summary_metrics` on the split or on one
    of ``resamples`` resamples of its samples (rows, shared by all tasks) drawn by
    :func:`~fairmt_opt.studies._verdicts.resample_indices` with ``seed``; on the resamples
    :class:`~fairmt_opt.studies._groups.SummaryResampler` computes it, the same values bit for
    bit. Cost: ``methods * seeds * tasks`` evaluations on the split, each :math:`O(N K G)`,
    and ``resamples`` times as many on the resamples, each :math:`O(N + C K G)` for ``C``
    cells (detection, classification) or :math:`O(N G^2)` (regression). On adult (N = 16281
    test rows, one thread) one model and one resample take 0.41, 0.72 and 2.8 ms (detection,
    14-class classification, regression) instead of 1.2, 7.8 and 8.2 ms on the resampled
    rows: 4.4 times less for the three tasks.

    ``rates_only=True`` (for verdicts on the group rates alone, as the lift-only ones): the
    whole split as above, the resamples only the headline group rates
    (:meth:`~fairmt_opt.studies._groups.SummaryResampler.rates`, again the values of
    :func:`~fairmt_opt.studies._groups.summary_metrics` bit for bit; on adult 0.20, 0.36 and
    2.1 ms); their ``fairness`` and ``utility`` are NaN and :class:`MetricSamples` refuses
    intervals on them.
    """
    rates_only = check_bool(rates_only, "rates_only")
    labels = list(dict.fromkeys(labels or [lab for lab, _ in outputs]))
    seeds = sorted({s for lab, s in outputs if lab == labels[0]})
    for lab in labels:
        have = sorted(s for la, s in outputs if la == lab)
        if have != seeds:
            raise ValueError(f"outputs of {lab!r} have seeds {have}, those of {labels[0]!r} "
                             f"{seeds}: the verdicts pair seeds")
    sp = ds.split(split)
    n = int(sp.groups.shape[0])
    G = ds.n_groups
    values = {(lab, t.name): np.empty((len(seeds), 1 + resamples, 2 + G)) for lab in labels
              for t in ds.tasks}
    fns = {(lab, i, t): SummaryResampler(task, outputs[(lab, s)][t], sp.targets[t],
                                         sp.mask[:, t], sp.groups, G)
           for lab in labels for i, s in enumerate(seeds) for t, task in enumerate(ds.tasks)}
    for (lab, i, t), fn in fns.items():
        f, u, r = fn.whole
        values[(lab, ds.tasks[t].name)][i, 0] = (f, u, *r)
    if rates_only:
        for v in values.values():
            v[:, 1:, :2] = np.nan
    for b, idx in enumerate(resample_indices(n, resamples, seed=seed)):
        for (lab, i, t), fn in fns.items():
            row = values[(lab, ds.tasks[t].name)][i, 1 + b]
            if rates_only:
                row[2:] = fn.rates(idx)
            else:
                f, u, r = fn(idx)
                row[:] = (f, u, *r)
    return MetricSamples(ds, tuple(seeds), int(resamples), values, bool(rates_only))


def _fmt(v: Verdict) -> str:
    return f"{v.estimate:+.4f} [{v.interval.low:+.4f}, {v.interval.high:+.4f}]"


@dataclass(frozen=True)
class LiftOnlyVerdict:
    """The per-group evidence of one task on the lift-only claim (:func:`lift_only_verdicts`).

    ``best`` and ``worst`` index the groups with the best and the worst headline ``rate`` of
    the reference; ``kept`` is the verdict of FairMT − reference on the best group's rate,
    ``lifted`` on the worst group's, ``symmetric`` (``None`` without it) that of the symmetric
    constraint − reference on the best group's; ``higher`` says whether a higher rate is
    better (TPR) or a lower one (MAE). ``note`` explains a task left without a comparison
    (then the verdicts are ``None``).
    """

    task: str
    rate: str
    higher: bool
    best: int = -1
    worst: int = -1
    kept: Verdict | None = None
    lifted: Verdict | None = None
    symmetric: Verdict | None = None
    note: str = ""

    @property
    def best_kept(self) -> bool:
        """FairMT did not resolvably worsen the best group's rate."""
        return self.kept is not None and self.kept.direction * (1 if self.higher else -1) >= 0

    @property
    def worst_lifted(self) -> bool:
        """FairMT resolvably improved the worst group's rate."""
        return (self.lifted is not None
                and self.lifted.direction * (1 if self.higher else -1) > 0)

    @property
    def symmetric_lowered(self) -> bool | None:
        """The symmetric constraint resolvably worsened the best group's rate (``None``
        without it)."""
        if self.symmetric is None:
            return None
        return self.symmetric.direction * (1 if self.higher else -1) < 0


def lift_only_verdicts(samples: MetricSamples, *, fairmt: str = "fairmt",
                       symmetric: str | None = "symmetric", reference: str = "linear"
                       ) -> list[LiftOnlyVerdict]:
    r"""The per-group verdicts on the lift-only claim, one :class:`LiftOnlyVerdict` per task.

    For every task, the best and the worst group are those of ``reference`` on the headline
    rate (:data:`~fairmt_opt.studies._groups.HEADLINE_RATE`: TPR, macro TPR, or MAE where
    lower is better), from its mean over seeds on the whole test split. The verdicts are the
    paired differences of :meth:`MetricSamples.verdict` (``fairmt`` − ``reference`` on both
    groups, ``symmetric`` − ``reference`` on the best one). ``symmetric`` is skipped when it
    is ``None`` or missing from ``samples``.

    Raises
    ------
    ValueError
        ``fairmt`` or ``reference`` missing from ``samples``.
    """
    have = {lab for lab, _ in samples.values}
    for name, lab in (("fairmt", fairmt), ("reference", reference)):
        if lab not in have:
            raise ValueError(f"{name} label {lab!r} is not among the samples' labels "
                             f"{sorted(have)}")
    sym = symmetric if symmetric in have else None
    ds = samples.ds
    out = []
    for task in ds.tasks:
        rate, higher = HEADLINE_RATE[task.kind]
        ref = np.array([np.mean(samples.per_seed(reference, task.name, g))
                        for g in range(ds.n_groups)])
        ok = ~np.isnan(ref)
        if ok.sum() < 2:
            out.append(LiftOnlyVerdict(task.name, rate, higher, note=(
                f"fewer than two groups have a {rate} on the test split, no per-group "
                "comparison")))
            continue
        order = np.argsort(np.where(ok, ref if higher else -ref, np.inf))
        worst = int(order[0])
        best = int(np.flatnonzero(ok)[np.argmax((ref if higher else -ref)[ok])])
        if ref[best] == ref[worst]:  # e.g. a model that never predicts the positive class
            out.append(LiftOnlyVerdict(task.name, rate, higher, note=(
                f"every group has the same {rate} ({ref[best]:.4g}) under {reference}, no "
                "best or worst group to compare")))
            continue
        out.append(LiftOnlyVerdict(
            task.name, rate, higher, best, worst,
            samples.verdict(fairmt, reference, task.name, best),
            samples.verdict(fairmt, reference, task.name, worst),
            None if sym is None else samples.verdict(sym, reference, task.name, best)))
    return out


def lift_only_section(samples: MetricSamples, *, fairmt: str = "fairmt",
                      symmetric: str | None = "symmetric", reference: str = "linear",
                      title: str = "") -> tuple[str, list[str]]:
    r"""The per-group evidence on the lift-only claim (:func:`lift_only_verdicts`), as a
    report section and one summary sentence per task.

    FairMT *kept* the best group's rate when the change (FairMT − reference) is not resolved
    as a loss, and *raised* the worst group's when the gain is resolved; the symmetric
    constraint *lowered* the best group's when that loss is resolved (intervals of
    :meth:`MetricSamples.verdict`). Labels missing from ``samples`` are skipped (the sentence
    says so).
    """
    have = {lab for lab, _ in samples.values}
    if fairmt not in have or reference not in have:
        msg = (f"The per-group comparison needs both `{fairmt}` and `{reference}` (run them "
               "together).")
        return f"## Per-group rates{title}\n\n{msg}\n", [msg]
    sym = symmetric if symmetric in have else None
    ds = samples.ds
    rows, lines = [], []
    for v in lift_only_verdicts(samples, fairmt=fairmt, symmetric=sym, reference=reference):
        if v.kept is None or v.lifted is None:
            lines.append(f"`{v.task}`: {v.note}")
            continue
        rate, higher, kb, kw = v.rate, v.higher, v.kept, v.lifted
        # the words of a change of the rate: "raised" is better for a TPR, worse for an MAE
        up, down = "raised", "lowered"
        better = up if higher else down
        worse = down if higher else up
        sign = 1 if higher else -1
        kept = ("kept" if kb.direction == 0 else f"{up if kb.direction > 0 else down}")
        kept += (" (no change resolved)" if kb.direction == 0 else " (resolved)")
        lifted = ({1: f"{better}", -1: f"{worse}"}.get(kw.direction * sign)
                  or f"did not resolvably {'raise' if higher else 'lower'}")
        bname, wname = ds.group_names[v.best], ds.group_names[v.worst]
        line = (f"`{v.task}` ({rate}): FairMT {kept} the best group's {rate} ({bname}, "
                f"Δ {_fmt(kb)}) and {lifted} the worst group's ({wname}, Δ {_fmt(kw)}) "
                f"against {reference}")
        row: list[Any] = [v.task, rate, bname,
                          str(samples.interval(reference, v.task, v.best)), _fmt(kb), wname,
                          str(samples.interval(reference, v.task, v.worst)), _fmt(kw)]
        if v.symmetric is not None:
            ks = v.symmetric
            dropped = ({-1: f"{worse} (resolved, a loss)", 1: f"{better} (resolved, a gain)"}
                       .get(ks.direction * sign) or "did not resolvably change")
            line += (f"; the symmetric constraint {dropped} the best group's {rate} "
                     f"(Δ {_fmt(ks)})")
            row.append(_fmt(ks))
        lines.append(line)
        rows.append(row)
    header = ["task", "rate", "best group", f"{reference} (best)", f"Δ {fairmt} (best)",
              "worst group", f"{reference} (worst)", f"Δ {fairmt} (worst)"]
    if sym is not None:
        header.append(f"Δ {sym} (best group)")
    text = (f"## Per-group rates{title}: does the lift-only constraint keep the best group?\n\n"
            f"Best and worst group by `{reference}`'s rate on the test split (TPR for "
            "detection, mean one-vs-rest TPR for classification, MAE for regression, where "
            f"lower is better); Δ is the change against `{reference}`, with its interval. "
            f"{samples.method}. Every group's rates are in `groups.csv`.\n\n"
            + (markdown_table(header, rows) if rows else "") + "\n"
            + "".join(f"- {line}\n" for line in lines))
    return text, lines
