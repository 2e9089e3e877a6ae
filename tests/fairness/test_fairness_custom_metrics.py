"""User metric functions by group, normalised confusion matrices per group and fairlearn's
rule on feature names, checked against scikit-learn and fairlearn on data of our own."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from fairmt_opt.fairness import (
    Task,
    by_group,
    by_group_controlled,
    by_group_metrics,
    encode_groups,
)

pd = pytest.importorskip("pandas")
skm = pytest.importorskip("sklearn.metrics")
flm = pytest.importorskip("fairlearn.metrics")

DET = Task("y", "detection")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20261202)
    n = 300
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.7, y, 1 - y)
    g = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    # group "east" has no positive target: its TPR row of the matrix is 0/0
    y[g == "east"] = 0
    w = rng.uniform(0.2, 3.0, n)
    c = rng.choice(["young", "old"], n)
    return y, p, g, w, c


# ---- GroupReport.confusion_matrix ----------------------------------------------------

@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
@pytest.mark.parametrize("weighted", [False, True])
def test_confusion_matrix_matches_scikit_learn_per_group(data, normalize, weighted):
    y, p, g, w, _ = data
    sw = w if weighted else None
    r = by_group(DET, p, y, None, g, output="labels", sample_weight=sw, zero_division=0.0)
    got = r.confusion_matrix(normalize)
    assert got.shape == (3, 2, 2)
    for i, lab in enumerate(r.group_labels):
        sel = g == lab
        want = skm.confusion_matrix(y[sel], p[sel], labels=[0, 1], normalize=normalize,
                                    sample_weight=None if sw is None else sw[sel])
        np.testing.assert_allclose(got[i], want, rtol=0, atol=1e-12)
    want = skm.confusion_matrix(y, p, labels=[0, 1], normalize=normalize, sample_weight=sw)
    np.testing.assert_allclose(r.confusion_matrix(normalize, overall=True), want, rtol=0,
                               atol=1e-12)


def test_confusion_matrix_empty_rows_follow_zero_division(data):
    y, p, g, _, _ = data
    r = by_group(DET, p, y, None, g, output="labels")  # zero_division="empty"
    east = r.group_labels.index("east")
    m = r.confusion_matrix("true")[east]
    assert np.isnan(m[1]).all()  # no positive target: the row is 0/0
    assert m[0].sum() == pytest.approx(1.0)
    r1 = by_group(DET, p, y, None, g, output="labels", zero_division=1.0)
    assert r1.confusion_matrix("true")[east][1].tolist() == [1.0, 1.0]


def test_confusion_matrix_against_fairlearn_metricframe(data):
    y, p, g, w, _ = data
    cm = functools.partial(skm.confusion_matrix, normalize="pred")
    cm.__name__ = "cm_pred"  # type: ignore[attr-defined]
    mf = flm.MetricFrame(metrics=cm, y_true=y, y_pred=p, sensitive_features=g,
                         sample_params={"sample_weight": w})
    r = by_group(DET, p, y, None, g, output="labels", sample_weight=w, zero_division=0.0)
    for i, lab in enumerate(r.group_labels):
        np.testing.assert_allclose(r.confusion_matrix("pred")[i], mf.by_group[lab],
                                   rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.confusion_matrix("pred", overall=True), mf.overall,
                               rtol=0, atol=1e-12)


def test_confusion_matrix_absent_combination_and_control_levels(data):
    y, p, g, _, c = data
    sf = {"region": g, "age": np.where(g == "east", "old", c)}  # (east, young) never occurs
    r = by_group(DET, p, y, None, sf, output="labels", intersections="all")
    i = r.group_labels.index(("east", "young"))
    assert r.confusion_matrix()[i].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    assert np.isnan(r.confusion_matrix("all")[i]).all()
    cr = by_group_controlled(DET, p, y, None, g, c, output="labels")
    per = cr.confusion_matrix("all")
    assert set(per) == {"old", "young"}
    for lev in per:
        sel = c == lev
        np.testing.assert_allclose(
            cr.confusion_matrix("all", overall=True)[lev],
            skm.confusion_matrix(y[sel], p[sel], labels=[0, 1], normalize="all"), atol=1e-12)


def test_confusion_matrix_bad_input(data):
    y, p, g, _, _ = data
    r = by_group(DET, p, y, None, g, output="labels")
    with pytest.raises(ValueError, match="normalize"):
        r.confusion_matrix("rows")
    reg = by_group(Task("r", "regression"), p.astype(float), y.astype(float), None, g)
    with pytest.raises(ValueError, match="detection report"):
        reg.confusion_matrix()


# ---- by_group_metrics ----------------------------------------------------------------

def _weighted_error(y_t, y_p, sample_weight, offset):
    assert isinstance(sample_weight, np.ndarray) and isinstance(offset, np.ndarray)
    return float(np.sum(sample_weight * (y_t != y_p)) + offset.sum())


def test_user_metrics_with_sample_params_match_fairlearn(data):
    y, p, g, w, _ = data
    off = np.linspace(0.0, 1.0, len(y))
    metrics = {"err": _weighted_error, "acc": skm.accuracy_score}
    params = {"err": {"sample_weight": w, "offset": off}, "acc": {"sample_weight": w}}
    mf = flm.MetricFrame(metrics=metrics, y_true=y, y_pred=p, sensitive_features=g,
                         sample_params=params)
    r = by_group_metrics(metrics, y, p, g, sample_params=params)
    for k in metrics:
        np.testing.assert_allclose(r.by_group[k].to_numpy(), mf.by_group[k].to_numpy(),
                                   rtol=0, atol=1e-12)
        assert r.overall[k] == pytest.approx(mf.overall[k], abs=1e-12)
        assert r.group_min()[k] == pytest.approx(mf.group_min()[k], abs=1e-12)
        assert r.group_max()[k] == pytest.approx(mf.group_max()[k], abs=1e-12)
        for m in ("between_groups", "to_overall"):
            assert r.difference(m)[k] == pytest.approx(mf.difference(method=m)[k], abs=1e-12)
            assert r.ratio(m)[k] == pytest.approx(mf.ratio(method=m)[k], abs=1e-12)
    assert r.task is None and "err" in repr(r)


@pytest.mark.filterwarnings("ignore:Recall is ill-defined")
def test_single_function_takes_flat_sample_params(data):
    y, p, g, w, _ = data
    r = by_group_metrics(skm.recall_score, y, p, g, sample_params={"sample_weight": w})
    assert r.columns == ("recall_score",)
    ref = by_group(DET, p, y, None, g, output="labels", sample_weight=w)
    # the built-in TPR column and scikit-learn's recall: the same values (east has no positive:
    # scikit-learn returns 0 with a warning, the built-in column has no value)
    for lab in ("north", "south"):
        assert r.by_group.loc[lab, "recall_score"] == pytest.approx(
            ref.by_group.loc[lab, "tpr"], abs=1e-12)


def test_multiclass_scores_by_group_match_fairlearn():
    rng = np.random.default_rng(7)
    n = 120
    y = rng.integers(0, 3, n)
    s = rng.dirichlet(np.ones(3), n)
    g = rng.choice(["a", "b"], n)
    auc = functools.partial(skm.roc_auc_score, multi_class="ovr", labels=[0, 1, 2])
    mf = flm.MetricFrame(metrics={"auc": auc}, y_true=y, y_pred=s, sensitive_features=g)
    r = by_group_metrics({"auc": auc}, y, s, pd.Series(g, name="grp"))
    np.testing.assert_allclose(r.by_group["auc"].to_numpy(), mf.by_group["auc"].to_numpy(),
                               rtol=0, atol=1e-12)
    assert r.overall["auc"] == pytest.approx(mf.overall["auc"], abs=1e-12)


def test_absent_combination_is_not_called_and_nan_is_left_out():
    calls = []

    def size(y_t, y_p):
        calls.append(len(y_t))
        return math.nan if len(y_t) == 1 else float(len(y_t))

    sf = {"a": ["u", "u", "v", "v", "v"], "b": ["x", "y", "x", "x", "x"]}
    r = by_group_metrics({"n": size}, [0, 1, 0, 1, 1], [1, 1, 0, 0, 1], sf,
                         intersections="all")
    assert r.group_labels == (("u", "x"), ("u", "y"), ("v", "x"), ("v", "y"))
    assert sorted(calls) == [1, 1, 3, 5]  # three groups with samples, then overall
    v = r.by_group["n"].to_numpy()
    assert np.isnan(v[[0, 1, 3]]).all() and v[2] == 3.0
    assert r.undefined_cells[(("u", "x"), "n")] == "the metric returned no finite value"
    assert r.undefined_cells[(("v", "y"), "n")] == "no labelled sample in the group"
    assert r.difference()["n"] != r.difference()["n"]  # one group with a value: undefined
    z = by_group_metrics({"n": size}, [0, 1, 0, 1, 1], [1, 1, 0, 0, 1], sf,
                         intersections="all", zero_division=0.0)
    assert z.difference()["n"] == 0.0 and z.ratio()["n"] == 1.0


def test_by_group_metrics_bad_input(data):
    y, p, g, w, _ = data
    with pytest.raises(ValueError, match="metrics"):
        by_group_metrics({"a": 3}, y, p, g)
    with pytest.raises(ValueError, match="metrics"):
        by_group_metrics({}, y, p, g)
    with pytest.raises(ValueError, match="sample_params has entries for no metric"):
        by_group_metrics({"a": skm.accuracy_score}, y, p, g,
                         sample_params={"b": {"sample_weight": w}})
    with pytest.raises(ValueError, match=r"sample_params\['a'\]\['sample_weight'\]"):
        by_group_metrics({"a": skm.accuracy_score}, y, p, g,
                         sample_params={"a": {"sample_weight": w[:-1]}})
    with pytest.raises(ValueError, match="y_pred must have"):
        by_group_metrics(skm.accuracy_score, y, p[:-1], g)
    with pytest.raises(ValueError, match="groups must have shape"):
        by_group_metrics(skm.accuracy_score, y, p, g[:-1])
    with pytest.raises(ValueError, match="'cm' must return one real number"):
        by_group_metrics({"cm": skm.confusion_matrix}, y, p, g)


# ---- feature_names="strings" ---------------------------------------------------------

def _named_inputs(g, c):
    return {
        "unnamed frame": pd.DataFrame({0: g, 1: c}),
        "one integer column": pd.DataFrame({0: g}),
        "series named 0": pd.Series(g, name=0),
        "dict with integer keys": {0: g, 1: c},
    }


def test_integer_feature_names_refused_like_fairlearn(data):
    y, p, g, _, c = data
    for what, sf in _named_inputs(g, c).items():
        with pytest.raises(ValueError):  # fairlearn's rule
            flm.MetricFrame(metrics=skm.accuracy_score, y_true=y, y_pred=p,
                            sensitive_features=sf)
        default = encode_groups(sf)  # accepted by default, pandas' names kept
        assert default.num_groups >= 3, what
        with pytest.raises(ValueError, match="feature_names='strings'"):
            encode_groups(sf, feature_names="strings")
        with pytest.raises(ValueError, match="feature_names='strings'"):
            by_group(DET, p, y, None, sf, output="labels", feature_names="strings")
        with pytest.raises(ValueError, match="feature_names='strings'"):
            by_group_metrics(skm.accuracy_score, y, p, sf, feature_names="strings")
    with pytest.raises(ValueError, match="control_features has the column name 0"):
        by_group_controlled(DET, p, y, None, g, pd.DataFrame({0: c}), output="labels",
                            feature_names="strings")


def test_string_names_and_arrays_pass_the_rule_unchanged(data):
    y, p, g, _, c = data
    for sf in (pd.DataFrame({"region": g, "age": c}), {"region": g, "age": c},
               pd.Series(g, name="region"), pd.Series(g), np.stack([g, c], axis=1), g):
        a = encode_groups(sf)
        b = encode_groups(sf, feature_names="strings")
        assert a.labels == b.labels and a.names == b.names
        np.testing.assert_array_equal(a.codes, b.codes)
    r = by_group(DET, p, y, None, {"region": g, "age": c}, output="labels",
                 feature_names="strings")
    mf = flm.MetricFrame(metrics=skm.accuracy_score, y_true=y, y_pred=p,
                         sensitive_features={"region": g, "age": c})
    np.testing.assert_allclose(r.by_group["accuracy"].to_numpy(), mf.by_group.to_numpy(),
                               atol=1e-12)
    with pytest.raises(ValueError, match="feature_names must be one of"):
        encode_groups(g, feature_names="str")


def test_pandas_inputs_and_a_function_without_a_name(data):
    y, p, g, _, c = data
    frame = pd.DataFrame({"region": g, "age": c})
    seen = []

    def rows_are_arrays(y_t, y_p):
        seen.append((type(y_t), type(y_p)))
        return float(np.mean(y_t == y_p))

    fn = functools.partial(rows_are_arrays)
    r = by_group_metrics(fn, pd.Series(y, name="target"), pd.Series(p), frame)
    assert r.columns == ("metric",) and r.feature_names == ("region", "age")
    assert set(seen) == {(np.ndarray, np.ndarray)}
    mf = flm.MetricFrame(metrics=skm.accuracy_score, y_true=y, y_pred=p,
                         sensitive_features=frame)
    np.testing.assert_allclose(r.by_group["metric"].to_numpy(), mf.by_group.to_numpy(),
                               rtol=0, atol=1e-12)
    assert list(r.by_group.index.names) == ["region", "age"]
