"""FairMT in torch: masked losses, head-aware directions (P6), MGDA-UB Hadamard form, MGDA,
partial labels (P9), aggregation against cvxpy, the Lagrangian, baselines, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_models import TASKS3, MTModel, make_batch

from fairmt_opt import reference
from fairmt_opt.fairness import Task
from fairmt_opt.torch import METHODS, FairMT, FairnessConstraint, make_method, masked_task_loss


def _step(fm: FairMT, model: MTModel, batch: dict, *, shift: bool = False):
    h = model.encoder(batch["x"])
    s = None
    if shift:
        s = torch.zeros(h.shape[1], dtype=h.dtype, device=h.device, requires_grad=True)
        h = h + s
    outs = [hd(h) for hd in model.heads]
    out = fm.compute(h, outs, batch["targets"], batch["masks"], batch["groups"],
                     heads=list(model.heads))
    return out, h, outs, s


# ----------------------------------------------------------------------------- masked losses


@pytest.mark.parametrize("task", TASKS3, ids=lambda t: t.kind)
def test_masked_loss_matches_manual_mean(task: Task) -> None:
    b = make_batch([task], 40, 3, seed=1, dtype=torch.float64)
    z = torch.randn(40, task.out_dim, dtype=torch.float64).squeeze(-1 if task.out_dim == 1 else 0)
    y, m = b["targets"][0], b["masks"][:, 0]
    out = masked_task_loss(task, z, y, m)
    if task.kind == "detection":
        ref = torch.nn.functional.binary_cross_entropy_with_logits(z[m], y[m])
    elif task.kind == "classification":
        ref = torch.nn.functional.cross_entropy(z[m], y[m])
    else:
        ref = torch.nn.functional.mse_loss(z[m], y[m])
    assert torch.allclose(out.value, ref, rtol=1e-12, atol=1e-14)
    assert float(out.count) == float(m.sum())


@pytest.mark.parametrize("task", TASKS3, ids=lambda t: t.kind)
def test_masked_loss_no_label_is_zero_with_zero_grad(task: Task) -> None:
    z = torch.randn(7, task.out_dim, requires_grad=True)
    zz = z if task.kind == "classification" else z[:, 0]
    y = torch.full((7,), -1 if task.kind == "classification" else math.nan)
    if task.kind == "classification":
        y = y.long()
    out = masked_task_loss(task, zz, y, torch.zeros(7, dtype=torch.bool))
    out.value.backward()
    assert float(out.value.detach()) == 0.0 and float(out.count) == 0.0
    assert z.grad is not None and torch.equal(z.grad, torch.zeros_like(z))


# ----------------------------------------------------------------------------- P6


@pytest.mark.parametrize("mlp_heads", [False, True, "mixed"], ids=["linear", "mlp", "mixed"])
def test_head_directions_equal_autograd_shift_gradient(mlp_heads: bool | str) -> None:
    """P6: r_t (closed form through nn.Linear, autograd fallback otherwise) equals
    ∇_s L_t(h + s) at s = 0, and K is their exact Gram (float64)."""
    model = MTModel(TASKS3, 4, 6, mlp_heads=bool(mlp_heads), dtype=torch.float64)
    if mlp_heads == "mixed":
        model.heads[1] = torch.nn.Linear(6, 3).double()
    b = make_batch(TASKS3, 50, 4, dtype=torch.float64)
    fm = make_method("fairmt", TASKS3, 2, eta=0.7, eps=0.0, normalization="none")
    out, _h, outs, s = _step(fm, model, b, shift=True)
    r = out.record
    auto = torch.stack([torch.autograd.grad(r_l, s, retain_graph=True)[0] for r_l in
                        [masked_task_loss(t, z, y, m).value for t, z, y, m in
                         zip(TASKS3, outs, b["targets"], b["masks"].unbind(1))]])
    assert r.directions is not None and r.K is not None and r.b is not None
    torch.testing.assert_close(r.directions, auto, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(r.K, auto @ auto.T, rtol=1e-12, atol=1e-14)
    # r_Phi is ∇_s Φ and b = η R r_Φ
    phi = _recompute_phi(fm, outs, b)
    rphi = torch.autograd.grad(phi, s, retain_graph=True)[0]
    assert r.fairness_direction is not None
    torch.testing.assert_close(r.fairness_direction, rphi, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(r.b, 0.7 * auto @ rphi, rtol=1e-10, atol=1e-13)


def _recompute_phi(fm: FairMT, outs: list, b: dict) -> torch.Tensor:
    return fm.constraint(outs, b["targets"], list(b["masks"].unbind(1)), b["groups"]).phi


def test_one_logit_head_gram_is_diag_u_AAt_diag_u() -> None:
    tasks = [Task(f"d{i}", "detection") for i in range(3)] + [Task("r", "regression")]
    model = MTModel(tasks, 3, 5, dtype=torch.float64)
    b = make_batch(tasks, 30, 3, dtype=torch.float64)
    out, *_ = _step(make_method("fairmt", tasks, 2, normalization="none"), model, b)
    A = torch.cat([hd.weight for hd in model.heads]).detach()  # (T, d)
    R = out.record.directions
    u = (R * A).sum(1) / (A * A).sum(1)  # r_t = u_t a_t
    torch.testing.assert_close(R, u[:, None] * A, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(out.record.K, torch.diag(u) @ A @ A.T @ torch.diag(u))


def test_rep_gram_equals_hadamard_form_and_autograd() -> None:
    """MGDA-UB Gram: K[t,u] = Σ_i <∂L_t/∂h_i, ∂L_u/∂h_i> = (A Aᵀ ⊙ ΔᵀΔ)[t,u] for one-logit
    linear heads, with Δ[i,t] = ∂L_t/∂z_it."""
    tasks = [Task("d0", "detection"), Task("d1", "detection"), Task("r", "regression")]
    model = MTModel(tasks, 3, 5, dtype=torch.float64)
    b = make_batch(tasks, 40, 3, dtype=torch.float64)
    fm = make_method("fairmt", tasks, 2, proxy="rep", constrained=False, normalization="none")
    out, h, outs, _ = _step(fm, model, b)
    losses = [masked_task_loss(t, z, y, m).value for t, z, y, m in
              zip(tasks, outs, b["targets"], b["masks"].unbind(1))]
    Delta = torch.stack([torch.autograd.grad(L, z, retain_graph=True)[0].reshape(-1)
                         for L, z in zip(losses, outs)], 1)  # (N, T)
    A = torch.cat([hd.weight for hd in model.heads]).detach()
    hadamard = (A @ A.T) * (Delta.T @ Delta)
    G = torch.stack([torch.autograd.grad(L, h, retain_graph=True)[0].reshape(-1)
                     for L in losses])
    torch.testing.assert_close(out.record.K, hadamard, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(out.record.K, G @ G.T, rtol=1e-12, atol=1e-15)


def test_full_proxy_gram_of_shared_parameter_gradients() -> None:
    model = MTModel(TASKS3, 3, 5, dtype=torch.float64)
    b = make_batch(TASKS3, 30, 3, dtype=torch.float64)
    params = list(model.encoder.parameters())
    fm = make_method("fairmt", TASKS3, 2, proxy="full", shared_parameters=params, eta=0.3,
                normalization="none")
    out, _h, outs, _ = _step(fm, model, b)
    losses = [masked_task_loss(t, z, y, m).value for t, z, y, m in
              zip(TASKS3, outs, b["targets"], b["masks"].unbind(1))]
    G = torch.stack([torch.cat([g.reshape(-1) for g in
                                torch.autograd.grad(L, params, retain_graph=True)])
                     for L in losses])
    torch.testing.assert_close(out.record.K, G @ G.T, rtol=1e-12, atol=1e-15)
    phi = _recompute_phi(fm, outs, b)
    gphi = torch.cat([g.reshape(-1) for g in torch.autograd.grad(phi, params)])
    torch.testing.assert_close(out.record.b, 0.3 * G @ gphi, rtol=1e-10, atol=1e-13)


def test_full_proxy_needs_shared_parameters() -> None:
    with pytest.raises(ValueError, match="shared_parameters"):
        make_method("fairmt", TASKS3, 2, proxy="full")


# ----------------------------------------------------------------------------- Lagrangian


@pytest.mark.parametrize("alpha_scale", ["num_tasks", "none"])
def test_lagrangian_gradient_and_alpha_certificate(alpha_scale: str) -> None:
    model = MTModel(TASKS3, 4, 6, dtype=torch.float64)
    b = make_batch(TASKS3, 60, 4, dtype=torch.float64)
    fm = make_method("fairmt", TASKS3, 2, eta=0.5,
                     alpha_scale=alpha_scale)  # type: ignore[arg-type]
    out, _h, outs, _ = _step(fm, model, b)
    r = out.record
    assert r.certificate.ok
    a = r.alpha.numpy()
    assert abs(a.sum() - 1) < 1e-12 and (a >= 0).all()
    sol = reference.solve_simplex_qp(r.K.numpy(), r.b.numpy())
    K, bb = r.K.numpy(), r.b.numpy()
    f = 0.5 * a @ K @ a + bb @ a
    assert f <= sol.value + 1e-7 * max(1.0, abs(sol.value))
    scale = 3.0 if alpha_scale == "num_tasks" else 1.0
    torch.testing.assert_close(r.alpha_tilde, scale * r.alpha)
    expected = (r.alpha_tilde * r.losses).sum() + 0.5 * r.phi
    torch.testing.assert_close(out.loss.detach(), expected)
    # the gradient is Σ α̃ ∇L_t + η ∇Φ
    params = list(model.parameters())
    g = torch.autograd.grad(out.loss, params, retain_graph=True)
    losses = [masked_task_loss(t, z, y, m).value for t, z, y, m in
              zip(TASKS3, outs, b["targets"], b["masks"].unbind(1))]
    obj = sum(float(at) * L for at, L in zip(r.alpha_tilde, losses)) + 0.5 * _recompute_phi(
        fm, outs, b)
    g2 = torch.autograd.grad(obj, params, allow_unused=True)
    for x, y in zip(g, g2):
        torch.testing.assert_close(x, torch.zeros_like(x) if y is None else y)


def test_linear_scalarisation_is_sum_of_losses() -> None:
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 32, 4)
    out, *_ = _step(make_method("linear", TASKS3, 2), model, b)
    torch.testing.assert_close(out.loss, out.record.losses.sum())
    assert float(out.record.eta) == 0.0


@pytest.mark.parametrize("name", METHODS)
def test_every_method_runs_and_trains(name: str) -> None:
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 64, 4)
    kw = {"shared_parameters": model.encoder.parameters()} if name == "mgda" else {}
    m = make_method(name, TASKS3, 2, eta=0.5, **kw)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    first = None
    for _ in range(5):
        out, *_ = _step(m, model, b)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        m.dual_step(out.record)
        first = float(out.record.losses.sum()) if first is None else first
        assert torch.isfinite(out.loss)
        assert abs(float(out.record.alpha.sum()) - 1) < 1e-5
    assert float(out.record.losses.sum()) < first
    assert repr(m).startswith("FairMT(") and "proxy=" in repr(m)
    assert "FairMTRecord(" in repr(out.record)


def test_mean_aggregation_is_mean_psi() -> None:
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 64, 4)
    out, *_ = _step(make_method("mean", TASKS3, 2), model, b)
    torch.testing.assert_close(out.record.phi, out.record.psi.mean())


@pytest.mark.parametrize("aggregation", ["frank_wolfe", "away", "pairwise"])
def test_frank_wolfe_aggregation_matches_exact(aggregation: str) -> None:
    model = MTModel(TASKS3, 4, 6, dtype=torch.float64)
    b = make_batch(TASKS3, 64, 4, dtype=torch.float64)
    ex, *_ = _step(make_method("fairmt", TASKS3, 2, mu=0.05), model, b)
    fw, *_ = _step(make_method("fairmt", TASKS3, 2, mu=0.05, aggregation=aggregation,
                                # type: ignore[arg-type]
                          aggregation_tol=1e-12, aggregation_max_iter=10000), model, b)
    res = fw.record.extra["aggregation"]
    # the FW certificate bounds the suboptimality: 0 <= Φ* - Φ(w_k) <= gap
    gap = float(res.gap)
    assert 0.0 <= float(ex.record.phi - fw.record.phi) + 1e-14 <= gap + 2e-14
    assert gap <= 1e-5


@pytest.mark.parametrize("normalization", ["l2", "loss", "loss+"])
def test_gradient_normalisation_rescales_K(normalization: str) -> None:
    model = MTModel(TASKS3, 4, 6, dtype=torch.float64)
    b = make_batch(TASKS3, 64, 4, dtype=torch.float64)
    raw, *_ = _step(make_method("fairmt", TASKS3, 2, eta=0.2, normalization="none"), model, b)
    nrm, *_ = _step(make_method("fairmt", TASKS3, 2, eta=0.2, normalization=normalization),
                                 # type: ignore
                    model, b)
    K0, L = raw.record.K, raw.record.losses
    n = {"l2": K0.diagonal().sqrt(), "loss": L, "loss+": L * K0.diagonal().sqrt()}[
        normalization]
    torch.testing.assert_close(nrm.record.K, K0 / n[:, None] / n[None, :])
    torch.testing.assert_close(nrm.record.b, raw.record.b / n)
    if normalization == "l2":
        torch.testing.assert_close(nrm.record.K.diagonal(), torch.ones(3, dtype=K0.dtype))


# ----------------------------------------------------------------------------- aggregation


@settings(max_examples=40)
@given(
    psi=st.lists(st.one_of(st.just(0.0), st.floats(0, 1e3), st.floats(0, 1e-6)),
                 min_size=1, max_size=8),
    mu=st.sampled_from([1e-4, 0.1, 1.0, 50.0]),
    data=st.data(),
)
def test_masked_waterfill_matches_cvxpy_on_present_tasks(psi: list, mu: float,
                                                         data: st.DataObject) -> None:
    T = len(psi)
    present = data.draw(st.lists(st.booleans(), min_size=T, max_size=T))
    p = torch.tensor(psi, dtype=torch.float64, requires_grad=True)
    pr = torch.tensor(present)
    agg = FairnessConstraint([Task(f"t{i}", "detection") for i in range(T)], 2,
                             mu=mu).aggregate(p, pr)
    w, phi = agg.weights, agg.phi
    assert bool((w[~pr] == 0).all())
    if not any(present):
        assert float(phi.detach()) == 0.0
        return
    idx = np.flatnonzero(present)
    sol = reference.aggregate_violations(np.asarray(psi)[idx], mu)
    scale = max(1.0, max(psi))
    assert abs(float(phi.detach()) - sol.value) <= 1e-6 * scale
    assert abs(float(w.sum()) - 1) < 1e-9 and bool((w >= 0).all())
    # Danskin: ∇_ψ Φ = w*
    (g,) = torch.autograd.grad(phi, p)
    torch.testing.assert_close(g, w.detach())


# ----------------------------------------------------------------------------- P9


@pytest.mark.parametrize("proxy", ["head", "rep", "full", "none"])
def test_absent_task_changes_nothing(proxy: str) -> None:
    """P9: a task without labels in the batch gives the same update as the task removed."""
    model = MTModel(TASKS3, 4, 6, dtype=torch.float64)
    b = make_batch(TASKS3, 50, 4, dtype=torch.float64)
    b["masks"][:, 1] = False
    extra = {"shared_parameters": list(model.encoder.parameters())} if proxy == "full" else {}
    fm3 = make_method("fairmt", TASKS3, 2, eta=0.4, proxy=proxy, **extra)  # type: ignore[arg-type]
    out3, *_ = _step(fm3, model, b)
    g3 = torch.autograd.grad(out3.loss, list(model.parameters()), allow_unused=True)
    keep = [0, 2]
    tasks2 = [TASKS3[i] for i in keep]
    fm2 = make_method("fairmt", tasks2, 2, eta=0.4, proxy=proxy, **extra)  # type: ignore[arg-type]
    h = model.encoder(b["x"])
    heads2 = [model.heads[i] for i in keep]
    out2 = fm2.compute(h, [hd(h) for hd in heads2], [b["targets"][i] for i in keep],
                       b["masks"][:, keep], b["groups"], heads=heads2)
    g2 = dict(zip([id(p) for p in model.parameters()],
                  torch.autograd.grad(out2.loss, list(model.parameters()), allow_unused=True)))
    torch.testing.assert_close(out3.loss, out2.loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(out3.record.alpha[keep], out2.record.alpha, rtol=1e-9,
                               atol=1e-12)
    torch.testing.assert_close(out3.record.phi, out2.record.phi)
    assert float(out3.record.alpha[1]) == 0.0 and float(out3.record.weights[1]) == 0.0
    for p, ga in zip(model.parameters(), g3):
        gb = g2[id(p)]
        if ga is None or gb is None:
            assert (ga is None or not ga.any()) and (gb is None or not gb.any())
        else:
            torch.testing.assert_close(ga, gb, rtol=1e-9, atol=1e-12)


def test_all_tasks_absent_gives_zero_loss() -> None:
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 20, 4)
    b["masks"][:] = False
    out, *_ = _step(make_method("fairmt", TASKS3, 2, eta=1.0), model, b)
    assert float(out.loss.detach()) == 0.0 and float(out.record.alpha.sum()) == 0.0
    out.loss.backward()


# ----------------------------------------------------------------------------- bad input


def _bad(**change: object) -> dict:
    b = make_batch(TASKS3, 20, 4)
    b.update(change)
    return b


def _run_bad(b: dict, outs: list | None = None) -> None:
    model = MTModel(TASKS3, 4, 6)
    h = model.encoder(b["x"])
    outs = outs if outs is not None else [hd(h) for hd in model.heads]
    make_method("fairmt", TASKS3, 2).compute(h, outs, b["targets"], b["masks"], b["groups"],
                              heads=list(model.heads))


def test_bad_input_messages_name_the_task() -> None:
    b = make_batch(TASKS3, 20, 4)
    y = list(b["targets"])
    y[1] = torch.where(b["masks"][:, 1], torch.full_like(y[1], 3), y[1])
    with pytest.raises(ValueError, match=r"task 'cls': targets must lie in \[0, 3\)"):
        _run_bad({**b, "targets": y})
    y = list(b["targets"])
    y[1] = y[1].float()
    with pytest.raises(ValueError, match="task 'cls': targets must have an integer dtype"):
        _run_bad({**b, "targets": y})
    y = list(b["targets"])
    y[0] = y[0] * 2
    y[0][b["masks"][:, 0].nonzero()[0]] = 2.0
    with pytest.raises(ValueError, match="task 'det': targets must be 0 or 1"):
        _run_bad({**b, "targets": y})
    y = list(b["targets"])
    y[2] = y[2].clone()
    y[2][b["masks"][:, 2].nonzero()[0]] = math.nan
    with pytest.raises(ValueError, match="task 'reg': targets contain NaN"):
        _run_bad({**b, "targets": y})
    y = list(b["targets"])
    y[0] = y[0][:10]
    with pytest.raises(ValueError, match=r"task 'det': targets must have shape \(20,\)"):
        _run_bad({**b, "targets": y})
    model = MTModel(TASKS3, 4, 6)
    h = model.encoder(b["x"])
    outs = [hd(h) for hd in model.heads]
    outs[1] = outs[1][:, :2]
    with pytest.raises(ValueError, match=r"task 'cls': outputs must have shape \(20, 3\)"):
        _run_bad(b, outs)
    outs = [hd(h) for hd in model.heads]
    outs[2] = outs[2] * math.nan
    with pytest.raises(ValueError, match="task 'reg': outputs contain NaN"):
        _run_bad(b, outs)
    outs = [hd(h) for hd in model.heads]
    outs[0] = outs[0].long()
    with pytest.raises(ValueError, match="task 'det': outputs must have a floating dtype"):
        _run_bad(b, outs)
    with pytest.raises(ValueError, match=r"task 'det': mask must have dtype torch.bool"):
        _run_bad({**b, "masks": list(b["masks"].float().unbind(1))})
    with pytest.raises(ValueError, match=r"masks must have shape \(N, 3\)"):
        _run_bad({**b, "masks": b["masks"][:, :2]})
    with pytest.raises(ValueError, match=r"groups must hold ids in \[0, 2\)"):
        _run_bad({**b, "groups": b["groups"] + 1})
    with pytest.raises(ValueError, match="groups must have an integer dtype"):
        _run_bad({**b, "groups": b["groups"].float()})
    with pytest.raises(ValueError, match="outputs must hold one tensor per task"):
        _run_bad(b, outs[:2])


def test_nan_loss_is_reported_with_the_task_name() -> None:
    """A NaN that only shows up in the loss (an inf logit, say) names the task."""
    b = make_batch(TASKS3, 20, 4)
    model = MTModel(TASKS3, 4, 6)
    h = model.encoder(b["x"])
    outs = [hd(h) for hd in model.heads]
    fm = make_method("fairmt", TASKS3, 2, check_inputs=False)
    outs[2] = outs[2] + torch.where(b["masks"][:, 2:3], math.inf, 0.0)
    fm.check_inputs = True
    with pytest.raises(ValueError, match="task 'reg': outputs contain NaN or inf"):
        fm.compute(h, outs, b["targets"], b["masks"], b["groups"])
    # the loss check itself (after the value checks): a loss that overflows
    outs = [hd(h) for hd in model.heads]
    outs[2] = outs[2] * 1e30
    with pytest.raises(ValueError, match=r"task\(s\) \['reg'\]: the loss is NaN or inf"):
        fm.compute(h, outs, b["targets"], b["masks"], b["groups"])


@pytest.mark.parametrize(
    ("kw", "msg"),
    [({"mu": 0.0}, "mu must be"), ({"eps": -1.0}, "eps must be"),
     ({"proxy": "x"}, "proxy must be"), ({"qp_method": "x"}, "qp method must be"),
     ({"aggregation": "x"}, "aggregation must be"), ({"normalization": "x"}, "normalization"),
     ({"alpha_scale": "x"}, "alpha_scale")],
)
def test_bad_options(kw: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        make_method("fairmt", TASKS3, 2, **kw)
    with pytest.raises(ValueError, match="num_groups"):
        make_method("fairmt", TASKS3, 1)


# ----------------------------------------------------------------------------- devices


@pytest.mark.parametrize(
    ("name", "kw"),
    [(m, {}) for m in METHODS]
    + [("fairmt", {"qp_method": "apg", "qp_max_iter": 500}),
       ("fairmt", {"aggregation": "pairwise"}), ("fairmt", {"proxy": "rep"}),
       ("fairmt", {"proxy": "full"})],
)
def test_every_path_runs_on_device(device: str, name: str, kw: dict) -> None:
    model = MTModel(TASKS3, 4, 6).to(device)
    b = make_batch(TASKS3, 64, 4, device=device)
    if name == "mgda" or kw.get("proxy") == "full":
        kw = {**kw, "shared_parameters": model.encoder.parameters()}
    fm = make_method(name, TASKS3, 2, eta=0.5, **kw)
    out, *_ = _step(fm, model, b)
    out.loss.backward()
    fm.dual_step(out.record)
    dev = torch.device(device).type
    assert out.record.alpha.device.type == dev and out.loss.device.type == dev
    assert all(p.grad is not None and p.grad.device.type == dev for p in model.parameters())
    assert abs(float(out.record.alpha.sum()) - 1) < 1e-4


@pytest.mark.cuda
def test_apg_path_has_no_host_sync(device: str) -> None:
    if device != "cuda":
        pytest.skip("host synchronisation is only observable on CUDA")
    model = MTModel(TASKS3, 4, 6).to(device)
    b = make_batch(TASKS3, 64, 4, device=device)
    fm = make_method("fairmt", TASKS3, 2, eta=0.5, qp_method="apg", qp_max_iter=100,
                     check_inputs=False)
    _step(fm, model, b)  # warm-up (lazy initialisation)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out, *_ = _step(fm, model, b)
        out.loss.backward()
        fm.dual_step(out.record)
    finally:
        torch.cuda.set_sync_debug_mode("default")



MANY = (Task("d0", "detection"), Task("c3", "classification", num_classes=3),
        Task("r0", "regression"), Task("d1", "detection"),
        Task("c4", "classification", num_classes=4), Task("c3b", "classification",
                                                          num_classes=3),
        Task("r1", "regression"))


def test_custom_psi_shape_is_checked() -> None:
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 20, 4)
    h = model.encoder(b["x"])
    outs = [hd(h) for hd in model.heads]
    with pytest.raises(ValueError, match=r"psi must be a tensor of shape \(3,\)"):
        make_method("fairmt", TASKS3, 2).compute(h, outs, b["targets"], b["masks"], b["groups"],
                                  psi=torch.zeros(2))


def test_apg_alpha_matches_the_exact_solver() -> None:
    """The on-device APG path solves the same QP (absent task kept out by its cost)."""
    model = MTModel(TASKS3, 4, 6, dtype=torch.float64)
    b = make_batch(TASKS3, 64, 4, dtype=torch.float64)
    b["masks"][:, 2] = False
    ex, *_ = _step(make_method("fairmt", TASKS3, 2, eta=0.5), model, b)
    ap, *_ = _step(make_method("fairmt", TASKS3, 2, eta=0.5, qp_method="apg", qp_max_iter=3000),
                               model, b)
    K, bb = ex.record.K, ex.record.b
    f = lambda a: float(0.5 * a @ K @ a + bb @ a)  # noqa: E731
    assert float(ap.record.alpha[2]) == 0.0
    assert abs(f(ap.record.alpha) - f(ex.record.alpha)) <= 1e-8 * max(1.0, abs(f(ex.record.alpha)))
    assert ap.record.certificate is None  # certify defaults to the host solvers
    assert float(ap.record.qp.gap) <= 1e-6


def test_dual_step_running_mean_and_cap() -> None:
    fm = make_method("fairmt", TASKS3, 2, eps=0.1, rho=2.0, eta_max=0.5, dual_mode="running_mean",
                     beta=0.5)
    fm.dual_step(torch.tensor(0.3))  # mean 0.3: eta = 2 * 0.2 = 0.4
    assert abs(float(fm.eta) - 0.4) < 1e-6
    fm.dual_step(torch.tensor(0.5))  # mean 0.4: eta = min(0.5, 0.4 + 0.6)
    assert abs(float(fm.eta) - 0.5) < 1e-6
    s = fm.state_dict()
    fm2 = make_method("fairmt", TASKS3, 2, eps=0.1, rho=2.0, eta_max=0.5,
                      dual_mode="running_mean", beta=0.5)
    fm2.load_state_dict(s)
    fm.dual_step(0.0)
    fm2.dual_step(0.0)
    assert float(fm.eta) == float(fm2.eta)
    unc = make_method("linear", TASKS3, 2)
    unc.dual_step(torch.tensor(5.0))
    assert unc.eta == 0.0


# ----------------------------------------------------------------------------- properties

_KIND_CHOICES = (Task("d", "detection"), Task("c", "classification", num_classes=3),
                 Task("r", "regression"))


@settings(max_examples=25)
@given(
    kinds=st.lists(st.integers(0, 2), min_size=1, max_size=4),
    n=st.integers(4, 30),
    scale=st.sampled_from([1e-6, 1.0, 30.0]),
    label_rate=st.sampled_from([0.0, 0.2, 1.0]),
    proxy=st.sampled_from(["head", "rep", "none"]),
    eta=st.sampled_from([0.0, 0.3, 50.0]),
    seed=st.integers(0, 3),
)
def test_step_invariants_on_adversarial_batches(kinds: list, n: int, scale: float,
                                               label_rate: float, proxy: str, eta: float,
                                               seed: int) -> None:
    """Any batch (T = 1..4, no labels at all, tiny or huge logits, eta = 0 or large): finite
    loss and gradients, alpha on the simplex over the present tasks (zero elsewhere), weights
    likewise, the QP solution optimal against cvxpy on the present tasks."""
    tasks = [Task(f"{_KIND_CHOICES[k].name}{i}", _KIND_CHOICES[k].kind,
                  num_classes=_KIND_CHOICES[k].num_classes) for i, k in enumerate(kinds)]
    T = len(tasks)
    b = make_batch(tasks, n, 3, seed=seed, label_rate=label_rate, dtype=torch.float64)
    model = MTModel(tasks, 3, 4, seed=seed, dtype=torch.float64)
    with torch.no_grad():
        for hd in model.heads:
            hd.weight.mul_(scale)
    fm = make_method("fairmt", tasks, 2, eta=eta, proxy=proxy)  # type: ignore[arg-type]
    out, *_ = _step(fm, model, b)
    r = out.record
    grads = torch.autograd.grad(out.loss, list(model.parameters()), allow_unused=True)
    assert torch.isfinite(out.loss)
    assert all(g is None or bool(torch.isfinite(g).all()) for g in grads)
    present = b["masks"].any(0)
    torch.testing.assert_close(r.present, present)
    for v in (r.alpha, r.weights):
        assert bool((v >= 0).all()) and bool((v[~present] == 0).all())
        if present.any():
            assert abs(float(v.sum()) - 1) < 1e-9
        else:
            assert float(v.sum()) == 0.0
    assert bool((r.psi >= 0).all()) and float(r.phi) >= -1e-12
    idx = np.flatnonzero(present.numpy())
    if proxy != "none" and idx.size >= 2:
        K, bb = r.K.numpy()[np.ix_(idx, idx)], r.b.numpy()[idx]
        a = r.alpha.numpy()[idx]
        ref = reference.solve_simplex_qp(K, bb)
        f = 0.5 * a @ K @ a + bb @ a
        assert f <= ref.value + 1e-7 * max(1.0, np.abs(K).max(), np.abs(bb).max())
        assert r.certificate is not None and r.certificate.ok
    assert r.alpha.shape == (T,)


@pytest.mark.parametrize("proxy", ["head", "rep", "full", "none"])
def test_apg_path_reads_nothing_back_on_cpu(monkeypatch: pytest.MonkeyPatch, proxy: str) -> None:
    """A CPU stand-in for the CUDA sync check: with check_inputs=False and the APG QP, a step
    (compute, backward, dual step) never converts a tensor to a Python value or to NumPy."""
    model = MTModel(TASKS3, 4, 6)
    b = make_batch(TASKS3, 64, 4)
    extra = {"shared_parameters": list(model.encoder.parameters())} if proxy == "full" else {}
    fm = make_method("fairmt", TASKS3, 2, eta=0.5, qp_method="apg", qp_max_iter=50,
                     check_inputs=False,
                proxy=proxy, **extra)  # type: ignore[arg-type]
    _step(fm, model, b)  # first step: eta becomes a tensor
    fm.dual_step(torch.tensor(0.2))
    h = model.encoder(b["x"])
    outs = [hd(h) for hd in model.heads]

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a tensor was read back to the host")

    for name in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "cpu"):
        monkeypatch.setattr(torch.Tensor, name, boom)
    out = fm.compute(h, outs, b["targets"], b["masks"], b["groups"], heads=list(model.heads))
    out.loss.backward()
    fm.dual_step(out.record)
    monkeypatch.undo()
    assert abs(float(out.record.alpha.sum()) - 1) < 1e-4


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_half_precision_step_runs(dtype: torch.dtype) -> None:
    """Half-precision models take the torch paths (NumPy has no bfloat16): a full step runs
    and gives weights on the simplex and finite gradients."""
    model = MTModel(TASKS3, 4, 6, dtype=dtype)
    b = make_batch(TASKS3, 64, 4, dtype=dtype)
    fm = make_method("fairmt", TASKS3, 2, eta=0.5)
    out, *_ = _step(fm, model, b)
    out.loss.backward()
    r = out.record
    assert r.alpha.dtype == dtype and abs(float(r.alpha.sum()) - 1) < 1e-2
    assert abs(float(r.weights.sum()) - 1) < 1e-2
    assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters())


def test_unconstrained_methods_record_the_same_violations() -> None:
    """Linear scalarisation computes ψ only for the record (no autograd graph): the same ψ, Φ
    and w as the constrained step, and a loss whose graph holds no violation."""
    model = MTModel(MANY, 4, 6, dtype=torch.float64)
    b = make_batch(MANY, 60, 4, 3, seed=5, dtype=torch.float64)
    lin, *_ = _step(make_method("linear", MANY, 3), model, b)
    fm, *_ = _step(make_method("fairmt", MANY, 3, eta=0.5, proxy="none"), model, b)
    for name in ("psi", "phi", "weights"):
        torch.testing.assert_close(getattr(lin.record, name), getattr(fm.record, name),
                                   rtol=1e-12, atol=1e-14)
    assert bool(lin.record.psi.max() > 0)
    torch.testing.assert_close(lin.loss, lin.record.losses.sum())
