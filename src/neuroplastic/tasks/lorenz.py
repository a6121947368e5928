"""The Lorenz system as a time-series prediction task: RK4 integration, normalisation, prediction windows.

Lorenz 1963, "Deterministic nonperiodic flow"; used as a chaotic prediction benchmark for recurrent spiking
networks by Chakraborty & Mukhopadhyay et al. 2024, "Sparse Spiking Neural Network: Exploiting
Heterogeneity in Timescales for Pruning Recurrent SNN" (ICLR). The flow::

    dx/dt = sigma * (y - x)
    dy/dt = x * (rho - z) - y
    dz/dt = x * y - beta * z            (sigma, rho, beta) = (10, 28, 8/3): chaotic, largest exponent ~0.906

is integrated with the classical fourth-order Runge-Kutta scheme at step ``dt`` (default 0.01); every
``subsample``-th point is kept, so consecutive samples are ``dt * subsample`` time units apart.

- :func:`lorenz_rhs`, :func:`rk4_step`: the vector field and one RK4 step (any batch shape ``[..., 3]``).
- :func:`lorenz_series`: one trajectory ``[T, 3]`` from a seeded random initial condition, after a transient
  that brings it onto the attractor.
- :func:`normalize_series`: z-score per component (statistics from the training series, reused on the test).
- :func:`prediction_windows`: sliding windows ``[B, window, D]`` with the value ``horizon`` samples after
  each window's last sample as the target ``[B, D]`` (next-step prediction is ``horizon=1``).
- :func:`lorenz_prediction_data`: a normalised training series and held-out test series (other initial
  conditions), with inputs and ``horizon``-step-ahead targets aligned step by step (for recurrent models).
- :func:`observe_components`: keep only some of ``x, y, z`` as inputs and targets (partial observation).
- :func:`nrmse`: root-mean-square error divided by the targets' standard deviation.

Every random draw takes a CPU ``torch.Generator``; series are computed in float64 on the CPU, then cast and
moved to ``dtype``/``device``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from neuroplastic._checks import check_int, check_positive, check_tensor
from neuroplastic.tasks._common import DeviceLike, check_generator, resolve_device

__all__ = [
    "LORENZ_SIGMA", "LORENZ_RHO", "LORENZ_BETA", "LORENZ_MAX_EXPONENT",
    "lorenz_rhs", "rk4_step", "lorenz_series", "normalize_series", "prediction_windows",
    "LorenzData", "lorenz_prediction_data", "observe_components", "nrmse",
]

LORENZ_SIGMA = 10.0
LORENZ_RHO = 28.0
LORENZ_BETA = 8.0 / 3.0
LORENZ_MAX_EXPONENT = 0.9056  # per time unit, for the classical parameters (Sprott 2003)


def lorenz_rhs(state: Tensor, sigma: float = LORENZ_SIGMA, rho: float = LORENZ_RHO,
               beta: float = LORENZ_BETA) -> Tensor:
    """The Lorenz vector field ``d(x, y, z)/dt`` at ``state`` ``[..., 3]`` (returns ``[..., 3]``)."""
    x, y, z = state.unbind(-1)
    return torch.stack((sigma * (y - x), x * (rho - z) - y, x * y - beta * z), dim=-1)


def rk4_step(rhs: Callable[[Tensor], Tensor], state: Tensor, dt: float) -> Tensor:
    """One classical Runge-Kutta step of ``d state/dt = rhs(state)``::

        k1 = f(s); k2 = f(s + dt/2 k1); k3 = f(s + dt/2 k2); k4 = f(s + dt k3)
        s' = s + dt/6 (k1 + 2 k2 + 2 k3 + k4)
    """
    k1 = rhs(state)
    k2 = rhs(state + 0.5 * dt * k1)
    k3 = rhs(state + 0.5 * dt * k2)
    k4 = rhs(state + dt * k3)
    return state + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _random_initial(count: int, generator: torch.Generator) -> Tensor:
    """``count`` initial states ``(0, 0, 25) + 10 * N(0, I)`` in float64, ``[count, 3]``."""
    base = torch.tensor([0.0, 0.0, 25.0], dtype=torch.float64)
    return base + 10.0 * torch.randn(count, 3, generator=generator, dtype=torch.float64)


def _integrate(state: Tensor, num_steps: int, dt: float, subsample: int, transient: int, sigma: float,
               rho: float, beta: float) -> Tensor:
    """RK4 from ``state`` ``[S, 3]`` (float64): drop ``transient`` steps, then keep every ``subsample``-th."""

    def rhs(s: Tensor) -> Tensor:
        return lorenz_rhs(s, sigma, rho, beta)

    for _ in range(transient):
        state = rk4_step(rhs, state, dt)
    out = torch.empty(state.shape[0], num_steps, 3, dtype=torch.float64)
    for t in range(num_steps):
        out[:, t] = state
        for _ in range(subsample):
            state = rk4_step(rhs, state, dt)
    if not torch.isfinite(out).all():
        raise ValueError(f"the Lorenz integration diverged (dt={dt} is too large for RK4 here)")
    return out


def lorenz_series(
    num_steps: int,
    *,
    dt: float = 0.01,
    subsample: int = 1,
    transient: int = 2000,
    sigma: float = LORENZ_SIGMA,
    rho: float = LORENZ_RHO,
    beta: float = LORENZ_BETA,
    initial: Tensor | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: DeviceLike = None,
) -> Tensor:
    """A Lorenz trajectory ``[num_steps, 3]`` (x, y, z), unnormalised, sampled every ``dt * subsample``.

    The initial condition is ``initial`` ``[3]`` if given, else drawn from ``generator`` as
    ``(0, 0, 25) + 10 * N(0, I)``; the first ``transient`` RK4 steps (of ``dt``) are discarded so that the
    returned series lies on the attractor. Integration runs in float64 whatever ``dtype`` is.
    """
    check_int("num_steps", num_steps)
    check_int("subsample", subsample)
    check_int("transient", transient, minimum=0)
    check_positive("dt", dt)
    for name, value in (("sigma", sigma), ("rho", rho), ("beta", beta)):
        check_positive(name, value)
    if initial is None:
        if generator is None:
            raise ValueError("lorenz_series needs a generator (or an explicit initial state); got neither")
        state = _random_initial(1, check_generator(generator))
    else:
        check_tensor("initial", initial, (3,))
        state = initial.detach().to("cpu", torch.float64).reshape(1, 3).clone()
    out = _integrate(state, num_steps, dt, subsample, transient, sigma, rho, beta)[0]
    return out.to(device=resolve_device(device), dtype=dtype)


def normalize_series(series: Tensor, mean: Tensor | None = None,
                     std: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Z-score ``series`` ``[T, D]`` per component: ``(series - mean) / std``.

    ``mean`` and ``std`` ``[D]`` default to the series' own (population) statistics; pass the training
    series' statistics to normalise a test series the same way. Returns ``(normalised, mean, std)``.
    """
    check_tensor("series", series, ("T", "D"))
    if series.shape[0] == 0 and (mean is None or std is None):
        raise ValueError("series must hold at least one time step to compute its statistics, got shape "
                         f"{tuple(series.shape)}")
    if mean is None:
        mean = series.mean(dim=0)
    if std is None:
        std = series.std(dim=0, unbiased=False)
    check_tensor("mean", mean, (series.shape[1],))
    check_tensor("std", std, (series.shape[1],))
    if not bool((std > 0).all()):
        raise ValueError(f"std must be > 0 in every component, got {std.tolist()}")
    return (series - mean) / std, mean, std


