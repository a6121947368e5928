"""The event-driven linear layer against torch.nn.functional.linear: values and all three gradients."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroplastic.neurons import SpikeLinear, spike_linear
from neuroplastic.neurons.spike_kernels import use_native


def sparse_input(shape, density, dtype, seed, binary=True):
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape, generator=g) < density
    values = torch.ones(shape, dtype=dtype) if binary else torch.randn(shape, generator=g, dtype=dtype)
    return (mask * values).to(dtype)


def check(x, weight, bias, atol):
    x, weight = x.clone().requires_grad_(), weight.clone().requires_grad_()
    bias = None if bias is None else bias.clone().requires_grad_()
    g = torch.randn(*x.shape[:-1], weight.shape[0], dtype=x.dtype, generator=torch.Generator().manual_seed(9))
    leaves = [t for t in (x, weight, bias) if t is not None]
    out = spike_linear(x, weight, bias)
    grads = torch.autograd.grad((out * g).sum(), leaves)
    ref = F.linear(x, weight, bias)
    ref_grads = torch.autograd.grad((ref * g).sum(), leaves)
    torch.testing.assert_close(out, ref, rtol=0, atol=atol)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=atol)


@pytest.mark.parametrize("out_features", [37, 64, 100])  # tails of the 32-wide tiles
@pytest.mark.parametrize("binary", [True, False])
def test_equals_dense_linear_in_float64(out_features, binary):
    x = sparse_input((3, 11, 45), 0.12, torch.float64, seed=out_features, binary=binary)
    weight = torch.randn(out_features, 45, dtype=torch.float64)
    check(x, weight, torch.randn(out_features, dtype=torch.float64), atol=1e-12)
    check(x, weight, None, atol=1e-12)


def test_equals_dense_linear_in_float32_with_empty_rows_and_columns():
    x = sparse_input((64, 200), 0.05, torch.float32, seed=1)
    x[:10] = 0  # empty rows
    x[:, 50:60] = 0  # inputs that never fire
    check(x, torch.randn(130, 200), torch.randn(130), atol=1e-4)
    check(torch.zeros(5, 200), torch.randn(130, 200), torch.randn(130), atol=0)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
@pytest.mark.parametrize("out_features", [37, 64])
def test_transposed_weights_are_read_and_differentiated_in_their_own_layout(dtype, atol, out_features):
    # weights stored [I, O] (the plastic layers' layout) and passed as their transpose view: same values and
    # gradients as F.linear, and the gradient reaches the [I, O] leaf contiguous, as the leaf is laid out
    x = sparse_input((4, 9, 45), 0.15, dtype, seed=out_features, binary=False)
    stored = torch.randn(45, out_features, dtype=dtype, generator=torch.Generator().manual_seed(3))
    bias = torch.randn(out_features, dtype=dtype)
    assert not stored.t().is_contiguous()
    check(x, stored.t(), bias, atol=atol)
    leaf = stored.clone().requires_grad_()
    g = torch.randn(4, 9, out_features, dtype=dtype, generator=torch.Generator().manual_seed(4))
    (spike_linear(x, leaf.t(), bias) * g).sum().backward()
    assert leaf.grad.is_contiguous()
    torch.testing.assert_close(leaf.grad, (x.reshape(-1, 45).T @ g.reshape(-1, out_features)), rtol=0, atol=atol)


def test_dense_input_and_disabled_kernels_fall_back_to_the_dense_product():
    x = sparse_input((20, 30), 0.9, torch.float64, seed=2)  # denser than max_density 0.25
    check(x, torch.randn(7, 30, dtype=torch.float64), None, atol=1e-12)
    with use_native(False):
        check(sparse_input((20, 30), 0.1, torch.float64, seed=3), torch.randn(7, 30, dtype=torch.float64),
              torch.randn(7, dtype=torch.float64), atol=1e-12)


def test_spike_linear_module_is_a_drop_in_nn_linear():
    torch.manual_seed(0)
    dense = nn.Linear(40, 24)
    spiking = SpikeLinear(40, 24)
    spiking.load_state_dict(dense.state_dict())
    x = sparse_input((4, 9, 40), 0.1, torch.float32, seed=4)
    torch.testing.assert_close(spiking(x), dense(x), rtol=0, atol=1e-5)
    spiking(x).sum().backward()
    dense(x).sum().backward()
    torch.testing.assert_close(spiking.weight.grad, dense.weight.grad, rtol=0, atol=1e-4)
    torch.testing.assert_close(spiking.bias.grad, dense.bias.grad, rtol=0, atol=1e-4)
    assert isinstance(spiking, nn.Linear)


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError, match="must agree on I"):
        spike_linear(torch.zeros(2, 5), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"bias must have shape \[3\]"):
        spike_linear(torch.zeros(2, 4), torch.zeros(3, 4), torch.zeros(4))
    with pytest.raises(ValueError, match="max_density must be a finite number in"):
        SpikeLinear(3, 4, max_density=2.0)
