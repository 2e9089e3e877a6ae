"""The TorchJD adapter (ExactMGDAWeighting, ExactMGDA): the min-norm properties in our own
words (simplex weights, minimal norm against cvxpy and the certificate, non-conflicting,
permutation equivariance, scaling), edge matrices, dtype and device, and the autojac path."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchjd")

import fairmt_opt as fo  # noqa: E402
from fairmt_opt.integrations.torchjd import ExactMGDA, ExactMGDAWeighting  # noqa: E402

DTYPES = [torch.float64, torch.float32]
TOL = {torch.float64: 1e-9, torch.float32: 1e-4}


def _jacobian(seed: int, m: int, n: int, rank: int, dtype: torch.dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    left = torch.randn(m, rank, generator=g, dtype=torch.float64)
    right = torch.randn(rank, n, generator=g, dtype=torch.float64)
    return (left @ right).to(dtype)


CASES = [(0, 2, 7, 2), (1, 5, 12, 5), (2, 9, 4, 4), (3, 10, 30, 1), (4, 20, 100, 19),
         (5, 40, 60, 40)]


def _reference_value(J: torch.Tensor) -> float:
    """min over the simplex of ||J^T a||^2 / 2, by cvxpy on float64 data."""
    pytest.importorskip("cvxpy")
    from fairmt_opt import reference

    G = (J.double() @ J.double().T).numpy()
    return float(reference.solve_simplex_qp(G).value)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=[f"{c[1]}x{c[2]}r{c[3]}" for c in CASES])
def test_weights_on_simplex_and_direction_minimal(case: tuple[int, int, int, int],
                                                  dtype: torch.dtype) -> None:
    J = _jacobian(*case, dtype=dtype)
    G = J @ J.T
    w = ExactMGDAWeighting()(G)
    assert w.dtype == dtype and w.shape == (J.shape[0],)
    assert bool((w >= 0).all()) and abs(float(w.sum()) - 1.0) < TOL[dtype]
    d = ExactMGDA()(J)
    assert d.dtype == dtype and d.shape == (J.shape[1],)
    torch.testing.assert_close(d, w @ J, rtol=TOL[dtype], atol=TOL[dtype])
    # minimal norm: the certificate of the float64 problem, and cvxpy's optimal value
    G64 = (J.double() @ J.double().T).numpy()
    cert = fo.certify_simplex_qp(G64, None, w.double().numpy(),
                                 rtol=1e-7 if dtype == torch.float64 else 1e-3)
    assert cert.ok, cert
    value = 0.5 * float(d.double() @ d.double())
    scale = float(np.abs(G64).max())
    assert value <= _reference_value(J) + (1e-7 if dtype == torch.float64 else 1e-3) * scale


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=[f"{c[1]}x{c[2]}r{c[3]}" for c in CASES])
def test_non_conflicting(case: tuple[int, int, int, int], dtype: torch.dtype) -> None:
    """J d >= ||d||^2 for every row (the optimality condition of the min-norm point)."""
    J = _jacobian(*case, dtype=dtype)
    d = ExactMGDA()(J).double()
    Jd = J.double() @ d
    slack = TOL[dtype] * float((J.double() ** 2).sum(1).max())
    assert bool((Jd >= float(d @ d) - slack).all())


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_permutation_equivariant(dtype: torch.dtype) -> None:
    J = _jacobian(7, 8, 20, 6, dtype)
    d = ExactMGDA()(J)
    w = ExactMGDAWeighting()(J @ J.T)
    for seed in range(4):
        perm = torch.randperm(J.shape[0], generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(ExactMGDA()(J[perm]), d, rtol=TOL[dtype], atol=TOL[dtype])
        Jp = J[perm]
        torch.testing.assert_close(ExactMGDAWeighting()(Jp @ Jp.T), w[perm],
                                   rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("c", [1e-6, 0.3, 7.0, 1e5])
def test_linear_under_scaling(c: float, dtype: torch.dtype) -> None:
    """A(cJ) = c A(J) for c > 0: the weights do not depend on the scale."""
    J = _jacobian(11, 6, 15, 6, dtype)
    d = ExactMGDA()(J)
    torch.testing.assert_close(ExactMGDA()(c * J), c * d, rtol=10 * TOL[dtype],
                               atol=10 * TOL[dtype] * c)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_zero_duplicated_and_rank_one_rows(dtype: torch.dtype) -> None:
    # all rows zero: the aggregation is zero, the weights are on the simplex
    w = ExactMGDAWeighting()(torch.zeros(4, 4, dtype=dtype))
    assert bool((w >= 0).all()) and abs(float(w.sum()) - 1) < TOL[dtype]
    assert bool((ExactMGDA()(torch.zeros(4, 3, dtype=dtype)) == 0).all())
    # one zero row: the min-norm point is zero
    J = _jacobian(3, 4, 6, 4, dtype)
    J[2] = 0
    d = ExactMGDA()(J)
    assert float(d.abs().max()) <= TOL[dtype]
    # duplicated rows: the same direction as without the duplicate
    J = _jacobian(5, 3, 8, 3, dtype)
    Jdup = torch.cat([J, J[1:2], J[1:2]])
    torch.testing.assert_close(ExactMGDA()(Jdup), ExactMGDA()(J), rtol=TOL[dtype],
                               atol=TOL[dtype])
    # rank one with positive multiples u_t v: the min-norm point is min_t u_t v
    v = torch.tensor([1.0, -2.0, 0.5], dtype=dtype)
    u = torch.tensor([3.0, 0.5, 2.0, 1.0], dtype=dtype)
    torch.testing.assert_close(ExactMGDA()(u[:, None] * v), 0.5 * v, rtol=TOL[dtype],
                               atol=TOL[dtype])
    # opposite rows: zero is in the hull
    d = ExactMGDA()(torch.stack([v, -2 * v]))
    assert float(d.abs().max()) <= TOL[dtype]


def test_exact_where_torchjd_mgda_stops_early() -> None:
    """On an ill-conditioned Gramian TorchJD's budgeted Frank-Wolfe is far from the optimum;
    the adapter's value is certified and not above cvxpy's."""
    from torchjd.aggregation import MGDA

    g = torch.Generator().manual_seed(0)
    J = torch.randn(10, 10, generator=g, dtype=torch.float64) @ torch.diag(
        torch.logspace(0, -4, 10, dtype=torch.float64))
    ref = _reference_value(J)
    ours = 0.5 * float(ExactMGDA()(J) @ ExactMGDA()(J))
    theirs = 0.5 * float(MGDA()(J) @ MGDA()(J))
    assert ours <= ref * (1 + 1e-9)                # not above cvxpy's optimum
    G = (J @ J.T).numpy()
    assert fo.certify_simplex_qp(G, None, ExactMGDAWeighting()(J @ J.T).numpy()).ok
    assert theirs > ours * (1 + 1e-3)


def test_inputs_rejected_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="matrix"):
        ExactMGDA()(torch.ones(3))
    with pytest.raises(TypeError, match="gramian"):
        ExactMGDAWeighting()(np.eye(2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="K"):
        ExactMGDAWeighting()(torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]))


def test_repr() -> None:
    assert repr(ExactMGDA()) == "ExactMGDA(method='active_set', tol=None, max_iter=None)"
    assert str(ExactMGDA()) == "ExactMGDA"
    assert repr(ExactMGDAWeighting(tol=1e-8)) == (
        "ExactMGDAWeighting(method='active_set', tol=1e-08, max_iter=None)")


def test_no_gradient_through_the_weights() -> None:
    G = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    w = ExactMGDAWeighting()(G)
    assert not w.requires_grad


def test_device_kept(device: str) -> None:
    J = _jacobian(1, 5, 9, 5, torch.float64).to(device)
    d = ExactMGDA()(J)
    assert d.device == J.device and d.dtype == J.dtype
    torch.testing.assert_close(d.cpu(), ExactMGDA()(J.cpu()))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_mtl_backward_and_jac_to_grad_train_a_tiny_model(dtype: torch.dtype) -> None:
    from torchjd.autojac import backward, jac_to_grad, mtl_backward

    torch.manual_seed(0)
    shared = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU()).to(dtype)
    heads = torch.nn.ModuleList([torch.nn.Linear(8, 1) for _ in range(3)]).to(dtype)
    x = torch.randn(32, 4, dtype=dtype)
    ys = [x[:, :1] * 2, -x[:, 1:2], x[:, 2:3] + x[:, 3:4]]
    opt = torch.optim.SGD([*shared.parameters(), *heads.parameters()], lr=0.05)

    def losses() -> list[torch.Tensor]:
        h = shared(x)
        return [torch.nn.functional.mse_loss(head(h), y) for head, y in zip(heads, ys)], h

    first = [float(v) for v in losses()[0]]
    before = [p.detach().clone() for p in shared.parameters()]
    for _ in range(15):
        opt.zero_grad()
        ls, h = losses()
        mtl_backward(ls, features=h)
        weights = jac_to_grad(list(shared.parameters()), ExactMGDA())
        assert weights is not None and weights.dtype == dtype
        assert bool((weights >= 0).all()) and abs(float(weights.sum()) - 1) < TOL[dtype]
        opt.step()
    assert any(not torch.equal(p, q) for p, q in zip(shared.parameters(), before))
    last = [float(v) for v in losses()[0]]
    assert sum(last) < sum(first)
    # backward on all parameters: the aggregated gradient is the min-norm direction
    opt.zero_grad()
    params = [*shared.parameters(), *heads.parameters()]
    backward(losses()[0])
    jacs = torch.cat([p.jac.reshape(3, -1) for p in params], dim=1)
    jac_to_grad(params, ExactMGDA())
    grad = torch.cat([p.grad.reshape(-1) for p in params])
    torch.testing.assert_close(grad, ExactMGDA()(jacs), rtol=TOL[dtype], atol=TOL[dtype])


def test_autogram_engine_with_the_weighting() -> None:
    from torchjd.autogram import Engine

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 1))
    model = model.to(torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64)
    y = torch.randn(6, 1, dtype=torch.float64)
    engine = Engine(model, batch_dim=0)
    losses = ((model(x) - y) ** 2).squeeze(1)      # one loss per sample
    gramian = engine.compute_gramian(losses)
    w = ExactMGDAWeighting()(gramian)
    losses.backward(w)
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert bool(torch.isfinite(grad).all()) and abs(float(w.sum()) - 1) < 1e-9
