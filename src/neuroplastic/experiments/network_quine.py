"""Network quine: a network that outputs its own weights, trained by optimisation, regeneration or both; and the
auxiliary quine's trade-off between classifying digits and replicating itself.

Chang & Lipson 2018, "Neural network quine". Part (a), the vanilla quine (:class:`neuroplastic.evolution.Quine`):
index embedding (one-hot through a fixed random projection) -> MLP -> one scalar per parameter. Three schedules
from the same initial weights (``repeats`` initialisations, each seeded): optimisation only (``steps`` optimiser
steps on ``sum_i (w_hat_i - w_i)^2``, target detached), regeneration only (``steps`` times ``theta <- f_theta``),
and alternating (the same optimiser steps, a regeneration after every ``regenerate_every``). Measured after the
last step: the relative error ``||w_hat - w|| / ||w||``, the norm ``||theta||`` over its initial value, and the
spread ``std(theta) / rms(theta)`` (0 for a quine whose weights are all equal, the other trivial solution: with
every weight ``c < 0`` the hidden ReLUs are silent and the output is the bias ``c``).

Part (b), the auxiliary quine (:class:`neuroplastic.evolution.AuxiliaryQuine`) on scikit-learn's 8x8 digits
(``load_digits_dataset``: 1,437 training images, the 360 held-out ones for accuracy) or the 5,000-image MNIST sample
(``aux_dataset="mnist"``): loss ``(1/D) sum_i (w_hat_i - w_i)^2 + lambda * CE`` for each lambda of
``task_weights``. Measured on held-out images: accuracy (each image paired with a random parameter index) and the
relative replication error (each index paired with a random held-out image). Results: docs/results/network-quine.md.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import torch

from neuroplastic.data import load_digits_dataset, load_mnist_sample
from neuroplastic.evolution import AuxiliaryQuine, AuxiliaryTrainer, Quine, QuineSchedule, QuineTrainer
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param

__all__ = ["CLAIMS", "EXPERIMENT", "SCHEDULE_NAMES", "Config", "nontrivial", "rank_correlation", "run"]

PAPER = "Chang & Lipson 2018, Neural network quine"
SCHEDULE_NAMES = ("optimise", "regenerate", "alternate")


@dataclass
class Config:
    """Part (a): the vanilla quine and its schedules; part (b): the auxiliary quine (``aux_*``, ``task_weights``).

    ``batch_size`` 0: all parameters in each optimiser step; ``regenerate_every`` 0: once per epoch (a pass over the
    shuffled indices). ``norm_threshold`` and ``spread_threshold``: a quine is non-trivial when its final norm is at
    least that fraction of its initial norm and its spread at least ``spread_threshold``. ``margin``: claim 1 holds
    when alternating's median relative error is at most ``margin`` times the better single schedule's.
    """

    embedding_dim: int = param(32, minimum=1)
    hidden: tuple[int, ...] = param((32, 32), minimum=1, min_length=1)
    activation: str = param("relu", choices=("relu", "tanh", "sigmoid", "elu", "linear"))
    optimizer: str = param("adam", choices=("adam", "sgd"))
    lr: float = param(1e-3, minimum=0, exclusive_minimum=True)
    momentum: float = param(0.9, minimum=0, maximum=1, exclusive_maximum=True)
    steps: int = param(2000, minimum=1)
    batch_size: int = param(0, minimum=0)
    regenerate_every: int = param(100, minimum=0)
    repeats: int = param(3, minimum=1)
    log_every: int = param(50, minimum=1)
    norm_threshold: float = param(0.1, minimum=0, maximum=1)
    spread_threshold: float = param(0.1, minimum=0, maximum=1)
    margin: float = param(0.9, minimum=0, maximum=1, exclusive_minimum=True)
    aux_dataset: str = param("digits", choices=("digits", "mnist"))
    aux_embedding_dim: int = param(32, minimum=1)
    aux_hidden: tuple[int, ...] = param((64,), minimum=1, min_length=1)
    aux_lr: float = param(1e-3, minimum=0, exclusive_minimum=True)
    aux_steps: int = param(1500, minimum=1)
    aux_batch_size: int = param(64, minimum=1)
    aux_regenerate_every: int = param(0, minimum=0)
    aux_repeats: int = param(1, minimum=1)
    task_weights: tuple[float, ...] = param((0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0), minimum=0, min_length=2)
    checkpoint_every: int = param(200, minimum=1)

    def check(self) -> None:
        if len(set(self.task_weights)) != len(self.task_weights) or list(self.task_weights) != sorted(
                self.task_weights):
            raise config_error(self, "task_weights", "increasing values without repeats")


def _quine(config: Config, seed: int) -> Quine:
    return Quine(config.embedding_dim, config.hidden, config.activation,
                 generator=torch.Generator().manual_seed(seed))


def _optimizer(params: Any, config: Config, lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum)
    return torch.optim.Adam(params, lr=lr)


def nontrivial(norm_ratio: float, spread: float, config: Config) -> bool:
    """A quine is non-trivial when ``norm / initial norm >= norm_threshold`` and ``spread >= spread_threshold``
    (both finite)."""
    return (math.isfinite(norm_ratio) and math.isfinite(spread) and norm_ratio >= config.norm_threshold
            and spread >= config.spread_threshold)


def _finite(x: float) -> float:
    return x if math.isfinite(x) else math.inf


# ---------------------------------------------------------------------------------------------- part (a)
def _vanilla(mode: str, repeat: int, config: Config, run_dir: RunDirectory) -> None:
    seed = 1000 * run_dir.seed + repeat
    quine = _quine(config, seed)
    initial = float(quine.parameter_norm())
    optimizer = None if mode == "regenerate" else _optimizer(quine.parameters(), config, config.lr)
    schedule = QuineSchedule(mode, regenerate_every=config.regenerate_every or None,
                             batch_size=config.batch_size or None, record_every=config.log_every)
    trainer = QuineTrainer(quine, optimizer, schedule, generator=torch.Generator().manual_seed(seed + 1))
    run_dir.track(trainer=trainer)
    phase = f"{mode}_r{repeat}"
    for step in run_dir.steps(config.steps, phase=phase, checkpoint_every=config.checkpoint_every,
                              desc=f"network-quine {phase}"):
        trainer.step(record=step == config.steps - 1)
        if trainer.steps % config.log_every == 0 or step == config.steps - 1:
            h = trainer.history
            run_dir.log(step, relative_error=_finite(h["relative_error"][-1]),
                        norm_ratio=h["norm"][-1] / initial)
    with torch.no_grad():
        w = quine.flat_parameters()
        spread = float(w.std() / w.square().mean().sqrt()) if bool(torch.isfinite(w).all()) else math.nan
    h = trainer.history
    run_dir.state.setdefault("vanilla", {})[phase] = {
        "relative_error": _finite(h["relative_error"][-1]), "norm_ratio": h["norm"][-1] / initial,
        "spread": spread, "regenerations": trainer.regenerations, "initial_norm": initial,
        "curve": {"step": h["step"], "relative_error": [_finite(e) for e in h["relative_error"]],
                  "norm_ratio": [n / initial for n in h["norm"]]}}


def _vanilla_metrics(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    m: dict[str, Any] = {"parameters": _quine(config, 0).num_parameters, "margin": config.margin}
    for mode in SCHEDULE_NAMES:
        runs = [run_dir.state["vanilla"][f"{mode}_r{r}"] for r in range(config.repeats)]
        m[f"{mode}_relative_error"] = statistics.median(r["relative_error"] for r in runs)
        m[f"{mode}_norm_ratio"] = statistics.median(_finite(r["norm_ratio"]) for r in runs)
        m[f"{mode}_spread"] = statistics.median(r["spread"] if math.isfinite(r["spread"]) else 0.0 for r in runs)
        m[f"{mode}_nontrivial"] = sum(nontrivial(r["norm_ratio"], r["spread"], config) for r in runs) / len(runs)
        m[f"{mode}_best_nontrivial_error"] = min(
            (r["relative_error"] for r in runs if nontrivial(r["norm_ratio"], r["spread"], config)), default=math.inf)
    return m


# ---------------------------------------------------------------------------------------------- part (b)
def _data(config: Config, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    loader = load_digits_dataset if config.aux_dataset == "digits" else load_mnist_sample
    return loader(split, seed=0)


def _auxiliary(index: int, weight: float, repeat: int, config: Config, run_dir: RunDirectory) -> None:
    seed = 1000 * run_dir.seed + 500 + repeat
    x, y = _data(config, "train")
    quine = AuxiliaryQuine(x.shape[1], 10, config.aux_embedding_dim, config.aux_hidden, config.activation,
                           generator=torch.Generator().manual_seed(seed))
    trainer = AuxiliaryTrainer(quine, torch.optim.Adam(quine.parameters(), lr=config.aux_lr), x, y,
                               task_weight=weight, batch_size=config.aux_batch_size,
                               regenerate_every=config.aux_regenerate_every or None,
                               generator=torch.Generator().manual_seed(seed + 1), record_every=config.log_every)
    run_dir.track(trainer=trainer)
    phase = f"aux_l{index}_r{repeat}"
    for step in run_dir.steps(config.aux_steps, phase=phase, checkpoint_every=config.checkpoint_every,
                              desc=f"network-quine {phase}"):
        trainer.step(record=step == config.aux_steps - 1)
        if trainer.steps % config.log_every == 0 or step == config.aux_steps - 1:
            h = trainer.history
            run_dir.log(step, relative_error=_finite(h["relative_error"][-1]), task_loss=h["task_loss"][-1])
    xt, yt = _data(config, "test")
    g = torch.Generator().manual_seed(seed + 2)
    pairs = torch.randint(quine.num_parameters, (xt.shape[0],), generator=g)
    accuracy = float((quine.classify(xt, pairs) == yt).double().mean())
    error = float(quine.relative_error(xt[torch.randint(xt.shape[0], (quine.num_parameters,), generator=g)]))
    run_dir.state.setdefault("aux", {})[phase] = {"accuracy": accuracy, "relative_error": _finite(error),
                                                  "norm": float(quine.parameter_norm())}


def rank_correlation(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation of two equally long lists (ties get their mean rank); 0 for a constant list."""
    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        out = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2
            i = j + 1
        return out
    rx, ry = ranks(xs), ranks(ys)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    sy = math.sqrt(sum((b - my) ** 2 for b in ry))
    return 0.0 if sx == 0 or sy == 0 else sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True)) / (sx * sy)


