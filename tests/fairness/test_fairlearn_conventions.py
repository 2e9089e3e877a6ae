"""Agreement with fairlearn, scikit-learn and scipy on small published-style cases."""

from __future__ import annotations

import numpy as np
import pytest

fl = pytest.importorskip("fairlearn.metrics")
skm = pytest.importorskip("sklearn.metrics")

from fairmt_opt.fairness import Task, by_group, evaluate_task  # noqa: E402

DET = Task("y", "detection")
# a small data set written out by hand: 16 samples, two sensitive features
YT = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0])
YP = np.array([1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0])
SW = np.array([1, 2, 1, 3, 1, 1, 2, 4, 1, 2, 3, 1, 1, 2, 1, 2], dtype=float)
SEX = np.array(["f", "m", "f", "f", "m", "m", "f", "m", "f", "m", "m", "f", "f", "m", "f", "m"])
AGE = np.array([1, 1, 2, 2, 1, 2, 1, 2, 2, 1, 2, 1, 2, 2, 1, 1])


def _frame(sf, sw=None):
    metrics = {"tpr": fl.true_positive_rate, "fpr": fl.false_positive_rate,
               "selection_rate": fl.selection_rate, "accuracy": skm.accuracy_score,
               "tnr": fl.true_negative_rate, "fnr": fl.false_negative_rate}
    params = None if sw is None else {k: {"sample_weight": sw} for k in metrics}
    return fl.MetricFrame(metrics=metrics, y_true=YT, y_pred=YP, sensitive_features=sf,
                          sample_params=params)


@pytest.mark.parametrize("sw", [None, SW])
@pytest.mark.parametrize("sf", ["sex", "age", "both"])
def test_metricframe_by_group_overall_difference_ratio(sf, sw):
    feats = {"sex": SEX, "age": AGE, "both": {"sex": SEX, "age": AGE}}[sf]
    ref_sf = feats if not isinstance(feats, dict) else np.column_stack([SEX, AGE.astype(str)])
    ours_groups = feats if not isinstance(feats, dict) else {"sex": SEX, "age": AGE.astype(str)}
    mf = _frame(ref_sf, sw)
    r = by_group(DET, YP, YT, None, ours_groups, output="labels", sample_weight=sw)
    cols = ["tpr", "fpr", "selection_rate", "accuracy", "tnr", "fnr"]
    np.testing.assert_allclose(r.by_group[cols].to_numpy(), mf.by_group[cols].to_numpy(),
                               atol=1e-12)
    for c in cols:
        assert abs(r.overall[c] - mf.overall[c]) < 1e-12
        for method in ("between_groups", "to_overall"):
            assert abs(r.difference(method)[c] - mf.difference(method=method)[c]) < 1e-12
            assert abs(r.ratio(method)[c] - mf.ratio(method=method)[c]) < 1e-12
        assert abs(r.group_min()[c] - mf.group_min()[c]) < 1e-12
        assert abs(r.group_max()[c] - mf.group_max()[c]) < 1e-12


@pytest.mark.parametrize("sw", [None, SW])
def test_fairness_metric_functions(sw):
    kw = {"sample_weight": sw}
    r = by_group(DET, YP, YT, None, SEX, output="labels", sample_weight=sw)
    for method in ("between_groups", "to_overall"):
        d, q = r.difference(method), r.ratio(method)
        assert abs(d["selection_rate"] - fl.demographic_parity_difference(
            YT, YP, sensitive_features=SEX, method=method, **kw)) < 1e-12
        assert abs(q["selection_rate"] - fl.demographic_parity_ratio(
            YT, YP, sensitive_features=SEX, method=method, **kw)) < 1e-12
        assert abs(max(d["tpr"], d["fpr"]) - fl.equalized_odds_difference(
            YT, YP, sensitive_features=SEX, method=method, **kw)) < 1e-12
        assert abs(min(q["tpr"], q["fpr"]) - fl.equalized_odds_ratio(
            YT, YP, sensitive_features=SEX, method=method, **kw)) < 1e-12
        assert abs(d["tpr"] - fl.equal_opportunity_difference(
            YT, YP, sensitive_features=SEX, method=method, **kw)) < 1e-12
    m = evaluate_task(DET, YP, YT, None, SEX, output="labels", sample_weight=sw,
                      zero_division=0.0)
    assert abs(m["eo"] - fl.equalized_odds_difference(YT, YP, sensitive_features=SEX, **kw)) \
        < 1e-12
    assert abs(m["eod"] - fl.equal_opportunity_difference(YT, YP, sensitive_features=SEX,
                                                           **kw)) < 1e-12
    assert abs(m["csp"] - fl.demographic_parity_difference(YT, YP, sensitive_features=SEX,
                                                            **kw)) < 1e-12
    assert abs(m["accuracy"] - skm.accuracy_score(YT, YP, sample_weight=sw)) < 1e-12
    assert abs(m["f1"] - skm.f1_score(YT, YP, sample_weight=sw)) < 1e-12


