"""Cue-reward association: neuromodulated plastic networks learn which cue is rewarded within an episode.

Miconi, Rawal, Clune & Stanley 2019, "Backpropamine: training self-modifying neural networks with
differentiable neuromodulated plasticity" (ICLR), section 4.1 (cue-reward association).

Each episode has a few random binary cues, one of them secretly rewarded. Every trial shows two cues, then
a response signal: answering 1 if the rewarded cue was among them (0 otherwise) earns +1, a wrong answer
-1 (see :class:`neuroplastic.tasks.CueRewardTask`). The rewarded cue changes every episode, so the network
must discover it from the rewards within the episode.

Four recurrent networks of the same hidden size N, each with a learned input layer and a policy head
(2 actions) and a value head reading the hidden state ``h``::

    h_t = tanh(x_t @ W_in + b + h_{t-1} @ (W + alpha * H_{t-1}))

- ``simple``: simple neuromodulation, ``M_t = tanh(h_t @ w_m + b_m)``, ``H <- clip(H + M_t h_{t-1} ⊗ h_t, ±1)``;
- ``retroactive``: ``E <- (1 - eta_E) E + eta_E h_{t-1} ⊗ h_t`` (eligibility trace),
  ``H <- clip(H + M_t E, ±1)``;
- ``plastic``: no modulation, ``H <- clip(H + eta h_{t-1} ⊗ h_t, ±1)`` with a learned eta;
- ``nonplastic``: ``h_t = tanh(x_t @ W_in + b + h_{t-1} @ W)`` (no alpha, no trace).

The agents are :class:`neuroplastic.models.ActorCritic` (separate policy and value heads). All are trained by
advantage actor-critic (A2C, :func:`neuroplastic.tasks.a2c_loss`): returns discounted over the episode (no
bootstrap), ``loss = mean[-log pi(a_t) * (R_t - V_t)] + c_v mean[(R_t - V_t)^2] - c_e mean[entropy(pi_t)]``,
Adam, gradient-norm clipping; a batch of episodes runs in parallel, stepped one time step at a time (the
action changes the next observation).

Deviations from the paper: see :class:`Config` (shorter episodes, fixed trial length, a smaller network and a
tuned quick budget; an entropy bonus instead of a concentration penalty). Measured results and what was
tried: ``docs/results/cue-reward.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic.evaluation import count_parameters
from neuroplastic.models import ActorCritic, RNNCell
from neuroplastic.plasticity import PlasticRNNCell
from neuroplastic.runs import Claim, Experiment, RunDirectory, param
from neuroplastic.runs.plots import metric_series, reward_per_trial_figure, smooth_curve
from neuroplastic.tasks import CueRewardTask, a2c_loss

__all__ = [
    "Config", "Rollout", "make_agent", "make_task", "rollout", "trial_rewards", "evaluate", "run", "EXPERIMENT",
    "VARIANTS",
]

PAPER = "Miconi, Rawal, Clune & Stanley 2019, Backpropamine (ICLR), cue-reward association"
VARIANTS = ("simple", "retroactive", "plastic", "nonplastic")
MODULATED = ("simple", "retroactive")
UNMODULATED = ("plastic", "nonplastic")
LABELS = {
    "simple": "simple neuromodulation",
    "retroactive": "retroactive neuromodulation",
    "plastic": "plastic, unmodulated",
    "nonplastic": "non-plastic RNN",
}
COLORS = {"simple": "tab:blue", "retroactive": "tab:green", "plastic": "tab:orange", "nonplastic": "tab:red"}


@dataclass
class Config:
    """Task, network and A2C settings.

    The paper's values (authors' run command for ``srbatch.py``): 4 cues of 20 bits, 120-step episodes
    (trials of 5 to 8 steps there; fixed 6 here), 200 hidden neurons, batch 30, Adam lr 1e-4 (eps 1e-6),
    discount 0.9 per step, value-loss weight 0.1, regularisation weight 0.1 (there on the concentration
    sum_a pi_a^2, here on the entropy, the usual A2C bonus), gradient-norm clip 2.0, traces
    clipped at ±1, eta and eta_E initialised at 0.1, one modulator output for the whole network, 200,000
    updates, alpha initialised at 0.01 * U(0, 1) (here 0.01 * N(0, 1), the library's initialisation).

    ``quick`` keeps the task's cues and trial structure but uses shorter episodes (10 trials of 5 steps),
    32 neurons, a larger batch, a larger learning rate and a lower discount (0.3: the action does not change
    later rewards in this task, and the lower discount removes most of the noise that later trials add to
    each step's return), a smaller entropy weight, and larger initial alpha (0.05) and eta_E (0.5). Every
    agent first sits on a plateau at chance (uniform policy); these choices shorten it enough to leave the
    plateau within the 3-minute budget (what the paper's values gave: ``docs/results/cue-reward.md``).
    """

    num_cues: int = 4
    cue_size: int = 20
    trial_steps: int = 5
    num_trials: int = 10
    display: str = "sequential"
    hidden_size: int = 32
    batch_size: int = 128
    updates: int = 450
    lr: float = 3e-3
    adam_eps: float = param(1e-6, minimum=0, exclusive_minimum=True)
    gamma: float = 0.3
    value_coef: float = 0.1
    entropy_coef: float = 0.01
    grad_clip: float = 2.0
    trace_clip: float = param(1.0, minimum=0, exclusive_minimum=True)
    alpha_init: float = param(0.05, minimum=0)
    eta_init: float = param(0.1, minimum=0)  # checked here: only the plain plastic variant, built after the
    # modulated ones have trained, uses it
    eligibility_rate: float = 0.5
    modulator_fanout: bool = False
    eval_episodes: int = param(512, minimum=1)
    checkpoint_every: int = 50


def make_agent(variant: str, obs_dim: int, config: Config) -> ActorCritic:
    """The agent of ``variant``: "simple", "retroactive", "plastic" or "nonplastic" (same hidden size)."""
    n = config.hidden_size
    common = dict(alpha="connection", clip=config.trace_clip, alpha_init=config.alpha_init)
    modulator = dict(modulator_channels=1, fanout=config.modulator_fanout)
    if variant == "simple":
        cell = PlasticRNNCell(obs_dim, n, rule="clip", modulation="simple", **modulator, **common)
    elif variant == "retroactive":
        cell = PlasticRNNCell(obs_dim, n, rule="hebbian", modulation="retroactive",
                              eligibility_rate=config.eligibility_rate, **modulator, **common)
    elif variant == "plastic":
        cell = PlasticRNNCell(obs_dim, n, rule="clip", modulation="none", eta="scalar", eta_init=config.eta_init,
                              **common)
    elif variant == "nonplastic":
        cell = RNNCell(obs_dim, n)
    else:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    return ActorCritic(cell, CueRewardTask.num_actions)


def make_task(config: Config, batch_size: int, generator: torch.Generator, device: torch.device) -> CueRewardTask:
    """The cue-reward task of ``config`` for ``batch_size`` parallel episodes."""
    return CueRewardTask(batch_size, num_cues=config.num_cues, cue_size=config.cue_size,
                         trial_steps=config.trial_steps, num_trials=config.num_trials, display=config.display,
                         generator=generator, device=device)


class Rollout(NamedTuple):
    """One batch of episodes, time-major ``[T, B]``: log-probabilities of the actions taken, values,
    policy entropies and rewards."""

    log_probs: Tensor
    values: Tensor
    entropies: Tensor
    rewards: Tensor


def rollout(agent: ActorCritic, task: CueRewardTask, generator: torch.Generator) -> Rollout:
    """Run ``task.batch_size`` episodes to the end, sampling actions from the policy with ``generator``."""
    obs = task.reset()
    state = agent.initial_state(task.batch_size, device=obs.device)
    log_probs, values, entropies, rewards = [], [], [], []
    done = False
    while not done:
        logits, value, state = agent(obs, state)
        log_pi = F.log_softmax(logits, dim=-1)
        pi = log_pi.exp()
        action = torch.multinomial(pi.detach().cpu(), 1, generator=generator).squeeze(-1).to(obs.device)
        obs, reward, done = task.step(action)
        log_probs.append(log_pi.gather(1, action.unsqueeze(1)).squeeze(1))
        values.append(value)
        entropies.append(-(pi * log_pi).sum(-1))
        rewards.append(reward)
    return Rollout(torch.stack(log_probs), torch.stack(values), torch.stack(entropies), torch.stack(rewards))


def trial_rewards(rewards: Tensor, trial_steps: int) -> Tensor:
    """The reward of each trial's response step: ``rewards [T, B]`` -> ``[B, num_trials]``."""
    response = torch.arange(trial_steps - 2, rewards.shape[0], trial_steps, device=rewards.device)
    return rewards[response].T


@torch.no_grad()
def evaluate(agent: ActorCritic, config: Config, seed: int, device: torch.device) -> dict[str, Any]:
    """Reward on ``config.eval_episodes`` fresh episodes (the same ones for every agent), actions sampled.

    Returns the mean reward per episode and its standard error, the mean reward at each trial index, and the
    within-episode gain: mean reward over the second half of the trials minus the first trial's reward.
    """
    task_generator = torch.Generator().manual_seed(seed)
    action_generator = torch.Generator().manual_seed(seed + 1)
    per_trial = []
    remaining = config.eval_episodes
    while remaining > 0:
        batch = min(config.batch_size, remaining)
        task = make_task(config, batch, task_generator, device)
        per_trial.append(trial_rewards(rollout(agent, task, action_generator).rewards, config.trial_steps).cpu())
        remaining -= batch
    trials = torch.cat(per_trial)  # [E, num_trials]
    totals = trials.sum(1)
    late = trials[:, config.num_trials // 2:].mean(1)
    gain = late - trials[:, 0]
    sqrt_e = math.sqrt(len(totals))
    return {
        "reward": float(totals.mean()),
        "reward_sem": float(totals.std() / sqrt_e),
        "first_trial_reward": float(trials[:, 0].mean()),
        "late_trial_reward": float(late.mean()),
        "within_episode_gain": float(gain.mean()),
        "within_episode_gain_sem": float(gain.std() / sqrt_e),
        "per_trial": trials.mean(0).tolist(),
        "per_trial_sem": (trials.std(0) / sqrt_e).tolist(),
    }


def _train(variant: str, config: Config, run_dir: RunDirectory, obs_dim: int) -> ActorCritic:
    """Train one agent by A2C in its own phase; log its mean reward per episode at every update."""
    device = run_dir.device
    agent = make_agent(variant, obs_dim, config).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr, eps=config.adam_eps)
    # The same training episodes (cues, rewarded cue, trial schedule) for every variant; their own actions.
    task_generator = torch.Generator().manual_seed(1000 * run_dir.seed + 1)
    action_generator = torch.Generator().manual_seed(1000 * run_dir.seed + 2)
    task = make_task(config, config.batch_size, task_generator, device)
    run_dir.track(model=agent, optimizer=optimizer, task_generator=task_generator,
                  action_generator=action_generator)
    for step in run_dir.steps(config.updates, phase=variant, checkpoint_every=config.checkpoint_every,
                              desc=f"cue-reward {variant}"):
        episodes = rollout(agent, task, action_generator)
        loss, _ = a2c_loss(episodes.log_probs, episodes.values, episodes.entropies, episodes.rewards, time_dim=0,
                           gamma=config.gamma, value_coef=config.value_coef, entropy_coef=config.entropy_coef)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(agent.parameters(), config.grad_clip)
        optimizer.step()
        run_dir.log(step, **{f"reward_{variant}": episodes.rewards.sum(0).mean(),
                             f"entropy_{variant}": episodes.entropies.mean().detach()})
    return agent


def _plot_learning_curves(run_dir: RunDirectory, config: Config) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for variant in VARIANTS:
        steps, values = metric_series(run_dir.metrics, f"reward_{variant}")
        if len(steps) == 0:
            continue
        ax.plot(steps, values, color=COLORS[variant], alpha=0.2, lw=0.7)
        ax.plot(steps, smooth_curve(values), color=COLORS[variant], lw=1.8, label=LABELS[variant])
    ax.axhline(0, color="gray", ls=":", lw=1)
    ax.set_xlabel(f"A2C update ({config.batch_size} episodes each)")
    ax.set_ylabel(f"reward per episode ({config.num_trials} trials)")
    ax.set_title(f"Cue-reward association, training: {config.num_cues} cues, hidden size {config.hidden_size}")
    ax.legend(fontsize=8)
    run_dir.save_figure(fig, "learning_curves")


def _plot_per_trial(run_dir: RunDirectory, config: Config, results: dict[str, dict[str, Any]]) -> None:
    title = f"After training: reward per trial, {config.eval_episodes} fresh episodes (±1 s.e.)"
    run_dir.save_figure(reward_per_trial_figure(results, colors=COLORS, labels=LABELS, title=title),
                        "reward_per_trial")


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train the four agents one after the other on the same episodes; evaluate each on fresh episodes.

    Returns, per variant, ``{variant}_reward`` (mean reward per evaluation episode), its standard error,
    the first-trial and late-trial rewards, the within-episode gain, and the learned rates where they exist.
    """
    obs_dim = make_task(config, 1, torch.Generator().manual_seed(0), run_dir.device).obs_dim
    metrics: dict[str, Any] = {"max_reward": float(config.num_trials)}
    results: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        agent = _train(variant, config, run_dir, obs_dim)
        result = evaluate(agent, config, 1000 * run_dir.seed + 3, run_dir.device)
        results[variant] = result
        for key, value in result.items():
            if not isinstance(value, list):
                metrics[f"{variant}_{key}"] = value
        metrics[f"{variant}_parameters"] = count_parameters(agent)
        cell = agent.cell
        if isinstance(cell, PlasticRNNCell):
            synapses = cell.synapses
            metrics[f"{variant}_alpha_abs_mean"] = float(synapses.alpha.detach().abs().mean())
            if synapses.eta is not None:
                metrics[f"{variant}_eta"] = float(synapses.eta.detach())
            if synapses.modulator is not None and synapses.modulator.eligibility_rate is not None:
                metrics[f"{variant}_eligibility_rate"] = float(synapses.modulator.eligibility_rate.detach())
    run_dir.state["per_trial"] = {v: r["per_trial"] for v, r in results.items()}
    _plot_learning_curves(run_dir, config)
    _plot_per_trial(run_dir, config, results)
    return metrics


# ---------------------------------------------------------------------------------------------- claims
def _modulated_win(m: dict[str, Any]) -> tuple[bool, Any]:
    """Each modulated agent beats each unmodulated one by more than two standard errors of the difference."""
    passed = True
    for good in MODULATED:
        for bad in UNMODULATED:
            margin = 2 * math.hypot(m[f"{good}_reward_sem"], m[f"{bad}_reward_sem"])
            passed &= m[f"{good}_reward"] - m[f"{bad}_reward"] > margin
    return passed, {f"{v}_reward": round(m[f"{v}_reward"], 3) for v in VARIANTS}


def _within_episode(m: dict[str, Any]) -> tuple[bool, Any]:
    """Both modulated agents' late-trial reward exceeds their first-trial reward by > 2 standard errors."""
    passed = all(m[f"{v}_within_episode_gain"] > 2 * m[f"{v}_within_episode_gain_sem"] for v in MODULATED)
    measured = {}
    for v in MODULATED:
        measured[f"{v}_first_trial_reward"] = round(m[f"{v}_first_trial_reward"], 3)
        measured[f"{v}_late_trial_reward"] = round(m[f"{v}_late_trial_reward"], 3)
    return passed, measured


CLAIMS = [
    Claim(PAPER,
          "Neuromodulated plastic networks (simple and retroactive modulation) earn more reward per episode "
          "than a plastic network without modulation and a non-plastic RNN of the same hidden size (after "
          "training, on fresh episodes; each difference larger than two standard errors).",
          _modulated_win),
    Claim(PAPER,
          "The neuromodulated networks learn within the episode: their reward per trial in the second half "
          "of the episode is higher than on the first trial, where the rewarded cue is still unknown "
          "(difference larger than two standard errors).",
          _within_episode),
]

EXPERIMENT = Experiment(
    name="cue-reward",
    paper=PAPER,
    description=("Cue-reward association by A2C: networks with neuromodulated plasticity (simple, "
                 "retroactive) discover the rewarded cue within each episode; a plastic network without "
                 "modulation and a non-plastic RNN do not."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(trial_steps=6, num_trials=20, hidden_size=200, batch_size=30, updates=200_000, lr=1e-4,
                       gamma=0.9, entropy_coef=0.1, alpha_init=0.01, eligibility_rate=0.1, eval_episodes=1000,
                       checkpoint_every=1000),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=3.0,
    main_metric="reward_simple",
    tags=("plasticity", "neuromodulation", "reinforcement-learning"),
)
