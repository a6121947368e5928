"""The non-plastic RNN: its equation, its layout and initialisation (the plastic cell's), and the sequence module."""

from __future__ import annotations

import pytest
import torch

from neuroplastic.models import RNN, RNNCell, RNNState
from neuroplastic.plasticity import PlasticRNN, PlasticRNNCell


def test_cell_computes_tanh_of_input_drive_plus_recurrence():
    cell = RNNCell(3, 4)
    x = torch.randn(2, 3)
    h0 = torch.randn(2, 4)
    hidden, state = cell(x, RNNState(h0))
    expected = torch.tanh(x @ cell.input_to_hidden.weight.T + cell.input_to_hidden.bias + h0 @ cell.weight)
    torch.testing.assert_close(hidden, expected)
    assert isinstance(state, RNNState) and state.hidden is hidden
    zero_start, _ = cell(x)  # no state: zero activity
    torch.testing.assert_close(zero_start, torch.tanh(cell.input_to_hidden(x)))
    assert cell.initial_state(5).hidden.shape == (5, 4) and not cell.initial_state(5).hidden.any()


def test_seeded_initialisation_is_the_plastic_cells():
    torch.manual_seed(3)
    plain = RNNCell(5, 7)
    torch.manual_seed(3)
    plastic = PlasticRNNCell(5, 7)
    for name in ("weight", "input_to_hidden.weight", "input_to_hidden.bias"):
        assert torch.equal(plain.get_parameter(name), plastic.get_parameter(name)), name
    plastic_only = {n for n, _ in plastic.named_parameters()} - {n for n, _ in plain.named_parameters()}
    assert plastic_only == {"synapses.alpha", "synapses.eta"}
    bound = 1 / 7 ** 0.5
    assert plain.weight.abs().max() <= bound


def test_cell_is_the_plastic_cell_with_alpha_zero():
    torch.manual_seed(0)
    plain = RNNCell(4, 6)
    plastic = PlasticRNNCell(4, 6, modulation="simple")
    with torch.no_grad():
        plastic.synapses.alpha.zero_()
        plastic.weight.copy_(plain.weight)
        plastic.input_to_hidden.load_state_dict(plain.input_to_hidden.state_dict())
    x = torch.randn(3, 5, 4)
    state_a, state_b = plain.initial_state(3), plastic.initial_state(3)
    for t in range(5):
        h_a, state_a = plain(x[:, t], state_a)
        h_b, state_b = plastic(x[:, t], state_b)
        torch.testing.assert_close(h_a, h_b)


def test_sequence_without_input_projection():
    torch.manual_seed(1)
    rnn = RNN(6, 6, input_projection=False)
    assert [name for name, _ in rnn.named_parameters()] == ["cell.weight"]
    torch.manual_seed(1)
    plastic = PlasticRNN(6, 6, input_projection=False)
    assert torch.equal(rnn.cell.weight, plastic.cell.weight)  # the same seeded draw
    inputs = torch.randn(2, 4, 6)
    outputs, state = rnn(inputs)
    hidden = torch.zeros(2, 6)
    for t in range(4):  # x_t = tanh(x_{t-1} W + u_t)
        hidden = torch.tanh(hidden @ rnn.cell.weight + inputs[:, t])
        torch.testing.assert_close(outputs[:, t], hidden)
    torch.testing.assert_close(state.hidden, hidden)
    # a given state is carried on
    more, _ = rnn(inputs[:, :1], state)
    torch.testing.assert_close(more[:, 0], torch.tanh(hidden @ rnn.cell.weight + inputs[:, 0]))


def test_state_detach_and_bad_arguments():
    h = torch.zeros(2, 3, requires_grad=True) * 2
    assert h.requires_grad and not RNNState(h).detach().hidden.requires_grad
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1, got 0"):
        RNNCell(3, 0)
    with pytest.raises(TypeError, match="input_size must be an int"):
        RNNCell(2.0, 3)
    with pytest.raises(ValueError, match="without an input projection input_size must equal hidden_size"):
        RNN(3, 4, input_projection=False)
