"""The snn-lnp experiment: a tiny run end to end, exact resume, the network, its simulation and readout."""

from __future__ import annotations

import json
import math

import pytest
import torch

from neuroplastic.experiments.snn_lnp import (
    EXPERIMENT,
    Config,
    _prune,
    dense_network,
    dense_validation_nrmse,
    fit_readout,
    make_hrsnn,
    noise_currents,
    observe,
    predict,
    simulate,
    subnetwork,
    task_data,
    tune_dense,
)
from neuroplastic.neurons import lif_step
from neuroplastic.runs import RunInterrupted, run_experiment
from neuroplastic.tasks.lorenz import lorenz_prediction_data

TINY = {
    "neurons": 24, "train_steps": 160, "test_steps": 80, "test_series": 2, "washout": 20, "noise_steps": 120,
    "lyapunov_warmup": 20, "spectrum_steps": 60, "spectrum_k": 3, "sweep_fractions": (0.5,),
    "centrality_rounds": 2, "ridges": (1e-4, 1e-2), "gain_sweep": (0.5, 1.0),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run (seed 1), shared by the tests below (figures are slow to write)."""
    out = tmp_path_factory.mktemp("reference")
    return out, run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)


def test_tiny_run_writes_files_metrics_and_claims(reference):
    out, summary = reference
    run_dir = out / "snn-lnp"
    for name in ("config.json", "summary.json", "metrics.csv", "predictions.png", "error_vs_synapses.png",
                 "lyapunov_spectra.png", "timescales.png", "error_vs_lyapunov.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert m["dense_neurons"] == 24 and m["dense_synapses"] == 24 * 23
    assert m["lnp_neurons"] == 18  # round(0.75 * 24)
    for variant in ("activity", "random", "activity_matched", "random_matched", "lnp_unstabilized"):
        assert m[f"{variant}_neurons"] == m["lnp_neurons"]
        assert m[f"{variant}_synapses"] == m["lnp_synapses"], variant
    # the paper's AP: the same neurons removed, every synapse among the kept ones kept
    assert m["activity_neurons_only_neurons"] == 18 and m["activity_neurons_only_synapses"] == 18 * 17
    assert m["lnp_synapses"] < m["dense_synapses"]
    assert m["lnp_lyapunov_bound"] in (min(m["lnp_lyapunov_dense_lnp"], 0.0), 0.0)
    assert m["lnp_lyapunov_after_lnp"] <= m["lnp_lyapunov_bound"]
    assert len(m["dense_lyapunov_spectrum"]) == 3
    assert all(m[f"{v}_nrmse"] > 0 for v in ("dense", "lnp", "activity", "random"))
    assert set(m["sweep"]) == {"dense", "lnp@0.2", "activity@0.2", "random@0.2", "lnp@0.5", "activity@0.5",
                               "random@0.5", "lnp_unstabilized@0.2", "dense_matched@0.2", "activity_matched@0.2",
                               "random_matched@0.2", "activity_neurons_only@0.2", "lnp_neurons_only@0.2",
                               "dense_same_size@0.2", "dense_gain@0.5"}
    # LNP's neurons with all their synapses; a fresh dense network of LNP's size
    assert m["lnp_neurons_only_neurons"] == 18 and m["lnp_neurons_only_synapses"] == 18 * 17
    assert m["dense_same_size_neurons"] == 18 and m["dense_same_size_synapses"] == 18 * 17
    # the gain sweep: factor 1 is the dense network itself (not run twice), sorted by factor, all full size
    sweep = m["dense_gain_sweep"]
    assert [e["gain_factor"] for e in sweep] == [0.5, 1.0]
    assert sweep[1]["nrmse"] == m["dense_nrmse"] and sweep[1]["lyapunov_max"] == m["dense_lyapunov_max"]
    assert sweep[0]["recurrent_gain"] == pytest.approx(0.5 * Config().recurrent_gain)
    assert m["sweep"]["dense_gain@0.5"]["synapses"] == 24 * 23
    stable = [e["nrmse"] for e in sweep if e["lyapunov_max"] <= 0]
    stable += [m["dense_matched_nrmse"]] if m["dense_matched_lyapunov_max"] <= 0 else []
    assert m["dense_best_stable_nrmse"] == (min(stable) if stable else None)
    assert len(summary["claims"]) == 4
    assert json.loads((run_dir / "summary.json").read_text())["metrics"]["lnp_nrmse"] == m["lnp_nrmse"]


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=4)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == reference[1]["metrics"]


def test_network_is_heterogeneous_fully_connected_and_seeded():
    config = Config(neurons=50)
    net = make_hrsnn(config, torch.Generator().manual_seed(0), inputs=1)
    again = make_hrsnn(config, torch.Generator().manual_seed(0), inputs=1)
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


def test_gain_and_neuron_only_activity_variants():
    config = Config(neurons=12)
    dense = make_hrsnn(config, torch.Generator().manual_seed(0), inputs=1)
    net, info = _prune("dense_gain", dense, 0.7, config, 0, {})
    torch.testing.assert_close(net.weight, 0.7 * dense.weight)
    assert info == {"gain_factor": 0.7} and torch.equal(net.decay, dense.decay)
    rates = torch.arange(12.0).flip(0) / 12  # neuron 0 most active, neuron 11 least
    results = {"dense": {"rates": rates}, "lnp@0.2": {"neurons": 8, "synapses": 20}}
    net, info = _prune("activity_neurons_only", dense, 0.2, config, 0, results)
    assert info["neuron_mask"].tolist() == [True] * 8 + [False] * 4
    torch.testing.assert_close(net.weight, dense.weight[:8, :8])  # all synapses among the 8 most active
    net, _ = _prune("activity", dense, 0.2, config, 0, results)
    assert net.neurons == 8 and net.synapses == 20  # the count-matched AP of the claims
    lnp_mask = torch.zeros(12, dtype=torch.bool)
    lnp_mask[[0, 2, 3, 5, 6, 8, 9, 11]] = True
    results["lnp@0.2"]["neuron_mask"] = lnp_mask
    net, info = _prune("lnp_neurons_only", dense, 0.2, config, 0, results)
    assert torch.equal(info["neuron_mask"], lnp_mask)
    torch.testing.assert_close(net.weight, dense.weight[lnp_mask][:, lnp_mask])  # every synapse among them
    net, _ = _prune("dense_same_size", dense, 0.2, config, 3, results)
    fresh = make_hrsnn(Config(neurons=8), torch.Generator().manual_seed(3002), inputs=1)
    assert all(torch.equal(a, b) for a, b in zip(net, fresh, strict=True))


def test_simulation_is_the_literal_lif_loop():
    config = Config(neurons=10, readout_tau=4.0)
    net = make_hrsnn(config, torch.Generator().manual_seed(1), inputs=1)
    inputs = torch.randn(2, 30, 1, generator=torch.Generator().manual_seed(2))
    traces, rates = simulate(net, inputs, config)
    for b in range(2):
        v, s, r, count = torch.zeros(10), torch.zeros(10), torch.zeros(10), torch.zeros(10)
        for t in range(30):
            x = net.input_weight @ inputs[b, t] + net.bias + net.weight @ s
            s, v = lif_step(v, x, net.decay, 1.0, reset="soft")
            r = math.exp(-1 / 4.0) * r + s
            count += s
            torch.testing.assert_close(traces[b, t], r)
    assert rates.shape == (10,) and float(rates.max()) <= 1.0


def test_readout_is_ridge_regression():
    features = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    targets = features @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.3
    readout = fit_readout(features, targets, ridge=0.0)
    torch.testing.assert_close(predict(features, readout), targets, atol=1e-4, rtol=0)
    shrunk = fit_readout(features, targets, ridge=10.0)
    assert float(shrunk[:4].norm()) < float(readout[:4].norm())


def test_observed_components_and_noise_drive():
    data = lorenz_prediction_data(50, 40, generator=torch.Generator().manual_seed(0), transient=100)
    only_x = observe(data, (0,))
    torch.testing.assert_close(only_x.train_inputs, data.train_inputs[:, :1])
    torch.testing.assert_close(only_x.test_targets, data.test_targets[..., :1])
    with pytest.raises(ValueError, match="observed"):
        observe(data, (3,))
    net = make_hrsnn(Config(neurons=8), torch.Generator().manual_seed(0), inputs=1)
    drive = noise_currents(net, 500, torch.Generator().manual_seed(1))
    assert drive.shape == (500, 8)
    torch.testing.assert_close(drive.mean(0), net.bias, atol=0.15, rtol=0)


def test_dense_network_gains_scale_the_same_draws():
    config = Config(**TINY)
    base = dense_network(config, seed=3)
    scaled = dense_network(Config(**{**TINY, "recurrent_gain": 3.0, "input_gain": 2.0, "bias_max": 0.9}), seed=3)
    torch.testing.assert_close(scaled.weight, base.weight * (3.0 / config.recurrent_gain))
    torch.testing.assert_close(scaled.input_weight, base.input_weight * (2.0 / config.input_gain))
    torch.testing.assert_close(scaled.bias, base.bias * (0.9 / config.bias_max))
    assert torch.equal(scaled.tau, base.tau)


def test_dense_validation_nrmse_is_the_best_ridge_on_the_training_tail():
    config = Config(**TINY)
    data = task_data(config, seed=2)
    features, _ = simulate(dense_network(config, seed=2), data.train_inputs[None], config)
    features, targets = features[0, config.washout:], data.train_targets[config.washout:]
    split = round(len(features) * (1 - config.validation_fraction))
    expected = min(math.sqrt(float(((predict(features[split:], fit_readout(features[:split], targets[:split], r))
                                     - targets[split:]) ** 2).mean()) / float(targets[split:].var(unbiased=False)))
                   for r in config.ridges)
    assert dense_validation_nrmse(config, seed=2, data=data) == pytest.approx(expected, rel=1e-5)


def test_tune_dense_scores_every_combination_and_sorts_best_first():
    config = Config(**TINY)
    grid = {"input_gain": (0.5, 2.0), "readout_tau": (2.0, 8.0)}
    seen = []
    rows = tune_dense(config, (0, 1), grid, progress=seen.append)
    assert len(rows) == len(seen) == 4
    assert {(r["input_gain"], r["readout_tau"]) for r in rows} == {(a, b) for a in (0.5, 2.0) for b in (2.0, 8.0)}
    assert [r["validation_nrmse"] for r in rows] == sorted(r["validation_nrmse"] for r in rows)
    best = rows[0]
    candidate = Config(**{**TINY, "input_gain": best["input_gain"], "readout_tau": best["readout_tau"]})
    assert best["per_seed"] == [pytest.approx(dense_validation_nrmse(candidate, s)) for s in (0, 1)]
    assert best["validation_nrmse"] == pytest.approx(sum(best["per_seed"]) / 2)


def test_tune_dense_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown config key 'gain' for Config; valid keys: neurons, "):
        tune_dense(Config(**TINY), (0,), {"gain": (1.0,)})
