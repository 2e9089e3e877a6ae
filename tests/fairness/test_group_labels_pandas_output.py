"""Group labels, pandas inputs, the declared kind of outputs, and the all-tasks helpers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fairmt_opt.fairness import (
    Task,
    by_group,
    by_group_all,
    encode_groups,
    evaluate_all,
    evaluate_task,
)

DET = Task("y", "detection")
CLS = Task("c", "classification", num_classes=3)
REG = Task("r", "regression")
Z = np.array([2.0, -1.0, 1.5, -0.5, 0.3, -2.0, 1.0, -1.5])
Y = np.array([1, 0, 1, 1, 0, 0, 1, 0])
CODES = np.array([0, 0, 1, 1, 0, 1, 0, 1])


def _ref():
    return evaluate_task(DET, Z, Y, None, CODES, 2, output="logits")


@pytest.mark.parametrize("groups", [
    np.array(["a", "a", "b", "b", "a", "b", "a", "b"]),
    np.array([False, False, True, True, False, True, False, True]),
    np.array([10, 10, 20, 20, 10, 20, 10, 20]),
    np.array(["a", "a", "b", "b", "a", "b", "a", "b"], dtype=object),
])
def test_labels_give_the_same_metrics_as_codes(groups):
    m = evaluate_task(DET, Z, Y, None, groups, output="logits")
    assert dict(m) == dict(_ref())
    assert len(m.group_labels) == 2


def test_inferred_labels_are_sorted_and_reported():
    e = encode_groups(["z", "a", "m", "a"])
    assert e.labels == ("a", "m", "z") and e.codes.tolist() == [2, 0, 1, 0]
    e = encode_groups(np.array([3, 1, 3]))
    assert e.labels == (1, 3) and e.codes.tolist() == [1, 0, 1] and e.inferred


def test_explicit_num_groups_keeps_empty_group():
    e = encode_groups([0, 2, 2], num_groups=3)
    assert e.labels == (0, 1, 2) and not e.inferred
    r = by_group(DET, [1.0, -1.0, 1.0], [1, 0, 1], None, [0, 2, 2], 3, output="logits")
    assert r.by_group.loc[1, "count"] == 0 and np.isnan(r.by_group.loc[1, "tpr"])
    with pytest.raises(ValueError, match="integer codes"):
        encode_groups(["a", "b"], num_groups=2)


def test_intersections_from_dataframe_and_2d_array():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"sex": ["f", "m", "f", "m"], "age": [1, 1, 2, 2]})
    e = encode_groups(df)
    assert e.labels == (("f", 1), ("f", 2), ("m", 1), ("m", 2)) and e.names == ("sex", "age")
    r = by_group(DET, [1.0, -1.0, 1.0, 1.0], [1, 0, 1, 0], None, df, output="logits")
    assert list(r.by_group.index.names) == ["sex", "age"]
    e2 = encode_groups(np.array([[0, 5], [1, 5], [0, 6], [0, 5]]))
    assert e2.labels == ((0, 5), (0, 6), (1, 5)) and e2.codes.tolist() == [0, 2, 1, 0]


def test_categorical_order_is_kept_with_unused_categories():
    pd = pytest.importorskip("pandas")
    g = pd.Series(pd.Categorical(["lo", "hi", "lo"], categories=["mid", "lo", "hi"]))
    e = encode_groups(g)
    assert e.labels == ("mid", "lo", "hi") and e.codes.tolist() == [1, 2, 1]


def test_pandas_series_dataframes_and_dtypes():
    pd = pytest.importorskip("pandas")
    ref = _ref()
    m = evaluate_task(DET, pd.Series(Z), pd.DataFrame({"y": Y}), pd.Series([True] * 8),
                      pd.Series(CODES), output="logits")
    assert dict(m) == dict(ref)
    m = evaluate_task(DET, pd.DataFrame({"z": Z}), pd.Series(Y, dtype="Int64"),
                      pd.Series([True] * 8, dtype="boolean"),
                      pd.Series(np.where(CODES == 0, "a", "b"), dtype="string"),
                      output="logits")
    assert dict(m) == dict(ref)
    m = evaluate_task(DET, Z, pd.Series(pd.Categorical(Y)), None, CODES, 2, output="logits")
    assert dict(m) == dict(ref)


@pytest.mark.parametrize("arg", ["targets", "mask", "groups"])
def test_pandas_missing_values_raise_naming_the_argument(arg):
    pd = pytest.importorskip("pandas")
    kw = {"targets": Y, "mask": None, "groups": CODES}
    if arg == "targets":
        kw[arg] = pd.Series([1, None, 1, 1, 0, 0, 1, 0], dtype="Int64")
    elif arg == "mask":
        kw[arg] = pd.Series([True, None] + [True] * 6, dtype="boolean")
    else:
        kw[arg] = pd.Series(["a", None, "b", "b", "a", "b", "a", "b"], dtype="string")
    with pytest.raises(ValueError, match=arg):
        evaluate_task(DET, Z, kw["targets"], kw["mask"], kw["groups"], output="logits")


def test_multicolumn_dataframe_for_targets_raises():
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match="targets must be one column"):
        evaluate_task(DET, Z, pd.DataFrame({"a": Y, "b": Y}), None, CODES, 2)


def test_probabilities_under_the_default_warn_and_declared_kinds_are_right():
    p = np.array([0.9, 0.2, 0.8, 0.4, 0.6, 0.1, 0.7, 0.3])
    with pytest.warns(UserWarning, match="output="):
        evaluate_task(DET, p, Y, None, CODES, 2)
    with pytest.warns(UserWarning, match="output='labels'"):
        evaluate_task(DET, (p > 0.5).astype(float), Y, None, CODES, 2)
    logit = np.log(p) - np.log1p(-p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = evaluate_task(DET, p, Y, None, CODES, 2, output="probabilities")
        b = evaluate_task(DET, logit, Y, None, CODES, 2, output="logits")
        c = evaluate_task(DET, (p > 0.5).astype(int), Y, None, CODES, 2, output="labels")
    assert dict(a) == pytest.approx(dict(b), abs=1e-12)
    assert a["accuracy"] == c["accuracy"] and a["eod"] == c["eod"]
    with pytest.raises(ValueError, match="must lie in"):
        evaluate_task(DET, logit, Y, None, CODES, 2, output="probabilities")
    with pytest.raises(ValueError, match="output must be one of"):
        evaluate_task(DET, p, Y, None, CODES, 2, output="scores")


def test_classification_kinds():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(8, 3))
    y = rng.integers(0, 3, 8)
    pr = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    with pytest.warns(UserWarning, match="output="):
        evaluate_task(CLS, pr, y, None, CODES, 2)
    a = evaluate_task(CLS, z, y, None, CODES, 2, output="logits")
    b = evaluate_task(CLS, pr, y, None, CODES, 2, output="probabilities")
    c = evaluate_task(CLS, z.argmax(axis=1), y, None, CODES, 2, output="labels")
    assert dict(a) == dict(b) == dict(c)
    with pytest.raises(ValueError, match="output='labels'"):
        evaluate_task(CLS, z.argmax(axis=1), y, None, CODES, 2)
    r = by_group(CLS, z, y, None, CODES, 2, output="logits")
    assert {"tpr[0]", "accuracy[2]", "support[1]", "accuracy", "count"} <= set(r.columns)


def test_regression_report_matches_numpy():
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=12), rng.normal(size=12)
    g = np.array(list("ab") * 6)
    r = by_group(REG, z, y, None, g)
    for lab in "ab":
        s = g == lab
        row = r.by_group.loc[lab]
        assert abs(row["mae"] - np.mean(np.abs(z[s] - y[s]))) < 1e-12
        assert abs(row["mse"] - np.mean((z[s] - y[s]) ** 2)) < 1e-12
        assert abs(row["mean_prediction"] - z[s].mean()) < 1e-12
        assert abs(row["mean_target"] - y[s].mean()) < 1e-12
    med = np.median(y)
    assert abs(r.overall["above_median"] - np.mean(z > med)) < 1e-12


def test_sample_weight_is_validated():
    for w, msg in (([1.0] * 7, "shape"), ([1.0, -1] + [1.0] * 6, "nonnegative"),
                   ([np.nan] + [1.0] * 7, "finite"), ([0.0] * 8, "0 on every labelled")):
        with pytest.raises(ValueError, match=msg) as exc:
            evaluate_task(DET, Z, Y, None, CODES, 2, sample_weight=np.array(w))
        assert "sample_weight" in str(exc.value)


def test_integer_weights_equal_repeated_rows_in_by_group():
    w = np.array([1, 2, 3, 1, 2, 1, 1, 4])
    r = by_group(DET, Z, Y, None, CODES, 2, sample_weight=w, output="logits")
    rr = by_group(DET, np.repeat(Z, w), np.repeat(Y, w), None, np.repeat(CODES, w), 2,
                  output="logits")
    cols = [c for c in r.columns if c not in ("count", "weight")]
    np.testing.assert_allclose(r.values[:, [r.columns.index(c) for c in cols]],
                               rr.values[:, [rr.columns.index(c) for c in cols]], atol=1e-12)


def test_all_tasks_helpers():
    tasks = [DET, REG]
    z = np.column_stack([Z, Z * 2])
    y = np.column_stack([Y, Z + 1])
    masks = np.ones((8, 2), dtype=bool)
    masks[0, 1] = False
    reps = by_group_all(tasks, z, y, masks, CODES, 2, output="logits")
    assert set(reps) == {"y", "r"}
    assert reps["r"].by_group["count"].sum() == 7
    ms = evaluate_all(tasks, [Z, Z * 2], {"y": Y, "r": Z + 1}, masks, CODES, 2,
                      output={"y": "logits"})
    assert dict(ms["y"]) == dict(_ref())
    with pytest.raises(ValueError, match="outputs must have shape"):
        by_group_all(tasks, z[:, :1], y, masks, CODES, 2)


def test_single_inferred_group_and_strata_columns():
    z = np.array([0.5, -1.0, 2.0, 0.0, 1.0, 1.0])
    y = np.array([1, 0, 1, 0, 1, 0])
    r = by_group(DET, z, y, None, ["a"] * 6, output="logits", conditioning=[0, 0, 1, 1, 5, 5])
    assert r.group_labels == ("a",)
    assert r.by_group.loc["a", "selection_rate@5"] == 1.0
    assert r.by_group.loc["a", "selection_rate@0"] == 0.5
    d = r.difference()
    assert np.isnan(d["tpr"]) and "two groups" in d.undefined["tpr"]
    assert by_group(DET, z, y, None, ["a"] * 6, output="logits",
                    zero_division=0.0).difference()["tpr"] == 0.0
    m = evaluate_task(DET, z, y, None, ["a"] * 6, output="logits")
    assert np.isnan(m["eod"]) and m["accuracy"] == pytest.approx(5 / 6)


def test_soft_statistics_accept_labels_with_num_groups_none():
    from fairmt_opt.fairness import soft_stats

    a = soft_stats(DET, Z, Y, None, np.where(CODES == 0, "u", "v"), None)
    b = soft_stats(DET, Z, Y, None, CODES, 2)
    for k in b.keys():
        np.testing.assert_array_equal(a[k], b[k])
