r"""Proxies: each turns one step's tensors into the QP data :math:`(K, b)` that set the task
weights :math:`\alpha` (SPEC §6), one module each.

==========================  =====================================================================
``HeadProxy``  (``head``)   head-aware Gram through the heads, :math:`O(T^2 d)` [FairMT]
``RepresentationProxy``     MGDA-UB: per-task gradients w.r.t. the whole batch of representations
(``rep``)
``FullProxy`` (``full``)    MGDA: per-task gradients w.r.t. the shared parameters
``UniformProxy`` (``none``) uniform :math:`\alpha` (no QP)
==========================  =====================================================================

A new proxy is a subclass of :class:`Proxy` with a ``gram`` method returning :class:`QPData`.
"""

from __future__ import annotations

from typing import Any

from ._base import Normalization, Proxy, ProxyInputs, QPData, normalize
from .full import FullProxy
from .head import HeadProxy
from .rep import RepresentationProxy
from .uniform import UniformProxy

__all__ = [
    "FullProxy",
    "HeadProxy",
    "Normalization",
    "Proxy",
    "ProxyInputs",
    "QPData",
    "RepresentationProxy",
    "UniformProxy",
    "make_proxy",
    "normalize",
]

_NAMES = ("head", "rep", "full", "none")


def make_proxy(name: str | Proxy, *, normalization: Normalization = "l2",
               shared_parameters: Any = None) -> Proxy:
    """The proxy ``name`` (``head``, ``rep``, ``full``, ``none``); a :class:`Proxy` is
    returned as it is.

    >>> make_proxy("rep", normalization="none")
    RepresentationProxy(normalization='none')
    """
    if isinstance(name, Proxy):
        return name
    if name == "head":
        return HeadProxy(normalization=normalization)
    if name == "rep":
        return RepresentationProxy(normalization=normalization)
    if name == "full":
        if not shared_parameters:
            raise ValueError("proxy='full' needs shared_parameters (the encoder's parameters)")
        return FullProxy(shared_parameters, normalization=normalization)
    if name == "none":
        return UniformProxy()
    raise ValueError(f"proxy must be one of {_NAMES} or a Proxy, got {name!r}")
