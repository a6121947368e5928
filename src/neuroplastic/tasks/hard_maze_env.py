"""The breadcrumb hard maze as a ``gymnasium.Env``, registered as ``neuroplastic/HardMaze-v0``.

One robot, simulated in plain Python floats straight from the reference simulator's steps (``maze.h`` of
uber-research/safemutations: the ray/segment intersection, ``Point::angle`` and the radar's two-sided slice
test, the point/segment distance), an implementation independent of the batched tensor one in
:mod:`neuroplastic.tasks.hard_maze` (which documents the geometry, the robot and the breadcrumb fitness), so that
each checks the other. ``gymnasium`` is needed here only: ``pip install gymnasium``.

``gymnasium.make("neuroplastic/HardMaze-v0")`` after ``import neuroplastic.tasks.hard_maze_env`` (or
``gymnasium.make("neuroplastic.tasks.hard_maze_env:neuroplastic/HardMaze-v0")``). Observation ``[11]`` float64 in
[0, 1]; action ``[2]`` in [0, 1] (turn, speed; clipped); reward 0 until the last step, then minus the breadcrumb
distance to the goal; ``truncated`` at ``max_steps`` simulator steps (never ``terminated``); ``info``:
``position``, ``heading``, ``reached_goal``, ``collisions``, ``breadcrumb_distance``.
"""

from __future__ import annotations

import math
from typing import Any

try:
    import gymnasium
    from gymnasium import spaces
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("neuroplastic.tasks.hard_maze_env needs gymnasium: pip install gymnasium") from error
import numpy as np
import torch

from neuroplastic._checks import check_int
from neuroplastic.tasks.hard_maze import (
    ACTION_REPEAT,
    GOAL_RADIUS,
    HARD_MAZE_GOAL,
    HARD_MAZE_HEADING,
    HARD_MAZE_START,
    HARD_MAZE_STEPS,
    HARD_MAZE_WALLS,
    OBSERVATION_SIZE,
    RANGEFINDER_ANGLES,
    RANGEFINDER_RANGE,
    ROBOT_RADIUS,
    breadcrumb_distance,
)

__all__ = ["HARD_MAZE_ID", "HardMazeEnv", "register_hard_maze"]

HARD_MAZE_ID = "neuroplastic/HardMaze-v0"
_DEGREE = math.pi / 180.0


def _intersection(wall: tuple[float, ...], c: tuple[float, ...], d: tuple[float, ...]) -> tuple[float, float] | None:
    """Where wall ``A -> B`` crosses segment ``C -> D`` strictly inside both (``Line::intersection``)."""
    ax, ay, bx, by = wall
    r_top = (ay - c[1]) * (d[0] - c[0]) - (ax - c[0]) * (d[1] - c[1])
    s_top = (ay - c[1]) * (bx - ax) - (ax - c[0]) * (by - ay)
    bottom = (bx - ax) * (d[1] - c[1]) - (by - ay) * (d[0] - c[0])
    if bottom == 0:
        return None
    r, s = r_top / bottom, s_top / bottom
    if 0 < r < 1 and 0 < s < 1:
        return ax + r * (bx - ax), ay + r * (by - ay)
    return None


def _segment_distance(wall: tuple[float, ...], x: float, y: float) -> float:
    """Distance from ``(x, y)`` to wall ``A -> B`` (``Line::distance``)."""
    ax, ay, bx, by = wall
    length2 = (bx - ax) ** 2 + (by - ay) ** 2
    if length2 == 0:
        return math.hypot(x - ax, y - ay)
    u = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length2
    if u < 0 or u > 1:
        return min(math.hypot(x - ax, y - ay), math.hypot(x - bx, y - by))
    return math.hypot(x - (ax + u * (bx - ax)), y - (ay + u * (by - ay)))


def _angle(x: float, y: float) -> float:
    """The direction of ``(x, y)`` in degrees, in (-90, 270] (``Point::angle``)."""
    if x == 0.0:
        return 90.0 if y > 0.0 else 270.0
    angle = math.atan(y / x) / _DEGREE
    return angle if x > 0.0 else angle + 180.0


