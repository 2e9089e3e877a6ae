"""Hard evaluation metrics against independent implementations: fairlearn, scikit-learn, scipy.

Data are random and adversarial: imbalanced groups, a group with no positives, three or more
groups, masks with garbage targets on unlabelled samples.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    true_positive_rate,
    true_positive_rate_difference,
)
from hypothesis import given
from scipy.special import expit
from scipy.stats import ks_2samp
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
)

from fairmt_opt.fairness import (
    MetricReport,
    Task,
    evaluate_task,
    hard_stats,
    ks_statistic,
    metrics_from_stats,
)
from fairmt_opt.testing.fairness_strategies import task_batches

TOL = 1e-12
DET = Task("d", "detection")
REG = Task("r", "regression")


def _data(kind, N, G, rng, *, C=3, imbalanced=False, no_pos_group=None, mask_frac=0.3):
    if imbalanced:
        p = np.full(G, 0.1 / (G - 1))
        p[0] = 0.9
        groups = rng.choice(G, size=N, p=p)
        groups[:G] = np.arange(G)  # every group present
    else:
        groups = rng.integers(0, G, size=N)
    mask = rng.random(N) >= mask_frac
    mask[:2 * G] = True
    if kind == "detection":
        outputs = rng.normal(size=N)
        targets = (rng.random(N) < 0.5).astype(float)
        # every group has a labelled positive and a labelled negative ...
        groups[: 2 * G] = np.repeat(np.arange(G), 2)
        targets[: 2 * G] = np.tile([1.0, 0.0], G)
        if no_pos_group is not None:  # ... except this one, which has no positive at all
            targets[groups == no_pos_group] = 0.0
    elif kind == "classification":
        outputs = rng.normal(size=(N, C))
        targets = rng.integers(0, C, size=N).astype(float)
        groups[: 2 * G] = np.repeat(np.arange(G), 2)
    else:
        outputs = rng.normal(size=N) * 3 + 1
        targets = outputs + rng.normal(size=N)
        groups[: 2 * G] = np.repeat(np.arange(G), 2)
    garbage = np.nan if kind == "regression" else -1.0
    targets = np.where(mask, targets, garbage)
    return outputs, targets, mask, groups


CASES = [
    (seed, G, imb) for seed, G, imb in itertools.product(range(4), (2, 3, 5), (False, True))
]


@pytest.mark.parametrize(("seed", "G", "imbalanced"), CASES)
def test_detection_matches_fairlearn_and_sklearn(seed, G, imbalanced):
    rng = np.random.default_rng(seed)
    z, y, m, g = _data("detection", 300, G, rng, imbalanced=imbalanced)
    res = evaluate_task(DET, z, y, m, g, G)
    yt, yp, gm = y[m].astype(int), (z[m] > 0).astype(int), g[m]
    assert res["eod"] == pytest.approx(
        true_positive_rate_difference(yt, yp, sensitive_features=gm), abs=TOL
    )
    assert res["eo"] == pytest.approx(
        equalized_odds_difference(yt, yp, sensitive_features=gm), abs=TOL
    )
    assert res["accuracy"] == pytest.approx(accuracy_score(yt, yp), abs=TOL)
    assert res["f1"] == pytest.approx(f1_score(yt, yp), abs=TOL)
    ks = max(
        ks_2samp(expit(z[m & (g == a)]), expit(z[m & (g == b)])).statistic
        for a, b in itertools.combinations(range(G), 2)
    )
    assert res["ks"] == pytest.approx(ks, abs=TOL)
    assert res["csp"] == pytest.approx(
        demographic_parity_difference(yt, yp, sensitive_features=gm), abs=TOL
    )
    assert res.undefined == {}


@pytest.mark.parametrize(("seed", "G"), list(itertools.product(range(4), (2, 3, 5))))
def test_group_without_positives_is_left_out(seed, G):
    """fairlearn counts the empty TPR of a group without positives as 0; we leave it out (SPEC
    §2): our EOD equals fairlearn's MetricFrame by group restricted to the non-empty groups."""
    rng = np.random.default_rng(seed)
    empty = G - 1
    z, y, m, g = _data("detection", 200, G, rng, no_pos_group=empty)
    res = evaluate_task(DET, z, y, m, g, G)
    yt, yp, gm = y[m].astype(int), (z[m] > 0).astype(int), g[m]
    tpr = MetricFrame(metrics=true_positive_rate, y_true=yt, y_pred=yp, sensitive_features=gm)
    fpr = MetricFrame(metrics=false_positive_rate, y_true=yt, y_pred=yp, sensitive_features=gm)
    tpr_ok = tpr.by_group.drop(index=empty)
    if G == 2:
        assert math.isnan(res["eod"]) and "positive" in res.undefined["eod"]
        assert res["eo"] == pytest.approx(fpr.difference(), abs=TOL)
    else:
        assert res["eod"] == pytest.approx(tpr_ok.max() - tpr_ok.min(), abs=TOL)
        assert res["eo"] == pytest.approx(
            max(tpr_ok.max() - tpr_ok.min(), fpr.difference()), abs=TOL
        )
    # the documented difference from fairlearn (which scores the empty group's TPR as 0)
    assert tpr.by_group[empty] == 0.0
    fl = true_positive_rate_difference(yt, yp, sensitive_features=gm)
    assert fl == pytest.approx(tpr.by_group.max(), abs=TOL)


