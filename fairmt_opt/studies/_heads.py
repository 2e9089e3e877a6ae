r"""The ``heads`` study: does the head-aware proxy correct anisotropy that the heads induce?

FairMT sets the task weights :math:`\alpha` from a simplex QP on directions (SPEC §6),

.. math::

    \alpha = \arg\min_{\alpha \in \Delta} \tfrac12 \alpha^\top K \alpha + b^\top \alpha,
    \qquad K = R R^\top,\quad b = \eta R r_\Phi ,

and the proxy decides what the rows of :math:`R` are: ``head`` the directions through the
heads, :math:`r_t = A_t^\top \sum_i \partial L_t / \partial z_{it}` (:math:`O(T^2 d)`),
``rep`` the per-sample gradients with respect to the representations (MGDA-UB), ``full`` the
gradients with respect to every shared parameter (MGDA, one encoder backward per task) and
``none`` no QP (uniform :math:`\alpha`). All four run as FairMT (same primal–dual, same
:math:`\varepsilon`, the default ``l2`` gradient normalisation) on the same synthetic tasks,
from the same initialisation, with one controlled change of the heads:

===============  ==========================================================================
setting          what the ``factor`` is
===============  ==========================================================================
``weight_norm``  the weight matrix of the first task's head multiplied by the factor at
                 initialisation (1, 10, 100; trained as usual)
``logit_gain``   a fixed (untrained) gain on the first task's logits, :math:`z = g(Ah + c)`,
                 :math:`g` = 1, 10, 100: the logits' sensitivity to :math:`h` and to the
                 head's parameters
``direction``    every head's weight rows set to unit directions with pairwise cosine equal
                 to the factor (0: orthogonal, 0.9, 0.99: nearly collinear), rescaled to their
                 initial norms and frozen (the biases train)
``saturation``   the first task's head bias shifted by the factor (0, 4, 8 logits), so that its
                 sigmoid starts saturated
===============  ==========================================================================

The data are :func:`fairmt_opt.datasets.make_synthetic` with four tasks (detection,
classification, regression, detection) on one shared representation and a minority group
disadvantaged in every task (so that the constraint :math:`\Phi \le \varepsilon` binds).
For every (setting, factor, proxy, seed) the study records

* **steps to feasibility**: the first evaluated step at which :math:`\Phi` on the whole
  training split is :math:`\le \varepsilon` (evaluated at step 0 and every ``eval_every``
  steps, every 7 in the full run; the unchanged model starts infeasible, :math:`\Phi` from
  0.055 to 0.21 at initialisation over the 3 seeds of the full run; NaN, written ``nan``,
  when no evaluation is feasible within the training budget), and :math:`\Phi` on the
  training split at the end;
* on the test split, per task, the utility (accuracy, or CCC for regression), the fairness
  metric (EO, or KS for regression) and the soft violation :math:`\psi_t`, and :math:`\Phi`;
* the mean :math:`\alpha_t` over the logged training steps and the final :math:`\eta`;
* the training time per step (in ``timings.csv``: wall-clock differs between runs).

Outputs: ``heads.csv`` (``setting, factor, proxy, seed, task, metric, value``; the
``factor`` column is the anisotropy factor), ``heads_verdicts.csv`` (``head`` against every
other proxy, per setting and factor, with intervals), ``results.csv``, ``groups.csv``,
``history.csv`` (:math:`\Phi` on the training split at every evaluation), ``timings.csv``,
figures and ``report.md``. The verdicts follow :mod:`fairmt_opt.studies._verdicts`: utility
and fairness differences combine the Student-t interval over seeds with a paired bootstrap
over the test samples (:class:`~fairmt_opt.studies._evidence.MetricSamples`), steps to
feasibility use the t-interval over seeds; a difference whose interval contains 0 (or that
rests on one seed, for the steps) is reported as *not resolved*.

The runs whose factor leaves the model unchanged (``weight_norm`` 1, ``logit_gain`` 1,
``saturation`` 0) are one configuration: it is trained once and its rows appear under each of
these settings.

Run time (measured on a 2-core machine shared with other jobs): ``--quick`` (1500 samples,
three (setting, factor) points, 28 steps per run, 50 bootstrap resamples) took 29 s of CPU
time with 3 seeds (73 s wall-clock under the shared load); the full study (3000 samples, 10
distinct points, 4 proxies, 3 seeds, 140 steps per run, 200 resamples) took 4.4 to 5 min of
CPU time in two runs (8 and 16 min wall-clock under a load of about 9 to 10 on the 2 cores);
the two runs wrote identical ``heads.csv``, ``heads_verdicts.csv``, ``results.csv``,
``groups.csv`` and ``history.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import aggregate_violations
from ..datasets import MTLDataset, make_synthetic
from ..fairness import soft_violation
from ..plots import new_figure
from ._common import StudyConfig, StudyResult, StudyWriter, markdown_table, progress
from ._evidence import MetricSamples, record_group_rates, sample_metrics
from ._groups import FAIRNESS_METRIC, UTILITY_METRIC
from ._training import TrainSettings, _check_methods, evaluate, make_trainer, split_outputs
from ._verdicts import Interval, Verdict, difference_verdict, percentile_interval, t_interval

__all__ = ["HEADS_COLUMNS", "PROXIES", "SETTINGS", "VERDICT_COLUMNS", "impose", "run_heads"]

#: the proxies compared, all inside FairMT (``--methods`` picks among them)
PROXIES = ("head", "rep", "full", "none")
#: the head geometries and their factors
SETTINGS: dict[str, dict[str, tuple[float, ...]]] = {
    "full": {"weight_norm": (1.0, 10.0, 100.0), "logit_gain": (1.0, 10.0, 100.0),
             "direction": (0.0, 0.9, 0.99), "saturation": (0.0, 4.0, 8.0)},
    "quick": {"weight_norm": (1.0, 100.0), "direction": (0.99,)},
}
#: the factor at which a setting leaves the model as :func:`make_trainer` built it
NEUTRAL = {"weight_norm": 1.0, "logit_gain": 1.0, "saturation": 0.0}
#: the task whose head is changed by ``weight_norm``, ``logit_gain`` and ``saturation``
TARGET_TASK = 0
HEADS_COLUMNS = ("setting", "factor", "proxy", "seed", "task", "metric", "value")
VERDICT_COLUMNS = ("setting", "factor", "a", "b", "task", "metric", "estimate", "low", "high",
                   "interval", "verdict")
EVAL_MU = 0.1


class _Gain(nn.Module):
    """Multiply by a fixed, untrained gain (a buffer)."""

    gain: torch.Tensor

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.register_buffer("gain", torch.tensor(float(gain)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.gain


def _directions(n: int, d: int, cosine: float, seed: int) -> np.ndarray:
    r"""``n`` unit vectors in :math:`\mathbb R^d` with pairwise cosine ``cosine``:
    :math:`v_j = \sqrt c\, u_0 + \sqrt{1 - c}\, u_j` for orthonormal :math:`u_0, \dots, u_n`
    (a seeded QR)."""
    if not 0.0 <= cosine < 1.0:
        raise ValueError(f"cosine must be in [0, 1), got {cosine}")
    if d < n + 1:
        raise ValueError(f"{n} directions of a given cosine need a width >= {n + 1}, got {d}")
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, n + 1)))
    return (math.sqrt(cosine) * q[:, :1] + math.sqrt(1.0 - cosine) * q[:, 1:]).T


def impose(trainer: Any, setting: str, factor: float, *, seed: int = 0) -> None:
    """Change the heads of ``trainer`` in place as ``setting`` says with ``factor`` (see the
    module's table). Parameters stay the optimizer's (changed in place); a ``logit_gain``
    head becomes ``nn.Sequential(linear, gain)``, whose directions the proxies take by
    autograd. Raises ``ValueError`` naming ``setting`` or ``factor``."""
    if setting not in NEUTRAL and setting != "direction":
        raise ValueError(f"setting must be one of {sorted([*NEUTRAL, 'direction'])}, "
                         f"got {setting!r}")
    factor = float(factor)
    if not math.isfinite(factor) or factor < 0:
        raise ValueError(f"factor must be a finite number >= 0, got {factor}")
    heads: list[nn.Linear] = trainer.heads
    with torch.no_grad():
        if setting == "weight_norm":
            heads[TARGET_TASK].weight.mul_(factor)
        elif setting == "saturation":
            heads[TARGET_TASK].bias.add_(factor)
        elif setting == "logit_gain":
            trainer.heads[TARGET_TASK] = nn.Sequential(heads[TARGET_TASK], _Gain(factor)).to(
                heads[TARGET_TASK].weight.device)
        else:
            rows = sum(h.out_features for h in heads)
            V = _directions(rows, heads[0].in_features, factor, seed)
            j = 0
            for h in heads:
                W = h.weight
                norms = W.norm(dim=1, keepdim=True)
                new = torch.as_tensor(V[j:j + h.out_features], dtype=W.dtype, device=W.device)
                W.copy_(new * norms)
                W.requires_grad_(False)
                j += h.out_features


def _dataset(config: StudyConfig) -> MTLDataset:
    return make_synthetic(n_samples=1500 if config.quick else 3000, n_tasks=4, seed=0)


def _settings(config: StudyConfig) -> TrainSettings:
    s = TrainSettings(epochs=4 if config.quick else 20, batch_size=128 if config.quick else 256,
                      hidden=(16,) if config.quick else (32,), log_every=1)
    if config.epochs is not None:
        s.epochs = config.epochs
    return s


def _train(proxy: str, ds: MTLDataset, setting: str, factor: float, seed: int,
           settings: TrainSettings, device: str, eval_every: int) -> tuple[Any, list[
               tuple[int, float]]]:
    """Train FairMT with ``proxy`` on the changed heads; return the trainer and the
    ``(step, Φ on the training split)`` of every evaluation (step 0 included)."""
    previous = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    try:
        tr = make_trainer("fairmt", ds, seed=seed, settings=settings, device=device,
                          options={"proxy": proxy})
        impose(tr, setting, factor, seed=seed)
        phis: list[tuple[int, float]] = []

        def on_eval(t: Any) -> None:
            phis.append((t.step, train_phi(ds, t)))

        on_eval(tr)
        tr.fit(ds.train, epochs=settings.epochs, eval_every=eval_every, callback=on_eval)
        return tr, phis
    finally:
        torch.set_num_threads(previous)


def train_phi(ds: MTLDataset, trainer: Any) -> float:
    r""":math:`\Phi` (AHFDA with :math:`\mu` = 0.1) of the soft violations :math:`\psi_t` of
    :func:`fairmt_opt.fairness.soft_violation` on the whole training split: the quantity of
    :meth:`fairmt_opt.torch.Trainer.report` without the hard metrics (a cheaper evaluation).
    Cost: one forward pass and :math:`O(N T G)`."""
    sp = ds.train
    outs = split_outputs(ds, trainer, "train")
    present = [t for t in range(len(ds.tasks)) if sp.mask[:, t].any()]
    psi = np.array([float(np.asarray(soft_violation(ds.tasks[t], outs[t], sp.targets[t],
                                                    sp.mask[:, t], sp.groups,
                                                    ds.n_groups).value)) for t in present])
    return float(aggregate_violations(psi, EVAL_MU).value) if present else 0.0


def steps_to_feasibility(phis: Sequence[tuple[int, float]], eps: float) -> float:
    r"""The first evaluated step at which :math:`\Phi \le \varepsilon`; NaN when no
    evaluation is feasible.

    Examples
    --------
    >>> steps_to_feasibility([(0, 0.2), (5, 0.07), (10, 0.04), (15, 0.06)], 0.05)
    10.0
    >>> steps_to_feasibility([(0, 0.2), (5, 0.07)], 0.05)
    nan
    """
    return next((float(step) for step, phi in phis if phi <= eps), math.nan)


def _label(proxy: str, setting: str, factor: float) -> str:
    return f"{proxy}[{setting}={factor:g}]"


def _mean_verdict(samples: MetricSamples, a: str, b: str, column: str) -> Verdict:
    """The verdict of ``a - b`` on the mean over tasks of a column (paired seeds and
    resamples, as :meth:`MetricSamples.verdict` per task)."""
    tasks = [t.name for t in samples.ds.tasks]
    c = ("fairness", "utility").index(column)
    d = np.mean([samples.values[(a, t)][:, :, c] - samples.values[(b, t)][:, :, c]
                 for t in tasks], axis=0)
    boot = percentile_interval(float(np.mean(d[:, 0])), np.mean(d[:, 1:], axis=0))
    return difference_verdict(d[:, 0], boot)


def _steps_verdict(a: Sequence[float], b: Sequence[float]) -> tuple[str, Interval | None]:
    """Head minus another proxy in steps to feasibility, over seeds."""
    na, nb = sum(math.isnan(x) for x in a), sum(math.isnan(x) for x in b)
    if na or nb:
        if na == len(a) and nb == len(b):
            return "never feasible with either", None
        return f"never feasible on {na} (head) vs {nb} of {len(a)} seed(s)", None
    d = np.asarray(a) - np.asarray(b)
    if d.size < 2:
        return "not resolved (one seed: the seed noise is not measured)", None
    if np.all(d == d[0]):
        iv = Interval(float(d[0]), float(d[0]), float(d[0]), 0.95, "identical on every seed")
    else:
        iv = t_interval(d)
    word = {1: "more steps", -1: "fewer steps"}.get(iv.side(0.0), "not resolved (the "
                                                    "interval includes 0)")
    return word, iv


def run_heads(config: StudyConfig) -> StudyResult:
    """The ``heads`` study (see the module docstring); ``config.methods`` picks proxies among
    :data:`PROXIES` (``head`` must be among them for the verdicts)."""
    proxies = _check_methods(config.methods or PROXIES, PROXIES)
    ds = _dataset(config)
    settings = _settings(config)
    eps = float(settings.method_options["eps"])
    grid = SETTINGS["quick" if config.quick else "full"]
    steps_per_epoch = len(ds.train) // settings.batch_size
    eval_every = max(1, steps_per_epoch * settings.epochs // (10 if config.quick else 20))
    resamples = config.bootstrap if config.bootstrap is not None else (
        50 if config.quick else 200)
    w = StudyWriter(config, {
        "settings": settings.as_dict(), "dataset": repr(ds), "dataset_info": ds.info,
        "grid": {k: list(v) for k, v in grid.items()}, "proxies": list(proxies),
        "target_task": ds.tasks[TARGET_TASK].name, "eval_every": eval_every,
        "phi_mu": EVAL_MU, "bootstrap": {"resamples": resamples, "seed": 0, "level": 0.95,
                                         "split": "test"}})
    rows: list[dict[str, Any]] = []
    verdicts: list[dict[str, Any]] = []
    cache: dict[tuple[Any, ...], tuple[list[tuple[str, str, float]], list[np.ndarray],
                                       list[tuple[int, float]], dict[str, float]]] = {}
    points = [(s, f) for s, fs in grid.items() for f in fs]
    jobs = [(s, f, p, seed) for s, f in points for p in proxies for seed in range(config.seeds)]
    outputs: dict[tuple[str, float], dict[tuple[str, int], list[np.ndarray]]] = {}
    for setting, factor, proxy, seed in progress(jobs, desc="heads"):
        neutral = NEUTRAL.get(setting) == factor
        key = ("neutral", proxy, seed) if neutral else (setting, factor, proxy, seed)
        if key not in cache:
            tr, phis = _train(proxy, ds, setting, factor, seed, settings, config.device,
                              eval_every)
            res, _ = evaluate(ds, tr, "test", EVAL_MU)
            alphas = np.mean([np.asarray(r["alpha"], dtype=np.float64) for r in tr.history],
                             axis=0)
            extra = {"steps_to_feasibility": steps_to_feasibility(phis, eps),
                     "phi_train": phis[-1][1], "final_eta": float(tr.method.eta),
                     "steps": float(tr.step), "time_per_step_s": tr.seconds / max(tr.step, 1),
                     **{f"alpha_mean[{t.name}]": float(a) for t, a in zip(ds.tasks, alphas)}}
            cache[key] = (res, split_outputs(ds, tr, "test"), phis, extra)
        res, outs, phis, extra = cache[key]
        label = _label(proxy, setting, factor)
        outputs.setdefault((setting, factor), {})[(proxy, seed)] = outs
        record_group_rates(w, ds, label, seed, outs, "test")
        vals = {(t, m): v for t, m, v in res}
        for t, m, v in res:
            w.result(label, seed, "test", t, m, v)
        for task in ds.tasks:
            for m in (UTILITY_METRIC[task.kind], FAIRNESS_METRIC[task.kind], "psi"):
                rows.append({"setting": setting, "factor": factor, "proxy": proxy,
                             "seed": seed, "task": task.name, "metric": m,
                             "value": vals[(task.name, m)]})
            rows.append({"setting": setting, "factor": factor, "proxy": proxy, "seed": seed,
                         "task": task.name, "metric": "alpha_mean",
                         "value": extra[f"alpha_mean[{task.name}]"]})
        for m in ("steps_to_feasibility", "phi_train", "final_eta", "steps"):
            w.result(label, seed, "train", "all", m, extra[m])
            rows.append({"setting": setting, "factor": factor, "proxy": proxy, "seed": seed,
                         "task": "all", "metric": m, "value": extra[m]})
        rows.append({"setting": setting, "factor": factor, "proxy": proxy, "seed": seed,
                     "task": "all", "metric": "phi_test", "value": vals[("all", "phi")]})
        for step, phi in phis:
            w.hist(label, seed, step, "phi_train", phi)
        w.timing(label, seed, "all", "time_per_step_s", extra["time_per_step_s"])
    if "head" in proxies and len(proxies) > 1:
        for setting, factor in points:
            samples = sample_metrics(ds, outputs[(setting, factor)], resamples=resamples,
                                     labels=list(proxies))
            verdicts += _point_verdicts(samples, rows, setting, factor, proxies)
    w.write_csv("heads.csv", HEADS_COLUMNS, rows)
    if verdicts:
        w.write_csv("heads_verdicts.csv", VERDICT_COLUMNS, verdicts)
    _figures(w, rows, grid, proxies, eps, ds)
    summary = _report(w, rows, verdicts, grid, proxies, eps, ds, resamples)
    return w.finish("Study: head geometry and the proxies of FairMT", summary)


def _per_seed(rows: list[dict[str, Any]], setting: str, factor: float, proxy: str,
              task: str, metric: str) -> list[float]:
    sel = sorted((r["seed"], r["value"]) for r in rows if r["setting"] == setting
                 and r["factor"] == factor and r["proxy"] == proxy and r["task"] == task
                 and r["metric"] == metric)
    return [v for _, v in sel]


def _point_verdicts(samples: MetricSamples, rows: list[dict[str, Any]], setting: str,
                    factor: float, proxies: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for other in proxies:
        if other == "head":
            continue
        base = {"setting": setting, "factor": factor, "a": "head", "b": other}
        cols = [(t.name, c, samples.verdict("head", other, t.name, c)) for t in samples.ds.tasks
                for c in ("utility", "fairness")]
        cols += [("mean", c, _mean_verdict(samples, "head", other, c))
                 for c in ("utility", "fairness")]
        for task, c, v in cols:
            word = (v.describe("lower", "higher") if c == "utility" else
                    v.describe("fairer", "less fair"))
            if v.seeds is None and v.resolved:  # one seed: no verdict on the bootstrap alone
                word = (f"not resolved (one seed: the seed noise is not measured; the test "
                        f"samples alone say {word.split(' (')[0]})")
            out.append({**base, "task": task, "metric": c, "estimate": v.estimate,
                        "low": v.interval.low, "high": v.interval.high,
                        "interval": v.interval.method, "verdict": word})
        word, iv = _steps_verdict(_per_seed(rows, setting, factor, "head", "all",
                                            "steps_to_feasibility"),
                                  _per_seed(rows, setting, factor, other, "all",
                                            "steps_to_feasibility"))
        out.append({**base, "task": "all", "metric": "steps_to_feasibility",
                    "estimate": math.nan if iv is None else iv.estimate,
                    "low": math.nan if iv is None else iv.low,
                    "high": math.nan if iv is None else iv.high,
                    "interval": "-" if iv is None else iv.method, "verdict": word})
    return out


def _same_count(v: dict[str, Any]) -> bool:
    """Whether a steps verdict ``never feasible on a (head) vs b of n`` has a == b."""
    words = v["verdict"].split()
    return words[3] == words[6]


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _mean_utility(rows: list[dict[str, Any]], ds: MTLDataset, setting: str, factor: float,
                  proxy: str) -> float:
    return float(np.mean([_mean(_per_seed(rows, setting, factor, proxy, t.name,
                                          UTILITY_METRIC[t.kind])) for t in ds.tasks]))


def _figures(w: StudyWriter, rows: list[dict[str, Any]], grid: dict[str, tuple[float, ...]],
             proxies: Sequence[str], eps: float, ds: MTLDataset) -> None:
    target = ds.tasks[TARGET_TASK]
    panels = [("all", "steps_to_feasibility", "steps until Φ_train ≤ ε"),
              ("all", "phi_test", f"Φ (test); ε = {eps:g}"),
              ("mean", "utility", "mean utility over tasks (test)"),
              (target.name, UTILITY_METRIC[target.kind],
               f"{target.name} {UTILITY_METRIC[target.kind]} (test)")]
    fig, axes = new_figure(len(panels), len(grid), width=2.2, height=1.7)
    for j, (setting, factors) in enumerate(grid.items()):
        xs = list(factors)
        for i, (task, metric, title) in enumerate(panels):
            ax = axes[i, j]
            for k, p in enumerate(proxies):
                if task == "mean":
                    ys = [_mean_utility(rows, ds, setting, f, p) for f in xs]
                else:
                    ys = [_mean(_per_seed(rows, setting, f, p, task, metric)) for f in xs]
                ax.plot(xs, ys, "os^v"[k % 4] + "-", color=f"C{k}", label=p, ms=4)
            if metric == "phi_test":
                ax.axhline(eps, color="k", ls="--", lw=0.8)
            if setting in ("weight_norm", "logit_gain"):
                ax.set_xscale("log")
            ax.set_xlabel(f"{setting} factor", fontsize=7)
            ax.set_title(title, fontsize=7)
            ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    w.figure(fig, "heads.png", "Steps to feasibility (mean over the seeds that became "
             "feasible), test Φ, mean utility and the changed task's utility against the "
             "anisotropy factor of each setting, one line per proxy (mean over seeds)")


def _report(w: StudyWriter, rows: list[dict[str, Any]], verdicts: list[dict[str, Any]],
            grid: dict[str, tuple[float, ...]], proxies: Sequence[str], eps: float,
            ds: MTLDataset, resamples: int) -> str:
    table = []
    for setting, factors in grid.items():
        for f in factors:
            for p in proxies:
                steps = _per_seed(rows, setting, f, p, "all", "steps_to_feasibility")
                never = sum(math.isnan(s) for s in steps)
                table.append([setting, f"{f:g}", p,
                              f"{_mean(steps):.1f}" if never < len(steps) else "never",
                              f"{never}/{len(steps)}",
                              _mean(_per_seed(rows, setting, f, p, "all", "phi_test")),
                              _mean_utility(rows, ds, setting, f, p),
                              _mean(_per_seed(rows, setting, f, p, ds.tasks[TARGET_TASK].name,
                                              "alpha_mean")),
                              _mean(_per_seed(rows, setting, f, p, "all", "final_eta"))])
    w.section(f"## Per setting and proxy (mean over {w.config.seeds} seed(s))\n\n"
              f"Steps to feasibility: the first evaluated step at which Φ on the training "
              f"split is ≤ ε = {eps:g} (mean over the seeds that got there; *never*: on no "
              f"seed within the training budget). α of "
              f"`{ds.tasks[TARGET_TASK].name}` is its mean QP weight over training (uniform: "
              f"1/{len(ds.tasks)}).\n\n"
              + markdown_table(["setting", "factor", "proxy", "steps to Φ ≤ ε",
                                "seeds never feasible", "Φ (test)", "mean utility",
                                f"α[{ds.tasks[TARGET_TASK].name}]", "final η"], table))
    if not verdicts:
        return ("The verdicts compare `head` with the other proxies; this run did not include "
                "both. The per-setting table is below.")
    vt = [[v["setting"], f"{v['factor']:g}", f"head − {v['b']}", v["metric"],
           "—" if math.isnan(v["estimate"]) else f"{v['estimate']:+.4f}",
           "—" if math.isnan(v["low"]) else f"[{v['low']:+.4f}, {v['high']:+.4f}]",
           v["verdict"]] for v in verdicts if v["task"] in ("mean", "all")]
    how = (f"Utility and fairness: 95% hull of the t-interval over {w.config.seeds} seed(s) "
           f"and a paired bootstrap over the test samples ({resamples} resamples); steps: "
           "t-interval over seeds. Per-task verdicts are in `heads_verdicts.csv`.")
    w.section("## Verdicts: head against the other proxies (mean over tasks)\n\n" + how
              + "\n\n" + markdown_table(["setting", "factor", "difference", "metric",
                                         "Δ", "interval", "verdict"], vt))
    lines = []
    for setting, factors in grid.items():
        helps, hurts, none_, counts = [], [], [], []
        for f in factors:
            for v in verdicts:
                if v["setting"] != setting or v["factor"] != f:
                    continue
                if v["task"] == "mean" and v["metric"] == "utility":
                    good, bad = v["estimate"] > 0, v["estimate"] < 0
                elif v["task"] == "mean" and v["metric"] == "fairness":
                    good, bad = v["estimate"] < 0, v["estimate"] > 0
                elif v["metric"] == "steps_to_feasibility":
                    good, bad = v["verdict"] == "fewer steps", v["verdict"] == "more steps"
                else:
                    continue
                resolved = not v["verdict"].startswith(("not resolved", "never"))
                what = (f"{v['metric']} vs {v['b']} at {f:g} "
                        + ("" if math.isnan(v["estimate"]) else f"(Δ {v['estimate']:+.4f})"))
                if v["verdict"].startswith("never feasible on") and not _same_count(v):
                    counts.append(f"steps vs {v['b']} at {f:g}: {v['verdict']}")
                if resolved and good:
                    helps.append(what)
                elif resolved and bad:
                    hurts.append(what)
                else:
                    none_.append(what)
        per_task = [v for v in verdicts if v["setting"] == setting
                    and v["task"] not in ("mean", "all")]
        tally = {(m, d): sum(v["metric"] == m and v["verdict"] == d for v in per_task)
                 for m, d in (("utility", "higher"), ("utility", "lower"),
                              ("fairness", "fairer"), ("fairness", "less fair"))}
        n_util = sum(v["metric"] == "utility" for v in per_task)
        n_fair = sum(v["metric"] == "fairness" for v in per_task)
        lines.append(
            f"**{setting}**: head resolvably better on {len(helps)}, worse on {len(hurts)}, "
            f"no difference resolved on {len(none_)} of {len(helps) + len(hurts) + len(none_)}"
            " comparisons (mean utility, mean fairness, steps to feasibility against each "
            "other proxy at each factor)"
            + (f"; better: {', '.join(helps)}" if helps else "")
            + (f"; worse: {', '.join(hurts)}" if hurts else "")
            + (f"; seeds that never reached Φ ≤ ε differ ({'; '.join(counts)})"
               if counts else "")
            + f"; per task (each task against each proxy at each factor), head's utility "
            f"resolvably higher on {tally[('utility', 'higher')]} and lower on "
            f"{tally[('utility', 'lower')]} of {n_util}, fairer on "
            f"{tally[('fairness', 'fairer')]} and less fair on "
            f"{tally[('fairness', 'less fair')]} of {n_fair} (`heads_verdicts.csv`)")
    target = ds.tasks[TARGET_TASK].name
    alpha_lines = []
    for setting in ("weight_norm", "logit_gain", "saturation"):
        if setting in grid:
            f = max(grid[setting])
            alpha_lines.append(f"{setting} {f:g}: " + ", ".join(
                f"{p} {_mean(_per_seed(rows, setting, f, p, target, 'alpha_mean')):.3f}"
                for p in proxies))
    n_help = sum(" better on 0," not in s for s in lines)
    n_hurt = sum(", worse on 0," not in s for s in lines)
    answer = ("Answer: " + (
        "no. In no setting was the head-aware proxy resolvably better than another proxy "
        "(mean utility, mean fairness or steps to feasibility)" if n_help == 0 else
        f"in {n_help} of {len(lines)} setting(s) the head-aware proxy was resolvably better "
        "on some comparison (listed below)")
        + (f"; it was resolvably worse in {n_hurt} setting(s)" if n_hurt else "")
        + ". Mean α of the changed head's task "
        f"`{target}` at the largest factor (uniform 1/{len(ds.tasks)}): "
        + "; ".join(alpha_lines) + " (the QP proxies head, rep and full rescale every "
        "direction to unit norm before the QP, the l2 normalisation, so none of them sees a "
        "head's scale directly). ")
    head = (f"Does the head-aware proxy correct head-induced anisotropy? FairMT with the "
            f"proxies {', '.join(proxies)} at ε = {eps:g} on {len(ds.tasks)} synthetic tasks, "
            f"{w.config.seeds} seed(s). ")
    return head + answer + " ".join(s + "." for s in lines)
