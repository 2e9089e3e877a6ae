"""Soft (differentiable) statistics and violations in torch: convergence to the hard rates,
gradcheck, the lift-only property (SPEC P5), partial labels, shards and scaling."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from fairmt_opt.fairness import (  # noqa: E402
    RunningScale,
    SoftStats,
    Task,
    ViolationResult,
    group_rates,
    hard_stats,
    soft_stats,
    soft_violation,
    violation_from_stats,
)

DET = Task("d", "detection")
CLS = Task("c", "classification", num_classes=3)
REG = Task("r", "regression")
F64 = torch.float64


def _batch(task, N=60, G=3, seed=0, *, margin=0.0, dtype=F64, device="cpu", mask_frac=0.25):
    gen = np.random.default_rng(seed)
    groups = np.arange(N) % G
    gen.shuffle(groups)
    mask = gen.random(N) >= mask_frac
    if task.kind == "classification":
        z = gen.normal(size=(N, task.num_classes))
        y = gen.integers(0, task.num_classes, size=N).astype(float)
    elif task.kind == "detection":
        z = gen.normal(size=N)
        y = (gen.random(N) < 0.5).astype(float)
        for g in range(G):  # a labelled positive and negative in every group
            idx = np.flatnonzero(groups == g)[:2]
            y[idx], mask[idx] = [1.0, 0.0], True
    else:
        z = gen.normal(size=N)
        y = z + gen.normal(size=N) * (1 + np.arange(N) % G)
    if margin and task.kind == "classification":  # a margin between the top two logits
        z[np.arange(N), np.argmax(z, axis=1)] += margin
    elif margin:
        z = np.where(np.abs(z) < margin, np.sign(z + 1e-300) * margin, z)
    y = np.where(mask, y, np.nan if task.kind == "regression" else -1.0)
    t = lambda a, dt=dtype: torch.tensor(a, dtype=dt, device=device)  # noqa: E731
    return (t(z).requires_grad_(True), t(y, F64), torch.tensor(mask, device=device),
            torch.tensor(groups, device=device), G)


# ------------------------------------------------------------------ temperature -> 0


@pytest.mark.parametrize("task", [DET, CLS], ids=["det", "cls"])
def test_soft_rates_converge_to_hard_rates(task):
    z, y, m, g, G = _batch(task, N=90, margin=0.05)
    hard = hard_stats(task, z.detach().numpy(), y.numpy(), m.numpy(), g.numpy(), G)
    errs = []
    for tau in (1.0, 0.1, 0.01, 1e-3):
        soft = soft_stats(task, z, y, m, g, G, temperature=tau)
        errs.append(max(float(np.max(np.abs(soft[k].detach().numpy() - hard[k])))
                        for k in ("tp", "fp")))
        for key in ("pos", "neg"):  # the denominators do not depend on the temperature
            np.testing.assert_array_equal(soft[key].detach().numpy(), hard[key])
    assert all(b < a for a, b in itertools.pairwise(errs)), errs
    assert errs[-1] < 1e-12
    psi_soft = soft_violation(task, z, y, m, g, G, temperature=1e-3)
    psi_hard = violation_from_stats(task, hard)
    assert float(psi_soft) == pytest.approx(float(psi_hard), abs=1e-12)


# ------------------------------------------------------------------ gradcheck (float64)

OPTIONS = [
    {"symmetric": sym, "group_reduction": red, "include_fpr": fpr}
    for sym, red, fpr in itertools.product((False, True), ("mean", "max"), (True, False))
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_gradcheck_detection_violations(opts):
    task = DET
    z, y, m, g, G = _batch(task, N=18, seed=1)
    if opts["symmetric"]:
        f = lambda zz: soft_violation(task, zz, y, m, g, G, temperature=0.7, **opts).value  # noqa: E731
        assert torch.autograd.gradcheck(f, (z.detach().requires_grad_(True),))
        return
    # the asymmetric violation is *not* the derivative of itself: its reference is a
    # stop-gradient. With the best groups' outputs frozen, the reference is a constant and
    # finite differences must agree with autograd.
    res = soft_violation(task, z, y, m, g, G, temperature=0.7, **opts)
    best = set()
    for key, r in res.rates.items():
        r = r.reshape(G, -1)
        e = res.empty[key].reshape(G, -1)
        fill = -math.inf if key == "tpr" else math.inf
        rr = torch.where(e, torch.full_like(r, fill), r)
        best |= set((rr.argmax(0) if key == "tpr" else rr.argmin(0)).tolist())
    free = ~torch.isin(g, torch.tensor(sorted(best)))
    assert free.any()
    z0 = z.detach()

    def f(zf):
        zz = z0.clone()
        zz[free] = zf
        return soft_violation(task, zz, y, m, g, G, temperature=0.7, **opts).value

    assert torch.autograd.gradcheck(f, (z0[free].clone().requires_grad_(True),))


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(str(v) for v in o.values()))
@pytest.mark.parametrize("K", [1, 3])
def test_gradcheck_violation_of_statistics(opts, K):
    """psi as a function of the statistics (the map outputs -> statistics is gradchecked in
    test_gradcheck_statistics). Every class shares its outputs, so for classification the
    stop-gradient reference is frozen in the space of statistics: the best cells (largest TPR,
    smallest FPR of each class) are constants, the other tp and fp sums vary."""
    task = DET if K == 1 else Task("c", "classification", num_classes=K)
    G = 4
    base = _leaf_stats(G, K, seed=K)
    tp0, fp0 = base["tp"].detach(), base["fp"].detach()
    pos, neg = base["pos"], base["neg"]
    free_t = torch.ones_like(tp0, dtype=torch.bool)
    free_f = torch.ones_like(fp0, dtype=torch.bool)
    if not opts["symmetric"]:
        free_t[(tp0 / pos).argmax(0), torch.arange(K)] = False
        free_f[(fp0 / neg).argmin(0), torch.arange(K)] = False

    def f(tpv, fpv):
        tp, fp = tp0.clone(), fp0.clone()
        tp[free_t], fp[free_f] = tpv, fpv
        stats = SoftStats(task.kind, G, K, {"tp": tp, "pos": pos, "fp": fp, "neg": neg})
        return violation_from_stats(task, stats, **opts).value

    args = (tp0[free_t].clone().requires_grad_(True), fp0[free_f].clone().requires_grad_(True))
    assert f(*args).item() > 0
    assert torch.autograd.gradcheck(f, args)


@pytest.mark.parametrize("score", ["mae", "mse", "ccc"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_gradcheck_regression(score, symmetric):
    z, y, m, g, G = _batch(REG, N=18, seed=2)
    res = soft_violation(REG, z, y, m, g, G, regression_score=score, symmetric=symmetric)
    assert float(res) > 0
    if symmetric:
        free = torch.ones_like(m)
    else:
        free = g != int(torch.argmax(res.rates["score"]))
    z0 = z.detach()

    def f(zf):
        zz = z0.clone()
        zz[free] = zf
        return soft_violation(REG, zz, y, m, g, G, regression_score=score,
                              symmetric=symmetric).value

    assert torch.autograd.gradcheck(f, (z0[free].clone().requires_grad_(True),))


@pytest.mark.parametrize("task", [DET, CLS, REG], ids=["det", "cls", "reg"])
def test_gradcheck_statistics(task):
    z, y, m, g, G = _batch(task, N=20, seed=3)
    keys = ("tp", "fp") if task.kind != "regression" else ("abs_err", "sq_err", "pred", "cross")

    def f(zz):
        s = soft_stats(task, zz, y, m, g, G, temperature=0.5)
        return tuple(s[k] for k in keys)

    assert torch.autograd.gradcheck(f, (z.detach().requires_grad_(True),))


# ------------------------------------------------------------------ lift-only (SPEC P5)


def _leaf_stats(G, K, seed):
    """Confusion statistics whose tp and fp sums are leaves: d psi / d tp_gk is
    (d psi / d TPR_gk) / pos_gk, so signs of the rate gradients can be read off."""
    gen = np.random.default_rng(seed)
    pos = torch.tensor(gen.integers(1, 20, size=(G, K)), dtype=F64)
    neg = torch.tensor(gen.integers(1, 20, size=(G, K)), dtype=F64)
    tp = (pos * torch.tensor(gen.random((G, K)))).requires_grad_(True)
    fp = (neg * torch.tensor(gen.random((G, K)))).requires_grad_(True)
    kind = "detection" if K == 1 else "classification"
    return SoftStats(kind, G, K, {"tp": tp, "pos": pos, "fp": fp, "neg": neg})


@pytest.mark.parametrize(("G", "K", "seed"), list(itertools.product((2, 3, 6), (1, 4), range(3))))
@pytest.mark.parametrize("reduction", ["mean", "max"])
def test_lift_only_gradient_signs_on_rates(G, K, seed, reduction):
    s = _leaf_stats(G, K, seed)
    task = DET if K == 1 else Task("c", "classification", num_classes=K)
    res = violation_from_stats(task, s, group_reduction=reduction)
    res.value.backward()
    tpr = (s["tp"] / s["pos"]).detach()
    fpr = (s["fp"] / s["neg"]).detach()
    gt, gf = s["tp"].grad, s["fp"].grad
    for k in range(K):
        best, least = int(tpr[:, k].argmax()), int(fpr[:, k].argmin())
        assert gt[best, k] == 0.0  # exactly: the reference never moves
        assert gf[least, k] == 0.0
        assert (gt[:, k] <= 0).all()  # raising a lagging TPR never increases psi
        assert (gf[:, k] >= 0).all()  # lowering an FPR never increases psi
    assert (gt < 0).any()
    # the symmetric violation pulls the best group down (positive gradient on its TPR)
    s2 = _leaf_stats(G, K, seed)
    violation_from_stats(task, s2, symmetric=True).value.backward()
    tpr2 = (s2["tp"] / s2["pos"]).detach()
    for k in range(K):
        assert s2["tp"].grad[int(tpr2[:, k].argmax()), k] > 0


def _per_group_model(kind, G=3, N=300, seed=0):
    gen = np.random.default_rng(seed)
    groups = torch.tensor(np.repeat(np.arange(G), N // G))
    x = torch.tensor(gen.normal(size=N))
    if kind == "detection":
        y = torch.tensor((gen.random(N) < 0.6).astype(float))
    else:
        y = x + 0.3 * torch.tensor(gen.normal(size=N))
    bias = torch.tensor([-1.0, 0.5, 0.2][:G], dtype=F64, requires_grad=True)
    return x, y, groups, bias


@pytest.mark.parametrize("kind", ["detection", "regression"])
def test_gradient_step_lifts_lagging_groups_only(kind):
    """Each group has its own bias: a step on the asymmetric psi leaves the best group's rate
    (score) exactly unchanged and raises the lagging ones; the symmetric psi lowers the best."""
    task = DET if kind == "detection" else REG
    x, y, g, b = _per_group_model(kind)
    opts = {"include_fpr": False} if kind == "detection" else {}
    key = "tpr" if kind == "detection" else "score"

    def rates(bias, symmetric=False):
        out = x + bias[g]
        return soft_violation(task, out, y, None, g, 3, symmetric=symmetric, **opts)

    before = rates(b)
    before.value.backward()
    best = int(torch.argmax(before.rates[key]))
    assert b.grad[best] == 0.0
    with torch.no_grad():
        b_new = b - 0.5 * b.grad
    after = rates(b_new)
    r0, r1 = before.rates[key], after.rates[key]
    assert r1[best] == r0[best]
    lag = [i for i in range(3) if i != best]
    assert (r1[lag] > r0[lag]).all()
    assert float(after) < float(before)

    b2 = b.detach().clone().requires_grad_(True)
    sym = rates(b2, symmetric=True)
    sym.value.backward()
    assert b2.grad[best] != 0  # first order: the step changes r_best by -lr (dr/db)^2 < 0
    with torch.no_grad():
        r2 = rates(b2 - 0.5 * b2.grad, symmetric=True).rates[key]
    assert r2[best] < r0[best]


# ------------------------------------------------------------------ partial labels


@pytest.mark.parametrize("task", [DET, CLS, REG], ids=["det", "cls", "reg"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_no_label_gives_exact_zero_and_zero_gradient(task, symmetric):
    z, y, m, g, G = _batch(task, N=12)
    none = torch.zeros_like(m)
    res = soft_violation(task, z, y, none, g, G, symmetric=symmetric)
    assert float(res) == 0.0
    res.value.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))
    assert all(bool(e.all()) for e in res.empty.values())
    assert not any(bool(torch.isnan(r).any()) for r in res.rates.values())


@pytest.mark.parametrize("task", [DET, CLS, REG], ids=["det", "cls", "reg"])
def test_single_group_present_gives_zero(task):
    z, y, m, g, G = _batch(task, N=12)
    one = torch.full_like(g, 2)
    for sym in (False, True):
        zz = z.detach().clone().requires_grad_(True)
        res = soft_violation(task, zz, y, m, one, G, symmetric=sym)
        res.value.backward()
        assert float(res) == 0.0
        assert torch.equal(zz.grad, torch.zeros_like(zz))


@pytest.mark.parametrize("task", [DET, CLS, REG], ids=["det", "cls", "reg"])
def test_masked_samples_have_no_influence(task):
    z, y, m, g, G = _batch(task, N=40, seed=4)
    res = soft_violation(task, z, y, m, g, G)
    res.value.backward()
    assert torch.equal(z.grad[~m], torch.zeros_like(z.grad[~m]))
    assert (z.grad[m] != 0).any()
    z2 = z.detach().clone()
    z2[~m] = 1e3 * torch.randn_like(z2[~m])
    y2 = y.clone()
    y2[~m] = float("nan") if task.kind == "regression" else 7.0
    a = soft_stats(task, z, y, m, g, G)
    b = soft_stats(task, z2, y2, m, g, G, validate=False)  # 7 is out of range: never read
    for k in a.keys():
        assert torch.equal(a[k].detach(), b[k])


def test_group_without_positives_is_empty_not_nan():
    z, y, m, g, G = _batch(DET, N=30)
    y = torch.where(g == 1, torch.zeros_like(y), y)
    res = soft_violation(DET, z, y, m, g, G)
    assert bool(res.empty["tpr"][1]) and not bool(res.empty["fpr"][1])
    assert res.rates["tpr"][1] == 0.0
    res.value.backward()
    assert torch.isfinite(z.grad).all()
    assert "empty_cells={'tpr': 1, 'fpr': 0}" in repr(res)


# ------------------------------------------------------------------ shards, map, dtypes


@pytest.mark.parametrize("task", [DET, CLS, REG], ids=["det", "cls", "reg"])
def test_soft_stats_over_shards_give_the_whole_batch(task):
    z, y, m, g, G = _batch(task, N=61, seed=5)
    # regression: one shift of the centred sums for all shards, so the keys agree one by one
    kw = {"shift": 0.5} if task.kind == "regression" else {}
    whole = soft_stats(task, z, y, m, g, G, temperature=0.3, **kw)
    cuts = [0, 1, 20, 21, 61]
    parts = [soft_stats(task, z[a:b], y[a:b], m[a:b], g[a:b], G, temperature=0.3, **kw)
             for a, b in itertools.pairwise(cuts)]
    total = sum(parts)
    for k in whole.keys():
        torch.testing.assert_close(total[k], whole[k], rtol=1e-13, atol=1e-13)
    v1 = violation_from_stats(task, total).value
    v2 = violation_from_stats(task, whole).value
    assert v1.item() == pytest.approx(v2.item(), abs=1e-13)
    # gradients flow through the sum of shards as through the whole batch
    g1 = torch.autograd.grad(v1, z)[0]
    g2 = torch.autograd.grad(v2, z)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-12)
    # map applies to every array (here: what an all-reduce over one process would return)
    doubled = whole.map(lambda t: t * 2)
    assert isinstance(doubled, SoftStats)
    for k in whole.keys():
        torch.testing.assert_close(doubled[k], 2 * whole[k])
    # doubling every count leaves the rates, hence psi, unchanged
    assert float(violation_from_stats(task, doubled)) == pytest.approx(v2.item())


def test_float32_and_device(device):
    for task in (DET, CLS, REG):
        z, y, m, g, G = _batch(task, N=50, dtype=torch.float32, device=device)
        res = soft_violation(task, z, y, m, g, G)
        assert res.value.dtype == torch.float32 and res.value.device.type == device
        res.value.backward()
        assert torch.isfinite(z.grad).all()
        ref = soft_violation(task, z.detach().double().cpu(), y.cpu(), m.cpu(), g.cpu(), G)
        assert float(res) == pytest.approx(float(ref), rel=1e-4, abs=1e-6)


def test_numpy_soft_equals_torch_soft():
    for task in (DET, CLS, REG):
        z, y, m, g, G = _batch(task, N=30)
        a = soft_stats(task, z, y, m, g, G, temperature=0.5)
        b = soft_stats(task, z.detach().numpy(), y.numpy(), m.numpy(), g.numpy(), G,
                       temperature=0.5)
        for k in a.keys():
            np.testing.assert_allclose(a[k].detach().numpy(), b[k], rtol=1e-13, atol=1e-14)


# ------------------------------------------------------------------ scale and options


def test_fixed_and_running_scale():
    z, y, m, g, G = _batch(DET, N=40)
    base = soft_violation(DET, z, y, m, g, G)
    half = soft_violation(DET, z, y, m, g, G, scale=2.0)
    assert float(half) == pytest.approx(float(base) / 2)
    assert half.raw.item() == float(base)
    rs = RunningScale(momentum=0.9)
    first = soft_violation(DET, z, y, m, g, G, scale=rs)
    assert float(first) == pytest.approx(1.0)  # the first scale is the value itself
    assert rs.steps == 1 and rs.value == pytest.approx(float(base))
    rs.update_(3 * float(base))
    # EMA with bias correction: (0.9 * 0.1 * v + 0.1 * 3 v) / (1 - 0.81)
    assert rs.value == pytest.approx(float(base) * (0.09 + 0.3) / 0.19)
    clone = RunningScale()
    clone.load_state_dict(rs.state_dict())
    assert clone.value == rs.value and clone.momentum == 0.9
    assert repr(rs).startswith("RunningScale(momentum=0.9, eps=1e-08, value=")
    with pytest.raises(ValueError, match="momentum"):
        RunningScale(momentum=1.0)
    with pytest.raises(ValueError, match="finite"):
        rs.update_(float("nan"))
    with pytest.raises(ValueError, match="scale must be > 0"):
        soft_violation(DET, z, y, m, g, G, scale=0.0)


def test_running_scale_of_zero_violation_stays_zero():
    z, y, m, g, G = _batch(DET, N=12)
    rs = RunningScale()
    res = soft_violation(DET, z, y, torch.zeros_like(m), g, G, scale=rs)
    assert float(res) == 0.0 and rs.value == rs.eps


def test_option_errors():
    z, y, m, g, G = _batch(DET, N=12)
    with pytest.raises(ValueError, match="group_reduction must be 'mean' or 'max'"):
        soft_violation(DET, z, y, m, g, G, group_reduction="median")
    with pytest.raises(ValueError, match="regression_score must be one of"):
        soft_violation(DET, z, y, m, g, G, regression_score="mape")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        soft_violation(DET, z, y, m, g, G, temperature=0.0)
    with pytest.raises(ValueError, match="symmetric must be a bool"):
        soft_violation(DET, z, y, m, g, G, symmetric="yes")
    s = soft_stats(DET, z, y, m, g, G)
    with pytest.raises(ValueError, match="stats describe a detection task"):
        violation_from_stats(CLS, s)
    with pytest.raises(ValueError, match="stats must be SoftStats or HardStats"):
        violation_from_stats(DET, {"tp": 1})
    with pytest.raises(ValueError, match="floating"):
        soft_stats(DET, torch.tensor([1, 0]), torch.tensor([1, 0]), None, torch.tensor([0, 1]), 2)


def test_violation_result_repr_and_rates():
    z, y, m, g, G = _batch(CLS, N=30)
    res = soft_violation(CLS, z, y, m, g, G)
    assert isinstance(res, ViolationResult)
    text = repr(res)
    assert text.startswith("ViolationResult(value=") and "kind='classification'" in text
    assert res.rates["tpr"].shape == (G, 3) and not res.rates["tpr"].requires_grad
    rates, valid = group_rates(CLS, soft_stats(CLS, z, y, m, g, G))
    torch.testing.assert_close(rates["tpr"].detach(), res.rates["tpr"])
    assert torch.equal(~valid["tpr"], res.empty["tpr"])


@pytest.mark.parametrize("task", [DET, CLS, REG], ids=["det", "cls", "reg"])
def test_empty_batch_gives_zero(task):
    shape = (0, 3) if task.kind == "classification" else (0,)
    z = torch.zeros(shape, dtype=F64, requires_grad=True)
    res = soft_violation(task, z, torch.zeros(0), torch.zeros(0, dtype=torch.bool),
                         torch.zeros(0, dtype=torch.long), 2)
    assert float(res) == 0.0
    res.value.backward()
    assert z.grad is not None and z.grad.shape == z.shape


@given(
    st.integers(2, 6), st.integers(1, 4), st.integers(0, 2**32 - 1),
    st.sampled_from(["mean", "max"]), st.booleans(),
)
def test_lift_only_with_ties_and_empty_cells(G, K, seed, reduction, include_fpr):
    """Integer counts make ties at the best rate and empty cells common: every best (tied)
    cell gets an exactly zero gradient, the others the lift-only sign, nothing is NaN."""
    gen = np.random.default_rng(seed)
    pos = torch.tensor(gen.integers(0, 4, size=(G, K)), dtype=F64)
    neg = torch.tensor(gen.integers(0, 4, size=(G, K)), dtype=F64)
    tp = torch.floor(pos * torch.tensor(gen.random((G, K))) + 0.5).requires_grad_(True)
    fp = torch.floor(neg * torch.tensor(gen.random((G, K))) + 0.5).requires_grad_(True)
    task = DET if K == 1 else Task("c", "classification", num_classes=K)
    s = SoftStats(task.kind, G, K, {"tp": tp, "pos": pos, "fp": fp, "neg": neg})
    res = violation_from_stats(task, s, group_reduction=reduction, include_fpr=include_fpr)
    assert math.isfinite(float(res)) and float(res) >= 0
    res.value.backward()
    gt = tp.grad if tp.grad is not None else torch.zeros_like(tp)
    gf = fp.grad if fp.grad is not None else torch.zeros_like(fp)
    assert torch.isfinite(gt).all() and torch.isfinite(gf).all()
    safe = lambda a, b: torch.where(b > 0, a / torch.where(b > 0, b, 1), torch.nan)  # noqa: E731
    tpr, fpr = safe(tp.detach(), pos), safe(fp.detach(), neg)
    for k in range(K):
        best = tpr[:, k] == torch.nan_to_num(tpr[:, k], nan=-1).max()
        least = fpr[:, k] == torch.nan_to_num(fpr[:, k], nan=2).min()
        assert (gt[best, k] == 0).all() and (gt[:, k] <= 0).all()
        assert (gf[least, k] == 0).all() and (gf[:, k] >= 0).all()
        assert (gt[pos[:, k] == 0, k] == 0).all() and (gf[neg[:, k] == 0, k] == 0).all()
    assert torch.equal(res.empty["tpr"], (pos == 0).squeeze(1) if K == 1 else pos == 0)


@given(st.integers(2, 6), st.integers(0, 2**32 - 1), st.sampled_from(["mae", "mse"]))
def test_lift_only_regression_scores(G, seed, score):
    """P_g = -MAE_g (or -MSE_g): the best group's error sum gets a zero gradient, the other
    groups' a non-negative one (lowering their error lowers psi)."""
    gen = np.random.default_rng(seed)
    n = torch.tensor(gen.integers(0, 4, size=G), dtype=F64)
    err = torch.tensor(np.round(gen.random(G) * 4) / 2, dtype=F64) * n
    abs_err = err.clone().requires_grad_(True)
    sq_err = err.clone().requires_grad_(True)
    zeros = torch.zeros(G, dtype=F64)
    sums = {"n": n, "abs_err": abs_err, "sq_err": sq_err, "pred": zeros, "target": zeros,
            "pred_sq": zeros, "target_sq": zeros, "cross": zeros}
    res = violation_from_stats(REG, SoftStats("regression", G, 1, sums), regression_score=score)
    if not res.value.requires_grad:
        return
    res.value.backward()
    leaf = abs_err if score == "mae" else sq_err
    grad = leaf.grad if leaf.grad is not None else torch.zeros(G, dtype=F64)
    P = torch.where(n > 0, -err / torch.where(n > 0, n, 1), -torch.inf)
    best = P == P.max()
    assert (grad[best] == 0).all() and (grad >= 0).all()


@pytest.mark.parametrize(("bad", "key"), [
    ({"steps": "abc"}, "steps"), ({"steps": -1}, "steps"), ({"momentum": 1.0}, "momentum"),
    ({"eps": 0.0}, "eps"), ({"ema": float("nan")}, "ema"), ({"ema": None}, "ema")])
def test_running_scale_state_is_validated_before_loading(bad: dict, key: str) -> None:
    rs = RunningScale(momentum=0.5)
    rs.update_(3.0)
    good = rs.state_dict()
    target = RunningScale()
    before = target.state_dict()
    with pytest.raises(ValueError, match=key):
        target.load_state_dict({**good, **bad})
    assert target.state_dict() == before  # nothing half-loaded
    target.load_state_dict(good)
    assert target.state_dict() == good
