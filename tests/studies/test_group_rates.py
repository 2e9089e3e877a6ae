"""Per-group rates (groups.csv): against counts made by hand, and in the studies' outputs."""

from __future__ import annotations

import csv
import pathlib

import numpy as np
import pytest

from fairmt_opt.fairness import Task, hard_stats
from fairmt_opt.studies import run_study
from fairmt_opt.studies._groups import GROUP_COLUMNS, group_rate_rows, headline_rates


def _by_key(rows: list[tuple[int, str, float, int]]) -> dict[tuple[int, str], tuple[float, int]]:
    return {(g, m): (v, n) for g, m, v, n in rows}


def test_detection_rates_match_hand_counts() -> None:
    rng = np.random.default_rng(0)
    n = 500
    z = rng.normal(size=n)
    y = rng.integers(0, 2, n)
    g = rng.integers(0, 3, n)
    m = rng.random(n) < 0.8
    rows = _by_key(group_rate_rows(Task("d", "detection"), z, y, m, g, 3))
    for gi in range(3):
        sel = m & (g == gi)
        pred = z[sel] > 0
        yy = y[sel] == 1
        assert rows[(gi, "tpr")] == (pytest.approx(pred[yy].mean()), int(yy.sum()))
        assert rows[(gi, "fpr")] == (pytest.approx(pred[~yy].mean()), int((~yy).sum()))
        assert rows[(gi, "accuracy")] == (pytest.approx((pred == yy).mean()), int(sel.sum()))


def test_classification_rates_and_empty_cells_left_out() -> None:
    z = np.array([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0], [3.0, 0, 0], [0, 3.0, 0]])
    y = np.array([0, 1, 1, 0, 1])
    g = np.array([0, 0, 0, 1, 1])
    rows = _by_key(group_rate_rows(Task("c", "classification", 3), z, y, None, g, 2))
    # group 0: class 0 recalled 1/1, class 1 recalled 1/2; class 2 has no labelled sample
    assert rows[(0, "tpr[0]")] == (1.0, 1) and rows[(0, "tpr[1]")] == (0.5, 2)
    assert (0, "tpr[2]") not in rows  # an empty denominator gives no row, not NaN
    assert rows[(0, "fpr[2]")] == (pytest.approx(1 / 3), 3)
    assert rows[(0, "macro_tpr")] == (0.75, 3)
    # one-vs-rest accuracy of class 2 in group 0: predicted once, never the label
    assert rows[(0, "accuracy[0]")] == (1.0, 3)
    assert rows[(0, "accuracy[2]")] == (pytest.approx(2 / 3), 3)
    assert rows[(0, "accuracy")] == (pytest.approx(2 / 3), 3)
    assert rows[(1, "accuracy")] == (1.0, 2)
    assert not any(np.isnan(v) for v, _ in rows.values())


def test_regression_mae_per_group() -> None:
    pred = np.array([1.0, 2.0, 3.0, 10.0])
    y = np.array([1.5, 2.0, 2.0, 4.0])
    rows = _by_key(group_rate_rows(Task("r", "regression"), pred, y, None,
                                   np.array([0, 0, 1, 1]), 2))
    assert rows == {(0, "mae"): (0.25, 2), (1, "mae"): (3.5, 2)}


def test_headline_rates_mark_groups_without_positives() -> None:
    t = Task("d", "detection")
    s = hard_stats(t, [1.0, -1.0, 1.0], [1, 0, 0], None, [0, 0, 1], 2)
    vals, ok = headline_rates(t, s)
    assert vals[0] == 1.0 and ok.tolist() == [True, False] and np.isnan(vals[1])


def _read(path: pathlib.Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open() as fh:
        r = csv.DictReader(fh)
        return list(r.fieldnames or []), list(r)


@pytest.fixture(scope="module")
def compare_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    base = tmp_path_factory.mktemp("groups")
    outs = (base / "a", base / "b")
    for out in outs:
        run_study("compare", dataset="synthetic", quick=True, seeds=2,
                  methods=("fairmt", "linear", "symmetric"), out=str(out))
    return outs


def test_compare_writes_groups_csv(compare_runs: tuple[pathlib.Path, pathlib.Path]) -> None:
    a, b = compare_runs
    cols, rows = _read(a / "groups.csv")
    assert tuple(cols) == GROUP_COLUMNS
    assert {r["method"] for r in rows} == {"fairmt", "linear", "symmetric"}
    assert {r["seed"] for r in rows} == {"0", "1"} and {r["split"] for r in rows} == {"test"}
    assert {r["group"] for r in rows} == {"majority", "minority"}
    metrics = {r["metric"] for r in rows}
    assert {"tpr", "fpr", "accuracy", "mae", "macro_tpr"} <= metrics
    assert any(m.startswith("tpr[") for m in metrics)
    for r in rows:
        v, n = float(r["value"]), int(r["count"])
        assert n > 0 and np.isfinite(v)
        if r["metric"] != "mae":
            assert 0.0 <= v <= 1.0
    assert (a / "groups.csv").read_bytes() == (b / "groups.csv").read_bytes()
    report = (a / "report.md").read_text()
    # the bootstrap is seeded: the same intervals and verdicts (the paths aside)
    assert report.replace(str(a), "OUT") == (b / "report.md").read_text().replace(str(b), "OUT")
    assert "## Per-group rates" in report and "the symmetric constraint" in report
    assert "paired percentile bootstrap over the test samples (200 resamples" in report
    assert "## Verdicts: FairMT − linear scalarisation" in report
    assert "`groups.csv`" in report


def test_dynamics_writes_groups_csv(tmp_path: pathlib.Path) -> None:
    run_study("dynamics", dataset="synthetic", quick=True, seeds=1, out=str(tmp_path / "d"))
    cols, rows = _read(tmp_path / "d" / "groups.csv")
    assert tuple(cols) == GROUP_COLUMNS and {r["method"] for r in rows} == {"fairmt"}
