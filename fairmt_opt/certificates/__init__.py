"""Run-time optimality certificates: of an aggregation (FW duality gap), of a simplex QP (KKT
residuals and gap) and of a primal–dual point (KKT of the constrained problem)."""

from ._aggregation import AggregationCertificate, certify_aggregation
from ._primal_dual import PrimalDualCertificate, certify_primal_dual
from ._qp import KKTResiduals, QPCertificate, certify_simplex_qp

__all__ = [
    "AggregationCertificate",
    "KKTResiduals",
    "PrimalDualCertificate",
    "QPCertificate",
    "certify_aggregation",
    "certify_primal_dual",
    "certify_simplex_qp",
]
