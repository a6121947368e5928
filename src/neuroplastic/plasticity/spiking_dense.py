"""The dense backend of the plastic spiking layers: the Hebbian trace as a ``[B, I, O]`` tensor, step by step.

Schmidgall et al. 2021, SpikePropamine. Any rule, alpha granularity and modulation. Per step ``t``::

    current_t  = fixed_t + pre_t @ (alpha * Hebb_{t-1})  [+ the recurrent current]
    spike_t, v = lif_step(v, current_t, decay_mem, threshold)
    x_t = lambda_pre x_{t-1} + pre_t;   y_t = lambda_post y_{t-1} + spike_t
    Hebb_t = rule(Hebb_{t-1}, pre=x_t, post=y_t, rate)        (PlasticSynapses.update)

Backpropagation: ``backprop="autograd"`` keeps every step for the backward pass; ``"checkpoint"`` keeps the state
at the start of each chunk of ``chunk_size`` steps (default ``round(sqrt(T))``) and recomputes the chunk in the
backward pass (same gradients, memory ``O(T / chunk + chunk)`` traces instead of ``O(T)``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from neuroplastic.neurons.lif import _lif_step
from neuroplastic.plasticity.spiking_state import PlasticSpikingState, without_trace

__all__ = ["dense_step", "dense_scan"]


def dense_step(layer: nn.Module, drive_t: Tensor, x_t: Tensor, modulator_t: Tensor | None,
               state: PlasticSpikingState, decays: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, PlasticSpikingState]:
    """One time step of ``layer`` from the precomputed fixed drive ``[B, O]`` and the raw input ``[B, I_in]``.

    ``modulator_t [B, S]``: what the modulator reads (None: the post-synaptic trace); ``decays``: ``(lambda_mem,
    lambda_pre, lambda_post)`` (``layer.decays()``). Returns the spikes ``[B, O]`` and the new state.
    """
    mem_decay, pre_decay, post_decay = decays
    synapses = layer.synapses
    pre = layer._pre_input(x_t, state)
    current = drive_t + synapses._plastic_input(pre, state.plastic)  # the layer checked state and inputs
    recurrent = layer._recurrent_current(state.spikes)
    if recurrent is not None:
        current = current + recurrent
    spikes, membrane = _lif_step(state.membrane, current, mem_decay, layer.threshold, layer.reset, 0.0,
                                 layer.rectifier, layer.detach_reset, layer.surrogate)  # checked by the layer
    pre_trace = pre_decay * state.pre_trace + pre  # trace_step, unchecked inside the loop
    post_trace = post_decay * state.post_trace + spikes
    if synapses.modulator is not None and modulator_t is None:
        modulator_t = post_trace
    plastic = synapses._update(state.plastic, pre_trace, post_trace, modulator_source=modulator_t)
    return spikes, PlasticSpikingState(membrane, spikes, pre_trace, post_trace, plastic)


def _scan(layer: nn.Module, drives: Tensor, inputs: Tensor, modulator_inputs: Tensor | None,
          state: PlasticSpikingState, *params: Tensor) -> tuple[Tensor, PlasticSpikingState]:
    """Steps over a chunk ``drives [B, t, O]``; ``params`` are only there so that checkpointing sees them."""
    decays = layer.decays()
    outputs = []
    # unbind once: indexing [:, t] in the loop would cost a full-size gradient buffer per step
    drive_steps, input_steps = drives.unbind(1), inputs.unbind(1)
    modulator_steps = None if modulator_inputs is None else modulator_inputs.unbind(1)
    for t in range(drives.shape[1]):
        mod_t = None if modulator_steps is None else modulator_steps[t]
        spikes, state = dense_step(layer, drive_steps[t], input_steps[t], mod_t, state, decays)
        outputs.append(spikes)
    return torch.stack(outputs, dim=1), state


def dense_scan(layer: nn.Module, inputs: Tensor, modulator_inputs: Tensor | None, state: PlasticSpikingState,
               need_trace: bool = True) -> tuple[Tensor, PlasticSpikingState]:
    """Run ``layer`` (a plastic spiking layer) over ``inputs [B, T, I]`` from ``state`` with the dense backend.

    Returns ``(spikes [B, T, O], final state)``; ``need_trace=False`` drops the final ``[B, I, O]`` traces.
    """
    drives = layer._drive(inputs)
    steps = drives.shape[1]
    needs_grad = torch.is_grad_enabled() and (
        inputs.requires_grad or any(p.requires_grad for p in layer.parameters()))
    if layer.backprop == "autograd" or not needs_grad or steps <= 1:
        spikes, state = _scan(layer, drives, inputs, modulator_inputs, state)
        return spikes, state if need_trace else without_trace(state)
    chunk = layer.chunk_size or max(1, round(math.sqrt(steps)))
    params = [p for p in layer.parameters() if p.requires_grad]
    outputs = []
    for start in range(0, steps, chunk):
        stop = start + chunk
        mod = None if modulator_inputs is None else modulator_inputs[:, start:stop]
        out, state = checkpoint(_scan, layer, drives[:, start:stop], inputs[:, start:stop], mod, state, *params,
                                use_reentrant=False)
        outputs.append(out)
    return torch.cat(outputs, dim=1), state if need_trace else without_trace(state)
