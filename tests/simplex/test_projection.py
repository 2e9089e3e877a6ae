"""Tests of project_simplex: against cvxpy, against its optimality conditions, batching, axis,
array types (NumPy, torch), dtypes, read-only and non-contiguous inputs, and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fairmt_opt import project_simplex, reference
from fairmt_opt.testing.strategies import finite_arrays, psi_vectors
from fairmt_opt.testing.sync import HostSync, forbid_host_sync

torch = pytest.importorskip("torch")


def assert_is_projection(v: np.ndarray, x: np.ndarray, *, tol: float) -> None:
    """Optimality conditions of the projection along the last axis: x >= 0, sum x = 1, and a
    threshold theta with v - x = theta on the support and v <= theta off it."""
    v = np.asarray(v, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    assert np.all(x >= 0)
    np.testing.assert_allclose(x.sum(axis=-1), 1.0, rtol=0, atol=tol)
    for vv, xx in zip(v.reshape(-1, v.shape[-1]), x.reshape(-1, x.shape[-1])):
        scale = max(1.0, float(np.max(np.abs(vv))))
        supp = xx > 0
        theta = vv[supp] - xx[supp]
        assert np.ptp(theta) <= tol * scale, (vv, xx)
        if (~supp).any():
            assert np.max(vv[~supp]) <= np.min(theta) + tol * scale, (vv, xx)


_COMPILED: dict[int, reference.ParametricAggregation] = {}


def cvxpy_projection(v: np.ndarray) -> tuple[np.ndarray, str]:
    """Projection by cvxpy, through the compiled AHFDA problem with mu = 1 (whose maximiser
    is the projection of psi), on the shifted v - max v (the projection is shift-invariant).
    Returns the point and cvxpy's status."""
    import cvxpy as cp

    T = v.shape[0]
    if T not in _COMPILED:
        _COMPILED[T] = reference.ParametricAggregation(T, 1.0)
    try:
        sol = _COMPILED[T].solve(v - v.max())
    except cp.error.SolverError:  # Clarabel fails now and then: a fresh problem, then DAQP
        try:
            sol = reference.project_simplex(v - v.max())
        except cp.error.SolverError:
            sol = reference.project_simplex(v - v.max(), solver="DAQP")
    return sol.x, sol.status


def test_cvxpy_helper_is_the_projection_problem() -> None:
    v = np.array([0.9, 0.8, 0.1, -2.0])
    np.testing.assert_allclose(cvxpy_projection(v)[0], reference.project_simplex(v).x,
                               atol=1e-7)


@given(psi_vectors(max_size=40, min_exp=-3, max_exp=3))
def test_matches_cvxpy(v: np.ndarray) -> None:
    ref, status = cvxpy_projection(v)
    assert status.startswith("optimal"), status
    x = project_simplex(v)
    # the interior-point reference is accurate to ~1e-6 on degenerate instances (an entry
    # exactly at the threshold), and reports "optimal_inaccurate" where it is worse ...
    np.testing.assert_allclose(x, ref, rtol=0, atol=1e-5 if status == "optimal" else 1e-3)
    # ... and never better than the exact projection in objective
    scale = max(1.0, float(np.abs(v).max())) ** 2
    assert np.sum((x - v) ** 2) <= np.sum((ref - v) ** 2) + 1e-9 * scale


@given(psi_vectors(max_size=200))
def test_optimality_conditions_adversarial(v: np.ndarray) -> None:
    x = project_simplex(v)
    assert x.dtype == np.float64 and x.shape == v.shape
    assert_is_projection(v, x, tol=1e-12 * v.size)


@given(finite_arrays(), st.data())
def test_batched_any_axis_equals_loop(a: np.ndarray, data: st.DataObject) -> None:
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    x = project_simplex(a, axis=axis)
    moved = np.moveaxis(a, axis, -1)
    loop = np.stack([project_simplex(r) for r in moved.reshape(-1, moved.shape[-1])])
    np.testing.assert_array_equal(np.moveaxis(x, axis, -1).reshape(loop.shape), loop)


@given(psi_vectors(max_size=30, min_exp=-2, max_exp=2), st.floats(-1e3, 1e3))
def test_shift_invariance_and_idempotence(v: np.ndarray, shift: float) -> None:
    x = project_simplex(v)
    np.testing.assert_allclose(project_simplex(v + shift), x, atol=1e-9)
    np.testing.assert_allclose(project_simplex(x), x, atol=1e-15)


def test_small_sizes_exact() -> None:
    """Sizes 1 and 2 run the general formula; their solutions come out exactly."""
    np.testing.assert_array_equal(project_simplex(np.array([-7.0])), [1.0])
    np.testing.assert_array_equal(project_simplex(np.array([[3.0], [-1e9]])), [[1.0], [1.0]])
    v = np.array([[0.2, 0.4], [5.0, 0.0], [0.0, 5.0], [1.0, 1.0]])
    np.testing.assert_allclose(project_simplex(v), [[0.4, 0.6], [1, 0], [0, 1], [0.5, 0.5]])
    np.testing.assert_array_equal(project_simplex(v[1:]), [[1, 0], [0, 1], [0.5, 0.5]])
    for row in v:  # a third entry far below changes nothing
        padded = np.append(row, -1e9)  # a third entry far below: zero weight
        np.testing.assert_allclose(project_simplex(padded)[:2], project_simplex(row), atol=1e-15)


