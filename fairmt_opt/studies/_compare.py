r"""The studies ``compare`` and ``partial-labels``: every method on a dataset, with intervals.

Every (method, seed) is trained by :func:`~fairmt_opt.studies._training.train_method`; the
tables give each metric's mean over seeds with its Student-t interval, and the verdicts
(FairMT against linear scalarisation, FairMT against FairMT without the proxy, and the
per-group statement of :func:`~fairmt_opt.studies._evidence.lift_only_section`) rest on
:class:`~fairmt_opt.studies._evidence.MetricSamples`: intervals over seeds combined with a
paired bootstrap over the test samples. A difference that these intervals do not resolve is
reported as *not resolved*; with one seed the seed noise is not measured, which the report
says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..datasets import MTLDataset
from ..plots import new_figure
from ._common import StudyConfig, StudyResult, StudyWriter, markdown_table
from ._evidence import MetricSamples, lift_only_section, sample_metrics
from ._groups import FAIRNESS_METRIC, UTILITY_METRIC
from ._training import _check_methods, _dataset, _run_methods, _settings
from ._verdicts import Verdict, t_interval

__all__ = ["compare_summary", "run_compare", "run_partial_labels"]

#: utility loss (accuracy or CCC) still counted as "equal utility"
UTILITY_TOLERANCE = 0.01
#: the methods whose test outputs are bootstrapped for the verdicts
VERDICT_METHODS = ("fairmt", "linear", "fairmt_none", "symmetric")

Stats = dict[tuple[str, str, str], tuple[float, float | None, float | None]]


def _intervals(results: list[dict[str, Any]], split: str = "test") -> Stats:
    """Mean over seeds of every (method, task, metric) of ``split`` and its t-interval
    (``None`` bounds with one seed)."""
    acc: dict[tuple[str, str, str], list[float]] = {}
    for r in results:
        if r["split"] == split:
            acc.setdefault((r["method"], r["task"], r["metric"]), []).append(r["value"])
    out: Stats = {}
    for k, v in acc.items():
        if len(v) >= 2 and all(math.isfinite(x) for x in v):
            iv = t_interval(v)
            out[k] = (iv.estimate, iv.low, iv.high)
        else:
            out[k] = (float(np.mean(v)), None, None)
    return out


def _cell(stat: tuple[float, float | None, float | None] | None) -> str:
    if stat is None or math.isnan(stat[0]):
        return "—"
    mean, lo, hi = stat
    if lo is None or hi is None:
        return f"{mean:.4f}"
    return f"{mean:.4f} [{lo:.4f}, {hi:.4f}]"


def _tables(w: StudyWriter, ds: MTLDataset, methods: Sequence[str], eps: float,
            stats: Stats) -> None:
    keys = {"detection": ("eod", "eo", "ks", "csp", "accuracy", "f1"),
            "classification": ("eod", "eo", "csp", "accuracy", "macro_f1"),
            "regression": ("ks", "csp", "ccc", "mae", "rmse")}
    seeds = w.config.seeds
    how = (f"mean [95% t-interval] over {seeds} seeds" if seeds >= 2 else
           "one seed (no interval over seeds)")
    for task in ds.tasks:
        ks = keys[task.kind]
        rows = [[m, *(_cell(stats.get((m, task.name, k))) for k in (*ks, "psi"))]
                for m in methods]
        w.section(f"## Task `{task.name}` ({task.kind}), test split, {how}\n\n"
                  + markdown_table(["method", *ks, "soft ψ"], rows))
    rows = []
    for m in methods:
        st = stats.get((m, "all", "phi"))
        rows.append([m, _cell(st), "—" if st is None else ("yes" if st[0] <= eps else "no")])
    mu = w.extra_config["settings"]["method_options"].get("mu")
    w.section(f"## Aggregated soft violation Φ (μ = {mu}), test split, {how}\n\n"
              f"The constraint of the constrained methods is Φ ≤ ε = {eps} (mean over "
              "seeds).\n\n" + markdown_table(["method", "Φ (test)", "Φ ≤ ε"], rows))


def _figure(w: StudyWriter, ds: MTLDataset, methods: Sequence[str], stats: Stats,
            title_extra: str) -> None:
    T = len(ds.tasks)
    ncols = min(T, 3)
    nrows = math.ceil(T / ncols)
    fig, axes = new_figure(nrows, ncols, width=4.3, height=3.5)
    for i, task in enumerate(ds.tasks):
        ax = axes[i // ncols, i % ncols]
        fk, uk = FAIRNESS_METRIC[task.kind], UTILITY_METRIC[task.kind]
        for j, m in enumerate(methods):
            f, u = stats.get((m, task.name, fk)), stats.get((m, task.name, uk))
            if f is None or u is None or math.isnan(f[0]) or math.isnan(u[0]):
                continue
            xerr = None if f[1] is None else [[f[0] - f[1]], [f[2] - f[0]]]  # type: ignore[operator]
            yerr = None if u[1] is None else [[u[0] - u[1]], [u[2] - u[0]]]  # type: ignore[operator]
            ax.errorbar(f[0], u[0], xerr=xerr, yerr=yerr, fmt="os^vDPX*"[j % 8],
                        color=f"C{j}", label=m, capsize=2)
        ax.set_xlabel(f"{fk.upper()} (lower is fairer)")
        ax.set_ylabel(uk)
        ax.set_title(f"{task.name} ({task.kind})", fontsize=9)
    for cell in range(T, nrows * ncols):
        axes[cell // ncols, cell % ncols].axis("off")
    axes[0, 0].legend(fontsize=6)
    bars = ("95% t-intervals over seeds" if w.config.seeds >= 2 else
            "one seed, no interval")
    w.figure(fig, "tradeoff.png", f"Fairness against utility per task on {ds.name}{title_extra}"
             f" (test split, mean over seeds, bars: {bars})")


def _task_verdict(fair: Verdict, util: Verdict) -> tuple[str, bool]:
    """The words of one task's verdict and whether it counts as fairer at equal utility."""
    if fair.direction < 0:
        if util.direction > 0:
            return "fairer at equal utility", True
        if util.direction < 0:
            return "fairer but less useful", False
        return "fairer, but whether the utility loss stays within the tolerance is not " \
            "resolved", False
    if fair.direction > 0:
        return "LESS fair", False
    return fair.describe("fairer", "LESS fair"), False


