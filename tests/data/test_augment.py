"""Seeded image augmentation: random shifts with zero fill and left-right flips."""

import pytest
import torch

from neuroplastic.data import augment_images, random_flip, random_shift


def test_random_shift_moves_images_with_zero_fill():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    generator = torch.Generator().manual_seed(0)
    shifted = random_shift(image.repeat(50, 1, 1, 1), generator, 2)
    assert shifted.shape == (50, 1, 5, 5) and torch.all(shifted.sum(dim=(1, 2, 3)) == 1)  # the pixel stays inside
    positions = {tuple(torch.nonzero(s[0]).flatten().tolist()) for s in shifted}
    assert len(positions) > 5 and all(0 <= r <= 4 and 0 <= c <= 4 for r, c in positions)
    edge = torch.zeros(1, 1, 3, 3)
    edge[0, 0, 0, 0] = 1.0
    assert torch.equal(random_shift(edge, generator, 0), edge)
    lost = random_shift(edge.repeat(200, 1, 1, 1), generator, 1).sum(dim=(1, 2, 3))
    assert set(lost.tolist()) == {0.0, 1.0}  # shifted out of the frame, or not


def test_random_flip_mirrors_about_half_the_images_and_draws_nothing_when_disabled():
    images = torch.arange(300 * 2 * 3 * 4, dtype=torch.float32).reshape(300, 2, 3, 4)
    flipped = random_flip(images, torch.Generator().manual_seed(5))
    expected = torch.rand(300, generator=torch.Generator().manual_seed(5)) < 0.5  # the same draws
    for image, out, mirrored in zip(images, flipped, expected, strict=True):
        assert torch.equal(out, image.flip(-1) if mirrored else image)
    assert 120 < int(expected.sum()) < 180
    # shift 0 and no flip: the images unchanged, the generator untouched (seeded runs keep their numbers)
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    assert torch.equal(augment_images(images, generator, shift=0), images)
    assert torch.equal(generator.get_state(), state)
    both = augment_images(images, torch.Generator().manual_seed(3), shift=1, flip=True)
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(both, random_flip(random_shift(images, generator, 1), generator))



def test_random_shift_by_k_moves_every_pixel_by_k_with_zero_fill():
    images = torch.arange(2 * 2 * 5 * 6, dtype=torch.float32).reshape(2, 2, 5, 6) + 1  # no zero pixel
    max_shift = 2
    shifted = random_shift(images, torch.Generator().manual_seed(7), max_shift)
    draws = torch.Generator().manual_seed(7)  # the same draws: dy for every image, then dx
    dy = torch.randint(0, 2 * max_shift + 1, (2,), generator=draws) - max_shift
    dx = torch.randint(0, 2 * max_shift + 1, (2,), generator=draws) - max_shift
    assert dy.tolist() == [-2, 0] and dx.tolist() == [-1, -1]  # seed 7: both images move, one in both axes
    for b in range(2):
        expected = torch.zeros(2, 5, 6)
        for r in range(5):
            for c in range(6):
                source_r, source_c = r + int(dy[b]), c + int(dx[b])  # out[r, c] = in[r + dy, c + dx]
                if 0 <= source_r < 5 and 0 <= source_c < 6:
                    expected[:, r, c] = images[b, :, source_r, source_c]
        assert torch.equal(shifted[b], expected)  # every channel moves alike; zero where nothing moves in
    assert shifted.is_contiguous() and shifted.shape == images.shape


def test_random_shift_rejects_a_negative_shift():
    with pytest.raises(ValueError, match="max_shift"):
        random_shift(torch.zeros(1, 1, 3, 3), torch.Generator(), -1)
