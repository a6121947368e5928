"""Spiking networks of the association task: the non-plastic recurrent LIF layer and the leaky readout."""

from __future__ import annotations

import torch

from neuroplastic.models import AssociationSNN, PlainRecurrentLIF
from neuroplastic.neurons.lif import decay_from_tau
from neuroplastic.plasticity.spiking import PlasticLIF, spike_trace


def _layer(in_features: int = 4, out_features: int = 3) -> PlainRecurrentLIF:
    layer = PlainRecurrentLIF(in_features, out_features, tau_mem=10.0, surrogate_slope=5.0)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(in_features, out_features, generator=torch.Generator().manual_seed(0)))
        layer.recurrent_weight.zero_()
    return layer


def test_parameters_are_named_as_the_plastic_layers():
    layer = _layer()
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"weight", "bias", "recurrent_weight"}
    plastic = PlasticLIF(4, 3, recurrent=True, rule="hebbian", alpha="neuron")
    for name in names:
        assert plastic.get_parameter(name).shape == layer.get_parameter(name).shape, name
    assert torch.equal(layer.bias, torch.zeros(3))


def test_membrane_integrates_and_resets_softly_by_hand():
    layer = _layer(1, 1)
    with torch.no_grad():
        layer.weight.fill_(0.6)
    spikes, state = layer(torch.ones(1, 4, 1))
    assert state is None and spikes.shape == (1, 4, 1)
    # v_t = decay v_{t-1} + 0.6 (minus 1 after a spike); a spike when v_t reaches the threshold 1
    decay = float(decay_from_tau(torch.tensor(10.0)))
    v, expected = 0.0, []
    for _ in range(4):
        v = decay * v + 0.6
        spike = float(v >= 1.0)
        v -= spike
        expected.append(spike)
    assert spikes[0, :, 0].tolist() == expected and sum(expected) >= 1


def test_recurrent_weights_feed_the_previous_spikes_back():
    layer = _layer(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.0]]))  # input 0 drives neuron 0 only
        layer.recurrent_weight.copy_(torch.tensor([[0.0, 2.0], [0.0, 0.0]]))  # neuron 0 drives neuron 1
    inputs = torch.zeros(1, 3, 2)
    inputs[0, 0, 0] = 1.0
    spikes, _ = layer(inputs)
    assert spikes[0, 0].tolist() == [1.0, 0.0] and spikes[0, 1, 1] == 1.0


def test_readout_reads_a_leaky_trace_of_the_spikes():
    torch.manual_seed(0)
    model = AssociationSNN(_layer(4, 3), hidden_size=3, classes=2, readout_decay=0.8)
    inputs = (torch.rand(2, 6, 4, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    logits, spikes = model(inputs)
    assert logits.shape == (2, 6, 2) and spikes.shape == (2, 6, 3)
    torch.testing.assert_close(logits, model.readout(spike_trace(spikes, 0.8)))
    logits.sum().backward()  # gradients reach the spiking layer through the surrogate
    assert model.layer.weight.grad is not None
