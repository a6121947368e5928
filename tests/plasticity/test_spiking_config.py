"""SpikingNeuronConfig: defaults, validation, and the override dispatch of the plastic spiking layers."""

import dataclasses

import pytest
import torch

from neuroplastic.neurons.surrogates import ATan
from neuroplastic.plasticity import (
    PlasticLIF,
    PlasticRecurrentLIF,
    SpikingNeuronConfig,
    SynapseConfig,
)
from neuroplastic.plasticity.spiking_config import resolve_spiking_configs


def test_defaults():
    neuron = SpikingNeuronConfig()
    assert dataclasses.asdict(neuron) == {
        "tau_mem": 10.0, "learn_tau_mem": False, "threshold": 1.0, "reset": "soft", "detach_reset": False,
        "rectifier": False, "surrogate": "fast_sigmoid", "tau_pre": 5.0, "tau_post": 5.0,
        "learn_trace_tau": True, "dt": 1.0,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        neuron.tau_mem = 3.0  # type: ignore[misc]


def test_field_sets_are_disjoint():
    synapse = {f.name for f in dataclasses.fields(SynapseConfig)}
    neuron = {f.name for f in dataclasses.fields(SpikingNeuronConfig)}
    assert not synapse & neuron


@pytest.mark.parametrize("kwargs,error,match", [
    ({"tau_mem": 0.0}, ValueError, "tau_mem"),
    ({"tau_mem": torch.tensor([1.0, -1.0])}, ValueError, "tau_mem"),
    ({"tau_mem": torch.ones(2, 2)}, ValueError, "tau_mem"),
    ({"tau_mem": "slow"}, TypeError, "tau_mem"),
    ({"tau_pre": 0.0}, ValueError, "tau_pre"),
    ({"tau_pre": torch.ones(3)}, ValueError, "tau_pre"),
    ({"tau_post": float("inf")}, ValueError, "tau_post"),
    ({"threshold": 0.0}, ValueError, "threshold"),
    ({"threshold": float("nan")}, ValueError, "threshold"),
    ({"reset": "sideways"}, ValueError, "reset"),
    ({"surrogate": "nope"}, ValueError, "surrogate"),
    ({"surrogate": 3}, TypeError, "surrogate"),
    ({"dt": -1.0}, ValueError, "dt"),
    ({"learn_tau_mem": 1}, TypeError, "learn_tau_mem"),
    ({"detach_reset": "yes"}, TypeError, "detach_reset"),
    ({"rectifier": None}, TypeError, "rectifier"),
    ({"learn_trace_tau": 0}, TypeError, "learn_trace_tau"),
])
def test_validation_errors_name_the_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        SpikingNeuronConfig(**kwargs)
    with pytest.raises(error, match=match):
        PlasticLIF(3, 4, **kwargs)


def test_per_neuron_tau_mem_is_checked_against_the_layer_size():
    SpikingNeuronConfig(tau_mem=torch.full((7,), 4.0))  # any length is a valid config
    with pytest.raises(ValueError, match=r"tau_mem must be a number or a per-neuron \[4\] tensor"):
        PlasticLIF(3, 4, neuron=SpikingNeuronConfig(tau_mem=torch.full((7,), 4.0)))
    layer = PlasticLIF(3, 4, neuron=SpikingNeuronConfig(tau_mem=torch.full((4,), 4.0), learn_tau_mem=True))
    assert isinstance(layer.tau_mem, torch.nn.Parameter) and layer.tau_mem.shape == (4,)


def test_resolve():
    base = SpikingNeuronConfig(tau_mem=4.0)
    assert SpikingNeuronConfig.resolve(base) is base
    assert SpikingNeuronConfig.resolve(None) == SpikingNeuronConfig()
    assert SpikingNeuronConfig.resolve(base, dt=0.5) == SpikingNeuronConfig(tau_mem=4.0, dt=0.5)
    with pytest.raises(TypeError, match="neuron must be a SpikingNeuronConfig"):
        SpikingNeuronConfig.resolve(SynapseConfig())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'rule'.*tau_mem"):
        SpikingNeuronConfig.resolve(None, rule="oja")


def test_overrides_are_dispatched_by_field_name():
    synapse, neuron = resolve_spiking_configs(
        SynapseConfig(alpha="neuron"), SpikingNeuronConfig(threshold=2.0),
        {"rule": "oja", "tau_mem": 5.0, "reset": "hard"})
    assert synapse == SynapseConfig(alpha="neuron", rule="oja")
    assert neuron == SpikingNeuronConfig(threshold=2.0, tau_mem=5.0, reset="hard")
    layer = PlasticLIF(10, 20, rule="oja", tau_mem=5.0)
    assert layer.synapses.config == SynapseConfig(rule="oja")
    assert layer.neuron_config == SpikingNeuronConfig(tau_mem=5.0)
    torch.testing.assert_close(layer.tau_mem, torch.tensor(5.0))


@pytest.mark.parametrize("cls", [PlasticLIF, PlasticRecurrentLIF])
def test_unknown_keyword_lists_both_configs(cls):
    with pytest.raises(TypeError) as info:
        cls(3, 4, tau_membrane=5.0)
    message = str(info.value)
    assert "'tau_membrane'" in message and "SynapseConfig" in message and "SpikingNeuronConfig" in message
    for field in (*(f.name for f in dataclasses.fields(SynapseConfig)),
                  *(f.name for f in dataclasses.fields(SpikingNeuronConfig))):
        assert field in message
    with pytest.raises(TypeError, match="neuron must be a SpikingNeuronConfig"):
        cls(3, 4, neuron={"tau_mem": 5.0})


@pytest.mark.parametrize("cls,extra", [(PlasticLIF, {"recurrent": True}), (PlasticRecurrentLIF, {})])
def test_config_and_keyword_forms_build_identical_layers(cls, extra):
    keywords = {"rule": "bcm", "alpha": "neuron", "modulation": "simple", "tau_mem": 4.0, "learn_tau_mem": True,
                "threshold": 0.5, "reset": "hard", "detach_reset": True, "rectifier": True, "surrogate": "atan",
                "tau_pre": 3.0, "tau_post": 7.0, "learn_trace_tau": False, "dt": 0.5}
    torch.manual_seed(0)
    by_keywords = cls(3, 4, **extra, **keywords)
    torch.manual_seed(0)
    by_configs = cls(3, 4, **extra,
                     config=SynapseConfig(rule="bcm", alpha="neuron", modulation="simple"),
                     neuron=SpikingNeuronConfig(tau_mem=4.0, learn_tau_mem=True, threshold=0.5, reset="hard",
                                                detach_reset=True, rectifier=True, surrogate="atan", tau_pre=3.0,
                                                tau_post=7.0, learn_trace_tau=False, dt=0.5))
    a, b = by_keywords.state_dict(), by_configs.state_dict()
    assert list(a) == list(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert repr(by_keywords) == repr(by_configs)
    assert isinstance(by_configs.surrogate, ATan) and by_configs.reset == "hard" and by_configs.dt == 0.5
    inputs = (torch.rand(2, 6, 3) < 0.5).float()
    torch.testing.assert_close(by_keywords(inputs)[0], by_configs(inputs)[0], rtol=0, atol=0)


def test_default_layer_state_dict_is_unchanged():
    layer = PlasticLIF(3, 4)
    assert set(layer.state_dict()) == {"synapses.alpha", "synapses.eta", "tau_mem", "trace_log_tau", "weight",
                                       "bias"}
    assert "tau_mem" in dict(layer.named_buffers()) and "trace_log_tau" in dict(layer.named_parameters())
