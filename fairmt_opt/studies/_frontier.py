r"""The ``frontier`` study: fairness–utility fronts of every constrained method over a sweep
of its constraint level, against linear scalarisation with a fixed penalty and fairlearn.

==================  =========================================================================
method              swept knob
==================  =========================================================================
``fairmt``          ``eps``: the level ε of :math:`\Phi \le \varepsilon` (dual ascent on η)
``symmetric``       ``eps`` (symmetric violations)
``fairmt_none``     ``eps`` (uniform α)
``mean``            ``eps`` (mean aggregation of the violations)
``ls_penalty``      ``lambda``: linear scalarisation with a fixed penalty
                    :math:`\sum_t L_t + \lambda\Phi` (``linear`` at λ = 0)
``fairlearn``       the references of :mod:`._reductions` (``bound`` of the reductions)
==================  =========================================================================

The fixed penalty is FairMT composed with the uniform proxy and a dual ascent that cannot
move: ε = 0 and :math:`\eta_0 = \eta_{\max} = \lambda` (Φ ≥ 0, so every dual step clips back
to λ), i.e. ``make_method("fairmt_none", eps=0, eta=λ, eta_max=λ)``: α̃ = 1 and the loss is
:math:`\sum_t L_t + \lambda\Phi`.

Every point is trained by :func:`fairmt_opt.studies.train_method` for every seed and
evaluated on the test split: per task its fairness metric (EO, KS for regression) and utility
metric (accuracy, CCC), and the aggregate ``all`` (Φ with μ = 0.1 against the mean utility).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..datasets import MTLDataset
from ..plots import new_figure
from ._common import StudyConfig, StudyResult, StudyWriter, _write_csv, markdown_table, progress
from ._evidence import (
    LiftOnlyVerdict,
    lift_only_section,
    lift_only_verdicts,
    record_group_rates,
    sample_metrics,
)
from ._groups import group_rate_rows
from ._pareto import hypervolume, leaders, pareto_front, reference_point
from ._training import (
    FAIRNESS_METRIC,
    UTILITY_METRIC,
    _dataset,
    _settings,
    evaluate,
    split_outputs,
    train_method,
)

__all__ = ["FRONTIER_COLUMNS", "FRONTIER_METHODS", "HV_COLUMNS", "LIFT_COLUMNS",
           "REFERENCE_COLUMNS", "point_label", "penalty_method", "run_frontier"]

CONSTRAINED = ("fairmt", "symmetric", "fairmt_none", "mean")
FRONTIER_METHODS = (*CONSTRAINED, "ls_penalty", "fairlearn")
FRONTIER_COLUMNS = ("method", "knob", "value", "seed", "task", "fairness_metric", "fairness",
                    "utility_metric", "utility", "phi", "pareto", "pareto_all")
HV_COLUMNS = ("task", "method", "seed", "hypervolume", "front_points", "points",
              "ref_fairness", "ref_utility")
LIFT_COLUMNS = ("eps", "task", "rate", "best_group", "worst_group",
                "fairmt_best_delta", "fairmt_best_low", "fairmt_best_high",
                "fairmt_worst_delta", "fairmt_worst_low", "fairmt_worst_high",
                "symmetric_best_delta", "symmetric_best_low", "symmetric_best_high",
                "best_kept", "worst_lifted", "symmetric_lowered_best")
#: the columns of ``references.csv``: every fairlearn reference on every detection task
REFERENCE_COLUMNS = ("method", "knob", "value", "task", "fairness", "utility", "fit_time_s",
                     "skipped")
EVAL_MU = 0.1
#: the reference of the per-group verdicts: unconstrained linear scalarisation (λ = 0)
LIFT_REFERENCE = "ls_penalty[lambda=0]"

GRIDS = {
    "full": {"eps": (0.005, 0.02, 0.035, 0.05, 0.07, 0.1),
             "lambda": (0.0, 1.0, 2.0, 4.0, 8.0, 16.0), "bound": (0.01, 0.03, 0.05, 0.1)},
    "quick": {"eps": (0.02, 0.1), "lambda": (0.0, 4.0), "bound": (0.05,)},
}


def penalty_method(lam: float) -> tuple[str, dict[str, Any]]:
    r"""The method and options of linear scalarisation with the fixed penalty
    :math:`\sum_t L_t + \lambda \Phi` (``linear`` at :math:`\lambda = 0`).

    Examples
    --------
    >>> penalty_method(0.0)
    ('linear', {})
    >>> penalty_method(2.0)
    ('fairmt_none', {'eps': 0.0, 'eta': 2.0, 'eta_max': 2.0})
    >>> penalty_method(-1.0)
    Traceback (most recent call last):
    ...
    ValueError: lambda must be a finite number >= 0, got -1.0
    """
    if not math.isfinite(lam) or lam < 0:
        raise ValueError(f"lambda must be a finite number >= 0, got {lam}")
    if lam == 0:
        return "linear", {}
    return "fairmt_none", {"eps": 0.0, "eta": float(lam), "eta_max": float(lam)}


def point_label(method: str, knob: str, value: float) -> str:
    """The label of one point of a sweep in ``results.csv``, ``groups.csv`` and
    ``timings.csv``: ``method[knob=value]``.

    Examples
    --------
    >>> point_label("fairmt", "eps", 0.05), point_label("ls_penalty", "lambda", 0.0)
    ('fairmt[eps=0.05]', 'ls_penalty[lambda=0]')
    """
    return f"{method}[{knob}={value:g}]"


def _points(ds: MTLDataset, rows: list[tuple[str, str, float]]) -> list[tuple[str, str, float,
                                                                          str, float]]:
    """``(task, fairness_metric, fairness, utility_metric, utility)`` per task and ``all``."""
    vals = {(task, metric): v for task, metric, v in rows}
    out = []
    for task in ds.tasks:
        fk, uk = FAIRNESS_METRIC[task.kind], UTILITY_METRIC[task.kind]
        if (task.name, fk) in vals and (task.name, uk) in vals:
            out.append((task.name, fk, vals[(task.name, fk)], uk, vals[(task.name, uk)]))
    utils = [u for *_, u in out]
    if len(out) == len(ds.tasks):
        out.append(("all", "phi", vals[("all", "phi")], "mean_utility", float(np.mean(utils))))
    return out


def _train_points(config: StudyConfig, w: StudyWriter, ds: MTLDataset, methods: Sequence[str],
                  grid: dict[str, tuple[float, ...]]
                  ) -> tuple[list[dict[str, Any]], dict[tuple[str, int], list[np.ndarray]]]:
    """Train every point for every seed; record its results, timings and per-group rates
    (``groups.csv``); return the rows of ``frontier.csv`` and the test outputs of every
    ``(label, seed)``."""
    settings = _settings(config)
    jobs = []
    for m in methods:
        if m in CONSTRAINED:
            jobs += [(m, "eps", v) for v in grid["eps"]]
        elif m == "ls_penalty":
            jobs += [(m, "lambda", v) for v in grid["lambda"]]
    rows: list[dict[str, Any]] = []
    outputs: dict[tuple[str, int], list[np.ndarray]] = {}
    runs = [(j, s) for j in jobs for s in range(config.seeds)]
    for (label, knob, value), seed in progress(runs, desc=f"frontier:{ds.name}"):
        if knob == "eps":
            method, opts = label, {"eps": float(value)}
        else:
            method, opts = penalty_method(float(value))
        tr = train_method(method, ds, seed=seed, settings=settings, device=config.device,
                          options=opts)
        res, _ = evaluate(ds, tr, "test", EVAL_MU)
        name = point_label(label, knob, float(value))
        outputs[(name, seed)] = split_outputs(ds, tr, "test")
        record_group_rates(w, ds, name, seed, outputs[(name, seed)], "test")
        for task, metric, v in res:
            w.result(name, seed, "test", task, metric, v)
        w.result(name, seed, "train", "all", "final_eta", float(tr.method.eta))
        w.timing(name, seed, "all", "train_time_s", tr.seconds)
        phi = next(v for t, mt, v in res if t == "all" and mt == "phi")
        for task, fk, f, uk, u in _points(ds, res):
            rows.append({"method": label, "knob": knob, "value": float(value), "seed": seed,
                         "task": task, "fairness_metric": fk, "fairness": f,
                         "utility_metric": uk, "utility": u, "phi": phi})
    return rows, outputs


def _reference_points(config: StudyConfig, w: StudyWriter, ds: MTLDataset,
                      bounds: Sequence[float]) -> tuple[list[dict[str, Any]],
                                                        list[dict[str, Any]]]:
    """Fit the fairlearn references; record their results, fit times and per-group rates
    (``groups.csv``, seed 0) and write ``references.csv`` (:data:`REFERENCE_COLUMNS`: every
    reference on every detection task, ``skipped`` the reason one could not be fitted).
    Returns the rows of ``frontier.csv`` and the rows of ``references.csv``."""
    from ._reductions import run_references

    rows, table = [], []
    pts = run_references(ds, bounds=bounds, seed=0, eg_max_iter=10 if config.quick else 50)
    te = ds.split("test")
    index = {t.name: i for i, t in enumerate(ds.tasks)}
    fk, uk = FAIRNESS_METRIC["detection"], UTILITY_METRIC["detection"]
    for p in pts:
        table.append({"method": p.method, "knob": p.knob, "value": p.value, "task": p.task,
                      "fairness": p.metrics.get(fk, "-"), "utility": p.metrics.get(uk, "-"),
                      "fit_time_s": p.seconds, "skipped": p.skipped or "-"})
        if p.skipped:
            continue
        name = p.label
        for k, v in p.metrics.items():
            w.result(name, 0, "test", p.task, k, v)
        w.timing(name, 0, p.task, "fit_time_s", p.seconds)
        t = index[p.task]
        for g, metric, value, count in group_rate_rows(ds.tasks[t], p.outputs, te.targets[t],
                                                       te.mask[:, t], te.groups, ds.n_groups):
            w.group(name, 0, "test", p.task, ds.group_names[g], metric, value, count)
        if fk in p.metrics and uk in p.metrics:
            rows.append({"method": p.method, "knob": p.knob, "value": p.value, "seed": 0,
                         "task": p.task, "fairness_metric": fk, "fairness": p.metrics[fk],
                         "utility_metric": uk, "utility": p.metrics[uk], "phi": "-",
                         "seconds": p.seconds})
    w.write_csv("references.csv", REFERENCE_COLUMNS, table)
    return rows, table


def _mean_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, knob, value, task): the means over seeds (``seed = "mean"``)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["knob"], str(r["value"]), r["task"]), []).append(r)
    out = []
    for grp in groups.values():
        first = dict(grp[0])
        first["seed"] = "mean"
        for key in ("fairness", "utility", "phi"):
            if first[key] != "-":
                first[key] = float(np.mean([g[key] for g in grp]))
        if "seconds" in first:  # the references: one fit each, its wall-clock seconds kept
            first["seconds"] = float(np.mean([g["seconds"] for g in grp]))
        out.append(first)
    return out


def _mark_fronts(means: list[dict[str, Any]]) -> None:
    """``pareto``: on its method's front (per task); ``pareto_all``: on the pooled front."""
    tasks = sorted({r["task"] for r in means})
    for task in tasks:
        sel = [r for r in means if r["task"] == task]
        on_all = pareto_front([r["fairness"] for r in sel], [r["utility"] for r in sel])
        for r, flag in zip(sel, on_all):
            r["pareto_all"] = "yes" if flag else "no"
        for m in sorted({r["method"] for r in sel}):
            own = [r for r in sel if r["method"] == m]
            on = pareto_front([r["fairness"] for r in own], [r["utility"] for r in own])
            for r, flag in zip(own, on):
                r["pareto"] = "yes" if flag else "no"