def prediction_windows(series: Tensor, window: int, horizon: int = 1) -> tuple[Tensor, Tensor]:
    """Sliding windows of ``series`` ``[T, D]`` and their ``horizon``-step-ahead targets.

    Window ``b`` is ``series[b : b + window]`` and its target is ``series[b + window - 1 + horizon]``
    (the value ``horizon`` samples after the window's last one), for ``b = 0 .. T - window - horizon``.
    Returns ``(inputs [B, window, D], targets [B, D])`` with ``B = T - window - horizon + 1``.
    """
    check_tensor("series", series, ("T", "D"))
    check_int("window", window)
    check_int("horizon", horizon)
    count = series.shape[0] - window - horizon + 1
    if count < 1:
        raise ValueError(f"series of length {series.shape[0]} is too short for window={window} and "
                         f"horizon={horizon} (needs at least window + horizon = {window + horizon} samples)")
    inputs = series.unfold(0, window, 1)[:count].transpose(1, 2)  # [B, window, D]
    targets = series[window - 1 + horizon: window - 1 + horizon + count]
    return inputs.contiguous(), targets.contiguous()


class LorenzData(NamedTuple):
    """A normalised Lorenz prediction problem (inputs and targets aligned step by step).

    Attributes:
        train_inputs: ``[T_train, 3]`` the normalised training series ``u_t``.
        train_targets: ``[T_train, 3]`` ``u_{t + horizon}``.
        test_inputs: ``[S, T_test, 3]`` the held-out series (other initial conditions), normalised with the
            training statistics.
        test_targets: ``[S, T_test, 3]``.
        mean, std: ``[3]`` the training series' statistics (raw units).
        sample_dt: time between consecutive samples (``dt * subsample``).
        horizon: how many samples ahead the targets are.
    """

    train_inputs: Tensor
    train_targets: Tensor
    test_inputs: Tensor
    test_targets: Tensor
    mean: Tensor
    std: Tensor
    sample_dt: float
    horizon: int


