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

A reference that cannot be fitted on a task (fairlearn or scikit-learn raises, e.g.
``ThresholdOptimizer``'s "Degenerate labels for sensitive feature value 0" when a group has no
labelled positive in the training rows, or a task with one class only) is not dropped: its
:class:`ReferencePoint` has no metrics and ``skipped`` holds the reason.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    r"""One fitted reference model on one detection task, evaluated on the test split.

    ``outputs`` are its hard test predictions as logits :math:`\pm 1` (one per test row, the
    input of :func:`fairmt_opt.fairness.evaluate_task` and of the per-group rates);
    ``skipped`` is empty for a fitted model, else the reason it could not be fitted (then
    ``metrics`` is empty and ``outputs`` is ``None``).
    """

    method: str
    knob: str
    value: float | str
    task: str
    metrics: dict[str, float]
    seconds: float
    outputs: np.ndarray | None = field(default=None, repr=False, compare=False)
    skipped: str = ""

    @property
    def label(self) -> str:
        """``method`` or ``method[knob=value]`` (the label in the studies' files).

        Examples
        --------
        >>> ReferencePoint("eg_eo", "bound", 0.05, "y", {}, 0.0).label
        'eg_eo[bound=0.05]'
        """
        return self.method if self.knob == "-" else f"{self.method}[{self.knob}={self.value:g}]"


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
        passed as logits :math:`\pm 1`, so ``ks`` is not meaningful and is left out), those
        predictions (``outputs``) and the wall-clock seconds of the fit and the test
        prediction; one point per method, bound and task, the references that could not be
        fitted on a task included with the reason in ``skipped``.

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
    Xt = te.X.astype(np.float64)
    for t in detect:
        task = ds.tasks[t]
        m = tr.mask[:, t]
        X, y, g = tr.X[m].astype(np.float64), tr.targets[t][m], tr.groups[m]

        def point(method: str, knob: str, value: float | str, fit: Any,
                  task: Any = task, t: int = t) -> ReferencePoint:
            """Fit and evaluate one reference (``fit()`` returns the test predictions); a
            failure of the fit or the prediction is recorded as skipped."""
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence chatter of the inner fits
                    pred = np.asarray(fit())
            except Exception as exc:  # any failure of the outside library
                reason = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
                return ReferencePoint(method, knob, value, task.name, {},
                                      time.perf_counter() - t0, None, reason)
            seconds = time.perf_counter() - t0
            z = np.where(pred == 1, 1.0, -1.0)
            rep = evaluate_task(task, z, te.targets[t], te.mask[:, t], te.groups, ds.n_groups,
                                output="logits")
            metrics = {k: float(v) for k, v in rep.items()
                       if k != "ks" and k not in rep.undefined}
            return ReferencePoint(method, knob, value, task.name, metrics, seconds, z)

        for method in methods:
            if method == "logreg":
                out.append(point(method, "-", "-",
                                 lambda X=X, y=y: _logreg(1000).fit(X, y).predict(Xt)))
            elif method in ("eg_eo", "eg_dp"):
                moment = EqualizedOdds if method == "eg_eo" else DemographicParity
                for b in bounds:
                    def fit_eg(b: float = b, moment: Any = moment, X: Any = X, y: Any = y,
                               g: Any = g) -> Any:
                        eg = ExponentiatedGradient(_logreg(200),
                                                   constraints=moment(difference_bound=b),
                                                   max_iter=eg_max_iter)
                        eg.fit(X, y, sensitive_features=g)
                        return eg.predict(Xt, random_state=seed)
                    out.append(point(method, "bound", b, fit_eg))
            else:
                cons = "equalized_odds" if method == "threshold_eo" else "demographic_parity"

                def fit_to(cons: str = cons, X: Any = X, y: Any = y, g: Any = g) -> Any:
                    to = ThresholdOptimizer(estimator=_logreg(1000), constraints=cons,
                                            objective="accuracy_score",
                                            predict_method="predict_proba")
                    to.fit(X, y, sensitive_features=g)
                    return to.predict(Xt, sensitive_features=te.groups, random_state=seed)
                out.append(point(method, "-", "-", fit_to))
    return out
