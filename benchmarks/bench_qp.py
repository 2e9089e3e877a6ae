"""Benchmark of solve_simplex_qp against daqp and cvxpy, measured in one run.

Prints markdown tables of times and ratios:

1. cold solves, ``active_set`` (default input checks, and ``check_input=False``) against daqp
   called directly (cold) and cvxpy re-solving a compiled problem
   (``reference.ParametricSimplexQP``), with the objective gap to the best of daqp/cvxpy;
2. the training-loop case: a sequence of slightly perturbed ``K``, ``active_set`` warm-started
   from the previous solution against daqp warm-started from the previous active set;
3. the objective gap left by the classic 250-iteration MGDA Frank–Wolfe budget against the
   exact solver, on well- and ill-conditioned ``K``;
4. the MGDA problem (``b = 0``) against the other libraries in one run (``--tables libs``):
   ``solve_simplex_qp`` with NumPy and with torch input against daqp, quadprog (where ``K`` is
   positive definite), cvxpy, TorchJD's ``MGDAWeighting`` (on the same Gramian, its default
   ``epsilon`` and ``max_iters``) and LibMTL's min-norm solver (``MGDA._find_min_norm_element``
   on the factor ``R`` of ``K = R R^T``, in float32, its dtype), at T = 2 ... 1000 on
   well-conditioned, ill-conditioned and rank-deficient Gramians: times, ratios and the relative
   objective error against the best objective any of them found;
5. the small-T part of 4 timed on its own (``--tables small``, not in the default set):
   fairmt (NumPy, torch float64 and float32), daqp and TorchJD's MGDA interleaved round by
   round on the same instances, best of many short rounds, so that a busy machine affects every
   solver alike (``--small-baseline DIR`` adds another version of fairmt, timed alongside).

BLAS is pinned to one thread (set before NumPy is imported): daqp is single-threaded, and for
these sizes threads only add overhead. Run ``python benchmarks/bench_qp.py [--quick]``.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _common import cpu_name  # noqa: E402

from fairmt_opt import solve_simplex_qp  # noqa: E402
from fairmt_opt.qp import _kernel as _qp_kernel  # noqa: E402
from fairmt_opt.reference import ParametricSimplexQP  # noqa: E402


def python_path(K: np.ndarray, b: np.ndarray) -> Any:
    """``active_set`` without the compiled kernel (its pure-Python fallback)."""
    saved = _qp_kernel.KERNEL
    _qp_kernel.KERNEL = None
    try:
        return solve_simplex_qp(K, b)
    finally:
        _qp_kernel.KERNEL = saved


def make_problem(rng: np.random.Generator, T: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """MGDA-like Gram matrices K = R R^T of per-task directions with heterogeneous norms.

    ``gram``: R is T x 2T (full rank), b = 0 (MGDA); ``biased``: the same with a fairness term
    b (as in the head-aware QP); ``singular``: rank T/4 with b != 0; ``ill``: singular values
    of R spread over 1e0..1e-6 (K over 1e0..1e-12), b = 0.
    """
    norms = np.exp(rng.standard_normal(T))[:, None]
    if kind in ("gram", "biased"):
        R = rng.standard_normal((T, 2 * T)) * norms
    elif kind == "singular":
        R = rng.standard_normal((T, max(1, T // 4))) * norms
    elif kind == "ill":
        R = rng.standard_normal((T, T)) * np.logspace(0, -6, T)[None, :] * norms
    else:
        raise ValueError(kind)
    K = R @ R.T
    K = 0.5 * (K + K.T)
    b = np.zeros(T)
    if kind in ("biased", "singular"):
        b = 0.3 * rng.standard_normal(T) * float(np.mean(K.diagonal()))
    return K, b


class Daqp:
    """daqp called directly on min 1/2 x'Kx + b'x s.t. x >= 0, sum x = 1."""

    def __init__(self, T: int) -> None:
        import daqp

        self.daqp = daqp
        self.A = np.ones((1, T))
        self.bu = np.concatenate([np.full(T, 1e30), [1.0]])
        self.bl = np.concatenate([np.zeros(T), [1.0]])
        self.sense = np.concatenate([np.zeros(T), [5]]).astype(np.int32)
        self.n_prox = 0  # calls that needed the proximal re-run

    def solve(self, K: np.ndarray, b: np.ndarray, active: np.ndarray | None = None) -> Any:
        sense = self.sense
        if active is not None:  # warm start: mark the previously active bounds
            sense = sense.copy()
            sense[: K.shape[0]][active] = 1
        x, _, flag, _ = self.daqp.solve(K, b, self.A, self.bu, self.bl, sense)
        if flag < 0:  # singular Hessian: daqp's proximal regularisation (its documented option)
            self.n_prox += 1
            x, _, flag, _ = self.daqp.solve(K, b, self.A, self.bu, self.bl, sense,
                                            eps_prox=1e-6)
        return x, flag


def best_time(fn: Callable[[], Any], repeat: int, number: int) -> float:
    """Best mean time per call over ``repeat`` rounds of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def f(K: np.ndarray, b: np.ndarray, x: np.ndarray) -> float:
    return float(0.5 * x @ K @ x + b @ x)


