r"""Safe output folders: checked at the start, written aside, moved into place when complete.

A run (one study, or the main job) never writes into its final folder. :class:`OutputFolder`

1. checks the folder first (:func:`check_output_folder`): it must be new, empty, or (with
   ``overwrite=True``) hold the outputs of an earlier run; its parent must be writable (the
   check creates and removes a probe folder there), so that an unwritable or read-only
   ``--out`` fails before any training;
2. with ``overwrite=True`` moves the earlier run's folder aside at once (to a hidden
   ``.NAME.previous-*`` folder beside it), so that nothing of it can be taken for the outputs of
   this run;
3. gives the run a hidden staging folder beside the final one (``.NAME.partial-*``, on the same
   file system) to write into;
4. on :meth:`OutputFolder.commit` writes the run marker (:data:`RUN_MARKER`) and renames the
   staging folder to the final name (one ``rename``), then deletes the folder moved aside.

An interrupted run leaves only hidden folders behind, never a mix of old and new files under
the final name. A folder that holds files which are not a run's outputs is refused even with
``overwrite=True`` (it is never cleared).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from types import TracebackType
from typing import Any

__all__ = ["RUN_MARKER", "OutputFolder", "OutputFolderError", "check_output_folder",
           "is_run_folder"]

#: the file that marks a folder as the complete outputs of one run (written last)
RUN_MARKER = ".fairmt-opt-run.json"


class OutputFolderError(ValueError):
    """An output folder that cannot take a run's outputs (unwritable, not a folder, holding
    another run's outputs without ``overwrite``, or holding other files)."""


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding the complete outputs of a run: it has the run
    marker, or (folders written before the marker existed) a ``report.md`` beside a
    ``config.json`` in it or in one of its subfolders.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = pathlib.Path(tmp)
    ...     before = is_run_folder(p)
    ...     _ = (p / RUN_MARKER).write_text("{}")
    ...     before, is_run_folder(p)
    (False, True)
    """
    p = pathlib.Path(path)
    if not p.is_dir():
        return False
    if (p / RUN_MARKER).is_file():
        return True
    if not (p / "report.md").is_file():
        return False
    return (p / "config.json").is_file() or any(
        (c / "config.json").is_file() for c in p.iterdir() if c.is_dir())


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_output_folder(path: str | os.PathLike[str], *, overwrite: bool = False
                        ) -> pathlib.Path:
    """Check, before a run starts, that ``path`` can take its outputs; returns ``path``.

    ``path`` may not exist yet (its parent folders are created), may be an empty folder, or
    with ``overwrite=True`` a folder holding an earlier run's outputs (:func:`is_run_folder`).
    Writability is probed by creating and removing a folder beside ``path``. Cost: a few file
    system calls.

    Raises
    ------
    OutputFolderError
        With a one-line message naming the folder and the problem: not a folder, holding
        another run's outputs (pass ``overwrite``), holding other files, or not writable.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (pathlib.Path(tmp) / "a.txt").write_text("not a run")
    ...     try:
    ...         check_output_folder(tmp, overwrite=True)
    ...     except OutputFolderError as exc:
    ...         print(str(exc).split(";")[0].replace(tmp, "TMP"))
    output folder TMP holds files that are not the outputs of a fairmt-opt run
    """
    if os.fspath(path) == "":
        raise OutputFolderError("output folder must be a non-empty path")
    p = pathlib.Path(path)
    if p.exists() and not p.is_dir():
        raise OutputFolderError(f"output folder {p} exists and is not a folder")
    if p.is_dir() and any(p.iterdir()):
        if not is_run_folder(p):
            raise OutputFolderError(
                f"output folder {p} holds files that are not the outputs of a fairmt-opt run; "
                "choose a new or empty folder (it is never cleared, even with --overwrite)")
        if not overwrite:
            raise OutputFolderError(
                f"output folder {p} already holds the outputs of another run; pass "
                "--overwrite to replace them, or choose another folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise OutputFolderError(f"output folder {p} is not writable (cannot replace it)")
    parent = pathlib.Path(os.path.abspath(p)).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{_name(p)}.probe-", dir=parent)
        with open(os.path.join(probe, "probe"), "w") as fh:
            fh.write("ok")
        shutil.rmtree(probe)
    except OSError as exc:
        raise OutputFolderError(f"output folder {p} cannot be written: {_why(exc)} "
                                f"({parent})") from exc
    return p


def _name(p: pathlib.Path) -> str:
    return pathlib.Path(os.path.abspath(p)).name or "out"


class OutputFolder:
    """The staging folder of one run and its move into place (module docstring).

    Parameters
    ----------
    final : path
        The folder the outputs are meant for (``--out``); checked by
        :func:`check_output_folder` at once.
    overwrite : bool
        Replace an earlier run's outputs in ``final`` (moved aside at once, deleted on
        :meth:`commit`).
    label : str
        What the run is (``"compare"``, ``"main"``...), recorded in the run marker.

    Attributes
    ----------
    final : pathlib.Path
        As given.
    path : pathlib.Path
        The staging folder to write into (hidden, beside ``final``).
    committed : bool
        Whether :meth:`commit` has moved the outputs into place.

    Used as a context manager, the staging folder is removed when the block raises before
    :meth:`commit` (an earlier run's folder moved aside stays where it was moved, hidden, and
    the error says where).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = pathlib.Path(tmp) / "run"
    ...     with OutputFolder(out, label="demo") as folder:
    ...         _ = (folder.path / "results.csv").write_text("a,b\\n")
    ...         before = out.exists()
    ...         _ = folder.commit()
    ...     sorted(p.name for p in out.iterdir()), before
    (['.fairmt-opt-run.json', 'results.csv'], False)
    """

    def __init__(self, final: str | os.PathLike[str], *, overwrite: bool = False,
                 label: str = "run") -> None:
        self.final = check_output_folder(final, overwrite=overwrite)
        self.label = str(label)
        self.committed = False
        self._abs = pathlib.Path(os.path.abspath(self.final))
        self._previous: pathlib.Path | None = None
        name = _name(self.final)
        if self._abs.is_dir() and any(self._abs.iterdir()):  # an earlier run, overwrite given
            self._previous = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}.previous-",
                                                           dir=self._abs.parent))
            os.replace(self._abs, self._previous)  # onto the empty folder just made
        self.path = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}.partial-",
                                                  dir=self._abs.parent))
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)  # mkdtemp makes it private; the outputs are not

    def commit(self, info: dict[str, Any] | None = None) -> pathlib.Path:
        """Write the run marker (with ``info``) and move the staging folder to ``final``;
        returns ``final``. Raises :class:`OutputFolderError` (keeping the staging folder) when
        another run filled ``final`` meanwhile."""
        if self.committed:
            raise OutputFolderError(f"the outputs of {self.final} are already in place")
        marker = {"run": self.label, **(info or {})}
        (self.path / RUN_MARKER).write_text(json.dumps(marker, indent=2, default=str) + "\n")
        if self._abs.is_dir() and not any(self._abs.iterdir()):
            self._abs.rmdir()
        if self._abs.exists():
            raise OutputFolderError(
                f"output folder {self.final} was filled by another run while this one ran; "
                f"this run's outputs are kept in {self.path}")
        os.replace(self.path, self._abs)
        self.committed = True
        if self._previous is not None:
            shutil.rmtree(self._previous, ignore_errors=True)
            self._previous = None
        return self.final

    def abort(self) -> None:
        """Remove the staging folder (nothing is moved into place)."""
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.committed:
            return
        self.abort()
        if exc is not None and self._previous is not None and hasattr(exc, "add_note"):
            exc.add_note(f"the earlier outputs of {self.final} were moved to {self._previous}")

    def __repr__(self) -> str:
        return (f"OutputFolder(final={str(self.final)!r}, path={str(self.path)!r}, "
                f"committed={self.committed})")
