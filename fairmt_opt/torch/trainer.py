r"""A small training loop for the studies: minibatches, evaluation on a held-out split, metric
history, checkpoint and resume (bit for bit on CPU)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..fairness import evaluate_task
from ._fairmt import FairMT, FairMTRecord, _masked_waterfill
from ._losses import masked_task_loss

__all__ = ["Batch", "Trainer", "as_batch"]


@dataclass(repr=False)
class Batch:
    """Tensors of a split or a minibatch: inputs ``X`` (N, ...), one target tensor per task,
    the ``(N, T)`` bool label ``mask`` and the ``(N,)`` group ids."""

    X: torch.Tensor
    targets: tuple[torch.Tensor, ...]
    mask: torch.Tensor
    groups: torch.Tensor

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def take(self, index: torch.Tensor) -> Batch:
        """The rows ``index``."""
        return Batch(self.X[index], tuple(y[index] for y in self.targets), self.mask[index],
                     self.groups[index])

    def __repr__(self) -> str:
        return f"Batch(n={len(self)}, T={len(self.targets)}, device={self.X.device})"


def _tensor(a: Any, device: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    return t.to(device=device, dtype=dtype) if dtype is not None else t.to(device)


def as_batch(data: Any, *, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> Batch:
    """Tensors on ``device`` from any object with attributes ``X``, ``targets``, ``mask`` and
    ``groups`` (NumPy arrays or tensors), e.g. a dataset split. Float targets (regression) and
    ``X`` take ``dtype``; integer targets stay integer.

    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> s = SimpleNamespace(X=np.zeros((4, 2)), targets=(np.array([0, 1, 1, 0]),),
    ...                     mask=np.ones((4, 1), bool), groups=np.array([0, 1, 0, 1]))
    >>> as_batch(s)
    Batch(n=4, T=1, device=cpu)
    """
    X = _tensor(data.X, device, dtype)
    ys = []
    for y in data.targets:
        t = _tensor(y, device)
        ys.append(t.to(dtype) if t.dtype.is_floating_point else t)
    mask = _tensor(data.mask, device).to(torch.bool)
    groups = _tensor(data.groups, device).to(torch.long)
    return Batch(X, tuple(ys), mask, groups)


class Trainer:
    r"""Train a shared encoder and task heads with any method of :func:`make_method`.

    Each step draws a minibatch (a seeded permutation per epoch), computes
    ``h = encoder(X)`` and the head outputs, calls ``method.compute`` and ``backward()`` on the
    Lagrangian, takes an optimizer step and then ``method.dual_step``. Every ``log_every``
    steps the record is appended to :attr:`history` (a list of dicts; this reads the values
    back to the host). :meth:`evaluate` reports :func:`fairmt_opt.fairness.evaluate_task` for
    every task, the task losses and the soft :math:`\psi` and :math:`\Phi` of a whole split.
    :meth:`state_dict` holds the model, the optimizer, the method's dual state, the data order
    and every random-number generator, so that ``k`` steps, a save, a load and ``k`` more
    steps give the same parameters as ``2k`` steps, bit for bit on CPU.

    The trainer runs in one process. For ``DistributedDataParallel``, wrap one module that
    holds both the encoder and the heads (so that DDP averages every gradient) and call
    :meth:`FairMT.compute` on each rank's shard: the method sums its statistics over the ranks
    (``distributed="auto"``).

    Parameters
    ----------
    encoder : nn.Module
        Maps a batch of inputs to representations ``(N, d)``.
    heads : sequence of nn.Module
        One per task of ``method``.
    method : FairMT
        From :func:`make_method` or :class:`FairMT`.
    optimizer : torch.optim.Optimizer
        Over the parameters of the encoder and the heads.
    batch_size : int
        Minibatch size (the last minibatch of an epoch may be smaller).
    seed : int
        Seed of the data order.
    log_every : int
        Record every ``log_every`` steps in :attr:`history`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from types import SimpleNamespace
    >>> from fairmt_opt.fairness import Task
    >>> from fairmt_opt.torch import Trainer, make_method
    >>> rng = np.random.default_rng(0)
    >>> split = SimpleNamespace(X=rng.normal(size=(64, 3)), targets=(rng.integers(0, 2, 64),),
    ...                         mask=np.ones((64, 1), bool), groups=rng.integers(0, 2, 64))
    >>> _ = torch.manual_seed(0)
    >>> enc, heads = torch.nn.Linear(3, 4), torch.nn.ModuleList([torch.nn.Linear(4, 1)])
    >>> opt = torch.optim.SGD([*enc.parameters(), *heads.parameters()], lr=0.1)
    >>> tr = Trainer(enc, heads, make_method("fairmt", [Task("y", "detection")], 2), opt,
    ...              batch_size=32)
    >>> tr.fit(split, epochs=2, val=split)
    >>> tr.step, len(tr.history), sorted(tr.evaluations[-1])[:3]
    (4, 4, ['epoch', 'loss/y', 'phi'])
    """

    def __init__(
        self,
        encoder: nn.Module,
        heads: Sequence[nn.Module],
        method: FairMT,
        optimizer: torch.optim.Optimizer,
        *,
        batch_size: int = 256,
        seed: int = 0,
        log_every: int = 1,
    ) -> None:
        if len(heads) != len(method.tasks):
            raise ValueError(f"heads must hold one module per task ({len(method.tasks)}), "
                             f"got {len(heads)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1:
            raise ValueError(f"log_every must be a positive integer, got {log_every!r}")
        self.encoder, self.heads = encoder, list(heads)
        self.method, self.optimizer = method, optimizer
        self.batch_size, self.seed, self.log_every = batch_size, int(seed), log_every
        self._gen = torch.Generator().manual_seed(self.seed)
        self._perm: torch.Tensor | None = None
        self._pos = 0
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []
        self._data_cache: tuple[int, Batch] | None = None

    def __repr__(self) -> str:
        return (f"Trainer(method={self.method!r}, batch_size={self.batch_size}, "
                f"seed={self.seed}, epoch={self.epoch}, step={self.step})")

    @property
    def device(self) -> torch.device:
        p = next(iter(self.encoder.parameters()), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        p = next(iter(self.encoder.parameters()), None)
        return p.dtype if p is not None else torch.float32

    def _data(self, data: Any) -> Batch:
        if isinstance(data, Batch):
            return data
        if self._data_cache is not None and self._data_cache[0] == id(data):
            return self._data_cache[1]
        b = as_batch(data, device=self.device, dtype=self.dtype)
        self._data_cache = (id(data), b)
        return b

    # ------------------------------------------------------------------ training

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``h = encoder(X)`` and the outputs of every head."""
        h = self.encoder(X)
        return h, [hd(h) for hd in self.heads]

    def train_step(self, batch: Batch) -> FairMTRecord:
        """One primal step on ``batch`` (optimizer step) followed by the dual step."""
        self.encoder.train()
        for hd in self.heads:
            hd.train()
        h, outs = self.forward(batch.X)
        out = self.method.compute(h, outs, list(batch.targets), batch.mask, batch.groups,
                                  heads=self.heads)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.optimizer.step()
        self.method.dual_step(out.record)
        self.step += 1
        if self.step % self.log_every == 0:
            row = {"step": self.step, "epoch": self.epoch, "loss": float(out.loss.detach())}
            row.update(out.record.to_dict())
            self.history.append(row)
        return out.record

    def _next_index(self, n: int) -> torch.Tensor:
        if self._perm is None or self._pos >= n:
            if self._perm is not None:
                self.epoch += 1
            self._perm = torch.randperm(n, generator=self._gen)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def train(self, data: Any, *, steps: int) -> None:
        """``steps`` minibatch steps on ``data`` (epochs roll over as needed)."""
        b = self._data(data)
        for _ in range(int(steps)):
            idx = self._next_index(len(b)).to(b.X.device)
            self.train_step(b.take(idx))

    def fit(self, train: Any, *, epochs: int, val: Any = None) -> None:
        """``epochs`` passes over ``train``; after each, :meth:`evaluate` on ``val`` (when
        given) is appended to :attr:`evaluations`."""
        b = self._data(train)
        per_epoch = math.ceil(len(b) / self.batch_size)
        for _ in range(int(epochs)):
            left = per_epoch if self._perm is None or self._pos >= len(b) else math.ceil(
                (len(b) - self._pos) / self.batch_size)
            self.train(b, steps=left)
            if val is not None:
                ev = self.evaluate(val)
                ev["epoch"] = self.epoch
                self.evaluations.append(ev)

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def evaluate(self, data: Any) -> dict[str, Any]:
        """Metrics on a whole split: ``"<task>/<metric>"`` from
        :func:`fairmt_opt.fairness.evaluate_task`, ``"loss/<task>"``, ``"psi/<task>"`` (soft
        violations) and ``"phi"`` (their AHFDA aggregation with the method's ``mu``)."""
        b = data if isinstance(data, Batch) else as_batch(data, device=self.device,
                                                          dtype=self.dtype)
        self.encoder.eval()
        for hd in self.heads:
            hd.eval()
        _, outs = self.forward(b.X)
        m = self.method
        out: dict[str, Any] = {}
        masks = list(b.mask.unbind(1))
        for task, z, y, mk in zip(m.tasks, outs, b.targets, masks):
            rep = evaluate_task(task, z.detach().cpu(), y.cpu(), mk.cpu(), b.groups.cpu(),
                                m.num_groups)
            for k, v in rep.items():
                out[f"{task.name}/{k}"] = float(v)
            out[f"loss/{task.name}"] = float(masked_task_loss(
                task, z, y, mk, regression_loss=m.regression_loss).value)
        psi = m._violations(outs, list(b.targets), masks, b.groups, outs[0].dtype)
        present = b.mask.any(0)
        _, phi = _masked_waterfill(psi, present, m.mu)
        for task, v in zip(m.tasks, psi.tolist()):
            out[f"psi/{task.name}"] = v
        out["phi"] = float(phi)
        return out

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: model, optimizer, method (dual state), data
        order, random-number generators, counters and history."""
        state: dict[str, Any] = {
            "encoder": self.encoder.state_dict(),
            "heads": [hd.state_dict() for hd in self.heads],
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "data_generator": self._gen.get_state(),
            "perm": None if self._perm is None else self._perm.clone(),
            "pos": self._pos,
            "epoch": self.epoch,
            "step": self.step,
            "torch_rng": torch.get_rng_state(),
            "history": list(self.history),
            "evaluations": list(self.evaluations),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.encoder.load_state_dict(state["encoder"])
        for hd, s in zip(self.heads, state["heads"]):
            hd.load_state_dict(s)
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        self._gen.set_state(state["data_generator"])
        self._perm = state["perm"]
        self._pos = int(state["pos"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.history = list(state["history"])
        self.evaluations = list(state["evaluations"])

    def save(self, path: Any) -> None:
        """``torch.save`` of :meth:`state_dict`."""
        torch.save(self.state_dict(), path)

    def load(self, path: Any) -> None:
        """Load a checkpoint written by :meth:`save` (tensors are moved to the model's
        device by the modules and the optimizer)."""
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=False))
