"""hypothesis properties of the violations and metrics on adversarial batches (ties, zero and
huge logits, imbalanced or missing groups, groups without positives, masks hiding everything)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fairmt_opt.fairness import (
    Task,
    evaluate_task,
    group_rates,
    hard_stats,
    soft_stats,
    violation_from_stats,
)
from fairmt_opt.testing.fairness_strategies import TaskBatch, task_batches

options = st.fixed_dictionaries({
    "group_reduction": st.sampled_from(["mean", "max"]),
    "include_fpr": st.booleans(),
    "regression_score": st.sampled_from(["mae", "mse", "ccc"]),
})


def _task(b: TaskBatch) -> Task:
    return Task("t", b.kind, num_classes=b.num_classes)  # type: ignore[arg-type]


def _stats(b: TaskBatch, soft: bool, **kw):
    fn = soft_stats if soft else hard_stats
    return fn(_task(b), *b.arrays(), **kw)


@given(task_batches(), options, st.booleans(), st.sampled_from([1.0, 0.1, 10.0]))
def test_psi_nonnegative_finite_and_below_symmetric(b, opts, soft, tau):
    task = _task(b)
    s = _stats(b, soft, temperature=tau) if soft else _stats(b, soft)
    asym = float(violation_from_stats(task, s, **opts))
    sym = float(violation_from_stats(task, s, symmetric=True, **opts))
    assert math.isfinite(asym) and math.isfinite(sym)
    assert 0.0 <= asym <= sym + 1e-12
    assert (asym == 0.0) == (sym == 0.0)


def _all_equal_reference(task, stats, opts) -> bool:
    rates, valid = group_rates(task, stats, regression_score=opts["regression_score"])
    keys = ["score"] if task.kind == "regression" else ["tpr"] + (
        ["fpr"] if opts["include_fpr"] else []
    )
    for k in keys:
        r = np.asarray(rates[k]).reshape(stats.num_groups, -1)
        v = np.asarray(valid[k]).reshape(stats.num_groups, -1)
        for c in range(r.shape[1]):
            vals = r[v[:, c], c]
            if vals.size >= 2 and not np.all(vals == vals[0]):
                return False
    return True


@given(task_batches(), options)
def test_psi_zero_exactly_when_all_nonempty_groups_equal_the_reference(b, opts):
    task = _task(b)
    s = _stats(b, soft=False)
    psi = float(violation_from_stats(task, s, **opts))
    assert (psi == 0.0) == _all_equal_reference(task, s, opts)


@given(task_batches(min_size=1), options, st.booleans(), st.data())
def test_invariant_to_permuting_samples(b, opts, soft, data):
    task = _task(b)
    perm = np.asarray(data.draw(st.permutations(range(len(b.groups)))))
    pb = TaskBatch(b.kind, b.num_classes, b.outputs[perm], b.targets[perm], b.mask[perm],
                   b.groups[perm], b.num_groups)
    s, ps = _stats(b, soft), _stats(pb, soft)
    for k in s.keys():
        if soft or b.kind == "regression":
            np.testing.assert_allclose(ps[k], s[k], rtol=1e-12, atol=1e-9)
        else:
            np.testing.assert_array_equal(ps[k], s[k])
    a, c = float(violation_from_stats(task, s, **opts)), float(
        violation_from_stats(task, ps, **opts))
    assert math.isclose(a, c, rel_tol=1e-9, abs_tol=1e-12)


@given(task_batches(), options, st.booleans(), st.data())
def test_invariant_to_relabelling_groups(b, opts, soft, data):
    task = _task(b)
    pi = np.asarray(data.draw(st.permutations(range(b.num_groups))))
    rb = TaskBatch(b.kind, b.num_classes, b.outputs, b.targets, b.mask, pi[b.groups],
                   b.num_groups)
    s, rs = _stats(b, soft), _stats(rb, soft)
    for k in s.keys():  # BLAS may sum a permuted column in another order: round-off only
        moved = np.asarray(rs[k])[:, pi] if k.startswith("strata") else np.asarray(rs[k])[pi]
        np.testing.assert_allclose(moved, np.asarray(s[k]), rtol=1e-13, atol=1e-12)
    for sym in (False, True):
        a = float(violation_from_stats(task, s, symmetric=sym, **opts))
        c = float(violation_from_stats(task, rs, symmetric=sym, **opts))
        assert math.isclose(a, c, rel_tol=1e-12, abs_tol=1e-15)
    if not soft:
        m1, m2 = evaluate_task(task, *b.arrays()), evaluate_task(task, *rb.arrays())
        assert m1.undefined == m2.undefined
        for k in m1:
            assert math.isclose(m1[k], m2[k], rel_tol=1e-12, abs_tol=1e-15) or (
                math.isnan(m1[k]) and math.isnan(m2[k])
            )


@given(task_batches(min_size=1), options, st.booleans(), st.integers(0, 2**32 - 1))
def test_masked_samples_have_no_influence(b, opts, soft, seed):
    task = _task(b)
    rng = np.random.default_rng(seed)
    hidden = ~b.mask
    out = b.outputs.copy()
    out[hidden] = rng.normal(size=out[hidden].shape) * 1e4
    tgt = b.targets.copy()
    tgt[hidden] = np.nan
    grp = b.groups.copy()
    grp[hidden] = rng.integers(0, b.num_groups, size=int(hidden.sum()))
    mb = TaskBatch(b.kind, b.num_classes, out, tgt, b.mask, grp, b.num_groups)
    s, ms = _stats(b, soft), _stats(mb, soft)
    for k in s.keys():
        np.testing.assert_array_equal(ms[k], s[k])
    assert float(violation_from_stats(task, s, **opts)) == float(
        violation_from_stats(task, ms, **opts))
    if not soft:
        m1, m2 = evaluate_task(task, *b.arrays()), evaluate_task(task, *mb.arrays())
        assert m1.undefined == m2.undefined
        for k in m1:
            assert m1[k] == m2[k] or (math.isnan(m1[k]) and math.isnan(m2[k]))


@given(task_batches(), options, st.booleans(), st.data())
def test_shards_add_up_to_the_batch(b, opts, soft, data):
    task = _task(b)
    N = len(b.groups)
    cut = data.draw(st.integers(0, N))

    # hard regression: the CSP threshold must be common to the shards (their own medians are
    # not); soft regression: so must the shift of the centred sums for the keys to agree
    # (shards with their own shifts are re-centred by a + b: tests/fairness/test_soft_ccc.py)
    kw = ({"shift": 0.25} if b.kind == "regression" else {}) if soft else {"train_median": 0.25}

    def part(sl):
        pb = TaskBatch(b.kind, b.num_classes, b.outputs[sl], b.targets[sl], b.mask[sl],
                       b.groups[sl], b.num_groups)
        return _stats(pb, soft, **kw)

    whole, total = _stats(b, soft, **kw), part(slice(0, cut)) + part(slice(cut, N))
    for k in whole.keys():
        np.testing.assert_allclose(total[k], whole[k], rtol=1e-12, atol=1e-9)
    a = float(violation_from_stats(task, whole, **opts))
    c = float(violation_from_stats(task, total, **opts))
    assert math.isclose(a, c, rel_tol=1e-9, abs_tol=1e-12)
