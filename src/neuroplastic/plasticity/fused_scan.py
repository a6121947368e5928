"""Memory-frugal backpropagation through Hebbian traces: one autograd node for a whole sequence.

Keeping every step's ``[B, N, N]`` trace for autograd is what makes plastic networks slow and
memory-hungry: at N=200, T=200, B=30 that is gigabytes of freshly allocated memory. This module runs the
recurrence of a plastic cell as a single :class:`torch.autograd.Function`:

- forward: the trace is updated in place; only the trace at the start of each chunk of ``chunk`` steps is
  kept, with the small per-step tensors (hidden activity, post-synaptic activity, plasticity rate, plastic
  input);
- backward: each chunk's traces are recomputed from its start, then the chunk is walked backwards with
  hand-written vector-Jacobian products for the ``[B, N, N]`` operations (plastic input and trace update)
  and autograd for the small per-step part (activation, gates, modulator), which can be any
  differentiable function of the cell. For the library's own cells, whose small part treats each row of
  the batch on its own, the parameters' gradients are taken in one batched pass over all steps at the
  end instead of step by step.

The ``[B, N, N]`` operations have two interchangeable backends with the same interface: compiled C kernels
(:mod:`neuroplastic.plasticity.trace_kernels`; CPU, one pass over the trace per operation, used whenever they are
available) and PyTorch operations (any device; the fallback). The large buffers come from a pool that
reuses CPU memory across calls (:mod:`neuroplastic._workspace`), because faulting in fresh pages costs as
much as the arithmetic.

Memory: ``(T / chunk + 2 chunk + 5) * B N^2`` numbers instead of about ``6 T B N^2``. Gradients are those of
the plain computation, including the hard clip's convention of passing the gradient where the pre-clip
trace equals the bound (tested in float64 with gradcheck and against the step-by-step module).

Supported cells: :class:`PlasticRNNCell` and :class:`PlasticLSTMCell` with the decaying Hebbian rule or the
clipped additive rule, unmodulated or with simple neuromodulation, any alpha granularity. Other rules
and retroactive modulation use gradient checkpointing instead (see :func:`supports_fused`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neuroplastic._workspace import take
from neuroplastic.plasticity.modulation import Modulator
from neuroplastic.plasticity.rules import ClippedHebbianRule, DecayingHebbianRule
from neuroplastic.plasticity.synapses import PlasticState
from neuroplastic.plasticity.trace_kernels import TraceKernels, native_kernels

__all__ = ["supports_fused", "fused_scan"]


def supports_fused(cell) -> bool:
    """Whether :func:`fused_scan` handles this cell's rule and modulation."""
    synapses = cell.synapses
    rule_ok = type(synapses.rule) in (ClippedHebbianRule, DecayingHebbianRule)
    modulation_ok = synapses.modulation in ("none", "simple")
    return rule_ok and modulation_ok and not getattr(cell.synapses.rule, "uses_threshold", False)


def _rate_rows(rate: Tensor, batch: int, out: int) -> Tensor:
    """A plasticity rate (``[]``, ``[O]``, ``[B, 1]`` or ``[B, O]``) as ``[B, O]``."""
    if rate.dim() == 2:
        return rate.expand(batch, out)
    return rate.reshape(1, -1).expand(batch, out)


def _beyond(value: float, dtype: torch.dtype) -> float:
    """The next number of ``dtype`` after ``value``, away from zero."""
    start = torch.tensor(value, dtype=dtype)
    return torch.nextafter(start, torch.tensor(math.copysign(math.inf, value), dtype=dtype)).item()


