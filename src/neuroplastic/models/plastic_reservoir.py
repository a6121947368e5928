"""Local synaptic rules of :mod:`neuroplastic.plasticity.rules` applied to an echo-state network's recurrent
weights (the synaptic half of the self-organising reservoirs that Obst & Boedecker 2013 review).

``dynamics`` (the reservoir) may not import ``plasticity`` (the rules), so the two meet here, above both. The
recurrent weight ``W [post, pre]`` is the rule's trace ``H = W^T`` ``[pre, post]``; after every step of the
network the rule updates it from the previous state (pre-synaptic) and the new state (post-synaptic)::

    x_t = (1 - leak) x_{t-1} + leak f(a (W x_{t-1} + W_in u_t) + b)
    H   <- rule(H, pre = x_{t-1}, post = x_t, rate)          (the mean over the batch of the per-sample traces)

e.g. Oja's rule ``H <- H + eta post (pre - post H)``. ``restore_radius`` rescales ``W`` to its spectral radius
before the phase once the phase ends (synaptic rules change it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroplastic._checks import check_bool
from neuroplastic.dynamics.esn import EchoStateNetwork, scale_to_spectral_radius, spectral_radius
from neuroplastic.plasticity.rules import PlasticityRule, Rate

__all__ = ["adapt_reservoir_weights"]


@torch.no_grad()
def adapt_reservoir_weights(net: EchoStateNetwork, inputs: Tensor, rule: PlasticityRule, rate: Rate, *,
                            restore_radius: bool = False, state: Tensor | None = None) -> Tensor:
    """Run ``net`` on ``inputs [B, T, I]`` and update ``net.weight`` in place by ``rule`` after every step
    (see the module docstring); return the final state ``[B, N]``.

    ``rule``: a :class:`~neuroplastic.plasticity.rules.PlasticityRule` (e.g. ``OjaRule()``; a rule with a
    threshold starts from zeros); ``rate``: as the rule accepts it (a number, or a tensor ``[N]`` per
    receiving unit); ``state [B, N]``: the initial state (default zeros).
    """
    if not isinstance(rule, PlasticityRule):
        raise TypeError(f"rule must be a neuroplastic.plasticity.PlasticityRule, got {type(rule).__name__}")
    check_bool("restore_radius", restore_radius)
    net.check_inputs(inputs, state)
    radius = spectral_radius(net.weight) if restore_radius else 0.0
    batch = inputs.shape[0]
    drive = inputs @ net.input_weight.T
    x = inputs.new_zeros(batch, net.units) if state is None else state.clone()
    threshold = inputs.new_zeros(batch, net.units) if rule.uses_threshold else None
    leak = net.leak
    for t in range(inputs.shape[1]):
        y = net._f(net.gain * (x @ net.weight.T + drive[:, t]) + net.bias)
        new = y if leak == 1.0 else (1 - leak) * x + leak * y
        trace = net.weight.T.unsqueeze(0).expand(batch, -1, -1)
        trace, threshold = rule(trace, x, new, rate, threshold)
        net.weight.copy_(trace.mean(0).T)
        x = new
    if restore_radius and radius > 0:
        net.weight.copy_(scale_to_spectral_radius(net.weight, radius))
    return x
