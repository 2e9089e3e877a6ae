r"""The hard (evaluation) statistics of one task: 0/1, class or value predictions from the
outputs (:func:`hard_predictions`) and their sums per group, class and stratum
(:func:`hard_stats`, :class:`~fairmt_opt.fairness.HardStats`), with the sums of
:mod:`fairmt_opt.fairness._stats` applied to the indicator of the prediction.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .._utils.array import Array, is_torch
from ._inputs import check_inputs
from ._moments import centred_moments
from ._stats import (
    HardStats,
    _single,
    class_indicator,
    confusion_sums,
    group_matrix,
    regression_sums,
)
from ._strata import check_conditioning, strata_counts
from ._tasks import Task
from ._weights import check_sample_weight, weighted_median

__all__ = ["hard_predictions", "hard_stats"]


def hard_predictions(task: Task, outputs: Array) -> np.ndarray:
    """0/1 (detection: logit > 0), class index (classification: argmax, first on ties) or the
    prediction itself (regression), as a NumPy array.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, hard_predictions
    >>> hard_predictions(Task("y", "detection"), [0.3, 0.0, -2.0])
    array([1, 0, 0])
    >>> hard_predictions(Task("c", "classification", num_classes=3), [[0, 2, 2], [5, 1, 0]])
    array([1, 0])
    """
    if is_torch(outputs):
        outputs = outputs.detach().cpu().numpy()
    z = np.asarray(outputs, dtype=np.float64)
    if task.kind == "detection":
        return (z.reshape(-1) > 0).astype(np.int64)
    if task.kind == "classification":
        return np.argmax(z, axis=1)
    return z.reshape(-1)


def _to_numpy_any(x: Any) -> Any:
    if x is None:
        return None
    if is_torch(x):
        return x.detach().cpu().numpy()
    return x


def hard_stats(
    task: Task,
    outputs: Array,
    targets: Array,
    mask: Array | None,
    groups: Array,
    num_groups: int,
    *,
    conditioning: Array | None = None,
    num_strata: int | None = None,
    train_median: float | None = None,
    sample_weight: Array | None = None,
) -> HardStats:
    r"""Hard additive counts of one task (for evaluation), per group, class and stratum.

    The keys of :func:`soft_stats` with 0/1 predictions :math:`p_{ik} = [\hat y_i = k]`
    (:math:`\hat y_i = [z_i > 0]` for detection, :math:`\arg\max_k z_{ik}` for
    classification), plus ``strata_count`` :math:`n_{sg}` and ``strata_pos`` :math:`q_{sgk}`,
    the labelled samples and the positive predictions of group :math:`g` in stratum :math:`s` of
    ``conditioning`` (for the conditional statistical parity). Inputs are converted to float64
    NumPy arrays; counts are exact integers (below :math:`2^{53}`).

    Parameters
    ----------
    task, outputs, targets, mask, groups, num_groups
        As in :func:`soft_stats`.
    conditioning : array of int, optional
        Stratum id in ``[0, num_strata)`` of every sample (CSP, SPEC §3); ``None``: one
        stratum.
    num_strata : int, optional
        Number of strata; default ``max(conditioning) + 1``. Pass it explicitly when the
        statistics of several shards are to be added.
    train_median : float, optional
        Regression only: a prediction above it counts as positive for CSP [choice of SPEC §3].
        Default: the median of the labelled targets passed here (documented fallback when the
        training median is not known). The median of a shard is not that of the whole data:
        pass the threshold explicitly when the statistics of several shards are to be added.
        With ``sample_weight`` the default is the weighted median (that of the labelled targets
        each repeated :math:`w_i` times, for integer weights).
    sample_weight : array of shape (N,), optional
        Finite nonnegative weights :math:`w_i` (scikit-learn's and fairlearn's
        ``sample_weight``): a row's weight multiplies its contribution to every count and sum,
        the strata included, so integer weights equal repeated rows and a weight 0 equals a
        dropped row. ``None``: every weight 1.

    Returns
    -------
    HardStats

    Notes
    -----
    Cost :math:`O(N K |G|)`.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness import Task, hard_stats
    >>> s = hard_stats(Task("y", "detection"), [2.0, -1.0, 3.0, 0.5], [1, 1, 1, 0], None,
    ...                [0, 0, 1, 1], 2)
    >>> s["tp"].ravel(), s["pos"].ravel(), s["fp"].ravel(), s["neg"].ravel()
    (array([1., 1.]), array([2., 1.]), array([0., 1.]), array([0., 1.]))
    >>> s1 = hard_stats(Task("y", "detection"), [2.0, -1.0], [1, 1], None, [0, 0], 2)
    >>> s2 = hard_stats(Task("y", "detection"), [3.0, 0.5], [1, 0], None, [1, 1], 2)
    >>> bool(np.array_equal((s1 + s2)["tp"], s["tp"]))
    True
    """
    inp = check_inputs(
        task, _to_numpy_any(outputs), _to_numpy_any(targets), _to_numpy_any(mask),
        _to_numpy_any(groups), num_groups,
    )
    inp = dataclasses.replace(
        inp, z=np.asarray(inp.z, dtype=np.float64), y=np.asarray(inp.y, dtype=np.float64)
    )
    xp = inp.xp
    N = int(inp.z.shape[0])
    w = check_sample_weight(_to_numpy_any(sample_weight), N)
    Gm = group_matrix(xp, inp.g, inp.num_groups, np.float64, sample_weight=w)
    M = inp.m.reshape(-1, 1)
    y = inp.y.reshape(-1, 1)
    codes, S = check_conditioning(_to_numpy_any(conditioning), N, num_strata)
    pred = hard_predictions(task, inp.z)
    K = task.out_dim
    if task.kind == "regression":
        with np.errstate(over="ignore", invalid="ignore"):  # raw sums: see HardStats
            sums = _single(regression_sums(xp, inp.z, y, M, Gm))
        lab = inp.m
        sums.update(centred_moments(inp.z[lab, 0], inp.y[lab], None if w is None else w[lab],
                                    inp.g[lab], inp.num_groups))
        if train_median is None:
            med = weighted_median(inp.y[lab], None if w is None else w[lab])
        else:
            try:
                med = float(train_median)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"train_median must be a real number, got {train_median!r}"
                ) from exc
            if not math.isfinite(med):
                raise ValueError(f"train_median must be finite, got {med}")
        P = (pred > med).astype(np.float64).reshape(-1, 1)
    else:
        if task.kind == "detection":
            P = pred.astype(np.float64).reshape(-1, 1)
        else:
            P = (pred.reshape(-1, 1) == np.arange(K).reshape(1, -1)).astype(np.float64)
        sums = _single(confusion_sums(xp, P[:, None, :], class_indicator(
            xp, task.kind, y, K, np.float64), M, Gm))
    # the strata count labelled samples only, each with its weight
    lw = inp.m.astype(np.float64) if w is None else np.where(inp.m, w, 0.0)
    ids, sums["strata_count"], sums["strata_pos"] = strata_counts(
        codes, lw, inp.g, inp.num_groups, P)
    return HardStats(task.kind, inp.num_groups, K, sums, strata_ids=ids, num_strata=S)

