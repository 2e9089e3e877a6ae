r"""Strata of conditional statistical parity with memory bounded by the strata present.

A stratum id (a code of ``conditioning``) may be any nonnegative integer up to ``num_strata - 1``
(e.g. a hashed or packed code near :math:`10^9`): the codes present are compressed with
``numpy.unique(return_inverse=True)`` and the counts kept only for them, with the sorted codes
alongside (``strata_ids``). Memory and time are :math:`O(N + S' |G| K)` for :math:`S'` distinct
strata among the weighted labelled rows, never :math:`O(\mathrm{num\_strata})`; two shards
combine by the union of their codes (:func:`merge_strata`), so the result does not depend on
how the rows were split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils.validation import check_int

__all__ = ["check_conditioning", "merge_strata", "strata_counts"]


def check_conditioning(conditioning: Any, N: int, num_strata: Any) -> tuple[np.ndarray, int]:
    """Validate ``conditioning`` (``None``: one stratum) and ``num_strata``; return the int64
    codes of shape ``(N,)`` and the bound ``num_strata`` (default ``max + 1``)."""
    if conditioning is None:
        if num_strata is not None and check_int(num_strata, "num_strata", minimum=1) != 1:
            raise ValueError("num_strata must be 1 (or None) when conditioning is None")
        return np.zeros(N, dtype=np.int64), 1
    c = np.asarray(conditioning)
    if c.ndim != 1 or c.shape[0] != N:
        raise ValueError(f"conditioning must have shape ({N},) like outputs, got {c.shape}")
    if c.dtype == np.bool_:
        c = c.astype(np.int64)
    if not (np.issubdtype(c.dtype, np.integer) or np.issubdtype(c.dtype, np.floating)):
        raise ValueError(f"conditioning must hold integers, got dtype {c.dtype}")
    if N and (not np.all(np.isfinite(c)) or np.any(np.floor(c) != c) or np.min(c) < 0):
        raise ValueError("conditioning must hold non-negative integers (stratum ids)")
    if N and np.issubdtype(c.dtype, np.floating) and float(np.max(c)) >= 2.0**62:
        raise ValueError("conditioning must hold stratum ids below 2**62")
    codes = c.astype(np.int64)
    top = int(codes.max()) if N else 0
    S = (top + 1 if N else 1) if num_strata is None else check_int(
        num_strata, "num_strata", minimum=1)
    if N and top >= S:
        raise ValueError(f"conditioning must lie in [0, num_strata) = [0, {S}), found {top}")
    return codes, S


def strata_counts(codes: np.ndarray, weight: np.ndarray, groups: np.ndarray, num_groups: int,
                  positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(ids, count, pos)``: the sorted distinct codes of the rows of positive ``weight``
    (labelled rows carry their sample weight, the others 0), :math:`n_{sg} = \sum_i w_i [s_i =
    s][a_i = g]` of shape ``(S', G)`` and :math:`q_{sgk} = \sum_i w_i [s_i = s][a_i = g]\,
    \mathrm{positive}_{ik}` of shape ``(S', G, K)``. Cost :math:`O(N \log N + S' G K)`.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness._strata import strata_counts
    >>> ids, n, q = strata_counts(np.array([10**9, 7, 10**9]), np.ones(3), np.array([0, 1, 1]),
    ...                           2, np.array([[1.0], [0.0], [1.0]]))
    >>> ids.tolist(), n.tolist(), q[:, :, 0].tolist()
    ([7, 1000000000], [[0.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [1.0, 1.0]])
    """
    G = int(num_groups)
    K = int(positive.shape[1])
    keep = weight > 0
    ids, inv = np.unique(codes[keep], return_inverse=True)
    S = int(ids.shape[0])
    cell = inv.reshape(-1) * G + groups[keep]
    w = weight[keep]
    count = np.bincount(cell, weights=w, minlength=S * G)[:S * G].reshape(S, G)
    pos = np.empty((S, G, K))
    wp = w[:, None] * positive[keep]
    for k in range(K):
        pos[:, :, k] = np.bincount(cell, weights=wp[:, k], minlength=S * G)[:S * G].reshape(S, G)
    return ids.astype(np.int64), count, pos


def merge_strata(a: tuple[np.ndarray, np.ndarray, np.ndarray],
                 b: tuple[np.ndarray, np.ndarray, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``(ids, count, pos)`` of the union of two shards' rows: counts of a code present in
    both add, a code present in one is kept as is."""
    ids = np.union1d(a[0], b[0]).astype(np.int64)
    G, K = a[2].shape[1], a[2].shape[2]
    count = np.zeros((ids.shape[0], G))
    pos = np.zeros((ids.shape[0], G, K))
    for part in (a, b):
        j = np.searchsorted(ids, part[0])
        count[j] += part[1]
        pos[j] += part[2]
    return ids, count, pos
