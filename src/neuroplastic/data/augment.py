"""Random image augmentation for training and for a defence's clean samples: shifts with zero fill and
left-right flips, drawn from an explicit ``torch.Generator`` so that seeded runs repeat exactly.

:func:`random_shift` is the small-image analogue of ``RandomCrop(size, padding=k)`` (a crop of the
zero-padded image is a shift by up to k pixels); :func:`random_flip` is ``RandomHorizontalFlip``.
Shapes: images ``[B, C, H, W]`` -> same.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from neuroplastic._checks import check_bool, check_int

__all__ = ["random_shift", "random_flip", "augment_images"]


def random_shift(images: Tensor, generator: torch.Generator, max_shift: int) -> Tensor:
    """Shift each image by a random (dy, dx) in [-max_shift, max_shift]^2, filling with zeros.

    ``out[b, :, r, c] = images[b, :, r + dy_b - max_shift, c + dx_b - max_shift]`` (0 outside the image),
    with ``dy_b, dx_b`` uniform in ``[0, 2 * max_shift]``. ``max_shift=0`` returns ``images`` itself and draws
    nothing. Shapes: ``[B, C, H, W]`` -> same.
    """
    check_int("max_shift", max_shift, minimum=0)
    if max_shift == 0:
        return images
    n, _, height, width = images.shape
    padded = F.pad(images, (max_shift, max_shift, max_shift, max_shift))
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(images.device)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(images.device)
    rows = dy[:, None] + torch.arange(height, device=images.device)[None, :]
    cols = dx[:, None] + torch.arange(width, device=images.device)[None, :]
    batch = torch.arange(n, device=images.device)[:, None, None]
    # padded[b, :, rows[b, r], cols[b, c]] -> [B, H, W, C]
    shifted = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return shifted.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def random_flip(images: Tensor, generator: torch.Generator) -> Tensor:
    """Mirror each image left-right with probability 1/2 (``RandomHorizontalFlip``).

    Draws one uniform number per image. Shapes: ``[B, C, H, W]`` -> same.
    """
    flip = (torch.rand(images.shape[0], generator=generator) < 0.5).to(images.device)
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def augment_images(images: Tensor, generator: torch.Generator, *, shift: int = 0, flip: bool = False) -> Tensor:
    """:func:`random_shift` by up to ``shift`` pixels, then :func:`random_flip` if ``flip``.

    Draws nothing from ``generator`` for a disabled step. Shapes: ``[B, C, H, W]`` -> same.
    """
    check_bool("flip", flip)
    images = random_shift(images, generator, shift)
    return random_flip(images, generator) if flip else images
