"""``sample_weight`` in the additive statistics: scikit-learn's and fairlearn's semantics.

A row's weight multiplies its contribution to every count and every sum, so integer weights
equal repeated rows and a weight 0 equals a dropped row; checked against scikit-learn's
weighted confusion matrix and fairlearn's weighted MetricFrame.
"""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
from sklearn.metrics import confusion_matrix, mean_absolute_error, mean_squared_error

from fairmt_opt.fairness import Task, hard_stats, soft_stats
from fairmt_opt.fairness._stats import check_sample_weight, group_matrix

DET = Task("d", "detection")
CLS = Task("c", "classification", num_classes=3)
REG = Task("r", "regression")
TASKS = {"detection": DET, "classification": CLS, "regression": REG}


def _batch(kind, N, G, rng):
    g = rng.integers(0, G, size=N)
    g[:G] = np.arange(G)
    m = rng.random(N) > 0.25
    if kind == "detection":
        z = rng.normal(size=N)
        y = (rng.random(N) < 0.5).astype(float)
    elif kind == "classification":
        z = rng.normal(size=(N, 3))
        y = rng.integers(0, 3, size=N).astype(float)
    else:
        z = rng.normal(size=N) * 3 + 1
        y = z + rng.normal(size=N)
    y = np.where(m, y, np.nan)  # unlabelled targets are never read
    return z, y, m, g


def _assert_same(a, b, *, exact):
    assert set(a.keys()) == set(b.keys())
    for k in a.keys():
        if exact:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("kind", ["detection", "classification", "regression"])
def test_integer_weights_equal_repeated_rows(kind):
    rng = np.random.default_rng(1)
    task = TASKS[kind]
    z, y, m, g = _batch(kind, 120, 3, rng)
    c = rng.integers(0, 4, size=120)
    w = rng.integers(0, 4, size=120)
    rep = np.repeat(np.arange(120), w)
    weighted = hard_stats(task, z, y, m, g, 3, conditioning=c, num_strata=4, sample_weight=w)
    repeated = hard_stats(task, z[rep], y[rep], m[rep], g[rep], 3, conditioning=c[rep],
                          num_strata=4)
    # counts are exact integers either way; real sums agree to rounding
    _assert_same(weighted, repeated, exact=kind != "regression")


@pytest.mark.parametrize("kind", ["detection", "classification", "regression"])
def test_zero_weights_equal_dropped_rows(kind):
    rng = np.random.default_rng(2)
    task = TASKS[kind]
    z, y, m, g = _batch(kind, 90, 2, rng)
    w = rng.random(90) * 3
    w[rng.random(90) < 0.4] = 0.0
    w[:4] = 1.0  # both groups keep a labelled row
    m[:4] = True
    y[:4] = 1.0 if kind != "regression" else y[:4]
    if kind == "regression":
        y[:4] = z[:4] + 0.5
    keep = w > 0
    c = rng.integers(0, 3, size=90)
    a = hard_stats(task, z, y, m, g, 2, conditioning=c, num_strata=3, sample_weight=w,
                   train_median=0.25)
    b = hard_stats(task, z[keep], y[keep], m[keep], g[keep], 2, conditioning=c[keep],
                   num_strata=3, sample_weight=w[keep], train_median=0.25)
    _assert_same(a, b, exact=False)


def test_unit_weights_equal_no_weights():
    rng = np.random.default_rng(3)
    for kind, task in TASKS.items():
        z, y, m, g = _batch(kind, 50, 2, rng)
        _assert_same(hard_stats(task, z, y, m, g, 2, sample_weight=np.ones(50)),
                     hard_stats(task, z, y, m, g, 2), exact=True)


