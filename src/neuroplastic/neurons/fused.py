"""Fused multi-step LIF: one autograd node for a whole ``[B, T, N]`` sequence, with a hand-written backward.

The step-by-step form (a loop of :func:`~neuroplastic.neurons.lif.lif_step`) records about ten autograd
nodes and as many ``[B, N]`` temporaries per time step. :func:`lif_sequence` runs the same recurrence as a
single :class:`torch.autograd.Function`:

- forward: the membrane is carried step to step without autograd; only the pre-spike membrane ``h_t`` of
  every step is kept (``[B, T, N]``, as much memory as the input);
- backward: from the last step to the first, the spikes and the reset are recomputed from ``h_t`` and the
  vector-Jacobian product of the step is applied by hand (equations in ``snn_kernels.c``), giving the
  gradients of the input currents, the initial membrane, the per-neuron decay and threshold.

On CPU (float32/float64) both passes are C kernels (:mod:`neuroplastic.neurons.native`): each block of
neurons runs its whole time loop in L1 cache. Elsewhere (CUDA, no compiler, ``NEUROPLASTIC_NATIVE=0``) the
same algorithm runs with PyTorch operations. Custom :class:`~neuroplastic.neurons.surrogates.Surrogate`
subclasses are supported: the forward is the same, and the backward runs with PyTorch operations calling
the surrogate's ``grad()`` (the C kernels know only the built-in surrogates).

Spikes are those of the step-by-step form bit for bit (same arithmetic, operation by operation); gradients
equal it to rounding (tested to 1e-5 for every reset mode, MPR, detach_reset and surrogate).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from neuroplastic.neurons.lif import MPR_K
from neuroplastic.neurons.native import snn_kernels
from neuroplastic.neurons.surrogates import Surrogate

__all__ = ["lif_sequence", "LIFConfig"]


class LIFConfig(NamedTuple):
    """The non-tensor settings of a LIF sequence."""

    reset: str
    v_reset: float
    rectifier: bool
    detach_reset: bool
    surrogate: Surrogate


def _rectifier_parts(h: Tensor, threshold: Tensor, k: float = MPR_K) -> tuple[Tensor, Tensor, Tensor]:
    """``z = mpr(h)``, ``dz/dh`` and ``dz/dthreshold`` (see :func:`~neuroplastic.neurons.lif.membrane_rectifier`)."""
    two = 2.0 * threshold
    u = h / two
    mid_div = 2.0 * math.tanh(k / 2.0)
    low_c = torch.pow(1.0 - u.clamp_max(0.0), 1.0 / 3.0)
    high_c = torch.pow(u.clamp_min(1.0), 1.0 / 3.0)
    t = torch.tanh(k * (u.clamp(0.0, 1.0) - 0.5))
    phi = torch.where(u < 0, 1.0 - low_c, torch.where(u > 1, high_c, t / mid_div + 0.5))
    dphi = torch.where(u < 0, 1.0 / (3.0 * low_c * low_c),
                       torch.where(u > 1, 1.0 / (3.0 * high_c * high_c), k * (1.0 - t * t) / mid_div))
    return two * phi, dphi, 2.0 * (phi - u * dphi)


def _reset(h: Tensor, s: Tensor, threshold: Tensor, config: LIFConfig) -> Tensor:
    if config.reset == "soft":
        return h - threshold * s
    if config.reset == "hard":
        return h * (1.0 - s) + config.v_reset * s
    return h


def _forward_torch(x: Tensor, v0: Tensor | None, decay: Tensor, threshold: Tensor, config: LIFConfig):
    batch, steps, _ = x.shape
    spikes, h_all = torch.empty_like(x), torch.empty_like(x)
    v = torch.zeros_like(x[:, 0]) if v0 is None else v0
    for t in range(steps):
        h = decay * v + x[:, t]
        z = _rectifier_parts(h, threshold)[0] if config.rectifier else h
        s = (z > threshold).to(x.dtype)
        v = _reset(h, s, threshold, config)
        spikes[:, t] = s
        h_all[:, t] = h
    return spikes, h_all, v


def _backward_torch(h_all: Tensor, v0: Tensor | None, decay: Tensor, threshold: Tensor, config: LIFConfig,
                    grad_spikes: Tensor | None, grad_v: Tensor | None):
    batch, steps, n = h_all.shape
    gv = torch.zeros_like(h_all[:, 0]) if grad_v is None else grad_v
    gx = torch.empty_like(h_all)
    gd = torch.zeros_like(h_all[:, 0])
    gth = torch.zeros_like(h_all[:, 0])
    gh_next = None
    for t in range(steps - 1, -1, -1):
        h = h_all[:, t]
        if config.rectifier:
            z, dzdh, dzdth = _rectifier_parts(h, threshold)
        else:
            z, dzdh, dzdth = h, 1.0, 0.0
        s = (z > threshold).to(h.dtype)
        v = _reset(h, s, threshold, config)
        if gh_next is not None:
            gd = gd + gh_next * v
        if config.reset == "soft":
            dvdh, dvds, dvdth = 1.0, -threshold, -s
        elif config.reset == "hard":
            dvdh, dvds, dvdth = 1.0 - s, config.v_reset - h, 0.0
        else:
            dvdh, dvds, dvdth = 1.0, 0.0, 0.0
        gs = torch.zeros_like(h) if grad_spikes is None else grad_spikes[:, t]
        if not config.detach_reset:
            gs = gs + gv * dvds
        gsg = gs * config.surrogate.grad(z - threshold)
        gh = gv * dvdh + gsg * dzdh
        gth = gth + gv * dvdth + gsg * (dzdth - 1.0)
        gx[:, t] = gh
        gh_next = gh
        gv = gh * decay
    if v0 is not None:
        gd = gd + gh_next * v0
    return gx, gv, gd, gth


class _FusedLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, v0: Tensor | None, decay: Tensor, threshold: Tensor, config: LIFConfig):
        kernels = snn_kernels(x)
        if kernels is not None:
            spikes, h = torch.empty_like(x), torch.empty_like(x)
            v_out = torch.empty_like(x[:, 0])
            kernels.forward(x, v0, decay, threshold, config.reset, config.v_reset, config.rectifier, MPR_K, spikes,
                            h, v_out)
        else:
            spikes, h, v_out = _forward_torch(x, v0, decay, threshold, config)
        ctx.save_for_backward(h, v0, decay, threshold)
        ctx.config = config
        return spikes, v_out

    @staticmethod
    def backward(ctx, grad_spikes: Tensor | None, grad_v: Tensor | None):
        h, v0, decay, threshold = ctx.saved_tensors
        config: LIFConfig = ctx.config
        code = config.surrogate._kernel()
        kernels = snn_kernels(h) if code is not None else None
        grad_v = None if grad_v is None else grad_v.contiguous()
        if kernels is not None:
            constant = 0.0
            if grad_spikes is not None and all(stride == 0 for stride in grad_spikes.stride()):
                # a broadcast scalar, e.g. from spikes.sum(): pass the number, not a [B, T, N] copy
                constant, grad_spikes = float(grad_spikes.reshape(-1)[0]), None
            grad_spikes = None if grad_spikes is None else grad_spikes.contiguous()
            gx = torch.empty_like(h)
            gv0 = None if v0 is None else torch.empty_like(v0)
            gd, gth = torch.empty_like(h[:, 0]), torch.empty_like(h[:, 0])
            kernels.backward(h, v0, decay, threshold, config.reset, config.v_reset, config.rectifier, MPR_K,
                             config.detach_reset, code, grad_spikes, grad_v, gx, gv0, gd, gth, constant)
        else:
            grad_spikes = None if grad_spikes is None else grad_spikes.contiguous()
            gx, gv0, gd, gth = _backward_torch(h, v0, decay, threshold, config, grad_spikes, grad_v)
        needs = ctx.needs_input_grad
        return (gx if needs[0] else None, gv0 if needs[1] else None, gd.sum(0) if needs[2] else None,
                gth.sum(0) if needs[3] else None, None)


def lif_sequence(x: Tensor, v0: Tensor | None, decay: Tensor, threshold: Tensor, config: LIFConfig) -> tuple[Tensor,
                                                                                                             Tensor]:
    """Run a LIF layer over a sequence as one autograd node; returns ``(spikes [B, T, N], v_T [B, N])``.

    ``x: [B, T, N]`` input currents; ``v0: [B, N]`` or None (zeros); ``decay, threshold: [N]`` (expand a
    scalar first; gradients are summed back by autograd). Same equations as
    :func:`~neuroplastic.neurons.lif.lif_step` applied at every step. Arguments are not validated here: the
    modules do that.
    """
    dtype = x.dtype
    x = x.contiguous()
    v0 = None if v0 is None else v0.to(dtype).contiguous()
    decay = decay.to(dtype).contiguous()
    threshold = threshold.to(dtype).contiguous()
    return _FusedLIF.apply(x, v0, decay, threshold, config)
