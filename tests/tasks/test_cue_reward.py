import pytest
import torch

from neuroplastic.tasks import CueRewardTask, draw_distinct_cues


def make(batch_size=6, seed=0, **kwargs):
    return CueRewardTask(batch_size, generator=torch.Generator().manual_seed(seed), **kwargs)


def rollout(task, seed=1):
    """Random actions for a whole episode: observations [E+1, B, D], actions [E, B], rewards [E, B]."""
    g = torch.Generator().manual_seed(seed)
    obs = [task.reset()]
    actions, rewards = [], []
    done = False
    while not done:
        action = torch.randint(0, 2, (task.batch_size,), generator=g)
        o, r, done = task.step(action)
        obs.append(o)
        actions.append(action)
        rewards.append(r)
    return torch.stack(obs), torch.stack(actions), torch.stack(rewards)


def seen_cues(cue_input, cue_size, display):
    """The cues visible in one observation's cue input, as a list of tensors."""
    parts = [cue_input] if display == "sequential" else [cue_input[:cue_size], cue_input[cue_size:]]
    return [p for p in parts if p.abs().sum() > 0]


@pytest.mark.parametrize("display", ["sequential", "concatenated"])
def test_rewards_match_a_slow_per_episode_reference(display):
    task = make(batch_size=5, display=display, num_trials=12)
    obs, actions, rewards = rollout(task)
    lay = task.layout
    assert obs.shape == (task.episode_length + 1, 5, task.obs_dim)
    for b in range(5):
        rewarded_cue = task.cues[b, task.rewarded_cue[b]]
        trial_cues = []
        responses = 0
        for t in range(task.episode_length):
            o = obs[t, b]
            if t % task.trial_steps == 0:
                trial_cues = []
            for cue in seen_cues(o[lay.cue], task.cue_size, display):
                if not any(torch.equal(cue, c) for c in trial_cues):
                    trial_cues.append(cue)
            if o[lay.response] == 1:
                responses += 1
                # The two cues of a trial differ and are cues of this episode.
                assert len(trial_cues) == 2
                assert not torch.equal(trial_cues[0], trial_cues[1])
                assert all(any(torch.equal(c, k) for k in task.cues[b]) for c in trial_cues)
                in_pair = any(torch.equal(c, rewarded_cue) for c in trial_cues)
                expected = 1.0 if int(actions[t, b]) == int(in_pair) else -1.0
                assert rewards[t, b].item() == expected
            else:
                assert rewards[t, b].item() == 0.0
            # The next observation reports this step's reward and action.
            assert obs[t + 1, b, lay.reward].item() == rewards[t, b].item()
            one_hot = [float(actions[t, b] == 0), float(actions[t, b] == 1)]
            assert obs[t + 1, b, lay.action].tolist() == one_hot
        assert responses == task.num_trials


def test_observation_layout_and_timing():
    task = make(trial_steps=7, num_trials=3)
    assert task.obs_dim == 26 and task.num_actions == 2 and task.episode_length == 21
    obs, _, _ = rollout(task)
    lay = task.layout
    assert torch.all(obs[:, :, lay.bias] == 1)
    expected_time = torch.arange(22).float() / 21
    assert torch.allclose(obs[:, 0, lay.time], expected_time)
    assert torch.all(obs[0, :, lay.reward] == 0) and torch.all(obs[0, :, lay.action] == 0)
    response_steps = obs[:-1, 0, lay.response].nonzero().squeeze(1).tolist()
    assert response_steps == [5, 12, 19]
    for t in range(21):
        phase = t % 7
        shown = obs[t, :, lay.cue].abs().sum(-1) > 0
        if phase in (0, 5, 6):
            assert not shown.any()  # first, response and feedback steps carry no cue
    # Sequential display: each trial has exactly two cue steps among steps 1 .. L-3.
    shown = (obs[:-1, :, lay.cue].abs().sum(-1) > 0).reshape(3, 7, -1)
    assert torch.all(shown.sum(1) == 2)