class _Spec:
    """What the autograd function needs to know about the cell, outside the tensors it differentiates."""

    def __init__(self, cell, chunk: int) -> None:
        from neuroplastic.plasticity.recurrent import PlasticLSTMCell, PlasticRNNCell

        self.cell = cell
        self.chunk = chunk
        synapses = cell.synapses
        self.clip = synapses.rule.clip if isinstance(synapses.rule, ClippedHebbianRule) else None
        self.alpha_mode = synapses.alpha_granularity
        self.lstm = hasattr(cell, "gate_count") and cell.gate_count == 4
        self._bounds: dict[torch.dtype, tuple[float, float]] = {}
        # The library's cells and modulator treat each batch row on its own, so the small part can be
        # differentiated for all steps at once; anything else is differentiated step by step.
        self.rowwise = type(cell) in (PlasticRNNCell, PlasticLSTMCell) and (
            synapses.modulator is None or type(synapses.modulator) is Modulator)

    def clip_bounds(self, dtype: torch.dtype) -> tuple[float, float]:
        """The numbers of ``dtype`` just beyond ``-clip`` and ``clip``."""
        if dtype not in self._bounds:
            self._bounds[dtype] = (_beyond(-self.clip, dtype), _beyond(self.clip, dtype))
        return self._bounds[dtype]

    # -- the small per-step part, differentiable by autograd --------------------------------------
    def small_step(self, hidden, extra, drive, plastic_input):
        """``(h_{t-1}, c_{t-1}, drive_t, s_t) -> (h_t, c_t, post_t, rate_t)``."""
        cell = self.cell
        synapses = cell.synapses
        if self.lstm:
            n = cell.hidden_size
            gates = drive + hidden @ cell.weight
            input_gate, forget_gate, output_gate = torch.sigmoid(gates[:, : 3 * n]).chunk(3, dim=1)
            post = torch.tanh(gates[:, 3 * n:] + plastic_input)
            extra = forget_gate * extra + input_gate * post
            hidden = output_gate * torch.tanh(extra)
        else:
            hidden = cell.activation(drive + hidden @ cell.weight + plastic_input)
            post = hidden
        rate = synapses.eta if synapses.modulator is None else synapses.modulator(hidden)
        return hidden, extra, post, rate

    def small_vjp(self, pre: Tensor, extra: Tensor, drive: Tensor, plastic_input: Tensor, hidden: Tensor,
                  extra_out: Tensor, post: Tensor, out_grads: tuple[Tensor, Tensor, Tensor, Tensor]):
        """dL/d(h_{t-1}, c_{t-1}, s_t) of one small step, by hand (row-wise cells only; see ``rowwise``).

        ``hidden``, ``extra_out`` and ``post`` are the step's outputs saved by the forward pass.
        """
        cell = self.cell
        grad_hidden, grad_extra, d_post, d_rate = out_grads
        modulator = cell.synapses.modulator
        if modulator is not None:  # rate = fanout(tanh(h @ W_m + b_m)): its gradient flows into h
            signal = torch.tanh(modulator.neuromodulator(hidden))
            if modulator.fanout is not None:
                d_signal = d_rate @ modulator.fanout.weight
            else:
                d_signal = d_rate.sum_to_size(signal.shape)
            d_source = (d_signal * (1 - signal * signal)) @ modulator.neuromodulator.weight
            grad_hidden = grad_hidden + d_source
        if self.lstm:
            n = cell.hidden_size
            gates = torch.sigmoid(drive[:, : 3 * n] + pre @ cell.weight[:, : 3 * n])
            input_gate, forget_gate, output_gate = gates.chunk(3, dim=1)
            tanh_cell = torch.tanh(extra_out)
            d_cell = grad_extra + grad_hidden * output_gate * (1 - tanh_cell * tanh_cell)
            d_gates = torch.cat([d_cell * post, d_cell * extra, grad_hidden * tanh_cell], dim=1) * gates * (1 - gates)
            d_input = (d_cell * input_gate + d_post) * (1 - post * post)
            d_pre = torch.cat([d_gates, d_input], dim=1) @ cell.weight.t()
            return d_pre, d_cell * forget_gate, d_input
        grad_hidden = grad_hidden + d_post
        activation = cell.activation_name
        if activation == "tanh":
            d_input = grad_hidden * (1 - hidden * hidden)
        elif activation == "sigmoid":
            d_input = grad_hidden * hidden * (1 - hidden)
        else:  # relu
            d_input = grad_hidden * (hidden > 0)
        return d_input @ cell.weight.t(), extra, d_input



class _TorchTraceOps:
    """The ``[B, N, N]`` operations of one fused call as PyTorch operations (any device), by hand.

    Both backends share this interface; each call of the fused scan makes its own instance, which holds the
    call's scratch buffers.
    """

    def __init__(self, spec: _Spec, trace: Tensor, alpha: Tensor) -> None:
        self.spec = spec
        self.clip = spec.clip
        self.alpha = alpha
        self.connection = spec.alpha_mode == "connection"
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
            low, high = self.spec.clip_bounds(grad.dtype)
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
        self.alpha_grad_sum.add_((pre_trace * g).sum(0) if self.spec.alpha_mode == "neuron" else (pre_trace * g).sum())
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


