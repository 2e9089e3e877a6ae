r"""P9 (partial labels: a task with no label in a batch changes nothing).

**Proposition.** With the masked loss
$L_t = \sum_i M_{it}\ell_t(z_{it}, y_{it}) / \max(1, \sum_i M_{it})$ and fairness statistics
summed over labelled samples only, a task $t$ with $M_{\cdot t} = 0$ in a batch has $L_t = 0$,
$\nabla L_t = 0$ and $\psi_t = 0$ with zero gradient, and never produces a NaN, whatever its
targets hold (NaN included). A FairMT training step on that batch then gives exactly the same
parameter update as the same step on a model from which task $t$ (its head, its targets) is
removed.

**Proof.** Every term of $L_t$ and of the group statistics of task $t$ is multiplied by
$M_{it} = 0$ (the targets are never read where the mask is 0, so a NaN target cannot leak
through $0\cdot\mathrm{NaN}$), and the denominator is $\max(1, 0) = 1$. So $L_t$, $r_t$ and
$\psi_t$ vanish with their gradients. The library leaves a task that is absent from the batch
out of the aggregation and of the QP (it is not *present*), and scales the remaining weights by
the number of present tasks, so the Lagrangian, hence its gradient with respect to every
shared parameter and every other head, equals the one of the model without task $t$. $\square$

**Numerical check.** Random float64 multi-task models (a tanh encoder layer, linear heads of
all three task types, two to four tasks, two or three groups), random batches where one task
has no label and its targets are NaN (classification: -1): the largest difference between the
gradients of the encoder and of the other heads for ``FairMT`` with the empty task and for
``FairMT`` without it, relative to the largest gradient, with the proxies ``head``, ``rep``,
``full`` and ``none``, the aggregations ``exact``, ``frank_wolfe`` and ``pairwise`` and
$\eta \in \{0, 0.5, 2\}$; and that the recorded loss and violation of the empty task and the
gradient of its head are exactly zero, with no NaN anywhere.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ._framework import NotAvailable, Row, Tracker, guard, require

PROP = "P9"
CLAIM = "a task with no labels in the batch changes nothing"

PROXIES = ("head", "rep", "full", "none")
AGGREGATIONS = ("exact", "frank_wolfe", "pairwise")


def _grads(fairmt_cls: Any, cfg: dict[str, Any], keep: list[int], enc: Any,
           heads: list[Any]) -> tuple[list[Any], Any]:
    """Gradients of one FairMT Lagrangian (tasks ``keep``) w.r.t. the encoder and all heads."""
    import torch

    from fairmt_opt import DualAscent
    from fairmt_opt.torch import FairnessConstraint
    from fairmt_opt.torch.proxies import make_proxy

    params = list(enc.parameters())
    tasks = [cfg["tasks"][t] for t in keep]
    fm = fairmt_cls(tasks, num_groups=cfg["G"],
                    constraint=FairnessConstraint(tasks, cfg["G"], mu=0.3,
                                                  aggregation=cfg["aggregation"]),
                    proxy=make_proxy(cfg["proxy"], shared_parameters=params),
                    dual=DualAscent(rho=1.0, eps=0.05, eta=cfg["eta"]))
    h = enc(cfg["x"])
    outs = [heads[t](h) for t in keep]
    step = guard(fm.compute, h, outs, [cfg["targets"][t] for t in keep],
                 [cfg["masks"][t] for t in keep], cfg["groups"],
                 heads=[heads[t] for t in keep])
    wrt = params + [q for hd in heads for q in hd.parameters()]
    grads = torch.autograd.grad(step.loss, wrt, allow_unused=True)
    return [torch.zeros_like(w) if g is None else g for g, w in zip(grads, wrt)], step


def check(*, quick: bool = False, seed: int = 0, n: int | None = None,
          fairmt_cls: Any = None) -> list[Row]:
    """Run the P9 checks; ``fairmt_cls`` replaces ``fairmt_opt.torch.FairMT`` (tests)."""
    (Task,) = require("fairmt_opt.fairness", "Task")
    try:
        import torch
    except ImportError as exc:  # pragma: no cover
        raise NotAvailable("P9 needs torch") from exc
    (FairMT,) = require("fairmt_opt.torch", "FairMT")
    fairmt_cls = fairmt_cls or FairMT
    f64 = torch.float64
    n = n or (8 if quick else 1000)
    rng = np.random.default_rng([seed, 9])
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))

    same = Tracker(PROP, "update with the empty task = update without it", 1e-12)
    zero = Tracker(PROP, "empty task: L_t = psi_t = 0, zero head gradient, no NaN", 0.0)

    for k in range(n):
        T = int(rng.integers(2, 5))
        G = int(rng.integers(2, 4))
        N = int(rng.integers(8, 40))
        p, d = int(rng.integers(2, 6)), int(rng.integers(2, 8))
        kinds = [str(x) for x in rng.choice(["detection", "classification", "regression"], T)]
        tasks = [Task(f"t{t}", kinds[t], num_classes=3) if kinds[t] == "classification"
                 else Task(f"t{t}", kinds[t]) for t in range(T)]
        empty = int(rng.integers(T))
        proxy = PROXIES[k % len(PROXIES)]
        aggregation = AGGREGATIONS[(k // len(PROXIES)) % len(AGGREGATIONS)]
        eta = float(rng.choice([0.0, 0.5, 2.0]))

        torch.manual_seed(int(rng.integers(2**31)))
        enc = torch.nn.Sequential(torch.nn.Linear(p, d), torch.nn.Tanh()).to(f64)
        heads = [torch.nn.Linear(d, t.out_dim).to(f64) for t in tasks]
        x = torch.randn(N, p, generator=gen, dtype=f64)
        groups = torch.from_numpy(np.arange(N) % G)
        targets, masks = [], []
        for t, task in enumerate(tasks):
            if task.kind == "detection":
                y = torch.from_numpy((rng.random(N) < 0.5).astype(float))
            elif task.kind == "classification":
                y = torch.from_numpy(rng.integers(0, 3, size=N))
            else:
                y = torch.from_numpy(rng.normal(size=N))
            m = torch.from_numpy(rng.random(N) < 0.7)
            m[:2 * G] = True  # every non-empty task has labels in every group
            if t == empty:
                m[:] = False
                y = torch.full((N,), float("nan"), dtype=f64) if task.kind != "classification" \
                    else torch.full((N,), -1, dtype=torch.int64)
            targets.append(y)
            masks.append(m)

        cfg = {"tasks": tasks, "G": G, "eta": eta, "proxy": proxy, "aggregation": aggregation,
               "x": x, "targets": targets, "masks": masks, "groups": groups}
        enc2, heads2 = copy.deepcopy(enc), copy.deepcopy(heads)
        g_all, step_all = _grads(fairmt_cls, cfg, list(range(T)), enc, heads)
        g_red, _ = _grads(fairmt_cls, cfg, [t for t in range(T) if t != empty], enc2, heads2)
        n_enc = len(list(enc.parameters()))
        head_slices, i = [], n_enc
        for t in range(T):
            c = len(list(heads[t].parameters()))
            head_slices.append((i, i + c))
            i += c
        a, b = head_slices[empty]
        keep_idx = [j for j in range(len(g_all)) if not a <= j < b]
        diff = max(float((g_all[j] - g_red[j]).abs().max()) for j in keep_idx)
        mag = max(1.0, max(float(g_all[j].abs().max()) for j in keep_idx))

        def where(k: int = k, T: int = T, e: int = empty, px: str = proxy,
                  ag: str = aggregation, eta: float = eta, kd: str = kinds[empty]) -> str:
            return f"#{k} T={T} empty=t{e} ({kd}) proxy={px} aggregation={ag} eta={eta}"

        nan = any(bool(torch.isnan(g).any()) for g in g_all) or bool(
            torch.isnan(step_all.loss).any())
        same.add(np.inf if nan else diff / mag, where)
        rec = step_all.record
        head_grad = max(float(g_all[j].abs().max()) for j in range(a, b))
        zero.add(max(abs(float(rec.losses[empty])), abs(float(rec.psi[empty])), head_grad,
                     float(np.inf) if nan else 0.0), where)
    return [same.row(), zero.row()]
