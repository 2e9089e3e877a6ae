r"""The training loop of the library and of the studies: minibatches, evaluation on a held-out
split (every ``k`` steps or every epoch, with a callback), a metric history, training time,
and safe checkpoints (atomic writes, ``weights_only`` loads, configuration checks) that resume
bit for bit on CPU."""

from __future__ import annotations

import contextlib
import copy
import math
import os
import pathlib
import pickle
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from .. import aggregate_violations
from ..fairness import Task, evaluate_task, soft_violation
from ..fairness._metrics import MetricReport
from ._batch import Batch, as_batch
from ._checkpoint import _decode, _differences, _digest, _encode, _fsync_dir
from .losses import masked_task_loss

__all__ = ["Batch", "Evaluation", "Trainer", "as_batch"]

#: what a checkpoint file says it is (checked on load)
CHECKPOINT_FORMAT = "fairmt_opt.torch.Trainer"
CHECKPOINT_VERSION = 1


def _host(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()  # type: ignore[no-any-return]
    return np.asarray(a)


@dataclass(repr=False)
class Evaluation:
    r"""The metrics of one split: per task the :class:`~fairmt_opt.fairness.MetricReport` of
    :func:`fairmt_opt.fairness.evaluate_task` (NaN values have their reason in
    ``.undefined``), the masked task loss, the soft violation :math:`\psi_t`, and the AHFDA
    aggregate :math:`\Phi` of the violations of the tasks with labels."""

    metrics: dict[str, MetricReport]
    losses: dict[str, float]
    psi: dict[str, float]
    phi: float

    def flat(self) -> MetricReport:
        """``"<task>/<metric>"``, ``"loss/<task>"``, ``"psi/<task>"`` and ``"phi"`` in one
        dict (undefined metrics NaN, with their reasons under the same keys)."""
        values: dict[str, float] = {}
        undefined: dict[str, str] = {}
        for name, rep in self.metrics.items():
            for k, v in rep.items():
                values[f"{name}/{k}"] = float(v)
                if k in rep.undefined:
                    undefined[f"{name}/{k}"] = rep.undefined[k]
            values[f"loss/{name}"] = self.losses[name]
        for name, v in self.psi.items():
            values[f"psi/{name}"] = v
        values["phi"] = self.phi
        return MetricReport(values, undefined=undefined)

    def __repr__(self) -> str:
        return f"Evaluation(tasks={list(self.metrics)}, phi={self.phi:.4g})"


# ---------------------------------------------------------------------- checkpoint encoding

class Trainer:
    r"""Train a shared encoder and task heads with any method of :func:`make_method`.

    Each step draws a minibatch (a seeded permutation per epoch), computes
    ``h = encoder(X)`` and the head outputs, calls ``method.compute`` and ``backward()`` on the
    Lagrangian, takes an optimizer step and then ``method.dual_step``. Every ``log_every``
    steps a row is appended to :attr:`history` (a list of dicts; this reads the values back to
    the host): ``step`` (the number of optimizer steps taken before this batch, so that row
    ``s`` describes the model that an evaluation at step ``s`` would see), ``epoch``, ``loss``
    (the Lagrangian), ``grad_norm`` (the norm of its gradient over every parameter of the
    optimizer) and ``method``'s ``record.to_dict()``. :attr:`seconds` is the time spent in
    training steps (evaluations and callbacks excluded).

    :meth:`fit` evaluates a held-out split (and calls a callback) every ``eval_every`` steps
    or after every epoch. :meth:`evaluate` and :meth:`report` give
    :func:`fairmt_opt.fairness.evaluate_task` for every task, the task losses, the soft
    :math:`\psi` of :func:`fairmt_opt.fairness.soft_violation` (its default options, the same
    quantity for every method) and their aggregate :math:`\Phi`.

    :meth:`save` writes :meth:`state_dict` atomically (a temporary file in the same folder,
    flushed and synced, then renamed over the target: a crash leaves the previous checkpoint
    whole); :meth:`load` reads it with ``torch.load(weights_only=True)`` (no code runs on
    load) and refuses, with a ``ValueError`` naming the file, a truncated or corrupt file and
    one written by another configuration (tasks, method, model, batch size); the checkpoint
    is checked entirely before anything is assigned, and a failure leaves the trainer as it
    was. ``k`` steps, a save, a load into a new trainer and ``k`` more steps give the same
    parameters, optimizer state, method state and history as ``2k`` steps, bit for bit on
    CPU.

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
        Minibatch size.
    seed : int
        Seed of the data order (the model's initialisation is the caller's).
    log_every : int
        Record every ``log_every`` steps in :attr:`history`.
    drop_last : bool
        Skip the last, smaller minibatch of each epoch (``len(data) // batch_size`` steps per
        epoch) instead of training on it.

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
        method: Any,
        optimizer: torch.optim.Optimizer,
        *,
        batch_size: int = 256,
        seed: int = 0,
        log_every: int = 1,
        drop_last: bool = False,
    ) -> None:
        if len(heads) != len(method.tasks):
            raise ValueError(f"heads must hold one module per task ({len(method.tasks)}), "
                             f"got {len(heads)}")
        for name, v in (("batch_size", batch_size), ("log_every", log_every)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.encoder, self.heads = encoder, list(heads)
        self.method, self.optimizer = method, optimizer
        self.batch_size, self.seed, self.log_every = batch_size, int(seed), log_every
        self.drop_last = bool(drop_last)
        self._gen = torch.Generator().manual_seed(self.seed)
        self._perm: torch.Tensor | None = None
        self._pos = 0
        self.epoch = 0
        self.step = 0
        self.seconds = 0.0
        self.history: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []
        self._data_cache: list[tuple[Any, Batch]] = []

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

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(self.method.tasks)

    def batch(self, data: Any) -> Batch:
        """The tensors of ``data`` (a :class:`Batch`, or any object :func:`as_batch` reads) on
        the model's device and in its dtype, classification targets ``long``; the last few
        splits converted are kept, so that calling this again on the same object is free."""
        if isinstance(data, Batch):
            if len(data.targets) != len(self.tasks):
                raise ValueError(f"the batch has {len(data.targets)} target tensors but the "
                                 f"method has {len(self.tasks)} tasks")
            return data
        for obj, b in self._data_cache:
            if obj is data:
                return b
        b = as_batch(data, device=self.device, dtype=self.dtype, tasks=self.tasks)
        # a few splits (train, val, test); holding ``data`` keeps its identity unambiguous
        self._data_cache = [(data, b), *self._data_cache[:3]]
        return b

    # ------------------------------------------------------------------ training

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``h = encoder(X)`` and the outputs of every head."""
        h = self.encoder(X)
        return h, [hd(h) for hd in self.heads]

    def _grad_norm(self) -> float:
        sq = [(p.grad.detach() ** 2).sum() for g in self.optimizer.param_groups
              for p in g["params"] if p.grad is not None]
        return math.sqrt(sum(torch.stack(sq).tolist())) if sq else 0.0

    def train_step(self, batch: Batch) -> Any:
        """One primal step on ``batch`` (optimizer step) followed by the dual step; returns
        the method's record of the step."""
        t0 = time.perf_counter()
        self.encoder.train()
        for hd in self.heads:
            hd.train()
        h, outs = self.forward(batch.X)
        out = self.method.compute(h, outs, list(batch.targets), batch.mask, batch.groups,
                                  heads=self.heads)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if self.step % self.log_every == 0:
            row = {"step": self.step, "epoch": self.epoch, "loss": float(out.loss.detach()),
                   "grad_norm": self._grad_norm()}
            row.update(out.record.to_dict())
            self.history.append(row)
        self.optimizer.step()
        self.method.dual_step(out.record)
        self.step += 1
        self.seconds += time.perf_counter() - t0
        return out.record

    def _steps_left(self, n: int) -> int:
        """Steps to the end of the epoch in progress (a full epoch when none is)."""
        bs = self.batch_size
        per_epoch = n // bs if self.drop_last else math.ceil(n / bs)
        if self._perm is None:
            return per_epoch
        rest = n - self._pos
        left = rest // bs if self.drop_last else math.ceil(rest / bs)
        return left if left > 0 else per_epoch

    def _next_index(self, n: int) -> torch.Tensor:
        if n < (self.batch_size if self.drop_last else 1):
            raise ValueError(f"the training data has {n} rows, fewer than one minibatch "
                             f"(batch_size={self.batch_size}, drop_last={self.drop_last})")
        if self._perm is not None and len(self._perm) != n:
            raise ValueError(f"the training data has {n} rows but the epoch in progress was "
                             f"drawn for {len(self._perm)}")
        end = self._pos + self.batch_size
        if self._perm is None or self._pos >= n or (self.drop_last and end > n):
            if self._perm is not None:
                self.epoch += 1
            self._perm = torch.randperm(n, generator=self._gen)
            self._pos = 0
        idx = self._perm[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def train(self, data: Any, *, steps: int) -> None:
        """``steps`` minibatch steps on ``data`` (epochs roll over as needed)."""
        b = self.batch(data)
        for _ in range(int(steps)):
            idx = self._next_index(len(b)).to(b.X.device)
            self.train_step(b.take(idx))

    def fit(self, train: Any, *, epochs: int, val: Any = None, eval_every: int = 0,
            callback: Callable[[Trainer], Any] | None = None) -> None:
        """``epochs`` passes over ``train`` (the first one finishes the epoch in progress, if
        any). At every evaluation point, :meth:`evaluate` on ``val`` (when given) is appended
        to :attr:`evaluations` with its ``step`` and ``epoch``, and ``callback(trainer)`` is
        called (when given). The evaluation points are every ``eval_every`` steps (counted
        from the first step of the trainer, so a resumed run keeps them) and after the last
        step when ``eval_every > 0``; after every epoch otherwise."""
        if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
            raise ValueError(f"eval_every must be an integer >= 0, got {eval_every!r}")
        b = self.batch(train)
        done = self.step if eval_every and self.step % eval_every == 0 else None
        for _ in range(int(epochs)):
            for _ in range(self._steps_left(len(b))):
                self.train(b, steps=1)
                if eval_every and self.step % eval_every == 0:
                    self._evaluation_point(val, callback)
                    done = self.step
            if not eval_every:
                self._evaluation_point(val, callback)
        if eval_every and done != self.step:
            self._evaluation_point(val, callback)

    def _evaluation_point(self, val: Any, callback: Callable[[Trainer], Any] | None) -> None:
        if val is not None:
            ev: dict[str, Any] = dict(self.evaluate(val))
            ev["step"], ev["epoch"] = self.step, self.epoch
            self.evaluations.append(ev)
        if callback is not None:
            callback(self)

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def outputs(self, data: Any) -> list[torch.Tensor]:
        """The head outputs on a whole split (evaluation mode, no gradient)."""
        b = self.batch(data) if not isinstance(data, Batch) else data
        self.encoder.eval()
        for hd in self.heads:
            hd.eval()
        _, outs = self.forward(b.X)
        return outs

    @torch.no_grad()
    def report(self, data: Any, *, mu: float | None = None,
               train_median: Mapping[str, float] | None = None) -> Evaluation:
        r"""The :class:`Evaluation` of a whole split. The metrics, :math:`\psi` and
        :math:`\Phi` are computed in double precision on the host from the outputs and the
        split's own targets; ``mu`` (default: the method's) is the AHFDA parameter of
        :math:`\Phi`; ``train_median`` maps regression tasks to the median of their training
        targets (see :func:`fairmt_opt.fairness.evaluate_task`)."""
        b = self.batch(data) if not isinstance(data, Batch) else data
        outs = self.outputs(b)
        raw = data if not isinstance(data, Batch) else b
        masks = _host(raw.mask).astype(bool)
        groups = _host(raw.groups)
        m = self.method
        mu = float(m.mu if mu is None else mu)
        cfg = m.config() if hasattr(m, "config") else {}
        reg_loss: Literal["mse", "mae"] = "mae" if cfg.get("regression_loss") == "mae" else "mse"
        metrics: dict[str, MetricReport] = {}
        losses: dict[str, float] = {}
        psi = np.zeros(len(self.tasks))
        for t, (task, z) in enumerate(zip(self.tasks, outs)):
            zh = z.detach().cpu().numpy().astype(np.float64)
            zh = zh[:, 0] if task.out_dim == 1 else zh
            y = _host(raw.targets[t])
            median = None if train_median is None else train_median.get(task.name)
            metrics[task.name] = evaluate_task(task, zh, y, masks[:, t], groups, m.num_groups,
                                               output="logits", train_median=median)
            losses[task.name] = float(masked_task_loss(
                task, z, b.targets[t], b.mask[:, t], regression_loss=reg_loss).value)
            if masks[:, t].any():
                psi[t] = float(np.asarray(soft_violation(
                    task, zh, y, masks[:, t], groups, m.num_groups).value))
        present = masks.any(axis=0)
        phi = float(aggregate_violations(psi[present], mu).value) if present.any() else 0.0
        return Evaluation(metrics, losses,
                          {task.name: float(v) for task, v in zip(self.tasks, psi)}, phi)

    def evaluate(self, data: Any, **options: Any) -> MetricReport:
        """:meth:`report` as one flat dict: ``"<task>/<metric>"``, ``"loss/<task>"``,
        ``"psi/<task>"`` and ``"phi"`` (the reasons of NaN metrics in ``.undefined``)."""
        return self.report(data, **options).flat()

    # ------------------------------------------------------------------ checkpoints

    def config(self) -> dict[str, Any]:
        """What a checkpoint must match to be loaded: the method's configuration, the shapes
        of the model's tensors, the optimizer's type and parameter groups, the batch size."""
        def shapes(mod: nn.Module) -> dict[str, list[int]]:
            return {k: list(v.shape) for k, v in mod.state_dict().items()}

        method_cfg = self.method.config() if hasattr(self.method, "config") else {}
        return {
            "method": {"type": type(self.method).__name__, **method_cfg},
            "encoder": shapes(self.encoder),
            "heads": [shapes(h) for h in self.heads],
            "optimizer": {"type": type(self.optimizer).__name__,
                          "param_groups": [len(g["params"])
                                           for g in self.optimizer.param_groups]},
            "data": {"batch_size": self.batch_size, "drop_last": self.drop_last},
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: the configuration, model, optimizer, method
        (dual state, warm starts), data order, random-number generators, counters, history.
        """
        state: dict[str, Any] = {
            "config": self.config(),
            "encoder": self.encoder.state_dict(),
            "heads": [hd.state_dict() for hd in self.heads],
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "data_generator": self._gen.get_state(),
            "perm": None if self._perm is None else self._perm.clone(),
            "pos": self._pos,
            "epoch": self.epoch,
            "step": self.step,
            "seconds": self.seconds,
            "torch_rng": torch.get_rng_state(),
            "history": copy.deepcopy(self.history),
            "evaluations": copy.deepcopy(self.evaluations),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def _check_state(self, state: Any, source: str) -> None:
        """Every check of a state before anything is assigned (``ValueError`` naming
        ``source``)."""
        def bad(msg: str) -> ValueError:
            return ValueError(f"{source}: {msg}")

        if not isinstance(state, Mapping):
            raise bad(f"a trainer state is a dict, got {type(state).__name__}")
        need = ("config", "encoder", "heads", "optimizer", "method", "data_generator", "perm",
                "pos", "epoch", "step", "torch_rng", "history", "evaluations")
        missing = [k for k in need if k not in state]
        if missing:
            raise bad(f"not a complete trainer state (missing {missing})")
        diffs = _differences(state["config"], self.config(), "config")
        if diffs:
            raise bad("written by another configuration: " + "; ".join(diffs[:8])
                      + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else ""))

        def check_module(saved: Any, mod: nn.Module, name: str) -> None:
            cur = mod.state_dict()
            if not isinstance(saved, Mapping) or list(saved) != list(cur):
                raise bad(f"{name}: the tensor names differ from the model's")
            for k, v in cur.items():
                s = saved[k]
                if not isinstance(s, torch.Tensor) or s.shape != v.shape or s.dtype != v.dtype:
                    raise bad(f"{name}.{k}: expected a {v.dtype} tensor of shape "
                              f"{tuple(v.shape)}, got {getattr(s, 'dtype', type(s).__name__)} "
                              f"{tuple(getattr(s, 'shape', ()))}")

        check_module(state["encoder"], self.encoder, "encoder")
        if not isinstance(state["heads"], list | tuple) or len(state["heads"]) != len(self.heads):
            raise bad(f"heads: expected {len(self.heads)} head states")
        for t, (s, hd) in enumerate(zip(state["heads"], self.heads)):
            check_module(s, hd, f"heads[{t}]")
        opt = state["optimizer"]
        cur_groups = self.optimizer.state_dict()["param_groups"]
        if (not isinstance(opt, Mapping) or not isinstance(opt.get("state"), Mapping)
                or not isinstance(opt.get("param_groups"), list | tuple)
                or [len(g.get("params", ())) for g in opt["param_groups"]]
                != [len(g["params"]) for g in cur_groups]):
            raise bad("optimizer: not the state of an optimizer over the same parameter groups")
        if not isinstance(state["method"], Mapping):
            raise bad("method: a method state is a dict")
        for key, ref in (("data_generator", self._gen.get_state()),
                         ("torch_rng", torch.get_rng_state())):
            s = state[key]
            if not isinstance(s, torch.Tensor) or s.dtype != ref.dtype or s.shape != ref.shape:
                raise bad(f"{key}: not a random-number generator state")
        perm = state["perm"]
        if perm is not None and (not isinstance(perm, torch.Tensor) or perm.ndim != 1
                                 or perm.dtype != torch.long):
            raise bad("perm: a 1-d long tensor or None")
        for key in ("pos", "epoch", "step"):
            v = state[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(f"{key}: a non-negative integer, got {v!r}")
        if not isinstance(state.get("seconds", 0.0), int | float):
            raise bad("seconds: a number")
        for key in ("history", "evaluations"):
            if not isinstance(state[key], list) or not all(isinstance(r, dict)
                                                           for r in state[key]):
                raise bad(f"{key}: a list of dicts")

    def _assign(self, state: Mapping[str, Any]) -> None:
        self.encoder.load_state_dict(state["encoder"])
        for hd, s in zip(self.heads, state["heads"]):
            hd.load_state_dict(s)
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        self._gen.set_state(state["data_generator"])
        self._perm = None if state["perm"] is None else state["perm"].clone()
        self._pos = int(state["pos"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.seconds = float(state.get("seconds", 0.0))
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.history = copy.deepcopy(list(state["history"]))
        self.evaluations = copy.deepcopy(list(state["evaluations"]))

    def load_state_dict(self, state: Mapping[str, Any], *, source: str = "trainer state"
                        ) -> None:
        """Restore :meth:`state_dict`: everything is checked first (``ValueError``); when an
        assignment still fails (e.g. the method refuses its state), the trainer is restored to
        what it was before the call."""
        self._check_state(state, source)
        backup = copy.deepcopy(self.state_dict())
        try:
            self._assign(state)
        except Exception as exc:
            self._assign(backup)
            raise ValueError(f"{source}: could not be loaded ({type(exc).__name__}: {exc}); "
                             "the trainer is unchanged") from exc

    def save(self, path: Any) -> None:
        """Write :meth:`state_dict` to ``path`` atomically: into a temporary file in the same
        folder, flushed and synced to disk, then renamed over ``path`` (a crash or a kill at
        any moment leaves either the previous checkpoint or the new one, never a mix; a
        killed process may leave a ``.<name>.*.tmp`` file behind). NumPy arrays in the
        method's state are stored as tensors and restored as arrays by :meth:`load`."""
        path = pathlib.Path(path)
        state = _encode(self.state_dict(), "state")
        payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                   "digest": _digest(state), "state": state}
        folder = path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(folder)

    def load(self, path: Any) -> None:
        """Load a checkpoint written by :meth:`save` with ``torch.load(weights_only=True)``
        (tensors go to the model's device through the modules and the optimizer).

        Raises ``ValueError`` naming the file when it is truncated or corrupt (a checksum of
        the content is written with it and checked), holds anything
        but plain tensors, numbers, strings and containers (no code runs), is not a trainer
        checkpoint, or was written by another configuration (the message lists what
        differs); the trainer is then unchanged. A missing file raises
        ``FileNotFoundError``."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ValueError(
                f"{path}: refused: the file holds objects that a safe load does not accept "
                f"(only tensors, numbers, strings, lists and dicts; torch.load weights_only="
                f"True), or it is corrupt: {first}") from exc
        except Exception as exc:
            raise ValueError(f"{path}: truncated or corrupt checkpoint "
                             f"({type(exc).__name__}: {exc})") from exc
        if (not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT
                or "state" not in raw):
            raise ValueError(f"{path}: not a checkpoint written by Trainer.save")
        if raw.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path}: checkpoint version {raw.get('version')!r}, this version "
                             f"of the library reads version {CHECKPOINT_VERSION}")
        if raw.get("digest") != _digest(raw["state"]):
            raise ValueError(f"{path}: corrupt checkpoint (its content does not match the "
                             "checksum written with it)")
        self.load_state_dict(_decode(raw["state"]), source=str(path))
