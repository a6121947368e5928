"""The evolved-plasticity experiment: a tiny run end to end, exact resume, the networks, claims, bad configs."""

from __future__ import annotations

import pytest

from experiments.tiny_overrides import tiny
from neuroplastic.evolution import ParameterLayout
from neuroplastic.experiments.evolved_plasticity import (
    CLAIMS,
    EXPERIMENT,
    VARIANTS,
    Config,
    make_policy,
)
from neuroplastic.models import RNNCell
from neuroplastic.plasticity import PlasticRNNCell
from neuroplastic.runs import RunInterrupted, run_experiment, run_path
from neuroplastic.runs.config import validate_config

TINY = tiny("evolved-plasticity")


def test_tiny_run_writes_files_and_metrics(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "evolved-plasticity", "quick", 0)
    for name in ("config.json", "summary.json", "metrics.csv", "fitness.png", "lineage.png",
                 "reward_per_trial.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for variant in VARIANTS:
        assert -2 <= metrics[f"{variant}_reward"] <= 2  # 2 trials of +-1
        assert metrics[f"{variant}_evaluations"] == 4 + 2 * 3  # founders, then P - elite per generation
        assert metrics[f"{variant}_lineage_length"] >= 1
    assert -2 <= metrics["modulated_reward_alpha_zero"] <= 2 and "nonplastic_reward_alpha_zero" not in metrics
    sizes = {v: metrics[f"{v}_genome_size"] for v in VARIANTS}
    assert sizes["plasticity_only"] < sizes["nonplastic"] < sizes["modulated"]
    assert len(summary["claims"]) == 2
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {f"best_{v}" for v in VARIANTS} | {f"mean_{v}" for v in VARIANTS} <= set(header)


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=TINY)
    with pytest.raises(RunInterrupted):  # stops in the second variant's phase
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=4)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == reference["metrics"]


def test_networks_have_the_same_hidden_size_and_the_genomes_hold_what_each_variant_evolves():
    config = Config(hidden_size=5, cue_size=4)
    names = {v: {s.name for s in ParameterLayout(make_policy(v, 10, config))} for v in VARIANTS}
    policies = {v: make_policy(v, 10, config) for v in VARIANTS}
    assert isinstance(policies["nonplastic"].cell, RNNCell)
    assert isinstance(policies["modulated"].cell, PlasticRNNCell)
    assert all(p.cell.hidden_size == 5 for p in policies.values())
    assert names["modulated"] - names["nonplastic"] == {
        "cell.synapses.alpha", "cell.synapses.modulator.neuromodulator.weight",
        "cell.synapses.modulator.neuromodulator.bias"}
    assert names["modulated"] - names["plasticity_only"] == {
        "cell.weight", "cell.input_to_hidden.weight", "cell.input_to_hidden.bias"}


def test_claim_arithmetic():
    wins, learns = (claim.check for claim in CLAIMS)
    m = {"modulated_reward": 3.0, "modulated_reward_sem": 0.3, "nonplastic_reward": 1.9,
         "nonplastic_reward_sem": 0.4, "modulated_within_episode_gain": 0.3, "modulated_within_episode_gain_sem": 0.1,
         "modulated_first_trial_reward": 0.0, "modulated_late_trial_reward": 0.3}
    held, measured = wins(m)
    assert held is True and measured["difference_sem"] == 0.5  # 1.1 > 2 * hypot(0.3, 0.4) = 1.0
    assert wins({**m, "nonplastic_reward": 2.1})[0] is False
    assert learns(m)[0] is True
    assert learns({**m, "modulated_within_episode_gain": 0.2})[0] is False


@pytest.mark.parametrize("overrides, field", [
    ({"num_cues": 2}, "num_cues"), ({"num_cues": 5, "cue_size": 2}, "num_cues"),
    ({"trial_steps": 4, "display": "sequential"}, "trial_steps"), ({"elite": 128}, "elite"),
    ({"tournament_size": 129}, "tournament_size"), ({"finalists": 129}, "finalists"),
    ({"input_projection": False, "hidden_size": 16}, "hidden_size"),
    ({"trial_steps": 3}, "trial_steps"), ({"mutation_std": 0.0}, "mutation_std"), ({"display": "mixed"}, "display"),
    ({"population": 1}, "population"), ({"test_episodes": 1}, "test_episodes"),
])
def test_bad_configs_are_refused(overrides, field):
    config = Config(**overrides)
    with pytest.raises(ValueError, match=field):
        validate_config(config)


def test_without_an_input_projection_the_hidden_size_is_the_observation_size():
    config = Config(input_projection=False, hidden_size=26)  # a cue of 20 bits + 6
    validate_config(config)
    policy = make_policy("plasticity_only", 26, config)
    assert policy.cell.input_to_hidden is None
    assert {s.name for s in ParameterLayout(policy)} == {
        "cell.synapses.alpha", "cell.synapses.modulator.neuromodulator.weight",
        "cell.synapses.modulator.neuromodulator.bias", "policy.weight", "policy.bias"}
