"""The snn-plasticity experiment: a tiny run end to end, exact resume, its networks, loss and claims."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.nn import functional as F

from experiments.refusal import assert_refused_before_start
from experiments.tiny_overrides import tiny
from neuroplastic.experiments.snn_plasticity import (
    CLAIMS,
    EXPERIMENT,
    PLASTIC_VARIANTS,
    VARIANTS,
    Config,
    association_loss,
    make_network,
    query_accuracy,
)
from neuroplastic.models import PlainRecurrentLIF
from neuroplastic.plasticity.spiking import PlasticLIF
from neuroplastic.runs import RunInterrupted, run_experiment, run_path
from neuroplastic.tasks.spiking_association import SpikingAssociationBatch, spiking_association_batch

TINY = tiny("snn-plasticity")


def test_tiny_run_writes_files_and_metrics(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "snn-plasticity", "quick", 0)
    for name in ("config.json", "summary.json", "metrics.csv", "learning_curves.png", "accuracy_vs_noise.png",
                 "noise_sweep.json", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for variant in VARIANTS:
        for key in ("acc", "acc_sem", "acc_high", "acc_high_sem", "rate", "parameters"):
            assert f"{variant}_{key}" in metrics, f"{variant}_{key}"
        assert 0.0 <= metrics[f"{variant}_acc"] <= 1.0
    for variant in PLASTIC_VARIANTS:
        assert f"{variant}_tau_pre" in metrics and f"{variant}_alpha_mean" in metrics
    assert "hebbian_eta" in metrics and "modulated_eta" not in metrics
    assert metrics["chance"] == pytest.approx(0.5)
    assert len(summary["claims"]) == 2
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == metrics
    sweep = json.loads((run_dir / "noise_sweep.json").read_text())
    assert sweep["noise"] == [0.0, 0.1] and set(sweep["accuracy"]) == set(VARIANTS)
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {f"acc_{v}" for v in VARIANTS} <= set(header)


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    overrides = {**TINY, "variants": "nonplastic,retroactive"}
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=overrides)
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=overrides,
                       stop_after_steps=6)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=overrides,
                             resume=True)
    assert resumed["metrics"] == reference["metrics"]


def test_every_variant_starts_from_the_same_fixed_weights_and_only_plastic_ones_learn_plasticity():
    config = Config(hidden_size=7)
    nets = {v: make_network(v, config, seed=3) for v in VARIANTS}
    base = nets["nonplastic"]
    assert isinstance(base.layer, PlainRecurrentLIF)
    assert {n for n, _ in base.named_parameters()} == {
        "layer.weight", "layer.bias", "layer.recurrent_weight", "readout.weight", "readout.bias"}
    for variant in PLASTIC_VARIANTS:
        net = nets[variant]
        assert isinstance(net.layer, PlasticLIF)
        for name in ("weight", "bias", "recurrent_weight"):
            assert torch.equal(getattr(net.layer, name), getattr(base.layer, name)), (variant, name)
        assert torch.equal(net.readout.weight, base.readout.weight)
        names = {n for n, _ in net.named_parameters()}
        assert {"layer.synapses.alpha", "layer.trace_log_tau"} <= names
        assert net.layer.alpha.shape == (7,)  # one per receiving neuron
        assert ("layer.synapses.eta" in names) == (variant in ("hebbian", "oja", "bcm"))
    assert nets["modulated"].layer.modulation == "simple"
    assert nets["retroactive"].layer.modulation == "retroactive"
    assert type(nets["oja"].layer.synapses.rule).__name__ == "OjaRule"
    assert type(nets["bcm"].layer.synapses.rule).__name__ == "BCMRule"
    with pytest.raises(ValueError, match="variant"):
        make_network("stdp", config)


def test_the_baseline_is_the_plastic_network_with_alpha_zero():
    config = Config(hidden_size=9, num_pairs=2, cue_size=8, cue_active=2)
    plastic = make_network("hebbian", config, seed=4)
    plain = make_network("nonplastic", config, seed=4)
    with torch.no_grad():
        plastic.layer.synapses.alpha.zero_()
        plastic.layer.bias.fill_(0.3)
        plain.layer.bias.fill_(0.3)
    batch = spiking_association_batch(5, generator=torch.Generator().manual_seed(0), num_pairs=2, cue_size=8,
                                      cue_active=2, noise_rate=0.1)
    with torch.no_grad():
        logits_a, spikes_a = plastic(batch.inputs)
        logits_b, spikes_b = plain(batch.inputs)
    assert float(spikes_a.mean()) > 0
    assert torch.equal(spikes_a, spikes_b)
    torch.testing.assert_close(logits_a, logits_b)


def test_loss_and_accuracy_by_hand():
    # T = 4: steps 0-1 show pair 0 (label 1), step 2 is a gap, step 3 is the query (target 1)
    step_target = torch.tensor([[1, 1, -1, 1]])
    query_mask = torch.tensor([False, False, False, True])
    batch = SpikingAssociationBatch(torch.zeros(1, 4, 3), torch.tensor([1]), query_mask, torch.zeros(1, 1, 2),
                                    torch.tensor([[1]]), torch.tensor([0]), step_target)
    logits = torch.tensor([[[0.0, 2.0], [1.0, 0.0], [5.0, -5.0], [0.5, 0.0]]])
    query = -F.log_softmax(torch.tensor([0.5, 0.0]), 0)[1]
    shown = (-F.log_softmax(torch.tensor([0.0, 2.0]), 0)[1] - F.log_softmax(torch.tensor([1.0, 0.0]), 0)[1]) / 2
    torch.testing.assert_close(association_loss(logits, batch, 0.3), query + 0.3 * shown)
    torch.testing.assert_close(association_loss(logits, batch, 0.0), query)
    assert query_accuracy(logits, batch).tolist() == [0.0]  # the query step's argmax is label 0
    logits[0, 3] = torch.tensor([0.0, 1.0])
    assert query_accuracy(logits, batch).tolist() == [1.0]


def _metrics(plastic_low, plastic_high, nonplastic_low, nonplastic_high):
    m = {"chance": 1 / 3, "nonplastic_acc": nonplastic_low, "nonplastic_acc_high": nonplastic_high}
    for variant in PLASTIC_VARIANTS:
        m[f"{variant}_acc"] = plastic_low
        m[f"{variant}_acc_high"] = plastic_high
    return m


def test_claims_decide_on_the_stated_thresholds():
    solve, robust = CLAIMS
    assert solve.evaluate(_metrics(0.9, 0.7, 0.35, 0.33)).passed
    assert robust.evaluate(_metrics(0.9, 0.7, 0.35, 0.33)).passed
    assert not solve.evaluate(_metrics(0.74, 0.7, 0.35, 0.33)).passed  # a plastic network below 75%
    assert not solve.evaluate(_metrics(0.9, 0.7, 0.46, 0.33)).passed  # the baseline above 45%
    assert not robust.evaluate(_metrics(0.9, 0.59, 0.35, 0.33)).passed  # below 60% at high noise
    assert not robust.evaluate(_metrics(0.9, 0.65, 0.35, 0.5)).passed  # less than 20 points above
    one_fails = _metrics(0.9, 0.7, 0.35, 0.33)
    one_fails["oja_acc"] = 0.5
    assert not solve.evaluate(one_fails).passed
    assert not solve.evaluate({"chance": 1 / 3}).passed  # missing metrics fail


def test_bad_variant_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"Config.variants must be a tuple, each item one of 'nonplastic', .*'stdp'"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "variants": "stdp"})
    with pytest.raises(ValueError, match="Config.variants must be"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False,
                       overrides={**TINY, "variants": "hebbian,stdp"})
    assert not (run_path(tmp_path, "snn-plasticity", "quick", 0)).exists()  # rejected before anything is written
    assert math.isclose(EXPERIMENT.config("quick").noise_high, 2 * EXPERIMENT.config("quick").noise)


@pytest.mark.parametrize(("key", "value"), [("eval_batches", "0"), ("eval_batch_size", "-1"), ("noise_high", "1.5"),
                                          ("noise_sweep", "0,-0.1")])
def test_evaluation_settings_are_checked_before_the_run_starts(tmp_path, key, value):
    # found by tests/test_cli_fuzz.py: eval_batches 0, eval_batch_size -1, noise_high 1.5 or a noise_sweep
    # entry -0.1 passed the config checks; the run trained, wrote its files and
    # then failed in the evaluation (e.g. "torch.cat(): expected a non-empty list of Tensors")
    assert_refused_before_start(EXPERIMENT, tmp_path, TINY, key, value)


@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("num_pairs", "0", "an int >= 1"),  # before: ZeroDivisionError in the first step, with a traceback
    ("cue_size", "2", "large enough for 2 distinct cues of cue_active=2"),  # before: RuntimeError from the task
    # before: the nonplastic variant trained and wrote its files, then the plastic ones failed to build
    ("hidden_size", "0", "an int >= 1"), ("tau_trace", "0", "a finite number > 0"),
    ("alpha_init", "-1", "a finite number >= 0"), ("eta_init", "-0.5", "a finite number >= 0"),
])
def test_values_that_failed_mid_run_are_bad_config_values(tmp_path, key, value, accepted):
    # found by tests/test_cli_fuzz.py (with TINY: 2 pairs of cues with 2 active channels)
    with pytest.raises(ValueError, match=f"Config.{key} must be {accepted}"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, key: value})
    assert not (tmp_path / EXPERIMENT.name).exists()
