"""The claims, training loop and figures shared by the two Grad R experiments (``gradient-rewiring``, an MLP,
and ``snn-rewiring``, a spiking network).

Chen, Yu, Fang, Huang & Tian 2021, "Pruning of deep spiking neural networks through gradient rewiring"
(IJCAI). Both experiments train, on the embedded MNIST sample, a dense network and one Grad R network per
prior strength ``alpha`` (:class:`neuroplastic.structure.GradRewiring`, one epoch at a time with
:func:`neuroplastic.structure.grad_r_epoch`), all from the same initial weights and in the same data order,
and judge the final connectivity and test accuracy of each run with the same three checks and thresholds.
What differs (network, loss, claim statements, extra metrics) stays in each experiment.

This module registers no experiment (a private ``_`` module is not an experiment module).

Metrics read and written (``k`` indexes ``config.alphas``): ``target_connectivity``, ``grad_r_runs``,
``test_size``, ``dense_accuracy``, ``dense_connectivity``; per Grad R run ``gradr{k}_alpha``, ``_accuracy``,
``_train_accuracy``, ``_location``, ``_connectivity``, ``_connections``, ``_pruned_events``, ``_regrown_events``;
``weights_total``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from neuroplastic.data import load_mnist_sample_splits
from neuroplastic.evaluation import accuracy
from neuroplastic.runs import RunDirectory
from neuroplastic.runs.plots import metric_series
from neuroplastic.structure.rewiring import GradRewiring, grad_r_epoch

__all__ = ["PAPER", "GradRConfig", "load_data", "variants", "first_metrics", "train_variant", "plot_tradeoff",
           "plot_training_curves", "MONOTONE_TOLERANCE_POINTS", "SPARSE_MARGIN_POINTS", "SPARSE_CONNECTIVITY",
           "STRONGEST_CHECKED", "target_reached", "graceful", "sparse_close_to_dense"]

PAPER = "Chen et al. 2021, Pruning of deep spiking neural networks through gradient rewiring (IJCAI)"


class GradRConfig(Protocol):
    """The config fields both Grad R experiments have (their ``Config`` dataclasses)."""

    alphas: tuple[float, ...]
    target_sparsity: float
    dense_baseline: bool
    epochs: int
    batch_size: int
    lr: float
    test_fraction: float
    split_seed: int


def load_data(config: GradRConfig, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Normalised train and test digits ``[n, 784]``, labels ``[n]`` (a stratified split fixed by ``split_seed``;
    the normalisation of the authors' MNIST script)."""
    return load_mnist_sample_splits(test_fraction=config.test_fraction, seed=config.split_seed, normalise=True,
                                    device=device)


def variants(config: GradRConfig) -> list[tuple[str, float | None]]:
    """The runs: ``("dense", None)`` if ``config.dense_baseline``, then ``("gradr<k>", alpha)`` for each prior
    strength of ``config.alphas``."""
    runs: list[tuple[str, float | None]] = [("dense", None)] if config.dense_baseline else []
    return runs + [(f"gradr{k}", float(alpha)) for k, alpha in enumerate(config.alphas)]


def first_metrics(config: GradRConfig, data: tuple[Tensor, Tensor, Tensor, Tensor]) -> dict[str, Any]:
    """The metrics known before training: ``target_connectivity = 1 - target_sparsity``, ``grad_r_runs``
    (the number of prior strengths) and ``test_size``."""
    return {"target_connectivity": 1 - config.target_sparsity, "grad_r_runs": len(config.alphas),
            "test_size": len(data[3])}


