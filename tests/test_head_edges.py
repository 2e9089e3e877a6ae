"""head_gram and head_aware_qp at extreme scales (issue #13): at 1e+-200 they returned inf or
an all-zero K silently; now every K either matches the exact product to round-off or the call
raises a ValueError that says which range was left. Checked against exact rational
arithmetic, and with NumPy scalar types for eta."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fairmt_opt import head_aware_qp, head_gram

FMAX = Fraction(float(np.finfo(np.float64).max))
TINY = Fraction(float(np.finfo(np.float64).smallest_normal))


def _exact_gram(R: np.ndarray) -> list[list[Fraction]]:
    Rf = [[Fraction(float(v)) for v in row] for row in R]
    return [[sum((a * b for a, b in zip(r, s)), Fraction(0)) for s in Rf] for r in Rf]


def _verdict(top: Fraction) -> str | None:
    """'ok', 'over' or 'under' for an exact largest |K_st| (None within 2x of a boundary,
    where rounding decides)."""
    if top == 0 or 2 * TINY < top < FMAX / 2:
        return "ok"
    if top > 2 * FMAX:
        return "over"
    if top < TINY / 2:
        return "under"
    return None


@st.composite
def scaled_heads(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A (T, d) and u (T,) with mantissas in [-2, 2] and independent decimal scales from
    1e-200 to 1e200 for A, u and single rows (zeros and ties included)."""
    T = draw(st.integers(1, 3))
    d = draw(st.integers(1, 3))
    mant = st.sampled_from([0.0, 1.0, -1.0, 0.5]) | st.floats(-2.0, 2.0)
    A = np.array(draw(st.lists(mant, min_size=T * d, max_size=T * d))).reshape(T, d)
    u = np.array(draw(st.lists(mant, min_size=T, max_size=T)))
    ea, eu = draw(st.integers(-200, 200)), draw(st.integers(-200, 200))
    row = draw(st.integers(0, T - 1))
    er = draw(st.sampled_from([0, 0, -150, 150]))
    A = A * 10.0**ea
    A[row] = A[row] / 10.0**ea * 10.0 ** max(-300, min(300, ea + er))  # finite entries
    return A, u * 10.0**eu


@given(scaled_heads())
@settings(max_examples=150, deadline=None)
def test_head_gram_exact_or_a_clear_error(data: tuple[np.ndarray, np.ndarray]) -> None:
    A, u = data
    Rf = [[Fraction(float(uu)) * Fraction(float(a)) for a in row] for uu, row in zip(u, A)]
    exact = [[sum((x * y for x, y in zip(r, s)), Fraction(0)) for s in Rf] for r in Rf]
    top = max(abs(v) for row in exact for v in row)
    verdict = _verdict(top)
    assume(verdict is not None)
    nonzero = any(v != 0 for row in Rf for v in row)
    if verdict == "over":
        with pytest.raises(ValueError, match="K computed from A and u overflows the range"):
            head_gram(A, u)
        return
    if verdict == "under" and nonzero:
        with pytest.raises(ValueError, match="K computed from A and u underflows the range"):
            head_gram(A, u)
        return
    K = head_gram(A, u)
    assert np.all(np.isfinite(K))
    np.testing.assert_array_equal(K, K.T)
    if top == 0:
        assert not K.any()
        return
    err = max(abs(Fraction(float(K[s, t])) - exact[s][t])
              for s in range(K.shape[0]) for t in range(K.shape[0]))
    assert err <= Fraction(1, 10**13) * top, (float(err / top), A, u)


@given(scaled_heads(), st.integers(-200, 200), st.sampled_from([0.0, 0.5, 3.0]))
@settings(max_examples=100, deadline=None)
def test_head_aware_qp_exact_or_a_clear_error(data: tuple[np.ndarray, np.ndarray],
                                              er: int, eta: float) -> None:
    R, r0 = data  # R: (T, d) rows; r_phi of mantissas 0.5, 1.5 or -0.5 and scale 10^er
    d = R.shape[1]
    r_phi = (np.resize(np.sign(r0), d) + 0.5) * 10.0**er
    exact = _exact_gram(R)
    top = max(abs(v) for row in exact for v in row)
    verdict = _verdict(top)
    assume(verdict is not None)
    bex = [Fraction(eta) * sum((Fraction(float(a)) * Fraction(float(r))
                                for a, r in zip(row, r_phi)), Fraction(0)) for row in R]
    btop = max(abs(v) for v in bex)
    assume(btop < FMAX / 2 or btop > 2 * FMAX)
    nonzero = bool(np.any(R != 0.0))
    if verdict == "over":
        with pytest.raises(ValueError, match="K computed from R overflows the range"):
            head_aware_qp(R, r_phi, eta)
        return
    if verdict == "under" and nonzero:
        with pytest.raises(ValueError, match="K computed from R underflows the range"):
            head_aware_qp(R, r_phi, eta)
        return
    if btop > 2 * FMAX:
        with pytest.raises(ValueError, match="b = eta R r_phi overflows"):
            head_aware_qp(R, r_phi, eta)
        return
    K, b = head_aware_qp(R, r_phi, eta)
    assert np.all(np.isfinite(K)) and np.all(np.isfinite(b))
    if top > 0:
        err = max(abs(Fraction(float(K[s, t])) - exact[s][t])
                  for s in range(K.shape[0]) for t in range(K.shape[0]))
        assert err <= Fraction(1, 10**13) * top
    for bt, be in zip(b, bex):  # b may underflow to subnormals or zero: absolute at 1e-300
        assert abs(Fraction(float(bt)) - be) <= Fraction(1, 10**13) * btop + Fraction(1e-300)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e160, 1e-170])
