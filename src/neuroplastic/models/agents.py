"""Recurrent actor-critic agents: a recurrent core (plastic or not) with a policy head and a value head.

Miconi, Rawal, Clune & Stanley 2019 (Backpropamine, ICLR), trained by advantage actor-critic
(:func:`neuroplastic.tasks.a2c_loss`). The core is any cell with ``hidden_size``,
``initial_state(batch_size, device=...)`` and ``core(x, state) -> (h, state)``:
:class:`~neuroplastic.plasticity.PlasticRNNCell` or :class:`~neuroplastic.models.RNNCell`.

- :class:`ActorCritic`: two heads, ``logits = h_t W_pi + b_pi`` and ``V_t = h_t w_v + b_v`` (cue-reward).
- :class:`MazeAgent`: one joint head, ``[logits, V_t] = h_t W_out + b_out``, as the authors' released
  ``maze.py`` (grid maze); it can also replay whole episodes at once (:meth:`MazeAgent.sequence`).
  :func:`run_maze_episodes` plays a batch of :class:`~neuroplastic.tasks.GridMazeTask` episodes with it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_int
from neuroplastic.plasticity import PlasticRNNCell, plastic_scan
from neuroplastic.tasks import GridMazeTask

__all__ = ["ActorCritic", "MazeAgent", "run_maze_episodes"]



def _check_core(name: str, core: object) -> None:
    if not isinstance(core, nn.Module) or not isinstance(getattr(core, "hidden_size", None), int):
        raise TypeError(f"{name} must be a recurrent cell (an nn.Module with an int hidden_size and "
                        f"initial_state), got {type(core).__name__}")

class ActorCritic(nn.Module):
    """A recurrent cell with a policy head (action logits) and a value head, both reading the hidden state.

    Parameters are created in the order cell (given), policy head, value head.
    Shapes: ``obs [B, I]`` -> ``(logits [B, A], value [B], state)``.
    """

    def __init__(self, cell: nn.Module, num_actions: int = 2) -> None:
        super().__init__()
        _check_core("cell", cell)
        check_int("num_actions", num_actions)
        self.cell = cell
        self.policy = nn.Linear(cell.hidden_size, num_actions)
        self.value = nn.Linear(cell.hidden_size, 1)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Any:
        """The cell's zero state for ``batch_size`` episodes."""
        return self.cell.initial_state(batch_size, device=device)

    def forward(self, obs: Tensor, state: Any) -> tuple[Tensor, Tensor, Any]:
        """``obs [B, I]`` -> ``(logits [B, A], value [B], state)``."""
        hidden, state = self.cell(obs, state)
        return self.policy(hidden), self.value(hidden).squeeze(-1), state


class MazeAgent(nn.Module):
    """A recurrent core with one linear head giving ``num_actions`` logits and the value.

    Miconi et al. 2019 (Backpropamine), grid maze: ``[logits, V] = h_t @ W_out + b_out``.
    """

    def __init__(self, core: nn.Module, num_actions: int = 4) -> None:
        super().__init__()
        _check_core("core", core)
        check_int("num_actions", num_actions)
        self.core = core
        self.num_actions = num_actions
        self.head = nn.Linear(core.hidden_size, num_actions + 1)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None):
        """The core's zero state for ``batch_size`` episodes."""
        return self.core.initial_state(batch_size, device=device)

    def forward(self, x: Tensor, state) -> tuple[Tensor, Tensor, object]:
        """One step: ``x [B, I]`` -> ``(logits [B, A], value [B], state)``."""
        hidden, state = self.core(x, state)
        out = self.head(hidden)
        return out[:, : self.num_actions], out[:, self.num_actions], state

    def sequence(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Whole episodes from a zero state: ``inputs [B, T, I]`` -> ``(logits [B, T, A], values [B, T])``.

        A plastic core runs as one fused autograd node (:func:`neuroplastic.plasticity.plastic_scan`, fused:
        traces updated in place, recomputed chunk by chunk in the backward pass); others step by step.
        """
        batch, steps = inputs.shape[:2]
        state = self.initial_state(batch, device=inputs.device)
        if isinstance(self.core, PlasticRNNCell):
            hidden, _ = plastic_scan(self.core, inputs, state)
        else:
            outputs = []
            for t in range(steps):
                h, state = self.core(inputs[:, t], state)
                outputs.append(h)
            hidden = torch.stack(outputs, 1)
        out = self.head(hidden)
        return out[..., : self.num_actions], out[..., self.num_actions]


def run_maze_episodes(
    agent: MazeAgent | None, task: GridMazeTask, generator: torch.Generator, *, record: bool = False,
    replay: bool = False,
) -> dict[str, Tensor]:
    """Play one batch of whole grid-maze episodes, sampling actions from the agent's policy.

    Steps the agent one time step at a time (the observation at t + 1 depends on the action at t).
    With ``agent=None`` actions are uniform (the random baseline). Gradients flow if enabled: with
    ``replay=False`` through the step-by-step graph (every step's ``[B, N, N]`` trace is kept by autograd);
    with ``replay=True`` the episodes are played without a graph, then the recorded observations are run
    again through :meth:`MazeAgent.sequence` (the fused sequence backward of the plastic cell): the same
    logits, values and gradients, with far less memory on long episodes and large networks.

    Returns:
        dict with ``logits [B, T, A]`` and ``values [B, T]`` (absent for the random agent), ``actions [B, T]``,
        ``rewards [B, T]``, and with ``record`` the positions ``[B, T + 1, 2]`` and reward cells ``[B, 2]``.
    """
    obs = task.reset()
    batch = task.batch_size
    state = None if agent is None else agent.initial_state(batch, device=obs.device)
    logits, values, actions, rewards, positions, observations = [], [], [], [], [], []
    if record:
        positions.append(task.position)
    uniform = torch.full((batch, task.num_actions), 1.0 / task.num_actions)
    replay = replay and agent is not None and torch.is_grad_enabled()
    done = False
    with torch.set_grad_enabled(torch.is_grad_enabled() and not replay):
        while not done:
            if agent is None:
                probs = uniform
            else:
                if replay:
                    observations.append(obs)
                logit, value, state = agent(obs, state)
                logits.append(logit)
                values.append(value)
                probs = torch.softmax(logit.detach(), dim=-1)
            action = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(obs.device)
            obs, reward, done = task.step(action)
            actions.append(action)
            rewards.append(reward)
            if record:
                positions.append(task.position)
    out = {"actions": torch.stack(actions, 1), "rewards": torch.stack(rewards, 1)}
    if agent is not None:
        if replay:
            out["logits"], out["values"] = agent.sequence(torch.stack(observations, 1))
        else:
            out["logits"] = torch.stack(logits, 1)
            out["values"] = torch.stack(values, 1)
    if record:
        out["positions"] = torch.stack(positions, 1)
        out["reward_cells"] = task.reward_position
    return out
