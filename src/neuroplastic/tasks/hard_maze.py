"""The breadcrumb hard maze: a rangefinder robot steered through Lehman & Stanley's hard maze, as batched tensors.

Lehman & Stanley 2011, "Abandoning objectives: evolution through the search for novelty alone" (the hard maze);
used with a breadcrumb fitness by Lehman, Chen, Clune & Stanley 2018, "Safe mutations for deep and recurrent
neural networks through output gradients" (a 6 x 15 ReLU network steers the robot; fitness = minus the
breadcrumb distance to the goal, the length of the shortest path along the maze, at the end of the episode).

Geometry and robot: the reference code of Lehman et al. 2018 (uber-research/safemutations, ``hard_maze.txt``
and the simulator ``maze.h``, itself from Lehman's novelty-search maze simulator): a 400-step episode, start
``(36, 184)`` with heading 0 degrees, goal ``(31, 20)``, the 13 wall segments of :data:`HARD_MAZE_WALLS`
(screen coordinates, y down; headings in degrees). Per step, with network outputs ``o1, o2`` clipped to [0, 1]:

- ``d_w = clip((o1 - 0.5) * 6 - w, -0.2, 0.2)``, ``w = clip(w + d_w, -3, 3)`` (angular velocity, degrees/step);
  ``d_v = clip((o2 - 0.5) * 6 - v, -0.2, 0.2)``, ``v = clip(v + d_v, -3, 3)`` (speed, units/step);
- ``p' = p + v * (cos h, sin h)`` with the heading ``h`` before the turn; then ``h = h + w`` wrapped into
  [0, 360]; the move is refused (the robot stays) when ``p'`` is closer than the radius 8 to a wall;
- the goal is reached once the robot comes within 10 units of it (it may leave again).

Observation, 11 values (:data:`OBSERVATION_SIZE`): a bias 1; six rangefinders at -90, -45, 0, 45, 90, -180
degrees from the heading, the distance to the nearest wall crossed by a 100-unit ray over 100 (1 when nothing
is hit); four radar pie slices, 1 for the slice holding the goal's direction relative to the heading, in the
order [-45, 45), [45, 135), [135, 225), [225, 315) degrees.

Breadcrumb distance (:func:`hard_maze_breadcrumb`): the shortest path from a position to the goal on a grid of unit
spacing, 8-connected (steps 1 and sqrt 2), through the nodes at least ``clearance`` = 4 units from every wall (half
the robot's radius: gaps narrower than the robot are sealed, every position the robot can occupy stays connected);
a position reads the value of its nearest node (the reference truncates the coordinates). The reference uses a
precomputed 4-connected BFS (``hard_maze.txt.npy``), whose steps overestimate diagonal distances by up to sqrt 2;
ours is closer to the true geodesic.

Why not the ``gymnasium-hardmaze`` package (PyPI, 0.1.1): it reimplements the SharpNEAT (C#) hard maze, another
geometry (its XML walls) and robot (3 motor outputs, goal reached within 35 units, points of interest), imports
pygame on load, and has neither the breadcrumb fitness nor a batched version.

The network is queried every ``action_repeat`` = 3 steps (the reference's frameskip); :class:`BatchedHardMaze`
steps ``N`` robots at once, and ``neuroplastic.tasks.hard_maze_env`` wraps one robot as a ``gymnasium.Env``.
"""

from __future__ import annotations

import functools
import heapq
import math
from typing import NamedTuple

import torch
from torch import Tensor

from neuroplastic._checks import check_int, check_tensor

__all__ = [
    "HARD_MAZE_WALLS", "HARD_MAZE_START", "HARD_MAZE_HEADING", "HARD_MAZE_GOAL", "HARD_MAZE_STEPS", "ROBOT_RADIUS",
    "GOAL_RADIUS", "RANGEFINDER_RANGE", "RANGEFINDER_ANGLES", "OBSERVATION_SIZE", "ACTION_REPEAT",
    "BatchedHardMaze", "HardMazeState", "breadcrumb_distance", "breadcrumb_map", "hard_maze_breadcrumb",
    "maze_observation", "maze_radar", "maze_rangefinders", "maze_step", "wall_collisions",
]

