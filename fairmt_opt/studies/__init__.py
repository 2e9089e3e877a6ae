"""Reproducible studies: each writes ``results.csv`` (``method, seed, split, task, metric,
value``), ``history.csv`` (``method, seed, step, quantity, value``) where there is a history,
PNG figures, ``report.md`` (embedding them, with an automatically written summary) and
``config.json`` (arguments, seeds, settings, package versions) to its folder; the training
studies also write ``groups.csv`` (``method, seed, split, task, group, metric, value, count``:
each group's TPR, FPR, accuracy or MAE on the test split, see
:func:`~fairmt_opt.studies._groups.group_rate_rows`). Two runs with the same arguments write
identical ``results.csv``, ``history.csv`` and ``groups.csv``; wall-clock measurements go to
``timings.csv``, the one file that differs. The solver studies (``aggregation``, ``qp``) put
the problem instance in the ``task`` column and ``-`` in ``split`` (they have no groups).

Output folders (:class:`~fairmt_opt.studies._outputs.OutputFolder`): the folder is checked
before anything runs, the outputs are written to a hidden folder beside it and moved into
place when complete; a folder holding another run's outputs is refused unless
``overwrite=True``. Verdicts (:mod:`fairmt_opt.studies._verdicts`) rest on confidence
intervals over seeds (Student t) and over test samples (paired percentile bootstrap); a
difference inside them is reported as *not resolved*.

================== =====================================================================
study              what it measures
================== =====================================================================
``aggregation``    FW, away-step and pairwise FW on AHFDA against the bound 4μ/(k+2)
``qp``             accuracy against time of the simplex QP solvers, T from 2 to 500
``dynamics``       primal–dual training: η, Φ against ε, ψ_t, w*, α, KKT residuals
``compare``        every method on a dataset, mean ± std over seeds, all metrics
``partial-labels`` ``compare`` with only a fraction of the training labels of each task
``sensitivity``    FairMT against μ, ε and the dual step size ρ
``frontier``       fairness–utility fronts over a sweep of ε (and λ), hypervolumes, fairlearn
``heads``          head proxies (head, rep, full, none) on heads of controlled geometry
================== =====================================================================

The training studies train through :class:`fairmt_opt.torch.Trainer`:
:func:`make_trainer` builds the trainer of a method on a dataset as the studies do (model and
data order seeded), :func:`train_method` also trains it, with :class:`TrainSettings`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ._common import StudyConfig, StudyResult
from ._outputs import OutputFolder, OutputFolderError, check_output_folder

__all__ = ["STUDIES", "STUDY_METHODS", "OutputFolder", "OutputFolderError", "StudyConfig",
           "StudyResult", "TrainSettings", "check_device", "check_output_folder",
           "make_study_config", "make_trainer", "run_study", "run_study_config",
           "train_method"]

_TRAINING = ("TrainSettings", "make_trainer", "train_method")


def __getattr__(name: str) -> Any:
    """The training helpers of the studies (imported on use: they need torch)."""
    if name in _TRAINING:
        from . import _training

        return getattr(_training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: study name -> "module:function" (imported on use: the training studies need torch)
STUDIES: dict[str, str] = {
    "aggregation": "._aggregation:run_aggregation",
    "qp": "._qp:run_qp",
    "dynamics": "._training:run_dynamics",
    "compare": "._compare:run_compare",
    "partial-labels": "._compare:run_partial_labels",
    "sensitivity": "._training:run_sensitivity",
    "frontier": "._frontier:run_frontier",
    "heads": "._heads:run_heads",
}


#: study name -> "module:attribute" of the method names it accepts (``--methods``); a study
#: without an entry does not read ``methods``
STUDY_METHODS: dict[str, str] = {
    "aggregation": "._aggregation:METHODS",
    "qp": "._qp:SOLVERS",
    "dynamics": "..torch:METHODS",
    "compare": "..torch:METHODS",
    "partial-labels": "..torch:METHODS",
    "heads": "._heads:PROXIES",
}


def check_device(device: str) -> str:
    """Check that ``device`` (``"cpu"``, ``"cuda"`` or ``"cuda:N"``) is present; returns it.

    Raises ``ValueError`` naming ``device`` when CUDA is asked for but torch has no CUDA
    device (or fewer than ``N + 1``). Cost: imports torch for a CUDA device.

    Examples
    --------
    >>> check_device("cpu")
    'cpu'
    """
    if device == "cpu":
        return device
    import torch

    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but CUDA is not available "
                         "(torch.cuda.is_available() is False); use --device cpu")
    if index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} was asked for but only "
                         f"{torch.cuda.device_count()} CUDA device(s) are present")
    return device


def make_study_config(name: str, *, check_output: bool = True, **options: Any) -> StudyConfig:
    """The :class:`StudyConfig` of study ``name``, with every check that can fail made now,
    before anything is trained: the options (:class:`StudyConfig`), the method names
    (:data:`STUDY_METHODS`), the device (:func:`check_device`) and, with ``check_output``, the
    output folder (:func:`~fairmt_opt.studies._outputs.check_output_folder`).

    Raises ``ValueError`` (:class:`~fairmt_opt.studies._outputs.OutputFolderError` for the
    folder) with a one-line message naming the argument.

    Examples
    --------
    >>> make_study_config("compare", seeds=0)
    Traceback (most recent call last):
    ...
    ValueError: seeds must be an integer >= 1, got 0
    >>> make_study_config("aggregation", methods=("exact",),
    ...                   check_output=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: methods of the aggregation study must be among [...], got ['exact']
    """
    if name not in STUDIES:
        raise ValueError(f"study must be one of {sorted(STUDIES)}, got {name!r}")
    config = StudyConfig(study=name, **options)
    if config.methods is not None and name in STUDY_METHODS:
        module, attr = STUDY_METHODS[name].split(":")
        allowed = sorted(getattr(importlib.import_module(module, __name__), attr))
        bad = [m for m in config.methods if m not in allowed]
        if bad:
            raise ValueError(f"methods of the {name} study must be among {allowed}, got {bad}")
    check_device(config.device)
    if check_output:
        check_output_folder(config.out_dir, overwrite=config.overwrite)
    return config


def run_study_config(config: StudyConfig) -> StudyResult:
    """Run a study from its :class:`StudyConfig` (see :func:`run_study`): the output folder is
    opened first (:meth:`StudyConfig.open_output`), and its staging folder removed if the
    study raises."""
    module, func = STUDIES[config.study].split(":")
    fn: Callable[[StudyConfig], StudyResult] = getattr(
        importlib.import_module(module, __name__), func)
    with config.open_output():
        return fn(config)


def run_study(name: str, **options: Any) -> StudyResult:
    """Run the study ``name`` with the options of :class:`StudyConfig`, checked first by
    :func:`make_study_config`; the outputs appear in ``out`` only when complete.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = run_study("aggregation", quick=True, seeds=1, methods=("away",), out=tmp)
    ...     sorted(res.files)[:3]
    ['aggregation_convergence.png', 'config.json', 'history.csv']
    """
    return run_study_config(make_study_config(name, **options))
