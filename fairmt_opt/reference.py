r"""cvxpy formulations of every problem fairmt_opt solves: the reference oracle.

These functions state each problem exactly as the documentation does and hand it to a generic
conic solver (Clarabel by default). They are slow and only accurate to the solver's tolerance
(about 1e-8 relative to the data scale), but independent of every fairmt_opt algorithm: use
them to verify your own solvers, as our tests do. Requires the ``cvxpy`` extra
(``pip install fairmt_opt[cvxpy]``).

Problems
--------
* :func:`project_simplex`: :math:`\min_{x \in \Delta} \tfrac12\|x - v\|^2`.
* :func:`aggregate_violations`: AHFDA,
  :math:`\Phi(\psi) = \max_{w \in \Delta} w^\top\psi - \tfrac{\mu}{2}\|w - \tfrac1T\mathbf 1\|^2`.
* :func:`solve_simplex_qp`:
  :math:`\min_{\alpha \in \Delta} \tfrac12\alpha^\top K\alpha + b^\top\alpha` with :math:`K`
  symmetric positive semidefinite, possibly singular (it is factored as
  :math:`K = R^\top R` from its eigendecomposition, so no ridge is added).
* :class:`ParametricAggregation` and :class:`ParametricSimplexQP`: the same problems compiled once
  with ``cp.Parameter`` data, then re-solved for new data (the fair way to time cvxpy).

Scaling
-------
A conic solver's tolerances are absolute, so every problem is handed to it at unit scale and
the answer is scaled back; the minimisers do not change:

* the QP as :math:`(K, b - \min_t b_t) / s` with :math:`s = \max(\|K\|_{\max},
  \max_t b_t - \min_t b_t)` (or :math:`\|b\|_{\max}`, or 1, when that is 0): the scale of
  :func:`fairmt_opt.certify_simplex_qp` and of the external backends of
  :func:`fairmt_opt.solve_simplex_qp`;
* the aggregation as :math:`((\psi - \max_t\psi_t)/\sigma, \mu/\sigma)` with
  :math:`\sigma = \max(\max_t\psi_t - \min_t\psi_t, \mu)`, so that
  :math:`\Phi(\psi) = \max_t\psi_t + \sigma\,\Phi_\sigma`;
* the projection as :math:`v - \max_t v_t` (it is shift-invariant, not scale-invariant),
  with the entries :math:`v_t \le \max v - 1` removed first: the threshold :math:`\tau` of
  :math:`x_t = (v_t - \tau)_+` is at least :math:`\max v - 1`, so their projection is 0.

Data beyond :math:`2^{960}` is first divided by an exact power of two, so that nothing
overflows. A solve that fails (the solver raises, also after a retry with its default
settings, or returns no point or a status other than ``optimal`` / ``optimal_inaccurate``)
raises :class:`ReferenceSolveError`, which names the problem and the solver.

Example
-------
>>> import numpy as np
>>> from fairmt_opt import reference
>>> sol = reference.aggregate_violations(np.array([0.3, 0.1, 0.0]), 0.5)
>>> bool(abs(sol.x.sum() - 1) < 1e-6), sol.status
(True, 'optimal')
>>> big = reference.solve_simplex_qp(1e150 * np.array([[2.0, 0.0], [0.0, 1.0]]))
>>> np.round(big.x, 6), big.status  # the minimiser of the unscaled problem
(array([0.333333, 0.666667]), 'optimal')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .certificates._qp import _data_scale, pow2_exponent

try:  # the error is cvxpy's own SolverError, so code that catches that keeps working
    from cvxpy.error import SolverError as _SolverError
except ImportError:  # pragma: no cover - exercised only without the extra
    _SolverError = RuntimeError  # type: ignore[misc,assignment]

__all__ = [
    "ParametricAggregation",
    "ParametricSimplexQP",
    "ReferenceSolution",
    "ReferenceSolveError",
    "aggregate_violations",
    "factor_psd",
    "project_simplex",
    "solve_simplex_qp",
]

_OK = ("optimal", "optimal_inaccurate")


class ReferenceSolveError(_SolverError):  # type: ignore[misc,valid-type]
    """A cvxpy reference solve that gave no solution: the conic solver raised (after a retry
    with its default settings) or returned no point or a status other than ``optimal`` or
    ``optimal_inaccurate``. The message names the problem, the solver and what happened on
    the rescaled data; the solver's exception, if any, is the ``__cause__``. A subclass of
    ``cvxpy.error.SolverError``."""


def _cp() -> Any:
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "fairmt_opt.reference needs cvxpy: pip install 'fairmt_opt[cvxpy]'"
        ) from exc
    return cp


@dataclass
class ReferenceSolution:
    """Solution returned by a cvxpy reference solve.

    Attributes
    ----------
    x : numpy.ndarray
        The optimal point (weights ``w``, projection, or ``alpha``).
    value : float
        The optimal objective value (``Phi`` for the aggregation), in the caller's units.
    status : str
        cvxpy's status string: ``"optimal"``, or ``"optimal_inaccurate"`` when the solver
        stopped short of its tolerances (any other status raises
        :class:`ReferenceSolveError`).
    solver : str
        The conic solver used.
    extra : dict
        Problem-specific additions (e.g. the simplex multiplier ``dual_sum``).
    """

    x: np.ndarray
    value: float
    status: str
    solver: str
    extra: dict[str, Any] = field(default_factory=dict)


def _default_solver(cp: Any) -> str:
    installed = cp.installed_solvers()
    for s in ("CLARABEL", "ECOS", "SCS", "OSQP"):
        if s in installed:
            return s
    return str(installed[0])


def _solve(cp: Any, prob: Any, var: Any, solver: str | None, what: str) -> str:
    """Solve ``prob`` (tight tolerances, then the solver's defaults); return the solver used.
    Raises :class:`ReferenceSolveError` naming ``what`` when neither gives a point."""
    solver = solver or _default_solver(cp)
    opts: dict[str, Any] = {}
    if solver == "CLARABEL":
        opts = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}
    attempts = [(opts, "tight tolerances"), ({}, "default settings")] if opts else [
        ({}, "default settings")]
    failure, cause = "", None
    for kw, label in attempts:
        try:
            prob.solve(solver=solver, **kw)
        except Exception as exc:  # the solver's failure: retried, then reported
            failure, cause = f"raised {type(exc).__name__}: {exc}", exc
            continue
        if prob.status in _OK and var.value is not None and np.all(np.isfinite(var.value)):
            return solver
        failure, cause = f"returned status {prob.status!r} with {label}", None
    raise ReferenceSolveError(
        f"reference {what}: cvxpy's solver {solver} found no solution on the rescaled data "
        f"(it {failure}); try another solver=..."
    ) from cause


def _as_vec(v: Any, name: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    return a


def _as_qp(K: Any, b: Any, T: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.size == 0:
        raise ValueError(f"K must be a non-empty square matrix, got shape {K.shape}")
    if T is not None and K.shape[0] != T:
        raise ValueError(f"K must be {T} x {T}, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError("K must be finite")
    n = K.shape[0]
    bb = np.zeros(n) if b is None else _as_vec(b, "b")
    if bb.size != n:
        raise ValueError(f"b must have length {n}, got {bb.size}")
    return K, bb


class _ScaledQP:
    r"""The QP at unit scale: ``K_s = K / S``, ``b_s = (b - \min b) / S`` with
    ``S = 2^e s``, ``s`` the certificate's data scale of the data divided by ``2^e``;
    :meth:`value` maps the objective back to the caller's units."""

    def __init__(self, K: np.ndarray, b: np.ndarray) -> None:
        self.e = pow2_exponent(max(float(np.max(np.abs(K))), float(np.max(np.abs(b)))))
        K2, b2 = (np.ldexp(K, -self.e), np.ldexp(b, -self.e)) if self.e else (K, b)
        self.s = _data_scale(K2, b2)
        self.bmin = float(b2.min())
        self.K = 0.5 * (K2 + K2.T) / self.s
        self.b = (b2 - self.bmin) / self.s

    def value(self, x: np.ndarray) -> float:
        """:math:`\tfrac12 x^\top K x + b^\top x` from the scaled data (no overflow)."""
        fs = float(0.5 * x @ self.K @ x + self.b @ x)
        return math.ldexp(self.s * fs + self.bmin, self.e)


class _ScaledAggregation:
    r"""AHFDA at unit scale: :math:`\psi_\sigma = (\psi - \max\psi)/\sigma`,
    :math:`\mu_\sigma = \mu/\sigma`, :math:`\sigma = \max(\max\psi - \min\psi, \mu)` (after an
    exact power-of-two division of huge data); :meth:`back` maps a value or a multiplier of
    the scaled problem back (:math:`\max\psi + \sigma\,\cdot`)."""

    def __init__(self, psi: np.ndarray, mu: float) -> None:
        self.e = pow2_exponent(max(float(np.max(np.abs(psi))), mu))
        p2 = np.ldexp(psi, -self.e) if self.e else psi
        mu2 = math.ldexp(mu, -self.e)
        self.pmax = float(p2.max())
        pc = p2 - self.pmax
        self.sigma = max(float(-pc.min()), mu2)
        self.psi = pc / self.sigma
        self.mu = mu2 / self.sigma

    def back(self, v: float) -> float:
        return math.ldexp(self.pmax + self.sigma * v, self.e)


def _check_mu(mu: Any) -> float:
    m = float(mu)
    if not math.isfinite(m) or m <= 0:
        raise ValueError(f"mu must be > 0 and finite, got {mu}")
    return m


def factor_psd(K: Any) -> np.ndarray:
    """Return ``R`` with ``R.T @ R == K`` for a symmetric PSD ``K`` (eigendecomposition, tiny
    negative eigenvalues clipped to zero)."""
    K = np.asarray(K, dtype=np.float64)
    lam, V = np.linalg.eigh(0.5 * (K + K.T))
    lam = np.clip(lam, 0.0, None)
    return np.sqrt(lam)[:, None] * V.T


def project_simplex(v: Any, *, solver: str | None = None) -> ReferenceSolution:
    r"""Euclidean projection onto the probability simplex,
    :math:`\arg\min_{x \ge 0,\ \mathbf 1^\top x = 1} \tfrac12\|x - v\|^2`, solved on
    :math:`v - \max v` restricted to the entries above :math:`\max v - 1` (the others project
    to 0); ``value`` is the objective at ``x`` for the given ``v``.

    >>> import numpy as np
    >>> project_simplex(np.array([1e150, 0.0, -1e150])).x
    array([1., 0., 0.])
    """
    cp = _cp()
    v = _as_vec(v, "v")
    vc = v - v.max()  # exact for the entries that matter (those within 1 of the maximum)
    keep = np.flatnonzero(vc > -1.0)
    x = cp.Variable(keep.size)
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(x - vc[keep])), [x >= 0, cp.sum(x) == 1])
    used = _solve(cp, prob, x, solver, f"projection onto the simplex (T = {v.size})")
    out = np.zeros(v.size)
    out[keep] = np.asarray(x.value, dtype=float)
    with np.errstate(over="ignore"):  # inf when |v| is beyond sqrt of the float range
        value = float(0.5 * np.sum((out - v) ** 2))
    return ReferenceSolution(out, value, prob.status, used)


