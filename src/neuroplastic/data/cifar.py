"""Reader for CIFAR-10 in its "python version" layout, from a directory the user downloaded it to.

Krizhevsky 2009, "Learning multiple layers of features from tiny images". The python version holds
pickled dictionaries: ``data_batch_1`` .. ``data_batch_5`` (10,000 images each) and ``test_batch``; each
has ``data`` (uint8 ``[n, 3072]``, the red, green then blue 32 x 32 planes, row-major) and ``labels``.
Unpickling is restricted to what these files contain (NumPy arrays, lists, numbers, bytes): a file that
asks for anything else is refused rather than executed.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neuroplastic._checks import check_choice

__all__ = ["load_cifar10", "cifar10_file_names", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds NumPy arrays and plain containers."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR-10 batch file")


def cifar10_file_names(split: str) -> tuple[str, ...]:
    """The batch file names of a split: ``data_batch_1`` .. ``data_batch_5`` for "train", ``test_batch``."""
    check_choice("split", split, ("train", "test"))
    return tuple(f"data_batch_{i}" for i in range(1, 6)) if split == "train" else ("test_batch",)


def _load_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a CIFAR-10 python batch file: {err}") from err
    if not isinstance(batch, dict):
        raise ValueError(f"{path} should hold a dict with 'data' and 'labels', got {type(batch).__name__}")
    entries = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in entries or "labels" not in entries:
        raise ValueError(f"{path} should hold 'data' and 'labels', found keys {sorted(map(str, entries))}")
    data = np.asarray(entries["data"])
    labels = np.asarray(entries["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: 'data' must be uint8 [n, 3072], got {data.dtype} {list(data.shape)}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be in 0..9")
    return data, labels


def load_cifar10(directory: str | Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Load CIFAR-10 (python version) from a directory, as float images in [0, 1].

    Looks for the batch files in ``directory`` and then ``directory/cifar-10-batches-py`` (the folder the
    official archive unpacks to).

    Args:
        directory: folder holding the batch files.
        split: "train" (``data_batch_1`` .. ``_5``, 50,000 images) or "test" (``test_batch``, 10,000).

    Returns:
        ``(X, y)``: float32 ``[n, 3, 32, 32]`` in [0, 1] (channels red, green, blue) and long labels ``[n]``;
        class names in :data:`CIFAR10_CLASSES`.

    Raises:
        FileNotFoundError: the directory or a batch file is missing (the message lists the expected names).
        ValueError: a file is not a CIFAR-10 batch.
    """
    names = cifar10_file_names(split)
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"directory: {root} does not exist or is not a directory")
    searched = [root, root / "cifar-10-batches-py"]
    folder = next((d for d in searched if all((d / n).is_file() for n in names)), None)
    if folder is None:
        missing = [n for n in names if not (root / n).is_file()]
        raise FileNotFoundError(
            f"directory: CIFAR-10 {split} files not found: expected {', '.join(names)}; missing "
            f"{', '.join(missing)}; looked in {', '.join(str(d) for d in searched)}"
        )
    batches = [_load_batch(folder / n) for n in names]
    data = np.concatenate([d for d, _ in batches])
    labels = np.concatenate([lab for _, lab in batches])
    x = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labels)
