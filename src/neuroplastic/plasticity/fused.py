"""Memory-frugal backpropagation through Hebbian traces: one autograd node for a whole sequence.

Keeping every step's ``[B, N, N]`` trace for autograd is what makes plastic networks slow and
memory-hungry: at N=200, T=200, B=30 that is gigabytes of freshly allocated memory. This module runs the
recurrence of a plastic cell as a single :class:`torch.autograd.Function`:

- forward: the trace is updated in place in preallocated buffers; only the trace at the start of each
  chunk of ``chunk`` steps is kept, with the small per-step tensors (hidden activity, post-synaptic
  activity, plasticity rate, plastic input);
- backward: each chunk's traces are recomputed from its start into a reused buffer, then the chunk is
  walked backwards with hand-written vector-Jacobian products for the ``[B, N, N]`` operations (plastic
  input and trace update) and autograd for the small per-step part (activation, gates, modulator),
  which can be any differentiable function of the cell.

Memory: ``(T / chunk + chunk + 4) * B N^2`` numbers instead of about ``6 T B N^2``. Gradients are those of
the plain computation (tested in float64 with gradcheck and against the step-by-step module).

Supported cells: :class:`PlasticRNNCell` and :class:`PlasticLSTMCell` with the decaying Hebbian rule or the
clipped additive rule, unmodulated or with simple neuromodulation, any alpha granularity. Other rules
and retroactive modulation use gradient checkpointing instead (see :func:`supports_fused`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neuroplastic.plasticity.rules import ClippedHebbianRule, DecayingHebbianRule
from neuroplastic.plasticity.synapses import PlasticState

__all__ = ["supports_fused", "fused_scan"]


def supports_fused(cell) -> bool:
    """Whether :func:`fused_scan` handles this cell's rule and modulation."""
    synapses = cell.synapses
    rule_ok = type(synapses.rule) in (ClippedHebbianRule, DecayingHebbianRule)
    modulation_ok = synapses.modulation in ("none", "simple")
    return rule_ok and modulation_ok and not getattr(cell.synapses.rule, "uses_threshold", False)


def _matvec(matrix: Tensor, vector: Tensor, scratch: Tensor) -> Tensor:
    """``matrix [B, I, O] @ vector [B, O]`` -> ``[B, I]``, through ``scratch`` (faster than bmm on CPU)."""
    return torch.mul(matrix, vector.unsqueeze(1), out=scratch).sum(2)


def _rate_rows(rate: Tensor, batch: int, out: int) -> Tensor:
    """A plasticity rate (``[]``, ``[O]``, ``[B, 1]`` or ``[B, O]``) as ``[B, O]``."""
    if rate.dim() == 2:
        return rate.expand(batch, out)
    return rate.reshape(1, -1).expand(batch, out)


