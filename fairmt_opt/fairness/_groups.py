r"""Per-sample values from pandas or NumPy, and the encoding of group labels as integer codes.

Groups may be given as any hashable labels, as fairlearn's ``sensitive_features``: integers,
strings, booleans, a pandas ``Categorical``, an object array, a pandas Series; several
sensitive features (a DataFrame, a 2-D array, a dict of columns) give *intersectional*
groups whose labels are tuples. :func:`encode_groups` maps them to codes
:math:`a_i \in \{0, \dots, |G| - 1\}`:

* with ``num_groups=None`` the groups are the sorted distinct labels (a pandas categorical:
  the order of its categories, unused categories included, as empty groups); labels that do
  not sort (mixed types) keep the order of first appearance;
* with an explicit ``num_groups`` the groups must already be integer codes in
  ``[0, num_groups)`` (booleans read as 0 and 1): a code without any sample stays an empty
  group.

pandas is optional: it is never imported here; its objects are recognised by their module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._utils.validation import check_int

__all__ = ["GroupEncoding", "as_values", "encode_groups", "is_pandas"]


def is_pandas(x: Any) -> bool:
    """Whether ``x`` is a pandas object (Series, DataFrame, Index, Categorical, extension
    array), recognised without importing pandas."""
    return type(x).__module__.split(".")[0] == "pandas"


def _is_frame(x: Any) -> bool:
    return is_pandas(x) and hasattr(x, "columns") and hasattr(x, "iloc")


def _missing_count(x: Any) -> int:
    import pandas as pd

    return int(np.asarray(pd.isna(x)).sum())


def as_values(x: Any, name: str) -> Any:
    """``x`` as a NumPy array when it is a pandas object, else ``x`` unchanged.

    A one-column DataFrame is read as its column; a DataFrame of several columns is an error
    (naming ``name``). pandas extension dtypes convert to plain NumPy dtypes (nullable
    ``Int64`` to int64, ``boolean`` to bool, ``Float64`` to float64, ``string`` to an object
    array of str, a ``Categorical`` to the array of its values); a missing value (``pd.NA``,
    ``None``, NaN in an extension or object dtype) is an error naming ``name``, since it has no
    value to compute with.

    Examples
    --------
    >>> import pandas as pd
    >>> from fairmt_opt.fairness._groups import as_values
    >>> as_values(pd.Series([1, 0, 1], dtype="Int64"), "targets")
    array([1, 0, 1])
    >>> as_values(pd.Series([1, None], dtype="Int64"), "targets")
    Traceback (most recent call last):
    ...
    ValueError: targets contains 1 missing value (pandas NA/None); fill or drop it first
    """
    if not is_pandas(x):
        return x
    if _is_frame(x):
        if x.shape[1] != 1:
            raise ValueError(
                f"{name} must be one column, got a DataFrame with {x.shape[1]} columns"
            )
        x = x.iloc[:, 0]
    dtype = getattr(x, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return x.to_numpy() if hasattr(x, "to_numpy") else np.asarray(x)
    bad = _missing_count(x)
    if bad:
        raise ValueError(
            f"{name} contains {bad} missing value{'s' if bad > 1 else ''} (pandas NA/None); "
            "fill or drop it first"
        )
    kind = getattr(dtype, "kind", "O")
    if str(dtype) == "category":
        return np.asarray(x)
    if kind == "b":
        return np.asarray(x, dtype=bool)
    if kind in "iu":
        return np.asarray(x, dtype=np.int64 if kind == "i" else np.uint64)
    if kind == "f":
        return np.asarray(x, dtype=np.float64)
    return np.asarray(x, dtype=object)


@dataclass(frozen=True)
class GroupEncoding:
    """Integer codes of the groups and the labels they stand for.

    ``codes`` ``(N,)`` int64 in ``[0, num_groups)``; ``labels[g]`` is the label of code ``g``
    (a tuple for intersectional groups); ``names`` the names of the sensitive features (the
    DataFrame's columns, or ``None``); ``inferred`` whether the groups were inferred from
    labels (``num_groups=None``) rather than given as codes.
    """

    codes: np.ndarray
    labels: tuple[Any, ...]
    num_groups: int
    names: tuple[Any, ...] | None
    inferred: bool

    def label_of(self, code: int) -> Any:
        """The label of group code ``code``."""
        return self.labels[code]


def _to_python(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _column(x: Any, name: str, *, codes: bool = False
            ) -> tuple[np.ndarray, tuple[Any, ...] | None]:
    """One sensitive feature as an object/NumPy array and, for a categorical, its categories."""
    cats = None
    if is_pandas(x):
        dtype = getattr(x, "dtype", None)
        if str(dtype) == "category":
            cats = tuple(_to_python(c) for c in x.cat.categories) if hasattr(x, "cat") else (
                tuple(_to_python(c) for c in x.categories)
            )
        x = as_values(x, name)
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if codes:
        return arr, cats
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf (a missing group label)")
    if arr.dtype.kind == "O" and any(v is None or (isinstance(v, float) and v != v)
                                     for v in arr.ravel()):
        raise ValueError(f"{name} contains a missing value (None or NaN) as a group label")
    return arr, cats


def _sorted_labels(col: np.ndarray, cats: tuple[Any, ...] | None) -> tuple[Any, ...]:
    if cats is not None:
        return cats
    if col.dtype.kind != "O":
        return tuple(_to_python(v) for v in np.unique(col))
    seen: dict[Any, None] = {}
    for v in col:
        seen.setdefault(_to_python(v), None)
    try:
        return tuple(sorted(seen))
    except TypeError:  # labels of mixed types: order of first appearance
        return tuple(seen)


def _codes_of(col: np.ndarray, labels: tuple[Any, ...], name: str) -> np.ndarray:
    index = {lab: k for k, lab in enumerate(labels)}
    try:
        return np.fromiter((index[_to_python(v)] for v in col), dtype=np.int64,
                           count=col.shape[0])
    except KeyError as exc:
        raise ValueError(f"{name} holds {exc.args[0]!r}, not a category") from None


_FEATURE_NAMES = ("any", "strings")


def _check_name(nm: Any, name: str, where: str) -> None:
    """``feature_names="strings"``: a feature's name must be a string (fairlearn's rule)."""
    if not isinstance(nm, str):
        raise ValueError(
            f"{name} has the {where} {nm!r} of type {type(nm).__name__}: with "
            "feature_names='strings' (fairlearn's rule) the names of sensitive features must "
            "be strings; rename it, or leave feature_names='any'")


def _columns(groups: Any, name: str, strict: bool = False
             ) -> tuple[list[Any], tuple[Any, ...] | None]:
    """The sensitive features as a list of 1-D columns and their names (None for one);
    ``strict``: every name given (DataFrame column, dict key, Series name) is a string."""
    if strict and is_pandas(groups) and not _is_frame(groups) and groups.name is not None:
        _check_name(groups.name, name, "Series name")
    if _is_frame(groups):
        cols = [groups.iloc[:, j] for j in range(groups.shape[1])]
        if not cols:
            raise ValueError(f"{name} must have at least one column, got an empty DataFrame")
        names = tuple(_to_python(c) for c in groups.columns)
        for nm in names if strict else ():
            _check_name(nm, name, "column name")
        seen: set[Any] = set()
        for nm in names:
            if nm in seen:
                raise ValueError(f"{name} has two features named {nm!r}: the names of "
                                 "sensitive features must be distinct")
            seen.add(nm)
        return cols, (names if len(cols) > 1 else None)
    if is_pandas(groups) or hasattr(groups, "shape"):
        if hasattr(groups, "detach") and hasattr(groups, "cpu"):
            groups = groups.detach().cpu().numpy()
        if len(groups.shape) == 2 and not is_pandas(groups):
            if groups.shape[1] == 1:
                return [np.asarray(groups)[:, 0]], None
            return [np.asarray(groups)[:, j] for j in range(groups.shape[1])], None
        return [groups], None
    if isinstance(groups, dict):
        for nm in groups if strict else ():
            _check_name(nm, name, "key")
        return list(groups.values()), tuple(groups)
    if isinstance(groups, list | tuple) and groups and any(is_pandas(c) for c in groups):
        # np.asarray would read the Series as rows (samples), not as features
        raise ValueError(
            f"{name} is a list of pandas objects: pass several sensitive features as a "
            "DataFrame or a dict of columns (a list of lists is read as rows, one per sample)"
        )
    arr = np.asarray(groups)
    if arr.ndim == 2:  # a list of rows, one column per sensitive feature
        if arr.shape[1] == 1:
            return [arr[:, 0]], None
        return [arr[:, j] for j in range(arr.shape[1])], None
    return [groups], None


def encode_groups(groups: Any, num_groups: Any = None, *, name: str = "groups",
                  intersections: str = "present", feature_names: str = "any") -> GroupEncoding:
    r"""Encode group labels (or several sensitive features) as integer codes.

    Parameters
    ----------
    groups : array-like, pandas Series or DataFrame, dict or list of columns
        One label per sample: integers, strings, booleans, a categorical, an object array; or
        several sensitive features (a DataFrame, a 2-D array or a list of rows, a dict of
        1-D columns),
        whose groups are the tuples of labels that occur (intersections), sorted.
    num_groups : int, optional
        ``None``: infer the groups from the labels (module docstring). An integer: the labels
        must be integer codes in ``[0, num_groups)`` (today's convention; a code without any
        sample is an empty group).
    intersections : {"present", "all"}
        Several features: ``"present"`` (default) gives the tuples that occur; ``"all"``
        every combination of the features' labels (their product, as the rows of
        fairlearn's ``MetricFrame.by_group``), a combination without samples being an empty
        group (no value, never counted). One feature: no effect.
    feature_names : {"any", "strings"}
        ``"any"`` (default): a feature may be named by any hashable label, pandas' default
        integer names included (an unnamed DataFrame's columns ``0, 1, ...``, a Series named
        ``0``). ``"strings"``: fairlearn's rule, a name given (a DataFrame column, a dict key,
        a Series name) must be a string, else a ``ValueError``; arrays and lists carry no
        names and are accepted by both.

    Returns
    -------
    GroupEncoding

    Notes
    -----
    Cost :math:`O(N \log N)` when the groups are inferred, :math:`O(N)` otherwise.

    Examples
    --------
    >>> from fairmt_opt.fairness import encode_groups
    >>> e = encode_groups(["b", "a", "b", "c"])
    >>> e.codes, e.labels
    (array([1, 0, 1, 2]), ('a', 'b', 'c'))
    >>> e = encode_groups({"sex": ["f", "m", "f"], "age": [1, 1, 0]})  # intersections
    >>> e.codes, e.labels, e.names
    (array([1, 2, 0]), (('f', 0), ('f', 1), ('m', 1)), ('sex', 'age'))
    >>> encode_groups({"sex": ["f", "m", "f"], "age": [1, 1, 0]}, intersections="all").labels
    (('f', 0), ('f', 1), ('m', 0), ('m', 1))
    >>> encode_groups([0, 2, 2], num_groups=3).labels  # explicit codes: group 1 is empty
    (0, 1, 2)
    >>> encode_groups({0: ["f", "m"], 1: [1, 0]}).names  # integer names accepted by default
    (0, 1)
    >>> encode_groups({0: ["f", "m"], 1: [1, 0]}, feature_names="strings")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: groups has the key 0 of type int: with feature_names='strings' (fairlearn's ...
    """
    if groups is None:
        raise ValueError(f"{name} must be an array, got None")
    if intersections not in ("present", "all"):
        raise ValueError(f"intersections must be 'present' or 'all', got {intersections!r}")
    if feature_names not in _FEATURE_NAMES:
        raise ValueError(f"feature_names must be one of {_FEATURE_NAMES}, got {feature_names!r}")
    cols, names = _columns(groups, name, feature_names == "strings")
    if num_groups is not None:
        G = check_int(num_groups, "num_groups", minimum=2)
        if len(cols) != 1:
            raise ValueError(
                f"num_groups applies to integer group codes; {name} has {len(cols)} sensitive "
                "features: leave num_groups=None to form their intersections"
            )
        col, _ = _column(cols[0], name, codes=True)
        if col.ndim != 1:
            raise ValueError(f"{name} must have shape (N,), got {col.shape}")
        if col.dtype.kind == "b":
            col = col.astype(np.int64)
        if col.dtype.kind == "f" and col.size and not np.all(np.floor(col) == col):
            raise ValueError(f"{name} must hold integers (found a non-integral or NaN value)")
        if col.dtype.kind not in "iuf":
            raise ValueError(
                f"{name} holds labels of dtype {col.dtype}: with num_groups={G} it must hold "
                f"integer codes in [0, {G}); leave num_groups=None to infer the groups"
            )
        codes = col.astype(np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= G):
            raise ValueError(
                f"{name} must lie in [0, num_groups) = [0, {G}), found values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )
        return GroupEncoding(codes, tuple(range(G)), G, None, False)
    arrays = []
    for j, c in enumerate(cols):
        nm = name if len(cols) == 1 else f"{name} (feature {names[j] if names else j})"
        arr, cats = _column(c, nm)
        if arr.ndim != 1:
            raise ValueError(f"{nm} must be one-dimensional per feature, got shape {arr.shape}")
        arrays.append((arr, cats, nm))
    n = {a.shape[0] for a, _, _ in arrays}
    if len(n) != 1:
        raise ValueError(f"the sensitive features of {name} have different lengths {sorted(n)}")
    if len(arrays) == 1:
        arr, cats, nm = arrays[0]
        labels = _sorted_labels(arr, cats)
        if not labels:
            raise ValueError(f"{name} is empty: no group to infer")
        return GroupEncoding(_codes_of(arr, labels, nm), labels, len(labels), names, True)
    per = []
    for arr, cats, nm in arrays:
        lab = _sorted_labels(arr, cats)
        per.append((lab, _codes_of(arr, lab, nm)))
    sizes = [len(lab) for lab, _ in per]
    flat = np.zeros(next(iter(n)), dtype=np.int64)
    for (_, codes), size in zip(per, sizes, strict=True):
        flat = flat * size + codes
    present = np.unique(flat)
    if not present.size:
        raise ValueError(f"{name} is empty: no group to infer")
    if intersections == "all":
        present = np.arange(int(np.prod(sizes)), dtype=np.int64)
    codes = np.searchsorted(present, flat).astype(np.int64)
    labels = tuple(
        tuple(per[j][0][k] for j, k in enumerate(np.unravel_index(int(p), sizes)))
        for p in present
    )
    return GroupEncoding(codes, labels, len(labels), names, True)
