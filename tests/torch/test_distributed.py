"""DDP: two gloo processes on CPU compute the same ψ, Φ, K, b, α, η and (after DDP's gradient
averaging) the same parameter gradients as one process on the concatenated batch."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch_models import TASKS3, MTModel, make_batch

from fairmt_opt.torch import make_method

N, D_IN, D = 40, 4, 6
CONFIGS: list[dict[str, Any]] = [
    {"proxy": "head"},
    {"proxy": "head", "mlp_heads": True, "normalization": "l2"},
    {"proxy": "rep"},
    {"proxy": "full"},
    {"proxy": "none", "aggregation": "mean"},
]


def _run(model: MTModel, batch: dict[str, Any], cfg: dict[str, Any],
         module: torch.nn.Module) -> dict[str, Any]:
    cfg = {k: v for k, v in cfg.items() if k != "mlp_heads"}
    extra = {"shared_parameters": model.encoder.parameters()} if cfg["proxy"] == "full" else {}
    fm = make_method("fairmt", TASKS3, 2, eta=0.3, rho=0.5, eps=0.0, **cfg, **extra)
    h, outs = module(batch["x"])
    out = fm.compute(h, outs, batch["targets"], batch["masks"], batch["groups"],
                     heads=list(model.heads))
    module.zero_grad()
    out.loss.backward()
    fm.dual_step(out.record)
    r = out.record
    return {
        "loss": out.loss.detach(), "losses": r.losses, "psi": r.psi, "phi": r.phi,
        "alpha": r.alpha, "K": r.K, "b": r.b, "eta": torch.as_tensor(fm.eta).detach(),
        "grads": [p.grad.detach().clone() for p in model.parameters()],
    }


def _worker(rank: int, world: int, port: int, path: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        full = make_batch(TASKS3, N, D_IN, dtype=torch.float64, seed=5)
        lo, hi = rank * N // world, (rank + 1) * N // world
        part = {"x": full["x"][lo:hi], "targets": [y[lo:hi] for y in full["targets"]],
                "masks": full["masks"][lo:hi], "groups": full["groups"][lo:hi]}
        results = []
        for cfg in CONFIGS:
            model = MTModel(TASKS3, D_IN, D, mlp_heads=cfg.get("mlp_heads", False),
                            dtype=torch.float64)
            ddp = torch.nn.parallel.DistributedDataParallel(model)
            results.append(_run(model, part, cfg, ddp))
        torch.save(results, f"{path}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_gloo_ranks_equal_single_process(tmp_path: Any, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(f"{tmp_path}/rank{r}.pt", weights_only=False) for r in range(2)]
    full = make_batch(TASKS3, N, D_IN, dtype=torch.float64, seed=5)
    for i, cfg in enumerate(CONFIGS):
        model = MTModel(TASKS3, D_IN, D, mlp_heads=cfg.get("mlp_heads", False),
                        dtype=torch.float64)
        single = _run(model, full, cfg, model)
        for r in range(2):
            got = ranks[r][i]
            for key in ("loss", "losses", "psi", "phi", "alpha", "K", "b", "eta"):
                if single[key] is None:
                    assert got[key] is None
                    continue
                torch.testing.assert_close(got[key], single[key], rtol=1e-9, atol=1e-12,
                                           msg=lambda m, k=key, c=cfg: f"{c} {k}: {m}")
            for g1, g2 in zip(got["grads"], single["grads"]):
                torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-12,
                                           msg=lambda m, c=cfg: f"{c} grads: {m}")
