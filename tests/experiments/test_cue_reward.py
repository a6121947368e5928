"""The cue-reward experiment: a tiny run end to end, the four agents, the A2C pieces, and exact resume."""

from __future__ import annotations

import pytest
import torch

from experiments.refusal import assert_refused_before_start
from experiments.tiny_overrides import tiny
from neuroplastic.experiments.cue_reward import (
    EXPERIMENT,
    VARIANTS,
    Config,
    make_agent,
    make_task,
    trial_rewards,
)
from neuroplastic.models import RNNCell
from neuroplastic.plasticity import PlasticRNNCell
from neuroplastic.runs import RunInterrupted, run_experiment, run_path
from neuroplastic.tasks import discounted_returns

TINY = tiny("cue-reward")


def test_tiny_run_writes_files_and_metrics(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "cue-reward", "quick", 0)
    for name in ("config.json", "summary.json", "metrics.csv", "metrics.png", "learning_curves.png",
                 "reward_per_trial.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for variant in VARIANTS:
        for key in ("reward", "reward_sem", "first_trial_reward", "late_trial_reward", "within_episode_gain"):
            assert f"{variant}_{key}" in metrics
        assert -3 <= metrics[f"{variant}_reward"] <= 3  # 3 trials of +-1
    assert "plastic_eta" in metrics and "retroactive_eligibility_rate" in metrics
    assert len(summary["claims"]) == 2
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {f"reward_{v}" for v in VARIANTS} <= set(header)


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=TINY)
    with pytest.raises(RunInterrupted):  # stops in the second variant's phase
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=3)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == reference["metrics"]


def test_agents_share_hidden_size_and_only_the_plastic_ones_have_plastic_parameters():
    config = Config(hidden_size=12)
    obs_dim = make_task(config, 1, torch.Generator().manual_seed(0), torch.device("cpu")).obs_dim
    agents = {v: make_agent(v, obs_dim, config) for v in VARIANTS}
    for agent in agents.values():
        assert agent.cell.hidden_size == 12
        assert agent.cell.input_to_hidden.in_features == obs_dim
        assert agent.policy.in_features == agent.value.in_features == 12
    assert isinstance(agents["nonplastic"].cell, RNNCell)
    names = {v: {n for n, _ in a.named_parameters()} for v, a in agents.items()}
    assert not any("synapses" in n or "alpha" in n or "eta" in n for n in names["nonplastic"])
    for variant in ("simple", "retroactive", "plastic"):
        assert isinstance(agents[variant].cell, PlasticRNNCell)
        assert "cell.synapses.alpha" in names[variant]
    assert agents["simple"].cell.synapses.modulation == "simple"
    assert agents["retroactive"].cell.synapses.modulation == "retroactive"
    assert agents["plastic"].cell.synapses.modulation == "none"
    assert "cell.synapses.eta" in names["plastic"]
    # The non-plastic agent has exactly the plastic agent's parameters minus the plastic ones.
    plastic_only = names["plastic"] - names["nonplastic"]
    assert plastic_only == {"cell.synapses.alpha", "cell.synapses.eta"}


def test_discounted_returns_and_trial_rewards_on_a_hand_computed_case():
    rewards = torch.tensor([[0.0], [1.0], [0.0], [-1.0]])  # [T, B], as the rollout records them
    expected = torch.tensor([[0.5 * 1 + 0.125 * -1], [1 + 0.25 * -1], [0.5 * -1], [-1.0]])
    torch.testing.assert_close(discounted_returns(rewards.T, 0.5).T, expected)
    # Two trials of 5 steps: the response is step 3 of each trial.
    rewards = torch.zeros(10, 2)
    rewards[3] = torch.tensor([1.0, -1.0])
    rewards[8] = torch.tensor([-1.0, 1.0])
    assert torch.equal(trial_rewards(rewards, 5), torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))


def test_a_negative_eta_init_is_refused_before_the_run_starts(tmp_path):
    # found by tests/test_cli_fuzz.py: eta_init=-1 passed the config checks; the run trained the modulated
    # agents, wrote its files, and failed when it built the plastic agent ("eta_init must be ... >= 0")
    previous = run_path(tmp_path, EXPERIMENT.name, "quick", 0)
    previous.mkdir(parents=True)
    (previous / "summary.json").write_text('{"finished": true}')
    for key, value, accepted in (("eta_init", "-1", "a finite number >= 0"), ("alpha_init", "-0.5", ">= 0"),
                                 ("trace_clip", "0", "a finite number > 0"), ("eta_init", "nan", ">= 0")):
        with pytest.raises(ValueError, match=f"Config.{key} must be .*{accepted}"):
            run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overwrite=True,
                           overrides={**TINY, key: value})
    assert sorted(p.name for p in previous.iterdir()) == ["summary.json"]  # the finished run is intact


@pytest.mark.parametrize(("key", "value"), [("eval_episodes", "0"), ("eval_episodes", "-1")])
def test_evaluation_settings_are_checked_before_the_run_starts(tmp_path, key, value):
    # found by tests/test_cli_fuzz.py: eval_episodes=0 passed the config checks; the run trained, wrote its files and
    # then failed in the evaluation (e.g. "torch.cat(): expected a non-empty list of Tensors")
    assert_refused_before_start(EXPERIMENT, tmp_path, TINY, key, value)
