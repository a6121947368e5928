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
backward passes for the ``[B, N, N]`` operations (:mod:`neuroplastic.plasticity.fused_scan`, which runs a
cell through the small interface of its ``fused_cell()`` method), the fastest. ``"auto"`` (the default) picks
``fused`` where the rule and modulation allow it, else ``checkpoint``. :func:`plastic_scan` runs a cell over a
sequence in any of these modes (what the sequence modules do), for models that hold a cell of their own.

The synapse settings (rule, alpha, eta, modulation, clip, ...) are a
:class:`~neuroplastic.plasticity.synapses.SynapseConfig`: every module here takes ``config=`` and keyword
overrides of its fields, e.g. ``PlasticRNN(16, 64, modulation="simple", clip=2.0)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from neuroplastic._checks import (
    StateField,
    check_bool,
    check_choice,
    check_int,
    check_nonempty_sequence,
    check_optional_int,
    check_state,
    check_tensor,
)
from neuroplastic.plasticity.fused_scan import FusedCell, check_fused, fused_scan, supports_fused
from neuroplastic.plasticity.synapses import PlasticState, PlasticSynapses, SynapseConfig

__all__ = [
    "BACKPROP_MODES",
    "PlasticRNNState",
    "PlasticLSTMState",
    "PlasticRNNCell",
    "PlasticRNN",
    "PlasticLSTMCell",
    "PlasticLSTM",
    "plastic_scan",
]

BACKPROP_MODES = ("auto", "fused", "checkpoint", "autograd")
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu,
                                                       "sigmoid": torch.sigmoid}


class PlasticRNNState(NamedTuple):
    """State of a :class:`PlasticRNNCell`: hidden activity ``[B, N]`` and the plastic synapses' state."""

    hidden: Tensor
    plastic: PlasticState

    def detach(self) -> PlasticRNNState:
        """The same state cut from the autograd graph (truncated backpropagation through time)."""
        return PlasticRNNState(self.hidden.detach(), self.plastic.detach())


class PlasticLSTMState(NamedTuple):
    """State of a :class:`PlasticLSTMCell`: hidden ``[B, N]``, cell ``[B, N]``, plastic synapses' state."""

    hidden: Tensor
    cell: Tensor
    plastic: PlasticState

    def detach(self) -> PlasticLSTMState:
        """The same state cut from the autograd graph (truncated backpropagation through time)."""
        return PlasticLSTMState(self.hidden.detach(), self.cell.detach(), self.plastic.detach())


class _PlasticCellBase(nn.Module):
    """Shared set-up of the plastic cells: input projection, fixed recurrent weight, plastic synapses."""

    gate_count = 1
    state_type: type = tuple

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        config: SynapseConfig,
        input_projection: bool,
        bias: bool,
    ) -> None:
        super().__init__()
        check_int("input_size", input_size)
        check_int("hidden_size", hidden_size)
        check_bool("input_projection", input_projection)
        check_bool("bias", bias)
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
        self.synapses = PlasticSynapses(hidden_size, hidden_size, config=config, modulator_source=hidden_size)

    def drive(self, inputs: Tensor) -> Tensor:
        """The input's contribution to the pre-activations, ``[..., I]`` -> ``[..., gates * N]``."""
        return inputs if self.input_to_hidden is None else self.input_to_hidden(inputs)

    def _check_input(self, x: Tensor, sequence: bool) -> None:
        """Inputs ``[B, I]`` (one step) or ``[B, T, I]`` (a sequence) of this cell, on its device and dtype."""
        shape = ("B", "T", self.input_size) if sequence else ("B", self.input_size)
        check_tensor("inputs", x, shape, like=next(self.parameters(), None))
        if sequence:
            check_nonempty_sequence("inputs", x)
        elif x.shape[0] == 0:  # initial_state(0) would refuse it as "batch_size"
            raise ValueError(f"inputs must have at least one sample ([B, I] with B >= 1), got shape {list(x.shape)}")

    def check_state(self, state: object, batch: int) -> None:
        """Raise unless ``state`` is one this cell can continue from with ``batch`` inputs: its type
        (``state_type``), every tensor's shape (hidden and cell ``[B, N]``, the plastic state as
        :meth:`PlasticSynapses.state_fields` describes it), device and dtype (:func:`~neuroplastic._checks.
        check_state`), before anything is computed with it."""
        n = self.hidden_size
        fields = [StateField(name, (batch, n), "batch of the input, hidden")
                  for name in self.state_type._fields if name != "plastic"]
        fields += self.synapses.state_fields(batch, prefix="plastic.", pre="hidden", post="hidden")
        check_state(state, [("", self.state_type), ("plastic", PlasticState)], fields, batch=batch,
                    like=self.weight)

    def fused_cell(self) -> FusedCell:
        """This cell as :func:`~neuroplastic.plasticity.fused_scan.fused_scan` runs it (its small step and VJP)."""
        raise NotImplementedError

    def _fused_sequence(self, drives: Tensor, state, chunk_size: int | None):
        """The fused scan over ``drives [B, T, gates * N]`` from ``state``: ``(outputs [B, T, N], final state)``."""
        raise NotImplementedError


