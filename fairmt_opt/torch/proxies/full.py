r"""The full proxy (MGDA, SPEC §6): the Gram of the per-task gradients with respect to the shared
parameters (one encoder backward per task)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ._base import Normalization, Proxy, ProxyInputs, QPData

__all__ = ["FullProxy"]


class FullProxy(Proxy):
    r""":math:`K_{st} = \langle \nabla_{\theta_s} L_s, \nabla_{\theta_s} L_t \rangle`,
    :math:`b_t = \eta\langle \nabla_{\theta_s} L_t, \nabla_{\theta_s}\Phi\rangle` over the
    shared parameters :math:`\theta_s` (MGDA; the baseline uses ``normalization="none"``).

    Parameters
    ----------
    shared_parameters : iterable of torch.nn.Parameter
        The encoder's parameters.
    normalization : {"none", "l2", "loss", "loss+"}
    """

    name = "full"

    def __init__(self, shared_parameters: Iterable[torch.nn.Parameter], *,
                 normalization: Normalization = "l2") -> None:
        super().__init__(normalization=normalization)
        params = list(shared_parameters) if shared_parameters is not None else []
        if not params or not all(isinstance(p, torch.Tensor) for p in params):
            raise ValueError("FullProxy needs shared_parameters (the encoder's parameters)")
        self.shared_parameters = params

    def gram(self, inp: ProxyInputs) -> QPData:
        red = inp.reducer
        W = red.world_size
        params = [p for p in self.shared_parameters if p.requires_grad]
        dtype = inp.h.dtype

        def flat(gs: Sequence[torch.Tensor | None]) -> torch.Tensor:
            return torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                              for g, p in zip(gs, params)]).to(dtype)

        rows = []
        for z, d in zip(inp.outputs, inp.deltas):
            if not z.requires_grad:
                rows.append(flat([None] * len(params)))
                continue
            rows.append(flat(torch.autograd.grad(z, params, grad_outputs=d, retain_graph=True,
                                                 allow_unused=True)))
        G = red.sum(torch.stack(rows)) / W
        live = [(z, g) for z, g in zip(inp.outputs, inp.dphi or []) if z.requires_grad]
        if live:
            gphi = red.sum(flat(torch.autograd.grad(
                [z for z, _ in live], params, grad_outputs=[g for _, g in live],
                retain_graph=True, allow_unused=True))) / W
        else:
            gphi = torch.zeros_like(G[0])
        K, b = self.qp_of(G, gphi, inp.eta, inp.check)
        return QPData(K, b)

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.shared_parameters)
        return f"FullProxy(shared_parameters=<{n} numbers>, normalization={self.normalization!r})"
