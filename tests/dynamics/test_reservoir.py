"""The spiking reservoir: heterogeneous seeded construction, restriction, the literal LIF loop, probes."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.dynamics import (
    SpikingReservoir,
    fit_readout,
    fit_validated_readout,
    network_lyapunov_spectrum,
    noise_currents,
    perturbation_lyapunov_exponent,
    predict,
    random_reservoir,
    reservoir_exponents,
    reservoir_readout,
    reservoir_stability,
    reservoir_validation_nrmse,
    simulate,
    smooth_lif_step,
    spike_divergence,
    subnetwork,
)
from neuroplastic.neurons import lif_step
from neuroplastic.runs.threads import torch_threads
from neuroplastic.tasks.lorenz import nrmse

SETTINGS = dict(tau_mean=8.0, tau_shape=3, recurrent_gain=2.0, input_gain=2.0, bias_max=4.8)


@pytest.fixture(autouse=True)
def one_thread():
    """Step-by-step loops over tiny tensors: one intra-op thread is much faster on a busy machine."""
    with torch_threads(1):
        yield


def reservoir(neurons: int, seed: int, **overrides) -> SpikingReservoir:
    return random_reservoir(neurons, inputs=1, **{**SETTINGS, **overrides},
                            generator=torch.Generator().manual_seed(seed))


def test_network_is_heterogeneous_fully_connected_and_seeded():
    net = reservoir(50, 0)
    again = reservoir(50, 0)
    assert all(torch.equal(a, b) for a, b in zip(net, again, strict=True))
    assert net.synapses == 50 * 49 and bool((torch.diagonal(net.weight) == 0).all())
    assert float(net.tau.std()) > 1.0 and float(net.tau.min()) >= 1.0  # Erlang-distributed time constants
    torch.testing.assert_close(net.decay, torch.exp(-1.0 / net.tau))
    assert net.input_weight.shape == (50, 1)
    mask = torch.zeros(50, dtype=torch.bool)
    mask[[3, 7, 9]] = True
    sub = subnetwork(net, mask, net.weight)
    torch.testing.assert_close(sub.weight, net.weight[[3, 7, 9]][:, [3, 7, 9]])
    torch.testing.assert_close(sub.tau, net.tau[[3, 7, 9]])


def test_gains_only_scale_the_same_draws():
    base = reservoir(20, 3)
    scaled = reservoir(20, 3, recurrent_gain=3.0, input_gain=0.5, bias_max=0.9)
    torch.testing.assert_close(scaled.weight, base.weight * 1.5)
    torch.testing.assert_close(scaled.input_weight, base.input_weight * 0.25)
    torch.testing.assert_close(scaled.bias, base.bias * (0.9 / 4.8))
    assert torch.equal(scaled.tau, base.tau)


def test_subnetwork_takes_new_weights_and_keeps_the_neurons_own_settings():
    net = reservoir(10, 1)
    mask = torch.tensor([True, False] * 5)
    pruned = torch.where(torch.rand(10, 10, generator=torch.Generator().manual_seed(2)) < 0.5, net.weight, 0.0)
    sub = subnetwork(net, mask, pruned)
    assert sub.neurons == 5 and sub.synapses == int((pruned[mask][:, mask] != 0).sum())
    torch.testing.assert_close(sub.weight, pruned[mask][:, mask])
    for field in ("tau", "decay", "input_weight", "bias"):
        torch.testing.assert_close(getattr(sub, field), getattr(net, field)[mask])


def test_simulation_is_the_literal_lif_loop():
    net = reservoir(10, 1)
    inputs = torch.randn(2, 30, 1, generator=torch.Generator().manual_seed(2))
    traces, rates = simulate(net, inputs, trace_tau=4.0)
    for b in range(2):
        v, s, r, count = torch.zeros(10), torch.zeros(10), torch.zeros(10), torch.zeros(10)
        for t in range(30):
            x = net.input_weight @ inputs[b, t] + net.bias + net.weight @ s
            s, v = lif_step(v, x, net.decay, 1.0, reset="soft")
            r = math.exp(-1 / 4.0) * r + s
            count += s
            torch.testing.assert_close(traces[b, t], r)
    assert rates.shape == (10,) and float(rates.max()) <= 1.0


def test_rates_are_mean_spikes_per_step_and_the_threshold_is_used():
    net = reservoir(10, 1)
    inputs = torch.randn(3, 40, 1, generator=torch.Generator().manual_seed(5))
    traces, rates = simulate(net, inputs, trace_tau=1e-9)  # no memory: the trace is the spikes
    torch.testing.assert_close(rates, traces.mean(dim=(0, 1)))
    _, high = simulate(net, inputs, trace_tau=4.0, threshold=1e9)
    assert float(high.sum()) == 0.0


def test_noise_drive():
    net = reservoir(8, 0)
    drive = noise_currents(net, 500, torch.Generator().manual_seed(1))
    assert drive.shape == (500, 8)
    torch.testing.assert_close(drive.mean(0), net.bias, atol=0.15, rtol=0)


def test_reservoir_exponents_are_the_smooth_map_estimates():
    net = reservoir(12, 4, recurrent_gain=3.0)
    drive = noise_currents(net, 260, torch.Generator().manual_seed(3)).double()
    spectrum, largest = reservoir_exponents(net, drive, 3, warmup=60, slope=6.0)
    weight, decay = net.weight.double(), net.decay.double()
    expected = network_lyapunov_spectrum(weight, decay, drive, 3, warmup=60, slope=6.0,
                                         generator=torch.Generator().manual_seed(0)).exponents
    assert torch.equal(spectrum, expected)
    two = perturbation_lyapunov_exponent(lambda h, u: smooth_lif_step(h, u, weight, decay, slope=6.0),
                                         torch.zeros(12, dtype=torch.float64), 200, inputs=drive, warmup=60)
    assert largest == two


def test_spike_divergence_vanishes_without_recurrence_and_is_seeded():
    net = reservoir(16, 2)
    drive = noise_currents(net, 300, torch.Generator().manual_seed(4))
    isolated = net._replace(weight=torch.zeros_like(net.weight))
    assert spike_divergence(isolated, drive, warmup=50, generator=torch.Generator().manual_seed(0)) == 0.0
    strong = net._replace(weight=net.weight * 4)
    first = spike_divergence(strong, drive, warmup=50, generator=torch.Generator().manual_seed(1))
    again = spike_divergence(strong, drive, warmup=50, generator=torch.Generator().manual_seed(1))
    assert first == again and 0.0 <= first <= 1.0


def _series(steps: int, series: int = 0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A sine input ``[(S,) T, 1]`` and its value 3 steps ahead as the target."""
    phase = torch.rand(max(series, 1), 1, generator=torch.Generator().manual_seed(seed)) * 6.0
    t = torch.arange(steps + 3, dtype=torch.float32)[None, :, None] * 0.2 + phase[:, :, None]
    x = torch.sin(t)
    inputs, targets = x[:, :-3], x[:, 3:]
    return (inputs, targets) if series else (inputs[0], targets[0])