def test_concatenated_display_shows_the_pair_on_every_cue_step():
    task = make(display="concatenated", trial_steps=5, cue_size=8)
    assert task.obs_dim == 2 * 8 + 6
    assert torch.all(task.reset()[:, task.layout.cue] == 0)  # step 0 is blank
    obs, _, _ = task.step(torch.zeros(task.batch_size, dtype=torch.long))  # step 1 shows the pair
    pair = task.pairs[:, 0]
    expected = torch.cat([task.cues[torch.arange(6), pair[:, 0]], task.cues[torch.arange(6), pair[:, 1]]], -1)
    assert torch.equal(obs[:, task.layout.cue], expected)


def test_optimal_policy_earns_every_reward():
    task = make(batch_size=16)
    task.reset()
    total = torch.zeros(16)
    done = False
    while not done:
        _, reward, done = task.step(task.optimal_action())
        total += reward
    assert torch.all(total == task.num_trials)


def test_rewarded_cue_is_in_about_half_the_trials_with_four_cues():
    task = make(batch_size=200)
    task.reset()
    in_pair = (task.pairs == task.rewarded_cue[:, None, None]).any(-1).float().mean().item()
    assert 0.44 < in_pair < 0.56
    assert torch.all(task.pairs[..., 0] != task.pairs[..., 1])


def test_cues_are_distinct_even_when_they_are_tiny():
    cues = draw_distinct_cues(50, 4, 2, torch.Generator().manual_seed(0))
    assert cues.shape == (50, 4, 2)
    for b in range(50):
        assert len({tuple(c.tolist()) for c in cues[b]}) == 4
    assert set(cues.unique().tolist()) == {-1.0, 1.0}


def test_same_seed_same_episode():
    a, b = rollout(make(seed=5)), rollout(make(seed=5))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    c = rollout(make(seed=6))
    assert not torch.equal(a[0], c[0])


def test_episode_end_and_misuse():
    task = make(num_trials=1)
    with pytest.raises(RuntimeError, match="reset"):
        task.step(torch.zeros(6, dtype=torch.long))
    task.reset()
    for t in range(task.episode_length):
        _, _, done = task.step(torch.zeros(6, dtype=torch.long))
        assert done == (t == task.episode_length - 1)
    with pytest.raises(RuntimeError, match="reset"):
        task.step(torch.zeros(6, dtype=torch.long))
    task.reset()
    with pytest.raises(ValueError, match="action"):
        task.step(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="action"):
        task.step(torch.zeros(6))
    with pytest.raises(ValueError, match="action"):
        task.step(torch.full((6,), 2))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_cues": 1}, "num_cues"),
        ({"num_cues": 5, "cue_size": 2}, "num_cues"),
        ({"trial_steps": 4}, "trial_steps"),
        ({"num_trials": 0}, "num_trials"),
        ({"display": "stacked"}, "display"),
        ({"reward_value": -1.0}, "reward_value"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make(**kwargs)


def test_reset_with_generators_draws_each_block_as_a_task_of_its_own():
    settings = dict(num_cues=4, cue_size=6, trial_steps=5, num_trials=3)
    big = CueRewardTask(6, generator=torch.Generator().manual_seed(99), **settings)
    obs = big.reset([torch.Generator().manual_seed(s) for s in (4, 5, 6)])
    actions = torch.tensor([1, 0, 1, 1, 0, 0])
    steps = [big.step(actions) for _ in range(big.episode_length)]
    for block, seed in enumerate((4, 5, 6)):
        small = CueRewardTask(2, generator=torch.Generator().manual_seed(seed), **settings)
        rows = slice(2 * block, 2 * block + 2)
        assert torch.equal(small.reset(), obs[rows])
        assert torch.equal(small.cues, big.cues[rows]) and torch.equal(small.rewarded_cue, big.rewarded_cue[rows])
        for big_step in steps:
            small_obs, small_reward, small_done = small.step(actions[rows])
            assert torch.equal(small_obs, big_step[0][rows]) and torch.equal(small_reward, big_step[1][rows])
            assert small_done == big_step[2]


def test_reset_with_generators_refuses_a_count_that_does_not_divide_the_batch(library_error):
    task = CueRewardTask(6, num_cues=4, cue_size=6, generator=torch.Generator())
    with library_error() as info:
        task.reset([torch.Generator()] * 4)
    assert info.match("dividing batch_size=6")
    with library_error() as info:
        task.reset(torch.Generator())
    assert info.match("sequence of torch.Generator")
