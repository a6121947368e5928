"""Growing RNNs: a recurrent network that starts with one neuron grows to the size its task needs.

Miconi 2016, "Neural networks with differentiable structure" (arXiv 1606.06216), sections 3-4.

Next-character prediction over the alphabet {a, b, (, )} (one-hot inputs, 4 logits out, cross-entropy) on the
tasks of :mod:`neuroplastic.tasks.sequences`:

- easy task: the repeated sequence ``ababab...`` (each window starts at a random phase);
- hard task: groups of 6 letters from {a, b} in parentheses, ``(aabbab)(babaab)...``: each group is the reverse
  of the previous one with the letter at one random position changed to the other letter. Best possible loss
  0.224 nats/char (``HARD_FLOOR``); a predictor that counts but remembers nothing: 0.520 (``COUNTING_LOSS``).

Network and training (see :mod:`neuroplastic.structure.growth` for the rule)::

    h_t = tanh(W_ih x_t + W_hh h_{t-1} + b),  logits_t = W_ho h_t + b_o         (GrowableRNN, starts at H = 1)
    each step: Adam on the cross-entropy of a batch of windows (h_0 = 0), then the decoupled L1 step
        W <- sign(W) * max(|W| - strength / (G * J), 0) on W_ho and W_hh, then one check of the growth rule:
        n_k = 0.5 * (mean_o |W_ho[o, k]| + mean_j |W_hh[j, k]|); unit k removed after ``patience`` consecutive
        steps with n_k < threshold; units added (outgoing weights +-outgoing_init) while fewer than ``reserve``
        have n_k < threshold.

Conditions, each with ``seeds`` networks (own initialisation and data): ``easy`` and ``hard`` (grown from one
neuron for ``steps`` steps), ``switch`` (each easy network, after its easy phase, trained ``switch_steps`` more
steps on the hard task), and ``fixed`` (for each hard network, an RNN of its final size trained from scratch on
the same batches with the same optimizer, penalty and budget, without growth or removal; as the paper's code
does, the fixed networks get the L1 penalty too).

Differences from the paper (whose code trains one 40-character window of a long text per step, for 100,000
steps, with RMSProp at 0.01, updates clipped at 0.01, and deletion/addition probabilities; see
:mod:`neuroplastic.structure.growth` for the rule's differences):

- The spec's easy task is ``abab...``; the paper's easy task is groups of one or more ``ab`` in parentheses
  with a random number of repetitions.
- Training: Adam (lr 0.01, gradients clipped to norm 1) on batches of ``batch_size`` (64) independent
  40-character windows, each from a zero state (the paper carries the hidden state along one text). The quick
  budget trains 2,000 steps per network (1,000 after the switch); the full one 10,000 steps (5,000 after the
  switch), i.e. 25.6 million characters per network, 6.4 times the paper's 100,000 windows of 40 characters,
  with 5 networks per condition instead of 20.
- Threshold and penalty in this library's units: threshold 0.0125 and strength 8e-4 are the paper's 0.05 and
  1e-4 per readout weight and step (its norm sums over the 4 outputs; ours averages). A new neuron's outgoing
  weights are +-0.01, its norm 0.8 times the threshold (the paper: exactly the threshold); patience 100 steps
  (the paper deletes an excess sub-threshold neuron with probability 0.05 per step); 3 reserve units (the
  paper's k is 1).
- The penalty is the decoupled step, not a loss term through Adam (``penalty="loss"``), with which hard-task
  networks did not grow past the task's first plateau.

Measured results, and what was tried: ``docs/results/growing-rnn.md``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param
from neuroplastic.structure.growth import GrowableRNN, GrowthRule
from neuroplastic.tasks.sequences import ALPHABET, COUNTING_LOSS, HARD_FLOOR, TASKS, task_batch

__all__ = ["Config", "make_network", "sequence_loss", "evaluate", "run", "EXPERIMENT"]

PAPER = "Miconi 2016, Neural networks with differentiable structure (arXiv 1606.06216)"


@dataclass
class Config:
    """Settings of the growing-RNN experiment (defaults: the quick budget).

    ``penalty`` is "decoupled" (the L1 step after each optimizer step, as the paper) or "loss" (the penalty added
    to the loss). ``clip_norm``: gradients are clipped to this global norm before each Adam step (0: no clipping;
    the paper clips each update at 0.01). ``eval_*``: held-out sequences on which the final losses are measured,
    skipping the first ``eval_burn_in`` characters (before a whole previous group has been seen).
    ``reserve``: how many sub-threshold units each network keeps (the paper's k is 1). With k = 1 and batches
    of 16, growth of one unit at a time had not caught up with fixed-size networks within the quick budget;
    three reserve units and batches of 64 let it catch up (docs/results/growing-rnn.md).
    """

    seeds: int = param(3, minimum=1)
    steps: int = param(2000, minimum=1)
    switch_steps: int = param(1000, minimum=1)
    batch_size: int = param(64, minimum=1)
    seq_len: int = param(40, minimum=1)
    lr: float = param(0.01, minimum=0, exclusive_minimum=True)
    clip_norm: float = param(1.0, minimum=0)
    threshold: float = param(0.0125, minimum=0, exclusive_minimum=True)
    patience: int = param(100, minimum=1)
    reserve: int = param(3, minimum=1)
    outgoing_init: float = param(0.01, minimum=0)
    penalty: str = param("decoupled", choices=("decoupled", "loss"))
    strength: float = param(8e-4, minimum=0)
    max_size: int = param(100, minimum=1)
    fixed_baseline: bool = True
    eval_sequences: int = param(32, minimum=1)
    eval_length: int = param(400, minimum=1)
    eval_burn_in: int = param(16, minimum=0)
    log_every: int = param(10, minimum=1)
    eval_every: int = param(100, minimum=1)
    checkpoint_every: int = param(250, minimum=1)

    def check(self) -> None:
        if self.eval_burn_in >= self.eval_length:
            raise config_error(self, "eval_burn_in", f"less than eval_length ({self.eval_length})")


# --------------------------------------------------------------------------------------------------- model
def make_network(config: Config, generator: torch.Generator, hidden_size: int = 1) -> GrowableRNN:
    """An RNN over ``ALPHABET`` (4 inputs, 4 logits) with ``hidden_size`` neurons, initialised from ``generator``."""
    return GrowableRNN(len(ALPHABET), len(ALPHABET), hidden_size, generator=generator)


def sequence_loss(model: GrowableRNN, sequence: Tensor, skip: int = 0) -> Tensor:
    """Mean cross-entropy (nats/char) of predicting ``sequence[:, t + 1]`` from ``sequence[:, :t + 1]``.

    ``sequence [B, T + 1]`` of character indices; predictions for the first ``skip`` targets are not counted.
    """
    inputs = F.one_hot(sequence[:, :-1], len(ALPHABET)).float()
    logits, _ = model(inputs)
    logits, targets = logits[:, skip:], sequence[:, 1 + skip:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@torch.no_grad()
def evaluate(model: GrowableRNN, task: str, config: Config, seed: int) -> float:
    """Cross-entropy (nats/char) on held-out sequences of ``task``, the same ones for every network of a run."""
    generator = torch.Generator().manual_seed(seed)
    sequence = task_batch(task, config.eval_sequences, config.eval_length + 1, generator)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss = float(sequence_loss(model, sequence.to(device), skip=config.eval_burn_in))
    model.train(was_training)
    return loss


# --------------------------------------------------------------------------------------------------- training
def _rule(config: Config) -> GrowthRule:
    return GrowthRule(threshold=config.threshold, patience=config.patience, max_size=config.max_size,
                      outgoing_init=config.outgoing_init, reserve=config.reserve)


def _optimizer(model: GrowableRNN, config: Config) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)


def _train(run_dir: RunDirectory, config: Config, phase: str, task: str, model: GrowableRNN,
           optimizer: torch.optim.Optimizer, data: torch.Generator, init: torch.Generator, steps: int,
           grow: bool, eval_seed: int, step_offset: int = 0) -> None:
    """Train ``model`` on ``task`` for ``steps`` steps in phase ``phase``; grow and shrink it if ``grow``.

    Logs the batch's loss and the size every ``log_every`` steps, the held-out loss every ``eval_every`` steps.
    """
    device = run_dir.device
    rule = _rule(config)
    run_dir.track(model=model, optimizer=optimizer, data=data, init=init)
    for step in run_dir.steps(steps, phase=phase, checkpoint_every=config.checkpoint_every, desc=phase):
        sequence = task_batch(task, config.batch_size, config.seq_len + 1, data).to(device)
        loss = sequence_loss(model, sequence)
        total = loss + model.l1_penalty(config.strength) if config.penalty == "loss" else loss
        optimizer.zero_grad()
        total.backward()
        if config.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        if config.penalty == "decoupled":
            model.shrink_(config.strength)
        if grow:
            model.update_structure(rule, optimizer, init)
        row: dict[str, Any] = {}
        if step % config.log_every == 0 or step == steps - 1:
            row.update(loss=loss.detach(), size=model.hidden_size)
        if (step + 1) % config.eval_every == 0 or step == steps - 1:
            row["eval_loss"] = evaluate(model, task, config, eval_seed)
        if row:
            run_dir.log(step_offset + step, **row)


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Grow networks on the easy and the hard task, switch the easy ones to the hard task, train fixed baselines.

    Returns per network ``{condition}_s{i}_size`` (final number of neurons), ``{condition}_s{i}_loss`` (held-out
    nats/char on its final task at the end) and ``{condition}_s{i}_late_loss`` (its mean over the last tenth of
    the phase's evaluations), ``switch_s{i}_size_before``, the medians over networks ``{condition}_median_size``,
    ``{condition}_median_loss`` and ``{condition}_median_late_loss``, ``switch_median_growth``, and the reference
    losses ``hard_floor`` and ``counting_loss``.
    """
    device = run_dir.device
    metrics: dict[str, Any] = {"hard_floor": HARD_FLOOR, "counting_loss": COUNTING_LOSS}
    eval_seed = {task: 1_000_003 * (run_dir.seed + 1) + i for i, task in enumerate(TASKS)}
    for i in range(config.seeds):
        base = 1000 * run_dir.seed + 10 * i

        def generators(offset: int, base: int = base) -> tuple[torch.Generator, torch.Generator]:
            return (torch.Generator().manual_seed(base + offset), torch.Generator().manual_seed(base + offset + 5))

        # easy, then the same network switched to the hard task
        data, init = generators(1)
        model = make_network(config, init).to(device)
        optimizer = _optimizer(model, config)
        _train(run_dir, config, f"easy-s{i}", "easy", model, optimizer, data, init, config.steps, grow=True,
               eval_seed=eval_seed["easy"])
        metrics[f"easy_s{i}_size"] = model.hidden_size
        metrics[f"easy_s{i}_loss"] = evaluate(model, "easy", config, eval_seed["easy"])
        metrics[f"switch_s{i}_size_before"] = model.hidden_size
        data, _ = generators(2)
        _train(run_dir, config, f"switch-s{i}", "hard", model, optimizer, data, init, config.switch_steps,
               grow=True, eval_seed=eval_seed["hard"], step_offset=config.steps)
        metrics[f"switch_s{i}_size"] = model.hidden_size
        metrics[f"switch_s{i}_loss"] = evaluate(model, "hard", config, eval_seed["hard"])

        # hard, grown from one neuron
        data, init = generators(3)
        model = make_network(config, init).to(device)
        optimizer = _optimizer(model, config)
        _train(run_dir, config, f"hard-s{i}", "hard", model, optimizer, data, init, config.steps, grow=True,
               eval_seed=eval_seed["hard"])
        size = model.hidden_size
        metrics[f"hard_s{i}_size"] = size
        metrics[f"hard_s{i}_loss"] = evaluate(model, "hard", config, eval_seed["hard"])

        # fixed size: the grown network's final size, the same batches (data seed) and budget
        if config.fixed_baseline:
            data, init = generators(3)
            model = make_network(config, torch.Generator().manual_seed(base + 9), hidden_size=size).to(device)
            optimizer = _optimizer(model, config)
            _train(run_dir, config, f"fixed-s{i}", "hard", model, optimizer, data, init, config.steps, grow=False,
                   eval_seed=eval_seed["hard"])
            metrics[f"fixed_s{i}_size"] = model.hidden_size
            metrics[f"fixed_s{i}_loss"] = evaluate(model, "hard", config, eval_seed["hard"])

    conditions = ("easy", "hard", "switch") + (("fixed",) if config.fixed_baseline else ())
    for condition in conditions:
        for i in range(config.seeds):
            metrics[f"{condition}_s{i}_late_loss"] = _late_loss(run_dir, f"{condition}-s{i}")
        for quantity in ("size", "loss", "late_loss"):
            values = [metrics[f"{condition}_s{i}_{quantity}"] for i in range(config.seeds)]
            metrics[f"{condition}_median_{quantity}"] = float(statistics.median(values))
    before = [metrics[f"switch_s{i}_size_before"] for i in range(config.seeds)]
    metrics["switch_median_size_before"] = float(statistics.median(before))
    metrics["switch_median_growth"] = float(statistics.median(
        [metrics[f"switch_s{i}_size"] - metrics[f"switch_s{i}_size_before"] for i in range(config.seeds)]))
    _plot(run_dir, config, metrics)
    return metrics


def _late_loss(run_dir: RunDirectory, phase: str) -> float:
    """The mean held-out loss over the last tenth of a phase's evaluations (at least one): less sensitive than
    the final loss to the transient loss spikes that Adam at this learning rate shows."""
    values = [float(row["eval_loss"]) for row in run_dir.metrics
              if row.get("phase") == phase and row.get("eval_loss", "") != ""]
    late = values[-max(1, len(values) // 10):]
    return sum(late) / len(late)


# --------------------------------------------------------------------------------------------------- plots
_COLORS = {"easy": "tab:blue", "hard": "tab:red", "switch": "tab:green", "fixed": "tab:gray"}
_LABELS = {"easy": "easy (abab...)", "hard": "hard (reversed groups)", "switch": "easy, then hard",
           "fixed": "fixed size (= grown hard size)"}


def _series(run_dir: RunDirectory, phase: str, name: str) -> tuple[list[float], list[float]]:
    rows = [row for row in run_dir.metrics if row.get("phase") == phase and row.get(name, "") != ""]
    return [float(row["step"]) for row in rows], [float(row[name]) for row in rows]


def _plot(run_dir: RunDirectory, config: Config, metrics: dict[str, Any]) -> None:
    from matplotlib.figure import Figure

    seeds = range(config.seeds)
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for condition, ax in (("easy", axes[0]), ("hard", axes[0]), ("switch", axes[1])):
        for i in seeds:
            phases = [f"easy-s{i}", f"switch-s{i}"] if condition == "switch" else [f"{condition}-s{i}"]
            steps, sizes = [], []
            for phase in phases:
                s, v = _series(run_dir, phase, "size")
                steps += s
                sizes += v
            ax.plot(steps, sizes, color=_COLORS[condition], lw=1.2, alpha=0.8,
                    label=_LABELS[condition] if i == 0 else None)
    axes[1].axvline(config.steps, color="k", ls=":", lw=1, label="switch to the hard task")
    axes[0].set_title(f"Network size, grown from 1 neuron ({config.seeds} networks each)")
    axes[1].set_title("Easy task, then the hard task")
    for ax in axes:
        ax.set_xlabel(f"training step ({config.batch_size} windows of {config.seq_len} characters)")
        ax.set_ylabel("hidden neurons")
        ax.legend(fontsize=8)
    run_dir.save_figure(fig, "network_size")

    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for condition in ("easy", "hard", "fixed", "switch"):
        if condition == "fixed" and not config.fixed_baseline:
            continue
        for i in seeds:
            phases = [f"easy-s{i}", f"switch-s{i}"] if condition == "switch" else [f"{condition}-s{i}"]
            steps, losses = [], []
            for phase in phases:
                s, v = _series(run_dir, phase, "eval_loss")
                steps += s
                losses += v
            ax = axes[1] if condition == "switch" else axes[0]
            ax.plot(steps, losses, color=_COLORS[condition], lw=1.2, alpha=0.8,
                    label=_LABELS[condition] if i == 0 else None)
    axes[1].axvline(config.steps, color="k", ls=":", lw=1)
    for ax in axes:
        ax.axhline(HARD_FLOOR, color="k", ls="--", lw=0.8, label="hard task: best possible")
        ax.axhline(COUNTING_LOSS, color="k", ls=":", lw=0.8, label="hard task: counting, no memory")
        ax.set_xlabel("training step")
        ax.set_ylabel("held-out cross-entropy (nats/char)")
        ax.set_ylim(0, 0.8)
        ax.legend(fontsize=8)
    axes[0].set_title("Held-out loss on the network's task")
    axes[1].set_title("Easy task (abab...), then the hard task")
    run_dir.save_figure(fig, "losses")

    if config.fixed_baseline:
        fig = Figure(figsize=(5.5, 4))
        ax = fig.subplots()
        for i in seeds:
            size = metrics[f"hard_s{i}_size"]
            ax.scatter([size - 0.1], [metrics[f"hard_s{i}_loss"]], color=_COLORS["hard"],
                       label="grown" if i == 0 else None)
            ax.scatter([size + 0.1], [metrics[f"fixed_s{i}_loss"]], color=_COLORS["fixed"], marker="s",
                       label="fixed size" if i == 0 else None)
            ax.plot([size - 0.1, size + 0.1], [metrics[f"hard_s{i}_loss"], metrics[f"fixed_s{i}_loss"]], color="k",
                    lw=0.6)
        ax.axhline(HARD_FLOOR, color="k", ls="--", lw=0.8, label="best possible")
        ax.set_xlabel("hidden neurons (final size of the grown network)")
        ax.set_ylabel("held-out loss on the hard task (nats/char)")
        ax.set_title(f"Grown vs fixed size, {config.steps} steps each")
        ax.legend(fontsize=8)
        run_dir.save_figure(fig, "grown_vs_fixed")


# --------------------------------------------------------------------------------------------------- claims
# Claim 2's tolerance, in nats/char: see the claim's statement.
LOSS_TOLERANCE = 0.02


def _sizes_follow_difficulty(m: dict[str, Any]) -> tuple[bool, Any]:
    easy, hard = m["easy_median_size"], m["hard_median_size"]
    return hard > easy, {"hard_median_size": hard, "easy_median_size": easy}


def _grown_no_worse(m: dict[str, Any]) -> tuple[bool, Any]:
    grown, fixed = m["hard_median_loss"], m["fixed_median_loss"]
    return grown <= fixed + LOSS_TOLERANCE, {"grown_median_loss": grown, "fixed_median_loss": fixed,
                                             "tolerance": LOSS_TOLERANCE}


def _switch_grows(m: dict[str, Any]) -> tuple[bool, Any]:
    growth = m["switch_median_growth"]
    return growth > 0, {"median_size_before": m["switch_median_size_before"],
                        "median_size_after": m["switch_median_size"], "median_growth": growth}


CLAIMS = [
    Claim(PAPER,
          "Networks grown from one neuron end larger on the hard task than on the easy one (median final size "
          "over the run's networks; the paper: 37 vs 14 neurons after 100,000 steps).",
          _sizes_follow_difficulty),
    Claim(PAPER,
          "A grown network's held-out loss on the hard task is no worse than that of fixed-size networks of the "
          "same size trained on the same batches for the same number of steps: the median grown loss is at most "
          f"the median fixed loss + {LOSS_TOLERANCE} nats/char. The tolerance is 9% of the task's best possible "
          "0.224 nats/char and about the standard deviation over seeds of either group's final loss at the quick "
          "budget (0.016-0.018 nats/char measured on seed 0), the smallest difference 3 networks a side resolve.",
          _grown_no_worse),
    Claim(PAPER,
          "Switching from the easy to the hard task makes the networks grow: the median over networks of (size "
          "after the hard phase - size at the switch) is positive.",
          _switch_grows),
]

EXPERIMENT = Experiment(
    name="growing-rnn",
    paper=PAPER,
    description=("RNNs that start with one neuron grow and shrink under an L1 penalty on outgoing weights: larger "
                 "on a hard sequence task than on an easy one, grown again when the task gets harder, and "
                 "compared with fixed-size networks of the same size."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(seeds=5, steps=10_000, switch_steps=5_000, eval_every=200, checkpoint_every=1000),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.5,
    main_metric="loss",
    tags=("structure", "growth", "supervised"),
)
