r"""Projected dual ascent on the fairness multiplier (SPEC §5).

For :math:`\min_\theta (L_1, \dots, L_T)` s.t. :math:`\Phi(\psi(\theta)) \le \varepsilon`,
the Lagrangian is :math:`\sum_t \alpha_t L_t + \eta(\Phi - \varepsilon)`, :math:`\eta \ge 0`, and
the dual variable follows the projected (sub)gradient ascent

.. math::

    \eta \leftarrow \min\big(\eta_{\max},\ \max(0,\ \eta + \rho\,(\hat\Phi - \varepsilon))\big).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from ._utils.array import is_torch
from ._utils.validation import check_positive, check_real

__all__ = ["DualAscent", "DualMode"]

DualMode = Literal["batch", "running_mean"]
_MODES = ("batch", "running_mean")


class DualAscent:
    r"""Projected dual ascent :math:`\eta \leftarrow \min(\eta_{\max}, \max(0, \eta + \rho
    (\hat\Phi - \varepsilon)))` for the fairness constraint :math:`\Phi \le \varepsilon`.

    :math:`\hat\Phi` is the batch value of :math:`\Phi` (``mode="batch"``, the default
    [choice] of SPEC §5) or its exponential running mean
    :math:`m \leftarrow \beta m + (1 - \beta)\Phi` (``mode="running_mean"``, initialised with
    the first :math:`\Phi`).

    Cost: :math:`O(1)` per step. When ``phi`` is a ``torch.Tensor``, :math:`\eta` (and the
    running mean) become 0-d tensors on its device and every update is a tensor operation,
    so a training loop on a GPU never waits for the host (pass ``check_finite=False`` to
    :meth:`step` to skip the NaN check, which does synchronise).

    Parameters
    ----------
    rho : float
        Dual step size :math:`\rho > 0`.
    eps : float
        Constraint level :math:`\varepsilon` (finite).
    eta : float, optional
        Initial multiplier, :math:`0 \le \eta \le \eta_{\max}` (default 0).
    eta_max : float, optional
        Upper clip :math:`\eta_{\max} > 0` (default ``inf``: no clip).
    mode : {"batch", "running_mean"}, optional
        What :math:`\hat\Phi` is (default ``"batch"``).
    beta : float, optional
        Running-mean factor, :math:`0 \le \beta < 1` (default 0.9; used by
        ``"running_mean"`` only).

    Raises
    ------
    ValueError
        For ``rho <= 0``, a non-finite ``eps``, ``eta < 0`` or ``eta > eta_max``,
        ``eta_max <= 0``, an unknown ``mode`` or ``beta`` outside ``[0, 1)``.

    Examples
    --------
    >>> from fairmt_opt import DualAscent
    >>> dual = DualAscent(rho=0.5, eps=0.25)
    >>> dual.step(0.75)  # constraint violated: eta grows by 0.5 * (0.75 - 0.25)
    0.25
    >>> dual.step(0.0)  # satisfied: eta shrinks by 0.5 * 0.25
    0.125
    >>> dual.step(0.0)  # reaches 0; later steps are projected onto eta >= 0
    0.0
    >>> dual
    DualAscent(rho=0.5, eps=0.25, eta=0.0, eta_max=inf, mode='batch', beta=0.9)
    >>> clone = DualAscent(rho=1.0, eps=0.0)
    >>> clone.load_state_dict(dual.state_dict())
    >>> clone.eta == dual.eta
    True
    """

    def __init__(
        self,
        rho: float,
        eps: float,
        *,
        eta: float = 0.0,
        eta_max: float = float("inf"),
        mode: DualMode = "batch",
        beta: float = 0.9,
    ) -> None:
        self.rho = check_positive(rho, "rho")
        self.eps = check_real(eps, "eps")
        try:
            eta_max_f = float(eta_max)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"eta_max must be a real number, got {eta_max!r}") from exc
        if math.isnan(eta_max_f) or eta_max_f <= 0:
            raise ValueError(f"eta_max must be > 0 (inf allowed), got {eta_max_f}")
        self.eta_max = eta_max_f
        eta_f = check_positive(eta, "eta", allow_zero=True)
        if eta_f > eta_max_f:
            raise ValueError(f"eta must be <= eta_max ({eta_max_f}), got {eta_f}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        self.mode: DualMode = mode
        beta_f = check_real(beta, "beta")
        if not 0.0 <= beta_f < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta_f}")
        self.beta = beta_f
        self._eta: Any = eta_f
        self._mean: Any = None
        self.steps = 0

    @property
    def eta(self) -> Any:
        """The current multiplier: a float, or a 0-d tensor once a tensor ``phi`` was seen."""
        return self._eta

    @property
    def phi_mean(self) -> Any:
        """The running mean of :math:`\\Phi` (``None`` before the first step or in batch mode)."""
        return self._mean

    def step(self, phi: Any, *, check_finite: bool = True) -> Any:
        r"""One projected ascent step on :math:`\eta` with the observed :math:`\Phi`.

        Parameters
        ----------
        phi : float or 0-d array
            The aggregated violation :math:`\Phi` of the current batch (a tensor is detached).
        check_finite : bool, optional
            Raise ``ValueError`` if ``phi`` is NaN or inf (default ``True``; on a CUDA tensor
            this synchronises with the host).

        Returns
        -------
        float or 0-d tensor
            The new :math:`\eta` (a tensor on the device of ``phi`` when ``phi`` is one).
        """
        if is_torch(phi):
            return self._step_tensor(phi, check_finite)
        if hasattr(phi, "shape") and tuple(phi.shape) != ():
            raise ValueError(f"phi must be a scalar, got shape {tuple(phi.shape)}")
        try:
            p = float(phi)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"phi must be a real number, got {phi!r}") from exc
        if check_finite and not math.isfinite(p):
            raise ValueError(f"phi must be finite, got {p}")
        if is_torch(self._eta):  # already on a device: stay there
            import torch

            p_t = torch.as_tensor(p, dtype=self._eta.dtype, device=self._eta.device)
            return self._step_tensor(p_t, check_finite)
        if self.mode == "running_mean":
            self._mean = p if self._mean is None else self.beta * self._mean + (
                1.0 - self.beta
            ) * p
            p = self._mean
        self._eta = min(self.eta_max, max(0.0, self._eta + self.rho * (p - self.eps)))
        self.steps += 1
        return self._eta

    def _step_tensor(self, phi: Any, check_finite: bool) -> Any:
        import torch

        if phi.ndim != 0:
            raise ValueError(f"phi must be a scalar (0-d tensor), got shape {tuple(phi.shape)}")
        p = phi.detach()
        if not p.is_floating_point():
            p = p.to(torch.float64)
        if check_finite and not bool(torch.isfinite(p)):
            raise ValueError(f"phi must be finite, got {p.item()}")
        eta = self._eta
        if not is_torch(eta):
            eta = torch.as_tensor(eta, dtype=p.dtype, device=p.device)
        elif eta.device != p.device:
            raise ValueError(f"phi is on device {p.device} but eta is on {eta.device}")
        if self.mode == "running_mean":
            if self._mean is None:
                self._mean = p.clone()
            else:
                mean = self._mean
                if not is_torch(mean):
                    mean = torch.as_tensor(mean, dtype=p.dtype, device=p.device)
                self._mean = self.beta * mean + (1.0 - self.beta) * p
            p = self._mean
        self._eta = torch.clamp(eta + self.rho * (p - self.eps), min=0.0, max=self.eta_max)
        self.steps += 1
        return self._eta

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: hyper-parameters, ``eta``, running mean, steps.

        Tensors are cloned, floats kept as they are, so the round trip is exact.
        """
        def _copy(x: Any) -> Any:
            return x.detach().clone() if is_torch(x) else x

        return {
            "rho": self.rho,
            "eps": self.eps,
            "eta": _copy(self._eta),
            "eta_max": self.eta_max,
            "mode": self.mode,
            "beta": self.beta,
            "phi_mean": _copy(self._mean),
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (validated as by the constructor)."""
        missing = {"rho", "eps", "eta", "eta_max", "mode", "beta", "phi_mean", "steps"} - set(
            state
        )
        if missing:
            raise ValueError(f"state is missing keys {sorted(missing)}")
        eta = state["eta"]
        # validate through the constructor (eta as a float; tensors are validated on the host)
        probe = DualAscent(state["rho"], state["eps"], eta=float(eta),
                           eta_max=state["eta_max"], mode=state["mode"], beta=state["beta"])
        self.rho, self.eps, self.eta_max = probe.rho, probe.eps, probe.eta_max
        self.mode, self.beta = probe.mode, probe.beta
        self._eta = eta.detach().clone() if is_torch(eta) else float(eta)
        mean = state["phi_mean"]
        self._mean = mean.detach().clone() if is_torch(mean) else (
            None if mean is None else check_real(mean, "phi_mean")
        )
        self.steps = int(state["steps"])

    def __repr__(self) -> str:
        return (
            f"DualAscent(rho={self.rho!r}, eps={self.eps!r}, eta={float(self._eta)!r}, "
            f"eta_max={self.eta_max!r}, mode={self.mode!r}, beta={self.beta!r})"
        )
