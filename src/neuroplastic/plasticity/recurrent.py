"""Plastic recurrent networks: an RNN and an LSTM whose recurrent weights carry Hebbian traces.

Miconi et al. 2018 (Differentiable plasticity) and 2019 (Backpropamine).

RNN:  ``h_t = tanh(x_t @ W_in + b + h_{t-1} @ (W + alpha * H_{t-1}))``, then
      ``H_t = update(H_{t-1}, pre=h_{t-1}, post=h_t, modulator reads h_t)``.
LSTM: plasticity on the hidden-to-cell-input weights only (the paper's language model):
      ``g_t = tanh(x_t @ W_xg + h_{t-1} @ (W_hg + alpha * H_{t-1}) + b_g)``, the other gates as in an
      LSTM, ``H_t = update(H_{t-1}, pre=h_{t-1}, post=g_t, modulator reads h_t)``.

Shapes: inputs ``[B, T, I]``, outputs ``[B, T, N]``, traces ``[B, N, N]``; state is explicit
(``out, state = rnn(x, state)``).

Backpropagation through the traces: ``backprop="autograd"`` keeps every step's ``[B, N, N]`` trace for
the backward pass (memory grows with T); ``backprop="checkpoint"`` keeps only the state at the start of
each chunk of ``chunk_size`` steps and recomputes the chunk during the backward pass (gradient
checkpointing): memory ``O((T / chunk + chunk) * B N^2)`` instead of ``O(T * B N^2)``, same gradients;
``backprop="fused"`` does the same in one autograd node with in-place trace updates and hand-written
backward passes for the ``[B, N, N]`` operations (:mod:`neuroplastic.plasticity.fused_scan`), the fastest.
``"auto"`` (the default) picks ``fused`` where the rule and modulation allow it, else ``checkpoint``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from neuroplastic._checks import check_choice, check_tensor
from neuroplastic.plasticity.fused_scan import fused_scan, supports_fused
from neuroplastic.plasticity.modulation import Modulator
from neuroplastic.plasticity.rules import PlasticityRule
from neuroplastic.plasticity.synapses import PlasticState, PlasticSynapses

__all__ = [
    "BACKPROP_MODES",
    "PlasticRNNState",
    "PlasticLSTMState",
    "PlasticRNNCell",
    "PlasticRNN",
    "PlasticLSTMCell",
    "PlasticLSTM",
]

BACKPROP_MODES = ("auto", "fused", "checkpoint", "autograd")
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu,
                                                       "sigmoid": torch.sigmoid}


class PlasticRNNState(NamedTuple):
    """State of a :class:`PlasticRNNCell`: hidden activity ``[B, N]`` and the plastic synapses' state."""

    hidden: Tensor
    plastic: PlasticState

    def detach(self) -> PlasticRNNState:
        return PlasticRNNState(self.hidden.detach(), self.plastic.detach())


class PlasticLSTMState(NamedTuple):
    """State of a :class:`PlasticLSTMCell`: hidden ``[B, N]``, cell ``[B, N]``, plastic synapses' state."""

    hidden: Tensor
    cell: Tensor
    plastic: PlasticState

    def detach(self) -> PlasticLSTMState:
        return PlasticLSTMState(self.hidden.detach(), self.cell.detach(), self.plastic.detach())


