"""Study ``qp``: accuracy against time of the simplex QP solvers (SPEC §7)."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import numpy as np

from ..plots import new_figure
from ..qp._solve import solve_simplex_qp
from ._common import StudyConfig, StudyResult, StudyWriter, markdown_table, progress

__all__ = ["run_qp"]

#: label -> (solve_simplex_qp method, options)
SOLVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "active_set": ("active_set", {}),
    "mgda_fw250": ("frank_wolfe", {"max_iter": 250, "tol": 0.0}),
    "apg": ("apg", {}),
    "cvxpy": ("cvxpy", {}),
    "daqp": ("daqp", {}),
}


def make_problem(T: int, conditioning: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    r"""A seeded simplex QP: ``well``: :math:`K = RR^\top` with :math:`R \in \mathbb
    R^{T\times 2T}` Gaussian / :math:`\sqrt{2T}` (eigenvalues in about [0.09, 2.9]);
    ``b`` Gaussian with standard deviation 0.5; ``ill``: :math:`K = Q\,\mathrm{diag}
    (10^{0..-10})Q^\top` (condition number 1e10, nearly singular) and :math:`b = -K a_0 +
    10^{-3}\xi` for a Dirichlet(1) point :math:`a_0` (an interior solution)."""
    rng = np.random.default_rng(seed * 1000 + T)
    if conditioning == "well":
        R = rng.standard_normal((T, 2 * T)) / np.sqrt(2 * T)
        K = 0.5 * (R @ R.T + (R @ R.T).T)
        return K, 0.5 * rng.standard_normal(T)
    Q, _ = np.linalg.qr(rng.standard_normal((T, T)))
    K = (Q * np.logspace(0, -10, T)) @ Q.T
    K = 0.5 * (K + K.T)
    # an interior target: b = -K a0 + small noise puts the solution near a0 in the simplex,
    # where the tiny eigenvalues of K make the problem hard
    a0 = rng.dirichlet(np.ones(T))
    return K, -K @ a0 + 1e-3 * rng.standard_normal(T)


def _measures(K: np.ndarray, b: np.ndarray, x: np.ndarray) -> dict[str, float]:
    g = K @ x + b
    return {
        "objective": float(0.5 * x @ K @ x + b @ x),
        "fw_gap": float(x @ g - g.min()),
        "infeasibility": float(max(abs(x.sum() - 1.0), max(0.0, -float(x.min())))),
    }


def run_qp(config: StudyConfig) -> StudyResult:
    r"""Accuracy against time for :math:`\min_{\alpha\in\Delta}\tfrac12\alpha^\top K\alpha +
    b^\top\alpha`: the exact active set, the 250-iteration MGDA Frank–Wolfe, APG, cvxpy and
    daqp (when installed), on well- and ill-conditioned :math:`K`, :math:`T` from 2 to 500.

    Accuracy (deterministic, in ``results.csv``): the Frank–Wolfe gap of the returned point
    (an upper bound on its suboptimality when feasible), its infeasibility, and
    ``objective - best``, the excess over the lowest objective any solver reached on the
    instance. Time (``timings.csv``): the median wall-clock of repeated solves.
    """
    names = list(config.methods or SOLVERS)
    bad = [m for m in names if m not in SOLVERS]
    if bad:
        raise ValueError(f"methods of the qp study must be among {list(SOLVERS)}, got {bad}")
    skipped = []
    for name, module in (("cvxpy", "cvxpy"), ("daqp", "daqp")):
        if name in names and importlib.util.find_spec(module) is None:
            names.remove(name)
            skipped.append(name)
    Ts = (2, 10, 40) if config.quick else (2, 5, 20, 100, 500)
    conds = ("well", "ill")
    repeats = 3 if config.quick else 5
    w = StudyWriter(config, {"Ts": Ts, "conditionings": conds, "repeats": repeats,
                             "solvers": {n: SOLVERS[n] for n in names}, "skipped": skipped})
    points: list[tuple[str, str, int, float, float]] = []
    jobs = [(s, c, T) for s in range(config.seeds) for c in conds for T in Ts]
    for seed, cond, T in progress(jobs, desc="qp"):
        K, b = make_problem(T, cond, seed)
        inst = f"{cond},T={T}"
        found: dict[str, dict[str, float]] = {}
        for name in names:
            method, opts = SOLVERS[name]
            times: list[float] = []
            res = None
            while len(times) < repeats and (not times or sum(times) < 0.2):
                t0 = time.perf_counter()  # repeat (up to `repeats`) only the fast solves
                res = solve_simplex_qp(K, b, method=method, **opts)  # type: ignore[arg-type]
                times.append(time.perf_counter() - t0)
            assert res is not None
            found[name] = _measures(K, b, np.asarray(res.x, dtype=np.float64))
            found[name]["iterations"] = float(res.nit)
            w.timing(name, seed, inst, "time_s", float(np.median(times)))
            found[name]["_time"] = float(np.median(times))
        best = min(v["objective"] for v in found.values())
        for name, v in found.items():
            for metric in ("fw_gap", "infeasibility", "objective", "iterations"):
                w.result(name, seed, "-", inst, metric, v[metric])
            w.result(name, seed, "-", inst, "excess_objective", v["objective"] - best)
            points.append((name, cond, T, v["_time"], max(v["fw_gap"], v["infeasibility"])))
    # ---- figures
    fig, axes = new_figure(1, 2, width=5.0, height=3.8)
    markers = dict(zip(SOLVERS, "osD^v"))
    for j, cond in enumerate(conds):
        ax = axes[0, j]
        for i, name in enumerate(names):
            pts = [(t, a, T) for n, c, T, t, a in points if n == name and c == cond]
            ax.loglog([p[0] for p in pts], [max(p[1], 1e-17) for p in pts], markers[name],
                      color=f"C{i}", label=name, alpha=0.8)
        ax.set_xlabel("wall-clock time per solve (s)")
        ax.set_ylabel("max(FW gap, infeasibility)")
        ax.set_title(f"{cond}-conditioned K, T in {list(Ts)}", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    w.figure(fig, "qp_accuracy_time.png",
             "Accuracy against time of each solver (one point per instance and seed)")
    fig, axes = new_figure(1, 2, width=5.0, height=3.8)
    for j, cond in enumerate(conds):
        ax = axes[0, j]
        for i, name in enumerate(names):
            by_T = [float(np.median([t for n, c, TT, t, _ in points
                                     if n == name and c == cond and TT == T])) for T in Ts]
            ax.loglog(Ts, by_T, "-" + markers[name], color=f"C{i}", label=name)
        ax.set_xlabel("T")
        ax.set_ylabel("median time (s)")
        ax.set_title(f"{cond}-conditioned K", fontsize=9)
    axes[0, 0].legend(fontsize=7)
    w.figure(fig, "qp_time_vs_T.png", "Median solve time against the number of tasks T")
    rows = []
    for name in names:
        acc = [a for n, _, _, _, a in points if n == name]
        tm = [t for n, _, _, t, _ in points if n == name]
        rows.append([name, float(np.median(acc)), float(np.max(acc)), float(np.median(tm))])
    w.section("## Accuracy and time over all instances\n\n" + markdown_table(
        ["solver", "median max(gap, infeas.)", "worst max(gap, infeas.)", "median time (s)"],
        rows) + ("\nNot installed, skipped: " + ", ".join(skipped) + "\n" if skipped else ""))
    worst = {r[0]: r[2] for r in rows}
    fast = {r[0]: r[3] for r in rows}
    parts = []
    if "active_set" in worst:
        parts.append(f"The exact active set reached a worst certificate of "
                     f"{worst['active_set']:.2g} (max of FW gap and infeasibility) with a "
                     f"median time of {fast['active_set']:.2g} s.")
    if "mgda_fw250" in worst:
        by_cond = {c: max(a for n, cc, _, _, a in points if n == "mgda_fw250" and cc == c)
                   for c in conds}
        parts.append(f"The 250-iteration MGDA Frank–Wolfe is budgeted, not exact: its worst "
                     f"gap was {by_cond['well']:.2g} on well-conditioned and "
                     f"{by_cond['ill']:.2g} on ill-conditioned K.")
    others = [f"{n}: worst {worst[n]:.2g}, median {fast[n]:.2g} s" for n in names
              if n not in ("active_set", "mgda_fw250")]
    if others:
        parts.append("Others — " + "; ".join(others) + ".")
    parts.append("Timings are wall-clock on this machine (timings.csv) and vary between runs.")
    return w.finish("Study: simplex QP solvers, accuracy against time", " ".join(parts))
