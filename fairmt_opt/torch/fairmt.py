r"""FairMT: head-aware primal–dual training of a PyTorch multi-task model (SPEC §1, §5, §6),
composed of small parts.

==============  ===============================================================================
part            what it does
==============  ===============================================================================
``losses``      :class:`~fairmt_opt.torch.TaskLosses`: masked task losses (built-in or yours)
``constraint``  :class:`~fairmt_opt.torch.FairnessConstraint`: :math:`\psi_t`, :math:`w^*`,
                :math:`\Phi`
``proxy``       :mod:`fairmt_opt.torch.proxies`: the QP data :math:`(K, b)` (head, rep, full)
                or uniform :math:`\alpha`
``qp``          :class:`~fairmt_opt.torch.QPSolver`: :math:`\alpha` on the simplex
``dual``        :class:`fairmt_opt.DualAscent`: :math:`\eta`
``state``       :class:`~fairmt_opt.torch.FairMTState`: everything that changes between steps
==============  ===============================================================================

The model convention is the usual one: a shared encoder returns representations
:math:`h_i \in \mathbb R^d` and one head per task maps them to the task's outputs. No base
class is required: :class:`FairMT` only sees the tensors (and, optionally, the head modules).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..certificates import certify_simplex_qp
from ..dual import DualAscent
from ..fairness import Task
from ._checks import check_batch
from ._distributed import Reducer
from ._stack import Bucket, cached_index
from .constraint import FairnessConstraint
from .losses import TaskLosses
from .proxies import Proxy, ProxyInputs, make_proxy
from .qp import QPSolver
from .state import FairMTState

__all__ = ["AlphaScale", "FairMT", "FairMTRecord", "FairMTStep"]

AlphaScale = Literal["num_tasks", "none"]


def _fmt(x: Any) -> str:
    if x is None:
        return "None"
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=float)
    if a.ndim == 0:
        return f"{float(a):.4g}"
    return "[" + ", ".join(f"{v:.4g}" for v in a.ravel()[:8]) + (", ...]" if a.size > 8 else "]")


@dataclass(repr=False)
class FairMTRecord:
    r"""Everything one FairMT step computed (tensors detached, on the model's device).

    Attributes
    ----------
    losses : torch.Tensor
        ``(T,)`` masked task losses :math:`L_t` (0 for a task without labels).
    label_counts : torch.Tensor
        ``(T,)`` number of labelled samples per task (summed over ranks).
    present : torch.Tensor
        ``(T,)`` bool, ``label_counts > 0``; absent tasks are left out of the aggregation and
        of the QP (SPEC P9).
    psi : torch.Tensor
        ``(T,)`` soft violations :math:`\psi_t`.
    phi : torch.Tensor
        0-d aggregated violation :math:`\Phi(\psi)`.
    weights : torch.Tensor
        ``(T,)`` AHFDA maximiser :math:`w^*` (0 on absent tasks).
    alpha : torch.Tensor
        ``(T,)`` task weights :math:`\alpha` on the simplex (0 on absent tasks).
    alpha_tilde : torch.Tensor
        ``(T,)`` weights actually applied to the losses (:math:`T_{\text{present}}\alpha` by
        default).
    eta : torch.Tensor
        0-d dual variable :math:`\eta` used in this step.
    K, b : torch.Tensor or None
        The QP data (``None`` without a proxy), after gradient normalisation.
    directions : torch.Tensor or None
        Proxy ``head``: the ``(T, d)`` representation directions :math:`r_t` (un-normalised).
    fairness_direction : torch.Tensor or None
        Proxy ``head``: :math:`r_\Phi` (``(d,)``); ``None`` otherwise or when unconstrained.
    qp : object or None
        The solver's result on the present tasks.
    certificate : QPCertificate or None
        :func:`fairmt_opt.certify_simplex_qp` of ``alpha`` on the present tasks (host solvers
        by default), computed on first access.
    """

    losses: torch.Tensor
    label_counts: torch.Tensor
    present: torch.Tensor
    psi: torch.Tensor
    phi: torch.Tensor
    weights: torch.Tensor
    alpha: torch.Tensor
    alpha_tilde: torch.Tensor
    eta: torch.Tensor
    K: torch.Tensor | None = None
    b: torch.Tensor | None = None
    directions: torch.Tensor | None = None
    fairness_direction: torch.Tensor | None = None
    qp: Any = None
    certificate_data: tuple[Any, Any, Any] | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)
    _certificate: Any = field(default=None, repr=False)

    @property
    def certificate(self) -> Any:
        """The QP certificate (computed once, on first access; ``None`` without data)."""
        if self._certificate is None and self.certificate_data is not None:
            self._certificate = certify_simplex_qp(*self.certificate_data)
        return self._certificate

    def to_dict(self) -> dict[str, Any]:
        """Python floats and lists of the scalar quantities (synchronises with the host)."""
        out: dict[str, Any] = {
            "losses": self.losses.tolist(),
            "label_counts": self.label_counts.tolist(),
            "psi": self.psi.tolist(),
            "phi": float(self.phi),
            "weights": self.weights.tolist(),
            "alpha": self.alpha.tolist(),
            "eta": float(self.eta),
        }
        if self.certificate is not None:
            out["qp_gap"] = float(getattr(self.certificate, "gap", float("nan")))
        return out

    def __repr__(self) -> str:
        return (
            f"FairMTRecord(losses={_fmt(self.losses)}, psi={_fmt(self.psi)}, "
            f"phi={_fmt(self.phi)}, weights={_fmt(self.weights)}, alpha={_fmt(self.alpha)}, "
            f"eta={_fmt(self.eta)})"
        )


@dataclass(repr=False)
class FairMTStep:
    """What :meth:`FairMT.compute` returns: the scalar to call ``backward()`` on and the
    record of the step."""

    loss: torch.Tensor
    record: FairMTRecord

    def __repr__(self) -> str:
        return f"FairMTStep(loss={_fmt(self.loss)}, record={self.record!r})"


class FairMT:
    r"""Head-aware primal–dual FairMT for a PyTorch multi-task model (SPEC §5, §6).

    Each call of :meth:`compute` takes the shared representations :math:`h` (``N × d``), the
    outputs of every task head, the targets, the label masks and the group ids, and returns the
    Lagrangian to call ``backward()`` on,

    .. math::

        \mathcal L = \sum_t \tilde\alpha_t L_t + \eta\,\Phi(\psi),\qquad
        \Phi(\psi) = \max_{w \in \Delta} w^\top\psi - \tfrac{\mu}{2}\|w - c\|^2,

    with :math:`\tilde\alpha = T\alpha` [choice; ``alpha_scale="none"`` for
    :math:`\tilde\alpha = \alpha`] and :math:`\alpha` the solution of the simplex QP

    .. math::

        \alpha = \arg\min_{\alpha \in \Delta} \tfrac12 \alpha^\top K \alpha + b^\top \alpha,
        \qquad K = R R^\top,\quad b = \eta R r_\Phi,

    where row :math:`t` of :math:`R` is the representation direction
    :math:`r_t = \nabla_s L_t(h + s)|_{s=0}` (the ``head`` proxy; ``rep`` and ``full`` give
    MGDA-UB and MGDA, ``none`` uniform :math:`\alpha`). The dual variable is updated by a
    separate call, :meth:`dual_step`:
    :math:`\eta \leftarrow \min(\eta_{\max}, \max(0, \eta + \rho(\Phi - \varepsilon)))`.
    :func:`make_method` builds FairMT and the baselines from flat options.

    Parameters
    ----------
    tasks : sequence of Task
        The tasks, in the order of the outputs.
    num_groups : int
        Number of groups (>= 2); group ids are in ``[0, num_groups)``.
    constraint : FairnessConstraint, optional
        ψ, Φ and their options (default ``FairnessConstraint(tasks, num_groups)``: μ = 0.1,
        asymmetric violations, exact aggregation).
    proxy : {"head", "rep", "none"} or Proxy
        The QP data: ``"head"`` [FairMT], ``"rep"`` (MGDA-UB), ``"none"`` (uniform α), or a
        :mod:`~fairmt_opt.torch.proxies` object (``FullProxy(shared_parameters)`` for MGDA).
    dual : DualAscent, optional
        The dual ascent (default ``DualAscent(rho=1.0, eps=0.05)``).
    constrained : bool
        ``False`` keeps :math:`\eta = 0` (the unconstrained baselines); ψ and Φ are still
        computed and recorded (without an autograd graph).
    qp : QPSolver, optional
        The simplex QP solver (default exact active set, warm-started).
    losses : TaskLosses or sequence of callables, optional
        The task losses: the built-in masked losses (default), a :class:`TaskLosses`, or one
        callable ``fn(outputs, targets, mask) -> (N,)`` per task (``None`` for built-in).
    alpha_scale : {"num_tasks", "none"}
        :math:`\tilde\alpha = T_{\text{present}}\alpha` [choice] or :math:`\tilde\alpha = \alpha`.
    distributed : bool, "auto" or a process group
        Sum the loss numerators, label counts, group statistics and directions over the
        ranks so that every rank computes the single-process values of the concatenated batch
        (``"auto"``: when ``torch.distributed`` is initialised; a process group: over it).
    check_inputs : bool
        Check values (targets in range, finite outputs, NaN losses); this synchronises a GPU
        with its host. Shapes, dtypes and devices are always checked.

    Examples
    --------
    >>> import torch
    >>> from fairmt_opt import DualAscent
    >>> from fairmt_opt.fairness import Task
    >>> from fairmt_opt.torch import FairMT
    >>> _ = torch.manual_seed(0)
    >>> tasks = [Task("y0", "detection"), Task("y1", "regression")]
    >>> encoder, heads = torch.nn.Linear(5, 8), torch.nn.ModuleList(
    ...     [torch.nn.Linear(8, 1), torch.nn.Linear(8, 1)])
    >>> x, groups = torch.randn(64, 5), torch.randint(0, 2, (64,))
    >>> targets = [torch.randint(0, 2, (64,)).float(), torch.randn(64)]
    >>> masks = torch.ones(64, 2, dtype=torch.bool)
    >>> fm = FairMT(tasks, num_groups=2, dual=DualAscent(rho=1.0, eps=0.01, eta=1.0))
    >>> h = encoder(x)
    >>> step = fm.compute(h, [hd(h) for hd in heads], targets, masks, groups, heads=heads)
    >>> step.loss.backward()
    >>> r = step.record
    >>> bool(abs(r.alpha.sum() - 1) < 1e-6), bool(r.certificate.ok)
    (True, True)
    >>> fm.dual_step(r); bool(fm.eta >= 0)
    True
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        num_groups: int,
        *,
        constraint: FairnessConstraint | None = None,
        proxy: str | Proxy = "head",
        dual: DualAscent | None = None,
        constrained: bool = True,
        qp: QPSolver | None = None,
        losses: TaskLosses | Sequence[Any] | None = None,
        alpha_scale: AlphaScale = "num_tasks",
        distributed: Any = "auto",
        check_inputs: bool = True,
    ) -> None:
        tasks = tuple(tasks)
        if not tasks or not all(isinstance(t, Task) for t in tasks):
            raise ValueError("tasks must be a non-empty sequence of fairmt_opt.fairness.Task")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"tasks must have distinct names, got {names}")
        if isinstance(num_groups, (bool, np.bool_)) or not isinstance(
                num_groups, (int, np.integer)) or num_groups < 2:
            raise ValueError(f"num_groups must be an integer >= 2, got {num_groups!r}")
        if alpha_scale not in ("num_tasks", "none"):
            raise ValueError(f"alpha_scale must be 'num_tasks' or 'none', got {alpha_scale!r}")
        self.tasks = tasks
        self.num_groups = int(num_groups)
        self.constraint = FairnessConstraint(tasks, self.num_groups) if constraint is None \
            else constraint
        if not isinstance(self.constraint, FairnessConstraint):
            raise ValueError(f"constraint must be a FairnessConstraint, got {constraint!r}")
        if self.constraint.tasks != tasks or self.constraint.num_groups != self.num_groups:
            raise ValueError("constraint was built for other tasks or another num_groups")
        self.proxy = make_proxy(proxy)
        self.qp = QPSolver() if qp is None else qp
        if not isinstance(self.qp, QPSolver):
            raise ValueError(f"qp must be a QPSolver, got {qp!r}")
        if losses is None or isinstance(losses, TaskLosses):
            self.losses = TaskLosses(tasks) if losses is None else losses
        else:
            self.losses = TaskLosses(tasks, custom=losses)
        self.constrained = bool(constrained)
        if dual is not None and not isinstance(dual, DualAscent):
            raise ValueError(f"dual must be a DualAscent, got {dual!r}")
        dual_part = (DualAscent(rho=1.0, eps=0.05) if dual is None else dual) \
            if self.constrained else None
        if dual_part is not None and dual_part.eps < 0:
            raise ValueError(f"eps must be >= 0 (Φ is never negative), got {dual_part.eps}")
        self.alpha_scale: AlphaScale = alpha_scale
        self._reducer = Reducer(distributed)
        self.check_inputs = bool(check_inputs)
        self.state = FairMTState(dual_part, scales=self.constraint.new_scales())

    # ------------------------------------------------------------------ public API

    @property
    def dual(self) -> DualAscent | None:
        """The dual ascent (``None`` when unconstrained)."""
        return self.state.dual

    @property
    def eta(self) -> float | torch.Tensor:
        """Current dual variable (a 0-d tensor once :meth:`dual_step` saw a tensor Φ)."""
        return 0.0 if self.state.dual is None else self.state.dual.eta

    @property
    def mu(self) -> float:
        return self.constraint.mu

    @property
    def num_steps(self) -> int:
        return self.state.num_steps

    def dual_step(self, phi: torch.Tensor | float | FairMTRecord) -> None:
        r"""Projected dual ascent on :math:`\eta` (a no-op when unconstrained). Takes the
        step's :math:`\Phi` (or its record); a tensor keeps :math:`\eta` on its device."""
        if isinstance(phi, FairMTRecord):
            phi = phi.phi
        if isinstance(phi, torch.Tensor):
            phi = phi.detach()
        if self.state.dual is not None:
            self.state.dual.step(phi, check_finite=self.check_inputs)

    def state_dict(self) -> dict[str, Any]:
        """The state (:class:`FairMTState`): η, running means, warm starts, scales, steps."""
        return self.state.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (validated before anything changes)."""
        self.state.load_state_dict(state, num_tasks=len(self.tasks))

    def config(self) -> dict[str, Any]:
        """The configuration (JSON-able): what a checkpoint must match to be loaded."""
        return {
            "tasks": [[t.name, t.kind, t.out_dim] for t in self.tasks],
            "num_groups": self.num_groups, "constrained": self.constrained,
            **self.constraint.config(), **self.proxy.config(), **self.qp.config(),
            "alpha_scale": self.alpha_scale,
        }

    def __repr__(self) -> str:
        return (f"FairMT(tasks={[t.name for t in self.tasks]}, num_groups={self.num_groups}, "
                f"constraint={self.constraint!r}, proxy={self.proxy!r}, dual={self.dual!r}, "
                f"constrained={self.constrained}, qp={self.qp!r}, losses={self.losses!r}, "
                f"alpha_scale={self.alpha_scale!r})")

    def compute(
        self,
        h: torch.Tensor,
        outputs: Sequence[torch.Tensor],
        targets: Sequence[torch.Tensor],
        masks: torch.Tensor | Sequence[torch.Tensor],
        groups: torch.Tensor,
        *,
        heads: Sequence[nn.Module | None] | None = None,
        psi: torch.Tensor | None = None,
    ) -> FairMTStep:
        r"""One primal step: the Lagrangian to backpropagate and the record.

        Parameters
        ----------
        h : torch.Tensor
            ``(N, d)`` representations from the shared encoder (in the autograd graph).
        outputs : sequence of torch.Tensor
            One per task, computed from ``h`` by the task's head.
        targets : sequence of torch.Tensor
            One ``(N,)`` tensor per task (see :class:`fairmt_opt.fairness.Task`).
        masks : torch.Tensor or sequence of torch.Tensor
            ``(N, T)`` bool or one ``(N,)`` bool per task.
        groups : torch.Tensor
            ``(N,)`` integer group ids.
        heads : sequence of nn.Module or None, optional
            The heads; ``nn.Linear`` heads get the closed-form directions, other heads (or
            ``None``) the autograd fallback.
        psi : torch.Tensor, optional
            ``(T,)`` violations to use instead of the built-in soft violations (a custom
            fairness measure, differentiable with respect to the outputs).

        Returns
        -------
        FairMTStep
            ``loss`` (call ``backward()`` on it) and ``record``. ``loss`` has the value of the
            Lagrangian and exactly its gradient. With a proxy, the logit gradients
            :math:`\partial L_t/\partial z_t` and :math:`\partial\Phi/\partial z_t` that the
            QP needs come from autograd, and ``loss`` is formed from them,
            :math:`\sum_t \langle \mathrm{sg}(\tilde\alpha_t \partial L_t/\partial z_t +
            \eta\,\partial\Phi/\partial z_t), z_t\rangle` (value corrected to the Lagrangian),
            so ``backward()`` starts at the head outputs and does not traverse the loss and
            violation graphs again. It is meant for one first-order ``backward()``.
        """
        T = len(self.tasks)
        outputs, targets = list(outputs), list(targets)
        if isinstance(masks, torch.Tensor):
            if masks.ndim != 2 or masks.shape[1] != T:
                raise ValueError(f"masks must have shape (N, {T}) or be a sequence of {T} "
                                 f"tensors, got {tuple(masks.shape)}")
            mask_list = list(masks.unbind(1))
        else:
            mask_list = list(masks)
        if heads is not None and len(heads) != T:
            raise ValueError(f"heads must hold one module per task ({T}), got {len(heads)}")
        check_batch(self.tasks, h, outputs, targets, mask_list, groups, self.num_groups,
                    values=self.check_inputs)
        red = self._reducer
        W = red.world_size
        dtype = h.dtype
        layout = self.constraint.layout
        buckets = layout.stack(outputs, targets, mask_list, dtype)
        grads_needed = self.proxy.needs_logit_grads
        fair = self.constrained
        if grads_needed:
            # the losses and the violations on detached copies of the stacked outputs: one
            # autograd.grad gives every ∂L_t/∂z_t and ∂Φ/∂z_t, and the loss returned below is
            # formed from them at the real outputs (no second pass through these graphs)
            lbk = [dataclasses.replace(bk, Z=bk.Z.detach().requires_grad_()) for bk in buckets]
            fbk = [dataclasses.replace(bk, Z=bk.Z.detach().requires_grad_(fair))
                   for bk in buckets]
        else:
            lbk = fbk = buckets

        # ---- masked losses (numerators and counts summed over ranks) ------------------
        views = layout.views(lbk, outputs) if self.losses.has_custom else outputs
        totals, counts = self.losses.sums(layout, lbk, views, targets, mask_list)
        totals = red.sum_autograd(totals.to(dtype))
        counts = red.sum(counts.to(dtype))
        losses = totals / counts.clamp(min=1.0)
        if self.check_inputs and not bool(torch.isfinite(losses).all()):
            self._raise_nonfinite(losses, "the loss")
        present = counts > 0

        # ---- violations and their aggregation -------------------------------------------
        custom_psi = psi is not None
        if psi is None:
            with torch.set_grad_enabled(fair and torch.is_grad_enabled()):
                psi = self.constraint.violations(
                    fbk, groups, reduce=red.sum_autograd if W > 1 else None,
                    scales=self.state.scales)
        elif not isinstance(psi, torch.Tensor) or psi.shape != (T,):
            raise ValueError(f"psi must be a tensor of shape ({T},), got "
                             f"{tuple(psi.shape) if isinstance(psi, torch.Tensor) else psi!r}")
        else:
            psi = psi.to(dtype)
        if self.check_inputs and not bool(torch.isfinite(psi).all()):
            self._raise_nonfinite(psi, "the fairness violation")
        # ψ was checked above (with the task names) when check_inputs
        agg = self.constraint.aggregate(psi, present, check=False)
        phi = agg.phi
        eta = self._eta_tensor(h)
        fair = fair and phi.requires_grad

        # ---- alpha from the proxy QP ---------------------------------------------------
        pf = present.to(dtype)
        tp = pf.sum()
        data = qp_res = cert = None
        if not grads_needed:
            alpha = pf / tp.clamp(min=1.0)
            alpha_tilde = alpha * tp if self.alpha_scale == "num_tasks" else alpha
            loss = (alpha_tilde.detach() * losses).sum()
            if fair:
                loss = loss + eta * phi
        else:
            live = [z.requires_grad for z in outputs]
            own = fair and custom_psi
            gl, gf = self._logit_grads(losses, phi if fair and not own else None, lbk, fbk)
            if own:  # a ψ of the caller's is built from the real outputs: Φ's gradients there
                idx = [t for t in range(T) if live[t]]
                gs = torch.autograd.grad(phi, [outputs[t] for t in idx], retain_graph=True,
                                         allow_unused=True, materialize_grads=True)
                gf = layout.stack_grads(buckets, dict(zip(idx, gs)))
            deltas = layout.per_task(gl, outputs, live)
            dphi = layout.per_task(gf, outputs, live) if fair else None
            data = self.proxy.qp_data(ProxyInputs(
                h, outputs, heads, deltas, dphi, eta, losses.detach(), red, self.check_inputs))
            assert data is not None
            alpha, qp_res, cert = self.qp.solve(data.K, data.b, present, self.state.warm,
                                                check=self.check_inputs)
            alpha_tilde = alpha * tp if self.alpha_scale == "num_tasks" else alpha
            lag = (alpha_tilde * losses.detach()).sum() + (eta * phi.detach() if fair else 0.0)
            # Σ_t <α̃_t ∂L_t/∂z_t + η ∂Φ/∂z_t, z_t>, one product per kind of task
            surrogate: Any = None
            for j, bk in enumerate(buckets):
                if not bk.Z.requires_grad:
                    continue
                a = alpha_tilde[cached_index(bk.idx, str(h.device))]
                g = gl[j] * (a[:, None] if bk.kind == "classification" else a)
                if fair:
                    g = g + eta * gf[j]
                term = (g.detach() * bk.Z).sum()
                surrogate = term if surrogate is None else surrogate + term
            loss = lag.detach() if surrogate is None else surrogate + (lag - surrogate).detach()
        self.state.num_steps += 1
        record = FairMTRecord(
            losses=losses.detach(), label_counts=counts.detach(), present=present,
            psi=psi.detach(), phi=phi.detach(), weights=agg.weights.detach(),
            alpha=alpha.detach(), alpha_tilde=alpha_tilde.detach(), eta=eta.detach(),
            K=None if data is None else data.K.detach(),
            b=None if data is None else data.b.detach(),
            directions=None if data is None or data.directions is None
            else data.directions.detach(),
            fairness_direction=None if data is None or data.fairness_direction is None
            else data.fairness_direction.detach(),
            qp=qp_res, certificate_data=cert,
            extra={} if agg.aggregation is None else {"aggregation": agg.aggregation},
        )
        return FairMTStep(loss, record)

    __call__ = compute

    # ------------------------------------------------------------------ internals

    def _eta_tensor(self, like: torch.Tensor) -> torch.Tensor:
        eta = self.eta
        if isinstance(eta, torch.Tensor):
            return eta.to(device=like.device, dtype=like.dtype)
        return torch.tensor(float(eta), dtype=like.dtype, device=like.device)

    @staticmethod
    def _logit_grads(losses: torch.Tensor, phi: torch.Tensor | None, lbk: Sequence[Bucket],
                     fbk: Sequence[Bucket]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """∂(Σ_t L_t)/∂Z and ∂Φ/∂Z of every stacked bucket, by one ``autograd.grad`` over the
        two sets of detached outputs (each L_t depends on its own outputs only)."""
        k = len(lbk)
        leaves = [bk.Z for bk in lbk] + ([bk.Z for bk in fbk] if phi is not None else [])
        total = losses.sum() if phi is None else losses.sum() + phi
        if not total.requires_grad:
            zeros = [torch.zeros_like(bk.Z) for bk in lbk]
            return zeros, [torch.zeros_like(z) for z in zeros]
        gs = torch.autograd.grad(total, leaves, allow_unused=True, materialize_grads=True)
        gl = list(gs[:k])
        gf = list(gs[k:]) if phi is not None else [torch.zeros_like(g) for g in gl]
        return gl, gf

    def _raise_nonfinite(self, values: torch.Tensor, what: str) -> None:
        bad = [t.name for t, v in zip(self.tasks, values.tolist()) if not math.isfinite(v)]
        raise ValueError(f"task(s) {bad}: {what} is NaN or inf")