def test_issue_scales_raise_instead_of_inf_or_zero(scale: float) -> None:
    A = np.array([[1.0, 0.0, 2.0], [0.5, 1.0, -1.0]])
    u = np.array([1.0, -2.0])
    word = "overflows" if scale > 1 else "underflows"
    with pytest.raises(ValueError, match=f"K computed from A and u {word}.*rescale the inputs"):
        head_gram(A * scale, u)
    with pytest.raises(ValueError, match=f"K computed from R {word}"):
        head_aware_qp(A * scale, np.ones(3), 1.0)
    # the same data, balanced between the factors, is in range and exact
    K = head_gram(A * scale, u / scale)
    np.testing.assert_allclose(K, head_gram(A, u), rtol=1e-15)


@pytest.mark.parametrize(
    ("dtype", "big", "small"),
    [(torch.float16, 300.0, 1e-4), (torch.float32, 1e20, 1e-23), (torch.bfloat16, 1e20, 1e-23)],
)
def test_low_precision_ranges_name_the_dtype(dtype: torch.dtype, big: float,
                                             small: float) -> None:
    A = torch.tensor([[1.0, 0.0], [1.0, 1.0]], dtype=dtype)
    u = torch.tensor([2.0, -1.0], dtype=dtype)
    with pytest.raises(ValueError, match=rf"overflows the range of {dtype}"):
        head_gram(A * big, u)
    with pytest.raises(ValueError, match=rf"underflows the range of {dtype}"):
        head_gram(A * small, u)
    K = head_gram(A, u)
    assert K.dtype == dtype and torch.equal(K, K.T)


def test_unchecked_out_of_range_is_documented_not_silent_zero() -> None:
    """With check_finite=False nothing is read on the host: out-of-range data give non-finite
    entries (never a finite all-zero K passing as valid)."""
    K = head_gram(np.full((2, 2), 1e200), np.full(2, 1e200), check_finite=False)
    assert not np.all(np.isfinite(K))


@pytest.mark.parametrize("eta", [np.float16(0.5), np.float32(0.5), np.float64(0.5),
                                 np.array(0.5), np.int8(1) / 2, 0.5,
                                 torch.tensor(0.5, dtype=torch.float64)])
def test_eta_accepts_numpy_scalars(eta: Any) -> None:
    R = np.array([[1.0, 0.0], [0.0, 2.0]])
    r = np.array([1.0, 1.0])
    if isinstance(eta, torch.Tensor):
        qp = head_aware_qp(torch.tensor(R), torch.tensor(r), eta)
        np.testing.assert_array_equal(qp.b.numpy(), [0.5, 1.0])
    else:
        np.testing.assert_array_equal(head_aware_qp(R, r, eta).b, [0.5, 1.0])


@pytest.mark.parametrize(
    ("eta", "match"),
    [(True, "eta must be a real number"), (np.bool_(True), "eta must be a real number"),
     (np.array(True), "eta must be a real number"), ("1", "eta must be a real number"),
     (np.array(1 + 0j), "eta must be a real number"), (np.float32(-1.0), "eta must be >= 0"),
     (np.float64(np.inf), "eta must be finite"), (np.array([0.5]), "eta must be a scalar")],
)
def test_eta_errors_name_it(eta: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        head_aware_qp(np.eye(2), np.ones(2), eta)


def test_torch_eta_of_a_non_real_dtype_is_refused() -> None:
    for eta in (torch.tensor(True), torch.tensor(1 + 0j)):
        with pytest.raises(ValueError, match="eta must be a real number"):
            head_aware_qp(torch.eye(2), torch.ones(2), eta)
    qp = head_aware_qp(torch.eye(2), torch.ones(2), torch.tensor(2))  # an integer is a number
    assert qp.b.tolist() == [2.0, 2.0]
