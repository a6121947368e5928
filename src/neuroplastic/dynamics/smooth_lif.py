"""The recurrent LIF network as a smooth map, for measuring its dynamics (Lyapunov exponents, linearisation).

A spiking network's map is piecewise linear: the step ``H(h - threshold)`` has zero derivative almost
everywhere, so its Jacobian is ``diag(decay)`` (times the reset's factor) and its Lyapunov spectrum only
shows the leak; the recurrent weights never enter. We therefore analyse the network with the spike
smoothed by the sigmoid surrogate's primitive (``neuroplastic.neurons.Sigmoid(slope).smooth``), the same
map forward and backward, so the QR and the two-trajectory estimates of :mod:`neuroplastic.dynamics.lyapunov`
describe one and the same system (and agree, which the tests check). State = pre-reset membrane ``h``
``[N]``, input current ``I_t`` ``[N]``::

    s_t     = sigmoid(slope * (h_t - threshold))                (smoothed spike)
    v_t     = h_t - threshold * s_t                             (soft reset; "hard": h_t (1 - s_t) + v_reset s_t;
                                                                 "none": h_t)
    h_{t+1} = decay * v_t + W s_t + I_{t+1}                     W [N_post, N_pre]
    J_t     = diag(decay * dv/dh) + W diag(g_t),   g_t = slope * s_t (1 - s_t)

As ``slope -> inf`` this is exactly the network that :func:`neuroplastic.neurons.lif_step` simulates with
``x_{t+1} = I_{t+1} + W s_t`` (:func:`smooth_lif_step`, :func:`smooth_lif_tangent`,
:func:`network_lyapunov_spectrum`). The network is driven by its input (a reservoir has no autonomous
dynamics worth the name: without input a soft-reset LIF net falls silent), so these are the exponents of
the input-driven system, the quantity behind the echo-state property (largest exponent < 0).
:func:`lif_linearization` averages the Jacobian ``J_t`` along a driven run.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_finite, check_int, check_number, check_tensor
from neuroplastic.dynamics.lyapunov import LyapunovSpectrum, lyapunov_spectrum

__all__ = ["RESET_MODES", "check_lif_network", "smooth_lif_step", "smooth_lif_tangent", "network_lyapunov_spectrum",
           "lif_linearization"]

RESET_MODES = ("soft", "hard", "none")


def check_lif_network(weight: object, decay: object) -> int:
    """Check a recurrent LIF network's ``weight [N, N]`` and ``decay [N]`` (in (0, 1)); returns ``N``."""
    check_tensor("weight", weight, ("N", "N"))
    n = weight.shape[0]  # type: ignore[union-attr]
    if weight.shape[1] != n:  # type: ignore[union-attr]
        raise ValueError(f"weight must be square [N, N], got {list(weight.shape)}")  # type: ignore[union-attr]
    if isinstance(decay, Tensor):
        check_tensor("decay", decay, (n,))
        if bool(((decay <= 0) | (decay >= 1)).any()):
            raise ValueError("decay must lie in (0, 1) (decay = exp(-dt / tau) with tau > 0)")
    else:
        raise TypeError(f"decay must be a tensor [N] (use neurons.decay_from_tau), got {type(decay).__name__}")
    return n


def _reset_derivative(h: Tensor, s: Tensor, g: Tensor, threshold: float, reset: str, v_reset: float) -> Tensor:
    """``d v / d h`` of the smooth reset."""
    if reset == "soft":
        return 1.0 - threshold * g
    if reset == "hard":
        return 1.0 - s - h * g + v_reset * g
    return torch.ones_like(h)


def smooth_lif_step(
    h: Tensor,
    current: Tensor,
    weight: Tensor,
    decay: Tensor,
    *,
    threshold: float = 1.0,
    slope: float = 10.0,
    reset: str = "soft",
    v_reset: float = 0.0,
) -> Tensor:
    """One step of the sigmoid-smoothed recurrent LIF map (module docstring): ``h [..., N]`` -> ``h' [..., N]``.

    ``current`` ``[..., N]`` is the external input ``I_{t+1}``; ``weight`` ``[N_post, N_pre]``; ``decay``
    ``[N]``. ``s = sigmoid(slope (h - threshold))``; ``v`` = reset(``h``, ``s``);
    ``h' = decay * v + s @ weight.T + current``.
    """
    s = torch.sigmoid(slope * (h - threshold))
    if reset == "soft":
        v = h - threshold * s
    elif reset == "hard":
        v = h * (1.0 - s) + v_reset * s
    elif reset == "none":
        v = h
    else:
        raise ValueError(f"reset must be one of {RESET_MODES}, got {reset!r}")
    return decay * v + s @ weight.T + current