class _NativeTraceOps(_TorchTraceOps):
    """The same operations with the compiled kernels of :mod:`neuroplastic.plasticity.trace_kernels` (CPU only).

    One sweep over the trace per step and no ``[B, I, O]`` temporaries: the forward step updates the trace and
    computes the next plastic input together; a backward step goes back through one step's plastic input and
    the previous step's update together, recomputing the clip mask from the previous trace instead of keeping
    unclipped traces; alpha's gradient is summed over the batch as it goes (``[I, O]`` per thread, reduced to
    alpha's shape at the end).
    """

    def __init__(self, spec: _Spec, trace: Tensor, alpha: Tensor, kernels: TraceKernels) -> None:
        self.spec = spec
        self.clip = spec.clip
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


def _trace_ops(spec: _Spec, trace: Tensor, alpha: Tensor) -> _TorchTraceOps:
    kernels = native_kernels(trace)
    return _TorchTraceOps(spec, trace, alpha) if kernels is None else _NativeTraceOps(spec, trace, alpha, kernels)


def _run(spec: _Spec, drives: Tensor, hidden0: Tensor, extra0: Tensor, trace0: Tensor, alpha: Tensor,
         keep: bool):
    """The forward recurrence; with ``keep``, also what the backward pass needs."""
    batch, steps, _ = drives.shape
    n_out = trace0.shape[2]
    like = {"dtype": drives.dtype, "device": drives.device}
    chunk = spec.chunk
    trace = take(tuple(trace0.shape), **like)
    trace.copy_(trace0)
    ops = _trace_ops(spec, trace, alpha)
    outputs = take((batch, steps, hidden0.shape[1]), **like)
    saved = {}
    if keep:
        saved["boundaries"] = take((math.ceil(steps / chunk),) + tuple(trace0.shape), **like)
        saved["boundaries"][0].copy_(trace0)
        saved["extras"] = take((batch, steps, extra0.shape[1]), **like)
        saved["posts"] = outputs if not spec.lstm else take((batch, steps, n_out), **like)
        saved["rates"] = take((batch, steps, n_out), **like)
        saved["inputs"] = take((batch, steps, n_out), **like)
        saved["pre_traces"] = take((batch, steps, n_out), **like) if ops.keeps_pre_traces else saved["inputs"]
    hidden, extra = hidden0, extra0
    s, pre_trace = ops.forward_start(trace, hidden)
    for t in range(steps):
        new_hidden, extra, post, rate = spec.small_step(hidden, extra, drives[:, t], s)
        rate = _rate_rows(rate, batch, n_out)
        outputs[:, t] = new_hidden
        if keep:
            saved["extras"][:, t] = extra
            if spec.lstm:
                saved["posts"][:, t] = post
            saved["rates"][:, t] = rate
            saved["inputs"][:, t] = s
            if ops.keeps_pre_traces:
                saved["pre_traces"][:, t] = pre_trace
        boundary = saved["boundaries"][(t + 1) // chunk] if keep and (t + 1) % chunk == 0 and t + 1 < steps else None
        s, pre_trace = ops.forward_step(trace, hidden, post, rate, outputs[:, t] if t + 1 < steps else None,
                                        boundary)
        hidden = new_hidden
    saved["kernels"] = getattr(ops, "kernels", None)
    return outputs, hidden.clone(), extra.clone(), trace, saved


class _FusedPlasticScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: _Spec, drives, hidden0, extra0, trace0, alpha, *small_params):
        outputs, hidden, extra, trace, saved = _run(spec, drives, hidden0, extra0, trace0, alpha, keep=True)
        ctx.spec = spec
        ctx.kernels = saved["kernels"]  # the backward pass uses the forward pass's backend
        ctx.small_params = small_params
        ctx.save_for_backward(drives, hidden0, extra0, alpha, outputs, saved["extras"], saved["posts"],
                              saved["rates"], saved["inputs"], saved["pre_traces"], saved["boundaries"])
        return outputs, hidden, extra, trace

    @staticmethod
    def backward(ctx, grad_outputs, grad_hidden_last, grad_extra_last, grad_trace_last):
        spec: _Spec = ctx.spec
        (drives, hidden0, extra0, alpha, outputs, extras, posts, rates, inputs, pre_traces,
         boundaries) = ctx.saved_tensors
        small_params = ctx.small_params
        batch, steps, _ = drives.shape
        chunk = spec.chunk
        trace_shape = tuple(boundaries.shape[1:])
        like = {"dtype": drives.dtype, "device": drives.device}
        ops = (_TorchTraceOps(spec, boundaries[0], alpha) if ctx.kernels is None
               else _NativeTraceOps(spec, boundaries[0], alpha, ctx.kernels))

        grad_trace = take(trace_shape, **like)
        if grad_trace_last is None:
            grad_trace.zero_()
        else:
            grad_trace.copy_(grad_trace_last)
        grad_outputs = torch.zeros_like(outputs) if grad_outputs is None else grad_outputs
        grad_hidden = torch.zeros_like(hidden0) if grad_hidden_last is None else grad_hidden_last
        grad_extra = torch.zeros_like(extra0) if grad_extra_last is None else grad_extra_last
        span = min(chunk, steps)
        ops.backward_setup(span)
        traces = take((span,) + trace_shape, **like)  # traces[k] = H_{start+k-1} for k >= 1
        if spec.rowwise:  # gradients arriving at each step's small outputs, for the batched pass at the end
            step_grads = {name: torch.empty_like(x) for name, x in
                          (("hidden", outputs), ("extra", extras), ("post", posts), ("rate", rates))}
        else:
            grad_drives = torch.empty_like(drives)
            grad_params = [torch.zeros_like(p) for p in small_params]

        def hidden_at(t):  # h_{t} for t >= -1
            return hidden0 if t < 0 else outputs[:, t]

        def extra_at(t):
            return extra0 if t < 0 else extras[:, t]

        # Walk back step by step. Step t's backward through its plastic input s_t (which needs dL/ds_t from the
        # small part) is done together with step t-1's backward through its trace update, in one sweep over
        # the trace gradient: ``pending`` holds the former until then.
        pending, partial_grad_hidden = None, None
        for t in reversed(range(steps)):
            c, k = divmod(t, chunk)
            start = c * chunk
            if t == min(start + chunk, steps) - 1:
                # Recompute this chunk's traces: traces[j] = H_{start+j-1} for j >= 1 (H_{start-1} is a boundary).
                for j in range(t - start):
                    ops.recompute(j, traces[j + 1], boundaries[c] if j == 0 else traces[j], hidden_at(start + j - 1),
                                  posts[:, start + j], rates[:, start + j])
                if ops.clip is not None:  # the torch backend's clip mask needs the last step's unclipped trace
                    ops.recompute(k, None, boundaries[c] if k == 0 else traces[k], hidden_at(t - 1), posts[:, t],
                                  rates[:, t])
            trace_prev = boundaries[c] if k == 0 else traces[k]  # H_{t-1}
            pre = hidden_at(t - 1)
            # Through s_{t+1} (pending), then through the trace update H_t = rule(H_{t-1}, h_{t-1}, post_t, rate_t).
            d_pre_input, (d_pre, d_post, d_rate) = ops.backward_step(
                grad_trace, pending, (k, trace_prev, pre, posts[:, t], rates[:, t]))
            if pending is not None:
                grad_hidden = partial_grad_hidden + d_pre_input
            grad_hidden = grad_hidden + grad_outputs[:, t]
            # Small part: (h_{t-1}, c_{t-1}, drive_t, s_t) -> (h_t, c_t, post_t, rate_t).
            if spec.rowwise:
                for name, value in (("hidden", grad_hidden), ("extra", grad_extra), ("post", d_post),
                                    ("rate", d_rate)):
                    step_grads[name][:, t] = value
                d_hidden_prev, d_extra_prev, d_input = spec.small_vjp(
                    pre, extra_at(t - 1), drives[:, t], inputs[:, t], outputs[:, t], extras[:, t],
                    posts[:, t], (grad_hidden, grad_extra, d_post, d_rate))
            else:
                (d_hidden_prev, d_extra_prev, d_input, d_drive), param_grads = _small_vjp(
                    spec, pre, extra_at(t - 1), drives[:, t], inputs[:, t],
                    (grad_hidden, grad_extra, d_post, d_rate), wrt_params=small_params, wrt_drive=True)
                grad_drives[:, t] = d_drive
                for acc, r in zip(grad_params, param_grads, strict=True):
                    if r is not None:
                        acc.add_(r)
            # Plastic input s_t = h_{t-1} @ (alpha * H_{t-1}): done with the next step's trace update.
            pending = (trace_prev, pre, d_input, pre_traces[:, t])
            partial_grad_hidden = d_hidden_prev + d_pre
            grad_extra = d_extra_prev
        d_pre_input, _ = ops.backward_step(grad_trace, pending, None)
        grad_hidden = partial_grad_hidden + d_pre_input
        if spec.rowwise:
            grad_drives, grad_params = _batched_small_vjp(spec, hidden0, extra0, drives, outputs, extras,
                                                          inputs, step_grads, small_params)
        return (None, grad_drives, grad_hidden, grad_extra, grad_trace, ops.alpha_grad(), *grad_params)


