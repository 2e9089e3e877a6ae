"""Output folders: checked first, written aside, moved into place; earlier runs refused."""

from __future__ import annotations

import os
import pathlib
import stat

import pytest

from fairmt_opt.studies import OutputFolder, OutputFolderError, check_output_folder, run_study
from fairmt_opt.studies._outputs import RUN_MARKER, is_run_folder


def visible(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def hidden(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_outputs_appear_only_when_complete(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "run"
    folder = OutputFolder(out, label="t")
    (folder.path / "a.csv").write_text("x\n")
    assert not out.exists()  # nothing under the final name while running
    assert folder.path.parent == tmp_path and folder.path.name.startswith(".run.partial-")
    assert folder.commit({"command": "c"}) == out
    assert sorted(p.name for p in out.iterdir()) == [RUN_MARKER, "a.csv"]
    assert hidden(tmp_path) == [] and is_run_folder(out)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask  # not private like a temp dir
    with pytest.raises(OutputFolderError, match="already in place"):
        folder.commit()


def test_empty_existing_folder_is_used(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    folder = OutputFolder(out)
    (folder.path / "b.txt").write_text("b")
    folder.commit()
    assert visible(out) == ["b.txt"]


def _earlier_run(out: pathlib.Path) -> None:
    with OutputFolder(out, label="earlier") as folder:
        (folder.path / "old_only.csv").write_text("old\n")
        (folder.path / "report.md").write_text("# old\n")
        folder.commit()


def test_earlier_run_refused_without_overwrite(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "run"
    _earlier_run(out)
    with pytest.raises(OutputFolderError, match="already holds the outputs of another run; "
                                                "pass --overwrite"):
        OutputFolder(out)
    assert visible(out) == ["old_only.csv", "report.md"]  # untouched
    assert hidden(tmp_path) == []  # and no probe or staging folder left behind


def test_overwrite_moves_the_earlier_run_aside_at_once(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "run"
    _earlier_run(out)
    folder = OutputFolder(out, overwrite=True)
    assert not out.exists()  # the earlier outputs cannot be taken for this run's
    assert any(n.startswith(".run.previous-") for n in hidden(tmp_path))
    (folder.path / "report.md").write_text("# new\n")
    folder.commit()
    assert visible(out) == ["report.md"] and (out / "report.md").read_text() == "# new\n"
    assert hidden(tmp_path) == []  # the earlier run is deleted once the new one is in place


def test_failed_run_leaves_nothing_under_the_final_name(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "run"
    _earlier_run(out)
    with pytest.raises(RuntimeError, match="interrupted") as info:
        with OutputFolder(out, overwrite=True) as folder:
            (folder.path / "report.md").write_text("# half\n")
            raise RuntimeError("interrupted")
    assert not out.exists()
    previous = [n for n in hidden(tmp_path) if n.startswith(".run.previous-")]
    assert len(previous) == 1 and hidden(tmp_path) == previous  # staging removed
    assert (tmp_path / previous[0] / "old_only.csv").read_text() == "old\n"
    assert any(previous[0] in note for note in getattr(info.value, "__notes__", [previous[0]]))


def test_foreign_files_never_cleared(tmp_path: pathlib.Path) -> None:
    (tmp_path / "thesis.tex").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(OutputFolderError, match="not the outputs of a fairmt-opt run"):
            check_output_folder(tmp_path, overwrite=overwrite)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_unwritable_folders_fail_at_the_check(tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputFolderError, match="cannot be written"):
        check_output_folder(blocker / "out")
    with pytest.raises(OutputFolderError, match="exists and is not a folder"):
        check_output_folder(blocker)
    with pytest.raises(OutputFolderError, match="non-empty path"):
        check_output_folder("")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="permissions do not bind the superuser")
def test_read_only_parent_fails_at_the_check(tmp_path: pathlib.Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputFolderError, match="cannot be written"):
            check_output_folder(ro / "out")
    finally:
        ro.chmod(0o755)


def test_commit_refuses_a_folder_filled_meanwhile(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "run"
    folder = OutputFolder(out)
    _earlier_run(out)  # another run finished first
    with pytest.raises(OutputFolderError, match="filled by another run while this one ran"):
        folder.commit()
    assert folder.path.is_dir() and visible(out) == ["old_only.csv", "report.md"]


def test_legacy_run_folder_is_recognised(tmp_path: pathlib.Path) -> None:
    (tmp_path / "report.md").write_text("# r\n")
    (tmp_path / "compare").mkdir()
    (tmp_path / "compare" / "config.json").write_text("{}")
    assert is_run_folder(tmp_path)
    assert not is_run_folder(tmp_path / "compare")  # a config.json alone is not a report


def test_second_study_refused_then_overwritten(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "agg"
    run_study("aggregation", quick=True, seeds=1, methods=("away",), out=str(out))
    first = visible(out)
    (out / "stale_extra.csv").write_text("from an older version\n")
    with pytest.raises(OutputFolderError, match="already holds the outputs of another run"):
        run_study("aggregation", quick=True, seeds=1, methods=("pairwise",), out=str(out))
    res = run_study("aggregation", quick=True, seeds=1, methods=("pairwise",), out=str(out),
                    overwrite=True)
    assert res.out == out and visible(out) == first  # the stale file went with the old run
    assert "pairwise" in (out / "results.csv").read_text()
    assert "away" not in (out / "results.csv").read_text()
    assert hidden(tmp_path) == []


def test_interrupted_study_keeps_the_final_name_clear(tmp_path: pathlib.Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from fairmt_opt.studies import _aggregation
    from fairmt_opt.studies._common import StudyWriter

    def broken(config):  # writes part of its outputs, then stops
        w = StudyWriter(config)
        w.result("m", 0, "-", "t", "x", 1.0)
        (w.out / "partial.png").write_bytes(b"")
        raise KeyboardInterrupt

    out = tmp_path / "agg"
    run_study("aggregation", quick=True, seeds=1, methods=("away",), out=str(out))
    monkeypatch.setattr(_aggregation, "run_aggregation", broken)
    with pytest.raises(KeyboardInterrupt):
        run_study("aggregation", quick=True, seeds=1, out=str(out), overwrite=True)
    assert not out.exists()  # neither the old outputs nor a mix of old and new
    assert [n for n in hidden(tmp_path) if ".partial-" in n] == []
