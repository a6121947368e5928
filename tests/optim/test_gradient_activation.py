"""Gradient activation functions: sign kept, magnitude bounded, both variants by hand, per-group values."""

from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from neuroplastic.optim import GradientActivation, gaf


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20),
       st.floats(0.01, 5.0), st.floats(0.01, 10.0))
def test_gaf_keeps_the_sign_and_bounds_the_magnitude(values, alpha, beta):
    x = torch.tensor(values, dtype=torch.float64)
    y = gaf(x, alpha, beta)
    assert torch.equal(torch.sign(y), torch.sign(x))
    assert (y.abs() <= alpha * math.pi / 2).all()
    assert (y.abs() <= alpha * beta * x.abs() + 1e-12).all()  # never larger than the slope at 0 allows


def test_gaf_by_hand():
    x = torch.tensor([0.0, 1e-4, -1.0, 100.0], dtype=torch.float64)
    y = gaf(x)
    assert y[0] == 0 and math.isclose(float(y[1]), 1.35e-4, rel_tol=1e-6)
    assert math.isclose(float(y[2]), -0.3 * math.atan(4.5)) and float(y[3]) < 0.3 * math.pi / 2


def _step(optimizer, parameter, grad):
    optimizer.zero_grad()
    parameter.grad = grad.clone()
    optimizer.step()


def test_gradient_variant_on_sgd_and_per_group_values():
    a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([{"params": [a]}, {"params": [b], "gaf_alpha": 1.0, "gaf_beta": 1.0}], lr=0.1)
    GradientActivation(optimizer)
    a.grad, b.grad = torch.tensor([2.0, -0.01, 0.0]), torch.tensor([3.0, -3.0])
    optimizer.step()
    assert torch.allclose(a.detach(), -0.1 * 0.3 * torch.atan(4.5 * torch.tensor([2.0, -0.01, 0.0])))
    assert torch.allclose(b.detach(), -0.1 * torch.atan(torch.tensor([3.0, -3.0])))
    assert optimizer.state_dict()["param_groups"][1]["gaf_alpha"] == 1.0  # saved with the optimizer


def test_momentum_variant_by_hand():
    p = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    optimizer = torch.optim.SGD([p], lr=0.5, momentum=0.9)
    activation = GradientActivation(optimizer, where="momentum")
    g1, g2 = torch.tensor([2.0, 0.1]), torch.tensor([-1.0, 0.1])
    _step(optimizer, p, g1)
    v = g1.clone()
    expected = torch.tensor([1.0, -1.0]) - 0.5 * gaf(v)
    assert torch.allclose(p.detach(), expected)
    _step(optimizer, p, g2)
    v = 0.9 * v + g2  # the buffer keeps the raw momentum
    assert torch.allclose(optimizer.state[p]["momentum_buffer"], v)
    assert torch.allclose(p.detach(), expected - 0.5 * gaf(v))
    activation.remove()
    before = p.detach().clone()
    _step(optimizer, p, g2)
    assert torch.allclose(p.detach(), before - 0.5 * (0.9 * v + g2))  # removed: plain SGD again


def test_gradient_variant_wraps_adam():
    p = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam([p], lr=0.1)
    GradientActivation(optimizer, alpha=0.5, beta=2.0)
    _step(optimizer, p, torch.tensor([4.0, -0.5]))
    assert torch.allclose(optimizer.state[p]["exp_avg"], 0.1 * gaf(torch.tensor([4.0, -0.5]), 0.5, 2.0))


def test_bad_arguments(library_error):
    p = torch.nn.Parameter(torch.zeros(2))
    with library_error() as info:
        GradientActivation(torch.optim.Adam([p]), where="momentum")
    assert info.match("needs torch.optim.SGD")
    with library_error() as info:
        GradientActivation(torch.optim.SGD([p], lr=0.1), where="momentum")
    assert info.match("momentum > 0")
    with library_error() as info:
        GradientActivation(torch.optim.SGD([p], lr=0.1), alpha=0.0)
    assert info.match("alpha must be")
    with library_error() as info:
        GradientActivation(torch.optim.SGD([p], lr=0.1), where="after")
    assert info.match("where must be one of")
    with library_error() as info:
        GradientActivation(torch.optim.SGD([{"params": [p], "gaf_beta": -1.0}], lr=0.1))
    assert info.match("beta must be")
    with library_error() as info:
        gaf(torch.zeros(2, dtype=torch.int64))
    assert info.match("floating-point")
    with library_error() as info:
        gaf(torch.zeros(2), beta=float("nan"))
    assert info.match("beta must be")
    with library_error() as info:
        GradientActivation("sgd")
    assert info.match("torch.optim.Optimizer")
