"""Gradient rewiring on a spiking network: accuracy against connectivity as the prior gets stronger.

Chen, Yu, Fang, Huang & Tian 2021, "Pruning of deep spiking neural networks through gradient rewiring"
(IJCAI). Grad R learns the connectivity of an SNN together with its weights: each synapse has a hidden
strength ``theta`` and a sign ``s`` fixed at initialisation, the weight is ``w = s * relu(theta)`` (pruned
where ``theta <= 0``), ``theta`` is trained with the redefined gradient ``dL/dtheta := s * dL/dw`` (pruned
synapses keep receiving the surrogate gradient and can regrow), and a Laplace prior pulls every synapse
towards pruning::

    theta <- Adam step on s * dL/dw, then theta <- theta - lr * alpha * sign(theta - mu)
    mu = ln(2 * (1 - s_target)) / alpha     (so the prior puts a fraction s_target of its mass below 0)

(:class:`neuroplastic.structure.GradRewiring`, trained epoch by epoch with
:func:`neuroplastic.structure.grad_r_epoch`). The non-spiking version of this experiment is
``gradient-rewiring``; this one uses the spiking network of the authors' MNIST script (their
``mnist/model.py``, :class:`neuroplastic.models.SpikingRateMLP`)::

    image [B, 784] -> Linear 784 -> H (no bias) -> the same current at each of T steps (direct encoding)
        -> LIF(H) -> Linear H -> 10 (no bias) -> LIF(10) -> output firing rates = spike counts / T

with SpikingJelly's LIF node as they configure it: ``v <- v + (x - v) / tau`` with ``tau = 2`` (our
:class:`~neuroplastic.neurons.LIF` with per-step decay ``1 - 1/tau = 0.5`` and input currents scaled by
``1/tau``), threshold 1, hard reset to 0 detached from the graph, arctan surrogate; ``T = 8``; loss: mean
squared error between the output firing rates and the one-hot label; Adam; every weight rewired with
``s_target = 0.95``. Method: one run per prior strength ``alpha`` and a dense SNN with the same optimizer,
initial weights, data order and epochs. The checks, their tolerances, the training loop and the figures are
shared with the non-spiking experiment (:mod:`neuroplastic.experiments._grad_r`).

Deviations from the paper: trained on the embedded 5,000-digit MNIST sample (4,000 train, 1,000 held out),
not all of MNIST; the quick budget trains 60 epochs at twice the authors' learning rate (the full one: their
512 epochs and rate); the prior step is not divided by Adam's bias correction.

Outputs: test accuracy, connectivity, hidden firing rate and synaptic operations per run
(:func:`neuroplastic.models.spiking_activity`); ``accuracy_vs_connectivity.png`` and ``training_curves.png``.
Measured results: ``docs/results/snn-rewiring.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from neuroplastic.experiments import _grad_r as grad_r
from neuroplastic.models import SpikingRateMLP, spiking_activity
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import param

__all__ = ["Config", "run", "EXPERIMENT", "CLAIMS"]

PAPER = grad_r.PAPER


@dataclass
class Config:
    """Network, data and training settings; one Grad R run per entry of ``alphas`` plus a dense baseline.

    The neurons, loss and optimizer are the authors' MNIST settings (their hidden layer has 800 LIF neurons,
    batch 128, 512 epochs, Adam at 1e-3, ``s_target = 0.95``); ``tau`` is SpikingJelly's (decay ``1 - 1/tau``,
    inputs times ``1/tau``). The quick budget has their 800 hidden neurons and 60 epochs at twice their
    learning rate (the prior's drift per step is ``lr * alpha``, so connectivity falls twice as fast). Its prior
    strengths span from ~25% connectivity down to the paper's sparsest point (0.73% connectivity, ~3.5 points
    lost); the strongest is not stronger, so that the sparsest network is judged at the paper's connectivity,
    not beyond it. Why these strengths (the measured alternatives): ``docs/results/snn-rewiring.md``.
    """

    hidden: int = param(800, minimum=1)
    time_steps: int = param(8, minimum=1)
    tau: float = param(2.0, minimum=1, exclusive_minimum=True)
    threshold: float = param(1.0, minimum=0, exclusive_minimum=True)
    surrogate: str = "atan"
    alphas: tuple[float, ...] = param((0.01, 0.05, 0.1, 0.2, 0.3), minimum=0, exclusive_minimum=True, min_length=1)
    target_sparsity: float = param(0.95, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    dense_baseline: bool = True
    epochs: int = param(60, minimum=1)
    batch_size: int = param(100, minimum=1)
    lr: float = param(2e-3, minimum=0, exclusive_minimum=True)
    test_fraction: float = param(0.2, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    split_seed: int = param(0, minimum=0)


def _build(config: Config, seed: int, device: torch.device) -> SpikingRateMLP:
    """The SNN with the same initial weights for every variant of a run (its own seed, global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * seed + 11)
        return SpikingRateMLP(config.hidden, config.time_steps, tau=config.tau, threshold=config.threshold,
                                 surrogate=config.surrogate).to(device)


def _rate_loss(rates: Tensor, labels: Tensor) -> Tensor:
    """The authors' loss: mean squared error between output firing rates and one-hot labels."""
    return F.mse_loss(rates, F.one_hot(labels, rates.shape[1]).to(rates.dtype))


