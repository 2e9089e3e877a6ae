"""Validation and normalisation of the per-sample inputs shared by the hard and soft metrics.

Conventions (one task, N samples):

* ``outputs``: detection ``(N,)`` or ``(N, 1)`` logits; classification ``(N, C)`` logits;
  regression ``(N,)`` or ``(N, 1)`` predictions;
* ``targets``: ``(N,)``; detection in {0, 1}, classification integers in ``[0, C)``, regression
  real; entries of unlabelled samples may hold anything (``-1``, NaN) and are never read;
* ``mask``: ``(N,)`` bool, ``True`` where the sample is labelled for this task (``None``: all);
* ``groups``: ``(N,)`` integers in ``[0, num_groups)``; with ``num_groups=None`` any hashable
  labels, or several sensitive features (:func:`~fairmt_opt.fairness.encode_groups`).

Arrays of one call must all be NumPy arrays (or lists, pandas Series, one-column DataFrames)
or all torch tensors on one device. pandas objects are converted by
:func:`~fairmt_opt.fairness._groups.as_values` (a missing value is an error naming the
argument).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._utils.array import Array, is_torch, namespace
from .._utils.validation import check_int, check_same_device
from ._finite import check_finite_rows
from ._groups import GroupEncoding, as_values, encode_groups, is_pandas
from ._tasks import Task

__all__ = ["Inputs", "binary_labels", "check_inputs", "resolve_pos_label"]


@dataclass(frozen=True)
class Inputs:
    """Normalised inputs: ``z`` (N, K) floating, ``y`` (N,) floating with unlabelled entries
    replaced by 0, ``m`` (N,) bool, ``g`` (N,) int64, in the namespace ``xp``; ``encoding``
    the labels of the group codes when they were encoded from labels (``None`` for codes)."""

    xp: Any
    z: Array
    y: Array
    m: Array
    g: Array
    num_groups: int
    encoding: GroupEncoding | None = None


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


def _distinct(values: np.ndarray) -> list[Any]:
    out: dict[Any, None] = {}
    for v in np.unique(values) if values.dtype.kind != "O" else values:
        out.setdefault(v.item() if isinstance(v, np.generic) else v, None)
    return list(out)


def resolve_pos_label(pos_label: Any, *labels: np.ndarray, name: str = "targets") -> Any:
    """The positive label of detection labels (the labelled entries of ``labels``).

    Default (``pos_label=None``), as scikit-learn's binary metrics: ``True`` for booleans, ``1``
    when the labels are a subset of {0, 1} or of {-1, 1}; other labels (strings, {1, 2}, ...)
    are ambiguous and raise, asking for ``pos_label``. An explicit ``pos_label`` must be one of
    the labels when two distinct labels occur; more than two distinct labels raise.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness._inputs import resolve_pos_label
    >>> resolve_pos_label(None, np.array([-1, 1, 1]))
    1
    >>> resolve_pos_label("yes", np.array(["no", "yes"]))
    'yes'
    """
    found: dict[Any, None] = {}
    for arr in labels:
        for v in _distinct(arr):
            found.setdefault(v, None)
    distinct = list(found)
    if len(distinct) > 2:
        raise ValueError(
            f"{name} of a detection task must be 0 or 1 on labelled samples (or two labels "
            f"with pos_label=), found {len(distinct)} labels: {distinct[:5]}"
        )
    if pos_label is not None:
        if len(distinct) == 2 and pos_label not in distinct:
            raise ValueError(f"pos_label={pos_label!r} is not one of the labels {distinct}")
        return pos_label
    if all(isinstance(v, bool | np.bool_) for v in distinct):
        return True
    numeric = all(isinstance(v, int | float | np.integer | np.floating)
                  and not isinstance(v, bool) for v in distinct)
    if numeric and (set(distinct) <= {0, 1} or set(distinct) <= {-1, 1}):
        return 1
    raise ValueError(
        f"{name} of a detection task must be 0 or 1 on labelled samples, or two labels with "
        f"pos_label= (the positive label): found the labels {sorted(distinct, key=repr)}; "
        "the default pos_label 1 applies to labels in {0, 1} or {-1, 1} only"
    )


def binary_labels(values: Any, mask: np.ndarray | None, pos_label: Any, *,
                  name: str = "targets", others: tuple[np.ndarray, ...] = ()) -> np.ndarray:
    """0/1 float64 NumPy vector ``[value == pos_label]`` of detection labels (strings,
    booleans, {-1, 1}, any two labels) after :func:`resolve_pos_label` on the labelled
    entries (and on ``others``, e.g. the labelled predicted labels); unlabelled entries are
    never read and give 0.

    Examples
    --------
    >>> from fairmt_opt.fairness._inputs import binary_labels
    >>> binary_labels(["a", "b", "b"], None, "b")
    array([0., 1., 1.])
    """
    v = as_values(values, name)
    if hasattr(v, "detach") and hasattr(v, "cpu"):
        v = v.detach().cpu().numpy()
    arr = np.asarray(v)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), got {arr.shape}")
    m = np.ones(arr.shape[0], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != arr.shape:
        raise ValueError(f"{name} must have shape ({m.shape[0]},) like the mask, got {arr.shape}")
    lab = arr[m]
    if lab.dtype.kind == "f" and not np.all(np.isfinite(lab)):
        raise ValueError(f"{name} contains NaN or inf on a labelled sample")
    pos = resolve_pos_label(pos_label, lab, *others, name=name)
    out = np.zeros(arr.shape[0], dtype=np.float64)
    if lab.dtype.kind in "biuf" and isinstance(pos, int | float | np.number):
        out[m] = lab == pos
    else:
        out[m] = np.fromiter((x == pos for x in lab.tolist()), dtype=bool, count=lab.shape[0])
    return out


def _zero_one(targets: np.ndarray, mask: Any) -> bool:
    """Whether the labelled entries of numeric NumPy ``targets`` all lie in {0, 1}."""
    t = np.asarray(targets)
    if mask is not None:
        m = np.asarray(mask.detach().cpu().numpy() if is_torch(mask) else mask) != 0
        if m.shape != t.shape:
            return True  # the shape check reports it
        t = t[m]
    return bool(np.all((t == 0) | (t == 1)))


def _is_numeric_array(x: Any) -> bool:
    dt = getattr(x, "dtype", None)
    if dt is None:
        return False
    if isinstance(dt, np.dtype):
        return dt.kind in "biuf"
    return is_torch(x)


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
    pos_label: Any = None,
) -> Inputs:
    """Check shapes (always) and values (when ``validate``) and normalise the inputs.

    ``num_groups=None`` infers the groups from the labels in ``groups`` (any hashable labels,
    or several sensitive features: :func:`~fairmt_opt.fairness.encode_groups`); an integer
    requires integer codes in ``[0, num_groups)``. Detection targets other than 0/1 (strings,
    booleans, {-1, 1}) are read as ``[target == pos_label]`` (:func:`resolve_pos_label`).
    pandas Series and one-column DataFrames are accepted for every argument.

    Raises ``ValueError`` naming the argument and the problem. Value checks (finite outputs,
    targets in range on labelled samples, group ids in range) read the data, which synchronises
    a GPU with its host; shape and dtype checks never do.
    """
    if not isinstance(task, Task):
        raise ValueError(f"task must be a Task, got {type(task).__name__}")
    if outputs is None:
        raise ValueError("outputs must be an array, got None")
    outputs = as_values(outputs, "outputs")
    if not (hasattr(outputs, "shape") and hasattr(outputs, "dtype")):
        try:
            outputs = np.asarray(outputs, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"outputs must be a numeric array: {exc}") from exc
    if targets is None:
        raise ValueError("targets must be an array, got None")
    if groups is None:
        raise ValueError("groups must be an array, got None")
    encoding = None
    if num_groups is None or not _is_numeric_array(groups) or is_pandas(groups):
        encoding = encode_groups(groups, num_groups)
        groups = encoding.codes
        G = encoding.num_groups
    else:
        G = check_int(num_groups, "num_groups", minimum=2)
    targets = as_values(targets, "targets")
    if mask is not None:
        mask = as_values(mask, "mask")
    if task.kind == "detection" and not is_torch(targets) and (
        pos_label is not None or not _is_numeric_array(targets)
        or targets.dtype == np.bool_ or (validate and not _zero_one(targets, mask))
    ):
        m_np = None if mask is None else np.asarray(
            mask.detach().cpu().numpy() if is_torch(mask) else mask) != 0
        targets = binary_labels(targets, m_np, pos_label)
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
                raise ValueError(
                    "targets of a detection task must be 0 or 1 on labelled samples (for "
                    "other labels, e.g. {-1, 1} or strings, pass pos_label=)"
                )
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
    return Inputs(xp=xp, z=z, y=y, m=m, g=g, num_groups=G, encoding=encoding)


def _device(x: Array) -> Any:
    from .._utils.array import device_of

    return device_of(x)


OUTPUT_KINDS = ("logits", "probabilities", "labels")


def _warn_kind(task: Task, what: str, instead: str) -> None:
    import warnings

    warnings.warn(
        f"outputs of {task.kind} task {task.name!r} {what}, but they are read as logits "
        f"(the default); pass output={instead} if they are not logits, or output='logits' to "
        "declare that they are",
        UserWarning,
        stacklevel=5,
    )


def hard_outputs(
    task: Task, outputs: Any, mask: Any, output: str | None = None, *, pos_label: Any = None,
    targets: Any = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    r"""Outputs of a declared kind as logits for the hard statistics, and the scores for KS.

    ``output="logits"`` takes them as they are (regression: the predictions). ``None`` (the
    default: logits, not declared) does the same and warns (``UserWarning`` naming
    ``output=``) when the labelled outputs of a detection task all
    lie in [0, 1] (probabilities or 0/1 labels, which a logit threshold at 0 would misread) or
    when every row of a classification task is a probability vector (rows in [0, 1] summing to
    1, one-hot labels included). ``"probabilities"``: detection :math:`p \in [0, 1]`, predicted
    positive when :math:`p > 0.5` (the logit threshold :math:`z > 0`); classification rows of
    probabilities (argmax). ``"labels"``: detection labels read with ``pos_label`` like the
    targets (:func:`binary_labels`), classification class indices in ``[0, C)`` of shape
    ``(N,)``. Returns float64 NumPy ``z`` whose hard predictions (:math:`[z > 0]`, argmax)
    are those declared, and for detection the KS scores (:math:`\sigma(z)`, :math:`p`, or the
    0/1 labels). Unlabelled rows are never read for the checks. Cost :math:`O(N K)`.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task
    >>> from fairmt_opt.fairness._inputs import hard_outputs
    >>> z, s = hard_outputs(Task("y", "detection"), [0.2, 0.9], None, "probabilities")
    >>> z, s
    (array([-1.,  1.]), array([0.2, 0.9]))
    """
    declared = output is not None
    output = "logits" if output is None else output
    if output not in OUTPUT_KINDS:
        raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {output!r}")
    outputs = as_values(outputs, "outputs")
    if hasattr(outputs, "detach") and hasattr(outputs, "cpu"):
        outputs = outputs.detach().cpu().numpy()
    m = None
    if mask is not None:
        mask = as_values(mask, "mask")
        m = np.asarray(mask.detach().cpu().numpy() if is_torch(mask) else mask) != 0
    if task.kind == "detection" and output == "labels":
        tl: tuple[np.ndarray, ...] = ()
        if targets is not None and pos_label is None:
            t = as_values(targets, "targets")
            t = np.asarray(t.detach().cpu().numpy() if is_torch(t) else t)
            tl = (t.reshape(-1)[m] if m is not None and m.shape == t.reshape(-1).shape
                  else t.reshape(-1),)
        b = binary_labels(outputs, m, pos_label, name="outputs", others=tl)
        return 2.0 * b - 1.0, b
    if task.kind == "classification" and output == "labels":
        lab = np.asarray(outputs)
        if lab.ndim != 1:
            raise ValueError(f"outputs of classification task {task.name!r} with "
                             f"output='labels' must have shape (N,), got {lab.shape}")
        read = lab if m is None or m.shape != lab.shape else lab[m]
        if read.dtype.kind not in "biuf" or np.any((read != np.floor(read)) | (read < 0)
                                                   | (read >= task.out_dim)):
            raise ValueError(f"outputs of classification task {task.name!r} with "
                             f"output='labels' must be class indices in [0, {task.out_dim})")
        safe = np.where(m, lab, 0) if m is not None and m.shape == lab.shape else lab
        z = (safe.astype(np.int64).reshape(-1, 1) == np.arange(task.out_dim)).astype(np.float64)
        return z, None
    try:
        z = np.asarray(outputs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"outputs must be a numeric array: {exc}") from exc
    if z.ndim:
        # every row, labelled or not: the rule of the torch batch check (module _finite)
        check_finite_rows(z, "outputs", task=task.name,
                          masks=() if m is None or m.shape != z.shape[:1] else
                          [(task.name, m)])
    if task.kind == "regression":
        if output != "logits":
            raise ValueError(f"output={output!r} applies to detection and classification; the "
                             f"outputs of regression task {task.name!r} are its predictions "
                             "(output='logits')")
        return z, None
    if task.kind == "classification" and z.ndim == 1:
        raise ValueError(f"outputs of classification task {task.name!r} must have shape "
                         f"(N, {task.out_dim}); for predicted class indices pass "
                         "output='labels'")
    rows = z if m is None or z.shape[:1] != m.shape else z[m]
    if task.kind == "detection":
        flat = rows.reshape(-1)
        in01 = bool(flat.size) and bool(np.all((flat >= 0) & (flat <= 1)))
        if output == "probabilities":
            if not np.all((flat >= 0) & (flat <= 1)):
                raise ValueError(f"outputs of detection task {task.name!r} with "
                                 "output='probabilities' must lie in [0, 1]")
            p = z.reshape(-1)
            return np.where(p > 0.5, 1.0, -1.0), p
        if in01 and not declared:
            if np.all((flat == 0) | (flat == 1)):
                _warn_kind(task, "are all 0 or 1 (they look like predicted labels)",
                           "'labels'")
            else:
                _warn_kind(task, "all lie in [0, 1] (they look like probabilities)",
                           "'probabilities'")
        from scipy.special import expit

        return z, expit(z.reshape(-1))
    prob_rows = (rows.ndim == 2 and bool(rows.shape[0])
                 and bool(np.all((rows >= 0) & (rows <= 1)))
                 and bool(np.all(np.abs(rows.sum(axis=1) - 1) <= 1e-6)))
    if output == "probabilities":
        if not prob_rows and rows.shape[0]:
            raise ValueError(f"outputs of classification task {task.name!r} with "
                             "output='probabilities' must be rows in [0, 1] summing to 1")
    elif prob_rows and not declared:
        _warn_kind(task, "are rows in [0, 1] summing to 1 (they look like probabilities or "
                   "one-hot labels)", "'probabilities'")
    return z, None
