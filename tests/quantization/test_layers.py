"""Quantised layers: shapes, gradients, packed inference equal to the float layer, latent clipping, sparsity."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroplastic._c_kernels import use_native
from neuroplastic.quantization import (
    LatentWeightClipping,
    PackedBinaryLinear,
    QuantConv2d,
    QuantLinear,
    binarize,
    pack_model,
    quantized_cnn,
    quantized_layers,
    quantized_mlp,
)
from neuroplastic.structure import GMP


def test_quant_linear_forward_by_hand_and_gradients():
    layer = QuantLinear(3, 2, weight_bits=1, input_bits=2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.2, 0.0], [-2.0, 0.3, -0.1]]))
        layer.bias.copy_(torch.tensor([0.1, -0.1]))
    x = torch.tensor([[0.9, 0.4, 1.5]], requires_grad=True)
    y = layer(x)
    # levels round(3 clip(x, 0, 1)) = [3, 1, 3]; binary weights [[1, -1, 1], [-1, 1, -1]]
    assert torch.allclose(y, torch.tensor([[(3 - 1 + 3) / 3 + 0.1, (-3 + 1 - 3) / 3 - 0.1]]))
    y.sum().backward()
    # d/dx: sum of the binary weight columns, passed where 0 <= x <= 1; d/dW: x_q, passed where |W| <= 1
    assert torch.allclose(x.grad, torch.tensor([[0.0, 0.0, 0.0]]))
    assert torch.allclose(layer.weight.grad, torch.tensor([[1.0, 1 / 3, 1.0], [0.0, 1 / 3, 1.0]]))


def test_real_input_first_layer_and_shapes():
    layer = QuantLinear(5, 4, input_bits=None, bias=False)
    x = torch.randn(2, 3, 5)
    assert torch.allclose(layer(x), x @ binarize(layer.weight).T)
    assert layer(x).shape == (2, 3, 4)
    conv = QuantConv2d(3, 6, 3, padding=1, weight_bits=2, input_bits=1)
    images = torch.randn(2, 3, 7, 5, requires_grad=True)
    out = conv(images)
    assert out.shape == (2, 6, 7, 5)
    expected = F.conv2d(binarize(images), conv.quantized_weight(), conv.bias, padding=1)
    assert torch.allclose(out, expected, atol=1e-5)
    out.square().sum().backward()
    assert images.grad.shape == images.shape and conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("input_bits", [1, 2, 4])
def test_packed_layer_equals_float_layer_in_eval(native, input_bits):
    torch.manual_seed(input_bits)
    layer = QuantLinear(97, 11, input_bits=input_bits).eval()
    x = torch.randn(6, 97) * 0.8 + 0.3
    with use_native(native):
        packed = layer.pack()
        assert isinstance(packed, PackedBinaryLinear)
        assert torch.equal(packed(x), layer(x))  # bit for bit
        assert packed(x[None]).shape == (1, 6, 11)
    restored = PackedBinaryLinear(torch.zeros_like(packed.weight), 97, input_bits, torch.zeros(11))
    restored.load_state_dict(packed.state_dict())
    assert torch.equal(restored(x), packed(x))


def test_packed_weight_memory_is_32_times_smaller():
    layer = QuantLinear(512, 64, input_bits=2)
    assert layer.weight.nbytes == 32 * layer.pack().weight.nbytes


def test_latent_clipping_hook_keeps_weights_in_range_and_resumes():
    torch.manual_seed(0)
    model = nn.Sequential(QuantLinear(8, 16), nn.Tanh(), QuantLinear(16, 4, input_bits=2), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight.mul_(5)
        model[3].weight.fill_(3.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=2.0)
    clipping = LatentWeightClipping(model, optimizer)
    assert clipping.names == ["0.weight", "2.weight"] and set(quantized_layers(model)) == {"0", "2"}
    assert model[0].weight.abs().max() <= 1  # clipped on attaching
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(10, 8)).sum().backward()
        optimizer.step()
        assert model[0].weight.abs().max() <= 1 and model[2].weight.abs().max() <= 1
        assert (model[0].weight.abs() == 1).any()  # the large step took some to the bound
    assert (model[3].weight.abs() > 1).any()  # a real-valued layer is not clipped
    state = clipping.state_dict()
    assert state == {"names": ["0.weight", "2.weight"], "bound": 1.0, "step_count": 3}
    other = LatentWeightClipping(model, torch.optim.SGD(model.parameters(), lr=1.0), bound=0.5)
    other.load_state_dict(state)
    assert other.step_count == 3 and other.bound == 1.0
    clipping.remove()
    other.remove()


def test_sparsity_manager_runs_on_quantised_layers():
    torch.manual_seed(0)
    model = nn.Sequential(QuantLinear(20, 32), nn.BatchNorm1d(32), QuantLinear(32, 5, input_bits=2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    manager = GMP(model, optimizer, final_density=0.5, end=4, delta_t=2)
    LatentWeightClipping(model, optimizer)
    for _ in range(6):
        optimizer.zero_grad()
        F.cross_entropy(model(torch.randn(16, 20)), torch.randint(0, 5, (16,))).backward()
        optimizer.step()
    mask = model[2].weight_mask
    assert 0.4 <= mask.float().mean() <= 0.6
    quantised = model[2].quantized_weight()
    assert torch.equal(quantised == 0, ~mask)  # pruned weights are 0, not sign(0) = +1
    with pytest.raises(ValueError, match="cannot be packed"):
        model[2].pack()
    manager.remove()


def test_bad_arguments_are_refused(library_error):
    for kwargs, message in [({"weight_bits": 0}, "weight_bits must be"), ({"weight_bits": 1.0}, "weight_bits must be"),
                            ({"input_bits": 9}, "input_bits must be"), ({"input_bits": True}, "input_bits must be"),
                            ({"ste": "none"}, "ste must be one of")]:
        with library_error() as info:
            QuantLinear(4, 2, **kwargs)
        assert info.match(message)
    with library_error() as info:
        QuantLinear(4, 2)(torch.ones(1, 4, dtype=torch.int64))
    assert info.match("floating-point")
    with library_error() as info:
        QuantLinear(4, 2, weight_bits=2, input_bits=2).pack()
    assert info.match("weight_bits=1")
    with library_error() as info:
        QuantLinear(4, 2).pack()
    assert info.match("input_bits=None")
    with library_error() as info:
        PackedBinaryLinear(torch.zeros(3, 6, dtype=torch.int32), 70, 2)
    assert info.match("weight must be an int32 tensor")
    packed = QuantLinear(70, 3, input_bits=2).pack()
    with library_error() as info:
        packed(torch.ones(2, 71))
    assert info.match(r"\[\*, 70\]")
    with library_error() as info:
        LatentWeightClipping(nn.Linear(2, 2), torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1))
    assert info.match("no QuantLinear")
    model = QuantLinear(2, 2)
    with library_error() as info:
        LatentWeightClipping(model, torch.optim.SGD([model.bias], lr=0.1))
    assert info.match("not among the optimizer")


@pytest.mark.parametrize("input_bits", [1, 2])
def test_networks_and_packed_model_agree_exactly(input_bits):
    torch.manual_seed(0)
    model = quantized_mlp(30, (40, 24), 5, weight_bits=1, input_bits=input_bits)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):  # move the batch-norm statistics and weights away from their initial values
        optimizer.zero_grad()
        F.cross_entropy(model(torch.rand(32, 30)), torch.randint(0, 5, (32,))).backward()
        optimizer.step()
    model.eval()
    packed = pack_model(model)
    kinds = [type(m).__name__ for m in packed]
    assert kinds == ["QuantLinear", "BatchNorm1d", "PackedBinaryLinear", "BatchNorm1d", "PackedBinaryLinear",
                     "BatchNorm1d"]  # the first layer keeps its real input and stays a QuantLinear
    x = torch.rand(50, 30)
    assert torch.equal(packed(x), model(x))
    assert isinstance(model[2], QuantLinear)  # the original is not changed
    float_net = quantized_mlp(30, (40,), 5, weight_bits=None, input_bits=None)
    assert [type(m).__name__ for m in float_net] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    cnn = quantized_cnn((4, 6), 10, input_bits=input_bits)
    assert cnn(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert quantized_cnn((4,), 10, weight_bits=None, input_bits=None)(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_network_bad_arguments(library_error):
    with library_error() as info:
        quantized_mlp(4, (3,), 2, weight_bits=1, input_bits=None)
    assert info.match("both be None")
    with library_error() as info:
        quantized_mlp(4, (0,), 2)
    assert info.match("hidden must be")
    with library_error() as info:
        quantized_cnn((4, 4, 4), 10, image_size=28)
    assert info.match("divisible")
    with library_error() as info:
        pack_model("model")
    assert info.match("nn.Module")
