"""Tests of the grid-maze experiment (Miconi et al. 2019, Backpropamine, section 4.2): tiny runs and its parts."""

from __future__ import annotations

import json

import pytest

from experiments.tiny_overrides import tiny
from neuroplastic.experiments import grid_maze
from neuroplastic.runs import RunInterrupted, apply_overrides, run_experiment, run_path

TINY = tiny("grid-maze")


def test_tiny_run_writes_files_and_metrics(tmp_path):
    summary = run_experiment(grid_maze.EXPERIMENT, budget="quick", seed=0, out=tmp_path, overrides=TINY,
                             progress=False)
    path = run_path(tmp_path, "grid-maze", "quick", 0)
    for name in ("config.json", "metrics.csv", "summary.json", "metrics.png", "evaluation.json",
                 "learning_curves.png", "reward_within_episode.png", "trajectories.png"):
        assert (path / name).is_file(), name
    metrics = summary["metrics"]
    for name in ("modulated", "rnn", "random"):
        for key in ("reward", "reward_se", "reward_first_half", "reward_second_half", "half_gain"):
            assert f"{name}_{key}" in metrics
    assert {"modulated_train_reward_peak", "rnn_train_reward_last10pct"} <= set(metrics)
    assert len(summary["claims"]) == 2
    assert all(isinstance(claim["passed"], bool) for claim in summary["claims"])
    evaluation = json.loads((path / "evaluation.json").read_text())
    assert len(evaluation["rnn"]["totals"]) == 6 and len(evaluation["rnn"]["window_reward"]) == 3


def test_resume_gives_the_same_metrics(tmp_path):
    overrides = dict(TINY, updates=4)
    whole = run_experiment(grid_maze.EXPERIMENT, seed=1, out=tmp_path / "a", overrides=overrides, progress=False)
    with pytest.raises(RunInterrupted):  # stops inside the second phase (train_rnn)
        run_experiment(grid_maze.EXPERIMENT, seed=1, out=tmp_path / "b", overrides=overrides, progress=False,
                       stop_after_steps=6)
    resumed = run_experiment(grid_maze.EXPERIMENT, seed=1, out=tmp_path / "b", overrides=overrides,
                             progress=False, resume=True)
    assert resumed["metrics"] == whole["metrics"]


def test_baseline_has_no_plastic_parameters_and_the_same_size():
    modulated = grid_maze.make_agent("modulated", 16, 10)
    plain = grid_maze.make_agent("rnn", 16, 10)
    plastic = grid_maze.make_agent("plastic", 16, 10)
    names = dict(modulated.named_parameters())
    assert "core.synapses.alpha" in names and "core.synapses.modulator.neuromodulator.weight" in names
    assert "core.synapses.eta" in dict(plastic.named_parameters())
    assert not any("synapses" in name for name, _ in plain.named_parameters())
    assert plain.core.hidden_size == modulated.core.hidden_size == 10
    shared = ("core.weight", "core.input_to_hidden.weight", "core.input_to_hidden.bias", "head.weight", "head.bias")
    for name in shared:
        assert dict(plain.named_parameters())[name].shape == names[name].shape
    with pytest.raises(ValueError, match="variant"):
        grid_maze.make_agent("lstm", 16, 10)


@pytest.mark.parametrize(("variants", "accepted"), [
    ("lstm", "non-empty tuple, each item one of 'modulated', 'plastic', 'rnn'"),
    ("modulated,lstm", "non-empty tuple, each item one of"),
    ("", "non-empty tuple"),
    ("rnn,modulated,rnn", "distinct"),
])
def test_bad_variants_are_rejected_before_the_run(variants, accepted, tmp_path):
    with pytest.raises(ValueError, match=f"Config.variants must be (a )?{accepted}"):
        apply_overrides(grid_maze.EXPERIMENT.config("quick"), {"variants": variants})
    with pytest.raises(ValueError, match="Config.variants must be"):
        run_experiment(grid_maze.EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={"variants": variants})
    assert not (run_path(tmp_path, "grid-maze", "quick", 0)).exists()
    assert apply_overrides(grid_maze.EXPERIMENT.config("quick"), {"variants": "rnn,plastic"}).variants == (
        "rnn", "plastic")


@pytest.mark.parametrize(("key", "value"), [("eval_episodes", "0"), ("eval_batch", "0"), ("time_windows", "0"),
                                          ("log_every", "0"), ("log_every", "-1")])
def test_evaluation_settings_are_checked_before_the_run_starts(tmp_path, key, value):
    # found by tests/test_cli_fuzz.py: eval_episodes, eval_batch or time_windows 0, log_every 0 (-1 logged every
    # step) passed the config checks; the run trained, wrote its files and then failed in the evaluation
    from neuroplastic.runs import apply_overrides

    with pytest.raises(ValueError, match=f"Config.{key} must be "):
        apply_overrides(grid_maze.EXPERIMENT.config("quick"), {key: value})
    with pytest.raises(ValueError, match=f"Config.{key} must be "):
        run_experiment(grid_maze.EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, key: value})
    assert not (tmp_path / grid_maze.EXPERIMENT.name).exists()


@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("updates", "0", "an int >= 1"),  # before: "a cannot be empty" from NumPy after the run had started
    ("adam_eps", "0", "a finite number > 0"),  # before: a RuntimeError from torch (NaN action probabilities)
])
def test_updates_and_adam_eps_are_checked_before_the_run(tmp_path, key, value, accepted):
    # found by tests/test_cli_fuzz.py
    with pytest.raises(ValueError, match=f"Config.{key} must be {accepted}"):
        run_experiment(grid_maze.EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, key: value})
    assert not (tmp_path / grid_maze.EXPERIMENT.name).exists()
