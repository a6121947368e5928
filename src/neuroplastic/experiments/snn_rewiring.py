"""Gradient rewiring on a spiking network: accuracy against connectivity as the prior gets stronger.

Chen, Yu, Fang, Huang & Tian 2021, "Pruning of deep spiking neural networks through gradient rewiring"
(IJCAI). Grad R learns the connectivity of an SNN together with its weights: each synapse has a hidden
strength ``theta`` and a sign ``s`` fixed at initialisation, the weight is ``w = s * relu(theta)`` (pruned
where ``theta <= 0``), ``theta`` is trained with the redefined gradient ``dL/dtheta := s * dL/dw`` (pruned
synapses keep receiving the surrogate gradient and can regrow), and a Laplace prior pulls every synapse
towards pruning::

    theta <- Adam step on s * dL/dw, then theta <- theta - lr * alpha * sign(theta - mu)
    mu = ln(2 * (1 - s_target)) / alpha     (so the prior puts a fraction s_target of its mass below 0)

(:class:`neuroplastic.structure.GradRewiring`). The non-spiking version of this experiment is
``gradient-rewiring`` (:mod:`neuroplastic.experiments.gradient_rewiring`); this one uses the spiking network
of the authors' MNIST script (their ``mnist/model.py``)::

    image [B, 784] -> Linear 784 -> H (no bias) -> the same current at each of T steps (direct encoding)
        -> LIF(H) -> Linear H -> 10 (no bias) -> LIF(10) -> output firing rates = spike counts / T

with SpikingJelly's LIF node as they configure it: ``v <- v + (x - v) / tau`` with ``tau = 2`` (our
:class:`~neuroplastic.neurons.LIF` with per-step decay ``1 - 1/tau = 0.5`` and input currents scaled by
``1/tau``), threshold 1, hard reset to 0 detached from the graph, arctan surrogate; ``T = 8``; loss: mean
squared error between the output firing rates and the one-hot label; Adam; every weight rewired with
``s_target = 0.95``. Trained on the embedded 5,000-digit MNIST sample (4,000 train, 1,000 held out), one run
per prior strength ``alpha`` and a dense SNN with the same optimizer, data order and epochs. The claims and
their tolerances are the non-spiking experiment's (imported from it). Outputs: test accuracy, connectivity,
hidden firing rate and synaptic operations per run; ``accuracy_vs_connectivity.png`` and
``training_curves.png``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic.experiments.gradient_rewiring import (
    MONOTONE_TOLERANCE_POINTS,
    SPARSE_CONNECTIVITY,
    SPARSE_MARGIN_POINTS,
    STRONGEST_CHECKED,
    graceful,
    load_data,
    plot_accuracy_vs_connectivity,
    plot_training_curves,
    sparse_close_to_dense,
    target_reached,
    train_variant,
    variants,
)
from neuroplastic.neurons import LIF
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.threads import torch_threads

__all__ = ["Config", "SpikingClassifier", "run", "spiking_activity", "EXPERIMENT", "CLAIMS"]

PAPER = "Chen et al. 2021, Pruning of deep spiking neural networks through gradient rewiring (IJCAI)"


@dataclass
class Config:
    """Network, data and training settings; one Grad R run per entry of ``alphas`` plus a dense baseline.

    The neurons, loss and optimizer are the authors' MNIST settings (their hidden layer has 800 LIF neurons,
    batch 128, 512 epochs, Adam at 1e-3, ``s_target = 0.95``); ``tau`` is SpikingJelly's (decay ``1 - 1/tau``,
    inputs times ``1/tau``). The quick budget has their 800 hidden neurons and 60 epochs at twice their
    learning rate (the prior's drift per step is ``lr * alpha``, so connectivity falls twice as fast). Its prior
    strengths span ~25% down to the paper's sparsest point (0.73% connectivity, ~3.5 points lost): alpha 0.3
    ends at 0.73-0.85% (seeds 0-2). Measured at 800 hidden neurons (seeds 0-2): alpha 0.4 ends at 0.47-0.57%,
    sparser than any point the paper reports, and loses 3.6, 5.7 and 5.6 points, more than the claim's 5; so the
    sparsest network is judged at the paper's connectivity, not beyond it. With 300 hidden neurons (the earlier
    quick budget) the connectivity stopped falling at ~1.1-1.3% (alpha 0.4 to 0.8) while accuracy dropped 5.4-7
    points: a narrower layer cannot be as sparse at the same cost. At alpha >= 1 the network goes silent (alpha
    3: every synapse pruned, no spike, chance accuracy), because Adam's steps (about ``lr`` in size) can no
    longer outpace the prior's ``lr * alpha``.
    """

    hidden: int = 800
    time_steps: int = 8
    tau: float = 2.0
    threshold: float = 1.0
    surrogate: str = "atan"
    alphas: tuple[float, ...] = (0.01, 0.05, 0.1, 0.2, 0.3)
    target_sparsity: float = 0.95
    dense_baseline: bool = True
    epochs: int = 60
    batch_size: int = 100
    lr: float = 2e-3
    test_fraction: float = 0.2
    split_seed: int = 0
    threads: int = 1


class SpikingClassifier(nn.Module):
    """The authors' MNIST SNN: static Linear -> LIF -> Linear -> LIF, output firing rates over ``T`` steps.

    Chen et al. 2021 (``mnist/model.py``). ``forward(x [B, 784]) -> rates [B, 10]`` (spike counts / T);
    ``forward(x, return_hidden=True)`` also returns the hidden spikes ``[B, T, hidden]``. Neurons: SpikingJelly's
    LIF ``v <- v + (x - v) / tau`` = :class:`~neuroplastic.neurons.LIF` with decay ``1 - 1/tau`` on input
    currents scaled by ``1/tau``; hard reset to 0, detached; ``tau > 1``.
    """

    def __init__(self, hidden: int = 800, time_steps: int = 8, *, tau: float = 2.0, threshold: float = 1.0,
                 surrogate: str = "atan", in_features: int = 784, classes: int = 10) -> None:
        super().__init__()
        for name, value in (("hidden", hidden), ("time_steps", time_steps), ("in_features", in_features),
                            ("classes", classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not 1 < tau < math.inf:
            raise ValueError(f"tau must be a finite number > 1 (SpikingJelly's decay 1 - 1/tau), got {tau!r}")
        self.time_steps = time_steps
        self.input_scale = 1.0 / tau
        # our LIF's decay is exp(-1/tau_ours); SpikingJelly's is 1 - 1/tau
        neuron_tau = -1.0 / math.log(1.0 - 1.0 / tau)
        kw = dict(tau=neuron_tau, threshold=threshold, reset="hard", detach_reset=True, surrogate=surrogate)
        self.fc1 = nn.Linear(in_features, hidden, bias=False)
        self.lif1 = LIF(hidden, **kw)
        self.fc2 = nn.Linear(hidden, classes, bias=False)
        self.lif2 = LIF(classes, **kw)

    def forward(self, x: Tensor, return_hidden: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if x.dim() != 2 or x.shape[1] != self.fc1.in_features:
            raise ValueError(f"x must have shape [B, {self.fc1.in_features}], got {list(x.shape)}")
        current = self.input_scale * self.fc1(x)
        batch = x.shape[0]
        hidden, _ = self.lif1(current.unsqueeze(1).expand(batch, self.time_steps, -1).contiguous())
        out, _ = self.lif2(self.input_scale * self.fc2(hidden))
        rates = out.mean(1)
        return (rates, hidden) if return_hidden else rates


@torch.no_grad()
def spiking_activity(model: SpikingClassifier, x: Tensor) -> dict[str, float]:
    """Hidden firing rate (spikes per neuron per step) and synaptic operations per sample on ``x [n, 784]``.

    Synaptic operations (accumulates) of the spiking layer: every hidden spike costs one addition per
    existing outgoing synapse, ``sum_t sum_j s_j(t) * fanout_j`` with ``fanout_j`` the nonzero weights of
    column ``j`` of ``fc2``; the static first layer costs one multiply-accumulate per nonzero weight, once.
    """
    model.eval()
    fanout = (model.fc2.weight != 0).sum(0).to(x.dtype)
    spikes, synops = 0.0, 0.0
    for i in range(0, len(x), 1000):
        _, hidden = model(x[i:i + 1000], return_hidden=True)
        spikes += float(hidden.sum())
        synops += float((hidden.sum(1) * fanout).sum())
    model.train()
    n = len(x)
    return {"hidden_rate": spikes / (n * model.time_steps * model.fc1.out_features),
            "synops": synops / n, "macs": float((model.fc1.weight != 0).sum())}


def _build(config: Config, seed: int, device: torch.device) -> SpikingClassifier:
    """The SNN with the same initial weights for every variant of a run (its own seed, global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * seed + 11)
        return SpikingClassifier(config.hidden, config.time_steps, tau=config.tau, threshold=config.threshold,
                                 surrogate=config.surrogate).to(device)


