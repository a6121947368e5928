"""The ``[B, N, N]`` operations of the fused plastic scan (:mod:`neuroplastic.plasticity.fused_scan`), two backends.

A step of a plastic recurrent cell touches its Hebbian trace ``H [B, I, O]`` twice: the plastic input
``s = pre @ (alpha * H)`` ``[B, O]`` and the trace update of the decaying Hebbian rule
(``H <- (1 - rate) H + pre ⊗ (rate * post)``) or of the clip rule (``H <- clip(H + pre ⊗ (rate * post), ±clip)``);
the backward pass goes back through both. These are the only operations on ``[B, I, O]`` tensors, and they
have two interchangeable backends with the same interface: :class:`TorchTraceOps` (PyTorch operations, any
device, written without ``[B, I, O]`` temporaries) and :class:`NativeTraceOps` (the compiled kernels of
:mod:`neuroplastic.plasticity.trace_kernels`, CPU, one pass over the trace per step). Large buffers come from
the reusable CPU pool of :mod:`neuroplastic._workspace`.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from neuroplastic._workspace import take
from neuroplastic.plasticity.trace_kernels import TraceKernels, native_kernels

__all__ = ["TorchTraceOps", "NativeTraceOps", "trace_ops", "clip_bounds"]


def _beyond(value: float, dtype: torch.dtype) -> float:
    """The next number of ``dtype`` after ``value``, away from zero."""
    start = torch.tensor(value, dtype=dtype)
    return torch.nextafter(start, torch.tensor(math.copysign(math.inf, value), dtype=dtype)).item()


@functools.cache
def clip_bounds(clip: float, dtype: torch.dtype) -> tuple[float, float]:
    """The numbers of ``dtype`` just beyond ``-clip`` and ``clip``."""
    return _beyond(-clip, dtype), _beyond(clip, dtype)


class TorchTraceOps:
    """The ``[B, N, N]`` operations of one fused call as PyTorch operations (any device), by hand.

    Both backends share this interface; each call of the fused scan makes its own instance, which holds the
    call's scratch buffers.
    """

    def __init__(self, clip: float | None, alpha_mode: str, trace: Tensor, alpha: Tensor) -> None:
        self.clip = clip
        self.alpha_mode = alpha_mode
        self.alpha = alpha
        self.connection = alpha_mode == "connection"
        self.shape = tuple(trace.shape)
        self.like = {"dtype": trace.dtype, "device": trace.device}
        self.scratch = take(self.shape, **self.like) if self.connection else None
        # Per neuron or scalar alpha, the backward pass needs ``pre @ H`` of each step, kept by the forward.
        self.keeps_pre_traces = not self.connection

    def forward_start(self, trace: Tensor, pre: Tensor) -> tuple[Tensor, Tensor]:
        """The first plastic input ``s = pre @ (alpha * H)`` ``[B, O]`` and ``pre @ H``."""
        return self.plastic_input(pre, trace)

    def forward_step(self, trace: Tensor, pre: Tensor, post: Tensor, rate: Tensor, next_pre: Tensor | None,
                     boundary: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """Update ``trace`` in place, copy it into ``boundary`` if given, return the next plastic input."""
        self.trace_update(trace, trace, pre, post, rate)
        if boundary is not None:
            boundary.copy_(trace)
        return (None, None) if next_pre is None else self.plastic_input(next_pre, trace)

    def plastic_input(self, pre: Tensor, trace: Tensor) -> tuple[Tensor, Tensor]:
        """``s = pre @ (alpha * H)`` ``[B, O]``, and ``pre @ H`` (the same without alpha; unused per connection)."""
        if self.connection:
            torch.mul(trace, self.alpha, out=self.scratch)
            s = torch.bmm(pre.unsqueeze(1), self.scratch).squeeze(1)
            return s, s
        pre_trace = torch.bmm(pre.unsqueeze(1), trace).squeeze(1)
        return pre_trace * self.alpha, pre_trace

    def trace_update(self, out: Tensor | None, trace: Tensor, pre: Tensor, post: Tensor, rate: Tensor,
                     unclipped: Tensor | None = None) -> None:
        """``out <- rule(trace, pre, post, rate)`` without allocating ``[B, I, O]`` tensors.

        With the clip rule, ``unclipped`` (if given) receives the trace before clipping, and ``out`` may then
        be None. Forward and recomputation use the same operations, so the recomputed traces are bit for bit
        the same.
        """
        delta = (rate * post).unsqueeze(1)
        if self.clip is not None:
            target = out if unclipped is None else unclipped
            torch.addcmul(trace, pre.unsqueeze(2), delta, out=target)
            if unclipped is None:
                out.clamp_(-self.clip, self.clip)
            elif out is not None:
                torch.clamp(unclipped, -self.clip, self.clip, out=out)
        else:
            torch.mul(trace, (1 - rate).unsqueeze(1), out=out)
            out.addcmul_(pre.unsqueeze(2), delta)

    # -- backward ---------------------------------------------------------------------------------------
    def backward_setup(self, span: int) -> None:
        """Buffers for a backward pass through chunks of at most ``span`` steps."""
        self.unclipped = take((span,) + self.shape, **self.like) if self.clip is not None else None
        self.spare = take(self.shape, **self.like) if self.connection else None
        if self.scratch is None:
            self.scratch = take(self.shape, **self.like)
        if self.connection:  # per batch element, summed at the end
            self.alpha_grad_sum = take(self.shape, **self.like)
            self.alpha_grad_sum.zero_()
        else:
            self.alpha_grad_sum = torch.zeros_like(self.alpha)

    def recompute(self, k: int, out: Tensor | None, trace: Tensor, pre: Tensor, post: Tensor, rate: Tensor) -> None:
        """Step ``k`` of a chunk's recomputation: ``out`` (None for the chunk's last step) <- rule(trace)."""
        if out is not None or self.clip is not None:
            self.trace_update(out, trace, pre, post, rate, None if self.unclipped is None else self.unclipped[k])

    def trace_update_vjp(self, k: int, grad: Tensor, trace: Tensor, pre: Tensor, post: Tensor,
                         rate: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Back through the trace update; ``grad`` (dL/dH_t) becomes dL/dH_{t-1} (through this path) in place.

        Returns dL/dpre ``[B, I]``, dL/dpost ``[B, O]``, dL/drate ``[B, O]``.
        """
        rate_post = rate * post
        if self.clip is not None:
            # clamp passes the gradient where -clip <= Z <= clip, Z the unclipped trace; the bounds one step
            # beyond the clip make hardtanh's strict test inclusive.
            low, high = clip_bounds(self.clip, grad.dtype)
            torch.ops.aten.hardtanh_backward.grad_input(grad, self.unclipped[k], low, high, grad_input=grad)
            v = torch.bmm(pre.unsqueeze(1), grad).squeeze(1)
            d_pre = torch.bmm(rate_post.unsqueeze(1), grad.transpose(1, 2)).squeeze(1)
            return d_pre, rate * v, post * v
        v = torch.bmm(pre.unsqueeze(1), grad).squeeze(1)
        d_pre = torch.bmm(rate_post.unsqueeze(1), grad.transpose(1, 2)).squeeze(1)
        grad_dot_trace = torch.mul(grad, trace, out=self.scratch).sum(1)
        grad.mul_((1 - rate).unsqueeze(1))
        return d_pre, rate * v, post * v - grad_dot_trace

    def plastic_input_vjp(self, grad_trace: Tensor, trace: Tensor, pre: Tensor, g: Tensor,
                          pre_trace: Tensor | None) -> Tensor:
        """Back through ``s = pre @ (alpha * H)`` with dL/ds = ``g``: adds into ``grad_trace`` and alpha's gradient.

        Returns dL/dpre ``[B, I]``.
        """
        alpha = self.alpha
        if self.connection:
            alpha_g = torch.mul(alpha, g.unsqueeze(1), out=self.scratch)  # alpha[i,j] g[b,j]
            grad_trace.addcmul_(alpha_g, pre.unsqueeze(2))
            trace_g = torch.mul(trace, g.unsqueeze(1), out=self.spare)  # H[b,i,j] g[b,j]
            self.alpha_grad_sum.addcmul_(trace_g, pre.unsqueeze(2))
            return torch.mul(trace_g, alpha, out=self.scratch).sum(2)
        alpha_g = alpha * g
        d_pre = torch.bmm(alpha_g.unsqueeze(1), trace.transpose(1, 2)).squeeze(1)
        self.alpha_grad_sum.add_((pre_trace * g).sum(0) if self.alpha_mode == "neuron" else (pre_trace * g).sum())
        grad_trace.addcmul_(pre.unsqueeze(2), alpha_g.unsqueeze(1))
        return d_pre

    def backward_step(self, grad: Tensor, input_part: tuple | None, trace_part: tuple | None):
        """One step back on ``grad`` (dL/dH_t, in place): through the plastic input ``s_{t+1}``, then the update.

        ``input_part = (H_t, h_t, dL/ds_{t+1}, h_t @ H_t or None)`` and ``trace_part = (k, H_{t-1}, h_{t-1},
        post_t, rate_t)``, ``k`` the step's index in its chunk; either may be None. Returns dL/dh_t through
        ``s_{t+1}`` (or None) and (dL/dh_{t-1}, dL/dpost_t, dL/drate_t) through the update (or None); ``grad``
        ends as dL/dH_{t-1} through this step.
        """
        d_pre_input = None if input_part is None else self.plastic_input_vjp(grad, *input_part)
        return d_pre_input, None if trace_part is None else self.trace_update_vjp(trace_part[0], grad, *trace_part[1:])

    def alpha_grad(self) -> Tensor:
        """dL/dalpha, alpha's shape."""
        return self.alpha_grad_sum.sum(0) if self.connection else self.alpha_grad_sum


