"""Fused multi-step LIF: one autograd node for a whole ``[B, T, N]`` sequence, with a hand-written backward.

The step-by-step form (a loop of :func:`~neuroplastic.neurons.lif.lif_step`) records about ten autograd
nodes and as many ``[B, N]`` temporaries per time step. :func:`lif_sequence` runs the same recurrence as a
single :class:`torch.autograd.Function`:

- forward: the membrane is carried step to step without autograd; only the pre-spike membrane ``h_t`` of
  every step is kept (``[B, T, N]``, as much memory as the input);
- backward: from the last step to the first, the spikes and the reset are recomputed from ``h_t`` and the
  vector-Jacobian product of the step is applied by hand (equations in ``snn_kernels.c``), giving the
  gradients of the input currents, the initial membrane, the per-neuron decay and threshold.

On CPU (float32/float64) both passes are C kernels (:mod:`neuroplastic.neurons.spike_kernels`): each block of
neurons runs its whole time loop in L1 cache. Elsewhere (CUDA, no compiler, ``NEUROPLASTIC_NATIVE=0``) the
same algorithm runs with PyTorch operations. Custom :class:`~neuroplastic.neurons.surrogates.Surrogate`
subclasses are supported: the forward is the same, and the backward runs with PyTorch operations calling
the surrogate's ``grad()`` (the C kernels know only the built-in surrogates).

Spikes are those of the step-by-step form bit for bit (same arithmetic, operation by operation); gradients
equal it to rounding (tested to 1e-5 for every reset mode, MPR, detach_reset and surrogate).

:func:`plastic_lif_sequence` is the same neuron fed back its own post-synaptic traces through a causal mixing
matrix (``c_t = drive_t + alpha * sum_{s<t} A[t, s] y_s``): the sequential part of the fused plastic spiking
layer (:mod:`neuroplastic.plasticity.spiking_fused`, ``backend="fused"``), with :func:`hebbian_lif_sequence` building
``A`` for the decaying Hebbian rule (inside the C kernels on CPU). The LIF step and its backward are the same
code as :func:`lif_sequence`'s (``forward_step`` / ``backward_step`` in ``snn_kernels.c``, and
``_forward_step_torch`` / ``_backward_step_torch`` here).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from neuroplastic._checks import (
    check_bool,
    check_choice,
    check_nonempty_sequence,
    check_number,
    check_tensor,
    check_values,
)
from neuroplastic.neurons.lif import MPR_K, RESETS
from neuroplastic.neurons.spike_kernels import snn_kernels
from neuroplastic.neurons.surrogates import Surrogate

__all__ = ["lif_sequence", "plastic_lif_sequence", "hebbian_lif_sequence", "hebbian_mixing", "LIFConfig"]


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


def _forward_step_torch(x_t: Tensor, v: Tensor, decay: Tensor, threshold: Tensor,
                        config: LIFConfig) -> tuple[Tensor, Tensor, Tensor]:
    """One LIF step: ``(spikes, h, v')`` from the input ``x_t`` and the membrane ``v`` (``[B, N]``)."""
    h = decay * v + x_t
    z = _rectifier_parts(h, threshold)[0] if config.rectifier else h
    s = (z > threshold).to(x_t.dtype)
    return s, h, _reset(h, s, threshold, config)


def _backward_step_torch(h: Tensor, gs: Tensor | None, gv: Tensor, threshold: Tensor,
                         config: LIFConfig) -> tuple[Tensor, Tensor, Tensor]:
    """One step of the backward pass (equations in ``snn_kernels.c``): ``(dL/dh_t, dL/dthreshold term, v_t)``
    from the pre-spike membrane ``h``, ``gs = dL/ds_t`` from the outputs (None: zeros) and ``gv = dL/dv_t``."""
    if config.rectifier:
        z, dzdh, dzdth = _rectifier_parts(h, threshold)
    else:
        z, dzdh, dzdth = h, 1.0, 0.0
    s = (z > threshold).to(h.dtype)
    v = _reset(h, s, threshold, config)
    if config.reset == "soft":
        dvdh, dvds, dvdth = 1.0, -threshold, -s
    elif config.reset == "hard":
        dvdh, dvds, dvdth = 1.0 - s, config.v_reset - h, 0.0
    else:
        dvdh, dvds, dvdth = 1.0, 0.0, 0.0
    gs = torch.zeros_like(h) if gs is None else gs
    if not config.detach_reset:
        gs = gs + gv * dvds
    gsg = gs * config.surrogate.grad(z - threshold)
    gh = gv * dvdh + gsg * dzdh
    return gh, gv * dvdth + gsg * (dzdth - 1.0), v


def _forward_torch(x: Tensor, v0: Tensor | None, decay: Tensor, threshold: Tensor, config: LIFConfig):
    batch, steps, _ = x.shape
    spikes, h_all = torch.empty_like(x), torch.empty_like(x)
    v = torch.zeros_like(x[:, 0]) if v0 is None else v0
    for t in range(steps):
        spikes[:, t], h_all[:, t], v = _forward_step_torch(x[:, t], v, decay, threshold, config)
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
        gs = None if grad_spikes is None else grad_spikes[:, t]
        gh, gth_t, v = _backward_step_torch(h_all[:, t], gs, gv, threshold, config)
        if gh_next is not None:
            gd = gd + gh_next * v
        gth = gth + gth_t
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

    ``x: [B, T, N]`` input currents (floating point, ``B, T >= 1``); ``v0: [B, N]`` in ``x``'s dtype and device,
    or None (zeros); ``decay, threshold: [N]`` tensors (expand a scalar first; gradients are summed back by
    autograd), cast to ``x``'s dtype; ``threshold`` finite and > 0, ``decay`` not NaN. Same equations as
    :func:`~neuroplastic.neurons.lif.lif_step` applied at every step. ``config``: a :class:`LIFConfig`.
    """
    check_tensor("x", x, ("B", "T", "N"))
    check_nonempty_sequence("x", x)
    n = x.shape[2]
    if v0 is not None:
        check_tensor("v0", v0, (x.shape[0], n), like=x, like_name="x")
    check_tensor("decay", decay, (n,))
    check_tensor("threshold", threshold, (n,))
    if decay.device != x.device or threshold.device != x.device:
        raise ValueError(f"decay and threshold must be on x's device {x.device}")
    check_values("decay", decay, finite=False)
    check_values("threshold", threshold, minimum=0, exclusive_minimum=True)
    if not isinstance(config, LIFConfig):
        raise TypeError(f"config must be a LIFConfig, got {type(config).__name__}")
    check_choice("config.reset", config.reset, RESETS)
    if not isinstance(config.surrogate, Surrogate):
        raise TypeError(f"config.surrogate must be a Surrogate, got {type(config.surrogate).__name__}")
    check_number("config.v_reset", config.v_reset)
    return _lif_sequence(x, v0, decay, threshold, config._replace(rectifier=check_bool("config.rectifier",
                                                                                       config.rectifier),
                                                                  detach_reset=check_bool("config.detach_reset",
                                                                                          config.detach_reset)))


def _lif_sequence(x: Tensor, v0: Tensor | None, decay: Tensor, threshold: Tensor, config: LIFConfig) -> tuple[Tensor,
                                                                                                              Tensor]:
    """:func:`lif_sequence` without argument checks (the modules check their inputs and state)."""
    dtype = x.dtype
    x = x.contiguous()
    v0 = None if v0 is None else v0.to(dtype).contiguous()
    decay = decay.to(dtype).contiguous()
    threshold = threshold.to(dtype).contiguous()
    return _FusedLIF.apply(x, v0, decay, threshold, config)


# -- LIF fed back its own post-synaptic traces (the fused plastic spiking layer) --------------------------------

def _plastic_forward_torch(drive: Tensor, mixing: Tensor, alpha: Tensor, v0: Tensor | None, y0: Tensor | None,
                           decay: Tensor, threshold: Tensor, trace_decay: float, config: LIFConfig):
    batch, steps, _ = drive.shape
    spikes, h_all, plastic, traces = (torch.empty_like(drive) for _ in range(4))
    v = torch.zeros_like(drive[:, 0]) if v0 is None else v0
    y = torch.zeros_like(drive[:, 0]) if y0 is None else y0
    for t in range(steps):
        p = torch.bmm(mixing[:, t:t + 1, :t], traces[:, :t]).squeeze(1) if t else torch.zeros_like(v)
        s, h, v = _forward_step_torch(drive[:, t] + alpha * p, v, decay, threshold, config)
        y = trace_decay * y + s
        spikes[:, t], h_all[:, t], plastic[:, t], traces[:, t] = s, h, p, y
    return spikes, h_all, plastic, traces, v


def _plastic_backward_torch(h_all: Tensor, mixing: Tensor, alpha: Tensor, plastic: Tensor, traces: Tensor,
                            v0: Tensor | None, y0: Tensor | None, decay: Tensor, threshold: Tensor, trace_decay: float,
                            config: LIFConfig, grad_spikes: Tensor | None, grad_traces: Tensor | None,
                            grad_v: Tensor | None):
    batch, steps, n = h_all.shape
    zeros = torch.zeros_like(h_all[:, 0])
    gv = zeros if grad_v is None else grad_v
    g_total = zeros  # G_{t+1}
    feedback = torch.zeros_like(h_all)  # R_s = sum_{u > s} A[u, s] q_u, filled in as u goes down
    g_drive, g_mixing = torch.empty_like(h_all), h_all.new_zeros(batch, steps, steps)
    gd, gth, g_alpha, g_decay = zeros, zeros, zeros, zeros
    gh_next = None
    for t in range(steps - 1, -1, -1):
        g = feedback[:, t] if grad_traces is None else grad_traces[:, t] + feedback[:, t]
        g = g + trace_decay * g_total
        g_total = g
        gz = g if grad_spikes is None else grad_spikes[:, t] + g
        previous = traces[:, t - 1] if t else y0
        if previous is not None:
            g_decay = g_decay + g * previous
        gh, gth_t, v = _backward_step_torch(h_all[:, t], gz, gv, threshold, config)
        if gh_next is not None:
            gd = gd + gh_next * v
        gth = gth + gth_t
        g_drive[:, t] = gh
        gh_next = gh
        gv = gh * decay
        q = alpha * gh
        g_alpha = g_alpha + gh * plastic[:, t]
        if t:
            g_mixing[:, t, :t] = torch.bmm(traces[:, :t], q.unsqueeze(2)).squeeze(2)
            feedback[:, :t] += mixing[:, t, :t].unsqueeze(2) * q.unsqueeze(1)
    if v0 is not None:
        gd = gd + gh_next * v0
    return g_drive, g_mixing, g_alpha, gv, trace_decay * g_total, gd, gth, g_decay


def _grad_spikes_arguments(grad_spikes: Tensor | None) -> tuple[Tensor | None, float]:
    """A broadcast number (e.g. from ``spikes.sum()``) is passed to the kernels as the number, not a copy."""
    if grad_spikes is not None and all(stride == 0 for stride in grad_spikes.stride()):
        return None, float(grad_spikes.reshape(-1)[0])
    return (None if grad_spikes is None else grad_spikes.contiguous()), 0.0


class _FusedPlasticLIF(torch.autograd.Function):
    """LIF fed back its post traces through a given mixing matrix (C kernels or PyTorch operations)."""

    @staticmethod
    def forward(ctx, drive: Tensor, mixing: Tensor, alpha: Tensor, v0: Tensor | None, y0: Tensor | None,
                decay: Tensor, threshold: Tensor, trace_decay: Tensor, config: LIFConfig):
        ctx.set_materialize_grads(False)
        lam = float(trace_decay)
        kernels = snn_kernels(drive)
        if kernels is not None:
            spikes, h, plastic, traces = (torch.empty_like(drive) for _ in range(4))
            v_out = torch.empty_like(drive[:, 0])
            kernels.plastic_forward(drive, mixing, None, alpha, v0, y0, decay, threshold, lam, config.reset,
                                    config.v_reset, config.rectifier, MPR_K, spikes, h, plastic, traces, v_out)
        else:
            spikes, h, plastic, traces, v_out = _plastic_forward_torch(drive, mixing, alpha, v0, y0, decay,
                                                                       threshold, lam, config)
        ctx.save_for_backward(h, mixing, alpha, plastic, traces, v0, y0, decay, threshold)
        ctx.trace_decay = lam
        ctx.config = config
        return spikes, traces, v_out

    @staticmethod
    def backward(ctx, grad_spikes: Tensor | None, grad_traces: Tensor | None, grad_v: Tensor | None):
        h, mixing, alpha, plastic, traces, v0, y0, decay, threshold = ctx.saved_tensors
        config: LIFConfig = ctx.config
        lam = ctx.trace_decay
        code = config.surrogate._kernel()
        kernels = snn_kernels(h) if code is not None else None
        grad_v = None if grad_v is None else grad_v.contiguous()
        grad_traces = None if grad_traces is None else grad_traces.contiguous()
        if kernels is not None:
            grad_spikes, constant = _grad_spikes_arguments(grad_spikes)
            rows = [torch.empty_like(h[:, 0]) for _ in range(4)]
            g_drive, g_mixing = torch.empty_like(h), torch.empty_like(mixing)
            gv0 = None if v0 is None else torch.empty_like(v0)
            gy0 = None if y0 is None else torch.empty_like(y0)
            kernels.plastic_backward(h, mixing, None, alpha, plastic, traces, v0, y0, decay, threshold, lam,
                                     config.reset, config.v_reset, config.rectifier, MPR_K, config.detach_reset, code,
                                     grad_spikes, constant, grad_traces, grad_v, g_drive, g_mixing, None, rows[0],
                                     gv0, gy0, rows[1], rows[2], rows[3])
            g_alpha, gd, gth, g_lam = rows
        else:
            grad_spikes = None if grad_spikes is None else grad_spikes.contiguous()
            g_drive, g_mixing, g_alpha, gv0, gy0, gd, gth, g_lam = _plastic_backward_torch(
                h, mixing, alpha, plastic, traces, v0, y0, decay, threshold, lam, config, grad_spikes, grad_traces,
                grad_v)
        needs = ctx.needs_input_grad
        return (g_drive if needs[0] else None, g_mixing if needs[1] else None, g_alpha.sum(0) if needs[2] else None,
                gv0 if needs[3] else None, gy0 if needs[4] else None, gd.sum(0) if needs[5] else None,
                gth.sum(0) if needs[6] else None, g_lam.sum().reshape(()) if needs[7] else None, None)


class _FusedHebbianLIF(torch.autograd.Function):
    """The same with the decaying Hebbian mixing matrix built inside the C kernels (both ways)."""

    @staticmethod
    def forward(ctx, drive: Tensor, gram: Tensor, overlap: Tensor | None, eta: Tensor, pre_decay: Tensor,
                alpha: Tensor, v0: Tensor | None, y0: Tensor | None, decay: Tensor, threshold: Tensor,
                trace_decay: Tensor, config: LIFConfig, kernels):
        ctx.set_materialize_grads(False)
        hebbian = (gram, overlap, float(eta), float(pre_decay))
        lam = float(trace_decay)
        spikes, h, plastic, traces = (torch.empty_like(drive) for _ in range(4))
        v_out = torch.empty_like(drive[:, 0])
        kernels.plastic_forward(drive, None, hebbian, alpha, v0, y0, decay, threshold, lam, config.reset,
                                config.v_reset, config.rectifier, MPR_K, spikes, h, plastic, traces, v_out)
        ctx.save_for_backward(h, gram, overlap, alpha, plastic, traces, v0, y0, decay, threshold)
        ctx.numbers = (hebbian[2], hebbian[3], lam)
        ctx.config, ctx.kernels = config, kernels
        return spikes, traces, v_out

    @staticmethod
    def backward(ctx, grad_spikes: Tensor | None, grad_traces: Tensor | None, grad_v: Tensor | None):
        h, gram, overlap, alpha, plastic, traces, v0, y0, decay, threshold = ctx.saved_tensors
        config: LIFConfig = ctx.config
        eta, pre_decay, lam = ctx.numbers
        needs = ctx.needs_input_grad
        grad_spikes, constant = _grad_spikes_arguments(grad_spikes)
        grad_v = None if grad_v is None else grad_v.contiguous()
        grad_traces = None if grad_traces is None else grad_traces.contiguous()
        rows = [torch.empty_like(h[:, 0]) for _ in range(4)]
        g_drive = torch.empty_like(h)
        g_gram = torch.empty_like(gram) if needs[1] else None
        g_overlap = torch.empty_like(overlap) if overlap is not None and needs[2] else None
        g_eta, g_pre = h.new_empty(h.shape[0]), h.new_empty(h.shape[0])
        gv0 = None if v0 is None else torch.empty_like(v0)
        gy0 = None if y0 is None else torch.empty_like(y0)
        ctx.kernels.plastic_backward(h, None, (gram, overlap, eta, pre_decay), alpha, plastic, traces, v0, y0, decay,
                                     threshold, lam, config.reset, config.v_reset, config.rectifier, MPR_K,
                                     config.detach_reset, config.surrogate._kernel(), grad_spikes, constant,
                                     grad_traces, grad_v, g_drive, None, (g_gram, g_overlap, g_eta, g_pre), rows[0],
                                     gv0, gy0, rows[1], rows[2], rows[3])
        g_alpha, gd, gth, g_lam = rows
        return (g_drive if needs[0] else None, g_gram, g_overlap, g_eta.sum().reshape(()) if needs[3] else None,
                g_pre.sum().reshape(()) if needs[4] else None, g_alpha.sum(0) if needs[5] else None,
                gv0 if needs[6] else None, gy0 if needs[7] else None, gd.sum(0) if needs[8] else None,
                gth.sum(0) if needs[9] else None, g_lam.sum().reshape(()) if needs[10] else None, None, None)


def plastic_lif_sequence(drive: Tensor, mixing: Tensor, alpha: Tensor, v0: Tensor | None, y0: Tensor | None,
                         decay: Tensor, threshold: Tensor, trace_decay: Tensor,
                         config: LIFConfig) -> tuple[Tensor, Tensor, Tensor]:
    """LIF neurons fed back their own post-synaptic traces through a causal mixing matrix, as one autograd node.

    The sequential part of the fused plastic spiking layer (:mod:`neuroplastic.plasticity.spiking_fused`, backend
    ``"fused"``: there ``A[b, t, s] = (s_t . x_s) * eta * (1 - eta)^(t-1-s)``). Per step ``t``::

        P_t = sum_{s<t} A[:, t, s] y_s                     (the plastic input, before alpha)
        c_t = drive_t + alpha * P_t
        z_t, v_t = lif_step(v_{t-1}, c_t)                  (decay, threshold, config: as lif_sequence)
        y_t = trace_decay * y_{t-1} + z_t                  (post-synaptic trace, y_{-1} = y0)

    The backward pass (hand-written; C kernel on CPU, else PyTorch operations, the same algorithm) runs from
    the last step to the first with ``G_t = dL/dy_t = gY_t + sum_{u>t} A[u, t] q_u + trace_decay * G_{t+1}``,
    ``dL/dz_t = gZ_t + G_t``, the LIF step's backward giving ``gc_t = dL/dc_t``, ``q_t = alpha * gc_t``,
    ``dL/dA[t, s] = q_t . y_s`` (s < t), ``dL/dalpha = sum_t gc_t * P_t``, ``dL/dtrace_decay = sum_t G_t .
    y_{t-1}``: ``O(B T^2 N)`` work each way, ``3 [B, T, N]`` tensors kept (``h``, ``P``, ``y``).

    Shapes: ``drive [B, T, N]``; ``mixing A [B, T, T]`` (only ``s < t`` is read; its gradient is zero
    elsewhere); ``alpha, decay, threshold [N]`` (expand a scalar first); ``v0, y0 [B, N]`` or None (zeros);
    ``trace_decay`` a 0-d tensor. Returns ``(spikes [B, T, N], traces y [B, T, N], v_T [B, N])``, all
    differentiable. Arguments are not validated here: the layers do that.
    """
    dtype = drive.dtype
    drive, mixing = drive.contiguous(), mixing.to(dtype).contiguous()
    v0 = None if v0 is None else v0.to(dtype).contiguous()
    y0 = None if y0 is None else y0.to(dtype).contiguous()
    alpha, decay, threshold = (x.to(dtype).contiguous() for x in (alpha, decay, threshold))
    return _FusedPlasticLIF.apply(drive, mixing, alpha, v0, y0, decay, threshold, trace_decay.to(dtype), config)


def hebbian_mixing(gram: Tensor, overlap: Tensor | None, eta: Tensor, pre_decay: Tensor) -> Tensor:
    """The decaying Hebbian rule's mixing matrix ``A [B, T, T]`` for :func:`plastic_lif_sequence` (PyTorch ops).

    ``A[b, t, s] = (s_t . x_s) * eta * (1 - eta)^(t-1-s)`` for ``s < t`` (else 0), where the pre-synaptic trace
    ``x_s = sum_{r<=s} pre_decay^(s-r) s_r + pre_decay^(s+1) x_init`` enters through the Gram matrix of the inputs
    ``gram[b, t, r] = s_t . s_r`` and ``overlap[b, t] = s_t . x_init`` (None: a zero initial trace). ``eta``,
    ``pre_decay``: 0-d tensors. Differentiable in all of them.
    """
    steps = gram.shape[1]
    ones = eta.new_ones(1)
    keep_pow = torch.cat([ones, (1 - eta).reshape(1).expand(max(steps - 1, 0))]).cumprod(0)  # (1-eta)^k, k < T
    pre_pow = torch.cat([ones, pre_decay.reshape(1).expand(steps)]).cumprod(0)  # pre_decay^k, k <= T
    index = torch.arange(steps, device=gram.device)
    lag = index.unsqueeze(1) - index.unsqueeze(0)  # [t, s] = t - s
    zero = keep_pow.new_zeros(())
    toeplitz = torch.where(lag >= 0, pre_pow[lag.clamp(min=0)], zero)  # [s, r] = pre_decay^(s-r), r <= s
    overlaps = torch.matmul(gram, toeplitz.t())  # s_t . x_s
    if overlap is not None:
        overlaps = overlaps + overlap.unsqueeze(2) * pre_pow[1:].view(1, 1, steps)
    return overlaps * torch.where(lag > 0, eta * keep_pow[(lag - 1).clamp(min=0)], zero)


def hebbian_lif_sequence(drive: Tensor, gram: Tensor, overlap: Tensor | None, eta: Tensor, pre_decay: Tensor,
                         alpha: Tensor, v0: Tensor | None, y0: Tensor | None, decay: Tensor, threshold: Tensor,
                         trace_decay: Tensor, config: LIFConfig) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`plastic_lif_sequence` with the decaying Hebbian mixing matrix (:func:`hebbian_mixing`).

    On CPU with the built-in surrogates the C kernels build ``A`` row by row themselves, forward and backward
    (no ``[B, T, T]`` tensors but ``gram`` and its gradient); elsewhere ``A`` is built with PyTorch operations.
    Shapes: ``drive [B, T, N]``, ``gram [B, T, T]``, ``overlap [B, T]`` or None, ``eta``, ``pre_decay``,
    ``trace_decay`` 0-d; the rest as :func:`plastic_lif_sequence`. Returns ``(spikes, traces y, v_T)``.
    """
    dtype = drive.dtype
    kernels = snn_kernels(drive) if config.surrogate._kernel() is not None else None
    if kernels is None or gram.dtype != dtype or (overlap is not None and overlap.dtype != dtype):
        return plastic_lif_sequence(drive, hebbian_mixing(gram, overlap, eta, pre_decay), alpha, v0, y0, decay,
                                    threshold, trace_decay, config)
    v0 = None if v0 is None else v0.to(dtype).contiguous()
    y0 = None if y0 is None else y0.to(dtype).contiguous()
    overlap = None if overlap is None else overlap.contiguous()
    alpha, decay, threshold = (x.to(dtype).contiguous() for x in (alpha, decay, threshold))
    return _FusedHebbianLIF.apply(drive.contiguous(), gram.contiguous(), overlap, eta, pre_decay, alpha, v0, y0, decay,
                                  threshold, trace_decay, config, kernels)
