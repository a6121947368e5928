"""The breadcrumb hard maze: geometry against hand-computed values, the batched simulator against the
gymnasium environment step by step, the breadcrumb map, and a scripted robot that reaches the goal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuroplastic.tasks.hard_maze import (
    HARD_MAZE_GOAL,
    HARD_MAZE_START,
    HARD_MAZE_WALLS,
    BatchedHardMaze,
    HardMazeState,
    breadcrumb_distance,
    breadcrumb_map,
    maze_observation,
    maze_step,
    wall_collisions,
)


def _env():
    """The gymnasium side (skipped without gymnasium): ``(gymnasium, HardMazeEnv, HARD_MAZE_ID)``."""
    gymnasium = pytest.importorskip("gymnasium")
    from neuroplastic.tasks.hard_maze_env import HARD_MAZE_ID, HardMazeEnv

    return gymnasium, HardMazeEnv, HARD_MAZE_ID

# A path from the start to the goal through the maze (bottom corridor, the diagonal corridor up and left, the
# middle, around the end of the wall (56, 55)-(133, 30), the top corridor back left).
PATH = [(36, 184), (70, 170), (100, 150), (118, 153), (140, 175), (175, 165), (166, 148), (150, 141), (110, 119),
        (72, 100), (72, 80), (110, 70), (150, 45), (150, 20), (80, 18), (31, 20)]


def _state(x: float, y: float, heading: float, speed: float = 0.0) -> HardMazeState:
    f = torch.float64
    return HardMazeState(torch.tensor([[x, y]], dtype=f), torch.tensor([heading], dtype=f),
                         torch.tensor([speed], dtype=f), torch.zeros(1, dtype=f), torch.zeros(1, dtype=torch.bool),
                         torch.zeros(1, dtype=torch.int64))


def test_rangefinders_and_radar_at_the_start_by_hand():
    obs = maze_observation(_state(*HARD_MAZE_START, 0.0))[0]
    assert obs[0] == 1
    # heading 0 (+x): the wall (77, 201)-(108, 164) crosses y = 184 at x = 77 + 17 * 31 / 37
    assert float(obs[3]) == pytest.approx((77 + 17 * 31 / 37 - 36) / 100)
    # +90 degrees (+y, down the screen): the bottom wall (7, 202)-(195, 198) at x = 36
    assert float(obs[5]) == pytest.approx((202 - 4 * 29 / 188 - 184) / 100)
    # -180: the left wall (4, 49)-(7, 202) at y = 184; -90: the nearest wall above is 132 away, beyond the range
    assert float(obs[6]) == pytest.approx((36 - (4 + 3 * 135 / 153)) / 100)
    assert float(obs[1]) == 1.0
    # the goal (31, 20) lies up the screen, at about -92 degrees: the [225, 315) slice; facing up, straight ahead
    assert obs[7:].tolist() == [0, 0, 0, 1]
    assert maze_observation(_state(*HARD_MAZE_START, 270.0))[0, 7:].tolist() == [1, 0, 0, 0]
    assert maze_observation(_state(*HARD_MAZE_START, 180.0))[0, 7:].tolist() == [0, 1, 0, 0]


def test_a_robot_driving_into_a_wall_stops_there():
    state = _state(36.0, 190.0, 90.0, speed=3.0)  # heading down the screen at full speed
    forward = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    state = maze_step(state, forward)
    assert state.position[0].tolist() == pytest.approx([36.0, 193.0]) and int(state.collisions) == 0
    for collisions in (1, 2):  # y = 196 would be 5.4 from the bottom wall, closer than the radius 8
        state = maze_step(state, forward)
        assert state.position[0].tolist() == pytest.approx([36.0, 193.0]) and int(state.collisions) == collisions


def test_random_robots_never_enter_a_wall():
    gen = torch.Generator().manual_seed(1)
    maze = BatchedHardMaze(16, action_repeat=1, max_steps=200)
    maze.reset()
    walls = torch.tensor(HARD_MAZE_WALLS, dtype=torch.float64)
    for _ in range(200):
        maze.step(torch.rand(16, 2, generator=gen, dtype=torch.float64))
        assert not bool(wall_collisions(maze.state.position, walls).any())
    assert int(maze.state.collisions.sum()) > 0


def test_breadcrumb_is_zero_at_the_goal_and_falls_along_the_path():
    path = torch.tensor(PATH, dtype=torch.float64)
    crumbs = breadcrumb_distance(path)
    assert float(crumbs[-1]) == 0.0
    assert bool((crumbs[1:] < crumbs[:-1]).all())
    # a geodesic, far longer than the straight line from the start to the goal (about 164)
    assert float(crumbs[0]) > math.dist(HARD_MAZE_START, HARD_MAZE_GOAL) + 200
    # 1-Lipschitz along the path up to the grid's rounding (each lookup within sqrt(2)/2 of its position)
    for a, b in zip(PATH[:-1], PATH[1:], strict=True):
        points = torch.stack([torch.lerp(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64), t)
                              for t in torch.linspace(0, 1, 20, dtype=torch.float64)])
        values = breadcrumb_distance(points)
        steps = torch.linalg.vector_norm(points[1:] - points[:-1], dim=1)
        assert bool(((values[1:] - values[:-1]).abs() <= steps + math.sqrt(2) + 1e-9).all())


def test_breadcrumb_map_of_a_small_box_by_hand():
    box = torch.tensor([[0, 0, 20, 0], [20, 0, 20, 10], [20, 10, 0, 10], [0, 10, 0, 0]], dtype=torch.float64)
    crumbs = breadcrumb_map(box, (5.0, 5.0), clearance=1.0)
    assert float(crumbs[5, 5]) == 0 and float(crumbs[15, 5]) == 10
    assert float(crumbs[15, 8]) == pytest.approx(7 + 3 * math.sqrt(2))  # octile: 3 diagonal steps, 7 straight
    assert math.isinf(float(crumbs[0, 5])) and math.isinf(float(crumbs[22, 5]))  # on a wall, off the box
    divided = torch.cat([box, torch.tensor([[10, 0, 10, 7]], dtype=torch.float64)])
    around = breadcrumb_map(divided, (5.0, 2.0), clearance=1.0)
    # over the divider's top (the node (10, 8), 1 above it), not through it: twice 5 diagonal steps and 1 straight
    assert float(around[15, 2]) == pytest.approx(2 * (5 * math.sqrt(2) + 1))


def test_batched_maze_equals_the_gymnasium_env_step_by_step():
    _, HardMazeEnv, _ = _env()
    n = 4
    maze = BatchedHardMaze(n, action_repeat=1, max_steps=150)
    envs = [HardMazeEnv(max_steps=150, action_repeat=1) for _ in range(n)]
    batched = maze.reset()
    single = np.stack([env.reset(seed=0)[0] for env in envs])
    np.testing.assert_allclose(batched.numpy(), single, atol=1e-12)
    gen = torch.Generator().manual_seed(0)
    for step in range(150):
        if step % 15 == 0:
            action = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 1.2 - 0.1  # some outside [0, 1]
        batched, reward, done = maze.step(action)
        results = [env.step(action[i].numpy()) for i, env in enumerate(envs)]
        np.testing.assert_allclose(batched.numpy(), np.stack([r[0] for r in results]), atol=1e-9)
        positions = np.array([r[4]["position"] for r in results])
        np.testing.assert_allclose(maze.state.position.numpy(), positions, atol=1e-9)
        assert [bool(r[3]) for r in results] == [done] * n and not any(r[2] for r in results)
    np.testing.assert_allclose(reward.numpy(), [r[1] for r in results], atol=1e-9)
    assert maze.state.collisions.tolist() == [env.collisions for env in envs]
    assert bool((reward < 0).all())


def test_action_repeat_and_the_end_of_an_episode():
    gymnasium, _, HARD_MAZE_ID = _env()
    maze = BatchedHardMaze(2, max_steps=10, action_repeat=3)
    env = gymnasium.make(HARD_MAZE_ID, max_steps=10, action_repeat=3)
    env.reset()
    maze.reset()
    action = torch.tensor([[0.7, 0.9], [0.7, 0.9]], dtype=torch.float64)
    for expected_steps, last in ((3, False), (6, False), (9, False), (10, True)):  # the last step holds 1 tick
        _, reward, done = maze.step(action)
        _, env_reward, terminated, truncated, info = env.step(action[0].numpy())
        assert maze.steps == expected_steps and done == last == truncated and not terminated
        assert float(reward[0]) == pytest.approx(env_reward)
    assert env_reward == pytest.approx(-info["breadcrumb_distance"]) and env_reward < 0
    with pytest.raises(ValueError, match="reset"):
        maze.step(action)


def test_a_scripted_robot_following_the_path_reaches_the_goal():
    _, HardMazeEnv, _ = _env()
    env = HardMazeEnv(max_steps=700, action_repeat=1)
    env.reset()
    target = 1
    for _ in range(700):
        if math.dist((env.x, env.y), PATH[target]) < 8 and target < len(PATH) - 1:
            target += 1
        want = math.degrees(math.atan2(PATH[target][1] - env.y, PATH[target][0] - env.x))
        error = (want - env.heading + 180) % 360 - 180
        speed = 2.0 * max(0.0, math.cos(math.radians(min(abs(error), 90))))
        _, _, _, truncated, info = env.step([max(-3, min(3, error)) / 6 + 0.5, speed / 6 + 0.5])
        if info["reached_goal"]:
            break
    assert info["reached_goal"] and info["breadcrumb_distance"] < 12 and not truncated


def test_the_environment_passes_gymnasiums_checker():
    gymnasium, HardMazeEnv, HARD_MAZE_ID = _env()
    from gymnasium.utils.env_checker import check_env

    check_env(HardMazeEnv(), skip_render_check=True)
    env = gymnasium.make(HARD_MAZE_ID)
    obs, info = env.reset(seed=3)
    assert obs.shape == (11,) and info["breadcrumb_distance"] > 400


def test_bad_arguments(library_error):
    _, HardMazeEnv, _ = _env()
    maze = BatchedHardMaze(2)
    cases = [
        (lambda: BatchedHardMaze(0), "num_envs"),
        (lambda: BatchedHardMaze(2, action_repeat=0), "action_repeat"),
        (lambda: BatchedHardMaze(2, dtype=torch.int32), "dtype"),
        (lambda: maze.step(torch.zeros(3, 2)), "action"),
        (lambda: maze.step(torch.full((2, 2), math.nan)), "finite"),
        (lambda: breadcrumb_distance(torch.zeros(3)), "position"),
        (lambda: breadcrumb_map(torch.tensor([[0.0, 0, 10, 0]]), (0.0, 0.0)), "goal"),
        (lambda: HardMazeEnv(max_steps=0), "max_steps"),
        (lambda: HardMazeEnv().step([0.5]), "action"),
        (lambda: HardMazeEnv().step([math.nan, 0.5]), "finite"),
    ]
    for call, match in cases:
        with library_error() as info:
            call()
        assert info.match(match)
