"""Numerics of the hard statistics: centred moments, no overflow, strata memory.

References are exact: the float64 inputs are converted to ``fractions.Fraction`` and the
population moments computed in rational arithmetic, then rounded once.
"""

from __future__ import annotations

import itertools
import tracemalloc
import warnings
from fractions import Fraction

import numpy as np
import pytest

from fairmt_opt.fairness import Task, hard_stats, violation_from_stats
from fairmt_opt.fairness._moments import centred_moments, merge_moments, total_moments
from fairmt_opt.fairness._stats import regression_scores

REG = Task("r", "regression")
DET = Task("d", "detection")


def _exact(p, t, w=None):
    """MAE, MSE and CCC of float arrays in rational arithmetic (population moments)."""
    P = [Fraction(float(x)) for x in p]
    T = [Fraction(float(x)) for x in t]
    W = [Fraction(1)] * len(P) if w is None else [Fraction(float(x)) for x in w]
    n = sum(W)
    mp = sum(wi * x for wi, x in zip(W, P, strict=True)) / n
    mt = sum(wi * x for wi, x in zip(W, T, strict=True)) / n
    vp = sum(wi * (x - mp) ** 2 for wi, x in zip(W, P, strict=True)) / n
    vt = sum(wi * (x - mt) ** 2 for wi, x in zip(W, T, strict=True)) / n
    c = sum(wi * (x - mp) * (y - mt) for wi, x, y in zip(W, P, T, strict=True)) / n
    mae = sum(wi * abs(x - y) for wi, x, y in zip(W, P, T, strict=True)) / n
    mse = sum(wi * (x - y) ** 2 for wi, x, y in zip(W, P, T, strict=True)) / n
    den = vp + vt + (mp - mt) ** 2
    return {"mae": mae, "mse": mse, "ccc": None if den == 0 else 2 * c / den}


def _rel(a, b):
    """Relative error of the float ``a`` to the rational ``b``, less the half unit of the
    smallest subnormal that rounding any result to float64 may cost."""
    return max(abs(Fraction(float(a)) - b) - Fraction(1, 2**1075), 0) / abs(b)


def _data(mean, N, rng, spread=1.0):
    y = mean + spread * rng.normal(size=N)
    p = y + 0.5 * spread * rng.normal(size=N) + 0.3 * spread
    return p, y


@pytest.mark.parametrize("mean", [0.0, 1e3, 1e6, 1e7, 1e9, 1e12, -1e12])
@pytest.mark.parametrize("weighted", [False, True])
def test_ccc_and_errors_exact_at_large_means(mean, weighted):
    rng = np.random.default_rng(int(abs(mean)) % 1000 + weighted)
    p, y = _data(mean, 150, rng)
    g = rng.integers(0, 2, size=150)
    w = rng.random(150) * 3 if weighted else None
    s = hard_stats(REG, p, y, None, g, 2, sample_weight=w)
    sc, ok = regression_scores(s, ("mae", "mse", "rmse", "ccc"), overall=True)
    ref = _exact(p, y, w)
    assert bool(ok["ccc"][0])
    assert _rel(sc["ccc"][0], ref["ccc"]) < 1e-9
    assert _rel(sc["mae"][0], ref["mae"]) < 1e-12
    assert _rel(sc["mse"][0], ref["mse"]) < 1e-12
    assert sc["rmse"][0] == pytest.approx(float(ref["mse"]) ** 0.5, rel=1e-12)
    # per group, and through the violation's group scores
    gs, gok = regression_scores(s, ("ccc",))
    for a in range(2):
        sel = g == a
        ref_a = _exact(p[sel], y[sel], None if w is None else w[sel])
        assert bool(gok["ccc"][a]) and _rel(gs["ccc"][a], ref_a["ccc"]) < 1e-9
    res = violation_from_stats(REG, s, regression_score="ccc")
    np.testing.assert_allclose(res.rates["score"], gs["ccc"], rtol=1e-15)


def test_issue_case_mean_1e7_is_defined_and_right():
    """The one-pass sums made this CCC NaN ("one and the same constant") at mean 1e7."""
    rng = np.random.default_rng(0)
    y = 1e7 + rng.normal(size=200)
    p = y + 0.3 * rng.normal(size=200)
    s = hard_stats(REG, p, y, None, np.arange(200) % 2, 2)
    sc, ok = regression_scores(s, ("ccc",), overall=True)
    assert bool(ok["ccc"][0]) and not bool(ok["constant"][0])
    assert _rel(sc["ccc"][0], _exact(p, y)["ccc"]) < 1e-9


