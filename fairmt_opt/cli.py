"""The ``fairmt-opt`` command line.

.. code-block:: text

    fairmt-opt main [--out DIR] [--overwrite] [--seeds N] [--epochs E] [--quick]
                    [--bootstrap B]
    fairmt-opt study NAME [--dataset D] [--methods M ...] [--seeds N] [--epochs E]
                          [--device cpu|cuda] [--out DIR] [--overwrite] [--quick]
                          [--label-fraction F] [--subsample N] [--bootstrap B]
    fairmt-opt datasets [NAME ...]
    fairmt-opt check [ARGS ...]        # python -m proofs_checks ARGS
    fairmt-opt bench [NAME ...] [--quick] [-- ARGS]   # the scripts in benchmarks/

Every value is checked before anything is trained: a bad one (``--epochs 0``, ``--seeds -2``,
``--label-fraction 1.5``, an unknown method or dataset, ``--device cuda`` without CUDA, an
unwritable ``--out``, an ``--out`` holding another run's outputs without ``--overwrite``)
ends in one line ``fairmt-opt study: error: ...`` on stderr and exit status 2. The outputs are
written to a hidden folder beside ``--out`` and moved into place when complete
(:class:`fairmt_opt.studies.OutputFolder`).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["build_parser", "main"]

_STUDY_NAMES = ("aggregation", "qp", "dynamics", "compare", "partial-labels", "sensitivity",
                "frontier", "heads")
_DATASETS = ("adult", "compas", "kdd", "celeba-attrs", "synthetic")
_MAIN_STUDIES = ("compare", "dynamics", "frontier")
#: options of the main job's studies beyond the main command's (the frontier in its quick
#: version keeps the whole job under five minutes on 2 CPU cores; the full one is
#: ``fairmt-opt study frontier --dataset adult``)
_MAIN_OVERRIDES: dict[str, dict[str, Any]] = {"frontier": {"quick": True}}
#: bootstrap resamples of the main job (its time budget; ``--bootstrap`` overrides it)
_MAIN_BOOTSTRAP = 200


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


_FLAGS = ("seeds", "epochs", "device", "label_fraction", "subsample", "bootstrap", "methods",
          "dataset", "output folder")


def _usage_error(prog: str, message: object, *, flags: bool = True) -> int:
    """Print ``prog: error: argument --FLAG: message`` (one line) and return 2."""
    text = _one_line(message)
    first = next((f for f in _FLAGS if flags and text.startswith(f + " ")), None)
    if first is not None:
        flag = "--out" if first == "output folder" else "--" + first.replace("_", "-")
        text = f"argument {flag}: {text}"
    print(f"{prog}: error: {text}", file=sys.stderr)
    return 2


def _add_study_options(p: argparse.ArgumentParser, *, main: bool = False) -> None:
    if not main:
        p.add_argument("--dataset", default=None, choices=_DATASETS,
                       help="dataset of the training studies (default: adult; the heads "
                            "study generates its own synthetic tasks)")
        p.add_argument("--methods", nargs="+", default=None,
                       help="methods to run (default: the study's own list)")
        p.add_argument("--label-fraction", type=float, default=0.3,
                       help="share of training labels kept per task (partial-labels)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--out", default=None, help="output folder (must be new or empty, or hold "
                   "an earlier run's outputs with --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier run in --out")
    p.add_argument("--bootstrap", type=int, default=None,
                   help="bootstrap resamples of the test samples behind the verdicts' "
                        "intervals (default 500, 200 with --quick and in the main job)")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--subsample", type=int, default=None,
                   help="rows kept from the dataset (all splits together)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fairmt-opt``."""
    parser = _Parser(
        prog="fairmt-opt",
        description="Fairness-aware multi-task learning studies (FairMT): reproducible runs "
                    "with tables, figures and a report.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("main", help="the main job: studies compare, dynamics and the quick "
                                    "frontier on adult")
    _add_study_options(p, main=True)
    p = sub.add_parser("study", help="run one study")
    p.add_argument("name", choices=_STUDY_NAMES)
    _add_study_options(p)
    p = sub.add_parser("datasets", help="describe the datasets and their group base rates")
    p.add_argument("names", nargs="*", default=[], help=f"any of {', '.join(_DATASETS)}")
    p = sub.add_parser("check", help="run the proposition checks (python -m proofs_checks)")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = sub.add_parser("bench", help="run the solver benchmarks (benchmarks/*.py)")
    p.add_argument("names", nargs="*", help="benchmark script names (default: all)")
    p.add_argument("--dir", default=None, help="benchmarks folder (default: ./benchmarks)")
    p.add_argument("--quick", action="store_true",
                   help="pass --quick to the scripts that accept it (short runs)")
    return parser


