r"""fairmt_opt: optimization-theory reference library for fairness-aware multi-task learning.

Layers, lowest first (no import points upward):

1. framework-agnostic solvers and certificates (this namespace): :func:`project_simplex`,
   :func:`aggregate_violations` (AHFDA), :func:`solve_simplex_qp`, :func:`head_gram`,
   :func:`head_aware_qp`, :class:`DualAscent`, the ``certify_*`` functions, and
   :mod:`fairmt_opt.reference` (cvxpy formulations, optional extra);
2. :mod:`fairmt_opt.fairness`: hard and soft group-fairness metrics under partial labels;
3. :mod:`fairmt_opt.torch`: head-aware primal–dual training of PyTorch multi-task models;
4. :mod:`fairmt_opt.datasets`, :mod:`fairmt_opt.studies` and the ``fairmt-opt`` command line.
"""

from .certificates import (
    AggregationCertificate,
    KKTResiduals,
    PrimalDualCertificate,
    QPCertificate,
    certify_aggregation,
    certify_primal_dual,
    certify_simplex_qp,
)
from .dual import DualAscent
from .head import HeadQP, head_aware_qp, head_gram
from .qp import SimplexQPResult, solve_simplex_qp
from .simplex import AggregationResult, aggregate_violations, project_simplex

__version__ = "0.1.0"

__all__ = [
    "AggregationCertificate",
    "AggregationResult",
    "DualAscent",
    "HeadQP",
    "KKTResiduals",
    "PrimalDualCertificate",
    "QPCertificate",
    "SimplexQPResult",
    "aggregate_violations",
    "certify_aggregation",
    "certify_primal_dual",
    "certify_simplex_qp",
    "head_aware_qp",
    "head_gram",
    "project_simplex",
    "solve_simplex_qp",
]
