"""The command line's errors: one line on stderr, exit status 2, before anything is trained."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from fairmt_opt import cli


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any training or study run fail loudly: the errors must come before them."""
    from fairmt_opt import studies

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a study was started")

    monkeypatch.setattr(studies, "run_study_config", refuse)
    pytest.importorskip("torch")
    from fairmt_opt.studies import _training

    monkeypatch.setattr(_training, "train_method", refuse)


def one_line_error(capsys: pytest.CaptureFixture[str], rc: int, prog: str) -> str:
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: ")
    return lines[0]


@pytest.mark.parametrize(("argv", "expected"), [
    (["study", "compare", "--epochs", "0"], "argument --epochs: epochs must be an integer >= 1"),
    (["study", "compare", "--seeds", "-2"], "argument --seeds: seeds must be an integer >= 1"),
    (["study", "partial-labels", "--label-fraction", "1.5"],
     "argument --label-fraction: label_fraction must be in (0, 1], got 1.5"),
    (["study", "compare", "--methods", "fairmt", "sgd"],
     "methods of the compare study must be among"),
    (["study", "aggregation", "--methods", "exact"],
     "methods of the aggregation study must be among"),
    (["study", "compare", "--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
    (["study", "compare", "--device", "tpu"], "device must be 'cpu' or 'cuda'"),
    (["study", "compare", "--subsample", "0"], "subsample must be an integer >= 10"),
    (["study", "compare", "--bootstrap", "3"], "bootstrap must be an integer >= 100"),
    (["study", "compare", "--seeds", "two"], "argument --seeds: invalid int value: 'two'"),
    (["study", "nope"], "argument name: invalid choice: 'nope'"),
])
def test_bad_study_values(argv: list[str], expected: str, tmp_path: pathlib.Path,
                          capsys: pytest.CaptureFixture[str], no_training: None) -> None:
    out = tmp_path / "out"
    rc = cli.main([*argv, "--out", str(out)])
    assert expected in one_line_error(capsys, rc, "fairmt-opt study")
    assert not out.exists()


@pytest.mark.parametrize("argv", [["main", "--epochs", "0"], ["main", "--seeds", "-2"],
                                  ["main", "--device", "tpu"]])
def test_bad_main_values(argv: list[str], tmp_path: pathlib.Path,
                         capsys: pytest.CaptureFixture[str], no_training: None) -> None:
    out = tmp_path / "main"
    rc = cli.main([*argv, "--out", str(out)])
    one_line_error(capsys, rc, "fairmt-opt main")
    assert not out.exists()


def test_cuda_without_cuda(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path,
                           capsys: pytest.CaptureFixture[str], no_training: None) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for argv, prog in ((["study", "compare"], "fairmt-opt study"), (["main"], "fairmt-opt main")):
        rc = cli.main([*argv, "--device", "cuda", "--out", str(tmp_path / "x")])
        line = one_line_error(capsys, rc, prog)
        assert "CUDA is not available" in line and "AssertionError" not in line
    assert not (tmp_path / "x").exists()


def test_unwritable_out_fails_first(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str],
                                    no_training: None) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for argv, prog in ((["study", "compare"], "fairmt-opt study"), (["main"], "fairmt-opt main")):
        rc = cli.main([*argv, "--out", str(blocker / "out")])
        assert "argument --out: output folder" in one_line_error(capsys, rc, prog)


def test_unknown_dataset_command(capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["datasets", "mnist"])
    assert "dataset must be one of" in one_line_error(capsys, rc, "fairmt-opt datasets")


def test_second_study_into_the_same_folder(tmp_path: pathlib.Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "agg"
    base = ["study", "aggregation", "--quick", "--seeds", "1", "--out", str(out)]
    assert cli.main([*base, "--methods", "away"]) == 0
    capsys.readouterr()
    rc = cli.main([*base, "--methods", "pairwise"])
    line = one_line_error(capsys, rc, "fairmt-opt study")
    assert "already holds the outputs of another run; pass --overwrite" in line
    assert "pairwise" not in (out / "results.csv").read_text()
    assert cli.main([*base, "--methods", "pairwise", "--overwrite"]) == 0
    assert "pairwise" in (out / "results.csv").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agg"]  # nothing staged is left


def test_errors_from_a_fresh_process(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "never"
    res = subprocess.run([sys.executable, "-m", "fairmt_opt", "study", "compare", "--epochs",
                          "0", "--out", str(out)], capture_output=True, text=True, check=False)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == [
        "fairmt-opt study: error: argument --epochs: epochs must be an integer >= 1, got 0"]
    assert "Traceback" not in res.stderr and not out.exists()
