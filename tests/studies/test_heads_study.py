"""The heads study: the imposed head geometries, quick mode end to end (files, columns,
determinism) and its command-line errors."""

from __future__ import annotations

import csv
import math
import pathlib
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from fairmt_opt import cli
from fairmt_opt.studies import _heads, run_study
from fairmt_opt.studies._common import StudyConfig

HEADS_COLUMNS = ["setting", "factor", "proxy", "seed", "task", "metric", "value"]
VERDICT_COLUMNS = ["setting", "factor", "a", "b", "task", "metric", "estimate", "low", "high",
                   "interval", "verdict"]


def read(path: pathlib.Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open() as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


# ----------------------------------------------------------------------------- the geometries


def trainer(seed: int = 0) -> tuple[Any, Any]:
    config = StudyConfig(study="heads", quick=True)
    ds = _heads._dataset(config)
    from fairmt_opt.studies._training import make_trainer

    tr = make_trainer("fairmt", ds, seed=seed, settings=_heads._settings(config))
    return tr, ds


def test_weight_norm_and_saturation_change_only_the_target_head() -> None:
    tr, _ = trainer()
    before = [(h.weight.detach().clone(), h.bias.detach().clone()) for h in tr.heads]
    _heads.impose(tr, "weight_norm", 10.0)
    t = _heads.TARGET_TASK
    assert torch.allclose(tr.heads[t].weight, 10.0 * before[t][0])
    for i, h in enumerate(tr.heads):
        if i != t:
            assert torch.equal(h.weight, before[i][0])
    _heads.impose(tr, "saturation", 8.0)
    assert torch.allclose(tr.heads[t].bias, before[t][1] + 8.0)
    # the optimizer still holds the changed parameters (changed in place)
    params = {id(p) for g in tr.optimizer.param_groups for p in g["params"]}
    assert id(tr.heads[t].weight) in params


def test_logit_gain_multiplies_the_target_logits() -> None:
    tr, ds = trainer()
    X = torch.as_tensor(ds.train.X[:16])
    _, before = tr.forward(X)
    _heads.impose(tr, "logit_gain", 100.0)
    _, after = tr.forward(X)
    t = _heads.TARGET_TASK
    assert torch.allclose(after[t], 100.0 * before[t], rtol=1e-5, atol=1e-5)
    for i in range(len(after)):
        if i != t:
            assert torch.equal(after[i], before[i])
    assert sum(p.numel() for p in tr.heads[t].parameters()) == sum(
        p.numel() for p in tr.heads[t][0].parameters())  # the gain is not trained


@pytest.mark.parametrize("cosine", [0.0, 0.9, 0.99])
def test_direction_sets_pairwise_cosines_and_freezes_the_rows(cosine: float) -> None:
    tr, _ = trainer()
    norms = torch.cat([h.weight.detach().norm(dim=1) for h in tr.heads])
    _heads.impose(tr, "direction", cosine, seed=3)
    W = torch.cat([h.weight.detach() for h in tr.heads]).double()
    assert torch.allclose(W.norm(dim=1), norms.double(), rtol=1e-5)
    U = W / W.norm(dim=1, keepdim=True)
    C = (U @ U.T).numpy()
    off = C[~np.eye(len(C), dtype=bool)]
    np.testing.assert_allclose(off, cosine, atol=1e-5)
    assert all(not h.weight.requires_grad and h.bias.requires_grad for h in tr.heads)


def test_impose_refuses_bad_values() -> None:
    tr, _ = trainer()
    with pytest.raises(ValueError, match="setting must be one of"):
        _heads.impose(tr, "width", 2.0)
    with pytest.raises(ValueError, match="factor must be a finite number >= 0"):
        _heads.impose(tr, "weight_norm", math.nan)
    with pytest.raises(ValueError, match="cosine must be in"):
        _heads.impose(tr, "direction", 1.0)


def test_steps_to_feasibility() -> None:
    phis = [(0, 0.2), (4, 0.06), (8, 0.05), (12, 0.07)]
    assert _heads.steps_to_feasibility(phis, 0.05) == 8.0
    assert _heads.steps_to_feasibility(phis, 0.5) == 0.0
    assert math.isnan(_heads.steps_to_feasibility(phis, 0.01))


# ----------------------------------------------------------------------------- quick, end to end


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    base = tmp_path_factory.mktemp("heads")
    a, b = base / "a", base / "b"
    assert cli.main(["study", "heads", "--quick", "--seeds", "1", "--out", str(a)]) == 0
    run_study("heads", quick=True, seeds=1, dataset="synthetic", out=str(b))
    return a, b


def test_files_and_columns(runs: tuple[pathlib.Path, pathlib.Path]) -> None:
    a, _ = runs
    for name in ("heads.csv", "heads_verdicts.csv", "results.csv", "groups.csv",
                 "history.csv", "timings.csv", "config.json", "report.md", "heads.png"):
        assert (a / name).is_file(), name
    cols, rows = read(a / "heads.csv")
    assert cols == HEADS_COLUMNS
    grid = _heads.SETTINGS["quick"]
    points = {(r["setting"], float(r["factor"])) for r in rows}
    assert points == {(s, f) for s, fs in grid.items() for f in fs}
    assert {r["proxy"] for r in rows} == set(_heads.PROXIES)
    assert {r["seed"] for r in rows} == {"0"}
    tasks = {r["task"] for r in rows} - {"all"}
    assert len(tasks) == 4
    for (setting, factor) in points:
        for proxy in _heads.PROXIES:
            sel = {(r["task"], r["metric"]): float(r["value"]) for r in rows
                   if (r["setting"], float(r["factor"]), r["proxy"]) == (setting, factor,
                                                                        proxy)}
            steps = sel[("all", "steps_to_feasibility")]
            assert math.isnan(steps) or 0 <= steps <= sel[("all", "steps")]
            assert (sel[("all", "phi_train")] <= 0.05) or not math.isnan(sel[("all", "steps")])
            alphas = [sel[(t, "alpha_mean")] for t in tasks]
            assert sum(alphas) == pytest.approx(1.0, abs=1e-5)
            if proxy == "none":
                assert alphas == pytest.approx([0.25] * 4)
            assert sel[("all", "phi_test")] >= 0
            for t in tasks:
                assert ((t, "accuracy") in sel) or ((t, "ccc") in sel)
                assert ((t, "eo") in sel) or ((t, "ks") in sel)
    vcols, verdicts = read(a / "heads_verdicts.csv")
    assert vcols == VERDICT_COLUMNS
    assert {r["b"] for r in verdicts} == {"rep", "full", "none"}
    assert {r["metric"] for r in verdicts} == {"utility", "fairness", "steps_to_feasibility"}
    for r in verdicts:  # one seed: the seed noise is not measured, nothing is resolved
        assert r["verdict"].startswith(("not resolved (one seed", "never feasible")), r
    _, timings = read(a / "timings.csv")
    assert {r["metric"] for r in timings} == {"time_per_step_s"}
    assert all(float(r["value"]) > 0 for r in timings)
    report = (a / "report.md").read_text()
    assert "](heads.png)" in report and "Does the head-aware proxy correct" in report
    assert "no difference resolved" in report


def test_deterministic_across_runs(runs: tuple[pathlib.Path, pathlib.Path]) -> None:
    a, b = runs
    for name in ("heads.csv", "heads_verdicts.csv", "results.csv", "groups.csv",
                 "history.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ----------------------------------------------------------------------------- errors


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    from fairmt_opt import studies

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a study was started")

    monkeypatch.setattr(studies, "run_study_config", refuse)
    monkeypatch.setattr(_heads, "_train", refuse)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--dataset", "adult"], "argument --dataset: the heads study generates its own"),
    (["--subsample", "100"], "argument --subsample: the heads study"),
    (["--methods", "head", "mgda"], "argument --methods: methods of the heads study must be "
                                    "among ['full', 'head', 'none', 'rep'], got ['mgda']"),
    (["--seeds", "0"], "argument --seeds: seeds must be an integer >= 1"),
    (["--epochs", "0"], "argument --epochs: epochs must be an integer >= 1"),
    (["--bootstrap", "5"], "argument --bootstrap: bootstrap must be an integer >= 100"),
    (["--device", "tpu"], "device must be 'cpu' or 'cuda'"),
])
def test_bad_values_one_line(argv: list[str], expected: str, tmp_path: pathlib.Path,
                             capsys: pytest.CaptureFixture[str], no_training: None) -> None:
    out = tmp_path / "out"
    rc = cli.main(["study", "heads", *argv, "--quick", "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert rc == 2 and stdout == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fairmt-opt study: error: ")
    assert expected in lines[0]
    assert not out.exists()


def test_run_heads_refuses_unknown_proxies(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="methods of the heads study must be among"):
        run_study("heads", quick=True, seeds=1, methods=("head", "sgd"),
                  out=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()
