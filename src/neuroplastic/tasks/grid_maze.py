"""Grid maze exploration, the navigation task of Miconi et al. 2018 and Backpropamine (2019).

Miconi, Clune & Stanley 2018, "Differentiable plasticity" (ICML), section 4.5, and Miconi, Rawal, Clune &
Stanley 2019, "Backpropamine" (ICLR), section 4.2; layout and rules checked against the authors' released
``maze/maze.py``.

The maze is a square grid of ``size`` x ``size`` cells (``size`` odd, default 9)::

    - every border cell is a wall;
    - inside, a cell (row, col) is a wall when both row and col are even (a regular lattice of pillars),
    - except the centre cell (size // 2, size // 2), which is always free (for size 9 the centre would be
      a pillar; freeing it gives the agent a landmark and a free start cell).

For size 9 (``#`` wall, ``.`` free, ``C`` centre)::

    # # # # # # # # #
    # . . . . . . . #
    # . # . # . # . #
    # . . . . . . . #
    # . # . C . # . #
    # . . . . . . . #
    # . # . # . # . #
    # . . . . . . . #
    # # # # # # # # #

Each episode a reward cell is drawn uniformly among the free cells (not the start cell) and stays fixed
for the whole episode. The agent starts at the centre (``start="center"``, as the released code) or on a
random free cell. Actions: 0 up, 1 down, 2 left, 3 right. Moving into a wall leaves the agent in place and
costs ``wall_penalty``; entering the reward cell earns ``reward_value`` and teleports the agent to a free
cell drawn uniformly among those other than the reward cell. The agent sees only its 3 x 3 neighbourhood,
so it must explore, find the reward, remember where it is, and go back to it after each teleport.

Defaults: size 9, reward 10 and episode length 200. Reward 10 and 200 steps are the released code's
defaults; its maze size defaults to 11 and its run command uses 13 (any odd size >= 5 works here). The
wall penalty defaults to 0.1 as the project's specification asks; the released Backpropamine scripts
default to, and are run with, no wall penalty (``wall_penalty=0.0``).
"""

from __future__ import annotations

import numpy as np
import torch

from neuroplastic._checks import check_choice, check_int, check_number, check_tensor
from neuroplastic.tasks._common import (
    DeviceLike,
    ObservationLayout,
    check_actions,
    check_generator,
    resolve_device,
)

__all__ = ["GridMazeTask", "grid_maze_layout", "episode_statistics", "MAZE_ACTIONS"]

MAZE_ACTIONS = ("up", "down", "left", "right")
STARTS = ("center", "random")


