r"""Centred, scaled regression moments per group: exact CCC, MAE, RMSE at any finite scale.

The hard (evaluation) statistics of a regression task keep, per group :math:`g`, moments that
are accurate whatever the location and the magnitude of the data:

* a **scale** :math:`s_g = 2^e`, the power of two at or just below
  :math:`\max |\hat y_i|, |y_i|` over the group's weighted labelled rows (1 for an empty
  group). Every other sum is of the scaled values :math:`\hat y_i / s_g`, :math:`y_i / s_g`
  (an exact operation), which lie in :math:`(-2, 2)`: no square, product or sum can overflow
  (or underflow to zero) for finite inputs, be they :math:`10^{300}` or :math:`10^{-300}`;
* :math:`n_g = \sum_i w_i` and the scaled sums of :math:`e = \hat y - y`, :math:`|e|`,
  :math:`e^2` (``err_s``, ``abs_err_s``, ``sq_err_s``);
* the means of :math:`\hat y` and :math:`y` as unevaluated sums of two floats (``pred_mean`` +
  ``pred_mean_lo``, the second pass's correction kept as the low part), so that the
  difference of two group means at :math:`10^{12}` keeps the digits of the spread;
* the **centred** second moments :math:`M^{\hat y\hat y}_g = \sum_i w_i (\hat y_i -
  \bar{\hat y}_g)^2`, :math:`M^{yy}_g`, :math:`M^{\hat y y}_g` (``pred_m2``, ``target_m2``,
  ``cross_m2``) from the corrected two-pass algorithm (Chan, Golub and LeVeque, 1983):
  :math:`\sum_i w_i d_i^2 - (\sum_i w_i d_i)^2 / n_g` with :math:`d_i` the deviation from the
  first-pass mean; its error is a few units of round-off of :math:`M` itself, so the variance
  of data of mean :math:`10^{12}` and spread 1 keeps its digits (the one-pass
  :math:`\sum \hat y^2 - (\sum \hat y)^2 / n` loses 24 of them). A group whose predictions
  (or targets) are all equal takes that value as its mean: its deviations are exactly 0;
* ``vmin`` and ``vmax``, the smallest and largest of the group's predictions and targets, so
  that the one degenerate case of Lin's CCC (every prediction and target the same constant)
  is decided exactly, not by a threshold.

Shards and groups combine by Chan's update (:func:`merge_moments`): the scales are brought to
the larger one (multiplications by powers of two), counts and first sums add, and
:math:`M_{ab} = M_a + M_b + \delta_a \delta_b\, n_a n_b / (n_a + n_b)` with :math:`\delta` the
difference of the two means. The scores (:func:`moment_scores`) are read back as
:math:`\mathrm{MAE} = s \sum |e| / n`, :math:`\mathrm{RMSE} = s \sqrt{\sum e^2 / n}`,
:math:`\mathrm{MSE} = s^2 \sum e^2 / n` and

.. math::

    \mathrm{CCC} = \frac{2 M^{\hat y y}}{M^{\hat y\hat y} + M^{yy} + (\sum_i w_i e_i)^2 / n}
    \quad (\text{the scale cancels; } \bar{\hat y} - \bar y \text{ from the sum of } e),

so a score that is representable is returned, and one that is not (an MAE or MSE beyond
:math:`1.8 \cdot 10^{308}`) raises ``ValueError`` instead of an infinity or a NaN. Cost
:math:`O(N + |G|)` per task (a few ``bincount`` passes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["MOMENT_KEYS", "centred_moments", "merge_moments", "moment_scores", "regression_scores",
           "total_moments"]

MOMENT_KEYS = ("n", "scale", "vmin", "vmax", "pred_mean", "pred_mean_lo", "target_mean",
               "target_mean_lo", "err_s", "abs_err_s", "sq_err_s", "pred_m2", "target_m2",
               "cross_m2")


def _pow2_scale(a: np.ndarray) -> np.ndarray:
    """The power of two :math:`2^{e-1}` with :math:`2^{e-1} \\leq a < 2^e` (1 where ``a == 0``):
    ``a`` divided by it lies in :math:`[1, 2)`, and it is finite for every finite ``a``."""
    _, e = np.frexp(a)
    return np.where(a > 0, np.ldexp(1.0, e - 1), 1.0)


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knuth's error-free sum: ``s + e == a + b`` exactly, ``s = fl(a + b)``."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def centred_moments(pred: np.ndarray, target: np.ndarray, weight: np.ndarray | None,
                    groups: np.ndarray, num_groups: int) -> dict[str, np.ndarray]:
    """The moments of the module docstring, each of shape ``(num_groups,)``, of the rows given
    (the caller passes only the labelled rows: finite float64 ``pred`` and ``target``, nonnegative
    ``weight`` or ``None`` for ones, int ``groups`` in ``[0, num_groups)``). Rows of weight 0 take
    no part (not even in the scale or ``vmin``/``vmax``).

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness._moments import centred_moments
    >>> m = centred_moments(np.array([1e12 + 1, 1e12 + 3]), np.array([1e12, 1e12 + 2]), None,
    ...                     np.array([0, 0]), 1)
    >>> float(m["pred_m2"][0] * m["scale"][0] ** 2)  # sum of squared deviations: 1 + 1
    2.0
    """
    G = int(num_groups)
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(target, dtype=np.float64).reshape(-1)
    g = np.asarray(groups, dtype=np.int64).reshape(-1)
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64).reshape(-1)
        keep = w > 0
        if not keep.all():
            p, t, g, w = p[keep], t[keep], g[keep], w[keep]
    else:
        w = np.ones(p.shape[0])

    def gsum(x: np.ndarray) -> np.ndarray:
        return np.bincount(g, weights=x, minlength=G)[:G]

    def gext(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.full(G, np.inf), np.full(G, -np.inf)
        np.minimum.at(lo, g, x)
        np.maximum.at(hi, g, x)
        return lo, hi

    n = gsum(w)
    empty = n == 0
    safe_n = np.where(empty, 1.0, n)
    (plo, phi), (tlo, thi) = gext(p), gext(t)
    amax = np.where(empty, 0.0, np.maximum(np.maximum(-plo, phi), np.maximum(-tlo, thi)))
    scale = _pow2_scale(amax)
    ps, ts = p / scale[g], t / scale[g]  # exact (powers of two), in (-2, 2)
    e = ps - ts
    out = {"n": n, "scale": scale,
           "vmin": np.where(empty, 0.0, np.minimum(plo, tlo)),
           "vmax": np.where(empty, 0.0, np.maximum(phi, thi)),
           "err_s": gsum(w * e), "abs_err_s": gsum(w * np.abs(e)), "sq_err_s": gsum(w * e * e)}
    dev = {}
    for key, x, lo, hi in (("pred", ps, plo, phi), ("target", ts, tlo, thi)):
        # first pass: the mean; a constant group takes its value, so its deviations are 0
        m0 = np.where(lo == hi, lo / scale, gsum(w * x) / safe_n)
        m0 = np.where(empty, 0.0, m0)
        d = x - m0[g]
        sd = gsum(w * d)
        out[f"{key}_mean"], out[f"{key}_mean_lo"] = _two_sum(m0, sd / safe_n)
        dev[key] = (d, sd)
    (dp, sp), (dt, st) = dev["pred"], dev["target"]
    out["pred_m2"] = np.maximum(gsum(w * dp * dp) - sp * sp / safe_n, 0.0)
    out["target_m2"] = np.maximum(gsum(w * dt * dt) - st * st / safe_n, 0.0)
    out["cross_m2"] = gsum(w * dp * dt) - sp * st / safe_n
    return out


def merge_moments(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Chan's combination of two sets of moments of equal shape (elementwise over groups):
    the moments of the union of the rows. An empty side (``n == 0``) leaves the other as is.
    The means are carried as unevaluated sums ``mean + mean_lo`` (double-double), so the
    difference of two means of data at :math:`10^{12}` keeps the digits of the spread."""
    na, nb = np.asarray(a["n"], dtype=np.float64), np.asarray(b["n"], dtype=np.float64)
    sa, sb = np.asarray(a["scale"]), np.asarray(b["scale"])
    s = np.where(na == 0, sb, np.where(nb == 0, sa, np.maximum(sa, sb)))
    ra = np.where(na == 0, 0.0, sa / s)  # powers of two <= 1: exact rescaling
    rb = np.where(nb == 0, 0.0, sb / s)
    n = na + nb
    safe = np.where(n == 0, 1.0, n)
    out: dict[str, np.ndarray] = {"n": n, "scale": s}
    for k in ("err_s", "abs_err_s"):
        out[k] = ra * a[k] + rb * b[k]
    out["sq_err_s"] = ra * ra * a["sq_err_s"] + rb * rb * b["sq_err_s"]
    out["vmin"] = np.where(na == 0, b["vmin"], np.where(nb == 0, a["vmin"],
                                                        np.minimum(a["vmin"], b["vmin"])))
    out["vmax"] = np.where(na == 0, b["vmax"], np.where(nb == 0, a["vmax"],
                                                        np.maximum(a["vmax"], b["vmax"])))
    both = (na > 0) & (nb > 0)
    f = np.where(both, na * nb / safe, 0.0)
    share = np.where(both, nb / safe, 0.0)
    delta = {}
    for k in ("pred", "target"):
        ha, la = ra * a[f"{k}_mean"], ra * a[f"{k}_mean_lo"]
        hb, lb = rb * b[f"{k}_mean"], rb * b[f"{k}_mean_lo"]
        delta[k] = np.where(both, (hb - ha) + (lb - la), 0.0)
        hi, lo = _two_sum(ha, la + share * delta[k])
        out[f"{k}_mean"] = np.where(na == 0, hb, hi)
        out[f"{k}_mean_lo"] = np.where(na == 0, lb, lo)
    for k, (u, v) in {"pred_m2": ("pred", "pred"), "target_m2": ("target", "target"),
                      "cross_m2": ("pred", "target")}.items():
        out[k] = ra * ra * a[k] + rb * rb * b[k] + f * delta[u] * delta[v]
    return out


