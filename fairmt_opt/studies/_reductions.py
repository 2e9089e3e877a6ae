r"""Outside reference for the ``frontier`` study: fairlearn's reductions and post-processing.

One single-task scikit-learn ``LogisticRegression`` per detection task, fitted on the task's
labelled training rows of the same split and features as the multi-task models, and
evaluated on the test split by :func:`fairmt_opt.fairness.evaluate_task` (the same EO and
accuracy as the studies):

==================  ============================================================================
``logreg``          plain logistic regression (no fairness constraint)
``eg_eo``           ``ExponentiatedGradient`` with ``EqualizedOdds(difference_bound=b)``
``eg_dp``           ``ExponentiatedGradient`` with ``DemographicParity(difference_bound=b)``
``threshold_eo``    ``ThresholdOptimizer`` (equalized odds, accuracy) on the logistic regression
``threshold_dp``    ``ThresholdOptimizer`` (demographic parity, accuracy)
==================  ============================================================================

The randomised classifiers (both reductions and the threshold optimiser) predict with a fixed
``random_state`` so that two runs give the same predictions.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..datasets import MTLDataset
from ..fairness import evaluate_task

__all__ = ["REFERENCES", "ReferencePoint", "run_references"]

#: reference name -> its knob (``bound`` for the reductions, ``-`` otherwise)
REFERENCES: dict[str, str] = {"logreg": "-", "eg_eo": "bound", "eg_dp": "bound",
                              "threshold_eo": "-", "threshold_dp": "-"}


@dataclass(frozen=True)
class ReferencePoint:
    """One fitted reference model on one detection task, evaluated on the test split."""

    method: str
    knob: str
    value: float | str
    task: str
    metrics: dict[str, float]
    seconds: float


def _logreg(max_iter: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=max_iter)


def run_references(ds: MTLDataset, *, bounds: Sequence[float], seed: int = 0,
                   eg_max_iter: int = 50, methods: Sequence[str] = tuple(REFERENCES)
                   ) -> list[ReferencePoint]:
    r"""Fit the fairlearn references on every detection task of ``ds``.

    ``ExponentiatedGradient`` solves :math:`\min_{Q} \mathrm{err}(Q)` over randomised
    classifiers subject to :math:`|\gamma_{g}(Q) - \gamma(Q)| \le b` for every group
    :math:`g` (and label, for equalised odds), one run per bound :math:`b` in ``bounds``;
    ``ThresholdOptimizer`` picks group-wise (randomised) thresholds of the logistic
    regression scores that maximise accuracy under exact parity on the training split.

    Cost: one logistic regression (``logreg``, ``threshold_*``) or up to ``eg_max_iter``
    (reductions) per task and bound, on the task's labelled training rows.

    Parameters
    ----------
    ds : MTLDataset
    bounds : sequence of float
        Difference bounds of the reductions (each > 0).
    seed : int
        ``random_state`` of the randomised predictions.
    eg_max_iter : int
        ``max_iter`` of ``ExponentiatedGradient``.
    methods : sequence of str
        Any of :data:`REFERENCES`.

    Returns
    -------
    list of ReferencePoint
        The test metrics of :func:`fairmt_opt.fairness.evaluate_task` (hard predictions
        passed as logits :math:`\pm 1`, so ``ks`` is not meaningful and is left out) and the
        wall-clock seconds of the fit.

    Raises
    ------
    ValueError
        A bound that is not > 0, an unknown method, or a dataset without a detection task.

    Examples
    --------
    >>> from fairmt_opt.datasets import load_dataset
    >>> ds = load_dataset("synthetic", n_samples=400, seed=0)
    >>> pts = run_references(ds, bounds=[0.05], methods=("logreg", "eg_eo"), eg_max_iter=5)
    >>> [(p.method, p.task, sorted(p.metrics)[:2]) for p in pts]
    [('logreg', 'task0_det', ['accuracy', 'csp']), ('eg_eo', 'task0_det', ['accuracy', 'csp'])]
    """
    bad = [m for m in methods if m not in REFERENCES]
    if bad:
        raise ValueError(f"methods must be among {tuple(REFERENCES)}, got {bad}")
    bounds = tuple(float(b) for b in bounds)
    if any(not b > 0 or not np.isfinite(b) for b in bounds):
        raise ValueError(f"bounds must be finite and > 0, got {bounds}")
    detect = [t for t, task in enumerate(ds.tasks) if task.kind == "detection"]
    if not detect:
        raise ValueError(f"dataset {ds.name!r} has no detection task for the references")
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient

    tr, te = ds.train, ds.test
    out: list[ReferencePoint] = []
    for t in detect:
        task = ds.tasks[t]
        m = tr.mask[:, t]
        X, y, g = tr.X[m].astype(np.float64), tr.targets[t][m], tr.groups[m]
        Xt = te.X.astype(np.float64)

        def point(method: str, knob: str, value: float | str, pred: np.ndarray,
                  seconds: float, task: Any = task, t: int = t) -> ReferencePoint:
            rep = evaluate_task(task, np.where(np.asarray(pred) == 1, 1.0, -1.0),
                                te.targets[t], te.mask[:, t], te.groups, ds.n_groups)
            metrics = {k: float(v) for k, v in rep.items()
                       if k != "ks" and k not in rep.undefined}
            return ReferencePoint(method, knob, value, task.name, metrics, seconds)

        for method in methods:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter of the inner fits
                if method == "logreg":
                    t0 = time.perf_counter()
                    lr = _logreg(1000).fit(X, y)
                    out.append(point(method, "-", "-", lr.predict(Xt),
                                     time.perf_counter() - t0))
                elif method in ("eg_eo", "eg_dp"):
                    moment = EqualizedOdds if method == "eg_eo" else DemographicParity
                    for b in bounds:
                        t0 = time.perf_counter()
                        eg = ExponentiatedGradient(_logreg(200),
                                                   constraints=moment(difference_bound=b),
                                                   max_iter=eg_max_iter)
                        eg.fit(X, y, sensitive_features=g)
                        seconds = time.perf_counter() - t0
                        out.append(point(method, "bound", b, eg.predict(Xt, random_state=seed),
                                         seconds))
                else:
                    t0 = time.perf_counter()
                    cons = "equalized_odds" if method == "threshold_eo" else "demographic_parity"
                    to = ThresholdOptimizer(estimator=_logreg(1000), constraints=cons,
                                            objective="accuracy_score",
                                            predict_method="predict_proba")
                    to.fit(X, y, sensitive_features=g)
                    seconds = time.perf_counter() - t0
                    out.append(point(method, "-", "-", to.predict(
                        Xt, sensitive_features=te.groups, random_state=seed), seconds))
    return out
