r"""The task losses part of :class:`~fairmt_opt.torch.FairMT` (SPEC §1).

:class:`TaskLosses` computes, for every task, the masked loss numerator and label count: the
built-in masked losses of :mod:`fairmt_opt.fairness` (binary cross-entropy, cross-entropy,
squared or absolute error) on all tasks of one kind at once, or a callable of the user's per
task. A user loss is ``fn(outputs, targets, mask) -> (N,)`` per-sample losses: its targets have
the unlabelled entries replaced by 0 (so NaN placeholders never reach it) and the unlabelled
rows are then dropped by the mask, so partial labels and the distributed sums work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..fairness import Task
from ..fairness._losses import MaskedLoss, RegressionLoss, masked_loss, stacked_loss_sums
from ._stack import Bucket, Layout

__all__ = ["LossFn", "MaskedLoss", "TaskLosses", "masked_task_loss"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def masked_task_loss(task: Task, outputs: torch.Tensor, targets: torch.Tensor,
                     mask: torch.Tensor, *, regression_loss: RegressionLoss = "mse"
                     ) -> MaskedLoss:
    r"""Masked mean loss of one task, :math:`L_t = \sum_i M_i \ell(z_i, y_i) /
    \max(1, \sum_i M_i)`: :func:`fairmt_opt.fairness.masked_loss` (the one implementation).

    >>> import torch
    >>> from fairmt_opt.fairness import Task
    >>> out = masked_task_loss(Task("y", "detection"), torch.zeros(3), torch.tensor([1., 0., 1.]),
    ...                        torch.tensor([True, True, False]))
    >>> round(float(out.value), 4), float(out.count)
    (0.6931, 2.0)
    """
    return masked_loss(task, outputs, targets, mask, regression_loss=regression_loss)


class TaskLosses:
    r"""Masked task losses: built-in, or a callable of the user's per task.

    Parameters
    ----------
    tasks : sequence of Task
    regression : {"mse", "mae"}
        Built-in per-sample regression loss [choice: ``mse``].
    custom : sequence or mapping of callables, optional
        ``custom[t]`` (a sequence of one entry per task, ``None`` for the built-in loss, or a
        mapping from task names) is ``fn(outputs, targets, mask) -> (N,)`` per-sample losses
        of task ``t``.

    Examples
    --------
    >>> import torch
    >>> from fairmt_opt.fairness import Task
    >>> tasks = [Task("a", "detection"), Task("b", "regression")]
    >>> huber = lambda z, y, m: torch.nn.functional.huber_loss(z.reshape(-1), y, reduction="none")
    >>> losses = TaskLosses(tasks, custom={"b": huber})
    >>> losses
    TaskLosses(a='built-in bce', b='custom')
    """

    def __init__(self, tasks: Sequence[Task], *, regression: RegressionLoss = "mse",
                 custom: Sequence[LossFn | None] | Mapping[str, LossFn] | None = None) -> None:
        if regression not in ("mse", "mae"):
            raise ValueError(f"regression must be 'mse' or 'mae', got {regression!r}")
        self.tasks = tuple(tasks)
        self.regression: RegressionLoss = regression
        names = [t.name for t in self.tasks]
        fns: list[LossFn | None] = [None] * len(names)
        if isinstance(custom, Mapping):
            unknown = sorted(set(custom) - set(names))
            if unknown:
                raise ValueError(f"custom losses name unknown tasks {unknown}; tasks: {names}")
            fns = [custom.get(n) for n in names]
        elif custom is not None:
            fns = list(custom)
            if len(fns) != len(names):
                raise ValueError(f"custom must hold one entry per task ({len(names)}), "
                                 f"got {len(fns)}")
        for n, fn in zip(names, fns):
            if fn is not None and not callable(fn):
                raise ValueError(f"task {n!r}: the custom loss must be callable, got {fn!r}")
        self.custom = tuple(fns)

    @property
    def has_custom(self) -> bool:
        """Whether some task has a custom loss."""
        return any(fn is not None for fn in self.custom)

    def sums(self, layout: Layout, buckets: Sequence[Bucket], outputs: Sequence[torch.Tensor],
             targets: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(totals, counts)`` of shape ``(T,)``: the masked loss numerators (in the autograd
        graph of the outputs) and the label counts."""
        tots, cnts = [], []
        for bk in buckets:
            xp = _xp(bk.Z)
            tot, cnt = stacked_loss_sums(xp, bk.kind, bk.Z, bk.y, bk.M,  # type: ignore[arg-type]
                                         regression_loss=self.regression)
            tots.append(tot)
            cnts.append(cnt)
        totals, counts = layout.unstack(tots), layout.unstack(cnts)
        if self.has_custom:
            parts = list(totals.unbind(0))
            for t, fn in enumerate(self.custom):
                if fn is not None:
                    parts[t] = self._custom(t, fn, outputs[t], targets[t], masks[t])
            totals = torch.stack([p.to(totals.dtype) for p in parts])
        return totals, counts

    def _custom(self, t: int, fn: LossFn, z: torch.Tensor, y: torch.Tensor, m: torch.Tensor
                ) -> torch.Tensor:
        task = self.tasks[t]
        y = torch.where(m, y, torch.zeros((), dtype=y.dtype, device=y.device))
        per = fn(z, y, m)
        if not isinstance(per, torch.Tensor) or tuple(per.shape) != (m.shape[0],):
            shape = tuple(per.shape) if isinstance(per, torch.Tensor) else type(per).__name__
            raise ValueError(f"task {task.name!r}: the custom loss must return per-sample losses "
                             f"of shape ({m.shape[0]},), got {shape}")
        return torch.where(m, per, torch.zeros((), dtype=per.dtype, device=per.device)).sum()

    def __repr__(self) -> str:
        builtin = {"detection": "bce", "classification": "ce", "regression": self.regression}
        kinds = ["custom" if fn is not None else "built-in " + builtin[t.kind]
                 for t, fn in zip(self.tasks, self.custom)]
        parts = ", ".join(f"{t.name}={k!r}" for t, k in zip(self.tasks, kinds))
        return f"TaskLosses({parts})"


def _xp(x: Any) -> Any:
    from .._utils.array import namespace

    return namespace(x)
