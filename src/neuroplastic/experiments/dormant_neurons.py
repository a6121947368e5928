"""Dormant neurons on a non-stationary stream: plain training loses plasticity, ReDo and DrM keep it.

Sokar, Agarwal, Castro & Evci 2023, "The dormant neuron phenomenon in deep reinforcement learning" (ICML):
under non-stationary targets a growing fraction of ReLU units becomes dormant (score s_i <= tau, see
:mod:`neuroplastic.structure.dormant`), and recycling them (ReDo: fresh incoming weights, zero outgoing
weights) keeps the network able to learn. Xu et al. 2023, "DrM: Mastering visual reinforcement learning
through dormant ratio minimization" (ICLR 2024): perturb every parameter toward a fresh initialisation,
theta <- alpha * theta + (1 - alpha) * phi, with alpha = clip(1 - 2 * dormant ratio, 0.2, 0.9).

The stream: an MLP classifier (ReLU, Adam; :func:`neuroplastic.models.relu_mlp`) trained on the embedded
MNIST sample in phases; at each phase switch the classes are relabelled by a fresh random permutation (the
images stay, their labels move), so the network must re-learn the mapping. The same permutations, batches
and initial weights serve three variants with the same number of gradient steps:

- ``plain``: Adam, nothing else;
- ``redo``: every ``redo_every`` steps, :func:`~neuroplastic.structure.dormant.redo` on a fixed probe batch
  (units with s_i <= ``redo_tau`` recycled, their Adam moments zeroed);
- ``drm``: every ``drm_every`` steps, the dormant ratio beta on the probe batch gives
  alpha = clip(1 - k * beta, alpha_min, alpha_max) and :func:`~neuroplastic.structure.dormant.drm_perturb`
  mixes a fresh initialisation into every layer (their optimizer state restarts).

Neither method is told where the switches are: the reset and perturbation periods (70 and 250 steps) do not
divide the phase length (300), so they fall at varying points of the phases. ReDo recycles often because
recycled units die again soon at this learning rate; DrM perturbs rarely because each perturbation costs
accuracy (as in the paper, where it happens every 100k of 1-3M steps).

Deviations from the papers: a supervised stream of relabelled MNIST digits stands in for their reinforcement
learning agents (whose targets move as the policy changes); the recycling and perturbation periods are
scaled to the stream's phases of a few hundred steps.

Measured every ``eval_every`` steps: the dormant ratio (tau = 0.025, on the probe batch, before any reset
of that step), the test accuracy under the current labelling (:func:`neuroplastic.evaluation.accuracy`, one
batch) and the training loss. Per phase: the test accuracy ``adapt_steps`` steps after the switch, and at the
phase's end. Measured results: ``docs/results/dormant-neurons.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neuroplastic.data import load_digits_dataset, load_mnist_sample
from neuroplastic.evaluation import accuracy
from neuroplastic.models import relu_mlp
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param
from neuroplastic.runs.plots import metric_series
from neuroplastic.structure.dormant import dormant_ratio, drm_perturb, drm_perturb_factor, redo

__all__ = ["Config", "phase_permutations", "run", "EXPERIMENT", "VARIANTS"]

PAPER = ("Sokar et al. 2023, The dormant neuron phenomenon in deep RL (ICML); Xu et al. 2023, DrM: dormant "
         "ratio minimization (ICLR 2024)")
VARIANTS = ("plain", "redo", "drm")
LABELS = {"plain": "plain Adam", "redo": "ReDo (recycle dormant units)", "drm": "DrM (perturb toward init)"}
COLORS = {"plain": "tab:red", "redo": "tab:blue", "drm": "tab:green"}
DATASETS = ("mnist", "digits")


@dataclass
class Config:
    """Stream, network and method settings of the dormant-neurons experiment."""

    dataset: str = param("mnist", choices=DATASETS)
    train_size: int = param(4000, minimum=1)
    hidden: int = param(128, minimum=1)
    depth: int = param(3, minimum=1)
    lr: float = param(3e-3, minimum=0, exclusive_minimum=True)
    batch_size: int = param(128, minimum=1)
    phases: int = param(10, minimum=1)
    steps_per_phase: int = param(300, minimum=1)
    tau: float = param(0.025, minimum=0)
    redo_every: int = param(70, minimum=1)
    redo_tau: float = param(0.025, minimum=0)
    drm_every: int = param(250, minimum=1)
    drm_rate: float = param(2.0, minimum=0)
    drm_min_factor: float = param(0.2, minimum=0, maximum=1)
    drm_max_factor: float = param(0.9, minimum=0, maximum=1)
    adapt_steps: int = param(40, minimum=1)
    eval_every: int = param(20, minimum=1)
    probe_size: int = param(512, minimum=1)
    variants: tuple[str, ...] = param(VARIANTS, choices=VARIANTS, min_length=1)

    def check(self) -> None:
        if self.adapt_steps > self.steps_per_phase:
            raise config_error(self, "adapt_steps", f"at most steps_per_phase ({self.steps_per_phase})")
        if self.drm_min_factor > self.drm_max_factor:
            raise config_error(self, "drm_min_factor", f"at most drm_max_factor ({self.drm_max_factor})")


def phase_permutations(phases: int, seed: int, classes: int = 10) -> Tensor:
    """``[phases, classes]``: the label of class c in phase p is ``perm[p, c]``; phase 0 is the identity."""
    generator = torch.Generator().manual_seed(seed)
    perms = [torch.arange(classes)] + [torch.randperm(classes, generator=generator) for _ in range(phases - 1)]
    return torch.stack(perms)


def _load(config: Config) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    loader = load_mnist_sample if config.dataset == "mnist" else load_digits_dataset
    x, y = loader("train")
    x_test, y_test = loader("test")
    return x[:config.train_size], y[:config.train_size], x_test, y_test


def _train_variant(variant: str, config: Config, run_dir: RunDirectory, data: tuple[Tensor, ...],
                   perms: Tensor) -> None:
    device = run_dir.device
    x, y, x_test, y_test = (t.to(device) for t in data)
    probe = x[:config.probe_size]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * run_dir.seed + 1)  # the same initial weights for every variant
        model = relu_mlp(x.shape[1], (config.hidden,) * config.depth, 10).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batches = torch.Generator().manual_seed(1000 * run_dir.seed + 2)  # the same batches for every variant
    resets = torch.Generator().manual_seed(1000 * run_dir.seed + 3)
    run_dir.track(model=model, optimizer=optimizer, batches=batches, resets=resets)
    perms = perms.to(device)
    total = config.phases * config.steps_per_phase
    for step in run_dir.steps(total, phase=variant, checkpoint_every=config.steps_per_phase,
                              desc=f"dormant-neurons {variant}"):
        phase, within = divmod(step, config.steps_per_phase)
        labels = perms[phase]
        index = torch.randint(0, len(x), (config.batch_size,), generator=batches).to(device)
        model.train()
        loss = F.cross_entropy(model(x[index]), labels[y[index]])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done = step + 1
        within_done = within + 1
        measure = done % config.eval_every == 0 or within_done in (config.adapt_steps, config.steps_per_phase)
        if measure:
            model.eval()
            ratio = dormant_ratio(model, probe, config.tau).ratio
            test_acc = accuracy(model, x_test, labels[y_test], batch_size=len(x_test))  # one batch
            run_dir.log(done, **{f"dormant_{variant}": ratio, f"test_acc_{variant}": test_acc,
                                 f"loss_{variant}": loss.detach()})
            per_phase = run_dir.state.setdefault(f"{variant}_phases", [])  # restored on resume: look it up here
            if within_done == config.adapt_steps:
                per_phase.append({"adapt_acc": test_acc})
            if within_done == config.steps_per_phase:
                per_phase[-1].update(final_acc=test_acc, final_dormant=ratio)
        if variant == "redo" and done % config.redo_every == 0:
            redo(model, probe, optimizer, config.redo_tau, generator=resets)
        elif variant == "drm" and done % config.drm_every == 0:
            beta = dormant_ratio(model, probe, config.tau).ratio
            factor = drm_perturb_factor(beta, rate=config.drm_rate, min_factor=config.drm_min_factor,
                                        max_factor=config.drm_max_factor)
            drm_perturb(model, factor, optimizer, generator=resets)
            run_dir.log(done, **{"drm_factor": factor})


def _summarise(variant: str, config: Config, run_dir: RunDirectory) -> dict[str, float]:
    phases = run_dir.state[f"{variant}_phases"]
    adapt = [p["adapt_acc"] for p in phases]
    final = [p["final_acc"] for p in phases]
    dormant = [p["final_dormant"] for p in phases]
    steps, ratios = metric_series(run_dir.metrics, f"dormant_{variant}")
    half = config.phases * config.steps_per_phase / 2
    late = ratios[steps > half]
    return {
        f"{variant}_adapt_acc": float(np.mean(adapt[1:])) if len(adapt) > 1 else float("nan"),
        f"{variant}_adapt_acc_first": float(adapt[0]),
        f"{variant}_final_acc": float(np.mean(final)),
        f"{variant}_final_acc_last": float(final[-1]),
        f"{variant}_dormant_first": float(dormant[0]),
        f"{variant}_dormant_last": float(dormant[-1]),
        f"{variant}_dormant_late_mean": float(late.mean()) if len(late) else float("nan"),
        f"{variant}_dormant_rise": float(np.mean(dormant[-2:]) - dormant[0]),
    }


def _plot(run_dir: RunDirectory, config: Config) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 7.5))
    axes = fig.subplots(2, 1, sharex=True)
    for variant in config.variants:
        for ax, name in zip(axes, ("dormant", "test_acc"), strict=True):
            steps, values = metric_series(run_dir.metrics, f"{name}_{variant}")
            ax.plot(steps, values, color=COLORS[variant], lw=1.2, label=LABELS[variant])
    for ax in axes:
        for phase in range(1, config.phases):
            ax.axvline(phase * config.steps_per_phase, color="gray", lw=0.6, ls=":")
        ax.legend(fontsize=8, loc="best")
    axes[0].set_ylabel(f"dormant ratio (tau = {config.tau})")
    axes[1].set_ylabel("test accuracy (current labels)")
    axes[1].set_xlabel(f"training step (batch {config.batch_size}); dotted: label permutation switches")
    fig.suptitle(f"Dormant neurons: MLP {config.depth}x{config.hidden} ReLU, Adam lr {config.lr:g}, "
                 f"{config.phases} phases of {config.steps_per_phase} steps")
    run_dir.save_figure(fig, "dormant_and_accuracy")

    fig = Figure(figsize=(11, 3.6))
    axes = fig.subplots(1, 2)
    phases = np.arange(1, config.phases + 1)
    for variant in config.variants:
        per_phase = run_dir.state[f"{variant}_phases"]
        axes[0].plot(phases, [p["final_dormant"] for p in per_phase], "o-", color=COLORS[variant],
                     label=LABELS[variant])
        axes[1].plot(phases, [p["adapt_acc"] for p in per_phase], "o-", color=COLORS[variant], label=LABELS[variant])
    axes[0].set_title("dormant ratio at the end of each phase")
    axes[1].set_title(f"test accuracy {config.adapt_steps} steps into each phase")
    for ax in axes:
        ax.set_xlabel("phase")
        ax.legend(fontsize=8)
    run_dir.save_figure(fig, "per_phase")


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train every variant on the same stream; return per-variant adaptation, accuracy and dormant-ratio figures."""
    data = _load(config)
    perms = phase_permutations(config.phases, 1000 * run_dir.seed + 4)
    for variant in config.variants:
        _train_variant(variant, config, run_dir, data, perms)
    metrics: dict[str, Any] = {}
    for variant in config.variants:
        metrics.update(_summarise(variant, config, run_dir))
    _plot(run_dir, config)
    return metrics