class _PlasticCellBase(nn.Module):
    """Shared set-up of the plastic cells: input projection, fixed recurrent weight, plastic synapses."""

    gate_count = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        rule: str | PlasticityRule | None,
        alpha: str,
        eta: str,
        modulation: str | Modulator | None,
        modulator_channels: int,
        fanout: bool,
        clip: float,
        alpha_init: float,
        eta_init: float,
        eligibility_rate: float,
        input_projection: bool,
        bias: bool,
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        width = self.gate_count * hidden_size
        if not input_projection and input_size != width:
            raise ValueError(
                f"input_projection=False needs input_size == {width} (the inputs are added to the "
                f"pre-activations directly); got input_size={input_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.input_to_hidden = nn.Linear(input_size, width, bias=bias) if input_projection else None
        self.weight = nn.Parameter(torch.empty(hidden_size, width))
        nn.init.uniform_(self.weight, -1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size))
        self.synapses = PlasticSynapses(
            hidden_size, hidden_size, rule=rule, alpha=alpha, eta=eta, modulation=modulation,
            modulator_source=hidden_size, modulator_channels=modulator_channels, fanout=fanout,
            clip=clip, alpha_init=alpha_init, eta_init=eta_init, eligibility_rate=eligibility_rate,
        )

    def drive(self, inputs: Tensor) -> Tensor:
        """The input's contribution to the pre-activations, ``[..., I]`` -> ``[..., gates * N]``."""
        return inputs if self.input_to_hidden is None else self.input_to_hidden(inputs)

    def _check_input(self, x: Tensor, sequence: bool) -> None:
        shape = ("B", "T", self.input_size) if sequence else ("B", self.input_size)
        check_tensor("inputs", x, shape, like=next(self.parameters(), None))