@pytest.mark.parametrize("c", [0.1, 1e7 + 0.1, 3e12, -7.25, 1e300])
def test_constant_data_is_the_one_undefined_ccc(c):
    N = 7
    s = hard_stats(REG, np.full(N, c), np.full(N, c), None, np.arange(N) % 2, 2)
    sc, ok = regression_scores(s, ("ccc", "mae"), overall=True)
    assert not bool(ok["ccc"][0]) and bool(ok["constant"][0]) and sc["ccc"][0] == 0.0
    assert sc["mae"][0] == 0.0
    # a constant prediction of a different constant: defined, CCC exactly 0
    s2 = hard_stats(REG, np.full(N, c), np.full(N, 2 * c), None, np.arange(N) % 2, 2)
    sc2, ok2 = regression_scores(s2, ("ccc",), overall=True)
    assert bool(ok2["ccc"][0]) and sc2["ccc"][0] == 0.0
    # a constant prediction of varying targets: CCC exactly 0 as well
    t = c + np.arange(N) * max(abs(c), 1.0) * 1e-3
    sc3, ok3 = regression_scores(hard_stats(REG, np.full(N, c), t, None, np.arange(N) % 2, 2),
                                 ("ccc",), overall=True)
    assert bool(ok3["ccc"][0]) and abs(sc3["ccc"][0]) < 1e-12


@pytest.mark.parametrize("scale", [1e155, 1e200, 1e300, 1e-300, 5e-320])
def test_no_overflow_or_underflow_for_finite_predictions(scale):
    rng = np.random.default_rng(5)
    y0 = rng.normal(size=60) + 2.0
    p0 = y0 + 0.4 * rng.normal(size=60)
    p, y = p0 * scale, y0 * scale
    g = np.arange(60) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid warning on the way
        s = hard_stats(REG, p, y, None, g, 3)
        sc, ok = regression_scores(s, ("mae", "rmse", "ccc"), overall=True)
    assert bool(ok["ccc"][0]) and bool(ok["mae"][0])
    ref = _exact(p, y)  # of the float inputs as they are (subnormal ones included)
    assert _rel(sc["mae"][0], ref["mae"]) < 1e-12
    assert sc["rmse"][0] == pytest.approx(float(ref["mse"] / Fraction(scale) ** 2) ** 0.5 * scale,
                                          rel=1e-12)
    assert _rel(sc["ccc"][0], ref["ccc"]) < 1e-9
    for key in ("mae", "rmse", "ccc"):
        assert np.all(np.isfinite(sc[key]))


def test_unrepresentable_scores_raise_clearly():
    p = np.array([1.5e308, 1.6e308, 1.7e308])
    y = -p
    s = hard_stats(REG, p, y, None, np.array([0, 1, 1]), 2)
    with pytest.raises(ValueError, match="mean absolute error is not representable"):
        regression_scores(s, ("mae",), overall=True)
    sc, ok = regression_scores(s, ("ccc",), overall=False)  # group 1: two rows
    assert bool(ok["ccc"][1]) and _rel(sc["ccc"][1], _exact(p[1:], y[1:])["ccc"]) < 1e-12
    with pytest.raises(ValueError, match="root mean squared error is not representable"):
        regression_scores(s, ("rmse",), overall=True)
    # the MSE of predictions near 1e200 exceeds float64: asked for, it raises
    s2 = hard_stats(REG, np.array([1e200, 3e200]), np.array([0.0, 1e200]), None,
                    np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="mean squared error is not representable"):
        violation_from_stats(REG, s2, regression_score="mse")
    rmse = regression_scores(s2, ("rmse",), overall=True)[0]["rmse"][0]
    assert rmse == pytest.approx(np.sqrt((1.0 + 4.0) / 2) * 1e200, rel=1e-14)


def test_shards_combine_to_the_whole_at_mixed_scales():
    """Chan's combination of shards of very different magnitudes gives the moments of the
    whole to round-off (and the exact scores)."""
    rng = np.random.default_rng(9)
    p, y = _data(1e12, 240, rng)
    p[:40] *= 1e-15  # shards whose scales differ by 2^50 inside one group
    y[:40] *= 1e-15
    g = rng.integers(0, 3, size=240)
    m = rng.random(240) > 0.2
    whole = hard_stats(REG, p, y, m, g, 3, train_median=0.0)
    cuts = [0, 40, 41, 130, 240]
    total = sum(hard_stats(REG, p[a:b], y[a:b], m[a:b], g[a:b], 3, train_median=0.0)
                for a, b in itertools.pairwise(cuts))
    for k in ("n", "scale", "vmin", "vmax"):
        np.testing.assert_array_equal(total[k], whole[k])
    a, b = regression_scores(total, overall=True)[0], regression_scores(whole, overall=True)[0]
    ref = _exact(p[m], y[m])
    for key in ("ccc", "mae", "mse"):
        assert _rel(a[key][0], ref[key]) < 1e-9 and _rel(b[key][0], ref[key]) < 1e-9


