"""Plastic synapses: a fixed weight plus a learned multiple of a fast Hebbian trace.

Miconi et al. 2018 (Differentiable plasticity) and 2019 (Backpropamine).
``W_eff = W + alpha * H``, with one trace ``H`` per batch element (``[B, I, O]``); ``alpha`` learned per
connection ``[I, O]``, per receiving neuron ``[O]`` or as one scalar. The trace follows a
:class:`~neuroplastic.plasticity.rules.PlasticityRule` at a learned rate eta (scalar or per receiving
neuron), or at a rate computed by a :class:`~neuroplastic.plasticity.modulation.Modulator`.

:class:`SynapseConfig` holds the settings every plastic module shares (rule, alpha, eta, modulation, clip,
initial values), declared and validated once; each module takes ``config=`` plus keyword overrides of its fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from neuroplastic._checks import (
    StateField,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_optional_int,
    check_positive,
    check_state,
    check_tensor,
)
from neuroplastic.plasticity.modulation import MODULATIONS, Modulator, make_modulator
from neuroplastic.plasticity.rules import RULES, PlasticityRule, make_rule

__all__ = ["PlasticState", "PlasticSynapses", "SynapseConfig", "ALPHA_GRANULARITIES", "ETA_GRANULARITIES"]

ALPHA_GRANULARITIES = ("connection", "neuron", "scalar")
ETA_GRANULARITIES = ("scalar", "neuron")


@dataclass(frozen=True)
class SynapseConfig:
    """The settings of plastic synapses, shared by every plastic module (Miconi et al. 2018, 2019).

    ``PlasticSynapses``, ``PlasticLinear``, the plastic RNN/LSTM cells and sequence modules and the plastic
    spiking layers all take ``config: SynapseConfig | None`` plus keyword overrides of these fields, so that
    ``PlasticRNN(16, 64, modulation="simple", clip=2.0)`` and
    ``PlasticRNN(16, 64, config=SynapseConfig(modulation="simple", clip=2.0))`` build the same module.
    Invalid values raise at construction (``ValueError``, or ``TypeError`` for a wrong type) naming the field
    and what it accepts.

    Attributes:
        rule: ``"hebbian"`` (decaying, ``H <- (1 - eta) H + eta pre ⊗ post``), ``"oja"``, ``"bcm"``, ``"clip"``
            (``H <- clip(H + eta pre ⊗ post, ±clip)``), ``"soft_bound"``, a
            :class:`~neuroplastic.plasticity.rules.PlasticityRule`, or None: ``"clip"`` under simple
            modulation, else ``"hebbian"``.
        alpha: granularity of the plasticity coefficient: per ``"connection"`` ``[I, O]``, per receiving
            ``"neuron"`` ``[O]`` or one ``"scalar"``.
        eta: granularity of the learned rate (used without modulation): ``"scalar"`` or ``"neuron"`` ``[O]``.
        modulation: ``"none"``, ``"simple"`` (the modulator output ``M(t)`` is the rate), ``"retroactive"``
            (``H <- clip(H + M(t) E, ±clip)`` with an eligibility trace ``E``), a
            :class:`~neuroplastic.plasticity.modulation.Modulator`, or None (as ``"none"``).
        modulator_channels: number of modulator channels K (an int >= 1).
        fanout: map the K channels to one rate per receiving neuron through a learned linear layer.
        clip: bound of the ``"clip"`` rule and of retroactive commits (> 0).
        alpha_init: standard deviation of alpha's initial values (per connection), or its initial value (>= 0).
        eta_init: initial learned rate eta (>= 0).
        eligibility_rate: initial rate eta_E of the eligibility trace (retroactive modulation; learned; a finite
            number > 0).
    """

    rule: str | PlasticityRule | None = None
    alpha: str = "connection"
    eta: str = "scalar"
    modulation: str | Modulator | None = "none"
    modulator_channels: int = 1
    fanout: bool = True
    clip: float = 2.0
    alpha_init: float = 0.01
    eta_init: float = 0.01
    eligibility_rate: float = 0.1

    def __post_init__(self) -> None:
        if self.rule is not None and not isinstance(self.rule, PlasticityRule):
            if not isinstance(self.rule, str):
                raise TypeError(f"rule must be a rule name, a PlasticityRule or None, got {type(self.rule).__name__}")
            check_choice("rule", self.rule, RULES)
        check_choice("alpha", self.alpha, ALPHA_GRANULARITIES)
        check_choice("eta", self.eta, ETA_GRANULARITIES)
        if self.modulation is not None and not isinstance(self.modulation, Modulator):
            if not isinstance(self.modulation, str):
                raise TypeError(f"modulation must be one of {', '.join(map(repr, MODULATIONS))}, a Modulator or "
                                f"None, got {type(self.modulation).__name__}")
            check_choice("modulation", self.modulation, MODULATIONS)
        check_int("modulator_channels", self.modulator_channels)
        check_bool("fanout", self.fanout)
        check_positive("clip", self.clip)
        check_number("alpha_init", self.alpha_init, minimum=0)  # finite: inf or NaN would poison W_eff
        check_number("eta_init", self.eta_init, minimum=0)
        # finite: an infinite initial rate would make the eligibility trace NaN at the first step
        check_number("eligibility_rate", self.eligibility_rate, minimum=0, exclusive_minimum=True)

    @classmethod
    def resolve(cls, config: SynapseConfig | None = None, **overrides: Any) -> SynapseConfig:
        """``config`` (None: the defaults) with the fields in ``overrides`` replaced, validated.

        A keyword that is not a field raises a ``TypeError`` that lists the fields.
        """
        return resolve_config(cls, config, overrides, argument="config", settings="synapse")


def resolve_config(cls: type, config: Any, overrides: dict[str, Any], *, argument: str, settings: str) -> Any:
    """``config`` (an instance of the frozen dataclass ``cls``, or None: its defaults) with the fields in
    ``overrides`` replaced, validated by ``cls``; shared by :class:`SynapseConfig` and the spiking neuron config.

    A ``config`` of another type, or a keyword that is not a field, raises a ``TypeError`` (the latter lists the
    ``settings`` fields).
    """
    if config is not None and not isinstance(config, cls):
        raise TypeError(f"{argument} must be a {cls.__name__} or None, got {type(config).__name__}")
    fields = [field.name for field in dataclasses.fields(cls)]
    unknown = [name for name in overrides if name not in fields]
    if unknown:
        raise TypeError(f"unknown keyword argument{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))}; the {settings} settings are {', '.join(fields)} "
                        f"(see {cls.__name__})")
    if config is None:
        return cls(**overrides)
    return dataclasses.replace(config, **overrides) if overrides else config


class PlasticState(NamedTuple):
    """The within-episode state of a plastic synapse matrix.

    Attributes:
        trace: Hebbian trace H ``[B, I, O]`` (None in the final state of a plastic spiking layer called with
            ``need_trace=False``).
        eligibility: eligibility trace E ``[B, I, O]`` (retroactive neuromodulation), else ``None``.
        threshold: sliding threshold ``[B, O]`` (BCM rule), else ``None``.
    """

    trace: Tensor
    eligibility: Tensor | None = None
    threshold: Tensor | None = None

    def detach(self) -> PlasticState:
        """The same state cut from the autograd graph (truncated backpropagation through time)."""
        return PlasticState(*(None if t is None else t.detach() for t in self))


class PlasticSynapses(nn.Module):
    """The plastic part of a connection matrix: ``alpha``, the rule, its rate, and its modulator.

    Miconi et al. 2018/2019. ``y = pre @ (W + alpha * H)`` and, after the step, with no modulation:
    ``H <- rule(H, pre, post, eta)``; simple modulation: ``H <- rule(H, pre, post, M(t))``;
    retroactive: ``H <- clip(H + M(t) * E, ±clip)``, then ``E <- rule(E, pre, post, eta_E)``.
    Shapes: ``pre [B, I]``, ``post [B, O]``, ``W`` and connection-wise ``alpha`` ``[I, O]``, traces ``[B, I, O]``.

    Args:
        in_features: pre-synaptic size I.
        out_features: post-synaptic size O.
        config: the synapse settings (:class:`SynapseConfig`; None: its defaults).
        modulator_source: size of the activity the modulator reads (default ``out_features``).
        **overrides: fields of :class:`SynapseConfig` (``rule``, ``alpha``, ``eta``, ``modulation``,
            ``modulator_channels``, ``fanout``, ``clip``, ``alpha_init``, ``eta_init``, ``eligibility_rate``)
            replacing those of ``config``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        config: SynapseConfig | None = None,
        modulator_source: int | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        config = SynapseConfig.resolve(config, **overrides)
        check_int("in_features", in_features)
        check_int("out_features", out_features)
        check_optional_int("modulator_source", modulator_source)
        self.config = config
        self.in_features = in_features
        self.out_features = out_features
        self.alpha_granularity = alpha = config.alpha
        self.eta_granularity = eta = config.eta
        self.clip = float(config.clip)
        self.modulator = make_modulator(
            config.modulation, modulator_source or out_features, out_features,
            channels=config.modulator_channels, fanout=config.fanout, eligibility_rate=config.eligibility_rate,
        )
        rule = config.rule
        if rule is None:
            rule = "clip" if self.modulator is not None and not self.modulator.retroactive else "hebbian"
        self.rule = make_rule(rule, clip=config.clip)

        alpha_init, eta_init = config.alpha_init, config.eta_init
        if alpha == "connection":
            self.alpha = nn.Parameter(alpha_init * torch.randn(in_features, out_features))
        elif alpha == "neuron":
            self.alpha = nn.Parameter(torch.full((out_features,), float(alpha_init)))
        else:
            self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        if self.modulator is None:
            shape = () if eta == "scalar" else (out_features,)
            self.eta = nn.Parameter(torch.full(shape, float(eta_init)))
        else:
            self.register_parameter("eta", None)

    @property
    def modulation(self) -> str:
        """The modulation mode: ``"none"``, ``"simple"`` or ``"retroactive"``."""
        return "none" if self.modulator is None else self.modulator.mode

    def initial_state(
        self, batch_size: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> PlasticState:
        """Zero traces for ``batch_size`` episodes, on the parameters' device and dtype by default."""
        check_int("batch_size", batch_size)
        device = self.alpha.device if device is None else device
        dtype = self.alpha.dtype if dtype is None else dtype
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating-point torch.dtype or None, got {dtype!r}")
        shape = (batch_size, self.in_features, self.out_features)
        trace = torch.zeros(shape, device=device, dtype=dtype)
        eligibility = torch.zeros_like(trace) if self.modulation == "retroactive" else None
        threshold = (torch.zeros(batch_size, self.out_features, device=device, dtype=dtype)
                     if self.rule.uses_threshold else None)
        return PlasticState(trace, eligibility, threshold)

    def state_fields(self, batch: int, *, prefix: str = "", pre: str = "in_features",
                     post: str = "out_features") -> list[StateField]:
        """What a :class:`PlasticState` for ``batch`` episodes holds, for :func:`~neuroplastic._checks.check_state`:
        the trace ``[B, I, O]``, the eligibility trace ``[B, I, O]`` under retroactive modulation (else None) and
        the sliding threshold ``[B, O]`` of a rule that keeps one (else None). ``prefix``: the state's path in the
        module's state (``"plastic."``); ``pre``, ``post``: the names of I and O in the error messages."""
        square = (batch, self.in_features, self.out_features)
        dims = f"batch of the input, {pre}, {post}"
        modulation = self.modulation
        eligibility = (StateField(prefix + "eligibility", square, dims, "retroactive modulation keeps an "
                                  "eligibility trace; use initial_state() of this layer")
                       if modulation == "retroactive" else
                       StateField(prefix + "eligibility", None, why=f"modulation is {modulation!r}: only "
                                  "retroactive modulation keeps an eligibility trace"))
        rule = type(self.rule).__name__
        threshold = (StateField(prefix + "threshold", (batch, self.out_features), f"batch of the input, {post}",
                                f"the rule {rule} keeps a sliding threshold")
                     if self.rule.uses_threshold else
                     StateField(prefix + "threshold", None, why=f"the rule {rule} keeps no sliding threshold"))
        return [StateField(prefix + "trace", square, dims), eligibility, threshold]

    def check_inputs(self, state: object, pre: object, post: object = None, weight: object = None) -> None:
        """Raise unless ``state`` (:meth:`state_fields`), ``pre [B, I]``, ``post [B, O]`` and the fixed weight
        ``W [I, O]`` (those given) fit these synapses: the checks of :meth:`forward`, :meth:`plastic_input` and
        :meth:`update`, which the library's own modules make once at their boundary instead of at every step."""
        check_tensor("pre", pre, ("B", self.in_features), like=self.alpha)
        if post is not None:
            check_tensor("post", post, (pre.shape[0], self.out_features), like=self.alpha)
        if weight is not None:
            check_tensor("weight", weight, (self.in_features, self.out_features), like=self.alpha)
        check_state(state, [("", PlasticState)], self.state_fields(pre.shape[0]), batch=pre.shape[0],
                    like=self.alpha)

    def plastic_input(self, pre: Tensor, state: PlasticState) -> Tensor:
        """The plastic part of the input to the receiving neurons: ``pre @ (alpha * H)`` ``[B, O]``."""
        self.check_inputs(state, pre)
        return self._plastic_input(pre, state)

    def _plastic_input(self, pre: Tensor, state: PlasticState) -> Tensor:
        pre_row = pre.unsqueeze(1)
        if self.alpha_granularity == "connection":
            return torch.bmm(pre_row, self.alpha * state.trace).squeeze(1)
        return torch.bmm(pre_row, state.trace).squeeze(1) * self.alpha

    def forward(self, pre: Tensor, weight: Tensor, state: PlasticState) -> Tensor:
        """``pre [B, I] @ (W + alpha * H)`` -> ``[B, O]`` with the fixed weight ``W [I, O]``."""
        self.check_inputs(state, pre, weight=weight)
        return pre @ weight + self._plastic_input(pre, state)

    def update(
        self, state: PlasticState, pre: Tensor, post: Tensor, modulator_source: Tensor | None = None
    ) -> PlasticState:
        """The state after one step with activities ``pre [B, I]`` and ``post [B, O]``.

        ``modulator_source [B, S]`` is what the modulator reads (required when modulated).
        """
        self.check_inputs(state, pre, post)
        return self._update(state, pre, post, modulator_source)

    def _update(
        self, state: PlasticState, pre: Tensor, post: Tensor, modulator_source: Tensor | None = None
    ) -> PlasticState:
        trace, eligibility, threshold = state
        if self.modulator is None:
            trace, threshold = self.rule(trace, pre, post, self.eta, threshold)
            return PlasticState(trace, eligibility, threshold)
        if modulator_source is None:
            raise ValueError("modulator_source is required when the synapses are neuromodulated")
        rate = self.modulator(modulator_source)
        if not self.modulator.retroactive:
            trace, threshold = self.rule(trace, pre, post, rate, threshold)
            return PlasticState(trace, eligibility, threshold)
        # Retroactive: commit the eligibility trace so far, then record this step's co-activity.
        trace = torch.clamp(trace + rate.unsqueeze(1) * eligibility, -self.clip, self.clip)
        eligibility, threshold = self.rule(eligibility, pre, post, self.modulator.eligibility_rate, threshold)
        return PlasticState(trace, eligibility, threshold)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"alpha={self.alpha_granularity!r}, eta={self.eta_granularity!r}, "
                f"modulation={self.modulation!r}")
