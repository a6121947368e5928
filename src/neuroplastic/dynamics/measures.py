"""Measures of input-driven dynamics: a closed-form ridge readout, memory capacity, the largest Lyapunov
exponent from the Jacobians of a leaky rate network, and active information storage and transfer entropy.

- :func:`ridge_regression`: ``W = (X^T X + ridge I)^-1 X^T Y`` on centred samples, with an unpenalised bias,
  by ``torch.linalg.solve`` in float64.
- :func:`memory_capacity`: Jaeger 2002 ("Short term memory in echo state networks", GMD report 152)::

      MC = sum_{k=1..k_max} corr(u(t - k), yhat_k(t))^2

  one linear readout per delay ``k`` fitted on a training part of the states and measured on the held-out rest
  (after a washout). The input should be i.i.d. (Jaeger: uniform in (-0.8, 0.8)); an N-unit linear network has
  ``MC <= N``.
- :func:`jacobian_lyapunov_exponent`: the largest Lyapunov exponent of ``x_t = (1 - leak) x_{t-1} + leak
  f(...)`` along a driven trajectory, from its Jacobians ``J_t = (1 - leak) I + leak diag(s_t) W`` (``s_t`` the
  slopes ``f'`` at step ``t``): a tangent vector is pushed and renormalised every step, and
  ``lambda = mean_t log |J_t v_{t-1}|`` (per step).
- :func:`active_information_storage` and :func:`transfer_entropy`: Lizier, Prokopenko & Zomaya's measures of
  local computation, plug-in estimates on discrete (binned) series::

      AIS_X(k)    = I(x_{t+1}; x_t^(k))                       x_t^(k) = (x_{t-k+1}, ..., x_t)
      TE_{Y->X}(k) = I(x_{t+1}; y_t | x_t^(k))
                  = H(x_{t+1}, x_t^(k)) - H(x_t^(k)) - H(x_{t+1}, y_t, x_t^(k)) + H(y_t, x_t^(k))

  in bits, from the empirical joint frequencies (no bias correction). :func:`discretize` bins a real series
  into equal-width bins over its range. These are the library's own estimators (no dependency); on discrete
  series they compute what ``infomeasure``'s "discrete" approach computes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from neuroplastic._checks import check_finite, check_int, check_number, check_tensor

__all__ = ["MemoryCapacity", "ridge_regression", "memory_capacity", "jacobian_lyapunov_exponent", "discretize",
           "active_information_storage", "transfer_entropy"]


def ridge_regression(features: Tensor, targets: Tensor, ridge: float, *, bias: bool = True) -> Tensor:
    """Closed-form ridge regression: ``features [M, N]``, ``targets [M, D]`` -> ``W [N + 1, D]`` (the bias in
    the last row; ``[N, D]`` without ``bias``).

    With ``bias``, the bias is not penalised: on the centred samples ``Xc = X - mean(X)``, ``Yc = Y - mean(Y)``
    it solves ``(Xc^T Xc + ridge I) W = Xc^T Yc`` and sets ``bias = mean(Y) - mean(X) W``; without,
    ``(X^T X + ridge I) W = X^T Y``. In float64 (``torch.linalg.solve``), returned in float64. ``ridge``: a finite
    number >= 0 (0 only where the Gram matrix is invertible). Predict with ``features @ W[:-1] + W[-1]``.
    """
    check_tensor("features", features, ("M", "N"))
    check_tensor("targets", targets, (features.shape[0], "D"))
    check_number("ridge", ridge, minimum=0)
    if features.shape[0] == 0:
        raise ValueError("features must have at least one sample [M >= 1, N], got M = 0")
    if targets.device != features.device:
        raise ValueError(f"targets is on {targets.device} but features are on {features.device}")
    check_finite("features", features)
    check_finite("targets", targets)
    x, y = features.double(), targets.double()
    if bias:
        x_mean, y_mean = x.mean(0), y.mean(0)
        x, y = x - x_mean, y - y_mean
    gram = x.T @ x
    gram.diagonal().add_(ridge)
    try:
        w = torch.linalg.solve(gram, x.T @ y)
    except torch.linalg.LinAlgError:
        raise ValueError(f"the ridge regression is singular with ridge={ridge!r}: use ridge > 0") from None
    return torch.cat([w, (y_mean - x_mean @ w)[None]], dim=0) if bias else w


class MemoryCapacity(NamedTuple):
    """The result of :func:`memory_capacity`: ``total`` (float) and ``per_delay [k_max]`` (the squared
    correlation for delays 1..k_max, float64)."""

    total: float
    per_delay: Tensor


def memory_capacity(states: Tensor, inputs: Tensor, k_max: int, *, washout: int = 0, train_fraction: float = 0.5,
                    test_steps: int | None = None, ridge: float = 1e-6) -> MemoryCapacity:
    """Jaeger's memory capacity of a reservoir run: ``states [T, N]`` driven by the last ``T`` entries of
    ``inputs [P + T]`` (``states[t]`` has seen ``inputs[P + t]``; the first ``P >= 0`` entries are earlier inputs
    the states never saw, used only as delayed targets).

    The samples are the steps ``t >= washout`` whose delayed inputs ``u(t - k)``, ``k = 1..k_max``, all exist
    (``P + t >= k_max``); the first ``train_fraction`` of them (or all but the last ``test_steps``) fit the
    readouts (:func:`ridge_regression`, all delays in one solve), the rest measure
    ``corr(u(t - k), yhat_k(t))^2``; ``MC`` is their sum. ``k_max`` >= 1, ``washout`` >= 0,
    ``train_fraction`` in (0, 1), ``ridge`` >= 0; at least 2 training and 2 test samples.
    """
    check_tensor("states", states, ("T", "N"))
    check_tensor("inputs", inputs, ("P + T",))
    check_int("k_max", k_max)
    check_int("washout", washout, minimum=0)
    check_number("train_fraction", train_fraction, minimum=0, maximum=1, exclusive_minimum=True,
                 exclusive_maximum=True)
    if test_steps is not None:
        check_int("test_steps", test_steps, minimum=2)
    if inputs.shape[0] < states.shape[0]:
        raise ValueError(f"inputs must have at least as many steps as states ({states.shape[0]}), got "
                         f"{inputs.shape[0]}")
    check_finite("inputs", inputs)
    prefix = inputs.shape[0] - states.shape[0]
    start = max(washout, k_max - prefix)
    samples = states.shape[0] - start
    train = samples - test_steps if test_steps is not None else int(round(samples * train_fraction))
    if train < 2 or samples - train < 2:
        raise ValueError(f"memory_capacity needs >= 2 training and >= 2 test steps from step {start} on "
                         f"(washout {washout}, k_max {k_max}); states has {states.shape[0]} steps")
    u = inputs.double()
    index = torch.arange(start, states.shape[0], device=states.device) + prefix
    delays = torch.arange(1, k_max + 1, device=states.device)
    targets = u[index[:, None] - delays[None, :]]  # [samples, k_max]: u(t - k)
    x = states[start:].double()
    w = ridge_regression(x[:train], targets[:train], ridge)
    pred = x[train:] @ w[:-1] + w[-1]
    truth = targets[train:]
    pc = pred - pred.mean(0)
    tc = truth - truth.mean(0)
    denom = (pc * pc).sum(0) * (tc * tc).sum(0)
    r2 = torch.where(denom > 0, (pc * tc).sum(0) ** 2 / denom.clamp_min(1e-300), torch.zeros_like(denom))
    return MemoryCapacity(float(r2.sum()), r2)


def jacobian_lyapunov_exponent(weight: Tensor, slopes: Tensor, *, leak: float = 1.0, washout: int = 0,
                               generator: torch.Generator | None = None) -> Tensor:
    """The largest Lyapunov exponent (per step) of a driven leaky rate network, from its Jacobians.

    ``J_t = (1 - leak) I + leak diag(slopes[:, t]) W`` for ``weight`` ``W [N, N]`` and ``slopes [B, T, N]`` (the
    derivatives ``f'`` along each trajectory, e.g. from :meth:`EchoStateNetwork.run`); a random unit tangent
    vector per trajectory (from ``generator``, default seed 0) is pushed through the first ``washout`` steps
    to align it, then ``lambda = mean_{t >= washout} log |J_t v_{t-1}|`` with ``v`` renormalised every step.
    Returns ``[B]`` (float64). A linear map ``x' = A x`` (``leak`` 1, slopes 1) gives ``log rho(A)``.
    """
    check_tensor("weight", weight, ("N", "N"))
    check_tensor("slopes", slopes, ("B", "T", weight.shape[0]))
    check_number("leak", leak, minimum=0, maximum=1, exclusive_minimum=True)
    check_int("washout", washout, minimum=0)
    check_finite("slopes", slopes)
    batch, steps, n = slopes.shape
    if steps <= washout:
        raise ValueError(f"slopes has {steps} steps, not more than washout = {washout}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    v = torch.randn(batch, n, generator=gen, dtype=torch.float64).to(slopes.device)
    v = v / v.norm(dim=1, keepdim=True)
    w_t = weight.double().T
    s = slopes.double()
    total = torch.zeros(batch, dtype=torch.float64, device=slopes.device)
    for t in range(steps):
        v = (1 - leak) * v + leak * s[:, t] * (v @ w_t)
        norm = v.norm(dim=1, keepdim=True)
        if t >= washout:
            total += torch.log(norm.squeeze(1).clamp_min(1e-300))
        v = v / norm.clamp_min(1e-300)
    return total / (steps - washout)


def discretize(series: Tensor, bins: int) -> Tensor:
    """Equal-width binning of a real ``series [..., T]`` into ``bins`` states ``0..bins-1`` over its own range
    (per series, along the last dimension); a constant series maps to 0. Returns int64."""
    check_tensor("series", series, None)
    check_int("bins", bins, minimum=2)
    check_finite("series", series)
    low = series.amin(-1, keepdim=True)
    width = (series.amax(-1, keepdim=True) - low).clamp_min(1e-300)
    return ((series - low) / width * bins).long().clamp(0, bins - 1)


def _check_discrete(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of non-negative ints [T], got {type(x).__name__}")
    if x.dim() != 1 or x.dtype not in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool):
        raise ValueError(f"{name} must be a 1-D integer tensor [T] (use discretize), got {x.dtype} "
                         f"{list(x.shape)}")
    x = x.long()
    if x.numel() and int(x.min()) < 0:
        raise ValueError(f"{name} must hold non-negative states, got {int(x.min())}")
    return x


def _entropy(*columns: Tensor) -> float:
    """Plug-in joint entropy (bits) of integer columns ``[M]`` each."""
    joint = torch.stack(columns, dim=1)
    counts = torch.unique(joint, dim=0, return_counts=True)[1].double()
    p = counts / counts.sum()
    return float(-(p * torch.log2(p)).sum())


def _history(x: Tensor, k: int) -> Tensor:
    """``[M]`` codes of ``(x_{t-k+1}, ..., x_t)`` for ``t = k-1 .. T-2`` (each followed by a ``x_{t+1}``)."""
    base = int(x.max()) + 1
    steps = x.shape[0] - k
    code = torch.zeros(steps, dtype=torch.int64, device=x.device)
    for j in range(k):
        code = code * base + x[j:j + steps]
    return code


def active_information_storage(series: Tensor, k: int = 1) -> float:
    """Active information storage ``I(x_{t+1}; x_t^(k))`` in bits of a discrete ``series [T]`` (ints >= 0),
    plug-in (Lizier et al. 2012); ``k`` >= 1 the history length; ``T > k + 1``."""
    x = _check_discrete("series", series)
    check_int("k", k)
    if x.shape[0] <= k + 1:
        raise ValueError(f"series must have more than k + 1 = {k + 1} steps, got {x.shape[0]}")
    past = _history(x, k)
    nxt = x[k:]
    return _entropy(nxt) + _entropy(past) - _entropy(nxt, past)


def transfer_entropy(source: Tensor, target: Tensor, k: int = 1) -> float:
    """Transfer entropy ``I(x_{t+1}; y_t | x_t^(k))`` in bits from a discrete ``source`` ``y`` to a
    ``target`` ``x`` (both ``[T]``, ints >= 0), plug-in (Schreiber 2000); ``k`` >= 1 the target's history."""
    x = _check_discrete("target", target)
    y = _check_discrete("source", source)
    check_int("k", k)
    if y.shape != x.shape:
        raise ValueError(f"source and target must have one length, got {y.shape[0]} and {x.shape[0]}")
    if x.shape[0] <= k + 1:
        raise ValueError(f"target must have more than k + 1 = {k + 1} steps, got {x.shape[0]}")
    past = _history(x, k)
    nxt = x[k:]
    src = y[k - 1:-1]
    value = _entropy(nxt, past) - _entropy(past) - _entropy(nxt, src, past) + _entropy(src, past)
    return max(value, 0.0) if math.isclose(value, 0.0, abs_tol=1e-12) else value
