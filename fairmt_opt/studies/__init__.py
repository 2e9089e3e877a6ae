"""Reproducible studies: each writes ``results.csv`` (``method, seed, split, task, metric,
value``), ``history.csv`` (``method, seed, step, quantity, value``) where there is a history,
PNG figures, ``report.md`` (embedding them, with an automatically written summary) and
``config.json`` (arguments, seeds, settings, package versions) to its folder. Two runs with the
same arguments write identical ``results.csv`` and ``history.csv``; wall-clock measurements go
to ``timings.csv``, the one file that differs. The solver studies (``aggregation``, ``qp``)
put the problem instance in the ``task`` column and ``-`` in ``split``.

================== =====================================================================
study              what it measures
================== =====================================================================
``aggregation``    FW, away-step and pairwise FW on AHFDA against the bound 4μ/(k+2)
``qp``             accuracy against time of the simplex QP solvers, T from 2 to 500
``dynamics``       primal–dual training: η, Φ against ε, ψ_t, w*, α, KKT residuals
``compare``        every method on a dataset, mean ± std over seeds, all metrics
``partial-labels`` ``compare`` with only a fraction of the training labels of each task
``sensitivity``    FairMT against μ, ε and the dual step size ρ
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

__all__ = ["STUDIES", "StudyConfig", "StudyResult", "TrainSettings", "make_trainer",
           "run_study", "train_method"]

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
    "compare": "._training:run_compare",
    "partial-labels": "._training:run_partial_labels",
    "sensitivity": "._training:run_sensitivity",
}


def run_study(name: str, **options: Any) -> StudyResult:
    """Run the study ``name`` with the options of :class:`StudyConfig`.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = run_study("aggregation", quick=True, seeds=1, methods=("away",), out=tmp)
    ...     sorted(res.files)[:3]
    ['aggregation_convergence.png', 'config.json', 'history.csv']
    """
    if name not in STUDIES:
        raise ValueError(f"study must be one of {sorted(STUDIES)}, got {name!r}")
    module, func = STUDIES[name].split(":")
    fn: Callable[[StudyConfig], StudyResult] = getattr(
        importlib.import_module(module, __name__), func)
    return fn(StudyConfig(study=name, **options))
