"""torch.distributed plumbing: which process group to reduce over, and sums across ranks."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Reducer"]


class Reducer:
    """Sums tensors over the ranks of a process group (a no-op for a single process).

    ``mode="auto"`` reduces when ``torch.distributed`` is initialised with more than one rank;
    ``True`` requires it, ``False`` never reduces; a process group reduces over that group.
    """

    def __init__(self, mode: Any = "auto", group: Any = None) -> None:
        if not (mode is True or mode is False or mode == "auto"):
            if isinstance(mode, (str, int, float)) or mode is None:
                raise ValueError(f"distributed must be True, False, 'auto' or a process group, "
                                 f"got {mode!r}")
            mode, group = True, mode  # a process group

        self.mode = mode
        self.group = group

    @property
    def world_size(self) -> int:
        if self.mode is False:
            return 1
        if not (dist.is_available() and dist.is_initialized()):
            if self.mode is True:
                raise ValueError("distributed=True but torch.distributed is not initialised")
            return 1
        return int(dist.get_world_size(self.group))

    def sum_autograd(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over ranks, differentiable (its backward sums the gradients over ranks too)."""
        if self.world_size == 1:
            return x
        from torch.distributed.nn.functional import all_reduce

        return all_reduce(x, op=dist.ReduceOp.SUM, group=self.group)

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over ranks of a tensor that carries no gradient (a new tensor)."""
        if self.world_size == 1:
            return x
        y = x.detach().clone()
        dist.all_reduce(y, op=dist.ReduceOp.SUM, group=self.group)
        return y
