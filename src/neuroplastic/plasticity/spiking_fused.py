"""The fused backend of the feed-forward plastic spiking layer: no Python loop over time, no ``[B, I, O]`` trace
but the final one.

Schmidgall et al. 2021, SpikePropamine, computed another way, for :class:`~neuroplastic.plasticity.spiking.
PlasticLIF` without recurrent weights, with the decaying Hebbian rule (``H <- (1 - eta) H + eta x ⊗ y``), a scalar
eta, alpha per neuron or scalar and no modulation. Its keep factor ``1 - eta`` does not depend on the post-synaptic
side, and the pre-synaptic side (the input spikes ``s_t`` and their trace ``x_t``) is known before the scan, so
the plastic input is a causal mixing of the post-synaptic traces with weights known in advance::

    p_t = sum_{s<t} A[t, s] y_s  (+ (1-eta)^t (s_t @ Hebb_0) from a given state),
    A[b, t, s] = (s_t . x_s) * eta * (1 - eta)^(t-1-s),  s_t . x_s = sum_{r<=s} lambda_pre^(s-r) (s_t . s_r)
                 (+ lambda_pre^(s+1) s_t . x_init)

The Gram matrix ``s_t . s_r [B, T, T]`` and the fixed drive ``s_t W + b`` are computed up front (skipping the zeros
of spike inputs: work proportional to the spikes, :mod:`neuroplastic.plasticity.spike_products`), the sequential
part (``A``, the plastic input, the LIF neurons, the post trace ``y``) is one autograd node with a hand-written
backward (:func:`neuroplastic.neurons.fused_lif.hebbian_lif_sequence`; C kernels on CPU, ``O(B T^2 O)`` each way,
PyTorch operations elsewhere), and the final trace ``Hebb_T = (1-eta)^T Hebb_0 + sum_s x_s ⊗ eta (1-eta)^(T-1-s)
y_s`` is one product with the input spikes (none at all with ``need_trace=False``).

Oja's and BCM's rules cannot be done this way: their keep factor (Oja, ``1 - eta y^2``) or their update (BCM,
``eta y (y - theta)``) is a nonlinear function of the post-synaptic trace, so ``A`` would depend on the output
being computed; they use the low-rank backend. Same values as the dense backend up to rounding (spikes identical
in the tests, gradients to 1e-9 in float64).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuroplastic.neurons.fused_lif import LIFConfig, hebbian_lif_sequence
from neuroplastic.plasticity.spike_products import linear_scan, sparse_kernels, spike_gram, spike_outer_sum
from neuroplastic.plasticity.spiking_state import PlasticSpikingState
from neuroplastic.plasticity.synapses import PlasticState

__all__ = ["fused_hebbian_scan"]


def fused_hebbian_scan(layer: nn.Module, inputs: Tensor, state: PlasticSpikingState | None, fresh: bool,
                       need_trace: bool = True) -> tuple[Tensor, PlasticSpikingState]:
    """Run ``layer`` (a feed-forward :class:`~neuroplastic.plasticity.spiking.PlasticLIF`) over ``inputs [B, T, I]``
    as a few batched products and one fused autograd node (see the module docstring).

    Returns ``(spikes [B, T, O], final state)``.

    ``fresh``: the state is the zero initial state (no initial traces, membrane or Hebbian trace to carry).
    ``need_trace``: build the final trace (else the returned state's trace is None).
    """
    syn = layer.synapses
    mem_decay, pre_decay, post_decay = layer.decays()
    batch, steps, _ = inputs.shape
    n_post = layer._post_size
    spikes_in = inputs.contiguous()
    kernels = sparse_kernels(spikes_in)
    eta = syn.eta
    ones = eta.new_ones(1)
    keep_pow = torch.cat([ones, (1 - eta).reshape(1).expand(steps)]).cumprod(0)  # (1 - eta)^k, k = 0..T
    gram = spike_gram(spikes_in, kernels)  # [b, t, r] = s_t . s_r
    drive = layer._spike_drive(spikes_in)
    overlap = None
    if not fresh:
        x_init, hebb0 = state.pre_trace, state.plastic.trace
        overlap = torch.bmm(spikes_in, x_init.unsqueeze(2)).squeeze(2)  # s_t . x_init
        # keep^t (s_t @ Hebb_0): the initial trace, decayed, read at every step
        drive = drive + syn.alpha * (torch.bmm(spikes_in, hebb0) * keep_pow[:steps].view(1, steps, 1))
    config = LIFConfig(layer.reset, 0.0, layer.rectifier, layer.detach_reset, layer.surrogate)
    threshold = drive.new_full((n_post,), layer.threshold)
    spikes, traces, membrane = hebbian_lif_sequence(
        drive, gram, overlap, eta, pre_decay, syn.alpha.expand(n_post), None if fresh else state.membrane,
        None if fresh else state.post_trace, mem_decay.expand(n_post), threshold, post_decay, config)
    # final traces: x_{T-1}; Hebb_T = keep^T Hebb_0 + sum_s x_s ⊗ F_s with F_s = eta keep^(T-1-s) y_s, as
    # sum_r s_r ⊗ M_r (M_r = sum_{s >= r} lambda_pre^(s-r) F_s, a reverse-time trace of F)
    # + x_init ⊗ sum_s lambda_pre^(s+1) F_s
    pre_pow = torch.cat([ones, pre_decay.reshape(1).to(ones.dtype).expand(steps)]).cumprod(0)  # lambda_pre^k
    # x_{T-1} = sum_r lambda_pre^(T-1-r) s_r (one batched vector-matrix product)
    pre_trace = torch.bmm(pre_pow[:steps].flip(0).view(1, 1, steps).expand(batch, 1, steps), spikes_in).squeeze(1)
    weights = eta * keep_pow[:steps].flip(0)  # F_s = weights[s] * y_s
    hebb = None
    if need_trace:
        hebb = spike_outer_sum(spikes_in, linear_scan(traces, pre_decay, reverse=True, weights=weights),
                                kernels)
    if not fresh:
        pre_trace = pre_trace + pre_pow[steps] * x_init
        if need_trace:
            carried = torch.matmul(weights * pre_pow[1:], traces)  # sum_s lambda_pre^(s+1) F_s
            hebb = hebb + x_init.unsqueeze(2) * carried.unsqueeze(1) + keep_pow[steps] * hebb0
    plastic_state = PlasticState(hebb, None, None)  # no eligibility trace (not modulated), no BCM threshold
    final = PlasticSpikingState(membrane, spikes[:, -1], pre_trace, traces[:, -1], plastic_state)
    return spikes, final