def _hypervolumes(rows: list[dict[str, Any]], means: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """HV of each method's front per task: of the seed means (``seed = "mean"``) and of each
    seed's own points, all against one reference point per task (the nadir of every mean
    point of every method on it)."""
    out = []
    for task in sorted({r["task"] for r in means}):
        sel = [r for r in means if r["task"] == task]
        ref = reference_point([r["fairness"] for r in sel], [r["utility"] for r in sel])
        for m in dict.fromkeys(r["method"] for r in sel):
            seeds: list[Any] = ["mean", *sorted({r["seed"] for r in rows
                                                  if r["task"] == task and r["method"] == m})]
            for s in seeds:
                pts = [r for r in (sel if s == "mean" else rows)
                       if r["task"] == task and r["method"] == m and r["seed"] == s]
                f, u = [p["fairness"] for p in pts], [p["utility"] for p in pts]
                out.append({"task": task, "method": m, "seed": s,
                            "hypervolume": hypervolume(f, u, ref),
                            "front_points": int(pareto_front(f, u).sum()), "points": len(pts),
                            "ref_fairness": ref[0], "ref_utility": ref[1]})
    return out


_MARKERS = {"fairmt": "o", "symmetric": "s", "fairmt_none": "^", "mean": "v",
            "ls_penalty": "D", "logreg": "*", "eg_eo": "X", "eg_dp": "P",
            "threshold_eo": "<", "threshold_dp": ">"}


def _figure(w: StudyWriter, ds: MTLDataset, means: list[dict[str, Any]]) -> None:
    tasks = [*[t.name for t in ds.tasks], "all"]
    ncols = min(len(tasks), 4)
    nrows = math.ceil(len(tasks) / ncols)
    fig, axes = new_figure(nrows, ncols, width=4.0, height=3.4)
    methods = list(dict.fromkeys(r["method"] for r in means))
    for i, task in enumerate(tasks):
        ax = axes[i // ncols, i % ncols]
        sel = [r for r in means if r["task"] == task]
        for j, m in enumerate(methods):
            own = [r for r in sel if r["method"] == m]
            if not own:
                continue
            f = np.array([r["fairness"] for r in own])
            u = np.array([r["utility"] for r in own])
            ref = m not in (*CONSTRAINED, "ls_penalty")
            ax.scatter(f, u, marker=_MARKERS.get(m, "o"), color=f"C{j % 10}", s=22 if ref else 14,
                       alpha=0.9 if ref else 0.45, label=m)
            on = np.array([r["pareto"] == "yes" for r in own])
            if not ref and on.any():
                order = np.argsort(f[on])
                ax.step(f[on][order], u[on][order], where="post", color=f"C{j % 10}", lw=1.2)
        if sel:
            ax.set_xlabel(f"{sel[0]['fairness_metric'].upper()} (lower is fairer)")
            ax.set_ylabel(sel[0]["utility_metric"])
        ax.set_title(task if task != "all" else "aggregate: Φ against mean utility", fontsize=9)
    for cell in range(len(tasks), nrows * ncols):
        axes[cell // ncols, cell % ncols].axis("off")
    axes[0, 0].legend(fontsize=6)
    w.figure(fig, "frontier.png", f"Fairness–utility points on {ds.name} (test split, mean over "
             "seeds) and each method's Pareto front (steps); fairlearn references as large "
             "markers (detection tasks only)")


def _fmt_levels(intervals: list[tuple[float, float, tuple[str, ...]]]) -> str:
    parts = []
    for a, b, who in intervals:
        span = f"≥ {a:.3f}" if math.isinf(b) else f"[{a:.3f}, {b:.3f})"
        parts.append(f"{span}: {', '.join(who)}")
    return "; ".join(parts)


def _report(w: StudyWriter, ds: MTLDataset, means: list[dict[str, Any]],
            hv: list[dict[str, Any]], refs: list[dict[str, Any]]) -> str:
    tasks = [*[t.name for t in ds.tasks], "all"]
    lines, table = [], []
    for task in tasks:
        sel = [r for r in means if r["task"] == task]
        if not sel:
            continue
        hvs = {r["method"]: r for r in hv if r["task"] == task and r["seed"] == "mean"}
        per_seed: dict[str, list[float]] = {}
        for r in hv:
            if r["task"] == task and r["seed"] != "mean":
                per_seed.setdefault(r["method"], []).append(r["hypervolume"])
        for m, r in hvs.items():
            s = per_seed.get(m, [])
            spread = (f"{np.mean(s):.4g} ± {np.std(s):.2g}" if len(s) > 1 else
                      "— (one fit)" if m not in (*CONSTRAINED, "ls_penalty") else
                      f"{s[0]:.4g}" if s else "—")
            table.append([task, m, f"{r['hypervolume']:.4g}", spread,
                          f"{r['front_points']}/{r['points']}",
                          f"({r['ref_fairness']:.4f}, {r['ref_utility']:.4f})"])
        best = max(hvs.values(), key=lambda r: r["hypervolume"])
        ours = {m: [(r["fairness"], r["utility"]) for r in sel if r["method"] == m]
                for m in dict.fromkeys(r["method"] for r in sel)}
        lead = leaders({m: (np.array([p[0] for p in v]), np.array([p[1] for p in v]))
                        for m, v in ours.items()})
        fk = sel[0]["fairness_metric"].upper()
        own = [r for r in sel if r["pareto_all"] == "yes"]
        owners = sorted({r["method"] for r in own})
        fm = hvs.get("fairmt")
        rank = sorted(hvs, key=lambda m: -hvs[m]["hypervolume"])
        lines.append(
            f"- `{task}`: largest hypervolume **{best['method']}** ({best['hypervolume']:.4g})"
            + (f"; FairMT ranks {rank.index('fairmt') + 1} of {len(rank)} "
               f"({fm['hypervolume']:.4g})" if fm is not None else "")
            + f". The pooled front is made of points of {', '.join(owners)}. Best utility "
            f"reachable by {fk} level: {_fmt_levels(lead)}.")
    w.section("## Hypervolumes (test split)\n\nEach method's front is the Pareto front of its "
              "sweep (points = seed means); its hypervolume is the area it dominates up to the "
              "reference point of the task, the nadir (largest fairness gap, smallest utility) "
              "of every mean point of every method on that task. The per-seed column gives "
              "the mean ± std over seeds of the hypervolume of each seed's own front against "
              "the same reference.\n\n"
              + markdown_table(["task", "method", "HV (front of means)", "HV per seed",
                                "front / points", "reference (fairness, utility)"], table))
    if refs:
        rt = [[r["method"], r["value"], r["task"],
               "—" if r["skipped"] != "-" else f"{r['fairness']:.4f}",
               "—" if r["skipped"] != "-" else f"{r['utility']:.4f}",
               f"{r['fit_time_s']:.2f}",
               "fitted" if r["skipped"] == "-" else f"skipped: {r['skipped']}"]
              for r in refs]
        skipped = [r for r in refs if r["skipped"] != "-"]
        w.section("## fairlearn references (one logistic regression per detection task)\n\n"
                  "Fit time: wall-clock seconds of the fit on the training split and the test "
                  "prediction (also in `timings.csv`, `fit_time_s`). A reference that could "
                  "not be fitted on a task is skipped there, with the reason (also in "
                  f"`references.csv`, column `skipped`): {len(skipped)} of {len(refs)} "
                  "skipped.\n\n"
                  + markdown_table(["method", "bound", "task", "EO", "accuracy", "fit time (s)",
                                    "status"], rt))
    return (f"Fronts on {ds.name}, test split (fairness metric lower is fairer; the "
            "leaders are the methods with the highest utility at fairness ≤ the level):\n\n"
            + "\n".join(lines))


def _levels(eps: Sequence[float]) -> str:
    return "{" + ", ".join(f"{e:g}" for e in eps) + "}" if eps else "none"


def _lift_only(config: StudyConfig, w: StudyWriter, ds: MTLDataset,
               outputs: dict[tuple[str, int], list[np.ndarray]], eps: Sequence[float]) -> str:
    r"""The per-group verdicts on the lift-only claim at every ε of the sweep: FairMT and the
    symmetric constraint at that ε against unconstrained linear scalarisation
    (:data:`LIFT_REFERENCE`), by :func:`~fairmt_opt.studies._evidence.lift_only_verdicts`
    on one :func:`~fairmt_opt.studies._evidence.sample_metrics` bootstrap of every point
    involved. Adds one report section per ε, writes ``lift_only.csv`` (:data:`LIFT_COLUMNS`)
    and returns the summary: per task, at how many ε FairMT kept the best group's rate
    and raised the worst group's, and at how many the symmetric constraint lowered the best
    group's."""
    have = {lab for lab, _ in outputs}
    levels = [e for e in eps if point_label("fairmt", "eps", e) in have]
    if LIFT_REFERENCE not in have or not levels:
        return ("Per group: the lift-only verdicts need `fairmt` and `ls_penalty` (λ = 0) in "
                "the same run.")
    labels = [LIFT_REFERENCE]
    for e in levels:
        labels += [lab for lab in (point_label("fairmt", "eps", e),
                                   point_label("symmetric", "eps", e)) if lab in have]
    samples = sample_metrics(ds, outputs, resamples=config.resamples, labels=labels,
                             rates_only=True)
    by_eps: dict[float, list[LiftOnlyVerdict]] = {}
    rows = []

    def cells(v: Any) -> list[Any]:
        return ["-"] * 3 if v is None else [v.estimate, v.interval.low, v.interval.high]

    for e in levels:
        fm, sym = point_label("fairmt", "eps", e), point_label("symmetric", "eps", e)
        by_eps[e] = lift_only_verdicts(samples, fairmt=fm, symmetric=sym,
                                       reference=LIFT_REFERENCE)
        w.section(lift_only_section(samples, fairmt=fm, symmetric=sym,
                                    reference=LIFT_REFERENCE, title=f" at ε = {e:g}")[0])
        for v in by_eps[e]:
            if v.kept is None:
                continue
            lowered = v.symmetric_lowered
            rows.append(dict(zip(LIFT_COLUMNS, [
                e, v.task, v.rate, ds.group_names[v.best], ds.group_names[v.worst],
                *cells(v.kept), *cells(v.lifted), *cells(v.symmetric),
                "yes" if v.best_kept else "no", "yes" if v.worst_lifted else "no",
                "-" if lowered is None else "yes" if lowered else "no"])))
    w.write_csv("lift_only.csv", LIFT_COLUMNS, rows)
    lines = []
    for i, task in enumerate(ds.tasks):
        first = by_eps[levels[0]][i]
        if first.kept is None:
            lines.append(f"`{task.name}`: {first.note}")
            continue
        vs = {e: by_eps[e][i] for e in levels}
        kept = [e for e, v in vs.items() if v.best_kept]
        lifted = [e for e, v in vs.items() if v.worst_lifted]
        both = [e for e in kept if e in lifted]
        rate = first.rate
        text = (f"`{task.name}` ({rate}; best group {ds.group_names[first.best]}, worst "
                f"{ds.group_names[first.worst]} under linear scalarisation): FairMT kept the "
                f"best group's {rate} (no resolved loss) at {len(kept)} of {len(levels)} ε "
                f"and {'raised' if first.higher else 'lowered'} the worst group's (resolved) "
                f"at {len(lifted)}; both at ε ∈ {_levels(both)}")
        sym_eps = [e for e, v in vs.items() if v.symmetric is not None]
        if sym_eps:
            low = [e for e in sym_eps if vs[e].symmetric_lowered]
            text += (f"; the symmetric constraint resolvably worsened the best group's "
                     f"{rate} at {len(low)} of {len(sym_eps)} ε (ε ∈ {_levels(low)})")
        lines.append(text)
    return ("Per group (lift-only claim; FairMT and the symmetric constraint at each ε "
            f"against linear scalarisation, λ = 0; {samples.method}): "
            + "; ".join(lines) + ". The tables per ε are below and in `lift_only.csv`.")


def run_frontier(config: StudyConfig) -> StudyResult:
    r"""Fairness–utility fronts: every constrained method over a sweep of ε, linear
    scalarisation with a fixed penalty over a sweep of λ, fairlearn's reductions as an
    outside reference; Pareto fronts, hypervolumes and the fairness levels where the
    leading method changes. Writes ``frontier.csv`` (:data:`FRONTIER_COLUMNS`) and
    ``hypervolume.csv`` (:data:`HV_COLUMNS`) besides the usual files."""
    methods = tuple(config.methods or FRONTIER_METHODS)
    bad = [m for m in methods if m not in FRONTIER_METHODS]
    if bad:
        raise ValueError(f"methods must be among {FRONTIER_METHODS}, got {bad}")
    grid = GRIDS["quick" if config.quick else "full"]
    ds = _dataset(config)
    settings = _settings(config)
    w = StudyWriter(config, {"settings": settings.as_dict(), "grid": grid,
                             "eval_mu": EVAL_MU, "dataset": repr(ds), "dataset_info": ds.info})
    rows, outputs = _train_points(config, w, ds, methods, grid)
    refs: list[dict[str, Any]] = []
    ref_table: list[dict[str, Any]] = []
    if "fairlearn" in methods and any(t.kind == "detection" for t in ds.tasks):
        refs, ref_table = _reference_points(config, w, ds, grid["bound"])
    means = _mean_rows(rows + refs)
    _mark_fronts(means)
    for r in rows + refs:
        r["pareto"] = r["pareto_all"] = "-"
    hv = _hypervolumes(rows + refs, means)
    _write_csv(w.out / "frontier.csv", FRONTIER_COLUMNS, rows + refs + means)
    _write_csv(w.out / "hypervolume.csv", HV_COLUMNS, hv)
    _figure(w, ds, means)
    summary = _report(w, ds, means, hv, ref_table)
    summary += "\n\n" + _lift_only(config, w, ds, outputs, grid["eps"])
    w.section("## Files of this study\n\n`frontier.csv`: every point (per seed, and its seed "
              "mean with `seed = mean`, where `pareto` marks the method's own front and "
              "`pareto_all` the pooled front of every method); `hypervolume.csv`: the "
              "hypervolume of every method's front per task and for the aggregate `all` "
              "(Φ against the mean utility), with its reference point; `groups.csv`: every "
              "group's rates at every point and seed (method `method[knob=value]`); "
              "`lift_only.csv`: the per-group verdicts at every ε; `references.csv`: every "
              "fairlearn reference on every detection task, with the reason (`skipped`) "
              "where one could not be fitted.\n")
    res = w.finish(f"Study: fairness–utility fronts on {ds.name}", summary)
    return dataclasses.replace(res, files=(*res.files, "frontier.csv", "hypervolume.csv"))
