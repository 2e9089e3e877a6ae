r"""What every proxy shares: the step's tensors it may read, the QP data it returns, and the
gradient normalisation of SPEC §6 (as MGDA-UB)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from ...head import head_aware_qp
from .._distributed import Reducer

__all__ = ["Normalization", "Proxy", "ProxyInputs", "QPData", "normalize"]

Normalization = Literal["none", "l2", "loss", "loss+"]
_NORMS = ("none", "l2", "loss", "loss+")


@dataclass(frozen=True)
class ProxyInputs:
    r"""The tensors of one step a proxy may read.

    ``h`` the ``(N, d)`` representations, ``outputs`` the head outputs, ``heads`` the head
    modules (or ``None``), ``deltas[t]`` :math:`\partial L_t/\partial z_t` and ``dphi[t]``
    :math:`\partial\Phi/\partial z_t` (``None`` when unconstrained) from autograd, ``eta``
    the 0-d dual variable, ``losses`` the ``(T,)`` detached task losses, ``reducer`` the sums
    over ranks (default: a single process) and ``check`` whether to check values (default
    yes)."""

    h: torch.Tensor
    outputs: Sequence[torch.Tensor]
    heads: Sequence[nn.Module | None] | None
    deltas: Sequence[torch.Tensor]
    dphi: Sequence[torch.Tensor] | None
    eta: torch.Tensor
    losses: torch.Tensor
    reducer: Reducer = field(default_factory=lambda: Reducer(False))
    check: bool = True


@dataclass(frozen=True)
class QPData:
    r"""The QP data :math:`K` (``(T, T)``) and :math:`b` (``(T,)``) after normalisation, and,
    for the head proxy, the directions :math:`R` and :math:`r_\Phi`."""

    K: torch.Tensor
    b: torch.Tensor
    directions: torch.Tensor | None = None
    fairness_direction: torch.Tensor | None = None


def normalize(K: torch.Tensor, b: torch.Tensor, losses: torch.Tensor, mode: Normalization
              ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Gradient normalisation before the QP: the directions divided by :math:`n_t` =
    their norm :math:`\sqrt{K_{tt}}` (``l2``), their loss (``loss``) or both (``loss+``), i.e.
    :math:`K \leftarrow D K D`, :math:`b \leftarrow D b` with :math:`D = \mathrm{Diag}(1/n)`
    (a zero :math:`n_t` is left at 1). ``K`` stays exactly symmetric.

    >>> import torch
    >>> K, b = normalize(torch.tensor([[4.0, 2.0], [2.0, 9.0]], dtype=torch.float64),
    ...                  torch.tensor([2.0, 3.0], dtype=torch.float64), torch.ones(2), "l2")
    >>> K.tolist(), b.tolist()
    ([[1.0, 0.3333333333333333], [0.3333333333333333, 1.0]], [1.0, 1.0])
    """
    if mode == "none":
        return K, b
    ld = losses.detach().to(K.dtype)
    norms = torch.sqrt(torch.diagonal(K).clamp(min=0.0))
    n = norms if mode == "l2" else (ld if mode == "loss" else ld * norms)
    n = torch.where(n > 0, n, torch.ones_like(n))
    inv = 1.0 / n
    return K * (inv[:, None] * inv[None, :]), b * inv


class Proxy:
    """A proxy turns one step's tensors into the QP data :math:`(K, b)` that set
    :math:`\\alpha` (or says that :math:`\\alpha` is uniform: :meth:`qp_data` returns
    ``None``). Subclasses set :attr:`name`, :attr:`needs_logit_grads` and :meth:`gram`."""

    name: str = "proxy"
    #: whether :meth:`qp_data` reads ``deltas`` and ``dphi`` (the logit gradients)
    needs_logit_grads: bool = True

    def __init__(self, *, normalization: Normalization = "l2") -> None:
        if normalization not in _NORMS:
            raise ValueError(f"normalization must be one of {_NORMS}, got {normalization!r}")
        self.normalization: Normalization = normalization

    def gram(self, inp: ProxyInputs) -> QPData:
        raise NotImplementedError

    def qp_data(self, inp: ProxyInputs) -> QPData | None:
        """The normalised QP data of this step."""
        raw = self.gram(inp)
        K, b = normalize(raw.K, raw.b, inp.losses, self.normalization)
        return QPData(K, b, raw.directions, raw.fairness_direction)

    @staticmethod
    def qp_of(rows: torch.Tensor, fair: torch.Tensor, eta: torch.Tensor, check: bool
              ) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`K = GG^\top`, :math:`b = \eta\,G g_\Phi` (:func:`fairmt_opt.head_aware_qp`)."""
        qp = head_aware_qp(rows, fair, eta, check_finite=check)
        return qp.K, qp.b

    def config(self) -> dict[str, Any]:
        return {"proxy": self.name, "normalization": self.normalization}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(normalization={self.normalization!r})"
