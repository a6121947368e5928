"""The models' boundaries: constructors refuse bad sizes, flags and cores; the non-plastic RNN follows the
sequence modules' contract (B = 0 or T = 0, wrong shapes, dtypes and states are ValueError/TypeError)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import neuroplastic.models as M


@pytest.mark.parametrize(("call", "message"), [
    (lambda: M.SmallCNN((4, 8), (2, 2), num_classes=True), "num_classes"),  # was a TypeError inside torch
    (lambda: M.RNN(3, 3, input_projection=1), "input_projection must be a bool"),
    (lambda: M.ActorCritic(M.RNNCell(3, 4), num_actions=0), "num_actions"),  # was a 0-action policy
    (lambda: M.ActorCritic("cell"), "cell must be a recurrent cell"),  # was an AttributeError
    (lambda: M.MazeAgent(M.RNNCell(3, 4), num_actions=True), "num_actions"),
    (lambda: M.CharLanguageModel(0, 4, M.RNN(4, 5)), "vocab_size"),
    (lambda: M.CharLanguageModel(10, 4, "core"), "core must be a recurrent nn.Module"),
    (lambda: M.lstm_parameter_count(10, 4, -1), "hidden_size"),  # was a negative count
    (lambda: M.matched_lstm_hidden_size(-1, 10, 4), "target"),
    (lambda: M.PlainRecurrentLIF(3, 4, tau_mem=math.nan, surrogate_slope=1.0), "tau_mem"),  # was NaN decay
    (lambda: M.PlainRecurrentLIF(3, 4, tau_mem=2.0, surrogate_slope=0.0), "surrogate_slope"),
    (lambda: M.AssociationSNN(M.PlainRecurrentLIF(3, 4, tau_mem=2.0, surrogate_slope=1.0), 5, 2, 0.5),
     "hidden_size must be the layer's output size 4"),  # was a shape error at the first forward
    (lambda: M.AssociationSNN(M.PlainRecurrentLIF(3, 4, tau_mem=2.0, surrogate_slope=1.0), 4, 2, 1.5),
     "readout_decay"),
    (lambda: M.SpikingMLP(8, 2, decay=0.5, threshold=1.0, reset="hard", rectifier=1, in_features=4), "rectifier"),
    (lambda: M.SpikingMLP(8, 2, decay=0.5, threshold=1.0, reset="hard", rectifier=False, norm=1, in_features=4),
     "norm must be a bool"),
])
def test_bad_constructor_arguments_are_refused(library_error, call, message):
    with library_error() as info:
        call()
    assert info.match(message)


@given(batch=st.integers(0, 3), steps=st.integers(0, 3), features=st.sampled_from([3, 4]),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.int64]),
       state_batch=st.sampled_from([None, "same", 1, 5]))
def test_rnn_runs_its_cell_step_by_step_or_refuses(library_error, batch, steps, features, dtype, state_batch):
    torch.manual_seed(0)
    rnn = M.RNN(3, 4)
    inputs = torch.randn(batch, steps, features).to(dtype)
    state = None
    if state_batch is not None:
        state = M.RNNState(torch.randn(batch if state_batch == "same" else state_batch, 4))
    valid = (batch >= 1 and steps >= 1 and features == 3 and dtype == torch.float32
             and state_batch in (None, "same", batch))
    if not valid:
        with library_error():
            rnn(inputs, state)
        return
    out, final = rnn(inputs, state)
    assert out.shape == (batch, steps, 4) and final.hidden.shape == (batch, 4)
    hidden = torch.zeros(batch, 4) if state is None else state.hidden
    for t in range(steps):  # h_t = tanh(x_t W_in^T + b + h_{t-1} W)
        hidden = torch.tanh(rnn.cell.input_to_hidden(inputs[:, t]) + hidden @ rnn.cell.weight)
        torch.testing.assert_close(out[:, t], hidden)
    torch.testing.assert_close(final.hidden, hidden)