@pytest.mark.parametrize(
    ("seed", "G", "C"), list(itertools.product(range(2), (2, 3, 4), (2, 5)))
)
def test_classification_matches_fairlearn_one_vs_rest(seed, G, C):
    rng = np.random.default_rng(seed)
    task = Task("c", "classification", num_classes=C)
    z, y, m, g = _data("classification", 400, G, rng, C=C)
    res = evaluate_task(task, z, y, m, g, G)
    yt, yp, gm = y[m].astype(int), np.argmax(z[m], axis=1), g[m]
    eod, eo = [], []
    for k in range(C):
        tk, pk = (yt == k).astype(int), (yp == k).astype(int)
        present = [a for a in range(G) if tk[gm == a].any()]
        negs = [a for a in range(G) if (tk[gm == a] == 0).any()]
        assert len(present) == G and len(negs) == G  # this data has every cell
        eod.append(true_positive_rate_difference(tk, pk, sensitive_features=gm))
        eo.append(equalized_odds_difference(tk, pk, sensitive_features=gm))
    assert res["eod"] == pytest.approx(np.mean(eod), abs=TOL)
    assert res["eo"] == pytest.approx(np.mean(eo), abs=TOL)
    assert res["accuracy"] == pytest.approx(accuracy_score(yt, yp), abs=TOL)
    assert res["macro_f1"] == pytest.approx(f1_score(yt, yp, average="macro"), abs=TOL)
    csp = np.mean([
        demographic_parity_difference(yt, (yp == k).astype(int), sensitive_features=gm)
        for k in range(C)
    ])
    assert res["csp"] == pytest.approx(csp, abs=TOL)


def test_macro_f1_skips_classes_absent_from_labels_and_predictions():
    task = Task("c", "classification", num_classes=4)
    z = np.array([[5, 0, 0, 0], [0, 5, 0, 0], [5, 0, 0, 0], [0, 5, 0, 0.0]])
    y = np.array([0, 1, 1, 1])
    res = evaluate_task(task, z, y, None, [0, 1, 0, 1], 2)
    assert res["macro_f1"] == pytest.approx(f1_score(y, np.argmax(z, 1), average="macro"))
    # with the absent classes 2, 3 counted as 0 the value would be half as large
    padded = f1_score(y, np.argmax(z, 1), average="macro", labels=[0, 1, 2, 3], zero_division=0)
    assert res["macro_f1"] > padded