def aggregate_violations(psi: Any, mu: float, *, solver: str | None = None) -> ReferenceSolution:
    r"""AHFDA: :math:`\Phi(\psi) = \max_{w\in\Delta} w^\top\psi - \tfrac{\mu}{2}\|w - c\|^2`,
    :math:`c = \mathbf 1 / T`, solved at unit scale (module docstring). Returns the maximiser
    ``w`` in ``x``, ``Phi`` in ``value`` and the multiplier of the equality constraint in
    ``extra['dual_sum']`` (in the caller's units: :math:`\mu(\nu + 1/T)` in the scaling
    :math:`w_t = (\psi_t/\mu - \nu)_+`).

    >>> import numpy as np
    >>> sol = aggregate_violations(1e-300 * np.array([1.0, 0.0]), 1e-300)
    >>> np.round(sol.x, 6), round(sol.value / 1e-300, 6)
    (array([1., 0.]), 0.75)
    """
    cp = _cp()
    psi = _as_vec(psi, "psi")
    sc = _ScaledAggregation(psi, _check_mu(mu))
    T = psi.size
    c = np.full(T, 1.0 / T)
    w = cp.Variable(T)
    eq = cp.sum(w) == 1
    prob = cp.Problem(cp.Maximize(sc.psi @ w - 0.5 * sc.mu * cp.sum_squares(w - c)),
                      [w >= 0, eq])
    used = _solve(cp, prob, w, solver, f"aggregation (T = {T}, mu = {mu:g})")
    extra = {"dual_sum": sc.back(float(np.atleast_1d(eq.dual_value)[0]))
             if eq.dual_value is not None else float("nan")}
    return ReferenceSolution(np.asarray(w.value, dtype=float), sc.back(float(prob.value)),
                             prob.status, used, extra)