class PlasticRNNCell(_PlasticCellBase):
    """One step of a plastic (optionally neuromodulated) recurrent network.

    Miconi et al. 2018/2019.
    ``h_t = act(x_t @ W_in + b + h_{t-1} @ (W + alpha * H_{t-1}))``;
    ``H_t = update(H_{t-1}, pre=h_{t-1}, post=h_t)`` (see :class:`PlasticSynapses`).
    Shapes: ``x [B, I]`` -> ``h [B, N]``; traces ``[B, N, N]``.

    Args:
        input_size, hidden_size: I and N.
        activation: ``"tanh"`` (default), ``"relu"`` or ``"sigmoid"``.
        input_projection: learn ``W_in`` and ``b``; with ``False`` the input is added as it is
            (it must then have N features), so that W, alpha and eta are the only parameters.
        Other arguments: see :class:`PlasticSynapses`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        rule: str | PlasticityRule | None = None,
        alpha: str = "connection",
        eta: str = "scalar",
        modulation: str | Modulator | None = "none",
        modulator_channels: int = 1,
        fanout: bool = True,
        clip: float = 2.0,
        alpha_init: float = 0.01,
        eta_init: float = 0.01,
        eligibility_rate: float = 0.1,
        activation: str = "tanh",
        input_projection: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__(
            input_size, hidden_size, rule=rule, alpha=alpha, eta=eta, modulation=modulation,
            modulator_channels=modulator_channels, fanout=fanout, clip=clip, alpha_init=alpha_init,
            eta_init=eta_init, eligibility_rate=eligibility_rate, input_projection=input_projection,
            bias=bias,
        )
        check_choice("activation", activation, ACTIVATIONS)
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]

    def initial_state(
        self, batch_size: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> PlasticRNNState:
        """Zero hidden activity and zero traces."""
        plastic = self.synapses.initial_state(batch_size, device=device, dtype=dtype)
        hidden = plastic.trace.new_zeros(batch_size, self.hidden_size)
        return PlasticRNNState(hidden, plastic)

    def step(self, drive: Tensor, state: PlasticRNNState) -> tuple[Tensor, PlasticRNNState]:
        """One step from a precomputed input drive ``[B, N]`` (see :meth:`drive`)."""
        pre = state.hidden
        hidden = self.activation(drive + self.synapses(pre, self.weight, state.plastic))
        plastic = self.synapses.update(state.plastic, pre, hidden, modulator_source=hidden)
        return hidden, PlasticRNNState(hidden, plastic)

    def forward(self, x: Tensor, state: PlasticRNNState | None = None) -> tuple[Tensor, PlasticRNNState]:
        """``x [B, I]`` -> ``(h [B, N], state)``; a missing state starts from zeros."""
        self._check_input(x, sequence=False)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        return self.step(self.drive(x), state)


class PlasticLSTMCell(_PlasticCellBase):
    """One step of an LSTM whose hidden-to-cell-input weights are plastic.

    Miconi et al. 2019, Backpropamine (plastic LSTM language model).
    ``[i, f, o, g~] = x_t @ W_x + b + h_{t-1} @ W_h``; ``g = tanh(g~ + h_{t-1} @ (alpha * H))``;
    ``i, f, o = sigmoid(.)``; ``c_t = f c_{t-1} + i g``; ``h_t = o tanh(c_t)``;
    ``H_t = update(H_{t-1}, pre=h_{t-1}, post=g)`` with the modulator (if any) reading ``h_t``.
    Shapes: ``x [B, I]`` -> ``h [B, N]``; traces ``[B, N, N]``.
    """

    gate_count = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        rule: str | PlasticityRule | None = None,
        alpha: str = "connection",
        eta: str = "scalar",
        modulation: str | Modulator | None = "none",
        modulator_channels: int = 1,
        fanout: bool = True,
        clip: float = 2.0,
        alpha_init: float = 0.01,
        eta_init: float = 0.01,
        eligibility_rate: float = 0.1,
        input_projection: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__(
            input_size, hidden_size, rule=rule, alpha=alpha, eta=eta, modulation=modulation,
            modulator_channels=modulator_channels, fanout=fanout, clip=clip, alpha_init=alpha_init,
            eta_init=eta_init, eligibility_rate=eligibility_rate, input_projection=input_projection,
            bias=bias,
        )
        if self.input_to_hidden is not None and bias:
            with torch.no_grad():  # forget-gate bias 1, a common LSTM initialisation
                self.input_to_hidden.bias[hidden_size: 2 * hidden_size].fill_(1.0)

    def initial_state(
        self, batch_size: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> PlasticLSTMState:
        """Zero hidden and cell activity and zero traces."""
        plastic = self.synapses.initial_state(batch_size, device=device, dtype=dtype)
        zeros = plastic.trace.new_zeros(batch_size, self.hidden_size)
        return PlasticLSTMState(zeros, zeros.clone(), plastic)

    def step(self, drive: Tensor, state: PlasticLSTMState) -> tuple[Tensor, PlasticLSTMState]:
        """One step from a precomputed input drive ``[B, 4N]`` (see :meth:`drive`)."""
        pre = state.hidden
        n = self.hidden_size
        gates = drive + pre @ self.weight
        input_gate, forget_gate, output_gate = torch.sigmoid(gates[:, : 3 * n]).chunk(3, dim=1)
        cell_input = torch.tanh(gates[:, 3 * n:] + self.synapses.plastic_input(pre, state.plastic))
        cell = forget_gate * state.cell + input_gate * cell_input
        hidden = output_gate * torch.tanh(cell)
        plastic = self.synapses.update(state.plastic, pre, cell_input, modulator_source=hidden)
        return hidden, PlasticLSTMState(hidden, cell, plastic)

    def forward(self, x: Tensor, state: PlasticLSTMState | None = None) -> tuple[Tensor, PlasticLSTMState]:
        """``x [B, I]`` -> ``(h [B, N], state)``; a missing state starts from zeros."""
        self._check_input(x, sequence=False)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        return self.step(self.drive(x), state)


def _scan(step: Callable, drives: Tensor, state):
    """Run ``step`` over ``drives [B, T, D]``; returns stacked outputs ``[B, T, N]`` and the final state."""
    outputs = []
    for t in range(drives.shape[1]):
        out, state = step(drives[:, t], state)
        outputs.append(out)
    return torch.stack(outputs, dim=1), state


class _PlasticSequence(nn.Module):
    """Runs a plastic cell over a sequence, with plain or checkpointed backpropagation."""

    cell: PlasticRNNCell | PlasticLSTMCell

    def _init_sequence(self, backprop: str, chunk_size: int | None, truncate_every: int | None) -> None:
        check_choice("backprop", backprop, BACKPROP_MODES)
        for name, value in (("chunk_size", chunk_size), ("truncate_every", truncate_every)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or a positive int, got {value!r}")
        self.backprop = backprop
        if backprop == "fused" and not supports_fused(self.cell):
            fused_scan(self.cell, None, None)  # raises the explanatory ValueError
        self.chunk_size = chunk_size
        self.truncate_every = truncate_every

    @property
    def hidden_size(self) -> int:
        return self.cell.hidden_size

    @property
    def input_size(self) -> int:
        return self.cell.input_size

    @property
    def synapses(self) -> PlasticSynapses:
        return self.cell.synapses

    def initial_state(self, batch_size: int, **kwargs):
        """Zero state for ``batch_size`` episodes (see the cell's ``initial_state``)."""
        return self.cell.initial_state(batch_size, **kwargs)

    def forward(self, inputs: Tensor, state=None):
        """``inputs [B, T, I]`` -> ``(outputs [B, T, N], final state)``; a missing state starts from zeros."""
        self.cell._check_input(inputs, sequence=True)
        if state is None:
            state = self.cell.initial_state(inputs.shape[0], device=inputs.device, dtype=inputs.dtype)
        elif state.hidden.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"state is for batch size {state.hidden.shape[0]} but inputs have batch size {inputs.shape[0]}"
            )
        drives = self.cell.drive(inputs)
        steps = drives.shape[1]
        segment = self.truncate_every or steps
        outputs = []
        for start in range(0, steps, segment):
            if start:
                state = state.detach()
            out, state = self._run_segment(drives[:, start: start + segment], state)
            outputs.append(out)
        return (outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)), state

    def _run_segment(self, drives: Tensor, state):
        mode = self.resolved_backprop
        needs_grad = torch.is_grad_enabled() and (
            drives.requires_grad or any(p.requires_grad for p in self.cell.parameters()))
        if mode == "fused":
            return fused_scan(self.cell, drives, state, self.chunk_size)
        if mode == "autograd" or not needs_grad or drives.shape[1] <= 1:
            return _scan(self.cell.step, drives, state)
        chunk = self.chunk_size or max(1, round(math.sqrt(drives.shape[1])))
        outputs = []
        for start in range(0, drives.shape[1], chunk):
            out, state = checkpoint(_scan, self.cell.step, drives[:, start: start + chunk], state,
                                    use_reentrant=False)
            outputs.append(out)
        return torch.cat(outputs, dim=1), state

    @property
    def resolved_backprop(self) -> str:
        """The mode in use: ``auto`` resolves to ``fused`` when the cell supports it, else ``checkpoint``."""
        if self.backprop != "auto":
            return self.backprop
        return "fused" if supports_fused(self.cell) else "checkpoint"