@pytest.mark.parametrize(("seed", "G"), list(itertools.product(range(4), (2, 3, 5))))
def test_regression_matches_sklearn_scipy(seed, G):
    rng = np.random.default_rng(seed)
    z, y, m, g = _data("regression", 300, G, rng)
    med = float(rng.normal())
    res = evaluate_task(REG, z, y, m, g, G, train_median=med)
    yt, yp, gm = y[m], z[m], g[m]
    assert res["mae"] == pytest.approx(mean_absolute_error(yt, yp), abs=TOL)
    assert res["rmse"] == pytest.approx(math.sqrt(mean_squared_error(yt, yp)), abs=TOL)
    # CCC: two-pass population moments (the sums of the statistics lose a few digits)
    mp, mt = yp.mean(), yt.mean()
    ccc = 2 * np.mean((yp - mp) * (yt - mt)) / (yp.var() + yt.var() + (mp - mt) ** 2)
    assert res["ccc"] == pytest.approx(ccc, abs=1e-10)
    ks = max(
        ks_2samp(z[m & (g == a)], z[m & (g == b)]).statistic
        for a, b in itertools.combinations(range(G), 2)
    )
    assert res["ks"] == pytest.approx(ks, abs=TOL)
    csp = demographic_parity_difference(yt, (yp > med).astype(int), sensitive_features=gm)
    assert res["csp"] == pytest.approx(csp, abs=TOL)


def test_regression_csp_default_threshold_is_median_of_labelled_targets():
    rng = np.random.default_rng(7)
    z, y, m, g = _data("regression", 100, 3, rng)
    a = evaluate_task(REG, z, y, m, g, 3)
    b = evaluate_task(REG, z, y, m, g, 3, train_median=float(np.median(y[m])))
    assert a["csp"] == b["csp"]
    c = evaluate_task(REG, z, y, m, g, 3, train_median=1e9)  # nothing positive: parity
    assert c["csp"] == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_conditional_statistical_parity_by_stratum(seed):
    """CSP = stratum-size-weighted fairlearn demographic parity difference over the strata
    with two or more non-empty groups; a stratum with one group is left out."""
    rng = np.random.default_rng(seed)
    G, S = 3, 4
    z, y, m, g = _data("detection", 400, G, rng)
    strata = rng.integers(0, S, size=z.shape[0])
    g = np.where(strata == 3, 0, g)  # stratum 3 holds group 0 only
    res = evaluate_task(DET, z, y, m, g, G, conditioning=strata)
    num = den = 0.0
    for s in range(S):
        sel = m & (strata == s)
        if len(np.unique(g[sel])) < 2:
            continue
        gap = demographic_parity_difference(
            y[sel].astype(int), (z[sel] > 0).astype(int), sensitive_features=g[sel]
        )
        num += sel.sum() * gap
        den += sel.sum()
    assert res["csp"] == pytest.approx(num / den, abs=TOL)
    k = strata == 3
    one = evaluate_task(DET, z[k], y[k], m[k], g[k], G, conditioning=strata[k])
    assert math.isnan(one["csp"]) and "stratum" in one.undefined["csp"]


def test_ks_statistic_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 4, size=rng.integers(1, 30)).astype(float)
        b = rng.integers(0, 4, size=rng.integers(1, 30)).astype(float)
        assert ks_statistic(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=TOL)
    with pytest.raises(ValueError, match="non-empty"):
        ks_statistic([], [1.0])


# ------------------------------------------------------------------ undefined metrics policy


def test_no_labelled_sample_reports_every_metric_undefined():
    for task, z in ((DET, np.zeros(4)), (Task("c", "classification", num_classes=3),
                                        np.zeros((4, 3))), (REG, np.zeros(4))):
        res = evaluate_task(task, z, np.full(4, -1.0), np.zeros(4, bool), [0, 1, 0, 1], 2)
        assert isinstance(res, MetricReport)
        assert all(math.isnan(v) for v in res.values())
        assert set(res.undefined) == set(res)
        assert all(r == "no labelled sample" for r in res.undefined.values())


def test_single_group_reports_gaps_undefined_and_utility_defined():
    z = np.array([1.0, -1.0, 2.0, -2.0])
    res = evaluate_task(DET, z, [1, 0, 1, 0], None, [1, 1, 1, 1], 3)
    assert res["accuracy"] == 1.0 and res["f1"] == 1.0
    for k in ("eod", "eo", "ks", "csp"):
        assert math.isnan(res[k]) and k in res.undefined
    assert set(res.undefined) == {"eod", "eo", "ks", "csp"}


