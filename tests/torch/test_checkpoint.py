"""Trainer checkpoints: atomic writes, safe loads (no code runs), clear errors naming the file,
configuration checks, and a trainer left unchanged by every failed load."""

from __future__ import annotations

import copy
import math
import os
import pathlib
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from fairmt_opt.fairness import Task
from fairmt_opt.torch import Trainer, make_method
from fairmt_opt.torch.trainer import _decode, _encode

TASKS = (Task("det", "detection"), Task("cls", "classification", num_classes=3),
         Task("reg", "regression"))


def make_split(n: int, seed: int = 0, tasks: Any = TASKS) -> SimpleNamespace:
    """Random inputs with a little signal, three kinds of targets, partial labels, 2 groups."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    groups = rng.integers(0, 2, n)
    groups[:2] = [0, 1]
    targets = []
    for task in tasks:
        if task.kind == "detection":
            targets.append((X[:, 0] + 0.5 * groups + rng.normal(size=n) > 0).astype(np.int64))
        elif task.kind == "classification":
            targets.append(rng.integers(0, task.num_classes, n))
        else:
            targets.append(X[:, 1] + 0.3 * groups + 0.1 * rng.normal(size=n))
    mask = rng.random((n, len(tasks))) < 0.85
    mask[:4] = True
    return SimpleNamespace(X=X, targets=tuple(targets), mask=mask, groups=groups)


def make_trainer(method: str = "fairmt", *, tasks: Any = TASKS, width: int = 8,
                 batch_size: int = 48, dropout: float = 0.2, **options: Any) -> Trainer:
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU(),
                              torch.nn.Dropout(dropout), torch.nn.Linear(16, width),
                              torch.nn.Tanh())
    heads = torch.nn.ModuleList([torch.nn.Linear(width, t.out_dim) for t in tasks])
    opt = torch.optim.Adam([*enc.parameters(), *heads.parameters()], lr=1e-2)
    if method == "mgda":
        options = {"shared_parameters": enc.parameters(), **options}
    m = make_method(method, tasks, 2, eps=0.01, rho=0.5, **options)
    return Trainer(enc, heads, m, opt, batch_size=batch_size, seed=3)


def _same_float(a: float, b: float) -> bool:
    return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))


def assert_same(a: Any, b: Any, where: str = "state") -> None:
    """Bit-for-bit equality of nested states (tensors, arrays, floats, containers)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert (a.dtype, a.shape, a.device) == (b.dtype, b.shape, b.device), where
        if a.is_floating_point() or a.is_complex():
            assert torch.equal(a.isnan(), b.isnan()), where
            assert torch.equal(a.nan_to_num(), b.nan_to_num()), where
        else:
            assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif isinstance(a, float):
        assert isinstance(b, float) and _same_float(a, b), (where, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (where, list(a), list(b))
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


def snapshot(tr: Trainer) -> dict[str, Any]:
    return copy.deepcopy(tr.state_dict())


@pytest.fixture
def trained(tmp_path: pathlib.Path) -> tuple[Trainer, pathlib.Path, dict[str, Any]]:
    tr = make_trainer()
    tr.train(make_split(100), steps=3)
    path = tmp_path / "ckpt.pt"
    tr.save(path)
    return tr, path, snapshot(tr)


def test_save_load_round_trip_and_no_temporary_left(
        trained: tuple[Trainer, pathlib.Path, dict[str, Any]]) -> None:
    tr, path, state = trained
    fresh = make_trainer()
    fresh.load(path)
    assert_same(state, snapshot(fresh))
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]
    tr.save(path)  # overwrite in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]


def test_write_failing_half_way_keeps_previous_checkpoint(
        trained: tuple[Trainer, pathlib.Path, dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    tr, path, state = trained
    tr.train(make_split(100), steps=2)
    real_save = torch.save

    def broken_save(obj: Any, f: Any, *a: Any, **k: Any) -> None:
        import io

        buf = io.BytesIO()
        real_save(obj, buf, *a, **k)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])  # half the bytes, then a failure
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        tr.save(path)
    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]  # temporary removed
    fresh = make_trainer()
    fresh.load(path)
    assert_same(state, snapshot(fresh))