class PlasticRNN(_PlasticSequence):
    """A plastic recurrent network over sequences: ``out, state = rnn(x, state)``.

    Miconi et al. 2018/2019; see :class:`PlasticRNNCell` for the equations and arguments.
    Shapes: ``x [B, T, I]`` -> ``out [B, T, N]``.

    Args:
        backprop: how gradients flow through the traces, all giving the same gradients:
            ``"fused"`` (one autograd node for the sequence, traces updated in place, chunks recomputed
            in the backward pass; the fastest and smallest; see :mod:`neuroplastic.plasticity.fused_scan`),
            ``"checkpoint"`` (gradient checkpointing of chunks; any rule and modulation),
            ``"autograd"`` (keep every step), or ``"auto"``: fused when supported, else checkpoint.
        chunk_size: steps per checkpointed chunk (default ``round(sqrt(T))``).
        truncate_every: detach the state every this many steps (truncated BPTT); ``None`` never.
        **cell_kwargs: passed to :class:`PlasticRNNCell`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        backprop: str = "auto",
        chunk_size: int | None = None,
        truncate_every: int | None = None,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        self.cell = PlasticRNNCell(input_size, hidden_size, **cell_kwargs)
        self._init_sequence(backprop, chunk_size, truncate_every)


class PlasticLSTM(_PlasticSequence):
    """A plastic LSTM over sequences: ``out, state = lstm(x, state)``.

    Miconi et al. 2019; see :class:`PlasticLSTMCell` for the equations and :class:`PlasticRNN` for
    ``backprop``, ``chunk_size`` and ``truncate_every``. Shapes: ``x [B, T, I]`` -> ``out [B, T, N]``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        backprop: str = "auto",
        chunk_size: int | None = None,
        truncate_every: int | None = None,
        **cell_kwargs,
    ) -> None:
        super().__init__()
        self.cell = PlasticLSTMCell(input_size, hidden_size, **cell_kwargs)
        self._init_sequence(backprop, chunk_size, truncate_every)
