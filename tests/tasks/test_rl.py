"""Discounted returns, action log-probabilities and the A2C loss, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.tasks import a2c_loss, discounted_returns, policy_log_probs


@pytest.mark.parametrize("method", ["loop", "matrix"])
def test_discounted_returns_hand_computed(method):
    rewards = torch.tensor([[0.0, 0.0, 10.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    expected = torch.tensor([[8.1, 9.0, 10.0, 0.0], [3.439, 2.71, 1.9, 1.0]])
    torch.testing.assert_close(discounted_returns(rewards, 0.9, method=method), expected)
    # G_t = r_t + gamma G_{t+1} with gamma 0.5: [0, 1, 0, -1] -> [0.375, 0.75, -0.5, -1]
    rewards = torch.tensor([[0.0, 1.0, 0.0, -1.0]])
    expected = torch.tensor([[0.5 * 1 + 0.125 * -1, 1 + 0.25 * -1, 0.5 * -1, -1.0]])
    torch.testing.assert_close(discounted_returns(rewards, 0.5, method=method), expected)


def test_both_methods_agree_and_gamma_zero_gives_the_rewards():
    rewards = torch.randn(5, 30, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(discounted_returns(rewards, 0.93, method="matrix"),
                               discounted_returns(rewards, 0.93), rtol=1e-5, atol=1e-5)
    assert torch.equal(discounted_returns(rewards, 0.0), rewards)
    for method in ("loop", "matrix"):  # time-major [T, B] gives the same returns, transposed
        torch.testing.assert_close(discounted_returns(rewards.T.contiguous(), 0.93, method=method, time_dim=0).T,
                                   discounted_returns(rewards, 0.93, method=method))
    with pytest.raises(ValueError, match="time_dim must be 1"):
        discounted_returns(rewards, 0.9, time_dim=2)
    with pytest.raises(ValueError, match="method must be one of 'loop', 'matrix'"):
        discounted_returns(rewards, 0.9, method="scan")
    with pytest.raises(ValueError, match=r"rewards must have shape \[B, T\]"):
        discounted_returns(rewards[0], 0.9)


def test_policy_log_probs_by_hand():
    # step 0: uniform over 4 actions; step 1: pi = [0.6, 0.2, 0.2, ~0]
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [math.log(3.0), 0.0, 0.0, -1e4]]])  # [B=1, T=2, A=4]
    chosen, entropy = policy_log_probs(logits, torch.tensor([[2, 0]]))
    torch.testing.assert_close(chosen, torch.tensor([[math.log(0.25), math.log(0.6)]]))
    expected = -(0.6 * math.log(0.6) + 2 * 0.2 * math.log(0.2))
    torch.testing.assert_close(entropy, torch.tensor([[math.log(4.0), expected]]))


def test_a2c_loss_value_by_hand():
    log_probs = torch.tensor([[math.log(0.5), math.log(0.25)]])
    values = torch.tensor([[1.0, 2.0]])
    entropies = torch.tensor([[0.5, 1.5]])
    rewards = torch.tensor([[0.0, 4.0]])  # returns with gamma 0.5: [2, 4]; advantages [1, 2]
    loss, parts = a2c_loss(log_probs, values, entropies, rewards, gamma=0.5, value_coef=0.1, entropy_coef=0.2)
    policy = -(math.log(0.5) * 1 + math.log(0.25) * 2) / 2
    assert parts["policy_loss"] == pytest.approx(policy)
    assert parts["value_loss"] == pytest.approx((1 + 4) / 2)
    assert parts["entropy"] == pytest.approx(1.0)
    assert float(loss) == pytest.approx(policy + 0.1 * 2.5 - 0.2 * 1.0)
    with pytest.raises(ValueError, match=r"values must have shape \[1, 2\]"):
        a2c_loss(log_probs, values.T, entropies, rewards, gamma=0.5, value_coef=0.1, entropy_coef=0.2)


def test_a2c_loss_gradients_hand_computed():
    """Value gradient ``-2 c_v A / (B T)``; policy gradient ``(pi - onehot(a)) A / (B T)`` on the logits."""
    logits = torch.zeros(1, 2, 4, requires_grad=True)
    values = torch.tensor([[1.0, 2.0]], requires_grad=True)
    actions = torch.tensor([[0, 3]])
    rewards = torch.tensor([[0.0, 4.0]])  # returns with gamma 0.5: [2, 4]; advantages [1, 2]
    log_probs, entropies = policy_log_probs(logits, actions)
    loss, parts = a2c_loss(log_probs, values, entropies, rewards, gamma=0.5, value_coef=0.1, entropy_coef=0.0,
                           returns_method="matrix")
    loss.backward()
    torch.testing.assert_close(values.grad, torch.tensor([[-0.1, -0.2]]))
    assert parts["value_loss"] == pytest.approx(2.5)
    # uniform policy: d(-log pi(a) A)/d logits = -(onehot(a) - 1/4) A / (B T)
    expected = torch.full((1, 2, 4), 0.125) * torch.tensor([1.0, 2.0]).view(1, 2, 1)
    expected[0, 0, 0] -= 0.5
    expected[0, 1, 3] -= 1.0
    torch.testing.assert_close(logits.grad, expected)


def test_a2c_entropy_bonus_pushes_towards_uniform():
    """d(-c_e H)/d logits at pi = softmax(z): c_e pi_i (log pi_i + H) / (B T); zero at the uniform policy."""
    logits = torch.tensor([[[1.0, 0.0]]], requires_grad=True)
    log_probs, entropies = policy_log_probs(logits, torch.tensor([[0]]))
    loss, _ = a2c_loss(log_probs.detach(), torch.zeros(1, 1), entropies, torch.zeros(1, 1), gamma=0.9,
                       value_coef=0.0, entropy_coef=0.5)
    loss.backward()
    pi = torch.softmax(logits.detach(), -1)
    entropy = -(pi * pi.log()).sum()
    torch.testing.assert_close(logits.grad, 0.5 * pi * (pi.log() + entropy))
    assert logits.grad[0, 0, 0] > 0  # gradient descent lowers the larger logit


def test_a2c_loss_time_major_equals_batch_first_and_keeps_the_gradient_layout():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(6, 3, generator=g, requires_grad=True)  # [T, B]
    log_probs = -torch.rand(6, 3, generator=g)
    entropies = torch.rand(6, 3, generator=g)
    rewards = torch.randn(6, 3, generator=g)
    kwargs = dict(gamma=0.8, value_coef=0.1, entropy_coef=0.05)
    loss_t, parts_t = a2c_loss(log_probs, values, entropies, rewards, time_dim=0, **kwargs)
    loss_b, parts_b = a2c_loss(log_probs.T, values.T, entropies.T, rewards.T, **kwargs)
    torch.testing.assert_close(loss_t, loss_b)
    assert parts_t == pytest.approx(parts_b)
    loss_t.backward()
    assert values.grad.is_contiguous()  # time-major gradients, contiguous per step