def f_ext(K: np.ndarray, x: np.ndarray) -> float:
    """``f = x^T K x / 2`` (b = 0) of the float64 data evaluated in extended precision
    (``np.longdouble``, 64-bit mantissa on x86): float64 evaluation has an absolute round-off of
    about ``T eps max|K|``, the size of ``f_best`` itself on the ill-conditioned and
    rank-deficient MGDA instances, where it would dominate the relative error."""
    xl = np.asarray(x, dtype=np.float64).astype(np.longdouble)
    return float(0.5 * (xl @ (K.astype(np.longdouble) @ xl)))


def fmt_us(t: float) -> str:
    return f"{t * 1e6:.0f} µs" if t < 1e-2 else f"{t * 1e3:.1f} ms"


def cold_table(Ts: list[int], kinds: list[str], n_inst: int, repeat: int, n_cvx: int) -> None:
    print("\n### Cold solves\n")
    print("| T | K | active_set | active_set, check_input=False | Python path (no kernel) | "
          "daqp (cold) | cvxpy (compiled) | ratio to daqp | ratio to daqp, no checks | "
          "cvxpy / active_set | max (f_ours − f_best) / s | max (f_daqp − f_ours) / s | "
          "mean nit (Python path) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for T in Ts:
        for kind in kinds:
            rng = np.random.default_rng(1000 * T + len(kind))
            probs = [make_problem(rng, T, kind) for _ in range(n_inst)]
            dq = Daqp(T)
            t_as, t_nc, t_dq, t_py = [], [], [], []
            for K, b in probs:
                t_py.append(best_time(lambda K=K, b=b: python_path(K, b), repeat, 3))
                t_as.append(best_time(lambda K=K, b=b: solve_simplex_qp(K, b), repeat, 3))
                t_nc.append(best_time(
                    lambda K=K, b=b: solve_simplex_qp(K, b, check_input=False), repeat, 3))
                t_dq.append(best_time(lambda K=K, b=b, dq=dq: dq.solve(K, b), repeat, 3))
            cvx = ParametricSimplexQP(T)
            t_cv = []
            worst = worst_dq = 0.0
            nits, nits_py = [], []
            for i, (K, b) in enumerate(probs):
                ours = solve_simplex_qp(K, b)
                nits.append(ours.nit)
                nits_py.append(python_path(K, b).nit)
                xd, _ = dq.solve(K, b)
                xd = np.maximum(xd, 0.0)
                xd /= xd.sum()
                s = max(float(np.abs(K).max()), float(np.abs(b).max()))
                cands = [f(K, b, xd)]
                worst_dq = max(worst_dq, (cands[0] - ours.fun) / s)
                if i < n_cvx:
                    t0 = time.perf_counter()
                    sol = cvx.solve(K, b)
                    t_cv.append(time.perf_counter() - t0)
                    xc = np.maximum(sol.x, 0.0)
                    cands.append(f(K, b, xc / xc.sum()))
                best = min(cands)
                worst = max(worst, (ours.fun - best) / s)
            m_as, m_nc, m_dq, m_py = (statistics.median(v) for v in (t_as, t_nc, t_dq, t_py))
            m_cv = statistics.median(t_cv)
            print(f"| {T} | {kind} | {fmt_us(m_as)} | {fmt_us(m_nc)} | {fmt_us(m_py)} | "
                  f"{fmt_us(m_dq)} | "
                  f"{fmt_us(m_cv)} | {m_as / m_dq:.1f}× | {m_nc / m_dq:.1f}× | "
                  f"{m_cv / m_as:.0f}× | {worst:.1e} | {worst_dq:.1e} | "
                  f"{np.mean(nits):.1f} ({np.mean(nits_py):.1f}) |")


def warm_table(Ts: list[int], kinds: list[str], n_steps: int, repeat: int) -> None:
    print("\n### Warm starts along a sequence of slightly perturbed K (training loop)\n")
    print("| T | K | active_set warm | active_set warm, check_input=False | daqp warm | "
          "daqp cold | ratio warm/daqp warm | ratio no checks/daqp warm | mean nit warm "
          "(cold) | max rel. objective gap to daqp |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for T in Ts:
        for kind in kinds:
            rng = np.random.default_rng(7 * T + len(kind))
            K0, b = make_problem(rng, T, kind)
            R = np.linalg.cholesky(K0 + 1e-12 * np.trace(K0) * np.eye(T))
            seq = []
            for _ in range(n_steps):
                R = R + 1e-3 * np.abs(R).mean() * rng.standard_normal(R.shape)
                K = R @ R.T
                seq.append(0.5 * (K + K.T))
            dq = Daqp(T)
            prev = [solve_simplex_qp(K, b) for K in [K0, *seq[:-1]]]
            prev_active = [p.x == 0 for p in prev]
            t_w, t_wn, t_dw, t_dc, nit_w, nit_c = [], [], [], [], [], []
            worst = 0.0
            for K, p, act in zip(seq, prev, prev_active):
                x_prev = p.x
                t_w.append(best_time(
                    lambda K=K, b=b, x=x_prev: solve_simplex_qp(K, b, warm_start=x), repeat, 3))
                t_wn.append(best_time(lambda K=K, b=b, x=x_prev: solve_simplex_qp(
                    K, b, warm_start=x, check_input=False), repeat, 3))
                t_dw.append(best_time(lambda K=K, b=b, a=act, dq=dq: dq.solve(K, b, a),
                                      repeat, 3))
                t_dc.append(best_time(lambda K=K, b=b, dq=dq: dq.solve(K, b), repeat, 3))
                w = solve_simplex_qp(K, b, warm_start=x_prev)
                nit_w.append(w.nit)
                nit_c.append(solve_simplex_qp(K, b).nit)
                xd, _ = dq.solve(K, b, act)
                xd = np.maximum(xd, 0.0)
                fd = f(K, b, xd / xd.sum())
                worst = max(worst, (w.fun - fd) / max(1.0, abs(fd)))
            m = [statistics.median(v) for v in (t_w, t_wn, t_dw, t_dc)]
            print(f"| {T} | {kind} | {fmt_us(m[0])} | {fmt_us(m[1])} | {fmt_us(m[2])} | "
                  f"{fmt_us(m[3])} | {m[0] / m[2]:.2f}× | {m[1] / m[2]:.2f}× | "
                  f"{np.mean(nit_w):.1f} ({np.mean(nit_c):.1f}) | {worst:.1e} |")


def fw_table(Ts: list[int], n_inst: int) -> None:
    print("\n### What the classic MGDA budget (250 Frank–Wolfe iterations) leaves\n")
    print("| T | K | median f_opt / s | median (f_FW − f_opt) / s | max (f_FW − f_opt) / s | "
          "median (f_FW − f_opt) / f_opt | median FW gap / s | runs reaching tol 1e-8 | time FW | "
          "time active_set |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for T in Ts:
        for kind in ("gram", "ill"):
            rng = np.random.default_rng(31 * T + len(kind))
            rel, relf, fst, relgap, ok, tf, ta = [], [], [], [], 0, [], []
            for _ in range(n_inst):
                K, b = make_problem(rng, T, kind)
                ex = solve_simplex_qp(K, b)
                fw = solve_simplex_qp(K, b, method="frank_wolfe", max_iter=250)
                s = float(np.abs(K).max())
                rel.append((fw.fun - ex.fun) / s)
                relf.append((fw.fun - ex.fun) / max(abs(ex.fun), 1e-300))
                fst.append(ex.fun / s)
                relgap.append(fw.gap / s)
                ok += int(fw.success)
                tf.append(best_time(lambda K=K, b=b: solve_simplex_qp(
                    K, b, method="frank_wolfe", max_iter=250), 1, 1))
                ta.append(best_time(lambda K=K, b=b: solve_simplex_qp(K, b), 1, 3))
            print(f"| {T} | {kind} | {statistics.median(fst):.1e} | "
                  f"{statistics.median(rel):.1e} | {max(rel):.1e} | "
                  f"{statistics.median(relf):.1e} | "
                  f"{statistics.median(relgap):.1e} | {ok}/{n_inst} | "
                  f"{fmt_us(statistics.median(tf))} | {fmt_us(statistics.median(ta))} |")


# ----------------------------------------------------------------------------- other libraries
LIB_KINDS = {"well": "gram", "ill": "ill", "rank": "singular"}  # MGDA: b = 0 in every kind


def make_factor(rng: np.random.Generator, T: int, kind: str) -> np.ndarray:
    """The factor R of the MGDA Gramian K = R R^T of ``make_problem`` (``well``: R is T x 2T;
    ``ill``: the singular values of R over 1e0..1e-6; ``rank``: rank T/4 (at least 1))."""
    norms = np.exp(rng.standard_normal(T))[:, None]
    if kind == "well":
        return rng.standard_normal((T, 2 * T)) * norms
    if kind == "rank":
        return rng.standard_normal((T, max(1, T // 4))) * norms
    return rng.standard_normal((T, T)) * np.logspace(0, -6, T)[None, :] * norms


def _libmtl_min_norm() -> Callable[[Any], Any] | None:
    """LibMTL's min-norm solver (``MGDA._find_min_norm_element``), loaded from its module
    without running the package ``__init__`` (which imports torchvision): the two package
    levels are registered as empty packages first. None when LibMTL is not installed."""
    import importlib
    import importlib.util
    import sys
    import types

    try:
        spec = importlib.util.find_spec("LibMTL")
    except ValueError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = next(iter(spec.submodule_search_locations))
    for name, path in (("LibMTL", root), ("LibMTL.weighting", os.path.join(root, "weighting"))):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [path]
            sys.modules[name] = pkg
    mod = importlib.import_module("LibMTL.weighting.MGDA")
    return mod.MGDA()._find_min_norm_element  # type: ignore[no-any-return]


class Quadprog:
    """quadprog (Goldfarb–Idnani dual method; K must be positive definite)."""

    def __init__(self, T: int) -> None:
        import quadprog

        self.solve_qp = quadprog.solve_qp
        self.C = np.hstack([np.ones((T, 1)), np.eye(T)])
        self.lo = np.concatenate([[1.0], np.zeros(T)])
        self.a = np.zeros(T)

    def solve(self, K: np.ndarray) -> np.ndarray:
        return np.asarray(self.solve_qp(K, self.a, self.C, self.lo, 1)[0])


def adaptive_time(fn: Callable[[], Any], repeat: int, budget: float) -> float:
    """Best mean time per call over ``repeat`` rounds; each round makes as many calls as fit in
    ``budget`` / ``repeat`` seconds (at least one); one call only when the first takes longer
    than ``budget``."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first > budget:
        return first
    number = max(1, int(budget / repeat / max(first, 1e-7)))
    return min(first, best_time(fn, repeat, number))


def _lib_instance(K: np.ndarray, R: np.ndarray, dq: Daqp, qp: Quadprog | None,
                  cvx: ParametricSimplexQP | None, tjd: Any, libmtl: Any, repeat: int,
                  budget: float) -> tuple[dict[str, np.ndarray], dict[str, float], bool]:
    """One instance of table 4: every solver's point and time, and whether ours certifies."""
    import torch

    from fairmt_opt import certify_simplex_qp

    T = K.shape[0]
    b = np.zeros(T)
    Kt = torch.from_numpy(K.copy())
    R32 = torch.from_numpy(R).float()
    xs: dict[str, np.ndarray] = {}
    ts: dict[str, float] = {}
    xs["ours"] = np.asarray(solve_simplex_qp(K).x)
    ok = certify_simplex_qp(K, b, xs["ours"]).ok
    ts["ours"] = adaptive_time(lambda: solve_simplex_qp(K), repeat, budget)
    xs["ours_torch"] = solve_simplex_qp(Kt).x.numpy()
    ts["ours_torch"] = adaptive_time(lambda: solve_simplex_qp(Kt), repeat, budget)
    xs["daqp"] = dq.solve(K, b)[0]
    ts["daqp"] = adaptive_time(lambda: dq.solve(K, b), repeat, budget)
    if qp is not None:
        try:
            xs["quadprog"] = qp.solve(K)
            ts["quadprog"] = adaptive_time(lambda: qp.solve(K), repeat, budget)
        except ValueError:  # "matrix G is not positive definite"
            pass
    if cvx is not None:
        t0 = time.perf_counter()
        xs["cvxpy"] = np.asarray(cvx.solve(K, b).x)
        ts["cvxpy"] = time.perf_counter() - t0
    with torch.no_grad():
        xs["torchjd"] = tjd(Kt).numpy()
        ts["torchjd"] = adaptive_time(lambda: tjd(Kt), repeat, budget)
        if libmtl is not None:
            xs["libmtl"] = libmtl(R32).double().numpy()
            ts["libmtl"] = adaptive_time(lambda: libmtl(R32), repeat, budget)
    return xs, ts, ok


def _lib_row(T: int, kind: str, names: list[str], times: dict[str, list[float]],
             errs: dict[str, list[float]]) -> str:
    """A row of table 4 (without its last cell): median times, ratios, max errors."""
    med = {n: statistics.median(v) if v else None for n, v in times.items()}

    def ratio(a: str, c: str) -> str:
        va, vc = med[a], med[c]
        return "—" if va is None or vc is None else f"{va / vc:.2f}×"

    cells = ["—" if med[n] is None else fmt_us(med[n]) for n in names]  # type: ignore[arg-type]
    cells += [ratio("ours", "daqp"), ratio("ours_torch", "daqp"), ratio("torchjd", "ours"),
              ratio("libmtl", "ours")]
    cells += [f"{max(errs[n]):.1e}" if errs[n] else "—"
              for n in ("ours", "daqp", "quadprog", "cvxpy", "torchjd", "libmtl")]
    return f"| {T} | {kind} | " + " | ".join(cells)


def libs_table(Ts: list[int], n_inst: int, repeat: int, budget: float, cvx_max: dict[int, int],
               libmtl_max_T: int) -> None:
    """Table 4: the MGDA problem against the other libraries (see the module docstring);
    ``cvx_max``: at these T, cvxpy and LibMTL run on the first instances only."""
    import torch
    from torchjd.aggregation import MGDAWeighting

    torch.set_num_threads(1)
    libmtl = _libmtl_min_norm()
    tjd = MGDAWeighting()
    names = ["ours", "ours_torch", "daqp", "quadprog", "cvxpy", "torchjd", "libmtl"]
    print("\n### MGDA (b = 0) against the other libraries\n")
    print("Times: median over the instances of the best mean time per call. Error: max over the "
          "instances of (f − f_best) / max(f_best, 1e-15 s), f_best the smallest objective any "
          "solver reached on that instance (points renormalised onto the simplex first; f "
          "evaluated in extended precision), s = max|K|; min f_best / s: the smallest f_best "
          "over the instances (below about 1e-15 the relative error reads differences far "
          "below the round-off eps s of the data). — : not run (see the notes printed below "
          "the table).\n")
    print("| T | K | fairmt (NumPy) | fairmt (torch) | daqp | quadprog | cvxpy | TorchJD MGDA | "
          "LibMTL min-norm | fairmt / daqp | fairmt torch / daqp | TorchJD / fairmt | "
          "LibMTL / fairmt | error fairmt | error daqp | error quadprog | error cvxpy | "
          "error TorchJD | error LibMTL | min f_best / s | certified |")
    print("|" + "---|" * 21)
    notes: list[str] = []
    for T in Ts:
        for kind in LIB_KINDS:
            rng = np.random.default_rng(100 * T + len(kind))
            times: dict[str, list[float]] = {n: [] for n in names}
            errs: dict[str, list[float]] = {n: [] for n in names}
            certified = 0
            fbest: list[float] = []
            dq = Daqp(T)
            qp = Quadprog(T)
            cvx = ParametricSimplexQP(T) if cvx_max.get(T, n_inst) > 0 else None
            n_qp_fail = 0
            for i in range(n_inst):
                R = make_factor(rng, T, kind)
                K = R @ R.T
                K = 0.5 * (K + K.T)
                s = float(np.abs(K).max())
                run_cvx = cvx if i < cvx_max.get(T, n_inst) else None
                xs, ts, ok = _lib_instance(K, R, dq, qp if kind != "rank" else None, run_cvx,
                                           tjd, libmtl if 2 <= T <= libmtl_max_T
                                           and i < cvx_max.get(T, n_inst) else None,
                                           repeat, budget)
                certified += int(ok)
                n_qp_fail += int(kind != "rank" and "quadprog" not in xs)
                for n, t in ts.items():
                    times[n].append(t)
                fs = {}
                for n, x in xs.items():
                    x = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
                    fs[n] = f_ext(K, x / x.sum())
                best = min(fs.values())
                fbest.append(best / s)
                for n, v in fs.items():
                    errs[n].append((v - best) / max(best, 1e-15 * s))
            if n_qp_fail:
                notes.append(f"T = {T} {kind}: quadprog refused {n_qp_fail} of {n_inst} "
                             f"instances (not positive definite to its test)")
            if dq.n_prox:
                notes.append(f"T = {T} {kind}: daqp reported a singular Hessian on "
                             f"{dq.n_prox} calls and was re-run with eps_prox = 1e-6")
            print(_lib_row(T, kind, names, times, errs)
                  + f" | {min(fbest):.1e} | {certified}/{n_inst} |", flush=True)
    if libmtl is None:
        notes.append("LibMTL is not installed: its column is empty")
    elif libmtl_max_T < max(Ts):
        notes.append(f"LibMTL run up to T = {libmtl_max_T} only (its pairwise start is "
                     f"O(T^2) Python loops: 40 s to 270 s per call at T = 1000 in a full run)")
    cv = {T: n for T, n in cvx_max.items() if n < n_inst}
    if cv:
        notes.append("cvxpy and LibMTL on fewer instances (their times and errors are over "
                     "those): " + ", ".join(f"T = {T}: {n}" for T, n in sorted(cv.items())))
    for line in notes:
        print(f"- {line}")


def load_baseline(root: str) -> Any:
    """``solve_simplex_qp`` of another copy of the package (the directory ``root`` holding its
    ``fairmt_opt`` folder, e.g. an older commit's tree with its built kernel), imported under
    another name so that both versions are timed in the same process."""
    import importlib.util
    import sys

    pkg = os.path.join(root, "fairmt_opt")
    spec = importlib.util.spec_from_file_location(
        "fairmt_opt_baseline", os.path.join(pkg, "__init__.py"),
        submodule_search_locations=[pkg])
    if spec is None or spec.loader is None:
        raise SystemExit(f"no fairmt_opt package under {root}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    if mod.qp._kernel.KERNEL is None:
        print(f"baseline kernel NOT used ({mod.qp._kernel.LOAD_ERROR})")
    return mod.solve_simplex_qp


def small_table(Ts: list[int], n_inst: int, rounds: int, round_s: float,
                baseline: Callable[..., Any] | None = None) -> None:
    """Table 5 (``--tables small``): the small-T MGDA solves of table 4 timed alone, interleaved.

    For each instance (the first ``n_inst`` instances of table 4, same seeds), ``rounds`` rounds;
    in each round every solver (fairmt with NumPy, torch float64 and torch float32 input,
    daqp, TorchJD's ``MGDAWeighting``, and, with ``baseline``, the same three fairmt calls of
    another version of the package) makes as many calls as fit in about ``round_s`` seconds
    (calibrated once, at least one), one solver after the other, so that all of them see the
    same load; each solver's figure is its best mean time per call over the rounds. Ratios are
    per instance (both sides from the same rounds), then the median and range over the
    instances. The float32 input is the float64 Gramian rounded to float32.
    """
    import torch
    from torchjd.aggregation import MGDAWeighting

    torch.set_num_threads(1)
    tjd = MGDAWeighting()
    names = ["ours", "torch", "t32", "daqp", "tjd"]
    if baseline is not None:
        names += ["b_ours", "b_torch", "b_t32"]
    print(f"\n### Small T, interleaved: best of {rounds} rounds of about {round_s * 1e3:.1f} ms "
          f"per solver, {n_inst} instance(s) per row\n")
    head = ("| T | K | fairmt (NumPy) | fairmt (torch) | fairmt (torch f32) | daqp | "
            "TorchJD MGDA | fairmt / daqp | fairmt torch / daqp | fairmt torch f32 / daqp | "
            "TorchJD / fairmt |")
    if baseline is not None:
        head += " baseline / daqp | baseline torch / daqp | baseline torch f32 / daqp |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for T in Ts:
        for kind in LIB_KINDS:
            rng = np.random.default_rng(100 * T + len(kind))  # the seeds of table 4
            dq = Daqp(T)
            best: dict[str, list[float]] = {n: [] for n in names}
            for _ in range(n_inst):
                R = make_factor(rng, T, kind)
                K = R @ R.T
                K = 0.5 * (K + K.T)
                b = np.zeros(T)
                Kt = torch.from_numpy(K.copy())
                K32 = Kt.float()

                def tjd_call(Kt: Any = Kt) -> Any:
                    with torch.no_grad():
                        return tjd(Kt)

                fns: dict[str, Callable[[], Any]] = {
                    "ours": lambda K=K: solve_simplex_qp(K),
                    "torch": lambda Kt=Kt: solve_simplex_qp(Kt),
                    "t32": lambda K32=K32: solve_simplex_qp(K32),
                    "daqp": lambda K=K, b=b, dq=dq: dq.solve(K, b),
                    "tjd": tjd_call,
                }
                if baseline is not None:
                    fns["b_ours"] = lambda K=K, f=baseline: f(K)
                    fns["b_torch"] = lambda Kt=Kt, f=baseline: f(Kt)
                    fns["b_t32"] = lambda K32=K32, f=baseline: f(K32)
                number = {}
                for n, fn in fns.items():  # calibrate: calls per round
                    one = best_time(fn, 3, 1)
                    number[n] = max(1, int(round_s / max(one, 1e-7)))
                t = dict.fromkeys(fns, float("inf"))
                for _ in range(rounds):
                    for n, fn in fns.items():
                        t[n] = min(t[n], best_time(fn, 1, number[n]))
                for n in fns:
                    best[n].append(t[n])

            def cell(a: str, c: str, best: dict[str, list[float]] = best) -> str:
                r = [x / y for x, y in zip(best[a], best[c])]
                med = statistics.median(r)
                return (f"{med:.2f}×" if len(r) == 1
                        else f"{med:.2f}× ({min(r):.2f}–{max(r):.2f})")

            meds = [statistics.median(best[n]) for n in ("ours", "torch", "t32", "daqp", "tjd")]
            times = [f"{m * 1e6:.1f} µs" if m < 1e-4 else fmt_us(m) for m in meds]
            row = (f"| {T} | {kind} | " + " | ".join(times) + f" | {cell('ours', 'daqp')} | "
                   f"{cell('torch', 'daqp')} | {cell('t32', 'daqp')} | {cell('tjd', 'ours')} |")
            if baseline is not None:
                row += (f" {cell('b_ours', 'daqp')} | {cell('b_torch', 'daqp')} | "
                        f"{cell('b_t32', 'daqp')} |")
            print(row, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="few instances and repeats")
    ap.add_argument("--T", type=int, nargs="+", default=[10, 40, 100], help="problem sizes")
    ap.add_argument("--tables", nargs="+", default=["cold", "warm", "fw", "libs"],
                    choices=["cold", "warm", "fw", "libs", "small"],
                    help="which tables to print (small: not in the default set)")
    ap.add_argument("--libs-T", type=int, nargs="+", default=[2, 5, 10, 40, 100, 300, 1000],
                    help="problem sizes of the table against the other libraries")
    ap.add_argument("--small-T", type=int, nargs="+", default=[2, 5, 10, 40, 100],
                    help="problem sizes of the small-T table")
    ap.add_argument("--small-rounds", type=int, default=200,
                    help="rounds of the small-T table (best of them is kept)")
    ap.add_argument("--small-inst", type=int, default=None,
                    help="instances per row of the small-T table (default 1 with --quick, else 3)")
    ap.add_argument("--small-baseline", default=None, metavar="DIR",
                    help="also time, in the small-T table, the fairmt_opt package under DIR "
                         "(another version's tree, with its built kernel)")
    args = ap.parse_args()
    Ts = args.T
    if args.quick:
        n_inst, repeat, n_cvx, n_steps, n_fw = 3, 2, 2, 4, 3
    else:
        n_inst, repeat, n_cvx, n_steps, n_fw = 15, 5, 8, 20, 10
    print(f"Machine: {cpu_name()}, {os.cpu_count()} cores; NumPy {np.__version__}; "
          f"BLAS threads pinned to 1; s = max(max|K|, max|b|) is the data scale")
    kern = "loaded" if _qp_kernel.KERNEL is not None else f"NOT used ({_qp_kernel.LOAD_ERROR})"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"Compiled active-set kernel: {kern}; load average at start: {load}")
    kinds = ["gram", "biased", "singular", "ill"]
    if "cold" in args.tables:
        cold_table(Ts, kinds, n_inst, repeat, n_cvx)
    if "warm" in args.tables:
        warm_table(Ts, kinds, n_steps, repeat)
    if "fw" in args.tables:
        fw_table(Ts, n_fw)
    if "libs" in args.tables:
        big = {T: (0 if args.quick else 1) for T in args.libs_T if T >= 1000}
        big.update({T: 1 for T in args.libs_T if 300 <= T < 1000})
        if args.quick:
            libs_table(args.libs_T, 1, 2, 0.02, big, 40)
        else:  # many short rounds: the best of them is the least disturbed by other load
            libs_table(args.libs_T, 3, 20, 0.2, big, 1000)
    if "small" in args.tables:
        n_small = args.small_inst if args.small_inst is not None else (1 if args.quick else 3)
        if n_small < 1 or args.small_rounds < 1:
            ap.error("--small-inst and --small-rounds must be at least 1")
        base = None if args.small_baseline is None else load_baseline(args.small_baseline)
        small_table(args.small_T, n_small, args.small_rounds, 1e-3, base)
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
