r"""The methods compared in the studies, all with the interface of :class:`FairMT`.

Every method is a configured :class:`FairMT`: ``method.compute(h, outputs, targets, masks,
groups, heads=heads)`` returns the loss to backpropagate and a record, and
``method.dual_step(record)`` performs the dual update (a no-op for the unconstrained ones).

================  ==============================================================================
name              configuration
================  ==============================================================================
``fairmt``        head-aware proxy, asymmetric violations, exact aggregation, exact QP
``linear``        linear scalarisation :math:`\sum_t L_t` (uniform :math:`\alpha`, no constraint)
``mgda``          MGDA: min-norm weights of the per-task gradients over the shared parameters
                  (no gradient normalisation, as in the original method)
``mgda_ub``       MGDA-UB: min-norm weights of the per-task gradients w.r.t. the representations
                  (no gradient normalisation)
``symmetric``     FairMT with the symmetric violations (pulls the best group down too)
``mean``          FairMT with mean aggregation of the violations (:math:`\mu \to \infty`)
``fairmt_none``   FairMT without the proxy (uniform :math:`\alpha`, same primal–dual)
================  ==============================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..fairness import Task
from ._fairmt import FairMT

__all__ = ["METHODS", "make_method"]

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


def make_method(name: str, tasks: Sequence[Task], num_groups: int, **options: Any) -> FairMT:
    r"""Build the method ``name`` (one of :data:`METHODS`) as a configured :class:`FairMT`.

    ``options`` are passed to :class:`FairMT` and override the preset (e.g. ``eps``, ``mu``,
    ``rho``, ``normalization``); ``mgda`` needs ``shared_parameters``.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task
    >>> m = make_method("linear", [Task("a", "detection")], 2)
    >>> m.proxy, m.constrained
    ('none', False)
    >>> make_method("nope", [Task("a", "detection")], 2)
    Traceback (most recent call last):
    ...
    ValueError: method must be one of ('fairmt', 'linear', 'mgda', 'mgda_ub', 'symmetric', 'mean', 'fairmt_none'), got 'nope'
    """  # noqa: E501
    if name not in _PRESETS:
        raise ValueError(f"method must be one of {METHODS}, got {name!r}")
    kw = {**_PRESETS[name], **options}
    return FairMT(tasks, num_groups, **kw)