def _rate_loss(rates: Tensor, labels: Tensor) -> Tensor:
    """The authors' loss: mean squared error between output firing rates and one-hot labels."""
    return F.mse_loss(rates, F.one_hot(labels, rates.shape[1]).to(rates.dtype))


def _train(name: str, alpha: float | None, config: Config, run_dir: RunDirectory,
           data: tuple[Tensor, Tensor, Tensor, Tensor]) -> dict[str, Any]:
    """Train one variant of the SNN; returns its final metrics (with its spiking activity on the test set)."""
    model = _build(config, run_dir.seed, run_dir.device)
    conn, metrics = train_variant(name, alpha, config, run_dir, data, model, _rate_loss, f"snn-rewiring {name}")
    activity = spiking_activity(model, data[2])
    metrics.update({f"{name}_hidden_rate": activity["hidden_rate"], f"{name}_synops": activity["synops"],
                    f"{name}_macs": activity["macs"]})
    if conn is not None:
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
    if not config.alphas:
        raise ValueError("alphas must hold at least one prior strength")
    with torch_threads(config.threads):
        data = load_data(config, run_dir.device)
        metrics: dict[str, Any] = {"target_connectivity": 1 - config.target_sparsity,
                                   "grad_r_runs": len(config.alphas), "test_size": len(data[3])}
        for name, alpha in variants(config):
            metrics.update(_train(name, alpha, config, run_dir, data))
    _plot_tradeoff(run_dir, config, metrics)
    plot_training_curves(run_dir, config, connectivity_label="% of synapses", layout="constrained")
    return metrics


