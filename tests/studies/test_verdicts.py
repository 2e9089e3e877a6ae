"""Intervals and verdicts of the studies: t over seeds, paired bootstrap over test samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fairmt_opt.datasets import make_synthetic
from fairmt_opt.studies._compare import compare_summary
from fairmt_opt.studies._evidence import sample_metrics
from fairmt_opt.studies._verdicts import (
    Interval,
    bootstrap_intervals,
    difference_verdict,
    percentile_interval,
    resample_indices,
    t_interval,
)


def test_t_interval_matches_scipy() -> None:
    x = np.array([0.31, 0.27, 0.35, 0.30, 0.29])
    iv = t_interval(x, level=0.9)
    lo, hi = stats.t.interval(0.9, x.size - 1, loc=x.mean(), scale=stats.sem(x))
    assert iv.estimate == pytest.approx(x.mean())
    assert (iv.low, iv.high) == pytest.approx((lo, hi), rel=1e-12)
    assert iv.method == "t over 5 seeds"


def test_t_interval_rejects_one_seed_and_nan() -> None:
    with pytest.raises(ValueError, match="at least two numbers"):
        t_interval([0.1])
    with pytest.raises(ValueError, match="finite"):
        t_interval([0.1, float("nan")])
    with pytest.raises(ValueError, match="level must be in"):
        t_interval([0.1, 0.2], level=1.0)


def test_bootstrap_is_seeded_and_covers_the_mean() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 1.0, size=400)

    def stat(idx: np.ndarray) -> list[float]:
        return [x[idx].mean(), x[idx].std()]

    a = bootstrap_intervals(stat, x.size, resamples=300, seed=5)
    b = bootstrap_intervals(stat, x.size, resamples=300, seed=5)
    c = bootstrap_intervals(stat, x.size, resamples=300, seed=6)
    assert a == b
    assert a != c
    mean = a[0]
    assert mean.estimate == x.mean()
    assert mean.low < x.mean() < mean.high
    # the percentile interval of the mean is close to the normal-theory one, 1.96 s / sqrt(n)
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert mean.high - mean.low == pytest.approx(2 * 1.96 * se, rel=0.2)
    # the resamples are the ones resample_indices gives
    manual = [x[idx].mean() for idx in resample_indices(x.size, 300, seed=5)]
    assert (mean.low, mean.high) == pytest.approx(tuple(np.percentile(manual, [2.5, 97.5])))


def test_percentile_interval_counts_undefined_resamples() -> None:
    vals = np.r_[np.linspace(0, 1, 30), [np.nan] * 3]
    iv = percentile_interval(0.5, vals)
    assert iv.dropped == 3 and iv.method == "bootstrap percentile, 33 resamples"
    with pytest.raises(ValueError, match="undefined on 20 of 30"):
        percentile_interval(0.5, np.r_[np.zeros(10), [np.nan] * 20])
    with pytest.raises(ValueError, match="estimate is undefined"):
        percentile_interval(float("nan"), np.zeros(20))
    with pytest.raises(ValueError, match="resamples must be an integer >= 10"):
        bootstrap_intervals(lambda idx: [0.0], 5, resamples=3)


def _boot(lo: float, hi: float) -> Interval:
    return Interval((lo + hi) / 2, lo, hi, 0.95, "bootstrap percentile, 500 resamples")


def test_difference_verdict_resolved_and_not() -> None:
    fairer = difference_verdict([-0.030, -0.034, -0.028], _boot(-0.045, -0.018))
    assert fairer.direction == -1 and fairer.resolved
    assert fairer.describe("fairer", "LESS fair") == "fairer"
    assert fairer.interval.low <= -0.045 and fairer.interval.high <= -0.018  # the hull
    # seeds disagree: the t-interval spans 0 although the bootstrap does not
    split = difference_verdict([-0.05, 0.03, -0.01], _boot(-0.03, -0.01))
    assert split.direction == 0
    assert split.describe("fairer", "LESS fair") == "not resolved (the interval includes 0)"
    # a margin: a utility loss of 0.002 is within a tolerance of 0.01
    equal = difference_verdict([-0.002, -0.001, -0.003], _boot(-0.004, 0.0), margin=-0.01)
    assert equal.direction == 1


def test_one_seed_rests_on_the_bootstrap_alone() -> None:
    # the case of the issue: one seed, an EO gap of 0.002 that the test sample cannot tell
    tiny = difference_verdict([-0.002], _boot(-0.011, 0.007))
    assert tiny.seeds is None and tiny.direction == 0
    assert "one seed" in tiny.describe("fairer", "LESS fair")
    assert "not resolved" in tiny.describe("fairer", "LESS fair")
    # a gap the bootstrap resolves is reported, flagged as test-sample noise only
    big = difference_verdict([-0.08], _boot(-0.10, -0.06))
    assert big.direction == -1
    assert big.describe("fairer", "LESS fair") == "fairer (one seed: test-sample noise only)"


def _fixed_example(n_seeds: int, gap: float) -> tuple[object, dict]:
    """One detection task; ``linear`` predicts the label except for a share ``gap`` of the
    minority group's positives (EO of about ``gap``); ``fairmt`` predicts every label."""
    ds = make_synthetic(n_samples=3000, n_tasks=1, seed=0)
    y = ds.test.targets[0].astype(float)
    g = ds.test.groups
    outputs = {}
    for s in range(n_seeds):
        rng = np.random.default_rng(100 + s)
        fair = np.where(y > 0.5, 2.0, -2.0)
        unfair = fair.copy()
        pos_min = np.flatnonzero((y > 0.5) & (g == 1))
        flip = rng.choice(pos_min, size=max(1, round(gap * pos_min.size)), replace=False)
        unfair[flip] = -2.0
        outputs[("fairmt", s)] = [fair]
        outputs[("linear", s)] = [unfair]
    return ds, outputs


def test_fixed_example_resolved_and_deterministic() -> None:
    ds, outputs = _fixed_example(3, gap=0.4)
    a = sample_metrics(ds, outputs, resamples=200, seed=0)
    b = sample_metrics(ds, outputs, resamples=200, seed=0)
    assert all(np.array_equal(a.values[k], b.values[k]) for k in a.values)
    name = ds.tasks[0].name
    v = a.verdict("fairmt", "linear", name, "fairness")
    assert v.direction == -1 and v.estimate < -0.2
    text = compare_summary(a, ("fairmt", "linear"), 0.05)
    # fairmt is more accurate here, so its utility is resolved within the tolerance
    assert "on 1 of 1 task(s)" in text and ": fairer at equal utility" in text
    # the worst group (the minority) gains TPR, the best one keeps it
    assert "FairMT kept (no change resolved) the best group's tpr" in text
    assert "raised the worst group's" in text


def test_fixed_example_not_resolved_with_one_seed() -> None:
    ds, outputs = _fixed_example(1, gap=0.004)  # one flipped positive: a tiny EO gap
    samples = sample_metrics(ds, outputs, resamples=200, seed=0)
    name = ds.tasks[0].name
    v = samples.verdict("fairmt", "linear", name, "fairness")
    assert v.seeds is None and 0 < -v.estimate < 0.05
    assert v.direction == 0
    text = compare_summary(samples, ("fairmt", "linear"), 0.05)
    assert "did NOT improve fairness" in text and "not resolved" in text
    assert "one seed" in text


def test_sample_metrics_needs_paired_seeds() -> None:
    ds, outputs = _fixed_example(2, gap=0.2)
    del outputs[("linear", 1)]
    with pytest.raises(ValueError, match="the verdicts pair seeds"):
        sample_metrics(ds, outputs, resamples=20)
