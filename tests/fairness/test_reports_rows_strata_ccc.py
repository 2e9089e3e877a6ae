"""Finite rows in the evaluation, reports without pandas, per-stratum reports, reports within
control levels, every combination of intersections, fairlearn's equalized-odds aggregate and
the centred soft CCC."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from fairmt_opt.fairness import (
    Task,
    by_group,
    by_group_controlled,
    encode_groups,
    evaluate_task,
    group_rates,
    hard_stats,
    soft_stats,
)
from fairmt_opt.fairness._stats import regression_scores

DET = Task("y", "detection")
CLS = Task("c", "classification", num_classes=3)
REG = Task("r", "regression")


# ------------------------------------------------------------------ finite rows (item: rule)

@pytest.mark.parametrize(("task", "z"), [
    (DET, np.array([0.5, -1.0, np.nan, 2.0, 0.1])),
    (REG, np.array([0.5, -1.0, np.inf, 2.0, 0.1])),
    (CLS, np.array([[0.5, 1, 0], [-1, 1, 0], [1, -np.inf, 0], [2.0, 0, 0], [0, 0, 1]])),
])
@pytest.mark.parametrize("fn", [evaluate_task, by_group])
def test_evaluation_names_the_task_and_the_first_bad_row_even_unlabelled(task, z, fn):
    y = np.array([1, 0, 1, 0, 1])
    m = np.array([True, True, False, True, True])  # row 2 is unlabelled
    with pytest.raises(ValueError, match=rf"task '{task.name}': outputs contain NaN or inf on "
                                         r"row 2 of 5 \(labelled in no task"):
        fn(task, z, y, m, [0, 0, 1, 1, 1], output="logits")


def test_evaluation_and_torch_check_share_the_rule():
    torch = pytest.importorskip("torch")
    from fairmt_opt.torch._checks import check_batch

    z = np.array([0.5, -1.0, np.nan, 2.0])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    m = np.array([True, True, False, True])
    g = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="row 2 of 4") as e1:
        evaluate_task(DET, z, y, m, g, 2, output="logits")
    h = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="row 2 of 4") as e2:
        check_batch([DET], h, [torch.tensor(z)[:, None]], [torch.tensor(y)],
                    [torch.tensor(m)], torch.tensor(g), 2)
    assert "task 'y'" in str(e1.value) and "task 'y'" in str(e2.value)
    # finite outputs with garbage targets on the unlabelled row are accepted by both
    zf = np.array([0.5, -1.0, 3.0, 2.0])
    evaluate_task(DET, zf, np.array([1.0, 0.0, np.nan, 0.0]), m, g, 2, output="logits")


# ------------------------------------------------------------------ reports without pandas

def test_by_group_without_pandas_is_a_dict_of_rows(monkeypatch):
    yp, yt = [1, 0, 1, 1, 0, 0], [1, 0, 1, 0, 1, 0]
    grp = ["a", "a", "a", "b", "b", "b"]
    with_pd = by_group(DET, yp, yt, None, grp, output="labels").by_group
    monkeypatch.setitem(sys.modules, "pandas", None)  # ``import pandas`` raises ImportError
    with pytest.raises(ImportError):
        import pandas  # noqa: F401
    r = by_group(DET, yp, yt, None, grp, output="labels")
    rows = r.by_group
    assert isinstance(rows, dict) and list(rows) == ["a", "b"]
    assert list(rows["a"]) == list(r.columns)
    for lab in ("a", "b"):
        for col in r.columns:
            assert rows[lab][col] == pytest.approx(float(with_pd.loc[lab, col]), nan_ok=True)
    assert rows["a"]["tpr"] == 1.0 and rows["b"]["selection_rate"] == pytest.approx(1 / 3)
    # a controlled report without pandas: per-level dicts
    c = by_group_controlled(DET, yp, yt, None, grp, ["u", "u", "v", "v", "u", "v"],
                            output="labels")
    assert set(c.overall) == {"u", "v"} and isinstance(c.overall["u"], dict)
    assert set(c.by_group) == {"u", "v"} and isinstance(c.by_group["u"], dict)
    assert c.difference()["u"]["selection_rate"] == 0.5  # a: 1/2, b: 0/1


# ------------------------------------------------------------------ per-stratum reports

@pytest.mark.parametrize("task", [DET, REG])
def test_per_stratum_columns_read_the_strata_ids(task):
    rng = np.random.default_rng(7)
    N = 60
    z = rng.normal(size=N)
    y = rng.integers(0, 2, N) if task.kind == "detection" else rng.normal(size=N)
    g = rng.integers(0, 2, N)
    codes = rng.choice([3, 10**6, 10**9], size=N)  # sparse codes: only 3 strata in memory
    kw = {"train_median": 0.0} if task.kind == "regression" else {}
    r = by_group(task, z, y, None, g, 2, output="logits", conditioning=codes, **kw)
    stats = hard_stats(task, z, y, None, g, 2, conditioning=codes, **kw)
    assert list(stats.strata_ids) == [3, 10**6, 10**9]
    name = "selection_rate" if task.kind == "detection" else "above_median"
    cols = [c for c in r.columns if "@" in c]
    assert cols == [f"{name}@{s}" for s in (3, 10**6, 10**9)]
    table = r.by_group
    for s in (3, 10**6, 10**9):
        for grp in (0, 1):
            sel = (codes == s) & (g == grp)
            want = np.mean(z[sel] > 0)
            assert table.loc[grp, f"{name}@{s}"] == pytest.approx(want, abs=1e-15)
        # the report restricted to the stratum by the mask gives the same per-group rate
        if task.kind == "detection":
            sub = by_group(task, z, y, codes == s, g, 2, output="logits")
            np.testing.assert_allclose(table[f"{name}@{s}"].to_numpy(),
                                       sub.by_group["selection_rate"].to_numpy(), atol=1e-15)
    # the per-stratum gaps are the terms of CSP: their max over strata is reported CSP-like
    gaps = [table[f"{name}@{s}"].max() - table[f"{name}@{s}"].min() for s in (3, 10**6, 10**9)]
    assert r.difference()[f"{name}@{10**9}"] == pytest.approx(gaps[2], abs=1e-15)


# ------------------------------------------------------------------ control features

def test_controlled_report_is_by_group_within_each_level():
    rng = np.random.default_rng(11)
    N = 80
    yp, yt = rng.integers(0, 2, N), rng.integers(0, 2, N)
    sf = rng.choice(["a", "b", "c"], N)
    cf = rng.choice(["x", "y"], N)
    w = rng.integers(1, 4, N).astype(float)
    c = by_group_controlled(DET, yp, yt, None, sf, cf, output="labels", sample_weight=w)
    assert c.levels == ("x", "y")
    bg = c.by_group
    assert list(bg.index.get_level_values(0).unique()) == ["x", "y"]
    for lev in c.levels:
        sel = cf == lev
        direct = by_group(DET, yp[sel], yt[sel], None, sf[sel], output="labels",
                          sample_weight=w[sel])
        np.testing.assert_allclose(bg.loc[lev][["tpr", "fpr", "selection_rate"]].to_numpy(),
                                   direct.by_group[["tpr", "fpr", "selection_rate"]].to_numpy(),
                                   atol=1e-15)
        assert c.overall.loc[lev, "tpr"] == pytest.approx(direct.overall["tpr"], abs=1e-15)
        for meth in ("between_groups", "to_overall"):
            assert c.difference(meth).loc[lev, "fpr"] == pytest.approx(
                direct.difference(meth)["fpr"], abs=1e-15)
            assert c.ratio(meth).loc[lev, "selection_rate"] == pytest.approx(
                direct.ratio(meth)["selection_rate"], abs=1e-15)
        assert c.group_min().loc[lev, "accuracy"] == direct.group_min()["accuracy"]
        assert c.equalized_odds().loc[lev] == direct.equalized_odds()


def test_controlled_report_rejects_shared_names_and_bad_mask():
    g = {"A": ["a", "b", "a", "b"], "B": [0, 0, 1, 1]}
    with pytest.raises(ValueError, match=r"share the feature names \['B'\]"):
        by_group_controlled(DET, [1, 0, 1, 0], [1, 1, 0, 0], None, g,
                            {"B": [0, 1, 0, 1], "C": [1, 1, 0, 0]}, output="labels")
    with pytest.raises(ValueError, match=r"mask must have shape \(4,\)"):
        by_group_controlled(DET, [1, 0, 1, 0], [1, 1, 0, 0], [True] * 3, [0, 1, 0, 1],
                            [0, 0, 1, 1], output="labels")


def test_duplicate_feature_names_raise():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(np.array([["a", "x"], ["b", "y"]]), columns=["A", "A"])
    with pytest.raises(ValueError, match="two features named 'A'"):
        encode_groups(frame)


# ------------------------------------------------------------------ every combination

def test_all_intersections_list_absent_combinations_as_empty_groups():
    sex = ["f", "f", "m", "m", "m"]
    age = [1, 2, 1, 1, 2]
    yt = [1, 0, 1, 0, 1]
    yp = [1, 1, 0, 0, 1]
    present = by_group(DET, yp, yt, None, {"sex": sex, "age": age}, output="labels")
    full = by_group(DET, yp, yt, None, {"sex": sex, "age": age}, output="labels",
                    intersections="all")
    assert present.group_labels == (("f", 1), ("f", 2), ("m", 1), ("m", 2))
    sex2 = ["f", "f", "m", "m"]
    age2 = [1, 2, 1, 1]  # ("m", 2) absent
    r = by_group(DET, yp[:4], yt[:4], None, {"sex": sex2, "age": age2}, output="labels",
                 intersections="all")
    assert r.group_labels == (("f", 1), ("f", 2), ("m", 1), ("m", 2))
    assert np.isnan(r.by_group.loc[("m", 2), "tpr"]) and r.by_group.loc[("m", 2), "count"] == 0
    r0 = by_group(DET, yp[:4], yt[:4], None, {"sex": sex2, "age": age2}, output="labels")
    for name in ("group_min", "group_max"):
        assert getattr(r, name)() == getattr(r0, name)()
    for meth in ("between_groups", "to_overall"):
        assert r.difference(meth) == r0.difference(meth)
    for k in full.overall:
        assert full.overall[k] == present.overall[k]
    with pytest.raises(ValueError, match="intersections must be"):
        encode_groups(sex, intersections="some")


# ------------------------------------------------------------------ equalized odds, scalars

def test_equalized_odds_aggregate_and_its_errors():
    yp = [1, 0, 1, 1, 0, 0, 1, 1]
    yt = [1, 0, 1, 0, 1, 0, 0, 1]
    g = ["a", "a", "a", "a", "b", "b", "b", "b"]
    r = by_group(DET, yp, yt, None, g, output="labels")
    d, q = r.difference(), r.ratio()
    assert r.equalized_odds() == max(d["tpr"], d["fpr"])
    assert r.equalized_odds(agg="mean") == pytest.approx((d["tpr"] + d["fpr"]) / 2)
    assert r.equalized_odds("ratio") == min(q["tpr"], q["fpr"])
    assert r.equalized_odds("ratio", "to_overall", "mean") == pytest.approx(
        (r.ratio("to_overall")["tpr"] + r.ratio("to_overall")["fpr"]) / 2)
    with pytest.raises(ValueError, match="agg must be one of 'worst_case' or 'mean', got 'x'"):
        r.equalized_odds(agg="x")
    with pytest.raises(ValueError, match="kind must be"):
        r.equalized_odds("sum")
    with pytest.raises(ValueError, match="needs a detection report"):
        by_group(REG, [1.0, 2.0], [1.0, 1.0], None, [0, 1]).equalized_odds()
    # a single group and no value for either term: NaN, never a number
    one = by_group(DET, [1, 0], [1, 0], None, ["a", "a"], output="labels")
    assert math.isnan(one.equalized_odds())


def test_counts_columns_and_scalar_inputs():
    yp, yt = [1, 0, 1, 1, 0, 0], [1, 0, 1, 0, 1, 0]
    w = [1.0, 2.0, 1.0, 3.0, 1.0, 1.0]
    r = by_group(DET, yp, yt, None, ["a"] * 3 + ["b"] * 3, output="labels", sample_weight=w)
    bg = r.by_group
    assert bg[["tn", "fp", "fn", "tp"]].loc["a"].tolist() == [2.0, 0.0, 0.0, 2.0]
    assert bg[["tn", "fp", "fn", "tp"]].loc["b"].tolist() == [1.0, 3.0, 1.0, 0.0]
    assert [r.overall[k] for k in ("tn", "fp", "fn", "tp")] == [3.0, 3.0, 1.0, 2.0]
    # a single value is one sample, as fairlearn's selection_rate(1, 1)
    for yp1, yt1, want in ((1, 0, 1.0), (False, False, 0.0), (np.int64(1), 1, 1.0)):
        one = by_group(DET, yp1, yt1, None, ["g"], output="labels")
        assert one.overall["selection_rate"] == want


# ------------------------------------------------------------------ the soft CCC

def _ccc_batch(mu, N=200, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=N)
    t = 0.8 * p + 0.6 * rng.normal(size=N)
    return mu + p, mu + t, rng.integers(0, 2, N)


@pytest.mark.parametrize("mu", [0.0, 1e6, 1e9, 1e12])
def test_soft_ccc_from_centred_sums_matches_the_hard_ccc(mu):
    p, t, g = _ccc_batch(mu)
    hard, _ = regression_scores(hard_stats(REG, p, t, None, g, 2), ("ccc",))
    soft, ok = group_rates(REG, soft_stats(REG, p, t, None, g, 2), regression_score="ccc")
    assert ok["score"].all()
    np.testing.assert_allclose(soft["score"], hard["ccc"], rtol=1e-9)
    # two shards with their own shifts, re-centred exactly by a + b
    a = soft_stats(REG, p[:70], t[:70], None, g[:70], 2)
    b = soft_stats(REG, p[70:], t[70:], None, g[70:], 2)
    assert a.shift != b.shift
    ab, _ = group_rates(REG, a + b, regression_score="ccc")
    np.testing.assert_allclose(ab["score"], hard["ccc"], rtol=1e-9)
    # the sums of a + b are those of the whole batch about a's shift
    whole = soft_stats(REG, p, t, None, g, 2, shift=a.shift)
    for k in whole.keys():
        np.testing.assert_allclose((a + b)[k], whole[k], rtol=1e-9,
                                   atol=1e-9 * max(1.0, float(np.abs(whole[k]).max())))


def test_uncentred_sums_lose_the_ccc_at_large_means():
    """Why the sums are centred: about 0 the one-pass moments cancel catastrophically."""
    p, t, g = _ccc_batch(1e9)
    hard, _ = regression_scores(hard_stats(REG, p, t, None, g, 2), ("ccc",))
    raw, ok = group_rates(REG, soft_stats(REG, p, t, None, g, 2, shift=0.0),
                          regression_score="ccc")
    err = np.abs(np.where(ok["score"], raw["score"], np.inf) - hard["ccc"])
    assert np.all(err > 1e-3)
    with pytest.raises(ValueError, match="shift must be a finite number"):
        soft_stats(REG, p, t, None, g, 2, shift=float("nan"))


@pytest.mark.parametrize("mu", [1e6, 1e12])
def test_soft_ccc_gradients_finite_and_correct_at_large_means(mu):
    torch = pytest.importorskip("torch")
    p, t, g = _ccc_batch(mu, N=40, seed=3)
    pt = torch.tensor(p, requires_grad=True)
    r, _ = group_rates(REG, soft_stats(REG, pt, torch.tensor(t), None, torch.tensor(g), 2),
                       regression_score="ccc")
    r["score"].sum().backward()
    assert torch.isfinite(pt.grad).all()
    # the same gradient as at mean 0 (the CCC is shift invariant; float64 round-off of the
    # inputs themselves is 1e-16 * mu relative to a unit spread)
    p0 = torch.tensor(p - mu, requires_grad=True)
    r0, _ = group_rates(REG, soft_stats(REG, p0, torch.tensor(t - mu), None,
                                        torch.tensor(g), 2), regression_score="ccc")
    r0["score"].sum().backward()
    torch.testing.assert_close(pt.grad, p0.grad, rtol=0, atol=max(1e-12, 1e-15 * mu))


# ------------------------------------------------------------------ R² in regression reports

@pytest.mark.parametrize("mu", [0.0, 1e12])
def test_r2_column_matches_sklearn_and_is_exact_at_large_means(mu):
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    p0 = rng.normal(size=80)
    t0 = 0.7 * p0 + rng.normal(size=80)
    g = rng.integers(0, 2, 80)
    w = rng.integers(1, 4, 80).astype(float)
    p, t = mu + p0, mu + t0
    d0, dt = p - mu, t - mu  # exact: the data sklearn sees without the offset
    r = by_group(REG, p, t, None, g, sample_weight=w)
    for k in (0, 1):
        sel = g == k
        want = skm.r2_score(dt[sel], d0[sel], sample_weight=w[sel])
        assert r.by_group.loc[k, "r2"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert r.overall["r2"] == pytest.approx(skm.r2_score(dt, d0, sample_weight=w), rel=1e-9)
    # constant targets: no R² (sklearn's force_finite would give 0 or 1), with its reason
    c = by_group(REG, [1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 1.0, 2.0], None, ["a", "a", "b", "b"])
    assert math.isnan(c.by_group.loc["a", "r2"]) and ("a", "r2") in c.undefined_cells
    assert c.by_group.loc["b", "r2"] == pytest.approx(skm.r2_score([1.0, 2.0], [3.0, 4.0]))


def test_a_list_of_series_is_refused_not_read_as_rows():
    pd = pytest.importorskip("pandas")
    feats = [pd.Series(["a", "b", "a"], name="A"), pd.Series([1, 1, 2], name="B")]
    with pytest.raises(ValueError, match="list of pandas objects: pass several sensitive "
                                         "features as a DataFrame or a dict"):
        encode_groups(feats)
    with pytest.raises(ValueError, match="list of pandas objects"):
        by_group(DET, [1, 0, 1], [1, 0, 0], None, feats, output="labels")
    # the same features as a dict or a DataFrame are intersections
    e = encode_groups({"A": feats[0], "B": feats[1]})
    assert e.labels == (("a", 1), ("a", 2), ("b", 1)) and e.names == ("A", "B")
    assert encode_groups(pd.concat(feats, axis=1)).labels == e.labels
