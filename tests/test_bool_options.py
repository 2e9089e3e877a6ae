"""Boolean options share one rule (``check_bool``): True, False and NumPy bools are accepted and
mean what the Python bools mean; integers, floats, strings, None and arrays are refused with a
message naming the option (issue #13)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fairmt_opt import solve_simplex_qp
from fairmt_opt._utils.validation import check_bool
from fairmt_opt.fairness import Task, hard_stats, soft_violation, violation_from_stats
from fairmt_opt.torch.constraint import FairnessConstraint

REFUSED: list[Any] = [0, 1, np.int64(1), 1.0, np.float64(0.0), "True", "", None,
                      np.array(True), np.array([True]), torch.tensor(True), [True]]


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_, np.bool_(1)])
def test_check_bool_accepts_python_and_numpy_bools(value: Any) -> None:
    out = check_bool(value, "flag")
    assert type(out) is bool and out == bool(value)


@pytest.mark.parametrize("value", REFUSED, ids=repr)
def test_check_bool_refuses_everything_else_naming_the_argument(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^my_option must be a bool, got "):
        check_bool(value, "my_option")


def test_comparison_results_are_accepted() -> None:
    # the NumPy bools users meet most: comparisons of NumPy scalars
    flag = np.float64(2.0) > 1.0
    assert isinstance(flag, np.bool_) and check_bool(flag, "flag") is True


# ----------------------------------------------------------------------------- the options
_TASK = Task("y", "detection")
_OUT = [1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0]
_Y = [1, 1, 0, 0, 1, 1, 0, 0]
_G = [0, 0, 0, 0, 1, 1, 1, 1]


def _stats() -> Any:
    return hard_stats(_TASK, _OUT, _Y, None, _G, 2)


@pytest.mark.parametrize("name", ["symmetric", "include_fpr"])
def test_violation_from_stats_numpy_bools_mean_the_python_bools(name: str) -> None:
    values = set()
    for flag in (True, False):
        ref = float(violation_from_stats(_TASK, _stats(), **{name: flag}).value)
        res = float(violation_from_stats(_TASK, _stats(), **{name: np.bool_(flag)}).value)
        assert res == ref
        values.add(ref)
    assert len(values) == 2  # the option changes the value here: the test can tell them apart


@pytest.mark.parametrize("name", ["symmetric", "include_fpr"])
@pytest.mark.parametrize("value", [1, 0.0, "False", None], ids=repr)
def test_violation_options_refuse_non_bools(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a bool"):
        violation_from_stats(_TASK, _stats(), **{name: value})
    z = torch.tensor(_OUT)
    y = torch.tensor(_Y).float()
    with pytest.raises(ValueError, match=f"{name} must be a bool"):
        soft_violation(_TASK, z, y, None, torch.tensor(_G), 2, **{name: value})


def test_soft_violation_numpy_bools() -> None:
    z, y, g = torch.tensor(_OUT), torch.tensor(_Y).float(), torch.tensor(_G)
    for flag in (True, False):
        ref = soft_violation(_TASK, z, y, None, g, 2, symmetric=flag, include_fpr=not flag)
        res = soft_violation(_TASK, z, y, None, g, 2, symmetric=np.bool_(flag),
                             include_fpr=np.bool_(not flag))
        assert float(res.value) == float(ref.value)


@pytest.mark.parametrize("name", ["symmetric", "include_fpr"])
def test_fairness_constraint_options(name: str) -> None:
    tasks = [Task("a", "detection"), Task("b", "regression")]
    z = [torch.tensor([2.0, -1.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 3.0])]
    y = [torch.tensor([1.0, 1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.0, 0.0])]
    m = [torch.ones(4, dtype=torch.bool)] * 2
    g = torch.tensor([0, 0, 1, 1])
    for flag in (True, False):
        ref = FairnessConstraint(tasks, 2, mu=0.5, **{name: flag})
        c = FairnessConstraint(tasks, 2, mu=0.5, **{name: np.bool_(flag)})
        assert type(getattr(c, name)) is bool and getattr(c, name) is flag
        torch.testing.assert_close(c(z, y, m, g).psi, ref(z, y, m, g).psi, rtol=0, atol=0)
    for value in (1, "True", None, np.array(True)):
        with pytest.raises(ValueError, match=f"{name} must be a bool"):
            FairnessConstraint(tasks, 2, **{name: value})


@pytest.mark.parametrize("value", [1, 0, 1.0, "True", None, np.array(True)], ids=repr)
def test_solve_simplex_qp_check_input_refuses_non_bools(value: Any) -> None:
    with pytest.raises(ValueError, match="check_input must be a bool"):
        solve_simplex_qp(np.eye(2), check_input=value)
    with pytest.raises(ValueError, match="check_input must be a bool"):
        solve_simplex_qp(np.eye(3), method="frank_wolfe", check_input=value)


def test_solve_simplex_qp_check_input_numpy_bool_still_checks() -> None:
    bad = np.array([[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="K must be symmetric"):
        solve_simplex_qp(bad, check_input=np.True_)
    assert solve_simplex_qp(bad, check_input=np.False_).success
