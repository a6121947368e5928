"""Gradient activation functions: a deep sigmoid MLP and a saddle, SGD with and without GAF at one learning rate.

Liu, ..., Jin 2021, "Activated gradients for deep neural networks" (arXiv 2107.04228): applying
``g(x) = alpha atan(beta x)`` (alpha = 0.3, beta = 4.5) to the gradients speeds training and helps escape
ill-conditioned regions and saddle points (:class:`neuroplastic.optim.GradientActivation`).

(a) Deep network: a 20-layer sigmoid MLP (64 -> 32 x 19 -> 10) on scikit-learn's digits (1,437 training
images, standardised pixels), SGD, batch 64, the same learning rate with and without GAF, ``repeats``
initialisations (the same initial weights and batches for both arms). A plain sigmoid MLP of this depth does
not leave the initial plateau (loss ln 10) under PyTorch's default or Xavier initialisation in thousands of
steps (tried: see the results page); it is initialised here with orthogonal weights of gain 4 (the inverse of
the sigmoid's slope at 0) and biases ``-W 1 / 2`` that centre the previous layer's sigmoid outputs, so that
the signal neither vanishes nor saturates at the start. Measured: the full training loss every ``eval_every``
steps; the steps to reach ``loss_threshold`` (censored at ``steps + eval_every`` when not reached).

(b) Saddle: ``f(x, y) = x^2 / 2 + y^4 / 4 - y^2 / 2`` (a saddle at the origin, minima at y = +-1), from
``(saddle_x0, saddle_y0)`` near the saddle's stable manifold; the steps until ``|y| >= saddle_escape``, plain
SGD against SGD with GAF at the same learning rate.

Measured results: ``docs/results/gradient-activation.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic.data import load_digits_dataset
from neuroplastic.optim import WHERE, GradientActivation
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param
from neuroplastic.runs.plots import metric_series

__all__ = ["Config", "run", "EXPERIMENT", "sigmoid_mlp", "saddle_escape_steps"]

PAPER = "Liu et al. 2021, Activated gradients for deep neural networks (arXiv 2107.04228)"
ARMS = ("sgd", "gaf")


@dataclass
class Config:
    """Network, optimiser and saddle settings of the gradient-activation experiment."""

    depth: int = param(20, minimum=2)
    width: int = param(32, minimum=1)
    init_gain: float = param(4.0, minimum=0, exclusive_minimum=True)
    lr: float = param(0.5, minimum=0, exclusive_minimum=True)
    momentum: float = param(0.0, minimum=0, maximum=1, exclusive_maximum=True)
    where: str = param("gradient", choices=WHERE)
    alpha: float = param(0.3, minimum=0, exclusive_minimum=True)
    beta: float = param(4.5, minimum=0, exclusive_minimum=True)
    batch_size: int = param(64, minimum=1)
    steps: int = param(1500, minimum=1)
    eval_every: int = param(25, minimum=1)
    loss_threshold: float = param(0.5, minimum=0, exclusive_minimum=True)
    repeats: int = param(5, minimum=1)
    saddle_lr: float = param(0.05, minimum=0, exclusive_minimum=True)
    saddle_x0: float = param(0.5)
    saddle_y0: float = param(1e-3, minimum=0, exclusive_minimum=True)
    saddle_escape: float = param(0.5, minimum=0, exclusive_minimum=True)
    saddle_steps: int = param(2000, minimum=1)

    def check(self) -> None:
        if self.where == "momentum" and self.momentum == 0:
            raise config_error(self, "momentum", "above 0 when where is 'momentum'")
        if self.saddle_y0 >= self.saddle_escape:
            raise config_error(self, "saddle_y0", f"below saddle_escape ({self.saddle_escape})")


def sigmoid_mlp(in_features: int, width: int, depth: int, classes: int, gain: float) -> nn.Sequential:
    """``depth`` linear layers with sigmoids between them; orthogonal weights of ``gain``, centring biases."""
    layers: list[nn.Module] = []
    previous = in_features
    for i in range(depth):
        out = classes if i == depth - 1 else width
        linear = nn.Linear(previous, out)
        with torch.no_grad():
            nn.init.orthogonal_(linear.weight, gain=gain if i < depth - 1 else 1.0)
            linear.bias.copy_(-0.5 * linear.weight.sum(1) if i > 0 else torch.zeros(out))
        layers.append(linear)
        if i < depth - 1:
            layers.append(nn.Sigmoid())
        previous = out
    return nn.Sequential(*layers)


def _optimizer(parameters: Any, lr: float, config: Config, arm: str) -> torch.optim.Optimizer:
    optimizer = torch.optim.SGD(parameters, lr=lr, momentum=config.momentum)
    if arm == "gaf":
        GradientActivation(optimizer, config.alpha, config.beta, where=config.where)
    return optimizer


def saddle_escape_steps(config: Config, arm: str) -> tuple[int, list[float]]:
    """Steps of SGD (with GAF for ``arm="gaf"``) until ``|y| >= saddle_escape`` on the saddle function, and
    the trajectory of ``|y|`` (censored at ``saddle_steps + 1``)."""
    point = torch.tensor([config.saddle_x0, config.saddle_y0], dtype=torch.float64, requires_grad=True)
    optimizer = _optimizer([point], config.saddle_lr, config, arm)
    path = [config.saddle_y0]
    for step in range(config.saddle_steps):
        x, y = point[0], point[1]
        loss = x ** 2 / 2 + y ** 4 / 4 - y ** 2 / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        path.append(abs(float(point.detach()[1])))
        if path[-1] >= config.saddle_escape:
            return step + 1, path
    return config.saddle_steps + 1, path


def _full_loss(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model(x), y))


def _train(arm: str, repeat: int, config: Config, run_dir: RunDirectory, x: Tensor, y: Tensor) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * run_dir.seed + repeat)  # the same initial weights for both arms
        model = sigmoid_mlp(x.shape[1], config.width, config.depth, 10, config.init_gain)
    optimizer = _optimizer(model.parameters(), config.lr, config, arm)
    batches = torch.Generator().manual_seed(1000 * run_dir.seed + 500 + repeat)
    run_dir.track(model=model, optimizer=optimizer, batches=batches)
    name = f"{arm}_r{repeat}"
    for step in run_dir.steps(config.steps, phase=name, desc=f"gradient-activation {name}"):
        index = torch.randint(0, len(x), (config.batch_size,), generator=batches)
        loss = F.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        done = step + 1
        if done % config.eval_every == 0:
            full = _full_loss(model, x, y)
            run_dir.log(done, **{f"loss_{name}": full})
            key = f"reached_{name}"
            if full <= config.loss_threshold and key not in run_dir.state:
                run_dir.state[key] = done
            run_dir.state[f"final_{name}"] = full


def _plot(run_dir: RunDirectory, config: Config, saddle: dict[str, list[float]]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4))
    axes = fig.subplots(1, 2)
    for arm, color in zip(ARMS, ("tab:red", "tab:blue"), strict=True):
        for repeat in range(config.repeats):
            steps, values = metric_series(run_dir.metrics, f"loss_{arm}_r{repeat}")
            axes[0].plot(steps, values, color=color, lw=1, alpha=0.8, label=arm if repeat == 0 else None)
        axes[1].semilogy(saddle[arm], color=color, label=arm)
    axes[0].axhline(config.loss_threshold, color="gray", ls=":")
    axes[0].set_title(f"{config.depth}-layer sigmoid MLP on digits, SGD lr {config.lr:g}")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss")
    axes[1].axhline(config.saddle_escape, color="gray", ls=":")
    axes[1].set_title("saddle x^2/2 + y^4/4 - y^2/2: |y| per step")
    axes[1].set_xlabel("step")
    for ax in axes:
        ax.legend(fontsize=8)
    run_dir.save_figure(fig, "loss_and_saddle")


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train both arms from every initialisation; return steps to the threshold and the saddle escape."""
    x, y = load_digits_dataset("train")
    x = (x - x.mean(0)) / (x.std(0) + 1e-3)
    for repeat in range(config.repeats):
        for arm in ARMS:
            _train(arm, repeat, config, run_dir, x, y)
    censored = config.steps + config.eval_every
    metrics: dict[str, Any] = {}
    reached = {arm: [run_dir.state.get(f"reached_{arm}_r{r}", censored) for r in range(config.repeats)]
               for arm in ARMS}
    for arm in ARMS:
        metrics[f"{arm}_steps_median"] = float(np.median(reached[arm]))
        metrics[f"{arm}_steps_mean"] = float(np.mean(reached[arm]))
        metrics[f"{arm}_reached"] = sum(s < censored for s in reached[arm])
        metrics[f"{arm}_final_loss_mean"] = float(np.mean([run_dir.state[f"final_{arm}_r{r}"]
                                                           for r in range(config.repeats)]))
    metrics["gaf_faster_pairs"] = sum(g < s for g, s in zip(reached["gaf"], reached["sgd"], strict=True))
    metrics["repeats"] = config.repeats
    saddle = {}
    for arm in ARMS:
        metrics[f"{arm}_saddle_steps"], saddle[arm] = saddle_escape_steps(config, arm)
    _plot(run_dir, config, saddle)
    return metrics


