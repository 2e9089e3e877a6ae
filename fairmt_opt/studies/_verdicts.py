r"""Confidence intervals and verdicts of the studies: seeds and test samples.

A study compares two methods :math:`a` and :math:`b` on a metric :math:`M` (EO, accuracy, a
group's TPR, ...) trained with seeds :math:`s = 1, \dots, n` and evaluated on one test split.
Two sources of noise enter the difference :math:`\bar d = \frac1n \sum_s (M(a_s) - M(b_s))`:

* the seeds (initialisation and data order): the Student-t interval over seeds of the per-seed
  differences :math:`d_s` (:func:`t_interval`), which needs :math:`n \ge 2`;
* the test sample: a paired bootstrap that resamples the test samples with replacement (the
  same resample for both methods and every seed) and recomputes :math:`\bar d`; the interval is
  the percentile interval of the resampled values (:func:`bootstrap_intervals`, seeded).

:func:`difference_verdict` combines them: the verdict interval is the hull of both (with one
seed, the bootstrap interval alone), and the difference is *resolved* only when that interval
excludes zero, i.e. when both intervals lie on the same side of it. Otherwise it is *not
resolved*; with one seed the seed noise is not measured, and the verdict says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "Verdict", "bootstrap_intervals", "difference_verdict",
           "percentile_interval", "resample_indices", "t_interval"]

#: the confidence level of every interval of the studies
LEVEL = 0.95


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return level


@dataclass(frozen=True)
class Interval:
    """A point estimate and a confidence interval ``[low, high]``.

    ``method`` says how it was obtained (``"t over 3 seeds"``, ``"bootstrap percentile, 500
    resamples"``); ``dropped`` counts bootstrap resamples where the statistic was undefined
    (left out of the percentiles).
    """

    estimate: float
    low: float
    high: float
    level: float
    method: str
    dropped: int = 0

    def side(self, value: float = 0.0) -> int:
        """``+1`` when the whole interval lies above ``value``, ``-1`` below, ``0`` when it
        contains it."""
        if self.low > value:
            return 1
        if self.high < value:
            return -1
        return 0

    def __str__(self) -> str:
        return f"{self.estimate:.4f} [{self.low:.4f}, {self.high:.4f}]"


def t_interval(values: Sequence[float] | np.ndarray, *, level: float = LEVEL) -> Interval:
    r"""Student-t confidence interval of the mean of ``values`` (one per seed).

    .. math::

        \bar x \pm t_{(1+\ell)/2,\; n-1}\, \frac{s}{\sqrt n}, \qquad
        s^2 = \frac{1}{n-1} \sum_s (x_s - \bar x)^2 ,

    at level :math:`\ell` (default 0.95). Cost :math:`O(n)`.

    Raises
    ------
    ValueError
        Fewer than two values (one seed cannot measure the seed noise), or a value that is
        not finite.

    Examples
    --------
    >>> iv = t_interval([0.10, 0.12, 0.14])
    >>> round(iv.estimate, 4), round(iv.low, 4), round(iv.high, 4)
    (0.12, 0.0703, 0.1697)
    >>> iv.side(0.0)
    1
    """
    from scipy import stats

    level = _check_level(level)
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size < 2:
        raise ValueError(f"values must hold at least two numbers (seeds) for a t-interval, "
                         f"got {x.size}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"values must be finite, got {x.tolist()}")
    mean = float(x.mean())
    half = float(stats.t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return Interval(mean, mean - half, mean + half, level, f"t over {x.size} seeds")


def bootstrap_intervals(
    statistic: Callable[[np.ndarray], Sequence[float] | np.ndarray],
    n_samples: int,
    *,
    resamples: int = 500,
    seed: int = 0,
    level: float = LEVEL,
) -> list[Interval]:
    r"""Percentile bootstrap intervals of a vector of statistics of ``n_samples`` samples.

    ``statistic(idx)`` returns :math:`k` numbers computed on the samples ``idx`` (an integer
    array of length ``n_samples``, with repetitions). The estimates are ``statistic(arange(n))``;
    the intervals are the :math:`(1-\ell)/2` and :math:`(1+\ell)/2` quantiles of the values on
    ``resamples`` resamples drawn with replacement by ``numpy.random.default_rng(seed)`` (the
    same resamples for all :math:`k` statistics, so that paired differences stay paired).
    A resample where a statistic is NaN (undefined) is left out of that statistic's quantiles
    and counted in ``Interval.dropped``. Cost: ``resamples + 1`` calls of ``statistic``.

    Raises
    ------
    ValueError
        ``n_samples < 1``, ``resamples < 10``, a statistic that is NaN on the whole sample or
        on more than half of the resamples, or a statistic that changes its length.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(100.0)
    >>> iv, = bootstrap_intervals(lambda idx: [x[idx].mean()], 100, resamples=200, seed=1)
    >>> iv.estimate, bool(iv.low < 49.5 < iv.high), iv.method
    (49.5, True, 'bootstrap percentile, 200 resamples')
    """
    level = _check_level(level)
    n, B = _check_n(n_samples), _check_resamples(resamples)
    est = np.asarray(statistic(np.arange(n)), dtype=np.float64).ravel()
    vals = np.empty((B, est.size))
    for b, idx in enumerate(resample_indices(n, B, seed=seed)):
        v = np.asarray(statistic(idx), dtype=np.float64).ravel()
        if v.shape != est.shape:
            raise ValueError(f"statistic returned {v.size} values on a resample, "
                             f"{est.size} on the whole sample")
        vals[b] = v
    return [percentile_interval(float(est[j]), vals[:, j], level=level)
            for j in range(est.size)]


def _check_n(n_samples: int) -> int:
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    return int(n_samples)


def _check_resamples(resamples: int) -> int:
    if isinstance(resamples, bool) or int(resamples) != resamples or resamples < 10:
        raise ValueError(f"resamples must be an integer >= 10, got {resamples!r}")
    return int(resamples)


def resample_indices(n_samples: int, resamples: int, *, seed: int = 0) -> Iterator[np.ndarray]:
    """The bootstrap resamples of :func:`bootstrap_intervals`: ``resamples`` integer arrays of
    length ``n_samples`` drawn with replacement by ``numpy.random.default_rng(seed)``, one
    after the other (the same sequence for the same arguments). Cost :math:`O(n)` each.

    Examples
    --------
    >>> [idx.tolist() for idx in resample_indices(3, 10, seed=0)][:2]
    [[2, 1, 1], [0, 0, 0]]
    """
    n, B = _check_n(n_samples), _check_resamples(resamples)
    rng = np.random.default_rng(seed)
    for _ in range(B):
        yield rng.integers(0, n, size=n)


def percentile_interval(estimate: float, values: Sequence[float] | np.ndarray, *,
                        level: float = LEVEL) -> Interval:
    r"""The percentile interval of bootstrap ``values`` around ``estimate`` (the statistic on
    the whole sample): the :math:`(1-\ell)/2` and :math:`(1+\ell)/2` quantiles (NumPy's
    default linear interpolation) of the finite values; NaN values (a statistic undefined on
    a resample) are left out and counted in ``dropped``. Cost :math:`O(B \log B)`.

    Raises
    ------
    ValueError
        ``estimate`` is NaN, or more than half of ``values`` are NaN.

    Examples
    --------
    >>> iv = percentile_interval(0.5, [0.1 * k for k in range(11)] + [float("nan")])
    >>> round(iv.low, 3), round(iv.high, 3), iv.dropped
    (0.025, 0.975, 1)
    """
    level = _check_level(level)
    v = np.asarray(values, dtype=np.float64).ravel()
    if math.isnan(float(estimate)):
        raise ValueError("estimate is undefined (NaN) on the whole sample")
    ok = v[~np.isnan(v)]
    if ok.size == 0 or ok.size < v.size / 2:
        raise ValueError(f"the statistic is undefined on {v.size - ok.size} of {v.size} "
                         "resamples")
    lo, hi = np.percentile(ok, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return Interval(float(estimate), float(lo), float(hi), level,
                    f"bootstrap percentile, {v.size} resamples", dropped=int(v.size - ok.size))


@dataclass(frozen=True)
class Verdict:
    """The difference ``a - b`` of a metric between two methods and whether it is resolved.

    Attributes
    ----------
    estimate : float
        Mean over seeds of the per-seed differences on the whole test split.
    seeds : Interval or None
        t-interval over seeds (``None`` with one seed).
    bootstrap : Interval
        Percentile interval over test-sample resamples of the mean difference.
    interval : Interval
        The hull of both (the bootstrap interval alone with one seed).
    direction : int
        ``+1`` (resolved above ``margin``), ``-1`` (resolved below) or ``0`` (not resolved).
    """

    estimate: float
    seeds: Interval | None
    bootstrap: Interval
    interval: Interval
    direction: int
    margin: float = 0.0

    @property
    def resolved(self) -> bool:
        return self.direction != 0

    def describe(self, below: str, above: str) -> str:
        """``below`` / ``above`` when resolved, else ``"not resolved"`` with the reason."""
        if self.direction < 0:
            word = below
        elif self.direction > 0:
            word = above
        elif self.seeds is None:
            return ("not resolved (one seed: the seed noise is not measured and the bootstrap "
                    "interval includes " + (f"{self.margin:g})" if self.margin else "0)"))
        else:
            return "not resolved (the interval includes " + (
                f"{self.margin:g})" if self.margin else "0)")
        return word + (" (one seed: test-sample noise only)" if self.seeds is None else "")

    def __str__(self) -> str:
        seeds = "n/a (1 seed)" if self.seeds is None else f"[{self.seeds.low:.4f}, " \
            f"{self.seeds.high:.4f}]"
        return (f"{self.estimate:+.4f} (seeds {seeds}; bootstrap [{self.bootstrap.low:.4f}, "
                f"{self.bootstrap.high:.4f}])")


def difference_verdict(per_seed: Sequence[float] | np.ndarray, bootstrap: Interval, *,
                       margin: float = 0.0, level: float = LEVEL) -> Verdict:
    r"""Combine the seed interval of ``per_seed`` differences and a bootstrap interval.

    The verdict interval is :math:`[\min(\ell_t, \ell_b), \max(h_t, h_b)]` (the hull of the
    t-interval over seeds and the bootstrap interval; with one seed the bootstrap interval);
    ``direction`` is :meth:`Interval.side` of ``margin`` (default 0) on it. Cost :math:`O(n)`.

    Examples
    --------
    >>> boot = Interval(-0.05, -0.07, -0.03, 0.95, "bootstrap percentile, 500 resamples")
    >>> v = difference_verdict([-0.05, -0.06, -0.04], boot)
    >>> v.direction, v.describe("lower", "higher")
    (-1, 'lower')
    >>> difference_verdict([-0.05], boot).describe("lower", "higher")
    'lower (one seed: test-sample noise only)'
    >>> noisy = difference_verdict([-0.05, 0.02, -0.04], boot)
    >>> noisy.direction, noisy.describe("lower", "higher")
    (0, 'not resolved (the interval includes 0)')
    """
    d = np.asarray(per_seed, dtype=np.float64).ravel()
    if d.size < 1 or not np.all(np.isfinite(d)):
        raise ValueError(f"per_seed must hold at least one finite difference, got {d.tolist()}")
    seeds = t_interval(d, level=level) if d.size >= 2 else None
    if seeds is None:
        hull = bootstrap
    else:
        hull = Interval(float(d.mean()), min(seeds.low, bootstrap.low),
                        max(seeds.high, bootstrap.high), level,
                        f"hull of {seeds.method} and {bootstrap.method}")
    return Verdict(float(d.mean()), seeds, bootstrap, hull, hull.side(float(margin)),
                   float(margin))
