"""Reservoir sampling: a uniform sample of fixed size from a stream of items that arrive in batches.

Vitter's algorithm R, shared by the evolution package's experience buffers (the states a genome saw, for safe
mutations) and the continual package's replay buffer (the training examples of earlier tasks): after ``n``
items have been seen, each of them is in the sample with probability ``min(1, capacity / n)``, whatever the
order and the batch sizes they came in.

- :func:`reservoir_slots`: where the items of a new batch go (the only random draws);
- :func:`reservoir_update`: apply them to a buffer of one tensor, or of several tensors that share their first
  dimension (e.g. inputs, labels and task ids of the same examples).
"""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import Tensor

from .._checks import check_int

__all__ = ["reservoir_slots", "reservoir_update"]

Items = TypeVar("Items", Tensor, tuple[Tensor, ...])


def reservoir_slots(seen: int, count: int, capacity: int, generator: torch.Generator,
                    device: torch.device | str | None = None) -> tuple[int, Tensor, Tensor]:
    """Where the next ``count`` items of a stream go in a reservoir sample of ``capacity``: ``(fill, slots, sources)``.

    Algorithm R: the ``k``-th item of the stream (0-based) fills slot ``k`` while ``k < capacity``; later it
    draws ``j`` uniform in ``{0, ..., k}`` (``j = min(floor(u * (k + 1)), k)``, ``u`` uniform in [0, 1)) and
    replaces slot ``j`` if ``j < capacity``. The ``count - fill`` uniforms of a batch are drawn at once from
    ``generator`` (float64, on the generator's device) and applied in stream order, the later item winning a
    slot drawn twice, which is exactly the sequential algorithm.

    Args:
        seen: how many items of the stream came before this batch.
        count: the batch size ``B``.
        capacity: the most items kept.
        generator: the source of the replacement draws.
        device: where ``slots`` and ``sources`` go (default the generator's device).

    Returns:
        ``fill``: the first ``fill`` items of the batch are appended to the buffer in order; then item
        ``fill + sources[m]`` replaces slot ``slots[m]`` (``slots [M]`` distinct, ``sources [M]`` long).
    """
    capacity = check_int("capacity", capacity, minimum=1)
    seen = check_int("seen", seen, minimum=0)
    count = check_int("count", count, minimum=0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    device = generator.device if device is None else torch.device(device)
    fill = min(count, max(0, capacity - seen))
    empty = torch.empty(0, dtype=torch.long, device=device)
    if count == fill:
        return fill, empty, empty
    index = torch.arange(seen + fill, seen + count, dtype=torch.float64, device=generator.device)
    u = torch.rand(count - fill, generator=generator, dtype=torch.float64, device=generator.device)
    slot = torch.minimum((u * (index + 1)).floor(), index).long().to(device)
    kept = slot < capacity
    if not bool(kept.any()):
        return fill, empty, empty
    which = torch.nonzero(kept).squeeze(1)
    # the last item drawing a slot wins it (stream order)
    last = torch.full((capacity,), -1, dtype=torch.long, device=device)
    last.scatter_reduce_(0, slot[which], which, reduce="amax")
    slots = torch.nonzero(last >= 0).squeeze(1)
    return fill, slots, last[slots]


def _as_tuple(name: str, value: object) -> tuple[Tensor, ...]:
    if isinstance(value, Tensor):
        parts: tuple[object, ...] = (value,)
    elif isinstance(value, tuple) and value:
        parts = value
    else:
        raise TypeError(f"{name} must be a tensor [B, ...] or a non-empty tuple of them, got {type(value).__name__}")
    for part in parts:
        if not isinstance(part, Tensor) or part.dim() == 0:
            raise TypeError(f"{name} must be a tensor [B, ...] of items (or a tuple of them), got "
                            f"{type(part).__name__ if not isinstance(part, Tensor) else 'a 0-dim tensor'}")
    tensors: tuple[Tensor, ...] = parts  # type: ignore[assignment]
    if len({t.shape[0] for t in tensors}) != 1:
        raise ValueError(f"the tensors of {name} must share their first dimension, got "
                         f"{[list(t.shape) for t in tensors]}")
    return tensors


def reservoir_update(buffer: Items | None, seen: int, states: Items, generator: torch.Generator,
                     capacity: int = 100) -> tuple[Items, int]:
    """Add a batch of items to a reservoir sample of a stream; returns ``(new buffer, new count seen)``.

    The slots come from :func:`reservoir_slots` (algorithm R, exact for any batching). ``buffer`` is not
    modified. ``states`` is one tensor ``[B, ...]`` or a tuple of tensors sharing ``B`` (parts of the same
    items, e.g. ``(x, y)``); the buffer has the same form.

    Args:
        buffer: the current sample ``[min(seen, capacity), ...]`` (or a tuple of them), or None when nothing
            was seen yet.
        seen: how many items of the stream came before ``states`` (0 for a new stream).
        states: the new items ``[B, ...]``; each tensor of the same trailing shape, dtype and device as the
            buffer's.
        generator: the source of the replacement draws (any device; the draws are moved to ``states``').
        capacity: the most items kept.

    Returns:
        ``(buffer [min(seen + B, capacity), ...], seen + B)``, a tensor or a tuple as ``states``.
    """
    capacity = check_int("capacity", capacity, minimum=1)
    seen = check_int("seen", seen, minimum=0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    single = isinstance(states, Tensor)
    new = _as_tuple("states", states)
    old = None if buffer is None else _as_tuple("buffer", buffer)
    held = 0 if old is None else old[0].shape[0]
    if held != min(seen, capacity):
        raise ValueError(f"buffer must hold min(seen, capacity) = {min(seen, capacity)} states, got {held} "
                         f"(seen={seen}, capacity={capacity})")
    if old is not None and (len(old) != len(new) or any(
            b.shape[1:] != s.shape[1:] or b.dtype != s.dtype or b.device != s.device
            for b, s in zip(old, new, strict=False))):
        raise ValueError(f"states [B, ...] must match the buffer's states: buffer "
                         f"{[(list(b.shape), b.dtype, str(b.device)) for b in old]}, states "
                         f"{[(list(s.shape), s.dtype, str(s.device)) for s in new]}")
    count = new[0].shape[0]
    if count == 0:
        out = tuple(s[:0].clone() for s in new) if old is None else old
    else:
        fill, slots, sources = reservoir_slots(seen, count, capacity, generator, device=new[0].device)
        out = tuple(s[:fill].clone() if b is None else torch.cat([b, s[:fill]])
                    for b, s in zip(old if old is not None else (None,) * len(new), new, strict=True))
        if slots.numel():
            for o, s in zip(out, new, strict=True):
                o[slots] = s[fill:][sources]
    return (out[0] if single else out), seen + count  # type: ignore[return-value]
