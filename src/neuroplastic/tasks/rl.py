"""Reinforcement learning on whole episodes: discounted returns and the advantage actor-critic (A2C) loss.

The A2C of Miconi, Rawal, Clune & Stanley 2019 (Backpropamine, ICLR), as in the authors' released code: a
batch of ``B`` episodes of ``T`` steps is played to the end, then trained on at once (no bootstrap from a
value at the end). Tensors are batch-first, ``[B, T]``, unless ``time_dim=0`` says they are time-major,
``[T, B]`` (as a rollout records them step by step; computing in that layout also returns the gradients in
it, so that no per-step slice of them is strided)::

    G_t = r_t + gamma G_{t+1},  G_T = 0            (so G_t = sum_{k >= t} gamma^(k - t) r_k)
    A_t = G_t - V_t                                (advantage)
    policy term = mean_{b, t} [ -log pi(a_t) * stop_grad(A_t) ]
    value term  = mean_{b, t} [ A_t^2 ]
    entropy     = mean_{b, t} [ H(pi_t) ],         H(pi) = -sum_a pi_a log pi_a
    loss = policy term + value_coef * value term - entropy_coef * entropy

The released code penalises the sum of squared action probabilities (a concentration measure) instead of
subtracting the entropy; the entropy bonus rewards the same thing (more uniform action distributions).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_number, check_tensor

__all__ = ["RETURN_METHODS", "discounted_returns", "policy_log_probs", "a2c_loss"]

RETURN_METHODS = ("loop", "matrix")


def _check_time_dim(time_dim: int) -> int:
    """The layout code of these functions' tensors: 1 for batch-first ``[B, T]``, 0 for time-major ``[T, B]``."""
    if time_dim not in (0, 1):
        raise ValueError(f"time_dim must be 1 ([B, T], batch-first) or 0 ([T, B], time-major); got {time_dim!r}")
    return time_dim


def discounted_returns(rewards: Tensor, gamma: float, *, method: str = "loop", time_dim: int = 1) -> Tensor:
    """Discounted returns ``G_t = r_t + gamma G_{t+1}`` to the end of each episode (``G_T = 0``).

    Args:
        rewards: ``[B, T]`` rewards of ``B`` whole episodes (``[T, B]`` with ``time_dim=0``).
        gamma: discount per step, in [0, 1].
        method: ``"loop"`` runs the recursion backwards in time, one elementwise step per time step;
            ``"matrix"`` computes ``G = r @ D^T`` with ``D[t, k] = gamma^(k - t)`` for ``k >= t`` (else 0),
            one matrix product, ``O(B T^2)``. Both compute the same returns; they differ only in rounding.
        time_dim: the time axis of ``rewards``: 1 (default, ``[B, T]``) or 0 (``[T, B]``).

    Returns:
        the returns, the shape, dtype and device of ``rewards``.
    """
    _check_time_dim(time_dim)
    check_tensor("rewards", rewards, ("B", "T") if time_dim == 1 else ("T", "B"))
    check_choice("method", method, RETURN_METHODS)
    check_number("gamma", gamma, minimum=0, maximum=1)
    steps = rewards.shape[time_dim]
    if steps == 0:
        raise ValueError(f"rewards must hold at least one time step, got shape {tuple(rewards.shape)} "
                         f"(time_dim={time_dim})")
    if method == "matrix":
        t = torch.arange(steps, device=rewards.device, dtype=rewards.dtype)
        lag = t.unsqueeze(0) - t.unsqueeze(1)  # [t, k] -> k - t
        discount = torch.where(lag >= 0, gamma ** lag.clamp(min=0), torch.zeros_like(lag))
        return rewards @ discount.T if time_dim == 1 else discount @ rewards
    returns = torch.empty_like(rewards)
    running = torch.zeros_like(rewards.select(time_dim, 0))
    for t in range(steps - 1, -1, -1):
        running = rewards.select(time_dim, t) + gamma * running
        returns.select(time_dim, t).copy_(running)
    return returns


def policy_log_probs(logits: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    """Log-probability of the actions taken and the policy's entropy, from action logits.

    ``pi = softmax(logits)``; returns ``(log pi(a), H(pi))`` with ``H(pi) = -sum_a pi_a log pi_a``.
    Shapes: ``logits [..., A]`` (``A >= 1``), ``actions [...]`` integer in ``[0, A)`` -> ``([...], [...])``.
    """
    check_tensor("logits", logits, None)
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"logits must have shape [..., A] with A >= 1 actions, got {tuple(logits.shape)}")
    if not isinstance(actions, Tensor) or actions.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8,
                                                                 torch.int8):
        raise TypeError(f"actions must be an integer tensor, got "
                        f"{actions.dtype if isinstance(actions, Tensor) else type(actions).__name__}")
    if actions.shape != logits.shape[:-1]:
        raise ValueError(f"actions must have shape {tuple(logits.shape[:-1])} (the logits' shape without the "
                         f"action dimension), got {tuple(actions.shape)}")
    if actions.numel() and (int(actions.min()) < 0 or int(actions.max()) >= logits.shape[-1]):
        raise ValueError(f"actions must be in [0, {logits.shape[-1]}), got values from {int(actions.min())} "
                         f"to {int(actions.max())}")
    actions = actions.long()
    log_probs = torch.log_softmax(logits, dim=-1)
    chosen = log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    return chosen, entropy


def a2c_loss(
    log_probs: Tensor, values: Tensor, entropies: Tensor, rewards: Tensor, *, gamma: float, value_coef: float,
    entropy_coef: float, returns_method: str = "loop", time_dim: int = 1,
) -> tuple[Tensor, dict[str, float]]:
    """Advantage actor-critic loss of a batch of whole episodes (see the module docstring).

    Args:
        log_probs: ``[B, T]`` log-probability of the action taken at each step (``log pi(a_t)``).
        values: ``[B, T]`` value estimates ``V_t``.
        entropies: ``[B, T]`` entropy of the policy at each step.
        rewards: ``[B, T]`` rewards.
        gamma, value_coef, entropy_coef: discount, weight of the value term, weight of the entropy bonus.
        returns_method: how :func:`discounted_returns` sums (``"loop"`` or ``"matrix"``; same returns).
        time_dim: 1 (default) for ``[B, T]`` tensors, 0 for time-major ``[T, B]`` ones.

    Returns:
        ``(loss, parts)``: the scalar loss, and ``parts`` with the policy term (``"policy_loss"``), the value
        term (``"value_loss"``) and the mean entropy (``"entropy"``) as floats.
    """
    shape = tuple(rewards.shape)
    for name, tensor in (("log_probs", log_probs), ("values", values), ("entropies", entropies)):
        check_tensor(name, tensor, shape)
    advantage = discounted_returns(rewards, gamma, method=returns_method, time_dim=time_dim) - values
    policy_loss = -(log_probs * advantage.detach()).mean()
    value_loss = advantage.pow(2).mean()
    entropy = entropies.mean()
    loss = policy_loss + value_coef * value_loss - entropy_coef * entropy
    parts = {"policy_loss": float(policy_loss.detach()), "value_loss": float(value_loss.detach()),
             "entropy": float(entropy.detach())}
    return loss, parts

