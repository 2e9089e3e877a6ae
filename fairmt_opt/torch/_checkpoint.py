"""Checkpoint plumbing of :class:`~fairmt_opt.torch.Trainer`: a state of tensors and plain data
only (NumPy values tagged, so that ``torch.load(weights_only=True)`` reads it), a content
checksum, the durable rename of a file, and the differences between two configurations."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import struct
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

_NUMPY_TAG = "__numpy__"
_PLAIN = (str, int, float, bool, complex, type(None), torch.dtype, torch.device, torch.Size)


def _encode(x: Any, where: str) -> Any:
    """Plain containers of tensors, numbers and strings (what ``weights_only`` loads): NumPy
    arrays and scalars become tagged tensors, anything else is refused."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray | np.generic):
        a = np.asarray(x)
        if a.dtype == object or a.dtype.kind not in "biufc":
            raise TypeError(f"cannot checkpoint {where}: NumPy dtype {a.dtype} (numbers only)")
        out: dict[str, Any] = {_NUMPY_TAG: torch.from_numpy(np.array(a, copy=True))}
        if isinstance(x, np.generic):
            out["scalar"] = True
        return out
    if isinstance(x, _PLAIN):
        return x
    if isinstance(x, OrderedDict):
        return OrderedDict((k, _encode(v, f"{where}[{k!r}]")) for k, v in x.items())
    if isinstance(x, Mapping):
        if _NUMPY_TAG in x:
            raise TypeError(f"cannot checkpoint {where}: the key {_NUMPY_TAG!r} is reserved")
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in x.items()}
    if isinstance(x, list | tuple):
        items = [_encode(v, f"{where}[{i}]") for i, v in enumerate(x)]
        return items if isinstance(x, list) else tuple(items)
    raise TypeError(f"cannot checkpoint {where}: a {type(x).__name__} (a checkpoint holds "
                    "tensors, NumPy arrays, numbers, strings, None, lists and dicts only)")


def _decode(x: Any) -> Any:
    if isinstance(x, dict) and _NUMPY_TAG in x:
        a = x[_NUMPY_TAG].numpy().copy()
        return a[()] if x.get("scalar") else a
    if isinstance(x, OrderedDict):
        return OrderedDict((k, _decode(v)) for k, v in x.items())
    if isinstance(x, dict):
        return {k: _decode(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_decode(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_decode(v) for v in x)
    return x


def _digest(x: Any) -> str:
    """A checksum of an encoded state: its structure, every number and every tensor's bytes
    (a zip archive does not protect the tensor data, so a flipped byte would load silently).
    """
    h = hashlib.blake2b(digest_size=20)

    def walk(v: Any) -> None:
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(v, Mapping):
            h.update(f"D{len(v)}".encode())
            for k, e in v.items():
                walk(k)
                walk(e)
        elif isinstance(v, list | tuple):
            h.update(f"{type(v).__name__[0]}{len(v)}".encode())
            for e in v:
                walk(e)
        elif isinstance(v, float):
            h.update(b"f" + struct.pack("<d", v))
        else:
            h.update(f"{type(v).__name__}:{v!r}".encode())

    walk(x)
    return h.hexdigest()


def _fsync_dir(folder: pathlib.Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or file system allows it
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _plain(v: Any) -> Any:
    """Tuples as lists (a configuration compares equal through a save and a load)."""
    if isinstance(v, list | tuple):
        return [_plain(e) for e in v]
    return v


def _differences(saved: Any, current: Any, where: str) -> list[str]:
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for k in sorted(set(saved) | set(current), key=str):
            if k not in saved or k not in current:
                out.append(f"{where}.{k}: checkpoint {saved.get(k, '(absent)')!r}, "
                           f"this trainer {current.get(k, '(absent)')!r}")
            else:
                out += _differences(saved[k], current[k], f"{where}.{k}")
        return out
    if _plain(saved) != _plain(current):
        return [f"{where}: checkpoint {saved!r}, this trainer {current!r}"]
    return []