def _verdict_section(samples: MetricSamples, tol: float) -> str:
    rows = []
    for task in samples.ds.tasks:
        fk, uk = FAIRNESS_METRIC[task.kind], UTILITY_METRIC[task.kind]
        fair = samples.verdict("fairmt", "linear", task.name, "fairness")
        util = samples.verdict("fairmt", "linear", task.name, "utility", margin=-tol)
        for kind, name, v in (("fairness", fk, fair), ("utility", uk, util)):
            seeds = ("n/a (1 seed)" if v.seeds is None else
                     f"[{v.seeds.low:+.4f}, {v.seeds.high:+.4f}]")
            word = (fair.describe("fairer", "LESS fair") if kind == "fairness" else
                    util.describe("within tolerance", "more than the tolerance below"))
            if kind == "utility" and util.direction < 0:
                word = f"loss beyond {tol:g}"
            elif kind == "utility" and util.direction > 0:
                word = f"loss at most {tol:g} (resolved)"
            rows.append([task.name, name, f"{v.estimate:+.4f}", seeds,
                         f"[{v.bootstrap.low:+.4f}, {v.bootstrap.high:+.4f}]",
                         f"[{v.interval.low:+.4f}, {v.interval.high:+.4f}]", word])
    return ("## Verdicts: FairMT − linear scalarisation, test split\n\n"
            f"{samples.method}. The verdict interval is the hull of the two; a fairness "
            "difference is resolved when it excludes 0, equal utility when it lies above "
            f"−{tol:g}.\n\n"
            + markdown_table(["task", "metric", "Δ (mean)", "seeds (t)", "bootstrap",
                              "verdict interval", "verdict"], rows))


