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
  differentiable function of the cell. For cells that give a hand-written VJP of a small part that treats each
  row of the batch on its own (the library's own cells), the parameters' gradients are taken in one batched
  pass over all steps at the end instead of step by step.

The ``[B, N, N]`` operations (:mod:`neuroplastic.plasticity.fused_trace_ops`) have two interchangeable backends
with the same interface: compiled C kernels (:mod:`neuroplastic.plasticity.trace_kernels`; CPU, one pass over
the trace per operation, used whenever they are available) and PyTorch operations (any device; the fallback).
The large buffers come from a pool that
reuses CPU memory across calls (:mod:`neuroplastic._workspace`), because faulting in fresh pages costs as
much as the arithmetic.

Memory: ``(T / chunk + 2 chunk + 5) * B N^2`` numbers instead of about ``6 T B N^2``. Gradients are those of
the plain computation, including the hard clip's convention of passing the gradient where the pre-clip
trace equals the bound (tested in float64 with gradcheck and against the step-by-step module).

Supported cells: any cell that describes itself as a :class:`FusedCell` (its ``fused_cell()`` method;
:class:`~neuroplastic.plasticity.PlasticRNNCell` and :class:`~neuroplastic.plasticity.PlasticLSTMCell` do), with
the decaying Hebbian rule or the clipped additive rule, unmodulated or with simple neuromodulation, any alpha
granularity. Other rules and retroactive modulation use gradient checkpointing instead (see
:func:`supports_fused`). The sequence modules pick this path by themselves (``backprop="auto"``);
:func:`neuroplastic.plasticity.plastic_scan` runs a cell over a sequence the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from neuroplastic._workspace import take
from neuroplastic.plasticity.fused_trace_ops import NativeTraceOps, TorchTraceOps, trace_ops
from neuroplastic.plasticity.modulation import Modulator
from neuroplastic.plasticity.rules import ClippedHebbianRule, DecayingHebbianRule
from neuroplastic.plasticity.synapses import PlasticState, PlasticSynapses

__all__ = ["FusedCell", "supports_fused", "check_fused", "fused_scan"]


@dataclass(frozen=True)
class FusedCell:
    """How the fused scan runs a plastic recurrent cell: what the cell's ``fused_cell()`` method returns.

    The scan owns the ``[B, N, N]`` part of a step, the plastic input ``s_t = h_{t-1} @ (alpha * H_{t-1})`` and
    the trace update ``H_t = rule(H_{t-1}, pre=h_{t-1}, post_t, rate_t)`` with the synapses' rule and rate
    (``eta``, or the modulator reading ``h_t``). The cell gives the rest, its *small step*
    ``(h_{t-1} [B, N], c_{t-1} [B, C], drive_t [B, D], s_t [B, N]) -> (h_t, c_t, post_t [B, N])``, where ``c`` is
    any second state vector the cell carries (an LSTM's cell state; ``C = 0`` for none) and ``drive_t`` the
    input's precomputed contribution.

    Attributes:
        synapses: the cell's plastic synapses (alpha, rule, eta or modulator).
        step: the small step, a differentiable function of its inputs and of ``parameters``.
        parameters: the parameters ``step`` reads (e.g. the fixed recurrent weight), whose gradients the scan
            returns; not alpha, nor the synapses' rate parameters, nor those behind ``drive``.
        post_is_hidden: whether ``post_t`` is ``h_t`` itself (saves keeping it twice).
        step_vjp: the small step's vector-Jacobian product by hand, for steps that treat each batch row on its
            own: ``(h_{t-1}, c_{t-1}, drive_t, s_t, h_t, c_t, post_t, dL/dh_t, dL/dc_t, dL/dpost_t) ->
            (dL/dh_{t-1}, dL/dc_{t-1}, dL/ds_t)``. The parameters' and drives' gradients are then taken in one
            batched pass over all steps at the end. None: autograd, step by step.
    """

    synapses: PlasticSynapses
    step: Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]
    parameters: tuple[Tensor, ...]
    post_is_hidden: bool
    step_vjp: Callable[..., tuple[Tensor, Tensor, Tensor]] | None = None


def _synapses(cell) -> PlasticSynapses:
    return cell if isinstance(cell, PlasticSynapses) else cell.synapses


def supports_fused(cell) -> bool:
    """Whether :func:`fused_scan` handles this cell's rule and modulation.

    ``cell``: a plastic cell or sequence module, a :class:`FusedCell` (anything with a ``synapses`` attribute),
    or the :class:`~neuroplastic.plasticity.synapses.PlasticSynapses` themselves. True for the decaying Hebbian
    and the clipped additive rule, unmodulated or with simple modulation.
    """
    synapses = _synapses(cell)
    rule_ok = type(synapses.rule) in (ClippedHebbianRule, DecayingHebbianRule)
    modulation_ok = synapses.modulation in ("none", "simple")
    return rule_ok and modulation_ok and not getattr(synapses.rule, "uses_threshold", False)


def check_fused(cell) -> None:
    """Raise a ``ValueError`` saying why if :func:`fused_scan` does not handle ``cell`` (see :func:`supports_fused`)."""
    if not supports_fused(cell):
        synapses = _synapses(cell)
        raise ValueError(
            "fused backpropagation supports the 'hebbian' and 'clip' rules with modulation 'none' or "
            f"'simple'; this cell has rule {type(synapses.rule).__name__} and modulation "
            f"{synapses.modulation!r}: use backprop='checkpoint'"
        )


def _rate_rows(rate: Tensor, batch: int, out: int) -> Tensor:
    """A plasticity rate (``[]``, ``[O]``, ``[B, 1]`` or ``[B, O]``) as ``[B, O]``."""
    if rate.dim() == 2:
        return rate.expand(batch, out)
    return rate.reshape(1, -1).expand(batch, out)


