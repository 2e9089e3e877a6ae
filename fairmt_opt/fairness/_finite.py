r"""The finiteness rule for per-row values, shared by the fairness and the torch layers.

**Rule.** Outputs (and, in training, the representations :math:`h`) must be finite on *every*
row of a batch, labelled or not; targets only on the rows labelled for their task. A row that
no task labels still enters a training step: its outputs are computed from :math:`h` and the
backward pass multiplies its (zero) loss weight by local derivatives taken at its values, and
:math:`0 \cdot \mathrm{NaN} = \mathrm{NaN}` would reach every shared parameter (a linear head's
weight gradient is :math:`\sum_i g_i h_i^\top` over all rows). The evaluation functions apply
the same rule to their outputs, so one batch is accepted or refused alike by both. The error
names the argument, the task and the first offending row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._utils.array import is_torch

__all__ = ["check_finite_rows", "first_nonfinite_row"]


def first_nonfinite_row(x: Any) -> int | None:
    """Index of the first row (along axis 0) of ``x`` holding a NaN or an infinity, ``None``
    when every value is finite. NumPy arrays or torch tensors; one reduction when all is
    finite (on a GPU: one host read), the row search only on failure. Cost :math:`O(x.size)`.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness._finite import first_nonfinite_row
    >>> first_nonfinite_row(np.array([[0.0, 1.0], [2.0, np.inf], [np.nan, 0.0]]))
    1
    >>> first_nonfinite_row(np.zeros(3)) is None
    True
    """
    if is_torch(x):
        import torch

        ok = torch.isfinite(x)
        if bool(ok.all()):
            return None
        bad_rows = ~ok.reshape(ok.shape[0], -1).all(dim=1)
        return int(torch.nonzero(bad_rows)[0, 0])
    a = np.asarray(x)
    ok_np = np.isfinite(a)
    if bool(ok_np.all()):
        return None
    return int(np.flatnonzero(~ok_np.reshape(a.shape[0], -1).all(axis=1))[0])


def check_finite_rows(x: Any, name: str, *, task: str | None = None,
                      masks: Sequence[tuple[str, Any]] = ()) -> None:
    """Raise ``ValueError`` if ``x`` holds a NaN or an infinity on any row (the rule of the
    module docstring), naming ``name``, the ``task`` and the first offending row; ``masks``
    (``(task name, (N,) bool mask)`` pairs) let the message say which tasks label that row.

    Examples
    --------
    >>> import numpy as np
    >>> from fairmt_opt.fairness._finite import check_finite_rows
    >>> check_finite_rows(np.array([0.0, np.nan]), "outputs", task="y",
    ...                   masks=[("y", np.array([True, False]))])
    Traceback (most recent call last):
    ...
    ValueError: task 'y': outputs contain NaN or inf on row 1 of 2 (labelled in no task; every row of a batch must be finite, labelled or not)
    """  # noqa: E501
    i = first_nonfinite_row(x)
    if i is None:
        return
    where = f"task {task!r}: " if task is not None else ""
    labelled = [t for t, m in masks if bool(m[i])]
    which = (f"labelled in task(s) {labelled}" if labelled else "labelled in no task") if masks \
        else "a row of the batch"
    raise ValueError(
        f"{where}{name} contain NaN or inf on row {i} of {int(x.shape[0])} ({which}; every row "
        "of a batch must be finite, labelled or not)"
    )