def test_detection_counts_against_sklearn_weighted_confusion_matrix():
    rng = np.random.default_rng(4)
    z, y, m, g = _batch("detection", 300, 3, rng)
    w = rng.random(300) * 2
    s = hard_stats(DET, z, y, m, g, 3, sample_weight=w)
    pred = (z > 0).astype(int)
    for a in range(3):
        sel = m & (g == a)
        tn, fp, fn, tp = confusion_matrix(y[sel].astype(int), pred[sel], labels=[0, 1],
                                          sample_weight=w[sel]).ravel()
        assert s["tp"][a, 0] == pytest.approx(tp, rel=1e-12)
        assert s["fp"][a, 0] == pytest.approx(fp, rel=1e-12)
        assert s["pos"][a, 0] == pytest.approx(tp + fn, rel=1e-12)
        assert s["neg"][a, 0] == pytest.approx(tn + fp, rel=1e-12)


def test_classification_counts_against_sklearn_weighted_confusion_matrix():
    rng = np.random.default_rng(5)
    z, y, m, g = _batch("classification", 400, 2, rng)
    w = rng.random(400)
    s = hard_stats(CLS, z, y, m, g, 2, sample_weight=w)
    pred = np.argmax(z, axis=1)
    for a in range(2):
        sel = m & (g == a)
        cm = confusion_matrix(y[sel].astype(int), pred[sel], labels=[0, 1, 2],
                              sample_weight=w[sel])
        np.testing.assert_allclose(s["tp"][a], np.diag(cm), rtol=1e-12)
        np.testing.assert_allclose(s["pos"][a], cm.sum(axis=1), rtol=1e-12)
        np.testing.assert_allclose(s["fp"][a], cm.sum(axis=0) - np.diag(cm), rtol=1e-12)
        np.testing.assert_allclose(s["neg"][a], cm.sum() - cm.sum(axis=1), rtol=1e-12)


