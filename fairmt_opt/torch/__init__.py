r"""PyTorch binding: head-aware primal–dual training of multi-task models (SPEC §1, §5, §6).

The main object is :class:`FairMT`; :func:`make_method` builds it and the baselines
(:data:`METHODS`); :func:`masked_task_loss` is the masked task loss of SPEC §1;
:class:`Trainer` is a small training loop with evaluation and checkpoints.
"""

from ._fairmt import FairMT, FairMTRecord, FairMTStep
from ._losses import MaskedLoss, check_batch, masked_task_loss
from ._methods import METHODS, make_method
from .trainer import Batch, Trainer, as_batch

__all__ = [
    "METHODS",
    "Batch",
    "FairMT",
    "FairMTRecord",
    "FairMTStep",
    "MaskedLoss",
    "Trainer",
    "as_batch",
    "check_batch",
    "make_method",
    "masked_task_loss",
]
