"""Input checks of the torch layer: shapes, dtypes and devices always, values on request."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..fairness import Task
from ..fairness._finite import check_finite_rows

__all__ = ["check_batch"]


def check_batch(
    tasks: Sequence[Task],
    h: torch.Tensor | None,
    outputs: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
    groups: torch.Tensor,
    num_groups: int,
    *,
    values: bool = True,
) -> None:
    """Raise ``ValueError`` naming the task and the argument for malformed batch data.

    Shapes, dtypes and devices are always checked (no host synchronisation). With
    ``values=True`` the values are checked too (this synchronises a GPU with its host):
    targets in range and finite on the entries labelled for their task, group ids in
    ``[0, num_groups)``, and the representations ``h`` and every task's outputs finite on
    **every** row, labelled or not (the rule of :mod:`fairmt_opt.fairness._finite`: a row no
    task labels still enters the step's backward pass, where 0 times NaN is NaN, which would
    reach the shared parameters). The error names the task (or ``h``), the
    first offending row and the tasks that label it.

    Examples
    --------
    >>> import torch
    >>> from fairmt_opt.fairness import Task
    >>> t = Task("occupation", "classification", num_classes=3)
    >>> check_batch([t], None, [torch.zeros(2, 3)], [torch.tensor([0, 3])],
    ...             [torch.ones(2, dtype=torch.bool)], torch.tensor([0, 1]), 2)
    Traceback (most recent call last):
    ...
    ValueError: task 'occupation': targets must lie in [0, 3) on labelled samples, got values in [0, 3]
    """  # noqa: E501
    T = len(tasks)
    for name, seq in (("outputs", outputs), ("targets", targets), ("masks", masks)):
        if len(seq) != T:
            raise ValueError(f"{name} must hold one tensor per task ({T}), got {len(seq)}")
    if not isinstance(groups, torch.Tensor) or groups.ndim != 1:
        raise ValueError(
            f"groups must be a 1-D integer tensor, got "
            f"{tuple(groups.shape) if isinstance(groups, torch.Tensor) else type(groups)}"
        )
    if groups.dtype.is_floating_point or groups.dtype == torch.bool or groups.is_complex():
        raise ValueError(f"groups must have an integer dtype, got {groups.dtype}")
    N = groups.shape[0]
    device = groups.device
    if h is not None:
        if not isinstance(h, torch.Tensor) or h.ndim != 2:
            raise ValueError(f"h must be a 2-D tensor (N, d), got shape {tuple(h.shape)}")
        if not h.dtype.is_floating_point:
            raise ValueError(f"h must have a floating dtype, got {h.dtype}")
        if h.shape[0] != N:
            raise ValueError(f"h has {h.shape[0]} rows but groups has {N} samples")
        if h.device != device:
            raise ValueError(f"h is on {h.device} but groups is on {device}")
    for task, z, y, m in zip(tasks, outputs, targets, masks):
        where = f"task {task.name!r}"
        for arg, x in (("outputs", z), ("targets", y), ("mask", m)):
            if not isinstance(x, torch.Tensor):
                raise ValueError(f"{where}: {arg} must be a torch.Tensor, got {type(x).__name__}")
            if x.device != device:
                raise ValueError(f"{where}: {arg} is on {x.device} but groups is on {device}")
        if not z.dtype.is_floating_point:
            raise ValueError(f"{where}: outputs must have a floating dtype, got {z.dtype}")
        if task.kind == "classification":
            if z.ndim != 2 or z.shape != (N, task.num_classes):
                raise ValueError(
                    f"{where}: outputs must have shape ({N}, {task.num_classes}), "
                    f"got {tuple(z.shape)}"
                )
            if y.dtype.is_floating_point or y.dtype == torch.bool or y.is_complex():
                raise ValueError(f"{where}: targets must have an integer dtype, got {y.dtype}")
        else:
            if not (z.shape == (N,) or z.shape == (N, 1)):
                raise ValueError(
                    f"{where}: outputs must have shape ({N},) or ({N}, 1), got {tuple(z.shape)}"
                )
            if task.kind == "regression" and not y.dtype.is_floating_point:
                raise ValueError(f"{where}: targets must have a floating dtype, got {y.dtype}")
            if y.is_complex():
                raise ValueError(f"{where}: targets must be real, got {y.dtype}")
        if y.shape != (N,):
            raise ValueError(f"{where}: targets must have shape ({N},), got {tuple(y.shape)}")
        if m.dtype != torch.bool:
            raise ValueError(f"{where}: mask must have dtype torch.bool, got {m.dtype}")
        if m.shape != (N,):
            raise ValueError(f"{where}: mask must have shape ({N},), got {tuple(m.shape)}")
    if not values:
        return
    if N and (bool((groups < 0).any()) or bool((groups >= num_groups).any())):
        raise ValueError(
            f"groups must hold ids in [0, {num_groups}), got values in "
            f"[{int(groups.min())}, {int(groups.max())}]"
        )
    named = [(t.name, m) for t, m in zip(tasks, masks)]
    if h is not None and N:
        check_finite_rows(h.detach(), "the representations h", masks=named)
    for task, z, y, m in zip(tasks, outputs, targets, masks):
        where = f"task {task.name!r}"
        if N:
            check_finite_rows(z.detach(), "outputs", task=task.name, masks=named)
        if not bool(m.any()):
            continue
        yl = y[m]
        if task.kind == "classification":
            lo, hi = int(yl.min()), int(yl.max())
            if lo < 0 or hi >= task.num_classes:
                raise ValueError(
                    f"{where}: targets must lie in [0, {task.num_classes}) on labelled "
                    f"samples, got values in [{lo}, {hi}]"
                )
        elif task.kind == "detection":
            if not bool(((yl == 0) | (yl == 1)).all()):
                raise ValueError(f"{where}: targets must be 0 or 1 on labelled samples")
        elif not bool(torch.isfinite(yl).all()):
            raise ValueError(f"{where}: targets contain NaN or inf on labelled samples")