def test_f1_undefined_without_positives_or_positive_predictions():
    res = evaluate_task(DET, [-1.0, -2.0, -3.0, -1.0], [0, 0, 0, 0], None, [0, 0, 1, 1], 2)
    assert math.isnan(res["f1"]) and "positive" in res.undefined["f1"]
    assert res["accuracy"] == 1.0 and res["eo"] == 0.0 and math.isnan(res["eod"])


def test_ccc_undefined_for_identical_constants():
    res = evaluate_task(REG, [2.0, 2.0, 2.0], [2.0, 2.0, 2.0], None, [0, 1, 1], 2)
    assert math.isnan(res["ccc"]) and "constant" in res.undefined["ccc"]
    assert res["mae"] == 0.0 and res["rmse"] == 0.0


@given(task_batches())
def test_nan_exactly_when_reason_recorded(b):
    task = Task("t", b.kind, num_classes=b.num_classes)
    res = evaluate_task(task, *b.arrays())
    from fairmt_opt.fairness._metrics import METRIC_KEYS

    assert tuple(res) == METRIC_KEYS[b.kind]
    for k, v in res.items():
        assert math.isnan(v) == (k in res.undefined), (k, v, res.undefined)
        if not math.isnan(v):
            assert math.isfinite(v)
    if not b.mask.any():
        assert set(res.undefined) == set(res)


def test_metric_report_rejects_silent_nan():
    with pytest.raises(ValueError, match="NaN exactly when"):
        MetricReport({"eod": float("nan")})


# ------------------------------------------------------------------ sufficient statistics


@pytest.mark.parametrize("kind", ["detection", "classification", "regression"])
def test_hard_stats_over_shards_give_the_whole_batch(kind):
    rng = np.random.default_rng(3)
    task = Task("t", kind, num_classes=3 if kind == "classification" else 1)
    z, y, m, g = _data(kind, 301, 4, rng)
    c = rng.integers(0, 3, size=301)
    whole = hard_stats(task, z, y, m, g, 4, conditioning=c, train_median=0.5)
    cuts = [0, 17, 18, 150, 301]
    parts = [
        hard_stats(task, z[a:b], y[a:b], m[a:b], g[a:b], 4, conditioning=c[a:b], num_strata=3,
                   train_median=0.5)
        for a, b in itertools.pairwise(cuts)
    ]
    total = sum(parts)
    for k in whole.keys():
        if kind == "regression" and k not in ("n", "strata_count", "strata_pos"):
            np.testing.assert_allclose(total[k], whole[k], rtol=1e-12, atol=1e-12)
        else:  # counts: exact
            np.testing.assert_array_equal(total[k], whole[k])
    a, b = metrics_from_stats(task, total), metrics_from_stats(task, whole)
    for k in a:
        assert a[k] == pytest.approx(b[k], abs=1e-12, nan_ok=True)


def test_stats_of_different_shapes_refuse_to_add():
    a = hard_stats(DET, [1.0], [1], None, [0], 2)
    b = hard_stats(DET, [1.0], [1], None, [0], 3)
    with pytest.raises(ValueError, match="cannot add"):
        a + b
    c = hard_stats(DET, [1.0, 2.0], [1, 0], None, [0, 1], 2, conditioning=[0, 1])
    with pytest.raises(ValueError, match="num_strata"):
        a + c


def test_hard_stats_repr_and_torch_inputs():
    torch = pytest.importorskip("torch")
    s = hard_stats(DET, torch.tensor([1.0, -1.0]), torch.tensor([1, 0]), None,
                   torch.tensor([0, 1]), 2)
    assert "HardStats(kind='detection', num_groups=2" in repr(s)
    assert "labelled=2" in repr(s)
    t = hard_stats(DET, np.array([1.0, -1.0]), [1, 0], None, [0, 1], 2)
    for k in s.keys():
        np.testing.assert_array_equal(s[k], t[k])


