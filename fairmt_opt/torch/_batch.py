"""The tensors of a split or a minibatch, checked for one row per input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..fairness import Task

__all__ = ["Batch", "as_batch"]


def _rows(a: Any) -> int | None:
    shape = getattr(a, "shape", None)
    if shape is None or len(shape) == 0:
        return None
    return int(shape[0])


@dataclass(repr=False)
class Batch:
    """Tensors of a split or a minibatch: inputs ``X`` (N, ...), one target tensor per task,
    the ``(N, T)`` bool label ``mask`` and the ``(N,)`` group ids.

    Every target, the mask and the groups must have one row per input (checked here, with a
    ``ValueError`` that names the array and the sizes).

    >>> Batch(torch.zeros(4, 2), (torch.zeros(3),), torch.ones(4, 1, dtype=torch.bool),
    ...       torch.zeros(4, dtype=torch.long))
    Traceback (most recent call last):
    ...
    ValueError: targets[0] has 3 rows but X has 4: every target, mask and group array needs one row per input
    """  # noqa: E501

    X: torch.Tensor
    targets: tuple[torch.Tensor, ...]
    mask: torch.Tensor
    groups: torch.Tensor

    def __post_init__(self) -> None:
        self.targets = tuple(self.targets)
        _check_rows(self.X, self.targets, self.mask, self.groups)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def take(self, index: torch.Tensor) -> Batch:
        """The rows ``index``."""
        return Batch(self.X[index], tuple(y[index] for y in self.targets), self.mask[index],
                     self.groups[index])

    def __repr__(self) -> str:
        return f"Batch(n={len(self)}, T={len(self.targets)}, device={self.X.device})"


def _check_rows(X: Any, targets: Sequence[Any], mask: Any, groups: Any) -> None:
    n = _rows(X)
    if n is None:
        raise ValueError(f"X must have one row per sample (at least one dimension), got "
                         f"shape {tuple(getattr(X, 'shape', ()))}")
    arrays = [(f"targets[{t}]", y) for t, y in enumerate(targets)]
    arrays += [("mask", mask), ("groups", groups)]
    for name, a in arrays:
        r = _rows(a)
        if r is None:
            raise ValueError(f"{name} must be an array with one row per input ({n} rows), got "
                             f"shape {tuple(getattr(a, 'shape', ()))}")
        if r != n:
            raise ValueError(f"{name} has {r} rows but X has {n}: every target, mask and "
                             "group array needs one row per input")
    mshape = tuple(mask.shape)
    if len(mshape) != 2 or mshape[1] != len(targets):
        raise ValueError(f"mask must have shape (N, T) = ({n}, {len(targets)}) (one column per "
                         f"target), got {mshape}")
    if len(tuple(groups.shape)) != 1:
        raise ValueError(f"groups must have shape (N,) = ({n},), got {tuple(groups.shape)}")


def _tensor(a: Any, device: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    return t.to(device=device, dtype=dtype) if dtype is not None else t.to(device)


def as_batch(data: Any, *, device: Any = "cpu", dtype: torch.dtype = torch.float32,
             tasks: Sequence[Task] | None = None) -> Batch:
    """Tensors on ``device`` from any object with attributes ``X``, ``targets``, ``mask`` and
    ``groups`` (NumPy arrays or tensors), e.g. a dataset split. ``X`` takes ``dtype``. Without
    ``tasks``, float targets take ``dtype`` and integer targets stay integer; with ``tasks``,
    classification targets become ``long`` and the others ``dtype``. The row counts are
    checked (one row per input in every target, the mask and the groups).

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> s = SimpleNamespace(X=np.zeros((4, 2)), targets=(np.array([0, 1, 1, 0]),),
    ...                     mask=np.ones((4, 1), bool), groups=np.array([0, 1, 0, 1]))
    >>> as_batch(s)
    Batch(n=4, T=1, device=cpu)
    """
    targets = tuple(data.targets)
    _check_rows(data.X, targets, data.mask, data.groups)
    if tasks is not None and len(tasks) != len(targets):
        raise ValueError(f"the data has {len(targets)} target arrays but the method has "
                         f"{len(tasks)} tasks")
    X = _tensor(data.X, device, dtype)
    ys = []
    for t, y in enumerate(targets):
        yt = _tensor(y, device)
        if tasks is not None:
            ys.append(yt.to(torch.long) if tasks[t].kind == "classification" else yt.to(dtype))
        else:
            ys.append(yt.to(dtype) if yt.dtype.is_floating_point else yt)
    mask = _tensor(data.mask, device).to(torch.bool)
    groups = _tensor(data.groups, device).to(torch.long)
    return Batch(X, tuple(ys), mask, groups)