def total_moments(m: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The moments of all groups together, shape ``(1,)``, by :func:`merge_moments` over the
    last axis (groups)."""
    cols = {k: np.asarray(v, dtype=np.float64) for k, v in m.items() if k in MOMENT_KEYS}
    acc = {k: v[..., :1] for k, v in cols.items()}
    for j in range(1, int(cols["n"].shape[-1])):
        acc = merge_moments(acc, {k: v[..., j:j + 1] for k, v in cols.items()})
    return acc


def _representable(x: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"the {what} is not representable in float64 (above 1.8e308): the predictions and "
            "targets differ by too much; rescale them (the CCC is still defined)"
        )
    return x


def moment_scores(m: Mapping[str, Any], keys: tuple[str, ...] = ("mae", "mse", "rmse", "ccc")
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    r"""``(scores, valid)`` elementwise over the moments' shape for the ``keys`` asked (of
    ``mae``, ``mse``, ``rmse``, ``ccc``, ``r2``) and the cells where each is defined: a
    non-empty cell, for :math:`R^2 = 1 - \mathrm{SSE}/\mathrm{SST}` also targets that are
    not all equal, for CCC also one where not every prediction and target is the same constant
    (``valid["constant"]`` flags those). An invalid cell holds 0. A defined score beyond
    float64 (an MAE, MSE or RMSE above 1.8e308) raises ``ValueError``; the CCC never
    overflows (the scale cancels)."""
    n = np.asarray(m["n"], dtype=np.float64)
    ok = n > 0
    safe = np.where(ok, n, 1.0)
    s = np.asarray(m["scale"], dtype=np.float64)
    scores: dict[str, np.ndarray] = {}
    valid: dict[str, np.ndarray] = {}
    with np.errstate(over="ignore"):
        msq = np.where(ok, m["sq_err_s"] / safe, 0.0)  # mean squared error / s^2, in [0, 16)
        if "mae" in keys:
            scores["mae"] = _representable(np.where(ok, s * (m["abs_err_s"] / safe), 0.0),
                                           "mean absolute error")
        if "rmse" in keys:
            scores["rmse"] = _representable(s * np.sqrt(msq), "root mean squared error")
        if "mse" in keys:
            scores["mse"] = _representable(s * (s * msq), "mean squared error")
        for k in ("pred", "target"):
            if f"mean_{k}" in keys:
                scores[f"mean_{k}"] = _representable(
                    np.where(ok, s * (m[f"{k}_mean"] + m[f"{k}_mean_lo"]), 0.0), f"mean {k}")
    for k in ("mae", "mse", "rmse", "mean_pred", "mean_target"):
        if k in keys:
            valid[k] = ok
    const = ok & (np.asarray(m["vmin"]) == np.asarray(m["vmax"]))
    valid["constant"] = const
    if "r2" in keys:  # 1 - SSE / SST, both sums of the same scaled squares
        sst = np.asarray(m["target_m2"], dtype=np.float64)
        rok = ok & (sst > 0)
        scores["r2"] = np.where(rok, 1.0 - m["sq_err_s"] / np.where(rok, sst, 1.0), 0.0)
        valid["r2"] = rok
    if "ccc" in keys:
        den = m["pred_m2"] + m["target_m2"] + m["err_s"] * m["err_s"] / safe
        cok = ok & ~const & (den > 0)
        scores["ccc"] = np.where(cok, 2 * m["cross_m2"] / np.where(cok, den, 1.0), 0.0)
        valid["ccc"] = cok
    return scores, valid


def regression_scores(stats: Any, keys: tuple[str, ...] = ("mae", "mse", "rmse", "ccc"),
                      *, overall: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    r"""Per-group (or, with ``overall``, all-groups) regression scores of hard statistics.

    ``(scores, valid)`` with arrays of shape ``(num_groups,)`` (``overall``: ``(1,)``) for the
    ``keys`` asked: :math:`\mathrm{MAE} = \sum_i w_i |\hat y_i - y_i| / n`,
    :math:`\mathrm{MSE} = \sum_i w_i (\hat y_i - y_i)^2 / n`, :math:`\mathrm{RMSE} =
    \sqrt{\mathrm{MSE}}` and Lin's concordance correlation

    .. math::

        \mathrm{CCC} = \frac{2 \sigma_{\hat y y}}{\sigma_{\hat y}^2 + \sigma_y^2
                            + (\mu_{\hat y} - \mu_y)^2}

    (population moments), all from the centred, scaled moments of
    :mod:`fairmt_opt.fairness._moments`: the variances and the covariance are exact to a few
    units of round-off at any location (:math:`10^{12}` and beyond) and no finite input
    overflows. ``valid`` flags the defined cells (non-empty; for CCC also not every prediction
    and target the same constant, flagged in ``valid["constant"]``); invalid cells hold 0. A
    defined MAE, MSE or RMSE beyond float64 raises ``ValueError`` (never inf or NaN). Cost
    :math:`O(|G|)`.

    Examples
    --------
    >>> from fairmt_opt.fairness import Task, hard_stats
    >>> from fairmt_opt.fairness._stats import regression_scores
    >>> s = hard_stats(Task("r", "regression"), [1e12 + 1, 1e12 + 2, 1e12 + 4],
    ...                [1e12 + 1, 1e12 + 3, 1e12 + 3], None, [0, 0, 1], 2)
    >>> sc, ok = regression_scores(s, ("mae", "ccc"), overall=True)
    >>> float(sc["mae"][0]), round(float(sc["ccc"][0]), 12)  # 2 (8/9) / (14/9 + 8/9)
    (0.6666666666666666, 0.727272727273)
    """
    if getattr(stats, "kind", None) != "regression" or any(
            k not in getattr(stats, "sums", {}) for k in MOMENT_KEYS):
        raise ValueError("stats must be the HardStats of a regression task (from hard_stats)")
    m = {k: np.asarray(stats.sums[k], dtype=np.float64) for k in MOMENT_KEYS}
    if overall:
        m = total_moments(m)
    return moment_scores(m, keys)
