"""Grid maze exploration: a neuromodulated plastic RNN against a non-plastic RNN, trained with A2C.

Miconi, Rawal, Clune & Stanley 2019, "Backpropamine: training self-modifying neural networks with
differentiable neuromodulated plasticity" (ICLR), section 4.2; the task first appeared in Miconi, Clune &
Stanley 2018, "Differentiable plasticity" (ICML), section 4.5.

Each episode hides a reward in a cell of a grid maze (:class:`neuroplastic.tasks.GridMazeTask`); the agent
sees only its 3 x 3 neighbourhood, so it must explore, find the reward, and remember where it is to go back
to it after each teleport. The location changes between episodes, so it must be learned *within* the
episode: the fixed weights learn how to explore and how to store; the Hebbian traces store.

Networks (the same input layer, hidden size and heads; only the recurrent weight differs)::

    modulated:  h_t = tanh(x_t W_in + b + h_{t-1} (W + alpha * H_{t-1}))
                M_t = tanh(h_t w_m + b_m) (one channel), fanned out to one rate per neuron: eta_t = M_t w_f + b_f
                H_t = clip(H_{t-1} + eta_t * h_{t-1} (x) h_t, -2, 2)
    plastic:    the same with a learned constant rate eta and a decaying trace
                H_t = (1 - eta) H_{t-1} + eta h_{t-1} (x) h_t (Miconi et al. 2018; optional third variant)
    rnn:        h_t = tanh(x_t W_in + b + h_{t-1} W)
    heads:      [policy logits (4), value] = h_t W_out + b_out

Agents: :class:`neuroplastic.models.MazeAgent` on a :class:`~neuroplastic.plasticity.PlasticRNNCell` or a
:class:`~neuroplastic.models.RNNCell`. A2C (as the authors' released ``maze.py``;
:func:`neuroplastic.tasks.a2c_loss`): a batch of episodes runs in lockstep for ``episode_length`` steps,
actions sampled from ``softmax(logits)``; then with the discounted return ``R_t = sum_{k >= t} gamma^(k - t) r_k``
and the advantage ``A_t = R_t - V_t``::

    loss = mean[-log pi(a_t | h_t) * stop_grad(A_t)] + c_v * mean[A_t^2] - c_e * mean[entropy(pi(. | h_t))]

one Adam step per batch, gradient norm clipped. Deviation: the released code penalises the sum of squared
action probabilities (a concentration measure) instead of subtracting the entropy; we use the entropy bonus,
which rewards the same thing (more uniform action distributions). The quick budget is scaled down (see
:class:`Config`). Measured results and what was tried: ``docs/results/grid-maze.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neuroplastic.evaluation import count_parameters
from neuroplastic.models import MazeAgent, RNNCell, run_maze_episodes
from neuroplastic.plasticity import PlasticRNNCell
from neuroplastic.runs import Claim, Experiment, RunDirectory, param
from neuroplastic.runs.config import config_error
from neuroplastic.runs.plots import smooth
from neuroplastic.tasks import GridMazeTask, a2c_loss, episode_statistics, grid_maze_layout, policy_log_probs

__all__ = ["Config", "VARIANTS", "make_agent", "evaluate", "run", "EXPERIMENT"]

VARIANTS = ("modulated", "plastic", "rnn")
LABELS = {"modulated": "modulated plastic (Backpropamine)", "plastic": "plastic, no modulation",
          "rnn": "non-plastic RNN", "random": "random actions"}
COLORS = {"modulated": "tab:red", "plastic": "tab:orange", "rnn": "tab:blue", "random": "tab:gray"}


@dataclass
class Config:
    """Hyper-parameters of the grid-maze experiment (defaults: the quick budget).

    Released code (``simplemaze/maze.py`` of the Backpropamine repository): maze 11 (the paper's runs use
    13), 200 steps per episode, hidden 100, batch 30, Adam lr 1e-4 (eps 1e-4), gradient norm clip 4,
    gamma 0.9, value coefficient 0.1, concentration penalty 0.03, reward 10, wall penalty 0, up to 10^6
    batches. Kept here: gamma, value and entropy coefficients, clip 4, Adam eps, reward 10, the trace clip 2
    and the wall penalty 0 (the released default; the task's own default is 0.1). Scaled down for the
    3-minute quick budget: maze 7 (21 free cells), 100 steps, hidden 64, batch 32, lr 1e-3 (ten times the
    released value) and 500 updates (16,000 episodes per variant). ``full`` goes back to the released
    settings (maze 11, 200 steps, hidden 100, batch 30, lr 1e-4) for 20,000 updates.

    Fields: ``variants`` any distinct ones of ``"modulated"``, ``"plastic"``, ``"rnn"`` (trained in this
    order); ``eval_episodes`` fresh episodes per variant (in batches of ``eval_batch``), also played by
    uniformly random actions; ``time_windows`` windows of the within-episode reward profile; ``replay``
    computes the training graph by replaying the recorded observations through the fused sequence pass
    instead of keeping the step-by-step graph (same gradients; used at the full size, where it is faster;
    timings on the results page).
    """

    variants: tuple[str, ...] = param(("modulated", "rnn"), choices=VARIANTS, min_length=1)
    maze_size: int = 7
    episode_length: int = 100
    reward_value: float = 10.0
    wall_penalty: float = 0.0
    hidden_size: int = 64
    batch_size: int = 32
    updates: int = param(500, minimum=1)
    lr: float = 1e-3
    adam_eps: float = param(1e-4, minimum=0, exclusive_minimum=True)  # 0: NaN policies from zero gradients
    grad_clip: float = 4.0
    gamma: float = 0.9
    value_coef: float = 0.1
    entropy_coef: float = 0.03
    clip: float = 2.0
    eval_episodes: int = param(256, minimum=1)
    eval_batch: int = param(128, minimum=1)
    time_windows: int = param(10, minimum=1)
    log_every: int = param(10, minimum=1)
    checkpoint_every: int = 50
    replay: bool = False

    def check(self) -> None:
        if len(set(self.variants)) != len(self.variants):
            raise config_error(self, "variants", "distinct")


def make_agent(variant: str, obs_dim: int, hidden_size: int, *, clip: float = 2.0) -> MazeAgent:
    """The agent of one variant: ``"modulated"``, ``"plastic"`` or ``"rnn"`` (see the module docstring)."""
    if variant == "modulated":
        core: nn.Module = PlasticRNNCell(obs_dim, hidden_size, modulation="simple", clip=clip)
    elif variant == "plastic":
        core = PlasticRNNCell(obs_dim, hidden_size, modulation="none", rule="hebbian")
    elif variant == "rnn":
        core = RNNCell(obs_dim, hidden_size)
    else:
        raise ValueError(f"variant must be one of {', '.join(map(repr, VARIANTS))}; got {variant!r}")
    return MazeAgent(core, GridMazeTask.num_actions)


# ---------------------------------------------------------------------------------------------- evaluation
def _make_task(config: Config, batch_size: int, generator: torch.Generator, device: torch.device) -> GridMazeTask:
    return GridMazeTask(batch_size, size=config.maze_size, episode_length=config.episode_length,
                        reward_value=config.reward_value, wall_penalty=config.wall_penalty,
                        generator=generator, device=device)


def evaluate(agent: MazeAgent | None, config: Config, seed: int, device: torch.device) -> dict[str, object]:
    """Play ``config.eval_episodes`` fresh episodes (stochastic policy, no learning of the fixed weights).

    Every variant is evaluated on the same episodes: reward cells, teleports and action noise come from
    generators seeded with ``seed`` alone (the task draws teleports whatever the outcome, so the streams
    stay aligned across agents).

    Returns:
        the arrays of :func:`episode_statistics`, ``totals [E]`` (total reward per episode) and ``example``,
        the recorded first episode (positions, reward cell, hit steps) for the trajectory plot.
    """
    task_gen = torch.Generator().manual_seed(seed)
    action_gen = torch.Generator().manual_seed(seed + 1)
    found, totals = [], []
    example: dict[str, np.ndarray] = {}
    remaining = config.eval_episodes
    with torch.inference_mode():
        while remaining > 0:
            batch = min(config.eval_batch, remaining)
            task = _make_task(config, batch, task_gen, device)
            out = run_maze_episodes(agent, task, action_gen, record=not example)
            rewards = out["rewards"].cpu()
            hit = rewards > 0.5 * config.reward_value
            found.append(hit)
            totals.append(rewards.sum(1))
            if not example:
                example = {"positions": out["positions"][0].cpu().numpy(),
                           "reward_cell": out["reward_cells"][0].cpu().numpy(),
                           "hits": np.flatnonzero(hit[0].numpy())}
            remaining -= batch
    stats: dict[str, object] = dict(episode_statistics(torch.cat(found), config.time_windows))
    stats["totals"] = torch.cat(totals).double().numpy()
    stats["example"] = example
    return stats


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    se = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else float("nan")
    return float(values.mean()), se


def _summary_metrics(name: str, stats: dict[str, object], reward_value: float) -> dict[str, float]:
    """Flat metrics of one evaluated agent (means and standard errors over the evaluation episodes)."""
    metrics: dict[str, float] = {}
    metrics[f"{name}_reward"], metrics[f"{name}_reward_se"] = _mean_se(stats["totals"])
    first = np.asarray(stats["first_half"]) * reward_value
    second = np.asarray(stats["second_half"]) * reward_value
    metrics[f"{name}_reward_first_half"] = float(first.mean())
    metrics[f"{name}_reward_second_half"] = float(second.mean())
    metrics[f"{name}_half_gain"], metrics[f"{name}_half_gain_se"] = _mean_se(second - first)
    metrics[f"{name}_first_hit_step"], _ = _mean_se(stats["first_hit"])
    metrics[f"{name}_return_steps"], _ = _mean_se(stats["return_time"])
    return metrics


# ---------------------------------------------------------------------------------------------- plots
def _plot_learning_curves(curves: dict[str, list[float]], random_reward: float, config: Config):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = fig.subplots()
    for variant, curve in curves.items():
        y = np.asarray(curve, dtype=float)
        x = np.arange(1, len(y) + 1)
        ax.plot(x, y, color=COLORS[variant], alpha=0.25, lw=0.8)
        ax.plot(x, smooth(y, max(1, len(y) // 30)), color=COLORS[variant], lw=2, label=LABELS[variant])
    ax.axhline(random_reward, color=COLORS["random"], ls="--", lw=1, label=LABELS["random"])
    ax.set_xlabel(f"update (batch of {config.batch_size} episodes)")
    ax.set_ylabel(f"reward per episode ({config.episode_length} steps)")
    ax.set_title(f"Grid maze {config.maze_size}x{config.maze_size}: A2C training")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _plot_within_episode(evals: dict[str, dict[str, object]], metrics: dict[str, float], config: Config):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.0), layout="constrained")
    ax, cx, bx = fig.subplots(1, 3, gridspec_kw={"width_ratios": [2, 1.6, 1]})
    windows = config.time_windows
    width = config.episode_length / windows
    centres = (np.arange(windows) + 0.5) * width
    for name, stats in evals.items():
        per_window = np.asarray(stats["window_hits"]) * config.reward_value
        mean = per_window.mean(0)
        se = per_window.std(0, ddof=1) / math.sqrt(per_window.shape[0])
        ax.errorbar(centres, mean, yerr=se, color=COLORS[name], marker="o", ms=4, capsize=2,
                    ls="--" if name == "random" else "-", label=LABELS[name])
    ax.set_xlabel("time step within the episode (window centre)")
    ax.set_ylabel(f"reward per {width:g}-step window")
    ax.set_title("Reward rate within an episode (evaluation)")
    ax.legend(fontsize=8)
    for name, stats in evals.items():
        intervals = np.asarray(stats["hit_intervals"])
        counts = np.isfinite(intervals).sum(0)
        keep = counts >= 10  # hit indices reached in at least 10 episodes
        if not keep.any():
            continue
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(intervals[:, keep], 0)
            se = np.nanstd(intervals[:, keep], 0, ddof=1) / np.sqrt(counts[keep])
        cx.errorbar(np.flatnonzero(keep) + 1, mean, yerr=se, color=COLORS[name], marker="o", ms=4, capsize=2,
                    ls="--" if name == "random" else "-", label=LABELS[name])
    cx.set_xlabel("k-th reward of the episode")
    cx.set_ylabel("steps to reach it")
    cx.set_title("1st: from the start; then from each teleport\n(episodes with >= k rewards)", fontsize=9)
    names = list(evals)
    means = [metrics[f"{n}_reward"] for n in names]
    ses = [metrics[f"{n}_reward_se"] for n in names]
    bx.bar(range(len(names)), means, yerr=ses, capsize=4, color=[COLORS[n] for n in names])
    bx.set_xticks(range(len(names)), [LABELS[n].split(" (")[0].replace(", ", "\n") for n in names], fontsize=7)
    bx.set_ylabel("reward per episode (mean ± s.e.)")
    bx.set_title(f"{config.eval_episodes} fresh episodes")
    return fig


def _plot_trajectories(evals: dict[str, dict[str, object]], config: Config):
    from matplotlib.figure import Figure

    names = [n for n in evals if n != "random"]
    walls = grid_maze_layout(config.maze_size).numpy()
    fig = Figure(figsize=(3.6 * len(names), 3.9), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    for ax, name in zip(axes, names, strict=True):
        example = evals[name]["example"]
        pos = np.asarray(example["positions"], dtype=float)
        hits = [int(h) for h in example["hits"]]
        ax.imshow(walls, cmap="Greys", vmin=0, vmax=1.5)
        # Step t moves pos[t] -> pos[t + 1]; after a hit (t in hits) pos[t + 1] is the teleport landing cell.
        # Draw the search for the first reward and the next three returns, one colour each.
        bounds = [-1, *hits[:4]]
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            # from the segment's first cell to the reward cell (positions hold the landing cell after a hit)
            path = np.concatenate([pos[a + 1: b + 1], np.asarray(example["reward_cell"], dtype=float)[None]])
            shift = 0.12 * (k - 1.5)
            color = _cmap(k / 3)
            ax.plot(path[:, 1] + shift, path[:, 0] + shift, color=color, lw=1.6,
                    label="search" if k == 0 else f"return {k}")
            ax.plot(path[0, 1] + shift, path[0, 0] + shift, marker="o", ms=5, color=color)
        r = example["reward_cell"]
        ax.plot(r[1], r[0], marker="*", ms=16, color="gold", mec="k")
        steps = np.diff(bounds)
        detail = f"found in {steps[0]} steps, returns in {', '.join(map(str, steps[1:]))} steps" if hits else "none"
        ax.set_title(f"{LABELS[name]}\n{len(hits)} rewards; {detail}", fontsize=8)
        if len(bounds) > 1:
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def _cmap(value: float):
    from matplotlib import colormaps

    return colormaps["viridis"](value)


# ---------------------------------------------------------------------------------------------- run
def _train(variant: str, config: Config, run_dir: RunDirectory, obs_dim: int) -> tuple[MazeAgent, list[float]]:
    """Train one variant with A2C in phase ``train_<variant>``; returns the agent and its reward curve."""
    device = run_dir.device
    agent = make_agent(variant, obs_dim, config.hidden_size, clip=config.clip).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr, eps=config.adam_eps)
    offset = 1 + VARIANTS.index(variant)
    task_gen = torch.Generator().manual_seed(run_dir.seed * 1000 + 10 * offset)
    action_gen = torch.Generator().manual_seed(run_dir.seed * 1000 + 10 * offset + 1)
    task = _make_task(config, config.batch_size, task_gen, device)
    run_dir.track(model=agent, optimizer=optimizer, task_generator=task_gen, action_generator=action_gen)
    key = f"curve_{variant}"
    run_dir.state[key] = []
    for step in run_dir.steps(config.updates, phase=f"train_{variant}", checkpoint_every=config.checkpoint_every,
                              desc=f"grid maze {variant}"):
        episodes = run_maze_episodes(agent, task, action_gen, replay=config.replay)
        log_probs, entropies = policy_log_probs(episodes["logits"], episodes["actions"])
        loss, parts = a2c_loss(log_probs, episodes["values"], entropies, episodes["rewards"], gamma=config.gamma,
                               value_coef=config.value_coef, entropy_coef=config.entropy_coef,
                               returns_method="matrix")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(agent.parameters(), config.grad_clip)
        optimizer.step()
        reward = float(episodes["rewards"].sum(1).mean())
        run_dir.state[key].append(reward)
        if step % config.log_every == 0 or step == config.updates - 1:
            run_dir.log(step, **{f"reward_{variant}": reward, f"entropy_{variant}": parts["entropy"],
                                 f"value_loss_{variant}": parts["value_loss"],
                                 f"grad_norm_{variant}": float(grad_norm)})
    return agent, list(run_dir.state[key])


def run(config: Config, run_dir: RunDirectory) -> dict[str, float]:
    """Train every variant with A2C on the grid maze, evaluate on fresh episodes, plot; return metrics."""
    device = run_dir.device
    obs_dim = _make_task(config, 1, torch.Generator(), device).obs_dim
    eval_seed = 7919 + run_dir.seed * 1000  # the same fresh evaluation episodes for every variant

    curves: dict[str, list[float]] = {}
    evals: dict[str, dict[str, object]] = {}
    for variant in config.variants:
        agent, curves[variant] = _train(variant, config, run_dir, obs_dim)
        agent.eval()
        evals[variant] = evaluate(agent, config, eval_seed, device)
    evals["random"] = evaluate(None, config, eval_seed, device)

    metrics: dict[str, float] = {}
    for name, stats in evals.items():
        metrics.update(_summary_metrics(name, stats, config.reward_value))
    for variant, curve in curves.items():
        curve_array = np.asarray(curve, dtype=float)
        window = max(1, len(curve) // 10)
        metrics[f"{variant}_train_reward_last10pct"] = float(curve_array[-window:].mean())
        # best moving average over a tenth of training: tells a late collapse from never learning
        averages = np.convolve(curve_array, np.ones(window) / window, mode="valid")
        metrics[f"{variant}_train_reward_peak"] = float(averages.max())
    for variant in config.variants:
        agent = make_agent(variant, obs_dim, config.hidden_size)
        metrics[f"{variant}_parameters"] = count_parameters(agent)
    run_dir.write_json("evaluation", {
        name: {"window_reward": (np.asarray(s["window_hits"]) * config.reward_value).mean(0).tolist(),
               "totals": np.asarray(s["totals"]).tolist()}
        for name, s in evals.items()
    })
    run_dir.save_figure(_plot_learning_curves(curves, metrics["random_reward"], config), "learning_curves")
    run_dir.save_figure(_plot_within_episode(evals, metrics, config), "reward_within_episode")
    run_dir.save_figure(_plot_trajectories(evals, config), "trajectories")
    return metrics


# ---------------------------------------------------------------------------------------------- claims
def _check_modulated_beats_rnn(metrics: dict[str, float]) -> tuple[bool, dict[str, float]]:
    mod, rnn = metrics["modulated_reward"], metrics["rnn_reward"]
    se = math.hypot(metrics["modulated_reward_se"], metrics["rnn_reward_se"])
    measured = {"modulated": round(mod, 2), "modulated_se": round(metrics["modulated_reward_se"], 2),
                "rnn": round(rnn, 2), "rnn_se": round(metrics["rnn_reward_se"], 2),
                "difference": round(mod - rnn, 2), "difference_se": round(se, 2)}
    return mod - rnn > 2 * se, measured


def _check_within_episode(metrics: dict[str, float]) -> tuple[bool, dict[str, float]]:
    gain, se = metrics["modulated_half_gain"], metrics["modulated_half_gain_se"]
    measured = {"first_half": round(metrics["modulated_reward_first_half"], 2),
                "second_half": round(metrics["modulated_reward_second_half"], 2),
                "gain": round(gain, 2), "gain_se": round(se, 2)}
    return gain > 2 * se, measured


PAPER = ("Miconi, Rawal, Clune & Stanley 2019, Backpropamine (ICLR), section 4.2; "
         "Miconi, Clune & Stanley 2018, Differentiable plasticity (ICML), section 4.5")

CLAIMS = [
    Claim(PAPER,
          "After A2C training on the grid maze, the neuromodulated plastic RNN collects more reward per episode "
          "than a non-plastic RNN of the same size (fresh evaluation episodes; difference > 2 standard errors).",
          _check_modulated_beats_rnn),
    Claim(PAPER,
          "The modulated plastic network learns the reward location within the episode: it collects more "
          "reward in the second half of an episode than in the first (paired difference > 2 standard errors).",
          _check_within_episode),
]

EXPERIMENT = Experiment(
    name="grid-maze",
    paper=PAPER,
    description=(
        "Grid maze exploration with a hidden reward that moves between episodes: a Backpropamine "
        "(neuromodulated plastic) RNN vs a non-plastic RNN (and optionally a plastic RNN without "
        "modulation), both trained with A2C; reward per episode and reward rate within an episode."
    ),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(variants=("modulated", "plastic", "rnn"), maze_size=11, episode_length=200,
                       hidden_size=100, batch_size=30, updates=20000, lr=1e-4, eval_episodes=1000,
                       eval_batch=250, log_every=20, checkpoint_every=500, replay=True),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=3.0,
    main_metric="reward_modulated",
)