class PlasticRNNCell(_PlasticCellBase):
    """One step of a plastic (optionally neuromodulated) recurrent network.

    Miconi et al. 2018 (Differentiable plasticity), 2019 (Backpropamine).
    ``h_t = act(x_t @ W_in + b + h_{t-1} @ (W + alpha * H_{t-1}))``;
    ``H_t = update(H_{t-1}, pre=h_{t-1}, post=h_t)``, a modulator (if any) reading ``h_t`` (see
    :class:`~neuroplastic.plasticity.synapses.PlasticSynapses`).
    Shapes: ``x [B, I]`` -> ``h [B, N]``; ``W_in [I, N]``, ``W [N, N]``; traces ``[B, N, N]``.

    Args:
        input_size, hidden_size: I and N.
        config: the synapse settings (:class:`~neuroplastic.plasticity.synapses.SynapseConfig`; None: defaults).
        activation: ``"tanh"`` (default), ``"relu"`` or ``"sigmoid"``.
        input_projection: learn ``W_in`` and ``b``; with ``False`` the input is added as it is
            (it must then have N features), so that W, alpha and eta are the only parameters.
        bias: learn ``b`` (with ``input_projection``).
        **overrides: fields of ``SynapseConfig`` replacing those of ``config`` (``rule``, ``alpha``, ``eta``,
            ``modulation``, ``modulator_channels``, ``fanout``, ``clip``, ``alpha_init``, ``eta_init``,
            ``eligibility_rate``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        config: SynapseConfig | None = None,
        activation: str = "tanh",
        input_projection: bool = True,
        bias: bool = True,
        **overrides: Any,
    ) -> None:
        super().__init__(input_size, hidden_size, config=SynapseConfig.resolve(config, **overrides),
                         input_projection=input_projection, bias=bias)
        check_choice("activation", activation, ACTIVATIONS)
        self.activation_name = activation
        self.activation = ACTIVATIONS[activation]

    state_type = PlasticRNNState

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
        hidden = self.activation(drive + (pre @ self.weight + self.synapses._plastic_input(pre, state.plastic)))
        plastic = self.synapses._update(state.plastic, pre, hidden, modulator_source=hidden)
        return hidden, PlasticRNNState(hidden, plastic)

    def forward(self, x: Tensor, state: PlasticRNNState | None = None) -> tuple[Tensor, PlasticRNNState]:
        """``x [B, I]`` -> ``(h [B, N], state)``; a missing state starts from zeros."""
        self._check_input(x, sequence=False)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        else:
            self.check_state(state, x.shape[0])
        return self.step(self.drive(x), state)

    def fused_cell(self) -> FusedCell:
        """This cell as :func:`~neuroplastic.plasticity.fused_scan.fused_scan` runs it.

        Small step: ``h_t = act(drive_t + h_{t-1} @ W + s_t)``, ``post_t = h_t``; a VJP by hand for this class's
        own (row-wise) activations, autograd for subclasses.
        """
        vjp = self._fused_step_vjp if type(self) is PlasticRNNCell else None
        return FusedCell(self.synapses, self._fused_step, (self.weight,), post_is_hidden=True, step_vjp=vjp)

    def _fused_step(self, hidden: Tensor, extra: Tensor, drive: Tensor, plastic_input: Tensor):
        hidden = self.activation(drive + hidden @ self.weight + plastic_input)
        return hidden, extra, hidden

    def _fused_step_vjp(self, pre, extra, drive, plastic_input, hidden, extra_out, post, grad_hidden, grad_extra,
                        d_post):
        grad_hidden = grad_hidden + d_post
        activation = self.activation_name
        if activation == "tanh":
            d_input = grad_hidden * (1 - hidden * hidden)
        elif activation == "sigmoid":
            d_input = grad_hidden * hidden * (1 - hidden)
        else:  # relu
            d_input = grad_hidden * (hidden > 0)
        return d_input @ self.weight.t(), extra, d_input

    def _fused_sequence(self, drives: Tensor, state: PlasticRNNState, chunk_size: int | None):
        no_extra = state.hidden.new_zeros(state.hidden.shape[0], 0)
        outputs, hidden, _, plastic = fused_scan(self.fused_cell(), drives, state.hidden, no_extra, state.plastic,
                                                 chunk_size)
        return outputs, PlasticRNNState(hidden, plastic)


class PlasticLSTMCell(_PlasticCellBase):
    """One step of an LSTM whose hidden-to-cell-input weights are plastic.

    Miconi et al. 2019, Backpropamine (plastic LSTM language model).
    ``[i, f, o, g~] = x_t @ W_x + b + h_{t-1} @ W_h``; ``g = tanh(g~ + h_{t-1} @ (alpha * H))``;
    ``i, f, o = sigmoid(.)``; ``c_t = f c_{t-1} + i g``; ``h_t = o tanh(c_t)``;
    ``H_t = update(H_{t-1}, pre=h_{t-1}, post=g)`` with the modulator (if any) reading ``h_t``.
    Shapes: ``x [B, I]`` -> ``h [B, N]``; ``W_x [I, 4N]``, ``W_h [N, 4N]``; traces ``[B, N, N]``.
    The forget gate's bias starts at 1.

    Args:
        input_size, hidden_size: I and N.
        config: the synapse settings (:class:`~neuroplastic.plasticity.synapses.SynapseConfig`; None: defaults).
        input_projection: learn ``W_x`` and ``b``; with ``False`` the input (4N features) is added as it is.
        bias: learn ``b`` (with ``input_projection``).
        **overrides: fields of ``SynapseConfig`` replacing those of ``config``.
    """

    gate_count = 4
    state_type = PlasticLSTMState

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        config: SynapseConfig | None = None,
        input_projection: bool = True,
        bias: bool = True,
        **overrides: Any,
    ) -> None:
        super().__init__(input_size, hidden_size, config=SynapseConfig.resolve(config, **overrides),
                         input_projection=input_projection, bias=bias)
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
        cell_input = torch.tanh(gates[:, 3 * n:] + self.synapses._plastic_input(pre, state.plastic))
        cell = forget_gate * state.cell + input_gate * cell_input
        hidden = output_gate * torch.tanh(cell)
        plastic = self.synapses._update(state.plastic, pre, cell_input, modulator_source=hidden)
        return hidden, PlasticLSTMState(hidden, cell, plastic)

    def forward(self, x: Tensor, state: PlasticLSTMState | None = None) -> tuple[Tensor, PlasticLSTMState]:
        """``x [B, I]`` -> ``(h [B, N], state)``; a missing state starts from zeros."""
        self._check_input(x, sequence=False)
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        else:
            self.check_state(state, x.shape[0])
        return self.step(self.drive(x), state)

    def fused_cell(self) -> FusedCell:
        """This cell as :func:`~neuroplastic.plasticity.fused_scan.fused_scan` runs it.

        Small step: the gates and ``c_t``, ``h_t`` above from ``drive_t``, ``h_{t-1}``, ``c_{t-1}`` and the plastic
        input ``s_t``; ``post_t = g``. A VJP by hand for this class, autograd for subclasses.
        """
        vjp = self._fused_step_vjp if type(self) is PlasticLSTMCell else None
        return FusedCell(self.synapses, self._fused_step, (self.weight,), post_is_hidden=False, step_vjp=vjp)

    def _fused_step(self, hidden: Tensor, extra: Tensor, drive: Tensor, plastic_input: Tensor):
        n = self.hidden_size
        gates = drive + hidden @ self.weight
        input_gate, forget_gate, output_gate = torch.sigmoid(gates[:, : 3 * n]).chunk(3, dim=1)
        post = torch.tanh(gates[:, 3 * n:] + plastic_input)
        extra = forget_gate * extra + input_gate * post
        hidden = output_gate * torch.tanh(extra)
        return hidden, extra, post

    def _fused_step_vjp(self, pre, extra, drive, plastic_input, hidden, extra_out, post, grad_hidden, grad_extra,
                        d_post):
        n = self.hidden_size
        gates = torch.sigmoid(drive[:, : 3 * n] + pre @ self.weight[:, : 3 * n])
        input_gate, forget_gate, output_gate = gates.chunk(3, dim=1)
        tanh_cell = torch.tanh(extra_out)
        d_cell = grad_extra + grad_hidden * output_gate * (1 - tanh_cell * tanh_cell)
        d_gates = torch.cat([d_cell * post, d_cell * extra, grad_hidden * tanh_cell], dim=1) * gates * (1 - gates)
        d_input = (d_cell * input_gate + d_post) * (1 - post * post)
        d_pre = torch.cat([d_gates, d_input], dim=1) @ self.weight.t()
        return d_pre, d_cell * forget_gate, d_input

    def _fused_sequence(self, drives: Tensor, state: PlasticLSTMState, chunk_size: int | None):
        outputs, hidden, cell, plastic = fused_scan(self.fused_cell(), drives, state.hidden, state.cell,
                                                    state.plastic, chunk_size)
        return outputs, PlasticLSTMState(hidden, cell, plastic)


def _scan(step: Callable, drives: Tensor, state):
    """Run ``step`` over ``drives [B, T, D]``; returns stacked outputs ``[B, T, N]`` and the final state."""
    outputs = []
    for t in range(drives.shape[1]):
        out, state = step(drives[:, t], state)
        outputs.append(out)
    return torch.stack(outputs, dim=1), state


def _check_scan_options(cell: PlasticRNNCell | PlasticLSTMCell, backprop: str, chunk_size: int | None,
                        truncate_every: int | None) -> None:
    """plastic_scan's options: a known backprop mode (fused only where the cell allows it), optional chunk sizes."""
    check_choice("backprop", backprop, BACKPROP_MODES)
    check_optional_int("chunk_size", chunk_size)
    check_optional_int("truncate_every", truncate_every)
    if backprop == "fused":
        check_fused(cell)  # raises the explanatory ValueError