# ---------------------------------------------------------------------------------------------- plots
def _plot_tradeoff(run_dir: RunDirectory, config: Config, m: dict[str, Any]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot_accuracy_vs_connectivity(left, config.alphas, m, network="SNN", connectivity="% of synapses",
                                  title="Grad R on a spiking network: accuracy vs connectivity", legend_fontsize=7)
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
# The criteria and tolerances of the non-spiking experiment (gradient_rewiring), fixed there before its
# first full run; their checks are imported so that the two experiments judge the same way.
CLAIMS = [
    Claim(PAPER,
          "The prior sets the sparsity of the SNN: with target sparsity s = 0.95 the Laplace prior puts 95% of "
          f"its mass below theta = 0, so for the {STRONGEST_CHECKED} strongest priors the final connectivity is "
          "at or below 1 - s = 5% of the synapses.",
          target_reached),
    Claim(PAPER,
          "The SNN's accuracy degrades gracefully as connectivity falls: ordering the dense SNN and the Grad R "
          f"SNNs by connectivity, no sparser network is more than {MONOTONE_TOLERANCE_POINTS:g} points more "
          "accurate than a denser one (2 standard errors of a difference on 1,000 test digits).",
          graceful),
    Claim(PAPER,
          f"The sparsest Grad R SNN keeps at most {100 * SPARSE_CONNECTIVITY:g}% of the synapses and is within "
          f"{SPARSE_MARGIN_POINTS:g} points of the dense SNN's test accuracy (the paper's abstract: ~3.5 points "
          "lost at 0.73% connectivity).",
          sparse_close_to_dense),
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
        # weaker prior prunes as far at a smaller cost in accuracy: 240 epochs at lr 1e-3 (300 hidden, seed 0)
        # gave 3.6% connectivity at 95.0% (alpha 0.1) and 1.7% at 93.1% (alpha 0.2), where the quick budget's
        # 60 epochs at 2e-3 gave 2.8% at 93.2% and 1.1% at 88.8% with 300 hidden neurons. These strengths are
        # extrapolated, not run.
        "full": Config(hidden=800, alphas=(0.005, 0.02, 0.05, 0.1, 0.2), epochs=512, lr=1e-3),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=4.0,
    main_metric="test_accuracy",
    tags=("spiking", "structure", "pruning", "supervised"),
)