def smooth_lif_tangent(
    h: Tensor,
    weight: Tensor,
    decay: Tensor,
    vectors: Tensor,
    *,
    threshold: float = 1.0,
    slope: float = 10.0,
    reset: str = "soft",
    v_reset: float = 0.0,
) -> Tensor:
    """``J(h) @ vectors`` of :func:`smooth_lif_step` at ``h`` ``[N]``, ``vectors`` ``[N, k]`` -> ``[N, k]``.

    ``J = diag(decay * dv/dh) + W diag(g)``, ``g = slope * s (1 - s)`` (the input current does not enter).
    """
    s = torch.sigmoid(slope * (h - threshold))
    g = slope * s * (1.0 - s)
    diag = decay * _reset_derivative(h, s, g, threshold, reset, v_reset)
    return diag[:, None] * vectors + weight @ (g[:, None] * vectors)


def network_lyapunov_spectrum(
    weight: Tensor,
    decay: Tensor,
    currents: Tensor,
    k: int = 1,
    *,
    warmup: int = 100,
    threshold: float = 1.0,
    slope: float = 10.0,
    reset: str = "soft",
    v_reset: float = 0.0,
    generator: torch.Generator | None = None,
    return_running: bool = False,
) -> LyapunovSpectrum:
    """The ``k`` largest Lyapunov exponents (per step) of the smooth LIF network driven by ``currents``.

    ``currents`` ``[T, N]`` (``T > warmup``; ``T - warmup`` QR steps after ``warmup`` steps from ``h = 0``).
    Uses the analytic tangent :func:`smooth_lif_tangent`; computed in the dtype of ``weight``.
    """
    n = check_lif_network(weight, decay)
    check_tensor("currents", currents, ("T", n))
    check_choice("reset", reset, RESET_MODES)
    if currents.shape[0] <= warmup:
        raise ValueError(f"currents has {currents.shape[0]} steps, not more than warmup={warmup}")
    kw = dict(threshold=threshold, slope=slope, reset=reset, v_reset=v_reset)

    def step(h: Tensor, u: Tensor) -> Tensor:
        return smooth_lif_step(h, u, weight, decay, **kw)

    def tangent(h: Tensor, u: Tensor | None, q: Tensor) -> Tensor:
        return smooth_lif_tangent(h, weight, decay, q, **kw)

    return lyapunov_spectrum(step, weight.new_zeros(n), currents.shape[0] - warmup, k, inputs=currents,
                             warmup=warmup, tangent=tangent, generator=generator, return_running=return_running)


def lif_linearization(
    weight: Tensor,
    decay: Tensor,
    currents: Tensor,
    *,
    warmup: int = 100,
    threshold: float = 1.0,
    slope: float = 10.0,
    reset: str = "soft",
    v_reset: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """The smooth LIF map's Jacobian averaged over a run driven by ``currents`` ``[T, N]``.

    Returns ``(A [N, N], gain [N])`` with ``gain`` the mean of ``g_t = slope s_t (1 - s_t)`` and ``A`` the mean
    of ``J_t = diag(decay * dv/dh) + W diag(g_t)`` over the steps after ``warmup``.
    """
    n = check_lif_network(weight, decay)
    check_tensor("decay", decay, (n,), like=weight, like_name="weight")
    check_tensor("currents", currents, ("T", n), like=weight, like_name="weight")
    check_choice("reset", reset, RESET_MODES)
    check_int("warmup", warmup, minimum=0)
    check_number("threshold", threshold)
    check_number("slope", slope, minimum=0, exclusive_minimum=True)
    check_number("v_reset", v_reset)
    check_finite("weight", weight)
    check_finite("currents", currents)
    if currents.shape[0] <= warmup:
        raise ValueError(f"currents has {currents.shape[0]} steps, not more than warmup={warmup}")
    h = weight.new_zeros(n)
    gain_sum = weight.new_zeros(n)
    diag_sum = weight.new_zeros(n)
    with torch.no_grad():
        for t in range(currents.shape[0]):
            if t >= warmup:
                s = torch.sigmoid(slope * (h - threshold))
                g = slope * s * (1.0 - s)
                gain_sum += g
                diag_sum += decay * _reset_derivative(h, s, g, threshold, reset, v_reset)
            h = smooth_lif_step(h, currents[t], weight, decay, threshold=threshold, slope=slope, reset=reset,
                                v_reset=v_reset)
    count = currents.shape[0] - warmup
    gain = gain_sum / count
    return torch.diag(diag_sum / count) + weight * gain[None, :], gain
