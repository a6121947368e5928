"""A non-plastic tanh RNN laid out as :class:`~neuroplastic.plasticity.PlasticRNNCell` without the plastic part.

The control network of Miconi, Clune & Stanley 2018 (Differentiable plasticity) and Miconi et al. 2019
(Backpropamine)::

    h_t = tanh(x_t @ W_in + b + h_{t-1} @ W)      (with an input layer)
    h_t = tanh(x_t + h_{t-1} @ W)                 (input_projection=False: x_t has N features)

Parameters are named and initialised as the plastic cell's fixed ones (``input_to_hidden`` an
``nn.Linear``, created first; ``weight`` ``[N, N]`` uniform in ``±1/sqrt(N)``), so that a plastic network
with ``alpha = 0`` and this one are the same function family from the same initial distribution.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from neuroplastic._checks import (
    StateField,
    check_bool,
    check_int,
    check_nonempty_sequence,
    check_state,
    check_tensor,
)

__all__ = ["RNNState", "RNNCell", "RNN"]


class RNNState(NamedTuple):
    """State of :class:`RNNCell`: the hidden activity ``[B, N]``."""

    hidden: Tensor

    def detach(self) -> RNNState:
        return RNNState(self.hidden.detach())


class RNNCell(nn.Module):
    """One step of a non-plastic tanh RNN: ``h_t = tanh(x_t @ W_in + b + h_{t-1} @ W)``.

    Args:
        input_size, hidden_size: I and N.
        input_projection: learn ``W_in`` and ``b``; with ``False`` the input is added as it is (it must
            then have N features) and ``W`` is the only parameter.

    Shapes: ``x [B, I]``, state ``RNNState(hidden [B, N])`` -> ``(h [B, N], RNNState(h))``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, input_projection: bool = True) -> None:
        super().__init__()
        self.input_size = check_int("input_size", input_size)
        self.hidden_size = check_int("hidden_size", hidden_size)
        check_bool("input_projection", input_projection)
        if not input_projection and input_size != hidden_size:
            raise ValueError(f"without an input projection input_size must equal hidden_size; got {input_size} "
                             f"and {hidden_size}")
        self.input_to_hidden = nn.Linear(input_size, hidden_size) if input_projection else None
        self.weight = nn.Parameter(torch.empty(hidden_size, hidden_size))
        nn.init.uniform_(self.weight, -1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size))

    def initial_state(self, batch_size: int, *, device: torch.device | str | None = None) -> RNNState:
        """Zero hidden activity ``[B, N]``."""
        return RNNState(torch.zeros(batch_size, self.hidden_size, device=device))

    def drive(self, x: Tensor) -> Tensor:
        """The input's contribution ``x @ W_in + b`` (or ``x`` itself without an input projection)."""
        return x if self.input_to_hidden is None else self.input_to_hidden(x)

    def step(self, drive: Tensor, state: RNNState) -> tuple[Tensor, RNNState]:
        """One step from a precomputed input drive ``[B, N]``."""
        hidden = torch.tanh(drive + state.hidden @ self.weight)
        return hidden, RNNState(hidden)

    def forward(self, x: Tensor, state: RNNState | None = None) -> tuple[Tensor, RNNState]:
        """``x [B, I]`` -> ``(h [B, N], state)``; ``state=None`` starts from zero activity."""
        check_tensor("x", x, ("B", self.input_size), like=self.weight)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device).hidden.to(x.dtype)
            state = RNNState(state)
        else:
            self.check_state(state, x.shape[0])
        return self.step(self.drive(x), state)

    def check_state(self, state: object, batch: int) -> None:
        """A ``ValueError``/``TypeError`` unless ``state`` is an :class:`RNNState` with ``hidden [batch, N]`` on
        the parameters' device and dtype."""
        check_state(state, [("", RNNState)], [StateField("hidden", (batch, self.hidden_size), "batch of the input, "
                    "hidden", "")], batch=batch, like=self.weight)


class RNN(nn.Module):
    """A non-plastic tanh RNN over sequences: ``out, state = rnn(x, state)``, step by step.

    The counterpart of :class:`~neuroplastic.plasticity.PlasticRNN`; see :class:`RNNCell` for the equations
    and arguments. Shapes: ``x [B, T, I]`` -> ``(out [B, T, N], RNNState(h_T [B, N]))``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, input_projection: bool = True) -> None:
        super().__init__()
        self.cell = RNNCell(input_size, hidden_size, input_projection=input_projection)
        self.hidden_size = hidden_size

    def forward(self, inputs: Tensor, state: RNNState | None = None) -> tuple[Tensor, RNNState]:
        """``inputs [B, T, I]`` -> ``(outputs [B, T, N], final state)``; ``state=None`` starts at zero."""
        check_tensor("inputs", inputs, ("B", "T", self.cell.input_size), like=self.cell.weight)
        check_nonempty_sequence("inputs", inputs)
        if state is None:
            state = RNNState(inputs.new_zeros(inputs.shape[0], self.hidden_size))
        else:
            self.cell.check_state(state, inputs.shape[0])
        outputs = []
        for t in range(inputs.shape[1]):
            hidden, state = self.cell.step(self.cell.drive(inputs[:, t]), state)  # checked once, above
            outputs.append(hidden)
        return torch.stack(outputs, dim=1), state
