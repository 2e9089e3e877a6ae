"""Offline generator of heterogeneous multi-task problems with a planted group bias."""

from __future__ import annotations

import numpy as np

from .._utils.validation import check_int, check_positive
from ..fairness import Task
from ._base import MTLDataset, Split, split_indices

__all__ = ["make_synthetic"]


def make_synthetic(
    *,
    n_samples: int = 6000,
    n_tasks: int = 3,
    n_features: int = 10,
    n_classes: int = 3,
    bias: float = 1.0,
    missing_rate: float = 0.3,
    group_share: float = 0.3,
    noise: float = 0.5,
    seed: int = 0,
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> MTLDataset:
    r"""Heterogeneous multi-task data with a planted group bias and missing labels.

    Task kinds cycle detection, classification, regression (so ``n_tasks = 3`` gives one of
    each). Group :math:`a_i \sim \mathrm{Bernoulli}(\text{group\_share})` (1 = minority) and
    :math:`x_i \sim \mathcal N(0.5\, a_i \mathbf 1 / \sqrt d,\; I_d)`. Each task has a random
    unit direction :math:`v_t` and a latent score :math:`s_{it} = x_i^\top v_t - \text{bias}
    \cdot a_i + \text{noise}\cdot \epsilon_{it}` with standard normal :math:`\epsilon`, so the
    minority group is disadvantaged by ``bias`` in every task: detection labels
    :math:`1[s_{it} > 0]`; classification labels the quantile bin of :math:`s_{it}` among
    ``n_classes`` equal-mass bins of the majority group's scores; regression targets
    :math:`s_{it}`. Each label is then dropped independently with probability
    ``missing_rate`` (at least one label per task is kept).

    Parameters
    ----------
    n_samples, n_tasks, n_features, n_classes : int
    bias : float
        Planted disadvantage of group 1 in every latent score (0: no bias).
    missing_rate : float
        Probability that a label is missing, in [0, 1).
    group_share : float
        Expected share of group 1, in (0, 1).
    noise : float
        Standard deviation of the label noise.
    seed : int
        Seed of everything (data and split).
    split_fractions : tuple of 3 floats

    Returns
    -------
    MTLDataset

    Examples
    --------
    >>> ds = make_synthetic(n_samples=500, n_tasks=4, missing_rate=0.5, seed=1)
    >>> [t.kind for t in ds.tasks]
    ['detection', 'classification', 'regression', 'detection']
    >>> bool(0.4 < ds.train.mask.mean() < 0.6)
    True
    """
    n = check_int(n_samples, "n_samples", minimum=10)
    T = check_int(n_tasks, "n_tasks", minimum=1)
    d = check_int(n_features, "n_features", minimum=1)
    C = check_int(n_classes, "n_classes", minimum=2)
    bias = check_positive(bias, "bias", allow_zero=True)
    noise = check_positive(noise, "noise", allow_zero=True)
    missing_rate = check_positive(missing_rate, "missing_rate", allow_zero=True)
    if missing_rate >= 1:
        raise ValueError(f"missing_rate must be < 1, got {missing_rate}")
    group_share = check_positive(group_share, "group_share")
    if group_share >= 1:
        raise ValueError(f"group_share must be < 1, got {group_share}")
    seed = check_int(seed, "seed")
    rng = np.random.default_rng(seed)
    groups = (rng.random(n) < group_share).astype(np.int64)
    X = rng.standard_normal((n, d)) + 0.5 * groups[:, None] / np.sqrt(d)
    V = rng.standard_normal((d, T))
    V /= np.linalg.norm(V, axis=0, keepdims=True)
    S = X @ V - bias * groups[:, None] + noise * rng.standard_normal((n, T))
    mask = rng.random((n, T)) >= missing_rate
    for t in range(T):  # every task keeps at least one label
        if not mask[:, t].any():
            mask[rng.integers(n), t] = True
    kinds = ("detection", "classification", "regression")
    tasks: list[Task] = []
    targets: list[np.ndarray] = []
    for t in range(T):
        kind = kinds[t % 3]
        if kind == "detection":
            tasks.append(Task(f"task{t}_det", "detection"))
            targets.append(np.where(mask[:, t], (S[:, t] > 0).astype(np.int64), -1))
        elif kind == "classification":
            tasks.append(Task(f"task{t}_cls", "classification", num_classes=C))
            edges = np.quantile(S[groups == 0, t] if (groups == 0).any() else S[:, t],
                                np.linspace(0, 1, C + 1)[1:-1])
            targets.append(np.where(mask[:, t], np.searchsorted(edges, S[:, t]), -1))
        else:
            tasks.append(Task(f"task{t}_reg", "regression"))
            targets.append(np.where(mask[:, t], S[:, t], np.nan))
    parts = split_indices(n, list(split_fractions), seed)
    splits = [
        Split(X=X[p].astype(np.float32), targets=tuple(y[p] for y in targets), mask=mask[p],
              groups=groups[p])
        for p in parts
    ]
    return MTLDataset(
        name="synthetic",
        tasks=tuple(tasks),
        train=splits[0],
        val=splits[1],
        test=splits[2],
        feature_names=tuple(f"x{j}" for j in range(d)),
        group_names=("majority", "minority"),
        sensitive="group",
        info={
            "source": "fairmt_opt.datasets.make_synthetic (generated offline)",
            "license": "generated data, no licence restriction",
            "params": {"n_samples": n, "n_tasks": T, "n_features": d, "n_classes": C,
                       "bias": bias, "missing_rate": missing_rate, "group_share": group_share,
                       "noise": noise, "seed": seed},
            "split": f"random {split_fractions} with seed {seed}",
            "target_scale": {},
        },
    )
