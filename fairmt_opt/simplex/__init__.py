r"""Problems on the probability simplex :math:`\Delta`: the Euclidean projection and the AHFDA
aggregation of task violations (water-filling closed form and the Frank–Wolfe family), with its
objective :func:`aggregation_value` and the ``present`` mask of partially supervised steps."""

from ._aggregation import AggregationResult, aggregate_violations
from ._objective import aggregation_value
from ._projection import project_simplex

__all__ = ["AggregationResult", "aggregate_violations", "aggregation_value", "project_simplex"]
