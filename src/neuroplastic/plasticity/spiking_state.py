"""The state of a plastic spiking layer and the spike traces that drive its plasticity rules.

Schmidgall et al. 2021, SpikePropamine: the rules read exponentially filtered spike trains,
``x_t = lambda * x_{t-1} + s_t`` with ``lambda = exp(-dt / tau)``, of the pre-synaptic spikes (``x``) and of the
post-synaptic spikes (``y``). :class:`PlasticSpikingState` holds them with the membrane, the last spikes and
the plastic synapses' state, batch-first.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from neuroplastic._checks import check_tensor
from neuroplastic.plasticity.synapses import PlasticState

__all__ = ["trace_step", "spike_trace", "PlasticSpikingState", "without_trace"]


def trace_step(trace: Tensor, spikes: Tensor, decay: Tensor | float) -> Tensor:
    """One step of an exponentially filtered spike train: ``trace' = decay * trace + spikes``.

    Schmidgall et al. 2021 (SpikePropamine), the pre- and post-synaptic traces that drive the rules;
    ``decay = exp(-dt / tau)``. Shapes: ``trace``, ``spikes`` ``[B, N]``; ``decay`` a number, 0-d, ``[N]``
    or ``[B, N]``. A spike train with a constant rate ``r`` settles at ``r / (1 - decay)``.
    """
    return decay * trace + spikes


def spike_trace(spikes: Tensor, decay: Tensor | float, initial: Tensor | None = None) -> Tensor:
    """The trace of a whole spike train, ``trace_t = decay * trace_{t-1} + spikes_t`` for every step.

    Shapes: ``spikes [B, T, N]``, ``decay`` a number, 0-d or ``[N]`` tensor, ``initial [B, N]`` (zeros if
    None); returns ``[B, T, N]`` (``trace_t`` includes ``spikes_t``).
    """
    check_tensor("spikes", spikes, ("B", "T", "N"))
    trace = spikes.new_zeros(spikes.shape[0], spikes.shape[2]) if initial is None else initial
    check_tensor("initial", trace, (spikes.shape[0], spikes.shape[2]))
    out = []
    for t in range(spikes.shape[1]):
        trace = trace_step(trace, spikes[:, t], decay)
        out.append(trace)
    return torch.stack(out, dim=1)


class PlasticSpikingState(NamedTuple):
    """The within-episode state of a plastic spiking layer (all batch-first).

    Attributes:
        membrane: membrane potential ``v`` ``[B, O]``.
        spikes: the spikes of the last step ``[B, O]`` (what a recurrent layer feeds back).
        pre_trace: pre-synaptic spike trace ``[B, I]``.
        post_trace: post-synaptic spike trace ``[B, O]``.
        plastic: the plastic synapses' state: Hebbian trace ``Hebb [B, I, O]``, eligibility trace
            (retroactive modulation) and BCM threshold ``[B, O]``.
    """

    membrane: Tensor
    spikes: Tensor
    pre_trace: Tensor
    post_trace: Tensor
    plastic: PlasticState

    def detach(self) -> PlasticSpikingState:
        """The same state cut from the autograd graph (truncated backpropagation through time)."""
        return PlasticSpikingState(self.membrane.detach(), self.spikes.detach(), self.pre_trace.detach(),
                                   self.post_trace.detach(), self.plastic.detach())


def without_trace(state: PlasticSpikingState) -> PlasticSpikingState:
    """``state`` with its ``[B, I, O]`` Hebbian and eligibility traces dropped (``forward(..., need_trace=False)``)."""
    return state._replace(plastic=state.plastic._replace(trace=None, eligibility=None))
