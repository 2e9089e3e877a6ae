"""End-to-end studies in quick mode: files, columns, report, determinism."""

from __future__ import annotations

import csv
import json
import pathlib

import numpy as np
import pytest

from fairmt_opt.studies import STUDIES, StudyConfig, run_study

RESULT_COLUMNS = ["method", "seed", "split", "task", "metric", "value"]
HISTORY_COLUMNS = ["method", "seed", "step", "quantity", "value"]


def read_csv(path: pathlib.Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open() as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def check_outputs(out: pathlib.Path, *, history: bool = True) -> list[dict[str, str]]:
    cols, rows = read_csv(out / "results.csv")
    assert cols == RESULT_COLUMNS
    assert rows, "results.csv is empty"
    for r in rows:
        float(r["value"])  # every value parses
        assert r["value"].lower() != "nan", r
    if history:
        hcols, hrows = read_csv(out / "history.csv")
        assert hcols == HISTORY_COLUMNS and hrows
    cfg = json.loads((out / "config.json").read_text())
    assert {"args", "versions", "seeds", "command"} <= set(cfg)
    assert cfg["versions"]["numpy"] == np.__version__
    report = (out / "report.md").read_text()
    assert "## Summary" in report
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs, "no figure"
    for name in pngs:
        assert f"]({name})" in report  # every figure is embedded
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return rows


def test_registry_and_config_validation() -> None:
    assert set(STUDIES) >= {"aggregation", "qp", "dynamics", "compare", "partial-labels",
                            "sensitivity"}
    with pytest.raises(ValueError, match="study must be one of"):
        run_study("nope")
    with pytest.raises(ValueError, match="seeds must be an integer >= 1"):
        StudyConfig("compare", seeds=0)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        StudyConfig("compare", device="tpu")
    with pytest.raises(ValueError, match="label_fraction must be in"):
        StudyConfig("partial-labels", label_fraction=0.0)


def test_aggregation_quick_bound_and_determinism(tmp_path: pathlib.Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    run_study("aggregation", quick=True, seeds=1, out=str(a))
    run_study("aggregation", quick=True, seeds=1, out=str(b))
    rows = check_outputs(a)
    assert {r["method"] for r in rows} == {"frank_wolfe", "away", "pairwise"}
    assert (a / "results.csv").read_bytes() == (b / "results.csv").read_bytes()
    assert (a / "history.csv").read_bytes() == (b / "history.csv").read_bytes()
    # SPEC P4, checked on the recorded data: vanilla FW suboptimality <= 4 mu / (k + 2)
    _, hist = read_csv(a / "history.csv")
    checked = 0
    for r in hist:
        if r["method"] == "frank_wolfe" and r["quantity"].startswith("subopt["):
            mu = float(r["quantity"].split("mu=")[1].split(",")[0])
            k = int(r["step"])
            assert float(r["value"]) <= 4 * mu / (k + 2) + 1e-12
            assert float(r["value"]) >= -1e-12
            checked += 1
    assert checked > 10
    assert "bound" in (a / "report.md").read_text()


def test_aggregation_rejects_unknown_method(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="methods of the aggregation study"):
        run_study("aggregation", quick=True, seeds=1, methods=("exact",), out=str(tmp_path))


def _qp_available() -> bool:
    from fairmt_opt import solve_simplex_qp

    try:
        solve_simplex_qp(np.eye(2), np.zeros(2))
    except NotImplementedError:
        return False
    return True


def test_qp_quick(tmp_path: pathlib.Path) -> None:
    if not _qp_available():
        pytest.skip("fairmt_opt.solve_simplex_qp is not implemented in this checkout yet")
    run_study("qp", quick=True, seeds=1, methods=("active_set", "mgda_fw250", "apg"),
              out=str(tmp_path / "q1"))
    rows = check_outputs(tmp_path / "q1", history=False)
    cols, timings = read_csv(tmp_path / "q1" / "timings.csv")
    assert cols == ["method", "seed", "task", "metric", "value"] and timings
    gaps = {(r["method"], r["task"]): float(r["value"]) for r in rows if r["metric"] == "fw_gap"}
    assert all(v <= 1e-8 for (m, _), v in gaps.items() if m == "active_set")
    run_study("qp", quick=True, seeds=1, methods=("active_set", "mgda_fw250", "apg"),
              out=str(tmp_path / "q2"))
    assert (tmp_path / "q1" / "results.csv").read_bytes() == \
        (tmp_path / "q2" / "results.csv").read_bytes()


def test_compare_quick_all_methods(tmp_path: pathlib.Path) -> None:
    from fairmt_opt.torch import METHODS

    a, b = tmp_path / "a", tmp_path / "b"
    run_study("compare", dataset="synthetic", quick=True, seeds=1, out=str(a))
    rows = check_outputs(a)
    assert {r["method"] for r in rows} == set(METHODS)
    assert {r["split"] for r in rows} >= {"val", "test"}
    metrics = {r["metric"] for r in rows}
    assert {"eod", "eo", "ks", "csp", "accuracy", "f1", "macro_f1", "ccc", "mae", "rmse",
            "psi", "phi"} <= metrics
    report = (a / "report.md").read_text()
    assert "FairMT" in report and "tradeoff.png" in report
    cols, timings = read_csv(a / "timings.csv")  # wall-clock lives apart from results.csv
    assert cols == ["method", "seed", "task", "metric", "value"]
    assert {r["method"] for r in timings} == set(METHODS)
    # each (method, seed) is trained independently: a run of a subset reproduces its rows
    run_study("compare", dataset="synthetic", quick=True, seeds=1, methods=("mgda",),
              out=str(b))
    _, sub = read_csv(b / "results.csv")
    assert sub == [r for r in rows if r["method"] == "mgda"]


def test_compare_two_runs_identical(tmp_path: pathlib.Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        run_study("compare", dataset="synthetic", quick=True, seeds=2,
                  methods=("fairmt", "linear"), out=str(out))
    assert (a / "results.csv").read_bytes() == (b / "results.csv").read_bytes()
    assert (a / "history.csv").read_bytes() == (b / "history.csv").read_bytes()
    _, rows = read_csv(a / "results.csv")
    assert {r["seed"] for r in rows} == {"0", "1"}


def test_compare_other_seed_differs(tmp_path: pathlib.Path) -> None:
    from fairmt_opt.datasets import make_synthetic
    from fairmt_opt.studies._training import TrainSettings, history_rows, train_method

    ds = make_synthetic(n_samples=600, seed=0)
    s = TrainSettings(epochs=1, batch_size=128, hidden=(8,))
    a = train_method("fairmt", ds, seed=0, settings=s)
    b = train_method("fairmt", ds, seed=1, settings=s)
    c = train_method("fairmt", ds, seed=0, settings=s)
    assert history_rows(a) == history_rows(c)
    assert history_rows(a) != history_rows(b)
    assert a.step == c.step == len(ds.train) // 128  # one epoch, the last batch dropped


def test_partial_labels_quick(tmp_path: pathlib.Path) -> None:
    run_study("partial-labels", dataset="synthetic", quick=True, seeds=1,
              methods=("fairmt", "linear"), label_fraction=0.25, out=str(tmp_path))
    check_outputs(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["args"]["label_fraction"] == 0.25
    assert cfg["dataset_info"]["label_fraction"] == 0.25
    assert "--label-fraction 0.25" in cfg["command"]
    assert "25% of the training labels" in (tmp_path / "report.md").read_text()


def test_dynamics_quick(tmp_path: pathlib.Path) -> None:
    run_study("dynamics", dataset="synthetic", quick=True, seeds=1, out=str(tmp_path))
    rows = check_outputs(tmp_path)
    _, hist = read_csv(tmp_path / "history.csv")
    quantities = {r["quantity"] for r in hist}
    assert {"phi", "eta", "grad_norm", "kkt:stationarity", "kkt:stationarity_rel",
            "kkt:complementarity", "kkt:primal_infeasibility",
            "kkt:dual_infeasibility"} <= quantities
    assert any(q.startswith("psi[") for q in quantities)
    assert any(q.startswith("alpha[") for q in quantities)
    assert any(q.startswith("w[") for q in quantities)
    eta = [float(r["value"]) for r in hist if r["quantity"] == "eta"]
    assert min(eta) >= 0.0  # dual feasibility of the projected ascent
    final = {r["metric"]: float(r["value"]) for r in rows if r["split"] == "train"}
    assert final["final_complementarity"] == pytest.approx(
        abs(final["final_eta"] * (final["final_phi_train"] - 0.05)), rel=1e-6, abs=1e-12)
    assert "Complementary slackness" in (tmp_path / "report.md").read_text()
    # the study's own Phi (soft violations + AHFDA) is the method's Phi on the same data
    phis = {}
    for r in hist:
        if r["quantity"] in ("kkt:phi_train", "kkt:phi_train_method"):
            phis.setdefault(r["step"], {})[r["quantity"]] = float(r["value"])
    assert phis and all(v["kkt:phi_train"] == pytest.approx(v["kkt:phi_train_method"],
                                                            rel=1e-5, abs=1e-7)
                        for v in phis.values())


def test_sensitivity_quick(tmp_path: pathlib.Path) -> None:
    run_study("sensitivity", dataset="synthetic", quick=True, seeds=1, out=str(tmp_path))
    rows = check_outputs(tmp_path)
    methods = {r["method"] for r in rows}
    assert "fairmt[default]" in methods and "fairmt[mu=0.01]" in methods
    assert "fairmt[eps=0.1]" in methods and "fairmt[rho=10]" in methods
    assert "Φ is evaluated with the default μ" in (tmp_path / "report.md").read_text()


def test_unknown_method_rejected(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="methods of the compare study must be among"):
        run_study("compare", dataset="synthetic", quick=True, seeds=1, methods=("sgd",),
                  out=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()  # refused before the folder is made


def test_config_defaults_and_result_repr(tmp_path: pathlib.Path) -> None:
    cfg = StudyConfig("compare")
    assert cfg.out_dir == pathlib.Path("runs") / "compare-adult"
    assert (cfg.dataset, cfg.seeds, cfg.device, cfg.quick) == ("adult", 3, "cpu", False)
    res = run_study("aggregation", quick=True, seeds=1, methods=("pairwise",),
                    out=str(tmp_path))
    text = repr(res)
    assert text.startswith("StudyResult(study='aggregation'") and "report.md" in text
    assert res.report == tmp_path / "report.md"
