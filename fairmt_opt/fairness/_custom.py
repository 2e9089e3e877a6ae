r"""Reports by group of user metric functions (fairlearn's ``MetricFrame(metrics=...)`` with
functions of one's own and their per-sample parameters).

:func:`by_group_metrics` calls each function on the samples of each group, and once on all
samples for the overall value; the result is a :class:`~fairmt_opt.fairness.GroupReport`, so
``group_min``, ``group_max``, ``difference`` and ``ratio`` are the same reductions as for the
built-in columns of :func:`~fairmt_opt.fairness.by_group`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ._by_group import GroupReport
from ._rates import check_zero_division

__all__ = ["by_group_metrics"]


def _rows(x: Any, name: str) -> np.ndarray:
    """A sample-indexed array (pandas, torch and lists converted), rows being samples."""
    from ._groups import is_pandas

    if x is None:
        raise ValueError(f"{name} must be an array, got None")
    if is_pandas(x):
        x = x.to_numpy()
    elif hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    return arr


def _scalar(v: Any, metric: str) -> float:
    a = np.asarray(v)
    if a.ndim != 0 or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise ValueError(f"metric {metric!r} must return one real number, got "
                         f"{type(v).__name__} of shape {a.shape}")
    return float(a)


def by_group_metrics(
    metrics: Callable[..., Any] | Mapping[str, Callable[..., Any]],
    y_true: Any,
    y_pred: Any,
    groups: Any,
    *,
    sample_params: Mapping[str, Any] | None = None,
    zero_division: float | str = "empty",
    intersections: str = "present",
    feature_names: str = "any",
) -> GroupReport:
    r"""Per-group values of metric functions of your own, in the spirit of fairlearn's
    ``MetricFrame(metrics=..., sample_params=...)``.

    For a function :math:`f` with per-sample parameters :math:`p` and group :math:`g` (its
    samples :math:`S_g`), the cell is

    .. math::

        v_g = f\bigl(y^{\mathrm{true}}_{S_g},\ y^{\mathrm{pred}}_{S_g},\
        p_{S_g}\bigr),\qquad v = f(y^{\mathrm{true}}, y^{\mathrm{pred}}, p)\ \text{overall}.

    Parameters
    ----------
    metrics : callable or mapping of str to callable
        ``f(y_true, y_pred, **params) -> float``; a mapping gives one column per key, a single
        function one column named by its ``__name__``.
    y_true, y_pred : array-like of N rows
        Passed to the functions as NumPy arrays, sliced by rows (2-D scores such as class
        probabilities keep their columns).
    groups
        The sensitive features, in every form :func:`encode_groups` takes.
    sample_params : mapping, optional
        Per-sample parameters, each of N rows, sliced like ``y_true``: for a single function
        ``{param: array}``; for a mapping ``{metric key: {param: array}}`` (fairlearn's
        layout). ``sample_weight`` is one such parameter.
    zero_division : {"empty", 0.0, 1.0}
        Only the comparisons with a single group left: under ``"empty"`` a difference or
        ratio between groups needs two groups with a value, under a number one suffices
        (fairlearn's 0 and 1). The functions' own 0/0 handling is theirs.
    intersections, feature_names
        As in :func:`encode_groups`; with ``intersections="all"`` a combination without
        samples has no value (the function is not called on it).

    Returns
    -------
    GroupReport
        ``task`` is ``None``; ``.by_group``, ``.overall``, ``.group_min()``, ``.group_max()``,
        ``.difference(method=)``, ``.ratio(method=)``. A value that is not finite (a
        function's NaN) is kept in ``by_group`` and left out of the reductions.

    Notes
    -----
    Cost: each function is called :math:`G + 1` times, plus :math:`O(N \log N)` to infer the
    groups. Functions must return one real number; a function that raises is not caught.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness import by_group_metrics
    >>> def weighted_hits(y_t, y_p, sample_weight):
    ...     return float(np.sum(sample_weight * (y_t == y_p)))
    >>> r = by_group_metrics({"hits": weighted_hits}, [1, 0, 1, 1], [1, 1, 1, 0],
    ...                      ["a", "a", "b", "b"],
    ...                      sample_params={"hits": {"sample_weight": [1.0, 2.0, 3.0, 4.0]}})
    >>> r.by_group["hits"].tolist(), r.overall["hits"], r.difference()["hits"]
    ([1.0, 3.0], 4.0, 2.0)
    """
    from ._groups import encode_groups

    fill = check_zero_division(zero_division)
    single = callable(metrics)
    if single:
        fns: dict[str, Callable[..., Any]] = {
            str(getattr(metrics, "__name__", "metric")): metrics}  # type: ignore[dict-item]
    elif isinstance(metrics, Mapping) and metrics:
        bad = [k for k, f in metrics.items() if not callable(f)]
        if bad:
            raise ValueError(f"metrics must map names to callables; not callable: {bad}")
        fns = {str(k): f for k, f in metrics.items()}
        if len(fns) != len(metrics):
            raise ValueError("metrics has two keys with the same string form")
    else:
        raise ValueError(f"metrics must be a callable or a non-empty mapping of names to "
                         f"callables, got {type(metrics).__name__}")
    yt = _rows(y_true, "y_true")
    yp = _rows(y_pred, "y_pred")
    N = yt.shape[0]
    if yp.shape[0] != N:
        raise ValueError(f"y_pred must have {N} rows like y_true, got {yp.shape[0]}")
    if sample_params is None:
        sample_params = {}
    if not isinstance(sample_params, Mapping):
        raise ValueError(f"sample_params must be a mapping, got {type(sample_params).__name__}")
    key = next(iter(fns))
    per: dict[str, Mapping[str, Any]] = (
        {key: sample_params} if single else dict(sample_params))  # type: ignore[dict-item]
    unknown = sorted(set(map(str, per)) - set(fns))
    if unknown:
        raise ValueError(f"sample_params has entries for no metric: {unknown} (metrics: "
                         f"{sorted(fns)})")
    params: dict[str, dict[str, np.ndarray]] = {}
    for k, ps in per.items():
        if not isinstance(ps, Mapping):
            raise ValueError(f"sample_params[{k!r}] must be a mapping of parameter names to "
                             f"arrays, got {type(ps).__name__}")
        params[str(k)] = {}
        for pn, pv in ps.items():
            a = _rows(pv, f"sample_params[{k!r}][{pn!r}]")
            if a.shape[0] != N:
                raise ValueError(f"sample_params[{k!r}][{pn!r}] must have {N} rows like "
                                 f"y_true, got {a.shape[0]}")
            params[str(k)][str(pn)] = a
    enc = encode_groups(groups, intersections=intersections, feature_names=feature_names)
    if enc.codes.shape != (N,):
        raise ValueError(f"groups must have shape ({N},) like y_true, got {enc.codes.shape}")
    G = enc.num_groups
    cols = tuple(fns)
    values = np.full((G, len(cols)), np.nan)
    present = np.bincount(enc.codes, minlength=G) > 0
    overall = np.empty(len(cols))

    def call(k: str, idx: Any) -> float:
        kw = {pn: a[idx] for pn, a in params.get(k, {}).items()}
        return _scalar(fns[k](yt[idx], yp[idx], **kw), k)

    for j, k in enumerate(cols):
        for g in np.flatnonzero(present):
            values[g, j] = call(k, enc.codes == g)
        overall[j] = call(k, slice(None))
    valid = np.isfinite(values) & present[:, None]
    report = GroupReport(None, cols, enc.labels, enc.names, values, valid, present, overall,
                         np.isfinite(overall), fill)
    report.values = np.where(present[:, None], values, np.nan)  # a function's NaN is kept
    for g, j in zip(*np.nonzero(present[:, None] & ~valid), strict=True):
        report.undefined_cells[(enc.labels[g], cols[j])] = "the metric returned no finite value"
    return report
