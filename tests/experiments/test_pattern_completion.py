"""The pattern-completion experiment: a tiny run end to end, its networks, and exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.refusal import assert_refused_before_start
from experiments.tiny_overrides import tiny
from neuroplastic.experiments.pattern_completion import (
    EXPERIMENT,
    Config,
    episode_inputs,
    make_network,
)
from neuroplastic.models import RNN
from neuroplastic.plasticity import PlasticRNN
from neuroplastic.runs import RunInterrupted, run_experiment, run_path
from neuroplastic.tasks import pattern_completion_batch

TINY = tiny("pattern-completion")


def test_tiny_run_writes_files_and_metrics(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "pattern-completion", "quick", 0)
    for name in ("config.json", "summary.json", "metrics.csv", "metrics.png", "learning_curves.png",
                 "example_episode.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for key in ("plastic_erased_error", "nonplastic_erased_error", "plastic_erased_error_sem", "plastic_kept_error",
                "plastic_eta", "plastic_alpha_mean", "plastic_alpha_std", "plastic_alpha_abs_mean", "chance_error"):
        assert key in metrics, key
    assert 0.0 <= metrics["plastic_erased_error"] <= 1.0
    assert len(summary["claims"]) == 2
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == metrics
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"loss_plastic", "erased_error_plastic", "loss_nonplastic", "erased_error_nonplastic"} <= set(header)


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=TINY)
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=5)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == reference["metrics"]


def test_only_w_alpha_eta_are_learned_and_the_baseline_has_only_w():
    config = Config(pattern_size=10)
    plastic = make_network("plastic", config)
    plain = make_network("nonplastic", config)
    assert isinstance(plastic, PlasticRNN) and isinstance(plain, RNN)
    names = {name for name, _ in plastic.named_parameters()}
    assert names == {"cell.weight", "cell.synapses.alpha", "cell.synapses.eta"}
    assert plastic.cell.synapses.alpha.shape == (11, 11)  # one per connection, 10 bits + a bias neuron
    assert [name for name, _ in plain.named_parameters()] == ["cell.weight"]
    assert plain.cell.weight.shape == plastic.cell.weight.shape


def test_baseline_is_the_plastic_network_with_alpha_zero():
    config = Config(pattern_size=6, num_patterns=2)
    plastic = make_network("plastic", config)
    plain = make_network("nonplastic", config)
    with torch.no_grad():
        plastic.cell.synapses.alpha.zero_()
        plain.cell.weight.copy_(plastic.cell.weight)
    batch = pattern_completion_batch(3, pattern_size=6, num_patterns=2, generator=torch.Generator().manual_seed(0))
    inputs = episode_inputs(batch, config)
    assert inputs.shape == (3, batch.inputs.shape[1], 7)
    assert torch.all(inputs[..., -1] == config.input_gain)  # the bias neuron's input
    assert torch.equal(inputs[..., :6], batch.inputs * config.input_gain)
    torch.testing.assert_close(plain(inputs)[0], plastic(inputs)[0])


@pytest.mark.parametrize(("key", "value"), [("eval_batches", "0"), ("eval_batch_size", "0"), ("eval_batch_size", "-1")])
def test_evaluation_settings_are_checked_before_the_run_starts(tmp_path, key, value):
    # found by tests/test_cli_fuzz.py: eval_batches 0 or eval_batch_size 0 passed the config checks; the run
    # trained, wrote its files and then failed in the evaluation ("torch.cat(): expected a non-empty list ...")
    assert_refused_before_start(EXPERIMENT, tmp_path, TINY, key, value)
