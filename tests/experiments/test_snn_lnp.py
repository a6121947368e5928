"""The snn-lnp experiment: a tiny run end to end, exact resume, the pruning variants, the dense tuning."""

from __future__ import annotations

import json
import math

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.dynamics import fit_readout, predict, random_reservoir, simulate
from neuroplastic.experiments.snn_lnp import (
    EXPERIMENT,
    Config,
    _prune,
    dense_network,
    dense_validation_nrmse,
    task_data,
    tune_dense,
)
from neuroplastic.runs import RunInterrupted, apply_overrides, run_experiment, run_path

TINY = tiny("snn-lnp")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run (seed 1), shared by the tests below (figures are slow to write)."""
    out = tmp_path_factory.mktemp("reference")
    return out, run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)


def test_tiny_run_writes_files_metrics_and_claims(reference):
    out, summary = reference
    run_dir = run_path(out, "snn-lnp", "quick", 1)  # the reference run has seed 1
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


def reservoir(config, seed):
    """The reservoir of ``config``'s network settings, drawn from a generator seeded with ``seed``."""
    return random_reservoir(config.neurons, inputs=1, tau_mean=config.tau_mean, tau_shape=config.tau_shape,
                            recurrent_gain=config.recurrent_gain, input_gain=config.input_gain,
                            bias_max=config.bias_max, generator=torch.Generator().manual_seed(seed))


def test_dense_network_is_the_seeded_reservoir_of_the_config():
    config = Config(neurons=12)
    assert all(torch.equal(a, b) for a, b in zip(dense_network(config, 4), reservoir(config, 4002), strict=True))


def test_gain_and_neuron_only_activity_variants():
    config = Config(neurons=12)
    dense = reservoir(config, 0)
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
    fresh = reservoir(Config(neurons=8), 3002)
    assert all(torch.equal(a, b) for a, b in zip(net, fresh, strict=True))


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
    features, _ = simulate(dense_network(config, seed=2), data.train_inputs[None], trace_tau=config.readout_tau,
                           threshold=config.threshold)
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


@pytest.mark.parametrize("field, value, accepted", [
    ("neurons", "0", "an int >= 1"), ("tau_mean", "0", "a finite number > 0"), ("recurrent_gain", "-1", ">= 0"),
    ("threshold", "0", "> 0"), ("readout_tau", "nan", "> 0"), ("horizon", "0", ">= 1"), ("washout", "-1", ">= 0"),
    ("observed", "3", "a non-empty tuple, each item one of 0, 1, 2"), ("observed", "", "a non-empty tuple, .*"),
    ("ridges", "-1", "each item a finite number >= 0"), ("validation_fraction", "1", r"in \(0, 1\)"),
    ("synapse_fraction", "0", r"in \(0, 1\]"), ("neuron_fraction", "1.5", r"in \(0, 1\]"),
    ("sweep_fractions", "0.1,0", r"each item a finite number in \(0, 1\]"), ("centrality_rounds", "0", ">= 1"),
    ("washout", "1500", "less than train_steps and test_steps"),
    ("lyapunov_warmup", "600", r"less than noise_steps \(600\)"),
    ("spectrum_steps", "100", r"more than lyapunov_warmup \(100\)"),  # was an IndexError, with a traceback
])
def test_bad_config_is_rejected_by_its_declaration(field, value, accepted):
    with pytest.raises(ValueError, match=f"Config.{field} must be (.* )?{accepted}, got "):
        apply_overrides(Config(), {field: value})


def test_budgets_and_the_tiny_config_are_valid():
    for config in EXPERIMENT.budgets.values():
        apply_overrides(config, None)
    apply_overrides(Config(), TINY)


def test_a_reservoir_of_one_neuron_is_refused_before_the_run(tmp_path):
    # found by tests/test_cli_fuzz.py: neurons=1 passed the config checks; the run simulated the dense reservoir,
    # wrote its files, and failed when pruning ("expected_count must be > 0, got 0.0": no synapses)
    with pytest.raises(ValueError, match=r"Config.neurons must be at least 2 \(a reservoir of one neuron has no"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "neurons": "1"})
    assert not (tmp_path / EXPERIMENT.name).exists()
    apply_overrides(Config(**TINY), {"neurons": "2"})
    # the same failure with recurrent_gain=0 (all recurrent weights 0)
    with pytest.raises(ValueError, match=r"Config.recurrent_gain must be > 0 \(a reservoir without recurrent"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "recurrent_gain": "0"})
    assert not (tmp_path / EXPERIMENT.name).exists()
