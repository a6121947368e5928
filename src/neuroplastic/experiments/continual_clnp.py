"""Continual learning via neural pruning (CLNP) against the baselines on a task-incremental digits stream.

Golkar, Kagan & Cho 2019, "Continual learning via neural pruning": train each task with an L1 penalty on the
hidden activations, prune the least active free neurons within a validation-accuracy tolerance, freeze the
rest and cut the connections from free neurons into them, so later tasks cannot change earlier outputs
(:class:`~neuroplastic.continual.CLNP`).

The stream: the embedded digits split into ``num_tasks`` task-incremental tasks of consecutive classes
(:func:`~neuroplastic.continual.digits_stream` ``"split-task"``; 5 tasks of 2 classes), one output head per
task (:class:`~neuroplastic.continual.MultiHeadClassifier`). CLNP needs the task id at test time (each task
owns its head and its neurons), which is the task-incremental scenario; split digits is that scenario as it
stands, whereas permuted digits is domain-incremental with a shared head. A share of each task's training set
is held out (:func:`~neuroplastic.continual.split_validation`) and every method trains on the rest.

Methods, all from the same initial MLP (``depth`` hidden ReLU layers of ``hidden`` units), the same batches,
epochs and optimiser (Adam, a new one per task): fine-tuning, EWC (separate, lambda chosen by the best final
ACC on the validation split over ``ewc_strengths``), experience replay (reservoir buffer), joint training
(cumulative) and CLNP at each tolerance in ``tolerances`` (accuracy points on the validation split).
Measured per method: the accuracy matrix and ACC, BWT, FWT and forgetting; for CLNP also the free neurons per
layer after each task and the test accuracy of each task just before pruning (``graceful_bwt`` = mean over the
tasks of final accuracy minus that unpruned accuracy). Measured results: ``docs/results/continual-clnp.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from neuroplastic.continual import (
    CLNP,
    EWC,
    ContinualTrainer,
    ExperienceReplay,
    FineTuning,
    JointTraining,
    MultiHeadClassifier,
    Strategy,
    Task,
    TaskStream,
    continual_metrics,
    digits_stream,
    split_validation,
)
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param

__all__ = ["Config", "run", "EXPERIMENT", "BASELINES", "clnp_key", "build_model"]

PAPER = "Golkar, Kagan & Cho 2019, Continual learning via neural pruning (CLNP)"
BASELINES = ("finetune", "ewc", "replay", "joint")
LABELS = {"finetune": "fine-tuning", "ewc": "EWC", "replay": "replay", "joint": "joint (cumulative)"}


@dataclass
class Config:
    """Stream, network, optimiser and method settings of the continual-clnp experiment."""

    source: str = param("mnist-sample", choices=("digits", "mnist-sample"))
    num_tasks: int = param(5, choices=(2, 5, 10))
    max_train: int = param(0, minimum=0)  # per task, 0: all (tiny runs)
    max_test: int = param(0, minimum=0)  # per task, 0: all
    validation_fraction: float = param(0.2, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    hidden: int = param(128, minimum=1)
    depth: int = param(2, minimum=1)
    epochs: int = param(5, minimum=1)
    batch_size: int = param(32, minimum=1)
    lr: float = param(1e-2, minimum=0, exclusive_minimum=True)
    clnp_strength: float = param(1e-2, minimum=0)
    tolerances: tuple[float, ...] = param((0.0, 0.5, 1.0, 2.0, 5.0), minimum=0, maximum=100, min_length=2)
    search_steps: int = param(32, minimum=1)
    ewc_strengths: tuple[float, ...] = param((1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0), minimum=0, min_length=1)
    ewc_fisher_samples: int = param(200, minimum=1)
    replay_capacity: int = param(200, minimum=1)

    def check(self) -> None:
        if self.tolerances[0] != 0 or any(b <= a for a, b in zip(self.tolerances, self.tolerances[1:], strict=False)):
            raise config_error(self, "tolerances", "strictly increasing and starting at 0 (claim 1 needs tolerance 0)")


def clnp_key(tolerance: float) -> str:
    """The metric prefix of CLNP at ``tolerance`` points: ``clnp_tol0``, ``clnp_tol0p5``, ``clnp_tol2``."""
    text = f"{tolerance:g}".replace(".", "p").replace("-", "m")
    return f"clnp_tol{text}"


def build_model(inputs: int, hidden: int, depth: int, head_sizes: tuple[int, ...]) -> MultiHeadClassifier:
    """The MLP of every method: ``depth`` (Linear, ReLU) layers of ``hidden`` units and one head per task."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(inputs if i == 0 else hidden, hidden), nn.ReLU()]
    return MultiHeadClassifier(nn.Sequential(*layers), hidden, head_sizes)


