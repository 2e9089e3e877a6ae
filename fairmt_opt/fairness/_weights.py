"""Validation of ``sample_weight`` and the weighted median (shared by the statistics)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._utils.array import Array, is_torch, namespace

__all__ = ["check_sample_weight", "weighted_median"]


def check_sample_weight(sample_weight: Any, n: int, like: Array | None = None, *,
                        validate: bool = True) -> Array | None:
    r"""Validate ``sample_weight``: ``None`` (every weight 1) or a real array of shape
    ``(n,)`` with finite, nonnegative entries :math:`w_i \geq 0`.

    Returns ``None`` or the weights as float64 NumPy, or, when ``like`` is a torch tensor, as a
    tensor of its dtype on its device. ``validate=False`` skips the value checks (which read the
    data and synchronise a GPU). Raises ``ValueError`` naming ``sample_weight``. Cost
    :math:`O(n)`.

    Examples
    --------
    >>> from fairmt_opt.fairness._weights import check_sample_weight
    >>> check_sample_weight([1, 0, 2.5], 3)
    array([1. , 0. , 2.5])
    >>> check_sample_weight([1.0, -1.0], 2)
    Traceback (most recent call last):
    ...
    ValueError: sample_weight must be nonnegative, found -1.0 at row 1
    """
    if sample_weight is None:
        return None
    if is_torch(sample_weight) and not (like is not None and is_torch(like)):
        sample_weight = sample_weight.detach().cpu().numpy()
    if like is not None and is_torch(like):
        import torch

        if not is_torch(sample_weight):
            try:
                sample_weight = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"sample_weight must be a real array: {exc}") from exc
        if sample_weight.dtype == torch.bool or sample_weight.is_complex():
            raise ValueError(f"sample_weight must be real, got dtype {sample_weight.dtype}")
        w = sample_weight.to(device=like.device, dtype=like.dtype)
    else:
        try:
            w = np.asarray(sample_weight)
        except (TypeError, ValueError) as exc:  # pragma: no cover - numpy accepts nearly anything
            raise ValueError(f"sample_weight must be a real array: {exc}") from exc
        if w.dtype == np.bool_ or not (np.issubdtype(w.dtype, np.integer)
                                       or np.issubdtype(w.dtype, np.floating)):
            raise ValueError(f"sample_weight must hold real numbers, got dtype {w.dtype}")
        w = w.astype(np.float64)
    if tuple(w.shape) != (n,):
        raise ValueError(f"sample_weight must have shape ({n},) like outputs, "
                         f"got {tuple(w.shape)}")
    if validate and n:
        xp = namespace(w)
        bad = ~xp.isfinite(w)
        if bool(xp.any(bad)):
            i = int(xp.argmax(xp.astype(bad, xp.int64)))
            raise ValueError(f"sample_weight must be finite, found {float(w[i])} at row {i}")
        if bool(xp.any(w < 0)):
            i = int(xp.argmax(xp.astype(w < 0, xp.int64)))
            raise ValueError(f"sample_weight must be nonnegative, found {float(w[i])} at row {i}")
    return w



def weighted_median(x: np.ndarray, w: np.ndarray | None) -> float:
    """Median of ``x``; with weights ``w`` the weighted median that equals ``np.median`` of
    ``x[i]`` repeated ``w[i]`` times for integer weights (the mean of the two middle values on
    an even total): the mean of the first sorted value whose cumulative weight reaches half
    the total and the first that passes it. 0 for an empty (or all-zero-weight) sample."""
    if w is not None:
        keep = w > 0
        x, w = x[keep], w[keep]
    if not x.size:
        return 0.0
    if w is None:
        return float(np.median(x))
    order = np.argsort(x, kind="stable")
    xs, cw = x[order], np.cumsum(w[order])
    half = cw[-1] / 2
    lo = xs[min(int(np.searchsorted(cw, half, side="left")), xs.size - 1)]
    hi = xs[min(int(np.searchsorted(cw, half, side="right")), xs.size - 1)]
    with np.errstate(over="ignore"):
        mid = lo + hi
    return float(mid / 2 if np.isfinite(mid) else lo / 2 + hi / 2)

