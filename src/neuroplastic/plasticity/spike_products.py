"""Products with spike tensors for the fused plastic spiking layer, as autograd functions over C kernels.

The fused backend of :class:`~neuroplastic.plasticity.spiking.PlasticLIF` (:mod:`neuroplastic.plasticity.
spiking_fused`) needs, per batch row, the Gram matrix of the input spikes ``s s^T`` ``[B, T, T]``, the outer-
product sum ``s^T m`` ``[B, I, O]`` and a linear scan ``out_t = decay * out_{t-1} + w_t x_t`` along time. For a
mostly-zero ``s`` the C kernels of :mod:`neuroplastic.neurons.spike_kernels` skip its zeros (work proportional
to the spikes); each product here is differentiable, with the backward by hand (dense products or the same
kernels), and falls back to plain PyTorch operations where the kernels do not apply (GPU, other dtypes, no
compiler, ``use_native(False)``) or the input is denser than :data:`SPARSE_DENSITY`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroplastic._c_kernels import advise_huge_pages
from neuroplastic.neurons.spike_kernels import SNNKernels, snn_kernels

__all__ = ["SPARSE_DENSITY", "sparse_kernels", "linear_scan", "spike_gram", "spike_outer_sum"]


SPARSE_DENSITY = 0.25
"""Input density (fraction of nonzeros) up to which the fused backend's products with the input skip its zeros."""


def sparse_kernels(spikes: Tensor) -> SNNKernels | None:
    """The C kernels for products with ``spikes [B, T, I]`` (contiguous) if they apply and it is sparse enough."""
    kernels = snn_kernels(spikes)
    if kernels is None or spikes.numel() == 0:
        return None
    counts = torch.empty(spikes.shape[0] * spikes.shape[1], dtype=torch.int64)
    kernels.row_counts(spikes.detach().view(-1, spikes.shape[2]), counts)
    return kernels if int(counts.sum()) <= SPARSE_DENSITY * spikes.numel() else None


class _LinearScan(torch.autograd.Function):
    """``out_t = decay * out_{t-1} + w_t x_t`` along dim 1 (``reverse``: ``out_{t+1}``), from 0 (C kernel both
    ways; ``w [T]`` or None)."""

    @staticmethod
    def forward(ctx, x: Tensor, weights: Tensor | None, decay: Tensor, reverse: bool, kernels: SNNKernels) -> Tensor:
        x = x.contiguous()
        weights = None if weights is None else weights.contiguous()
        out = torch.empty_like(x)
        lam = float(decay)
        kernels.linear_scan(x, lam, reverse, out, weights)
        ctx.save_for_backward(x, weights, out)
        ctx.lam, ctx.reverse, ctx.kernels, ctx.decay_dtype = lam, reverse, kernels, decay.dtype
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weights, out = ctx.saved_tensors
        needs = ctx.needs_input_grad
        total = torch.empty_like(out)  # dL/d(w_t x_t): the transposed recurrence
        ctx.kernels.linear_scan(grad.contiguous(), ctx.lam, not ctx.reverse, total)
        grad_x = grad_w = grad_decay = None
        if needs[0]:
            grad_x = total if weights is None else total * weights.view(1, -1, 1)
        if weights is not None and needs[1]:
            grad_w = (total * x).sum((0, 2))
        if needs[2]:  # sum_t dL/dout_t (total) . out_{t -/+ 1}
            pairs = total[:, :-1] * out[:, 1:] if ctx.reverse else total[:, 1:] * out[:, :-1]
            grad_decay = pairs.sum().reshape(()).to(ctx.decay_dtype)
        return grad_x, grad_w, grad_decay, None, None


def linear_scan(x: Tensor, decay: Tensor, reverse: bool = False, weights: Tensor | None = None) -> Tensor:
    """``out_t = decay * out_{t-1} + w_t x_t`` along dim 1 of ``x [B, T, N]`` from ``out = 0`` (``reverse``: from
    the last step back, ``out_t = decay * out_{t+1} + w_t x_t``; ``weights w [T]``, None: ones); differentiable in
    ``x``, ``weights`` and the 0-d ``decay``."""
    kernels = snn_kernels(x)
    if (kernels is not None and decay.dim() == 0 and x.dtype == decay.dtype
            and (weights is None or weights.dtype == x.dtype)):
        return _LinearScan.apply(x, weights, decay, reverse, kernels)
    if weights is not None:
        x = x * weights.view(1, -1, 1)
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    out: list[Tensor] = []
    for t in steps:
        out.append(x[:, t] if not out else decay * out[-1] + x[:, t])
    return torch.stack(out[::-1] if reverse else out, dim=1)


class _SpikeGram(torch.autograd.Function):
    """``s s^T`` per batch row for a mostly-zero ``s [B, T, I]`` (C kernel); the backward is a dense product."""

    @staticmethod
    def forward(ctx, spikes: Tensor, kernels: SNNKernels) -> Tensor:
        out = spikes.new_empty(spikes.shape[0], spikes.shape[1], spikes.shape[1])
        kernels.spike_gram(spikes.detach(), out)
        ctx.save_for_backward(spikes)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        (spikes,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), spikes), None


class _SpikeOuterSum(torch.autograd.Function):
    """``s^T m`` per batch row (``[B, I, O]``) for a mostly-zero ``s [B, T, I]`` and ``m [B, T, O]`` (C kernels
    both ways for ``m``; the gradient of ``s`` is a dense product)."""

    @staticmethod
    def forward(ctx, spikes: Tensor, m: Tensor, kernels: SNNKernels) -> Tensor:
        m = m.contiguous()
        out = m.new_empty(spikes.shape[0], spikes.shape[2], m.shape[2])
        advise_huge_pages(out)  # [B, I, O] into fresh memory: 268 MB at B=16, I=O=2048
        kernels.spike_outer_sum(spikes.detach(), m, out)
        ctx.save_for_backward(spikes, m)
        ctx.kernels = kernels
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        spikes, m = ctx.saved_tensors
        grad = grad.contiguous()
        grad_spikes = grad_m = None
        if ctx.needs_input_grad[0]:
            grad_spikes = torch.bmm(m, grad.transpose(1, 2))
        if ctx.needs_input_grad[1]:
            grad_m = torch.empty_like(m)
            ctx.kernels.spike_rows_product(spikes.detach(), grad, grad_m)
        return grad_spikes, grad_m, None


def spike_gram(spikes: Tensor, kernels: SNNKernels | None) -> Tensor:
    """``[B, T, T]``: ``s_t . s_r`` per batch row (skipping the zeros of ``spikes`` when ``kernels`` is given)."""
    if kernels is None:
        return torch.bmm(spikes, spikes.transpose(1, 2))
    return _SpikeGram.apply(spikes, kernels)


def spike_outer_sum(spikes: Tensor, m: Tensor, kernels: SNNKernels | None) -> Tensor:
    """``[B, I, O]``: ``sum_t s_t ⊗ m_t`` per batch row (skipping the zeros of ``spikes`` when ``kernels`` is given)."""
    if kernels is None:
        return torch.bmm(spikes.transpose(1, 2), m)
    return _SpikeOuterSum.apply(spikes, m, kernels)
