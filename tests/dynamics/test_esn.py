"""The echo-state network: shapes, seeded construction, spectral radius, the run against a slow reference."""

from __future__ import annotations

import pytest
import torch

from neuroplastic.dynamics import EchoStateNetwork, scale_to_spectral_radius, spectral_radius


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shapes_seeding_and_spectral_radius():
    esn = EchoStateNetwork(3, 40, spectral_radius=1.3, input_scaling=0.5, generator=gen(0))
    again = EchoStateNetwork(3, 40, spectral_radius=1.3, input_scaling=0.5, generator=gen(0))
    other = EchoStateNetwork(3, 40, spectral_radius=1.3, input_scaling=0.5, generator=gen(1))
    assert torch.equal(esn.weight, again.weight) and torch.equal(esn.input_weight, again.input_weight)
    assert not torch.equal(esn.weight, other.weight)
    assert spectral_radius(esn.weight) == pytest.approx(1.3, rel=1e-5)
    assert float(esn.input_weight.abs().max()) <= 0.5
    u = torch.rand(5, 17, 3, generator=gen(2))
    assert esn(u).shape == (5, 17, 40)
    sparse = EchoStateNetwork(1, 200, spectral_radius=0.9, density=0.1, generator=gen(3))
    assert 0.07 < float((sparse.weight != 0).float().mean()) < 0.13
    assert spectral_radius(sparse.weight) == pytest.approx(0.9, rel=1e-5)


@pytest.mark.parametrize("activation", ["tanh", "fermi"])
def test_run_equals_a_step_by_step_reference(activation):
    esn = EchoStateNetwork(2, 15, spectral_radius=1.1, leak=0.4, bias_scaling=0.3, activation=activation,
                           generator=gen(4)).double()
    esn.gain.copy_(torch.linspace(0.5, 2.0, 15))
    u = torch.randn(3, 30, 2, generator=gen(5), dtype=torch.float64)
    x0 = torch.randn(3, 15, generator=gen(6), dtype=torch.float64)
    states, slopes = esn.run(u, x0, return_slopes=True)
    x = x0
    f = torch.tanh if activation == "tanh" else torch.sigmoid
    for t in range(30):
        z = esn.gain * (esn.weight @ x.unsqueeze(-1)).squeeze(-1) + esn.gain * (u[:, t] @ esn.input_weight.T)
        y = f(z + esn.bias)
        x = 0.6 * x + 0.4 * y
        torch.testing.assert_close(states[:, t], x)
        dy = esn.gain * ((1 - y * y) if activation == "tanh" else y * (1 - y))
        torch.testing.assert_close(slopes[:, t], dy)
    torch.testing.assert_close(esn.step(x0, u[:, 0]), states[:, 0])


def test_state_dict_round_trip():
    esn = EchoStateNetwork(1, 8, generator=gen(7))
    esn.gain.fill_(1.7)
    copy = EchoStateNetwork(1, 8, generator=gen(8))
    copy.load_state_dict(esn.state_dict())
    u = torch.rand(1, 10, 1, generator=gen(9))
    assert torch.equal(copy(u), esn(u))


def test_given_weights_and_rescaling():
    w = torch.diag(torch.tensor([0.5, -2.0, 1.0]))
    assert spectral_radius(scale_to_spectral_radius(w, 1.0)) == pytest.approx(1.0)
    esn = EchoStateNetwork(1, 3, weight=w, input_weight=torch.ones(3, 1))
    assert torch.equal(esn.weight, w)


def test_bad_arguments_are_refused(library_error):
    with library_error() as info:
        EchoStateNetwork(1, 10, leak=0.0)
    assert info.match("leak")
    with library_error() as info:
        EchoStateNetwork(1, 10, activation="relu")
    assert info.match("activation")
    with library_error() as info:
        EchoStateNetwork(1, 10, spectral_radius=float("inf"))
    assert info.match("spectral_radius")
    with library_error() as info:
        EchoStateNetwork(1, True)
    assert info.match("units")
    esn = EchoStateNetwork(2, 10)
    with library_error() as info:
        esn(torch.rand(1, 5, 3))
    assert info.match("inputs")
    with library_error() as info:
        esn(torch.full((1, 5, 2), float("nan")))
    assert info.match("finite")
    with library_error() as info:
        esn(torch.rand(1, 0, 2))
    assert info.match("time step")
    with library_error() as info:
        scale_to_spectral_radius(torch.zeros(3, 3), 1.0)
    assert info.match("spectral radius 0")
