r"""FairMT: head-aware primal–dual training of a PyTorch multi-task model (SPEC §1, §5, §6).

The model convention is the usual one: a shared encoder returns representations
:math:`h_i \in \mathbb R^d` and one head per task maps them to the task's outputs. No base class
is required: :class:`FairMT` only sees the tensors (and, optionally, the head modules).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..certificates._qp import certify_simplex_qp
from ..dual import DualAscent
from ..fairness import Task
from ..fairness import _kernel as _fk
from ..head import head_aware_qp
from ..qp._solve import QPMethod, solve_simplex_qp
from ..simplex._aggregation import aggregate_violations
from ._distributed import Reducer
from ._losses import (
    Bucket,
    RegressionLoss,
    batched_losses,
    bucket_layout,
    bucket_losses,
    check_batch,
    masked_task_loss,
    one_hot,
    stack_buckets,
)
from ._losses import cached_index as _index
from ._violations import batched_violations, bucket_violations_grad, fast_path_supported

__all__ = [
    "Aggregation",
    "AlphaScale",
    "FairMT",
    "FairMTRecord",
    "FairMTStep",
    "Normalization",
    "Proxy",
]

Proxy = Literal["head", "rep", "full", "none"]
Normalization = Literal["none", "l2", "loss", "loss+"]
Aggregation = Literal["exact", "frank_wolfe", "away", "pairwise", "mean"]
AlphaScale = Literal["num_tasks", "none"]

_PROXIES = ("head", "rep", "full", "none")
_NORMS = ("none", "l2", "loss", "loss+")
_AGGS = ("exact", "frank_wolfe", "away", "pairwise", "mean")
_HOST_QP = ("active_set", "frank_wolfe", "away", "pairwise", "cvxpy", "daqp", "proxsuite")
_QP = (*_HOST_QP, "apg")


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
        The QP data (``None`` for proxy ``none``), after gradient normalisation.
    directions : torch.Tensor or None
        Proxy ``head``: the ``(T, d)`` representation directions :math:`r_t` (un-normalised);
        ``None`` otherwise.
    fairness_direction : torch.Tensor or None
        Proxy ``head``: :math:`r_\Phi` (``(d,)``); ``None`` otherwise or when unconstrained.
    qp : object or None
        The solver's result (host solvers and ``apg``) on the present tasks.
    certificate : QPCertificate or None
        :func:`fairmt_opt.certify_simplex_qp` of ``alpha`` on the present tasks (host solvers
        by default; see ``certify``), computed on first access.
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


def _masked_waterfill(
    psi: torch.Tensor, present: torch.Tensor, mu: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """AHFDA closed form over the present tasks, on the device, no host synchronisation.

    Returns ``(w, phi)``: ``w = Π_Δ(ψ/μ + c)`` restricted to the present tasks (zeros
    elsewhere), ``c = 1/T_present``, and the differentiable ``phi = Σ w ψ − μ/2 ‖w − c‖²``
    with ``w`` held fixed (Danskin).
    """
    T = psi.shape[0]
    pf = present.to(psi.dtype)
    tp = pf.sum().clamp(min=1.0)
    c = pf / tp
    v = psi.detach() / mu + c
    ninf = torch.full_like(v, -math.inf)
    vmax = torch.where(present, v, ninf).max()
    vmax = torch.where(torch.isfinite(vmax), vmax, torch.zeros_like(vmax))
    v = torch.where(present, v, vmax - 2.0)
    u = torch.sort(v, descending=True).values
    css = torch.cumsum(u, 0) - 1.0
    k = torch.arange(1, T + 1, dtype=v.dtype, device=v.device)
    rho = (u - css / k > 0).sum().clamp(min=1)
    theta = css.gather(0, (rho - 1).reshape(1)) / rho.to(v.dtype)
    w = (v - theta).clamp(min=0.0) * pf
    phi = (w * psi).sum() - 0.5 * mu * (((w - c) ** 2) * pf).sum()
    return w, phi


def _numpy_ok(x: torch.Tensor) -> bool:
    """A CPU tensor of a dtype NumPy computes with as torch does (float32, float64)."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


#: dtype codes of the compiled kernel
_KERNEL_DT = {torch.float32: 0, torch.float64: 1, torch.int64: 2, torch.int32: 3,
              torch.uint8: 4, torch.bool: 4, torch.int16: 5, torch.int8: 6}


class _OutputGradients(torch.autograd.Function):
    """A scalar (the Lagrangian's value) whose backward sends precomputed gradients to the head
    outputs, times the incoming gradient: one autograd node instead of a product per task."""

    @staticmethod
    def forward(ctx: Any, value: torch.Tensor, grads: tuple[torch.Tensor, ...],
                *outputs: torch.Tensor) -> torch.Tensor:
        ctx.grads = grads
        return value.clone()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        grads = ctx.grads
        if not (g.device.type == "cpu" and float(g) == 1.0):
            grads = tuple(x * g.to(x.dtype) for x in grads)
        return (None, None, *grads)


def _cols(x: torch.Tensor, N: int) -> torch.Tensor:
    """``x`` as ``(N, width)`` (also for an empty batch, where ``reshape(N, -1)`` fails)."""
    return x.reshape(N, math.prod(x.shape[1:]))


