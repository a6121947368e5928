"""``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` rewritten as plain tensor operations, so a whole population of recurrent
genomes runs in one ``torch.func.vmap`` call.

``torch.func.vmap`` has no batching rule for the fused recurrent kernels (``aten::lstm``, ``aten::gru``,
``aten::rnn_tanh``: "Batching rule not implemented"), so :meth:`ParameterLayout.batched_call` fails on a model that
contains one. :class:`UnrolledRecurrent` computes the same outputs as the module it replaces with one matrix
product for the input projection of every step and a Python loop over time for the recurrence (the equations of the
PyTorch documentation, below), and :class:`UnrolledCell` does one step of an ``nn.LSTMCell`` / ``nn.GRUCell`` /
``nn.RNNCell`` (``aten::lstm_cell`` has no batching rule either). :func:`unroll_recurrent` returns a copy of any
model with each recurrent module or cell so replaced. The copy keeps the parameter names and shapes, hence the same
:class:`~neuroplastic.evolution.genome.ParameterLayout`: a genome of the original model runs unchanged on it.

Per layer, with input ``x_t`` and state ``h_{t-1}`` (and ``c_{t-1}``), gates in PyTorch's order:

- LSTM: ``i, f, g, o = split(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``;
  ``c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)``, ``h_t = sigmoid(o) * tanh(c_t)``.
- GRU: ``r, z, n`` from ``a = W_ih x_t + b_ih`` and ``b = W_hh h_{t-1} + b_hh``: ``r = sigmoid(a_r + b_r)``,
  ``z = sigmoid(a_z + b_z)``, ``n = tanh(a_n + r * b_n)``, ``h_t = (1 - z) * n + z * h_{t-1}``.
- RNN: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or ReLU).

Not supported (``ValueError`` at construction): ``bidirectional=True`` and ``proj_size > 0``. Dropout between
layers is not applied (genomes are evaluated, not trained).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["UnrolledCell", "UnrolledRecurrent", "unroll_recurrent"]

_RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)
_CELLS = (nn.LSTMCell, nn.GRUCell, nn.RNNCell)


class UnrolledRecurrent(nn.Module):
    """A vmap-compatible stand-in for an ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``: the same parameters (copied, same
    names), the same call signature and outputs: ``module(input [B, T, I] or [T, B, I] or [T, I], hx=None) ->
    (output, h_n)``, with ``hx`` and ``h_n`` ``(h, c)`` for an LSTM, each ``[num_layers, B, H]``.

    Args:
        source: the recurrent module to mirror (unidirectional, no projection).

    Raises:
        TypeError: ``source`` is not an ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``.
        ValueError: ``source`` is bidirectional or has ``proj_size > 0``.
    """

    def __init__(self, source: nn.Module) -> None:
        super().__init__()
        if not isinstance(source, _RECURRENT):
            raise TypeError(f"source must be an nn.LSTM, nn.GRU or nn.RNN, got {type(source).__name__}")
        if source.bidirectional:
            raise ValueError("source must be unidirectional: UnrolledRecurrent does not support bidirectional=True")
        if getattr(source, "proj_size", 0):
            raise ValueError(f"source must have proj_size=0: UnrolledRecurrent does not support projections, got "
                             f"proj_size={source.proj_size}")
        self.mode = source.mode  # "LSTM", "GRU", "RNN_TANH", "RNN_RELU"
        self.input_size = source.input_size
        self.hidden_size = source.hidden_size
        self.num_layers = source.num_layers
        self.bias = source.bias
        self.batch_first = source.batch_first
        for name, _ in source.named_parameters(recurse=False):
            param = getattr(source, name)
            self.register_parameter(name, nn.Parameter(param.detach().clone(), requires_grad=param.requires_grad))

    def extra_repr(self) -> str:
        return (f"{self.mode}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, batch_first={self.batch_first}")

    def _initial(self, hx: Any, batch: int, like: Tensor, unbatched: bool) -> list[Any]:
        lstm = self.mode == "LSTM"
        if hx is None:
            zeros = like.new_zeros(self.num_layers, batch, self.hidden_size)
            return [(zeros[layer], zeros[layer]) if lstm else zeros[layer] for layer in range(self.num_layers)]
        if lstm:
            h, c = hx
            if unbatched:
                h, c = h.unsqueeze(1), c.unsqueeze(1)
            return [(h[layer], c[layer]) for layer in range(self.num_layers)]
        h = hx.unsqueeze(1) if unbatched else hx
        return [h[layer] for layer in range(self.num_layers)]

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:
        unbatched = input.dim() == 2
        x = input.unsqueeze(0 if self.batch_first else 1) if unbatched else input
        if not self.batch_first:
            x = x.transpose(0, 1)  # [B, T, I]
        states = self._initial(hx, x.shape[0], x, unbatched)
        finals = []
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            b_ih = getattr(self, f"bias_ih_l{layer}") if self.bias else None
            b_hh = getattr(self, f"bias_hh_l{layer}") if self.bias else None
            projected = F.linear(x, w_ih, b_ih)  # [B, T, G * H]: every step's input at once
            state = states[layer]
            outputs = []
            for t in range(x.shape[1]):
                state = _step(self.mode, projected[:, t], state, w_hh, b_hh)
                outputs.append(state[0] if isinstance(state, tuple) else state)
            x = torch.stack(outputs, 1)
            finals.append(state)
        output = x if self.batch_first else x.transpose(0, 1)
        if self.mode == "LSTM":
            h_n = (torch.stack([s[0] for s in finals]), torch.stack([s[1] for s in finals]))
        else:
            h_n = torch.stack(finals)
        if unbatched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n = (h_n[0].squeeze(1), h_n[1].squeeze(1)) if isinstance(h_n, tuple) else h_n.squeeze(1)
        return output, h_n


def _step(mode: str, projected: Tensor, state: Any, w_hh: Tensor, b_hh: Tensor | None) -> Any:
    """One step of a recurrent cell from its projected input ``W_ih x + b_ih`` and its state (the module docstring)."""
    if mode == "LSTM":
        h, c = state
        i, f, g, o = (projected + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    if mode == "GRU":
        a_r, a_z, a_n = projected.chunk(3, dim=-1)
        b_r, b_z, b_n = F.linear(state, w_hh, b_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
        n = torch.tanh(a_n + r * b_n)
        return (1 - z) * n + z * state
    pre = projected + F.linear(state, w_hh, b_hh)
    return torch.tanh(pre) if mode == "RNN_TANH" else torch.relu(pre)


class UnrolledCell(nn.Module):
    """A vmap-compatible stand-in for an ``nn.LSTMCell``, ``nn.GRUCell`` or ``nn.RNNCell`` (vmap has no batching
    rule for ``aten::lstm_cell``, and only a slow fallback for the others): the same parameters (copied, same
    names) and call: ``cell(input [B, I] or [I], hx=None) -> h`` (``(h, c)`` for an LSTM cell), ``h [B, H]``.

    Raises:
        TypeError: ``source`` is not one of these cells.
    """

    def __init__(self, source: nn.Module) -> None:
        super().__init__()
        if not isinstance(source, _CELLS):
            raise TypeError(f"source must be an nn.LSTMCell, nn.GRUCell or nn.RNNCell, got {type(source).__name__}")
        if isinstance(source, nn.LSTMCell):
            self.mode = "LSTM"
        elif isinstance(source, nn.GRUCell):
            self.mode = "GRU"
        else:
            self.mode = "RNN_TANH" if source.nonlinearity == "tanh" else "RNN_RELU"
        self.input_size, self.hidden_size, self.bias = source.input_size, source.hidden_size, source.bias
        for name, _ in source.named_parameters(recurse=False):
            param = getattr(source, name)
            self.register_parameter(name, nn.Parameter(param.detach().clone(), requires_grad=param.requires_grad))

    def extra_repr(self) -> str:
        return f"{self.mode}, {self.input_size}, {self.hidden_size}, bias={self.bias}"

    def forward(self, input: Tensor, hx: Any = None) -> Any:
        unbatched = input.dim() == 1
        x = input.unsqueeze(0) if unbatched else input
        if hx is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            hx = (zeros, zeros) if self.mode == "LSTM" else zeros
        elif unbatched:
            hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0)) if self.mode == "LSTM" else hx.unsqueeze(0)
        b_ih = self.bias_ih if self.bias else None
        b_hh = self.bias_hh if self.bias else None
        state = _step(self.mode, F.linear(x, self.weight_ih, b_ih), hx, self.weight_hh, b_hh)
        if unbatched:
            state = (state[0].squeeze(0), state[1].squeeze(0)) if self.mode == "LSTM" else state.squeeze(0)
        return state


def unroll_recurrent(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` inside it (or ``model`` itself)
    replaced by an :class:`UnrolledRecurrent`, and every ``nn.LSTMCell`` / ``nn.GRUCell`` / ``nn.RNNCell`` by an
    :class:`UnrolledCell`: same parameter names, shapes and values, same outputs, and
    vmap-compatible. The model is returned as is (not copied) when it contains no such module.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: a recurrent module inside is bidirectional or has a projection.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(model, _RECURRENT + _CELLS):
        return _unrolled(model)
    targets = [name for name, module in model.named_modules() if isinstance(module, _RECURRENT + _CELLS)]
    if not targets:
        return model
    clone = copy.deepcopy(model)
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = clone.get_submodule(parent_name) if parent_name else clone
        setattr(parent, child, _unrolled(getattr(parent, child)))
    return clone


def _unrolled(module: nn.Module) -> nn.Module:
    return UnrolledRecurrent(module) if isinstance(module, _RECURRENT) else UnrolledCell(module)
