"""Experience buffers: a uniform sample of the input states a genome saw, for safe mutations to measure on.

Lehman, Chen, Clune & Stanley 2018 ("Safe mutations for deep and recurrent neural networks through output
gradients") compute a parent's output sensitivity and output divergence on a buffer of up to 100 input states
it experienced during its evaluation. :func:`reservoir_update` keeps such a buffer as a uniform sample of a
stream of states (reservoir sampling, Vitter's algorithm R): after ``n`` states have been seen, each of them is
in the buffer with probability ``min(1, capacity / n)``, whatever the order and the batch sizes they came in.
The sampling itself lives in :mod:`neuroplastic.data.reservoir` (shared with the continual package's replay
buffer); it is re-exported here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import check_int
from ..data.reservoir import reservoir_update

__all__ = ["ExperienceBuffer", "reservoir_update"]


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
