"""Synaptic rules on an echo-state network's recurrent weights."""

from __future__ import annotations

import pytest
import torch

from neuroplastic.dynamics import EchoStateNetwork, spectral_radius
from neuroplastic.models import adapt_reservoir_weights
from neuroplastic.plasticity import BCMRule, OjaRule


def test_oja_rule_on_reservoir_weights_equals_a_step_by_step_reference():
    esn = EchoStateNetwork(1, 6, spectral_radius=0.9, leak=0.5, generator=torch.Generator().manual_seed(0)).double()
    u = torch.rand(2, 20, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) - 0.5
    w = esn.weight.clone()
    x = torch.zeros(2, 6, dtype=torch.float64)
    for t in range(20):
        new = 0.5 * x + 0.5 * torch.tanh(x @ w.T + u[:, t] @ esn.input_weight.T)
        # H = W^T [pre, post]; Oja: H[i, j] += eta post[j] (pre[i] - post[j] H[i, j]), averaged over the batch
        h = w.T.unsqueeze(0) + 0.05 * new.unsqueeze(1) * (x.unsqueeze(2) - new.unsqueeze(1) * w.T.unsqueeze(0))
        w = h.mean(0).T
        x = new
    final = adapt_reservoir_weights(esn, u, OjaRule(), 0.05)
    torch.testing.assert_close(esn.weight, w)
    torch.testing.assert_close(final, x)


def test_restore_radius_and_rules_with_a_threshold():
    esn = EchoStateNetwork(1, 10, spectral_radius=1.1, generator=torch.Generator().manual_seed(2))
    u = torch.rand(1, 50, 1, generator=torch.Generator().manual_seed(3)) - 0.5
    before = esn.weight.clone()
    adapt_reservoir_weights(esn, u, BCMRule(), 0.1, restore_radius=True)
    assert not torch.equal(esn.weight, before)
    assert spectral_radius(esn.weight) == pytest.approx(1.1, rel=1e-4)


def test_bad_arguments_are_refused(library_error):
    esn = EchoStateNetwork(1, 4)
    with library_error() as info:
        adapt_reservoir_weights(esn, torch.rand(1, 5, 1), "oja", 0.1)
    assert info.match("PlasticityRule")
    with library_error() as info:
        adapt_reservoir_weights(esn, torch.rand(1, 5, 2), OjaRule(), 0.1)
    assert info.match("inputs")
