"""Bad inputs raise ValueError naming the argument and the problem; accepted input forms."""

from __future__ import annotations

import numpy as np
import pytest

from fairmt_opt.fairness import Task, evaluate_task, hard_stats, soft_stats, soft_violation

DET = Task("d", "detection")
CLS = Task("c", "classification", num_classes=3)
REG = Task("r", "regression")
Z = np.array([0.5, -1.0, 2.0, 0.0])
Y = np.array([1, 0, 1, 0])
G = np.array([0, 1, 0, 1])


@pytest.mark.parametrize("fn", [soft_stats, hard_stats, evaluate_task, soft_violation])
@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((DET, Z, Y, None, G, 1), "num_groups must be >= 2"),
        ((DET, Z, Y, None, G, 2.0), "num_groups must be an integer"),
        (("d", Z, Y, None, G, 2), "task must be a Task"),
        ((DET, None, Y, None, G, 2), "outputs must be an array"),
        ((DET, Z[:, None].repeat(2, 1), Y, None, G, 2), r"outputs of detection task 'd' must"),
        ((CLS, Z, Y, None, G, 2), r"outputs of classification task 'c' must have shape \(N, 3\)"),
        ((REG, np.zeros((4, 2)), Y, None, G, 2), r"shape \(N,\) or \(N, 1\)"),
        ((DET, Z, Y[:3], None, G, 2), r"targets must have shape \(4,\)"),
        ((DET, Z, Y, None, G[:3], 2), r"groups must have shape \(4,\)"),
        ((DET, Z, Y, np.ones(5, bool), G, 2), r"mask must have shape \(4,\)"),
        ((DET, Z, Y, np.array([0, 1, 2, 1]), G, 2), "mask must be boolean"),
        ((DET, Z, Y, None, np.array([0, 1, 2, 1]), 2), r"groups must lie in \[0, num_groups\)"),
        ((DET, Z, Y, None, np.array([0, -1, 0, 1]), 2), r"groups must lie in"),
        ((DET, Z, Y, None, np.array([0, 0.5, 0, 1]), 2), "groups must hold integers"),
        ((DET, Z, Y, None, np.array([0, np.nan, 0, 1]), 2), "groups must hold integers"),
        ((DET, Z, np.array([1, 2, 0, 0]), None, G, 2), "must be 0 or 1 on labelled samples"),
        ((CLS, np.zeros((4, 3)), np.array([0, 3, 1, 1]), None, G, 2),
         r"integers in \[0, 3\) on labelled"),
        ((CLS, np.zeros((4, 3)), np.array([0, 1.5, 1, 1]), None, G, 2), "integers in"),
        ((REG, Z, np.array([0.0, np.nan, 1, 1]), None, G, 2), "targets contains NaN or inf"),
        ((REG, Z, np.array([0.0, np.inf, 1, 1]), None, G, 2), "targets contains NaN or inf"),
        ((DET, np.array([0.0, np.nan, 1, 1]), Y, None, G, 2), "outputs contains? NaN or inf"),
        ((DET, np.array([0.0, np.inf, 1, 1]), Y, None, G, 2), "outputs contains? NaN or inf"),
        ((DET, np.array(["a", "b", "c", "d"]), Y, None, G, 2),
         "outputs must (be|have) a (real )?numeric"),
    ],
)
def test_bad_inputs_raise(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)


def test_garbage_in_unlabelled_targets_is_accepted():
    m = np.array([True, False, True, False])
    for task, z, bad in ((DET, Z, -1.0), (CLS, np.zeros((4, 3)), 99.0), (REG, Z, np.nan)):
        y = np.where(m, np.array([1.0, 0.0, 0.0, 1.0]), bad)
        evaluate_task(task, z, y, m, G, 2)
        hard_stats(task, z, y, m, G, 2)
        soft_stats(task, z, y, m, G, 2)


def test_accepted_forms_agree():
    """lists, (N, 1) outputs, 0/1 integer masks, bool targets, float group ids."""
    base = hard_stats(DET, Z, Y, np.array([True, True, False, True]), G, 2)
    alt = hard_stats(DET, Z[:, None].tolist(), Y.astype(bool), [1, 1, 0, 1],
                     G.astype(float), 2)
    for k in base.keys():
        np.testing.assert_array_equal(base[k], alt[k])


def test_conditioning_and_median_errors():
    with pytest.raises(ValueError, match=r"conditioning must have shape \(4,\)"):
        hard_stats(DET, Z, Y, None, G, 2, conditioning=[0, 1])
    with pytest.raises(ValueError, match="conditioning must hold non-negative integers"):
        hard_stats(DET, Z, Y, None, G, 2, conditioning=[0, -1, 0, 0])
    with pytest.raises(ValueError, match=r"conditioning must lie in \[0, num_strata\)"):
        hard_stats(DET, Z, Y, None, G, 2, conditioning=[0, 2, 0, 0], num_strata=2)
    with pytest.raises(ValueError, match="num_strata must be 1"):
        hard_stats(DET, Z, Y, None, G, 2, num_strata=3)
    with pytest.raises(ValueError, match="train_median must be finite"):
        hard_stats(REG, Z, Z, None, G, 2, train_median=float("nan"))


def test_mixed_torch_and_numpy_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="mix torch tensors and other arrays"):
        soft_stats(DET, torch.tensor(Z), Y, None, torch.tensor(G), 2)


def test_empty_batch_is_fine():
    s = hard_stats(DET, np.zeros(0), np.zeros(0), None, np.zeros(0, int), 2)
    assert float(s["pos"].sum()) == 0.0
    res = evaluate_task(DET, np.zeros(0), np.zeros(0), None, np.zeros(0, int), 2)
    assert set(res.undefined) == set(res)


def test_package_works_without_torch():
    """torch is optional: with torch made unimportable, the package imports and computes the
    hard metrics and the (NumPy) soft statistics and violations."""
    import subprocess
    import sys

    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "try:\n    import torch\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit(3)\n"
        "import numpy as np\n"
        "from fairmt_opt.fairness import Task, evaluate_task, soft_violation\n"
        "t = Task('d', 'detection')\n"
        "m = evaluate_task(t, [1., -1., 2., 0.5], [1, 0, 1, 1], None, [0, 0, 1, 1], 2)\n"
        "v = soft_violation(t, np.array([1., -1., 2., 0.5]), [1, 0, 1, 1], None, [0, 0, 1, 1], 2)\n"
        "assert 'torch' not in sys.modules\n"
        "print(round(m['accuracy'], 3), float(v) > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1.0", "True"]


def test_stats_objects_check_their_sums():
    from fairmt_opt.fairness import HardStats, SoftStats

    z = np.zeros((2, 1))
    with pytest.raises(ValueError, match=r"missing \['neg'\]"):
        SoftStats("detection", 2, 1, {"tp": z, "pos": z, "fp": z})
    with pytest.raises(ValueError, match=r"'tp' must have shape \(3, 1\)"):
        SoftStats("detection", 3, 1, {"tp": z, "pos": z, "fp": z, "neg": z})
    with pytest.raises(ValueError, match="missing"):
        HardStats("detection", 2, 1, {"tp": z, "pos": z, "fp": z, "neg": z})
    with pytest.raises(ValueError, match="kind must be"):
        SoftStats("ranking", 2, 1, {})  # type: ignore[arg-type]