class HardMazeEnv(gymnasium.Env):
    """One robot in the breadcrumb hard maze (module docstring); deterministic (``reset(seed=...)`` is accepted).

    Args:
        max_steps: simulator steps per episode (paper: 400).
        action_repeat: simulator steps per :meth:`step` (paper: 3, the network's frameskip).
    """

    metadata = {"render_modes": []}

    def __init__(self, max_steps: int = HARD_MAZE_STEPS, action_repeat: int = ACTION_REPEAT) -> None:
        self.max_steps = check_int("max_steps", max_steps)
        self.action_repeat = check_int("action_repeat", action_repeat)
        self.observation_space = spaces.Box(0.0, 1.0, (OBSERVATION_SIZE,), dtype=np.float64)
        self.action_space = spaces.Box(0.0, 1.0, (2,), dtype=np.float64)
        self.walls = [tuple(float(v) for v in wall) for wall in HARD_MAZE_WALLS]
        self._reset_state()

    def _reset_state(self) -> None:
        self.x, self.y = HARD_MAZE_START
        self.heading, self.speed, self.angular_velocity = HARD_MAZE_HEADING, 0.0, 0.0
        self.steps, self.collisions = 0, 0
        self.reached_goal = self._goal_distance() < GOAL_RADIUS

    def _goal_distance(self) -> float:
        return math.hypot(self.x - HARD_MAZE_GOAL[0], self.y - HARD_MAZE_GOAL[1])

    def _rangefinders(self) -> list[float]:
        ranges = []
        for offset in RANGEFINDER_ANGLES:
            # the reference projects the ray at the sensor's angle, then rotates it by the heading
            px = self.x + math.cos(offset * _DEGREE) * RANGEFINDER_RANGE
            py = self.y + math.sin(offset * _DEGREE) * RANGEFINDER_RANGE
            ox, oy = px - self.x, py - self.y
            rad = self.heading * _DEGREE
            end = (self.x + math.cos(rad) * ox - math.sin(rad) * oy, self.y + math.sin(rad) * ox + math.cos(rad) * oy)
            found = RANGEFINDER_RANGE
            for wall in self.walls:
                point = _intersection(wall, (self.x, self.y), end)
                if point is not None:
                    found = min(found, math.hypot(point[0] - self.x, point[1] - self.y))
            ranges.append(found)
        return ranges

    def _radar(self) -> list[float]:
        # rotate the goal by -heading about the robot, then take its direction
        rad = -self.heading * _DEGREE
        ox, oy = HARD_MAZE_GOAL[0] - self.x, HARD_MAZE_GOAL[1] - self.y
        angle = _angle(math.cos(rad) * ox - math.sin(rad) * oy, math.sin(rad) * ox + math.cos(rad) * oy)
        slices = ((315.0, 405.0), (45.0, 135.0), (135.0, 225.0), (225.0, 315.0))
        return [1.0 if (low <= angle < high or low <= angle + 360.0 < high) else 0.0 for low, high in slices]

    def _observation(self) -> np.ndarray:
        ranges = [r / RANGEFINDER_RANGE for r in self._rangefinders()]
        return np.array([1.0, *ranges, *self._radar()], dtype=np.float64)

    def _tick(self, turn: float, speed: float) -> None:
        turn, speed = min(max(turn, 0.0), 1.0), min(max(speed, 0.0), 1.0)
        d_turn = min(max((turn - 0.5) * 6.0 - self.angular_velocity, -0.2), 0.2)
        d_speed = min(max((speed - 0.5) * 6.0 - self.speed, -0.2), 0.2)
        self.angular_velocity = min(max(self.angular_velocity + d_turn, -3.0), 3.0)
        self.speed = min(max(self.speed + d_speed, -3.0), 3.0)
        vx = math.cos(self.heading * _DEGREE) * self.speed
        vy = math.sin(self.heading * _DEGREE) * self.speed
        self.heading += self.angular_velocity
        if self.heading > 360.0:
            self.heading -= 360.0
        if self.heading < 0.0:
            self.heading += 360.0
        x, y = self.x + vx, self.y + vy
        if any(_segment_distance(wall, x, y) < ROBOT_RADIUS for wall in self.walls):
            self.collisions += 1
        else:
            self.x, self.y = x, y
        self.steps += 1
        self.reached_goal = self.reached_goal or self._goal_distance() < GOAL_RADIUS

    def breadcrumb_distance(self) -> float:
        """The breadcrumb distance of the robot's position now."""
        return float(breadcrumb_distance(torch.tensor([[self.x, self.y]], dtype=torch.float64))[0])

    def _info(self) -> dict[str, Any]:
        return {"position": (self.x, self.y), "heading": self.heading, "reached_goal": self.reached_goal,
                "collisions": self.collisions, "breadcrumb_distance": self.breadcrumb_distance()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._reset_state()
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        values = np.asarray(action, dtype=np.float64)
        if values.shape != (2,):
            raise ValueError(f"action must have shape [2] (turn, speed in [0, 1]), got {list(values.shape)}")
        if not np.isfinite(values).all():
            raise ValueError(f"action must be finite, got {values.tolist()}")
        if self.steps >= self.max_steps:
            raise ValueError(f"the episode is over ({self.steps} of max_steps={self.max_steps} steps): call reset()")
        for _ in range(min(self.action_repeat, self.max_steps - self.steps)):
            self._tick(float(values[0]), float(values[1]))
        truncated = self.steps >= self.max_steps
        info = self._info()
        reward = -info["breadcrumb_distance"] if truncated else 0.0
        return self._observation(), reward, False, truncated, info


def register_hard_maze() -> None:
    """Register :class:`HardMazeEnv` with gymnasium as ``neuroplastic/HardMaze-v0`` (once; done on import)."""
    if HARD_MAZE_ID not in gymnasium.registry:
        gymnasium.register(HARD_MAZE_ID, entry_point=f"{__name__}:HardMazeEnv")


register_hard_maze()
