r"""The fairness constraint part of :class:`~fairmt_opt.torch.FairMT` (SPEC §2–§4).

:class:`FairnessConstraint` turns one step's outputs into the soft violations
:math:`\psi_t` (AEOD, CAEOD, AEP or their symmetric counterparts) and their AHFDA aggregation

.. math::

    \Phi(\psi) = \max_{w \in \Delta} w^\top\psi - \tfrac{\mu}{2}\|w - c\|^2,

over the tasks present in the batch. Every formula is the one of the lower layers, run on
torch tensors and differentiated by autograd: the statistics and violations of
:mod:`fairmt_opt.fairness` (all tasks of one kind in one array operation), the water-filling
or Frank–Wolfe weights of :func:`fairmt_opt.aggregate_violations` and the value
:func:`fairmt_opt.simplex.aggregation_value` with :math:`w^*` held fixed (Danskin:
:math:`\nabla_\psi\Phi = w^*`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .._utils.array import namespace
from .._utils.validation import check_bool, check_positive
from ..fairness import RunningScale, Task
from ..fairness._stats import (
    class_indicator,
    confusion_sums,
    group_matrix,
    regression_shift,
    regression_sums,
    soft_probabilities,
)
from ..fairness._violation import stacked_violations
from ..simplex import aggregate_violations, aggregation_value
from ._stack import Bucket, Layout

__all__ = ["Aggregation", "ConstraintValue", "FairnessConstraint"]

Aggregation = Literal["exact", "frank_wolfe", "away", "pairwise", "mean"]
_AGGS = ("exact", "frank_wolfe", "away", "pairwise", "mean")


@dataclass(frozen=True)
class ConstraintValue:
    """What the constraint computed in one step: ``psi`` ``(T,)`` (in the autograd graph of
    the outputs when asked), ``weights`` the detached AHFDA maximiser (0 on absent tasks),
    ``phi`` the 0-d :math:`\\Phi` (differentiable through ``psi``) and, for the Frank–Wolfe
    methods, the aggregation result."""

    psi: torch.Tensor
    weights: torch.Tensor
    phi: torch.Tensor
    aggregation: Any = None


class FairnessConstraint:
    r"""Soft violations :math:`\psi_t` and their aggregation :math:`\Phi` (SPEC §2–§4).

    Parameters
    ----------
    tasks : sequence of Task
    num_groups : int
        Number of groups (>= 2).
    mu : float
        AHFDA regularisation :math:`\mu > 0` [choice: 0.1].
    aggregation : {"exact", "frank_wolfe", "away", "pairwise", "mean"}
        ``exact``: water-filling (on the device, no host synchronisation); the Frank–Wolfe
        variants on the host; ``mean``: the limit :math:`\mu \to \infty`, :math:`\Phi` = mean ψ.
    symmetric : bool
        The symmetric violations (the symmetric-constraint baseline).
    temperature : float
        :math:`\tau` of the soft rates [choice: 1].
    group_reduction, include_fpr, regression_score
        Options of :func:`fairmt_opt.fairness.violation_from_stats`.
    scale : float, "running" or RunningScale, optional
        Divide :math:`\psi_t` by a fixed scale, or by a running scale per task (``"running"``
        or a :class:`~fairmt_opt.fairness.RunningScale` whose momentum and floor are used for
        every task; the scales are part of the state of :class:`FairMT`).
    aggregation_options : dict, optional
        ``tol`` and ``max_iter`` of the Frank–Wolfe variants.

    Examples
    --------
    >>> import torch
    >>> from fairmt_opt.fairness import Task
    >>> c = FairnessConstraint([Task("a", "detection"), Task("b", "regression")], 2, mu=0.5)
    >>> z = [torch.tensor([2.0, -1.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 3.0])]
    >>> y = [torch.tensor([1.0, 1.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 0.0, 0.0])]
    >>> m = [torch.ones(4, dtype=torch.bool)] * 2
    >>> v = c(z, y, m, torch.tensor([0, 0, 1, 1]))
    >>> [round(p, 4) for p in v.psi.tolist()], round(float(v.phi), 4)
    ([0.0781, 1.0], 0.875)
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        num_groups: int,
        *,
        mu: float = 0.1,
        aggregation: Aggregation = "exact",
        symmetric: bool = False,
        temperature: float = 1.0,
        group_reduction: Literal["mean", "max"] = "mean",
        include_fpr: bool = True,
        regression_score: Literal["mae", "mse", "ccc"] = "mae",
        scale: Any = None,
        aggregation_options: dict[str, Any] | None = None,
    ) -> None:
        self.tasks = tuple(tasks)
        self.num_groups = int(num_groups)
        self.mu = check_positive(mu, "mu")
        if aggregation not in _AGGS:
            raise ValueError(f"aggregation must be one of {_AGGS}, got {aggregation!r}")
        self.aggregation: Aggregation = aggregation
        self.temperature = check_positive(temperature, "temperature")
        if group_reduction not in ("mean", "max"):
            raise ValueError(f"group_reduction must be 'mean' or 'max', got {group_reduction!r}")
        if regression_score not in ("mae", "mse", "ccc"):
            raise ValueError(f"regression_score must be one of 'mae', 'mse', 'ccc', "
                             f"got {regression_score!r}")
        self.symmetric = check_bool(symmetric, "symmetric")
        self.include_fpr = check_bool(include_fpr, "include_fpr")
        self.group_reduction, self.regression_score = group_reduction, regression_score
        self.running: RunningScale | None = None
        self.fixed_scale: float | None = None
        if isinstance(scale, RunningScale):
            self.running = scale
        elif isinstance(scale, str):
            if scale != "running":
                raise ValueError(f"scale must be a number > 0, 'running' or a RunningScale, "
                                 f"got {scale!r}")
            self.running = RunningScale()
        elif scale is not None:
            self.fixed_scale = check_positive(scale, "scale")
        opts = dict(aggregation_options or {})
        unknown = sorted(set(opts) - {"tol", "max_iter"})
        if unknown:
            raise ValueError(f"aggregation_options accepts 'tol' and 'max_iter', got {unknown}")
        self.aggregation_options = {k: v for k, v in opts.items() if v is not None}
        self.layout = Layout(self.tasks)

    def new_scales(self) -> list[RunningScale] | None:
        """Fresh running scales, one per task (``None`` without a running scale)."""
        if self.running is None:
            return None
        return [RunningScale(self.running.momentum, eps=self.running.eps) for _ in self.tasks]

    # ------------------------------------------------------------------ the formulas

    def violations(self, buckets: Sequence[Bucket], groups: torch.Tensor, *,
                   reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   scales: Sequence[RunningScale] | None = None) -> torch.Tensor:
        r"""``(T,)`` soft violations :math:`\psi_t` of the stacked tasks (in the autograd graph
        of the outputs). ``reduce`` sums the statistics over ranks (differentiably) before
        the violations are formed; ``scales`` are the running scales (updated here)."""
        parts = []
        gms: dict[torch.dtype, torch.Tensor] = {}  # the group matrix, once per step and dtype
        for bk in buckets:
            xp = namespace(bk.Z)
            Gm = gms.get(bk.Z.dtype)
            if Gm is None:
                Gm = gms[bk.Z.dtype] = group_matrix(xp, groups, self.num_groups, bk.Z.dtype)
            if bk.kind == "regression":
                # centred at the labelled targets' mean over all ranks: the CCC free of the
                # one-pass cancellation at large means (fairness._stats.regression_sums)
                shift = regression_shift(xp, bk.y, bk.M, bk.Z.dtype, reduce)
                sums = regression_sums(xp, bk.Z, bk.y, bk.M, Gm, shift=shift)
            else:
                P = soft_probabilities(xp, bk.kind, bk.Z, self.temperature)  # type: ignore[arg-type]
                Y = class_indicator(xp, bk.kind, bk.y, bk.C, bk.Z.dtype)  # type: ignore[arg-type]
                sums = confusion_sums(xp, P, Y, bk.M, Gm)
            if reduce is not None:
                sums = {k: reduce(v) for k, v in sums.items()}
            raw, _, _ = stacked_violations(
                xp, bk.kind, sums, symmetric=self.symmetric,
                group_reduction=self.group_reduction, include_fpr=self.include_fpr,
                regression_score=self.regression_score)
            parts.append(raw)
        psi = self.layout.unstack(parts)
        if self.fixed_scale is not None:
            psi = psi / self.fixed_scale
        elif scales is not None:
            raw_values = psi.detach().tolist()  # the running scales live on the host
            div = torch.tensor([s.update_(v) for s, v in zip(scales, raw_values)],
                               dtype=psi.dtype, device=psi.device)
            psi = psi / div
        return psi

    def aggregate(self, psi: torch.Tensor, present: torch.Tensor, *, check: bool = True
                  ) -> ConstraintValue:
        r""":math:`w^*` and :math:`\Phi` over the present tasks; ``phi`` is differentiable
        through ``psi`` with :math:`w^*` held fixed (Danskin). ``check=False`` skips the
        finiteness check of ψ (which reads a GPU tensor back)."""
        psi_d = psi.detach()
        agg = None
        if self.aggregation == "mean":
            pf = present.to(psi.dtype)
            w = pf / pf.sum().clamp(min=1.0)
        else:
            agg = aggregate_violations(psi_d, self.mu, method=self.aggregation, present=present,
                                       check_finite=check, **self.aggregation_options)
            w = torch.as_tensor(agg.weights).to(device=psi.device, dtype=psi.dtype)
        phi = aggregation_value(psi, w, self.mu, present=present)
        return ConstraintValue(psi, w, phi, None if self.aggregation == "exact" else agg)

    def __call__(self, outputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
                 masks: Sequence[torch.Tensor], groups: torch.Tensor) -> ConstraintValue:
        """ψ and Φ of one batch, every task counted present when it has a label."""
        buckets = self.layout.stack(outputs, targets, masks, outputs[0].dtype)
        psi = self.violations(buckets, groups)
        present = torch.stack([m.any() for m in masks])
        return self.aggregate(psi, present)

    def config(self) -> dict[str, Any]:
        return {
            "mu": self.mu, "aggregation": self.aggregation, "symmetric": self.symmetric,
            "temperature": self.temperature, "group_reduction": self.group_reduction,
            "include_fpr": self.include_fpr, "regression_score": self.regression_score,
            "scale": "running" if self.running is not None else self.fixed_scale,
        }

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"FairnessConstraint(tasks={[t.name for t in self.tasks]}, " \
               f"num_groups={self.num_groups}, {opts})"
