r"""Additive sufficient statistics per group (and class) of one task: soft and hard.

Every group rate, group score and evaluation metric of this package is a function of sums
over samples, so a batch (or a dataset split over processes) is summarised once by these sums,
which add across shards exactly like the samples they summarise.

For a task with :math:`K` one-vs-rest columns (:math:`K = 1` for detection, :math:`K = C` for
classification), samples :math:`i`, labels mask :math:`m_i \in \{0, 1\}`, groups :math:`a_i` and
targets :math:`y_{ik} \in \{0, 1\}`:

.. math::

    \mathrm{tp}_{gk} = \sum_i m_i [a_i = g]\, p_{ik}\, y_{ik}, \quad
    \mathrm{pos}_{gk} = \sum_i m_i [a_i = g]\, y_{ik}, \quad
    \mathrm{fp}_{gk} = \sum_i m_i [a_i = g]\, p_{ik} (1 - y_{ik}), \quad
    \mathrm{neg}_{gk} = \sum_i m_i [a_i = g] (1 - y_{ik}),

with :math:`p_{ik} = \sigma(z_i/\tau)` (detection) or :math:`\mathrm{softmax}(z_i/\tau)_k`
(classification) for the soft statistics, and :math:`p_{ik} = [\hat y_i = k]` (a 0/1 prediction)
for the hard ones. Regression keeps, per group, :math:`n_g = \sum_i m_i [a_i = g]` and the sums of
:math:`|\hat y - y|`, :math:`(\hat y - y)^2`, :math:`\hat y`, :math:`y`, :math:`\hat y^2`,
:math:`y^2` and :math:`\hat y y` over the labelled samples of the group (enough for MAE, MSE, RMSE
and Lin's concordance correlation).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from .._utils.array import Array, device_of, is_torch
from .._utils.validation import check_positive
from ._inputs import check_inputs
from ._moments import MOMENT_KEYS, merge_moments, regression_scores
from ._strata import merge_strata
from ._tasks import Task, TaskKind
from ._weights import check_sample_weight

__all__ = ["HardStats", "SoftStats", "check_sample_weight", "regression_scores", "soft_stats"]

CONFUSION_KEYS = ("tp", "pos", "fp", "neg")
REGRESSION_KEYS = ("n", "abs_err", "sq_err", "pred", "target", "pred_sq", "target_sq", "cross")
STRATA_KEYS = ("strata_count", "strata_pos")

_S = TypeVar("_S", bound="_Sums")


@dataclass(frozen=True, repr=False)
class _Sums:
    kind: TaskKind
    num_groups: int
    num_classes: int
    sums: Mapping[str, Array]

    _extra_keys: ClassVar[tuple[str, ...]] = ()
    _regression_extra: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("detection", "classification", "regression"):
            raise ValueError(f"kind must be detection, classification or regression, "
                             f"got {self.kind!r}")
        need = REGRESSION_KEYS if self.kind == "regression" else CONFUSION_KEYS
        if self.kind == "regression":
            need = (*need, *(k for k in self._regression_extra if k not in need))
        missing = [k for k in (*need, *self._extra_keys) if k not in self.sums]
        if missing:
            raise ValueError(
                f"{type(self).__name__} of a {self.kind} task needs the sums {list(need)}; "
                f"missing {missing}"
            )
        G, K = self.num_groups, self.num_classes
        for k in need:
            want = (G,) if self.kind == "regression" else (G, K)
            if tuple(self.sums[k].shape) != want:
                raise ValueError(
                    f"{type(self).__name__}: {k!r} must have shape {want}, "
                    f"got {tuple(self.sums[k].shape)}"
                )

    def __getitem__(self, key: str) -> Array:
        return self.sums[key]

    def keys(self) -> tuple[str, ...]:
        return tuple(self.sums)

    def map(self: _S, fn: Callable[[Array], Array]) -> _S:
        """Apply ``fn`` to every array (an ``all_reduce``, ``.detach()``, ``.to(device)``) and
        return a new object of the same type."""
        return dataclasses.replace(self, sums={k: fn(v) for k, v in self.sums.items()})

    def __add__(self: _S, other: Any) -> _S:
        if type(other) is not type(self):
            return NotImplemented
        if (self.kind, self.num_groups, self.num_classes) != (
            other.kind,
            other.num_groups,
            other.num_classes,
        ) or set(self.sums) != set(other.sums):
            raise ValueError(
                f"cannot add statistics of a {self.kind} task with {self.num_groups} groups and "
                f"{self.num_classes} classes to those of a {other.kind} task with "
                f"{other.num_groups} groups and {other.num_classes} classes "
                f"(keys {sorted(self.sums)} vs {sorted(other.sums)})"
            )
        return self._combine(other)

    def _combine(self: _S, other: _S) -> _S:
        out = {}
        for k, v in self.sums.items():
            w = other.sums[k]
            if tuple(v.shape) != tuple(w.shape):
                raise ValueError(
                    f"cannot add statistics: {k!r} has shape {tuple(v.shape)} vs {tuple(w.shape)}"
                    " (pass the same num_groups / num_strata to every shard)"
                )
            out[k] = v + w
        return dataclasses.replace(self, sums=out)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, int) and other == 0:  # sum(shards)
            return self
        return NotImplemented

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.sums.items())
        if self.kind == "regression":
            total = self.sums["n"]
        else:
            total = self.sums["pos"][:, 0] + self.sums["neg"][:, 0]
        labelled = float(total.sum()) if hasattr(total, "sum") else float(np.sum(total))
        return (
            f"{type(self).__name__}(kind={self.kind!r}, num_groups={self.num_groups}, "
            f"num_classes={self.num_classes}, labelled={labelled:g}, sums=[{shapes}])"
        )


@dataclass(frozen=True, repr=False)
class SoftStats(_Sums):
    r"""Additive soft statistics of one task (differentiable when built from torch tensors).

    ``sums`` maps names to arrays: detection and classification hold ``tp``, ``pos``, ``fp``,
    ``neg`` of shape ``(num_groups, K)`` (``K = 1`` for detection, ``C`` for classification);
    regression holds ``n``, ``abs_err``, ``sq_err``, ``pred``, ``target``, ``pred_sq``,
    ``target_sq``, ``cross`` of shape ``(num_groups,)``. ``a + b`` sums two shards; ``map(fn)``
    applies ``fn`` to every array (e.g. ``torch.distributed.all_reduce`` on a copy).

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness import Task, soft_stats
    >>> t = Task("y", "detection")
    >>> a = soft_stats(t, np.array([0.0, 1.0]), np.array([1, 0]), None, np.array([0, 1]), 2)
    >>> b = soft_stats(t, np.array([2.0]), np.array([1]), None, np.array([1]), 2)
    >>> a + b  # doctest: +NORMALIZE_WHITESPACE
    SoftStats(kind='detection', num_groups=2, num_classes=1, labelled=3,
              sums=[tp(2, 1), pos(2, 1), fp(2, 1), neg(2, 1)])
    >>> (a + b).map(lambda x: 2 * x)["pos"].ravel()
    array([2., 2.])

    Regression sums are centred at ``shift`` (the mean of the labelled targets unless
    given): ``a + b`` moves the second shard's sums to the first one's shift exactly.
    """

    shift: float | None = None

    def _combine(self, other: SoftStats) -> SoftStats:
        if self.kind != "regression" or other.shift == self.shift:
            return super()._combine(other)
        d = float(other.shift or 0.0) - float(self.shift or 0.0)
        o = dict(other.sums)
        n, p, t = o["n"], o["pred"], o["target"]
        # x - c_self = (x - c_other) + d, summed and squared exactly
        moved = dict(o, pred=p + n * d, target=t + n * d,
                     pred_sq=o["pred_sq"] + 2 * d * p + n * (d * d),
                     target_sq=o["target_sq"] + 2 * d * t + n * (d * d),
                     cross=o["cross"] + d * (p + t) + n * (d * d))
        return super()._combine(dataclasses.replace(other, sums=moved, shift=self.shift))


@dataclass(frozen=True, repr=False)
class HardStats(_Sums):
    r"""Additive hard counts of one task (float64 NumPy arrays holding exact integers for the
    counts; real sums for regression).

    Holds the keys of :class:`SoftStats` computed with 0/1 predictions (logit :math:`> 0` for
    detection, argmax for classification) plus, for conditional statistical parity,
    ``strata_count`` of shape ``(S, num_groups)`` (labelled samples per stratum and group) and
    ``strata_pos`` of shape ``(S, num_groups, K)`` (positive predictions; regression counts a
    prediction above ``train_median``) for the :math:`S` strata present, whose codes are
    ``strata_ids`` (sorted; memory bounded by the strata present, see
    :mod:`fairmt_opt.fairness._strata`) out of ``num_strata``.

    Regression also holds the centred, scaled moments of :mod:`fairmt_opt.fairness._moments`
    (``scale``, ``vmin``, ``vmax``, ``pred_mean``, ``pred_mean_lo``, ``target_mean``,
    ``target_mean_lo``, ``err_s``, ``abs_err_s``, ``sq_err_s``, ``pred_m2``, ``target_m2``,
    ``cross_m2``), from which every regression score
    is read (:func:`regression_scores`): exact at any location and finite magnitude. The raw
    sums ``pred_sq``, ``target_sq``, ``cross`` (and unscaled ``abs_err``, ``sq_err``, ``pred``,
    ``target``) are kept for the soft statistics' layout; they may overflow (to inf) for
    predictions beyond about :math:`10^{154}` and carry the one-pass cancellation, so no score
    should be formed from them.

    ``a + b`` combines two shards: counts and sums add, the moments combine by Chan's update,
    the strata by the union of their codes (``num_strata`` must agree).
    """

    strata_ids: Any = None
    num_strata: int = 1

    _extra_keys: ClassVar[tuple[str, ...]] = STRATA_KEYS
    _regression_extra: ClassVar[tuple[str, ...]] = MOMENT_KEYS

    def __post_init__(self) -> None:
        super().__post_init__()
        S = int(np.shape(self.sums["strata_count"])[0])
        if self.strata_ids is None:
            object.__setattr__(self, "strata_ids", np.arange(S, dtype=np.int64))
        ids = np.asarray(self.strata_ids)
        G, K = self.num_groups, self.num_classes
        if ids.shape != (S,) or tuple(np.shape(self.sums["strata_count"])) != (S, G) or tuple(
                np.shape(self.sums["strata_pos"])) != (S, G, K):
            raise ValueError(
                f"HardStats: strata_ids {ids.shape}, strata_count "
                f"{tuple(np.shape(self.sums['strata_count']))} and strata_pos "
                f"{tuple(np.shape(self.sums['strata_pos']))} must have shapes (S,), (S, {G}) "
                f"and (S, {G}, {K})"
            )

    def _combine(self, other: HardStats) -> HardStats:
        if self.num_strata != other.num_strata:
            raise ValueError(
                f"cannot add statistics over {self.num_strata} strata to statistics over "
                f"{other.num_strata} (pass the same num_strata to every shard)"
            )
        out: dict[str, Array] = {}
        plain = [k for k in self.sums if k not in STRATA_KEYS and not (
            self.kind == "regression" and k in MOMENT_KEYS)]
        for k in plain:
            out[k] = self.sums[k] + other.sums[k]
        if self.kind == "regression":
            out.update(merge_moments(self.sums, other.sums))
        ids, count, pos = merge_strata(
            (np.asarray(self.strata_ids), self.sums["strata_count"], self.sums["strata_pos"]),
            (np.asarray(other.strata_ids), other.sums["strata_count"], other.sums["strata_pos"]))
        out["strata_count"], out["strata_pos"] = count, pos
        return dataclasses.replace(self, sums=out, strata_ids=ids)


# ----------------------------------------------------------------------------- the sums
#
# Every function below works on a stack of k tasks of one kind at once (a task axis after the
# sample axis): the single-task statistics are the case k = 1, and the torch layer calls the
# same functions on all tasks of one kind in one array operation.


def group_matrix(
    xp: Any, groups: Array, num_groups: int, dtype: Any, *, sample_weight: Array | None = None
) -> Array:
    r"""``(N, G)`` one-hot matrix :math:`[a_i = g]` of the group ids, or with ``sample_weight``
    the weighted matrix :math:`w_i [a_i = g]` (out-of-range ids give a zero row; no value is
    read back, so no host synchronisation).

    Every sum of :func:`confusion_sums` and :func:`regression_sums` is a product with this
    matrix, so the weights given here multiply each row's contribution to every count and every
    sum (scikit-learn's and fairlearn's ``sample_weight``): pass them here once, validated by
    :func:`check_sample_weight`. ``None`` (the training path) adds no array operation."""
    ar = xp.arange(num_groups, device=device_of(groups))
    Gm = xp.astype(xp.reshape(groups, (-1, 1)) == xp.reshape(ar, (1, -1)), dtype)
    if sample_weight is None:
        return Gm
    return Gm * xp.reshape(xp.astype(sample_weight, dtype), (-1, 1))


def class_indicator(xp: Any, kind: TaskKind, y: Array, K: int, dtype: Any) -> Array:
    """``(N, k, K)`` indicator :math:`y_{itc}` of the targets ``y`` (``(N, k)``, unlabelled
    entries already replaced by a valid value): the target itself for detection (K = 1),
    one-vs-rest :math:`[y = c]` for classification."""
    if kind == "detection":
        return xp.astype(y[..., None], dtype)
    ar = xp.reshape(xp.arange(K, device=device_of(y)), (1, 1, -1))
    return xp.astype(xp.astype(y, xp.int64)[..., None] == ar, dtype)


def soft_probabilities(xp: Any, kind: TaskKind, Z: Array, temperature: float) -> Array:
    r"""``(N, k, K)`` soft predictions: :math:`\sigma(z/\tau)` of ``(N, k)`` detection logits
    or :math:`\mathrm{softmax}(z/\tau)` over the last axis of ``(N, k, C)`` logits."""
    z = Z / temperature
    if kind == "detection":
        return _sigmoid(xp, z)[..., None]
    return _softmax(xp, z)


def _group_sums(xp: Any, Gm: Array, cols: Array) -> Array:
    r""":math:`\sum_i [a_i = g]\, x_{i\ldots}`: ``(G, ...)`` from ``cols`` ``(N, ...)``."""
    shape = tuple(cols.shape)
    flat = xp.reshape(cols, (shape[0], math.prod(shape[1:])))
    Gt = xp.matrix_transpose(Gm) if hasattr(xp, "matrix_transpose") else Gm.T
    return xp.reshape(Gt @ flat, (Gm.shape[1], *shape[1:]))


def confusion_sums(xp: Any, P: Array, Y: Array, M: Array, Gm: Array) -> dict[str, Array]:
    """``tp, pos, fp, neg`` of shape ``(k, G, K)`` from predictions ``P`` and target
    indicators ``Y`` (``(N, k, K)``), the label masks ``M`` (``(N, k)`` bool) and the group
    matrix ``Gm`` (``(N, G)``). Unlabelled entries are replaced by exact zeros before any
    arithmetic (their outputs and targets are never read)."""
    m = M[..., None]
    zero = xp.zeros_like(P)
    MP = xp.where(m, P, zero)
    MY = xp.where(m, Y, xp.zeros_like(Y))
    cols = xp.stack([MP * Y, MY, MP - MP * Y, xp.astype(m, P.dtype) - MY], axis=1)
    S = _group_sums(xp, Gm, cols)  # (G, 4, k, K)
    S = xp.permute_dims(S, (1, 2, 0, 3))  # (4, k, G, K)
    return {key: S[j, ...] for j, key in enumerate(CONFUSION_KEYS)}


def regression_shift(xp: Any, y: Array, M: Array, dtype: Any,
                     reduce: Callable[[Array], Array] | None = None) -> Array:
    r"""``(k,)`` the mean of the labelled targets of each task column (0 without labels),
    outside the autograd graph: the common shift :math:`c` about which
    :func:`regression_sums` takes its first and second moments. ``reduce`` (a sum over
    ranks) makes it the mean over every shard, so that the shards' sums share it. Cost
    :math:`O(N k)`."""
    Mf = xp.astype(M, dtype)
    t = xp.where(M, xp.astype(y, dtype), xp.zeros_like(Mf))
    st = xp.stack([xp.sum(t, axis=0), xp.sum(Mf, axis=0)])  # (2, k)
    if hasattr(st, "detach"):
        st = st.detach()
    if reduce is not None:
        st = reduce(st)
    return st[0, ...] / xp.where(st[1, ...] > 0, st[1, ...], xp.ones_like(st[1, ...]))


def regression_sums(xp: Any, pred: Array, y: Array, M: Array, Gm: Array,
                    shift: Array | None = None) -> dict[str, Array]:
    r"""The regression sums of the module docstring, shape ``(k, G)``, from predictions and
    targets ``(N, k)``, masks ``M`` and the group matrix ``Gm``. With ``shift`` :math:`c`
    (``(k,)``, see :func:`regression_shift`) ``pred``, ``target``, ``pred_sq``,
    ``target_sq`` and ``cross`` are the sums of :math:`\hat y - c` and :math:`y - c`
    (centred sums): the CCC, invariant to a common shift, is then free of the one-pass
    cancellation at large means (:math:`\sum \hat y^2 \approx N \mu^2` against a
    variance :math:`10^{24}` times smaller at :math:`\mu = 10^{12}`); ``abs_err`` and
    ``sq_err`` use :math:`\hat y - y` as it is."""
    zero = xp.zeros_like(pred)
    p = xp.where(M, pred, zero)
    t = xp.where(M, xp.astype(y, pred.dtype), zero)
    e = p - t
    if shift is not None:
        c = xp.astype(shift, pred.dtype)
        p = xp.where(M, pred - c, zero)
        t = xp.where(M, xp.astype(y, pred.dtype) - c, zero)
    cols = xp.stack(
        [xp.astype(M, pred.dtype), xp.abs(e), e * e, p, t, p * p, t * t, p * t], axis=1
    )  # (N, 8, k)
    S = xp.permute_dims(_group_sums(xp, Gm, cols), (1, 2, 0))  # (8, k, G)
    return {key: S[j, ...] for j, key in enumerate(REGRESSION_KEYS)}


def _sigmoid(xp: Any, x: Array) -> Array:
    if is_torch(x):
        import torch

        return torch.sigmoid(x)
    from scipy.special import expit

    return xp.asarray(expit(x))


def _softmax(xp: Any, x: Array) -> Array:
    if is_torch(x):
        import torch

        return torch.softmax(x, dim=-1)
    from scipy.special import softmax

    return xp.asarray(softmax(x, axis=-1))


def _single(sums: dict[str, Array]) -> dict[str, Array]:
    """The statistics of a stack of one task, without the task axis."""
    return {k: v[0, ...] for k, v in sums.items()}


# ----------------------------------------------------------------------------- soft


def soft_stats(
    task: Task,
    outputs: Array,
    targets: Array,
    mask: Array | None,
    groups: Array,
    num_groups: int,
    *,
    temperature: float = 1.0,
    validate: bool = True,
    sample_weight: Array | None = None,
    shift: float | None = None,
) -> SoftStats:
    r"""Soft (differentiable) additive statistics of one task, per group and class.

    Detection uses :math:`p_i = \sigma(z_i/\tau)`, classification
    :math:`p_{ik} = \mathrm{softmax}(z_i/\tau)_k` one-vs-rest for every class :math:`k`, and the
    sums of the module docstring (SPEC §2):

    .. math::

        \widetilde{\mathrm{TPR}}_{gk} = \frac{\sum_i m_i [a_i=g]\, p_{ik} y_{ik}}
                                             {\sum_i m_i [a_i=g]\, y_{ik}}, \qquad
        \widetilde{\mathrm{FPR}}_{gk} = \frac{\sum_i m_i [a_i=g]\, p_{ik} (1-y_{ik})}
                                             {\sum_i m_i [a_i=g] (1-y_{ik})}

    are formed later by :func:`violation_from_stats`. Regression sums do not use the
    temperature. Unlabelled samples contribute exact zeros (their outputs receive a zero
    gradient and their targets are never read, NaN included).

    Parameters
    ----------
    task : Task
    outputs, targets, mask, groups : arrays
        See :mod:`fairmt_opt.fairness` for the shapes; NumPy arrays or torch tensors (the
        statistics are differentiable with respect to torch ``outputs``). ``mask=None``
        means every sample is labelled.
    num_groups : int
        Number of groups :math:`|G| \geq 2` (fixed, so that shards have equal shapes).
    temperature : float, default 1
        :math:`\tau > 0` [choice of SPEC §2]; :math:`\tau \to 0` recovers the hard rates.
    validate : bool, default True
        Check the values (finite outputs, targets and groups in range). This reads the data,
        which synchronises a GPU; shapes are always checked.
    sample_weight : array of shape (N,), optional
        Finite nonnegative weights :math:`w_i`: every sum above becomes
        :math:`\sum_i w_i m_i [a_i = g] \ldots` (see :func:`check_sample_weight`); ``None``:
        every weight 1, with no extra array operation.
    shift : float, optional
        Regression: the common shift :math:`c` of the centred sums (``pred``, ``target``,
        ``pred_sq``, ``target_sq``, ``cross`` are sums of :math:`\hat y - c`, :math:`y - c`;
        see :func:`regression_sums`); ``None``: the mean of the labelled targets (one read
        of the data). ``a + b`` re-centres exactly when two shards' shifts differ; an
        all-reduce by ``map`` adds the sums as they are, so give every rank the same
        ``shift`` then (e.g. the mean of the training targets).

    Returns
    -------
    SoftStats

    Notes
    -----
    Cost :math:`O(N K |G|)` (one product with the one-hot group matrix).

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness import Task, soft_stats
    >>> s = soft_stats(Task("y", "detection"), np.array([0.0, 2.0, -2.0]), np.array([1, 1, 0]),
    ...                None, np.array([0, 1, 1]), 2)
    >>> s["tp"].ravel().round(3), s["pos"].ravel()
    (array([0.5  , 0.881]), array([1., 1.]))
    """
    tau = check_positive(temperature, "temperature")
    inp = check_inputs(
        task, outputs, targets, mask, groups, num_groups, validate=validate,
        float_outputs=is_torch(outputs),
    )
    xp = inp.xp
    dtype = inp.z.dtype
    w = check_sample_weight(sample_weight, int(inp.z.shape[0]), inp.z, validate=validate)
    Gm = group_matrix(xp, inp.g, inp.num_groups, dtype, sample_weight=w)
    M = xp.reshape(inp.m, (-1, 1))
    y = xp.reshape(inp.y, (-1, 1))
    c = None
    if task.kind == "regression":
        if shift is None:
            cs = regression_shift(xp, y, M, dtype)
            c = float(cs[0])
        else:
            c = float(shift)
            if not math.isfinite(c):
                raise ValueError(f"shift must be a finite number, got {shift!r}")
        sums = regression_sums(xp, inp.z, y, M, Gm,
                               shift=xp.asarray([c], dtype=dtype, device=device_of(inp.z)))
    else:
        Z = inp.z if task.kind == "detection" else inp.z[:, None, :]
        P = soft_probabilities(xp, task.kind, Z, tau)
        sums = confusion_sums(xp, P, class_indicator(xp, task.kind, y, task.out_dim, dtype),
                              M, Gm)
    sums = _single(sums)
    return SoftStats(task.kind, inp.num_groups, task.out_dim, sums, shift=c)
