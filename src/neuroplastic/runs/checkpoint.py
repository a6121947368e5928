"""Reading a run's checkpoint.pt safely: the weights-only unpickler, so that a crafted file cannot run code.

A checkpoint holds tensors, plain data (dicts, lists, tuples, str, int, float, bool, None), NumPy arrays and
scalars (NumPy's RNG state is an array) and the package's NamedTuples (e.g. a recurrent state kept in
``RunDirectory.state``); anything else is refused unread.
"""

from __future__ import annotations

import importlib
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CheckpointMismatch", "CheckpointUnreadable", "read_checkpoint"]


class CheckpointMismatch(ValueError):
    """A checkpoint that cannot resume this run: another experiment, config, seed or phase sequence."""


class CheckpointUnreadable(CheckpointMismatch):
    """A checkpoint file that cannot be read: empty, truncated, corrupt, or holding objects that are not data."""


def _numpy_safe_globals() -> list[Any]:
    """The NumPy types a checkpoint may hold (arrays, scalars, dtypes: NumPy's RNG state is an array).

    Loaded with ``weights_only=True``, nothing else outside plain data and tensors is accepted; these only
    rebuild arrays and scalars from their bytes and run no other code.
    """
    core = getattr(np, "_core", None) or np.core
    dtype_classes = [value for value in vars(np.dtypes).values() if isinstance(value, type)]
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype, *dtype_classes]


# Checkpoints written before the loader became weights-only stored ``torch.__version__`` as it is, a
# ``TorchVersion``: a ``str`` subclass that only compares versions, rebuilt from its text.
_OLDER_CHECKPOINT_TYPES = [torch.torch_version.TorchVersion]


def _package_named_tuples(path: Path) -> list[type]:
    """The NamedTuple classes of this package that the checkpoint at ``path`` holds (e.g. a recurrent state).

    Only ``neuroplastic.*`` classes that are tuples with ``_fields`` qualify: rebuilding one only stores its
    fields. Any other class or function stays refused by the safe loader.
    """
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # an unreadable file: torch.load reports it
        return []
    found = []
    for name in names:
        module, _, attribute = name.rpartition(".")
        if module != "neuroplastic" and not module.startswith("neuroplastic."):
            continue
        try:
            cls = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError):
            continue
        if isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields"):
            found.append(cls)
    return found


def read_checkpoint(path: str | Path) -> Any:
    """A checkpoint.pt loaded with the safe (weights-only) unpickler: tensors and plain data only, never code.

    Raises:
        CheckpointUnreadable: the file is empty, truncated or corrupt, or holds other objects (a crafted file
            could run code when unpickled, so it is refused unread).
    """
    path = Path(path)
    try:
        allowed = [*_numpy_safe_globals(), *_package_named_tuples(path), *_OLDER_CHECKPOINT_TYPES]
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        unsupported = re.search(r"GLOBAL (\S+)", str(error))  # a class or function the safe loader refused
        if unsupported:
            raise CheckpointUnreadable(
                f"{path} was refused: it holds objects other than tensors and plain data, which could run code "
                f"when loaded (here {unsupported.group(1)}); it was not loaded"
            ) from None
        reason = "corrupt or not a checkpoint"
        message = next((line.strip() for line in str(error).splitlines() if "error:" in line), str(error))
    except (OSError, RuntimeError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        reason = "empty" if path.stat().st_size == 0 else "truncated, corrupt or not a checkpoint"
        message = f"{type(error).__name__}: {str(error).strip()}"
    message = " ".join(message.split())[:200]
    raise CheckpointUnreadable(f"{path} is unreadable ({reason}): {message}")
