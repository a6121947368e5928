"""Leaky integrate-and-fire dynamics as pure step functions: LIF, adaptive-threshold LIF, reset modes, MPR.

One time step of a discrete-time LIF neuron (the form used by surrogate-gradient SNNs; e.g. Neftci et al.
2019, Wu et al. 2018 STBP):

    h      = decay * v + x                          (charge; decay = exp(-dt / tau))
    spike  = H(h - threshold)                       (fire; with MPR: H(mpr(h) - threshold))
    v'     = h * (1 - spike) + v_reset * spike      (reset "hard": to v_reset)
           = h - threshold * spike                  (reset "soft": subtract the threshold)
           = h                                      (reset "none")

``H`` is the Heaviside step with a surrogate gradient (:mod:`neuroplastic.neurons.surrogates`). With
``detach_reset=True`` the spike in the reset term is detached, so no gradient flows through the reset
(Zenke & Vogels 2021 found this helps; SpikingJelly's ``detach_reset``).

Soft reset and the membrane potential rectifier are from Guo et al. 2022, "Reducing Information Loss for
Spiking Neural Networks" (ECCV). The soft reset keeps the part of the membrane potential above the threshold
(a "dynamic reset potential" ``h - threshold``) instead of discarding it. The MPR redistributes the membrane
potential towards the spike values 0 and 1 before the firing function, which reduces the quantization error
the surrogate gradient sees; see :func:`membrane_rectifier` for the equation.

Shapes: ``v, x: [..., N]`` (usually ``[B, N]``); ``decay``, ``threshold``: Python numbers, 0-d tensors or
``[N]`` tensors (per neuron). All functions are differentiable in every tensor argument.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_number, check_values
from neuroplastic.neurons.surrogates import Surrogate, get_surrogate

__all__ = ["RESETS", "MPR_K", "lif_step", "alif_step", "decay_from_tau", "membrane_rectifier"]

RESETS = ("hard", "soft", "none")
MPR_K = 3.0
"""Steepness K of the rectifier's middle segment (Guo et al. 2022)."""


def _check_per_neuron(name: str, value: Tensor | float, n: int) -> None:
    """A number (not NaN), a 0-d tensor or a per-neuron ``[N]`` (or ``[1]``) tensor: what the step functions take."""
    if isinstance(value, Tensor) and not value.is_floating_point():
        raise ValueError(f"{name} must be a number or a floating-point tensor, got dtype {value.dtype}")
    check_values(name, value, finite=False)  # a number or a tensor, not NaN (a bool is no number)
    if isinstance(value, Tensor) and value.dim() > 0 and (value.dim() > 1 or value.shape[0] not in (1, n)):
        raise ValueError(f"{name} must be a number, a 0-d tensor or a per-neuron [N={n}] tensor, "
                         f"got shape {list(value.shape)}")


def _check_result_dtype(name: str, value: object, x: Tensor) -> None:
    """Spikes come out in ``x``'s dtype: a tensor argument of a wider floating dtype (which would promote them)
    is refused."""
    if isinstance(value, Tensor) and torch.promote_types(value.dtype, x.dtype) != x.dtype:
        raise ValueError(f"{name} has dtype {value.dtype}, wider than x's {x.dtype} (the spikes and the membrane "
                         f"would not be in x's dtype): convert one to the other")


