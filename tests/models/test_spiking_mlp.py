"""Spiking MLPs: the Grad R paper's SNN against a literal SpikingJelly simulation, its activity counts by hand;
the reset/MPR spiking MLP's shapes, encodings, seeded initialisation and argument checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuroplastic.models import SpikingMLP, SpikingRateMLP, spiking_activity
from neuroplastic.neurons import LIF
from neuroplastic.structure.rewiring import GradRewiring


# ------------------------------------------------------------------------------------------ SpikingRateMLP
def spikingjelly_reference(model: SpikingRateMLP, x: torch.Tensor, tau: float, threshold: float) -> torch.Tensor:
    """SpikingJelly's LIFNode as the authors configure it, written out: v += (x - v) / tau, fire, hard reset to 0."""
    w1, w2 = model.fc1.weight, model.fc2.weight
    v1, v2 = torch.zeros(len(x), w1.shape[0]), torch.zeros(len(x), w2.shape[0])
    counts = torch.zeros(len(x), w2.shape[0])
    static = x @ w1.t()
    for _ in range(model.time_steps):
        v1 = v1 + (static - v1) / tau
        s1 = (v1 > threshold).float()
        v1 = v1 * (1 - s1)
        v2 = v2 + (s1 @ w2.t() - v2) / tau
        s2 = (v2 > threshold).float()
        v2 = v2 * (1 - s2)
        counts += s2
    return counts / model.time_steps


@pytest.mark.parametrize("tau", [2.0, 4.0])
def test_the_classifier_is_the_authors_spikingjelly_network(tau):
    torch.manual_seed(0)
    model = SpikingRateMLP(hidden=40, time_steps=6, tau=tau, threshold=1.0)
    with torch.no_grad():
        model.fc1.weight.mul_(8.0)
        model.fc2.weight.mul_(8.0)
    x = torch.randn(7, 784)
    with torch.no_grad():
        rates, hidden = model(x, return_hidden=True)
        expected = spikingjelly_reference(model, x, tau, 1.0)
    assert hidden.shape == (7, 6, 40) and rates.shape == (7, 10)
    assert 0 < float(expected.sum()) and float(hidden.mean()) > 0.05  # the test exercises spikes
    assert torch.equal(rates, expected)


def test_spiking_activity_counts_spikes_and_synaptic_operations_by_hand():
    model = SpikingRateMLP(hidden=3, time_steps=2, tau=2.0, threshold=1.0, in_features=2, classes=2)
    with torch.no_grad():
        # currents (times 1/tau = 1/2): neuron 0 gets 2 (fires at both steps); neuron 1 gets 0.75 (h = 0.75 < 1,
        # then 0.5 * 0.75 + 0.75 = 1.125: fires at the second step); neuron 2 gets 0
        model.fc1.weight.copy_(torch.tensor([[4.0, 0.0], [1.5, 0.0], [0.0, 0.0]]))
        model.fc2.weight.copy_(torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))  # fan-outs 1, 2, 1
    x = torch.tensor([[1.0, 5.0]])
    _, hidden = model(x, return_hidden=True)
    assert hidden[0].tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    activity = spiking_activity(model, x)
    assert activity["hidden_rate"] == pytest.approx(3 / (2 * 3))
    assert activity["synops"] == pytest.approx(2 * 1 + 1 * 2)  # neuron 0: 2 spikes x 1, neuron 1: 1 spike x 2
    assert activity["macs"] == 2.0  # the nonzero weights of the static layer


def test_grad_r_attaches_to_both_layers_and_pruned_weights_are_exactly_zero():
    model = SpikingRateMLP(hidden=8, time_steps=3)
    rewiring = GradRewiring(model, nn.Linear, alpha=1.0)
    assert rewiring.names == ["fc1.weight", "fc2.weight"]
    with torch.no_grad():
        rewiring.theta("fc2.weight")[:, :4] = -1.0
    assert torch.equal(model.fc2.weight[:, :4], torch.zeros(10, 4))
    assert rewiring.connectivity().connected == int((model.fc1.weight != 0).sum()) + 10 * 4


