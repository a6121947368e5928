"""SynapseConfig: one declaration of the synapse settings, validated once, taken by every plastic module as
``config=`` and as keyword overrides."""

import dataclasses

import pytest
import torch

from neuroplastic.plasticity import (
    PlasticLIF,
    PlasticLinear,
    PlasticLSTM,
    PlasticLSTMCell,
    PlasticRecurrentLIF,
    PlasticRNN,
    PlasticRNNCell,
    PlasticSynapses,
    SynapseConfig,
)
from neuroplastic.plasticity.modulation import Modulator
from neuroplastic.plasticity.rules import OjaRule

MODULES = [
    lambda **kw: PlasticSynapses(3, 4, **kw),
    lambda **kw: PlasticLinear(3, 4, **kw),
    lambda **kw: PlasticRNNCell(3, 4, **kw),
    lambda **kw: PlasticLSTMCell(3, 4, **kw),
    lambda **kw: PlasticRNN(3, 4, **kw),
    lambda **kw: PlasticLSTM(3, 4, **kw),
    lambda **kw: PlasticLIF(3, 4, **kw),
    lambda **kw: PlasticRecurrentLIF(3, 4, **kw),
]


def test_defaults_and_frozen():
    config = SynapseConfig()
    assert (config.rule, config.alpha, config.eta, config.modulation) == (None, "connection", "scalar", "none")
    assert (config.modulator_channels, config.fanout, config.clip) == (1, True, 2.0)
    assert (config.alpha_init, config.eta_init, config.eligibility_rate) == (0.01, 0.01, 0.1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.clip = 3.0


@pytest.mark.parametrize("field, value, error, match", [
    ("rule", "stdp", ValueError, "rule must be one of 'hebbian', 'oja', 'bcm', 'clip', 'soft_bound'"),
    ("rule", 3, TypeError, "rule must be a rule name, a PlasticityRule or None"),
    ("alpha", "synapse", ValueError, "alpha must be one of 'connection', 'neuron', 'scalar'"),
    ("eta", "synapse", ValueError, "eta must be one of 'scalar', 'neuron'"),
    ("modulation", "dopamine", ValueError, "modulation must be one of 'none', 'simple', 'retroactive'"),
    ("modulation", 1, TypeError, "modulation must be one of 'none', 'simple', 'retroactive', a Modulator"),
    ("modulator_channels", 0, ValueError, "modulator_channels must be an int >= 1"),
    ("modulator_channels", 1.5, TypeError, "modulator_channels must be an int >= 1"),
    ("fanout", 1, TypeError, "fanout must be a bool"),
    ("clip", 0.0, ValueError, "clip must be > 0"),
    ("clip", "big", TypeError, "clip must be a number"),
    ("alpha_init", -0.1, ValueError, "alpha_init must be a finite number >= 0"),
    ("eta_init", -0.1, ValueError, "eta_init must be a finite number >= 0"),
    ("eligibility_rate", 0.0, ValueError, "eligibility_rate must be a finite number > 0"),
])
def test_bad_values_raise_naming_the_field_and_what_it_accepts(field, value, error, match):
    with pytest.raises(error, match=match):
        SynapseConfig(**{field: value})
    for make in MODULES:  # the same check, once, behind every module's keyword overrides
        with pytest.raises(error, match=match):
            make(**{field: value})


def test_resolve_overrides_fields_and_rejects_unknown_ones():
    base = SynapseConfig(modulation="simple", clip=1.5)
    assert SynapseConfig.resolve() == SynapseConfig()
    assert SynapseConfig.resolve(base) is base
    assert SynapseConfig.resolve(base, clip=3.0) == SynapseConfig(modulation="simple", clip=3.0)
    assert base.clip == 1.5  # the given config is not changed
    with pytest.raises(TypeError, match="unknown keyword argument 'clipp'; the synapse settings are rule, alpha"):
        SynapseConfig.resolve(base, clipp=3.0)
    with pytest.raises(TypeError, match="unknown keyword argument 'clipp'"):
        PlasticRNN(3, 4, clipp=3.0)
    with pytest.raises(TypeError, match="config must be a SynapseConfig or None, got dict"):
        PlasticRNN(3, 4, config={"clip": 3.0})


def state_of(make, **kwargs):
    torch.manual_seed(0)
    return make(**kwargs).state_dict()


@pytest.mark.parametrize("make", MODULES)
def test_config_keywords_and_mixtures_build_the_same_module(make):
    keywords = {"modulation": "simple", "clip": 1.5, "alpha": "neuron", "alpha_init": 0.2, "modulator_channels": 2}
    reference = state_of(make, **keywords)
    config = SynapseConfig(**keywords)
    mixed = dataclasses.replace(config, clip=9.0, alpha_init=0.7)
    for other in (state_of(make, config=config), state_of(make, config=mixed, clip=1.5, alpha_init=0.2)):
        assert list(other) == list(reference)
        assert all(torch.equal(other[k], reference[k]) for k in reference)
    torch.manual_seed(0)
    module = make(config=config)
    synapses = module if isinstance(module, PlasticSynapses) else module.synapses
    assert synapses.config is config and synapses.clip == 1.5 and synapses.alpha_granularity == "neuron"


def test_state_dict_keys_are_those_of_the_keyword_constructors():
    # as before SynapseConfig existed (listed from the previous version of the library)
    rnn = PlasticRNN(3, 4, config=SynapseConfig(modulation="simple"))
    assert list(rnn.state_dict()) == [
        "cell.weight", "cell.input_to_hidden.weight", "cell.input_to_hidden.bias", "cell.synapses.alpha",
        "cell.synapses.modulator.neuromodulator.weight", "cell.synapses.modulator.neuromodulator.bias",
        "cell.synapses.modulator.fanout.weight", "cell.synapses.modulator.fanout.bias",
    ]
    lif = PlasticLIF(3, 4, config=SynapseConfig(alpha="neuron"), learn_tau_mem=True)
    assert list(lif.state_dict()) == ["tau_mem", "trace_log_tau", "weight", "bias", "synapses.alpha", "synapses.eta"]
    lstm = PlasticLSTM(3, 4, modulation="retroactive", fanout=False)
    assert list(lstm.state_dict()) == [
        "cell.weight", "cell.input_to_hidden.weight", "cell.input_to_hidden.bias", "cell.synapses.alpha",
        "cell.synapses.modulator.eligibility_rate", "cell.synapses.modulator.neuromodulator.weight",
        "cell.synapses.modulator.neuromodulator.bias",
    ]


def test_rule_and_modulator_objects_are_accepted():
    rule, modulator = OjaRule(), Modulator(4, 4, mode="simple")
    synapses = PlasticSynapses(3, 4, config=SynapseConfig(rule=rule, modulation=modulator))
    assert synapses.rule is rule and synapses.modulator is modulator
    assert PlasticSynapses(3, 4, modulation=None).modulation == "none"


@pytest.mark.parametrize("make", MODULES)
@pytest.mark.parametrize("field, value", [("eta_init", float("inf")), ("eta_init", float("nan")),
                                          ("alpha_init", float("inf")), ("alpha_init", float("nan")),
                                          ("clip", float("nan"))])
def test_non_finite_initial_values_are_refused_by_every_module(make, field, value):
    with pytest.raises(ValueError, match=field):
        make(**{field: value})