def test_merge_with_an_empty_side_is_the_other_side():
    rng = np.random.default_rng(1)
    p, y = _data(5.0, 20, rng)
    full = centred_moments(p, y, None, np.zeros(20, int), 1)
    empty = centred_moments(p[:0], y[:0], None, np.zeros(0, int), 1)
    for merged in (merge_moments(full, empty), merge_moments(empty, full)):
        for k in full:
            np.testing.assert_array_equal(merged[k], full[k])
    tot = total_moments({k: np.concatenate([v, empty[k]]) for k, v in full.items()})
    for k in full:
        np.testing.assert_array_equal(tot[k], full[k])


# ----------------------------------------------------------------------- strata


def _dense_strata(c, m, g, pred, G):
    """Counts per (stratum, group) with the codes renumbered 0..S'-1 (the reference)."""
    ids = np.unique(c[m])
    n = np.zeros((ids.size, G))
    q = np.zeros((ids.size, G))
    for j, code in enumerate(ids):
        for a in range(G):
            sel = m & (c == code) & (g == a)
            n[j, a] = sel.sum()
            q[j, a] = pred[sel].sum()
    return ids, n, q


def test_strata_codes_up_to_1e9_use_memory_of_the_strata_present():
    rng = np.random.default_rng(2)
    N, G = 5000, 3
    codes = rng.choice(np.array([0, 17, 10**6, 999_999_999, 10**9]), size=N)
    z = rng.normal(size=N)
    y = (rng.random(N) < 0.5).astype(float)
    m = rng.random(N) > 0.1
    g = rng.integers(0, G, size=N)
    tracemalloc.start()
    s = hard_stats(DET, z, y, m, g, G, conditioning=codes)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20  # bytes; a table over the codes 0..1e9 would need > 8 GB
    assert s.num_strata == 10**9 + 1
    ids, n, q = _dense_strata(codes, m, g, (z > 0).astype(float), G)
    np.testing.assert_array_equal(s.strata_ids, ids)
    np.testing.assert_array_equal(s["strata_count"], n)
    np.testing.assert_array_equal(s["strata_pos"][:, :, 0], q)


def test_strata_of_shards_merge_by_code():
    rng = np.random.default_rng(3)
    N, G = 300, 2
    codes = rng.choice(np.array([3, 10**8, 5 * 10**8]), size=N)
    codes[:100] = 3  # the first shard sees one code only
    z, y = rng.normal(size=N), (rng.random(N) < 0.5).astype(float)
    g = rng.integers(0, G, size=N)
    whole = hard_stats(DET, z, y, None, g, G, conditioning=codes, num_strata=10**9)
    parts = [hard_stats(DET, z[a:b], y[a:b], None, g[a:b], G, conditioning=codes[a:b],
                        num_strata=10**9) for a, b in ((0, 100), (100, 180), (180, 300))]
    total = sum(parts)
    np.testing.assert_array_equal(total.strata_ids, whole.strata_ids)
    for k in whole.keys():
        np.testing.assert_array_equal(total[k], whole[k])
    with pytest.raises(ValueError, match="num_strata"):
        parts[0] + hard_stats(DET, z[:10], y[:10], None, g[:10], G, conditioning=codes[:10],
                              num_strata=10**9 + 1)


def test_strata_keep_the_dense_layout_for_small_codes():
    c = np.array([0, 1, 2, 1, 0, 2])
    s = hard_stats(DET, [1.0, -1, 1, 1, -1, 1], [1, 0, 1, 0, 1, 0], None, [0, 0, 1, 1, 0, 1], 2,
                   conditioning=c)
    np.testing.assert_array_equal(s.strata_ids, [0, 1, 2])
    np.testing.assert_array_equal(s["strata_count"], [[2, 0], [1, 1], [0, 2]])
    np.testing.assert_array_equal(s["strata_pos"][:, :, 0], [[1, 0], [0, 1], [0, 2]])
