"""Quantisers: forward values and straight-through gradient masks by hand, k-bit levels, gradient quantiser."""

from __future__ import annotations

import torch

from neuroplastic.quantization import (
    Binarize,
    QuantActivation,
    QuantGradient,
    activation_levels,
    binarize,
    clip_latent_weights,
    quantize_activations,
    quantize_gradients,
    quantize_weights,
)


def _grad(function, x):
    x = x.clone().requires_grad_(True)
    y = function(x)
    y.backward(torch.ones_like(y))
    return y.detach(), x.grad


def test_binarize_values_and_gated_ste_by_hand():
    x = torch.tensor([-2.0, -1.0, -0.3, 0.0, 0.4, 1.0, 1.5])
    y, g = _grad(binarize, x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]  # sign(0) = +1
    assert g.tolist() == [0, 1, 1, 1, 1, 1, 0]  # passed where |x| <= 1
    y, g = _grad(lambda t: binarize(t, ste="identity"), x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1] and g.tolist() == [1] * 7
    assert torch.equal(Binarize()(x), y)


def test_k_bit_weights_levels_and_gradient():
    w = torch.tensor([-3.0, -1.0, -0.5, -0.1, 0.1, 0.34, 0.5, 1.0, 2.0])
    y, g = _grad(lambda t: quantize_weights(t, 2), w)
    # 4 levels {-1, -1/3, 1/3, 1}: l = round(3 (w + 1) / 2), half to even
    expected = torch.tensor([-1, -1, -1 / 3, -1 / 3, 1 / 3, 1 / 3, 1 / 3, 1, 1])
    assert torch.allclose(y, expected)
    assert g.tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0]
    levels = quantize_weights(torch.linspace(-1, 1, 1001), 3).unique()
    assert len(levels) == 8 and torch.allclose(levels, torch.linspace(-1, 1, 8))
    assert torch.equal(quantize_weights(w, 1), binarize(w))


def test_k_bit_activations_levels_and_gradient():
    x = torch.tensor([-0.5, 0.0, 0.1, 0.2, 0.5, 0.9, 1.0, 1.7])
    y, g = _grad(lambda t: quantize_activations(t, 2), x)
    assert torch.allclose(y, torch.tensor([0, 0, 0, 1 / 3, 2 / 3, 1, 1, 1]))  # round(3 * 0.5) = 2 (half to even)
    assert g.tolist() == [0, 1, 1, 1, 1, 1, 1, 0]
    levels, g = _grad(lambda t: activation_levels(t, 2), x)
    assert levels.tolist() == [0, 0, 0, 1, 2, 3, 3, 3] and g.tolist() == [0, 3, 3, 3, 3, 3, 3, 0]
    _, g = _grad(lambda t: quantize_activations(t, 2, ste="identity"), x)
    assert g.tolist() == [1] * 8
    assert torch.equal(quantize_activations(x - 0.5, 1), binarize(x - 0.5))
    assert torch.equal(QuantActivation(2)(x), y)
    assert len(quantize_activations(torch.linspace(-1, 2, 999), 4).unique()) == 16


def test_gradient_quantiser_is_unbiased_and_k_bit():
    g = torch.tensor([0.3, -1.2, 0.05, 2.0])
    samples = []
    generator = torch.Generator().manual_seed(0)
    for _ in range(4000):
        x = torch.zeros(4, requires_grad=True)
        quantize_gradients(x, 3, generator).backward(g)
        samples.append(x.grad)
    samples = torch.stack(samples)
    n = 2 ** 2 - 1
    assert torch.allclose((samples / 2.0 * n), (samples / 2.0 * n).round(), atol=1e-5)  # multiples of s / n
    assert samples.abs().max() <= 2.0 + 1e-6
    assert torch.allclose(samples.mean(0), g, atol=0.03)
    module = QuantGradient(4, seed=1)
    state = module.state_dict()
    x = torch.ones(3, requires_grad=True)
    module(x).backward(torch.tensor([0.1, 0.2, 0.3]))
    first = x.grad.clone()
    module.load_state_dict(state)
    x.grad = None
    module(x).backward(torch.tensor([0.1, 0.2, 0.3]))
    assert torch.equal(x.grad, first)  # the generator's state is in the state dict


def test_clip_latent_weights():
    w = torch.tensor([-3.0, 0.2, 1.5])
    clip_latent_weights([w])
    assert w.tolist() == [-1.0, 0.20000000298023224, 1.0]


def test_bad_inputs_are_refused(library_error):
    x = torch.zeros(3)
    for bits in (0, -1):
        with library_error() as info:
            quantize_weights(x, bits)
        assert info.match("bits must be")
    for bits in (1.0, True, "2"):
        with library_error() as info:
            quantize_activations(x, bits)
        assert info.match("bits must be")
    with library_error() as info:
        binarize(torch.zeros(3, dtype=torch.int64))
    assert info.match("floating-point")
    with library_error() as info:
        binarize([1.0, 2.0])
    assert info.match("torch.Tensor")
    with library_error() as info:
        binarize(x, ste="linear")
    assert info.match("ste must be one of")
    with library_error() as info:
        quantize_gradients(x, 1, torch.Generator())
    assert info.match("bits must be")
    with library_error() as info:
        quantize_gradients(x, 4, 0)
    assert info.match("generator must be")
    with library_error() as info:
        clip_latent_weights([x], bound=0.0)
    assert info.match("bound must be")
    with library_error() as info:
        QuantActivation(bits=0)
    assert info.match("bits must be")