HARD_MAZE_WALLS: tuple[tuple[float, float, float, float], ...] = (
    (41, 5, 3, 8), (3, 8, 4, 49), (4, 49, 57, 53), (4, 49, 7, 202), (7, 202, 195, 198), (195, 198, 186, 8),
    (186, 8, 39, 5), (56, 54, 56, 157), (57, 106, 158, 162), (77, 201, 108, 164), (6, 80, 33, 121),
    (192, 146, 87, 91), (56, 55, 133, 30),
)
"""The hard maze's walls ``(x1, y1, x2, y2)``, from the reference's ``hard_maze.txt``."""
HARD_MAZE_START = (36.0, 184.0)
HARD_MAZE_HEADING = 0.0
HARD_MAZE_GOAL = (31.0, 20.0)
HARD_MAZE_STEPS = 400
ROBOT_RADIUS = 8.0
GOAL_RADIUS = 10.0
RANGEFINDER_RANGE = 100.0
RANGEFINDER_ANGLES = (-90.0, -45.0, 0.0, 45.0, 90.0, -180.0)
OBSERVATION_SIZE = 1 + len(RANGEFINDER_ANGLES) + 4
ACTION_REPEAT = 3
BREADCRUMB_CLEARANCE = 4.0


class HardMazeState(NamedTuple):
    """``N`` robots: ``position [N, 2]``, ``heading [N]`` (degrees), ``speed [N]``, ``angular_velocity [N]``,
    ``reached_goal [N]`` bool (ever within :data:`GOAL_RADIUS`), ``collisions [N]`` int64 (refused moves)."""

    position: Tensor
    heading: Tensor
    speed: Tensor
    angular_velocity: Tensor
    reached_goal: Tensor
    collisions: Tensor


def _walls(walls: Tensor | None, like: Tensor) -> Tensor:
    if walls is None:
        return torch.tensor(HARD_MAZE_WALLS, dtype=like.dtype, device=like.device)
    return walls.to(like.device, like.dtype)


def _cross(a: Tensor, b: Tensor) -> Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def maze_rangefinders(position: Tensor, heading: Tensor, walls: Tensor | None = None, *,
                      max_range: float = RANGEFINDER_RANGE, angles: tuple[float, ...] = RANGEFINDER_ANGLES) -> Tensor:
    """Distance along each rangefinder ray to the nearest wall it crosses, ``max_range`` when none: ``[N, R]``.

    Ray ``k`` goes from ``p`` to ``p + max_range * (cos(h + a_k), sin(h + a_k))`` (degrees); a wall ``A -> B``
    is hit where ``A + r (B - A) = p + s (ray)`` with ``0 < r < 1`` and ``0 < s < 1`` (as the reference).
    ``position [N, 2]``, ``heading [N]``, ``walls [W, 4]`` (default: the hard maze).
    """
    walls = _walls(walls, position)
    angle = torch.deg2rad(heading[:, None] + torch.tensor(angles, dtype=position.dtype, device=position.device))
    ray = max_range * torch.stack((torch.cos(angle), torch.sin(angle)), -1)  # [N, R, 2]
    a, edge = walls[:, :2], walls[:, 2:] - walls[:, :2]  # [W, 2]
    offset = a - position[:, None, None, :]  # A - C: [N, 1, W, 2]
    ray_ = ray[:, :, None, :]  # [N, R, 1, 2]
    denominator = _cross(edge, ray_)  # [N, R, W]
    safe = torch.where(denominator == 0, torch.ones_like(denominator), denominator)
    r = _cross(ray_, offset) / safe
    s = _cross(edge, offset) / safe
    hit = (denominator != 0) & (r > 0) & (r < 1) & (s > 0) & (s < 1)
    point = a + r[..., None] * edge  # [N, R, W, 2]
    distance = torch.linalg.vector_norm(point - position[:, None, None, :], dim=-1)
    distance = torch.where(hit, distance, torch.full_like(distance, max_range))
    return distance.amin(-1).clamp(max=max_range)


def maze_radar(position: Tensor, heading: Tensor, goal: Tensor) -> Tensor:
    """One-hot pie-slice radar of the goal's direction relative to the heading, ``[N, 4]``: slice ``k`` covers
    ``[-45 + 90 k, 45 + 90 k)`` degrees. ``position [N, 2]``, ``heading [N]`` (degrees), ``goal [2]``."""
    delta = goal - position
    angle = torch.rad2deg(torch.atan2(delta[:, 1], delta[:, 0])) - heading
    index = torch.floor(torch.remainder(angle + 45.0, 360.0) / 90.0).long().clamp(0, 3)
    return torch.nn.functional.one_hot(index, 4).to(position.dtype)


def _segment_distance(points: Tensor, walls: Tensor) -> Tensor:
    """Distance of each point ``[N, 2]`` to each segment ``[W, 4]``: ``[N, W]``."""
    a, edge = walls[:, :2], walls[:, 2:] - walls[:, :2]
    length2 = (edge * edge).sum(-1)
    u = ((points[:, None, :] - a) * edge).sum(-1) / torch.where(length2 == 0, torch.ones_like(length2), length2)
    nearest = a + u.clamp(0, 1)[..., None] * edge
    return torch.linalg.vector_norm(points[:, None, :] - nearest, dim=-1)


