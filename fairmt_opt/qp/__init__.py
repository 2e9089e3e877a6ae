r"""The simplex QP :math:`\min_{\alpha \in \Delta} \tfrac12 \alpha^\top K \alpha + b^\top \alpha`:
:func:`solve_simplex_qp` and its methods (active set, Frank–Wolfe family, APG, external
backends), with the optional compiled active-set kernel."""

from ._solve import QPMethod, SimplexQPResult, solve_simplex_qp

__all__ = ["QPMethod", "SimplexQPResult", "solve_simplex_qp"]
