"""Property-based and regression tests of the task functions' boundaries: every input either gives the
documented result or a ValueError/TypeError from the library's own checks."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from neuroplastic.tasks import (
    CueRewardTask,
    GridMazeTask,
    discounted_returns,
    episode_statistics,
    normalize_series,
    pattern_completion_batch,
    policy_log_probs,
)

GAMMAS = st.one_of(st.floats(0.0, 1.0), st.sampled_from([math.nan, math.inf, -0.5, 1.5, True]))


@given(batch=st.integers(0, 3), steps=st.integers(0, 4), gamma=GAMMAS, time_dim=st.sampled_from([0, 1]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_discounted_returns_by_both_methods_match_the_recursion_or_refuse(library_error, batch, steps, gamma,
                                                                          time_dim, dtype):
    rewards = torch.randn(batch, steps, generator=torch.Generator().manual_seed(steps), dtype=dtype)
    if time_dim == 0:
        rewards = rewards.T.contiguous()
    valid = steps > 0 and not isinstance(gamma, bool) and 0.0 <= gamma <= 1.0
    if not valid:
        for method in ("loop", "matrix"):
            with library_error():
                discounted_returns(rewards, gamma, method=method, time_dim=time_dim)
        return
    loop = discounted_returns(rewards, gamma, time_dim=time_dim)
    matrix = discounted_returns(rewards, gamma, method="matrix", time_dim=time_dim)
    assert loop.shape == matrix.shape == rewards.shape and loop.dtype == dtype
    by_episode = rewards if time_dim == 1 else rewards.T
    expected = torch.zeros_like(by_episode)
    for b in range(batch):  # G_t = sum_k gamma^(k - t) r_k
        for t in range(steps):
            expected[b, t] = sum(gamma ** (k - t) * by_episode[b, k] for k in range(t, steps))
    expected = expected if time_dim == 1 else expected.T
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(loop, expected, atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(matrix, expected, atol=tolerance, rtol=tolerance)


@given(batch=st.integers(0, 3), actions_count=st.integers(0, 4), action=st.integers(-1, 4),
       action_dtype=st.sampled_from([torch.int64, torch.int32, torch.float32, torch.bool]),
       batch_offset=st.sampled_from([0, 0, 1]))
def test_policy_log_probs_is_log_softmax_and_entropy_or_refuses(library_error, batch, actions_count, action,
                                                                action_dtype, batch_offset):
    logits = torch.randn(batch, actions_count, generator=torch.Generator().manual_seed(batch))
    actions = torch.full((batch + batch_offset,), action).to(action_dtype)
    valid = (actions_count >= 1 and action_dtype in (torch.int64, torch.int32) and batch_offset == 0
             and (batch == 0 or 0 <= action < actions_count))
    if not valid:
        with library_error():
            policy_log_probs(logits, actions)
        return
    chosen, entropy = policy_log_probs(logits, actions)
    assert chosen.shape == entropy.shape == (batch,)
    log_pi = torch.log_softmax(logits, -1)
    for b in range(batch):
        assert torch.isclose(chosen[b], log_pi[b, action])
        assert torch.isclose(entropy[b], -(log_pi[b].exp() * log_pi[b]).sum())


@pytest.mark.parametrize(("call", "message"), [
    (lambda: discounted_returns(torch.ones(2, 0), 0.9), "at least one time step"),  # was an IndexError
    (lambda: discounted_returns(torch.ones(2, 3), float("nan")), "gamma"),  # was accepted: NaN returns
    (lambda: discounted_returns(torch.ones(2, 3), 1.5), "gamma"),  # was accepted: returns that grow
    (lambda: policy_log_probs(torch.zeros(2, 3), torch.tensor([0, 5])), r"actions must be in \[0, 3\)"),
    (lambda: policy_log_probs(torch.zeros(2, 3), torch.zeros(2)), "integer tensor"),
    (lambda: episode_statistics(torch.zeros(2, 10, dtype=torch.bool), 0), "windows"),  # was a numpy error
    (lambda: episode_statistics(torch.zeros(2, 10, dtype=torch.bool), 11), "windows"),  # was empty windows
    (lambda: episode_statistics(torch.zeros(2, 10, dtype=torch.bool), 2, max_hits=-1), "max_hits"),
    (lambda: normalize_series(torch.zeros(0, 3)), "at least one time step"),  # was a NaN std and a warning
    (lambda: pattern_completion_batch(2, pattern_size=4, num_patterns=2, balanced=1,
                                      generator=torch.Generator()), "balanced must be a bool"),
    (lambda: CueRewardTask(2, reward_value=math.inf, generator=torch.Generator()), "reward_value"),
    (lambda: GridMazeTask(2, wall_penalty=math.inf, generator=torch.Generator()), "wall_penalty"),
])
def test_inputs_that_were_accepted_or_crashed_inside_torch_are_refused(library_error, call, message):
    with library_error() as info:
        call()
    assert info.match(message)