def compare_summary(samples: MetricSamples | None, methods: Sequence[str], eps: float,
                    stats: Stats | None = None, *, tol: float = UTILITY_TOLERANCE) -> str:
    r"""The automatically written verdict of ``compare`` from the intervals of ``samples``.

    For each task, FairMT is *fairer* than linear scalarisation when the verdict interval of
    the difference of the fairness metric (EO, or KS for regression) lies below 0, and at
    *equal utility* when that of the utility difference (accuracy, or CCC) lies above
    :math:`-\mathrm{tol}` (0.01): both resolved by
    :meth:`~fairmt_opt.studies._evidence.MetricSamples.verdict` (t-interval over seeds and
    paired bootstrap over the test samples). Anything else is stated as it is, "not resolved"
    included. ``stats`` (means of ``results.csv``) adds Φ and the final η.
    """
    if samples is None or "fairmt" not in methods or "linear" not in methods:
        return ("Summary statistics per method are in the tables below (the FairMT vs linear "
                "comparison needs both methods).")
    stats = stats or {}
    ds = samples.ds
    better = unresolved = 0
    lines = []
    for task in ds.tasks:
        fk, uk = FAIRNESS_METRIC[task.kind], UTILITY_METRIC[task.kind]
        fair = samples.verdict("fairmt", "linear", task.name, "fairness")
        util = samples.verdict("fairmt", "linear", task.name, "utility", margin=-tol)
        words, good = _task_verdict(fair, util)
        better += good
        unresolved += fair.direction == 0
        lines.append(
            f"`{task.name}`: {fk.upper()} {samples.interval('fairmt', task.name, 'fairness')} "
            f"(FairMT) vs {samples.interval('linear', task.name, 'fairness')} (linear), "
            f"Δ {fair.estimate:+.4f} [{fair.interval.low:+.4f}, {fair.interval.high:+.4f}]; "
            f"{uk} Δ {util.estimate:+.4f} [{util.interval.low:+.4f}, "
            f"{util.interval.high:+.4f}]: {words}")
    T = len(ds.tasks)
    head = (f"On {ds.name} (test split; {samples.method}), FairMT was fairer than linear "
            f"scalarisation at equal utility (utility at most {tol} below linear's, both "
            f"resolved) on {better} of {T} task(s)")
    if better == 0:
        head += ": it did NOT improve fairness at equal utility on this dataset"
    if unresolved:
        head += f"; the fairness difference was not resolved on {unresolved} of {T}"
    if ("fairmt", "all", "phi") in stats and ("linear", "all", "phi") in stats:
        phi_fm, phi_li = stats[("fairmt", "all", "phi")][0], stats[("linear", "all", "phi")][0]
        head += (f". The aggregated soft violation Φ was {phi_fm:.4f} for FairMT and "
                 f"{phi_li:.4f} for linear scalarisation (constraint ε = {eps}; FairMT "
                 f"{'met' if phi_fm <= eps else 'did NOT meet'} it on the test split, mean "
                 "over seeds)")
    eta = stats.get(("fairmt", "all", "final_eta"))
    if eta is not None:
        head += (f". FairMT's dual variable ended at η = {eta[0]:.3g} (mean over seeds)"
                 + (", i.e. the constraint was inactive and FairMT trained like an "
                    "unconstrained method" if eta[0] == 0 else ""))
    text = head + ". Per task: " + "; ".join(lines) + "."
    have = {lab for lab, _ in samples.values}
    if "fairmt_none" in have:
        vs = [samples.verdict("fairmt", "fairmt_none", t.name, "fairness") for t in ds.tasks]
        resolved = [t.name for t, v in zip(ds.tasks, vs) if v.resolved]
        if not resolved:
            text += (" FairMT and FairMT without the head-aware proxy (uniform α, "
                     "`fairmt_none`) differ by no resolved amount in fairness on any task"
                     + (": on this dataset the fairness gain comes from the constraint, not "
                        "from the proxy QP." if better else "."))
        else:
            text += (" FairMT and FairMT without the proxy (`fairmt_none`) differ resolvably "
                     "in fairness on " + ", ".join(f"`{n}`" for n in resolved) + " ("
                     + "; ".join(f"Δ {v.estimate:+.4f} [{v.interval.low:+.4f}, "
                                 f"{v.interval.high:+.4f}]" for v in vs if v.resolved)
                     + ", FairMT − fairmt_none).")
    _, group_lines = lift_only_section(samples)
    text += " Per group: " + "; ".join(group_lines) + "."
    return text


def run_compare(config: StudyConfig) -> StudyResult:
    """Every method of :data:`fairmt_opt.torch.METHODS` on a dataset: every evaluation metric
    per task (mean and t-interval over seeds), per-group rates (``groups.csv``), the verdicts
    of :func:`compare_summary` and a fairness–utility scatter per task."""
    from ..torch import METHODS

    methods = _check_methods(config.methods or METHODS, METHODS)
    ds = _dataset(config)
    if config.study == "partial-labels":
        ds = ds.keep_labels(config.label_fraction, seed=0)
    settings = _settings(config)
    w = StudyWriter(config, {"settings": settings.as_dict(), "dataset": repr(ds),
                             "dataset_info": ds.info,
                             "bootstrap": {"resamples": config.resamples, "seed": 0,
                                           "level": 0.95, "split": "test",
                                           "methods": [m for m in VERDICT_METHODS
                                                       if m in methods]}})
    outputs = _run_methods(config, w, ds, methods, settings, hist_every=4)
    extra = (f" with {config.label_fraction:.0%} of the training labels"
             if config.study == "partial-labels" else "")
    eps = float(settings.method_options["eps"])
    stats = {**_intervals(w.results, "test"), **_intervals(w.results, "train")}
    _tables(w, ds, methods, eps, stats)
    _figure(w, ds, methods, stats, extra)
    labels = [m for m in VERDICT_METHODS if m in methods]
    if "fairmt" in labels and "linear" in labels:
        samples = sample_metrics(ds, outputs, resamples=config.resamples, labels=labels)
        w.section(_verdict_section(samples, UTILITY_TOLERANCE))
        w.section(lift_only_section(samples)[0])
        summary = compare_summary(samples, methods, eps, stats)
    else:
        summary = compare_summary(None, methods, eps)
    title = ("Study: partial labels" if config.study == "partial-labels"
             else "Study: method comparison")
    return w.finish(f"{title} on {ds.name}{extra}", summary)


def run_partial_labels(config: StudyConfig) -> StudyResult:
    """``compare`` when only ``label_fraction`` (default 30%) of each task's training labels
    are kept (a seeded random subset per task; validation and test keep all labels)."""
    return run_compare(config)
