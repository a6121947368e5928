"""Plastic spiking synapses: Hebbian, Oja and BCM rules driven by spike traces, optionally neuromodulated.

Schmidgall, Ashkanazy, Lawson & Hays 2021, "SpikePropamine: Differentiable Plasticity in Spiking Neural
Networks" (Frontiers in Neurorobotics). Spiking layers whose synapses change within an episode by a
plasticity rule whose coefficients (and fixed weights) are learned by gradient descent, through the
surrogate gradient of the spikes.

Per time step ``t`` (one episode per batch element, all state explicit and batch-first)::

    current_t  = fixed_t + pre_t @ (alpha * Hebb_{t-1})      (W_eff = W + alpha * Hebb, Hebb [B, I, O])
    spike_t, v = lif_step(v, current_t, decay_mem, threshold)
    x_t        = lambda_pre  * x_{t-1} + pre_t                 (pre-synaptic spike trace  [B, I])
    y_t        = lambda_post * y_{t-1} + spike_t               (post-synaptic spike trace [B, O])
    Hebb_t     = rule(Hebb_{t-1}, pre=x_t, post=y_t, rate)     (Hebbian, Oja, BCM, ...)

with ``lambda = exp(-dt / tau)`` (:func:`neuroplastic.neurons.lif.decay_from_tau`). The rule is any
:class:`~neuroplastic.plasticity.rules.PlasticityRule` and its rate is a learned eta or, with
neuromodulation, ``M(t)`` computed by a :class:`~neuroplastic.plasticity.modulation.Modulator` from the
layer's own post-synaptic trace (or from an input the caller gives): *simple* modulation uses ``M(t)`` as
the rule's rate; *retroactive* modulation records the rule's updates in an eligibility trace ``E`` and
commits ``Hebb <- clip(Hebb + M(t) E, ±clip)``. All of this is :class:`~neuroplastic.plasticity.synapses.
PlasticSynapses`; this module adds the spike traces and the LIF neurons around it.

Layers: :class:`PlasticLIF` (feed-forward: ``pre_t`` is the input spike vector at ``t``) and
:class:`PlasticRecurrentLIF` (fixed input weights, plastic recurrent weights: ``pre_t`` is the layer's own
spike vector of step ``t - 1``). Learnable: the fixed weights, alpha, eta (or the modulator), the
eligibility rate, the two trace time constants (``learn_trace_tau``) and the membrane time constant
(``learn_tau_mem``).

Three ways to hold the trace within a sequence (``backend``):

- ``"dense"``: ``Hebb`` is a ``[B, I, O]`` tensor updated every step (any rule, alpha and modulation).
  Backpropagation: ``backprop="autograd"`` keeps every step for the backward pass; ``"checkpoint"`` keeps the
  state at the start of each chunk of ``chunk_size`` steps and recomputes the chunk in the backward pass (same
  gradients, memory ``O(T / chunk + chunk)`` traces instead of ``O(T)``).
- ``"lowrank"``: for rules that are post-wise linear in the trace (Hebbian, Oja, BCM:
  ``rule(H) = keep * H + x ⊗ delta``, :meth:`~neuroplastic.plasticity.rules.PlasticityRule.linear_factors`)
  with alpha per neuron or scalar and no retroactive modulation, ``Hebb_t = Pi_t * Hebb_0 + sum_{s<=t}
  x_s ⊗ D_t[s]`` with ``D_t[s] = delta_s * keep_{s+1} * ... * keep_t``. The plastic input is then
  ``alpha * (pre_t @ Hebb_{t-1}) = alpha * (Pi_{t-1} * (pre_t @ Hebb_0) + sum_{s<t} (pre_t . x_s) D_{t-1}[s])``:
  ``O(B t (I + O))`` work per step instead of ``O(B I O)``, and no ``[B, I, O]`` tensor except the final trace
  (returned in the state, one batched product per call); the backward pass keeps every step's factors,
  ``O(B T^2 O)`` numbers instead of ``O(T B I O)``. Same values as ``"dense"`` up to rounding. A recurrent
  layer continuing from a given state (not the zero one) still reads ``pre_t @ Hebb_0`` every step.
- ``"fused"``: the feed-forward :class:`PlasticLIF` (no recurrent weights) with the decaying Hebbian rule
  (``H <- (1 - eta) H + eta x ⊗ y``), a scalar eta, alpha per neuron or scalar and no modulation. Its keep
  factor ``1 - eta`` does not depend on the post-synaptic side, and the pre-synaptic side (the input spikes
  ``s_t`` and their trace ``x_t``) is known before the scan, so the plastic input is a causal mixing of the
  post-synaptic traces with weights known in advance::

      p_t = sum_{s<t} A[t, s] y_s  (+ (1-eta)^t (s_t @ Hebb_0) from a given state),
      A[b, t, s] = (s_t . x_s) * eta * (1 - eta)^(t-1-s),  s_t . x_s = sum_{r<=s} lambda_pre^(s-r) (s_t . s_r)
                   (+ lambda_pre^(s+1) s_t . x_init)

  The Gram matrix ``s_t . s_r [B, T, T]`` and the fixed drive ``s_t W + b`` are computed up front (skipping the
  zeros of spike inputs: work proportional to the spikes), the sequential part (``A``, the plastic input, the LIF
  neurons, the post trace ``y``) is one autograd node with a hand-written backward
  (:func:`neuroplastic.neurons.fused_lif.hebbian_lif_sequence`; C kernels on CPU, ``O(B T^2 O)`` each way, PyTorch
  operations elsewhere), and the final trace ``Hebb_T = (1-eta)^T Hebb_0 + sum_s x_s ⊗ eta (1-eta)^(T-1-s) y_s``
  is one product with the input spikes. No ``[B, I, O]`` tensor but the final trace (none at all with
  ``forward(..., need_trace=False)``), no Python loop over time.
  Oja's and BCM's rules cannot be done this way: their keep factor (Oja, ``1 - eta y^2``) or their update
  (BCM, ``eta y (y - theta)``) is a nonlinear function of the post-synaptic trace, so ``A`` would depend on the
  output being computed; they use ``"lowrank"``. Same values as ``"dense"`` up to rounding (spikes identical in
  the tests, gradients to 1e-9 in float64).

``"auto"`` (the default) picks ``"fused"`` where it applies and the surrogate is a built-in one (a custom
:class:`~neuroplastic.neurons.surrogates.Surrogate` works with ``"fused"`` too, its backward pass then running
with PyTorch operations), else ``"lowrank"`` where that applies, else ``"dense"``.

Shapes: inputs ``[B, T, I]`` (spikes, or any real-valued input), outputs ``[B, T, O]`` spikes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from neuroplastic._c_kernels import advise_huge_pages
from neuroplastic._checks import check_choice, check_positive, check_tensor
from neuroplastic.neurons.fused_lif import LIFConfig, hebbian_lif_sequence
from neuroplastic.neurons.lif import RESETS, decay_from_tau, lif_step
from neuroplastic.neurons.spike_kernels import SNNKernels, snn_kernels
from neuroplastic.neurons.spike_linear import spike_linear
from neuroplastic.neurons.surrogates import Surrogate, get_surrogate
from neuroplastic.plasticity.modulation import Modulator
from neuroplastic.plasticity.rules import DecayingHebbianRule, PlasticityRule
from neuroplastic.plasticity.synapses import PlasticState, PlasticSynapses

__all__ = [
    "SPIKING_BACKPROP_MODES",
    "SPIKING_BACKENDS",
    "trace_step",
    "spike_trace",
    "PlasticSpikingState",
    "PlasticLIF",
    "PlasticRecurrentLIF",
]

SPIKING_BACKPROP_MODES = ("autograd", "checkpoint")
SPIKING_BACKENDS = ("auto", "dense", "lowrank", "fused")


def trace_step(trace: Tensor, spikes: Tensor, decay: Tensor | float) -> Tensor:
    """One step of an exponentially filtered spike train: ``trace' = decay * trace + spikes``.

    Schmidgall et al. 2021 (SpikePropamine), the pre- and post-synaptic traces that drive the rules;
    ``decay = exp(-dt / tau)``. Shapes: ``trace``, ``spikes`` ``[B, N]``; ``decay`` a number, 0-d, ``[N]``
    or ``[B, N]``. A spike train with a constant rate ``r`` settles at ``r / (1 - decay)``.
    """
    return decay * trace + spikes


def spike_trace(spikes: Tensor, decay: Tensor | float, initial: Tensor | None = None) -> Tensor:
    """The trace of a whole spike train, ``trace_t = decay * trace_{t-1} + spikes_t`` for every step.

    Shapes: ``spikes [B, T, N]``, ``decay`` a number, 0-d or ``[N]`` tensor, ``initial [B, N]`` (zeros if
    None); returns ``[B, T, N]`` (``trace_t`` includes ``spikes_t``).
    """
    check_tensor("spikes", spikes, ("B", "T", "N"))
    trace = spikes.new_zeros(spikes.shape[0], spikes.shape[2]) if initial is None else initial
    check_tensor("initial", trace, (spikes.shape[0], spikes.shape[2]))
    out = []
    for t in range(spikes.shape[1]):
        trace = trace_step(trace, spikes[:, t], decay)
        out.append(trace)
    return torch.stack(out, dim=1)


SPARSE_DENSITY = 0.25
"""Input density (fraction of nonzeros) up to which the fused backend's products with the input skip its zeros."""


