"""The bootstrap's SummaryResampler gives exactly what summary_metrics gives on the drawn rows.

Every comparison here is exact: floats with ``==`` and arrays with ``np.array_equal`` (NaN
counted equal to NaN, the value of an undefined metric). A resampler that loses the draw
counts, or a regression path that weights its float sums, must be caught by them.
"""

from __future__ import annotations

import numpy as np
import pytest

from fairmt_opt.datasets import load_dataset
from fairmt_opt.fairness import Task, hard_stats
from fairmt_opt.studies._evidence import sample_metrics
from fairmt_opt.studies._groups import (
    HeadlineResampler,
    SummaryResampler,
    headline_rates,
    summary_metrics,
)
from fairmt_opt.studies._verdicts import resample_indices

N, G = 240, 3
TASKS = {
    "detection": Task("d", "detection"),
    "classification": Task("c", "classification", num_classes=4),
    "regression": Task("r", "regression"),
}


def _same(a: tuple[float, float, np.ndarray], b: tuple[float, float, np.ndarray]) -> bool:
    def eq(x: float, y: float) -> bool:
        return x == y or (np.isnan(x) and np.isnan(y))

    return eq(a[0], b[0]) and eq(a[1], b[1]) and np.array_equal(a[2], b[2], equal_nan=True)


def _sample(kind: str, seed: int) -> tuple[Task, np.ndarray, np.ndarray, np.ndarray,
                                           np.ndarray]:
    """Outputs, targets, a partial-label mask and groups with an empty group (code 1)."""
    rng = np.random.default_rng(seed)
    task = TASKS[kind]
    groups = np.where(rng.random(N) < 0.3, 2, 0)
    mask = rng.random(N) < 0.7
    if kind == "detection":
        z = rng.normal(size=N)
        y = (rng.random(N) < 0.4).astype(np.int64)
    elif kind == "classification":
        z = rng.normal(size=(N, 4))
        z[:5] = 0.0  # ties: the first class wins
        y = rng.integers(0, 4, size=N)
    else:
        # coarse predictions: many ties between and within groups, and a signed zero
        z = np.round(rng.normal(size=N), 1)
        z[z == 0] = -0.0
        y = rng.normal(size=N)
        y[~mask] = np.nan  # never read
    return task, z, y, mask, groups


def _draws(seed: int, groups: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """Bootstrap resamples, plus draws of one row only, of one group only, of unlabelled
    rows only, and of a handful of rows many times each."""
    idx = list(resample_indices(N, 25, seed=seed))
    idx.append(np.full(N, 7))
    idx.append(np.flatnonzero(groups == 0)[np.arange(N) % (groups == 0).sum()])
    idx.append(np.flatnonzero(~mask)[np.arange(N) % (~mask).sum()])
    idx.append(np.array([3, 11, 40, 41, 200] * (N // 5)))
    return idx


def _on_rows(task: Task, z: np.ndarray, y: np.ndarray, m: np.ndarray, g: np.ndarray,
             idx: np.ndarray) -> tuple[float, float, np.ndarray]:
    return summary_metrics(task, z[idx], y[idx], m[idx], g[idx], G)


@pytest.mark.parametrize("kind", list(TASKS))
@pytest.mark.parametrize("seed", [0, 1])
def test_resampler_equals_summary_metrics_of_the_drawn_rows(kind: str, seed: int) -> None:
    task, z, y, m, g = _sample(kind, seed)
    fn = SummaryResampler(task, z, y, m, g, G)
    assert _same(fn.whole, summary_metrics(task, z, y, m, g, G))
    nan_rows = 0
    for idx in _draws(seed + 10, g, m):
        want = _on_rows(task, z, y, m, g, idx)
        got = fn(idx)
        assert _same(got, want), (kind, got, want)
        assert np.array_equal(fn.rates(idx), want[2], equal_nan=True)
        nan_rows += int(np.isnan(want[0]))
    # the degenerate draws (one row, one group, unlabelled rows) left a metric undefined
    assert nan_rows >= 3


@pytest.mark.parametrize("kind", list(TASKS))
def test_resampler_without_a_mask_and_with_two_groups(kind: str) -> None:
    task, z, y, _, g = _sample(kind, 5)
    y = np.nan_to_num(y)
    g = (g == 2).astype(np.int64)
    fn = SummaryResampler(task, z, y, None, g, 2)
    for idx in resample_indices(N, 10, seed=3):
        want = summary_metrics(task, z[idx], y[idx], None, g[idx], 2)
        assert _same(fn(idx), want)


@pytest.mark.parametrize("kind", list(TASKS))
def test_the_check_notices_lost_draw_counts(kind: str) -> None:
    # a resampler that counted every drawn row once would fail the comparison above
    task, z, y, m, g = _sample(kind, 0)
    fn = SummaryResampler(task, z, y, m, g, G)
    wrong = [not _same(fn(np.unique(idx)), _on_rows(task, z, y, m, g, idx))
             for idx in resample_indices(N, 10, seed=4)]
    assert all(wrong)


def test_the_check_notices_last_bit_differences_of_weighted_regression_sums() -> None:
    # the reason regression keeps its rows for the MAE and CCC: weighting the rows by their
    # draw counts gives the same sums up to rounding, which the exact comparison tells apart
    task, z, y, m, g = _sample("regression", 0)
    y = np.round(y, 3)  # not exact binary fractions
    z = z + np.linspace(0.0, 1e-3, N)
    differ = 0
    for idx in resample_indices(N, 30, seed=6):
        rows = headline_rates(task, hard_stats(task, z[idx], y[idx], m[idx], g[idx], G))[0]
        w = np.bincount(idx, minlength=N).astype(np.float64)
        weighted = headline_rates(task, hard_stats(task, z, y, m, g, G, sample_weight=w))[0]
        assert np.allclose(rows, weighted, rtol=1e-12, equal_nan=True)
        differ += int(not np.array_equal(rows, weighted, equal_nan=True))
    assert differ > 0


@pytest.mark.parametrize("kind", list(TASKS))
def test_headline_resampler_is_the_rates_of_the_summary_one(kind: str) -> None:
    task, z, y, m, g = _sample(kind, 2)
    full, rates = SummaryResampler(task, z, y, m, g, G), HeadlineResampler(task, z, y, m, g, G)
    for idx in resample_indices(N, 10, seed=8):
        assert np.array_equal(rates(idx), full(idx)[2], equal_nan=True)


def test_sample_metrics_equals_summary_metrics_on_every_resample() -> None:
    ds = load_dataset("synthetic", n_samples=900, seed=2)
    sp = ds.test
    n = len(sp)
    rng = np.random.default_rng(9)
    outputs = {(lab, s): [rng.normal(size=(n, t.out_dim) if t.kind == "classification"
                                     else (n,)) for t in ds.tasks]
               for lab in ("a", "b") for s in (0, 1)}
    got = sample_metrics(ds, outputs, resamples=12, seed=4)
    draws = [np.arange(n), *resample_indices(n, 12, seed=4)]
    for (lab, s), outs in outputs.items():
        for t, task in enumerate(ds.tasks):
            v = got.values[(lab, task.name)][s]
            for row, idx in enumerate(draws):
                f, u, r = summary_metrics(task, outs[t][idx], sp.targets[t][idx],
                                          sp.mask[idx, t], sp.groups[idx], ds.n_groups)
                assert np.array_equal(v[row], np.array([f, u, *r]), equal_nan=True)
