import pickle

import numpy as np
import pytest
import torch

from neuroplastic.data import CIFAR10_CLASSES, load_cifar10


def write_batch(path, n, seed, str_keys=False):
    """A CIFAR-10 python batch: dict with uint8 data [n, 3072] (R, G, B planes) and a list of labels."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).tolist()
    keys = ("data", "labels") if str_keys else (b"data", b"labels")
    with open(path, "wb") as f:
        pickle.dump({keys[0]: data, keys[1]: labels, b"batch_label": b"tiny"}, f, protocol=2)
    return data, labels


def write_cifar(directory):
    directory.mkdir(parents=True, exist_ok=True)
    train = [write_batch(directory / f"data_batch_{i}", 2, seed=i) for i in range(1, 6)]
    test = write_batch(directory / "test_batch", 3, seed=9, str_keys=True)
    return train, test


def test_round_trip_keeps_order_and_channel_layout(tmp_path):
    train, test = write_cifar(tmp_path)
    x, y = load_cifar10(tmp_path, "train")
    assert x.shape == (10, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.long
    data = np.concatenate([d for d, _ in train])
    assert y.tolist() == sum((lab for _, lab in train), [])
    # Image 3, green plane = bytes 1024..2047 of its row, row-major.
    assert torch.allclose(x[3, 1], torch.from_numpy(data[3, 1024:2048].reshape(32, 32) / 255.0).float())
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    xt, yt = load_cifar10(tmp_path, "test")
    assert xt.shape == (3, 3, 32, 32) and yt.tolist() == test[1]
    assert len(CIFAR10_CLASSES) == 10


def test_archive_folder_layout(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    x, _ = load_cifar10(tmp_path, "test")
    assert x.shape == (3, 3, 32, 32)


def test_missing_files_list_expected_names(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_1, .*data_batch_5; missing data_batch_4"):
        load_cifar10(tmp_path, "train")


def test_refuses_foreign_pickles_and_bad_content(tmp_path):
    write_cifar(tmp_path)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((1, 3072), np.uint8), "labels": [0], "x": print}, f)
    with pytest.raises(ValueError, match="refusing"):
        load_cifar10(tmp_path, "test")
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({"data": np.zeros((1, 100), np.uint8), "labels": [0]}, f)
    with pytest.raises(ValueError, match="3072"):
        load_cifar10(tmp_path, "test")


def test_bad_split_names_the_argument(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_cifar10(tmp_path, "valid")
