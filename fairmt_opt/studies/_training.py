"""The training studies ``dynamics`` and ``sensitivity``, and the training helpers of every
training study (``compare`` and ``partial-labels`` live in ``_compare``).

They all train through :class:`fairmt_opt.torch.Trainer`, the one training loop of the
library: an MLP encoder shared by the tasks, one ``nn.Linear`` head per task, Adam,
mini-batches drawn from a seeded permutation (the last, smaller one of each epoch dropped),
and any method of :data:`fairmt_opt.torch.METHODS` (each from
:func:`fairmt_opt.torch.make_method`) to turn the batch into the loss to backpropagate and a
dual step. The splits are evaluated by :meth:`fairmt_opt.torch.Trainer.report`; the test
outputs (:func:`split_outputs`) give the per-group rates of ``groups.csv``
(:func:`~fairmt_opt.studies._evidence.record_group_rates`) and the bootstrap of the verdicts.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import aggregate_violations, certify_primal_dual
from ..datasets import MTLDataset, load_dataset
from ..fairness import Task, soft_violation
from ..plots import new_figure
from ._common import StudyConfig, StudyResult, StudyWriter, markdown_table, progress
from ._evidence import record_group_rates
from ._groups import FAIRNESS_METRIC, UTILITY_METRIC

__all__ = ["FAIRNESS_METRIC", "UTILITY_METRIC", "TrainSettings", "evaluate", "history_rows",
           "make_trainer", "run_dynamics", "run_sensitivity", "split_outputs", "train_method"]


@dataclass
class TrainSettings:
    """Hyperparameters of the study training (all recorded in ``config.json``).

    ``method_options`` go to :func:`fairmt_opt.torch.make_method` (``eps``, ``mu``, ``rho``,
    ...); the defaults are those of :class:`fairmt_opt.torch.FairMT` except where set here.
    """

    epochs: int = 10
    batch_size: int = 1024
    lr: float = 2e-3
    hidden: tuple[int, ...] = (64, 32)
    log_every: int = 5
    eval_every: int = 0
    threads: int | None = 1
    method_options: dict[str, Any] = field(default_factory=lambda: {
        "eps": 0.05, "mu": 0.1, "rho": 1.0})

    def as_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "hidden": list(self.hidden), "log_every": self.log_every,
                "eval_every": self.eval_every, "threads": self.threads,
                "method_options": dict(self.method_options),
                "optimizer": "Adam", "encoder": "MLP with ReLU", "heads": "nn.Linear per task",
                "dtype": "float32", "loop": "fairmt_opt.torch.Trainer (drop_last=True)"}


# ----------------------------------------------------------------------------- data and model


def _dataset(config: StudyConfig) -> MTLDataset:
    """The study's dataset (quick runs subsample it; synthetic is generated small)."""
    opts: dict[str, Any] = {}
    if config.dataset == "synthetic":
        opts = {"n_samples": 1500 if config.quick else 6000, "seed": 0}
    else:
        sub = config.subsample
        if sub is None and config.quick:
            sub = 1500
        if sub is None and config.dataset in ("kdd", "celeba-attrs"):
            sub = 40_000  # CPU-sized default; pass --subsample to change
        opts = {"subsample": sub}
        if config.dataset == "celeba-attrs":
            opts["tasks"] = 5 if config.quick else 10
    return load_dataset(config.dataset, **opts)


def _model(d: int, tasks: Sequence[Task], hidden: Sequence[int], device: str) -> tuple[Any, Any]:
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    width = d
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    encoder = nn.Sequential(*layers).to(device)
    heads = nn.ModuleList([nn.Linear(width, t.out_dim) for t in tasks]).to(device)
    with torch.no_grad():
        for head in heads:
            head.bias.zero_()  # type: ignore[operator]
    return encoder, heads


def make_trainer(method: str, ds: MTLDataset, *, seed: int, settings: TrainSettings,
                 device: str = "cpu", options: dict[str, Any] | None = None) -> Any:
    """The :class:`fairmt_opt.torch.Trainer` of ``method`` on ``ds``, its model initialised
    from ``seed`` (``torch.manual_seed``) and its data order seeded by ``seed``."""
    import torch

    from ..torch import Trainer, make_method

    torch.manual_seed(seed)
    encoder, heads = _model(ds.n_features, ds.tasks, settings.hidden, device)
    opts = {**settings.method_options, **(options or {})}
    if method == "mgda" or opts.get("proxy") == "full":  # the full proxy's parameters
        opts["shared_parameters"] = list(encoder.parameters())
    fm = make_method(method, ds.tasks, ds.n_groups, **opts)
    opt = torch.optim.Adam([*encoder.parameters(), *heads.parameters()], lr=settings.lr)
    return Trainer(encoder, heads, fm, opt, batch_size=min(settings.batch_size, len(ds.train)),
                   seed=seed, log_every=settings.log_every, drop_last=True)