class _Spec:
    """What the autograd function needs to know about the cell, outside the tensors it differentiates."""

    def __init__(self, cell, chunk: int) -> None:
        self.cell = cell
        self.chunk = chunk
        synapses = cell.synapses
        self.clip = synapses.rule.clip if isinstance(synapses.rule, ClippedHebbianRule) else None
        self.alpha_mode = synapses.alpha_granularity
        self.lstm = hasattr(cell, "gate_count") and cell.gate_count == 4

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

    # -- the [B, N, N] part, by hand ----------------------------------------------------------------
    def plastic_input(self, pre: Tensor, trace: Tensor, alpha: Tensor, scratch: Tensor) -> Tensor:
        """``pre @ (alpha * H)``: ``[B, I]``, ``[B, I, O]`` -> ``[B, O]``."""
        if self.alpha_mode == "connection":
            torch.mul(trace, alpha, out=scratch)
            return torch.bmm(pre.unsqueeze(1), scratch).squeeze(1)
        return torch.bmm(pre.unsqueeze(1), trace).squeeze(1) * alpha

    def trace_update(self, out: Tensor, trace: Tensor, pre: Tensor, post: Tensor, rate: Tensor) -> None:
        """``out <- rule(trace, pre, post, rate)`` without allocating ``[B, I, O]`` tensors."""
        if self.clip is not None:
            torch.baddbmm(trace, pre.unsqueeze(2), (rate * post).unsqueeze(1), out=out)
            out.clamp_(-self.clip, self.clip)
        else:
            torch.mul(trace, (1 - rate).unsqueeze(1), out=out)
            out.baddbmm_(pre.unsqueeze(2), (rate * post).unsqueeze(1))

    def trace_update_vjp(self, grad: Tensor, trace: Tensor, pre: Tensor, post: Tensor, rate: Tensor,
                         scratch: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Back through the trace update; ``grad`` (dL/dH_t) becomes dL/dH_{t-1} in place.

        Returns dL/dpre ``[B, I]``, dL/dpost ``[B, O]``, dL/drate ``[B, O]``.
        """
        if self.clip is not None:
            # clamp passes the gradient where -clip <= Z <= clip, Z the pre-clip trace
            torch.baddbmm(trace, pre.unsqueeze(2), (rate * post).unsqueeze(1), out=scratch)
            scratch.abs_().le_(self.clip)
            grad.mul_(scratch)
            v = torch.bmm(pre.unsqueeze(1), grad).squeeze(1)
            d_pre = _matvec(grad, rate * post, scratch)
            return d_pre, rate * v, post * v
        v = torch.bmm(pre.unsqueeze(1), grad).squeeze(1)
        d_pre = _matvec(grad, rate * post, scratch)
        grad_dot_trace = torch.mul(grad, trace, out=scratch).sum(1)
        d_rate = post * v - grad_dot_trace
        grad.mul_((1 - rate).unsqueeze(1))
        return d_pre, rate * v, d_rate

    def plastic_input_vjp(self, grad_trace: Tensor, trace: Tensor, pre: Tensor, alpha: Tensor, g: Tensor,
                          scratch: Tensor, spare: Tensor) -> tuple[Tensor, Tensor]:
        """Back through ``s = pre @ (alpha * H)`` with dL/ds = ``g``: adds into ``grad_trace``.

        Returns dL/dpre ``[B, I]`` and dL/dalpha (alpha's shape).
        """
        if self.alpha_mode == "connection":
            torch.mul(trace, g.unsqueeze(1), out=scratch)  # Y[b,i,j] = H[b,i,j] g[b,j]
            d_pre = torch.mul(scratch, alpha, out=spare).sum(2)  # sum_j alpha[i,j] Y[b,i,j]
            d_alpha = scratch.mul_(pre.unsqueeze(2)).sum(0)  # sum_b pre[b,i] Y[b,i,j]
            torch.mul(alpha, g.unsqueeze(1), out=scratch)
            grad_trace.addcmul_(scratch, pre.unsqueeze(2))
            return d_pre, d_alpha
        ag = alpha * g
        d_pre = _matvec(trace, ag, scratch)
        q = torch.bmm(pre.unsqueeze(1), trace).squeeze(1)
        d_alpha = (q * g).sum(0) if self.alpha_mode == "neuron" else (q * g).sum()
        grad_trace.baddbmm_(pre.unsqueeze(2), ag.unsqueeze(1))
        return d_pre, d_alpha


class _FusedPlasticScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: _Spec, drives, hidden0, extra0, trace0, alpha, *small_params):
        batch, steps, _ = drives.shape
        chunk = spec.chunk
        trace = trace0.clone()
        scratch = torch.empty_like(trace)
        boundaries = []
        hiddens, extras, posts, rates, inputs = [], [], [], [], []
        hidden, extra = hidden0, extra0
        for t in range(steps):
            if t % chunk == 0:
                boundaries.append(trace.clone())
            s = spec.plastic_input(hidden, trace, alpha, scratch)
            new_hidden, extra, post, rate = spec.small_step(hidden, extra, drives[:, t], s)
            rate = _rate_rows(rate, batch, post.shape[1])
            spec.trace_update(trace, trace, hidden, post, rate)
            hidden = new_hidden
            hiddens.append(hidden)
            extras.append(extra)
            posts.append(post)
            rates.append(rate)
            inputs.append(s)
        outputs = torch.stack(hiddens, dim=1)
        ctx.spec = spec
        ctx.steps = steps
        ctx.save_for_backward(drives, hidden0, extra0, alpha, outputs, torch.stack(extras, 1),
                              torch.stack(posts, 1), torch.stack(rates, 1), torch.stack(inputs, 1),
                              *boundaries)
        ctx.small_params = small_params
        return outputs, hidden.clone(), extra.clone(), trace

    @staticmethod
    def backward(ctx, grad_outputs, grad_hidden_last, grad_extra_last, grad_trace_last):
        spec: _Spec = ctx.spec
        drives, hidden0, extra0, alpha, outputs, extras, posts, rates, inputs, *boundaries = ctx.saved_tensors
        small_params = ctx.small_params
        batch, steps, _ = drives.shape
        chunk = spec.chunk
        trace_shape = boundaries[0].shape
        grad_trace = (torch.zeros(trace_shape, dtype=drives.dtype, device=drives.device)
                      if grad_trace_last is None else grad_trace_last.clone())
        grad_outputs = torch.zeros_like(outputs) if grad_outputs is None else grad_outputs
        grad_hidden = torch.zeros_like(hidden0) if grad_hidden_last is None else grad_hidden_last.clone()
        grad_extra = torch.zeros_like(extra0) if grad_extra_last is None else grad_extra_last.clone()
        grad_drives = torch.zeros_like(drives)
        grad_alpha = torch.zeros_like(alpha)
        grad_params = [torch.zeros_like(p) for p in small_params]
        scratch = torch.empty(trace_shape, dtype=drives.dtype, device=drives.device)
        spare = torch.empty_like(scratch) if spec.alpha_mode == "connection" else None
        chunk_traces = torch.empty((min(chunk, steps),) + tuple(trace_shape), dtype=drives.dtype,
                                   device=drives.device)

        def hidden_at(t):  # h_{t} for t >= -1
            return hidden0 if t < 0 else outputs[:, t]

        def extra_at(t):
            return extra0 if t < 0 else extras[:, t]

        for c in reversed(range(len(boundaries))):
            start = c * chunk
            stop = min(start + chunk, steps)
            # Recompute this chunk's traces H_{t-1} for t in [start, stop).
            chunk_traces[0].copy_(boundaries[c])
            for k in range(1, stop - start):
                t = start + k - 1
                spec.trace_update(chunk_traces[k], chunk_traces[k - 1], hidden_at(t - 1), posts[:, t],
                                  rates[:, t])
            for t in reversed(range(start, stop)):
                trace_prev = chunk_traces[t - start]
                pre = hidden_at(t - 1)
                grad_hidden = grad_hidden + grad_outputs[:, t]
                # Trace update H_t = rule(H_{t-1}, h_{t-1}, post_t, rate_t).
                d_pre, d_post, d_rate = spec.trace_update_vjp(grad_trace, trace_prev, pre, posts[:, t],
                                                              rates[:, t], scratch)
                # Small part: (h_{t-1}, c_{t-1}, drive_t, s_t) -> (h_t, c_t, post_t, rate_t).
                with torch.enable_grad():
                    leaves = [pre.detach().requires_grad_(), extra_at(t - 1).detach().requires_grad_(),
                              drives[:, t].detach().requires_grad_(), inputs[:, t].detach().requires_grad_()]
                    hidden, extra, post, rate = spec.small_step(*leaves)
                    rate_grad = d_rate.sum_to_size(rate.shape) if rate.dim() else d_rate.sum()
                    outs = [hidden, extra, post, rate]
                    grads_in = [grad_hidden, grad_extra, d_post, rate_grad]
                    used = [(o, g) for o, g in zip(outs, grads_in, strict=False) if o.requires_grad]
                    wrt = leaves + list(small_params)
                    result = torch.autograd.grad([o for o, _ in used], wrt, [g for _, g in used],
                                                 allow_unused=True)
                d_hidden_prev, d_extra_prev, d_drive, d_input = (
                    torch.zeros_like(x) if r is None else r for r, x in zip(result[:4], leaves, strict=False))
                for acc, r in zip(grad_params, result[4:], strict=False):
                    if r is not None:
                        acc.add_(r)
                grad_drives[:, t] = d_drive
                # Plastic input s_t = h_{t-1} @ (alpha * H_{t-1}).
                d_pre_input, d_alpha = spec.plastic_input_vjp(grad_trace, trace_prev, pre, alpha, d_input,
                                                              scratch, spare)
                grad_alpha.add_(d_alpha)
                grad_hidden = d_hidden_prev + d_pre + d_pre_input
                grad_extra = d_extra_prev
        return (None, grad_drives, grad_hidden, grad_extra, grad_trace, grad_alpha, *grad_params)


def fused_scan(cell, drives: Tensor, state, chunk_size: int | None = None):
    """Run ``cell`` over ``drives [B, T, D]`` from ``state`` as one autograd node (see the module doc).

    Returns ``(outputs [B, T, N], final state)`` of the cell's state type.
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
    outputs, hidden, extra, trace = _FusedPlasticScan.apply(
        spec, drives, state.hidden, extra0, state.plastic.trace, synapses.alpha, *small_params
    )
    plastic = PlasticState(trace, state.plastic.eligibility, state.plastic.threshold)
    if lstm:
        return outputs, type(state)(hidden, extra, plastic)
    return outputs, type(state)(hidden, plastic)
