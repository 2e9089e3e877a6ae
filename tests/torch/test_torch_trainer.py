"""Trainer: training, evaluation every k steps and per epoch, callbacks, history, row checks,
the evaluation against the fairness layer's own functions."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_checkpoint import TASKS, make_split, make_trainer

from fairmt_opt import aggregate_violations
from fairmt_opt.fairness import evaluate_task, soft_violation
from fairmt_opt.torch import Batch, Trainer, as_batch


def test_fit_evaluates_and_records_history() -> None:
    tr = make_trainer("fairmt")
    train, val = make_split(100, 0), make_split(60, 1)
    tr.fit(train, epochs=2, val=val)
    assert tr.step == 6 and len(tr.history) == 6 and len(tr.evaluations) == 2
    assert [e["step"] for e in tr.evaluations] == [3, 6]
    ev = tr.evaluations[-1]
    for key in ("det/eod", "det/accuracy", "cls/macro_f1", "reg/mae", "phi", "psi/reg",
                "loss/cls", "epoch"):
        assert key in ev
    row = tr.history[-1]
    assert set(row) >= {"step", "epoch", "loss", "grad_norm", "losses", "psi", "phi", "alpha",
                        "weights", "eta"}
    assert [r["step"] for r in tr.history] == list(range(6))  # steps taken before the batch
    assert np.isfinite(row["loss"]) and row["grad_norm"] > 0
    assert tr.seconds > 0
    assert "Trainer(" in repr(tr) and "Batch(" in repr(as_batch(train))


def test_log_every_and_drop_last() -> None:
    tr = make_trainer("linear")
    tr.log_every = 2
    tr.fit(make_split(100), epochs=2)
    assert tr.step == 6 and [r["step"] for r in tr.history] == [0, 2, 4]
    short = make_trainer("linear")
    short.drop_last = True
    short.fit(make_split(100), epochs=2)  # 100 // 48 = 2 steps per epoch
    assert short.step == 4 and short.epoch == 1
    with pytest.raises(ValueError, match="fewer than one minibatch"):
        short.train(make_split(30), steps=1)


def test_eval_every_and_callback() -> None:
    tr = make_trainer("fairmt")
    seen: list[int] = []
    tr.fit(make_split(100), epochs=2, val=make_split(40, 1), eval_every=4,
           callback=lambda t: seen.append(t.step))
    assert seen == [4, 6]  # every 4 steps and after the last one
    assert [e["step"] for e in tr.evaluations] == [4, 6]
    tr.fit(make_split(100), epochs=1, eval_every=3, callback=lambda t: seen.append(t.step))
    assert seen == [4, 6, 9]  # counted from the trainer's first step: 9 is a multiple of 3
    with pytest.raises(ValueError, match="eval_every"):
        tr.fit(make_split(100), epochs=1, eval_every=-1)


def test_evaluation_is_the_fairness_layer() -> None:
    tr = make_trainer("fairmt")
    val = make_split(80, 2)
    tr.train(make_split(100), steps=3)
    rep = tr.report(val, train_median={"reg": 0.1})
    with torch.no_grad():
        outs = [z.double().numpy() for z in tr.forward(torch.as_tensor(val.X))[1]]
    psi = []
    for t, task in enumerate(TASKS):
        z = outs[t][:, 0] if task.out_dim == 1 else outs[t]
        want = evaluate_task(task, z, val.targets[t], val.mask[:, t], val.groups, 2,
                             train_median=0.1 if task.kind == "regression" else None)
        assert rep.metrics[task.name].keys() == want.keys()
        for k, v in want.items():
            assert rep.metrics[task.name][k] == pytest.approx(v, rel=1e-6, abs=1e-9, nan_ok=True)
        psi.append(float(np.asarray(soft_violation(task, z, val.targets[t], val.mask[:, t],
                                                   val.groups, 2).value)))
        assert rep.psi[task.name] == pytest.approx(psi[-1], rel=1e-6, abs=1e-9)
    assert rep.phi == pytest.approx(float(aggregate_violations(np.array(psi), 0.1).value),
                                    rel=1e-6)
    assert tr.report(val, mu=1.0).phi != pytest.approx(rep.phi)
    flat = tr.evaluate(val)
    assert flat["phi"] == pytest.approx(rep.phi) and flat["psi/det"] == rep.psi["det"]
    assert "Evaluation(" in repr(rep)


def test_trainer_bad_arguments() -> None:
    tr = make_trainer()
    with pytest.raises(ValueError, match="heads must hold one module per task"):
        Trainer(tr.encoder, tr.heads[:2], tr.method, tr.optimizer)
    for kw in ({"batch_size": 0}, {"log_every": 0}, {"batch_size": True}, {"seed": 1.5}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            Trainer(tr.encoder, tr.heads, tr.method, tr.optimizer, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "message"), [
    ("target", r"targets\[1\] has 99 rows but X has 100"),
    ("mask", r"mask has 98 rows but X has 100"),
    ("groups", r"groups has 101 rows but X has 100"),
    ("mask_columns", r"mask must have shape \(N, T\) = \(100, 3\)"),
    ("targets", r"the data has 2 target arrays but the method has 3 tasks"),
])
def test_rows_are_checked(field: str, message: str) -> None:
    s = make_split(100)
    targets, mask, groups = list(s.targets), s.mask, s.groups
    if field == "target":
        targets[1] = targets[1][:99]
    elif field == "mask":
        mask = mask[:98]
    elif field == "groups":
        groups = np.concatenate([groups, [0]])
    elif field == "mask_columns":
        mask = mask[:, :2]
    else:
        targets = targets[:2]
        mask = mask[:, :2]
    bad = SimpleNamespace(X=s.X, targets=tuple(targets), mask=mask, groups=groups)
    tr = make_trainer()
    before = copy.deepcopy(tr.state_dict())
    with pytest.raises(ValueError, match=message):
        tr.train(bad, steps=1)
    with pytest.raises(ValueError, match=message):
        tr.fit(bad, epochs=1)
    assert tr.step == 0 and torch.equal(before["encoder"]["0.weight"],
                                        tr.encoder.state_dict()["0.weight"])
    if field != "targets":
        with pytest.raises(ValueError, match=message):
            Batch(torch.as_tensor(s.X), tuple(torch.as_tensor(y) for y in targets),
                  torch.as_tensor(mask), torch.as_tensor(groups))


def test_data_of_another_size_in_the_middle_of_an_epoch() -> None:
    tr = make_trainer()
    tr.train(make_split(100), steps=1)
    with pytest.raises(ValueError, match="the epoch in progress was drawn for 100"):
        tr.train(make_split(80), steps=1)


def test_state_dict_is_a_snapshot() -> None:
    tr = make_trainer()
    data = make_split(100, 0)
    tr.train(data, steps=2)
    s = copy.deepcopy(tr.state_dict())
    tr.train(data, steps=2)
    tr.load_state_dict(s)
    assert tr.step == 2 and len(tr.history) == 2
