r"""Per-group rates of the hard statistics, with their 0/0 convention (one formula each).

Every evaluation metric of a group (and of the whole sample: the same formula on the sums over
the groups) is a ratio of the additive counts of :func:`~fairmt_opt.fairness.hard_stats`
(weighted when ``sample_weight`` was given), for a column :math:`k`:

.. math::

    \mathrm{TPR} = \frac{tp}{pos},\ \mathrm{FPR} = \frac{fp}{neg},\
    \mathrm{TNR} = \frac{neg - fp}{neg},\ \mathrm{FNR} = \frac{pos - tp}{pos},\
    \mathrm{SR} = \frac{tp + fp}{n},\ \mathrm{precision} = \frac{tp}{tp + fp},\
    \mathrm{accuracy} = \frac{tp + neg - fp}{n}

with :math:`n = pos + neg`, and balanced accuracy the mean of TPR and TNR over those that are
defined (scikit-learn's ``balanced_accuracy_score``: a class absent from the targets is left
out). Regression scores come from the centred moments of
:func:`~fairmt_opt.fairness._stats.regression_scores`.

The 0/0 convention (``zero_division``)
--------------------------------------
A rate whose denominator is 0 in a group that has labelled samples (TPR of a group without
positives, FPR of a group without negatives, precision without a positive prediction) is

* ``"empty"`` (default): an *empty* cell, left out of every reduction (min, max, differences,
  EOD, EO); a reduction with nothing left is undefined (NaN with its reason);
* a number ``0.0`` or ``1.0``: that value, as fairlearn's rates (``0.0``, scikit-learn's
  ``zero_division`` for ``recall_score``), so that EO/EOD are formed over all groups and a
  single group gives differences 0.

A group without any labelled sample (zero total weight) has no value under either convention.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_zero_division", "confusion_table", "ratio", "spread"]


def check_zero_division(zero_division: Any) -> float | None:
    """``None`` for ``"empty"``, else the fill value (0.0 or 1.0) of a 0/0 rate.

    Examples
    --------
    >>> from fairmt_opt.fairness._rates import check_zero_division
    >>> check_zero_division("empty") is None, check_zero_division(0)
    (True, 0.0)
    """
    if isinstance(zero_division, str):
        if zero_division == "empty":
            return None
    elif isinstance(zero_division, int | float) and not isinstance(zero_division, bool):
        if float(zero_division) in (0.0, 1.0):
            return float(zero_division)
    raise ValueError(f"zero_division must be 'empty', 0.0 or 1.0, got {zero_division!r}")


def ratio(num: np.ndarray, den: np.ndarray, present: np.ndarray,
          fill: float | None) -> tuple[np.ndarray, np.ndarray]:
    """``num / den`` where ``den > 0``; elsewhere ``fill`` in the present cells (``None``:
    empty). Returns ``(values, valid)``, values NaN exactly where not valid."""
    ok = den > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(ok, num / np.where(ok, den, 1.0), np.nan)
    if fill is not None:
        fillable = present & ~ok
        q = np.where(fillable, fill, q)
        ok = ok | fillable
    ok = ok & present
    return np.where(ok, q, np.nan), ok


def _mean_valid(a: np.ndarray, va: np.ndarray, b: np.ndarray, vb: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    cnt = va.astype(np.float64) + vb
    tot = np.where(va, a, 0.0) + np.where(vb, b, 0.0)
    ok = cnt > 0
    return np.where(ok, tot / np.where(ok, cnt, 1.0), np.nan), ok


def confusion_table(s: dict[str, np.ndarray], fill: float | None
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The rates of the module docstring from ``tp, pos, fp, neg`` (any shape, e.g.
    ``(G, K)``): ``{name: (values, valid)}`` plus ``n`` (the labelled weight per cell).

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness._rates import confusion_table
    >>> s = {k: np.array([v]) for k, v in dict(tp=1., pos=2., fp=0., neg=0.).items()}
    >>> t = confusion_table(s, None)
    >>> t["tpr"][0], t["fpr"][1], t["balanced_accuracy"][0]
    (array([0.5]), array([False]), array([0.5]))
    """
    tp, pos, fp, neg = s["tp"], s["pos"], s["fp"], s["neg"]
    n = pos + neg
    present = n > 0
    out = {
        "tpr": ratio(tp, pos, present, fill),
        "fpr": ratio(fp, neg, present, fill),
        "tnr": ratio(neg - fp, neg, present, fill),
        "fnr": ratio(pos - tp, pos, present, fill),
        "selection_rate": ratio(tp + fp, n, present, fill),
        "precision": ratio(tp, tp + fp, present, fill),
        "accuracy": ratio(tp + neg - fp, n, present, fill),
    }
    t_e = ratio(tp, pos, present, None)
    n_e = ratio(neg - fp, neg, present, None)
    out["balanced_accuracy"] = _mean_valid(t_e[0], t_e[1], n_e[0], n_e[1])
    out["n"] = (n, np.ones_like(present))
    return out


def spread(values: np.ndarray, valid: np.ndarray, fill: float | None
           ) -> tuple[float | None, str]:
    """``max - min`` over the valid cells of a 1-D column: ``None`` (with a reason) when no
    comparison is left: under ``"empty"`` (``fill=None``) fewer than two cells, under a number
    no cell (one cell gives 0, fairlearn's convention for a single group)."""
    v = values[valid]
    need = 2 if fill is None else 1
    if v.size < need:
        return None, ("fewer than two groups" if fill is None else "no group")
    return float(v.max() - v.min()), ""