def _train(name: str, alpha: float | None, config: Config, run_dir: RunDirectory,
           data: tuple[Tensor, Tensor, Tensor, Tensor]) -> dict[str, Any]:
    """Train one variant of the SNN (Grad R on both weight matrices with prior strength ``alpha``; dense if
    None) with the authors' rate loss (:func:`~neuroplastic.experiments._grad_r.train_variant`); return its
    final metrics, with its spiking activity on the test set and, for Grad R, the connectivity of each layer.
    """
    model = _build(config, run_dir.seed, run_dir.device)
    metrics, rewiring = grad_r.train_variant(name, alpha, model, _rate_loss, config, run_dir, data, desc="snn-rewiring")
    activity = spiking_activity(model, data[2])
    metrics.update({f"{name}_hidden_rate": activity["hidden_rate"], f"{name}_synops": activity["synops"],
                    f"{name}_macs": activity["macs"]})
    if rewiring is not None:
        conn = rewiring.connectivity()
        metrics[f"{name}_connectivity_fc1"] = conn.per_parameter["fc1.weight"]
        metrics[f"{name}_connectivity_fc2"] = conn.per_parameter["fc2.weight"]
    return metrics


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train the dense SNN and one Grad R SNN per prior strength; return accuracies, connectivities, activity.

    Metrics: ``dense_accuracy``; per Grad R run ``gradr{k}_alpha``, ``_accuracy``, ``_connectivity`` (fraction
    of nonzero weights over both layers), ``_connectivity_fc1``/``_fc2``, ``_pruned_events`` and
    ``_regrown_events`` (connections that crossed theta = 0 downwards / upwards, counted after every step);
    per run ``_hidden_rate`` and ``_synops`` (see :func:`spiking_activity`); ``target_connectivity``.
    """
    data = grad_r.load_data(config, run_dir.device)
    metrics = grad_r.first_metrics(config, data)
    for name, alpha in grad_r.variants(config):
        metrics.update(_train(name, alpha, config, run_dir, data))
    _plot_tradeoff(run_dir, config, metrics)
    grad_r.plot_training_curves(run_dir, config, connectivity_label="% of synapses", layout="constrained")
    return metrics


def _plot_tradeoff(run_dir: RunDirectory, config: Config, m: dict[str, Any]) -> None:
    """Left: test accuracy against final connectivity (:func:`~neuroplastic.experiments._grad_r.plot_tradeoff`);
    right: synaptic operations and hidden firing rate of every run against its connectivity."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    grad_r.plot_tradeoff(left, config, m, grad_r_label="Grad R SNN (one run per prior strength alpha)",
                         dense_label="dense SNN (same budget)",
                         xlabel="final connectivity (% of synapses, log scale)",
                         title="Grad R on a spiking network: accuracy vs connectivity", fontsize=7)

    all_names = (["dense"] if "dense_accuracy" in m else []) + [f"gradr{k}" for k in range(len(config.alphas))]
    conn_all = [100 * m[f"{n}_connectivity"] for n in all_names]
    right.plot(conn_all, [m[f"{n}_synops"] for n in all_names], "o-", color="tab:purple",
               label="synaptic operations of the spiking layer")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("final connectivity (% of synapses, log scale)")
    right.set_ylabel("accumulates per test digit (log)")
    twin = right.twinx()
    twin.plot(conn_all, [100 * m[f"{n}_hidden_rate"] for n in all_names], "s--", color="tab:orange",
              label="hidden firing rate")
    twin.set_ylabel("hidden spikes per neuron per step (%)")
    right.set_title("cost of the sparse SNNs")
    right.legend(fontsize=7, loc="upper left")
    twin.legend(fontsize=7, loc="lower right")
    run_dir.save_figure(fig, "accuracy_vs_connectivity")


# ---------------------------------------------------------------------------------------------- claims
# The checks and their thresholds are the non-spiking experiment's (gradient-rewiring), fixed there before its
# first full run, so that the two experiments judge the same way: neuroplastic.experiments._grad_r.
CLAIMS = [
    Claim(PAPER,
          "The prior sets the sparsity of the SNN: with target sparsity s = 0.95 the Laplace prior puts 95% of "
          f"its mass below theta = 0, so for the {grad_r.STRONGEST_CHECKED} strongest priors the final "
          "connectivity is at or below 1 - s = 5% of the synapses.",
          grad_r.target_reached),
    Claim(PAPER,
          "The SNN's accuracy degrades gracefully as connectivity falls: ordering the dense SNN and the Grad R "
          f"SNNs by connectivity, no sparser network is more than {grad_r.MONOTONE_TOLERANCE_POINTS:g} points more "
          "accurate than a denser one (2 standard errors of a difference on 1,000 test digits).",
          grad_r.graceful),
    Claim(PAPER,
          f"The sparsest Grad R SNN keeps at most {100 * grad_r.SPARSE_CONNECTIVITY:g}% of the synapses and is "
          f"within {grad_r.SPARSE_MARGIN_POINTS:g} points of the dense SNN's test accuracy (the paper's abstract: "
          "~3.5 points lost at 0.73% connectivity).",
          grad_r.sparse_close_to_dense),
]

EXPERIMENT = Experiment(
    name="snn-rewiring",
    paper=PAPER,
    description=("Grad R (w = s * relu(theta), redefined gradient s * dL/dw, Laplace prior on theta) on the "
                 "authors' MNIST spiking network (784-H-10 LIF, T = 8, surrogate gradients): test accuracy "
                 "against final connectivity for several prior strengths, next to a dense SNN."),
    config_class=Config,
    budgets={
        "quick": Config(),
        # The authors' network (800 hidden LIF neurons), learning rate and 512 epochs. Longer training with a
        # weaker prior prunes as far at a smaller cost in accuracy (docs/results/snn-rewiring.md); these
        # strengths are extrapolated, not run.
        "full": Config(hidden=800, alphas=(0.005, 0.02, 0.05, 0.1, 0.2), epochs=512, lr=1e-3),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=4.0,
    main_metric="test_accuracy",
    tags=("spiking", "structure", "pruning", "supervised"),
)