def _resolve_backprop(cell: PlasticRNNCell | PlasticLSTMCell, backprop: str) -> str:
    if backprop != "auto":
        return backprop
    return "fused" if supports_fused(cell) else "checkpoint"


def _run_segment(cell: PlasticRNNCell | PlasticLSTMCell, drives: Tensor, state, backprop: str,
                 chunk_size: int | None):
    mode = _resolve_backprop(cell, backprop)
    needs_grad = torch.is_grad_enabled() and (
        drives.requires_grad or any(p.requires_grad for p in cell.parameters()))
    if mode == "fused":
        return cell._fused_sequence(drives, state, chunk_size)
    if mode == "autograd" or not needs_grad or drives.shape[1] <= 1:
        return _scan(cell.step, drives, state)
    chunk = chunk_size or max(1, round(math.sqrt(drives.shape[1])))
    outputs = []
    for start in range(0, drives.shape[1], chunk):
        out, state = checkpoint(_scan, cell.step, drives[:, start: start + chunk], state, use_reentrant=False)
        outputs.append(out)
    return torch.cat(outputs, dim=1), state


def plastic_scan(
    cell: PlasticRNNCell | PlasticLSTMCell,
    inputs: Tensor,
    state: PlasticRNNState | PlasticLSTMState | None = None,
    *,
    backprop: str = "auto",
    chunk_size: int | None = None,
    truncate_every: int | None = None,
) -> tuple[Tensor, PlasticRNNState | PlasticLSTMState]:
    """Run a plastic cell over a whole sequence, as :class:`PlasticRNN` and :class:`PlasticLSTM` do.

    Miconi et al. 2018/2019; the cell's equations are its own (see :class:`PlasticRNNCell`,
    :class:`PlasticLSTMCell`). The input drives of all steps are computed at once (``cell.drive(inputs)``), then
    the recurrence runs with the chosen backpropagation: ``"fused"`` (one autograd node with in-place traces,
    :mod:`neuroplastic.plasticity.fused_scan`), ``"checkpoint"`` (chunks of ``chunk_size`` steps, default
    ``round(sqrt(T))``, recomputed in the backward pass), ``"autograd"`` (every step kept), or ``"auto"``: fused
    where the cell's rule and modulation allow it, else checkpoint. All give the same outputs and gradients.
    ``truncate_every``: detach the state every this many steps (truncated BPTT; None: never).

    Shapes: ``inputs [B, T, I]`` -> ``outputs [B, T, N]``; a missing ``state`` starts from zeros. Returns
    ``(outputs, final state)``.
    """
    if not isinstance(cell, _PlasticCellBase):
        hint = " (pass the module's .cell)" if isinstance(cell, _PlasticSequence) else ""
        raise TypeError(f"cell must be a PlasticRNNCell or PlasticLSTMCell{hint}, got {type(cell).__name__}")
    _check_scan_options(cell, backprop, chunk_size, truncate_every)
    cell._check_input(inputs, sequence=True)
    if state is None:
        state = cell.initial_state(inputs.shape[0], device=inputs.device, dtype=inputs.dtype)
    else:
        cell.check_state(state, inputs.shape[0])
    drives = cell.drive(inputs)
    steps = drives.shape[1]
    segment = truncate_every or steps
    outputs = []
    for start in range(0, steps, segment):
        if start:
            state = state.detach()
        out, state = _run_segment(cell, drives[:, start: start + segment], state, backprop, chunk_size)
        outputs.append(out)
    return (outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)), state


