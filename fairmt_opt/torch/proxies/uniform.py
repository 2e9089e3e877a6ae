r"""No proxy: uniform :math:`\alpha` over the present tasks (linear scalarisation, and FairMT
without the head-aware QP)."""

from __future__ import annotations

from typing import Any

from ._base import Proxy, ProxyInputs, QPData

__all__ = ["UniformProxy"]


class UniformProxy(Proxy):
    r""":math:`\alpha_t = 1/T_{\text{present}}` on the present tasks; no QP is solved and no
    logit gradient is taken.

    >>> UniformProxy()
    UniformProxy()
    """

    name = "none"
    needs_logit_grads = False

    def __init__(self) -> None:
        super().__init__(normalization="none")

    def qp_data(self, inp: ProxyInputs) -> QPData | None:
        return None

    def config(self) -> dict[str, Any]:
        return {"proxy": self.name}

    def __repr__(self) -> str:
        return "UniformProxy()"