def train_method(
    method: str,
    ds: MTLDataset,
    *,
    seed: int,
    settings: TrainSettings,
    device: str = "cpu",
    options: dict[str, Any] | None = None,
    on_eval: Callable[[Any], Any] | None = None,
) -> Any:
    """Train ``method`` on ``ds.train`` from seed ``seed`` for ``settings.epochs`` epochs and
    return the :class:`fairmt_opt.torch.Trainer` (same seed, same numbers on CPU).

    Its ``history`` has a row every ``log_every`` steps (the batch's losses, ψ, α, w*, Φ, η
    and the gradient norm of the Lagrangian: the batch stationarity residual);
    ``on_eval(trainer)`` is called every ``eval_every`` steps and after the last one when
    given. Torch runs on ``settings.threads`` intra-op threads during training (1 by default;
    restored afterwards).
    """
    import torch

    previous = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)  # small models: threads only add overhead
    try:
        tr = make_trainer(method, ds, seed=seed, settings=settings, device=device,
                          options=options)
        every = settings.eval_every if on_eval is not None else 0
        tr.fit(ds.train, epochs=settings.epochs, eval_every=every, callback=on_eval)
        if on_eval is not None and not every:
            on_eval(tr)
        return tr
    finally:
        torch.set_num_threads(previous)


def history_rows(trainer: Any) -> list[tuple[int, str, float]]:
    """``(step, quantity, value)`` of the trainer's history: ``grad_norm``, ``phi``, ``eta``
    and per task ``loss[t]``, ``psi[t]``, ``alpha[t]``, ``w[t]``."""
    rows: list[tuple[int, str, float]] = []
    for r in trainer.history:
        s = int(r["step"])
        rows += [(s, "grad_norm", float(r["grad_norm"])), (s, "phi", float(r["phi"])),
                 (s, "eta", float(r["eta"]))]
        for t, task in enumerate(trainer.tasks):
            rows += [(s, f"loss[{task.name}]", float(r["losses"][t])),
                     (s, f"psi[{task.name}]", float(r["psi"][t])),
                     (s, f"alpha[{task.name}]", float(r["alpha"][t])),
                     (s, f"w[{task.name}]", float(r["weights"][t]))]
    return rows


def evaluate(ds: MTLDataset, trainer: Any, split_name: str, mu: float
             ) -> tuple[list[tuple[str, str, float]], list[str]]:
    """``(task, metric, value)`` rows of every hard metric of every task, the soft ψ_t and Φ
    (AHFDA with ``mu``) on a split, by :meth:`fairmt_opt.torch.Trainer.report`, and the list
    of undefined metrics (left out, with their reasons)."""
    medians = {task.name: float(np.median(ds.train.targets[t][ds.train.mask[:, t]]))
               for t, task in enumerate(ds.tasks) if task.kind == "regression"}
    ev = trainer.report(ds.split(split_name), mu=mu, train_median=medians)
    rows: list[tuple[str, str, float]] = []
    undefined: list[str] = []
    for task in ds.tasks:
        rep = ev.metrics[task.name]
        for k, v in rep.items():
            if k in rep.undefined:
                undefined.append(f"{task.name}/{k} ({split_name}): {rep.undefined[k]}")
            else:
                rows.append((task.name, k, float(v)))
    for task in ds.tasks:
        rows.append((task.name, "psi", ev.psi[task.name]))
    rows.append(("all", "phi", ev.phi))
    return rows, undefined


def split_outputs(ds: MTLDataset, trainer: Any, split_name: str = "test") -> list[np.ndarray]:
    """The outputs of ``trainer`` on a split as float64 NumPy arrays, one per task (detection
    and regression ``(N,)``, classification ``(N, C)``), by
    :meth:`fairmt_opt.torch.Trainer.outputs`."""
    import torch

    with torch.no_grad():
        outs = trainer.outputs(ds.split(split_name))
    res = []
    for task, z in zip(ds.tasks, outs):
        zh = z.detach().cpu().numpy().astype(np.float64)
        res.append(zh[:, 0] if task.out_dim == 1 else zh)
    return res


