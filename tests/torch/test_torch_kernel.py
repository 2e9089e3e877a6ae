"""The compiled CPU kernel of the FairMT step (fairmt_opt/fairness/_fairkernel.c) against the
torch path (``kernel=False``): the same loss, record and parameter gradients for every
violation option, dtype, mask layout and adversarial batch; its errors; when it is (not) used.

Set FAIRMT_OPT_NO_KERNEL=1 to run without the kernel (the comparisons are then skipped)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_torch_helpers import TASKS3, MTModel, make_batch

from fairmt_opt.fairness import Task
from fairmt_opt.fairness import _kernel as fk
from fairmt_opt.qp._kernel import c_compiler_available
from fairmt_opt.torch import FairMT
from fairmt_opt.torch._fairmt import FairMT as _FairMTClass

needs_kernel = pytest.mark.skipif(fk.KERNEL is None, reason=f"kernel: {fk.LOAD_ERROR}")

MANY = (Task("d0", "detection"), Task("c3", "classification", num_classes=3),
        Task("r0", "regression"), Task("d1", "detection"),
        Task("c4", "classification", num_classes=4), Task("c3b", "classification",
                                                          num_classes=3),
        Task("r1", "regression"))

RECORD = ("losses", "label_counts", "present", "psi", "phi", "weights", "K", "b", "alpha",
          "alpha_tilde", "directions", "fairness_direction")


class _Spy:
    """Counts the steps the kernel produced (``_kernel_step`` returned a step)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.used = 0
        real = _FairMTClass._kernel_step

        def wrapped(fm: FairMT, *args: object, **kw: object) -> object:
            out = real(fm, *args, **kw)  # type: ignore[arg-type]
            self.used += out is not None
            return out

        monkeypatch.setattr(_FairMTClass, "_kernel_step", wrapped)


def _run(fm: FairMT, model: MTModel, b: dict, masks: object, *, loss_scale: float = 1.0,
         detach: tuple[int, ...] = ()) -> tuple[object, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    h, outs = model(b["x"])
    outs = [z.detach() if t in detach else z for t, z in enumerate(outs)]
    out = fm.compute(h, outs, b["targets"], masks, b["groups"], heads=list(model.heads))
    if out.loss.requires_grad:
        (loss_scale * out.loss).backward()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone()
             for p in model.parameters()]
    return out, grads


def _compare(tasks: tuple[Task, ...], model: MTModel, b: dict, num_groups: int,
             monkeypatch: pytest.MonkeyPatch, *, masks: object = None, rtol: float = 1e-9,
             atol: float = 1e-11, loss_scale: float = 1.0, detach: tuple[int, ...] = (),
             expect_kernel: bool = True, **kw: object) -> tuple[object, object]:
    spy = _Spy(monkeypatch)
    masks = b["masks"] if masks is None else masks
    res = []
    for kernel in (True, False):
        fm = FairMT(tasks, num_groups, kernel=kernel, **kw)  # type: ignore[arg-type]
        res.append(_run(fm, model, b, masks, loss_scale=loss_scale, detach=detach))
    assert spy.used == int(expect_kernel)
    (a, ga), (c, gc) = res
    torch.testing.assert_close(a.loss, c.loss, rtol=rtol, atol=atol)  # type: ignore[attr-defined]
    for name in RECORD:
        x, y = getattr(a.record, name), getattr(c.record, name)  # type: ignore[attr-defined]
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, name
            torch.testing.assert_close(x, y, rtol=rtol, atol=atol, msg=name)
    for x, y in zip(ga, gc):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol)
    return a, c


def test_kernel_built_and_loaded() -> None:
    """Where a C compiler exists the kernel is built and loads: a silent fallback to the torch
    path would hide a build problem (and the CPU speed target depends on the kernel)."""
    if os.environ.get("FAIRMT_OPT_NO_KERNEL"):
        pytest.skip("FAIRMT_OPT_NO_KERNEL is set")
    if fk.kernel_path() is None and not c_compiler_available():
        pytest.skip("no C compiler on this machine: the optional kernel cannot be built")
    assert fk.kernel_path() is not None, "the compiled kernel was not built"
    assert fk.KERNEL is not None, fk.LOAD_ERROR


