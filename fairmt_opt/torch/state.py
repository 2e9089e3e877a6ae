r"""The state of :class:`~fairmt_opt.torch.FairMT`: everything that changes between steps, in
one place, with an exact ``state_dict`` round trip (only tensors, numbers, strings, lists,
dicts and ``None``, so ``torch.load(weights_only=True)`` reads it)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..dual import DualAscent
from ..fairness import RunningScale
from .qp import WarmStart

__all__ = ["FairMTState"]


def _fail(key: str, why: str) -> ValueError:
    return ValueError(f"FairMT state: {key!r} {why}")


@dataclass
class FairMTState:
    """What changes between steps.

    Attributes
    ----------
    dual : DualAscent or None
        The multiplier :math:`\\eta`, its running mean and step count (``None``:
        unconstrained, :math:`\\eta = 0`).
    warm : WarmStart
        The QP solvers' warm starts.
    scales : list of RunningScale or None
        The running scales of the violations, one per task.
    num_steps : int
        Primal steps taken.
    """

    dual: DualAscent | None
    warm: WarmStart = field(default_factory=WarmStart)
    scales: list[RunningScale] | None = None
    num_steps: int = 0

    def state_dict(self) -> dict[str, Any]:
        """A copy of the state (tensors, numbers, lists, dicts, ``None``)."""
        host = None
        if self.warm.host is not None:
            idx, x = self.warm.host
            host = {"present": list(idx), "x": torch.from_numpy(np.array(x, dtype=np.float64))}
        return {
            "dual": None if self.dual is None else self.dual.state_dict(),
            "warm_host": host,
            "warm_apg": None if self.warm.apg is None else self.warm.apg.detach().clone(),
            "scales": None if self.scales is None else [s.state_dict() for s in self.scales],
            "num_steps": self.num_steps,
        }

    def load_state_dict(self, state: Mapping[str, Any], *, num_tasks: int) -> None:
        """Restore :meth:`state_dict`; everything is checked before anything is assigned
        (``ValueError`` naming the key)."""
        if not isinstance(state, Mapping):
            raise ValueError(f"FairMT state must be a dict, got {type(state).__name__}")
        want = {"dual", "warm_host", "warm_apg", "scales", "num_steps"}
        missing, extra = sorted(want - set(state)), sorted(set(state) - want)
        if missing or extra:
            raise ValueError(f"FairMT state: missing keys {missing}, unexpected keys {extra}")
        # ---- dual: validated on a probe object
        dual = None
        if (state["dual"] is None) != (self.dual is None):
            raise _fail("dual", "does not match: the checkpoint is of a "
                        f"{'constrained' if state['dual'] is not None else 'unconstrained'} "
                        "method")
        if self.dual is not None:
            dual = DualAscent(self.dual.rho, self.dual.eps)
            dual.load_state_dict(state["dual"])
        # ---- warm starts
        host = state["warm_host"]
        warm_host = None
        if host is not None:
            if not isinstance(host, Mapping) or set(host) != {"present", "x"}:
                raise _fail("warm_host", "must be None or a dict with 'present' and 'x'")
            idx = host["present"]
            if (not isinstance(idx, Sequence) or not all(isinstance(i, int) for i in idx)
                    or any(not 0 <= i < num_tasks for i in idx) or list(idx) != sorted(set(idx))):
                raise _fail("warm_host", f"'present' must be increasing task indices in "
                            f"[0, {num_tasks}), got {idx!r}")
            x = host["x"]
            if not isinstance(x, torch.Tensor) or x.dtype != torch.float64 or tuple(
                    x.shape) != (len(idx),) or not bool(torch.isfinite(x).all()):
                raise _fail("warm_host", f"'x' must be a finite float64 tensor of shape "
                            f"({len(idx)},)")
            warm_host = (tuple(idx), x.numpy().copy())
        apg = state["warm_apg"]
        if apg is not None and (not isinstance(apg, torch.Tensor) or tuple(apg.shape) != (
                num_tasks,)):
            raise _fail("warm_apg", f"must be None or a tensor of shape ({num_tasks},)")
        # ---- running scales
        scales = None
        if (state["scales"] is None) != (self.scales is None):
            raise _fail("scales", "does not match the configuration (running scale or not)")
        if self.scales is not None:
            raw = state["scales"]
            if not isinstance(raw, Sequence) or len(raw) != num_tasks:
                raise _fail("scales", f"must hold one running scale per task ({num_tasks})")
            scales = []
            for s in raw:
                rs = RunningScale()
                try:
                    rs.load_state_dict(s)
                except (KeyError, TypeError, ValueError) as exc:
                    raise _fail("scales", f"holds an invalid running scale: {exc}") from exc
                if not (math.isfinite(rs.value) and 0 <= rs.momentum < 1 and rs.steps >= 0):
                    raise _fail("scales", "holds an invalid running scale")
                scales.append(rs)
        n = state["num_steps"]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise _fail("num_steps", f"must be an integer >= 0, got {n!r}")
        # ---- assign
        if dual is not None and self.dual is not None:
            self.dual.load_state_dict(dual.state_dict())
        self.warm = WarmStart(warm_host, None if apg is None else apg.detach().clone())
        self.scales = scales
        self.num_steps = int(n)