# ----------------------------------------------------------------------------- shared runner


def _settings(config: StudyConfig, **over: Any) -> TrainSettings:
    s = TrainSettings(**over)
    if config.quick:
        s.epochs, s.batch_size, s.log_every = 2, 256, 2
        s.hidden = (16,)
    if config.epochs is not None:
        s.epochs = config.epochs
    return s


def _run_methods(config: StudyConfig, w: StudyWriter, ds: MTLDataset, methods: Sequence[str],
                 settings: TrainSettings, variants: dict[str, dict[str, Any]] | None = None,
                 hist_every: int = 1, eval_mu: float | None = None
                 ) -> dict[tuple[str, int], list[np.ndarray]]:
    """Train every method (or variant) for every seed; write results, history, timings and
    the per-group rates on the test split; return the test outputs of every
    ``(label, seed)`` (:func:`split_outputs`)."""
    variants = variants or {m: {} for m in methods}
    outputs = {}
    undefined: set[str] = set()
    jobs = [(label, seed) for label in variants for seed in range(config.seeds)]
    for label, seed in progress(jobs, desc=f"{config.study}:{ds.name}"):
        method = label.split("[", 1)[0]
        opts = variants[label]
        tr = train_method(method, ds, seed=seed, settings=settings, device=config.device,
                          options=opts)
        outputs[(label, seed)] = split_outputs(ds, tr, "test")
        record_group_rates(w, ds, label, seed, outputs[(label, seed)], "test")
        mu = eval_mu if eval_mu is not None else float(
            {**settings.method_options, **opts}.get("mu", 0.1))
        for split in ("val", "test"):
            rows, und = evaluate(ds, tr, split, mu)
            undefined.update(f"{label}: {u}" for u in und)
            for task, metric, value in rows:
                w.result(label, seed, split, task, metric, value)
        w.result(label, seed, "train", "all", "final_eta", float(tr.method.eta))
        w.result(label, seed, "train", "all", "steps", tr.step)
        w.timing(label, seed, "all", "train_time_s", tr.seconds)
        for step, q, v in history_rows(tr):
            if step % (settings.log_every * hist_every) == 0:
                w.hist(label, seed, step, q, v)
    if undefined:
        w.section("## Undefined metrics (left out of results.csv)\n\n"
                  + "\n".join(f"- {u}" for u in sorted(undefined)[:40])
                  + ("\n- ..." if len(undefined) > 40 else "") + "\n")
    return outputs


def _table(results: list[dict[str, Any]], split: str = "test") -> dict[tuple[str, str, str],
                                                                       tuple[float, float]]:
    """Mean and standard deviation over seeds of every (method, task, metric) of ``split``."""
    acc: dict[tuple[str, str, str], list[float]] = {}
    for r in results:
        if r["split"] == split:
            acc.setdefault((r["method"], r["task"], r["metric"]), []).append(r["value"])
    return {k: (float(np.mean(v)), float(np.std(v))) for k, v in acc.items()}