def _small_vjp(spec: _Spec, pre, extra, drive, plastic_input, out_grads, wrt_params, wrt_drive=False):
    """dL/d(h_{t-1}, c_{t-1}, s_t[, drive_t]) and dL/dparams of one small step, by autograd."""
    with torch.enable_grad():
        leaves = [pre.detach().requires_grad_(), extra.detach().requires_grad_(),
                  drive.detach().requires_grad_(wrt_drive), plastic_input.detach().requires_grad_()]
        outs = spec.small_step(*leaves)
        wrt = [leaves[0], leaves[1], leaves[3]] + ([leaves[2]] if wrt_drive else []) + list(wrt_params)
        result = _grad(outs, out_grads, wrt)
    n_leaves = 4 if wrt_drive else 3
    leaf_grads = tuple(torch.zeros_like(x) if r is None else r for r, x in zip(result[:n_leaves], wrt, strict=False))
    return leaf_grads, result[n_leaves:]


def _grad(outs, out_grads, wrt):
    hidden, extra, post, rate = outs
    grad_hidden, grad_extra, d_post, d_rate = out_grads
    rate_grad = d_rate.sum_to_size(rate.shape) if rate.dim() else d_rate.sum()
    used = [(o, g) for o, g in zip((hidden, extra, post, rate), (grad_hidden, grad_extra, d_post, rate_grad),
                                   strict=True) if o.requires_grad]
    wanted = [w for w in wrt if w.requires_grad]
    if not used or not wanted:
        return [None] * len(wrt)
    grads = iter(torch.autograd.grad([o for o, _ in used], wanted, [g for _, g in used], allow_unused=True))
    return [next(grads) if w.requires_grad else None for w in wrt]


