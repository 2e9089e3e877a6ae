"""fairlearn references on a task where one group has no labelled positive in the training
rows: the references that cannot be fitted there are skipped with the reason, the others
fitted, and the frontier study records both (report table, ``references.csv``) without
crashing; the fitted references' per-group rates appear in ``groups.csv``."""

from __future__ import annotations

import csv
import dataclasses
import pathlib

import numpy as np
import pytest

from fairmt_opt.datasets import MTLDataset, load_dataset
from fairmt_opt.studies import _frontier, run_study
from fairmt_opt.studies._groups import group_rate_rows
from fairmt_opt.studies._reductions import run_references


def degenerate() -> MTLDataset:
    """The synthetic dataset with every training label of group 0 set to negative on the
    detection task (the test split untouched)."""
    ds = load_dataset("synthetic", n_samples=400, seed=0)
    tr = ds.train
    y = tr.targets[0].copy()
    lab = tr.mask[:, 0]
    y[lab & (tr.groups == 0)] = 0
    assert (y[lab & (tr.groups == 1)] == 1).sum() > 0
    assert (ds.test.targets[0][ds.test.mask[:, 0]] == 1).sum() > 0
    train = dataclasses.replace(tr, targets=(y, *tr.targets[1:]))
    return dataclasses.replace(ds, train=train)


def test_unfittable_references_are_skipped_with_the_reason() -> None:
    ds = degenerate()
    pts = run_references(ds, bounds=[0.05], eg_max_iter=5,
                         methods=("logreg", "threshold_eo", "threshold_dp"))
    by = {p.method: p for p in pts}
    assert [p.method for p in pts] == ["logreg", "threshold_eo", "threshold_dp"]
    for m in ("threshold_eo", "threshold_dp"):
        p = by[m]
        assert p.skipped.startswith("ValueError: Degenerate labels"), p.skipped
        assert p.metrics == {} and p.outputs is None and p.task == "task0_det"
    lr = by["logreg"]
    assert lr.skipped == "" and {"eo", "accuracy"} <= set(lr.metrics)
    # the kept predictions are logits +-1 on the test split, and they give the metrics
    te = ds.test
    assert lr.outputs is not None and lr.outputs.shape == (len(te),)
    assert set(np.unique(lr.outputs)) <= {-1.0, 1.0}
    m = te.mask[:, 0]
    acc = float(np.mean((lr.outputs[m] > 0) == (te.targets[0][m] == 1)))
    assert acc == pytest.approx(lr.metrics["accuracy"])


def read(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_frontier_records_skipped_references(tmp_path: pathlib.Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ds = degenerate()
    monkeypatch.setattr(_frontier, "_dataset", lambda config: ds)
    out = tmp_path / "run"
    run_study("frontier", quick=True, seeds=1, methods=("ls_penalty", "fairlearn"),
              out=str(out))
    refs = read(out / "references.csv")
    assert list(refs[0]) == list(_frontier.REFERENCE_COLUMNS)
    status = {r["method"]: r["skipped"] for r in refs}
    assert set(status) == {"logreg", "eg_eo", "eg_dp", "threshold_eo", "threshold_dp"}
    assert status["threshold_eo"].startswith("ValueError: Degenerate labels")
    assert status["threshold_dp"].startswith("ValueError: Degenerate labels")
    assert status["logreg"] == "-"
    for r in refs:
        assert (r["fairness"] == "-") == (r["skipped"] != "-"), r
    report = (out / "report.md").read_text()
    table = report.split("## fairlearn references", 1)[1].split("\n## ", 1)[0]
    assert "2 of 5 skipped" in table
    assert "| threshold_eo | - | task0_det | — | — |" in table
    assert "skipped: ValueError: Degenerate labels" in table
    # skipped references are absent from the fronts; fitted ones present
    methods = {r["method"] for r in read(out / "frontier.csv")}
    assert "threshold_eo" not in methods and {"logreg", "eg_eo", "ls_penalty"} <= methods
    # per-group rates of the fitted references, none of the skipped ones
    groups = read(out / "groups.csv")
    labels = {r["method"] for r in groups}
    assert {"logreg", "eg_eo[bound=0.05]", "eg_dp[bound=0.05]"} <= labels
    assert not {"threshold_eo", "threshold_dp"} & labels
    # and they are the rates of the reference's predictions (refit: the fit is deterministic)
    lr = run_references(ds, bounds=[0.05], methods=("logreg",))[0]
    te = ds.test
    want = {(ds.group_names[g], metric): (value, count) for g, metric, value, count in
            group_rate_rows(ds.tasks[0], lr.outputs, te.targets[0], te.mask[:, 0], te.groups,
                            ds.n_groups)}
    got = {(r["group"], r["metric"]): (float(r["value"]), int(r["count"])) for r in groups
           if r["method"] == "logreg"}
    assert set(got) == set(want) and len(want) >= 6
    for k, (v, c) in want.items():
        assert got[k][0] == pytest.approx(v, abs=1e-9) and got[k][1] == c, k