# ---------------------------------------------------------------------------------------------- claims
MIN_RISE = 0.05
LOWER_FRACTION = 0.75
MIN_ADAPT_GAIN = 0.02


def _plain_rises(m: dict[str, Any]) -> tuple[bool, Any]:
    rise = m["plain_dormant_rise"]
    return rise >= MIN_RISE, {"first_phase": m["plain_dormant_first"], "last_phase": m["plain_dormant_last"],
                              "rise": rise}


def _kept_lower(m: dict[str, Any]) -> tuple[bool, Any]:
    plain = m["plain_dormant_late_mean"]
    measured = {f"{v}_late_mean": m[f"{v}_dormant_late_mean"] for v in ("plain", "redo", "drm")}
    return all(m[f"{v}_dormant_late_mean"] <= LOWER_FRACTION * plain for v in ("redo", "drm")), measured


def _adapt_faster(m: dict[str, Any]) -> tuple[bool, Any]:
    plain = m["plain_adapt_acc"]
    measured = {f"{v}_adapt_acc": m[f"{v}_adapt_acc"] for v in ("plain", "redo", "drm")}
    return all(m[f"{v}_adapt_acc"] >= plain + MIN_ADAPT_GAIN for v in ("redo", "drm")), measured


CLAIMS = [
    Claim("Sokar et al. 2023",
          "Under non-stationary targets the dormant ratio of plain training rises: at the end of the last two "
          f"phases it is at least {MIN_RISE} above its value at the end of the first phase.",
          _plain_rises),
    Claim(PAPER,
          "ReDo and DrM keep the dormant ratio lower: over the second half of the stream their mean dormant ratio "
          f"is at most {LOWER_FRACTION} times plain training's.",
          _kept_lower),
    Claim(PAPER,
          "ReDo and DrM adapt faster after a switch: test accuracy a fixed number of steps into each new phase, "
          f"averaged over the switches, is at least {MIN_ADAPT_GAIN} above plain training's.",
          _adapt_faster),
]

EXPERIMENT = Experiment(
    name="dormant-neurons",
    paper=PAPER,
    description=("An MLP trained on MNIST whose labels are re-permuted at each phase: the dormant ratio of plain "
                 "Adam training rises and it adapts ever slower; ReDo (recycling dormant units) and DrM "
                 "(perturbation toward a fresh initialisation) keep the ratio low and adapt faster."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(train_size=4000, hidden=256, phases=30, steps_per_phase=500, adapt_steps=50,
                       redo_every=110, drm_every=420, eval_every=25),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.2,
    main_metric="dormant_plain",
    tags=("structure", "continual", "supervised"),
)
