"""Helpers for the torch-backend tests (no tests here): small models, batches, and temporary
stand-ins for layer-1/2 functions that have not landed yet (used only while the real ones
raise NotImplementedError; each stand-in is checked against cvxpy where it matters)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

import fairmt_opt
import fairmt_opt.fairness as fairness
from fairmt_opt import reference
from fairmt_opt.fairness import Task
from fairmt_opt.torch import _fairmt

# tiny tensors: one intra-op thread avoids OpenMP oversubscription on a busy machine (seen to
# slow these tests down 50x when other processes compete for the cores)
torch.set_num_threads(1)

# ----------------------------------------------------------------------------- stand-ins


class _DualShim:
    def __init__(self, rho: float, eps: float, *, eta: float = 0.0, eta_max: float = math.inf,
                 mode: str = "batch", beta: float = 0.9) -> None:
        self.rho, self.eps, self.eta, self.eta_max = rho, eps, eta, eta_max
        self.mode, self.beta = mode, beta
        self.avg: Any = None

    def step(self, phi: Any) -> Any:
        if self.mode == "running_mean":
            self.avg = phi if self.avg is None else self.beta * self.avg + (1 - self.beta) * phi
            phi = self.avg
        e = self.eta + self.rho * (phi - self.eps)
        if isinstance(e, torch.Tensor):
            self.eta = e.clamp(min=0.0, max=self.eta_max)
        else:
            self.eta = min(self.eta_max, max(0.0, e))
        return self.eta

    def state_dict(self) -> dict[str, Any]:
        return {"eta": self.eta, "avg": self.avg}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.eta, self.avg = s["eta"], s["avg"]


@dataclass
class _QP:
    K: Any
    b: Any


def _head_aware_qp_shim(R: Any, r_phi: Any, eta: Any) -> _QP:
    return _QP(R @ R.T, eta * (R @ r_phi))


@dataclass
class _QPRes:
    x: Any
    fun: float


def _solve_qp_shim(K: Any, b: Any = None, *, method: str = "active_set", **kw: Any) -> _QPRes:
    if isinstance(K, torch.Tensor):
        sol = reference.solve_simplex_qp(K.detach().cpu().double().numpy(),
                                         None if b is None else b.detach().cpu().double().numpy())
        return _QPRes(torch.as_tensor(sol.x, dtype=K.dtype, device=K.device), sol.value)
    sol = reference.solve_simplex_qp(K, b)
    x = np.clip(sol.x, 0, None)
    return _QPRes(x / x.sum(), sol.value)


@dataclass
class _Cert:
    gap: float
    ok: bool


def _certify_shim(K: Any, b: Any, x: Any) -> _Cert:
    K, b, x = (np.asarray(torch.as_tensor(a).detach().cpu().double()) for a in (K, b, x))
    g = K @ x + b
    gap = float(x @ g - g.min())
    return _Cert(gap, gap <= 1e-6 * max(1.0, np.abs(K).max(), np.abs(b).max()))


@dataclass
class _Agg:
    weights: Any
    value: Any


def _aggregate_shim(psi: Any, mu: float, *, method: str = "exact", **kw: Any) -> _Agg:
    p = torch.as_tensor(psi).detach().cpu().double().numpy()
    sol = reference.aggregate_violations(p, mu)
    w = np.clip(sol.x, 0, None)
    w = w / w.sum()
    return _Agg(torch.as_tensor(w, dtype=torch.as_tensor(psi).dtype), sol.value)


@dataclass
class _Stats:
    num: torch.Tensor  # (..., G) numerators
    den: torch.Tensor  # (..., G) denominators

    def map(self, fn: Any) -> _Stats:
        return _Stats(fn(self.num), fn(self.den))

    def __add__(self, o: _Stats) -> _Stats:
        return _Stats(self.num + o.num, self.den + o.den)


def _soft_stats_shim(task: Task, outputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                     groups: torch.Tensor, num_groups: int, *, temperature: float = 1.0) -> _Stats:
    G = torch.nn.functional.one_hot(groups.long(), num_groups).to(outputs.dtype)  # (N, G)
    m = mask.to(outputs.dtype)
    if task.kind == "regression":
        z = outputs.reshape(-1)
        y = torch.where(mask, targets.to(z.dtype), torch.zeros_like(z))
        err = torch.where(mask, (z - y).abs(), torch.zeros_like(z))
        return _Stats((err[:, None] * G).sum(0)[None], (m[:, None] * G).sum(0)[None])
    if task.kind == "detection":
        p = torch.sigmoid(outputs.reshape(-1) / temperature)[:, None]  # (N, 1)
        y = torch.where(mask, targets.to(p.dtype), torch.zeros_like(targets, dtype=p.dtype))
        Y = y[:, None]
    else:
        p = torch.softmax(outputs / temperature, dim=1)
        yy = torch.where(mask, targets.long(), torch.zeros_like(targets.long()))
        Y = torch.nn.functional.one_hot(yy, task.num_classes).to(p.dtype)
    Y = Y * m[:, None]
    neg = (1 - Y) * m[:, None]
    # rows: classes; stats (2, C, G): tpr numerators and fpr numerators
    num = torch.stack([(p * Y).T @ G, (p * neg).T @ G])
    den = torch.stack([Y.T @ G, neg.T @ G])
    return _Stats(num, den)


@dataclass
class _Viol:
    value: torch.Tensor


def _violation_shim(task: Task, stats: _Stats, *, symmetric: bool = False,
                    group_reduction: str = "mean", include_fpr: bool = True,
                    regression_score: str = "mae", scale: Any = None) -> _Viol:
    valid = stats.den > 0
    rate = torch.where(valid, stats.num / stats.den.clamp(min=1e-30), torch.zeros_like(stats.num))
    zero = stats.num.sum() * 0
    if task.kind == "regression":
        score = -rate[0]
        v = valid[0]
        if int(v.sum()) < 2:
            return _Viol(zero.detach() * 0)
        best = score[v].max().detach()
        if symmetric:
            s = score[v]
            return _Viol((s[:, None] - s[None, :]).abs().max())
        return _Viol((best - score[v]).clamp(min=0).mean())
    terms = []
    for k in range(rate.shape[1]):
        tv, fv = valid[0, k], valid[1, k]
        term = zero
        if int(tv.sum()) >= 2:
            t = rate[0, k][tv]
            term = term + ((t[:, None] - t[None, :]).abs().max() if symmetric
                           else (t.max().detach() - t).clamp(min=0).mean())
        if include_fpr and int(fv.sum()) >= 2:
            f = rate[1, k][fv]
            term = term + ((f[:, None] - f[None, :]).abs().max() if symmetric
                           else (f - f.min().detach()).clamp(min=0).mean())
        terms.append(term)
    return _Viol(torch.stack(terms).mean() if task.kind == "classification" else terms[0])


def _works(fn: Any) -> bool:
    try:
        fn()
        return True
    except (NotImplementedError, AttributeError, TypeError):
        return False


def install_shims(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace, in the namespaces the torch backend reads, every dependency that is still a
    stub. Returns the names replaced."""
    done = []
    K = np.eye(2)
    if not _works(lambda: fairmt_opt.DualAscent(1.0, 0.1, eta=0.0).step(0.5)):
        monkeypatch.setattr(_fairmt, "DualAscent", _DualShim)
        done.append("DualAscent")
    if not _works(lambda: fairmt_opt.head_aware_qp(K, np.ones(2), 1.0).K):
        monkeypatch.setattr(_fairmt, "head_aware_qp", _head_aware_qp_shim)
        done.append("head_aware_qp")
    if not _works(lambda: fairmt_opt.solve_simplex_qp(K, np.zeros(2)).x):
        monkeypatch.setattr(_fairmt, "solve_simplex_qp", _solve_qp_shim)
        done.append("solve_simplex_qp")
    if not _works(lambda: fairmt_opt.certify_simplex_qp(K, np.zeros(2), np.full(2, 0.5)).gap):
        monkeypatch.setattr(_fairmt, "certify_simplex_qp", _certify_shim)
        done.append("certify_simplex_qp")
    if not _works(lambda: fairmt_opt.aggregate_violations(np.ones(2), 1.0).weights):
        monkeypatch.setattr(_fairmt, "aggregate_violations", _aggregate_shim)
        done.append("aggregate_violations")
    if not hasattr(fairness, "soft_stats") or not _works(
        lambda: fairness.soft_stats(Task("a", "detection"), torch.zeros(2), torch.zeros(2),
                                    torch.ones(2, dtype=torch.bool), torch.tensor([0, 1]), 2)
    ):
        monkeypatch.setattr(fairness, "soft_stats", _soft_stats_shim, raising=False)
        monkeypatch.setattr(fairness, "violation_from_stats", _violation_shim, raising=False)
        done.append("soft_stats/violation_from_stats")
    return done


