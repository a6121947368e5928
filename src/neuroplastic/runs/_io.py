"""File helpers for run directories: atomic writes and conversion of results to valid JSON."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch


def to_jsonable(obj: Any) -> Any:
    """Convert ``obj`` into plain JSON types; non-finite floats become the strings "nan", "inf", "-inf".

    Tensors and NumPy values become numbers or lists, paths become strings, dataclasses and mappings
    become dicts (keys as strings), tuples and sets become lists; anything else becomes ``str(obj)``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if math.isfinite(obj):
            return float(obj)
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        return to_jsonable(obj.item() if obj.numel() == 1 and obj.dim() == 0 else obj.tolist())
    if isinstance(obj, (np.generic, np.ndarray)):
        return to_jsonable(obj.tolist())
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(value) for value in obj]
    return str(obj)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a file so that it is either complete or untouched: temp file, flush, fsync, ``os.replace``.

    ``write(f)`` receives a binary file open on a temporary file in the same directory; if it raises,
    the temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable on POSIX file systems (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented, strictly valid JSON (see :func:`to_jsonable`) atomically."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n"
    return atomic_write(Path(path), lambda f: f.write(text.encode("utf-8")))
