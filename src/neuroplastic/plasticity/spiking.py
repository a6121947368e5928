"""Plastic spiking layers: Hebbian, Oja and BCM rules driven by spike traces, optionally neuromodulated.

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
PlasticSynapses` (settings: :class:`~neuroplastic.plasticity.synapses.SynapseConfig`, given as ``config=``
or keyword overrides); this module adds the spike traces (:mod:`neuroplastic.plasticity.spiking_state`) and
the LIF neurons around it (settings: :class:`~neuroplastic.plasticity.spiking_config.SpikingNeuronConfig`,
given as ``neuron=`` or keyword overrides, which go by name to the config that has the field).

Layers: :class:`PlasticLIF` (feed-forward: ``pre_t`` is the input spike vector at ``t``) and
:class:`PlasticRecurrentLIF` (fixed input weights, plastic recurrent weights: ``pre_t`` is the layer's own
spike vector of step ``t - 1``). Learnable: the fixed weights, alpha, eta (or the modulator), the
eligibility rate, the two trace time constants (``learn_trace_tau``) and the membrane time constant
(``learn_tau_mem``).

Three ways to hold the trace within a sequence (``backend``), each in its own module:

- ``"dense"`` (:mod:`neuroplastic.plasticity.spiking_dense`): ``Hebb`` is a ``[B, I, O]`` tensor updated every
  step (any rule, alpha and modulation); ``backprop="autograd"`` or ``"checkpoint"``.
- ``"lowrank"`` (:mod:`neuroplastic.plasticity.spiking_lowrank`): for rules that are post-wise linear in the
  trace (Hebbian, Oja, BCM) with alpha per neuron or scalar and no retroactive modulation, the trace as a sum
  of outer products: ``O(B t (I + O))`` work per step instead of ``O(B I O)``.
- ``"fused"`` (:mod:`neuroplastic.plasticity.spiking_fused`): the feed-forward :class:`PlasticLIF` (no
  recurrent weights) with the decaying Hebbian rule, a scalar eta, alpha per neuron or scalar and no
  modulation: a few batched products and one fused autograd node, no Python loop over time.

``"auto"`` (the default) picks ``"fused"`` where it applies and the surrogate is a built-in one (a custom
:class:`~neuroplastic.neurons.surrogates.Surrogate` works with ``"fused"`` too, its backward pass then running
with PyTorch operations), else ``"lowrank"`` where that applies, else ``"dense"``. All give the same values up
to rounding.

Shapes: inputs ``[B, T, I]`` (spikes, or any real-valued input), outputs ``[B, T, O]`` spikes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic._checks import (
    StateField,
    check_bool,
    check_choice,
    check_finite,
    check_int,
    check_nonempty_sequence,
    check_optional_int,
    check_state,
    check_tensor,
)
from neuroplastic.neurons.lif import decay_from_tau
from neuroplastic.neurons.spike_linear import spike_linear
from neuroplastic.neurons.surrogates import get_surrogate
from neuroplastic.plasticity.rules import DecayingHebbianRule
from neuroplastic.plasticity.spiking_config import SpikingNeuronConfig, resolve_spiking_configs, tau_tensor
from neuroplastic.plasticity.spiking_dense import dense_scan
from neuroplastic.plasticity.spiking_fused import fused_hebbian_scan
from neuroplastic.plasticity.spiking_lowrank import lowrank_scan
from neuroplastic.plasticity.spiking_state import PlasticSpikingState, spike_trace, trace_step
from neuroplastic.plasticity.synapses import PlasticState, PlasticSynapses, SynapseConfig

__all__ = [
    "SPIKING_BACKPROP_MODES",
    "SPIKING_BACKENDS",
    "trace_step",
    "spike_trace",
    "PlasticSpikingState",
    "SpikingNeuronConfig",
    "PlasticLIF",
    "PlasticRecurrentLIF",
]

SPIKING_BACKPROP_MODES = ("autograd", "checkpoint")
SPIKING_BACKENDS = ("auto", "dense", "lowrank", "fused")


class _PlasticSpikingLayer(nn.Module):
    """What both plastic spiking layers share: neurons, spike traces, plastic synapses, the backends.

    ``config`` and ``neuron`` arrive resolved; the layer keeps them as ``synapses.config`` and ``neuron_config``.
    """

    def __init__(
        self,
        pre_size: int,
        post_size: int,
        config: SynapseConfig,
        neuron: SpikingNeuronConfig,
        *,
        modulator_input_size: int | None,
        backprop: str,
        chunk_size: int | None,
        backend: str,
    ) -> None:
        super().__init__()
        self._pre_size = check_int("pre-synaptic size", pre_size)
        self._post_size = check_int("post-synaptic size", post_size)
        check_choice("backprop", backprop, SPIKING_BACKPROP_MODES)
        check_choice("backend", backend, SPIKING_BACKENDS)
        check_optional_int("chunk_size", chunk_size)
        if modulator_input_size is not None:
            check_int("modulator_input_size", modulator_input_size)
        self.synapses = PlasticSynapses(pre_size, post_size, config=config,
                                        modulator_source=modulator_input_size or post_size)
        if modulator_input_size is not None and self.synapses.modulator is None:
            raise ValueError("modulator_input_size is only used with modulation 'simple' or 'retroactive'")
        self.modulator_input_size = modulator_input_size
        self.neuron_config = neuron
        self.surrogate = get_surrogate(neuron.surrogate)
        self.threshold = float(neuron.threshold)
        self.reset = neuron.reset
        self.detach_reset = neuron.detach_reset
        self.rectifier = neuron.rectifier
        self.dt = float(neuron.dt)
        self.backprop = backprop
        self.chunk_size = chunk_size
        self.backend = backend
        if backend == "lowrank" and not self.supports_lowrank:
            raise ValueError(
                "backend='lowrank' needs a post-wise linear rule (hebbian, oja, bcm), alpha 'neuron' or 'scalar' and "
                f"modulation 'none' or 'simple'; this layer has rule {type(self.synapses.rule).__name__}, alpha "
                f"{self.synapses.alpha_granularity!r}, modulation {self.synapses.modulation!r}: use backend='dense'"
            )
        tau = tau_tensor("tau_mem", neuron.tau_mem, post_size)
        if neuron.learn_tau_mem:
            self.tau_mem = nn.Parameter(tau)
        else:
            self.register_buffer("tau_mem", tau)
        # Trace time constants are learned through their logarithm, so that they stay positive.
        log_taus = torch.stack([tau_tensor("tau_pre", neuron.tau_pre, 1).log(),
                                tau_tensor("tau_post", neuron.tau_post, 1).log()])
        if neuron.learn_trace_tau:
            self.trace_log_tau = nn.Parameter(log_taus)
        else:
            self.register_buffer("trace_log_tau", log_taus)

    # -- parameters as the dynamics use them ---------------------------------------------------------
    @property
    def modulation(self) -> str:
        """The modulation mode of the synapses: ``"none"``, ``"simple"`` or ``"retroactive"``."""
        return self.synapses.modulation

    @property
    def alpha(self) -> Tensor:
        """The plasticity coefficient (``[I, O]``, ``[O]`` or ``[]``)."""
        return self.synapses.alpha

    @property
    def eta(self) -> Tensor | None:
        """The learned plasticity rate (``[]`` or ``[O]``; None when modulated)."""
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

    def _drive(self, inputs: Tensor) -> Tensor:
        """The fixed drive ``[B, T, O]`` of ``inputs [B, T, I]`` (input weights and bias)."""
        raise NotImplementedError

    def _spike_drive(self, inputs: Tensor) -> Tensor:
        """The fixed drive ``[B, T, O]`` of the fused backend (event-driven for spike inputs)."""
        raise NotImplementedError

    def _check_inputs(self, inputs: Tensor, state: PlasticSpikingState | None,
                      modulator_inputs: Tensor | None) -> None:
        """Inputs ``[B, T, I]``, a state this layer can continue from and the modulator inputs it was built for."""
        size = self.input_size
        check_tensor("inputs", inputs, ("B", "T", size), like=self.weight)
        check_nonempty_sequence("inputs", inputs)
        # non-finite inputs: the backends meet inf * 0 at different places (NaN in one, -inf in another)
        check_finite("inputs", inputs)
        if state is not None:
            self.check_state(state, inputs.shape[0])
        if modulator_inputs is not None:
            if self.modulator_input_size is None:
                raise ValueError("modulator_inputs given, but the layer's modulator reads its own post-synaptic "
                                 "trace (set modulator_input_size to read an external signal)")
            check_tensor("modulator_inputs", modulator_inputs,
                         (inputs.shape[0], inputs.shape[1], self.modulator_input_size), like=self.weight)
            check_finite("modulator_inputs", modulator_inputs)
        elif self.modulator_input_size is not None:
            raise ValueError(f"modulator_inputs [B, T, {self.modulator_input_size}] is required: the layer was "
                             f"built with modulator_input_size={self.modulator_input_size}")

    def check_state(self, state: object, batch: int) -> None:
        """Raise unless ``state`` is a :class:`PlasticSpikingState` this layer can continue from with ``batch``
        inputs: membrane, spikes and post-synaptic trace ``[B, O]``, pre-synaptic trace ``[B, I]``, the plastic
        state as :meth:`PlasticSynapses.state_fields` describes it, all on the layer's device and dtype
        (:func:`~neuroplastic._checks.check_state`), before anything is computed with it."""
        if isinstance(state, PlasticSpikingState) and isinstance(state.plastic, PlasticState) \
                and state.plastic.trace is None:
            raise ValueError("state has no Hebbian trace (it was returned by forward(..., need_trace=False)); "
                             "pass need_trace=True to continue from a state")
        post, pre = (batch, self._post_size), (batch, self._pre_size)
        fields = [StateField("membrane", post, "batch of the input, post-synaptic size"),
                  StateField("spikes", post, "batch of the input, post-synaptic size"),
                  StateField("pre_trace", pre, "batch of the input, pre-synaptic size"),
                  StateField("post_trace", post, "batch of the input, post-synaptic size")]
        fields += self.synapses.state_fields(batch, prefix="plastic.", pre="pre-synaptic size",
                                             post="post-synaptic size")
        check_state(state, [("", PlasticSpikingState), ("plastic", PlasticState)], fields, batch=batch,
                    like=self.weight, batch_note=f" (inputs must be batch-first [B, T, {self.input_size}])")

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
        most of the memory they write (268 MB at B=16, I=O=2048 in float32). Such a state cannot be passed back in.
        """
        check_bool("need_trace", need_trace)
        self._check_inputs(inputs, state, modulator_inputs)
        fresh = state is None
        if self.resolved_backend == "fused":  # a fresh state is not materialised (its [B, I, O] zero trace)
            return fused_hebbian_scan(self, inputs, state, fresh, need_trace)
        if self.resolved_backend == "lowrank":
            if state is None:
                state = self._initial_state_without_trace(inputs)
            return lowrank_scan(self, self._drive(inputs), inputs, modulator_inputs, state, fresh, need_trace)
        if state is None:
            state = self.initial_state(inputs.shape[0], device=inputs.device, dtype=inputs.dtype)
        return dense_scan(self, inputs, modulator_inputs, state, need_trace)

    def _base_repr(self) -> str:
        taus = self.trace_taus.detach()
        return (f"rule={type(self.synapses.rule).__name__}, modulation={self.modulation!r}, "
                f"alpha={self.synapses.alpha_granularity!r}, reset={self.reset!r}, threshold={self.threshold}, "
                f"tau_pre={float(taus[0]):.3g}, tau_post={float(taus[1]):.3g}, backend={self.resolved_backend!r}, "
                f"backprop={self.backprop!r}")