def test_huge_entries_no_cancellation() -> None:
    v = np.array([1e20, 1e20 - 2.0**66, 0.0])  # differences representable at this scale
    x = project_simplex(v)
    np.testing.assert_array_equal(x, [1.0, 0.0, 0.0])
    v = 1e8 + np.array([0.25, 0.0, -0.25])
    np.testing.assert_allclose(project_simplex(v), [7 / 12, 4 / 12, 1 / 12], atol=1e-8)


def test_dtypes_and_input_kinds() -> None:
    v32 = np.array([0.5, 0.25, 0.0], dtype=np.float32)
    x32 = project_simplex(v32)
    assert x32.dtype == np.float32
    np.testing.assert_allclose(x32, project_simplex(v32.astype(np.float64)), atol=1e-6)
    xi = project_simplex(np.array([3, 1, 0]))
    assert xi.dtype == np.float64
    np.testing.assert_array_equal(xi, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(project_simplex([0.5, 0.25, 0.0]), project_simplex(v32), atol=1e-6)


def test_read_only_and_non_contiguous() -> None:
    base = np.arange(24.0).reshape(4, 6) / 10
    base.flags.writeable = False
    view = base[:, ::2]
    assert not view.flags.c_contiguous
    x = project_simplex(view)
    np.testing.assert_array_equal(x, project_simplex(np.ascontiguousarray(view)))
    np.testing.assert_array_equal(base, np.arange(24.0).reshape(4, 6) / 10)  # untouched
    xt = project_simplex(base.T, axis=0)
    np.testing.assert_array_equal(xt.T, project_simplex(base))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_matches_numpy(device: str, dtype: str) -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(5, 7, 4)) * 3
    tdtype = getattr(torch, dtype)
    vt = torch.as_tensor(v, dtype=tdtype, device=device)
    for axis in (-1, 0, 1):
        xt = project_simplex(vt, axis=axis)
        assert isinstance(xt, torch.Tensor)
        assert xt.device == vt.device and xt.dtype == tdtype and xt.shape == vt.shape
        xn = project_simplex(v.astype(dtype), axis=axis)
        np.testing.assert_allclose(xt.cpu().numpy(), xn, atol=1e-6 if dtype == "float32"
                                   else 1e-13)
    for T in (1, 2):
        xt = project_simplex(vt[..., :T])
        np.testing.assert_allclose(xt.cpu().numpy(), project_simplex(v[..., :T]), atol=1e-6)
    xi = project_simplex(torch.tensor([2, 0, 1], device=device))
    assert xi.dtype == torch.float64


def test_torch_noncontiguous_and_no_check(device: str) -> None:
    vt = torch.arange(24.0, device=device).reshape(4, 6).T / 10
    assert not vt.is_contiguous()
    np.testing.assert_allclose(
        project_simplex(vt, check_finite=False).cpu().numpy(), project_simplex(vt.cpu().numpy())
    )


@pytest.mark.parametrize(
    ("v", "kwargs", "match"),
    [
        (np.array([1.0, np.nan]), {}, "v contains NaN"),
        (np.array([1.0, np.inf]), {}, "v contains inf"),
        (np.array(1.0), {}, "v must have at least 1 dimension"),
        (np.zeros((3, 0)), {}, "v must not be empty"),
        (np.ones((2, 3)), {"axis": 2}, "axis 2 is out of bounds"),
        (np.ones((2, 3)), {"axis": 1.5}, "axis must be an integer"),
        (np.array(["a", "b"]), {}, "v must have a real numeric dtype"),
        (None, {}, "v must be an array"),
    ],
)
def test_errors(v: object, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        project_simplex(v, **kwargs)  # type: ignore[arg-type]


def test_torch_nan_raises() -> None:
    with pytest.raises(ValueError, match="v contains NaN"):
        project_simplex(torch.tensor([1.0, float("nan"), 0.0]))


def test_array_api_strict_namespace() -> None:
    """The generic kernel uses only array-API standard functions (checked with the strict
    reference namespace; needs the ``array-api-strict`` package)."""
    xps = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(2)
    v = rng.normal(size=(3, 5))
    for axis in (0, 1):
        for T in (1, 2, 5):
            vv = v[:, :T] if axis == 1 else v[:T]
            x = project_simplex(xps.asarray(vv), axis=axis)
            assert type(x) is type(xps.asarray(vv)) and x.dtype == xps.float64
            np.testing.assert_allclose(np.asarray(x), project_simplex(vv, axis=axis),
                                       atol=1e-15)


def test_no_host_sync(device: str) -> None:
    v = torch.randn(8, 5, 7, device=device, dtype=torch.float64)
    expected = project_simplex(v.cpu().numpy(), axis=1)
    with forbid_host_sync():
        outs = [project_simplex(v[..., :T], axis=1, check_finite=False) for T in (1, 2, 7)]
        x = project_simplex(v, axis=1, check_finite=False)
    assert [o.shape for o in outs] == [(8, 5, 1), (8, 5, 2), (8, 5, 7)]
    np.testing.assert_allclose(x.cpu().numpy(), expected, atol=1e-14)
    with pytest.raises(HostSync), forbid_host_sync():  # the default NaN check synchronises
        project_simplex(v)
