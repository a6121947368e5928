"""Gradient rewiring on MNIST digits: accuracy against final connectivity as the prior gets stronger.

Chen, Yu, Fang, Huang & Tian 2021, "Pruning of deep spiking neural networks through gradient rewiring"
(IJCAI). Grad R learns connectivity and weights together: each synapse has a hidden strength ``theta`` and
a sign ``s`` fixed at initialisation, the weight is ``w = s * relu(theta)`` (pruned where ``theta <= 0``),
``theta`` is trained with the redefined gradient ``dL/dtheta := s * dL/dw`` (pruned synapses keep getting
it and can regrow), and a Laplace prior on ``theta`` pulls every synapse towards pruning::

    theta <- Adam step on s * dL/dw, then theta <- theta - lr * alpha * sign(theta - mu)
    mu = ln(2 * (1 - s_target)) / alpha     (so the prior puts a fraction s_target of its mass below 0)

(:class:`neuroplastic.structure.GradRewiring`, trained epoch by epoch with
:func:`neuroplastic.structure.grad_r_epoch`). Method: one run per prior strength ``alpha``, all with the
paper's ``s_target = 0.95``, and a dense MLP trained with the same optimizer, initial weights, data order and
number of epochs; claims on the final connectivity and test accuracy of each run.

Deviations from the paper: the network is a non-spiking MLP, 784-300-100-10 with ReLU
(:func:`neuroplastic.models.relu_mlp`; every weight matrix rewired, biases dense), not an SNN (the spiking
version is the ``snn-rewiring`` experiment); it is trained with Adam on the embedded 5,000-digit MNIST sample
(4,000 for training, 1,000 held out) for 40 epochs (quick) or 512 (full, the paper's), not on all of MNIST;
the prior step is not divided by Adam's bias correction (see :mod:`neuroplastic.structure.rewiring`).

Outputs: test accuracy and connectivity per run, accuracy against connectivity (log x) as
``accuracy_vs_connectivity.png``, and the connectivity and accuracy over training as ``training_curves.png``.
Measured results: ``docs/results/gradient-rewiring.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic.experiments import _grad_r as grad_r
from neuroplastic.models import relu_mlp
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import param

__all__ = ["Config", "run", "EXPERIMENT", "CLAIMS"]

PAPER = grad_r.PAPER


@dataclass
class Config:
    """MLP, data and training settings; one Grad R run per entry of ``alphas`` plus a dense baseline.

    The authors train their MNIST SNN with Adam (lr 1e-4 in their README, 1e-3 in their script), batch
    128, 512 epochs, ``s_target = 0.95`` and one prior strength per run. Here the same optimizer and
    target sparsity, on the 4,000 training digits of the embedded sample. The quick budget's prior
    strengths were picked from a sweep to span most of the range from dense to ~1% connectivity (the sweep:
    ``docs/results/gradient-rewiring.md``).
    """

    hidden: tuple[int, ...] = param((300, 100), minimum=1, min_length=1)
    alphas: tuple[float, ...] = param((0.005, 0.02, 0.1, 0.2, 0.4), minimum=0, exclusive_minimum=True, min_length=1)
    target_sparsity: float = param(0.95, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    dense_baseline: bool = True
    epochs: int = param(40, minimum=1)
    batch_size: int = param(100, minimum=1)
    lr: float = param(1e-3, minimum=0, exclusive_minimum=True)
    test_fraction: float = param(0.2, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    split_seed: int = param(0, minimum=0)


def _build(config: Config, seed: int, device: torch.device) -> nn.Sequential:
    """The MLP with the same initial weights for every variant of a run (its own seed, global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * seed + 11)
        return relu_mlp(784, config.hidden, 10).to(device)


