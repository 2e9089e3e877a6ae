"""Validation and normalisation of the per-sample inputs shared by the hard and soft metrics.

Conventions (one task, N samples):

* ``outputs``: detection ``(N,)`` or ``(N, 1)`` logits; classification ``(N, C)`` logits;
  regression ``(N,)`` or ``(N, 1)`` predictions;
* ``targets``: ``(N,)``; detection in {0, 1}, classification integers in ``[0, C)``, regression
  real; entries of unlabelled samples may hold anything (``-1``, NaN) and are never read;
* ``mask``: ``(N,)`` bool, ``True`` where the sample is labelled for this task (``None``: all);
* ``groups``: ``(N,)`` integers in ``[0, num_groups)``, ``num_groups >= 2``.

Arrays of one call must all be NumPy arrays (or lists) or all torch tensors on one device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._utils.array import Array, is_torch, namespace
from .._utils.validation import check_int, check_same_device
from ._tasks import Task

__all__ = ["Inputs", "check_inputs"]


@dataclass(frozen=True)
class Inputs:
    """Normalised inputs: ``z`` (N, K) floating, ``y`` (N,) floating with unlabelled entries
    replaced by 0, ``m`` (N,) bool, ``g`` (N,) int64, in the namespace ``xp``."""

    xp: Any
    z: Array
    y: Array
    m: Array
    g: Array
    num_groups: int


def _as_array(x: Any, name: str, like: Array) -> Array:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return x
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # pragma: no cover - numpy accepts nearly anything
        raise ValueError(f"{name} must be an array: {exc}") from exc
    if is_torch(like):
        import torch

        return torch.as_tensor(arr, device=like.device)
    return arr


def _is_integral_dtype(xp: Any, x: Array) -> bool:
    return bool(xp.isdtype(x.dtype, "integral"))


def _is_bool_dtype(xp: Any, x: Array) -> bool:
    return bool(xp.isdtype(x.dtype, "bool"))


def _is_float_dtype(xp: Any, x: Array) -> bool:
    return bool(xp.isdtype(x.dtype, "real floating"))


def check_inputs(
    task: Task,
    outputs: Any,
    targets: Any,
    mask: Any,
    groups: Any,
    num_groups: Any,
    *,
    validate: bool = True,
    float_outputs: bool = False,
) -> Inputs:
    """Check shapes (always) and values (when ``validate``) and normalise the inputs.

    Raises ``ValueError`` naming the argument and the problem. Value checks (finite outputs,
    targets in range on labelled samples, group ids in range) read the data, which synchronises
    a GPU with its host; shape and dtype checks never do.
    """
    if not isinstance(task, Task):
        raise ValueError(f"task must be a Task, got {type(task).__name__}")
    G = check_int(num_groups, "num_groups", minimum=2)
    if outputs is None:
        raise ValueError("outputs must be an array, got None")
    if not (hasattr(outputs, "shape") and hasattr(outputs, "dtype")):
        try:
            outputs = np.asarray(outputs, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"outputs must be a numeric array: {exc}") from exc
    if targets is None:
        raise ValueError("targets must be an array, got None")
    if groups is None:
        raise ValueError("groups must be an array, got None")
    targets = _as_array(targets, "targets", outputs)
    groups = _as_array(groups, "groups", outputs)
    if mask is not None:
        mask = _as_array(mask, "mask", outputs)
    check_same_device(
        ("outputs", outputs), ("targets", targets), ("mask", mask), ("groups", groups)
    )
    xp = namespace(outputs)

    # ---- outputs
    if _is_bool_dtype(xp, outputs) or not (
        _is_float_dtype(xp, outputs) or _is_integral_dtype(xp, outputs)
    ):
        raise ValueError(f"outputs must have a real numeric dtype, got {outputs.dtype}")
    if float_outputs and not _is_float_dtype(xp, outputs):
        raise ValueError(
            f"outputs must be floating (differentiable) for soft statistics, got {outputs.dtype}"
        )
    if not _is_float_dtype(xp, outputs):
        outputs = xp.astype(outputs, xp.float64)
    K = task.out_dim
    if task.kind == "classification":
        if outputs.ndim != 2 or outputs.shape[1] != K:
            raise ValueError(
                f"outputs of classification task {task.name!r} must have shape (N, {K}), "
                f"got {tuple(outputs.shape)}"
            )
        z = outputs
    else:
        if outputs.ndim == 2 and outputs.shape[1] == 1:
            z = outputs
        elif outputs.ndim == 1:
            z = xp.reshape(outputs, (-1, 1))
        else:
            raise ValueError(
                f"outputs of {task.kind} task {task.name!r} must have shape (N,) or (N, 1), "
                f"got {tuple(outputs.shape)}"
            )
    N = int(z.shape[0])

    # ---- shapes of the per-sample vectors
    for name, arr in (("targets", targets), ("groups", groups), ("mask", mask)):
        if arr is None:
            continue
        if arr.ndim != 1 or int(arr.shape[0]) != N:
            raise ValueError(f"{name} must have shape ({N},) like outputs, got {tuple(arr.shape)}")
    if _is_bool_dtype(xp, targets) and task.kind == "regression":
        raise ValueError("targets of a regression task must be real numbers, got bool")

    # ---- mask
    if mask is None:
        m = xp.ones((N,), dtype=xp.bool, device=_device(z))
    elif _is_bool_dtype(xp, mask):
        m = mask
    else:
        if validate and N and not bool(xp.all((mask == 0) | (mask == 1))):
            raise ValueError("mask must be boolean (or hold only 0 and 1)")
        m = mask != 0

    # ---- groups
    if not _is_integral_dtype(xp, groups):
        if not _is_float_dtype(xp, groups):
            raise ValueError(f"groups must hold integers, got dtype {groups.dtype}")
        if validate and N and not bool(xp.all(xp.floor(groups) == groups)):
            raise ValueError("groups must hold integers (found a non-integral or NaN value)")
    g = xp.astype(groups, xp.int64)
    if validate and N:
        lo, hi = int(xp.min(g)), int(xp.max(g))
        if lo < 0 or hi >= G:
            raise ValueError(
                f"groups must lie in [0, num_groups) = [0, {G}), found values in [{lo}, {hi}]"
            )

    # ---- targets: only labelled entries are read
    if _is_bool_dtype(xp, targets):
        targets = xp.astype(targets, xp.int64)
    if not (_is_integral_dtype(xp, targets) or _is_float_dtype(xp, targets)):
        raise ValueError(f"targets must be numeric, got dtype {targets.dtype}")
    ft = xp.astype(targets, z.dtype) if task.kind == "regression" else xp.astype(
        targets, xp.float64
    )
    zero = xp.zeros_like(ft)
    if validate and N:
        # read the labelled targets without ever combining them with unlabelled garbage
        if task.kind == "regression":
            lab = xp.where(m, ft, zero)
            if not bool(xp.all(xp.isfinite(lab))):
                raise ValueError("targets contains NaN or inf on a labelled sample")
        elif task.kind == "detection":
            bad = m & ~((ft == 0) | (ft == 1))
            if bool(xp.any(bad)):
                raise ValueError("targets of a detection task must be 0 or 1 on labelled samples")
        else:
            ok = (ft == xp.floor(ft)) & (ft >= 0) & (ft < K)
            if bool(xp.any(m & ~ok)):
                raise ValueError(
                    f"targets of classification task {task.name!r} must be integers in "
                    f"[0, {K}) on labelled samples"
                )
        if not bool(xp.all(xp.isfinite(z))):
            raise ValueError("outputs contains NaN or inf")
    y = xp.where(m, ft, zero)
    return Inputs(xp=xp, z=z, y=y, m=m, g=g, num_groups=G)


def _device(x: Array) -> Any:
    from .._utils.array import device_of

    return device_of(x)
