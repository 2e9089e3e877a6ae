"""Resume ``k + k = 2k`` bit for bit on CPU, for every method and every QP method: 2k steps
straight against k steps, a save, a new trainer, a load and k more steps; every parameter,
the optimizer state, the method state (dual variable, warm starts), the history and the
random-number generators compare equal with ``torch.equal`` / exact float equality."""

from __future__ import annotations

import importlib.util
import pathlib
from typing import Any

import pytest
import torch
from test_checkpoint import assert_same, make_split, make_trainer

from fairmt_opt.torch import METHODS, Trainer

QP_METHODS = ["active_set", "frank_wolfe", "away", "pairwise", "apg"]
OPTIONAL_QP = [m for m, mod in (("daqp", "daqp"), ("proxsuite", "proxsuite"))
               if importlib.util.find_spec(mod) is not None]


def _resume_state(tr: Trainer) -> dict[str, Any]:
    s = tr.state_dict()
    s.pop("seconds")  # wall-clock time: the one quantity that is not reproducible
    return s


def _check_resume(tmp_path: pathlib.Path, method: str, k: int = 2, *, fit: bool = False,
                  **options: Any) -> None:
    data = make_split(100)  # 100 rows / 48: the resumed run starts mid-epoch, crosses its end
    val = make_split(40, seed=1)

    def more(tr: Trainer) -> None:
        if fit:  # finish the epoch in progress and one more, evaluating every 2 steps
            tr.fit(data, epochs=2, val=val, eval_every=2)
        else:
            tr.train(data, steps=k)

    ref = make_trainer(method, **options)
    ref.train(data, steps=k)
    more(ref)
    a = make_trainer(method, **options)
    a.train(data, steps=k)
    path = tmp_path / "ckpt.pt"
    a.save(path)
    b = make_trainer(method, **options)
    torch.manual_seed(1234)  # scramble the global RNG (dropout): the checkpoint restores it
    b.train(make_split(100, seed=5), steps=1)  # and a trainer that already moved
    b.load(path)
    assert b.step == k
    more(b)
    assert b.step == ref.step
    for (n, x), (_, y) in zip([*ref.encoder.named_parameters(),
                               *((f"head{i}.{m}", q) for i, h in enumerate(ref.heads)
                                 for m, q in h.named_parameters())],
                              [*b.encoder.named_parameters(),
                               *((f"head{i}.{m}", q) for i, h in enumerate(b.heads)
                                 for m, q in h.named_parameters())]):
        assert torch.equal(x, y), n
    assert_same(ref.optimizer.state_dict(), b.optimizer.state_dict(), "optimizer")
    assert_same(ref.method.state_dict(), b.method.state_dict(), "method")
    assert_same(ref.history, b.history, "history")
    assert_same(ref.evaluations, b.evaluations, "evaluations")
    assert_same(_resume_state(ref), _resume_state(b), "trainer")


def _cases() -> list[Any]:
    return [pytest.param(method, qp, id=f"{method}-{qp}") for method in METHODS
            for qp in QP_METHODS]


@pytest.mark.parametrize(("method", "qp_method"), _cases())
def test_resume_is_bit_exact(tmp_path: pathlib.Path, method: str, qp_method: str) -> None:
    _check_resume(tmp_path, method, qp_method=qp_method)


@pytest.mark.parametrize("qp_method", OPTIONAL_QP)
@pytest.mark.parametrize("method", ["fairmt", "mgda_ub"])
def test_resume_is_bit_exact_optional_solvers(tmp_path: pathlib.Path, method: str,
                                              qp_method: str) -> None:
    _check_resume(tmp_path, method, qp_method=qp_method)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("cvxpy") is None, reason="cvxpy not installed")
def test_resume_is_bit_exact_cvxpy(tmp_path: pathlib.Path) -> None:
    _check_resume(tmp_path, "fairmt", qp_method="cvxpy")


@pytest.mark.parametrize("options", [{"dual_mode": "running_mean"}, {"warm_start": False},
                                     {"aggregation": "away"}, {"dropout": 0.0}])
def test_resume_is_bit_exact_other_options(tmp_path: pathlib.Path, options: dict) -> None:
    _check_resume(tmp_path, "fairmt", **options)


@pytest.mark.parametrize("method", ["fairmt", "mgda"])
def test_resume_within_fit_keeps_evaluations(tmp_path: pathlib.Path, method: str) -> None:
    _check_resume(tmp_path, method, k=4, fit=True)
