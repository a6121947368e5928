"""The low-rank backend of the plastic spiking layers: the Hebbian trace as a sum of outer products.

Schmidgall et al. 2021, SpikePropamine, computed another way. For rules that are post-wise linear in the trace
(Hebbian, Oja, BCM: ``rule(H) = keep * H + x ⊗ delta``,
:meth:`~neuroplastic.plasticity.rules.PlasticityRule.linear_factors`) with alpha per neuron or scalar and no
retroactive modulation, ``Hebb_t = Pi_t * Hebb_0 + sum_{s<=t} x_s ⊗ D_t[s]`` with
``D_t[s] = delta_s * keep_{s+1} * ... * keep_t``. The plastic input is then
``alpha * (pre_t @ Hebb_{t-1}) = alpha * (Pi_{t-1} * (pre_t @ Hebb_0) + sum_{s<t} (pre_t . x_s) D_{t-1}[s])``:
``O(B t (I + O))`` work per step instead of ``O(B I O)``, and no ``[B, I, O]`` tensor except the final trace
(returned in the state, one batched product per call); the backward pass keeps every step's factors,
``O(B T^2 O)`` numbers instead of ``O(T B I O)``. Same values as the dense backend up to rounding. A recurrent
layer continuing from a given state (not the zero one) still reads ``pre_t @ Hebb_0`` every step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuroplastic.neurons.lif import _lif_step
from neuroplastic.plasticity.spiking_state import PlasticSpikingState, spike_trace, trace_step
from neuroplastic.plasticity.synapses import PlasticState

__all__ = ["lowrank_scan"]


def lowrank_scan(layer: nn.Module, drives: Tensor, inputs: Tensor, modulator_inputs: Tensor | None,
                 state: PlasticSpikingState, fresh: bool,
                 need_trace: bool = True) -> tuple[Tensor, PlasticSpikingState]:
    """Run ``layer`` (a plastic spiking layer) over a sequence with the trace held as a sum of outer products.

    See the module docstring. ``drives [B, T, O]``: the fixed drive; ``inputs [B, T, I]``: the input;
    ``modulator_inputs [B, T, S]`` or None; returns ``(spikes [B, T, O], final state)``.

    ``fresh``: the state is the zero initial state, so the initial trace contributes nothing.
    ``need_trace``: build the final trace (else the returned state's trace is None).
    """
    synapses, rule = layer.synapses, layer.synapses.rule
    mem_decay, pre_decay, post_decay = layer.decays()
    batch, steps, n_post = drives.shape
    own = layer._pre_is_own_spikes
    hebb0, threshold = state.plastic.trace, state.plastic.threshold
    if not own:  # the pre-synaptic side is known in advance: its traces and their overlaps in one go
        pre_traces = spike_trace(inputs, pre_decay, state.pre_trace)  # x_s [B, T, I]
        # [t, s] = s_t . x_s; unbound once (indexing [:, t] in the loop costs a full gradient buffer per step)
        overlaps = torch.bmm(inputs, pre_traces.transpose(1, 2)).unbind(1)
        initial_input = None if fresh else torch.bmm(inputs, hebb0).unbind(1)  # s_t @ Hebb_0
    else:
        pre_list: list[Tensor] = []
        pre_trace = state.pre_trace
    factors = drives.new_zeros(batch, 0, n_post)  # D_{t-1} [B, t, O]
    keep_product: Tensor | None = None  # Pi_{t-1} [B or 1, O]; None: all ones
    membrane, spikes, post_trace = state.membrane, state.spikes, state.post_trace
    drive_steps = drives.unbind(1)
    modulator_steps = None if modulator_inputs is None else modulator_inputs.unbind(1)
    outputs = []
    for t in range(steps):
        if own:
            pre = spikes
            if t:
                history = torch.stack(pre_list, dim=1)  # x_s, s < t
                overlap = torch.bmm(history, pre.unsqueeze(2)).squeeze(2)  # [B, t]
            pre_trace = trace_step(pre_trace, pre, pre_decay)
            pre_list.append(pre_trace)
            initial = None if fresh else torch.bmm(pre.unsqueeze(1), hebb0).squeeze(1)
        else:
            overlap = overlaps[t][:, :t]
            initial = None if fresh else initial_input[t]
        plastic = torch.bmm(overlap.unsqueeze(1), factors).squeeze(1) if t else None
        if initial is not None:
            initial = initial if keep_product is None else initial * keep_product
            plastic = initial if plastic is None else plastic + initial
        current = drive_steps[t]
        if plastic is not None:
            current = current + synapses.alpha * plastic
        recurrent = layer._recurrent_current(spikes)
        if recurrent is not None:
            current = current + recurrent
        spikes, membrane = _lif_step(membrane, current, mem_decay, layer.threshold, layer.reset, 0.0,
                                     layer.rectifier, layer.detach_reset, layer.surrogate)  # checked by the layer
        outputs.append(spikes)
        post_trace = trace_step(post_trace, spikes, post_decay)
        if synapses.modulator is None:
            rate = synapses.eta
        else:
            rate = synapses.modulator(post_trace if modulator_steps is None else modulator_steps[t])
        keep, delta, threshold = rule.linear_factors(post_trace, rate, threshold)
        if keep is not None:
            if not isinstance(keep, Tensor):
                keep = post_trace.new_full((1, n_post), float(keep))
            keep = keep.expand(1, n_post) if keep.dim() < 2 else keep
            factors = factors * keep.unsqueeze(1)
            if not fresh:  # Pi_t only weighs the initial trace
                keep_product = keep if keep_product is None else keep_product * keep
        factors = torch.cat([factors, delta.unsqueeze(1)], dim=1)
    if own:
        pre_traces = torch.stack(pre_list, dim=1)
        pre_trace = pre_list[-1]
    else:
        pre_trace = pre_traces[:, -1]
    hebb = None
    if need_trace:
        hebb = torch.bmm(pre_traces.transpose(1, 2), factors)  # sum_s x_s ⊗ D_T[s]
        if not fresh:
            hebb = hebb + (hebb0 if keep_product is None else hebb0 * keep_product.unsqueeze(1))
    plastic_state = PlasticState(hebb, state.plastic.eligibility, threshold)
    final = PlasticSpikingState(membrane, spikes, pre_trace, post_trace, plastic_state)
    return torch.stack(outputs, dim=1), final