def solve_simplex_qp(K: Any, b: Any = None, *, solver: str | None = None) -> ReferenceSolution:
    r""":math:`\min_{\alpha\in\Delta} \tfrac12\alpha^\top K\alpha + b^\top\alpha` for symmetric PSD
    ``K`` (singular allowed: ``K`` is factored, no ridge is added), solved on
    :math:`(K, b - \min b)/s` (module docstring); ``value`` is the objective at ``x`` in the
    caller's units."""
    cp = _cp()
    K, bb = _as_qp(K, b)
    sc = _ScaledQP(K, bb)
    T = K.shape[0]
    R = factor_psd(sc.K)
    a = cp.Variable(T)
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(R @ a) + sc.b @ a),
                      [a >= 0, cp.sum(a) == 1])
    used = _solve(cp, prob, a, solver, f"simplex QP (T = {T})")
    x = np.asarray(a.value, dtype=float)
    return ReferenceSolution(x, sc.value(x), prob.status, used)


class ParametricAggregation:
    """AHFDA for a fixed ``T`` and ``mu`` compiled once; :meth:`solve` re-solves for new ``psi``
    (``psi`` and ``mu`` are parameters, set at unit scale for each ``psi``).

    >>> import numpy as np
    >>> agg = ParametricAggregation(3, 1.0)
    >>> round(agg.solve(np.array([1.0, 0.0, 0.0])).value, 6)
    0.666667
    """

    def __init__(self, T: int, mu: float, *, solver: str | None = None) -> None:
        cp = _cp()
        self.T, self.mu = int(T), _check_mu(mu)
        self._psi = cp.Parameter(self.T)
        self._mu = cp.Parameter(nonneg=True)
        self._w = cp.Variable(self.T)
        c = np.full(self.T, 1.0 / self.T)
        obj = self._psi @ self._w - 0.5 * self._mu * cp.sum_squares(self._w - c)
        self._prob = cp.Problem(cp.Maximize(obj), [self._w >= 0, cp.sum(self._w) == 1])
        self._solver = solver or _default_solver(cp)
        self._cp = cp

    def solve(self, psi: Any) -> ReferenceSolution:
        p = _as_vec(psi, "psi")
        if p.size != self.T:
            raise ValueError(f"psi must have length {self.T}, got {p.size}")
        sc = _ScaledAggregation(p, self.mu)
        self._psi.value, self._mu.value = sc.psi, sc.mu
        _solve(self._cp, self._prob, self._w, self._solver,
               f"aggregation (T = {self.T}, mu = {self.mu:g}, compiled)")
        return ReferenceSolution(np.asarray(self._w.value, dtype=float),
                                 sc.back(float(self._prob.value)), self._prob.status,
                                 self._solver)