class _Spec:
    """What the autograd function needs to know about the cell, outside the tensors it differentiates."""

    def __init__(self, cell: FusedCell, chunk: int) -> None:
        self.cell = cell
        self.chunk = chunk
        synapses = self.synapses = cell.synapses
        self.clip = synapses.rule.clip if isinstance(synapses.rule, ClippedHebbianRule) else None
        self.alpha_mode = synapses.alpha_granularity
        self.post_is_hidden = cell.post_is_hidden
        # A cell with a hand-written row-wise VJP and the library's modulator treat each batch row on its own, so
        # the small part can be differentiated for all steps at once; anything else is differentiated step by step.
        self.rowwise = cell.step_vjp is not None and (
            synapses.modulator is None or type(synapses.modulator) is Modulator)

    # -- the small per-step part, differentiable by autograd --------------------------------------
    def small_step(self, hidden, extra, drive, plastic_input):
        """``(h_{t-1}, c_{t-1}, drive_t, s_t) -> (h_t, c_t, post_t, rate_t)``: the cell's step, then the rate."""
        hidden, extra, post = self.cell.step(hidden, extra, drive, plastic_input)
        synapses = self.synapses
        rate = synapses.eta if synapses.modulator is None else synapses.modulator(hidden)
        return hidden, extra, post, rate

    def small_vjp(self, pre: Tensor, extra: Tensor, drive: Tensor, plastic_input: Tensor, hidden: Tensor,
                  extra_out: Tensor, post: Tensor, out_grads: tuple[Tensor, Tensor, Tensor, Tensor]):
        """dL/d(h_{t-1}, c_{t-1}, s_t) of one small step, by hand (row-wise cells only; see ``rowwise``).

        ``hidden``, ``extra_out`` and ``post`` are the step's outputs saved by the forward pass.
        """
        grad_hidden, grad_extra, d_post, d_rate = out_grads
        modulator = self.synapses.modulator
        if modulator is not None:  # rate = fanout(tanh(h @ W_m + b_m)): its gradient flows into h
            signal = torch.tanh(modulator.neuromodulator(hidden))
            if modulator.fanout is not None:
                d_signal = d_rate @ modulator.fanout.weight
            else:
                d_signal = d_rate.sum_to_size(signal.shape)
            d_source = (d_signal * (1 - signal * signal)) @ modulator.neuromodulator.weight
            grad_hidden = grad_hidden + d_source
        return self.cell.step_vjp(pre, extra, drive, plastic_input, hidden, extra_out, post, grad_hidden,
                                  grad_extra, d_post)


def _run(spec: _Spec, drives: Tensor, hidden0: Tensor, extra0: Tensor, trace0: Tensor, alpha: Tensor,
         keep: bool):
    """The forward recurrence; with ``keep``, also what the backward pass needs."""
    batch, steps, _ = drives.shape
    n_out = trace0.shape[2]
    like = {"dtype": drives.dtype, "device": drives.device}
    chunk = spec.chunk
    trace = take(tuple(trace0.shape), **like)
    trace.copy_(trace0)
    ops = trace_ops(spec.clip, spec.alpha_mode, trace, alpha)
    outputs = take((batch, steps, hidden0.shape[1]), **like)
    saved = {}
    if keep:
        saved["boundaries"] = take((math.ceil(steps / chunk),) + tuple(trace0.shape), **like)
        saved["boundaries"][0].copy_(trace0)
        saved["extras"] = take((batch, steps, extra0.shape[1]), **like)
        saved["posts"] = outputs if spec.post_is_hidden else take((batch, steps, n_out), **like)
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
            if not spec.post_is_hidden:
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
        ops = (TorchTraceOps(spec.clip, spec.alpha_mode, boundaries[0], alpha) if ctx.kernels is None
               else NativeTraceOps(spec.clip, spec.alpha_mode, boundaries[0], alpha, ctx.kernels))

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


def fused_scan(cell: FusedCell, drives: Tensor, hidden: Tensor, extra: Tensor, plastic: PlasticState,
               chunk_size: int | None = None) -> tuple[Tensor, Tensor, Tensor, PlasticState]:
    """Run ``cell`` over ``drives [B, T, D]`` as one autograd node (see the module docstring).

    Starts from ``hidden [B, N]``, ``extra [B, C]`` (the cell's second state vector, ``C = 0`` for none) and the
    synapses' state ``plastic`` (trace ``[B, N, N]``); ``chunk_size`` steps per recomputed chunk (default
    ``round(sqrt(T))``). Returns ``(outputs [B, T, N], final hidden, final extra, final plastic state)``. Without
    gradients (``no_grad``, or nothing that requires them) it runs the same recurrence in place and keeps
    nothing. Raises a ``ValueError`` for rules or modulation it does not handle (:func:`supports_fused`).
    """
    check_fused(cell)
    steps = drives.shape[1]
    chunk = chunk_size or max(1, round(math.sqrt(steps)))
    spec = _Spec(cell, chunk)
    synapses = cell.synapses
    # the small step's parameters: the cell's, then the synapses' rate parameters (eta or the modulator's)
    small_params = [p for p in (*cell.parameters, *(q for q in synapses.parameters() if q is not synapses.alpha))
                    if p.requires_grad]
    tensors = (drives, hidden, extra, plastic.trace, synapses.alpha, *small_params)
    if torch.is_grad_enabled() and any(x.requires_grad for x in tensors):
        outputs, hidden, extra, trace = _FusedPlasticScan.apply(spec, *tensors)
    else:
        outputs, hidden, extra, trace, _ = _run(spec, *tensors[:5], keep=False)
    return outputs, hidden, extra, PlasticState(trace, plastic.eligibility, plastic.threshold)