class _PlasticSequence(nn.Module):
    """Runs a plastic cell over a sequence (:func:`plastic_scan`), with the backpropagation mode it was given."""

    cell: PlasticRNNCell | PlasticLSTMCell

    def _init_sequence(self, backprop: str, chunk_size: int | None, truncate_every: int | None) -> None:
        _check_scan_options(self.cell, backprop, chunk_size, truncate_every)
        self.backprop = backprop
        self.chunk_size = chunk_size
        self.truncate_every = truncate_every

    @property
    def hidden_size(self) -> int:
        """N, the number of hidden units."""
        return self.cell.hidden_size

    @property
    def input_size(self) -> int:
        """I, the number of input features."""
        return self.cell.input_size

    @property
    def synapses(self) -> PlasticSynapses:
        """The cell's plastic synapses."""
        return self.cell.synapses

    def initial_state(self, batch_size: int, **kwargs):
        """Zero state for ``batch_size`` episodes (see the cell's ``initial_state``)."""
        return self.cell.initial_state(batch_size, **kwargs)

    def forward(self, inputs: Tensor, state=None):
        """``inputs [B, T, I]`` -> ``(outputs [B, T, N], final state)``; a missing state starts from zeros."""
        return plastic_scan(self.cell, inputs, state, backprop=self.backprop, chunk_size=self.chunk_size,
                            truncate_every=self.truncate_every)

    @property
    def resolved_backprop(self) -> str:
        """The mode in use: ``auto`` resolves to ``fused`` when the cell supports it, else ``checkpoint``."""
        return _resolve_backprop(self.cell, self.backprop)


