import numpy as np
import pytest
import torch

from neuroplastic.tasks import GridMazeTask, episode_statistics, grid_maze_layout

MAZE_9 = """\
#########
#.......#
#.#.#.#.#
#.......#
#.#...#.#
#.......#
#.#.#.#.#
#.......#
#########"""

MOVES = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}


def make(batch_size=32, seed=0, **kwargs):
    return GridMazeTask(batch_size, generator=torch.Generator().manual_seed(seed), **kwargs)


def neighbourhood_reference(walls, row, col):
    return [float(walls[r][c]) for r in (row - 1, row, row + 1) for c in (col - 1, col, col + 1)]


def test_layout_of_the_papers_9x9_maze():
    walls = grid_maze_layout(9)
    drawn = "\n".join("".join("#" if w else "." for w in row) for row in walls.tolist())
    assert drawn == MAZE_9
    assert int((~walls).sum()) == 41


def test_step_matches_a_slow_per_element_reference():
    task = make(batch_size=48, wall_penalty=0.1, reward_value=10.0, episode_length=300)
    walls = task.walls.tolist()
    lay = task.layout
    g = torch.Generator().manual_seed(1)
    obs = task.reset()
    reward_cells = [tuple(p) for p in task.reward_position.tolist()]
    found_count = bumps = 0
    for t in range(task.episode_length):
        before = [tuple(p) for p in task.position.tolist()]
        for b in range(48):
            assert not walls[before[b][0]][before[b][1]]  # never on a wall
            assert obs[b, lay.neighbourhood].tolist() == neighbourhood_reference(walls, *before[b])
        action = torch.randint(0, 4, (48,), generator=g)
        obs, reward, done = task.step(action)
        after = [tuple(p) for p in task.position.tolist()]
        assert [tuple(p) for p in task.reward_position.tolist()] == reward_cells  # fixed within the episode
        for b in range(48):
            dr, dc = MOVES[int(action[b])]
            target = (before[b][0] + dr, before[b][1] + dc)
            if walls[target[0]][target[1]]:
                bumps += 1
                assert after[b] == before[b]
                assert reward[b].item() == pytest.approx(-0.1)
            elif target == reward_cells[b]:
                found_count += 1
                assert reward[b].item() == 10.0
                assert after[b] != reward_cells[b]  # teleported away, onto a free cell
                assert not walls[after[b][0]][after[b][1]]
            else:
                assert after[b] == target
                assert reward[b].item() == 0.0
            assert obs[b, lay.reward].item() == reward[b].item()
            assert obs[b, lay.action].tolist() == [float(int(action[b]) == a) for a in range(4)]
        assert done == (t == task.episode_length - 1)
    assert found_count > 10 and bumps > 100  # both events were really exercised


def test_first_observation_and_extra_inputs():
    task = make(episode_length=50)
    obs = task.reset()
    lay = task.layout
    assert obs.shape == (32, 16) and task.obs_dim == 16 and task.num_actions == 4
    assert torch.all(task.position == 4)  # the centre
    assert torch.all(obs[:, lay.neighbourhood] == 0)  # the centre of the 9x9 maze sees no wall
    assert torch.all(obs[:, lay.bias] == 1) and torch.all(obs[:, lay.time] == 0)
    assert torch.all(obs[:, lay.reward] == 0) and torch.all(obs[:, lay.action] == 0)
    assert not torch.any(torch.all(task.reward_position == 4, dim=1))  # reward never at the start
    obs, _, _ = task.step(torch.zeros(32, dtype=torch.long))
    assert torch.allclose(obs[:, lay.time], torch.full((32,), 1 / 50))


def test_reward_cells_cover_the_free_cells_and_avoid_walls():
    task = make(batch_size=2000)
    task.reset()
    cells = {tuple(p) for p in task.reward_position.tolist()}
    free = {tuple(p) for p in task.free_cells.tolist()}
    assert cells == free - {(4, 4)}


def test_random_start():
    task = make(batch_size=500, start="random")
    task.reset()
    walls = task.walls
    pos, rew = task.position, task.reward_position
    assert not walls[pos[:, 0], pos[:, 1]].any()
    assert torch.all((pos != rew).any(dim=1))
    assert len({tuple(p) for p in pos.tolist()}) > 20


def test_same_seed_same_trajectory():
    def run(seed):
        task = make(batch_size=8, seed=seed, episode_length=40)
        g = torch.Generator().manual_seed(9)
        out = [task.reset()]
        for _ in range(40):
            obs, reward, _ = task.step(torch.randint(0, 4, (8,), generator=g))
            out += [obs, reward.unsqueeze(1)]
        return torch.cat(out, dim=1)

    assert torch.equal(run(2), run(2))
    assert not torch.equal(run(2), run(3))


def test_larger_maze():
    task = make(size=11)
    obs = task.reset()
    assert torch.all(task.position == 5) and obs.shape == (32, 16)


def test_misuse():
    task = make(batch_size=4, episode_length=2)
    with pytest.raises(RuntimeError, match="reset"):
        task.step(torch.zeros(4, dtype=torch.long))
    task.reset()
    with pytest.raises(ValueError, match="action"):
        task.step(torch.full((4,), 4))
    with pytest.raises(ValueError, match="action"):
        task.step(torch.zeros(3, dtype=torch.long))
    task.step(torch.zeros(4, dtype=torch.long))
    _, _, done = task.step(torch.zeros(4, dtype=torch.long))
    assert done
    with pytest.raises(RuntimeError, match="reset"):
        task.step(torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"size": 8}, "size"),
        ({"size": 3}, "size"),
        ({"episode_length": 0}, "episode_length"),
        ({"reward_value": 0.0}, "reward_value"),
        ({"wall_penalty": -0.1}, "wall_penalty"),
        ({"start": "corner"}, "start"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make(**kwargs)


def test_episode_statistics_hand_computed():
    found = torch.tensor([[0, 1, 0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1, 0]], dtype=torch.bool)
    stats = episode_statistics(found, windows=2, max_hits=2)
    np.testing.assert_array_equal(stats["hits"], [3, 1])
    np.testing.assert_array_equal(stats["first_half"], [1, 0])
    np.testing.assert_array_equal(stats["second_half"], [2, 1])
    np.testing.assert_array_equal(stats["window_hits"], [[1, 2], [0, 1]])
    np.testing.assert_array_equal(stats["first_hit"], [1, 6])
    assert stats["return_time"][0] == 3.0 and np.isnan(stats["return_time"][1])
    np.testing.assert_array_equal(stats["hit_intervals"], [[2, 3], [7, np.nan]])


def test_episode_statistics_without_hits():
    stats = episode_statistics(torch.zeros(3, 10, dtype=torch.bool), windows=5)
    np.testing.assert_array_equal(stats["hits"], [0, 0, 0])
    np.testing.assert_array_equal(stats["first_hit"], [10, 10, 10])  # T when the reward was never found
    assert stats["window_hits"].shape == (3, 5) and stats["hit_intervals"].shape == (3, 8)
    assert np.isnan(stats["return_time"]).all() and np.isnan(stats["hit_intervals"]).all()
