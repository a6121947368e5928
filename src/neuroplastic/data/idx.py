"""Readers for the IDX files of MNIST and Fashion-MNIST, from a directory the user downloaded them to.

The IDX format (LeCun et al.): a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian 32-bit size per dimension, then the values in row-major order, big-endian.
MNIST images have magic 2051 (0x00000803: unsigned bytes, 3 dimensions), labels 2049 (0x00000801).
Files may be gzip-compressed (``.gz``), as distributed.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from neuroplastic._checks import check_choice

__all__ = [
    "read_idx",
    "load_mnist_idx",
    "idx_file_names",
    "MNIST_KINDS",
    "FASHION_MNIST_CLASSES",
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
]

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
MNIST_KINDS = ("mnist", "fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# IDX type code -> numpy big-endian dtype.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_PREFIXES = {"train": "train", "test": "t10k"}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file name says
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"path: {path} looks gzip-compressed but does not decompress ({err})") from err
    return raw


def read_idx(path: str | Path) -> tuple[np.ndarray, int]:
    """Read one IDX file (plain or gzip-compressed) into a NumPy array.

    Args:
        path: the file.

    Returns:
        ``(array, magic)``: the values with the file's shape and dtype (native byte order), and the magic
        number (e.g. 2051 for MNIST images, 2049 for labels).

    Raises:
        FileNotFoundError: no such file.
        ValueError: bad magic number, unknown type code, or a size that does not match the header.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no IDX file at {path}")
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"path: {path} is too short to be an IDX file ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    zero, type_code, ndim = int.from_bytes(data[:2], "big"), data[2], data[3]
    if zero != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise ValueError(
            f"path: {path} is not an IDX file: magic number {magic:#010x} should be 0x0000TTDD with a type "
            f"code TT in {{{', '.join(f'{c:#04x}' for c in _IDX_TYPES)}}} and DD >= 1 dimensions"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"path: {path} ends inside its IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"path: {path} holds {len(data) - header} bytes of values, but its header {list(shape)} of "
            f"{dtype.name} needs {expected}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("=")), magic


def idx_file_names(split: str) -> tuple[str, str]:
    """The standard (images, labels) file names of a split: ``train-…`` for "train", ``t10k-…`` for "test"."""
    check_choice("split", split, tuple(_PREFIXES))
    prefix = _PREFIXES[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find(directories: list[Path], name: str) -> Path | None:
    dotted = name.replace("-idx", ".idx")  # some copies are named train-images.idx3-ubyte
    for directory in directories:
        for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
            path = directory / candidate
            if path.is_file():
                return path
    return None


def load_mnist_idx(
    directory: str | Path, split: str = "train", kind: str = "mnist", *, flatten: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load MNIST or Fashion-MNIST from the standard IDX files in a directory, scaled to [0, 1].

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (split "train") or
    ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte`` (split "test"), optionally ``.gz``, in
    ``directory``, then ``directory/raw``, ``directory/<kind>``, and torchvision's layout
    ``directory/MNIST/raw`` or ``directory/FashionMNIST/raw``. Both data sets use the same file names;
    ``kind`` only picks the sub-folders. Class names of Fashion-MNIST: :data:`FASHION_MNIST_CLASSES`.

    Args:
        directory: folder holding the files.
        split: "train" (60,000 images in the full sets) or "test" (10,000).
        kind: "mnist" or "fashion-mnist".
        flatten: return ``[n, H*W]`` (784) if True, ``[n, 1, H, W]`` if False.

    Returns:
        ``(X, y)``: float32 images in [0, 1] and long labels ``[n]`` in 0..9.

    Raises:
        FileNotFoundError: the directory or a file is missing (the message lists the expected names).
        ValueError: wrong magic numbers, inconsistent sizes, or labels outside 0..9.
    """
    check_choice("split", split, tuple(_PREFIXES))
    check_choice("kind", kind, MNIST_KINDS)
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"directory: {root} does not exist or is not a directory")
    searched = [root, root / "raw", root / kind, root / _TORCHVISION_FOLDERS[kind] / "raw"]
    names = idx_file_names(split)
    paths = [_find(searched, name) for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if path is None]
    if missing:
        raise FileNotFoundError(
            f"directory: {kind} {split} files not found: expected {' and '.join(names)} (optionally .gz); "
            f"missing {', '.join(missing)}; looked in {', '.join(str(d) for d in searched)}"
        )
    image_path, label_path = paths
    assert image_path is not None and label_path is not None
    images, magic = read_idx(image_path)
    if magic != IMAGES_MAGIC:
        raise ValueError(f"{image_path}: magic number {magic} is not that of IDX images ({IMAGES_MAGIC})")
    labels, magic = read_idx(label_path)
    if magic != LABELS_MAGIC:
        raise ValueError(f"{label_path}: magic number {magic} is not that of IDX labels ({LABELS_MAGIC})")
    if len(images) != len(labels):
        raise ValueError(f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels")
    if labels.size and int(labels.max()) > 9:
        raise ValueError(f"{label_path}: labels must be in 0..9, found {int(labels.max())}")
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    x = x.reshape(len(x), -1) if flatten else x.unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))
