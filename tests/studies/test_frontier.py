"""The frontier study in quick mode: files, columns, fronts, hypervolumes, determinism."""

from __future__ import annotations

import csv
import pathlib

import pytest

from fairmt_opt.studies import run_study
from fairmt_opt.studies._pareto import hypervolume, pareto_front

COLUMNS = ["method", "knob", "value", "seed", "task", "fairness_metric", "fairness",
           "utility_metric", "utility", "phi", "pareto", "pareto_all"]
HV_COLUMNS = ["task", "method", "seed", "hypervolume", "front_points", "points",
              "ref_fairness", "ref_utility"]


def read(path: pathlib.Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open() as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    base = tmp_path_factory.mktemp("frontier")
    a, b = base / "a", base / "b"
    run_study("frontier", quick=True, seeds=1, out=str(a))
    run_study("frontier", quick=True, seeds=1, out=str(b))
    return a, b


def test_files_and_columns(runs: tuple[pathlib.Path, pathlib.Path]) -> None:
    a, _ = runs
    for name in ("frontier.csv", "hypervolume.csv", "results.csv", "config.json",
                 "report.md", "frontier.png"):
        assert (a / name).is_file(), name
    cols, rows = read(a / "frontier.csv")
    assert cols == COLUMNS
    hcols, _ = read(a / "hypervolume.csv")
    assert hcols == HV_COLUMNS
    methods = {r["method"] for r in rows}
    assert methods == {"fairmt", "symmetric", "fairmt_none", "mean", "ls_penalty", "logreg",
                       "eg_eo", "eg_dp", "threshold_eo", "threshold_dp"}
    knobs = {(r["method"], r["knob"]) for r in rows}
    assert ("fairmt", "eps") in knobs and ("ls_penalty", "lambda") in knobs
    assert ("eg_eo", "bound") in knobs and ("logreg", "-") in knobs
    # our methods on every task and on the aggregate, the references on the detection task
    assert {r["task"] for r in rows if r["method"] == "fairmt"} == {
        "income", "occupation", "hours", "all"}
    assert {r["task"] for r in rows if r["method"] == "eg_eo"} == {"income"}
    for r in rows:
        float(r["fairness"]), float(r["utility"])
        assert (r["seed"] == "mean") == (r["pareto"] in ("yes", "no")), r
    report = (a / "report.md").read_text()
    assert "](frontier.png)" in report and "reference" in report
    assert "largest hypervolume" in report


def test_fronts_and_hypervolumes_agree_with_the_points(
        runs: tuple[pathlib.Path, pathlib.Path]) -> None:
    a, _ = runs
    _, rows = read(a / "frontier.csv")
    _, hv = read(a / "hypervolume.csv")
    means = [r for r in rows if r["seed"] == "mean"]
    for task in {r["task"] for r in means}:
        sel = [r for r in means if r["task"] == task]
        f = [float(r["fairness"]) for r in sel]
        u = [float(r["utility"]) for r in sel]
        assert [r["pareto_all"] == "yes" for r in sel] == pareto_front(f, u).tolist()
        ref = (max(f), min(u))  # the stated reference: the nadir of every mean point
        for m in {r["method"] for r in sel}:
            own = [r for r in sel if r["method"] == m]
            assert any(r["pareto"] == "yes" for r in own)
            row = next(h for h in hv if h["task"] == task and h["method"] == m
                       and h["seed"] == "mean")
            assert (float(row["ref_fairness"]), float(row["ref_utility"])) == pytest.approx(ref)
            expected = hypervolume([float(r["fairness"]) for r in own],
                                   [float(r["utility"]) for r in own], ref)
            # the csv keeps 10 digits
            assert float(row["hypervolume"]) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_fixed_penalty_keeps_lambda(runs: tuple[pathlib.Path, pathlib.Path]) -> None:
    a, _ = runs
    _, res = read(a / "results.csv")
    eta = {r["method"]: float(r["value"]) for r in res if r["metric"] == "final_eta"}
    assert eta["ls_penalty[lambda=4]"] == 4.0  # the dual ascent never moves it
    assert eta["ls_penalty[lambda=0]"] == 0.0  # linear scalarisation


def test_determinism(runs: tuple[pathlib.Path, pathlib.Path]) -> None:
    a, b = runs
    for name in ("frontier.csv", "hypervolume.csv", "results.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_unknown_method(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="methods"):
        run_study("frontier", quick=True, seeds=1, methods=("linear",), out=str(tmp_path))
