"""PlasticLinear, PlasticSynapses and Modulator: behaviour checked by hand."""

import pytest
import torch

from neuroplastic.plasticity import Modulator, PlasticLinear, PlasticSynapses


def hand_set_layer(**kwargs):
    layer = PlasticLinear(3, 2, alpha="scalar", **kwargs)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.synapses.alpha.fill_(1.0)
        if layer.synapses.eta is not None:
            layer.synapses.eta.fill_(1.0)
    return layer


def test_one_shot_binding_through_target():
    # eta = 1 decaying Hebbian: after one labelled example H = x ⊗ t, so a query x gives y = |x|^2 t.
    layer = hand_set_layer(rule="hebbian")
    x = torch.tensor([[1.0, 2.0, 0.0]])
    label = torch.tensor([[0.0, 1.0]])
    y, state = layer(x, target=label)
    assert torch.equal(y, torch.zeros(1, 2))  # the trace was empty when x was shown
    assert torch.equal(state.trace, torch.tensor([[[0.0, 1.0], [0.0, 2.0], [0.0, 0.0]]]))
    y, _ = layer(x, state)
    assert torch.allclose(y, torch.tensor([[0.0, 5.0]]))
    other, _ = layer(torch.tensor([[0.0, 0.0, 1.0]]), state)  # orthogonal query: nothing recalled
    assert torch.equal(other, torch.zeros(1, 2))


def test_one_shot_classification_of_several_classes():
    gen = torch.Generator().manual_seed(0)
    layer = PlasticLinear(64, 5, alpha="scalar", rule="clip", clip=100.0)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.zero_()
        layer.synapses.alpha.fill_(1.0)
        layer.synapses.eta.fill_(1.0)
    prototypes = torch.sign(torch.randn(5, 64, generator=gen))
    state = layer.initial_state(1)
    for k in range(5):
        _, state = layer(prototypes[k: k + 1], state, target=torch.eye(5)[k: k + 1])
    noisy = prototypes * torch.where(torch.rand(5, 64, generator=gen) < 0.15, -1.0, 1.0)
    predictions = [layer(noisy[k: k + 1], state)[0].argmax().item() for k in range(5)]
    assert predictions == list(range(5))


def test_retroactive_commits_previous_eligibility_then_records():
    synapses = PlasticSynapses(1, 1, alpha="scalar", modulation="retroactive", fanout=False, clip=10.0)
    with torch.no_grad():
        synapses.modulator.neuromodulator.weight.zero_()
        synapses.modulator.neuromodulator.bias.fill_(10.0)  # M = tanh(10) ~ 1
        synapses.modulator.eligibility_rate.fill_(0.5)
    state = synapses.initial_state(1)
    one = torch.ones(1, 1)
    state = synapses.update(state, one, one, modulator_source=one)
    assert state.trace.item() == 0.0  # E was 0 when committed
    assert state.eligibility.item() == pytest.approx(0.5)
    state = synapses.update(state, one, one, modulator_source=one)
    m = torch.tanh(torch.tensor(10.0)).item()
    assert state.trace.item() == pytest.approx(0.5 * m)
    assert state.eligibility.item() == pytest.approx(0.75)


def test_modulator_channels_and_fanout():
    modulator = Modulator(6, 4, channels=3, fanout=True)
    assert modulator(torch.randn(5, 6)).shape == (5, 4)
    single = Modulator(6, 4, channels=1, fanout=False)
    rate = single(torch.randn(5, 6))
    assert rate.shape == (5, 1) and rate.abs().max() < 1
    with pytest.raises(ValueError, match="without fanout, channels must be 1 or out_features=4; got 3"):
        Modulator(6, 4, channels=3, fanout=False)


def test_multi_channel_modulation_drives_the_trace():
    layer = PlasticLinear(3, 4, modulation="simple", modulator_channels=3)
    x = torch.randn(2, 3)
    _, state = layer(x)
    assert state.trace.abs().sum() > 0


def test_eta_and_alpha_granularities_have_the_right_shapes():
    synapses = PlasticSynapses(3, 5, alpha="neuron", eta="neuron")
    assert synapses.alpha.shape == (5,) and synapses.eta.shape == (5,)
    synapses = PlasticSynapses(3, 5, alpha="connection", modulation="simple")
    assert synapses.alpha.shape == (3, 5) and synapses.eta is None


def test_layer_works_with_torch_compile():
    layer = PlasticLinear(4, 3, modulation="simple")
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    x = torch.randn(2, 4)
    state = layer.initial_state(2)
    y, new_state = compiled(x, state)
    y_ref, ref_state = layer(x, state)
    assert torch.allclose(y, y_ref) and torch.allclose(new_state.trace, ref_state.trace)
    y.sum().backward()
    assert layer.synapses.alpha.grad is not None


def test_layer_errors():
    layer = PlasticLinear(3, 2)
    with pytest.raises(ValueError, match=r"x must have shape \[B, 3\], got \[2, 4\]"):
        layer(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"target must have shape \[2, 2\], got \[2, 3\]"):
        layer(torch.randn(2, 3), target=torch.randn(2, 3))
    with pytest.raises(ValueError, match="in_features must be an int >= 1, got 0"):
        PlasticLinear(0, 2)
    with pytest.raises(ValueError, match="eta must be one of 'scalar', 'neuron'"):
        PlasticLinear(3, 2, eta="synapse")
