"""BadNets poisoning: the trigger patch, the poisoned subset and the attack-success test set."""

import pytest
import torch

from neuroplastic.data import augment_images
from neuroplastic.data.backdoor import clean_sample_indices, poison_dataset, stamp_trigger, triggered_test_set


def test_square_trigger_sets_exactly_the_corner_patch():
    images = torch.rand(2, 1, 28, 28) * 0.5
    stamped = stamp_trigger(images, size=3, margin=1)
    expected = images.clone()
    expected[..., 24:27, 24:27] = 1.0
    assert torch.equal(stamped, expected)
    assert torch.all(images < 1.0)  # the input is not changed
    top_left = stamp_trigger(torch.zeros(1, 6, 6), size=2, margin=0, corner="top-left", value=0.7)
    assert top_left[0, :2, :2].eq(0.7).all() and top_left.sum().item() == pytest.approx(4 * 0.7)


def test_grid_trigger_is_a_checkerboard():
    stamped = stamp_trigger(torch.zeros(1, 1, 8, 8), size=3, margin=0, pattern="grid")
    patch = stamped[0, 0, 5:8, 5:8]
    assert torch.equal(patch, torch.tensor([[1.0, 0, 1], [0, 1, 0], [1, 0, 1]]))
    assert stamped.sum() == 5


def test_poison_dataset_relabels_a_seeded_fraction():
    images = torch.zeros(50, 1, 10, 10)
    labels = torch.arange(50) % 5
    data = poison_dataset(images, labels, fraction=0.2, target=3, generator=torch.Generator().manual_seed(0),
                          size=2, margin=0)
    assert data.poisoned.numel() == 10 and torch.equal(data.poisoned, data.poisoned.sort().values)
    mask = torch.zeros(50, dtype=torch.bool)
    mask[data.poisoned] = True
    assert torch.all(data.labels[mask] == 3) and torch.equal(data.labels[~mask], labels[~mask])
    assert torch.all(data.images[mask][..., 8:10, 8:10] == 1) and torch.all(data.images[~mask] == 0)
    again = poison_dataset(images, labels, fraction=0.2, target=3, generator=torch.Generator().manual_seed(0),
                           size=2, margin=0)
    assert torch.equal(again.poisoned, data.poisoned)
    assert torch.all(images == 0) and torch.equal(labels, torch.arange(50) % 5)


def test_triggered_test_set_drops_the_target_class():
    images = torch.zeros(6, 1, 5, 5)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    x, y = triggered_test_set(images, labels, target=0, size=1, margin=0)
    assert y.tolist() == [1, 2, 1, 2] and torch.all(x[..., 4, 4] == 1) and x.sum() == 4


def test_bad_arguments_raise():
    images, labels = torch.zeros(4, 1, 5, 5), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="does not fit"):
        stamp_trigger(images, size=5, margin=1)
    with pytest.raises(ValueError, match="corner"):
        stamp_trigger(images, corner="middle")
    with pytest.raises(ValueError, match="fraction"):
        poison_dataset(images, labels, fraction=1.5, target=0, generator=torch.Generator())
    with pytest.raises(TypeError, match="generator"):
        poison_dataset(images, labels, fraction=0.5, target=0, generator=0)
    with pytest.raises(ValueError, match="one label per image"):
        poison_dataset(images, labels[:2], fraction=0.5, target=0, generator=torch.Generator())


def test_clean_sample_indices_are_clean_and_seeded():
    poisoned = torch.arange(0, 100, 2)
    index = clean_sample_indices(poisoned, 100, 10, torch.Generator().manual_seed(0))
    assert index.numel() == 10 and torch.all(index % 2 == 1) and index.unique().numel() == 10
    assert torch.equal(index, index.sort().values)
    assert torch.equal(index, clean_sample_indices(poisoned, 100, 10, torch.Generator().manual_seed(0)))
    assert clean_sample_indices(poisoned, 100, 50, torch.Generator()).tolist() == list(range(1, 100, 2))  # all
    with pytest.raises(ValueError, match="only 50"):
        clean_sample_indices(poisoned, 100, 60, torch.Generator())


@pytest.mark.parametrize(("call", "message"), [
    (lambda: clean_sample_indices(torch.tensor([1, 2]), 10, -1, torch.Generator()), "count"),  # was accepted
    (lambda: clean_sample_indices(torch.zeros(10, dtype=torch.bool), 5, 2, torch.Generator()),
     r"bool mask must have shape \[5\]"),  # was an IndexError from torch
    (lambda: clean_sample_indices(torch.tensor([3, 12]), 10, 2, torch.Generator()), r"indices in \[0, 10\)"),
    (lambda: stamp_trigger(torch.zeros(2, 1, 8, 8), value=float("nan")), "value"),  # was a NaN patch
    (lambda: augment_images(torch.zeros(2, 1, 8, 8), torch.Generator(), flip=1), "flip must be a bool"),
])
def test_bad_arguments_are_refused_by_the_library(library_error, call, message):
    with library_error() as info:
        call()
    assert info.match(message)


def test_clean_sample_indices_takes_indices_or_a_mask():
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[1, 4]] = True
    by_index = clean_sample_indices(torch.tensor([1, 4]), 10, 8, gen())
    assert by_index.tolist() == [0, 2, 3, 5, 6, 7, 8, 9]
    assert torch.equal(clean_sample_indices(mask, 10, 5, gen()), clean_sample_indices(torch.tensor([1, 4]), 10, 5,
                                                                                     gen()))