def _check_methods(methods: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    bad = [m for m in methods if m not in allowed]
    if bad:
        raise ValueError(f"methods must be among {tuple(allowed)}, got {bad}")
    return tuple(methods)


# ----------------------------------------------------------------------------- dynamics


def _kkt_residuals(ds: MTLDataset, tr: Any, eps: float) -> dict[str, float]:
    r"""KKT residuals of SPEC §5 on the whole training split, by
    :func:`fairmt_opt.certify_primal_dual`: per-task gradients :math:`\nabla_\theta L_t` and
    :math:`\nabla_\theta\Phi` over all parameters, the weights :math:`\tilde\alpha` that the
    method applies (its QP on the whole split) and the current :math:`\eta`. The method's
    state (dual variable, warm starts, counters) is restored afterwards: an evaluation is not
    a training step."""
    import torch

    from ..torch import masked_task_loss

    full = tr.batch(ds.train)
    fm = tr.method
    params = [p for g in tr.optimizer.param_groups for p in g["params"]]
    saved = copy.deepcopy(fm.state_dict())
    try:
        h, outs = tr.forward(full.X)
        rec = fm.compute(h, outs, list(full.targets), full.mask, full.groups,
                         heads=tr.heads).record
    finally:
        fm.load_state_dict(saved)
    losses, psis = [], []
    for t, task in enumerate(ds.tasks):
        z = outs[t].reshape(-1) if task.out_dim == 1 else outs[t]
        y, m = full.targets[t], full.mask[:, t]
        losses.append(masked_task_loss(task, outs[t], y, m).value)
        psis.append(torch.as_tensor(soft_violation(task, z, y, m, full.groups,
                                                   ds.n_groups).value))
    phi = aggregate_violations(torch.stack(psis), fm.mu).value  # differentiable (Danskin)
    phi_value = float(phi.detach())

    def flat_grad(x: Any) -> np.ndarray:
        gs = torch.autograd.grad(x, params, retain_graph=True, allow_unused=True)
        return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                          for g, p in zip(gs, params)]).double().cpu().numpy()

    G = np.stack([flat_grad(L) for L in losses])
    cert = certify_primal_dual(G, flat_grad(phi), rec.alpha_tilde.double().cpu().numpy(),
                               float(fm.eta), phi_value, eps)
    return {"stationarity": cert.stationarity, "stationarity_rel": cert.stationarity_rel,
            "primal_infeasibility": cert.primal_feasibility,
            "dual_infeasibility": cert.dual_feasibility,
            "complementarity": cert.complementary_slackness, "phi_train": phi_value,
            "phi_train_method": float(rec.phi), "eta": float(fm.eta)}


def run_dynamics(config: StudyConfig) -> StudyResult:
    r"""Primal–dual training of FairMT step by step: :math:`\eta`, :math:`\Phi` against
    :math:`\varepsilon`, each :math:`\psi_t`, :math:`w^*`, :math:`\alpha`, and the KKT
    residuals of :func:`fairmt_opt.certify_primal_dual` on the whole training split
    (stationarity, absolute and relative; primal feasibility :math:`(\Phi - \varepsilon)_+`;
    dual feasibility; complementary slackness :math:`|\eta(\Phi - \varepsilon)|`);
    complementary slackness at the end."""
    from ..torch import METHODS

    methods = _check_methods(config.methods or ("fairmt",), METHODS)
    ds = _dataset(config)
    settings = _settings(config, log_every=1)
    steps_per_epoch = max(1, len(ds.train) // min(settings.batch_size, len(ds.train)))
    settings.eval_every = max(1, steps_per_epoch * settings.epochs // 12)
    eps = float(settings.method_options["eps"])
    w = StudyWriter(config, {"settings": settings.as_dict(), "dataset": repr(ds),
                             "dataset_info": ds.info})
    finals: dict[tuple[str, int], dict[str, float]] = {}

    for label in methods:
        for seed in progress(range(config.seeds), desc=f"dynamics:{label}"):
            def on_eval(tr: Any, label: str = label, seed: int = seed) -> None:
                vals = _kkt_residuals(ds, tr, eps)
                for q, v in vals.items():
                    w.hist(label, seed, tr.step, f"kkt:{q}", v)
                finals[(label, seed)] = vals

            tr = train_method(label, ds, seed=seed, settings=settings, device=config.device,
                              on_eval=on_eval)
            for step, q, v in history_rows(tr):
                w.hist(label, seed, step, q, v)
            for split in ("val", "test"):
                rows, _ = evaluate(ds, tr, split, float(settings.method_options["mu"]))
                for task, metric, value in rows:
                    w.result(label, seed, split, task, metric, value)
            record_group_rates(w, ds, label, seed, split_outputs(ds, tr, "test"), "test")
            for q, v in finals[(label, seed)].items():
                w.result(label, seed, "train", "all", f"final_{q}", v)
            w.timing(label, seed, "all", "train_time_s", tr.seconds)
    _dynamics_figures(w, ds, methods[0], eps)
    f = [finals[(methods[0], s)] for s in range(config.seeds)]
    active = [fin["eta"] > 0 for fin in f]
    lines = []
    for sd, fin in enumerate(f):
        state = ("active (η > 0)" if fin["eta"] > 0 else "inactive (η = 0)")
        lines.append(f"seed {sd}: Φ_train = {fin['phi_train']:.4f}, η = {fin['eta']:.4f}, "
                     f"constraint {state}, |η(Φ − ε)| = {fin['complementarity']:.2e}")
    summary = (
        f"{methods[0]} on {ds.name} with ε = {eps}: the constraint ended active on "
        f"{sum(active)} of {len(f)} seed(s). Complementary slackness at the end — "
        + "; ".join(lines) + ". The relative stationarity residual of the Lagrangian on "
        "the training split (0 at a stationary point, 1 when nothing cancels) went from "
        f"{_first_last(w.history, methods[0], 'kkt:stationarity_rel')}. With stochastic "
        "mini-batch steps and a fixed learning rate these residuals plateau rather than "
        "vanish; the exact convergence to a KKT point is checked on convex problems in the "
        "test suite (SPEC P8)."
    )
    return w.finish(f"Study: primal–dual dynamics of {methods[0]} on {ds.name}", summary)


def _first_last(history: list[dict[str, Any]], method: str, quantity: str) -> str:
    vals = [(r["step"], r["value"]) for r in history
            if r["method"] == method and r["seed"] == 0 and r["quantity"] == quantity]
    if not vals:
        return "(not recorded)"
    return f"{vals[0][1]:.3g} (step {vals[0][0]}) to {vals[-1][1]:.3g} (step {vals[-1][0]})"


def _series(history: list[dict[str, Any]], method: str, quantity: str, seed: int = 0
            ) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], r["value"]) for r in history
           if r["method"] == method and r["seed"] == seed and r["quantity"] == quantity]
    if not pts:
        return np.zeros(0), np.zeros(0)
    a = np.asarray(pts, dtype=np.float64)
    return a[:, 0], a[:, 1]


