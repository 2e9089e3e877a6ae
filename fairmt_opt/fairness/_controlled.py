r"""Reports by group within each level of control features (fairlearn's
``control_features``): :func:`by_group_controlled` runs :func:`~fairmt_opt.fairness.by_group`
once per level and :class:`ControlledReport` holds one
:class:`~fairmt_opt.fairness.GroupReport` per level.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._by_group import GroupReport, by_group
from ._metrics import MetricReport
from ._tasks import Task

__all__ = ["ControlledReport", "by_group_controlled"]


class ControlledReport:
    """Reports by group within each level of control features (fairlearn's
    ``control_features``): one :class:`GroupReport` per level, on the labelled samples of
    that level, every group (inferred over all samples) in each.

    Attributes
    ----------
    task : Task
    levels : tuple
        The control levels, sorted (tuples for several control features).
    control_names : tuple or None
        The names of the control features.
    reports : dict
        ``{level: GroupReport}``.
    """

    def __init__(self, task: Task, levels: tuple[Any, ...], names: tuple[Any, ...] | None,
                 reports: dict[Any, GroupReport]) -> None:
        self.task = task
        self.levels = levels
        self.control_names = names
        self.reports = reports

    def __repr__(self) -> str:
        return f"ControlledReport(task={self.task.name!r}, levels={list(self.levels)})"

    def __getitem__(self, level: Any) -> GroupReport:
        return self.reports[level]

    def _index(self) -> Any:
        import pandas as pd

        if self.levels and isinstance(self.levels[0], tuple):
            return pd.MultiIndex.from_tuples(
                list(self.levels),
                names=list(self.control_names) if self.control_names else None)
        return pd.Index(list(self.levels), name="control")

    def _per_level(self, fn: Any) -> Any:
        out = {lev: fn(self.reports[lev]) for lev in self.levels}
        try:
            import pandas as pd
        except ImportError:  # pandas is optional (tested with pandas made absent)
            return out
        first = next(iter(out.values()), None)
        if isinstance(first, MetricReport):
            return pd.DataFrame([dict(v) for v in out.values()], index=self._index())
        return pd.Series(list(out.values()), index=self._index(), dtype=float)

    @property
    def overall(self) -> Any:
        """Every column over the labelled samples of each level: a DataFrame indexed by the
        levels (pandas installed), else ``{level: MetricReport}``."""
        return self._per_level(lambda r: r.overall)

    @property
    def by_group(self) -> Any:
        """A DataFrame indexed by (control level, group) when pandas is installed, else
        ``{level: GroupReport.by_group}``."""
        try:
            import pandas as pd
        except ImportError:  # pandas is optional (tested with pandas made absent)
            return {lev: self.reports[lev].by_group for lev in self.levels}
        frames = [self.reports[lev].by_group for lev in self.levels]
        return pd.concat(frames, keys=self._index())

    def group_min(self) -> Any:
        """:meth:`GroupReport.group_min` within each level (per-level frame or dict)."""
        return self._per_level(lambda r: r.group_min())

    def group_max(self) -> Any:
        """:meth:`GroupReport.group_max` within each level."""
        return self._per_level(lambda r: r.group_max())

    def difference(self, method: str = "between_groups") -> Any:
        """:meth:`GroupReport.difference` within each level."""
        return self._per_level(lambda r: r.difference(method))

    def ratio(self, method: str = "between_groups") -> Any:
        """:meth:`GroupReport.ratio` within each level."""
        return self._per_level(lambda r: r.ratio(method))

    def confusion_matrix(self, normalize: str | None = None, *, overall: bool = False
                         ) -> dict[Any, np.ndarray]:
        """:meth:`GroupReport.confusion_matrix` within each level: ``{level: array}``."""
        return {lev: self.reports[lev].confusion_matrix(normalize, overall=overall)
                for lev in self.levels}

    def equalized_odds(self, kind: str = "difference", method: str = "between_groups",
                       agg: str = "worst_case") -> Any:
        """:meth:`GroupReport.equalized_odds` within each level."""
        return self._per_level(lambda r: r.equalized_odds(kind, method, agg))


def by_group_controlled(task: Task, outputs: Any, targets: Any, mask: Any, groups: Any,
                        control_features: Any, num_groups: int | None = None,
                        **options: Any) -> ControlledReport:
    r""":func:`by_group` within each level of ``control_features`` (fairlearn's
    ``MetricFrame(..., control_features=)``): the aggregates over the groups are taken per
    level, and the overall values are those of each level.

    ``control_features`` takes the forms of ``groups`` (any hashable labels, several
    features give their intersections); the other arguments and ``options`` are those of
    :func:`by_group`. Level :math:`l` is :func:`by_group` with the mask
    ``mask & (control == l)``, so every group (inferred over all samples) appears in every
    level, without a value where it has no labelled sample there.

    Cost: :func:`by_group` once per level, :math:`O(N K |G| L)`.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, by_group_controlled
    >>> r = by_group_controlled(Task("y", "detection"), [1, 0, 1, 1, 0, 0],
    ...                         [1, 0, 1, 0, 1, 0], None, ["a", "b", "a", "b", "a", "b"],
    ...                         ["u", "u", "u", "v", "v", "v"], output="labels")
    >>> r.levels, r.difference()["selection_rate"].tolist()
    (('u', 'v'), [1.0, 0.5])
    >>> r["v"].by_group["selection_rate"].tolist()
    [0.0, 0.5]
    """
    from ._groups import as_values, encode_groups

    enc = encode_groups(control_features, name="control_features",
                        intersections=options.get("intersections", "present"),
                        feature_names=options.get("feature_names", "any"))
    if enc.names is not None:
        sens = encode_groups(groups, num_groups, intersections=options.get(
            "intersections", "present"), feature_names=options.get("feature_names", "any")
                             ).names or ()
        both = sorted(set(map(str, enc.names)) & set(map(str, sens)))
        if both:
            raise ValueError(f"control_features and groups share the feature names {both}")
    N = int(enc.codes.shape[0])
    if mask is None:
        m = np.ones(N, dtype=bool)
    else:
        mv = as_values(mask, "mask")
        mv = np.asarray(mv.detach().cpu().numpy() if hasattr(mv, "detach") else mv)
        if mv.shape != (N,):
            raise ValueError(f"mask must have shape ({N},) like control_features, got "
                             f"{mv.shape}")
        m = mv != 0
    reports = {lev: by_group(task, outputs, targets, m & (enc.codes == c), groups,
                             num_groups, **options)
               for c, lev in enumerate(enc.labels)}
    return ControlledReport(task, enc.labels, enc.names, reports)
