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

from neuroplastic._checks import check_tensor, check_values
from neuroplastic.plasticity.synapses import PlasticState

__all__ = ["trace_step", "spike_trace", "PlasticSpikingState", "without_trace"]


def trace_step(trace: Tensor, spikes: Tensor, decay: Tensor | float) -> Tensor:
    """One step of an exponentially filtered spike train: ``trace' = decay * trace + spikes``.

    Schmidgall et al. 2021 (SpikePropamine), the pre- and post-synaptic traces that drive the rules;
    ``decay = exp(-dt / tau)``. Shapes: ``trace``, ``spikes`` ``[B, N]`` (floating point, one dtype and device);
    ``decay`` a number, 0-d, ``[N]`` or ``[B, N]`` (not NaN). A spike train with a constant rate ``r`` settles at
    ``r / (1 - decay)``.
    """
    check_tensor("spikes", spikes, ("B", "N"))
    check_tensor("trace", trace, tuple(spikes.shape), like=spikes, like_name="spikes")
    _check_decay(decay, spikes)
    return decay * trace + spikes


def _check_decay(decay: object, spikes: Tensor) -> None:
    """A number, or a floating tensor that broadcasts to ``spikes [B, N]`` or ``[B, T, N]`` per step (its last
    dimension ``N``, or a ``[B, N]`` tensor), none of it NaN, in ``spikes``' dtype or narrower."""
    if isinstance(decay, Tensor):
        batch, n = spikes.shape[0], spikes.shape[-1]
        if not decay.is_floating_point() or decay.device != spikes.device:
            raise ValueError(f"decay must be a floating-point tensor on {spikes.device}, got dtype {decay.dtype} on "
                             f"{decay.device}")
        if decay.shape not in ((), (n,), (1,), (batch, n)):
            raise ValueError(f"decay must be a number, a 0-d, [N={n}] or [B={batch}, N={n}] tensor, got shape "
                             f"{list(decay.shape)}")
        if torch.promote_types(decay.dtype, spikes.dtype) != spikes.dtype:
            raise ValueError(f"decay has dtype {decay.dtype}, wider than the spikes' {spikes.dtype}: convert one to "
                             f"the other")
    check_values("decay", decay, finite=False)


def spike_trace(spikes: Tensor, decay: Tensor | float, initial: Tensor | None = None) -> Tensor:
    """The trace of a whole spike train, ``trace_t = decay * trace_{t-1} + spikes_t`` for every step.

    Shapes: ``spikes [B, T, N]`` (floating point), ``decay`` a number, 0-d, ``[N]`` or ``[B, N]`` tensor (not NaN),
    ``initial [B, N]`` (zeros if None; ``spikes``' dtype and device); returns ``[B, T, N]`` (``trace_t`` includes
    ``spikes_t``; ``[B, 0, N]`` for an empty train).
    """
    check_tensor("spikes", spikes, ("B", "T", "N"))
    trace = spikes.new_zeros(spikes.shape[0], spikes.shape[2]) if initial is None else initial
    check_tensor("initial", trace, (spikes.shape[0], spikes.shape[2]), like=spikes, like_name="spikes")
    _check_decay(decay, spikes)
    out = [trace := decay * trace + spikes[:, t] for t in range(spikes.shape[1])]
    return torch.stack(out, dim=1) if out else spikes.new_zeros(spikes.shape)


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
