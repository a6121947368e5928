import gzip
import struct

import numpy as np
import pytest
import torch

from neuroplastic.data import load_mnist_idx, read_idx


def write_idx(path, array, type_code=0x08, compress=False):
    """Write an IDX file by hand: magic 0x0000TTDD, big-endian sizes, big-endian values."""
    dtype = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[type_code]
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=dtype).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def write_split(directory, split, n, seed=0, compress=False):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    suffix = ".gz" if compress else ""
    directory.mkdir(parents=True, exist_ok=True)
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, compress):
    images, labels = write_split(tmp_path, "train", 5, compress=compress)
    x, y = load_mnist_idx(tmp_path, "train")
    assert x.shape == (5, 784) and x.dtype == torch.float32
    assert torch.allclose(x, torch.from_numpy(images.reshape(5, -1) / 255.0).float())
    assert y.dtype == torch.long and y.tolist() == labels.tolist()
    x4, _ = load_mnist_idx(tmp_path, "train", flatten=False)
    assert x4.shape == (5, 1, 28, 28) and torch.equal(x4.reshape(5, -1), x)
    assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_test_split_and_torchvision_layout(tmp_path):
    images, labels = write_split(tmp_path / "FashionMNIST" / "raw", "test", 3, seed=1)
    x, y = load_mnist_idx(tmp_path, "test", kind="fashion-mnist", flatten=False)
    assert torch.equal(x[:, 0], torch.from_numpy(images).float() / 255.0)
    assert y.tolist() == labels.tolist()


def test_missing_files_list_expected_names(tmp_path):
    write_split(tmp_path, "train", 2)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte"):
        load_mnist_idx(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="directory"):
        load_mnist_idx(tmp_path / "nowhere")


def test_wrong_magic_numbers(tmp_path):
    write_split(tmp_path, "train", 2)
    labels = tmp_path / "train-labels-idx1-ubyte"
    images = tmp_path / "train-images-idx3-ubyte"
    swapped = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(swapped)
    with pytest.raises(ValueError, match="2051"):
        load_mnist_idx(tmp_path)
    images.write_bytes(b"\x12\x34\x08\x03" + swapped[4:])
    with pytest.raises(ValueError, match="not an IDX file"):
        load_mnist_idx(tmp_path)


def test_inconsistent_files(tmp_path):
    write_split(tmp_path, "train", 3)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))
    with pytest.raises(ValueError, match="3 images but"):
        load_mnist_idx(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([1, 2, 11], dtype=np.uint8))
    with pytest.raises(ValueError, match="0..9"):
        load_mnist_idx(tmp_path)
    truncated = tmp_path / "train-images-idx3-ubyte"
    truncated.write_bytes(truncated.read_bytes()[:-5])
    with pytest.raises(ValueError, match="header"):
        load_mnist_idx(tmp_path)


def test_read_idx_other_types(tmp_path):
    values = np.array([[1, -2, 300], [4, 5, -6]], dtype=np.int32)
    write_idx(tmp_path / "ints", values, type_code=0x0C)
    array, magic = read_idx(tmp_path / "ints")
    assert magic == 0x0C02 and array.dtype == np.int32 and np.array_equal(array, values)
    floats = np.array([0.5, -1.25], dtype=np.float32)
    write_idx(tmp_path / "floats", floats, type_code=0x0D, compress=True)
    array, magic = read_idx(tmp_path / "floats")
    assert magic == 0x0D01 and np.array_equal(array, floats)


@pytest.mark.parametrize(("kwargs", "name"), [({"split": "val"}, "split"), ({"kind": "emnist"}, "kind")])
def test_bad_arguments_name_the_argument(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        load_mnist_idx(tmp_path, **kwargs)