class PlasticRNN(_PlasticSequence):
    """A plastic recurrent network over sequences: ``out, state = rnn(x, state)``.

    Miconi et al. 2018/2019; see :class:`PlasticRNNCell` for the equations and arguments.
    Shapes: ``x [B, T, I]`` -> ``out [B, T, N]``.

    Args:
        input_size, hidden_size: I and N.
        config: the synapse settings (:class:`~neuroplastic.plasticity.synapses.SynapseConfig`; None: defaults).
        backprop: how gradients flow through the traces, all giving the same gradients:
            ``"fused"`` (one autograd node for the sequence, traces updated in place, chunks recomputed
            in the backward pass; the fastest and smallest; see :mod:`neuroplastic.plasticity.fused_scan`),
            ``"checkpoint"`` (gradient checkpointing of chunks; any rule and modulation),
            ``"autograd"`` (keep every step), or ``"auto"``: fused when supported, else checkpoint.
        chunk_size: steps per checkpointed chunk (default ``round(sqrt(T))``).
        truncate_every: detach the state every this many steps (truncated BPTT); ``None`` never.
        **cell_kwargs: passed to :class:`PlasticRNNCell` (``activation``, ``input_projection``, ``bias`` and the
            fields of ``SynapseConfig``, e.g. ``modulation="simple"``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        config: SynapseConfig | None = None,
        backprop: str = "auto",
        chunk_size: int | None = None,
        truncate_every: int | None = None,
        **cell_kwargs: Any,
    ) -> None:
        super().__init__()
        self.cell = PlasticRNNCell(input_size, hidden_size, config=config, **cell_kwargs)
        self._init_sequence(backprop, chunk_size, truncate_every)


class PlasticLSTM(_PlasticSequence):
    """A plastic LSTM over sequences: ``out, state = lstm(x, state)``.

    Miconi et al. 2019, Backpropamine; see :class:`PlasticLSTMCell` for the equations and :class:`PlasticRNN`
    for ``config``, ``backprop``, ``chunk_size`` and ``truncate_every``; ``**cell_kwargs`` go to
    :class:`PlasticLSTMCell`. Shapes: ``x [B, T, I]`` -> ``out [B, T, N]``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        config: SynapseConfig | None = None,
        backprop: str = "auto",
        chunk_size: int | None = None,
        truncate_every: int | None = None,
        **cell_kwargs: Any,
    ) -> None:
        super().__init__()
        self.cell = PlasticLSTMCell(input_size, hidden_size, config=config, **cell_kwargs)
        self._init_sequence(backprop, chunk_size, truncate_every)