@pytest.mark.parametrize(("seed", "G"), [(0, 2), (1, 3), (2, 5)])
def test_hard_violation_from_fairlearn_group_rates(seed, G):
    """AEOD of the hard statistics = SPEC §3 formula on fairlearn's per-group TPR / FPR."""
    from fairmt_opt.fairness import violation_from_stats

    rng = np.random.default_rng(seed)
    z, y, m, g = _data("detection", 300, G, rng, imbalanced=True)
    yt, yp, gm = y[m].astype(int), (z[m] > 0).astype(int), g[m]
    tpr = MetricFrame(metrics=true_positive_rate, y_true=yt, y_pred=yp,
                      sensitive_features=gm).by_group.to_numpy()
    fpr = MetricFrame(metrics=false_positive_rate, y_true=yt, y_pred=yp,
                      sensitive_features=gm).by_group.to_numpy()
    bracket = (tpr.max() - tpr) + (fpr - fpr.min())
    s = hard_stats(DET, z, y, m, g, G)
    assert float(violation_from_stats(DET, s)) == pytest.approx(bracket.mean(), abs=TOL)
    assert float(violation_from_stats(DET, s, group_reduction="max")) == pytest.approx(
        bracket.max(), abs=TOL)
    assert float(violation_from_stats(DET, s, include_fpr=False)) == pytest.approx(
        (tpr.max() - tpr).mean(), abs=TOL)
    assert float(violation_from_stats(DET, s, symmetric=True)) == pytest.approx(
        np.ptp(tpr) + np.ptp(fpr), abs=TOL)
    assert float(violation_from_stats(DET, s, scale=4.0)) == pytest.approx(
        bracket.mean() / 4, abs=TOL)


@pytest.mark.parametrize("score", ["mae", "mse", "ccc"])
def test_hard_aep_from_per_group_sklearn_scores(score):
    from fairmt_opt.fairness import violation_from_stats

    rng = np.random.default_rng(11)
    G = 4
    z, y, m, g = _data("regression", 400, G, rng)
    P = []
    for a in range(G):
        yt, yp = y[m & (g == a)], z[m & (g == a)]
        if score == "mae":
            P.append(-mean_absolute_error(yt, yp))
        elif score == "mse":
            P.append(-mean_squared_error(yt, yp))
        else:
            mp, mt = yp.mean(), yt.mean()
            P.append(2 * np.mean((yp - mp) * (yt - mt)) / (yp.var() + yt.var() + (mp - mt) ** 2))
    P = np.array(P)
    s = hard_stats(REG, z, y, m, g, G)
    tol = TOL if score != "ccc" else 1e-10  # CCC from sums loses a few digits
    res = violation_from_stats(REG, s, regression_score=score)
    np.testing.assert_allclose(res.rates["score"], P, atol=tol)
    assert float(res) == pytest.approx(np.mean(P.max() - P), abs=tol)
    sym = violation_from_stats(REG, s, regression_score=score, symmetric=True)
    assert float(sym) == pytest.approx(np.ptp(P), abs=tol)


@pytest.mark.parametrize(("G", "C"), [(2, 3), (3, 2), (4, 5)])
def test_hard_caeod_from_fairlearn_one_vs_rest_rates(G, C):
    from fairmt_opt.fairness import violation_from_stats

    rng = np.random.default_rng(G * C)
    task = Task("c", "classification", num_classes=C)
    z, y, m, g = _data("classification", 500, G, rng, C=C)
    yt, yp, gm = y[m].astype(int), np.argmax(z[m], axis=1), g[m]
    per_class = []
    for k in range(C):
        tk, pk = (yt == k).astype(int), (yp == k).astype(int)
        tpr = MetricFrame(metrics=true_positive_rate, y_true=tk, y_pred=pk,
                          sensitive_features=gm).by_group.to_numpy()
        fpr = MetricFrame(metrics=false_positive_rate, y_true=tk, y_pred=pk,
                          sensitive_features=gm).by_group.to_numpy()
        per_class.append(np.mean((tpr.max() - tpr) + (fpr - fpr.min())))
    s = hard_stats(task, z, y, m, g, G)
    assert float(violation_from_stats(task, s)) == pytest.approx(np.mean(per_class), abs=TOL)
