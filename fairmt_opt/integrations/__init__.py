r"""Adapters that put the exact min-norm (MGDA) solver of :func:`fairmt_opt.solve_simplex_qp`
into other multi-task libraries (layer 3, beside :mod:`fairmt_opt.torch`).

Each adapter is a submodule that imports its host library when it is itself imported, so this
package imports nothing beyond its own name:

* :mod:`fairmt_opt.integrations.torchjd`: ``ExactMGDAWeighting`` (a TorchJD ``Weighting`` of
  the Gramian) and ``ExactMGDA`` (the ``Aggregator`` built from it), for
  ``torchjd.autojac.jac_to_grad`` and the autogram engine; extra ``fairmt_opt[torchjd]``.
* :mod:`fairmt_opt.integrations.libmtl`: ``ExactMGDA``, a LibMTL weighting (``weighting=``
  of LibMTL's ``Trainer``); extra ``fairmt_opt[libmtl]``.

Both solve, for the Gramian :math:`G = JJ^\top` of the task gradients (the rows of :math:`J`),

.. math::
    \alpha^\star \in \arg\min_{\alpha \in \Delta} \tfrac12 \alpha^\top G \alpha,
    \qquad d = J^\top \alpha^\star,

with the exact active-set method (finite termination, no ridge on a singular :math:`G`), where
the host libraries run a budgeted Frank–Wolfe loop.
"""

__all__: list[str] = []