def _fewer_steps(m: dict[str, Any]) -> tuple[bool, Any]:
    measured = {k: m[k] for k in ("sgd_steps_median", "gaf_steps_median", "sgd_reached", "gaf_reached",
                                  "gaf_faster_pairs", "repeats")}
    return m["gaf_steps_median"] < m["sgd_steps_median"], measured


def _saddle(m: dict[str, Any]) -> tuple[bool, Any]:
    return m["gaf_saddle_steps"] < m["sgd_saddle_steps"], {"sgd": m["sgd_saddle_steps"], "gaf": m["gaf_saddle_steps"]}


CLAIMS = [
    Claim(PAPER,
          "With the same learning rate, SGD with the gradient activation function reaches the loss threshold in "
          "fewer steps than plain SGD on a deep (20-layer) sigmoid MLP: lower median steps-to-threshold over "
          "the repeated initialisations (a run that never reaches it counts as steps + eval_every).",
          _fewer_steps),
    Claim(PAPER,
          "From a point near a saddle of a small analytic function, SGD with GAF leaves it (|y| >= escape) in "
          "fewer steps than plain SGD at the same learning rate.",
          _saddle),
]

EXPERIMENT = Experiment(
    name="gradient-activation",
    paper=PAPER,
    description=("A 20-layer sigmoid MLP on digits and a saddle function, SGD with and without the gradient "
                 "activation function alpha atan(beta g) at the same learning rate: steps to a loss threshold "
                 "and to escape the saddle."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(width=128, steps=6000, repeats=20, eval_every=20),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.5,
    main_metric="loss_sgd_r0",
    tags=("optim", "supervised"),
)
