"""Non-finite values on rows that no task labels: refused by check_batch and by every method's
step before anything is computed (the parameters stay as they were), with the row named."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch_models import TASKS3, MTModel, make_batch

from fairmt_opt.fairness import Task, evaluate_task
from fairmt_opt.fairness._finite import check_finite_rows, first_nonfinite_row
from fairmt_opt.torch import check_batch, make_method
from fairmt_opt.torch.methods import METHODS


def _unlabelled_everywhere(b: dict) -> int:
    """Make row 7 unlabelled in every task and return it."""
    b["masks"][7] = False
    return 7


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("where", ["nan_feature", "inf_representation"])
def test_a_bad_row_that_no_task_labels_is_refused_by_every_method(name: str, where: str) -> None:
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 32, 4)
    row = _unlabelled_everywhere(b)
    if where == "nan_feature":
        b["x"][row, 2] = math.nan
        h = model.encoder(b["x"])
    else:  # the representation itself overflows on that row (still in the graph)
        h = model.encoder(b["x"])
        h = torch.where((torch.arange(32) == row)[:, None], torch.full_like(h, math.inf), h)
    outs = [hd(h) for hd in model.heads]
    kw = {"shared_parameters": list(model.encoder.parameters())} if name == "mgda" else {}
    m = make_method(name, TASKS3, 2, eta=0.5, **kw)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    before = _params(model)
    opt.zero_grad()
    with pytest.raises(ValueError, match=rf"the representations h contain NaN or inf on row "
                                         rf"{row} of 32 \(labelled in no task"):
        m.compute(h, outs, b["targets"], b["masks"], b["groups"], heads=list(model.heads))
    opt.step()  # no gradient was produced: nothing moves
    for p, q in zip(before, model.parameters(), strict=True):
        assert torch.equal(p, q.detach())
    assert m.state.num_steps == 0


def test_without_the_check_the_unlabelled_row_does_poison_the_step() -> None:
    """Why the rule exists: with the checks off, the same batch makes the gradients NaN even
    though the row's losses carry zero weight."""
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 32, 4)
    row = _unlabelled_everywhere(b)
    b["x"][row, 0] = math.nan
    m = make_method("linear", TASKS3, 2, check_inputs=False)  # no QP to trip over K
    h, outs = model(b["x"])
    out = m.compute(h, outs, b["targets"], b["masks"], b["groups"], heads=list(model.heads))
    out.loss.backward()
    assert any(not bool(torch.isfinite(p.grad).all()) for p in model.parameters()
               if p.grad is not None)


@pytest.mark.parametrize("task_index", [0, 1, 2])
def test_a_bad_output_on_a_row_unlabelled_for_its_task_names_task_and_row(
        task_index: int) -> None:
    b = make_batch(TASKS3, 20, 4)
    model = MTModel(TASKS3, 4, 6)
    h, outs = model(b["x"])
    b["masks"][5] = torch.tensor([True, True, True])
    b["masks"][5, task_index] = False
    outs = [o.detach().clone() for o in outs]
    outs[task_index][5] = math.nan
    name = TASKS3[task_index].name
    others = [t.name for j, t in enumerate(TASKS3) if j != task_index]
    msg = f"task '{name}': outputs contain NaN or inf on row 5 of 20 (labelled in task(s) {others}"
    with pytest.raises(ValueError, match=re.escape(msg)):
        check_batch(TASKS3, h.detach(), outs, b["targets"], list(b["masks"].unbind(1)),
                    b["groups"], 2)
    # with values=False only the shapes are checked (the caller's responsibility)
    check_batch(TASKS3, h.detach(), outs, b["targets"], list(b["masks"].unbind(1)),
                b["groups"], 2, values=False)


def test_unlabelled_targets_may_hold_anything() -> None:
    """Targets are read on labelled entries only: NaN or -1 elsewhere is fine."""
    b = make_batch(TASKS3, 20, 4)  # NaN / -1 targets where unlabelled
    model = MTModel(TASKS3, 4, 6)
    h, outs = model(b["x"])
    assert torch.isnan(b["targets"][2][~b["masks"][:, 2]]).all()
    check_batch(TASKS3, h, outs, b["targets"], list(b["masks"].unbind(1)), b["groups"], 2)
    out = make_method("fairmt", TASKS3, 2).compute(h, outs, b["targets"], b["masks"],
                                                   b["groups"], heads=list(model.heads))
    out.loss.backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def test_evaluation_applies_the_same_rule_to_outputs() -> None:
    """evaluate_task refuses a NaN output on an unlabelled row, as check_batch now does."""
    det = Task("d", "detection")
    z = np.array([1.0, np.nan, -1.0, 2.0])
    with pytest.raises(ValueError, match="NaN or inf"):
        evaluate_task(det, z, [1, 0, 0, 1], [True, False, True, True], [0, 0, 1, 1], 2)
    with pytest.raises(ValueError, match="task 'd': outputs contain NaN or inf on row 1"):
        check_batch([det], None, [torch.tensor(z)], [torch.tensor([1.0, 0.0, 0.0, 1.0])],
                    [torch.tensor([True, False, True, True])], torch.tensor([0, 0, 1, 1]), 2)


def test_first_nonfinite_row_numpy_and_torch_agree() -> None:
    x = np.zeros((6, 2, 3))
    assert first_nonfinite_row(x) is None and first_nonfinite_row(torch.tensor(x)) is None
    x[4, 1, 2] = -np.inf
    x[5, 0, 0] = np.nan
    assert first_nonfinite_row(x) == 4 == first_nonfinite_row(torch.tensor(x))
    with pytest.raises(ValueError, match=r"^outputs contain NaN or inf on row 4 of 6 \(a row"):
        check_finite_rows(x, "outputs")