def _sparse_kernels(spikes: Tensor) -> SNNKernels | None:
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


def _linear_scan(x: Tensor, decay: Tensor, reverse: bool = False, weights: Tensor | None = None) -> Tensor:
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


def _spike_gram(spikes: Tensor, kernels: SNNKernels | None) -> Tensor:
    """``[B, T, T]``: ``s_t . s_r`` per batch row (skipping the zeros of ``spikes`` when ``kernels`` is given)."""
    if kernels is None:
        return torch.bmm(spikes, spikes.transpose(1, 2))
    return _SpikeGram.apply(spikes, kernels)


def _spike_outer_sum(spikes: Tensor, m: Tensor, kernels: SNNKernels | None) -> Tensor:
    """``[B, I, O]``: ``sum_t s_t ⊗ m_t`` per batch row (skipping the zeros of ``spikes`` when ``kernels`` is given)."""
    if kernels is None:
        return torch.bmm(spikes.transpose(1, 2), m)
    return _SpikeOuterSum.apply(spikes, m, kernels)


class PlasticSpikingState(NamedTuple):
    """The within-episode state of a plastic spiking layer (all batch-first).

    Attributes:
        membrane: membrane potential ``v`` ``[B, O]``.
        spikes: the spikes of the last step ``[B, O]`` (what a recurrent layer feeds back).
        pre_trace: pre-synaptic spike trace ``[B, I]``.
        post_trace: post-synaptic spike trace ``[B, O]``.
        plastic: the plastic synapses' state: Hebbian trace ``Hebb [B, I, O]``, eligibility trace
            (retroactive modulation) and BCM threshold ``[B, O]``.
    """

    membrane: Tensor
    spikes: Tensor
    pre_trace: Tensor
    post_trace: Tensor
    plastic: PlasticState

    def detach(self) -> PlasticSpikingState:
        """The same state cut from the autograd graph (truncated backpropagation through time)."""
        return PlasticSpikingState(self.membrane.detach(), self.spikes.detach(), self.pre_trace.detach(),
                                   self.post_trace.detach(), self.plastic.detach())


