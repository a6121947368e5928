"""Spiking neuron modules: LIF (one step and over ``[B, T, ...]``), adaptive LIF, recurrent LIF, leaky readout.

Thin shells over the pure functions of :mod:`neuroplastic.neurons.lif`: a module holds the (optionally
learnable) per-neuron time constants and thresholds, and its state is explicit (``out, state =
module(x, state)``), a named tuple of ``[B, ...]`` tensors. Sequences are batch-first ``[B, T, ...]``.

Time constants: ``tau`` is stored as ``log_tau`` (so it stays positive while learned), one per neuron; the
per-step decay is ``exp(-dt / tau)``. ``learn_tau=True`` makes it a parameter; ``heterogeneous=True`` draws
each neuron's initial ``tau`` log-uniformly from ``tau_range`` (default ``(tau / 2, 2 tau)``; heterogeneous
time constants as in Perez-Nieves et al. 2021 and Chakraborty & Mukhopadhyay's LNP), from ``generator``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from neuroplastic._checks import (
    StateField,
    check_bool,
    check_choice,
    check_int,
    check_int_tuple,
    check_nonempty_sequence,
    check_number,
    check_same_placement,
    check_state,
    check_values,
)
from neuroplastic.neurons.fused_lif import LIFConfig, _lif_sequence
from neuroplastic.neurons.lif import RESETS, _alif_step, _lif_step
from neuroplastic.neurons.surrogates import Surrogate, get_surrogate

__all__ = [
    "LIFState",
    "ALIFState",
    "RecurrentLIFState",
    "LIFCell",
    "LIF",
    "ALIFCell",
    "ALIF",
    "RecurrentLIF",
    "LeakyReadout",
    "BACKENDS",
]

BACKENDS = ("fused", "step")


class LIFState(NamedTuple):
    """Membrane potential ``v: [B, *size]``."""

    v: Tensor


class ALIFState(NamedTuple):
    """Membrane potential ``v`` and threshold adaptation ``b``, both ``[B, *size]``."""

    v: Tensor
    b: Tensor


class RecurrentLIFState(NamedTuple):
    """Membrane ``v``, last spikes ``spike`` (fed back through the recurrent weights) and, for adaptive
    neurons, the threshold adaptation ``b`` (else None); ``[B, hidden]`` each."""

    v: Tensor
    spike: Tensor
    b: Tensor | None = None


def _per_neuron(name: str, value: float | Tensor, size: tuple[int, ...], *, allow_zero: bool = False) -> Tensor:
    """A number or a tensor broadcastable to ``size`` as a float tensor of shape ``size``, finite and > 0
    (``allow_zero``: >= 0), checked after the conversion to the default dtype (which may round to 0)."""
    check_values(name, value, minimum=0, exclusive_minimum=not allow_zero)
    if isinstance(value, Tensor):
        try:
            tensor = value.detach().to(torch.get_default_dtype()).expand(size).clone()
        except RuntimeError:
            raise ValueError(f"{name} must be a number or a tensor broadcastable to {list(size)}, "
                             f"got shape {list(value.shape)}") from None
    else:
        tensor = torch.full(size, float(value))
    check_values(name, tensor, minimum=0, exclusive_minimum=not allow_zero)
    return tensor


def _check_sequence(x: Tensor, size: tuple[int, ...], state: object, who: str, kind: type = LIFState,
                    fields: tuple[str, ...] = ("v",), like: Tensor | None = None, like_name: str = "x") -> None:
    """x must be ``[B, T, *size]`` (floating, B >= 1, T >= 1); catch a time-major ``[T, B, ...]`` input where the
    state makes it visible; then check the state (:func:`_check_population_state`)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 + len(size) or tuple(x.shape[2:]) != size:
        hint = f" (one time step [B, {', '.join(map(str, size))}] goes to the Cell)" if x.dim() == 1 + len(size) \
            else ""
        raise ValueError(f"{who}: x must have the layout [B, T, {', '.join(map(str, size))}], "
                         f"got shape {list(x.shape)}{hint}")
    if not x.is_floating_point():
        raise ValueError(f"{who}: x must be a floating-point tensor, got dtype {x.dtype}")
    check_nonempty_sequence(f"{who}: x", x)
    if state is None:
        return
    _check_state_type(state, kind)
    v = state.v  # type: ignore[attr-defined]
    state_batch = v.shape[0] if isinstance(v, Tensor) and v.dim() >= 1 else None
    if state_batch is not None and state_batch != x.shape[0]:
        if state_batch == x.shape[1]:
            raise ValueError(f"{who}: the layout must be [B, T, ...] (batch first): the state has batch size "
                             f"{state_batch}, which is x.shape[1], not x.shape[0] = {x.shape[0]}; "
                             "transpose a time-major [T, B, ...] input with x.transpose(0, 1)")
        raise ValueError(f"{who}: the state has batch size {state_batch} but x (layout [B, T, ...]) has "
                         f"batch size {x.shape[0]}")
    _check_population_state(state, kind, fields, x.shape[0], size, x if like is None else like, like_name)