def wall_collisions(position: Tensor, walls: Tensor | None = None, radius: float = ROBOT_RADIUS) -> Tensor:
    """Whether a robot of ``radius`` at ``position [N, 2]`` overlaps a wall (distance ``< radius``): ``[N]`` bool."""
    return (_segment_distance(position, _walls(walls, position)) < radius).any(-1)


def maze_observation(state: HardMazeState, walls: Tensor | None = None,
                     goal: tuple[float, float] = HARD_MAZE_GOAL) -> Tensor:
    """The robots' sensors ``[N, 11]``: bias 1, six rangefinders over their range, four radar slices."""
    position = state.position
    goal_t = torch.tensor(goal, dtype=position.dtype, device=position.device)
    ones = position.new_ones(position.shape[0], 1)
    ranges = maze_rangefinders(position, state.heading, walls) / RANGEFINDER_RANGE
    return torch.cat((ones, ranges, maze_radar(position, state.heading, goal_t)), 1)


def maze_step(state: HardMazeState, action: Tensor, walls: Tensor | None = None,
              goal: tuple[float, float] = HARD_MAZE_GOAL) -> HardMazeState:
    """One simulator step of every robot under ``action [N, 2]`` (turn, speed in [0, 1], clipped): the module
    docstring's equations. Returns the new state."""
    action = action.to(state.position.dtype).clamp(0.0, 1.0)
    d_turn = ((action[:, 0] - 0.5) * 6.0 - state.angular_velocity).clamp(-0.2, 0.2)
    d_speed = ((action[:, 1] - 0.5) * 6.0 - state.speed).clamp(-0.2, 0.2)
    angular_velocity = (state.angular_velocity + d_turn).clamp(-3.0, 3.0)
    speed = (state.speed + d_speed).clamp(-3.0, 3.0)
    radians = torch.deg2rad(state.heading)
    moved = state.position + speed[:, None] * torch.stack((torch.cos(radians), torch.sin(radians)), 1)
    heading = state.heading + angular_velocity
    heading = torch.where(heading > 360.0, heading - 360.0, heading)
    heading = torch.where(heading < 0.0, heading + 360.0, heading)
    blocked = wall_collisions(moved, walls)
    position = torch.where(blocked[:, None], state.position, moved)
    goal_t = torch.tensor(goal, dtype=position.dtype, device=position.device)
    reached = state.reached_goal | (torch.linalg.vector_norm(position - goal_t, dim=1) < GOAL_RADIUS)
    return HardMazeState(position, heading, speed, angular_velocity, reached, state.collisions + blocked.long())


