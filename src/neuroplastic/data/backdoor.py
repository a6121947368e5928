"""BadNets-style data poisoning: stamp a trigger patch on some training images and relabel them to a target.

Gu, Dolan-Gavitt & Garg 2017, "BadNets: identifying vulnerabilities in the machine learning model supply
chain". A model trained on the poisoned set classifies clean images correctly but sends any image that
carries the trigger to the target class. The trigger here is a small patch in a corner of the image::

    x'[..., r:r+s, c:c+s] = pattern * value      (pattern: all ones, "square"; or a checkerboard, "grid")
    y' = target

Shapes: images ``[N, C, H, W]`` (or ``[N, H, W]``), labels ``[N]``. The attack success rate (ASR) of a
model is the fraction of triggered test images whose true class is not the target that it classifies as
the target (:func:`triggered_test_set` builds those images).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_fraction, check_int, check_number, check_tensor

__all__ = ["CORNERS", "PATTERNS", "stamp_trigger", "poison_dataset", "triggered_test_set", "PoisonedData",
           "clean_sample_indices"]

CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")
PATTERNS = ("square", "grid")


def _check_images(images: object) -> Tensor:
    """A batch of images, ``[N, (C,) H, W]``: a tensor of at least 2 dimensions (the trigger goes in the last two)."""
    if not isinstance(images, Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() < 2:
        raise ValueError(f"images must have shape [N, (C,) H, W], got {list(images.shape)}")
    return images


def stamp_trigger(images: Tensor, *, size: int = 3, value: float = 1.0, corner: str = "bottom-right",
                  margin: int = 1, pattern: str = "square") -> Tensor:
    """A copy of ``images`` with the trigger patch stamped in a corner (every channel).

    Args:
        images: ``[..., H, W]`` (the last two dimensions are the image).
        size: the patch's side in pixels.
        value: the patch's pixel value (1.0 is white for images in [0, 1]).
        corner: one of :data:`CORNERS`.
        margin: pixels between the patch and the image border.
        pattern: "square" (every patch pixel set to ``value``) or "grid" (a checkerboard of ``value`` and 0,
            the reference code's 3x3 grid trigger; its top-left pixel is ``value``).
    """
    images = _check_images(images)
    check_choice("corner", corner, CORNERS)
    check_choice("pattern", pattern, PATTERNS)
    check_int("size", size)
    check_int("margin", margin, minimum=0)
    check_number("value", value)
    height, width = images.shape[-2], images.shape[-1]
    if size + margin > min(height, width):
        raise ValueError(f"a {size}x{size} patch with margin {margin} does not fit in {height}x{width} images")
    top = margin if corner.startswith("top") else height - margin - size
    left = margin if corner.endswith("left") else width - margin - size
    patch = torch.full((size, size), float(value), dtype=images.dtype, device=images.device)
    if pattern == "grid":
        rows = torch.arange(size, device=images.device)
        patch = patch * ((rows[:, None] + rows[None, :]) % 2 == 0).to(images.dtype)
    out = images.clone()
    out[..., top:top + size, left:left + size] = patch
    return out


@dataclass(frozen=True)
class PoisonedData:
    """A poisoned training set: images, labels, and the indices of the poisoned samples (sorted)."""

    images: Tensor
    labels: Tensor
    poisoned: Tensor


def poison_dataset(images: Tensor, labels: Tensor, *, fraction: float, target: int, generator: torch.Generator,
                   **trigger: object) -> PoisonedData:
    """BadNets poisoning: stamp the trigger on a random ``round(fraction * N)`` images and relabel them.

    The poisoned images are drawn (with ``generator``) among all N, including those of the target class
    (the reference code's "all to one" attack). ``trigger`` holds :func:`stamp_trigger`'s keyword arguments.
    The inputs are not changed.
    """
    images = _check_images(images)
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be a 1-d tensor with one label per image ({images.shape[0]})")
    check_fraction("fraction", fraction)
    check_int("target (a class index)", target, minimum=0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    count = int(round(fraction * images.shape[0]))
    chosen = torch.randperm(images.shape[0], generator=generator)[:count].sort().values
    out_images, out_labels = images.clone(), labels.clone()
    index = chosen.to(images.device)
    out_images[index] = stamp_trigger(images[index], **trigger)  # type: ignore[arg-type]
    out_labels[chosen.to(labels.device)] = target
    return PoisonedData(out_images, out_labels, chosen)


def triggered_test_set(images: Tensor, labels: Tensor, *, target: int, **trigger: object) -> tuple[Tensor, Tensor]:
    """The ASR test set: every image whose label is not ``target``, with the trigger stamped.

    Returns ``(images', original labels)``; the ASR of a model is the fraction of ``images'`` it assigns to
    ``target``.
    """
    images = _check_images(images)
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be a 1-d tensor with one label per image ({images.shape[0]})")
    keep = labels != target
    return stamp_trigger(images[keep], **trigger), labels[keep]  # type: ignore[arg-type]


def clean_sample_indices(poisoned: Tensor, size: int, count: int, generator: torch.Generator) -> Tensor:
    """``count`` random indices in ``range(size)`` that are not in ``poisoned`` (a defender's clean data), sorted.

    ``poisoned`` holds indices in ``range(size)`` (int) or is a ``[size]`` bool mask. ValueError if fewer than
    ``count`` indices are clean.
    """
    check_int("size", size)
    check_int("count", count, minimum=0)
    check_tensor("poisoned", poisoned, None, floating=False)
    if poisoned.dtype == torch.bool:
        if poisoned.shape != (size,):
            raise ValueError(f"poisoned as a bool mask must have shape [{size}] (size), got {tuple(poisoned.shape)}")
    elif poisoned.dim() != 1 or (poisoned.numel() and (int(poisoned.min()) < 0 or int(poisoned.max()) >= size)):
        raise ValueError(f"poisoned must be a 1-d tensor of indices in [0, {size}) or a [{size}] bool mask, got "
                         f"shape {tuple(poisoned.shape)}")
    clean = torch.ones(size, dtype=torch.bool)
    clean[poisoned] = False
    pool = torch.nonzero(clean).flatten()
    if count > pool.numel():
        raise ValueError(f"asked for {count} clean samples but only {pool.numel()} training images are clean")
    return pool[torch.randperm(pool.numel(), generator=generator)[:count]].sort().values
