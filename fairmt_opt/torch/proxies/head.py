r"""The head-aware proxy (SPEC §6): directions through the heads, :math:`O(T^2 d)`.

For a scalar :math:`F` of the head outputs its representation direction is
:math:`r_F = \nabla_s F(h + s)|_{s=0}`. Through an ``nn.Linear`` head
:math:`z = A_t h + c_t` it is :math:`r_t = A_t^\top \sum_i \partial L_t/\partial z_{it}` (all
linear heads in a few batched products); any other head takes autograd from its outputs to
:math:`h` (never into the encoder). :math:`K = RR^\top`, :math:`b = \eta R r_\Phi`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .._stack import cached_index
from ._base import Proxy, ProxyInputs, QPData

__all__ = ["HeadProxy", "through_heads"]


def through_heads(h: torch.Tensor, outputs: Sequence[torch.Tensor],
                  grads: Sequence[torch.Tensor], heads: Sequence[nn.Module | None] | None,
                  *, per_sample: bool) -> torch.Tensor:
    """Per task, the vector-Jacobian product of ``grads[t]`` through head t to ``h``: summed
    over samples (``(T, d)``) or per sample (``(T, N, d)``, for MGDA-UB)."""
    T, (N, d) = len(outputs), h.shape
    out = torch.zeros((T, d) if not per_sample else (T, N, d), dtype=h.dtype, device=h.device)
    linear: dict[int, nn.Linear] = {}
    for t, hd in enumerate(heads or []):
        if isinstance(hd, nn.Linear) and hd.in_features == d:
            linear[t] = hd
    lin = list(linear)
    if lin:
        D = torch.cat([grads[t].reshape(N, linear[t].out_features) for t in lin],
                      1).to(h.dtype)  # (N, ΣC)
        A = torch.cat([linear[t].weight for t in lin], 0).detach().to(h.dtype)  # (ΣC, d)
        sizes = [linear[t].out_features for t in lin]
        dev = str(h.device)
        seg = cached_index(tuple(i for i, c in enumerate(sizes) for _ in range(c)), dev)
        pos = cached_index(tuple(lin), dev)
        if not per_sample:
            part = torch.zeros(len(lin), d, dtype=h.dtype, device=h.device)
            out = out.index_copy(0, pos, part.index_add(0, seg, D.sum(0)[:, None] * A))
        else:
            part = torch.zeros(N, len(lin), d, dtype=h.dtype, device=h.device)
            rows = D[:, :, None] * A[None]
            out = out.index_copy(0, pos, part.index_add(1, seg, rows).transpose(0, 1))
    for t in range(T):
        if t in lin or not outputs[t].requires_grad:
            continue
        if not h.requires_grad:
            raise ValueError(f"task {t}: a non-linear head needs h in the autograd graph "
                             "(h.requires_grad) for the autograd directions")
        g = torch.autograd.grad(outputs[t], h, grad_outputs=grads[t], retain_graph=True,
                                allow_unused=True)[0]
        if g is not None:
            out[t] = g.sum(0) if not per_sample else g
    return out


class HeadProxy(Proxy):
    r"""The head-aware Gram :math:`K = RR^\top`, :math:`b = \eta R r_\Phi` [the FairMT proxy].

    Parameters
    ----------
    normalization : {"none", "l2", "loss", "loss+"}
        Gradient normalisation before the QP [choice: ``l2``].
    """

    name = "head"

    def gram(self, inp: ProxyInputs) -> QPData:
        red = inp.reducer
        W = red.world_size
        R = red.sum(through_heads(inp.h, inp.outputs, inp.deltas, inp.heads,
                                  per_sample=False)) / W
        if inp.dphi is not None:
            r_phi = red.sum(through_heads(inp.h, inp.outputs, inp.dphi, inp.heads,
                                          per_sample=False).sum(0)) / W
        else:
            r_phi = torch.zeros(inp.h.shape[1], dtype=inp.h.dtype, device=inp.h.device)
        K, b = self.qp_of(R, r_phi, inp.eta, inp.check)
        return QPData(K, b, R, r_phi if inp.dphi is not None else None)
