"""FairMT as a composition of parts: each part against the lower layers' formulas, the step
against the Lagrangian written out by hand, user-supplied losses and proxies, the state."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from torch_models import MTModel, make_batch

from fairmt_opt import DualAscent
from fairmt_opt.fairness import RunningScale, Task, masked_loss, soft_violation
from fairmt_opt.simplex import aggregate_violations
from fairmt_opt.torch import (
    FairMT,
    FairnessConstraint,
    FullProxy,
    HeadProxy,
    QPSolver,
    RepresentationProxy,
    TaskLosses,
    UniformProxy,
    make_method,
)
from fairmt_opt.torch.proxies import Proxy, ProxyInputs, QPData

MIXED = (Task("d0", "detection"), Task("c3", "classification", num_classes=3),
         Task("r0", "regression"), Task("d1", "detection"),
         Task("c4", "classification", num_classes=4), Task("c3b", "classification",
                                                           num_classes=3),
         Task("r1", "regression"))


def _outputs(model: MTModel, batch: dict) -> tuple[torch.Tensor, list[torch.Tensor]]:
    return model(batch["x"])


@pytest.mark.parametrize(
    "options",
    [{}, {"symmetric": True}, {"group_reduction": "max"}, {"include_fpr": False},
     {"regression_score": "mse", "scale": 0.5}, {"regression_score": "ccc"},
     {"temperature": 0.3}],
    ids=["default", "symmetric", "max", "no_fpr", "mse_scaled", "ccc", "tau"])
@pytest.mark.parametrize("num_groups", [2, 3])
def test_constraint_equals_the_per_task_functions(options: dict, num_groups: int) -> None:
    """The stacked violations are, task by task, soft_violation of the fairness layer, with
    sparse labels (empty cells) and a task without any label; same gradients."""
    b = make_batch(MIXED, 30, 3, num_groups, seed=2, label_rate=0.4, dtype=torch.float64)
    b["masks"][:, 3] = False
    g = torch.Generator().manual_seed(3)
    outs = [torch.randn(30, t.out_dim, generator=g, dtype=torch.float64, requires_grad=True)
            for t in MIXED]
    masks = list(b["masks"].unbind(1))
    c = FairnessConstraint(MIXED, num_groups, **options)
    got = c(outs, b["targets"], masks, b["groups"]).psi
    opts = {k: v for k, v in options.items() if k != "temperature"}
    want = torch.stack([soft_violation(t, z, y, m, b["groups"], num_groups,
                                       temperature=options.get("temperature", 1.0),
                                       **opts).value
                        for t, z, y, m in zip(MIXED, outs, b["targets"], masks)])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    assert float(got[3]) == 0.0
    w = torch.linspace(0.2, 1.0, len(MIXED), dtype=torch.float64)
    g1 = torch.autograd.grad((w * got).sum(), outs, retain_graph=True, materialize_grads=True)
    g2 = torch.autograd.grad((w * want).sum(), outs, materialize_grads=True)
    for x, y in zip(g1, g2):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-14)


def test_constraint_aggregation_is_the_layer_one_aggregation() -> None:
    c = FairnessConstraint([Task(f"t{i}", "detection") for i in range(4)], 2, mu=0.2)
    psi = torch.tensor([0.3, 0.0, 0.25, 0.9], dtype=torch.float64, requires_grad=True)
    present = torch.tensor([True, True, True, False])
    v = c.aggregate(psi, present)
    ref = aggregate_violations(psi.detach().numpy()[:3], 0.2)
    np.testing.assert_allclose(v.weights.numpy()[:3], ref.weights, atol=1e-15)
    assert float(v.weights[3]) == 0.0
    assert abs(float(v.phi) - float(ref.value)) < 1e-15
    (grad,) = torch.autograd.grad(v.phi, psi)  # Danskin: ∇ψ Φ = w*
    torch.testing.assert_close(grad, v.weights)


def _lagrangian_by_hand(fm: FairMT, outs: list, b: dict, alpha_tilde: torch.Tensor,
                        eta: float) -> torch.Tensor:
    """Σ_t α̃_t L_t + η Φ(ψ) from the fairness layer's per-task functions."""
    masks = list(b["masks"].unbind(1))
    losses = torch.stack([masked_loss(t, z, y, m).value
                          for t, z, y, m in zip(fm.tasks, outs, b["targets"], masks)])
    psi = torch.stack([soft_violation(t, z, y, m, b["groups"], fm.num_groups).value
                       for t, z, y, m in zip(fm.tasks, outs, b["targets"], masks)])
    present = b["masks"].any(0)
    phi = fm.constraint.aggregate(psi, present).phi
    return (alpha_tilde * losses).sum() + eta * phi