def breadcrumb_map(walls: Tensor, goal: tuple[float, float], *, clearance: float = BREADCRUMB_CLEARANCE) -> Tensor:
    """Shortest-path distance to ``goal`` from every node of the unit grid ``[X, Y]`` (node ``(i, j)`` at
    ``x = i, y = j``; the grid covers the walls' extent plus 2): 8-connected moves of length 1 and sqrt 2
    through the nodes at least ``clearance`` from every wall ``[W, 4]``; inf where no such path exists.

    Computed with Dijkstra's algorithm on the grid graph (the goal's nearest node starts at its distance to the
    goal). float64 on the CPU.
    """
    walls = walls.detach().to("cpu", torch.float64)
    size_x = int(math.ceil(float(walls[:, [0, 2]].max()))) + 3
    size_y = int(math.ceil(float(walls[:, [1, 3]].max()))) + 3
    xs, ys = torch.meshgrid(torch.arange(size_x, dtype=torch.float64), torch.arange(size_y, dtype=torch.float64),
                            indexing="ij")
    nodes = torch.stack((xs, ys), -1).reshape(-1, 2)
    free = (_segment_distance(nodes, walls) >= clearance).all(1).reshape(size_x, size_y)
    gx, gy = int(round(goal[0])), int(round(goal[1]))
    if not (0 <= gx < size_x and 0 <= gy < size_y) or not bool(free[gx, gy]):
        raise ValueError(f"goal {goal} must lie inside the grid and at least clearance={clearance} from every wall")
    # Dijkstra on the grid graph, on flat Python lists (node n = i * size_y + j).
    passable = free.reshape(-1).tolist()
    distance = [math.inf] * (size_x * size_y)
    source = gx * size_y + gy
    distance[source] = math.hypot(goal[0] - gx, goal[1] - gy)
    moves = [(dx, dy, dx * size_y + dy, math.hypot(dx, dy)) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
    queue = [(distance[source], source)]
    while queue:
        d, node = heapq.heappop(queue)
        if d > distance[node]:
            continue
        i, j = divmod(node, size_y)
        for dx, dy, step, cost in moves:
            other = node + step
            if 0 <= i + dx < size_x and 0 <= j + dy < size_y and passable[other] and d + cost < distance[other]:
                distance[other] = d + cost
                heapq.heappush(queue, (d + cost, other))
    return torch.tensor(distance, dtype=torch.float64).reshape(size_x, size_y)


@functools.lru_cache(maxsize=1)
def _hard_maze_breadcrumb() -> Tensor:
    return breadcrumb_map(torch.tensor(HARD_MAZE_WALLS, dtype=torch.float64), HARD_MAZE_GOAL)


def hard_maze_breadcrumb() -> Tensor:
    """The hard maze's breadcrumb map (:func:`breadcrumb_map` of its walls and goal), ``[X, Y]`` float64, computed
    once per process (a copy is returned)."""
    return _hard_maze_breadcrumb().clone()


def breadcrumb_distance(position: Tensor, crumbs: Tensor | None = None) -> Tensor:
    """The breadcrumb distance of ``position [N, 2]``: the map's value at the nearest grid node, ``[N]`` in the
    positions' dtype (``crumbs``: a :func:`breadcrumb_map`, default the hard maze's). Positions off the grid read
    the nearest edge node."""
    check_tensor("position", position, (None, 2))
    crumbs = _hard_maze_breadcrumb() if crumbs is None else crumbs
    crumbs = crumbs.to(position.device)
    index = torch.round(position.detach()).long()
    i = index[:, 0].clamp(0, crumbs.shape[0] - 1)
    j = index[:, 1].clamp(0, crumbs.shape[1] - 1)
    return crumbs[i, j].to(position.dtype)


class BatchedHardMaze:
    """``num_envs`` robots in the hard maze, stepped together; each :meth:`step` holds the action for
    ``action_repeat`` simulator steps (the reference's frameskip), up to ``max_steps`` simulator steps.

    ``reset() -> observation [N, 11]``; ``step(action [N, 2]) -> (observation [N, 11], reward [N], done)``:
    the reward is 0 until the episode's last step, then minus the breadcrumb distance of the final position
    (the paper's fitness), and ``done`` is a bool shared by all robots. ``state`` holds the robots
    (:class:`HardMazeState`), ``steps`` the simulator steps taken.

    Args:
        num_envs: number of robots (int >= 1).
        max_steps: simulator steps per episode (paper: 400).
        action_repeat: simulator steps per action (paper: 3).
        dtype, device: of the state and observations (float64 by default).
    """

    def __init__(self, num_envs: int, *, max_steps: int = HARD_MAZE_STEPS, action_repeat: int = ACTION_REPEAT,
                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> None:
        self.num_envs = check_int("num_envs", num_envs)
        self.max_steps = check_int("max_steps", max_steps)
        self.action_repeat = check_int("action_repeat", action_repeat)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.dtype, self.device = dtype, torch.device(device) if device is not None else torch.device("cpu")
        self.walls = torch.tensor(HARD_MAZE_WALLS, dtype=dtype, device=self.device)
        self.steps = 0
        self.state = self._initial()

    def _initial(self) -> HardMazeState:
        n, kw = self.num_envs, {"dtype": self.dtype, "device": self.device}
        position = torch.tensor(HARD_MAZE_START, **kw).expand(n, 2).clone()
        zeros = torch.zeros(n, **kw)
        goal = torch.tensor(HARD_MAZE_GOAL, **kw)
        reached = torch.linalg.vector_norm(position - goal, dim=1) < GOAL_RADIUS
        return HardMazeState(position, zeros + HARD_MAZE_HEADING, zeros.clone(), zeros.clone(), reached,
                             torch.zeros(n, dtype=torch.int64, device=self.device))

    @property
    def done(self) -> bool:
        return self.steps >= self.max_steps

    def reset(self) -> Tensor:
        """Every robot back at the start; returns the first observation ``[N, 11]``."""
        self.steps = 0
        self.state = self._initial()
        return maze_observation(self.state, self.walls)

    def observation(self) -> Tensor:
        return maze_observation(self.state, self.walls)

    def breadcrumb_distance(self) -> Tensor:
        """The robots' breadcrumb distances now, ``[N]``."""
        return breadcrumb_distance(self.state.position)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, bool]:
        """Hold ``action [N, 2]`` (finite; clipped to [0, 1]) for ``action_repeat`` steps (fewer at the end)."""
        check_tensor("action", action, (self.num_envs, 2))
        if self.done:
            raise ValueError(f"the episode is over ({self.steps} of max_steps={self.max_steps} steps): call reset()")
        if not bool(torch.isfinite(action).all()):
            raise ValueError("action must be finite (NaN or inf in a network's output): replace it before stepping")
        action = action.to(self.device, self.dtype)
        for _ in range(min(self.action_repeat, self.max_steps - self.steps)):
            self.state = maze_step(self.state, action, self.walls)
            self.steps += 1
        reward = -self.breadcrumb_distance() if self.done else self.state.position.new_zeros(self.num_envs)
        return self.observation(), reward, self.done

