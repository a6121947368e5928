"""Lorenz series: RK4, seeding, subsampling, normalisation, windows, aligned prediction data, NRMSE."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.dynamics import lyapunov_spectrum
from neuroplastic.runs.threads import torch_threads
from neuroplastic.tasks.lorenz import (
    LORENZ_BETA,
    LORENZ_MAX_EXPONENT,
    LORENZ_RHO,
    LORENZ_SIGMA,
    lorenz_prediction_data,
    lorenz_rhs,
    lorenz_series,
    normalize_series,
    nrmse,
    observe_components,
    prediction_windows,
    rk4_step,
)

F64 = torch.float64


def test_rk4_step_is_the_fourth_order_taylor_polynomial_on_a_linear_ode():
    h = 0.3
    out = rk4_step(lambda x: -2.0 * x, torch.tensor([1.5], dtype=F64), h)
    z = -2.0 * h
    assert float(out[0]) == pytest.approx(1.5 * (1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24), rel=1e-14)


def test_lorenz_vector_field_by_hand():
    state = torch.tensor([[1.0, 2.0, 3.0]], dtype=F64)
    expected = torch.tensor([[10.0 * (2 - 1), 1 * (28 - 3) - 2, 1 * 2 - 8 / 3 * 3]], dtype=F64)
    torch.testing.assert_close(lorenz_rhs(state), expected)


def test_series_is_seeded_subsampled_and_on_the_attractor():
    a = lorenz_series(300, generator=torch.Generator().manual_seed(0), transient=500)
    b = lorenz_series(300, generator=torch.Generator().manual_seed(0), transient=500)
    c = lorenz_series(300, generator=torch.Generator().manual_seed(1), transient=500)
    assert a.shape == (300, 3) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a[:, 2].min()) > 0 and float(a[:, 2].max()) < 55 and float(a[:, 0].abs().max()) < 25
    start = torch.tensor([1.0, 1.0, 20.0], dtype=F64)
    fine = lorenz_series(41, initial=start, transient=0, dtype=F64)
    coarse = lorenz_series(21, initial=start, transient=0, subsample=2, dtype=F64)
    torch.testing.assert_close(coarse, fine[::2])
    assert torch.equal(fine[0], start)


def test_rk4_lorenz_map_has_the_known_lyapunov_exponents():
    dt = 0.02

    def step(x):
        return rk4_step(lorenz_rhs, x, dt)

    def jacobian(x):
        s, r, b = LORENZ_SIGMA, LORENZ_RHO, LORENZ_BETA
        return torch.tensor([[-s, s, 0.0], [r - float(x[2]), -1.0, -float(x[0])], [float(x[1]), float(x[0]), -b]],
                            dtype=F64)

    def tangent(x, u, q):  # RK4 of the variational equation dQ/dt = J(x(t)) Q alongside the state
        k1, q1 = lorenz_rhs(x), jacobian(x) @ q
        x2 = x + 0.5 * dt * k1
        k2, q2 = lorenz_rhs(x2), jacobian(x2) @ (q + 0.5 * dt * q1)
        x3 = x + 0.5 * dt * k2
        k3, q3 = lorenz_rhs(x3), jacobian(x3) @ (q + 0.5 * dt * q2)
        x4 = x + dt * k3
        q4 = jacobian(x4) @ (q + dt * q3)
        return q + dt / 6 * (q1 + 2 * q2 + 2 * q3 + q4)

    with torch_threads(1):
        result = lyapunov_spectrum(step, torch.tensor([1.0, 1.0, 20.0], dtype=F64), 5000, 3, warmup=500,
                                   tangent=tangent, dt=dt)
    first, second, third = result.exponents.tolist()
    assert abs(first - LORENZ_MAX_EXPONENT) < 0.08
    assert abs(second) < 0.05
    # The flow contracts volumes at the constant rate trace(J) = -(sigma + 1 + beta).
    assert first + second + third == pytest.approx(-(LORENZ_SIGMA + 1 + LORENZ_BETA), rel=1e-3)


def test_normalisation_uses_given_statistics():
    series = torch.tensor([[1.0, 10.0], [3.0, 30.0], [5.0, 20.0]])
    normed, mean, std = normalize_series(series)
    torch.testing.assert_close(normed.mean(0), torch.zeros(2))
    torch.testing.assert_close(normed.std(0, unbiased=False), torch.ones(2))
    other, _, _ = normalize_series(series + 1.0, mean, std)
    torch.testing.assert_close(other, normed + 1.0 / std)
    with pytest.raises(ValueError, match="std must be > 0"):
        normalize_series(torch.ones(4, 2))


def test_prediction_windows_by_hand():
    series = torch.arange(8.0).reshape(8, 1)
    inputs, targets = prediction_windows(series, window=3, horizon=2)
    assert inputs.shape == (4, 3, 1) and targets.shape == (4, 1)
    assert inputs[0, :, 0].tolist() == [0.0, 1.0, 2.0] and float(targets[0]) == 4.0
    assert inputs[3, :, 0].tolist() == [3.0, 4.0, 5.0] and float(targets[3]) == 7.0
    with pytest.raises(ValueError, match="too short"):
        prediction_windows(series, window=7, horizon=2)


def test_prediction_data_is_aligned_and_normalised_with_training_statistics():
    data = lorenz_prediction_data(200, 120, test_series=2, horizon=3, subsample=2, transient=300,
                                  generator=torch.Generator().manual_seed(0))
    assert data.train_inputs.shape == (200, 3) and data.train_targets.shape == (200, 3)
    assert data.test_inputs.shape == (2, 120, 3) and data.test_targets.shape == (2, 120, 3)
    torch.testing.assert_close(data.train_targets[:-3], data.train_inputs[3:])
    torch.testing.assert_close(data.test_targets[1, :-3], data.test_inputs[1, 3:])
    full = torch.cat([data.train_inputs, data.train_targets[-3:]])
    torch.testing.assert_close(full.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    assert data.sample_dt == pytest.approx(0.02) and data.horizon == 3
    assert not torch.allclose(data.test_inputs[0, :50], data.test_inputs[1, :50])  # separate trajectories
    raw = data.test_inputs * data.std + data.mean
    assert float(raw[..., 2].min()) > 0  # z of the Lorenz attractor, back in raw units


def test_observed_components():
    data = lorenz_prediction_data(50, 40, generator=torch.Generator().manual_seed(0), transient=100)
    only_x = observe_components(data, (0,))
    torch.testing.assert_close(only_x.train_inputs, data.train_inputs[:, :1])
    torch.testing.assert_close(only_x.test_targets, data.test_targets[..., :1])
    z_and_x = observe_components(data, (2, 0))
    torch.testing.assert_close(z_and_x.test_inputs, data.test_inputs[..., [2, 0]])
    torch.testing.assert_close(z_and_x.std, data.std[[2, 0]])
    with pytest.raises(ValueError, match="observed"):
        observe_components(data, (3,))
    with pytest.raises(ValueError, match="observed"):
        observe_components(data, (1, 1))


def test_nrmse_by_hand():
    target = torch.tensor([[1.0], [3.0], [5.0], [7.0]])
    assert float(nrmse(target.clone(), target)) == 0.0
    assert float(nrmse(torch.full_like(target, 4.0), target)) == pytest.approx(1.0)
    prediction = target + torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])
    assert float(nrmse(prediction, target)) == pytest.approx(1.0 / math.sqrt(5.0))
    with pytest.raises(ValueError, match="same shape"):
        nrmse(target[:3], target)


def test_bad_arguments():
    with pytest.raises(ValueError, match="generator"):
        lorenz_series(10)
    with pytest.raises(ValueError, match="dt must be > 0"):
        lorenz_series(10, dt=-0.1, generator=torch.Generator())
    with pytest.raises(ValueError, match="num_steps"):
        lorenz_series(0, generator=torch.Generator())
    with pytest.raises(ValueError, match="initial must have shape"):
        lorenz_series(10, initial=torch.zeros(2))
