r"""PyTorch binding: head-aware primal–dual training of multi-task models (SPEC §1, §5, §6).

:class:`FairMT` is composed of small parts, each usable on its own: :class:`TaskLosses`
(masked task losses, built-in or yours), :class:`FairnessConstraint` (ψ, Φ, w),
:mod:`~fairmt_opt.torch.proxies` (the QP data: head, rep = MGDA-UB, full = MGDA, uniform),
:class:`QPSolver` (α), :class:`fairmt_opt.DualAscent` (η) and :class:`FairMTState`
(everything that changes between steps). :func:`make_method` builds FairMT and the baselines
(:data:`METHODS`) from flat options; :class:`Trainer` is the one training loop, with evaluation
and safe checkpoints.
"""

from ._checks import check_batch
from .constraint import ConstraintValue, FairnessConstraint
from .fairmt import FairMT, FairMTRecord, FairMTStep
from .losses import MaskedLoss, TaskLosses, masked_task_loss
from .methods import METHODS, OPTIONS, make_method
from .proxies import FullProxy, HeadProxy, Proxy, RepresentationProxy, UniformProxy
from .qp import QPSolver, WarmStart
from .state import FairMTState
from .trainer import Batch, Trainer, as_batch

__all__ = [
    "METHODS",
    "OPTIONS",
    "Batch",
    "ConstraintValue",
    "FairMT",
    "FairMTRecord",
    "FairMTState",
    "FairMTStep",
    "FairnessConstraint",
    "FullProxy",
    "HeadProxy",
    "MaskedLoss",
    "Proxy",
    "QPSolver",
    "RepresentationProxy",
    "TaskLosses",
    "Trainer",
    "UniformProxy",
    "WarmStart",
    "as_batch",
    "check_batch",
    "make_method",
    "masked_task_loss",
]
