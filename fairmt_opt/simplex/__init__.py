r"""Problems on the probability simplex :math:`\Delta`: the Euclidean projection and the AHFDA
aggregation of task violations (water-filling closed form and the Frank–Wolfe family)."""

from ._aggregation import AggregationResult, aggregate_violations
from ._projection import project_simplex

__all__ = ["AggregationResult", "aggregate_violations", "project_simplex"]
