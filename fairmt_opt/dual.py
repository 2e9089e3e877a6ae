r"""Projected dual ascent on the fairness multiplier (SPEC §5).

For :math:`\min_\theta (L_1, \dots, L_T)` s.t. :math:`\Phi(\psi(\theta)) \le \varepsilon`,
the Lagrangian is :math:`\sum_t \alpha_t L_t + \eta(\Phi - \varepsilon)`, :math:`\eta \ge 0`, and
the dual variable follows the projected (sub)gradient ascent

.. math::

    \eta \leftarrow \min\big(\eta_{\max},\ \max(0,\ \eta + \rho\,(\hat\Phi - \varepsilon))\big).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any, Literal

from ._utils.array import is_torch
from ._utils.validation import check_int, check_positive, check_real, to_float

__all__ = ["DualAscent", "DualMode"]

DualMode = Literal["batch", "running_mean"]
_MODES = ("batch", "running_mean")
_STATE_KEYS = ("rho", "eps", "eta", "eta_max", "mode", "beta", "phi_mean", "steps")
_FLOAT_MAX = sys.float_info.max


def _check_scalar_or_tensor(value: Any, name: str) -> float:
    """A finite real number or a 0-d floating tensor holding one (read on the host)."""
    if is_torch(value):
        if value.ndim != 0 or not value.is_floating_point():
            raise ValueError(f"{name} must be a 0-d floating tensor, got {value!r}")
        return check_real(float(value.detach()), name)
    return check_real(value, name)


def _check_eta_max(value: Any, name: str) -> float:
    """``> 0``, ``inf`` allowed."""
    v = to_float(value, name)
    if math.isnan(v) or v <= 0:
        raise ValueError(f"{name} must be > 0 (inf allowed), got {v}")
    return v


def _check_eta(value: Any, name: str) -> float:
    return check_positive(_check_scalar_or_tensor(value, name), name, allow_zero=True)


def _check_mode(value: Any, name: str) -> Any:
    if not isinstance(value, str) or value not in _MODES:
        raise ValueError(f"{name} must be one of {_MODES}, got {value!r}")
    return value


def _check_beta(value: Any, name: str) -> float:
    beta = check_real(value, name)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {beta}")
    return beta


def _check_steps(value: Any, name: str) -> int:
    return check_int(value, name, minimum=0)


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
        Upper clip :math:`\eta_{\max} > 0` (default ``inf``: no clip). :math:`\eta` is also
        clipped at the largest finite float of its dtype, so it stays finite however large
        the observed :math:`\Phi` (``DualAscent(1, 0).step(1e308)`` twice gives
        ``1.797...e308``, not ``inf``).
    mode : {"batch", "running_mean"}, optional
        What :math:`\hat\Phi` is (default ``"batch"``).
    beta : float, optional
        Running-mean factor, :math:`0 \le \beta < 1` (default 0.9; used by
        ``"running_mean"`` only).

    Raises
    ------
    ValueError
        For ``rho <= 0``, a non-finite ``eps``, ``eta < 0`` or ``eta > eta_max``,
        ``eta_max <= 0``, an unknown ``mode`` or ``beta`` outside ``[0, 1)``; numbers may be
        Python or NumPy scalars (``np.float32(0.1)``), not strings or booleans.

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
        self.eta_max = eta_max_f = _check_eta_max(eta_max, "eta_max")
        eta_f = _check_eta(eta, "eta")
        if eta_f > eta_max_f:
            raise ValueError(f"eta must be <= eta_max ({eta_max_f}), got {eta_f}")
        self.mode: DualMode = _check_mode(mode, "mode")
        self.beta = _check_beta(beta, "beta")
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
        p = to_float(phi, "phi")  # a Python or NumPy real number, not a bool or a string
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
        self._eta = min(self.eta_max, _FLOAT_MAX, max(0.0, self._eta + self.rho * (p - self.eps)))
        self.steps += 1
        return self._eta

    def _step_tensor(self, phi: Any, check_finite: bool) -> Any:
        import torch

        if phi.ndim != 0:
            raise ValueError(f"phi must be a scalar (0-d tensor), got shape {tuple(phi.shape)}")
        p = phi.detach()
        if p.dtype == torch.bool or p.is_complex():
            raise ValueError(f"phi must be a real number, got a tensor of dtype {p.dtype}")
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
        top = min(self.eta_max, float(torch.finfo(eta.dtype).max))
        self._eta = torch.clamp(eta + self.rho * (p - self.eps), min=0.0, max=top)
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

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`. Every field is validated as by the constructor
        (``ValueError`` naming the key otherwise, e.g. ``state['steps']: steps must be an
        integer``), and nothing changes unless all are valid.

        ``eta`` and ``phi_mean`` may be floats or 0-d floating tensors (kept as tensors, on
        their device); ``steps`` is a non-negative integer. The round trip is exact.
        """
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be a mapping, got {type(state).__name__}")
        missing = set(_STATE_KEYS) - set(state)
        if missing:
            raise ValueError(f"state is missing keys {sorted(missing)}")
        extra = set(state) - set(_STATE_KEYS)
        if extra:
            raise ValueError(f"state has unknown keys {sorted(map(str, extra))}")

        def field(key: str, check: Any) -> Any:
            try:
                return check(state[key], key)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"state[{key!r}]: {exc}") from None

        rho = field("rho", check_positive)
        eps = field("eps", check_real)
        eta_max = field("eta_max", _check_eta_max)
        eta_f = field("eta", _check_eta)
        if eta_f > eta_max:
            raise ValueError(f"state['eta']: eta must be <= eta_max ({eta_max}), got {eta_f}")
        mode = field("mode", _check_mode)
        beta = field("beta", _check_beta)
        steps = field("steps", _check_steps)
        mean = state["phi_mean"]
        if mean is not None:
            field("phi_mean", _check_scalar_or_tensor)
        eta = state["eta"]
        self.rho, self.eps, self.eta_max, self.mode, self.beta = rho, eps, eta_max, mode, beta
        self._eta = eta.detach().clone() if is_torch(eta) else float(eta)
        self._mean = None if mean is None else (
            mean.detach().clone() if is_torch(mean) else float(mean))
        self.steps = steps

    def __repr__(self) -> str:
        return (
            f"DualAscent(rho={self.rho!r}, eps={self.eps!r}, eta={float(self._eta)!r}, "
            f"eta_max={self.eta_max!r}, mode={self.mode!r}, beta={self.beta!r})"
        )
