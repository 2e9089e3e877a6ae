r"""Masked task losses (SPEC §1), written once against the array API.

For task :math:`t` with label mask :math:`M_{\cdot t}`

.. math::

    L_t = \frac{\sum_i M_{it}\,\ell_t(z_{it}, y_{it})}{\max(1, \sum_i M_{it})},

with :math:`\ell_t` the binary cross-entropy on one logit (detection), the cross-entropy on
:math:`C_t` logits (classification) and the squared error [choice; option absolute error]
(regression). Unlabelled entries never enter the arithmetic (their targets may be ``-1`` or
``NaN``), so a task with no label has :math:`L_t = 0`, a zero gradient and never a NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .._utils.array import Array, namespace
from ._inputs import check_inputs
from ._tasks import Task, TaskKind

__all__ = ["MaskedLoss", "RegressionLoss", "masked_loss", "stacked_loss_sums"]

RegressionLoss = Literal["mse", "mae"]


@dataclass(frozen=True)
class MaskedLoss:
    """The two additive parts of a masked task loss and their ratio.

    Attributes
    ----------
    total : array
        :math:`\\sum_i M_{it}\\,\\ell_t(z_{it}, y_{it})` (0-d; differentiable for torch).
    count : array
        :math:`\\sum_i M_{it}` (0-d, the dtype of ``total``).
    value : array
        ``total / max(1, count)``: the task loss :math:`L_t`.
    """

    total: Array
    count: Array
    value: Array


def stacked_loss_sums(
    xp: Any, kind: TaskKind, Z: Array, y: Array, M: Array, *,
    regression_loss: RegressionLoss = "mse",
) -> tuple[Array, Array]:
    r"""Loss numerators :math:`\sum_i M_{it}\ell(z_{it}, y_{it})` and label counts
    :math:`\sum_i M_{it}` of a stack of k tasks of one kind (shapes ``(k,)``).

    ``Z`` holds the outputs (``(N, k)``; classification ``(N, k, C)`` logits), ``y`` the
    targets ``(N, k)`` with the unlabelled entries already replaced by a valid value (0), ``M``
    the ``(N, k)`` bool masks. The per-sample losses, in their numerically stable forms:

    * detection: :math:`\max(z, 0) - zy + \log(1 + e^{-|z|})`;
    * classification: :math:`\operatorname{logsumexp}(z) - z_y` (the maximum logit, held
      fixed, is subtracted first; the gradient is unchanged);
    * regression: :math:`(z - y)^2` or :math:`|z - y|`.

    Cost :math:`O(N k C)`; no host synchronisation.
    """
    if kind == "detection":
        yf = xp.astype(y, Z.dtype)
        per = xp.maximum(Z, xp.zeros_like(Z)) - Z * yf + xp.log1p(xp.exp(-xp.abs(Z)))
    elif kind == "classification":
        top = xp.max(Z, axis=-1, keepdims=True)
        top = top.detach() if hasattr(top, "detach") else top
        lse = xp.log(xp.sum(xp.exp(Z - top), axis=-1)) + top[..., 0]
        C = Z.shape[-1]
        ar = xp.reshape(xp.arange(C, device=_device(Z)), (1, 1, -1))
        onehot = xp.astype(xp.astype(y, xp.int64)[..., None] == ar, Z.dtype)
        per = lse - xp.sum(Z * onehot, axis=-1)
    else:
        e = Z - xp.astype(y, Z.dtype)
        per = e * e if regression_loss == "mse" else xp.abs(e)
    per = xp.where(M, per, xp.zeros_like(per))
    return xp.sum(per, axis=0), xp.sum(xp.astype(M, per.dtype), axis=0)


def masked_loss(
    task: Task,
    outputs: Array,
    targets: Array,
    mask: Array | None,
    *,
    regression_loss: RegressionLoss = "mse",
    validate: bool = False,
) -> MaskedLoss:
    r"""Masked mean loss of one task (SPEC §1): :func:`stacked_loss_sums` of one task.

    .. math::

        L_t = \frac{\sum_i M_{i}\,\ell(z_i, y_i)}{\max(1, \sum_i M_i)}

    with :math:`\ell` the binary cross-entropy with logits (detection), the cross-entropy
    (classification) or the squared error (regression, [choice]; ``regression_loss="mae"`` for
    the absolute error). Entries with ``mask == False`` are replaced before any arithmetic, so
    their targets may be anything (``-1``, ``NaN``): a task with no label returns
    :math:`L_t = 0` with a zero gradient. Cost :math:`O(N C_t)`. NumPy arrays or torch
    tensors (differentiable with respect to the outputs).

    Parameters
    ----------
    task : Task
    outputs, targets, mask : arrays
        ``(N,)`` / ``(N, 1)`` outputs (``(N, C)`` logits for classification), ``(N,)``
        targets, ``(N,)`` bool mask (``None``: all labelled).
    regression_loss : {"mse", "mae"}
        Per-sample regression loss.
    validate : bool, default False
        Check the values too (targets in range on labelled samples, finite outputs).

    Examples
    --------
    >>> import torch
    >>> from fairmt_opt.fairness import Task, masked_loss
    >>> z = torch.tensor([0.0, 2.0, -1.0], requires_grad=True)
    >>> y = torch.tensor([1.0, float("nan"), 0.0])
    >>> m = torch.tensor([True, False, True])
    >>> out = masked_loss(Task("r", "regression"), z, y, m)
    >>> float(out.value.detach()), float(out.count)
    (1.0, 2.0)
    >>> none = masked_loss(Task("r", "regression"), z, y, torch.zeros(3, dtype=torch.bool))
    >>> none.value.backward(); float(none.value.detach()), bool((z.grad == 0).all())
    (0.0, True)
    """
    if regression_loss not in ("mse", "mae"):
        raise ValueError(f"regression_loss must be 'mse' or 'mae', got {regression_loss!r}")
    groups = namespace(outputs).zeros(
        (int(outputs.shape[0]),), dtype=namespace(outputs).int64, device=_device(outputs)
    ) if hasattr(outputs, "shape") else [0] * len(outputs)
    inp = check_inputs(task, outputs, targets, mask, groups, 2, validate=validate)
    xp = inp.xp
    Z = inp.z if task.kind != "classification" else inp.z[:, None, :]
    y = xp.reshape(inp.y, (-1, 1))
    M = xp.reshape(inp.m, (-1, 1))
    total, count = stacked_loss_sums(xp, task.kind, Z, y, M, regression_loss=regression_loss)
    total, count = total[0], count[0]
    return MaskedLoss(total, count, total / xp.maximum(count, xp.ones_like(count)))


def _device(x: Array) -> Any:
    from .._utils.array import device_of

    return device_of(x)
