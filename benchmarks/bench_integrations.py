r"""Benchmark: the TorchJD adapter's exact MGDA weights against TorchJD's and LibMTL's MGDA.

On the same Gramians :math:`G = JJ^\top` (float32, the dtype these libraries train in) of
random Jacobians :math:`J` of :math:`T` rows and :math:`n` columns (entries
:math:`\mathcal N(0.5, 1)`: positively correlated task gradients; :math:`n = 2T`, full rank,
and :math:`n = T/2`, singular :math:`G`), three solvers of
:math:`\min_{\alpha\in\Delta}\tfrac12\alpha^\top G\alpha`:

* ``ExactMGDAWeighting`` (``fairmt_opt.integrations.torchjd``: the active-set solve);
* TorchJD's ``MGDAWeighting`` with its defaults (Frank–Wolfe, ``epsilon=1e-3``,
  ``max_iters=100``);
* LibMTL's ``MGDA._find_min_norm_element`` (the solver its weighting calls; it takes the
  gradients :math:`J` and forms :math:`G` itself; float32 only).

For each the table reports the time per call and the objective error relative to the data
scale, :math:`(f(\alpha) - f^\star)/\max_{ij}|G_{ij}|` (the scale of the certificates;
:math:`f^\star` itself is 0 or nearly so when :math:`0` is in the convex hull of the rows, as
for some singular :math:`G`), with :math:`f(\alpha) = \tfrac12\alpha^\top G_{64}\alpha`,
:math:`G_{64}` the float64 Gramian of the same float32 :math:`J`, and :math:`f^\star` the
value of the float64 active-set solve of :math:`G_{64}`, certified by ``certify_simplex_qp``
(the script stops if it does not certify). The float32 rounding of :math:`G` alone moves the
objective by up to about :math:`10^{-7}` of the scale, so errors of that size (of either sign)
are round-off. The time ratios are against ``ExactMGDAWeighting`` timed in the same run; the three
alternate round by round and the table keeps each one's best round (as ``timeit`` does).

Usage::

    python benchmarks/bench_integrations.py           # full run
    python benchmarks/bench_integrations.py --quick   # fewer rounds

Needs the extras ``fairmt_opt[torchjd]`` and ``fairmt_opt[libmtl]``.
"""

from __future__ import annotations

import argparse
import importlib
import os
from importlib.metadata import version

import numpy as np
import torch
from _common import cpu_name
from bench_aggregation import interleaved

import fairmt_opt as fo

# the LibMTL adapter first: without torchvision it makes LibMTL's submodules importable
importlib.import_module("fairmt_opt.integrations.libmtl")
from LibMTL.weighting import MGDA as LibMTLMGDA  # noqa: E402
from torchjd.aggregation import MGDAWeighting  # noqa: E402

from fairmt_opt.integrations.torchjd import ExactMGDAWeighting  # noqa: E402

N_INST = 4  # instances per row, used in rotation by the timed calls


def instances(T: int, n: int) -> list[tuple[torch.Tensor, torch.Tensor, np.ndarray, float]]:
    """(J float32, G float32, G64, f*) for ``N_INST`` seeded Jacobians of shape (T, n)."""
    out = []
    for seed in range(N_INST):
        g = torch.Generator().manual_seed(1000 * T + 10 * n + seed)
        J = (torch.randn(T, n, generator=g, dtype=torch.float64) + 0.5).float()
        G64 = (J.double() @ J.double().T).numpy()
        ref = fo.solve_simplex_qp(G64)
        cert = fo.certify_simplex_qp(G64, None, ref.x, rtol=1e-12)
        if not (ref.success and cert.ok):
            raise SystemExit(f"the float64 reference did not certify at T={T}, n={n}: {cert}")
        out.append((J, J @ J.T, G64, float(ref.fun)))
    return out


def rel_error(w: torch.Tensor, G64: np.ndarray, fstar: float) -> float:
    """(f(w) - f*) / max|G64|, f evaluated in float64."""
    x = w.detach().double().numpy()
    return (0.5 * float(x @ G64 @ x) - fstar) / float(np.abs(G64).max())


def bench(quick: bool) -> list[str]:
    exact, torchjd, libmtl = ExactMGDAWeighting(), MGDAWeighting(), LibMTLMGDA()
    rounds = 2 if quick else 7
    rows = [
        "| T | n | ExactMGDA (ms) | TorchJD MGDA (ms) | LibMTL MGDA (ms) | TorchJD / ours "
        "| LibMTL / ours | error ours | error TorchJD | error LibMTL |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for T in (3, 10, 30, 100):
        for n in (2 * T, max(2, T // 2)):
            data = instances(T, n)
            solvers = {
                "ours": lambda i, d=data: exact(d[i % N_INST][1]),
                "torchjd": lambda i, d=data: torchjd(d[i % N_INST][1]),
                "libmtl": lambda i, d=data: libmtl._find_min_norm_element(d[i % N_INST][0]),
            }
            calls = {"ours": 400, "torchjd": 20, "libmtl": N_INST}
            t = interleaved({k: (fn, calls[k]) for k, fn in solvers.items()}, rounds)
            err = {k: max((rel_error(fn(i), d[2], d[3]) for i, d in enumerate(data)), key=abs)
                   for k, fn in solvers.items()}
            rows.append(
                f"| {T} | {n} | {t['ours'] * 1e3:.2f} | {t['torchjd'] * 1e3:.2f} | "
                f"{t['libmtl'] * 1e3:.1f} | {t['torchjd'] / t['ours']:.0f}x | "
                f"{t['libmtl'] / t['ours']:.0f}x | {err['ours']:.1e} | {err['torchjd']:.1e} | "
                f"{err['libmtl']:.1e} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a short run)")
    args = parser.parse_args()
    print(f"Machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, "
          f"torchjd {version('torchjd')}, LibMTL {version('LibMTL')}, "
          f"{torch.get_num_threads()} torch threads")
    print()
    print(f"min over the simplex of (1/2) a^T G a, G = J J^T float32, J of shape T x n; "
          f"time per call (best of the rounds, {N_INST} instances in rotation); objective "
          "error (f - f*) / max|G| against the certified float64 solve, the largest in "
          "modulus over the instances:")
    print()
    print("\n".join(bench(args.quick)))


if __name__ == "__main__":
    main()