def test_rate_mlp_bad_arguments():
    with pytest.raises(ValueError, match=r"tau \(SpikingJelly's decay is 1 - 1/tau\) must be a finite number > 1, "
                                         r"got 1.0"):
        SpikingRateMLP(tau=1.0)
    with pytest.raises(ValueError, match="hidden must be"):
        SpikingRateMLP(hidden=0)
    with pytest.raises(ValueError, match="x must have shape"):
        SpikingRateMLP(hidden=4)(torch.zeros(2, 10))


# ------------------------------------------------------------------------------------------ SpikingMLP
def mlp(**kw):
    args = dict(decay=0.9, threshold=0.5, reset="soft", rectifier=False, in_features=12, classes=3)
    args.update(kw)
    return SpikingMLP(6, 4, **args)


@pytest.mark.parametrize("encoding", ["direct", "rate"])
@pytest.mark.parametrize("norm", [False, True])
def test_spiking_mlp_shapes_and_currents(encoding, norm):
    torch.manual_seed(0)
    model = mlp(encoding=encoding, norm=norm)
    x = torch.rand(5, 12)
    generator = torch.Generator().manual_seed(1)
    currents = model.hidden_currents(x, generator)
    assert currents.shape == (5, 4, 6)
    if encoding == "direct":  # the same current at every step
        assert torch.equal(currents, currents[:, :1].expand_as(currents))
    out = model(x, torch.Generator().manual_seed(1))
    assert out.shape == (5, 3)
    # forward is the readout of the second layer's spikes, averaged over the steps
    s1, _ = model.lif1(model.hidden_currents(x, torch.Generator().manual_seed(1)))
    s2, _ = model.lif2(model.second_currents(s1))
    assert torch.equal(out, model.readout(s2).mean(1))


def test_spiking_mlp_rate_encoding_draws_from_the_generator():
    model = mlp(encoding="rate")
    x = torch.full((2, 12), 0.5)
    first = model(x, torch.Generator().manual_seed(3))
    assert torch.equal(first, model(x, torch.Generator().manual_seed(3)))


def test_spiking_mlp_layers_and_seeded_initialisation_in_creation_order():
    torch.manual_seed(5)
    model = mlp(reset="hard", rectifier=True, surrogate="rectangle")
    torch.manual_seed(5)
    fc1 = nn.Linear(12, 6)
    fc2 = nn.Linear(6, 6)
    readout = nn.Linear(6, 3)
    for got, want in ((model.fc1, fc1), (model.fc2, fc2), (model.readout, readout)):
        assert torch.equal(got.weight, want.weight) and torch.equal(got.bias, want.bias)
    assert isinstance(model.lif1, LIF) and (model.lif1.reset, model.lif1.rectifier) == ("hard", True)
    assert (model.lif2.reset, model.lif2.rectifier) == ("hard", True)
    assert float(model.lif1.decay().flatten()[0]) == pytest.approx(0.9)
    assert math.isclose(float(model.lif1.tau.flatten()[0]), -1.0 / math.log(0.9), rel_tol=1e-6)


def test_spiking_mlp_bad_arguments():
    with pytest.raises(ValueError, match="hidden must be"):
        SpikingMLP(0, 4, decay=0.9, threshold=0.5, reset="soft", rectifier=False)
    with pytest.raises(ValueError, match="time_steps must be"):
        SpikingMLP(4, 0, decay=0.9, threshold=0.5, reset="soft", rectifier=False)
    with pytest.raises(ValueError, match=r"decay must be a finite number in \(0, 1\), got 1.0"):
        mlp(decay=1.0)
    with pytest.raises(ValueError, match="encoding must be"):
        mlp(encoding="latency")
    with pytest.raises(ValueError, match="surrogate must be"):
        mlp(surrogate="atan")