def _options(args: argparse.Namespace, **over: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "dataset": getattr(args, "dataset", None) or "adult",
        "methods": tuple(args.methods) if getattr(args, "methods", None) else None,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "device": args.device,
        "out": args.out,
        "quick": args.quick,
        "label_fraction": getattr(args, "label_fraction", 0.3),
        "subsample": args.subsample,
        "bootstrap": args.bootstrap,
        "overwrite": args.overwrite,
    }
    opts.update(over)
    return opts


def _run(config: Any) -> int:
    from .datasets import DataPackageMissingError
    from .studies import run_study_config

    t0 = time.perf_counter()
    try:
        res = run_study_config(config)
    except DataPackageMissingError as exc:  # raised while loading, before any training
        return _usage_error(f"fairmt-opt study {config.study}", exc)
    print(f"[{config.study}] {res.summary}")
    print(f"[{config.study}] done in {time.perf_counter() - t0:.0f} s; report: {res.report}")
    return 0


#: studies that generate their own data: the dataset they record, and the options that do
#: not apply to them
_OWN_DATA = {"heads": "synthetic"}


def _study(name: str, args: argparse.Namespace) -> int:
    from .studies import make_study_config

    over: dict[str, Any] = {}
    if name in _OWN_DATA:
        own = _OWN_DATA[name]
        if args.dataset not in (None, own):
            return _usage_error("fairmt-opt study", f"argument --dataset: the {name} study "
                                f"generates its own {own} tasks; leave --dataset out (or "
                                f"give {own}), got {args.dataset!r}", flags=False)
        if args.subsample is not None:
            return _usage_error("fairmt-opt study", f"argument --subsample: the {name} study "
                                "generates its own data and has no --subsample", flags=False)
        over["dataset"] = own
    try:
        config = make_study_config(name, **_options(args, **over))
    except ValueError as exc:
        return _usage_error("fairmt-opt study", exc)
    return _run(config)


def _main_job(args: argparse.Namespace) -> int:
    from .datasets import DataPackageMissingError
    from .studies import OutputFolder, make_study_config, run_study_config

    root = pathlib.Path(args.out or "runs/main")
    t0 = time.perf_counter()
    try:
        configs = {n: make_study_config(n, check_output=False, **_options(
            args, dataset="adult", methods=None, label_fraction=0.3, out=str(root / n),
            overwrite=False, bootstrap=args.bootstrap or _MAIN_BOOTSTRAP,
            **_MAIN_OVERRIDES.get(n, {}))) for n in _MAIN_STUDIES}
        folder = OutputFolder(root, overwrite=args.overwrite, label="main")
    except ValueError as exc:
        return _usage_error("fairmt-opt main", exc)
    with folder:
        for n, cfg in configs.items():
            staged = dataclasses.replace(cfg, out=str(folder.path / n), recorded_out=str(root / n))
            t1 = time.perf_counter()
            try:
                res = run_study_config(staged)
            except DataPackageMissingError as exc:
                return _usage_error("fairmt-opt main", exc)
            print(f"[{n}] {res.summary}")
            print(f"[{n}] done in {time.perf_counter() - t1:.0f} s")
        (folder.path / "report.md").write_text(
            "# fairmt-opt main job: adult\n\n"
            f"- [study compare](compare/report.md): every method, mean and 95% intervals over "
            f"{args.seeds} seed(s) and the test samples, all metrics per task, per-group rates\n"
            "- [study dynamics](dynamics/report.md): the primal–dual training of FairMT step by "
            "step\n"
            "- [study frontier](frontier/report.md) (its quick version: two ε, two λ, one "
            "fairlearn bound, 2 epochs): fronts, hypervolumes, per-group verdicts of the "
            "lift-only claim at each ε; the full sweep is `fairmt-opt study frontier "
            "--dataset adult`\n\n"
            + "\n\n".join(f"## {n}\n\n" + _summary_of(folder.path / n / "report.md")
                           for n in _MAIN_STUDIES) + "\n")
        folder.commit({"command": "fairmt-opt main"})
    print(f"main job done in {time.perf_counter() - t0:.0f} s")
    print(f"report: {(root / 'report.md').resolve()}")
    return 0


