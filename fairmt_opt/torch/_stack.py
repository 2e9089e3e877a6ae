"""The tasks of one kind stacked along a task axis, so that every formula of the fairness
layer runs once per kind and step instead of once per task."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..fairness import Task

__all__ = ["Bucket", "Layout", "cached_index"]


@functools.lru_cache(maxsize=512)
def cached_index(values: tuple[int, ...], device: str) -> torch.Tensor:
    """A cached int64 index tensor on ``device`` (no host-to-device copy per step)."""
    return torch.tensor(values, dtype=torch.long, device=device)


@dataclass(frozen=True)
class Bucket:
    """The tasks ``idx`` of one kind and output width ``C``, stacked: ``Z`` the outputs
    (``(N, k)``, classification ``(N, k, C)``; in the autograd graph), ``y`` the targets with
    the unlabelled entries replaced by 0 (``(N, k)``; long for classification, else the
    dtype of ``Z``) and ``M`` the ``(N, k)`` bool label masks."""

    kind: str
    C: int
    idx: tuple[int, ...]
    Z: torch.Tensor
    y: torch.Tensor
    M: torch.Tensor


class Layout:
    """The tasks grouped by ``(kind, out_dim)`` in order of first appearance.

    >>> from fairmt_opt.fairness import Task
    >>> Layout([Task("a", "detection"), Task("b", "regression"), Task("c", "detection")]).groups
    (('detection', 1, (0, 2)), ('regression', 1, (1,)))
    """

    def __init__(self, tasks: Sequence[Task]) -> None:
        buckets: dict[tuple[str, int], list[int]] = {}
        for t, task in enumerate(tasks):
            buckets.setdefault((task.kind, task.out_dim), []).append(t)
        self.groups = tuple((kind, C, tuple(idx)) for (kind, C), idx in buckets.items())
        order = tuple(t for _, _, idx in self.groups for t in idx)
        pos = {t: j for j, t in enumerate(order)}
        self.order = order  # bucket position -> task
        self.inverse = tuple(pos[t] for t in range(len(tasks)))  # task -> bucket position

    def stack(self, outputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
              masks: Sequence[torch.Tensor], dtype: torch.dtype) -> list[Bucket]:
        """Stack outputs, targets and masks of every bucket (a constant number of tensor
        operations per bucket)."""
        out = []
        for kind, C, idx in self.groups:
            M = torch.stack([masks[t] for t in idx], 1)
            if kind == "classification":
                Z = torch.stack([outputs[t] for t in idx], 1).to(dtype)
                y = torch.stack([targets[t].to(torch.long) for t in idx], 1)
            else:
                Z = torch.stack([outputs[t].reshape(-1) for t in idx], 1).to(dtype)
                y = torch.stack([targets[t].to(dtype) for t in idx], 1)
            y = torch.where(M, y, torch.zeros((), dtype=y.dtype, device=y.device))
            out.append(Bucket(kind, C, idx, Z, y, M))
        return out

    def views(self, buckets: Sequence[Bucket], like: Sequence[torch.Tensor]
              ) -> list[torch.Tensor]:
        """Per task, the view of its column of the stacked ``buckets`` shaped like ``like``
        (differentiable with respect to the stacked tensors)."""
        out: list[torch.Tensor] = list(like)
        for bk in buckets:
            for j, t in enumerate(bk.idx):
                out[t] = bk.Z[:, j].reshape(like[t].shape)
        return out

    def stack_grads(self, buckets: Sequence[Bucket], grads: dict[int, torch.Tensor]
                    ) -> list[torch.Tensor]:
        """Per-task tensors (``grads[t]``, absent: zeros) stacked like the buckets' ``Z``."""
        out = []
        for bk in buckets:
            N = bk.Z.shape[0]
            cols = [grads[t].reshape(bk.Z.shape[0], -1).to(bk.Z.dtype) if t in grads
                    else bk.Z.new_zeros(N, bk.C) for t in bk.idx]
            G = torch.stack(cols, 1)  # (N, k, C)
            out.append(G if bk.kind == "classification" else G[..., 0])
        return out

    def per_task(self, stacked: Sequence[torch.Tensor], like: Sequence[torch.Tensor],
                 live: Sequence[bool]) -> list[torch.Tensor]:
        """Per task, its column of the bucket tensors ``stacked`` (one per bucket, shaped like
        the buckets' ``Z``) shaped like ``like``; zeros for the tasks not ``live``."""
        out: list[torch.Tensor] = [torch.zeros_like(z) for z in like]
        for (_, _, idx), G in zip(self.groups, stacked):
            for j, t in enumerate(idx):
                if live[t]:
                    out[t] = G[:, j].reshape(like[t].shape).to(like[t].dtype)
        return out

    def unstack(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(T,)`` in task order from one ``(k,)`` tensor per bucket."""
        cat = torch.cat(list(parts))
        return cat[cached_index(self.inverse, str(cat.device))]
