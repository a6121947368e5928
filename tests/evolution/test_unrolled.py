"""unroll_recurrent: LSTM / GRU / RNN (and cells) as plain tensor operations, vmap-compatible, same layout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroplastic.evolution import ParameterLayout, UnrolledCell, UnrolledRecurrent, unroll_recurrent


@pytest.mark.parametrize("cls, kwargs", [(nn.LSTM, {}), (nn.GRU, {}), (nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"}),
                                         (nn.LSTM, {"bias": False})])
@pytest.mark.parametrize("batch_first", [True, False])
def test_same_outputs_states_and_layout_as_the_fused_module(cls, kwargs, batch_first):
    torch.manual_seed(0)
    fused = cls(3, 5, num_layers=2, batch_first=batch_first, **kwargs).double()
    unrolled = unroll_recurrent(fused)
    assert isinstance(unrolled, UnrolledRecurrent)
    assert [(s.name, s.shape) for s in ParameterLayout(fused)] == [(s.name, s.shape) for s in ParameterLayout(unrolled)]
    x = torch.randn(4, 6, 3, dtype=torch.float64)
    h0 = torch.randn(2, 4 if batch_first else 6, 5, dtype=torch.float64)
    hx = (h0, torch.randn_like(h0)) if cls is nn.LSTM else h0
    for args in ((x,), (x, hx), (x[0],)):
        expected, got = fused(*args), unrolled(*args)  # batched, with a state, unbatched
        torch.testing.assert_close(got[0], expected[0])
        torch.testing.assert_close(got[1], expected[1])


@pytest.mark.parametrize("cls", [nn.LSTMCell, nn.GRUCell, nn.RNNCell])
def test_cells_inside_a_model_are_replaced_and_vmap_matches_a_loop(cls):
    torch.manual_seed(1)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(cls(3, 4))
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            h = self.body[0](x)
            return self.head(h[0] if isinstance(h, tuple) else h)

    model = Net()
    copy = unroll_recurrent(model)
    assert isinstance(copy.body[0], UnrolledCell) and isinstance(model.body[0], cls)  # the template is untouched
    layout = ParameterLayout(model)
    genomes = torch.randn(5, layout.size)
    x = torch.randn(7, 3)
    batched = layout.batched_call(copy, genomes, x)
    loop = torch.stack([layout.call(model, g, x) for g in genomes])
    torch.testing.assert_close(batched, loop, atol=1e-6, rtol=1e-5)
    x1 = torch.randn(3)
    torch.testing.assert_close(copy(x1), model(x1))


def test_a_model_without_recurrent_modules_is_returned_as_is_and_errors():
    mlp = nn.Sequential(nn.Linear(2, 2))
    assert unroll_recurrent(mlp) is mlp
    with pytest.raises(ValueError, match="bidirectional"):
        unroll_recurrent(nn.Sequential(nn.LSTM(2, 3, bidirectional=True)))
    with pytest.raises(ValueError, match="proj_size"):
        UnrolledRecurrent(nn.LSTM(2, 3, proj_size=2))


def test_bad_arguments(library_error):
    with library_error() as info:
        unroll_recurrent("lstm")
    assert info.match("model")
    with library_error() as info:
        UnrolledRecurrent(nn.Linear(2, 2))
    assert info.match("source")
    with library_error() as info:
        UnrolledCell(nn.LSTM(2, 2))
    assert info.match("source")
