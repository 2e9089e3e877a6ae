r"""TorchJD adapter: the exact MGDA weights as a TorchJD ``Weighting`` and ``Aggregator``.

`TorchJD <https://github.com/TorchJD/torchjd>`_ aggregates the Jacobian :math:`J \in
\mathbb R^{T \times n}` of :math:`T` losses (one row per loss) into one update direction. Its
``MGDA`` runs a Frank–Wolfe loop with a budget (``epsilon``, ``max_iters``);
:class:`ExactMGDAWeighting` returns the exact minimiser of the same problem,

.. math::
    \alpha^\star \in \arg\min_{\alpha \in \Delta} \tfrac12 \alpha^\top G \alpha,
    \qquad G = JJ^\top, \qquad \Delta = \{\alpha \ge 0,\ \mathbf 1^\top\alpha = 1\},

by :func:`fairmt_opt.solve_simplex_qp` (active set, finite termination, no ridge on a singular
:math:`G`), and :class:`ExactMGDA` the direction :math:`d = J^\top\alpha^\star`, the point of
minimal norm in the convex hull of the rows (so :math:`Jd \ge \|d\|^2 \mathbf 1 \ge 0`: no row
conflicts with it).

Both are drop-ins: ``ExactMGDA()`` wherever TorchJD takes an ``Aggregator``
(``torchjd.autojac.jac_to_grad``), ``ExactMGDAWeighting()`` wherever it takes a Gramian
``Weighting`` (the autogram ``Engine``). The weights are returned in the Gramian's dtype and on
its device; they are not differentiable (computed under :func:`torch.no_grad`, like TorchJD's
``UPGrad``). Needs the extra ``fairmt_opt[torchjd]`` (``pip install torchjd``).

>>> import torch
>>> from fairmt_opt.integrations.torchjd import ExactMGDA
>>> J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]], dtype=torch.float64)
>>> d = ExactMGDA()(J)                              # 0.6 J[0] + 0.4 J[1]
>>> torch.allclose(d, torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64), atol=1e-12)
True
>>> bool((J @ d >= d @ d - 1e-12).all())          # no row conflicts with d
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..qp import QPMethod, solve_simplex_qp

try:
    from torchjd.aggregation import GramianWeightedAggregator, Weighting
except ModuleNotFoundError as exc:  # pragma: no cover - exercised only without the extra
    if exc.name is None or exc.name.split(".")[0] != "torchjd":
        raise
    raise ModuleNotFoundError(
        "fairmt_opt.integrations.torchjd needs TorchJD; install the extra: "
        "pip install 'fairmt_opt[torchjd]'", name="torchjd") from exc

if TYPE_CHECKING:
    from torchjd.linalg import PSDMatrix

__all__ = ["ExactMGDA", "ExactMGDAWeighting"]


class ExactMGDAWeighting(Weighting["PSDMatrix"]):
    r"""TorchJD ``Weighting`` of a Gramian: the exact min-norm weights
    :math:`\alpha^\star \in \arg\min_{\alpha \in \Delta} \tfrac12 \alpha^\top G \alpha`.

    Parameters
    ----------
    method : str
        Method of :func:`fairmt_opt.solve_simplex_qp` [choice: ``"active_set"``, exact; the
        other methods are iterative].
    tol, max_iter : optional
        Passed to the solver (its defaults when ``None``).

    Calling it on a :math:`T \times T` Gramian ``G`` (a tensor) returns a tensor of shape
    ``(T,)`` on the simplex, in ``G``'s dtype and on its device. The Gramian is passed to the
    solver as given, which checks it (square, finite, symmetric, positive semidefinite) and
    raises :class:`ValueError` naming the problem; a solve that does not report success
    raises :class:`RuntimeError` with the solver's message, so a wrong answer is never
    returned. Cost: that of the solve, :math:`O(|F|^3)` for the support :math:`F` at worst
    (microseconds at :math:`T \le 40` with the compiled kernel), plus one copy of
    :math:`G` to the host for a CUDA tensor.

    Examples
    --------
    >>> import torch
    >>> G = torch.tensor([[4.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    >>> ExactMGDAWeighting()(G)                        # exact: (0, 1) is optimal
    tensor([0., 1.], dtype=torch.float64)
    >>> ExactMGDAWeighting()
    ExactMGDAWeighting(method='active_set', tol=None, max_iter=None)
    """

    def __init__(self, method: QPMethod = "active_set", *, tol: float | None = None,
                 max_iter: int | None = None) -> None:
        super().__init__()
        self.method: QPMethod = method
        self.tol = tol
        self.max_iter = max_iter

    def forward(self, gramian: PSDMatrix, /) -> Tensor:
        if not isinstance(gramian, torch.Tensor):
            raise TypeError(f"gramian must be a torch.Tensor, got {type(gramian).__name__}")
        options: dict[str, Any] = {}
        if self.tol is not None:
            options["tol"] = self.tol
        if self.max_iter is not None:
            options["max_iter"] = self.max_iter
        with torch.no_grad():
            res = solve_simplex_qp(gramian.detach(), method=self.method, **options)
        if not res.success:
            raise RuntimeError(f"ExactMGDAWeighting: solve_simplex_qp(method={self.method!r}) "
                               f"did not succeed: {res.message}")
        x: Tensor = res.x
        return x

    def extra_repr(self) -> str:
        return f"method={self.method!r}, tol={self.tol}, max_iter={self.max_iter}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class ExactMGDA(GramianWeightedAggregator):
    r"""TorchJD ``Aggregator``: the min-norm element of the convex hull of the rows of
    :math:`J`, :math:`d = J^\top\alpha^\star` with :math:`\alpha^\star` from
    :class:`ExactMGDAWeighting` of :math:`G = JJ^\top`.

    Parameters
    ----------
    method, tol, max_iter
        As in :class:`ExactMGDAWeighting`.

    The aggregation :math:`d` is unique (even when :math:`\alpha^\star` is not), satisfies
    :math:`J d \ge \|d\|^2 \mathbf 1` (non-conflicting), is invariant under a permutation of
    the rows and scales linearly with :math:`J` (:math:`cJ \mapsto c\,d` for :math:`c > 0`).
    Cost: the Gramian (:math:`O(T^2 n)`), the solve, and :math:`J^\top\alpha`
    (:math:`O(Tn)`).

    Examples
    --------
    >>> import torch
    >>> from torchjd.autojac import backward, jac_to_grad
    >>> param = torch.tensor([1.0, 0.5], requires_grad=True)
    >>> y1 = torch.tensor([-1.0, 1.0]) @ param
    >>> y2 = (param ** 2).sum()
    >>> backward([y1, y2])                             # param.jac holds the 2 x 2 Jacobian
    >>> weights = jac_to_grad([param], ExactMGDA())   # param.grad = min-norm direction
    >>> weights                                        # rows (-1, 1) and (2, 1)
    tensor([0.6667, 0.3333])
    >>> param.grad
    tensor([0., 1.])
    """

    gramian_weighting: ExactMGDAWeighting

    def __init__(self, method: QPMethod = "active_set", *, tol: float | None = None,
                 max_iter: int | None = None) -> None:
        super().__init__(ExactMGDAWeighting(method, tol=tol, max_iter=max_iter))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.gramian_weighting.extra_repr()})"

    def __str__(self) -> str:
        return "ExactMGDA"