def _aux_metrics(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    m: dict[str, Any] = {}
    for i in range(len(config.task_weights)):
        runs = [run_dir.state["aux"][f"aux_l{i}_r{r}"] for r in range(config.aux_repeats)]
        for key in ("accuracy", "relative_error", "norm"):
            m[f"aux_l{i}_{key}"] = statistics.fmean(r[key] for r in runs)
    weights = list(config.task_weights)
    m["aux_accuracy_rank_corr"] = rank_correlation(weights, [m[f"aux_l{i}_accuracy"] for i in range(len(weights))])
    m["aux_error_rank_corr"] = rank_correlation(weights,
                                                [m[f"aux_l{i}_relative_error"] for i in range(len(weights))])
    return m


# ---------------------------------------------------------------------------------------------- run
def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Part (a) for each schedule and repeat, part (b) for each task weight and repeat; the figures. Metrics:
    ``parameters``; per schedule ``<mode>_relative_error``, ``_norm_ratio``, ``_spread`` (medians over repeats),
    ``_nontrivial`` (fraction of repeats), ``_best_nontrivial_error``; per task weight ``aux_l<i>_accuracy``,
    ``_relative_error``, ``_norm`` (means over repeats); ``aux_accuracy_rank_corr``, ``aux_error_rank_corr``."""
    for mode in SCHEDULE_NAMES:
        for repeat in range(config.repeats):
            _vanilla(mode, repeat, config, run_dir)
    metrics = _vanilla_metrics(config, run_dir)
    for index, weight in enumerate(config.task_weights):
        for repeat in range(config.aux_repeats):
            _auxiliary(index, weight, repeat, config, run_dir)
    metrics.update(_aux_metrics(config, run_dir))
    metrics["aux_parameters"] = AuxiliaryQuine(_data(config, "test")[0].shape[1], 10, config.aux_embedding_dim,
                                               config.aux_hidden).num_parameters
    _plot_schedules(config, run_dir)
    _plot_tradeoff(config, run_dir, metrics)
    return metrics


COLORS = {"optimise": "tab:blue", "regenerate": "tab:red", "alternate": "tab:green"}


def _plot_schedules(config: Config, run_dir: RunDirectory) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5), layout="constrained")
    err_ax, norm_ax = fig.subplots(1, 2)
    for mode in SCHEDULE_NAMES:
        for r in range(config.repeats):
            curve = run_dir.state["vanilla"][f"{mode}_r{r}"]["curve"]
            pts = [(s, e, n) for s, e, n in zip(curve["step"], curve["relative_error"], curve["norm_ratio"],
                                                strict=True) if math.isfinite(e) and math.isfinite(n)]
            label = None if r else mode
            err_ax.plot([p[0] for p in pts], [max(p[1], 1e-12) for p in pts], color=COLORS[mode], label=label)
            norm_ax.plot([p[0] for p in pts], [max(p[2], 1e-12) for p in pts], color=COLORS[mode], label=label)
    norm_ax.axhline(config.norm_threshold, color="gray", ls="--", lw=0.8, label="non-trivial threshold")
    for ax, ylabel in ((err_ax, "relative error ||w_hat - w|| / ||w||"), (norm_ax, "||theta|| / initial")):
        ax.set(yscale="log", xlabel="step", ylabel=ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(f"vanilla quine, {_quine(config, 0).num_parameters} parameters; alternate: a regeneration every "
                 f"{config.regenerate_every or 'epoch'} optimiser steps ({config.optimizer}, lr {config.lr:g}); "
                 "a curve stops where it is not finite")
    run_dir.save_figure(fig, "replication_over_training")


def _plot_tradeoff(config: Config, run_dir: RunDirectory, m: dict[str, Any]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.subplots()
    for r in range(config.aux_repeats):
        rows = [run_dir.state["aux"][f"aux_l{i}_r{r}"] for i in range(len(config.task_weights))]
        ax.plot([row["relative_error"] for row in rows], [row["accuracy"] for row in rows], marker="o", alpha=0.6)
    for i, weight in enumerate(config.task_weights):
        ax.annotate(f"λ={weight:g}", (m[f"aux_l{i}_relative_error"], m[f"aux_l{i}_accuracy"]), fontsize=8)
    ax.set(xlabel="relative replication error (held-out pairing)", ylabel="held-out accuracy",
           title=f"auxiliary quine on {config.aux_dataset}: {m['aux_parameters']} parameters")
    run_dir.save_figure(fig, "tradeoff")


# ---------------------------------------------------------------------------------------------- claims
def _alternating_best(m: dict[str, Any]) -> tuple[bool, Any]:
    best_single = min(m["optimise_relative_error"], m["regenerate_relative_error"])
    measured = {mode: {"error": m[f"{mode}_relative_error"], "norm_ratio": m[f"{mode}_norm_ratio"],
                       "spread": m[f"{mode}_spread"], "nontrivial": m[f"{mode}_nontrivial"]}
                for mode in SCHEDULE_NAMES}
    held = m["alternate_nontrivial"] == 1.0 and m["alternate_relative_error"] <= m["margin"] * best_single
    return held, measured


def _tradeoff(m: dict[str, Any]) -> tuple[bool, Any]:
    n = sum(1 for k in m if k.startswith("aux_l") and k.endswith("_accuracy"))
    acc = [m[f"aux_l{i}_accuracy"] for i in range(n)]
    err = [m[f"aux_l{i}_relative_error"] for i in range(n)]
    held = (acc[-1] > acc[0] and err[-1] > err[0] and m["aux_accuracy_rank_corr"] > 0
            and m["aux_error_rank_corr"] > 0)
    return held, {"accuracy": [round(a, 4) for a in acc], "relative_error": [round(e, 4) for e in err],
                  "accuracy_rank_corr": round(m["aux_accuracy_rank_corr"], 3),
                  "error_rank_corr": round(m["aux_error_rank_corr"], 3)}


CLAIMS = [
    Claim(PAPER, "Alternating regeneration and optimisation reaches a lower replication error than optimisation "
          "alone or regeneration alone, with a non-trivial quine: held when alternating's median relative error "
          "||w_hat - w|| / ||w|| over the repeats is at most `margin` (0.9) times the better single schedule's, "
          "and every alternating repeat ends non-trivial (norm >= 10% of its initial norm, weight spread "
          "std/rms >= 0.1).",
          _alternating_best),
    Claim(PAPER, "In the auxiliary quine, raising the task weight lambda raises held-out digit accuracy and worsens "
          "replication: held when accuracy and relative replication error are both higher at the largest lambda "
          "than at the smallest and both rise with lambda (positive Spearman rank correlation over the lambdas).",
          _tradeoff),
]

EXPERIMENT = Experiment(
    name="network-quine",
    paper=PAPER,
    description=("Vanilla quine trained by optimisation, regeneration or both alternating (replication error and "
                 "weight norm); auxiliary quine on digits: accuracy against replication error over the task weight."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(embedding_dim=64, hidden=(64, 64), steps=20_000, repeats=5, log_every=200,
                       aux_dataset="mnist", aux_embedding_dim=64, aux_hidden=(100,), aux_steps=10_000,
                       aux_repeats=3, checkpoint_every=1000),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=2.5,
    main_metric="relative_error",
    tags=("evolution", "quine", "self-replication"),
)
