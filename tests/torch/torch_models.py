"""Helpers for the torch-backend tests (no tests here): small models and random batches."""

from __future__ import annotations

import math
from typing import Any

import torch

from fairmt_opt.fairness import Task

# tiny tensors: one intra-op thread avoids OpenMP oversubscription on a busy machine (seen to
# slow these tests down 50x when other processes compete for the cores)
torch.set_num_threads(1)

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