def _train(name: str, alpha: float | None, config: Config, run_dir: RunDirectory,
           data: tuple[Tensor, Tensor, Tensor, Tensor]) -> dict[str, Any]:
    """Train one variant of the MLP (Grad R on its Linear weights with prior strength ``alpha``; dense if None)
    with cross-entropy (:func:`~neuroplastic.experiments._grad_r.train_variant`); return its final metrics,
    with the connectivity of each layer ``{name}_connectivity_layer<i>`` (``i`` its index in the Sequential)."""
    model = _build(config, run_dir.seed, run_dir.device)
    metrics, rewiring = grad_r.train_variant(name, alpha, model, F.cross_entropy, config, run_dir, data,
                                             desc="gradient-rewiring")
    if rewiring is not None:
        for layer, fraction in rewiring.connectivity().per_parameter.items():
            metrics[f"{name}_connectivity_layer{layer.split('.')[0]}"] = fraction
    return metrics


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train the dense MLP and one Grad R MLP per prior strength; return accuracies and connectivities.

    Metrics: ``dense_accuracy``; per Grad R run ``gradr{k}_alpha``, ``_accuracy``, ``_connectivity``
    (fraction of nonzero weights over all layers), per-layer connectivity, ``_pruned_events`` and
    ``_regrown_events`` (connections that crossed theta = 0 downwards / upwards over training); and
    ``target_connectivity = 1 - target_sparsity``.
    """
    data = grad_r.load_data(config, run_dir.device)
    metrics = grad_r.first_metrics(config, data)
    for name, alpha in grad_r.variants(config):
        metrics.update(_train(name, alpha, config, run_dir, data))
    _plot_tradeoff(run_dir, config, metrics)
    grad_r.plot_training_curves(run_dir, config, connectivity_label="% of weights nonzero")
    return metrics


def _plot_tradeoff(run_dir: RunDirectory, config: Config, m: dict[str, Any]) -> None:
    """Test accuracy against final connectivity (log scale), one point per prior strength, next to the dense MLP,
    its accuracy minus the claim's margin, and the prior's target connectivity."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4))
    grad_r.plot_tradeoff(fig.subplots(), config, m, grad_r_label="Grad R (one run per prior strength alpha)",
                         dense_label="dense MLP (same budget)",
                         xlabel="final connectivity (% of weights nonzero, log scale)",
                         title="Grad R on an MLP, MNIST sample: accuracy vs connectivity", fontsize=8)
    run_dir.save_figure(fig, "accuracy_vs_connectivity")


# ---------------------------------------------------------------------------------------------- claims
# The checks and their thresholds: neuroplastic.experiments._grad_r (shared with snn-rewiring).
CLAIMS = [
    Claim(PAPER,
          "The prior sets the sparsity: with target sparsity s = 0.95 the Laplace prior puts 95% of its mass "
          "below theta = 0 (mu = ln(2(1 - s))/alpha), so for the two strongest priors the final connectivity "
          "is at or below 1 - s = 5% of the weights.",
          grad_r.target_reached),
    Claim(PAPER,
          "Accuracy degrades gracefully as connectivity falls: ordering the dense MLP and the Grad R runs by "
          f"connectivity, no sparser network is more than {grad_r.MONOTONE_TOLERANCE_POINTS:g} points more "
          "accurate than a denser one (2 standard errors of a difference on 1,000 test digits).",
          grad_r.graceful),
    Claim(PAPER,
          f"The sparsest Grad R network keeps at most {100 * grad_r.SPARSE_CONNECTIVITY:g}% of the weights and is "
          f"within {grad_r.SPARSE_MARGIN_POINTS:g} points of the dense MLP's test accuracy (the paper: ~3.5 points "
          "lost at 0.73% connectivity).",
          grad_r.sparse_close_to_dense),
]

EXPERIMENT = Experiment(
    name="gradient-rewiring",
    paper=PAPER,
    description=("Grad R (w = s * relu(theta), redefined gradient s * dL/dw, Laplace prior on theta) on an "
                 "MLP trained on MNIST digits: test accuracy against final connectivity for several prior "
                 "strengths, next to a dense MLP with the same budget."),
    config_class=Config,
    budgets={
        "quick": Config(),
        # Closer to the paper: its 512 epochs (on the 4,000-digit sample). Connectivity falls with the total
        # prior drift lr * alpha * steps, so the prior strengths are about 12 times smaller than the quick
        # budget's for the same span (docs/results/gradient-rewiring.md).
        "full": Config(alphas=(0.0005, 0.002, 0.005, 0.01, 0.02, 0.04), epochs=512),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.6,
    main_metric="test_accuracy",
    tags=("structure", "pruning", "supervised"),
)