class PlasticLIF(_PlasticSpikingLayer):
    """A layer of LIF neurons whose input synapses are plastic, driven by spike traces.

    Schmidgall et al. 2021, SpikePropamine.
    ``current_t = s_t @ (W + alpha * Hebb_{t-1}) + b [+ z_{t-1} @ W_rec]``;
    ``z_t, v_t = lif_step(v_{t-1}, current_t)``;
    ``x_t = lambda_pre x_{t-1} + s_t``; ``y_t = lambda_post y_{t-1} + z_t``;
    ``Hebb_t = rule(Hebb_{t-1}, x_t, y_t, eta or M(y_t))``.
    With ``recurrent=True`` the layer also has fixed (learned, not plastic) recurrent weights ``W_rec [O, O]``.
    Shapes: ``s [B, T, I]`` -> spikes ``z [B, T, O]``; ``W``, ``alpha`` ``[I, O]``; ``Hebb`` ``[B, I, O]``.

    Args:
        in_features, out_features: I and O.
        bias: learn the bias ``b``.
        recurrent: add fixed recurrent weights ``W_rec``.
        config: the synapse settings (:class:`~neuroplastic.plasticity.synapses.SynapseConfig`; None: its
            defaults, where the rule is ``"clip"`` under simple modulation, else ``"hebbian"``).
        neuron: the neuron and spike-trace settings
            (:class:`~neuroplastic.plasticity.spiking_config.SpikingNeuronConfig`; None: its defaults).
        modulator_input_size: if given, the modulator reads ``modulator_inputs [B, T, S]`` passed to
            ``forward`` instead of the layer's post-synaptic trace.
        backprop: ``"autograd"`` or ``"checkpoint"`` for the dense backend (see the module docstring);
            ``chunk_size`` for the latter (default ``round(sqrt(T))``).
        backend: ``"auto"``, ``"dense"``, ``"lowrank"`` or ``"fused"`` (see the module docstring).
        **overrides: fields of ``SynapseConfig`` or ``SpikingNeuronConfig`` replacing those of ``config`` or
            ``neuron`` (e.g. ``rule="oja"``, ``tau_mem=5.0``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        recurrent: bool = False,
        config: SynapseConfig | None = None,
        neuron: SpikingNeuronConfig | None = None,
        modulator_input_size: int | None = None,
        backprop: str = "autograd",
        chunk_size: int | None = None,
        backend: str = "auto",
        **overrides: Any,
    ) -> None:
        check_int("in_features", in_features)
        check_int("out_features", out_features)
        super().__init__(
            in_features, out_features,
            *resolve_spiking_configs(config, neuron, overrides), modulator_input_size=modulator_input_size,
            backprop=backprop, chunk_size=chunk_size, backend=backend,
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
        """I, the number of input features."""
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
    The ``"fused"`` backend does not apply (the pre-synaptic spikes are the layer's own).

    Args:
        input_size, hidden_size: I and N.
        bias: learn the bias ``b``.
        config: the synapse settings (:class:`~neuroplastic.plasticity.synapses.SynapseConfig`; None: its
            defaults, where the rule is ``"clip"`` under simple modulation, else ``"hebbian"``).
        neuron: the neuron and spike-trace settings
            (:class:`~neuroplastic.plasticity.spiking_config.SpikingNeuronConfig`; None: its defaults).
        modulator_input_size: if given, the modulator reads ``modulator_inputs [B, T, S]`` passed to
            ``forward`` instead of the layer's post-synaptic trace.
        backprop: ``"autograd"`` or ``"checkpoint"`` for the dense backend (see the module docstring);
            ``chunk_size`` for the latter (default ``round(sqrt(T))``).
        backend: ``"auto"``, ``"dense"``, ``"lowrank"`` or ``"fused"`` (see the module docstring).
        **overrides: fields of ``SynapseConfig`` or ``SpikingNeuronConfig`` replacing those of ``config`` or
            ``neuron`` (e.g. ``rule="oja"``, ``tau_mem=5.0``).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        config: SynapseConfig | None = None,
        neuron: SpikingNeuronConfig | None = None,
        modulator_input_size: int | None = None,
        backprop: str = "autograd",
        chunk_size: int | None = None,
        backend: str = "auto",
        **overrides: Any,
    ) -> None:
        check_int("input_size", input_size)
        check_int("hidden_size", hidden_size)
        super().__init__(
            hidden_size, hidden_size,
            *resolve_spiking_configs(config, neuron, overrides), modulator_input_size=modulator_input_size,
            backprop=backprop, chunk_size=chunk_size, backend=backend,
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
        """I, the number of input features."""
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