def _without_trace(state: PlasticSpikingState) -> PlasticSpikingState:
    """``state`` with its ``[B, I, O]`` Hebbian and eligibility traces dropped (``forward(..., need_trace=False)``)."""
    return state._replace(plastic=state.plastic._replace(trace=None, eligibility=None))


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _check_tau(name: str, value: object, size: int) -> Tensor:
    """A time constant (number or ``[size]`` tensor), > 0, as a float tensor."""
    if isinstance(value, Tensor):
        if value.dim() > 1 or (value.dim() == 1 and value.shape[0] not in (1, size)):
            raise ValueError(f"{name} must be a number or a per-neuron [{size}] tensor, got shape "
                             f"{list(value.shape)}")
        tau = value.detach().clone().float()
        if bool((tau <= 0).any()) or not bool(torch.isfinite(tau).all()):
            raise ValueError(f"{name} must be > 0 and finite (a time constant), got {value!r}")
        return tau
    check_positive(name, value)  # type: ignore[arg-type]
    if not math.isfinite(value):  # type: ignore[arg-type]
        raise ValueError(f"{name} must be finite, got {value!r}")
    return torch.tensor(float(value))  # type: ignore[arg-type]


class _PlasticSpikingLayer(nn.Module):
    """What both plastic spiking layers share: neurons, spike traces, plastic synapses, the scan."""

    def __init__(
        self,
        pre_size: int,
        post_size: int,
        *,
        rule: str | PlasticityRule | None,
        alpha: str,
        eta: str,
        modulation: str | Modulator | None,
        modulator_input_size: int | None,
        modulator_channels: int,
        fanout: bool,
        clip: float,
        alpha_init: float,
        eta_init: float,
        eligibility_rate: float,
        tau_mem: float | Tensor,
        learn_tau_mem: bool,
        threshold: float,
        reset: str,
        detach_reset: bool,
        rectifier: bool,
        surrogate: str | Surrogate,
        tau_pre: float,
        tau_post: float,
        learn_trace_tau: bool,
        dt: float,
        backprop: str,
        chunk_size: int | None,
        backend: str,
    ) -> None:
        super().__init__()
        self._pre_size = _check_size("pre-synaptic size", pre_size)
        self._post_size = _check_size("post-synaptic size", post_size)
        check_choice("reset", reset, RESETS)
        check_choice("backprop", backprop, SPIKING_BACKPROP_MODES)
        check_choice("backend", backend, SPIKING_BACKENDS)
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ValueError(f"chunk_size must be None or a positive int, got {chunk_size!r}")
        check_positive("threshold", threshold)
        check_positive("dt", dt)
        if modulator_input_size is not None:
            _check_size("modulator_input_size", modulator_input_size)
        self.synapses = PlasticSynapses(
            pre_size, post_size, rule=rule, alpha=alpha, eta=eta, modulation=modulation,
            modulator_source=modulator_input_size or post_size, modulator_channels=modulator_channels,
            fanout=fanout, clip=clip, alpha_init=alpha_init, eta_init=eta_init, eligibility_rate=eligibility_rate,
        )
        if modulator_input_size is not None and self.synapses.modulator is None:
            raise ValueError("modulator_input_size is only used with modulation 'simple' or 'retroactive'")
        self.modulator_input_size = modulator_input_size
        self.surrogate = get_surrogate(surrogate)
        self.threshold = float(threshold)
        self.reset = reset
        self.detach_reset = bool(detach_reset)
        self.rectifier = bool(rectifier)
        self.dt = float(dt)
        self.backprop = backprop
        self.chunk_size = chunk_size
        self.backend = backend
        if backend == "lowrank" and not self.supports_lowrank:
            raise ValueError(
                "backend='lowrank' needs a post-wise linear rule (hebbian, oja, bcm), alpha 'neuron' or 'scalar' and "
                f"modulation 'none' or 'simple'; this layer has rule {type(self.synapses.rule).__name__}, alpha "
                f"{self.synapses.alpha_granularity!r}, modulation {self.synapses.modulation!r}: use backend='dense'"
            )
        tau = _check_tau("tau_mem", tau_mem, post_size)
        if learn_tau_mem:
            self.tau_mem = nn.Parameter(tau)
        else:
            self.register_buffer("tau_mem", tau)
        # Trace time constants are learned through their logarithm, so that they stay positive.
        log_taus = torch.stack([_check_tau("tau_pre", tau_pre, 1).log(), _check_tau("tau_post", tau_post, 1).log()])
        if learn_trace_tau:
            self.trace_log_tau = nn.Parameter(log_taus)
        else:
            self.register_buffer("trace_log_tau", log_taus)

    # -- parameters as the dynamics use them ---------------------------------------------------------
    @property
    def modulation(self) -> str:
        return self.synapses.modulation

    @property
    def alpha(self) -> Tensor:
        return self.synapses.alpha

    @property
    def eta(self) -> Tensor | None:
        return self.synapses.eta

    @property
    def supports_lowrank(self) -> bool:
        """Whether ``backend="lowrank"`` applies: a linear rule, alpha per neuron or scalar, not retroactive."""
        syn = self.synapses
        return (getattr(syn.rule, "linear", False) and syn.alpha_granularity != "connection"
                and syn.modulation != "retroactive")

    @property
    def supports_fused(self) -> bool:
        """Whether ``backend="fused"`` applies: a feed-forward :class:`PlasticLIF` without recurrent weights, the
        decaying Hebbian rule, a scalar eta, alpha per neuron or scalar, no modulation."""
        syn = self.synapses
        return (not self._pre_is_own_spikes and getattr(self, "recurrent_weight", None) is None
                and type(syn.rule) is DecayingHebbianRule and syn.modulation == "none"
                and syn.alpha_granularity != "connection" and syn.eta is not None and syn.eta.dim() == 0)

    @property
    def resolved_backend(self) -> str:
        """The backend in use: ``"auto"`` resolves to ``"fused"`` where it applies and the surrogate is a built-in
        one (the C kernels know those), else to ``"lowrank"`` where that applies, else to ``"dense"``."""
        if self.backend != "auto":
            return self.backend
        if self.supports_fused and self.surrogate._kernel() is not None:
            return "fused"
        return "lowrank" if self.supports_lowrank else "dense"

    def _check_fused(self) -> None:
        """Raise if ``backend="fused"`` was asked for and does not apply (called once the layer is complete)."""
        if self.backend == "fused" and not self.supports_fused:
            syn = self.synapses
            raise ValueError(
                "backend='fused' needs a feed-forward PlasticLIF without recurrent weights, rule 'hebbian' "
                "(DecayingHebbianRule), eta 'scalar', alpha 'neuron' or 'scalar' and modulation 'none'; this layer "
                f"is a {type(self).__name__} with rule {type(syn.rule).__name__}, eta {syn.eta_granularity!r}, alpha "
                f"{syn.alpha_granularity!r}, modulation {syn.modulation!r}: use backend='lowrank' or 'dense'"
            )

    @property
    def trace_taus(self) -> Tensor:
        """``(tau_pre, tau_post)`` ``[2]``."""
        return self.trace_log_tau.exp()

    def decays(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(lambda_mem, lambda_pre, lambda_post)``: per-step decays ``exp(-dt / tau)`` (differentiable)."""
        traces = decay_from_tau(self.trace_taus, self.dt)
        return decay_from_tau(self.tau_mem, self.dt), traces[0], traces[1]

    def initial_state(
        self, batch_size: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> PlasticSpikingState:
        """Zero membrane, spikes, spike traces and plastic traces for ``batch_size`` episodes."""
        plastic = self.synapses.initial_state(batch_size, device=device, dtype=dtype)
        return self._zero_neurons(plastic, batch_size, plastic.trace)

    def _initial_state_without_trace(self, inputs: Tensor) -> PlasticSpikingState:
        """The zero initial state for ``inputs [B, T, I]`` without its ``[B, I, O]`` zero Hebbian trace, which
        the low-rank scan of a fresh state never reads (its rules are not retroactive: no eligibility trace)."""
        batch = inputs.shape[0]
        threshold = inputs.new_zeros(batch, self._post_size) if self.synapses.rule.uses_threshold else None
        return self._zero_neurons(PlasticState(None, None, threshold), batch, inputs)

    def _zero_neurons(self, plastic: PlasticState, batch: int, like: Tensor) -> PlasticSpikingState:
        """``plastic`` with zero membrane, spikes and spike traces for ``batch`` episodes (``like``'s device, dtype)."""
        zeros_post = like.new_zeros(batch, self._post_size)
        return PlasticSpikingState(zeros_post, zeros_post.clone(), like.new_zeros(batch, self._pre_size),
                                   zeros_post.clone(), plastic)

    # -- dynamics --------------------------------------------------------------------------------------
    _pre_is_own_spikes = False

    def _recurrent_current(self, spikes: Tensor) -> Tensor | None:
        """The fixed part of the current carried by the layer's own previous spikes (recurrent layers)."""
        return None

    def _pre_input(self, x_t: Tensor, state: PlasticSpikingState) -> Tensor:
        """The pre-synaptic spike vector that crosses the plastic synapses at this step."""
        raise NotImplementedError

    def _step(self, drive_t: Tensor, x_t: Tensor, modulator_t: Tensor | None, state: PlasticSpikingState,
              decays: tuple[Tensor, Tensor, Tensor]) -> tuple[Tensor, PlasticSpikingState]:
        """One time step from the precomputed fixed drive ``[B, O]`` and the raw input ``[B, I_in]``."""
        mem_decay, pre_decay, post_decay = decays
        synapses = self.synapses
        pre = self._pre_input(x_t, state)
        current = drive_t + synapses.plastic_input(pre, state.plastic)
        recurrent = self._recurrent_current(state.spikes)
        if recurrent is not None:
            current = current + recurrent
        spikes, membrane = lif_step(state.membrane, current, mem_decay, self.threshold, reset=self.reset,
                                    rectifier=self.rectifier, detach_reset=self.detach_reset,
                                    surrogate=self.surrogate)
        pre_trace = trace_step(state.pre_trace, pre, pre_decay)
        post_trace = trace_step(state.post_trace, spikes, post_decay)
        if synapses.modulator is not None and modulator_t is None:
            modulator_t = post_trace
        plastic = synapses.update(state.plastic, pre_trace, post_trace, modulator_source=modulator_t)
        return spikes, PlasticSpikingState(membrane, spikes, pre_trace, post_trace, plastic)

    def _scan(self, drives: Tensor, inputs: Tensor, modulator_inputs: Tensor | None, state: PlasticSpikingState,
              *params: Tensor) -> tuple[Tensor, PlasticSpikingState]:
        """Steps over a chunk ``drives [B, t, O]``; ``params`` are only there so that checkpointing sees them."""
        decays = self.decays()
        outputs = []
        # unbind once: indexing [:, t] in the loop would cost a full-size gradient buffer per step
        drive_steps, input_steps = drives.unbind(1), inputs.unbind(1)
        modulator_steps = None if modulator_inputs is None else modulator_inputs.unbind(1)
        for t in range(drives.shape[1]):
            mod_t = None if modulator_steps is None else modulator_steps[t]
            spikes, state = self._step(drive_steps[t], input_steps[t], mod_t, state, decays)
            outputs.append(spikes)
        return torch.stack(outputs, dim=1), state

    def _drive(self, inputs: Tensor) -> Tensor:
        raise NotImplementedError

    def _check_inputs(self, inputs: Tensor, state: PlasticSpikingState | None,
                      modulator_inputs: Tensor | None) -> None:
        size = self.input_size
        check_tensor("inputs", inputs, ("B", "T", size), like=self.weight)
        if state is not None:
            if not isinstance(state, PlasticSpikingState):
                raise TypeError(f"state must be a PlasticSpikingState or None, got {type(state).__name__}")
            if state.plastic.trace is None:
                raise ValueError("state has no Hebbian trace (it was returned by forward(..., need_trace=False)); "
                                 "pass need_trace=True to continue from a state")
            if state.membrane.shape[0] != inputs.shape[0]:
                raise ValueError(
                    f"state is for batch size {state.membrane.shape[0]} but inputs have batch size "
                    f"{inputs.shape[0]} (inputs must be batch-first [B, T, {size}])"
                )
        if modulator_inputs is not None:
            if self.modulator_input_size is None:
                raise ValueError("modulator_inputs given, but the layer's modulator reads its own post-synaptic "
                                 "trace (set modulator_input_size to read an external signal)")
            check_tensor("modulator_inputs", modulator_inputs,
                         (inputs.shape[0], inputs.shape[1], self.modulator_input_size))
        elif self.modulator_input_size is not None:
            raise ValueError(f"modulator_inputs [B, T, {self.modulator_input_size}] is required: the layer was "
                             f"built with modulator_input_size={self.modulator_input_size}")

    def forward(
        self, inputs: Tensor, state: PlasticSpikingState | None = None, modulator_inputs: Tensor | None = None,
        *, need_trace: bool = True,
    ) -> tuple[Tensor, PlasticSpikingState]:
        """``inputs [B, T, I]`` -> ``(spikes [B, T, O], final state)``; a missing state starts from zeros.

        ``modulator_inputs [B, T, S]``: what the modulator reads, when the layer was built with
        ``modulator_input_size=S``; otherwise it reads the layer's post-synaptic trace.

        ``need_trace=False``: the final state's Hebbian trace is not returned (``state.plastic.trace`` is None,
        and so is the eligibility trace of retroactive modulation), for callers that drop the state, such as
        training on whole episodes (like ``need_weights=False`` of :class:`torch.nn.MultiheadAttention`). The
        ``"lowrank"`` and ``"fused"`` backends then never build the ``[B, I, O]`` tensor, which at large sizes is
        most of their cost (writing 268 MB at B=16, I=O=2048). Such a state cannot be passed back in.
        """
        if not isinstance(need_trace, bool):
            raise TypeError(f"need_trace must be a bool, got {type(need_trace).__name__}")
        self._check_inputs(inputs, state, modulator_inputs)
        fresh = state is None
        if self.resolved_backend == "fused":  # a fresh state is not materialised (its [B, I, O] zero trace)
            return self._scan_fused(inputs, state, fresh, need_trace)
        if self.resolved_backend == "lowrank":
            if state is None:
                state = self._initial_state_without_trace(inputs)
            return self._scan_lowrank(self._drive(inputs), inputs, modulator_inputs, state, fresh, need_trace)
        if state is None:
            state = self.initial_state(inputs.shape[0], device=inputs.device, dtype=inputs.dtype)
        drives = self._drive(inputs)
        steps = drives.shape[1]
        needs_grad = torch.is_grad_enabled() and (
            inputs.requires_grad or any(p.requires_grad for p in self.parameters()))
        if self.backprop == "autograd" or not needs_grad or steps <= 1:
            spikes, state = self._scan(drives, inputs, modulator_inputs, state)
            return spikes, state if need_trace else _without_trace(state)
        chunk = self.chunk_size or max(1, round(math.sqrt(steps)))
        params = [p for p in self.parameters() if p.requires_grad]
        outputs = []
        for start in range(0, steps, chunk):
            stop = start + chunk
            mod = None if modulator_inputs is None else modulator_inputs[:, start:stop]
            out, state = checkpoint(self._scan, drives[:, start:stop], inputs[:, start:stop], mod, state, *params,
                                    use_reentrant=False)
            outputs.append(out)
        return torch.cat(outputs, dim=1), state if need_trace else _without_trace(state)

    def _scan_lowrank(self, drives: Tensor, inputs: Tensor, modulator_inputs: Tensor | None,
                      state: PlasticSpikingState, fresh: bool,
                      need_trace: bool = True) -> tuple[Tensor, PlasticSpikingState]:
        """The whole sequence with the trace held as a sum of outer products (see the module docstring).

        ``fresh``: the state is the zero initial state, so the initial trace contributes nothing.
        ``need_trace``: build the final trace (else the returned state's trace is None).
        """
        synapses, rule = self.synapses, self.synapses.rule
        mem_decay, pre_decay, post_decay = self.decays()
        batch, steps, n_post = drives.shape
        own = self._pre_is_own_spikes
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
            recurrent = self._recurrent_current(spikes)
            if recurrent is not None:
                current = current + recurrent
            spikes, membrane = lif_step(membrane, current, mem_decay, self.threshold, reset=self.reset,
                                        rectifier=self.rectifier, detach_reset=self.detach_reset,
                                        surrogate=self.surrogate)
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

    def _spike_drive(self, inputs: Tensor) -> Tensor:
        """The fixed drive ``[B, T, O]`` of the fused backend (event-driven for spike inputs)."""
        raise NotImplementedError

    def _scan_fused(self, inputs: Tensor, state: PlasticSpikingState | None, fresh: bool,
                    need_trace: bool = True) -> tuple[Tensor, PlasticSpikingState]:
        """The whole sequence as a few batched products and one fused autograd node (see the module docstring).

        ``fresh``: the state is the zero initial state (no initial traces, membrane or Hebbian trace to carry).
        ``need_trace``: build the final trace (else the returned state's trace is None).
        """
        syn = self.synapses
        mem_decay, pre_decay, post_decay = self.decays()
        batch, steps, _ = inputs.shape
        n_post = self._post_size
        spikes_in = inputs.contiguous()
        kernels = _sparse_kernels(spikes_in)
        eta = syn.eta
        ones = eta.new_ones(1)
        keep_pow = torch.cat([ones, (1 - eta).reshape(1).expand(steps)]).cumprod(0)  # (1 - eta)^k, k = 0..T
        gram = _spike_gram(spikes_in, kernels)  # [b, t, r] = s_t . s_r
        drive = self._spike_drive(spikes_in)
        overlap = None
        if not fresh:
            x_init, hebb0 = state.pre_trace, state.plastic.trace
            overlap = torch.bmm(spikes_in, x_init.unsqueeze(2)).squeeze(2)  # s_t . x_init
            # keep^t (s_t @ Hebb_0): the initial trace, decayed, read at every step
            drive = drive + syn.alpha * (torch.bmm(spikes_in, hebb0) * keep_pow[:steps].view(1, steps, 1))
        config = LIFConfig(self.reset, 0.0, self.rectifier, self.detach_reset, self.surrogate)
        threshold = drive.new_full((n_post,), self.threshold)
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
            hebb = _spike_outer_sum(spikes_in, _linear_scan(traces, pre_decay, reverse=True, weights=weights),
                                    kernels)
        if not fresh:
            pre_trace = pre_trace + pre_pow[steps] * x_init
            if need_trace:
                carried = torch.matmul(weights * pre_pow[1:], traces)  # sum_s lambda_pre^(s+1) F_s
                hebb = hebb + x_init.unsqueeze(2) * carried.unsqueeze(1) + keep_pow[steps] * hebb0
        plastic_state = PlasticState(hebb, None, None)  # no eligibility trace (not modulated), no BCM threshold
        final = PlasticSpikingState(membrane, spikes[:, -1], pre_trace, traces[:, -1], plastic_state)
        return spikes, final

    def _base_repr(self) -> str:
        taus = self.trace_taus.detach()
        return (f"rule={type(self.synapses.rule).__name__}, modulation={self.modulation!r}, "
                f"alpha={self.synapses.alpha_granularity!r}, reset={self.reset!r}, threshold={self.threshold}, "
                f"tau_pre={float(taus[0]):.3g}, tau_post={float(taus[1]):.3g}, backend={self.resolved_backend!r}, "
                f"backprop={self.backprop!r}")


_COMMON_DOC = """
    Args (shared by both plastic spiking layers):
        rule: ``"hebbian"`` (decaying), ``"oja"``, ``"bcm"``, ``"clip"``, ``"soft_bound"``, or a
            :class:`~neuroplastic.plasticity.rules.PlasticityRule`; default ``"clip"`` under simple
            modulation, else ``"hebbian"`` (see :class:`~neuroplastic.plasticity.synapses.PlasticSynapses`).
        alpha: plasticity coefficient per ``"connection"``, per receiving ``"neuron"`` or one ``"scalar"``.
        eta: learned rate per ``"scalar"`` or ``"neuron"`` (without modulation).
        modulation: ``"none"``, ``"simple"``, ``"retroactive"`` or a :class:`Modulator`.
        modulator_input_size: if given, the modulator reads ``modulator_inputs [B, T, S]`` passed to
            ``forward`` instead of the layer's post-synaptic trace.
        modulator_channels, fanout, clip, alpha_init, eta_init, eligibility_rate: see ``PlasticSynapses``.
        tau_mem: membrane time constant (number or per-neuron tensor), in units of ``dt``.
        learn_tau_mem: learn ``tau_mem`` (per neuron if given per neuron).
        threshold, reset, detach_reset, rectifier, surrogate: the LIF neuron
            (:func:`neuroplastic.neurons.lif.lif_step`).
        tau_pre, tau_post: time constants of the pre- and post-synaptic spike traces.
        learn_trace_tau: learn ``tau_pre`` and ``tau_post`` (through their logarithms).
        dt: the time step.
        backprop: ``"autograd"`` or ``"checkpoint"`` for the dense backend (see the module docstring);
            ``chunk_size`` for the latter (default ``round(sqrt(T))``).
        backend: ``"auto"``, ``"dense"``, ``"lowrank"`` or ``"fused"`` (see the module docstring).
"""


class PlasticLIF(_PlasticSpikingLayer):
    """A layer of LIF neurons whose input synapses are plastic, driven by spike traces.

    Schmidgall et al. 2021, SpikePropamine.
    ``current_t = s_t @ (W + alpha * Hebb_{t-1}) + b [+ z_{t-1} @ W_rec]``;
    ``z_t, v_t = lif_step(v_{t-1}, current_t)``;
    ``x_t = lambda_pre x_{t-1} + s_t``; ``y_t = lambda_post y_{t-1} + z_t``;
    ``Hebb_t = rule(Hebb_{t-1}, x_t, y_t, eta or M(y_t))``.
    With ``recurrent=True`` the layer also has fixed (learned, not plastic) recurrent weights ``W_rec [O, O]``.
    Shapes: ``s [B, T, I]`` -> spikes ``z [B, T, O]``; ``W``, ``alpha`` ``[I, O]``; ``Hebb`` ``[B, I, O]``.
    """ + _COMMON_DOC

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        recurrent: bool = False,
        rule: str | PlasticityRule | None = None,
        alpha: str = "connection",
        eta: str = "scalar",
        modulation: str | Modulator | None = "none",
        modulator_input_size: int | None = None,
        modulator_channels: int = 1,
        fanout: bool = True,
        clip: float = 2.0,
        alpha_init: float = 0.01,
        eta_init: float = 0.01,
        eligibility_rate: float = 0.1,
        tau_mem: float | Tensor = 10.0,
        learn_tau_mem: bool = False,
        threshold: float = 1.0,
        reset: str = "soft",
        detach_reset: bool = False,
        rectifier: bool = False,
        surrogate: str | Surrogate = "fast_sigmoid",
        tau_pre: float = 5.0,
        tau_post: float = 5.0,
        learn_trace_tau: bool = True,
        dt: float = 1.0,
        backprop: str = "autograd",
        chunk_size: int | None = None,
        backend: str = "auto",
    ) -> None:
        _check_size("in_features", in_features)
        _check_size("out_features", out_features)
        super().__init__(
            in_features, out_features, rule=rule, alpha=alpha, eta=eta, modulation=modulation,
            modulator_input_size=modulator_input_size, modulator_channels=modulator_channels, fanout=fanout,
            clip=clip, alpha_init=alpha_init, eta_init=eta_init, eligibility_rate=eligibility_rate, tau_mem=tau_mem,
            learn_tau_mem=learn_tau_mem, threshold=threshold, reset=reset, detach_reset=detach_reset,
            rectifier=rectifier, surrogate=surrogate, tau_pre=tau_pre, tau_post=tau_post,
            learn_trace_tau=learn_trace_tau, dt=dt, backprop=backprop, chunk_size=chunk_size, backend=backend,
        )
        self.in_features = in_features
        self.out_features = out_features
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        if recurrent:
            rec_bound = 1 / math.sqrt(out_features)
            self.recurrent_weight = nn.Parameter(
                torch.empty(out_features, out_features).uniform_(-rec_bound, rec_bound))
        else:
            self.register_parameter("recurrent_weight", None)
        self._check_fused()

    @property
    def input_size(self) -> int:
        return self.in_features

    def _spike_drive(self, inputs: Tensor) -> Tensor:
        return spike_linear(inputs, self.weight.t(), self.bias)

    def _recurrent_current(self, spikes: Tensor) -> Tensor | None:
        return None if self.recurrent_weight is None else spikes @ self.recurrent_weight

    def _drive(self, inputs: Tensor) -> Tensor:
        drive = inputs @ self.weight
        return drive if self.bias is None else drive + self.bias

    def _pre_input(self, x_t: Tensor, state: PlasticSpikingState) -> Tensor:
        return x_t

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"recurrent={self.recurrent_weight is not None}, " + self._base_repr())