_KILL_CHILD = textwrap.dedent("""
    import sys, torch
    from fairmt_opt.fairness import Task
    from fairmt_opt.torch import Trainer, make_method

    def big_trainer():
        torch.manual_seed(0)
        enc = torch.nn.Linear(1000, 2000)
        heads = torch.nn.ModuleList([torch.nn.Linear(2000, 1)])
        opt = torch.optim.SGD([*enc.parameters(), *heads.parameters()], lr=0.1)
        return Trainer(enc, heads, make_method("linear", [Task("y", "detection")], 2), opt)

    if __name__ == "__main__":
        tr = big_trainer()
        tr.save(sys.argv[1])
        print("saved", flush=True)
        version = 0
        while True:
            version += 1
            with torch.no_grad():
                tr.encoder.weight.fill_(float(version))
            print("saving", version, flush=True)
            tr.save(sys.argv[1])
""")


def _kill_during_save(tmp_path: pathlib.Path, delay: float) -> None:
    script = tmp_path / "child.py"
    script.write_text(_KILL_CHILD)
    path = tmp_path / "big.pt"
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "saved"
        assert proc.stdout.readline().startswith("saving")
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    ns: dict[str, Any] = {}
    exec(compile(_KILL_CHILD, str(script), "exec"), ns)  # the same trainer, in this process
    fresh = ns["big_trainer"]()
    fresh.load(path)  # whole: the first checkpoint or a later complete one
    w = fresh.encoder.weight
    assert bool((w == w.flatten()[0]).all()) or torch.equal(w, ns["big_trainer"]().encoder.weight)


def test_save_killed_half_way_keeps_a_loadable_checkpoint(tmp_path: pathlib.Path) -> None:
    _kill_during_save(tmp_path, 0.02)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(8))
def test_save_killed_half_way_many_trials(tmp_path: pathlib.Path, trial: int) -> None:
    _kill_during_save(tmp_path, 0.02 * trial)


class _Payload:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (open, (str(self.marker), "w"))  # creates the marker file when unpickled


@pytest.mark.parametrize("form", ["torch", "pickle"])
def test_crafted_pickle_is_refused_and_does_not_run(
        trained: tuple[Trainer, pathlib.Path, dict[str, Any]], form: str) -> None:
    tr, path, state = trained
    marker = path.parent / "payload-ran"
    evil = path.parent / "evil.pt"
    obj = {"format": "fairmt_opt.torch.Trainer", "version": 1, "state": _Payload(marker)}
    if form == "torch":
        torch.save(obj, evil)
    else:
        evil.write_bytes(pickle.dumps(obj))
    with pytest.raises(ValueError, match=r"evil\.pt: refused") as err:
        tr.load(evil)
    assert "weights_only" in str(err.value)
    assert not marker.exists()
    assert_same(state, snapshot(tr))
    # the file is a real payload: an unsafe load would have run it
    if form == "torch":
        torch.load(evil, weights_only=False)
    else:
        pickle.loads(evil.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("keep", [0, 10, 0.5, 0.95])
def test_truncated_checkpoint_names_the_file(
        trained: tuple[Trainer, pathlib.Path, dict[str, Any]], keep: float) -> None:
    tr, path, state = trained
    data = path.read_bytes()
    n = int(keep * len(data)) if isinstance(keep, float) else keep
    bad = path.parent / "cut.pt"
    bad.write_bytes(data[:n])
    with pytest.raises(ValueError, match=r"cut\.pt: (truncated or corrupt|refused)"):
        tr.load(bad)
    assert_same(state, snapshot(tr))


def test_corrupt_bytes_and_foreign_files(
        trained: tuple[Trainer, pathlib.Path, dict[str, Any]]) -> None:
    tr, path, state = trained
    data = bytearray(path.read_bytes())
    weights = tr.encoder[0].weight.detach().numpy().tobytes()
    at = bytes(data).find(weights)
    assert at > 0
    data[at + 8: at + 12] = b"\x7f\x7f\x7f\x7f"  # inside a tensor: the zip format does not notice
    bad = path.parent / "flipped.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flipped\.pt: corrupt checkpoint"):
        tr.load(bad)
    data = bytearray(path.read_bytes())
    data[len(data) // 3: len(data) // 3 + 64] = b"\xff" * 64
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flipped\.pt: (truncated or )?corrupt"):
        tr.load(bad)
    other = path.parent / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match=r"other\.pt: not a checkpoint written by Trainer"):
        tr.load(other)
    raw = torch.load(path, weights_only=True)
    raw["version"] = 99
    torch.save(raw, other)
    with pytest.raises(ValueError, match=r"other\.pt: checkpoint version 99"):
        tr.load(other)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        tr.load(path.parent / "missing.pt")
    assert_same(state, snapshot(tr))