def lorenz_prediction_data(
    train_steps: int,
    test_steps: int,
    *,
    test_series: int = 1,
    horizon: int = 1,
    dt: float = 0.01,
    subsample: int = 1,
    transient: int = 2000,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: DeviceLike = None,
) -> LorenzData:
    """A training series and ``test_series`` held-out series for ``horizon``-step-ahead prediction.

    Each series starts from its own random initial condition (drawn from ``generator``, training series
    first), so the test series are separate trajectories, not a continuation of the training one. All are
    normalised with the training series' mean and standard deviation. Inputs ``u_t`` and targets
    ``u_{t + horizon}`` are aligned: ``train_inputs[t]`` is paired with ``train_targets[t]``.
    """
    check_int("train_steps", train_steps)
    check_int("test_steps", test_steps)
    check_int("test_series", test_series)
    check_int("horizon", horizon)
    check_generator(generator)
    check_positive("dt", dt)
    check_int("subsample", subsample)
    check_int("transient", transient, minimum=0)
    # One batched integration: row 0 the training series, rows 1.. the test series.
    initial = _random_initial(1 + test_series, generator)
    length = max(train_steps, test_steps) + horizon
    series = _integrate(initial, length, dt, subsample, transient, LORENZ_SIGMA, LORENZ_RHO, LORENZ_BETA)
    train = series[0, : train_steps + horizon]
    tests = [series[s, : test_steps + horizon] for s in range(1, 1 + test_series)]
    train, mean, std = normalize_series(train)
    tests = [normalize_series(series, mean, std)[0] for series in tests]
    test = torch.stack(tests)
    dev = resolve_device(device)

    def cast(x: Tensor) -> Tensor:
        return x.to(device=dev, dtype=dtype)

    return LorenzData(
        train_inputs=cast(train[:-horizon]), train_targets=cast(train[horizon:]),
        test_inputs=cast(test[:, :-horizon]), test_targets=cast(test[:, horizon:]),
        mean=cast(mean), std=cast(std), sample_dt=dt * subsample, horizon=horizon,
    )


def observe_components(data: LorenzData, components: tuple[int, ...]) -> LorenzData:
    """Keep only the observed ``components`` (distinct indices among 0, 1, 2 for x, y, z) as inputs and targets.

    The other fields of ``data`` are kept; ``mean`` and ``std`` become ``[len(components)]``.
    """
    if not components or any(c not in (0, 1, 2) for c in components) or len(set(components)) != len(components):
        raise ValueError(f"observed must be distinct components among 0, 1, 2 (x, y, z); got {components!r}")
    index = list(components)
    return data._replace(train_inputs=data.train_inputs[:, index], train_targets=data.train_targets[:, index],
                         test_inputs=data.test_inputs[..., index], test_targets=data.test_targets[..., index],
                         mean=data.mean[index], std=data.std[index])


def nrmse(prediction: Tensor, target: Tensor) -> Tensor:
    """Normalised root-mean-square error: ``sqrt(mean((prediction - target)^2)) / std(target)``.

    Both ``[..., D]`` of the same shape; the mean and the (population) standard deviation run over all
    elements, so a constant prediction at the targets' mean scores 1 and a perfect one 0. Returns a 0-d
    tensor.
    """
    if not isinstance(prediction, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"prediction and target must be tensors, got {type(prediction).__name__} and "
                        f"{type(target).__name__}")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target must have the same shape, got {list(prediction.shape)} and "
                         f"{list(target.shape)}")
    spread = target.std(unbiased=False)
    if spread == 0:
        raise ValueError("target is constant: its standard deviation is 0, NRMSE is undefined")
    return (prediction - target).pow(2).mean().sqrt() / spread
