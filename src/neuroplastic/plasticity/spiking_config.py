"""The settings of the neurons and spike traces of the plastic spiking layers, declared and validated once.

:class:`SpikingNeuronConfig` is to the LIF neurons and spike traces of
:class:`~neuroplastic.plasticity.spiking.PlasticLIF` and :class:`~neuroplastic.plasticity.spiking.PlasticRecurrentLIF`
what :class:`~neuroplastic.plasticity.synapses.SynapseConfig` is to their plastic synapses. Both layers take
``config=`` (synapses), ``neuron=`` (neurons and traces) and keyword overrides of either's fields, which
:func:`resolve_spiking_configs` dispatches by name (the two field sets are disjoint).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from neuroplastic._checks import check_bool, check_choice, check_number, check_values
from neuroplastic.neurons.lif import RESETS
from neuroplastic.neurons.surrogates import Surrogate, surrogate_names
from neuroplastic.plasticity.synapses import SynapseConfig, resolve_config

__all__ = ["SpikingNeuronConfig", "resolve_spiking_configs", "tau_tensor"]


def tau_tensor(name: str, value: object, size: int | None = None) -> Tensor:
    """A time constant, finite and > 0: a number or a per-neuron ``[size]`` (or ``[1]``; ``size`` None: any
    length) tensor, as a float tensor."""
    if isinstance(value, Tensor) and (value.dim() > 1 or (
            value.dim() == 1 and size is not None and value.shape[0] not in (1, size))):
        raise ValueError(f"{name} must be a number or a per-neuron [{size or 'O'}] tensor, got shape "
                         f"{list(value.shape)}")
    tau = value.detach().clone().float() if isinstance(value, Tensor) else value
    check_values(f"{name} (a time constant)", tau, minimum=0, exclusive_minimum=True)
    return tau if isinstance(tau, Tensor) else torch.tensor(float(tau))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SpikingNeuronConfig:
    """The LIF neurons and spike traces of a plastic spiking layer (Schmidgall et al. 2021, SpikePropamine).

    ``PlasticLIF(10, 20, tau_mem=5.0)`` and ``PlasticLIF(10, 20, neuron=SpikingNeuronConfig(tau_mem=5.0))``
    build the same layer. Invalid values raise at construction (``ValueError``, or ``TypeError`` for a wrong
    type) naming the field and what it accepts; a per-neuron ``tau_mem`` is checked against the layer's size
    when the layer is built.

    Attributes:
        tau_mem: membrane time constant, in units of ``dt``: a number or a per-neuron ``[O]`` tensor (> 0).
        learn_tau_mem: learn ``tau_mem`` (per neuron if given per neuron).
        threshold: firing threshold (> 0).
        reset: ``"soft"`` (subtract the threshold), ``"hard"`` (to zero) or ``"none"``
            (:func:`neuroplastic.neurons.lif.lif_step`).
        detach_reset: cut the reset from the autograd graph.
        rectifier: clamp the membrane potential at zero from below.
        surrogate: the surrogate gradient of the spikes: a name
            (:func:`~neuroplastic.neurons.surrogates.surrogate_names`) or a
            :class:`~neuroplastic.neurons.surrogates.Surrogate`.
        tau_pre, tau_post: time constants of the pre- and post-synaptic spike traces (> 0), in units of ``dt``.
        learn_trace_tau: learn ``tau_pre`` and ``tau_post`` (through their logarithms).
        dt: the time step (> 0); each decay is ``exp(-dt / tau)``.
    """

    tau_mem: float | Tensor = 10.0
    learn_tau_mem: bool = False
    threshold: float = 1.0
    reset: str = "soft"
    detach_reset: bool = False
    rectifier: bool = False
    surrogate: str | Surrogate = "fast_sigmoid"
    tau_pre: float = 5.0
    tau_post: float = 5.0
    learn_trace_tau: bool = True
    dt: float = 1.0

    def __post_init__(self) -> None:
        tau_tensor("tau_mem", self.tau_mem)  # its length is checked against the layer's size there
        tau_tensor("tau_pre", self.tau_pre, 1)
        tau_tensor("tau_post", self.tau_post, 1)
        check_number("threshold", self.threshold, minimum=0, exclusive_minimum=True)
        check_choice("reset", self.reset, RESETS)
        if not isinstance(self.surrogate, Surrogate):
            if not isinstance(self.surrogate, str):
                raise TypeError(f"surrogate must be a Surrogate instance or one of "
                                f"{', '.join(map(repr, surrogate_names()))}; got {type(self.surrogate).__name__}")
            check_choice("surrogate", self.surrogate, surrogate_names())
        check_number("dt", self.dt, minimum=0, exclusive_minimum=True)
        for name in ("learn_tau_mem", "detach_reset", "rectifier", "learn_trace_tau"):
            check_bool(name, getattr(self, name))

    @classmethod
    def resolve(cls, neuron: SpikingNeuronConfig | None = None, **overrides: Any) -> SpikingNeuronConfig:
        """``neuron`` (None: the defaults) with the fields in ``overrides`` replaced, validated."""
        return resolve_config(cls, neuron, overrides, argument="neuron", settings="neuron")


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(cls))


def resolve_spiking_configs(
    config: SynapseConfig | None, neuron: SpikingNeuronConfig | None, overrides: dict[str, Any]
) -> tuple[SynapseConfig, SpikingNeuronConfig]:
    """``(synapse config, neuron config)``: ``config`` and ``neuron`` (None: defaults) with ``overrides`` replacing
    fields of the one that has them (dispatched by field name).

    Raises:
        TypeError: a keyword that is a field of neither; the message lists both configs' fields.
    """
    synapse_fields, neuron_fields = _field_names(SynapseConfig), _field_names(SpikingNeuronConfig)
    unknown = [name for name in overrides if name not in synapse_fields and name not in neuron_fields]
    if unknown:
        raise TypeError(f"unknown keyword argument{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                        f"the synapse settings are {', '.join(synapse_fields)} (see SynapseConfig) and the neuron "
                        f"settings are {', '.join(neuron_fields)} (see SpikingNeuronConfig)")
    synapse_overrides = {name: value for name, value in overrides.items() if name in synapse_fields}
    neuron_overrides = {name: value for name, value in overrides.items() if name in neuron_fields}
    return (SynapseConfig.resolve(config, **synapse_overrides),
            SpikingNeuronConfig.resolve(neuron, **neuron_overrides))
