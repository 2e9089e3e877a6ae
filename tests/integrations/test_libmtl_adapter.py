"""The LibMTL adapter (ExactMGDA): a few steps through LibMTL's own Trainer update the
parameters, with every gradient normalisation and both gradient modes; the weights are the
exact min-norm weights of the per-task gradients; bad options are rejected."""

from __future__ import annotations

import contextlib
import importlib.util
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("LibMTL") is None:
    pytest.skip("LibMTL is not installed", allow_module_level=True)

# the adapter first: without torchvision it registers LibMTL without running its __init__
importlib.import_module("fairmt_opt.integrations.libmtl")
from LibMTL.architecture import HPS  # noqa: E402
from LibMTL.loss import CELoss  # noqa: E402
from LibMTL.metrics import AccMetric  # noqa: E402
from LibMTL.trainer import Trainer  # noqa: E402

import fairmt_opt as fo  # noqa: E402
from fairmt_opt.integrations.libmtl import MGDA_GN, ExactMGDA, register  # noqa: E402


class CPUTrainer(Trainer):  # type: ignore[misc]
    """LibMTL 1.1.5's Trainer fixes the device to cuda:0 and calls the Python 2 ``.next()``."""

    def _prepare_model(self, *args):  # type: ignore[no-untyped-def]
        self.device = torch.device("cpu")
        super()._prepare_model(*args)

    def _process_data(self, loader):  # type: ignore[no-untyped-def]
        try:
            return next(loader[1])
        except StopIteration:
            loader[1] = iter(loader[0])
            return next(loader[1])


class SharedHPS(HPS):  # type: ignore[misc]
    """Keeps the shared gradients allocated (LibMTL 1.1.5 relies on zero_grad not freeing
    them, the default before torch 2.0)."""

    def zero_grad_share_params(self) -> None:
        self.encoder.zero_grad(set_to_none=False)


TASKS = ("a", "b", "c")


def _data() -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 5, generator=g)
    ys = {"a": (x[:, 0] > 0).long(), "b": (x[:, 1] + x[:, 2] > 0).long(),
          "c": (x[:, 0] * x[:, 3] > 0).long()}
    rows = [(x[i], {t: ys[t][i] for t in TASKS}) for i in range(len(x))]
    return torch.utils.data.DataLoader(rows, batch_size=16)


def _trainer(weighting: type, rep_grad: bool, mgda_gn: str) -> CPUTrainer:
    torch.manual_seed(0)
    task_dict = {t: {"metrics": ["Acc"], "metrics_fn": AccMetric(), "loss_fn": CELoss(),
                     "weight": [1]} for t in TASKS}
    with contextlib.redirect_stdout(io.StringIO()):
        return CPUTrainer(
            task_dict=task_dict, weighting=weighting, architecture=SharedHPS,
            encoder_class=lambda: torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.ReLU()),
            decoders=torch.nn.ModuleDict({t: torch.nn.Linear(12, 2) for t in TASKS}),
            rep_grad=rep_grad, multi_input=False, optim_param={"optim": "sgd", "lr": 0.1},
            scheduler_param=None, weight_args={"mgda_gn": mgda_gn}, arch_args={})


@pytest.mark.parametrize("rep_grad", [False, True], ids=["params", "rep_grad"])
@pytest.mark.parametrize("mgda_gn", MGDA_GN)
def test_trainer_runs_and_updates_parameters(mgda_gn: str, rep_grad: bool) -> None:
    trainer = _trainer(ExactMGDA, rep_grad, mgda_gn)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    loader = _data()
    with contextlib.redirect_stdout(io.StringIO()):
        weights = trainer.train(loader, loader, epochs=2, return_weight=True)
    assert weights.shape == (3, 2, 3)
    assert np.all(weights >= 0) and np.allclose(weights.sum(0), 1.0, atol=1e-6)
    moved = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    assert any(n.startswith("encoder") for n in moved) and any("decoders" in n for n in moved)


def test_weights_are_the_min_norm_weights_of_the_task_gradients() -> None:
    """One backward by hand: the returned weights certify as optimal for the Gramian of the
    per-task gradients of the shared parameters, and the shared gradient is J^T alpha."""
    trainer = _trainer(ExactMGDA, False, "none")
    model = trainer.model
    x, y = next(iter(_data()))
    preds = model(x)
    losses = torch.stack([torch.nn.functional.cross_entropy(preds[t], y[t]) for t in TASKS])
    shared = list(model.get_share_params())
    J = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        losses[i], shared, retain_graph=True)]) for i in range(3)])
    alpha = model.backward(losses, mgda_gn="none")
    G = (J @ J.T).double().numpy()
    assert fo.certify_simplex_qp(G, None, alpha.astype(np.float64), rtol=1e-4).ok
    grad = torch.cat([p.grad.reshape(-1) for p in model.get_share_params()])
    torch.testing.assert_close(grad, torch.as_tensor(alpha, dtype=J.dtype) @ J,
                               rtol=1e-4, atol=1e-6)


def test_unknown_normalisation_is_rejected() -> None:
    trainer = _trainer(ExactMGDA, False, "666")
    loader = _data()
    with pytest.raises(ValueError, match="mgda_gn"), contextlib.redirect_stdout(io.StringIO()):
        trainer.train(loader, loader, epochs=1)


def test_register_by_name() -> None:
    import LibMTL.weighting

    assert register("ExactMGDA") is ExactMGDA
    assert LibMTL.weighting.ExactMGDA is ExactMGDA
    with pytest.raises(ValueError, match="name"):
        register("not a name")
