r"""The representation proxy (MGDA-UB, SPEC §6): the Gram of the per-task gradients with respect
to the whole batch of representations :math:`Z` (``N·d`` numbers per task)."""

from __future__ import annotations

import torch

from ._base import Proxy, ProxyInputs, QPData
from .head import through_heads

__all__ = ["RepresentationProxy"]


class RepresentationProxy(Proxy):
    r""":math:`K_{st} = \langle \nabla_Z L_s, \nabla_Z L_t \rangle`,
    :math:`b_t = \eta \langle \nabla_Z L_t, \nabla_Z \Phi \rangle` (MGDA-UB). Without
    normalisation (``normalization="none"``) this is the MGDA-UB baseline."""

    name = "rep"

    def gram(self, inp: ProxyInputs) -> QPData:
        red = inp.reducer
        W = red.world_size
        T = len(inp.outputs)
        G = through_heads(inp.h, inp.outputs, inp.deltas, inp.heads, per_sample=True)
        G = G.reshape(T, -1)
        if inp.dphi is not None:
            gphi = through_heads(inp.h, inp.outputs, inp.dphi, inp.heads,
                                 per_sample=True).sum(0).reshape(-1)
        else:
            gphi = torch.zeros_like(G[0])
        if G.shape[1] == 0:  # an empty batch on this rank: no direction
            K = torch.zeros(T, T, dtype=G.dtype, device=G.device)
            b = torch.zeros(T, dtype=G.dtype, device=G.device)
        else:
            K, b = self.qp_of(G, gphi, inp.eta, inp.check)
        return QPData(red.sum(K) / (W * W), red.sum(b) / (W * W))
