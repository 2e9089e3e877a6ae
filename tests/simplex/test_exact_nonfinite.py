"""The exact (water-filling) aggregation never reports success for a NaN or inf in a present
entry of psi, also with check_finite=False (issue #13: a NaN gave success=True)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fairmt_opt import aggregate_violations

BAD = [math.nan, math.inf, -math.inf]


def _name(v: float) -> str:
    return "NaN" if math.isnan(v) else "inf"


@pytest.mark.parametrize("bad", BAD)
def test_unchecked_nonfinite_is_not_success(bad: float) -> None:
    psi = np.array([0.3, bad, 0.1])
    res = aggregate_violations(psi, 1.0, check_finite=False)
    assert res.success is False
    assert f"psi contains {_name(bad)}" in res.message and "not a solution" in res.message
    assert "success=False" in repr(res)


@pytest.mark.parametrize("bad", BAD)
def test_checked_nonfinite_raises_naming_psi(bad: float) -> None:
    with pytest.raises(ValueError, match=f"psi contains {_name(bad)}"):
        aggregate_violations(np.array([0.3, bad, 0.1]), 1.0)


@pytest.mark.parametrize("bad", BAD)
def test_one_bad_row_of_a_batch_is_not_success(bad: float) -> None:
    psi = np.array([[1.0, 2.0, 3.0], [0.3, bad, 0.1]])
    res = aggregate_violations(psi, 1.0, check_finite=False)
    assert res.success is False and _name(bad) in res.message
    # the finite row is still water-filled exactly
    np.testing.assert_array_equal(res.weights[0], aggregate_violations(psi[0], 1.0).weights)


@pytest.mark.parametrize("bad", BAD)
def test_absent_nonfinite_entry_is_never_read(bad: float) -> None:
    psi = np.array([0.3, bad, 0.1])
    present = np.array([True, False, True])
    res = aggregate_violations(psi, 1.0, present=present, check_finite=False)
    assert res.success is True and res.message == "exact water-filling solution"
    np.testing.assert_allclose(res.weights, [0.6, 0.0, 0.4], atol=1e-15)
    # with present the bad entry counts again
    res_all = aggregate_violations(psi, 1.0, present=np.ones(3, dtype=bool), check_finite=False)
    assert res_all.success is False


def test_unchecked_finite_psi_is_success() -> None:
    psi = np.array([0.5, 0.2, 0.0])
    res = aggregate_violations(psi, 1.0, check_finite=False)
    checked = aggregate_violations(psi, 1.0)
    assert res.success is True and checked.success is True
    assert res.message == checked.message == "exact water-filling solution"
    np.testing.assert_array_equal(res.weights, checked.weights)


@pytest.mark.parametrize("bad", BAD)
def test_torch_tensor_unchecked_nonfinite_is_not_success(bad: float) -> None:
    psi = torch.tensor([0.3, bad, 0.1], dtype=torch.float64, requires_grad=True)
    res = aggregate_violations(psi, 1.0, check_finite=False)
    assert res.success is False and _name(bad) in res.message
    ok = aggregate_violations(torch.tensor([0.3, 0.2, 0.1], dtype=torch.float32), 1.0,
                              check_finite=False)
    assert ok.success is True


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("method", ["frank_wolfe", "away", "pairwise"])
@pytest.mark.parametrize("bad", BAD)
def test_same_rule_as_frank_wolfe(method: str, bad: float) -> None:
    """Both paths agree: a non-finite present psi is never a success."""
    psi = np.array([0.3, bad, 0.1])
    fw = aggregate_violations(psi, 1.0, method=method, check_finite=False)
    ex = aggregate_violations(psi, 1.0, check_finite=False)
    assert fw.success is False and ex.success is False