def test_zero_division_switches_to_fairlearn_on_a_group_without_positives():
    yt = np.array([1, 1, 0, 0, 0, 0])
    yp = np.array([1, 1, 0, 0, 0, 1])
    g = np.array(["a", "a", "a", "b", "b", "b"])  # b has no positive: TPR 0/0
    ref = fl.equalized_odds_difference(yt, yp, sensitive_features=g)
    ours0 = evaluate_task(DET, yp, yt, None, g, output="labels", zero_division=0.0)
    ours = evaluate_task(DET, yp, yt, None, g, output="labels")
    assert abs(ours0["eo"] - ref) < 1e-12 and abs(ref - 1.0) < 1e-12  # TPR (1, 0)
    # the default leaves b's TPR out: only the FPR term (0 vs 1/3) remains
    assert abs(ours["eo"] - 1 / 3) < 1e-12
    assert np.isnan(ours["eod"]) and "eod" in ours.undefined
    r = by_group(DET, yp, yt, None, g, output="labels")
    assert np.isnan(r.by_group.loc["b", "tpr"]) and ("b", "tpr") in r.undefined_cells
    r0 = by_group(DET, yp, yt, None, g, output="labels", zero_division=0.0)
    assert r0.by_group.loc["b", "tpr"] == 0.0


def test_single_group_difference_is_zero_under_fairlearn_convention():
    yt, yp = np.array([1, 0, 1]), np.array([1, 1, 0])
    g = np.array(["x", "x", "x"])
    assert fl.demographic_parity_difference(yt, yp, sensitive_features=g) == 0.0
    m = evaluate_task(DET, yp, yt, None, g, output="labels", zero_division=0.0)
    assert m["csp"] == 0.0 and m["eo"] == 0.0
    m = evaluate_task(DET, yp, yt, None, g, output="labels")
    assert np.isnan(m["csp"]) and "csp" in m.undefined


@pytest.mark.parametrize(("yt", "yp", "w", "pos"), [
    ([0] * 8, [0, 0, 0, 1, 1, 1, 1, 1], None, None),
    ([0] * 8, [0, 1, 1, 0, 0, 0, 0, 0], [1, 2, 3, 4, 1, 2, 1, 2], None),
    (list("abababab"), list("aaabbbaa"), None, "b"),
    ([True, False, True, True], [True, True, False, True], None, None),
    ([-1, 1, 1, -1], [1, 1, -1, -1], None, None),
])
def test_selection_rate_and_pos_label(yt, yp, w, pos):
    ref = fl.selection_rate(yt, yp, pos_label=True if pos is None and isinstance(yt[0], bool)
                            else (1 if pos is None else pos), sample_weight=w)
    r = by_group(DET, yp, yt, None, ["g"] * len(yt), output="labels", pos_label=pos,
                 sample_weight=w)
    assert abs(r.overall["selection_rate"] - ref) < 1e-12


def test_ambiguous_labels_need_pos_label():
    with pytest.raises(ValueError, match="pos_label"):
        evaluate_task(DET, [1.0, -1.0], ["a", "b"], None, [0, 1])


def test_balanced_accuracy_and_precision_match_sklearn():
    r = by_group(DET, YP, YT, None, SEX, output="labels", sample_weight=SW)
    for lab in ("f", "m"):
        sel = SEX == lab
        row = r.by_group.loc[lab]
        assert abs(row["balanced_accuracy"] - skm.balanced_accuracy_score(
            YT[sel], YP[sel], sample_weight=SW[sel])) < 1e-12
        assert abs(row["precision"] - skm.precision_score(
            YT[sel], YP[sel], sample_weight=SW[sel])) < 1e-12
        assert row["count"] == sel.sum()
        assert row["weight"] == SW[sel].sum()


def test_weighted_ks_matches_repeated_rows_and_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    z = rng.normal(size=30)
    y = rng.integers(0, 2, 30)
    g = rng.integers(0, 2, 30)
    w = rng.integers(1, 4, 30)
    m = evaluate_task(DET, z, y, None, g, 2, sample_weight=w, output="logits")
    zr, yr, gr = np.repeat(z, w), np.repeat(y, w), np.repeat(g, w)
    m2 = evaluate_task(DET, zr, yr, None, gr, 2, output="logits")
    for k in m:
        assert abs(m[k] - m2[k]) < 1e-12, k
    from scipy.special import expit
    ref = stats.ks_2samp(expit(zr[gr == 0]), expit(zr[gr == 1])).statistic
    assert abs(m["ks"] - ref) < 1e-12
