"""Experience buffers: a uniform sample of the input states a genome saw, for safe mutations to measure on.

Lehman, Chen, Clune & Stanley 2018 ("Safe mutations for deep and recurrent neural networks through output
gradients") compute a parent's output sensitivity and output divergence on a buffer of up to 100 input states
it experienced during its evaluation. :func:`reservoir_update` keeps such a buffer as a uniform sample of a
stream of states (reservoir sampling, Vitter's algorithm R): after ``n`` states have been seen, each of them is
in the buffer with probability ``min(1, capacity / n)``, whatever the order and the batch sizes they came in.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import check_int

__all__ = ["ExperienceBuffer", "reservoir_update"]


def reservoir_update(
    buffer: Tensor | None,
    seen: int,
    states: Tensor,
    generator: torch.Generator,
    capacity: int = 100,
) -> tuple[Tensor, int]:
    """Add a batch of states to a reservoir sample of a stream; returns ``(new buffer, new count seen)``.

    Algorithm R: the ``k``-th state of the stream (0-based) fills slot ``k`` while ``k < capacity``; later it
    draws ``j`` uniform in ``{0, ..., k}`` and replaces slot ``j`` if ``j < capacity``. The draws of a batch are
    made at once (``B`` uniforms from ``generator``) and applied in stream order, the later state winning a slot
    drawn twice, which is exactly the sequential algorithm. ``buffer`` is not modified.

    Args:
        buffer: the current sample ``[min(seen, capacity), ...]``, or None when nothing was seen yet.
        seen: how many states of the stream came before ``states`` (0 for a new stream).
        states: the new states ``[B, ...]`` (entry ``b`` is one state: an observation, or a whole sequence for
            a recurrent network); same trailing shape, dtype and device as ``buffer``.
        generator: the source of the replacement draws (any device; the draws are moved to ``states``').
        capacity: the most states kept (the paper's 100).

    Returns:
        ``(buffer [min(seen + B, capacity), ...], seen + B)``.
    """
    capacity = check_int("capacity", capacity, minimum=1)
    seen = check_int("seen", seen, minimum=0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if not isinstance(states, Tensor) or states.dim() == 0:
        raise TypeError(f"states must be a tensor [B, ...] of states, got "
                        f"{type(states).__name__ if not isinstance(states, Tensor) else 'a 0-dim tensor'}")
    held = 0 if buffer is None else buffer.shape[0]
    if held != min(seen, capacity):
        raise ValueError(f"buffer must hold min(seen, capacity) = {min(seen, capacity)} states, got {held} "
                         f"(seen={seen}, capacity={capacity})")
    if buffer is not None and (buffer.shape[1:] != states.shape[1:] or buffer.dtype != states.dtype
                               or buffer.device != states.device):
        raise ValueError(f"states [B, ...] must match the buffer's states: buffer {list(buffer.shape)} "
                         f"{buffer.dtype} on {buffer.device}, states {list(states.shape)} {states.dtype} on "
                         f"{states.device}")
    count = states.shape[0]
    if count == 0:
        return (states[:0].clone() if buffer is None else buffer), seen
    # fill the free slots in order
    free = max(0, capacity - seen)
    fill = states[:free]
    out = fill.clone() if buffer is None else torch.cat([buffer, fill])
    rest = states[free:]
    if rest.shape[0] == 0:
        return out, seen + count
    # replacement draws for the states of stream index k = seen + free, ..., seen + count - 1
    index = torch.arange(seen + free, seen + count, dtype=torch.float64, device=generator.device)
    u = torch.rand(rest.shape[0], generator=generator, dtype=torch.float64, device=generator.device)
    slot = torch.minimum((u * (index + 1)).floor(), index).long().to(states.device)
    kept = slot < capacity
    if bool(kept.any()):
        which = torch.nonzero(kept).squeeze(1)
        # the last state drawing a slot wins it (stream order)
        last = torch.full((capacity,), -1, dtype=torch.long, device=states.device)
        last.scatter_reduce_(0, slot[which], which, reduce="amax")
        slots = torch.nonzero(last >= 0).squeeze(1)
        out[slots] = rest[last[slots]]
    return out, seen + count


class ExperienceBuffer:
    """A reservoir sample of up to ``capacity`` states from a stream (:func:`reservoir_update`).

    ``add(states [B, ...], generator)`` during a genome's evaluation, then ``states`` (``[n, ...]``, ``n <=
    capacity``) is its experience for :class:`~neuroplastic.evolution.SafeMutation`. ``state_dict()`` holds the
    sample and the count seen (the generator is the caller's and is saved with the caller's state).

    Args:
        capacity: the most states kept (the paper's 100).
    """

    def __init__(self, capacity: int = 100) -> None:
        self.capacity = check_int("capacity", capacity, minimum=1)
        self._states: Tensor | None = None
        self.seen = 0

    def __len__(self) -> int:
        return 0 if self._states is None else self._states.shape[0]

    def __repr__(self) -> str:
        return f"ExperienceBuffer(capacity={self.capacity}, held={len(self)}, seen={self.seen})"

    @property
    def states(self) -> Tensor:
        """The sample ``[n, ...]`` (``n = min(seen, capacity)``); raises ``ValueError`` while it is empty."""
        if self._states is None:
            raise ValueError("the experience buffer is empty: add states before reading them")
        return self._states

    def add(self, states: Tensor, generator: torch.Generator) -> None:
        """Add a batch of states ``[B, ...]`` of the stream (the draws come from ``generator``)."""
        self._states, self.seen = reservoir_update(self._states, self.seen, states, generator, self.capacity)

    def clear(self) -> None:
        """Forget every state (a new genome's stream)."""
        self._states, self.seen = None, 0

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "seen": self.seen,
                "states": None if self._states is None else self._states.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        capacity = check_int("state['capacity']", state.get("capacity"), minimum=1)
        seen = check_int("state['seen']", state.get("seen"), minimum=0)
        states = state.get("states")
        held = states.shape[0] if isinstance(states, Tensor) and states.dim() > 0 else 0
        if (states is not None and not isinstance(states, Tensor)) or held != min(seen, capacity):
            raise ValueError(f"state['states'] must be None or a tensor of min(seen, capacity) = "
                             f"{min(seen, capacity)} states, got {held}")
        self.capacity, self.seen = capacity, seen
        self._states = None if states is None else states.clone()
