"""Reports within control levels, every combination of features, confusion counts and the
equalized-odds aggregates, against fairlearn's MetricFrame and metric functions on a small data
set written here."""

from __future__ import annotations

import numpy as np
import pytest

fl = pytest.importorskip("fairlearn.metrics")
skm = pytest.importorskip("sklearn.metrics")

from fairmt_opt.fairness import Task, by_group, by_group_controlled  # noqa: E402

DET = Task("y", "detection")
REG = Task("r", "regression")

_rng = np.random.default_rng(2024)
N = 90
YT = _rng.integers(0, 2, N)
YP = np.where(_rng.random(N) < 0.7, YT, 1 - YT)
SW = _rng.integers(1, 5, N).astype(float)
COLOUR = _rng.choice(["red", "blue", "green"], N)
SIZE = _rng.choice(["s", "l"], N)
SITE = _rng.choice(["north", "south"], N)
# one combination of (colour, size) absent from the data
_drop = (COLOUR == "green") & (SIZE == "l")
COLOUR[_drop] = "blue"

METRICS = {"tpr": fl.true_positive_rate, "fpr": fl.false_positive_rate,
           "selection_rate": fl.selection_rate, "accuracy": skm.accuracy_score,
           "precision": skm.precision_score, "balanced_accuracy": skm.balanced_accuracy_score}


def _frame(sf, cf=None, sw=None):
    params = None if sw is None else {k: {"sample_weight": sw} for k in METRICS}
    return fl.MetricFrame(metrics=METRICS, y_true=YT, y_pred=YP, sensitive_features=sf,
                          control_features=cf, sample_params=params)


def _close(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=1e-12, rtol=0)


@pytest.mark.parametrize("sw", [None, SW], ids=["unweighted", "weighted"])
def test_control_features_match_metricframe(sw):
    mf = _frame({"colour": COLOUR}, {"site": SITE}, sw)
    ours = by_group_controlled(DET, YP, YT, None, COLOUR, SITE, output="labels",
                               sample_weight=sw, zero_division=0.0)
    cols = list(METRICS)
    _close(ours.by_group[cols].to_numpy(), mf.by_group[cols].to_numpy())
    _close(ours.overall[cols].to_numpy(), mf.overall[cols].to_numpy())
    _close(ours.group_min()[cols].to_numpy(), mf.group_min()[cols].to_numpy())
    _close(ours.group_max()[cols].to_numpy(), mf.group_max()[cols].to_numpy())
    for method in ("between_groups", "to_overall"):
        _close(ours.difference(method)[cols].to_numpy(),
               mf.difference(method=method)[cols].to_numpy())
        _close(ours.ratio(method)[cols].to_numpy(), mf.ratio(method=method)[cols].to_numpy())


@pytest.mark.parametrize("sw", [None, SW], ids=["unweighted", "weighted"])
def test_every_combination_matches_metricframe_rows(sw):
    mf = _frame({"colour": COLOUR, "size": SIZE}, sw=sw)
    ours = by_group(DET, YP, YT, None, {"colour": COLOUR, "size": SIZE}, output="labels",
                    sample_weight=sw, intersections="all")
    assert list(ours.by_group.index) == list(mf.by_group.index)  # ("green", "l") included
    assert np.isnan(mf.by_group.loc[("green", "l"), "tpr"])
    cols = list(METRICS)
    _close(ours.by_group[cols].to_numpy(), mf.by_group[cols].to_numpy())
    for method in ("between_groups", "to_overall"):
        d, q = ours.difference(method), ours.ratio(method)
        _close([d[c] for c in cols], mf.difference(method=method)[cols].to_numpy())
        _close([q[c] for c in cols], mf.ratio(method=method)[cols].to_numpy())


def test_confusion_counts_match_sklearn_confusion_matrix():
    r = by_group(DET, YP, YT, None, COLOUR, output="labels", sample_weight=SW)
    for lab in ("blue", "green", "red"):
        sel = COLOUR == lab
        cm = skm.confusion_matrix(YT[sel], YP[sel], sample_weight=SW[sel], labels=[0, 1])
        _close(r.by_group.loc[lab, ["tn", "fp", "fn", "tp"]].to_numpy(), cm.ravel())
    _close([r.overall[k] for k in ("tn", "fp", "fn", "tp")],
           skm.confusion_matrix(YT, YP, sample_weight=SW).ravel())


@pytest.mark.parametrize("agg", ["worst_case", "mean"])
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("sw", [None, SW], ids=["unweighted", "weighted"])
def test_equalized_odds_aggregates_match_fairlearn(agg, method, sw):
    r = by_group(DET, YP, YT, None, COLOUR, output="labels", sample_weight=sw)
    kw = {"sensitive_features": COLOUR, "method": method, "sample_weight": sw, "agg": agg}
    assert abs(r.equalized_odds("difference", method, agg)
               - fl.equalized_odds_difference(YT, YP, **kw)) < 1e-12
    assert abs(r.equalized_odds("ratio", method, agg)
               - fl.equalized_odds_ratio(YT, YP, **kw)) < 1e-12


def test_r2_in_metricframe_by_group():
    rng = np.random.default_rng(8)
    t = rng.normal(size=N)
    p = 0.6 * t + rng.normal(size=N)
    mf = fl.MetricFrame(metrics=skm.r2_score, y_true=t, y_pred=p, sensitive_features=SITE,
                        sample_params={"sample_weight": SW})
    ours = by_group(REG, p, t, None, SITE, sample_weight=SW)
    _close(ours.by_group["r2"].to_numpy(), mf.by_group.to_numpy())
    assert abs(ours.overall["r2"] - mf.overall) < 1e-12
    assert abs(ours.difference()["r2"] - mf.difference()) < 1e-12
