"""Lyapunov exponents of any discrete-time map ``x_{t+1} = f(x_t[, u_t])`` (state ``[D]``).

- :func:`lyapunov_spectrum`: the ``k`` largest exponents by the QR (Benettin) method::

      Q_0 = orthonormal [D, k];  Z_t = J(x_t) Q_t;  Q_{t+1} R_t = qr(Z_t)
      lambda_i = (1 / (T dt)) * sum_t log |R_t[i, i]|

  with the tangent map ``J Q`` from ``torch.func.jvp`` (vmapped over the ``k`` columns), the full Jacobian
  from ``torch.func.jacrev``, ``torch.autograd.functional.jacobian`` (works with any ``autograd.Function``),
  or an analytic ``tangent(x, u, Q)`` you pass.
- :func:`perturbation_lyapunov_exponent`: the largest exponent from two trajectories ``x`` and
  ``y = x + eps * d``, renormalised to distance ``eps`` after every ``renormalize_every`` steps::

      lambda_1 = (1 / (T dt)) * sum_renormalisations log(|y - x| / eps)

Exponents are per step (``dt = 1``) unless ``dt`` is given. Known values used in the tests: a linear map
``x' = A x`` has ``log |eig(A)|``; the logistic map at ``r = 4`` has ``ln 2``; the Henon map (1.4, 0.3) has
about ``0.42`` and ``-1.62`` (their sum is exactly ``ln 0.3``). For spiking networks see
:mod:`neuroplastic.dynamics.smooth_lif`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_finite, check_number, check_positive, check_tensor

__all__ = ["JACOBIAN_METHODS", "LyapunovSpectrum", "lyapunov_spectrum", "perturbation_lyapunov_exponent"]

JACOBIAN_METHODS = ("jvp", "jacrev", "autograd")

Step = Callable[..., Tensor]
Tangent = Callable[[Tensor, "Tensor | None", Tensor], Tensor]


class LyapunovSpectrum(NamedTuple):
    """The result of :func:`lyapunov_spectrum`.

    Attributes:
        exponents: ``[k]`` the estimated exponents, largest first (per unit of ``dt``).
        running: ``[T, k]`` the running estimates after each step (convergence), or None.
        state: ``[D]`` the final state of the trajectory.
    """

    exponents: Tensor
    running: Tensor | None
    state: Tensor


def _check_map_args(x0: object, num_steps: object, inputs: object, warmup: object, dt: object) -> None:
    check_tensor("x0", x0, ("D",))
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    check_number("dt", dt, minimum=0, exclusive_minimum=True)  # (an infinite dt would make every exponent 0)
    check_finite("x0", x0)  # type: ignore[arg-type]
    if inputs is not None:
        if not isinstance(inputs, Tensor) or inputs.dim() < 1:
            raise TypeError(f"inputs must be a tensor [T, ...] (one input per step) or None, got {inputs!r}")
        if inputs.shape[0] < warmup + num_steps:
            raise ValueError(f"inputs has {inputs.shape[0]} steps, fewer than warmup + num_steps = "
                             f"{warmup + num_steps}")


def _tangent_map(step: Step, method: str, driven: bool) -> Callable[[Tensor, Tensor | None, Tensor],
                                                                     tuple[Tensor, Tensor]]:
    """A function ``(x, u, vectors [D, k]) -> (f(x, u), J(x, u) @ vectors)`` for the chosen method."""

    def call(x: Tensor, u: Tensor | None) -> Tensor:
        return step(x, u) if driven else step(x)

    if method == "jvp":
        def push_one(v: Tensor, x: Tensor, u: Tensor | None) -> Tensor:
            return torch.func.jvp(lambda y: call(y, u), (x,), (v,))[1]

        push = torch.func.vmap(push_one, in_dims=(1, None, None), out_dims=1)
        return lambda x, u, q: (call(x, u), push(q, x, u))
    if method == "jacrev":
        jac = torch.func.jacrev(call)
        return lambda x, u, q: (call(x, u), jac(x, u) @ q)

    def autograd(x: Tensor, u: Tensor | None, q: Tensor) -> tuple[Tensor, Tensor]:
        return call(x, u).detach(), torch.autograd.functional.jacobian(lambda y: call(y, u), x) @ q

    return autograd


def lyapunov_spectrum(
    step: Step,
    x0: Tensor,
    num_steps: int,
    k: int | None = None,
    *,
    inputs: Tensor | None = None,
    warmup: int = 0,
    method: str = "jvp",
    tangent: Tangent | None = None,
    dt: float = 1.0,
    generator: torch.Generator | None = None,
    initial_vectors: Tensor | None = None,
    return_running: bool = False,
) -> LyapunovSpectrum:
    """The ``k`` largest Lyapunov exponents of ``x_{t+1} = step(x_t)`` (or ``step(x_t, inputs[t])``).

    Benettin et al. 1980 / Shimada & Nagashima 1979, the QR method: ``k`` tangent vectors are pushed through
    the Jacobian and re-orthonormalised at every step; the exponents are the time averages of
    ``log |diag R|`` (see the module docstring). Shapes: ``x0`` ``[D]`` (use float64 for accuracy),
    ``inputs`` ``[T, ...]`` with ``T >= warmup + num_steps`` (``inputs[t]`` drives step ``t``; the first
    ``warmup`` steps only move the state onto the attractor).

    Args:
        step: the map; a pure function of tensors for ``method`` "jvp"/"jacrev" (``torch.func``).
        k: how many exponents (default ``D``).
        method: "jvp" (forward mode, vmapped over the ``k`` vectors: cheap for ``k << D``), "jacrev" (full
            Jacobian, reverse mode) or "autograd" (``torch.autograd.functional.jacobian``, for maps built
            from ``autograd.Function``s that ``torch.func`` cannot transform).
        tangent: analytic ``tangent(x, u, Q) -> J(x, u) @ Q`` (``u`` is None without inputs); overrides
            ``method``.
        dt: time per step; the exponents are divided by it.
        generator / initial_vectors: the initial tangent vectors ``[D, k]`` (orthonormalised), or a generator
            to draw them (default: a fixed seed 0).
        return_running: also return the running estimates ``[num_steps, k]``.
    """
    _check_map_args(x0, num_steps, inputs, warmup, dt)
    check_choice("method", method, JACOBIAN_METHODS)
    dim = x0.shape[0]
    k = dim if k is None else k
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= dim:
        raise ValueError(f"k must be an int in 1..{dim} (the state size), got {k!r}")
    if initial_vectors is None:
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        initial_vectors = torch.randn(dim, k, generator=gen, dtype=x0.dtype).to(x0.device)
    else:
        check_tensor("initial_vectors", initial_vectors, (dim, k))
    q = torch.linalg.qr(initial_vectors.to(x0))[0]
    x = x0.detach()
    with torch.no_grad():
        for t in range(warmup):
            x = step(x, inputs[t]) if inputs is not None else step(x)
    push = _tangent_map(step, method, inputs is not None) if tangent is None else None
    log_sums = torch.zeros(k, dtype=x0.dtype, device=x0.device)
    running = torch.empty(num_steps, k, dtype=x0.dtype) if return_running else None
    for t in range(num_steps):
        u = inputs[warmup + t] if inputs is not None else None
        if tangent is not None:
            with torch.no_grad():
                y = step(x, u) if u is not None else step(x)
                z = tangent(x, u, q)
        else:
            y, z = push(x, u, q)  # type: ignore[misc]
        q, r = torch.linalg.qr(z.detach())
        log_sums += torch.log(torch.diagonal(r).abs())
        x = y.detach()
        if running is not None:
            running[t] = log_sums.cpu() / ((t + 1) * dt)
    exponents = (log_sums / (num_steps * dt)).sort(descending=True).values
    return LyapunovSpectrum(exponents, running, x)


def perturbation_lyapunov_exponent(
    step: Step,
    x0: Tensor,
    num_steps: int,
    *,
    inputs: Tensor | None = None,
    warmup: int = 0,
    eps: float = 1e-8,
    renormalize_every: int = 1,
    dt: float = 1.0,
    generator: torch.Generator | None = None,
) -> float:
    """The largest Lyapunov exponent from two nearby trajectories (Benettin et al. 1976).

    ``y_0 = x_0 + eps * d`` (``d`` a random unit vector from ``generator``, default seed 0); both trajectories
    follow ``step`` with the same inputs; every ``renormalize_every`` steps the distance ``|y - x|`` is
    logged and ``y`` is pulled back to distance ``eps`` along ``y - x``. Returns
    ``sum log(|y - x| / eps) / (num_steps * dt)``. Use float64 and an ``eps`` far above its rounding error
    yet small against the attractor (1e-8 for states of order 1).
    """
    _check_map_args(x0, num_steps, inputs, warmup, dt)
    check_positive("eps", eps)
    if isinstance(renormalize_every, bool) or not isinstance(renormalize_every, int) or renormalize_every < 1:
        raise ValueError(f"renormalize_every must be an int >= 1, got {renormalize_every!r}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    with torch.no_grad():
        x = x0.detach()
        for t in range(warmup):
            x = step(x, inputs[t]) if inputs is not None else step(x)
        d = torch.randn(x.shape[0], generator=gen, dtype=x.dtype).to(x.device)
        y = x + eps * d / d.norm()
        total = 0.0
        for t in range(num_steps):
            u = inputs[warmup + t] if inputs is not None else None
            x = step(x, u) if u is not None else step(x)
            y = step(y, u) if u is not None else step(y)
            if (t + 1) % renormalize_every == 0 or t == num_steps - 1:
                gap = (y - x).norm()
                if not torch.isfinite(gap) or gap == 0:
                    raise ValueError(f"the two trajectories {'coincide' if gap == 0 else 'diverged'} at step "
                                     f"{t}; change eps ({eps}) or renormalize_every ({renormalize_every})")
                total += math.log(float(gap) / eps)
                y = x + (y - x) * (eps / gap)
    return total / (num_steps * dt)

