"""Intrinsic plasticity: the update rules by hand, and the output distribution moving toward its target."""

from __future__ import annotations

import pytest
import torch

from neuroplastic.dynamics import EchoStateNetwork, adapt_intrinsic, exponential_ip_update, gaussian_ip_update


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_rule_by_hand():
    # mu 0, sigma 0.5, y 0.5, z 1, a 2, eta 0.1: db = -0.1 * (0.5 / 0.25 * (0.5 + 1 - 0.25)) = -0.25,
    # da = 0.1 / 2 + db * 1 = -0.2
    da, db = gaussian_ip_update(torch.tensor([1.0]), torch.tensor([0.5]), torch.tensor([2.0]), eta=0.1, sigma=0.5)
    assert float(db) == pytest.approx(-0.25) and float(da) == pytest.approx(-0.2)
    # the batch mean of the per-sample updates
    z, y = torch.tensor([[1.0], [-1.0]]), torch.tensor([[0.5], [-0.5]])
    da, db = gaussian_ip_update(z, y, torch.tensor([2.0]), eta=0.1, sigma=0.5)
    assert float(db) == pytest.approx(0.0) and float(da) == pytest.approx(-0.2)


def test_exponential_rule_by_hand():
    # mu 0.25, y 0.5, z 2, a 1, eta 0.1: db = 0.1 * (1 - 6 * 0.5 + 0.25 / 0.25) = -0.1; da = 0.1 + 2 * db = -0.1
    da, db = exponential_ip_update(torch.tensor([2.0]), torch.tensor([0.5]), torch.tensor([1.0]), eta=0.1, mu=0.25)
    assert float(db) == pytest.approx(-0.1) and float(da) == pytest.approx(-0.1)


def test_gaussian_ip_moves_tanh_outputs_toward_the_target():
    esn = EchoStateNetwork(1, 30, spectral_radius=0.0, input_scaling=2.0, bias_scaling=0.5, generator=gen(0))
    u = torch.rand(1, 3000, 1, generator=gen(1)) * 1.6 - 0.8
    before = esn(u)[0]
    adapt_intrinsic(esn, torch.rand(1, 20000, 1, generator=gen(2)) * 1.6 - 0.8, eta=2e-3, mu=0.0, sigma=0.2)
    after = esn(u)[0]
    err_before = (before.std(0) - 0.2).abs().mean() + before.mean(0).abs().mean()
    err_after = (after.std(0) - 0.2).abs().mean() + after.mean(0).abs().mean()
    assert err_after < 0.25 * err_before
    assert float(after.mean(0).abs().max()) < 0.05
    # most units reach the target's spread; those with tiny input weights need larger gains and converge slowest
    assert float((after.std(0) - 0.2).abs().median()) < 0.01


def test_exponential_ip_moves_fermi_outputs_toward_the_target_mean():
    esn = EchoStateNetwork(1, 30, spectral_radius=0.5, input_scaling=2.0, activation="fermi", generator=gen(3))
    u = torch.rand(1, 3000, 1, generator=gen(4)) * 1.6 - 0.8
    before = esn(u)[0].mean(0)
    adapt_intrinsic(esn, torch.rand(1, 20000, 1, generator=gen(5)) * 1.6 - 0.8, rule="exponential", eta=2e-3,
                    mu=0.2)
    after = esn(u)[0].mean(0)
    assert float((after - 0.2).abs().mean()) < 0.2 * float((before - 0.2).abs().mean())


def test_bad_arguments_are_refused(library_error):
    esn = EchoStateNetwork(1, 4)
    with library_error() as info:
        adapt_intrinsic(esn, torch.rand(1, 5, 1), rule="exponential", mu=0.2)
    assert info.match("fermi")
    with library_error() as info:
        adapt_intrinsic(esn, torch.rand(1, 5, 1), sigma=0.0)
    assert info.match("sigma")
    with library_error() as info:
        gaussian_ip_update(torch.rand(3, 4), torch.rand(3, 5), torch.ones(4), eta=0.1)
    assert info.match("shape")
    with library_error() as info:
        exponential_ip_update(torch.rand(4), torch.rand(4), torch.ones(4), eta=0.1, mu=1.5)
    assert info.match("mu")
