"""Training-step time of FairMT and the baselines, as ratios to a hand-written linear
scalarisation step measured in the same run.

Configurations (CPU): (a) MLP encoder, input 64, two hidden layers of width 128, batch 512;
(b) MLP encoder of width 512, batch 1024; (c) a convolutional encoder (32x32x3 inputs, batch
256); each with T = 3 and T = 40 linear heads (detection, 3-class classification and regression
in turn). One step = forward, method (losses, violations, aggregation, QP), backward, Adam step,
dual step. The reference is the step a user writes by hand: the sum of the masked mean losses
by ``torch.nn.functional`` (no fairmt_opt code). Methods: linear scalarisation through
``make_method`` (also records ψ, Φ), FairMT (head proxy, exact aggregation, exact active-set
QP), FairMT with the on-device APG QP, MGDA-UB (rep proxy), MGDA (full proxy; not on (c)).
GPU (only when CUDA is present): configuration (c), T = 40.

    python benchmarks/bench_torch.py [--repeats 30] [--threads 1] [--configs a b c]
                                     [--tasks 3 40] [--check-inputs]

Times are medians over interleaved repeats (each method is timed in turn, so that a busy
machine slows all of them alike) of the process's CPU time on CPU (with one intra-op thread by
default, the CPU time is the cost of the step, whatever else the machine runs) and of
wall-clock time after synchronisation on CUDA. The fixed per-step overhead of FairMT is its
step time minus the reference's.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from fairmt_opt.fairness import Task
from fairmt_opt.torch import make_method

KINDS = ("detection", "classification", "regression")


def tasks_of(T: int) -> list[Task]:
    out = []
    for t in range(T):
        kind = KINDS[t % 3]
        out.append(Task(f"t{t}", kind, num_classes=3 if kind == "classification" else 1))
    return out


def batch(tasks: list[Task], N: int, shape: tuple[int, ...], device: str) -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, *shape, generator=g)
    groups = torch.randint(0, 2, (N,), generator=g)
    masks = torch.rand(N, len(tasks), generator=g) < 0.8
    targets = []
    for t, task in enumerate(tasks):
        if task.kind == "detection":
            y = (torch.rand(N, generator=g) < 0.5).float()
        elif task.kind == "classification":
            y = torch.where(masks[:, t], torch.randint(0, 3, (N,), generator=g), -1)
        else:
            y = torch.randn(N, generator=g)
        targets.append(y.to(device))
    return {"x": x.to(device), "targets": targets, "masks": masks.to(device),
            "groups": groups.to(device)}


def mlp(d_in: int, d: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(d_in, d), torch.nn.ReLU(), torch.nn.Linear(d, d),
                               torch.nn.ReLU())


def convnet(d: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, d), torch.nn.ReLU(),
    )


def plain_loss(task: Task, z: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """The masked mean loss as a user writes it with torch.nn.functional."""
    n = m.sum().clamp(min=1)
    if task.kind == "detection":
        per = F.binary_cross_entropy_with_logits(z[:, 0], torch.where(m, y, 0.0),
                                                 reduction="none")
    elif task.kind == "classification":
        per = F.cross_entropy(z, torch.where(m, y, 0), reduction="none")
    else:
        per = (z[:, 0] - torch.where(m, y, 0.0)) ** 2
    return torch.where(m, per, 0.0).sum() / n


class Setup:
    """One method on its own copy of the model."""

    def __init__(self, name: str, options: dict[str, Any], tasks: list[Task],
                 encoder: torch.nn.Module, d: int, device: str) -> None:
        torch.manual_seed(0)
        self.encoder = encoder.to(device)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(d, t.out_dim) for t in tasks]).to(
            device)
        params = [*self.encoder.parameters(), *self.heads.parameters()]
        self.opt = torch.optim.Adam(params, lr=1e-3)
        kw = dict(options)
        self.plain = bool(kw.pop("plain", False))
        self.tasks = tasks
        if kw.pop("shared", False):
            kw["shared_parameters"] = self.encoder.parameters()
        self.method = make_method(name, tasks, 2, eps=0.01, eta=0.5, **kw)

    def step(self, b: dict[str, Any]) -> None:
        h = self.encoder(b["x"])
        outs = [hd(h) for hd in self.heads]
        if self.plain:
            loss = sum(plain_loss(t, z, y, m)
                       for t, z, y, m in zip(self.tasks, outs, b["targets"], b["masks"].unbind(1)))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[union-attr]
            self.opt.step()
            return
        out = self.method.compute(h, outs, b["targets"], b["masks"], b["groups"],
                                  heads=list(self.heads))
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        self.opt.step()
        self.method.dual_step(out.record)


METHODS: list[tuple[str, str, dict[str, Any]]] = [
    ("linear scalarisation (plain sum of masked losses)", "linear", {"plain": True}),
    ("linear scalarisation via make_method (also records psi, Phi)", "linear", {}),
    ("FairMT (head, exact agg., active-set QP)", "fairmt", {}),
    ("FairMT (head, exact agg., APG QP on device)", "fairmt",
     {"qp_method": "apg", "qp_max_iter": 200}),
    ("MGDA-UB (rep)", "mgda_ub", {}),
    ("MGDA (full)", "mgda", {"shared": True}),
]


CONFIGS = {
    "a": ("(a) MLP width 128, batch 512", 128, (64,), 512),
    "b": ("(b) MLP width 512, batch 1024", 512, (64,), 1024),
    "c": ("(c) convolutional encoder, batch 256", 128, (3, 32, 32), 256),
}


def encoder_of(config: str, d: int) -> torch.nn.Module:
    return convnet(d) if config == "c" else mlp(64, d)


def run(T: int, config: str, *, repeats: int, device: str, check_inputs: bool
        ) -> list[str]:
    _, d, shape, N = CONFIGS[config]
    tasks = tasks_of(T)
    b = batch(tasks, N, shape, device)
    skip = ("mgda",) if config == "c" else ()
    setups = []
    for label, name, opts in METHODS:
        if name in skip:
            continue
        opts = {**opts, "check_inputs": check_inputs}
        setups.append((label, Setup(name, opts, tasks, encoder_of(config, d), d, device)))
    times: dict[str, list[float]] = {label: [] for label, _ in setups}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    # CPU: the process's CPU time (other processes on a shared machine do not count);
    # CUDA: wall-clock time after a synchronisation
    clock = time.perf_counter if device == "cuda" else time.process_time
    for _ in range(3):  # warm-up
        for _, s in setups:
            s.step(b)
    sync()
    for _ in range(repeats):
        for label, s in setups:
            t0 = clock()
            s.step(b)
            sync()
            times[label].append(clock() - t0)
    ref = statistics.median(times[METHODS[0][0]])
    rows = []
    for label, _ in setups:
        med = statistics.median(times[label])
        rows.append(f"| {config} | {T} | {label} | {1e3 * med:.2f} | {med / ref:.2f}x | "
                    f"{1e3 * (med - ref):+.2f} |")
    return rows


HEADER = ("| config | T | method | step (ms) | ratio to the reference | overhead (ms) |\n"
          "|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--configs", nargs="+", default=["a", "b", "c"], choices=sorted(CONFIGS))
    ap.add_argument("--tasks", type=int, nargs="+", default=[3, 40])
    ap.add_argument("--check-inputs", action="store_true",
                    help="also run the value checks each step (host synchronisation)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.threads} thread(s), check_inputs={args.check_inputs}")
    from fairmt_opt.qp import _kernel
    print("# compiled active-set QP kernel: "
          + ("loaded" if _kernel.KERNEL is not None else f"NOT used ({_kernel.LOAD_ERROR})"))
    print("CPU:\n" + HEADER)
    for config in args.configs:
        for T in args.tasks:
            for row in run(T, config, repeats=args.repeats, device="cpu",
                           check_inputs=args.check_inputs):
                print(row, flush=True)
    if args.device == "cuda":
        print("\nGPU:\n" + HEADER)
        for row in run(40, "c", repeats=args.repeats, device="cuda",
                       check_inputs=args.check_inputs):
            print(row, flush=True)


if __name__ == "__main__":
    main()