@pytest.mark.parametrize(("proxy", "mlp_heads", "mask_list"), [
    ("head", False, False), ("head", True, True), ("rep", False, False),
    ("full", False, True), ("none", False, False)])
def test_step_gradient_is_the_gradient_of_the_lagrangian(proxy: str, mlp_heads: bool,
                                                         mask_list: bool) -> None:
    """The loss returned (formed at the head outputs from the logit gradients) has the value
    and the parameter gradient of Σ α̃_t L_t + η Φ with α̃ held fixed, with an absent task."""
    model = MTModel(MIXED, 4, 6, dtype=torch.float64, mlp_heads=mlp_heads)
    b = make_batch(MIXED, 50, 4, 3, seed=4, dtype=torch.float64)
    b["masks"][:, 4] = False
    extra = {"shared_parameters": list(model.encoder.parameters())} if proxy == "full" else {}
    fm = make_method("fairmt", MIXED, 3, eta=0.7, proxy=proxy, **extra)
    h, outs = _outputs(model, b)
    masks = list(b["masks"].unbind(1)) if mask_list else b["masks"]
    step = fm.compute(h, outs, b["targets"], masks, b["groups"], heads=list(model.heads))
    r = step.record
    params = list(model.parameters())
    got = torch.autograd.grad(step.loss, params, allow_unused=True, materialize_grads=True)
    _, outs2 = _outputs(model, b)
    lag = _lagrangian_by_hand(fm, outs2, b, r.alpha_tilde, 0.7)
    want = torch.autograd.grad(lag, params, allow_unused=True, materialize_grads=True)
    torch.testing.assert_close(step.loss.detach(), lag.detach(), rtol=1e-12, atol=1e-14)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)
    assert float(r.alpha[4]) == 0.0 and float(r.weights[4]) == 0.0