def _check_state_type(state: object, kind: type) -> None:
    if not isinstance(state, kind):
        raise TypeError(f"state must be a {kind.__name__} or None, got {type(state).__name__}")


def _check_population_state(state: object, kind: type, fields: tuple[str, ...], batch: int, size: tuple[int, ...],
                            like: Tensor, like_name: str, absent: tuple[str, ...] = ()) -> None:
    """The state's type and every tensor's shape ``[B, *size]``, dtype and device (``like``'s), before use;
    ``absent``: fields the module keeps none of (they must be None)."""
    dims = "batch of the input, " + ", ".join(map(str, size))
    check_state(state, [("", kind)],
                [StateField(name, (batch, *size), dims) for name in fields]
                + [StateField(name, None, why="the neurons are not adaptive") for name in absent],
                batch=batch, like=like, like_name=like_name)


def _check_step(x: Tensor, size: tuple[int, ...], state: object, who: str, kind: type = LIFState,
                fields: tuple[str, ...] = ("v",)) -> None:
    """x must be one step ``[B, *size]`` of this population; hints at the sequence module for ``[B, T, ...]``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 1 + len(size) or tuple(x.shape[1:]) != size:
        hint = " (a sequence [B, T, ...] goes to the sequence module, e.g. LIF)" if x.dim() == 2 + len(size) else ""
        raise ValueError(f"{who}: x must have the layout [B, {', '.join(map(str, size))}], got shape "
                         f"{list(x.shape)}{hint}")
    if not x.is_floating_point():
        raise ValueError(f"{who}: x must be a floating-point tensor, got dtype {x.dtype}")
    if state is None:
        return
    _check_state_type(state, kind)
    v = state.v  # type: ignore[attr-defined]
    if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] != x.shape[0]:
        raise ValueError(f"{who}: the state has batch size {v.shape[0]} but x has batch size {x.shape[0]}")
    _check_population_state(state, kind, fields, x.shape[0], size, x, "x")


class _LIFBase(nn.Module):
    """Per-neuron time constants and thresholds, reset settings and the surrogate of a LIF population."""

    def __init__(self, size: int | tuple[int, ...], tau: float | Tensor = 10.0, threshold: float | Tensor = 1.0, *,
                 dt: float = 1.0, reset: str = "soft", v_reset: float = 0.0, rectifier: bool = False,
                 detach_reset: bool = False, learn_tau: bool = False, learn_threshold: bool = False,
                 heterogeneous: bool = False, tau_range: tuple[float, float] | None = None,
                 surrogate: str | Surrogate = "fast_sigmoid", generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.size = check_int_tuple("size", size, allow_int=True)
        self.dt = float(check_number("dt", dt, minimum=0, exclusive_minimum=True))
        self.reset = check_choice("reset", reset, RESETS)
        self.v_reset = float(check_number("v_reset", v_reset))
        self.rectifier = check_bool("rectifier", rectifier)
        self.detach_reset = check_bool("detach_reset", detach_reset)
        for name, flag in (("learn_tau", learn_tau), ("learn_threshold", learn_threshold),
                           ("heterogeneous", heterogeneous)):
            check_bool(name, flag)
        self.surrogate = get_surrogate(surrogate)
        if heterogeneous:
            if tau_range is None:
                if isinstance(tau, Tensor):
                    raise ValueError("tau_range is needed with heterogeneous=True when tau is a tensor")
                base = float(check_number("tau", tau, minimum=0, exclusive_minimum=True))
                tau_range = (base / 2.0, base * 2.0)
            if (not isinstance(tau_range, (tuple, list)) or len(tau_range) != 2
                    or not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < math.inf
                               for t in tau_range)
                    or tau_range[0] > tau_range[1]):
                raise ValueError(f"tau_range must be (low, high) with 0 < low <= high, got {tau_range!r}")
            low, high = math.log(tau_range[0]), math.log(tau_range[1])
            u = torch.rand(self.size, generator=generator)
            tau_tensor = torch.exp(low + (high - low) * u)
        else:
            if tau_range is not None:
                raise ValueError("tau_range is only used with heterogeneous=True (per-neuron initial tau drawn "
                                 "from it)")
            tau_tensor = _per_neuron("tau", tau, self.size)
        log_tau = tau_tensor.log()
        if learn_tau:
            self.log_tau = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_tau", log_tau)
        threshold_tensor = _per_neuron("threshold", threshold, self.size)
        if learn_threshold:
            self.threshold = nn.Parameter(threshold_tensor)
        else:
            self.register_buffer("threshold", threshold_tensor)

    @property
    def tau(self) -> Tensor:
        """Membrane time constants, ``[*size]``."""
        return self.log_tau.exp()

    def decay(self) -> Tensor:
        """Per-step membrane decay ``exp(-dt / tau)``, ``[*size]`` (differentiable in ``log_tau``)."""
        return torch.exp(-self.dt * torch.exp(-self.log_tau))

    def _config(self) -> LIFConfig:
        return LIFConfig(self.reset, self.v_reset, self.rectifier, self.detach_reset, self.surrogate)

    def extra_repr(self) -> str:
        return (f"size={self.size}, reset={self.reset!r}, rectifier={self.rectifier}, "
                f"detach_reset={self.detach_reset}, surrogate={self.surrogate!r}")


class LIFCell(_LIFBase):
    """One time step of a LIF population: ``(spike, state) = cell(x, state)``, ``x: [B, *size]``.

    Equations: :func:`~neuroplastic.neurons.lif.lif_step` (``h = decay v + x``, spike ``H(h - threshold)``,
    reset hard/soft/none, optional MPR and detached reset). Arguments: ``size`` (int or tuple), ``tau``
    (membrane time constant, number or tensor broadcastable to ``size``, > 0, in units of ``dt``),
    ``threshold`` (> 0), ``reset`` ("hard", "soft", "none"), ``v_reset`` (hard reset target), ``rectifier``
    (Guo et al. 2022's MPR), ``detach_reset``, ``learn_tau``/``learn_threshold`` (parameters instead of
    buffers), ``heterogeneous``/``tau_range``/``generator`` (per-neuron log-uniform initial tau),
    ``surrogate`` (name or :class:`~neuroplastic.neurons.surrogates.Surrogate`). State: :class:`LIFState`.
    """

    def initial_state(self, batch: int, *, device=None, dtype=None) -> LIFState:
        return LIFState(torch.zeros(batch, *self.size, device=device or self.log_tau.device,
                                    dtype=dtype or self.threshold.dtype))

    def forward(self, x: Tensor, state: LIFState | None = None) -> tuple[Tensor, LIFState]:
        _check_step(x, self.size, state, type(self).__name__)
        v = torch.zeros_like(x) if state is None else state.v
        spike, v = _lif_step(v, x, self.decay().to(x.dtype), self.threshold.to(x.dtype), self.reset, self.v_reset,
                             self.rectifier,
                             self.detach_reset, self.surrogate)
        return spike, LIFState(v)


class LIF(_LIFBase):
    """A LIF population over a sequence: ``(spikes, state) = lif(x, state)``, ``x, spikes: [B, T, *size]``.

    Same arguments and equations as :class:`LIFCell`, plus ``backend``: ``"fused"`` (default; one autograd
    node for the whole sequence with a hand-written backward, C kernels on CPU, see
    :mod:`neuroplastic.neurons.fused_lif`) or ``"step"`` (a loop of :func:`~neuroplastic.neurons.lif.lif_step`,
    plain autograd). Both give the same spikes and gradients. Returns the spikes and the final
    :class:`LIFState` (``v: [B, *size]``).
    """

    def __init__(self, size: int | tuple[int, ...], tau: float | Tensor = 10.0, threshold: float | Tensor = 1.0, *,
                 backend: str = "fused", **kwargs) -> None:
        super().__init__(size, tau, threshold, **kwargs)
        self.backend = check_choice("backend", backend, BACKENDS)

    def forward(self, x: Tensor, state: LIFState | None = None) -> tuple[Tensor, LIFState]:
        _check_sequence(x, self.size, state, type(self).__name__)
        v0 = None if state is None else state.v
        decay, threshold = self.decay().to(x.dtype), self.threshold.to(x.dtype)  # the neurons follow x's dtype
        if self.backend == "fused":
            batch, steps = x.shape[:2]
            flat = x.reshape(batch, steps, -1)
            v0_flat = None if v0 is None else v0.expand(batch, *self.size).reshape(batch, -1)
            spikes, v = _lif_sequence(flat, v0_flat, decay.reshape(-1), threshold.reshape(-1), self._config())
            return spikes.view(x.shape), LIFState(v.view(batch, *self.size))
        v = torch.zeros_like(x[:, 0]) if v0 is None else v0
        out = []
        for t in range(x.shape[1]):
            spike, v = _lif_step(v, x[:, t], decay, threshold, self.reset, self.v_reset, self.rectifier,
                                 self.detach_reset, self.surrogate)
            out.append(spike)
        return torch.stack(out, 1), LIFState(v)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", backend={self.backend!r}"


class _ALIFBase(_LIFBase):
    def __init__(self, size: int | tuple[int, ...], tau: float | Tensor = 20.0, threshold: float | Tensor = 1.0, *,
                 tau_adapt: float | Tensor = 200.0, beta: float | Tensor = 1.8, learn_beta: bool = False,
                 **kwargs) -> None:
        super().__init__(size, tau, threshold, **kwargs)
        self.register_buffer("tau_adapt", _per_neuron("tau_adapt", tau_adapt, self.size))
        beta_tensor = _per_neuron("beta", beta, self.size, allow_zero=True)
        if learn_beta:
            self.beta = nn.Parameter(beta_tensor)
        else:
            self.register_buffer("beta", beta_tensor)

    def rho(self) -> Tensor:
        """Per-step decay of the adaptation, ``exp(-dt / tau_adapt)``."""
        return torch.exp(-self.dt / self.tau_adapt)

    def _step(self, x: Tensor, v: Tensor, b: Tensor, decay: Tensor, rho: Tensor):
        dtype = x.dtype  # the neurons follow x's dtype (a no-op where it is the parameters')
        return _alif_step(v, b, x, decay.to(dtype), rho.to(dtype), self.threshold.to(dtype), self.beta.to(dtype),
                          self.reset, self.v_reset, self.rectifier, self.detach_reset, self.surrogate)


class ALIFCell(_ALIFBase):
    """One step of an adaptive-threshold LIF population (Bellec et al. 2018, LSNN); ``x: [B, *size]``.

    Equations: :func:`~neuroplastic.neurons.lif.alif_step` (threshold ``threshold + beta b``, adaptation
    ``b' = rho b + (1 - rho) spike``, ``rho = exp(-dt / tau_adapt)``). Arguments as :class:`LIFCell` plus
    ``tau_adapt`` (> 0), ``beta`` (>= 0) and ``learn_beta``. State: :class:`ALIFState`.
    """

    def forward(self, x: Tensor, state: ALIFState | None = None) -> tuple[Tensor, ALIFState]:
        _check_step(x, self.size, state, type(self).__name__, ALIFState, ("v", "b"))
        v, b = (torch.zeros_like(x), torch.zeros_like(x)) if state is None else state
        spike, v, b = self._step(x, v, b, self.decay(), self.rho())
        return spike, ALIFState(v, b)


class ALIF(_ALIFBase):
    """An adaptive-threshold LIF population over ``[B, T, *size]`` (step by step; see :class:`ALIFCell`)."""

    def forward(self, x: Tensor, state: ALIFState | None = None) -> tuple[Tensor, ALIFState]:
        _check_sequence(x, self.size, state, type(self).__name__, ALIFState, ("v", "b"))
        v, b = (torch.zeros_like(x[:, 0]), torch.zeros_like(x[:, 0])) if state is None else state
        decay, rho = self.decay(), self.rho()
        out = []
        for t in range(x.shape[1]):
            spike, v, b = self._step(x[:, t], v, b, decay, rho)
            out.append(spike)
        return torch.stack(out, 1), ALIFState(v, b)


class RecurrentLIF(nn.Module):
    """A recurrent spiking layer: input Linear + recurrent Linear + LIF (or ALIF) neurons, over ``[B, T, I]``.

    ``h_t = decay v_{t-1} + W_in x_t + b_in + W_rec s_{t-1}``, then spike and reset as in
    :func:`~neuroplastic.neurons.lif.lif_step` (with ``adaptive=True``, :func:`~neuroplastic.neurons.lif.alif_step`).
    The input projection of all steps is one matrix product; the recurrence runs step by step.
    Modules: ``input_linear`` (``[hidden, input]``, with bias if ``bias``), ``recurrent_linear``
    (``[hidden, hidden]``, no bias), ``neurons`` (an :class:`LIFCell` or :class:`ALIFCell` built from the
    remaining keyword arguments, e.g. ``tau``, ``threshold``, ``reset``, ``heterogeneous``).
    ``forward(x: [B, T, I], state) -> (spikes [B, T, H], RecurrentLIFState)``.
    """

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True, adaptive: bool = False,
                 **neuron_kwargs) -> None:
        super().__init__()
        check_int("input_size", input_size)
        check_int("hidden_size", hidden_size)
        check_bool("bias", bias)
        self.input_size, self.hidden_size, self.adaptive = input_size, hidden_size, check_bool("adaptive", adaptive)
        self.input_linear = nn.Linear(input_size, hidden_size, bias=bias)
        self.recurrent_linear = nn.Linear(hidden_size, hidden_size, bias=False)
        self.neurons = (ALIFCell if adaptive else LIFCell)(hidden_size, **neuron_kwargs)

    def initial_state(self, batch: int, *, device=None, dtype=None) -> RecurrentLIFState:
        weight = self.input_linear.weight
        zeros = torch.zeros(batch, self.hidden_size, device=device or weight.device, dtype=dtype or weight.dtype)
        return RecurrentLIFState(zeros, zeros.clone(), zeros.clone() if self.adaptive else None)

    def forward(self, x: Tensor, state: RecurrentLIFState | None = None) -> tuple[Tensor, RecurrentLIFState]:
        _check_sequence(x, (self.input_size,), None, type(self).__name__)
        check_same_placement("x", x, self.input_linear.weight, "the layer's parameters")
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        else:
            _check_state_type(state, RecurrentLIFState)
            if self.adaptive and state.b is None:
                raise ValueError("RecurrentLIF(adaptive=True) needs a state with b (the threshold adaptation)")
            v = state.v
            if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] != x.shape[0] and v.shape[0] == x.shape[1]:
                raise ValueError(f"{type(self).__name__}: the layout must be [B, T, ...] (batch first): the state "
                                 f"has batch size {v.shape[0]}, which is x.shape[1], not x.shape[0] = "
                                 f"{x.shape[0]}; transpose a time-major [T, B, ...] input with x.transpose(0, 1)")
            _check_population_state(state, RecurrentLIFState, ("v", "spike", "b") if self.adaptive else
                                    ("v", "spike"), x.shape[0], (self.hidden_size,), self.input_linear.weight,
                                    "the layer's parameters", absent=() if self.adaptive else ("b",))
        currents = self.input_linear(x)
        neurons = self.neurons
        decay = neurons.decay()
        rho = neurons.rho() if self.adaptive else None
        v, spike, b = state
        w_rec = self.recurrent_linear.weight
        out = []
        for t in range(x.shape[1]):
            h_in = torch.addmm(currents[:, t], spike, w_rec.t())
            if self.adaptive:
                spike, v, b = neurons._step(h_in, v, b, decay, rho)
            else:
                spike, v = _lif_step(v, h_in, decay, neurons.threshold, neurons.reset, neurons.v_reset,
                                     neurons.rectifier, neurons.detach_reset, neurons.surrogate)
            out.append(spike)
        return torch.stack(out, 1), RecurrentLIFState(v, spike, b)


class LeakyReadout(nn.Module):
    """A leaky, non-spiking readout: the membrane of integrators without threshold, over ``[B, T, *size]``.

    ``v_t = decay v_{t-1} + x_t`` with ``decay = exp(-dt / tau)`` per neuron (``learn_tau`` makes ``tau`` a
    parameter). ``forward(x, state=None) -> (v [B, T, *size], LIFState)``; reduce the potentials over time
    with :func:`~neuroplastic.neurons.encoding.membrane_readout` (e.g. the maximum or the last step) to get
    class scores.
    """

    def __init__(self, size: int | tuple[int, ...], tau: float | Tensor = 10.0, *, dt: float = 1.0,
                 learn_tau: bool = False) -> None:
        super().__init__()
        self.size = check_int_tuple("size", size, allow_int=True)
        self.dt = float(check_number("dt", dt, minimum=0, exclusive_minimum=True))
        log_tau = _per_neuron("tau", tau, self.size).log()
        if learn_tau:
            self.log_tau = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_tau", log_tau)

    @property
    def tau(self) -> Tensor:
        return self.log_tau.exp()

    def decay(self) -> Tensor:
        return torch.exp(-self.dt * torch.exp(-self.log_tau))

    def forward(self, x: Tensor, state: LIFState | None = None) -> tuple[Tensor, LIFState]:
        _check_sequence(x, self.size, state, type(self).__name__)
        decay = self.decay().to(x.dtype)  # the integrators follow x's dtype
        v = torch.zeros_like(x[:, 0]) if state is None else state.v
        out = []
        for t in range(x.shape[1]):
            v = decay * v + x[:, t]
            out.append(v)
        return torch.stack(out, 1), LIFState(v)
