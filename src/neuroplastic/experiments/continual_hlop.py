"""HLOP against fine-tuning, EWC and replay: a spiking MLP learning a stream of permuted digits.

Xiao et al. 2024, "Hebbian learning based orthogonal projection for continual learning of spiking neural
networks" (ICLR). Each layer's lateral neurons learn the principal subspace of the layer's inputs by Oja's
subspace rule (:func:`neuroplastic.plasticity.oja_subspace_update`) after each task, and the weight gradients
of later tasks are projected orthogonal to those subspaces (:class:`neuroplastic.continual.HLOP`: the first
layer, applied once per step to the image, projects its inputs in the backward pass; the others project the
summed gradient in an optimizer pre-step hook; both give the same gradient), so old tasks' layer responses stay
put.

Stream: permuted digits (:func:`neuroplastic.continual.digits_stream`, ``"permuted"``: task 0 the plain
images, every later task a fixed random pixel permutation; domain-incremental, one shared head). Network: a
spiking MLP ``D -> H -> H -> 10`` without biases (as the paper's), LIF neurons
(:class:`neuroplastic.neurons.LIF`, hard reset, atan surrogate gradient), the image as the first layer's
input current at every one of ``T`` steps, a linear read-out averaged over the steps. Every method trains the
same network from the same initial weights with the same SGD settings, epochs and batch order; only the
strategy differs (fine-tuning; EWC; experience replay with a reservoir buffer; HLOP). Metrics: the accuracy
matrix ``R`` and ACC, BWT, FWT and forgetting (:mod:`neuroplastic.continual.metrics`).

Subspace check: the lateral neurons trained by the same code on synthetic inputs with a known low-rank
subspace plus small isotropic noise are compared with the SVD principal subspace of those inputs (the cosine
of the largest principal angle, :func:`neuroplastic.plasticity.principal_angle_cosines`).

Deviations from the paper's setting (its reference: 784-800-800-10, T = 20, SGD lr 0.1, batch 64, one epoch per
task on the full permuted MNIST, subspaces 80/200/100 growing by 70): the quick budget uses the 8 x 8 digits
(1,437 training images per task, 64 inputs), 128 hidden neurons, T = 4, three epochs per task and subspaces
20/40/40 growing by 8/16/16 (scaled to the layer widths); the lateral neurons are trained after each task on
the final network's layer inputs rather than during the task, and the projection uses an orthonormal basis of
their rows. Results: ``docs/results/continual-hlop.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic.continual import (
    EWC,
    HLOP,
    ContinualTrainer,
    ExperienceReplay,
    FineTuning,
    Strategy,
    TaskStream,
    digits_stream,
    hlop_sizes,
)
from neuroplastic.neurons import LIF
from neuroplastic.plasticity import SubspaceNeurons, principal_angle_cosines
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param

__all__ = ["Config", "METHODS", "SpikingMLPNoBias", "make_strategy", "subspace_check", "run", "EXPERIMENT",
           "CLAIMS"]

PAPER = ("Xiao et al. 2024, Hebbian learning based orthogonal projection for continual learning of spiking "
         "neural networks (ICLR)")
METHODS = ("fine-tuning", "ewc", "replay", "hlop")


@dataclass
class Config:
    """Stream, network, training and strategy settings; every method gets the same network and budget."""

    num_tasks: int = param(5, minimum=2)
    source: str = param("digits", choices=("digits", "mnist-sample"))
    hidden: int = param(128, minimum=1)
    time_steps: int = param(4, minimum=1)
    tau: float = param(2.0, minimum=0, exclusive_minimum=True)
    threshold: float = param(0.3, minimum=0, exclusive_minimum=True)
    standardize: bool = False  # pixels -> (x - mean) / std of task 0's training pixels (the paper's MNIST input)
    epochs: int = param(3, minimum=1)
    batch_size: int = param(64, minimum=1)
    lr: float = param(0.1, minimum=0, exclusive_minimum=True)
    methods: tuple[str, ...] = param(METHODS, choices=METHODS, min_length=1)
    hlop_initial: tuple[int, ...] = param((20, 40, 40), minimum=0, min_length=3, max_length=3)
    hlop_growth: tuple[int, ...] = param((8, 16, 16), minimum=0, min_length=3, max_length=3)
    hlop_decrease: int = param(0, minimum=0)
    hlop_every: int = param(0, minimum=0)
    hebbian_rate: float = param(0.5, minimum=0, exclusive_minimum=True)
    hebbian_epochs: int = param(3, minimum=1)
    hebbian_min_updates: int = param(1000, minimum=0)  # per layer and task (more passes where there are few rows)
    hebbian_samples: int = param(0, minimum=0)  # 0: all of the task's training examples
    hlop_orthonormalize: bool = True  # False: project with the lateral weights as they are (the paper's H^T H)
    ewc_strength: float = param(100.0, minimum=0)
    replay_capacity: int = param(200, minimum=1)
    synthetic_features: int = param(64, minimum=2)
    synthetic_rank: int = param(8, minimum=1)
    synthetic_samples: int = param(2000, minimum=1)
    synthetic_noise: float = param(0.05, minimum=0)

    def check(self) -> None:
        if self.synthetic_rank >= self.synthetic_features:
            raise config_error(self, "synthetic_rank", f"less than synthetic_features ({self.synthetic_features})")
        if len(set(self.methods)) != len(self.methods):
            raise config_error(self, "methods", "distinct methods")


class SpikingMLPNoBias(nn.Module):
    """``[B, D]`` -> Linear -> LIF -> Linear -> LIF -> Linear, averaged over ``T`` steps -> ``[B, C]``, no biases.

    The image is the first layer's input current at every step (direct encoding); LIF with hard reset and the
    atan surrogate; layers ``fc1, fc2, fc3`` (HLOP's projected layers).
    """

    def __init__(self, in_features: int, hidden: int, classes: int, time_steps: int, *, tau: float,
                 threshold: float) -> None:
        super().__init__()
        self.time_steps = time_steps
        self.fc1 = nn.Linear(in_features, hidden, bias=False)
        self.lif1 = LIF(hidden, tau=tau, threshold=threshold, surrogate="atan")
        self.fc2 = nn.Linear(hidden, hidden, bias=False)
        self.lif2 = LIF(hidden, tau=tau, threshold=threshold, surrogate="atan")
        self.fc3 = nn.Linear(hidden, classes, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        current = self.fc1(x).unsqueeze(1).expand(x.shape[0], self.time_steps, -1).contiguous()
        spikes, _ = self.lif1(current)
        spikes, _ = self.lif2(self.fc2(spikes))
        return self.fc3(spikes).mean(1)


def make_strategy(method: str, model: nn.Module, config: Config, seed: int) -> Strategy:
    """The strategy of ``method`` (one of :data:`METHODS`) for ``model``."""
    if method == "fine-tuning":
        return FineTuning()
    if method == "ewc":
        return EWC(config.ewc_strength, seed=seed)
    if method == "replay":
        return ExperienceReplay(config.replay_capacity, seed=seed)
    if method == "hlop":
        sizes = hlop_sizes(config.num_tasks, config.hlop_initial, config.hlop_growth,
                           decrease=config.hlop_decrease, every=config.hlop_every)
        return HLOP(model, sizes, layers=["fc1", "fc2", "fc3"], hebbian_rate=config.hebbian_rate,
                    hebbian_epochs=config.hebbian_epochs, hebbian_samples=config.hebbian_samples or None,
                    hebbian_min_updates=config.hebbian_min_updates,
                    orthonormalize=config.hlop_orthonormalize, projection=["input", "gradient", "gradient"],
                    seed=seed)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def subspace_check(config: Config, seed: int) -> dict[str, float]:
    """Lateral neurons trained on synthetic inputs with a known subspace, against the SVD principal subspace.

    ``x = z diag(s) A + noise``: ``A [k, n]`` a random orthonormal basis, ``z`` standard normal with
    ``s`` spread linearly from 3 to 1, isotropic noise of std ``synthetic_noise``; the neurons (``k`` rows,
    the experiment's Hebbian rate normalised by the inputs' mean squared norm, 10 epochs) against the top-``k``
    right singular vectors of ``x``. Returns the cosine of the largest principal angle to the SVD subspace and
    to ``A``, and the largest deviation of ``H H^T`` from the identity (Oja's rows become orthonormal).
    """
    g = torch.Generator().manual_seed(seed)
    n, k, samples = config.synthetic_features, config.synthetic_rank, config.synthetic_samples
    basis = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))[0].T
    scales = torch.linspace(3.0, 1.0, k, dtype=torch.float64)
    x = (torch.randn(samples, k, generator=g, dtype=torch.float64) * scales) @ basis
    x = x + config.synthetic_noise * torch.randn(samples, n, generator=g, dtype=torch.float64)
    neurons = SubspaceNeurons(n, seed=seed).double()
    neurons.grow(k)
    neurons.fit(x, rate=config.hebbian_rate / float(x.pow(2).sum(1).mean()), epochs=10, batch_size=64)
    principal = torch.linalg.svd(x, full_matrices=False)[2][:k]
    h = neurons.weight
    return {"subspace_cos_svd": float(principal_angle_cosines(h, principal)[-1]),
            "subspace_cos_true": float(principal_angle_cosines(h, basis)[-1]),
            "subspace_orthonormality_error": float((h @ h.T - torch.eye(k, dtype=h.dtype)).abs().max())}


def standardized(stream: TaskStream) -> TaskStream:
    """The stream with every input ``x -> (x - m) / s``, ``m`` and ``s`` the mean and standard deviation of task 0's
    training pixels (the paper's code normalises MNIST by its pixel statistics, 0.1307 and 0.3081, so the
    background drives a negative current and the strokes a strong positive one)."""
    mean, std = stream[0].x_train.mean(), stream[0].x_train.std()
    tasks = tuple(replace(t, x_train=(t.x_train - mean) / std, x_test=(t.x_test - mean) / std) for t in stream)
    return TaskStream(tasks, stream.scenario, stream.num_classes, stream.seed)


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train every method on the same stream; return ACC/BWT/FWT/forgetting per method and the subspace check.

    Metrics: ``{method}_acc``, ``_bwt``, ``_fwt``, ``_forgetting``; ``hlop_rows_fc1/2/3`` (lateral neurons at the
    end); ``subspace_cos_svd``, ``subspace_cos_true``, ``subspace_orthonormality_error``. Rows logged per task:
    ``{task, accuracy on every task so far, mean}``.
    """
    metrics: dict[str, Any] = {"num_tasks": config.num_tasks, **subspace_check(config, 1000 * run_dir.seed + 11)}
    stream = digits_stream("permuted", config.num_tasks, source=config.source, seed=run_dir.seed)
    if config.standardize:
        stream = standardized(stream)
    in_features, classes = stream[0].x_train.shape[1], stream[0].num_outputs
    matrices: dict[str, Tensor] = {}
    for method in config.methods:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1000 * run_dir.seed + 17)  # the same initial weights for every method
            model = SpikingMLPNoBias(in_features, config.hidden, classes, config.time_steps, tau=config.tau,
                                     threshold=config.threshold).to(run_dir.device)
        strategy = make_strategy(method, model, config, 1000 * run_dir.seed + 23)
        trainer = ContinualTrainer(model, stream, lambda m: torch.optim.SGD(m.parameters(), lr=config.lr),
                                   strategy=strategy, epochs=config.epochs, batch_size=config.batch_size,
                                   seed=1000 * run_dir.seed + 29)
        run_dir.track(trainer=trainer)
        for _ in run_dir.steps(trainer.total_steps, phase=method, desc=f"continual-hlop {method}"):
            info = trainer.step()
            if info.task_done:
                assert info.row is not None
                run_dir.log(info.task, loss=info.loss, mean_seen=float(info.row[: info.task + 1].mean()),
                            **{f"task{j}": float(a) for j, a in enumerate(info.row)})
        result = trainer.accuracy.metrics()
        matrices[method] = trainer.accuracy.R
        metrics.update({f"{method}_{k}": v for k, v in result.items()})
        metrics[f"{method}_initial_mean"] = float(trainer.accuracy.initial.mean())
        if isinstance(strategy, HLOP):
            metrics.update({f"hlop_rows_{name}": rows for name, rows in
                            zip(strategy.layers, strategy.subspace_rows(), strict=True)})
    _plot(run_dir, config, matrices, metrics)
    return metrics


# ---------------------------------------------------------------------------------------------- plots
def _plot(run_dir: RunDirectory, config: Config, matrices: dict[str, Tensor], m: dict[str, Any]) -> None:
    from matplotlib.figure import Figure

    methods = list(matrices)
    fig = Figure(figsize=(3.4 * len(methods), 3.4), layout="constrained")
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    for ax, method in zip(axes, methods, strict=True):
        r = 100 * matrices[method].numpy()
        image = ax.imshow(r, vmin=0, vmax=100, cmap="viridis")
        for i in range(r.shape[0]):
            for j in range(r.shape[1]):
                ax.text(j, i, f"{r[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="w" if r[i, j] < 60 else "k")
        ax.set_title(f"{method}\nACC {100 * m[f'{method}_acc']:.1f}, BWT {100 * m[f'{method}_bwt']:+.1f}",
                     fontsize=9)
        ax.set_xlabel("tested on task j")
        ax.set_ylabel("after training task i")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="test accuracy (%)")
    run_dir.save_figure(fig, "accuracy_matrices")

    fig = Figure(figsize=(7, 0.6 + 0.35 * len(methods)), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    rows = [[method] + [f"{100 * m[f'{method}_{k}']:+.1f}" if k != "acc" else f"{100 * m[f'{method}_acc']:.1f}"
                        for k in ("acc", "bwt", "fwt", "forgetting")] for method in methods]
    table = ax.table(cellText=rows, colLabels=["method", "ACC (%)", "BWT", "FWT", "forgetting"], loc="center")
    table.scale(1, 1.3)
    ax.set_title(f"{config.num_tasks} permuted-digit tasks, spiking MLP (T = {config.time_steps})", fontsize=9)
    run_dir.save_figure(fig, "metrics_table")


# ---------------------------------------------------------------------------------------------- claims
def _bwt_check(m: dict[str, Any]) -> tuple[bool, Any]:
    hlop, ft = m["hlop_bwt"], m["fine-tuning_bwt"]
    held = abs(hlop) <= 0.5 * abs(ft) and m["hlop_acc"] > m["fine-tuning_acc"]
    return held, {"hlop_bwt": round(hlop, 4), "fine-tuning_bwt": round(ft, 4),
                  "ratio": round(abs(hlop) / abs(ft), 3) if ft else None,
                  "hlop_acc": round(m["hlop_acc"], 4), "fine-tuning_acc": round(m["fine-tuning_acc"], 4)}


def _subspace_check(m: dict[str, Any]) -> tuple[bool, Any]:
    return m["subspace_cos_svd"] >= 0.99, {"cos_largest_angle_svd": round(m["subspace_cos_svd"], 5),
                                           "cos_largest_angle_true": round(m["subspace_cos_true"], 5)}


CLAIMS = [
    Claim(PAPER, "HLOP forgets much less than fine-tuning and ends more accurate: |BWT_HLOP| <= 0.5 |BWT_FT| and "
          "ACC_HLOP > ACC_FT (spiking MLP, permuted digits, same training budget).", _bwt_check),
    Claim(PAPER, "The Hebbian lateral neurons learn the principal subspace: the cosine of the largest principal "
          "angle between their weights and the SVD principal subspace of synthetic inputs with a known subspace "
          "plus small noise is >= 0.99.", _subspace_check),
]

EXPERIMENT = Experiment(
    name="continual-hlop",
    paper=PAPER,
    description=("A spiking MLP (no biases, shared head) on 5 permuted-digit tasks: HLOP (Hebbian lateral "
                 "subspace neurons + orthogonal gradient projection) against fine-tuning, EWC and replay; "
                 "accuracy matrices, ACC/BWT/FWT, and the Hebbian subspace against the SVD principal subspace."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(num_tasks=10, source="mnist-sample", hidden=800, time_steps=20, epochs=1, tau=2.0,
                       threshold=1.0, standardize=True, hlop_initial=(80, 200, 100), hlop_growth=(70, 70, 70),
                       hlop_decrease=20, hlop_every=3, hebbian_samples=1000, replay_capacity=500),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.0,
    main_metric="mean_seen",
    tags=("spiking", "continual", "plasticity"),
)
