"""Recurrent actor-critic agents: heads, states, whole-episode replay, and playing grid-maze episodes."""

from __future__ import annotations

import pytest
import torch

from neuroplastic.models import ActorCritic, MazeAgent, RNNCell, run_maze_episodes
from neuroplastic.plasticity import PlasticRNNCell
from neuroplastic.tasks import GridMazeTask, a2c_loss, policy_log_probs


def _maze_core(variant: str, obs_dim: int, hidden: int):
    if variant == "modulated":
        return PlasticRNNCell(obs_dim, hidden, modulation="simple", clip=2.0)
    if variant == "plastic":
        return PlasticRNNCell(obs_dim, hidden, modulation="none", rule="hebbian")
    return RNNCell(obs_dim, hidden)


def test_actor_critic_heads_read_the_hidden_state():
    torch.manual_seed(0)
    agent = ActorCritic(RNNCell(5, 8), num_actions=3)
    assert [name for name, _ in agent.named_parameters()] == [
        "cell.weight", "cell.input_to_hidden.weight", "cell.input_to_hidden.bias", "policy.weight", "policy.bias",
        "value.weight", "value.bias"]
    obs = torch.randn(4, 5)
    logits, value, state = agent(obs, agent.initial_state(4))
    hidden, _ = agent.cell(obs, agent.cell.initial_state(4))
    assert logits.shape == (4, 3) and value.shape == (4,)
    torch.testing.assert_close(logits, agent.policy(hidden))
    torch.testing.assert_close(value, agent.value(hidden)[:, 0])
    torch.testing.assert_close(state.hidden, hidden)


def test_actor_critic_keeps_the_plastic_cells_state():
    agent = ActorCritic(PlasticRNNCell(5, 6, modulation="simple"), num_actions=2)
    state = agent.initial_state(3)
    for _ in range(2):
        _, _, state = agent(torch.randn(3, 5), state)
    assert state.plastic.trace.abs().sum() > 0  # the Hebbian traces were updated


@pytest.mark.parametrize("variant", ["modulated", "plastic", "rnn"])
def test_maze_agent_sequence_equals_stepping(variant):
    torch.manual_seed(0)
    agent = MazeAgent(_maze_core(variant, 16, 6), num_actions=4)
    inputs = torch.randn(3, 7, 16)
    logits, values = agent.sequence(inputs)
    assert logits.shape == (3, 7, 4) and values.shape == (3, 7)
    state = agent.initial_state(3)
    for t in range(7):
        step_logits, step_value, state = agent(inputs[:, t], state)
        torch.testing.assert_close(logits[:, t], step_logits, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(values[:, t], step_value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["modulated", "plastic", "rnn"])
def test_replay_gives_the_step_by_step_gradients(variant):
    torch.manual_seed(0)
    agent = MazeAgent(_maze_core(variant, 16, 6), GridMazeTask.num_actions)
    grads = []
    for replay in (False, True):
        task = GridMazeTask(3, size=5, episode_length=10, generator=torch.Generator().manual_seed(1))
        episodes = run_maze_episodes(agent, task, torch.Generator().manual_seed(2), replay=replay)
        log_probs, entropies = policy_log_probs(episodes["logits"], episodes["actions"])
        loss, _ = a2c_loss(log_probs, episodes["values"], entropies, episodes["rewards"], gamma=0.9,
                           value_coef=0.1, entropy_coef=0.03, returns_method="matrix")
        agent.zero_grad()
        loss.backward()
        grads.append({name: p.grad.clone() for name, p in agent.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6, msg=name)


def test_random_episodes_are_recorded():
    task = GridMazeTask(4, size=5, episode_length=9, wall_penalty=0.0, generator=torch.Generator().manual_seed(0))
    out = run_maze_episodes(None, task, torch.Generator().manual_seed(1), record=True)
    assert set(out) == {"actions", "rewards", "positions", "reward_cells"}
    assert out["actions"].shape == (4, 9) and out["rewards"].shape == (4, 9)
    assert out["positions"].shape == (4, 10, 2) and out["reward_cells"].shape == (4, 2)
    assert torch.equal(out["positions"][:, 0], torch.full((4, 2), 2))  # every episode starts at the centre
    assert set(out["rewards"].unique().tolist()) <= {0.0, 10.0}
    # the same generators give the same episodes
    task = GridMazeTask(4, size=5, episode_length=9, wall_penalty=0.0, generator=torch.Generator().manual_seed(0))
    again = run_maze_episodes(None, task, torch.Generator().manual_seed(1), record=True)
    assert all(torch.equal(out[key], again[key]) for key in out)


def test_agent_episodes_have_logits_and_values():
    agent = MazeAgent(RNNCell(16, 5))
    task = GridMazeTask(2, size=5, episode_length=6, generator=torch.Generator().manual_seed(0))
    out = run_maze_episodes(agent, task, torch.Generator().manual_seed(1))
    assert out["logits"].shape == (2, 6, 4) and out["values"].shape == (2, 6)
    assert out["logits"].requires_grad
    with torch.no_grad():
        task = GridMazeTask(2, size=5, episode_length=6, generator=torch.Generator().manual_seed(0))
        frozen = run_maze_episodes(agent, task, torch.Generator().manual_seed(1), replay=True)
    assert not frozen["logits"].requires_grad  # without gradients there is nothing to replay
    torch.testing.assert_close(frozen["logits"], out["logits"].detach())
