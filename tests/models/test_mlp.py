"""relu_mlp: layer structure, shapes, argument checks, and seeded initialisation in creation order."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroplastic.models import relu_mlp


def test_layers_alternate_linear_and_relu_and_end_with_a_linear_readout():
    assert [type(layer).__name__ for layer in relu_mlp(784, (5, 4), 10)] == [
        "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    model = relu_mlp(64, [16, 16], 10)  # any sequence of widths (the dormant-neurons network: depth 2, width 16)
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert model(torch.zeros(3, 64)).shape == (3, 10)
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [(64, 16), (16, 16),
                                                                                          (16, 10)]


def test_seeded_initialisation_is_that_of_the_layers_created_in_order():
    torch.manual_seed(7)
    model = relu_mlp(6, (5, 4), 3)
    torch.manual_seed(7)
    expected = [nn.Linear(6, 5), nn.Linear(5, 4), nn.Linear(4, 3)]
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for got, want in zip(linears, expected, strict=True):
        assert torch.equal(got.weight, want.weight) and torch.equal(got.bias, want.bias)


@pytest.mark.parametrize(("hidden", "error"), [((), ValueError), ((4, 0), ValueError), ((4, 2.0), TypeError),
                                               ((True,), TypeError), ("12", TypeError)])
def test_bad_hidden_widths_raise(hidden, error):
    with pytest.raises(error, match="hidden must be a non-empty sequence of ints >= 1, got"):
        relu_mlp(8, hidden, 2)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="in_features"):
        relu_mlp(0, (4,), 2)
    with pytest.raises(TypeError, match="out_features"):
        relu_mlp(8, (4,), 2.0)