def test_group_rates_against_fairlearn_weighted_metric_frame():
    rng = np.random.default_rng(6)
    z, y, m, g = _batch("detection", 500, 4, rng)
    w = rng.random(500) * 5
    s = hard_stats(DET, z, y, m, g, 4, sample_weight=w)
    yt, yp, gm, wm = y[m].astype(int), (z[m] > 0).astype(int), g[m], w[m]
    mf = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate,
                 "sel": selection_rate},
        y_true=yt, y_pred=yp, sensitive_features=gm,
        sample_params={k: {"sample_weight": wm} for k in ("tpr", "fpr", "sel")},
    )
    bg = mf.by_group
    np.testing.assert_allclose(s["tp"][:, 0] / s["pos"][:, 0], bg["tpr"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(s["fp"][:, 0] / s["neg"][:, 0], bg["fpr"].to_numpy(), rtol=1e-12)
    n = s["pos"][:, 0] + s["neg"][:, 0]
    np.testing.assert_allclose((s["tp"][:, 0] + s["fp"][:, 0]) / n, bg["sel"].to_numpy(),
                               rtol=1e-12)
    # the strata (one stratum: demographic parity) hold the same weighted selection counts
    np.testing.assert_allclose(s["strata_pos"][0, :, 0] / s["strata_count"][0],
                               bg["sel"].to_numpy(), rtol=1e-12)


def test_regression_sums_against_sklearn_weighted_errors():
    rng = np.random.default_rng(7)
    z, y, m, g = _batch("regression", 200, 2, rng)
    w = rng.random(200) * 4
    s = hard_stats(REG, z, y, m, g, 2, sample_weight=w)
    for a in range(2):
        sel = m & (g == a)
        assert s["n"][a] == pytest.approx(w[sel].sum(), rel=1e-12)
        assert s["abs_err"][a] / s["n"][a] == pytest.approx(
            mean_absolute_error(y[sel], z[sel], sample_weight=w[sel]), rel=1e-12)
        assert s["sq_err"][a] / s["n"][a] == pytest.approx(
            mean_squared_error(y[sel], z[sel], sample_weight=w[sel]), rel=1e-12)


def test_default_median_is_the_weighted_median():
    """Regression CSP counts predictions above the median of the labelled targets; with weights
    that of the targets repeated by their weights (odd and even totals)."""
    z = np.array([0.5, 1.5, 2.5, 3.5, 4.5])
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    g = np.array([0, 1, 0, 1, 0])
    for w in ([1, 1, 1, 1, 1], [3, 0, 1, 1, 2], [2, 2, 1, 0, 1], [0, 0, 0, 1, 1]):
        w = np.array(w)
        rep = np.repeat(np.arange(5), w)
        a = hard_stats(REG, z, y, None, g, 2, sample_weight=w)
        b = hard_stats(REG, z[rep], y[rep], None, g[rep], 2)
        np.testing.assert_array_equal(a["strata_pos"], b["strata_pos"])
        med = np.median(y[rep])
        np.testing.assert_array_equal(
            a["strata_pos"][0, :, 0],
            [np.sum(w * (z > med) * (g == k)) for k in range(2)])


def test_soft_stats_weights_match_repeated_rows_and_keep_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    z, y, m, g = _batch("detection", 40, 2, rng)
    w = rng.integers(0, 3, size=40)
    rep = np.repeat(np.arange(40), w)
    zt = torch.tensor(z, requires_grad=True)
    a = soft_stats(DET, zt, torch.tensor(np.nan_to_num(y)), torch.tensor(m), torch.tensor(g), 2,
                   sample_weight=torch.tensor(w))
    b = soft_stats(DET, z[rep], np.nan_to_num(y)[rep], m[rep], g[rep], 2)
    for k in a.keys():
        np.testing.assert_allclose(a[k].detach().numpy(), b[k], rtol=1e-12, atol=1e-12)
    a["tp"].sum().backward()
    assert zt.grad is not None and bool(torch.all(zt.grad[w == 0] == 0))


def test_group_matrix_weights_rows():
    Gm = group_matrix(np, np.array([0, 1, 1]), 2, np.float64,
                      sample_weight=np.array([2.0, 0.5, 0.0]))
    np.testing.assert_array_equal(Gm, [[2.0, 0.0], [0.0, 0.5], [0.0, 0.0]])


@pytest.mark.parametrize(
    ("w", "match"),
    [
        (np.ones(3), r"sample_weight must have shape \(4,\)"),
        (np.ones((4, 1)), r"sample_weight must have shape \(4,\)"),
        (np.array([1.0, np.nan, 1.0, 1.0]), "sample_weight must be finite, found nan at row 1"),
        (np.array([1.0, 1.0, np.inf, 1.0]), "sample_weight must be finite"),
        (np.array([1.0, 1.0, 1.0, -0.5]), "sample_weight must be nonnegative, found -0.5 at row 3"),
        (np.array(["a", "b", "c", "d"]), "sample_weight must hold real numbers"),
        (np.array([True, False, True, True]), "sample_weight must hold real numbers"),
    ],
)
def test_bad_weights_are_rejected_naming_the_argument(w, match):
    z, y, g = np.array([1.0, -1.0, 2.0, 0.5]), np.array([1, 0, 1, 0]), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match=match):
        hard_stats(DET, z, y, None, g, 2, sample_weight=w)
    with pytest.raises(ValueError, match=match):
        soft_stats(DET, z, y, None, g, 2, sample_weight=w)


def test_check_sample_weight_torch_dtype_and_validation_switch():
    torch = pytest.importorskip("torch")
    like = torch.zeros(3, dtype=torch.float32)
    w = check_sample_weight([1, 2, 3], 3, like)
    assert w.dtype == torch.float32 and w.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="sample_weight must be nonnegative"):
        check_sample_weight(torch.tensor([1.0, -2.0, 0.0]), 3, like)
    # validate=False skips only the value checks (no host read), never the shape check
    assert check_sample_weight(torch.tensor([1.0, -2.0, 0.0]), 3, like, validate=False) is not None
    with pytest.raises(ValueError, match="shape"):
        check_sample_weight(torch.tensor([1.0]), 3, like, validate=False)
    assert check_sample_weight(None, 3) is None