class NativeTraceOps(TorchTraceOps):
    """The same operations with the compiled kernels of :mod:`neuroplastic.plasticity.trace_kernels` (CPU only).

    One sweep over the trace per step and no ``[B, I, O]`` temporaries: the forward step updates the trace and
    computes the next plastic input together; a backward step goes back through one step's plastic input and
    the previous step's update together, recomputing the clip mask from the previous trace instead of keeping
    unclipped traces; alpha's gradient is summed over the batch as it goes (``[I, O]`` per thread, reduced to
    alpha's shape at the end).
    """

    def __init__(self, clip: float | None, alpha_mode: str, trace: Tensor, alpha: Tensor,
                 kernels: TraceKernels) -> None:
        self.clip = clip
        self.alpha_mode = alpha_mode
        self.alpha = alpha
        self.kernels = kernels
        self.shape = tuple(trace.shape)
        self.like = {"dtype": trace.dtype, "device": trace.device}
        self.alpha_full = alpha.detach().expand(self.shape[1:]).contiguous()
        self.keeps_pre_traces = False

    def _rates(self, post: Tensor, rate: Tensor) -> tuple[Tensor, Tensor | None]:
        """``delta = rate * post`` and, for the decaying rule, ``keep = 1 - rate`` (both ``[B, O]``)."""
        return (rate * post).contiguous(), None if self.clip is not None else (1 - rate).contiguous()

    def forward_start(self, trace: Tensor, pre: Tensor) -> tuple[Tensor, None]:
        s = pre.new_empty(self.shape[0], self.shape[2])
        self.kernels.trace_step(trace, trace, next_pre=_unit(pre), alpha=self.alpha_full, s_out=s)
        return s, None

    def forward_step(self, trace: Tensor, pre: Tensor, post: Tensor, rate: Tensor, next_pre: Tensor | None,
                     boundary: Tensor | None) -> tuple[Tensor | None, None]:
        delta, keep = self._rates(post, rate)
        s = None if next_pre is None else pre.new_empty(self.shape[0], self.shape[2])
        self.kernels.trace_step(trace, trace, _unit(pre), delta, keep, self.clip,
                                None if next_pre is None else _unit(next_pre), self.alpha_full, s, None, boundary)
        return s, None

    def backward_setup(self, span: int) -> None:
        # alpha's gradient, one [I, O] part per thread of the kernel (summed at the end)
        self.alpha_grad_parts = torch.zeros((torch.get_num_threads(),) + self.shape[1:], **self.like)

    def recompute(self, k: int, out: Tensor | None, trace: Tensor, pre: Tensor, post: Tensor, rate: Tensor) -> None:
        if out is not None:
            delta, keep = self._rates(post, rate)
            self.kernels.trace_step(trace, out, _unit(pre), delta, keep, self.clip)

    def backward_step(self, grad: Tensor, input_part: tuple | None, trace_part: tuple | None):
        batch, n_in, n_out = self.shape
        arguments = {}
        d_pre_input = trace_grads = None
        if input_part is not None:
            trace_mid, pre_in, g, _ = input_part
            d_pre_input = grad.new_empty(batch, n_in)
            arguments.update(trace_mid=trace_mid, pre_in=_unit(pre_in), g=g.contiguous(), alpha=self.alpha_full,
                             alpha_grad_parts=self.alpha_grad_parts, d_pre_in_out=d_pre_input)
        if trace_part is not None:
            _, trace_prev, pre, post, rate = trace_part
            delta, keep = self._rates(post, rate)
            v, d_pre = grad.new_empty(batch, n_out), grad.new_empty(batch, n_in)
            grad_dot_trace = None if keep is None else grad.new_empty(batch, n_out)
            arguments.update(trace_prev=trace_prev, pre=_unit(pre), delta=delta, keep=keep, clip=self.clip, v_out=v,
                             d_pre_out=d_pre, gdt_out=grad_dot_trace)
        self.kernels.trace_backward(grad, **arguments)
        if trace_part is not None:
            d_rate = post * v if grad_dot_trace is None else post * v - grad_dot_trace
            trace_grads = (d_pre, rate * v, d_rate)
        return d_pre_input, trace_grads

    def alpha_grad(self) -> Tensor:
        return self.alpha_grad_parts.sum(0).sum_to_size(self.alpha.shape)


def _unit(x: Tensor) -> Tensor:
    """``x`` with a unit inner stride (as the native kernels need for per-row vectors)."""
    return x if x.stride(-1) == 1 else x.contiguous()


def trace_ops(clip: float | None, alpha_mode: str, trace: Tensor, alpha: Tensor) -> TorchTraceOps:
    """The operations for one fused call on ``trace [B, I, O]``: native where :func:`native_kernels` applies.

    ``clip``: the clip rule's bound (None: the decaying Hebbian rule); ``alpha_mode``: ``"connection"``,
    ``"neuron"`` or ``"scalar"``; ``alpha``: the plasticity coefficient.
    """
    kernels = native_kernels(trace)
    if kernels is None:
        return TorchTraceOps(clip, alpha_mode, trace, alpha)
    return NativeTraceOps(clip, alpha_mode, trace, alpha, kernels)
