"""Tests of the grid-maze experiment (Miconi et al. 2019, Backpropamine, section 4.2): tiny runs and its parts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neuroplastic.experiments import grid_maze
from neuroplastic.runs import RunInterrupted, run_experiment

TINY = {"updates": 3, "maze_size": 5, "episode_length": 12, "hidden_size": 8, "batch_size": 4,
        "eval_episodes": 6, "eval_batch": 4, "time_windows": 3, "log_every": 1, "checkpoint_every": 1}


def test_tiny_run_writes_files_and_metrics(tmp_path):
    summary = run_experiment(grid_maze.EXPERIMENT, budget="quick", seed=0, out=tmp_path, overrides=TINY,
                             progress=False)
    path = tmp_path / "grid-maze"
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


def test_discounted_returns_hand_computed():
    rewards = torch.tensor([[0.0, 0.0, 10.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    expected = torch.tensor([[8.1, 9.0, 10.0, 0.0], [3.439, 2.71, 1.9, 1.0]])
    torch.testing.assert_close(grid_maze.discounted_returns(rewards, 0.9), expected)


def test_episode_statistics_hand_computed():
    found = torch.tensor([[0, 1, 0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1, 0]], dtype=torch.bool)
    stats = grid_maze.episode_statistics(found, windows=2, max_hits=2)
    np.testing.assert_array_equal(stats["hits"], [3, 1])
    np.testing.assert_array_equal(stats["first_half"], [1, 0])
    np.testing.assert_array_equal(stats["second_half"], [2, 1])
    np.testing.assert_array_equal(stats["window_hits"], [[1, 2], [0, 1]])
    np.testing.assert_array_equal(stats["first_hit"], [1, 6])
    assert stats["return_time"][0] == 3.0 and np.isnan(stats["return_time"][1])
    np.testing.assert_array_equal(stats["hit_intervals"], [[2, 3], [7, np.nan]])


def test_a2c_loss_gradients_hand_computed():
    """Value gradient ``-2 c_v A / (B T)``; policy gradient ``(pi - onehot(a)) A / (B T)`` on the logits."""
    logits = torch.zeros(1, 2, 4, requires_grad=True)
    values = torch.tensor([[1.0, 2.0]], requires_grad=True)
    actions = torch.tensor([[0, 3]])
    rewards = torch.tensor([[0.0, 4.0]])  # returns with gamma 0.5: [2, 4]; advantages [1, 2]
    loss, parts = grid_maze.a2c_loss(logits, values, actions, rewards, gamma=0.5, value_coef=0.1,
                                     entropy_coef=0.0)
    loss.backward()
    torch.testing.assert_close(values.grad, torch.tensor([[-0.1, -0.2]]))
    assert parts["value_loss"] == pytest.approx(2.5)
    # uniform policy: d(-log pi(a) A)/d logits = -(onehot(a) - 1/4) A / (B T)
    expected = torch.full((1, 2, 4), 0.125) * torch.tensor([1.0, 2.0]).view(1, 2, 1)
    expected[0, 0, 0] -= 0.5
    expected[0, 1, 3] -= 1.0
    torch.testing.assert_close(logits.grad, expected)


@pytest.mark.parametrize("variant", ["modulated", "plastic", "rnn"])
def test_replay_gives_the_step_by_step_gradients(variant):
    torch.manual_seed(0)
    agent = grid_maze.make_agent(variant, 16, 6)
    grads = []
    for replay in (False, True):
        task = grid_maze.GridMazeTask(3, size=5, episode_length=10, generator=torch.Generator().manual_seed(1))
        episodes = grid_maze.run_episodes(agent, task, torch.Generator().manual_seed(2), replay=replay)
        loss, _ = grid_maze.a2c_loss(episodes["logits"], episodes["values"], episodes["actions"],
                                     episodes["rewards"], gamma=0.9, value_coef=0.1, entropy_coef=0.03)
        agent.zero_grad()
        loss.backward()
        grads.append({name: p.grad.clone() for name, p in agent.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6, msg=name)