def _zeros_like_list(xs: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]
                     ) -> list[torch.Tensor]:
    return [torch.zeros_like(y) if x is None else x for x, y in zip(xs, like)]


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
    :math:`r_t = \nabla_s L_t(h + s)|_{s=0}`. For an ``nn.Linear`` head :math:`z = A_t h + c_t`
    it is computed in closed form, :math:`r_t = A_t^\top \sum_i \partial L_t/\partial z_{it}`
    (cost :math:`O(N C_t + C_t d)` per task, :math:`O(T^2 d)` for :math:`K`); any other head
    falls back to autograd from the head outputs to :math:`h` (never into the encoder). The dual
    variable is updated by a separate call, :meth:`dual_step`:
    :math:`\eta \leftarrow \min(\eta_{\max}, \max(0, \eta + \rho(\Phi - \varepsilon)))`.

    Parameters
    ----------
    tasks : sequence of Task
        The tasks, in the order of the outputs.
    num_groups : int
        Number of groups (>= 2); group ids are in ``[0, num_groups)``.
    eps : float
        Constraint level :math:`\varepsilon` of :math:`\Phi \le \varepsilon`.
    mu : float
        AHFDA regularisation :math:`\mu > 0`.
    rho : float
        Dual step size :math:`\rho_\eta`.
    eta, eta_max : float
        Initial dual variable and its cap.
    dual_mode : {"batch", "running_mean"}
        Dual ascent on the batch :math:`\Phi` [choice] or on a running mean (``beta``).
    constrained : bool
        ``False`` keeps :math:`\eta = 0` (the unconstrained baselines); ψ and Φ are still
        reported.
    proxy : {"head", "rep", "full", "none"}
        ``head``: the head-aware Gram above; ``rep``: MGDA-UB, the Gram of the per-task gradients
        with respect to the whole batch of representations; ``full``: MGDA, per-task gradients
        over ``shared_parameters`` (one encoder backward per task); ``none``: uniform
        :math:`\alpha`.
    normalization : {"none", "l2", "loss", "loss+"}
        Gradient normalisation before the QP (as MGDA-UB): task directions divided by their
        norm (``l2``, the default [choice]: without it the min-norm weights starve the task
        with the largest gradient, e.g. a regression task next to classifiers), their loss,
        or both; the losses themselves are not rescaled. ``K`` and ``b`` in the record are
        the normalised ones.
    aggregation : {"exact", "frank_wolfe", "away", "pairwise", "mean"}
        ``exact``: water-filling on the device; FW variants: :func:`fairmt_opt.aggregate_violations`
        on the host; ``mean``: the limit :math:`\mu \to \infty` (:math:`\Phi` = mean ψ).
    aggregation_tol, aggregation_max_iter : float, int, optional
        Passed to the FW variants.
    qp_method : str
        Any method of :func:`fairmt_opt.solve_simplex_qp`. Host methods (``active_set``, the
        default, exact) copy the ``T × T`` data to the host once per step; ``apg`` stays on the
        device with no host synchronisation.
    qp_tol, qp_max_iter : float, int, optional
        Passed to the QP solver.
    alpha_scale : {"num_tasks", "none"}
        :math:`\tilde\alpha = T_{\text{present}}\alpha` [choice] or :math:`\tilde\alpha = \alpha`.
    symmetric : bool
        Use the symmetric violations (the symmetric-constraint baseline).
    temperature, group_reduction, include_fpr, regression_score, violation_scale
        Options of :func:`fairmt_opt.fairness.violation_from_stats` and
        :func:`fairmt_opt.fairness.soft_stats`.
    regression_loss : {"mse", "mae"}
        Per-sample regression loss [choice: ``mse``].
    shared_parameters : iterable of torch.nn.Parameter, optional
        The encoder's parameters; required by ``proxy="full"``.
    distributed : bool or "auto"
        Sum the loss numerators and label counts, the group statistics and the directions over
        the ranks of ``process_group`` so that every rank computes the single-process values
        of the concatenated batch (``"auto"``: when ``torch.distributed`` is initialised).
    process_group : optional
        The ``torch.distributed`` group (default: the world).
    check_inputs : bool
        Check values (targets in range, finite outputs, NaN losses); this synchronises a GPU
        with its host. Shapes, dtypes and devices are always checked.
    certify : bool, optional
        Certify the QP solution (default: for host solvers only).
    warm_start : bool
        Warm-start the QP solver from the previous step's solution (host solvers: when the
        set of present tasks is unchanged).
    fast_violations : bool
        Compute the soft violations of all tasks of one kind in a few batched tensor
        operations (same values and gradients as the per-task
        :func:`fairmt_opt.fairness.violation_from_stats`, which is used when ``False`` or for
        options the batched path does not cover: CCC scores, a running scale).
    kernel : bool
        On CPU tensors, with one process, a host QP solver, float32 or float64 outputs, the
        built-in violations and either ``proxy="head"`` with ``nn.Linear`` heads or
        ``proxy="none"``, compute the masked losses, the soft violations and all their logit
        gradients in the compiled kernel (one pass over the batch for all tasks, in double
        precision) [choice: ``True``]. The same quantities as the torch path (the tests
        compare them on every option); ignored when the kernel is not built or the inputs do
        not qualify. ``backward()`` then starts at the head outputs with the precomputed
        gradients (times the incoming gradient, e.g. a loss scale).

    Examples
    --------
    >>> import torch
    >>> from fairmt_opt.fairness import Task
    >>> from fairmt_opt.torch import FairMT
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> tasks = [Task("y0", "detection"), Task("y1", "regression")]
    >>> encoder, heads = torch.nn.Linear(5, 8), torch.nn.ModuleList(
    ...     [torch.nn.Linear(8, 1), torch.nn.Linear(8, 1)])
    >>> x, groups = torch.randn(64, 5), torch.randint(0, 2, (64,))
    >>> targets = [torch.randint(0, 2, (64,)).float(), torch.randn(64)]
    >>> masks = torch.ones(64, 2, dtype=torch.bool)
    >>> fm = FairMT(tasks, num_groups=2, eps=0.01, eta=1.0)
    >>> h = encoder(x)
    >>> step = fm.compute(h, [hd(h) for hd in heads], targets, masks, groups, heads=heads)
    >>> step.loss.backward()
    >>> r = step.record
    >>> bool(abs(r.alpha.sum() - 1) < 1e-6), bool(r.certificate.ok)
    (True, True)
    >>> fm.dual_step(r.phi); bool(fm.eta >= 0)
    True
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        num_groups: int,
        *,
        eps: float = 0.05,
        mu: float = 0.1,
        rho: float = 1.0,
        eta: float = 0.0,
        eta_max: float = math.inf,
        dual_mode: Literal["batch", "running_mean"] = "batch",
        beta: float = 0.9,
        constrained: bool = True,
        proxy: Proxy = "head",
        normalization: Normalization = "l2",
        aggregation: Aggregation = "exact",
        aggregation_tol: float | None = None,
        aggregation_max_iter: int | None = None,
        qp_method: QPMethod = "active_set",
        qp_tol: float | None = None,
        qp_max_iter: int | None = None,
        alpha_scale: AlphaScale = "num_tasks",
        symmetric: bool = False,
        temperature: float = 1.0,
        group_reduction: Literal["mean", "max"] = "mean",
        include_fpr: bool = True,
        regression_score: str = "mae",
        violation_scale: Any = None,
        regression_loss: RegressionLoss = "mse",
        shared_parameters: Any = None,
        distributed: bool | str = "auto",
        process_group: Any = None,
        check_inputs: bool = True,
        certify: bool | None = None,
        warm_start: bool = True,
        fast_violations: bool = True,
        kernel: bool = True,
    ) -> None:
        tasks = tuple(tasks)
        if not tasks or not all(isinstance(t, Task) for t in tasks):
            raise ValueError("tasks must be a non-empty sequence of fairmt_opt.fairness.Task")
        names = [t.name for t in tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"tasks must have distinct names, got {names}")
        if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 2:
            raise ValueError(f"num_groups must be an integer >= 2, got {num_groups!r}")
        for name, val in (("mu", mu), ("temperature", temperature)):
            if not (isinstance(val, (int, float)) and math.isfinite(val) and val > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {val!r}")
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
        if proxy not in _PROXIES:
            raise ValueError(f"proxy must be one of {_PROXIES}, got {proxy!r}")
        if normalization not in _NORMS:
            raise ValueError(f"normalization must be one of {_NORMS}, got {normalization!r}")
        if aggregation not in _AGGS:
            raise ValueError(f"aggregation must be one of {_AGGS}, got {aggregation!r}")
        if qp_method not in _QP:
            raise ValueError(f"qp_method must be one of {_QP}, got {qp_method!r}")
        if alpha_scale not in ("num_tasks", "none"):
            raise ValueError(f"alpha_scale must be 'num_tasks' or 'none', got {alpha_scale!r}")
        if regression_loss not in ("mse", "mae"):
            raise ValueError(f"regression_loss must be 'mse' or 'mae', got {regression_loss!r}")
        self.shared_parameters = (
            None if shared_parameters is None else [p for p in shared_parameters]
        )
        if proxy == "full" and not self.shared_parameters:
            raise ValueError("proxy='full' needs shared_parameters (the encoder's parameters)")
        self.tasks = tasks
        self.num_groups = num_groups
        self.eps, self.mu = float(eps), float(mu)
        self.rho, self.eta_max = float(rho), float(eta_max)
        self.dual_mode, self.beta = dual_mode, float(beta)
        self.constrained = bool(constrained)
        self.proxy, self.normalization, self.aggregation = proxy, normalization, aggregation
        self.aggregation_tol, self.aggregation_max_iter = aggregation_tol, aggregation_max_iter
        self.qp_method: QPMethod = qp_method
        self.qp_tol, self.qp_max_iter = qp_tol, qp_max_iter
        self.alpha_scale, self.symmetric = alpha_scale, bool(symmetric)
        self.violation_options: dict[str, Any] = {
            "symmetric": self.symmetric,
            "group_reduction": group_reduction,
            "include_fpr": include_fpr,
            "regression_score": regression_score,
            "scale": violation_scale,
        }
        self.temperature = float(temperature)
        self.regression_loss: RegressionLoss = regression_loss
        self.check_inputs = bool(check_inputs)
        self.certify = (qp_method in _HOST_QP) if certify is None else bool(certify)
        self.warm_start = bool(warm_start)
        self.fast_violations = bool(fast_violations)
        self.kernel = bool(kernel)
        self._reducer = Reducer(distributed, process_group)
        self._eta0 = float(eta)
        self._dual: Any = DualAscent(  # type: ignore[call-arg]
            self.rho, self.eps, eta=float(eta), eta_max=self.eta_max, mode=dual_mode,
            beta=self.beta,
        )
        self._layout = bucket_layout(tasks)
        self._order = tuple(t for _, _, idx in self._layout for t in idx)  # bucket order
        pos = {t: j for j, t in enumerate(self._order)}
        self._inverse = tuple(pos[t] for t in range(len(tasks)))  # task t -> bucket position
        # column of the bucket-ordered head outputs -> its task
        self._segments = tuple(t for _, C, idx in self._layout for t in idx for _ in range(C))
        self._kinds = tuple(_fk.KINDS[t.kind] for t in tasks)
        self._widths = tuple(int(t.out_dim) for t in tasks)
        self._starts = np.concatenate([[0], np.cumsum(self._widths)[:-1]]).astype(np.intp)
        vo = self.violation_options
        self._kernel_flags = (
            0 if regression_loss == "mse" else 1,
            0 if regression_score == "mae" else 1,
            int(self.symmetric), int(vo["group_reduction"] == "max"), int(bool(include_fpr)),
            int(vo["scale"] is not None),
        )
        self._warm: tuple[tuple[int, ...], np.ndarray] | None = None
        self._apg_warm: torch.Tensor | None = None
        self.num_steps = 0

    # ------------------------------------------------------------------ public API

    @property
    def eta(self) -> float | torch.Tensor:
        """Current dual variable (a 0-d tensor once :meth:`dual_step` saw a tensor Φ)."""
        if not self.constrained:
            return 0.0
        return self._dual.eta  # type: ignore[no-any-return,unused-ignore]

    def dual_step(self, phi: torch.Tensor | float | FairMTRecord) -> None:
        r"""Projected dual ascent :math:`\eta \leftarrow \min(\eta_{\max}, \max(0, \eta +
        \rho(\Phi - \varepsilon)))` (a no-op when ``constrained=False``). Takes the step's
        :math:`\Phi` (or its record); a tensor keeps :math:`\eta` on its device, no host
        synchronisation."""
        if isinstance(phi, FairMTRecord):
            phi = phi.phi
        if isinstance(phi, torch.Tensor):
            phi = phi.detach()
        if self.constrained:
            self._dual.step(phi, check_finite=self.check_inputs)

    def state_dict(self) -> dict[str, Any]:
        """Dual state, warm start of the QP solver and step counter (for checkpoints)."""
        warm = None if self._warm is None else (list(self._warm[0]), self._warm[1].copy())
        return {"dual": self._dual.state_dict(), "warm": warm, "num_steps": self.num_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._dual.load_state_dict(state["dual"])
        warm = state.get("warm")
        self._warm = None if warm is None else (tuple(int(i) for i in warm[0]),
                                                np.asarray(warm[1], dtype=np.float64))
        self.num_steps = int(state.get("num_steps", 0))

    def config(self) -> dict[str, Any]:
        """The configuration (JSON-able): what a checkpoint must match to be loaded."""
        return {
            "tasks": [[t.name, t.kind, t.out_dim] for t in self.tasks],
            "num_groups": self.num_groups, "constrained": self.constrained,
            "proxy": self.proxy, "aggregation": self.aggregation, "qp_method": self.qp_method,
            "symmetric": self.symmetric,
        }

    def __repr__(self) -> str:
        tasks = ", ".join(t.name for t in self.tasks)
        return (
            f"FairMT(tasks=[{tasks}], num_groups={self.num_groups}, eps={self.eps}, "
            f"mu={self.mu}, rho={self.rho}, constrained={self.constrained}, "
            f"proxy={self.proxy!r}, normalization={self.normalization!r}, "
            f"aggregation={self.aggregation!r}, qp_method={self.qp_method!r}, "
            f"alpha_scale={self.alpha_scale!r}, symmetric={self.symmetric})"
        )

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
            ``(T,)`` violations to use instead of the soft violations of
            :mod:`fairmt_opt.fairness` (a custom fairness measure, differentiable with respect
            to the outputs); everything else is unchanged.

        Returns
        -------
        FairMTStep
            ``loss`` (call ``backward()`` on it) and ``record``. ``loss`` has the value of the
            Lagrangian and exactly its gradient. With a proxy (``head``, ``rep``, ``full``) and
            the built-in violations it is formed from the head-output gradients that the QP
            needed anyway, :math:`\sum_t \langle \mathrm{sg}(\tilde\alpha_t \partial L_t/
            \partial z_t + \eta\,\partial\Phi/\partial z_t), z_t\rangle` (value corrected to
            the Lagrangian), so ``backward()`` starts at the head outputs and does not traverse
            the loss and violation graphs again. The logit gradients of the losses are in
            closed form, and so are those of :math:`\Phi` with the batched violations
            (``fast_violations=True``, the default; no autograd graph is built for them).
            It is meant for one first-order ``backward()``.
        """
        return self._compute(h, outputs, targets, masks, groups, heads=heads, psi=psi)

    __call__ = compute  # calling the object is the same as :meth:`compute`

    def _compute(
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
        T = len(self.tasks)
        outputs, targets = list(outputs), list(targets)
        if isinstance(masks, torch.Tensor):
            if masks.ndim != 2 or masks.shape[1] != T:
                raise ValueError(
                    f"masks must have shape (N, {T}) or be a sequence of {T} tensors, "
                    f"got {tuple(masks.shape)}"
                )
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

        # the fast path (a proxy and the built-in violations): the losses are only evaluated,
        # their logit gradients come in closed form, and the returned loss is a surrogate
        # built from the head-output gradients, so backward() starts at the head outputs
        fast = self.proxy != "none" and psi is None
        batched = self.fast_violations and fast_path_supported(self.violation_options)
        if (psi is None and batched and self.kernel and W == 1 and _fk.KERNEL is not None
                and self.proxy in ("head", "none")):
            step = self._kernel_step(h, outputs, targets, masks, mask_list, groups, heads)
            if step is not None:
                return step
        if fast and batched:
            return self._bucketed(h, outputs, targets, masks, mask_list, groups, heads, W)

        # ---- masked losses (numerators and counts summed over ranks) -------------------
        deltas: list[torch.Tensor] = []
        if fast:
            counts = red.sum(torch.stack([m.sum() for m in mask_list]).to(dtype))
            # logit gradients of L_t in closed form, times the world size (as autograd through
            # the differentiable all-reduce of the slow path gives)
            inv = float(W) / counts.clamp(min=1.0)
            totals, _, deltas = batched_losses(self.tasks, outputs, targets, mask_list,
                                               regression_loss=self.regression_loss,
                                               grad_scale=inv)
            totals = red.sum(totals.to(dtype))
            losses = totals / counts.clamp(min=1.0)
        else:
            parts = [masked_task_loss(t, z, y, m, regression_loss=self.regression_loss)
                     for t, z, y, m in zip(self.tasks, outputs, targets, mask_list)]
            totals = red.sum_autograd(torch.stack([p.total.to(dtype) for p in parts]))
            counts = red.sum(torch.stack([p.count.to(dtype) for p in parts]))
            losses = totals / counts.clamp(min=1.0)
        if self.check_inputs and not bool(torch.isfinite(losses).all()):
            self._raise_nonfinite(losses, "the loss")
        present = counts > 0

        # ---- violations and their aggregation -------------------------------------------
        if psi is None:
            if self.constrained:
                psi = self._violations(outputs, targets, mask_list, groups, dtype)
            else:  # only recorded: no autograd graph (the loss does not contain Phi)
                with torch.no_grad():
                    psi = self._violations(outputs, targets, mask_list, groups, dtype)
        elif not isinstance(psi, torch.Tensor) or psi.shape != (T,):
            raise ValueError(f"psi must be a tensor of shape ({T},), got "
                             f"{tuple(psi.shape) if isinstance(psi, torch.Tensor) else psi!r}")
        else:
            psi = psi.to(dtype)
        if self.check_inputs and not bool(torch.isfinite(psi).all()):
            self._raise_nonfinite(psi, "the fairness violation")
        weights, phi, agg = self._aggregate(psi, present)

        eta = self._eta_tensor(h)
        use_fair = self.constrained

        # ---- alpha from the proxy QP ---------------------------------------------------
        pf = present.to(dtype)
        tp = pf.sum()
        K = b = R = r_phi = None
        qp = cert = None
        if self.proxy == "none":
            alpha = pf / tp.clamp(min=1.0)
            alpha_tilde = alpha * tp if self.alpha_scale == "num_tasks" else alpha
            loss = (alpha_tilde.detach() * losses).sum()
            if use_fair and phi.requires_grad:
                loss = loss + eta * phi
        else:
            # logit gradients of Phi (autograd, stops at the head outputs)
            fair = use_fair and phi.requires_grad
            dphi = self._logit_grads(phi, outputs, retain=False) if fair else None
            K, b, R, r_phi = self._qp_data(h, outputs, losses, deltas, dphi, heads, eta, W)
            K, b = self._normalize(K, b, losses)
            alpha, qp, cert = self._solve(K, b, present)
            alpha_tilde = alpha * tp if self.alpha_scale == "num_tasks" else alpha
            lag = (alpha_tilde * losses).sum() + (eta * phi.detach() if fair else 0.0)
            # one product over all head outputs: Σ_t <α̃_t δ_t + η ∂Φ/∂z_t, z_t>
            live = [t for t in range(T) if outputs[t].requires_grad]
            surrogate: Any = None
            if live:
                N = h.shape[0]
                widths = [math.prod(outputs[t].shape[1:]) for t in live]
                Z = torch.cat([_cols(outputs[t], N) for t in live], 1)
                D = torch.cat([_cols(deltas[t], N) for t in live], 1)
                col = alpha_tilde[_index(tuple(t for t, w in zip(live, widths)
                                               for _ in range(w)), str(h.device))]
                Gz = D * col
                if dphi is not None:
                    Gz = Gz + eta * torch.cat([_cols(dphi[t], N) for t in live], 1)
                surrogate = (Gz.detach().to(Z.dtype) * Z).sum()
            if isinstance(surrogate, torch.Tensor):
                loss = surrogate + (lag - surrogate).detach()
            else:  # no output in the autograd graph
                loss = lag.detach()
        self.num_steps += 1
        record = FairMTRecord(
            losses=losses.detach(), label_counts=counts.detach(), present=present,
            psi=psi.detach(), phi=phi.detach(), weights=weights.detach(),
            alpha=alpha.detach(), alpha_tilde=alpha_tilde.detach(), eta=eta.detach(),
            K=None if K is None else K.detach(), b=None if b is None else b.detach(),
            directions=None if R is None else R.detach(),
            fairness_direction=None if r_phi is None else r_phi.detach(),
            qp=qp, certificate_data=cert,
            extra={} if agg is None else {"aggregation": agg},
        )
        return FairMTStep(loss, record)

    # ------------------------------------------------------------------ internals

    def _kernel_step(self, h: torch.Tensor, outputs: list[torch.Tensor],
                     targets: list[torch.Tensor], masks: torch.Tensor | Sequence[torch.Tensor],
                     mask_list: list[torch.Tensor], groups: torch.Tensor,
                     heads: Sequence[Any] | None) -> FairMTStep | None:
        r"""The step with the compiled kernel (CPU, one process, the built-in violations; the
        ``head`` proxy with ``nn.Linear`` heads and a host QP, or no proxy): losses, ψ, their
        logit gradients and the column sums that the directions need come from three kernel
        calls; the rest is :math:`O(T^2 d)` NumPy. The values of :meth:`_bucketed` (head) and
        of the per-task path (no proxy). Returns ``None`` (the caller takes the torch path)
        when the inputs do not qualify."""
        kern = _fk.KERNEL
        assert kern is not None
        T = len(self.tasks)
        head = self.proxy == "head"
        # the APG solver asks for a step without host reads (the kernel reads host memory)
        if h.device.type != "cpu" or h.ndim != 2 or self.qp_method not in _HOST_QP:
            return None
        if head and heads is None:
            return None
        N, d = h.shape
        zdt = [_KERNEL_DT.get(z.dtype, -1) for z in outputs]
        if min(zdt) < 0 or max(zdt) > 1:
            return None
        for z, C in zip(outputs, self._widths):
            if C > 1 and z.stride(1) != 1:
                return None
        if head:
            assert heads is not None
            for hd, C in zip(heads, self._widths):
                if not (isinstance(hd, nn.Linear) and hd.in_features == d
                        and hd.out_features == C and hd.weight.device.type == "cpu"):
                    return None
        ydt = [_KERNEL_DT.get(y.dtype, -1) for y in targets]
        gdt = _KERNEL_DT.get(groups.dtype, -1)
        if min(ydt) < 0 or gdt < 2:
            return None
        dtype = h.dtype
        bf = kern.buffers(N, self.num_groups, self._kinds, self._widths)
        ip, dp, ti = bf.ip, bf.dp, bf.ti
        ti[:, _fk.TI_ZPTR] = [z.data_ptr() for z in outputs]
        ti[:, _fk.TI_ZDT] = zdt
        ti[:, _fk.TI_ZSTRIDE] = [z.stride(0) for z in outputs]
        ti[:, _fk.TI_YPTR] = [y.data_ptr() for y in targets]
        ti[:, _fk.TI_YDT] = ydt
        ti[:, _fk.TI_YSTRIDE] = [y.stride(0) for y in targets]
        if isinstance(masks, torch.Tensor):
            s0, s1 = masks.stride()
            ti[:, _fk.TI_MPTR] = masks.data_ptr() + s1 * np.arange(T)
            ti[:, _fk.TI_MSTRIDE] = s0
        else:
            ti[:, _fk.TI_MPTR] = [m.data_ptr() for m in mask_list]
            ti[:, _fk.TI_MSTRIDE] = [m.stride(0) for m in mask_list]
        ip[_fk.IP_GPTR:_fk.IP_GSTRIDE + 1] = (groups.data_ptr(), gdt, groups.stride(0))
        ip[_fk.IP_REG_LOSS:_fk.IP_HAS_SCALE + 1] = self._kernel_flags
        scale = self.violation_options["scale"]
        dp[:_fk.DP_ETA] = (self.temperature, 1.0 if scale is None else float(scale), 1.0, 1.0)
        rc = kern.forward(bf)
        if rc != _fk.OK:
            self._kernel_error(rc, bf, targets, groups)
            return None

        # ---- losses, ψ and the aggregation (float64 on the host) ------------------------
        cnt = bf.cnt.copy()
        losses = bf.tot / np.maximum(cnt, 1.0)
        if self.check_inputs and not np.isfinite(losses).all():
            self._raise_nonfinite(losses, "the loss")
        present = cnt > 0
        psi = bf.psi.copy()
        if self.check_inputs and not np.isfinite(psi).all():
            self._raise_nonfinite(psi, "the fairness violation")
        agg = None
        if self.aggregation == "exact":
            w, phi_value = self._np_waterfill(psi, present)
        else:
            wt, phit, agg = self._aggregate(torch.from_numpy(psi), torch.from_numpy(present),
                                            differentiable=False)
            w, phi_value = wt.numpy().astype(np.float64), float(phit)
        eta_t = self._eta_tensor(h)
        eta = float(eta_t)
        live = [z.requires_grad for z in outputs]
        fair = self.constrained and any(live)

        if fair:
            bf.w[:] = w
            kern.backward(bf)

        # ---- directions through the linear heads, K, b and α ----------------------------
        R = r_phi = Kn = bn = qp_res = cert = None
        if head:
            assert heads is not None
            A = torch.cat([hd.weight for hd in heads], 0).detach().numpy()  # (Q, d)
            R = np.add.reduceat(bf.gsum[:, None] * A, self._starts, axis=0)  # (T, d)
            r_phi = bf.dsum @ A if fair else np.zeros(d)
            K, b = self._head_qp(R, r_phi, eta)
            Kn, bn = self._np_normalize(K, b, losses)
            alpha, qp_res, cert = self._np_solve(Kn, bn, present, self._qp_options())
        else:
            alpha = present / max(float(present.sum()), 1.0)
        alpha_tilde = alpha * present.sum() if self.alpha_scale == "num_tasks" else alpha
        lag = float(alpha_tilde @ losses) + (eta * phi_value if fair else 0.0)

        # ---- the gradients of the Lagrangian at the head outputs -------------------------
        grads = tuple(torch.empty(z.shape, dtype=z.dtype) if on else None
                      for z, on in zip(outputs, live))
        ti[:, _fk.TI_OUTPTR] = [0 if g is None else g.data_ptr() for g in grads]
        ti[:, _fk.TI_OUTDT] = zdt
        bf.alpha[:] = alpha_tilde
        dp[_fk.DP_ETA] = eta
        ip[_fk.IP_FAIR] = int(fair)
        kern.combine(bf)
        value = torch.tensor(lag, dtype=dtype)
        if any(live):
            loss = _OutputGradients.apply(
                value, tuple(g for g in grads if g is not None),
                *(z for z, on in zip(outputs, live) if on))
        else:
            loss = value
        self.num_steps += 1

        def tt(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(x).to(dtype)

        record = FairMTRecord(
            losses=tt(losses), label_counts=tt(cnt), present=torch.from_numpy(present),
            psi=tt(psi), phi=torch.tensor(phi_value, dtype=dtype), weights=tt(w),
            alpha=tt(alpha), alpha_tilde=tt(alpha_tilde), eta=eta_t.detach(),
            K=None if Kn is None else tt(Kn), b=None if bn is None else tt(bn),
            directions=None if R is None else tt(R),
            fairness_direction=tt(r_phi) if fair and r_phi is not None else None,
            qp=qp_res, certificate_data=cert,
            extra={} if agg is None else {"aggregation": agg},
        )
        return FairMTStep(loss, record)

    def _kernel_error(self, rc: int, bf: Any, targets: list[torch.Tensor],
                      groups: torch.Tensor) -> None:
        """Raise the error of a kernel return code (a bad dtype code returns: torch path)."""
        t, i = int(bf.ip[_fk.IP_ERR_TASK]), int(bf.ip[_fk.IP_ERR_ROW])
        if rc == _fk.BAD_CLASS:
            task = self.tasks[t]
            raise ValueError(
                f"task {task.name!r}: targets must lie in [0, {task.num_classes}) on labelled "
                f"samples, got {int(targets[t][i])} at sample {i}")
        if rc == _fk.BAD_GROUP:
            raise ValueError(f"groups must hold ids in [0, {self.num_groups}), got "
                             f"{int(groups[i])} at sample {i}")

    def _bucketed(self, h: torch.Tensor, outputs: list[torch.Tensor],
                  targets: list[torch.Tensor], masks: torch.Tensor | Sequence[torch.Tensor],
                  mask_list: list[torch.Tensor], groups: torch.Tensor,
                  heads: Sequence[Any] | None, W: int) -> FairMTStep:
        r"""The step with a proxy and the built-in (batched) violations.

        Every task of one kind and output width is handled together (a :class:`Bucket`,
        stacked once per step): the losses and their closed-form logit gradients, the soft
        violations (no autograd graph) and the logit gradients of :math:`\Phi` in closed form
        (:func:`bucket_violations_grad`), the directions through ``nn.Linear`` heads and the
        surrogate loss. Same values as the per-task formulation (the tests compare them)."""
        red = self._reducer
        dtype = h.dtype
        dev = str(h.device)
        bks = stack_buckets(self._layout, outputs, targets,
                            masks if isinstance(masks, torch.Tensor) else mask_list, dtype)
        inverse = _index(self._inverse, dev)
        order = _index(self._order, dev)

        # ---- masked losses: numerators, counts (summed over ranks), logit gradients -----
        if isinstance(masks, torch.Tensor):
            counts_bo = red.sum(masks.sum(0).to(dtype))[order]
        else:
            counts_bo = red.sum(torch.cat([bk.M.sum(0) for bk in bks]).to(dtype))
        # logit gradients of L_t in closed form, times the world size (as autograd through
        # the differentiable all-reduce of the slow path gives)
        inv = float(W) / counts_bo.clamp(min=1.0)
        tots: list[torch.Tensor] = []
        grads: list[torch.Tensor] = []
        off = 0
        for bk in bks:
            k = len(bk.idx)
            tot, _, G = bucket_losses(bk, regression_loss=self.regression_loss,
                                      grad_scale=inv[off:off + k], counts=False)
            tots.append(tot)
            grads.append(G)
            off += k
        counts = counts_bo[inverse]
        losses = red.sum(torch.cat(tots).to(dtype))[inverse] / counts.clamp(min=1.0)
        if self.check_inputs and not bool(torch.isfinite(losses).all()):
            self._raise_nonfinite(losses, "the loss")
        present = counts > 0

        # ---- violations and their aggregation -------------------------------------------
        # values without an autograd graph; their logit gradients in closed form below
        Gm = one_hot(groups.long(), self.num_groups, dtype)  # (N, G)
        # the small (k, G, C) reductions in NumPy when the host QP reads data back anyway
        host = _numpy_ok(h) and self.qp_method in _HOST_QP
        vals, backs = [], []
        for bk in bks:
            v, back = bucket_violations_grad(
                bk, Gm, self.num_groups, temperature=self.temperature,
                options=self.violation_options, reduce=red.sum if W > 1 else None,
                grad_factor=float(W), host=host)
            vals.append(v)
            backs.append(back)
        psi = torch.cat(vals)[inverse]
        if self.check_inputs and not bool(torch.isfinite(psi).all()):
            self._raise_nonfinite(psi, "the fairness violation")
        weights, phi, agg = self._aggregate(psi, present, differentiable=False)
        eta = self._eta_tensor(h)

        # ---- logit gradients of Phi (Danskin: sum_t w_t dpsi_t/dz), in closed form -------
        fair = self.constrained and any(bk.Z.requires_grad for bk in bks)
        dphi: list[torch.Tensor] | None = None
        if fair:
            w_bo = weights.detach()[order]
            dphi = []
            off = 0
            for bk, back in zip(bks, backs):
                k = len(bk.idx)
                dphi.append(back(w_bo[off:off + k]))
                off += k

        # ---- alpha from the proxy QP ---------------------------------------------------
        K, b, R, r_phi = self._bucket_qp_data(h, outputs, bks, grads, dphi, heads, eta, W,
                                              losses)
        K, b = self._normalize(K, b, losses)
        alpha, qp, cert = self._solve(K, b, present)
        pf = present.to(dtype)
        alpha_tilde = alpha * pf.sum() if self.alpha_scale == "num_tasks" else alpha
        lag = (alpha_tilde * losses).sum() + (eta * phi.detach() if fair else 0.0)
        # Σ_t <α̃_t δ_t + η ∂Φ/∂z_t, z_t>, bucket by bucket
        at = alpha_tilde[order]
        surrogate: torch.Tensor | None = None
        off = 0
        for j, (bk, G) in enumerate(zip(bks, grads)):
            k = len(bk.idx)
            a = at[off:off + k]
            off += k
            if not bk.Z.requires_grad:
                continue
            Gz = G * (a[:, None] if bk.kind == "classification" else a)
            if dphi is not None:
                Gz = Gz + eta * dphi[j]
            term = (Gz.detach().to(bk.Z.dtype) * bk.Z).sum()
            surrogate = term if surrogate is None else surrogate + term
        if surrogate is not None:
            loss = surrogate + (lag - surrogate).detach()
        else:  # no output in the autograd graph
            loss = lag.detach()
        self.num_steps += 1
        record = FairMTRecord(
            losses=losses.detach(), label_counts=counts.detach(), present=present,
            psi=psi.detach(), phi=phi.detach(), weights=weights.detach(),
            alpha=alpha.detach(), alpha_tilde=alpha_tilde.detach(), eta=eta.detach(),
            K=K.detach(), b=b.detach(),
            directions=None if R is None else R.detach(),
            fairness_direction=None if r_phi is None else r_phi.detach(),
            qp=qp, certificate_data=cert,
            extra={} if agg is None else {"aggregation": agg},
        )
        return FairMTStep(loss, record)

    def _bucket_qp_data(self, h: torch.Tensor, outputs: list[torch.Tensor], bks: list[Bucket],
                        grads: list[torch.Tensor], dphi: list[torch.Tensor] | None,
                        heads: Sequence[Any] | None, eta: torch.Tensor, W: int,
                        losses: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                   torch.Tensor | None]:
        red = self._reducer
        T = len(self.tasks)
        N, d = h.shape
        dtype = h.dtype
        linear = (self.proxy == "head" and heads is not None and all(
            self._is_linear(hd, h) and hd.out_features == t.out_dim
            for hd, t in zip(heads, self.tasks)))
        if not linear:  # per-task views for the general code
            deltas: list[Any] = [None] * T
            dl: list[Any] | None = None if dphi is None else [None] * T
            for j, bk in enumerate(bks):
                for i, t in enumerate(bk.idx):
                    shape = outputs[t].shape
                    deltas[t] = grads[j][:, i].reshape(shape)
                    if dl is not None and dphi is not None:
                        dl[t] = dphi[j][:, i].reshape(shape)
            return self._qp_data(h, outputs, losses, deltas, dl, heads, eta, W)
        assert heads is not None
        dev = str(h.device)
        # r_t = A_t^T Σ_i δ_it: all heads at once, rows accumulated per task in class order
        D = torch.cat([_cols(G, N) for G in grads], 1).to(dtype)  # (N, ΣC)
        A = torch.cat([heads[t].weight for t in self._order], 0).detach().to(dtype)
        rows = D.sum(0)[:, None] * A
        R = torch.zeros(T, d, dtype=dtype, device=h.device).index_add(
            0, _index(self._segments, dev), rows)
        if W > 1:
            R = red.sum(R) / W
        if dphi is not None:
            Dp = torch.cat([_cols(g, N) for g in dphi], 1).to(dtype)
            r_phi = Dp.sum(0) @ A
            if W > 1:
                r_phi = red.sum(r_phi) / W
        else:
            r_phi = torch.zeros(d, dtype=dtype, device=h.device)
        K, b = self._head_qp(R, r_phi, eta)
        return K, b, R, (r_phi if dphi is not None else None)

    def _eta_tensor(self, like: torch.Tensor) -> torch.Tensor:
        e = self.eta
        if isinstance(e, torch.Tensor):
            return e.detach().to(device=like.device, dtype=like.dtype)
        return torch.tensor(float(e), dtype=like.dtype, device=like.device)

    def _violations(self, outputs: list[torch.Tensor], targets: list[torch.Tensor],
                    masks: list[torch.Tensor], groups: torch.Tensor,
                    dtype: torch.dtype) -> torch.Tensor:
        red = self._reducer
        if self.fast_violations and fast_path_supported(self.violation_options):
            return batched_violations(
                self.tasks, outputs, targets, masks, groups, self.num_groups,
                temperature=self.temperature, options=self.violation_options,
                reduce=red.sum_autograd if red.world_size > 1 else None,
            ).to(dtype)
        from ..fairness import soft_stats, violation_from_stats

        vals = []
        for task, z, y, m in zip(self.tasks, outputs, targets, masks):
            stats = soft_stats(task, z, y, m, groups, self.num_groups,
                               temperature=self.temperature, validate=False)
            if red.world_size > 1:
                stats = stats.map(red.sum_autograd)
            v = violation_from_stats(task, stats, **self.violation_options).value
            vals.append(torch.as_tensor(v).to(device=z.device, dtype=dtype))
        return torch.stack(vals)

    def _aggregate(self, psi: torch.Tensor, present: torch.Tensor, *,
                   differentiable: bool = True) -> tuple[torch.Tensor, torch.Tensor, Any]:
        if self.aggregation == "exact":
            if _numpy_ok(psi) and self.qp_method in _HOST_QP:
                # the host QP reads data back anyway: the NumPy water-filling (a few µs)
                return self._host_waterfill(psi, present, differentiable)
            return (*_masked_waterfill(psi, present, self.mu), None)
        pf = present.to(psi.dtype)
        if self.aggregation == "mean":
            w = pf / pf.sum().clamp(min=1.0)
            return w, (w * psi).sum(), None
        idx = torch.nonzero(present).flatten()
        w = torch.zeros_like(psi)
        if idx.numel() == 0:
            return w, (w * psi).sum(), None
        kw: dict[str, Any] = {}
        if self.aggregation_tol is not None:
            kw["tol"] = self.aggregation_tol
        if self.aggregation_max_iter is not None:
            kw["max_iter"] = self.aggregation_max_iter
        res = aggregate_violations(psi.detach()[idx], self.mu, method=self.aggregation, **kw)
        wp = torch.as_tensor(res.weights).to(device=psi.device, dtype=psi.dtype)
        w = w.index_put((idx,), wp)
        c = 1.0 / idx.numel()
        phi = (w * psi).sum() - 0.5 * self.mu * ((wp - c) ** 2).sum()
        return w, phi, res

    def _host_waterfill(self, psi: torch.Tensor, present: torch.Tensor, differentiable: bool
                        ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """:func:`_masked_waterfill` on a CPU tensor by the float64 NumPy fast path of
        :func:`fairmt_opt.aggregate_violations`; ``phi`` is differentiable (Danskin, ``w``
        held fixed) when asked, else a detached value."""
        pr = present.numpy()
        w, value = self._np_waterfill(psi.detach().numpy().astype(np.float64), pr)
        wt = torch.from_numpy(w).to(psi.dtype)
        if differentiable:
            k = max(int(pr.sum()), 1)
            reg = 0.5 * self.mu * float(np.sum((w[pr] - 1.0 / k) ** 2))
            return wt, (wt * psi).sum() - reg, None
        return wt, torch.tensor(value, dtype=psi.dtype), None

    def _raise_nonfinite(self, values: Any, what: str) -> None:
        """Raise ``ValueError`` naming the tasks whose entry of ``values`` (``(T,)`` tensor or
        array, known not to be all finite) is NaN or inf."""
        vals = values.tolist()
        bad = [t.name for t, v in zip(self.tasks, vals) if not math.isfinite(v)]
        raise ValueError(f"task(s) {bad}: {what} is NaN or inf")

    def _head_qp(self, R: Any, r_phi: Any, eta: Any) -> tuple[Any, Any]:
        r""":math:`K = RR^\top`, :math:`b = \eta R r_\Phi` (torch tensors or NumPy arrays); with
        ``check_inputs`` through :func:`fairmt_opt.head_aware_qp` (finiteness checks), else the
        same formulas directly."""
        if self.check_inputs:
            qp = head_aware_qp(R, r_phi, eta, check_finite=True)
            return qp.K, qp.b
        K = R @ R.T
        return 0.5 * (K + K.T), eta * (R @ r_phi)

    def _np_waterfill(self, p: np.ndarray, pr: np.ndarray) -> tuple[np.ndarray, float]:
        """AHFDA weights (zeros for absent tasks) and the value Φ over the present tasks."""
        full = bool(pr.all())
        idx = None if full else np.flatnonzero(pr)
        w = np.zeros(p.shape[0])
        value = 0.0
        if full or (idx is not None and idx.size):
            res = aggregate_violations(p if idx is None else p[idx], self.mu)
            if idx is None:
                w = np.array(res.weights, dtype=np.float64)
            else:
                w[idx] = res.weights
            value = float(res.value)
        return w, value

    def _logit_grads(self, scalar: torch.Tensor, zs: list[torch.Tensor], *,
                     retain: bool = True) -> list[torch.Tensor]:
        if not scalar.requires_grad:
            return [torch.zeros_like(z) for z in zs]
        gs = torch.autograd.grad(scalar, zs, retain_graph=retain, allow_unused=True)
        return _zeros_like_list(gs, zs)

    @staticmethod
    def _is_linear(head: Any, h: torch.Tensor) -> bool:
        return isinstance(head, nn.Linear) and head.in_features == h.shape[1]

    def _through_heads(self, h: torch.Tensor, zs: list[torch.Tensor], deltas: list[torch.Tensor],
                       heads: Sequence[Any] | None, *, per_sample: bool) -> torch.Tensor:
        """Per task, the vector-Jacobian product of ``delta_t`` through head t to ``h``,
        stacked: summed over samples (``per_sample=False``, shape ``(T, d)``) or not
        (``(T, N, d)``). All ``nn.Linear`` heads together in a few batched products."""
        T, (N, d) = len(zs), h.shape
        shape = (T, d) if not per_sample else (T, N, d)
        out = torch.zeros(shape, dtype=h.dtype, device=h.device)
        lin = [t for t in range(T) if heads is not None and self._is_linear(heads[t], h)]
        if lin:
            assert heads is not None
            D = torch.cat([_cols(deltas[t], N) for t in lin], 1).to(h.dtype)  # (N, ΣC)
            A = torch.cat([heads[t].weight for t in lin], 0).detach().to(h.dtype)  # (ΣC, d)
            sizes = [int(heads[t].weight.shape[0]) for t in lin]
            dev = str(h.device)
            seg = _index(tuple(i for i, c in enumerate(sizes) for _ in range(c)), dev)
            pos = _index(tuple(lin), dev)
            if not per_sample:
                rows = D.sum(0)[:, None] * A
                part = torch.zeros(len(lin), d, dtype=h.dtype, device=h.device)
                out = out.index_copy(0, pos, part.index_add(0, seg, rows))
            else:
                rows = D[:, :, None] * A[None]  # (N, ΣC, d)
                part = torch.zeros(N, len(lin), d, dtype=h.dtype, device=h.device)
                out = out.index_copy(0, pos, part.index_add(1, seg, rows).transpose(0, 1))
        for t in range(T):
            if t in lin:
                continue
            if not h.requires_grad:
                raise ValueError(
                    f"task {self.tasks[t].name!r}: a non-linear head needs h in the autograd "
                    "graph (h.requires_grad) for the autograd directions"
                )
            g = torch.autograd.grad(zs[t], h, grad_outputs=deltas[t], retain_graph=True,
                                    allow_unused=True)[0]
            if g is not None:
                out[t] = g.sum(0) if not per_sample else g
        return out

    def _qp_data(self, h: torch.Tensor, outputs: list[torch.Tensor], losses: torch.Tensor,
                 deltas: list[torch.Tensor], dphi: list[torch.Tensor] | None,
                 heads: Sequence[Any] | None, eta: torch.Tensor, W: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                            torch.Tensor | None]:
        red = self._reducer
        T = len(self.tasks)
        dtype = h.dtype
        R: torch.Tensor | None = None
        r_phi: torch.Tensor | None = None
        if self.proxy == "full":
            params = [p for p in self.shared_parameters or [] if p.requires_grad]

            def flat(gs: Sequence[torch.Tensor | None]) -> torch.Tensor:
                return torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                                  for g, p in zip(gs, params)]).to(dtype)

            rows = []
            for t in range(T):
                if not outputs[t].requires_grad:
                    rows.append(flat([None] * len(params)))
                    continue
                rows.append(flat(torch.autograd.grad(outputs[t], params, grad_outputs=deltas[t],
                                                     retain_graph=True, allow_unused=True)))
            G = red.sum(torch.stack(rows)) / W
            live = [(z, g) for z, g in zip(outputs, dphi or []) if z.requires_grad]
            if live:
                gphi = red.sum(flat(torch.autograd.grad(
                    [z for z, _ in live], params, grad_outputs=[g for _, g in live],
                    retain_graph=True, allow_unused=True))) / W
            else:
                gphi = torch.zeros_like(G[0])
            qp = head_aware_qp(G, gphi, eta, check_finite=self.check_inputs)
            return qp.K, qp.b, None, None
        if self.proxy == "head":
            R = red.sum(self._through_heads(h, outputs, deltas, heads, per_sample=False)) / W
            if dphi is not None:
                r_phi = red.sum(self._through_heads(
                    h, outputs, dphi, heads, per_sample=False).sum(0)) / W
            else:
                r_phi = torch.zeros(h.shape[1], dtype=dtype, device=h.device)
            qp = head_aware_qp(R, r_phi, eta, check_finite=self.check_inputs)
            return qp.K, qp.b, R, (r_phi if dphi is not None else None)
        # rep (MGDA-UB): Gram of the per-task gradients w.r.t. the whole batch of h
        G = self._through_heads(h, outputs, deltas, heads, per_sample=True).reshape(T, -1)
        if dphi is not None:
            gphi = self._through_heads(h, outputs, dphi, heads, per_sample=True)
            gphi = gphi.sum(0).reshape(-1)
        else:
            gphi = torch.zeros_like(G[0])
        if G.shape[1] == 0:  # an empty batch on this rank: no direction
            K0 = torch.zeros(T, T, dtype=dtype, device=h.device)
            b0 = torch.zeros(T, dtype=dtype, device=h.device)
        else:
            qp = head_aware_qp(G, gphi, eta, check_finite=self.check_inputs)
            K0, b0 = qp.K, qp.b
        K = red.sum(K0) / (W * W)
        b = red.sum(b0) / (W * W)
        return K, b, None, None

    def _normalize(self, K: torch.Tensor, b: torch.Tensor, losses: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.normalization == "none":
            return K, b
        if _numpy_ok(K) and self.qp_method in _HOST_QP and not K.requires_grad:
            # the same elementwise IEEE operations in NumPy (cheaper on T x T arrays)
            Kn, bn = self._np_normalize(K.numpy(), b.numpy(),
                                        losses.detach().to(K.dtype).numpy())
            return torch.from_numpy(Kn), torch.from_numpy(bn)
        norms = torch.sqrt(torch.diagonal(K).clamp(min=0.0))
        ld = losses.detach().to(K.dtype)
        if self.normalization == "l2":
            n = norms
        elif self.normalization == "loss":
            n = ld
        else:
            n = ld * norms
        n = torch.where(n > 0, n, torch.ones_like(n))
        inv = 1.0 / n
        return K * (inv[:, None] * inv[None, :]), b * inv  # stays exactly symmetric

    def _np_normalize(self, Kn: np.ndarray, bn: np.ndarray, lv: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        if self.normalization == "none":
            return Kn, bn
        nn_ = np.sqrt(np.maximum(np.diagonal(Kn), 0.0))
        if self.normalization != "l2":
            nn_ = lv if self.normalization == "loss" else lv * nn_
        nn_ = np.where(nn_ > 0, nn_, np.ones_like(nn_))
        iv = 1.0 / nn_
        return Kn * (iv[:, None] * iv[None, :]), bn * iv  # stays exactly symmetric

    def _np_solve(self, Kh: np.ndarray, bh: np.ndarray, ph: np.ndarray, kw: dict[str, Any]
                  ) -> tuple[np.ndarray, Any, Any]:
        """The host QP over the present tasks (float64 NumPy data); absent tasks get 0."""
        T = Kh.shape[0]
        everyone = bool(ph.all())
        idx = tuple(range(T)) if everyone else tuple(int(i) for i in np.flatnonzero(ph))
        alpha = np.zeros(T)
        res = None
        cert = None
        if len(idx) == 1:
            alpha[idx[0]] = 1.0
        elif len(idx) > 1:
            Kp, bp = (Kh, bh) if everyone else (Kh[np.ix_(idx, idx)], bh[list(idx)])
            Kp = 0.5 * (Kp + Kp.T)
            if self.warm_start and self._warm is not None and self._warm[0] == idx:
                kw["warm_start"] = self._warm[1]
            res = solve_simplex_qp(Kp, bp, method=self.qp_method,
                                   check_input=self.check_inputs, **kw)
            ap = np.asarray(res.x, dtype=np.float64)
            if everyone:
                alpha = ap.copy()
            else:
                alpha[list(idx)] = ap
            if self.warm_start:
                self._warm = (idx, ap.copy())
            if self.certify:
                cert = (Kp, bp, ap)
        return alpha, res, cert

    def _qp_options(self) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if self.qp_tol is not None:
            kw["tol"] = self.qp_tol
        if self.qp_max_iter is not None:
            kw["max_iter"] = self.qp_max_iter
        return kw

    def _solve(self, K: torch.Tensor, b: torch.Tensor, present: torch.Tensor
               ) -> tuple[torch.Tensor, Any, Any]:
        T = K.shape[0]
        res: Any
        cert: Any
        kw = self._qp_options()
        if self.qp_method == "apg":
            # absent tasks: zero rows of K (their directions vanish) and a cost that keeps
            # them out of the solution, all on the device
            big = 1.0 + K.abs().max() + b.abs().max()
            bb = torch.where(present, b, big)
            if self.warm_start and self._apg_warm is not None:
                kw["warm_start"] = self._apg_warm
            res = solve_simplex_qp(K, bb, method="apg", check_input=self.check_inputs, **kw)
            x = torch.as_tensor(res.x).to(device=K.device, dtype=K.dtype)
            x = x * present.to(x.dtype)
            x = x / x.sum().clamp(min=torch.finfo(x.dtype).tiny)
            if self.warm_start:
                self._apg_warm = x.detach()
            cert = (K.detach(), bb.detach(), x.detach()) if self.certify else None
            return x, res, cert
        if _numpy_ok(K):  # read the CPU tensors directly
            Kh = K.detach().numpy().astype(np.float64)
            bh = b.detach().numpy().astype(np.float64)
            ph = present.numpy()
        else:
            packed = torch.cat([K, b[:, None], present.to(K.dtype)[:, None]], 1)
            host = packed.detach().to("cpu", torch.float64).numpy()  # the one copy to the host
            Kh, bh, ph = host[:, :T], host[:, T], host[:, T + 1] > 0.5
        alpha, res, cert = self._np_solve(Kh, bh, ph, kw)
        return torch.as_tensor(alpha, dtype=K.dtype).to(K.device), res, cert