def _smooth(y: np.ndarray, k: int = 9) -> np.ndarray:
    if y.size < k:
        return y
    return np.convolve(np.pad(y, (k // 2, k // 2), mode="edge"), np.ones(k) / k, mode="valid")


def _dynamics_figures(w: StudyWriter, ds: MTLDataset, method: str, eps: float) -> None:
    H = w.history
    fig, axes = new_figure(1, 2, width=5.0, height=3.5)
    ax = axes[0, 0]
    s, phi = _series(H, method, "phi")
    ax.plot(s, phi, color="C0", alpha=0.3, lw=0.8, label="Φ (batch)")
    ax.plot(s, _smooth(phi), color="C0", label="Φ (batch, smoothed)")
    s2, phit = _series(H, method, "kkt:phi_train")
    ax.plot(s2, phit, "o-", color="C3", ms=3, label="Φ (training split)")
    ax.axhline(eps, color="k", ls="--", lw=1, label="ε")
    ax.set_xlabel("step")
    ax.set_title("aggregated violation Φ", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    s, eta = _series(H, method, "eta")
    ax.plot(s, eta, color="C2")
    ax.set_xlabel("step")
    ax.set_title("dual variable η", fontsize=9)
    w.figure(fig, "dynamics_phi_eta.png", "Φ against ε and the dual variable η over training "
             "(seed 0)")
    fig, axes = new_figure(1, 3, width=4.2, height=3.3)
    for ax, key, title in zip(axes[0], ("psi", "w", "alpha"),
                              ("violations ψ_t", "AHFDA weights w*_t", "task weights α_t (QP)")):
        for t, task in enumerate(ds.tasks[:10]):
            s, v = _series(H, method, f"{key}[{task.name}]")
            ax.plot(s, v, color=f"C{t}", lw=0.6, alpha=0.25)
            ax.plot(s, _smooth(v), color=f"C{t}", lw=1.2, label=task.name)
        ax.set_xlabel("step (thick: moving average over 9 steps)")
        ax.set_title(title, fontsize=9)
    axes[0, 0].legend(fontsize=6)
    w.figure(fig, "dynamics_psi_w_alpha.png", "Per-task violations ψ_t, AHFDA weights w* and "
             "QP weights α over training, batch values (thin) and moving average (thick), seed 0")
    fig, axes = new_figure(1, 1, width=5.5, height=3.6)
    ax = axes[0, 0]
    for q, c in (("stationarity", "C0"), ("stationarity_rel", "C3"),
                 ("primal_infeasibility", "C1"), ("complementarity", "C2")):
        s, v = _series(H, method, f"kkt:{q}")
        ax.semilogy(s, np.maximum(v, 1e-12), "o-", ms=3, color=c, label=q)
    ax.set_xlabel("step")
    ax.set_title("KKT residuals on the training split (floor 1e-12)", fontsize=9)
    ax.legend(fontsize=7)
    w.figure(fig, "dynamics_kkt.png", "KKT residuals over training (seed 0), by "
             "certify_primal_dual: stationarity ‖Σ α̃_t ∇L_t + η∇Φ‖ (absolute and relative to "
             "the gradient scale), primal infeasibility (Φ − ε)+, complementarity |η(Φ − ε)|")


# ----------------------------------------------------------------------------- sensitivity


def run_sensitivity(config: StudyConfig) -> StudyResult:
    r"""FairMT against :math:`\mu`, :math:`\varepsilon` and the dual step size :math:`\rho`,
    one at a time around the defaults: Φ and the mean utility on the test split."""
    ds = _dataset(config)
    settings = _settings(config)
    base = dict(settings.method_options)
    grid: dict[str, tuple[float, ...]] = (
        {"mu": (0.01,), "eps": (0.1,), "rho": (10.0,)} if config.quick else
            {"mu": (0.01, 0.03, 0.3, 1.0), "eps": (0.01, 0.02, 0.1, 0.2),
             "rho": (0.1, 0.3, 3.0, 10.0)})
    variants: dict[str, dict[str, Any]] = {"fairmt[default]": {}}
    for p, vals in grid.items():
        for v in vals:
            variants[f"fairmt[{p}={v:g}]"] = {p: v}
    w = StudyWriter(config, {"settings": settings.as_dict(), "grid": grid,
                             "dataset": repr(ds), "dataset_info": ds.info})
    _run_methods(config, w, ds, list(variants), settings, variants=variants, hist_every=8,
                 eval_mu=float(base["mu"]))  # one μ for Φ, so that the variants compare
    stats = _table(w.results, "test")

    def util(label: str) -> float:
        return float(np.mean([stats[(label, t.name, UTILITY_METRIC[t.kind])][0]
                              for t in ds.tasks]))

    fig, axes = new_figure(1, 3, width=4.0, height=3.3)
    rows = []
    for ax, (p, vals) in zip(axes[0], grid.items()):
        xs = sorted([*vals, base[p]])
        labels = [("fairmt[default]" if x == base[p] else f"fairmt[{p}={x:g}]") for x in xs]
        phis = [stats[(lab, "all", "phi")] for lab in labels]
        ax.errorbar(xs, [m for m, _ in phis], yerr=[s for _, s in phis], fmt="o-", capsize=2,
                    label="Φ (test)")
        ax.set_xscale("log")
        ax.set_xlabel(p)
        ax.set_ylabel("Φ (test)")
        ax2 = ax.twinx()
        ax2.plot(xs, [util(lab) for lab in labels], "s--", color="C1", label="mean utility")
        ax2.set_ylabel("mean utility (acc. / CCC)")
        ax.set_title(f"sensitivity to {p}", fontsize=9)
        for x, lab in zip(xs, labels):
            rows.append([p, x, stats[(lab, "all", "phi")][0], util(lab),
                         float(np.mean([r["value"] for r in w.results if r["method"] == lab
                                        and r["metric"] == "final_eta"]))])
    w.figure(fig, "sensitivity.png", "Test Φ (mean ± std over seeds) and mean utility of FairMT"
             " against μ, ε and ρ, one at a time around the defaults")
    w.section("## One-at-a-time grid (test split, mean over seeds)\n\n"
              f"Φ is evaluated with the default μ = {base['mu']} for every variant.\n\n"
              + markdown_table(["parameter", "value", "Φ", "mean utility", "final η"], rows))
    eps_rows = [r for r in rows if r[0] == "eps"]
    mono = all(a[2] <= b[2] + 1e-9 for a, b in itertools.pairwise(eps_rows))
    summary = (
        f"FairMT on {ds.name}, defaults {base}. Test Φ over the ε grid "
        + ", ".join(f"ε={r[1]:g}: {r[2]:.4f} ({'met' if r[2] <= r[1] else 'NOT met'})"
                    for r in eps_rows)
        + (" (non-decreasing in ε, as the constraint predicts)." if mono else
           " (NOT monotone in ε on this run).")
        + " Over μ: " + ", ".join(f"μ={r[1]:g}: Φ {r[2]:.4f}, utility {r[3]:.3f}"
                                  for r in rows if r[0] == "mu")
        + ". Over ρ: " + ", ".join(f"ρ={r[1]:g}: Φ {r[2]:.4f}, final η {r[4]:.3g}"
                                   for r in rows if r[0] == "rho") + "."
    )
    return w.finish(f"Study: sensitivity of FairMT on {ds.name}", summary)