def _check_input(x: object) -> None:
    """The input current of a step function: a floating-point tensor (spikes come out in its dtype)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")


def _check_state(name: str, state: Tensor, x: Tensor) -> None:
    """A state (``v`` or ``b``) must broadcast to ``x``'s shape: a rule of the step functions only."""
    if not isinstance(state, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(state).__name__}")
    try:
        shape = torch.broadcast_shapes(state.shape, x.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape:
        raise ValueError(f"{name} of shape {list(state.shape)} does not match x of shape {list(x.shape)}")
    if state.device != x.device:
        raise ValueError(f"{name} is on {state.device} but x is on {x.device}: move one to the other")
    _check_result_dtype(name, state, x)


def decay_from_tau(tau: Tensor | float, dt: float = 1.0) -> Tensor:
    """The per-step decay of a leaky unit with time constant ``tau``: ``exp(-dt / tau)``.

    ``tau``: a number or a tensor (e.g. ``[N]`` per neuron), > 0; ``dt`` > 0, in the same unit. Returns a
    tensor of ``tau``'s shape (float32 for a Python number), differentiable in ``tau``.
    """
    check_number("dt", dt, minimum=0, exclusive_minimum=True)
    if isinstance(tau, Tensor) and tau.dtype == torch.bool:
        raise TypeError("tau (a time constant) must be a number or a tensor of numbers, got a bool tensor")
    check_values("tau (a time constant)", tau, minimum=0, exclusive_minimum=True, finite=False)
    if isinstance(tau, Tensor):
        return torch.exp(-dt / tau)
    return torch.tensor(math.exp(-dt / tau))


def membrane_rectifier(h: Tensor, threshold: Tensor | float = 1.0, k: float = MPR_K) -> Tensor:
    """Guo et al. 2022's membrane potential rectifier (MPR), scaled to a firing threshold.

    In the paper the threshold is 0.5 and the rectifier is, for the membrane potential ``u``:

        phi(u) = -(1 - u)^(1/3) + 1                            for u < 0
        phi(u) = tanh(K (u - 1/2)) / (2 tanh(K / 2)) + 1/2     for 0 <= u <= 1
        phi(u) = u^(1/3)                                       for u > 1

    with K = 3. ``phi`` is continuous, increasing, fixes 0, 1/2 and 1, squeezes ``[0, 1]`` towards its ends
    and compresses the tails, so values move towards the spike levels 0 and 1. For a threshold ``theta``
    we apply it to ``u = h / (2 theta)``:  ``mpr(h) = 2 theta phi(h / (2 theta))``, so ``mpr(theta) = theta``
    and ``H(mpr(h) - theta) = H(h - theta)``: the spikes are unchanged and only the surrogate gradient
    (evaluated at ``mpr(h) - theta`` and multiplied by ``mpr'(h) = phi'(u)``) differs.

    K is :data:`MPR_K`. How the equation was checked against a public implementation:
    ``docs/results/snn-reset.md``.

    Shapes: ``h`` any ``[..., N]``; ``threshold`` a number, 0-d or ``[N]``.
    """
    two_theta = 2.0 * threshold
    u = h / two_theta
    low = 1.0 - (1.0 - u.clamp_max(0.0)).pow(1.0 / 3.0)
    mid = torch.tanh(k * (u.clamp(0.0, 1.0) - 0.5)) / (2.0 * math.tanh(k / 2.0)) + 0.5
    high = u.clamp_min(1.0).pow(1.0 / 3.0)
    phi = torch.where(u < 0, low, torch.where(u > 1, high, mid))
    return two_theta * phi


def _lif_step(v: Tensor, x: Tensor, decay: Tensor | float, threshold: Tensor | float, reset: str, v_reset: float,
              rectifier: bool, detach_reset: bool, surrogate: Surrogate) -> tuple[Tensor, Tensor]:
    """:func:`lif_step` without argument checks (arguments already validated)."""
    h = decay * v + x
    z = membrane_rectifier(h, threshold) if rectifier else h
    spike = surrogate(z - threshold)
    s = spike.detach() if detach_reset else spike
    if reset == "soft":
        v_new = h - threshold * s
    elif reset == "hard":
        v_new = h * (1.0 - s) + v_reset * s
    else:
        v_new = h
    return spike, v_new


def lif_step(v: Tensor, x: Tensor, decay: Tensor | float, threshold: Tensor | float = 1.0, *,
             reset: str = "soft", v_reset: float = 0.0, rectifier: bool = False, detach_reset: bool = False,
             surrogate: str | Surrogate = "fast_sigmoid") -> tuple[Tensor, Tensor]:
    """One step of a leaky integrate-and-fire neuron; returns ``(spike, v')``.

    Equations (see the module docstring): ``h = decay * v + x``; ``spike = H(h - threshold)`` (with
    ``rectifier=True``, Guo et al. 2022's MPR: ``H(mpr(h) - threshold)``, same spikes, other gradient);
    reset ``"hard"``: ``v' = h * (1 - spike) + v_reset * spike``, ``"soft"``: ``v' = h - threshold * spike``,
    ``"none"``: ``v' = h``. ``detach_reset`` stops the gradient through the spike in the reset term.

    Shapes: ``v, x: [B, N]`` (any ``[..., N]``; ``v`` may broadcast, e.g. a 0-d zero); ``decay``,
    ``threshold``: numbers, 0-d or ``[N]`` tensors. ``spike`` and ``v'`` have ``x``'s shape; spikes are
    0.0/1.0 in ``x``'s dtype. ``surrogate``: a name (``"fast_sigmoid"``, ``"atan"``, ``"triangle"``,
    ``"sigmoid"``) or a :class:`Surrogate`.
    """
    check_choice("reset", reset, RESETS)
    surrogate = get_surrogate(surrogate)
    _check_input(x)
    _check_state("v", v, x)
    n = x.shape[-1] if x.dim() else 1
    check_values("threshold", threshold, minimum=0, exclusive_minimum=True)
    _check_per_neuron("decay", decay, n)
    _check_per_neuron("threshold", threshold, n)
    for name, value in (("decay", decay), ("threshold", threshold)):
        _check_result_dtype(name, value, x)
    return _lif_step(v, x, decay, threshold, reset, float(v_reset), bool(rectifier), bool(detach_reset), surrogate)


def _alif_step(v: Tensor, b: Tensor, x: Tensor, decay: Tensor | float, rho: Tensor | float,
               threshold: Tensor | float, beta: Tensor | float, reset: str, v_reset: float, rectifier: bool,
               detach_reset: bool, surrogate: Surrogate) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`alif_step` without argument checks."""
    theta = threshold + beta * b
    spike, v_new = _lif_step(v, x, decay, theta, reset, v_reset, rectifier, detach_reset, surrogate)
    b_new = rho * b + (1.0 - rho) * spike
    return spike, v_new, b_new


def alif_step(v: Tensor, b: Tensor, x: Tensor, decay: Tensor | float, rho: Tensor | float,
              threshold: Tensor | float = 1.0, beta: Tensor | float = 1.8, *, reset: str = "soft",
              v_reset: float = 0.0, rectifier: bool = False, detach_reset: bool = False,
              surrogate: str | Surrogate = "fast_sigmoid") -> tuple[Tensor, Tensor, Tensor]:
    """One step of an adaptive-threshold LIF neuron (Bellec et al. 2018, LSNN); returns ``(spike, v', b')``.

    The threshold rises after each spike and relaxes back with its own time constant:

        theta  = threshold + beta * b                  (effective threshold from the adaptation b)
        h      = decay * v + x
        spike  = H(h - theta)                          (with MPR: H(mpr_theta(h) - theta))
        v'     = reset of h as in lif_step, with theta as the threshold ("soft": h - theta * spike)
        b'     = rho * b + (1 - rho) * spike           (rho = exp(-dt / tau_adapt))

    Shapes: ``v, b, x: [..., N]``; ``decay``, ``rho``, ``threshold``, ``beta``: numbers, 0-d or ``[N]``.
    ``threshold`` must be > 0 and ``beta`` >= 0 (so ``theta`` > 0 for ``b`` >= 0).
    """
    check_choice("reset", reset, RESETS)
    surrogate = get_surrogate(surrogate)
    _check_input(x)
    _check_state("v", v, x)
    _check_state("b", b, x)
    n = x.shape[-1] if x.dim() else 1
    check_values("threshold", threshold, minimum=0, exclusive_minimum=True)
    check_values("beta (an adaptation strength)", beta, minimum=0)
    for name, value in (("decay", decay), ("rho", rho), ("threshold", threshold), ("beta", beta)):
        _check_per_neuron(name, value, n)
        _check_result_dtype(name, value, x)
    return _alif_step(v, b, x, decay, rho, threshold, beta, reset, float(v_reset), bool(rectifier),
                      bool(detach_reset), surrogate)