def _cap(task: Task, max_train: int, max_test: int) -> Task:
    n = max_train or task.x_train.shape[0]
    m = max_test or task.x_test.shape[0]
    return Task(task.task_id, task.x_train[:n], task.y_train[:n], task.x_test[:m], task.y_test[:m], task.classes,
                task.head, task.num_outputs, task.permutation)


def _streams(config: Config, seed: int, device: torch.device) -> tuple[TaskStream, TaskStream]:
    stream = digits_stream("split-task", config.num_tasks, source=config.source, seed=seed)
    tasks = tuple(_cap(t, config.max_train, config.max_test).to(device) for t in stream)
    stream = TaskStream(tasks, stream.scenario, stream.num_classes, stream.seed)
    return split_validation(stream, config.validation_fraction, seed=seed)


def _train(run_dir: RunDirectory, name: str, config: Config, stream: TaskStream,
           strategy: Strategy) -> ContinualTrainer:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * run_dir.seed + 1)  # the same initial weights for every method
        model = build_model(stream[0].x_train.shape[1], config.hidden, config.depth, stream.head_sizes)
    model = model.to(run_dir.device)
    lr = config.lr
    trainer = ContinualTrainer(model, stream, lambda m: torch.optim.Adam(m.parameters(), lr=lr), strategy=strategy,
                               epochs=config.epochs, batch_size=config.batch_size, seed=1000 * run_dir.seed + 2)
    run_dir.track(trainer=trainer)
    total = trainer.total_steps  # a checkpoint at the end of each task (every trainer state is a few MB)
    for _ in run_dir.steps(total, phase=name, checkpoint_every=-(-total // len(stream)),
                           desc=f"continual-clnp {name}"):
        info = trainer.step()
        if info.task_done:
            assert info.row is not None
            run_dir.log(trainer.global_step, **{f"{name}_acc_seen": float(info.row[:info.task + 1].mean())})
    return trainer


def _summary(name: str, trainer: ContinualTrainer) -> dict[str, float]:
    R, b = trainer.accuracy.R, trainer.accuracy.initial
    out = {f"{name}_{k}": v for k, v in continual_metrics(R, b).items()}
    out[f"{name}_max_change"] = float((R - torch.diagonal(R)[None, :]).tril().abs().max())
    return out


def _clnp_summary(name: str, trainer: ContinualTrainer, tolerance: float) -> dict[str, float]:
    strategy = trainer.strategy
    assert isinstance(strategy, CLNP)
    R = trainer.accuracy.R
    unpruned = torch.tensor(strategy.unpruned_accuracy, dtype=torch.float64)
    out = _summary(name, trainer)
    out[f"{name}_graceful_bwt"] = float((R[-1] - unpruned).mean())
    out[f"{name}_pruning_drop"] = float((unpruned - torch.diagonal(R)).mean())
    val = torch.tensor(strategy.validation_accuracy, dtype=torch.float64)
    out[f"{name}_val_drop_max"] = float((val[:, 0] - val[:, 1]).max())
    out[f"{name}_tolerance"] = tolerance
    for t, row in enumerate(strategy.free_history):
        for layer, free in enumerate(row):
            out[f"{name}_free_l{layer}_t{t}"] = free
    out[f"{name}_used_end"] = sum(int((o >= 0).sum()) for o in strategy.owners)
    return out


def _heatmaps(run_dir: RunDirectory, trainers: dict[str, ContinualTrainer], titles: dict[str, str]) -> None:
    from matplotlib.figure import Figure

    cols = min(5, len(trainers))
    rows = -(-len(trainers) // cols)
    fig = Figure(figsize=(3.2 * cols, 3.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (name, trainer) in zip(axes, trainers.items(), strict=False):
        R = trainer.accuracy.R.numpy()
        ax.imshow(R, vmin=0.5, vmax=1.0, cmap="viridis")
        for i in range(R.shape[0]):
            for j in range(R.shape[1]):
                ax.text(j, i, f"{100 * R[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if R[i, j] < 0.8 else "black")
        ax.set_title(titles[name], fontsize=9)
        ax.set_xlabel("task evaluated", fontsize=8)
        ax.set_ylabel("after training task", fontsize=8)
    for ax in axes[len(trainers):]:
        ax.axis("off")
    fig.suptitle("Accuracy matrices R[i, j] (test accuracy %, colour scale 50-100%)")
    fig.tight_layout()
    run_dir.save_figure(fig, "accuracy_matrices")


def _clnp_plots(run_dir: RunDirectory, config: Config, metrics: dict[str, Any],
                clnp: dict[str, ContinualTrainer]) -> None:
    from matplotlib.figure import Figure

    taus = list(config.tolerances)
    keys = [clnp_key(t) for t in taus]
    fig = Figure(figsize=(11, 3.6))
    ax, ax2 = fig.subplots(1, 2)
    for stat, style in (("acc", "o-"), ("bwt", "s--"), ("graceful_bwt", "^-")):
        ax.plot(taus, [100 * metrics[f"{k}_{stat}"] for k in keys], style, label=stat)
    ax.plot(taus, [-t for t in taus], ":", color="gray", label="-tolerance")
    ax.axhline(100 * metrics["ewc_acc"], color="tab:red", lw=0.8, label="EWC acc")
    ax.set_xlabel("tolerance (validation accuracy points)")
    ax.set_ylabel("points")
    ax.legend(fontsize=7)
    ax.set_title("graceful forgetting: ACC, BWT, BWT vs unpruned")
    ax2.plot(taus, [metrics[f"{k}_used_end"] for k in keys], "o-")
    ax2.set_xlabel("tolerance (points)")
    ax2.set_ylabel("neurons used after the stream")
    ax2.set_title(f"used neurons (of {config.depth * config.hidden})")
    fig.tight_layout()
    run_dir.save_figure(fig, "tolerance_curve")

    fig = Figure(figsize=(3.4 * len(keys), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(keys), sharey=True))
    for ax, key, tau in zip(axes, keys, taus, strict=True):
        history = np.array(clnp[key].strategy.free_history)  # type: ignore[attr-defined]
        for layer in range(history.shape[1]):
            ax.plot(np.arange(1, history.shape[0] + 1), history[:, layer], "o-", label=f"hidden layer {layer + 1}")
        ax.set_title(f"CLNP, tolerance {tau:g}", fontsize=9)
        ax.set_xlabel("after task")
    axes[0].set_ylabel("free neurons")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    run_dir.save_figure(fig, "free_neurons")


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """The EWC validation sweep, then every method on the same stream; ACC/BWT/FWT per method and CLNP's curve."""
    train, valid = _streams(config, run_dir.seed, run_dir.device)
    metrics: dict[str, Any] = {}
    sweep = []
    for i, strength in enumerate(config.ewc_strengths):
        strategy = EWC(strength, fisher_samples=config.ewc_fisher_samples, seed=run_dir.seed)
        trainer = _train(run_dir, f"ewc_sweep{i}", config, valid, strategy)  # trains on train, tests on validation
        sweep.append(continual_metrics(trainer.accuracy.R)["acc"])
        metrics[f"ewc_sweep{i}_val_acc"] = sweep[-1]
    chosen = config.ewc_strengths[int(np.argmax(sweep))]
    metrics["ewc_lambda"] = chosen
    strategies: dict[str, Strategy] = {
        "finetune": FineTuning(),
        "ewc": EWC(chosen, fisher_samples=config.ewc_fisher_samples, seed=run_dir.seed),
        "replay": ExperienceReplay(config.replay_capacity, seed=run_dir.seed),
        "joint": JointTraining(),
    }
    trainers = {name: _train(run_dir, name, config, train, s) for name, s in strategies.items()}
    for name, trainer in trainers.items():
        metrics.update(_summary(name, trainer))
    clnp: dict[str, ContinualTrainer] = {}
    for tau in config.tolerances:
        key = clnp_key(tau)
        strategy = CLNP(config.clnp_strength, tolerance=tau / 100, validation=valid,
                        search_steps=config.search_steps, seed=run_dir.seed)
        clnp[key] = _train(run_dir, key, config, train, strategy)
        metrics.update(_clnp_summary(key, clnp[key], tau))
    titles = {**{n: LABELS[n] + (f" (lambda {chosen:g})" if n == "ewc" else "") for n in trainers},
              **{clnp_key(t): f"CLNP, tolerance {t:g}" for t in config.tolerances}}
    _heatmaps(run_dir, {**trainers, **clnp}, titles)
    _clnp_plots(run_dir, config, metrics, clnp)
    return metrics


# ---------------------------------------------------------------------------------------------- claims
def _bwt_zero(m: dict[str, Any]) -> tuple[bool, Any]:
    bwt, change = m["clnp_tol0_bwt"], m["clnp_tol0_max_change"]
    return bwt == 0.0 and change == 0.0, {"bwt": bwt, "max_change_of_an_old_accuracy": change}


def _beats_ewc(m: dict[str, Any]) -> tuple[bool, Any]:
    return m["clnp_tol0_acc"] >= m["ewc_acc"], {"clnp_acc": m["clnp_tol0_acc"], "ewc_acc": m["ewc_acc"],
                                                "ewc_lambda": m["ewc_lambda"]}


def _graceful(m: dict[str, Any]) -> tuple[bool, Any]:
    taus = sorted({v for k, v in m.items() if k.endswith("_tolerance")})
    keys = [clnp_key(t) for t in taus]
    used = [m[f"{k}_used_end"] for k in keys]
    graceful = [m[f"{k}_graceful_bwt"] for k in keys]
    within = all(g >= -t / 100 for g, t in zip(graceful, taus, strict=True))
    frees = used[-1] < used[0]
    return frees and within, {"tolerances": taus, "used_end": used, "graceful_bwt": [round(g, 4) for g in graceful],
                              "acc": [round(m[f"{k}_acc"], 4) for k in keys]}


CLAIMS = [
    Claim(PAPER, "With tolerance 0, later tasks cause zero deterioration of earlier ones: BWT is exactly 0 and no "
          "entry R[j, i] (j > i) differs from R[i, i] (float equality).", _bwt_zero),
    Claim(PAPER, "CLNP (tolerance 0) reaches an ACC at least EWC's on the same stream (per seed; EWC's lambda chosen "
          "by the best validation ACC of a sweep).", _beats_ewc),
    Claim(PAPER, "Graceful forgetting: the largest tolerance leaves fewer neurons used after the stream than "
          "tolerance 0, and at every tolerance the accuracy lost to pruning (final test accuracy minus the accuracy "
          "right before pruning, mean over tasks) is at most the tolerance.", _graceful),
]

EXPERIMENT = Experiment(
    name="continual-clnp",
    paper=PAPER,
    description=("CLNP (L1 activation sparsity, pruning within a tolerance, frozen per-task neurons) against "
                 "fine-tuning, EWC, replay and joint training on split digits (5 task-incremental tasks): BWT "
                 "exactly 0, ACC against EWC, and the graceful-forgetting curve over tolerances."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(hidden=1000, epochs=20, batch_size=64, lr=1e-3, search_steps=50),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.5,
    main_metric="clnp_tol0_acc_seen",
    tags=("continual", "structure", "supervised"),
)
