r"""The methods compared in the studies, each a :class:`FairMT` composed of the same parts.

================  ==============================================================================
name              composition
================  ==============================================================================
``fairmt``        head proxy, asymmetric violations, exact aggregation, exact QP, dual ascent
``linear``        linear scalarisation :math:`\sum_t L_t`: uniform proxy, unconstrained
``mgda``          MGDA: ``FullProxy`` over the shared parameters (no gradient normalisation),
                  unconstrained
``mgda_ub``       MGDA-UB: ``RepresentationProxy`` (no gradient normalisation), unconstrained
``symmetric``     FairMT with the symmetric violations (pulls the best group down too)
``mean``          FairMT with mean aggregation of the violations (:math:`\mu \to \infty`)
``fairmt_none``   FairMT without the proxy (uniform :math:`\alpha`, same primal–dual)
================  ==============================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..dual import DualAscent
from ..fairness import Task
from .constraint import FairnessConstraint
from .fairmt import FairMT
from .losses import TaskLosses
from .proxies import make_proxy
from .qp import QPSolver

__all__ = ["METHODS", "OPTIONS", "make_method"]

METHODS: tuple[str, ...] = (
    "fairmt", "linear", "mgda", "mgda_ub", "symmetric", "mean", "fairmt_none",
)

_PRESETS: dict[str, dict[str, Any]] = {
    "fairmt": {},
    "linear": {"proxy": "none", "constrained": False},
    "mgda": {"proxy": "full", "constrained": False, "normalization": "none"},
    "mgda_ub": {"proxy": "rep", "constrained": False, "normalization": "none"},
    "symmetric": {"symmetric": True},
    "mean": {"aggregation": "mean"},
    "fairmt_none": {"proxy": "none"},
}

#: the flat options of :func:`make_method` and their defaults
OPTIONS: dict[str, Any] = {
    # constraint
    "mu": 0.1, "aggregation": "exact", "symmetric": False, "temperature": 1.0,
    "group_reduction": "mean", "include_fpr": True, "regression_score": "mae",
    "violation_scale": None, "aggregation_tol": None, "aggregation_max_iter": None,
    # dual
    "eps": 0.05, "rho": 1.0, "eta": 0.0, "eta_max": math.inf, "dual_mode": "batch",
    "beta": 0.9, "constrained": True,
    # proxy
    "proxy": "head", "normalization": "l2", "shared_parameters": None,
    # qp
    "qp_method": "active_set", "qp_tol": None, "qp_max_iter": None, "warm_start": True,
    "certify": None,
    # losses and the rest
    "regression_loss": "mse", "losses": None, "alpha_scale": "num_tasks",
    "distributed": "auto", "check_inputs": True,
}


def make_method(name: str, tasks: Sequence[Task], num_groups: int, **options: Any) -> FairMT:
    r"""Build the method ``name`` (one of :data:`METHODS`) from flat options.

    ``options`` (any key of :data:`OPTIONS`) override the preset: the constraint's (``mu``,
    ``aggregation``, ``symmetric``, ``temperature``, ``group_reduction``, ``include_fpr``,
    ``regression_score``, ``violation_scale``, ``aggregation_tol``, ``aggregation_max_iter``),
    the dual ascent's (``eps``, ``rho``, ``eta``, ``eta_max``, ``dual_mode``, ``beta``,
    ``constrained``), the proxy's (``proxy``, ``normalization``, ``shared_parameters``; ``mgda``
    needs the latter), the QP's (``qp_method``, ``qp_tol``, ``qp_max_iter``, ``warm_start``,
    ``certify``) and ``regression_loss``, ``losses``, ``alpha_scale``, ``distributed``,
    ``check_inputs``.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task
    >>> m = make_method("linear", [Task("a", "detection")], 2)
    >>> m.proxy.name, m.constrained
    ('none', False)
    >>> make_method("fairmt", [Task("a", "detection")], 2, eps=0.1).dual.eps
    0.1
    >>> make_method("nope", [Task("a", "detection")], 2)
    Traceback (most recent call last):
    ...
    ValueError: method must be one of ('fairmt', 'linear', 'mgda', 'mgda_ub', 'symmetric', 'mean', 'fairmt_none'), got 'nope'
    """  # noqa: E501
    if name not in _PRESETS:
        raise ValueError(f"method must be one of {METHODS}, got {name!r}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} of make_method; "
                         f"valid: {sorted(OPTIONS)}")
    o = {**OPTIONS, **_PRESETS[name], **options}
    tasks = tuple(tasks)
    constraint = FairnessConstraint(
        tasks, num_groups, mu=o["mu"], aggregation=o["aggregation"], symmetric=o["symmetric"],
        temperature=o["temperature"], group_reduction=o["group_reduction"],
        include_fpr=o["include_fpr"], regression_score=o["regression_score"],
        scale=o["violation_scale"],
        aggregation_options={"tol": o["aggregation_tol"], "max_iter": o["aggregation_max_iter"]})
    dual = DualAscent(o["rho"], o["eps"], eta=o["eta"], eta_max=o["eta_max"],
                      mode=o["dual_mode"], beta=o["beta"])
    proxy = make_proxy(o["proxy"], normalization=o["normalization"],
                       shared_parameters=o["shared_parameters"])
    qp = QPSolver(o["qp_method"], tol=o["qp_tol"], max_iter=o["qp_max_iter"],
                  warm_start=o["warm_start"], certify=o["certify"])
    losses = o["losses"]
    if not isinstance(losses, TaskLosses):
        losses = TaskLosses(tasks, regression=o["regression_loss"], custom=losses)
    return FairMT(tasks, num_groups, constraint=constraint, proxy=proxy, dual=dual,
                  constrained=o["constrained"], qp=qp, losses=losses,
                  alpha_scale=o["alpha_scale"], distributed=o["distributed"],
                  check_inputs=o["check_inputs"])

