r"""LibMTL adapter: the exact MGDA weights as a LibMTL weighting strategy.

`LibMTL <https://github.com/median-research-group/LibMTL>`_ builds its model as a class that
derives from an architecture and a weighting (``AbsWeighting``); the weighting's
``backward(losses, **weight_args)`` computes the per-task gradients of the shared parameters
(or of the shared representation, ``rep_grad=True``), sets their combination as the gradient
and returns the task weights. Its ``MGDA`` runs a budgeted Frank–Wolfe loop;
:class:`ExactMGDA` computes the per-task gradients :math:`g_t` the same way
(``AbsWeighting._get_grads``), normalises them as ``mgda_gn`` says (:math:`\hat g_t = g_t/n_t`),
and solves

.. math::
    \alpha^\star \in \arg\min_{\alpha \in \Delta} \tfrac12 \Big\|\sum_t \alpha_t \hat g_t\Big\|^2
    = \tfrac12 \alpha^\top D G D \alpha, \qquad G_{st} = g_s^\top g_t,\
    D = \mathrm{Diag}(1/n),

exactly by :func:`fairmt_opt.solve_simplex_qp`, then sets the gradients from
:math:`\alpha^\star` as LibMTL's ``MGDA`` does (:class:`ExactMGDA`, step 4).

Use it as ``weighting=ExactMGDA`` of the ``Trainer`` of LibMTL 1.1.5 (the release on PyPI takes
the class); :func:`register` adds it to ``LibMTL.weighting`` under a name, for the LibMTL
versions whose ``Trainer`` looks the weighting up by name (``weighting="ExactMGDA"``).
Needs the extra ``fairmt_opt[libmtl]`` (``pip install LibMTL``).

.. note::
    LibMTL's package ``__init__`` imports its ResNet backbones, which need torchvision. When
    torchvision is not installed, importing this module registers the ``LibMTL`` package
    without running that ``__init__``: its submodules (``LibMTL.trainer``,
    ``LibMTL.weighting``, ``LibMTL.architecture``, ``LibMTL.loss``, ``LibMTL.metrics``,
    ``LibMTL.config``) import as usual, but ``from LibMTL import Trainer`` does not (write
    ``from LibMTL.trainer import Trainer``) and ``LibMTL.model`` still needs torchvision.

>>> from fairmt_opt.integrations.libmtl import ExactMGDA
>>> ExactMGDA.__mro__[1].__name__
'AbsWeighting'
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import torch

from ..qp import solve_simplex_qp
from ..torch.proxies._base import normalize

__all__ = ["MGDA_GN", "ExactMGDA", "register"]

#: the gradient normalisations of LibMTL's MGDA (``weight_args["mgda_gn"]``)
MGDA_GN = ("none", "l2", "loss", "loss+")

_MISSING = ("fairmt_opt.integrations.libmtl needs LibMTL; install the extra: "
            "pip install 'fairmt_opt[libmtl]'")


def _abs_weighting() -> Any:
    """LibMTL's ``AbsWeighting``, imported without LibMTL's package ``__init__`` when that
    ``__init__`` cannot run (no torchvision; see the module's note)."""
    spec = importlib.util.find_spec("LibMTL")
    if spec is None:
        raise ModuleNotFoundError(_MISSING, name="LibMTL")
    if "LibMTL" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        # the package object with its search path, its __init__ not executed
        sys.modules["LibMTL"] = importlib.util.module_from_spec(spec)
    return importlib.import_module("LibMTL.weighting.abstract_weighting").AbsWeighting


class ExactMGDA(_abs_weighting()):  # type: ignore[misc]
    r"""LibMTL weighting: exact min-norm (MGDA) task weights.

    ``backward(losses, mgda_gn="none")`` (``mgda_gn`` is read from the Trainer's
    ``weight_args``):

    1. the per-task gradients :math:`g_t` of the shared parameters, or of the shared
       representation with ``rep_grad=True``, by LibMTL's own ``_get_grads``;
    2. :math:`G = [g_s^\top g_t]` and the normalisers :math:`n_t` of ``mgda_gn``:
       ``"none"`` 1, ``"l2"`` :math:`\|g_t\|`, ``"loss"`` :math:`L_t`, ``"loss+"``
       :math:`L_t\|g_t\|` (a zero normaliser is left at 1), applied as :math:`DGD`;
    3. :math:`\alpha^\star` by :func:`fairmt_opt.solve_simplex_qp` (exact active set) on
       :math:`DGD`, passed to the solver as computed;
    4. LibMTL's ``_backward_new_grads``, as LibMTL's ``MGDA`` calls it: the shared parameters
       get :math:`\sum_t\alpha^\star_t\hat g_t` (weights :math:`\alpha^\star_t/n_t` on the raw
       gradients); with ``rep_grad=True`` the representation gets
       :math:`\sum_t\alpha^\star_t g_t` (LibMTL applies the weights to the unnormalised
       representation gradients, and so does this class, to stay a drop-in).

    Returns :math:`\alpha^\star` as a NumPy array (what the Trainer records per batch), so
    the only difference from LibMTL's ``MGDA`` is that the weights are exact. An unknown
    ``mgda_gn`` raises
    :class:`ValueError`; a solve that does not report success raises :class:`RuntimeError`.
    Cost: :math:`T` backward passes (as LibMTL's MGDA), :math:`O(T^2 d)` for :math:`G`, and
    the solve.

    Examples
    --------
    The weighting runs inside LibMTL's model class; the tutorial trains one through LibMTL's
    ``Trainer``. Its options:

    >>> MGDA_GN
    ('none', 'l2', 'loss', 'loss+')
    """

    def backward(self, losses: Any, **kwargs: Any) -> Any:
        mgda_gn = kwargs.get("mgda_gn", "none")
        if mgda_gn not in MGDA_GN:
            raise ValueError(f"mgda_gn must be one of {MGDA_GN}, got {mgda_gn!r}")
        out = self._get_grads(losses, mode="backward")
        per_grads, grads = (out[0], out[1]) if self.rep_grad else (None, out)
        gram = grads @ grads.T
        loss_values = torch.stack([loss.detach() for loss in losses]).to(gram.dtype)
        ones = torch.ones(gram.shape[0], dtype=gram.dtype, device=gram.device)
        gram, inv = normalize(gram, ones, loss_values, mgda_gn)  # inv = 1 / n (D applied to 1)
        res = solve_simplex_qp(gram.detach())
        if not res.success:
            raise RuntimeError(f"ExactMGDA: solve_simplex_qp did not succeed: {res.message}")
        alpha = res.x
        if self.rep_grad:
            self._backward_new_grads(alpha, per_grads=per_grads)
        else:
            self._backward_new_grads(alpha * inv, grads=grads)
        return alpha.detach().cpu().numpy()


def register(name: str = "ExactMGDA") -> type:
    """Add :class:`ExactMGDA` to the ``LibMTL.weighting`` namespace under ``name``, where the
    LibMTL versions that take the weighting by name (``Trainer(weighting="ExactMGDA")``,
    ``--weighting ExactMGDA`` of their example scripts) look it up. Returns the class.

    >>> import LibMTL.weighting
    >>> register() is LibMTL.weighting.ExactMGDA
    True
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier, got {name!r}")
    weighting = importlib.import_module("LibMTL.weighting")
    setattr(weighting, name, ExactMGDA)
    names = getattr(weighting, "__all__", None)
    if isinstance(names, list) and name not in names:
        names.append(name)
    return ExactMGDA