def _summary_of(report: pathlib.Path) -> str:
    text = report.read_text().split("## Summary", 1)[-1]
    return text.split("\n## ", 1)[0].strip()


def _datasets(names: Sequence[str]) -> int:
    from .datasets import DATASETS, DataPackageMissingError, load_dataset

    bad = [n for n in names if n not in DATASETS]
    if bad:
        return _usage_error("fairmt-opt datasets",
                            f"dataset must be one of {sorted(DATASETS)}, got {bad}", flags=False)
    for name in names or list(DATASETS):
        opts = {"subsample": None}
        if name == "synthetic":
            opts = {}
        try:
            ds = load_dataset(name, **opts)
        except DataPackageMissingError as exc:
            print(f"{name}: {exc}\n")
            continue
        print(ds)
        print(f"  {ds.info.get('source', '')}; licence: {ds.info.get('license', '')}")
        for row in ds.base_rates():
            print(f"  {row['task']:>20s}  {row['group']:>22s}  n={row['labelled']:>7d}  "
                  f"{row['statistic']} = {row['value']:.4g}")
        print()
    return 0


def _check(args: Sequence[str]) -> int:
    return subprocess.call([sys.executable, "-m", "proofs_checks", *args])


def _bench(names: Sequence[str], folder: str | None, *, quick: bool = False,
           extra: Sequence[str] = ()) -> int:
    base = pathlib.Path(folder) if folder else pathlib.Path("benchmarks")
    if not base.is_dir():
        print(f"fairmt-opt bench: no benchmarks folder at {base.resolve()} "
              "(run from the repository root or pass --dir)", file=sys.stderr)
        return 2
    scripts = sorted(p for p in base.glob("*.py") if not p.name.startswith(("_", "run_all")))
    if names:
        wanted = {n.removesuffix(".py") for n in names}
        scripts = [p for p in scripts if p.stem in wanted]
        missing = wanted - {p.stem for p in scripts}
        if missing:
            print(f"fairmt-opt bench: unknown benchmark(s) {sorted(missing)}", file=sys.stderr)
            return 2
    status = 0
    for script in scripts:
        args = list(extra)
        if quick and '"--quick"' in script.read_text():
            args.append("--quick")
        print(f"== {script.name} {' '.join(args)}".rstrip(), flush=True)
        rc = subprocess.call([sys.executable, str(script), *args])
        status = status or rc
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fairmt-opt`` (returns the exit status).

    Examples
    --------
    >>> build_parser().parse_args(["study", "qp", "--quick"]).name
    'qp'
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check"] and not {"-h", "--help"} & set(argv[1:2]):
        return _check(argv[1:])  # everything after "check" goes to proofs_checks verbatim
    extra: list[str] = []
    if argv[:1] == ["bench"] and "--" in argv:  # fairmt-opt bench [NAMES] -- SCRIPT ARGS
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a usage error (one line on stderr) or --help
        return exc.code if isinstance(exc.code, int) else 2
    if args.command == "main":
        return _main_job(args)
    if args.command == "study":
        return _study(args.name, args)
    if args.command == "datasets":
        return _datasets(args.names)
    if args.command == "check":
        return _check(args.args)
    if args.command == "bench":
        return _bench(args.names, args.dir, quick=args.quick, extra=extra)
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