# ---------------------------------------------------------------------------------------------- training
def train_variant(name: str, alpha: float | None, model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor],
                  config: GradRConfig, run_dir: RunDirectory, data: tuple[Tensor, Tensor, Tensor, Tensor],
                  desc: str) -> tuple[dict[str, Any], GradRewiring | None]:
    """Train ``model`` (Grad R on its ``nn.Linear`` weights with prior strength ``alpha``; dense if None) for
    ``config.epochs`` epochs in its own phase ``name``; return its final metrics and its rewiring (None if dense).

    Adam (fused), the data order of generator seed ``1000 * run_dir.seed + 5`` (the same for every variant of a
    run); per epoch the mean loss, train and test accuracy, and for Grad R the connectivity and the pruning and
    regrowth events are logged; the events are summed in ``run_dir.state[name]`` (kept across a resume). Final
    metrics: ``{name}_accuracy``, ``_train_accuracy`` and ``_connectivity`` (1.0 if dense); for Grad R also
    ``_alpha``, ``_location``, ``_connections``, ``_pruned_events``, ``_regrown_events`` and ``weights_total``.
    """
    x_train, y_train, x_test, y_test = data
    rewiring = None
    if alpha is not None:
        rewiring = GradRewiring(model, nn.Linear, alpha=alpha, target_sparsity=config.target_sparsity)
    # Adam, fused: a single kernel for all parameters (the same arithmetic as the default, faster on CPU).
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    generator = torch.Generator().manual_seed(1000 * run_dir.seed + 5)  # the same data order for every variant
    run_dir.track(model=model, optimizer=optimizer, generator=generator)
    n = len(y_train)
    for epoch in run_dir.steps(config.epochs, phase=name, checkpoint_every=max(1, config.epochs // 4),
                               desc=f"{desc} {name}"):
        order = torch.randperm(n, generator=generator).to(run_dir.device)
        stats = grad_r_epoch(model, optimizer, loss_fn, x_train, y_train, order, config.batch_size, rewiring)
        # Read run_dir.state afresh: resuming replaces it with the checkpoint's.
        counts = run_dir.state.setdefault(name, {"pruned_events": 0, "regrown_events": 0})
        counts["pruned_events"] += stats.pruned
        counts["regrown_events"] += stats.regrown
        row = {"loss": stats.loss, "train_accuracy": stats.correct / n,
               "test_accuracy": accuracy(model, x_test, y_test)}
        if rewiring is not None:
            row.update(connectivity=rewiring.connectivity().overall, pruned=stats.pruned, regrown=stats.regrown)
        run_dir.log(epoch, **row)

    metrics: dict[str, Any] = {f"{name}_accuracy": accuracy(model, x_test, y_test),
                               f"{name}_train_accuracy": accuracy(model, x_train, y_train)}
    if rewiring is None:
        metrics[f"{name}_connectivity"] = 1.0
        return metrics, None
    conn = rewiring.connectivity()
    counts = run_dir.state.get(name, {"pruned_events": 0, "regrown_events": 0})
    metrics.update({
        f"{name}_alpha": alpha,
        f"{name}_location": rewiring.location,
        f"{name}_connectivity": conn.overall,
        f"{name}_connections": conn.connected,
        f"{name}_pruned_events": counts["pruned_events"],
        f"{name}_regrown_events": counts["regrown_events"],
        "weights_total": conn.total,
    })
    return metrics, rewiring


# ---------------------------------------------------------------------------------------------- figures
def plot_tradeoff(ax: Any, config: GradRConfig, m: dict[str, Any], *, grad_r_label: str, dense_label: str,
                  xlabel: str, title: str, fontsize: float) -> None:
    """On ``ax``: test accuracy against final connectivity (log scale), one point per prior strength, next to the
    dense network, its accuracy minus the claim's margin, and the prior's target connectivity."""
    names = [f"gradr{k}" for k in range(len(config.alphas))]
    conn = [100 * m[f"{n}_connectivity"] for n in names]
    acc = [100 * m[f"{n}_accuracy"] for n in names]
    ax.plot(conn, acc, "o-", color="tab:blue", label=grad_r_label)
    for c, a, alpha in zip(conn, acc, config.alphas, strict=True):
        ax.annotate(f"α={alpha:g}", (c, a), textcoords="offset points", xytext=(4, -11), fontsize=8)
    if "dense_accuracy" in m:
        dense = 100 * m["dense_accuracy"]
        ax.plot([100], [dense], "s", color="k", label=dense_label)
        ax.axhline(dense, color="k", ls=":", lw=1)
        ax.axhline(dense - SPARSE_MARGIN_POINTS, color="tab:red", ls=":", lw=1,
                   label=f"dense - {SPARSE_MARGIN_POINTS:g} points")
    ax.axvline(100 * m["target_connectivity"], color="tab:green", ls="--", lw=1,
               label=f"prior's target connectivity 1 - s = {100 * m['target_connectivity']:g}%")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"test accuracy (%, {m['test_size']} held-out digits)")
    ax.set_title(title)
    ax.legend(fontsize=fontsize, loc="lower right")