def grid_maze_layout(size: int = 9) -> torch.Tensor:
    """Wall map of the papers' grid maze: border walls, pillars where row and column are even, free centre.

    Miconi et al. 2018 (section 4.5) and 2019 (Backpropamine, section 4.2).

    Args:
        size: odd side length >= 5.

    Returns:
        ``[size, size]`` bool tensor, True at walls, indexed ``[row, col]`` with row 0 at the top.
    """
    check_int("size", size, minimum=5)
    if size % 2 == 0:
        raise ValueError(f"size must be an odd int >= 5, got {size}")
    rows = torch.arange(size).unsqueeze(1)
    cols = torch.arange(size).unsqueeze(0)
    border = (rows == 0) | (rows == size - 1) | (cols == 0) | (cols == size - 1)
    pillars = (rows % 2 == 0) & (cols % 2 == 0)
    walls = border | pillars
    walls[size // 2, size // 2] = False
    return walls


class GridMazeTask:
    """Batched grid-maze episodes with a hidden, per-episode reward location.

    Miconi et al. 2019, Backpropamine, section 4.2 (after Miconi et al. 2018, section 4.5). See the
    module docstring for the maze and the rules. All episodes in the batch advance in lockstep; a step is
    vectorised over the batch (no Python loop over episodes).

    Observation ``[B, obs_dim]`` with ``obs_dim = 16`` (indices also by name in :attr:`layout`)::

        0 .. 8    3 x 3 neighbourhood, row-major from the top-left cell (row-1, col-1) to the bottom-right
                  (row+1, col+1): 1.0 for a wall, 0.0 for a free cell; index 4 is the agent's own cell (0)
        9         bias: always 1
        10        time: t / episode_length
        11        reward earned on the previous step (0 at the first step)
        12 .. 15  previous action one-hot (up, down, left, right); all zero at the first step

    Args:
        batch_size: independent episodes ``B``.
        size: maze side, odd, >= 5.
        episode_length: steps per episode.
        reward_value: reward for entering the reward cell (> 0).
        wall_penalty: cost of bumping into a wall (>= 0; the reward is ``-wall_penalty``).
        start: "center" (start at the centre cell; the reward is never there) or "random" (a free cell
            other than the reward cell).
        generator: CPU ``torch.Generator`` for every random draw.
        device: where tensors live (default CPU).

    Attributes:
        obs_dim, num_actions (4), episode_length, layout, walls (``[size, size]`` bool),
        free_cells (``[F, 2]`` long, (row, col) of every free cell).
    """

    num_actions: int = 4

    def __init__(
        self,
        batch_size: int,
        *,
        size: int = 9,
        episode_length: int = 200,
        reward_value: float = 10.0,
        wall_penalty: float = 0.1,
        start: str = "center",
        generator: torch.Generator,
        device: DeviceLike = None,
    ) -> None:
        self.batch_size = check_int("batch_size", batch_size)
        self.size = check_int("size", size, minimum=5)
        self.episode_length = check_int("episode_length", episode_length)
        self.reward_value = float(check_number("reward_value", reward_value, minimum=0, exclusive_minimum=True))
        self.wall_penalty = float(check_number("wall_penalty", wall_penalty, minimum=0))
        self.start = check_choice("start", start, STARTS)
        self.generator = check_generator(generator)
        self.device = resolve_device(device)

        self.walls = grid_maze_layout(size).to(self.device)
        self._walls_flat = self.walls.reshape(-1)
        free_flat = torch.nonzero(~grid_maze_layout(size).reshape(-1)).squeeze(1)  # sorted, CPU
        self._free_flat = free_flat.to(self.device)
        self.free_cells = torch.stack([free_flat // size, free_flat % size], dim=1).to(self.device)
        self.center = (size // 2) * size + size // 2
        self._center_rank = int((free_flat == self.center).nonzero().item())
        # Flat offsets of the 3x3 neighbourhood (row-major) and of the four moves.
        neigh = [dr * size + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
        self._neigh = torch.tensor(neigh, device=self.device)
        self._moves = torch.tensor([-size, size, -1, 1], device=self.device)

        self.layout = ObservationLayout(
            size=16, neighbourhood=slice(0, 9), bias=9, time=10, reward=11, action=slice(12, 16)
        )
        self.obs_dim = self.layout.size
        self._t: int | None = None

    # ------------------------------------------------------------------ sampling helpers
    def _free_cell_except(self, excluded_rank: torch.Tensor) -> torch.Tensor:
        """Flat index of a uniform free cell, per episode, other than the one of rank ``excluded_rank``."""
        n_free = self._free_flat.numel()
        draw = torch.randint(0, n_free - 1, (self.batch_size,), generator=self.generator).to(self.device)
        draw = draw + (draw >= excluded_rank).long()
        return self._free_flat[draw]

    # ------------------------------------------------------------------ episode
    def reset(self) -> torch.Tensor:
        """Start ``B`` new episodes (new reward cells, agents at their start); return the first observation.

        Returns:
            ``[B, obs_dim]`` float observation at step 0.
        """
        b = self.batch_size
        if self.start == "center":
            centre_rank = torch.full((b,), self._center_rank, device=self.device)
            self._reward = self._free_cell_except(centre_rank)
            self._reward_rank = torch.searchsorted(self._free_flat, self._reward)
            self._pos = torch.full((b,), self.center, device=self.device)
        else:
            n_free = self._free_flat.numel()
            reward_rank = torch.randint(0, n_free, (b,), generator=self.generator).to(self.device)
            self._reward = self._free_flat[reward_rank]
            self._reward_rank = reward_rank
            self._pos = self._free_cell_except(reward_rank)
        self._t = 0
        self._prev_reward = torch.zeros(b, device=self.device)
        self._prev_action = torch.zeros(b, self.num_actions, device=self.device)
        return self._observation()

    def _require_reset(self) -> None:
        if self._t is None:
            raise RuntimeError("call reset() before using the task")

    @property
    def t(self) -> int:
        """Steps taken in the current episode."""
        self._require_reset()
        assert self._t is not None
        return self._t

    @property
    def position(self) -> torch.Tensor:
        """``[B, 2]`` long, (row, col) of each agent."""
        self._require_reset()
        return torch.stack([self._pos // self.size, self._pos % self.size], dim=1)

    @property
    def reward_position(self) -> torch.Tensor:
        """``[B, 2]`` long, (row, col) of each episode's reward cell."""
        self._require_reset()
        return torch.stack([self._reward // self.size, self._reward % self.size], dim=1)

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Move every agent by its action, score the move, teleport agents that found the reward.

        Args:
            action: ``[B]`` integer tensor in 0..3 (up, down, left, right).

        Returns:
            ``(obs, reward, done)``: next observation ``[B, obs_dim]``, reward ``[B]`` (``reward_value`` on
            entering the reward cell, ``-wall_penalty`` on bumping into a wall, else 0), and whether the
            episode is over (same for the whole batch; then call :meth:`reset`).
        """
        if self.t >= self.episode_length:
            raise RuntimeError("the episode is over (done was returned); call reset() to start new episodes")
        action = check_actions(action, self.batch_size, self.num_actions, self.device)
        target = self._pos + self._moves[action]
        bumped = self._walls_flat[target]
        pos = torch.where(bumped, self._pos, target)
        found = pos == self._reward
        # Drawn for every agent, used where the reward was found: the random stream ignores outcomes.
        teleport = self._free_cell_except(self._reward_rank)
        self._pos = torch.where(found, teleport, pos)
        reward = found.float() * self.reward_value - bumped.float() * self.wall_penalty
        self._t = self.t + 1
        self._prev_reward = reward
        self._prev_action = torch.nn.functional.one_hot(action, self.num_actions).float()
        return self._observation(), reward, self._t >= self.episode_length

    def _observation(self) -> torch.Tensor:
        lay = self.layout
        obs = torch.zeros(self.batch_size, self.obs_dim, device=self.device)
        obs[:, lay.neighbourhood] = self._walls_flat[self._pos.unsqueeze(1) + self._neigh].float()
        obs[:, lay.bias] = 1.0
        obs[:, lay.time] = self.t / self.episode_length
        obs[:, lay.reward] = self._prev_reward
        obs[:, lay.action] = self._prev_action
        return obs


def episode_statistics(found: torch.Tensor, windows: int, max_hits: int = 8) -> dict[str, np.ndarray]:
    """Per-episode statistics of a grid-maze agent from the steps where it found the reward.

    Args:
        found: ``[E, T]`` bool, True on the steps where the agent entered the reward cell.
        windows: number of equal time windows for the within-episode reward profile, 1 to ``T``.
        max_hits: number of hits for which ``hit_intervals`` is reported.

    Returns:
        ``hits [E]`` rewards found per episode, ``first_half`` and ``second_half [E]`` hits in each half,
        ``window_hits [E, windows]`` hits per window, ``first_hit [E]`` step of the first hit (T if none),
        ``return_time [E]`` mean steps between successive hits after the first (NaN with fewer than 2 hits),
        ``hit_intervals [E, max_hits]`` steps taken to reach the k-th hit: from the start for the first,
        from the previous hit (the teleport) for the others; NaN where the episode has fewer hits.
    """
    check_tensor("found", found, ("E", "T"), floating=False)
    episodes, steps = found.shape
    check_int("windows", windows, maximum=max(steps, 1))
    check_int("max_hits", max_hits, minimum=0)
    found = found.bool().cpu()
    f = found.float().numpy()
    edges = np.linspace(0, steps, windows + 1).round().astype(int)
    window_hits = np.stack([f[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:], strict=True)], 1)
    half = steps // 2
    first_hit = np.full(episodes, steps, dtype=float)
    return_time = np.full(episodes, np.nan)
    hit_intervals = np.full((episodes, max_hits), np.nan)
    for e in range(episodes):
        idx = np.flatnonzero(f[e])
        if idx.size:
            first_hit[e] = idx[0]
        if idx.size >= 2:
            return_time[e] = (idx[-1] - idx[0]) / (idx.size - 1)
        steps_to_hit = np.diff(np.concatenate([[-1], idx]))[:max_hits]  # hit at step t = t + 1 moves
        hit_intervals[e, : steps_to_hit.size] = steps_to_hit
    return {"hits": f.sum(1), "first_half": f[:, :half].sum(1), "second_half": f[:, half:].sum(1),
            "window_hits": window_hits, "first_hit": first_hit, "return_time": return_time,
            "hit_intervals": hit_intervals}