# ----------------------------------------------------------------------------- data and models

TASKS3 = (Task("det", "detection"), Task("cls", "classification", num_classes=3),
          Task("reg", "regression"))


def make_batch(tasks: Any, N: int, d_in: int, num_groups: int = 2, *, seed: int = 0,
               label_rate: float = 0.8, dtype: torch.dtype = torch.float32,
               device: str = "cpu") -> dict[str, Any]:
    """A random batch: inputs, targets (with -1 / NaN where unlabelled), masks, groups."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, d_in, generator=g, dtype=dtype)
    groups = torch.randint(0, num_groups, (N,), generator=g)
    groups[:num_groups] = torch.arange(num_groups)
    masks = torch.rand(N, len(tasks), generator=g) < label_rate
    targets = []
    for t, task in enumerate(tasks):
        if task.kind == "detection":
            y = (torch.rand(N, generator=g) < 0.4 + 0.2 * groups / num_groups).to(dtype)
        elif task.kind == "classification":
            y = torch.randint(0, task.num_classes, (N,), generator=g)
            y = torch.where(masks[:, t], y, torch.full_like(y, -1))
        else:
            y = torch.randn(N, generator=g, dtype=dtype) + 0.5 * groups.to(dtype)
            y = torch.where(masks[:, t], y, torch.full_like(y, math.nan))
        targets.append(y.to(device))
    return {"x": x.to(device), "targets": targets, "masks": masks.to(device),
            "groups": groups.to(device)}


class MTModel(torch.nn.Module):
    """Shared MLP encoder plus one head per task (linear, or a small MLP when ``mlp_heads``)."""

    def __init__(self, tasks: Any, d_in: int, d: int, *, mlp_heads: bool = False,
                 seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = torch.nn.Sequential(torch.nn.Linear(d_in, d), torch.nn.Tanh(),
                                           torch.nn.Linear(d, d), torch.nn.Tanh())
        heads: list[torch.nn.Module] = []
        for task in tasks:
            if mlp_heads:
                heads.append(torch.nn.Sequential(torch.nn.Linear(d, 6), torch.nn.Tanh(),
                                                 torch.nn.Linear(6, task.out_dim)))
            else:
                heads.append(torch.nn.Linear(d, task.out_dim))
        self.heads = torch.nn.ModuleList(heads)
        self.to(dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = self.encoder(x)
        return h, [hd(h) for hd in self.heads]