def plot_training_curves(run_dir: RunDirectory, config: GradRConfig, *, connectivity_label: str,
                         layout: str | None = None) -> None:
    """Connectivity (ylabel ``connectivity_label``) and test accuracy per epoch of every variant, read from
    ``run_dir.metrics`` (figure ``training_curves``; ``layout`` is matplotlib's figure layout)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8), layout=layout)
    left, right = fig.subplots(1, 2)
    cmap = colormaps["viridis"]
    for name, alpha in variants(config):
        color = "k" if alpha is None else cmap(int(name[5:]) / max(1, len(config.alphas) - 1))
        label = "dense" if alpha is None else f"α={alpha:g}"
        rows = [row for row in run_dir.metrics if row["phase"] == name]
        steps, values = metric_series(rows, "connectivity")
        if len(steps):
            left.plot(steps + 1, 100 * values, color=color, label=label)
        steps, values = metric_series(rows, "test_accuracy")
        right.plot(steps + 1, 100 * values, color=color, label=label)
    left.axhline(100 * (1 - config.target_sparsity), color="tab:green", ls="--", lw=1, label="1 - s")
    left.set_yscale("log")
    left.set_title("connectivity during training (pruning and regrowth)")
    left.set_ylabel(connectivity_label)
    right.set_title("test accuracy during training")
    right.set_ylabel("%")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    run_dir.save_figure(fig, "training_curves")


# ---------------------------------------------------------------------------------------------- claims
# Fixed before the first full run of gradient-rewiring; snn-rewiring judges the same way. Monotonicity
# tolerance: the standard error of the difference of two accuracies near 95% on 1,000 test digits is
# sqrt(2 * 0.95 * 0.05 / 1000) = 1 point; 2 points is two of them.
MONOTONE_TOLERANCE_POINTS = 2.0
# The paper loses ~3.5 points at 0.73% connectivity; our runs train for far fewer epochs, and the test set
# adds ~1 point of noise to the difference: 5 points.
SPARSE_MARGIN_POINTS = 5.0
SPARSE_CONNECTIVITY = 0.05
STRONGEST_CHECKED = 2


def _runs(m: dict[str, Any]) -> list[tuple[float, float, float]]:
    """(alpha, connectivity, accuracy) of each Grad R run, in the order of the config's alphas."""
    return [(m[f"gradr{k}_alpha"], m[f"gradr{k}_connectivity"], m[f"gradr{k}_accuracy"])
            for k in range(m["grad_r_runs"])]


def target_reached(m: dict[str, Any]) -> tuple[bool, Any]:
    """The ``STRONGEST_CHECKED`` runs with the largest ``alpha`` end at or below ``target_connectivity``."""
    strongest = sorted(_runs(m), key=lambda r: r[0])[-STRONGEST_CHECKED:]
    target = m["target_connectivity"]
    passed = all(conn <= target for _, conn, _ in strongest)
    return passed, {"target_connectivity": round(target, 4),
                    **{f"alpha={a:g}": round(conn, 5) for a, conn, _ in strongest}}


def graceful(m: dict[str, Any]) -> tuple[bool, Any]:
    """Ordered by connectivity (dense = 1), no sparser network is more than ``MONOTONE_TOLERANCE_POINTS``
    points more accurate than any denser one."""
    points = [(1.0, m["dense_accuracy"])] + [(conn, acc) for _, conn, acc in _runs(m)]
    points.sort(key=lambda p: -p[0])  # densest first
    worst_rise = max((100 * (points[j][1] - points[i][1]) for i in range(len(points))
                      for j in range(i + 1, len(points))), default=0.0)
    return worst_rise <= MONOTONE_TOLERANCE_POINTS, {
        "largest_gain_of_a_sparser_net_points": round(worst_rise, 2),
        "connectivity_accuracy": [[round(c, 5), round(a, 4)] for c, a in points]}


def sparse_close_to_dense(m: dict[str, Any]) -> tuple[bool, Any]:
    """The sparsest run keeps at most ``SPARSE_CONNECTIVITY`` of the weights and loses at most
    ``SPARSE_MARGIN_POINTS`` points of test accuracy against the dense network."""
    _, conn, acc = min(_runs(m), key=lambda r: r[1])
    loss = 100 * (m["dense_accuracy"] - acc)
    passed = conn <= SPARSE_CONNECTIVITY and loss <= SPARSE_MARGIN_POINTS
    return passed, {"sparsest_connectivity": round(conn, 5), "sparsest_accuracy": round(acc, 4),
                    "dense_accuracy": round(m["dense_accuracy"], 4), "loss_points": round(loss, 2)}
