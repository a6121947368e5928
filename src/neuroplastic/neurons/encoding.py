"""Spike encoders (rate/Poisson, latency) and readouts (spike counts, membrane potentials).

Encoders turn a static input ``x: [B, ...]`` into a spike train ``[B, T, ...]`` (batch first, time second);
readouts turn a layer's output over time into ``[B, ...]`` scores.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_finite, check_int, check_number

__all__ = ["rate_encode", "latency_encode", "spike_count", "membrane_readout"]


def rate_encode(x: Tensor, steps: int, generator: torch.Generator | None = None, *, method: str = "bernoulli",
                max_rate: float = 1.0, dt: float = 1.0) -> Tensor:
    """Rate code: independent spikes at every step with a probability set by the input; ``[B, ...] -> [B, T, ...]``.

    ``method="bernoulli"``: ``x`` in ``[0, 1]`` is the probability of a spike per step (times ``max_rate``,
    at most 1). ``method="poisson"``: ``x >= 0`` is a firing rate (per unit of time, times ``max_rate``) of a
    Poisson process sampled every ``dt``: ``P(spike in a step) = 1 - exp(-x * max_rate * dt)``. Draws come
    from ``generator`` (on ``x``'s device). Returns 0.0/1.0 in ``x``'s dtype.
    """
    steps = check_int("steps", steps)
    method = check_choice("method", method, ("bernoulli", "poisson"))
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point tensor")
    if x.dim() < 1:
        raise ValueError(f"x must have a batch dimension [B, ...], got shape {list(x.shape)}")
    check_finite("x", x)
    check_number("max_rate", max_rate, minimum=0, exclusive_minimum=True)
    check_number("dt", dt, minimum=0, exclusive_minimum=True)
    if method == "bernoulli":
        p = x * max_rate
        if bool((p < 0).any()) or bool((p > 1).any()):
            raise ValueError("rate_encode(method='bernoulli') needs x * max_rate in [0, 1] (a probability per "
                             f"step); got values in [{p.min().item():.4g}, {p.max().item():.4g}]")
    else:
        if bool((x < 0).any()):
            raise ValueError(f"rate_encode(method='poisson') needs rates x >= 0, got minimum {x.min().item():.4g}")
        p = -torch.expm1(-x * (max_rate * dt))
    p = p.unsqueeze(1).expand(x.shape[0], steps, *x.shape[1:])
    u = torch.rand(p.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (u < p).to(x.dtype)


def latency_encode(x: Tensor, steps: int, *, threshold: float = 0.0, normalize: bool = False) -> Tensor:
    """Latency (time-to-first-spike) code: one spike per input, earlier for larger values; ``[B, ...] -> [B, T, ...]``.

    An input ``x`` in ``[0, 1]`` fires once at step ``round((1 - x) * (steps - 1))`` (``x = 1`` at step 0,
    values just above ``threshold`` near the end); inputs ``<= threshold`` never fire. With
    ``normalize=True``, each sample is first divided by its maximum. Deterministic.
    """
    steps = check_int("steps", steps)
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point tensor")
    if x.dim() < 1:
        raise ValueError(f"x must have a batch dimension [B, ...], got shape {list(x.shape)}")
    check_finite("x", x)
    if normalize:
        peak = x.reshape(x.shape[0], math.prod(x.shape[1:])).amax(1).clamp_min(torch.finfo(x.dtype).tiny)
        x = x / peak.view(-1, *([1] * (x.dim() - 1)))
    if bool((x < 0).any()) or bool((x > 1).any()):
        raise ValueError("latency_encode needs x in [0, 1] (or normalize=True); "
                         f"got values in [{x.min().item():.4g}, {x.max().item():.4g}]")
    when = torch.round((1.0 - x) * (steps - 1)).long()
    when = torch.where(x > threshold, when, torch.full_like(when, steps))  # steps = never
    time = torch.arange(steps, device=x.device).view(1, steps, *([1] * (x.dim() - 1)))
    return (when.unsqueeze(1) == time).to(x.dtype)


def spike_count(spikes: Tensor, dim: int = 1) -> Tensor:
    """Spikes summed over time: ``[B, T, ...] -> [B, ...]`` (differentiable; use as class scores)."""
    if not isinstance(spikes, Tensor):
        raise TypeError(f"spikes must be a torch.Tensor [B, T, ...], got {type(spikes).__name__}")
    if spikes.dim() < 2:
        raise ValueError(f"spikes must be a tensor [B, T, ...], got shape {list(spikes.shape)}")
    check_int("dim", dim, minimum=-spikes.dim(), maximum=spikes.dim() - 1)
    return spikes.sum(dim)


def membrane_readout(v: Tensor, reduce: str = "max") -> Tensor:
    """Scores from membrane potentials over time ``[B, T, ...] -> [B, ...]``: ``"max"``, ``"mean"`` or ``"last"``.

    Typically applied to a :class:`~neuroplastic.neurons.modules.LeakyReadout`'s output (a non-spiking leaky
    layer whose maximum or final potential is the class score).
    """
    reduce = check_choice("reduce", reduce, ("max", "mean", "last"))
    if not isinstance(v, Tensor):
        raise TypeError(f"v must be a torch.Tensor [B, T, ...], got {type(v).__name__}")
    if v.dim() < 2 or v.shape[1] == 0:
        raise ValueError(f"v must be a tensor [B, T, ...] with T >= 1, got shape {list(v.shape)}")
    if not v.is_floating_point():
        raise ValueError(f"v must be a floating-point tensor (membrane potentials), got dtype {v.dtype}")
    if reduce == "max":
        return v.amax(1)
    if reduce == "mean":
        return v.mean(1)
    return v[:, -1]