def test_custom_losses_replace_the_built_in_ones() -> None:
    tasks = (Task("d", "detection"), Task("r", "regression"))
    b = make_batch(tasks, 40, 3, dtype=torch.float64, seed=1)
    model = MTModel(tasks, 3, 5, dtype=torch.float64)

    def huber(z: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        assert bool(torch.isfinite(y).all())  # unlabelled NaN targets never reach the user
        return torch.nn.functional.huber_loss(z.reshape(-1), y, reduction="none", delta=0.5)

    fm = make_method("fairmt", tasks, 2, eta=0.3, losses=[None, huber])
    h, outs = _outputs(model, b)
    r = fm.compute(h, outs, b["targets"], b["masks"], b["groups"], heads=list(model.heads)).record
    m = b["masks"][:, 1]
    y = torch.where(m, b["targets"][1], 0.0)
    per = torch.nn.functional.huber_loss(outs[1].reshape(-1), y, reduction="none", delta=0.5)
    torch.testing.assert_close(r.losses[1], per[m].mean().detach())
    ref0 = masked_loss(tasks[0], outs[0], b["targets"][0], b["masks"][:, 0]).value
    torch.testing.assert_close(r.losses[0], ref0.detach())

    bad = make_method("fairmt", tasks, 2, losses={"r": lambda z, y, m: z.sum()})
    with pytest.raises(ValueError, match=r"task 'r': the custom loss must return per-sample"):
        bad.compute(h, outs, b["targets"], b["masks"], b["groups"], heads=list(model.heads))
    with pytest.raises(ValueError, match="unknown tasks"):
        TaskLosses(tasks, custom={"nope": huber})


def test_a_new_proxy_is_a_subclass_with_a_gram() -> None:
    """A user proxy plugs in without any flag: identity K (uniform weights by symmetry)."""

    class Identity(Proxy):
        name = "identity"

        def gram(self, inp: ProxyInputs) -> QPData:
            T = len(inp.outputs)
            return QPData(torch.eye(T, dtype=inp.h.dtype), torch.zeros(T, dtype=inp.h.dtype))

    tasks = MIXED[:3]
    model = MTModel(tasks, 3, 5, dtype=torch.float64)
    b = make_batch(tasks, 40, 3, dtype=torch.float64)
    fm = FairMT(tasks, 2, proxy=Identity(normalization="none"))
    h, outs = _outputs(model, b)
    r = fm.compute(h, outs, b["targets"], b["masks"], b["groups"]).record
    torch.testing.assert_close(r.alpha, torch.full((3,), 1 / 3, dtype=torch.float64))


def test_constructor_is_small_and_has_no_implementation_switch() -> None:
    params = [p for p in inspect.signature(FairMT).parameters]
    assert len(params) <= 12, params
    for switch in ("kernel", "fast_violations", "certify", "backend"):
        assert switch not in params
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['kernel'\]"):
        make_method("fairmt", MIXED, 2, kernel=True)


def test_baselines_are_compositions_of_the_same_parts() -> None:
    enc = torch.nn.Linear(3, 4)
    kinds = {
        "fairmt": (HeadProxy, True), "linear": (UniformProxy, False),
        "mgda": (FullProxy, False), "mgda_ub": (RepresentationProxy, False),
        "symmetric": (HeadProxy, True), "mean": (HeadProxy, True),
        "fairmt_none": (UniformProxy, True),
    }
    for name, (proxy, constrained) in kinds.items():
        m = make_method(name, MIXED, 2, shared_parameters=enc.parameters())
        assert isinstance(m.proxy, proxy) and m.constrained is constrained, name
        assert isinstance(m.constraint, FairnessConstraint) and isinstance(m.qp, QPSolver)
    assert make_method("symmetric", MIXED, 2).constraint.symmetric
    assert make_method("mean", MIXED, 2).constraint.aggregation == "mean"
    assert make_method("mgda", MIXED, 2, shared_parameters=enc.parameters()
                       ).proxy.normalization == "none"


def test_numpy_scalars_are_accepted() -> None:
    fm = make_method("fairmt", MIXED, np.int64(2), mu=np.float32(0.1), eps=np.float64(0.02),
                     rho=np.float32(0.5), eta=np.float16(0.25))
    assert fm.num_groups == 2 and isinstance(fm.num_groups, int)
    assert abs(fm.mu - 0.1) < 1e-7 and fm.dual is not None and fm.dual.eps == 0.02
    with pytest.raises(ValueError, match="mu must be"):
        make_method("fairmt", MIXED, 2, mu=np.float64("nan"))


@pytest.mark.parametrize("qp_method", ["active_set", "apg", "pairwise"])
def test_state_round_trips_and_resumes_bit_for_bit(qp_method: str) -> None:
    """k steps, state_dict, k more on a fresh FairMT loaded from it: every record equals the
    straight run's, the warm starts of every solver and the running scales included."""
    tasks = MIXED[:4]
    b = make_batch(tasks, 48, 3, seed=6)
    model = MTModel(tasks, 3, 5)
    opts = {"eta": 0.2, "rho": 0.5, "eps": 0.0, "qp_method": qp_method,
            "violation_scale": "running", "dual_mode": "running_mean"}

    def run(fm: FairMT, k: int) -> list:
        recs = []
        for i in range(k):
            bb = {**b, "masks": b["masks"] & (torch.arange(48)[:, None] % (i + 2) != 0)}
            h, outs = _outputs(model, bb)
            r = fm.compute(h, outs, bb["targets"], bb["masks"], bb["groups"],
                           heads=list(model.heads)).record
            fm.dual_step(r)
            recs.append(r)
        return recs

    a = make_method("fairmt", tasks, 2, **opts)
    run(a, 4)
    snap = a.state_dict()
    straight = run(a, 4)
    c = make_method("fairmt", tasks, 2, **opts)
    c.load_state_dict(snap)
    resumed = run(c, 4)
    for x, y in zip(straight, resumed):
        for name in ("psi", "phi", "weights", "alpha", "eta", "K", "b"):
            assert torch.equal(getattr(x, name), getattr(y, name)), name
    assert c.num_steps == a.num_steps == 8
    if qp_method == "apg":
        assert snap["warm_apg"] is not None
    else:
        assert snap["warm_host"] is not None


def test_load_state_dict_validates_before_changing_anything() -> None:
    fm = make_method("fairmt", MIXED, 2, violation_scale=RunningScale(0.5))
    good = fm.state_dict()
    cases = [
        ({**good, "num_steps": "abc"}, "num_steps"),
        ({**good, "warm_host": {"present": [0, 9], "x": torch.zeros(2, dtype=torch.float64)}},
         "warm_host"),
        ({**good, "warm_apg": torch.zeros(3)}, "warm_apg"),
        ({**good, "scales": [{"momentum": 0.5}]}, "scales"),
        ({**good, "dual": None}, "dual"),
        ({k: v for k, v in good.items() if k != "dual"}, "missing keys"),
    ]
    for state, msg in cases:
        with pytest.raises(ValueError, match=msg):
            fm.load_state_dict(state)
    assert fm.state_dict().keys() == good.keys() and fm.num_steps == 0
    unc = make_method("linear", MIXED, 2)
    with pytest.raises(ValueError, match="dual"):
        unc.load_state_dict(good)


def test_parts_repr_and_config() -> None:
    fm = FairMT(MIXED[:2], 2, dual=DualAscent(rho=2.0, eps=0.1),
                qp=QPSolver("frank_wolfe", max_iter=50))
    text = repr(fm)
    assert "HeadProxy" in text and "rho=2.0" in text and "frank_wolfe" in text
    cfg = fm.config()
    assert cfg["proxy"] == "head" and cfg["qp_method"] == "frank_wolfe"
    assert cfg["tasks"] == [["d0", "detection", 1], ["c3", "classification", 3]]
    assert math.isfinite(cfg["mu"])


@pytest.mark.parametrize("proxy", ["head", "rep", "none"])
def test_a_custom_psi_keeps_its_gradient(proxy: str) -> None:
    """ψ of the caller's (built from the real outputs): the loss carries η ∂Φ/∂z and the head
    proxy's fairness direction is that of this Φ."""
    tasks = MIXED[:3]
    model = MTModel(tasks, 3, 5, dtype=torch.float64)
    b = make_batch(tasks, 40, 3, dtype=torch.float64)
    fm = make_method("fairmt", tasks, 2, eta=0.9, proxy=proxy)

    def my_psi(outs: list) -> torch.Tensor:
        return torch.stack([(z.reshape(len(z), -1)[:, 0] * (b["groups"] * 2 - 1)).mean() ** 2
                            for z in outs])

    h, outs = _outputs(model, b)
    step = fm.compute(h, outs, b["targets"], b["masks"], b["groups"],
                      heads=list(model.heads), psi=my_psi(outs))
    params = list(model.parameters())
    got = torch.autograd.grad(step.loss, params, materialize_grads=True)
    _, outs2 = _outputs(model, b)
    losses = torch.stack([masked_loss(t, z, y, m).value for t, z, y, m in
                          zip(tasks, outs2, b["targets"], b["masks"].unbind(1))])
    phi = fm.constraint.aggregate(my_psi(outs2), b["masks"].any(0)).phi
    want = torch.autograd.grad((step.record.alpha_tilde * losses).sum() + 0.9 * phi, params,
                               materialize_grads=True)
    for x, y in zip(got, want):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)
    if proxy == "head":
        assert step.record.fairness_direction is not None
        assert float(step.record.fairness_direction.abs().max()) > 0
