"""Tests of head_gram and head_aware_qp (SPEC §6): the Gram identities, the QP objective
identity, symmetry and PSD-ness, array types (NumPy, torch on its device, a 0-d tensor eta),
and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fairmt_opt import head_aware_qp, head_gram, reference
from fairmt_opt.testing.strategies import simplex_points
from fairmt_opt.testing.sync import HostSync, forbid_host_sync

torch = pytest.importorskip("torch")

elems = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def head_data(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    T = draw(st.integers(1, 12))
    d = draw(st.integers(1, 9))
    A = draw(hnp.arrays(np.float64, (T, d), elements=elems))
    u = draw(hnp.arrays(np.float64, (T,), elements=elems))
    if T > 1 and draw(st.booleans()):  # duplicated rows: a singular Gram
        A[-1] = A[0]
    return A, u


def _in_range(R: np.ndarray) -> bool | None:
    """Whether K = R R^T is representable in float64 (judged in extended precision on the
    largest diagonal entry); None on the edge of the range."""
    Rl = R.astype(np.longdouble)
    top = np.max(np.sum(Rl * Rl, axis=1), initial=0.0)  # stays in extended precision
    if top == 0.0:
        return True
    tiny, big = np.longdouble(np.finfo(np.float64).tiny), np.longdouble(np.finfo(np.float64).max)
    if 2 * tiny < top < 0.5 * big:
        return True
    return False if top < 0.5 * tiny or top > 2 * big else None


@given(head_data())
def test_head_gram_entries_and_structure(data: tuple[np.ndarray, np.ndarray]) -> None:
    A, u = data
    ok = _in_range(u.astype(np.longdouble)[:, None] * A)
    assume(ok is not None)
    if not ok:  # out of the float range: a clear error, never inf or a silent zero K
        with pytest.raises(ValueError, match="flows the range of float64"):
            head_gram(A, u)
        return
    K = head_gram(A, u)
    T = A.shape[0]
    expected = np.array([[u[s] * u[t] * (A[s] @ A[t]) for t in range(T)] for s in range(T)])
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(K, expected, rtol=0, atol=1e-12 * scale)
    np.testing.assert_array_equal(K, K.T)  # exactly symmetric
    assert np.linalg.eigvalsh(K).min() >= -1e-10 * scale * T
    # the same Gram from head_aware_qp with the rows r_t = u_t a_t
    np.testing.assert_allclose(head_aware_qp(u[:, None] * A, np.zeros(A.shape[1]), 0.0).K, K,
                               rtol=0, atol=1e-12 * scale)


@given(head_data(), st.floats(0.0, 10.0), st.data())
def test_qp_objective_identity(data: tuple[np.ndarray, np.ndarray], eta: float,
                               draw: st.DataObject) -> None:
    """1/2 a^T K a + b^T a = 1/2 |R^T a + eta r|^2 - eta^2/2 |r|^2 for every a."""
    R, _ = data
    assume(_in_range(R))
    r_phi = draw.draw(hnp.arrays(np.float64, (R.shape[1],), elements=elems))
    qp = head_aware_qp(R, r_phi, eta)
    np.testing.assert_allclose(qp.b, eta * (R @ r_phi), rtol=1e-12, atol=1e-9)
    a = draw.draw(simplex_points(R.shape[0]))
    lhs = 0.5 * a @ qp.K @ a + qp.b @ a
    rhs = 0.5 * np.sum((R.T @ a + eta * r_phi) ** 2) - 0.5 * eta**2 * (r_phi @ r_phi)
    scale = max(1.0, float(np.sum((np.abs(R).T @ a + eta * np.abs(r_phi)) ** 2)))
    assert abs(lhs - rhs) <= 1e-10 * scale


def test_qp_minimiser_is_closest_combination_to_minus_eta_rphi() -> None:
    """With R the identity rows, the QP projects -eta r_phi onto the simplex."""
    R = np.eye(3)
    r_phi = np.array([-1.0, -0.2, 0.5])
    qp = head_aware_qp(R, r_phi, 0.5)
    sol = reference.solve_simplex_qp(qp.K, qp.b)
    target = reference.project_simplex(-0.5 * r_phi).x
    np.testing.assert_allclose(sol.x, target, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_stays_on_device(device: str, dtype: str) -> None:
    rng = np.random.default_rng(0)
    A, u, r = rng.normal(size=(4, 6)), rng.normal(size=4), rng.normal(size=6)
    tdt = getattr(torch, dtype)
    At, ut, rt = (torch.as_tensor(x, dtype=tdt, device=device) for x in (A, u, r))
    K = head_gram(At, ut)
    assert isinstance(K, torch.Tensor) and K.device == At.device and K.dtype == tdt
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(K.cpu().numpy(), head_gram(A, u), rtol=tol, atol=tol)
    eta = torch.tensor(0.7, dtype=tdt, device=device)  # e.g. DualAscent.eta
    qp = head_aware_qp(At, rt, eta)
    ref = head_aware_qp(A, r, 0.7)
    assert qp.b.device == At.device and qp.b.dtype == tdt and qp.b.shape == (4,)
    np.testing.assert_allclose(qp.b.cpu().numpy(), ref.b, rtol=tol, atol=tol)
    np.testing.assert_allclose(qp.K.cpu().numpy(), ref.K, rtol=tol, atol=tol)


def test_integer_inputs_and_fields() -> None:
    K = head_gram(np.array([[1, 0], [1, 1]]), np.array([2, -1]))
    assert K.dtype == np.float64
    np.testing.assert_array_equal(K, [[4.0, -2.0], [-2.0, 2.0]])
    qp = head_aware_qp(np.eye(2), np.array([1.0, 2.0]), 2)
    _, b2 = qp
    assert qp._fields == ("K", "b") and b2.tolist() == [2.0, 4.0]
    assert "HeadQP(K=" in repr(qp)


@pytest.mark.parametrize(
    ("func", "args", "match"),
    [
        (head_gram, (np.ones(3), np.ones(3)), "A must be 2-dimensional"),
        (head_gram, (np.ones((3, 2)), np.ones(2)), r"u must have length A\.shape\[0\] = 3, got 2"),
        (head_gram, (np.ones((3, 2)), np.ones((3, 1))), "u must be 1-dimensional"),
        (head_gram, (np.full((2, 2), np.nan), np.ones(2)), "A contains NaN"),
        (head_gram, (np.ones((2, 2)), np.array([1.0, np.inf])), "u contains inf"),
        (head_aware_qp, (np.ones((3, 2)), np.ones(3), 1.0), r"r_phi must have length R\.shape"),
        (head_aware_qp, (np.ones((3, 2)), np.ones(2), -1.0), "eta must be >= 0"),
        (head_aware_qp, (np.ones((3, 2)), np.ones(2), float("nan")), "eta must be finite"),
        (head_aware_qp, (np.ones((3, 2)), np.ones(2), np.ones(2)), "eta must be a scalar"),
        (head_aware_qp, (np.ones((3, 2)), np.ones(2), np.array(-0.5)), "eta must be >= 0"),
        (head_aware_qp, (np.ones((0, 2)), np.ones(2), 1.0), "R must not be empty"),
    ],
)
def test_errors(func: Any, args: tuple[Any, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        func(*args)


def test_mixed_types_raise() -> None:
    with pytest.raises(ValueError, match="mix torch tensors and other arrays"):
        head_gram(torch.ones(2, 2), np.ones(2))
    with pytest.raises(ValueError, match="mix torch tensors and other arrays"):
        head_aware_qp(np.ones((2, 2)), np.ones(2), torch.tensor(1.0))


def test_array_api_strict_namespace() -> None:
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(5)
    A, u, r = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=4)
    K = head_gram(xps.asarray(A), xps.asarray(u))
    np.testing.assert_allclose(np.asarray(K), head_gram(A, u), atol=1e-14)
    qp = head_aware_qp(xps.asarray(A), xps.asarray(r), 0.3)
    np.testing.assert_allclose(np.asarray(qp.b), head_aware_qp(A, r, 0.3).b, atol=1e-14)


def test_torch_no_host_sync(device: str) -> None:
    A = torch.randn(5, 7, device=device)
    u = torch.randn(5, device=device)
    r = torch.randn(7, device=device)
    eta = torch.tensor(0.3, device=device)
    with forbid_host_sync():
        K = head_gram(A, u, check_finite=False)
        qp = head_aware_qp(u[:, None] * A, r, eta, check_finite=False)
    np.testing.assert_allclose(K.cpu().numpy(), qp.K.cpu().numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(HostSync), forbid_host_sync():
        head_gram(A, u)


@pytest.mark.parametrize("scale", [1e200, 1e-200])
def test_out_of_range_scales_raise_clearly(scale: float) -> None:
    A = np.array([[1.0, 0.0], [1.0, 1.0]])
    u = np.array([2.0, -1.0])
    kind = "overflows" if scale > 1 else "underflows"
    with pytest.raises(ValueError, match=f"K computed from A and u {kind} the range of float64"):
        head_gram(A * scale, u * scale)
    with pytest.raises(ValueError, match=f"K computed from R {kind} the range of float64"):
        head_aware_qp(A * scale, np.ones(2), 0.5)
    t = torch.tensor(A, dtype=torch.float32) * 1e19
    with pytest.raises(ValueError, match=r"overflows the range of torch\.float32"):
        head_gram(t, torch.tensor(u, dtype=torch.float32))


@pytest.mark.parametrize("scale", [1e150, 1e-150, 2.0**500, 2.0**-500])
def test_extreme_but_representable_scales_are_exact(scale: float) -> None:
    """K = R R^T in range is computed without spurious overflow or underflow; powers of two
    give the plain product's bits scaled exactly."""
    A = np.array([[1.0, 0.0, 0.5], [1.0, 1.0, -0.25]])
    u = np.array([2.0, -1.0])
    K = head_gram(A * scale, u)
    np.testing.assert_allclose(K / scale**2, head_gram(A, u), rtol=1e-15)
    qp = head_aware_qp(A * scale, np.array([1.0, -1.0, 2.0]), np.float32(0.5))
    np.testing.assert_allclose(qp.b / scale, head_aware_qp(A, np.array([1.0, -1.0, 2.0]),
                                                           0.5).b, rtol=1e-15)
    with pytest.raises(ValueError, match="b = eta R r_phi overflows"):
        head_aware_qp(A * 1e100, np.array([1e300, 1.0, 1.0]), 1e10)
