r"""The QP part of :class:`~fairmt_opt.torch.FairMT`: the task weights
:math:`\alpha = \arg\min_{\alpha \in \Delta} \tfrac12 \alpha^\top K \alpha + b^\top \alpha` over
the present tasks, by :func:`fairmt_opt.solve_simplex_qp`, warm-started from the previous step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..qp import QPMethod, solve_simplex_qp

__all__ = ["QPSolver", "WarmStart"]

_HOST = ("active_set", "frank_wolfe", "away", "pairwise", "cvxpy", "daqp", "proxsuite")
_METHODS = (*_HOST, "apg")


@dataclass
class WarmStart:
    """The solvers' warm starts (part of the state of :class:`FairMT`): ``host`` the present
    set and the float64 solution of the last host solve, ``apg`` the last APG iterate (on the
    device)."""

    host: tuple[tuple[int, ...], np.ndarray] | None = None
    apg: torch.Tensor | None = None


class QPSolver:
    r"""Solve the simplex QP of one step over the present tasks (absent tasks get 0).

    Parameters
    ----------
    method : str
        Any method of :func:`fairmt_opt.solve_simplex_qp` [choice: ``"active_set"``, exact].
        Host methods copy the ``T × T`` data to the host once per step; ``"apg"`` stays on
        the device with no host synchronisation.
    tol, max_iter : optional
        Passed to the solver.
    warm_start : bool
        Start from the previous step's solution (host methods: when the set of present tasks
        is unchanged).
    certify : bool, optional
        Keep the data to certify the solution (on first access of the record's
        ``certificate``); default: for host methods.

    Examples
    --------
    >>> import torch
    >>> qp = QPSolver()
    >>> alpha, res, _ = qp.solve(torch.eye(3, dtype=torch.float64), torch.zeros(3,
    ...                          dtype=torch.float64), torch.tensor([True, True, False]),
    ...                          WarmStart(), check=True)
    >>> alpha.tolist()
    [0.5, 0.5, 0.0]
    """

    def __init__(self, method: QPMethod = "active_set", *, tol: float | None = None,
                 max_iter: int | None = None, warm_start: bool = True,
                 certify: bool | None = None) -> None:
        if method not in _METHODS:
            raise ValueError(f"qp method must be one of {_METHODS}, got {method!r}")
        self.method: QPMethod = method
        self.options: dict[str, Any] = {}
        if tol is not None:
            self.options["tol"] = tol
        if max_iter is not None:
            self.options["max_iter"] = max_iter
        self.warm_start = bool(warm_start)
        self.certify = (method in _HOST) if certify is None else bool(certify)

    @property
    def host(self) -> bool:
        """Whether the solver runs on the host (every method but ``apg``)."""
        return self.method in _HOST

    def solve(self, K: torch.Tensor, b: torch.Tensor, present: torch.Tensor, warm: WarmStart,
              *, check: bool) -> tuple[torch.Tensor, Any, Any]:
        """``(alpha, result, certificate data)``; updates ``warm`` in place."""
        if self.method == "apg":
            return self._apg(K, b, present, warm, check)
        if K.device.type == "cpu" and K.dtype == torch.float64:
            Kh, bh, ph = K.detach().numpy(), b.detach().numpy(), present.numpy()
        else:
            T = K.shape[0]
            packed = torch.cat([K, b[:, None], present.to(K.dtype)[:, None]], 1)
            host = packed.detach().to("cpu", torch.float64).numpy()  # the one copy to the host
            Kh, bh, ph = host[:, :T], host[:, T], host[:, T + 1] > 0.5
        alpha, res, cert = self._host(Kh, bh, ph, warm, check)
        return torch.as_tensor(alpha, dtype=K.dtype).to(K.device), res, cert

    def _host(self, K: np.ndarray, b: np.ndarray, present: np.ndarray, warm: WarmStart,
              check: bool) -> tuple[np.ndarray, Any, Any]:
        T = K.shape[0]
        idx = tuple(int(i) for i in np.flatnonzero(present))
        alpha = np.zeros(T)
        if len(idx) == 1:
            alpha[idx[0]] = 1.0
        if len(idx) <= 1:
            return alpha, None, None
        sel = list(idx)
        Kp, bp = (K, b) if len(idx) == T else (K[np.ix_(sel, sel)], b[sel])
        Kp = 0.5 * (Kp + Kp.T)
        kw = dict(self.options)
        if self.warm_start and warm.host is not None and warm.host[0] == idx:
            kw["warm_start"] = warm.host[1]
        res = solve_simplex_qp(Kp, bp, method=self.method, check_input=check, **kw)
        ap = np.asarray(res.x, dtype=np.float64)
        alpha[sel] = ap
        if self.warm_start:
            warm.host = (idx, ap.copy())
        return alpha, res, ((Kp, bp, ap) if self.certify else None)

    def _apg(self, K: torch.Tensor, b: torch.Tensor, present: torch.Tensor, warm: WarmStart,
             check: bool) -> tuple[torch.Tensor, Any, Any]:
        # absent tasks: zero rows of K (their directions vanish) and a cost that keeps them
        # out of the solution, all on the device
        big = 1.0 + K.abs().max() + b.abs().max()
        bb = torch.where(present, b, big)
        kw = dict(self.options)
        if self.warm_start and warm.apg is not None:
            kw["warm_start"] = warm.apg
        res = solve_simplex_qp(K, bb, method="apg", check_input=check, **kw)
        x = torch.as_tensor(res.x).to(device=K.device, dtype=K.dtype)
        x = x * present.to(x.dtype)
        x = x / x.sum().clamp(min=torch.finfo(x.dtype).tiny)
        if self.warm_start:
            warm.apg = x.detach()
        cert = (K.detach(), bb.detach(), x.detach()) if self.certify else None
        return x, res, cert

    def config(self) -> dict[str, Any]:
        return {"qp_method": self.method, **self.options, "warm_start": self.warm_start}

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"QPSolver(method={self.method!r}{opts}, warm_start={self.warm_start})"