@needs_kernel
@pytest.mark.parametrize("options", [
    {}, {"symmetric": True}, {"group_reduction": "max"}, {"include_fpr": False},
    {"regression_score": "mse", "violation_scale": 0.5}, {"temperature": 0.6},
    {"regression_loss": "mae"}, {"symmetric": True, "include_fpr": False, "temperature": 2.0},
    {"aggregation": "frank_wolfe"}, {"aggregation": "mean"}, {"normalization": "loss+"},
    {"alpha_scale": "none"}, {"constrained": False}, {"proxy": "none"},
    {"proxy": "none", "constrained": False}, {"proxy": "none", "aggregation": "pairwise"},
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("num_groups", [2, 3])
def test_kernel_step_equals_torch_step(options: dict, num_groups: int,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every violation and step option, with the head proxy and without a proxy (whose torch
    path is the per-task autograd one): kernel step = torch step (float64), with an absent
    task, a task without positives in a group and sparse labels."""
    model = MTModel(MANY, 4, 6, dtype=torch.float64)
    b = make_batch(MANY, 70, 4, num_groups, seed=3, label_rate=0.6, dtype=torch.float64)
    b["masks"][:, 4] = False  # c4 absent
    b["targets"][0][b["groups"] == 0] = 0.0  # d0: no positive in group 0
    a, _ = _compare(MANY, model, b, num_groups, monkeypatch, eta=0.7, **options)
    assert float(a.record.alpha[4]) == 0.0  # type: ignore[attr-defined]
    assert (a.record.K is None) == (options.get("proxy") == "none")  # type: ignore[attr-defined]


@needs_kernel
@pytest.mark.parametrize("mask_list", [False, True])
def test_kernel_float32_training_step(mask_list: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """float32 (the training dtype): the kernel works in double precision, the torch path in
    float32; they agree to float32 accuracy, and the record keeps the dtype of h."""
    model = MTModel(MANY, 4, 8)
    b = make_batch(MANY, 90, 4, 3, seed=5)
    masks = list(b["masks"].unbind(1)) if mask_list else None
    a, _ = _compare(MANY, model, b, 3, monkeypatch, masks=masks, eta=0.4, rtol=2e-4,
                    atol=2e-5)
    assert a.record.psi.dtype == torch.float32  # type: ignore[attr-defined]


@needs_kernel
def test_kernel_gradient_scales_with_the_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    """backward() of a scaled loss (a loss scaler, a mean over micro-batches) scales the
    gradients; outputs outside the autograd graph get none."""
    model = MTModel(TASKS3, 4, 6, dtype=torch.float64)
    b = make_batch(TASKS3, 50, 4, dtype=torch.float64)
    _compare(TASKS3, model, b, 2, monkeypatch, eta=0.5, loss_scale=3.5)
    _compare(TASKS3, model, b, 2, monkeypatch, eta=0.5, detach=(1,))


@needs_kernel
def test_kernel_second_backward_with_retained_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """The precomputed gradients survive a first backward (retain_graph=True)."""
    model = MTModel(TASKS3, 4, 6, dtype=torch.float64)
    b = make_batch(TASKS3, 40, 4, dtype=torch.float64)
    h, outs = model(b["x"])
    out = FairMT(TASKS3, 2, eta=0.5).compute(h, outs, b["targets"], b["masks"], b["groups"],
                                             heads=list(model.heads))
    g1 = torch.autograd.grad(out.loss, list(model.parameters()), retain_graph=True)
    g2 = torch.autograd.grad(out.loss, list(model.parameters()))
    for x, y in zip(g1, g2):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


@needs_kernel
@settings(max_examples=40, deadline=None)
@given(
    kinds=st.lists(st.integers(0, 3), min_size=1, max_size=5),
    n=st.integers(2, 40),
    num_groups=st.integers(2, 4),
    scale=st.sampled_from([1e-8, 1.0, 40.0]),
    label_rate=st.sampled_from([0.0, 0.15, 1.0]),
    eta=st.sampled_from([0.0, 0.3, 80.0]),
    options=st.sampled_from([{}, {"symmetric": True}, {"group_reduction": "max"},
                             {"temperature": 0.3, "include_fpr": False}, {"proxy": "none"}]),
    seed=st.integers(0, 5),
)
def test_kernel_equals_torch_on_adversarial_batches(
    kinds: list, n: int, num_groups: int, scale: float, label_rate: float, eta: float,
    options: dict, seed: int,
) -> None:
    """T = 1..5, tiny batches, empty groups, no labels at all, tiny or huge logits, eta = 0 or
    large: the kernel step equals the torch step."""
    choices = (Task("d", "detection"), Task("c", "classification", num_classes=3),
               Task("r", "regression"), Task("b", "classification", num_classes=2))
    tasks = tuple(Task(f"{choices[k].name}{i}", choices[k].kind,
                       num_classes=choices[k].num_classes) for i, k in enumerate(kinds))
    model = MTModel(tasks, 3, 5, seed=seed, dtype=torch.float64)
    with torch.no_grad():
        for hd in model.heads:
            hd.weight.mul_(scale)
    b = make_batch(tasks, max(n, num_groups), 3, num_groups, seed=seed,
                   label_rate=label_rate, dtype=torch.float64)
    with pytest.MonkeyPatch.context() as mp:
        _compare(tasks, model, b, num_groups, mp, eta=eta, rtol=1e-8, atol=1e-10, **options)


@needs_kernel
def test_kernel_rejects_bad_ids_without_value_checks() -> None:
    """With check_inputs=False (no value checks in the torch path) the kernel still refuses
    a group id or a class outside its range, naming the argument, the task and the sample."""
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 30, 4)
    fm = FairMT(TASKS3, 2, eta=0.5, check_inputs=False)
    h, outs = model(b["x"])
    groups = b["groups"].clone()
    groups[7] = 2
    with pytest.raises(ValueError, match=r"groups must hold ids in \[0, 2\), got 2 at sample 7"):
        fm.compute(h, outs, b["targets"], b["masks"], groups, heads=list(model.heads))
    targets = [y.clone() for y in b["targets"]]
    masks = b["masks"].clone()
    masks[4, 1] = True
    targets[1][4] = 3
    with pytest.raises(ValueError, match=r"task 'cls': targets must lie in \[0, 3\).*sample 4"):
        fm.compute(h, outs, targets, masks, b["groups"], heads=list(model.heads))


@needs_kernel
@pytest.mark.parametrize("case", ["mlp_heads", "rep", "apg", "half", "int_targets",
                                  "strided_outputs"])
def test_kernel_is_used_only_where_it_applies(case: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Non-linear heads, another proxy, the on-device QP and half precision take the torch
    path; integer detection targets and non-contiguous inputs do not stop the kernel."""
    spy = _Spy(monkeypatch)
    dtype = torch.bfloat16 if case == "half" else torch.float64
    model = MTModel(TASKS3, 4, 6, mlp_heads=case == "mlp_heads", dtype=dtype)
    b = make_batch(TASKS3, 40, 4, dtype=dtype)
    kw: dict = {"proxy": "rep"} if case == "rep" else {}
    if case == "apg":
        kw = {"qp_method": "apg", "qp_max_iter": 50}
    if case == "int_targets":
        b["targets"][0] = b["targets"][0].to(torch.int32)
    h, outs = model(b["x"])
    masks = b["masks"]
    if case == "strided_outputs":
        wide = torch.stack([outs[1], outs[1]], 1)[:, 0]  # rows of stride 2 * C
        assert wide.stride() == (6, 1)
        outs = [outs[0], wide, outs[2]]
        masks = torch.stack([masks, masks], 2)[:, :, 0]
        b["targets"][2] = torch.stack([b["targets"][2]] * 2, 1)[:, 0]
    out = FairMT(TASKS3, 2, eta=0.5, **kw).compute(h, outs, b["targets"], masks, b["groups"],
                                                   heads=list(model.heads))
    ref = FairMT(TASKS3, 2, eta=0.5, kernel=False, **kw).compute(
        h, outs, b["targets"], masks, b["groups"], heads=list(model.heads))
    out.loss.backward()
    assert spy.used == int(case in ("int_targets", "strided_outputs"))
    for name in ("loss", "psi", "losses", "alpha"):
        x = out.loss if name == "loss" else getattr(out.record, name)
        y = ref.loss if name == "loss" else getattr(ref.record, name)
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12, msg=name)


@needs_kernel
def test_kernel_buffers_are_not_shared_between_results() -> None:
    """The record of a step does not change when the next step (same layout) runs."""
    model = MTModel(TASKS3, 4, 6, dtype=torch.float64)
    b1 = make_batch(TASKS3, 40, 4, dtype=torch.float64, seed=1)
    b2 = make_batch(TASKS3, 40, 4, dtype=torch.float64, seed=2)
    fm = FairMT(TASKS3, 2, eta=0.5)
    h, outs = model(b1["x"])
    r1 = fm.compute(h, outs, b1["targets"], b1["masks"], b1["groups"],
                    heads=list(model.heads)).record
    saved = {k: getattr(r1, k).clone() for k in RECORD}
    h, outs = model(b2["x"])
    fm.compute(h, outs, b2["targets"], b2["masks"], b2["groups"], heads=list(model.heads))
    for k, v in saved.items():
        assert torch.equal(getattr(r1, k), v), k
    assert not np.allclose(saved["psi"].numpy(), 0.0)


@pytest.mark.parametrize("normalization", ["l2", "loss", "loss+"])
def test_normalised_K_stays_exactly_symmetric_in_float32(normalization: str) -> None:
    """The normalised K reaches the solvers exactly symmetric (their input check allows 1e-8
    relative asymmetry, below float32 round-off): the APG path with value checks on."""
    tasks = tuple(Task(f"t{i}", k) for i, k in enumerate(
        ["detection", "regression", "detection", "regression", "detection"]))
    model = MTModel(tasks, 4, 16)
    b = make_batch(tasks, 256, 4, seed=2)
    fm = FairMT(tasks, 2, eta=0.5, qp_method="apg", qp_max_iter=50, check_inputs=True,
                normalization=normalization)  # type: ignore[arg-type]
    for _ in range(3):
        h, outs = model(b["x"])
        r = fm.compute(h, outs, b["targets"], b["masks"], b["groups"],
                       heads=list(model.heads)).record
        assert r.K is not None and torch.equal(r.K, r.K.T)
        fm.dual_step(r)


@pytest.mark.parametrize("kw", [
    {}, {"kernel": False}, {"fast_violations": False}, {"proxy": "rep"}, {"proxy": "full"},
    {"proxy": "none"}, {"proxy": "none", "kernel": False}, {"qp_method": "apg"}],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_empty_batch_is_a_step_with_every_task_absent(kw: dict) -> None:
    """N = 0 (e.g. the last shard of a distributed split): zero loss, ψ, α and gradients on
    every path (the torch path used to fail reshaping the empty gradients)."""
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 5, 4)
    kw = dict(kw)
    if kw.get("proxy") == "full":
        kw["shared_parameters"] = list(model.encoder.parameters())
    h, outs = model(b["x"][:0])
    out = FairMT(TASKS3, 2, eta=0.5, **kw).compute(
        h, outs, [y[:0] for y in b["targets"]], b["masks"][:0], b["groups"][:0],
        heads=list(model.heads))
    r = out.record
    assert float(out.loss.detach()) == 0.0
    for v in (r.psi, r.alpha, r.weights, r.label_counts):
        assert torch.equal(v, torch.zeros_like(v))
    assert not bool(r.present.any())
    if out.loss.requires_grad:
        out.loss.backward()
        for p in model.parameters():
            assert p.grad is None or not bool(p.grad.any())
