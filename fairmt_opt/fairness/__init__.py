r"""Group-fairness metrics for heterogeneous tasks under partial labels (SPEC §1–§3).

One task at a time, from per-sample arrays:

* ``outputs``: detection ``(N,)`` or ``(N, 1)`` logits; classification ``(N, C)`` logits;
  regression ``(N,)`` predictions;
* ``targets``: ``(N,)``; detection in {0, 1}, classification integers in ``[0, C)``,
  regression real; entries of unlabelled samples may hold anything (``-1``, NaN) and are
  never read;
* ``mask``: ``(N,)`` bool, ``True`` = labelled (``None``: all labelled);
* ``groups``: ``(N,)`` integers in ``[0, num_groups)``, ``num_groups >= 2``; for the
  evaluation (:func:`evaluate_task`, :func:`by_group`) and whenever ``num_groups=None``, any
  hashable labels (strings, booleans, categoricals, pandas Series) or several sensitive
  features (a DataFrame: intersectional groups), encoded by :func:`encode_groups`.

pandas Series and one-column DataFrames are accepted for every per-sample argument (pandas is
optional and never imported unless such objects are passed).

Layers of the package:

* additive sufficient statistics per group (and class): :func:`soft_stats` (sigmoid/softmax
  with temperature; differentiable for torch tensors) and :func:`hard_stats` (0/1 predictions,
  exact counts, strata for CSP); both add across shards (``a + b``) and map over their arrays
  (``.map(fn)``, e.g. an all-reduce);
* violations :math:`\psi_t` (AEOD, CAEOD, AEP with the stop-gradient best-group reference, or
  their symmetric counterparts): :func:`violation_from_stats`, :func:`soft_violation`, with the
  [choice] options of SPEC §2–§3 and :class:`RunningScale`;
* masked task losses: :func:`masked_loss` (binary cross-entropy, cross-entropy, squared or
  absolute error, unlabelled samples never read);
* evaluation: :func:`evaluate_task` (EOD, EO, KS, CSP, accuracy, F1, macro-F1, CCC, MAE,
  RMSE; ``output=``, ``pos_label=``, ``sample_weight=``, ``zero_division=``),
  :func:`metrics_from_stats`, :func:`ks_statistic`, :func:`evaluate_all` (every task);
* reports by group in the spirit of fairlearn's ``MetricFrame``: :func:`by_group`,
  :func:`by_group_all` (:class:`GroupReport`: ``overall``, ``by_group``, ``group_min``,
  ``group_max``, ``difference``, ``ratio``, ``equalized_odds``), and within the levels of
  control features :func:`by_group_controlled` (:class:`ControlledReport`); metric
  functions of one's own with their per-sample parameters :func:`by_group_metrics`.

Partial labels: unlabelled samples never count. A cell with an empty denominator (no
labelled positive of a group, a task without labels in the batch, a single group present) is
*empty*: it is left out of every reduction and reported (``ViolationResult.empty``), a
violation without any comparison is exactly 0 with a zero gradient, and an evaluation metric
with nothing left is an explicit NaN whose reason is recorded (``MetricReport.undefined``).

Everything is written against the array API (NumPy or torch); torch is imported only when
torch tensors are passed, so this package works without torch.
"""

from ._by_group import GroupReport, by_group, by_group_all, evaluate_all
from ._controlled import ControlledReport, by_group_controlled
from ._custom import by_group_metrics
from ._groups import GroupEncoding, encode_groups
from ._hard import hard_predictions, hard_stats
from ._losses import MaskedLoss, RegressionLoss, masked_loss
from ._metrics import MetricReport, evaluate_task, ks_statistic, metrics_from_stats
from ._stats import HardStats, SoftStats, soft_stats
from ._tasks import Task, TaskKind
from ._violation import (
    GroupReduction,
    RegressionScore,
    RunningScale,
    ViolationResult,
    group_rates,
    soft_violation,
    violation_from_stats,
)

__all__ = [
    "ControlledReport",
    "GroupEncoding",
    "GroupReduction",
    "GroupReport",
    "HardStats",
    "MaskedLoss",
    "MetricReport",
    "RegressionLoss",
    "RegressionScore",
    "RunningScale",
    "SoftStats",
    "Task",
    "TaskKind",
    "ViolationResult",
    "by_group",
    "by_group_all",
    "by_group_controlled",
    "by_group_metrics",
    "encode_groups",
    "evaluate_all",
    "evaluate_task",
    "group_rates",
    "hard_predictions",
    "hard_stats",
    "ks_statistic",
    "masked_loss",
    "metrics_from_stats",
    "soft_stats",
    "soft_violation",
    "violation_from_stats",
]
