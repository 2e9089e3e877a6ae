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
    # the fairlearn references with the time each fit took
    refs = report.split("## fairlearn references", 1)[1].split("\n## ", 1)[0]
    assert "fit time (s)" in refs
    assert "0 of 5 skipped" in refs and "| status |" in refs
    for line in refs.splitlines():
        if line.startswith(("| eg_eo", "| eg_dp", "| logreg", "| threshold")):
            cells = [c.strip() for c in line.strip(" |").split("|")]
            assert float(cells[5]) > 0 and cells[6] == "fitted", line
    _, table = read(a / "references.csv")
    assert [(r["method"], r["skipped"]) for r in table] == [
        (m, "-") for m in ("logreg", "eg_eo", "eg_dp", "threshold_eo", "threshold_dp")]


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
    for name in ("frontier.csv", "hypervolume.csv", "results.csv", "groups.csv",
                 "lift_only.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    # the references too, but for their wall-clock fit times
    ra, rb = (read(x / "references.csv")[1] for x in runs)
    for r in ra + rb:
        assert float(r.pop("fit_time_s")) > 0
    assert ra == rb


def test_unknown_method(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="methods"):
        run_study("frontier", quick=True, seeds=1, methods=("linear",), out=str(tmp_path))


def test_group_rates_of_every_point(runs: tuple[pathlib.Path, pathlib.Path]) -> None:
    a, _ = runs
    cols, groups = read(a / "groups.csv")
    assert cols == ["method", "seed", "split", "task", "group", "metric", "value", "count"]
    _, rows = read(a / "frontier.csv")
    points = {f"{r['method']}[{r['knob']}={float(r['value']):g}]" for r in rows
              if r["knob"] in ("eps", "lambda")}
    references = {"logreg", "eg_eo[bound=0.05]", "eg_dp[bound=0.05]", "threshold_eo",
                  "threshold_dp"}
    assert {g["method"] for g in groups} == points | references
    _, res = read(a / "results.csv")
    for label in references:  # the detection task only; the group accuracies make up the
        sel = [g for g in groups if g["method"] == label]  # reference's test accuracy
        assert {g["task"] for g in sel} == {"income"}
        assert {(g["group"], g["metric"]) for g in sel} == {
            (grp, m) for grp in ("Female", "Male") for m in ("tpr", "fpr", "accuracy")}
        acc = [(float(g["value"]), int(g["count"])) for g in sel if g["metric"] == "accuracy"]
        total = next(float(r["value"]) for r in res if r["method"] == label
                     and r["task"] == "income" and r["metric"] == "accuracy")
        assert sum(v * c for v, c in acc) / sum(c for _, c in acc) == pytest.approx(total)
    for label in points:
        sel = [g for g in groups if g["method"] == label]
        # every task, both groups (sex) and the headline rate of each kind
        assert {g["task"] for g in sel} == {"income", "occupation", "hours"}
        assert {g["group"] for g in sel} == {"Female", "Male"}
        assert {(g["task"], g["metric"]) for g in sel} >= {
            ("income", "tpr"), ("income", "fpr"), ("occupation", "macro_tpr"),
            ("hours", "mae")}
        for g in sel:
            assert int(g["count"]) > 0 and float(g["value"]) >= 0


def test_lift_only_verdicts_follow_the_group_rates(
        runs: tuple[pathlib.Path, pathlib.Path]) -> None:
    a, _ = runs
    _, groups = read(a / "groups.csv")
    _, lift = read(a / "lift_only.csv")
    head = {"income": ("tpr", True), "occupation": ("macro_tpr", True),
            "hours": ("mae", False)}
    rate = {(g["method"], g["task"], g["group"]): float(g["value"]) for g in groups
            if (g["task"], g["metric"]) in {(t, m) for t, (m, _) in head.items()}}
    assert {(r["eps"], r["task"]) for r in lift} == {
        (e, t) for e in ("0.02", "0.1") for t in head}
    for r in lift:
        task, (metric, higher) = r["task"], head[r["task"]]
        assert r["rate"] == metric
        ref = {g: rate[("ls_penalty[lambda=0]", task, g)] for g in ("Female", "Male")}
        good = max if higher else min
        bad = min if higher else max
        assert r["best_group"] == good(ref, key=ref.__getitem__)
        assert r["worst_group"] == bad(ref, key=ref.__getitem__)
        # one seed: the estimate is the difference of the two rates on the whole test split
        for who, col, group in (("fairmt", "fairmt_best", r["best_group"]),
                                ("fairmt", "fairmt_worst", r["worst_group"]),
                                ("symmetric", "symmetric_best", r["best_group"])):
            d = rate[(f"{who}[eps={float(r['eps']):g}]", task, group)] - ref[group]
            assert float(r[f"{col}_delta"]) == pytest.approx(d, abs=1e-9)
            assert float(r[f"{col}_low"]) <= float(r[f"{col}_delta"]) <= float(
                r[f"{col}_high"])
        sign = 1 if higher else -1

        def side(col: str, r: dict[str, str] = r) -> int:
            lo, hi = float(r[f"{col}_low"]), float(r[f"{col}_high"])
            return 1 if lo > 0 else -1 if hi < 0 else 0

        assert (r["best_kept"] == "yes") == (side("fairmt_best") * sign >= 0)
        assert (r["worst_lifted"] == "yes") == (side("fairmt_worst") * sign > 0)
        assert (r["symmetric_lowered_best"] == "yes") == (side("symmetric_best") * sign < 0)
    report = (a / "report.md").read_text()
    summary = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
    for task in head:
        assert f"`{task}` (" in summary
    assert "kept the best group's" in summary and "symmetric constraint" in summary
    assert "## Per-group rates at ε = 0.02" in report and "## Per-group rates at ε = 0.1" in report


def test_lift_only_verdicts_need_distinct_best_and_worst_groups() -> None:
    import numpy as np

    from fairmt_opt.datasets import load_dataset
    from fairmt_opt.studies._evidence import MetricSamples, lift_only_verdicts

    ds = load_dataset("synthetic", n_samples=400, seed=0)
    G, R = ds.n_groups, 20
    rng = np.random.default_rng(0)
    values = {}
    for lab in ("ref", "fm"):
        for t in ds.tasks:
            v = rng.uniform(0.2, 0.8, size=(2, 1 + R, 2 + G))
            if lab == "ref" and t is ds.tasks[0]:
                v[:, :, 2:] = 0.0  # every group at the same rate (no positive predicted)
            values[(lab, t.name)] = v
    samples = MetricSamples(ds, (0, 1), R, values)
    out = lift_only_verdicts(samples, fairmt="fm", symmetric=None, reference="ref")
    assert out[0].kept is None and "same" in out[0].note
    assert not out[0].best_kept and not out[0].worst_lifted
    for v in out[1:]:
        assert v.kept is not None and v.best != v.worst
    with pytest.raises(ValueError, match="reference"):
        lift_only_verdicts(samples, fairmt="fm", reference="nope")


def test_rates_only_bootstrap_equals_the_full_one_on_the_rates() -> None:
    import numpy as np

    from fairmt_opt.datasets import load_dataset
    from fairmt_opt.fairness import hard_stats
    from fairmt_opt.studies._evidence import sample_metrics
    from fairmt_opt.studies._groups import HeadlineResampler, headline_rates
    from fairmt_opt.studies._verdicts import resample_indices

    ds = load_dataset("synthetic", n_samples=1500, seed=1)
    sp = ds.test
    n = len(sp)
    rng = np.random.default_rng(3)
    outputs = {(lab, s): [rng.normal(size=(n, t.out_dim) if t.kind == "classification"
                                     else (n,)) for t in ds.tasks]
               for lab in ("a", "b") for s in (0, 1)}
    # the resampler against the rates of the resampled rows, bit for bit
    for t, task in enumerate(ds.tasks):
        z = outputs[("a", 0)][t]
        fn = HeadlineResampler(task, z, sp.targets[t], sp.mask[:, t], sp.groups, ds.n_groups)
        for idx in resample_indices(n, 100, seed=5):
            want = headline_rates(task, hard_stats(task, z[idx], sp.targets[t][idx],
                                                   sp.mask[idx, t], sp.groups[idx],
                                                   ds.n_groups))[0]
            assert np.array_equal(fn(idx), want, equal_nan=True), task.name
    full = sample_metrics(ds, outputs, resamples=100, seed=2)
    fast = sample_metrics(ds, outputs, resamples=100, seed=2, rates_only=True)
    assert fast.rates_only and not full.rates_only
    for key, v in full.values.items():
        w = fast.values[key]
        assert np.array_equal(v[:, 0], w[:, 0], equal_nan=True)  # the whole split: all
        assert np.array_equal(v[:, 1:, 2:], w[:, 1:, 2:], equal_nan=True)
        assert np.isnan(w[:, 1:, :2]).all() and not np.isnan(v[:, 1:, :2]).all()
    name = ds.tasks[0].name
    assert fast.verdict("a", "b", name, 1) == full.verdict("a", "b", name, 1)
    assert fast.interval("a", name, 0) == full.interval("a", name, 0)
    assert np.array_equal(fast.per_seed("a", name, "fairness"),
                          full.per_seed("a", name, "fairness"))
    with pytest.raises(ValueError, match="rates_only"):
        fast.interval("a", name, "fairness")
    with pytest.raises(ValueError, match="rates_only"):
        fast.verdict("a", "b", name, "utility")
    with pytest.raises(ValueError, match="rates_only"):
        sample_metrics(ds, outputs, resamples=100, rates_only=1)  # type: ignore[arg-type]