@pytest.mark.parametrize(("build", "what"), [
    (lambda: make_trainer(tasks=(Task("det", "detection"), Task("kls", "classification",
                                                               num_classes=3),
                                 Task("reg", "regression"))), "tasks"),
    (lambda: make_trainer(tasks=(Task("det", "detection"), Task("cls", "classification",
                                                               num_classes=3),
                                 Task("reg", "detection"))), "tasks"),
    (lambda: make_trainer("linear"), "config.method"),
    (lambda: make_trainer(qp_method="frank_wolfe"), "qp_method"),
    (lambda: make_trainer(width=6), "config.encoder"),
    (lambda: make_trainer(batch_size=32), "batch_size"),
])
def test_other_configuration_is_refused(
        trained: tuple[Trainer, pathlib.Path, dict[str, Any]], build: Any, what: str) -> None:
    _, path, _ = trained
    other = build()
    before = snapshot(other)
    with pytest.raises(ValueError, match=r"ckpt\.pt: written by another configuration") as err:
        other.load(path)
    assert what in str(err.value)
    assert_same(before, snapshot(other))


def test_failure_while_assigning_restores_the_trainer(
        trained: tuple[Trainer, pathlib.Path, dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    tr, path, _ = trained
    tr.train(make_split(100), steps=2)
    before = snapshot(tr)
    real = tr.method.load_state_dict
    calls = []

    def refuse_once(state: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("dual")
        real(state)

    monkeypatch.setattr(tr.method, "load_state_dict", refuse_once)
    with pytest.raises(ValueError, match=r"ckpt\.pt: could not be loaded .*unchanged"):
        tr.load(path)
    assert_same(before, snapshot(tr))  # encoder, heads and optimizer were put back too


def test_bad_state_dict_is_refused_before_assignment() -> None:
    tr = make_trainer()
    tr.train(make_split(100), steps=2)
    before = snapshot(tr)
    for mutate, msg in [
        (lambda s: s.pop("optimizer"), "missing"),
        (lambda s: s["encoder"].__setitem__("0.weight", torch.zeros(2, 2)), "encoder.0.weight"),
        (lambda s: s["heads"].pop(), "heads"),
        (lambda s: s.__setitem__("step", -1), "step"),
        (lambda s: s["optimizer"]["param_groups"].append({"params": [99]}), "optimizer"),
        (lambda s: s.__setitem__("torch_rng", torch.zeros(3)), "torch_rng"),
    ]:
        s = snapshot(tr)
        mutate(s)
        with pytest.raises(ValueError, match=msg):
            tr.load_state_dict(s)
        assert_same(before, snapshot(tr))


def test_encoding_of_numpy_and_plain_values() -> None:
    state = {"a": np.arange(3.0), "b": (np.int64(4), [np.float32(1.5), None, "x"]),
             "c": {"t": torch.ones(2), "f": math.inf, "n": 7, "z": np.zeros((0, 2), bool)}}
    enc = _encode(state, "state")
    assert not any(isinstance(v, np.ndarray) for v in enc.values())
    dec = _decode(enc)
    assert_same(state["a"], dec["a"])
    assert type(dec["b"][0]) is np.int64 and dec["b"][0] == 4
    assert type(dec["b"][1][0]) is np.float32 and dec["b"][1][0] == np.float32(1.5)
    assert dec["b"][1][1:] == [None, "x"] and isinstance(dec["b"], tuple)
    assert_same(state["c"], dec["c"])
    with pytest.raises(TypeError, match=r"state\['o'\]: NumPy dtype object"):
        _encode({"o": np.array([object()])}, "state")
    with pytest.raises(TypeError, match=r"state\['f'\]\[0\]: a function"):
        _encode({"f": [lambda: 0]}, "state")