def test_reservoir_readout_fits_on_the_training_series_and_tests_on_the_held_out_ones():
    net = reservoir(20, 5)
    train_x, train_y = _series(300)
    test_x, test_y = _series(120, series=2, seed=1)
    settings = dict(trace_tau=4.0, washout=30, ridges=(1e-4, 1e-2), validation_fraction=0.25)
    result = reservoir_readout(net, train_x, train_y, test_x, test_y, **settings)
    features, rates = simulate(net, train_x[None], trace_tau=4.0)
    readout, ridge = fit_validated_readout(features[0, 30:], train_y[30:], (1e-4, 1e-2), 0.25)
    test_features, _ = simulate(net, test_x, trace_tau=4.0)
    prediction = predict(test_features[:, 30:], readout)
    assert result["ridge"] == ridge and torch.equal(result["rates"], rates)
    assert torch.equal(result["prediction"], prediction) and torch.equal(result["target"], test_y[:, 30:])
    assert result["prediction"].shape == (2, 90, 1)
    assert result["nrmse"] == float(nrmse(prediction, test_y[:, 30:]))
    assert result["nrmse_series"] == [float(nrmse(prediction[s], test_y[s, 30:])) for s in range(2)]
    assert result["train_nrmse"] == float(nrmse(predict(features[0, 30:], readout), train_y[30:]))
    # the validation error alone: the best ridge's, fitted on the head of the series after the washout
    split = round(270 * 0.75)
    tail = [float(nrmse(predict(features[0, 30 + split:], fit_readout(features[0, 30:30 + split],
                                                                      train_y[30:30 + split], r)),
                        train_y[30 + split:])) for r in (1e-4, 1e-2)]
    assert reservoir_validation_nrmse(net, train_x, train_y, **settings) == min(tail)


def test_reservoir_stability_measures_both_exponents_and_the_divergence_on_one_drive():
    net = reservoir(12, 4, recurrent_gain=3.0)
    result = reservoir_stability(net, 200, 20, warmup=60, slope=6.0, generator=torch.Generator().manual_seed(3),
                                 divergence_generator=torch.Generator().manual_seed(7))
    drive = noise_currents(net, 260, torch.Generator().manual_seed(3)).double()
    spectrum, largest = reservoir_exponents(net, drive, 12, warmup=60, slope=6.0)  # k capped at N
    assert result["spectrum"] == spectrum.tolist() and len(result["spectrum"]) == 12
    assert result["largest_qr"] == float(spectrum[0]) and result["largest_perturbation"] == largest
    assert result["spike_divergence"] == spike_divergence(net, drive[:200].float(), warmup=60,
                                                          generator=torch.Generator().manual_seed(7))
