"""Trainer: training, evaluation, history, checkpoint round trip bit for bit on CPU."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from test_torch_helpers import TASKS3, make_batch

from fairmt_opt.torch import Trainer, as_batch, make_method


def _split(n: int, seed: int) -> SimpleNamespace:
    b = make_batch(TASKS3, n, 5, seed=seed)
    return SimpleNamespace(X=b["x"].numpy(), targets=tuple(y.numpy() for y in b["targets"]),
                           mask=b["masks"].numpy(), groups=b["groups"].numpy())


def _trainer(method: str = "fairmt", **kw: object) -> Trainer:
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(16, 8), torch.nn.Tanh())
    heads = torch.nn.ModuleList([torch.nn.Linear(8, t.out_dim) for t in TASKS3])
    opt = torch.optim.Adam([*enc.parameters(), *heads.parameters()], lr=1e-2)
    extra = {"shared_parameters": enc.parameters()} if method == "mgda" else {}
    m = make_method(method, TASKS3, 2, eps=0.01, rho=0.5, **{**extra, **kw})
    return Trainer(enc, heads, m, opt, batch_size=48, seed=3)


def _params(tr: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in [*tr.encoder.parameters(),
                                         *(q for h in tr.heads for q in h.parameters())]]


@pytest.mark.parametrize(("method", "kw"), [("fairmt", {}), ("fairmt", {"dual_mode":
                                                                         "running_mean"}),
                                            ("mgda_ub", {}), ("mgda", {})])
def test_checkpoint_round_trip_is_bit_exact(tmp_path: object, method: str, kw: dict) -> None:
    data = _split(100, 0)  # 100 / 48: the third step ends an epoch mid-way
    k = 4
    ref = _trainer(method, **kw)
    ref.train(data, steps=2 * k)
    a = _trainer(method, **kw)
    a.train(data, steps=k)
    path = f"{tmp_path}/ckpt.pt"
    a.save(path)
    a.train(data, steps=3)  # diverge, then load into a fresh trainer
    b = _trainer(method, **kw)
    torch.manual_seed(123)  # scramble the global RNG: the checkpoint must restore it
    b.load(path)
    b.train(data, steps=k)
    for x, y in zip(_params(ref), _params(b)):
        assert torch.equal(x, y)
    assert float(ref.method.eta) == float(b.method.eta)
    assert [h["loss"] for h in ref.history] == [h["loss"] for h in b.history]
    assert b.step == 2 * k and b.epoch == ref.epoch


def test_fit_evaluates_and_records_history() -> None:
    tr = _trainer("fairmt")
    train, val = _split(100, 0), _split(60, 1)
    tr.fit(train, epochs=2, val=val)
    assert tr.step == 6 and len(tr.history) == 6 and len(tr.evaluations) == 2
    ev = tr.evaluations[-1]
    for key in ("det/eod", "det/accuracy", "cls/macro_f1", "reg/mae", "phi", "psi/reg",
                "loss/cls"):
        assert key in ev
    row = tr.history[-1]
    assert set(row) >= {"step", "epoch", "loss", "losses", "psi", "phi", "alpha", "eta"}
    assert np.isfinite(row["loss"])
    assert "Trainer(" in repr(tr) and "Batch(" in repr(as_batch(train))


def test_trainer_bad_arguments() -> None:
    tr = _trainer()
    with pytest.raises(ValueError, match="heads must hold one module per task"):
        Trainer(tr.encoder, tr.heads[:2], tr.method, tr.optimizer)
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(tr.encoder, tr.heads, tr.method, tr.optimizer, batch_size=0)


def test_state_dict_is_a_snapshot() -> None:
    tr = _trainer()
    data = _split(100, 0)
    tr.train(data, steps=2)
    s = copy.deepcopy(tr.state_dict())
    tr.train(data, steps=2)
    tr.load_state_dict(s)
    assert tr.step == 2 and len(tr.history) == 2