class PlasticRecurrentLIF(_PlasticSpikingLayer):
    """A recurrent layer of LIF neurons with fixed input weights and plastic recurrent synapses.

    Schmidgall et al. 2021, SpikePropamine (the plastic recurrent spiking network).
    ``current_t = u_t @ W_in + b + z_{t-1} @ (W + alpha * Hebb_{t-1})``; ``z_t, v_t = lif_step(v_{t-1},
    current_t)``; ``x_t = lambda_pre x_{t-1} + z_{t-1}`` (the spikes arriving at the synapses);
    ``y_t = lambda_post y_{t-1} + z_t``; ``Hebb_t = rule(Hebb_{t-1}, x_t, y_t, eta or M(y_t))``.
    Shapes: ``u [B, T, I]`` -> ``z [B, T, N]``; ``W_in [I, N]``; ``W``, ``alpha`` ``[N, N]``; ``Hebb [B, N, N]``.
    """ + _COMMON_DOC

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        rule: str | PlasticityRule | None = None,
        alpha: str = "connection",
        eta: str = "scalar",
        modulation: str | Modulator | None = "none",
        modulator_input_size: int | None = None,
        modulator_channels: int = 1,
        fanout: bool = True,
        clip: float = 2.0,
        alpha_init: float = 0.01,
        eta_init: float = 0.01,
        eligibility_rate: float = 0.1,
        tau_mem: float | Tensor = 10.0,
        learn_tau_mem: bool = False,
        threshold: float = 1.0,
        reset: str = "soft",
        detach_reset: bool = False,
        rectifier: bool = False,
        surrogate: str | Surrogate = "fast_sigmoid",
        tau_pre: float = 5.0,
        tau_post: float = 5.0,
        learn_trace_tau: bool = True,
        dt: float = 1.0,
        backprop: str = "autograd",
        chunk_size: int | None = None,
        backend: str = "auto",
    ) -> None:
        _check_size("input_size", input_size)
        _check_size("hidden_size", hidden_size)
        super().__init__(
            hidden_size, hidden_size, rule=rule, alpha=alpha, eta=eta, modulation=modulation,
            modulator_input_size=modulator_input_size, modulator_channels=modulator_channels, fanout=fanout,
            clip=clip, alpha_init=alpha_init, eta_init=eta_init, eligibility_rate=eligibility_rate, tau_mem=tau_mem,
            learn_tau_mem=learn_tau_mem, threshold=threshold, reset=reset, detach_reset=detach_reset,
            rectifier=rectifier, surrogate=surrogate, tau_pre=tau_pre, tau_post=tau_post,
            learn_trace_tau=learn_trace_tau, dt=dt, backprop=backprop, chunk_size=chunk_size, backend=backend,
        )
        self._input_size = input_size
        self.hidden_size = hidden_size
        bound_in, bound = 1 / math.sqrt(input_size), 1 / math.sqrt(hidden_size)
        self.input_weight = nn.Parameter(torch.empty(input_size, hidden_size).uniform_(-bound_in, bound_in))
        self.bias = nn.Parameter(torch.zeros(hidden_size)) if bias else None
        self.weight = nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))
        self._check_fused()

    @property
    def input_size(self) -> int:
        return self._input_size

    def _drive(self, inputs: Tensor) -> Tensor:
        drive = inputs @ self.input_weight
        return drive if self.bias is None else drive + self.bias

    _pre_is_own_spikes = True

    def _pre_input(self, x_t: Tensor, state: PlasticSpikingState) -> Tensor:
        return state.spikes

    def _recurrent_current(self, spikes: Tensor) -> Tensor:
        return spikes @ self.weight

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, " + self._base_repr()
