"""Output divergence overall and per layer, and the SM-R line search on the step size."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from neuroplastic.evolution import ROOT, ParameterLayout, buffer_outputs, divergence_line_search, output_divergence

F64 = torch.float64


def test_divergence_is_the_mean_squared_output_change_by_hand():
    model = nn.Linear(1, 1).double()
    layout = ParameterLayout(model)  # [weight, bias]
    parent, child = torch.tensor([1.0, 0.0], dtype=F64), torch.tensor([2.0, 1.0], dtype=F64)
    inputs = torch.tensor([[1.0], [2.0]], dtype=F64)
    # parent y = [1, 2], child y = [3, 5]: changes 2, 3
    total, layers = output_divergence(layout, model, parent, child, inputs)
    assert float(total) == pytest.approx(6.5) and list(layers) == [ROOT] and float(layers[ROOT]) == pytest.approx(6.5)
    # weight alone: y = [2, 4], changes 1, 2; bias alone: y = [2, 3], changes 1, 1
    _, parameters = output_divergence(layout, model, parent, child, inputs, by="parameter")
    assert {k: float(v) for k, v in parameters.items()} == pytest.approx({"weight": 2.5, "bias": 1.0})


def test_each_layer_divergence_applies_only_that_layers_part():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Sequential(nn.Linear(4, 4), nn.Tanh()), nn.Linear(4, 2))
    model = model.double()
    layout = ParameterLayout(model)
    parent = layout.flatten(model)
    inputs = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    step = torch.zeros_like(parent)
    inner = [slot for slot in layout if slot.name.startswith("2.0.")]
    for slot in inner:
        step[slot.slice] = 0.3
    total, layers = output_divergence(layout, model, parent, parent + step, inputs)
    assert list(layers) == ["0", "2.0", "3"]
    assert float(layers["0"]) == 0.0 and float(layers["3"]) == 0.0
    assert float(layers["2.0"]) == float(total) > 0
    expected = (buffer_outputs(layout, model, parent + step, inputs) - buffer_outputs(layout, model, parent, inputs))
    assert float(total) == pytest.approx(float(expected.square().mean()), rel=1e-12)


def _recurrent() -> tuple[nn.Module, ParameterLayout, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.GRU(2, 3, batch_first=True).double()  # the output is (output at every step, last state)
    layout = ParameterLayout(model)
    inputs = torch.randn(5, 4, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    return model, layout, layout.flatten(model), inputs


def test_a_recurrent_model_compares_the_outputs_at_every_step():
    model, layout, genome, inputs = _recurrent()
    assert buffer_outputs(layout, model, genome, inputs).shape == (5, 4 * 3)
    _, layers = output_divergence(layout, model, genome, genome + 0.1, inputs)
    assert list(layers) == [ROOT]  # a bare GRU owns all its parameters


def test_stacked_splits_the_layers_of_a_stacked_recurrent_module():
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.LSTM(1, 3, num_layers=2, batch_first=True)
            self.head = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.rnn(x)[0][:, -1])

    model = Net().double()
    layout = ParameterLayout(model)
    parent = layout.flatten(model)
    inputs = torch.randn(4, 3, 1, generator=torch.Generator().manual_seed(1), dtype=F64)
    step = torch.zeros_like(parent)
    for slot in layout:
        if slot.name.endswith("_l1"):
            step[slot.slice] = 0.2
    total, layers = output_divergence(layout, model, parent, parent + step, inputs, by="stacked")
    assert list(layers) == ["rnn.l0", "rnn.l1", "head"]
    assert float(layers["rnn.l0"]) == 0.0 == float(layers["head"]) and float(layers["rnn.l1"]) == float(total) > 0
    assert list(output_divergence(layout, model, parent, parent + step, inputs)[1]) == ["rnn", "head"]
    bare = nn.GRU(2, 3, num_layers=3, batch_first=True).double()
    bare_layout = ParameterLayout(bare)
    genome = bare_layout.flatten(bare)
    x = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    assert list(output_divergence(bare_layout, bare, genome, genome + 0.1, x, by="stacked")[1]) == ["l0", "l1", "l2"]


@pytest.mark.parametrize("target", [1e-5, 1e-3, 0.1])
def test_the_line_search_hits_the_target_divergence(target):
    model, layout, genome, inputs = _recurrent()
    direction = torch.randn(layout.size, generator=torch.Generator().manual_seed(2), dtype=F64)
    result = divergence_line_search(layout, model, genome, direction, inputs, target, rtol=0.02)
    assert result.status == "hit" and 1 <= result.evaluations <= 40
    assert abs(result.divergence / target - 1) <= 0.02
    total, _ = output_divergence(layout, model, genome, genome + result.step * direction, inputs)
    assert float(total) == pytest.approx(result.divergence, rel=1e-12)


@given(log_target=st.floats(min_value=-25.0, max_value=8.0), seed=st.integers(0, 2**16))
def test_on_a_linear_model_the_step_is_the_square_root_of_the_divergence_ratio(log_target, seed):
    model = nn.Linear(3, 2).double()  # the divergence of a step lambda is lambda^2 times that of a unit step
    layout = ParameterLayout(model)
    gen = torch.Generator().manual_seed(seed)
    genome, direction = torch.randn(2, layout.size, generator=gen, dtype=F64)
    inputs = torch.randn(7, 3, generator=gen, dtype=F64)
    unit = float(output_divergence(layout, model, genome, genome + direction, inputs)[0])
    target = math.exp(log_target)
    result = divergence_line_search(layout, model, genome, direction, inputs, target, rtol=1e-3,
                                    step_range=(1e-9, 1e9))
    assert result.status == "hit" and result.evaluations <= 40
    assert result.step == pytest.approx(math.sqrt(target / unit), rel=1e-3)


def test_a_target_out_of_reach_returns_the_closest_end_of_the_range():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid()).double()  # outputs in (0, 1): divergence < 1
    layout = ParameterLayout(model)
    genome = layout.flatten(model)
    inputs = torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    direction = torch.randn(layout.size, generator=torch.Generator().manual_seed(2), dtype=F64)
    below = divergence_line_search(layout, model, genome, direction, inputs, 5.0, step_range=(1e-3, 1e3))
    assert below.status == "below" and below.divergence < 1.0 and below.step == pytest.approx(1e3)
    above = divergence_line_search(layout, model, genome, direction, inputs, 1e-30, step_range=(1e-3, 1e3))
    assert above.status == "above" and above.divergence > 1e-30 and above.step == pytest.approx(1e-3)
    still = divergence_line_search(layout, model, genome, torch.zeros_like(genome), inputs, 1e-3)
    assert still.status == "below" and still.divergence == 0.0
    short = divergence_line_search(layout, model, genome, direction, inputs, 1e-2, max_evaluations=1)
    assert short.status == "budget" and short.evaluations == 1 and short.step == 1.0


def test_bad_arguments(library_error):
    model, layout, genome, inputs = _recurrent()
    with library_error() as info:
        divergence_line_search(layout, model, genome, genome, inputs, 0.0)
    assert info.match("target")
    with library_error() as info:
        divergence_line_search(layout, model, genome, genome, inputs, 0.1, step_range=(0.0, 1.0))
    assert info.match("step_range")
    with library_error() as info:
        divergence_line_search(layout, model, genome, genome, inputs, 0.1, rtol=1.0)
    assert info.match("rtol")
    with library_error() as info:
        output_divergence(layout, model, genome, genome, inputs, by="module")
    assert info.match("by")
    with library_error() as info:
        output_divergence(model, model, genome, genome, inputs)
    assert info.match("layout")
    class Head(nn.Module):
        def __init__(self, pool: bool) -> None:
            super().__init__()
            self.linear, self.pool = nn.Linear(2, 2), pool

        def forward(self, x: torch.Tensor) -> torch.Tensor | dict:
            return self.linear(x).mean(0) if self.pool else {"y": self.linear(x)}

    for pool, message in [(True, "one output per buffer entry"), (False, "must return a tensor")]:
        head = Head(pool).double()
        head_layout = ParameterLayout(head)
        with library_error() as info:
            buffer_outputs(head_layout, head, head_layout.flatten(head), inputs[:, 0])
        assert info.match(message)