class ParametricSimplexQP:
    """The simplex QP for a fixed ``T`` compiled once with parameters ``R`` (``K = R^T R``) and
    ``b``; :meth:`solve` re-solves for a new ``K`` (scaled, then factored on the fly) and
    ``b``."""

    def __init__(self, T: int, *, solver: str | None = None) -> None:
        cp = _cp()
        self.T = int(T)
        self._R = cp.Parameter((self.T, self.T))
        self._b = cp.Parameter(self.T)
        self._a = cp.Variable(self.T)
        obj = 0.5 * cp.sum_squares(self._R @ self._a) + self._b @ self._a
        self._prob = cp.Problem(cp.Minimize(obj), [self._a >= 0, cp.sum(self._a) == 1])
        self._solver = solver or _default_solver(cp)
        self._cp = cp

    def solve(self, K: Any, b: Any = None) -> ReferenceSolution:
        sc = _ScaledQP(*_as_qp(K, b, self.T))
        self._R.value = factor_psd(sc.K)
        self._b.value = sc.b
        _solve(self._cp, self._prob, self._a, self._solver,
               f"simplex QP (T = {self.T}, compiled)")
        x = np.asarray(self._a.value, dtype=float)
        return ReferenceSolution(x, sc.value(x), self._prob.status, self._solver)