def _batched_small_vjp(spec: _Spec, hidden0, extra0, drives, outputs, extras, inputs, step_grads, small_params):
    """The drives' and small parameters' gradients for all steps in one pass (row-wise small parts only)."""
    batch, steps, _ = drives.shape

    def rows(x: Tensor) -> Tensor:
        return x.reshape(batch * steps, x.shape[-1])

    pre = rows(torch.cat([hidden0.unsqueeze(1), outputs[:, :-1]], dim=1))
    extra = rows(torch.cat([extra0.unsqueeze(1), extras[:, :-1]], dim=1))
    with torch.enable_grad():
        drive = rows(drives).detach().requires_grad_()
        outs = spec.small_step(pre, extra, drive, rows(inputs))
        out_grads = tuple(rows(step_grads[name]) for name in ("hidden", "extra", "post", "rate"))
        result = _grad(outs, out_grads, [drive, *small_params])
    grad_drives = torch.zeros_like(drives) if result[0] is None else result[0].view_as(drives)
    return grad_drives, [torch.zeros_like(p) if r is None else r for p, r in zip(small_params, result[1:], strict=True)]


def fused_scan(cell, drives: Tensor, state, chunk_size: int | None = None):
    """Run ``cell`` over ``drives [B, T, D]`` from ``state`` as one autograd node (see the module doc).

    Returns ``(outputs [B, T, N], final state)`` of the cell's state type. Without gradients (``no_grad``,
    or nothing that requires them) it runs the same recurrence in place and keeps nothing.
    """
    if not supports_fused(cell):
        raise ValueError(
            "fused backpropagation supports the 'hebbian' and 'clip' rules with modulation 'none' or "
            f"'simple'; this cell has rule {type(cell.synapses.rule).__name__} and modulation "
            f"{cell.synapses.modulation!r}: use backprop='checkpoint'"
        )
    steps = drives.shape[1]
    chunk = chunk_size or max(1, round(math.sqrt(steps)))
    spec = _Spec(cell, chunk)
    synapses = cell.synapses
    lstm = spec.lstm
    extra0 = state.cell if lstm else state.hidden.new_zeros(state.hidden.shape[0], 0)
    small_params = [p for name, p in cell.named_parameters()
                    if p.requires_grad and name != "synapses.alpha"
                    and not name.startswith("input_to_hidden.")]
    tensors = (drives, state.hidden, extra0, state.plastic.trace, synapses.alpha, *small_params)
    if torch.is_grad_enabled() and any(x.requires_grad for x in tensors):
        outputs, hidden, extra, trace = _FusedPlasticScan.apply(spec, *tensors)
    else:
        outputs, hidden, extra, trace, _ = _run(spec, *tensors[:5], keep=False)
    plastic = PlasticState(trace, state.plastic.eligibility, state.plastic.threshold)
    if lstm:
        return outputs, type(state)(hidden, extra, plastic)
    return outputs, type(state)(hidden, plastic)
