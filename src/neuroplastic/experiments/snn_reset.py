"""Hard reset, soft reset and soft reset + membrane potential rectifier in a spiking MLP on MNIST digits.

Guo et al. 2022, "Reducing Information Loss for Spiking Neural Networks" (ECCV). A LIF neuron that fires
either drops its membrane potential to 0 ("hard reset", discarding how far above the threshold it was) or
subtracts the threshold ("soft reset", keeping the surplus for the next step); and the surrogate gradient
sees the membrane potential quantised to a 0/1 spike. The paper proposes the soft reset and the membrane
potential rectifier (MPR), which redistributes the membrane potential towards the spike values before the
firing function, and reports: soft + MPR > soft > hard in test accuracy. Per LIF step (threshold theta,
``u = h / (2 theta)`` so that the threshold sits at u = 1/2 and a spike at u = 1)::

    h = decay * v + x;  spike = H(h - theta)  [MPR: H(mpr(h) - theta), same spikes, other gradient]
    hard: v' = h * (1 - spike);  soft: v' = h - theta * spike
    mpr(h) = 2 theta phi(h / (2 theta)),  phi(u) = tanh(K (u - 1/2)) / (2 tanh(K / 2)) + 1/2 on [0, 1],
             u^(1/3) above 1, 1 - (1 - u)^(1/3) below 0, K = 3

(:func:`neuroplastic.neurons.lif_step`, :func:`neuroplastic.neurons.membrane_rectifier`).

Network (:class:`neuroplastic.models.SpikingMLP`): ``784 -> H -> H -> 10``, two hidden layers of LIF
neurons (:class:`neuroplastic.neurons.LIF`, fused backend) and a non-spiking linear readout averaged over the
``T`` steps (the class scores); optional batch norm of the currents (``norm``). Encoding: ``"rate"`` (the
quick budget's: Bernoulli spikes with the pixel intensity as probability,
:func:`neuroplastic.neurons.rate_encode`) or ``"direct"`` (the paper's: the normalised image is the first
layer's input current at every step). Trained with surrogate gradients (``surrogate="rectangle"``: a
rectangular window of half-width ``theta``, nonzero exactly where ``0 < u < 1``, the straight-through clamp
of the paper's group; or ``"triangle"``), Adam with cosine annealing, cross-entropy. Method: each variant
(hard, soft, soft + MPR) is trained ``repeats`` times; repeat ``r`` of every variant starts from the same
initial weights and sees the same data order (and the same input spikes), so the variants are compared in
pairs. The claims are judged on the mean test accuracy over the repeats, with a tolerance of two measured
standard errors of the paired difference (see :func:`paired_difference`).

Deviations from the paper: an MLP on the embedded 5,000-digit MNIST sample (4,000 train, 1,000 test), not
its convolutional networks on CIFAR and ImageNet; rate encoding, a weak leak and 8 steps at the quick budget
instead of the paper's direct encoding, because that is where the reset acts at all (with direct encoding
the hard and the soft reset give the same spike counts for almost every neuron and digit; figures in
``docs/results/snn-reset.md``).

Also measured: how often the hard and the soft reset give different spike counts for the same input
currents (``reset_changes_counts``, the room the reset has to matter at all) and the mean quantisation
error ``|u - spike|`` before and after the MPR (``quantization_error_before/after_mpr``). Figures:
``accuracy.png`` (test accuracy over epochs, and per repeat), ``membrane_distribution.png`` (the membrane
potentials of the soft + MPR network before and after the rectifier, as in the paper's figure). Measured
results: ``docs/results/snn-reset.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from neuroplastic.data import load_mnist_sample_splits
from neuroplastic.evaluation import correct_mask
from neuroplastic.models.spiking_mlp import ENCODINGS, SURROGATES, SpikingMLP
from neuroplastic.neurons import LIF, lif_step, membrane_rectifier
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import param
from neuroplastic.runs.plots import metric_series

__all__ = ["Config", "VARIANTS", "make_network", "paired_difference", "membrane_potentials",
           "run", "EXPERIMENT", "CLAIMS"]

PAPER = "Guo et al. 2022, Reducing Information Loss for Spiking Neural Networks (ECCV)"
VARIANTS = {"hard": ("hard", False), "soft": ("soft", False), "soft_mpr": ("soft", True)}
"""Variant name -> (reset, rectifier)."""


@dataclass
class Config:
    """Network, neuron, encoding and training settings; every variant gets the same budget.

    ``decay`` is the membrane's per-step decay (``tau = -1 / ln(decay)`` steps); threshold 0.5 and the
    rectangular surrogate window ``0 < u < 1`` are those of the paper's group. The quick budget uses rate
    encoding, a weak leak and 8 steps, because that is where the reset acts at all: with direct encoding the
    first layer's input current is the same at every step, most neurons are driven far above or below the
    threshold, and the two resets give the same spike counts; with rate encoding the currents change from step
    to step. A strong leak with few steps (decay <= 0.5, T <= 4) leaves the reset little room even for varied
    currents. The measurements behind this: ``docs/results/snn-reset.md``.
    """

    hidden: int = param(128, minimum=1)
    time_steps: int = param(8, minimum=1)
    decay: float = param(0.9, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    threshold: float = param(0.5, minimum=0, exclusive_minimum=True)
    encoding: str = param("rate", choices=ENCODINGS)
    norm: bool = False
    surrogate: str = param("rectangle", choices=SURROGATES)
    variants: tuple[str, ...] = param(("hard", "soft", "soft_mpr"), choices=tuple(VARIANTS), min_length=1)
    repeats: int = param(3, minimum=1)
    epochs: int = param(10, minimum=1)
    batch_size: int = param(100, minimum=1)
    lr: float = param(1e-3, minimum=0, exclusive_minimum=True)
    test_fraction: float = param(0.2, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    split_seed: int = param(0, minimum=0)


def make_network(variant: str, config: Config, seed: int) -> SpikingMLP:
    """The network of ``variant`` ("hard", "soft", "soft_mpr") with initial weights fixed by ``seed`` alone.

    Every variant built with the same seed has the same weights (the global random generator is untouched).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {variant!r}")
    reset, rectifier = VARIANTS[variant]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SpikingMLP(config.hidden, config.time_steps, decay=config.decay, threshold=config.threshold,
                          reset=reset, rectifier=rectifier, encoding=config.encoding, norm=config.norm,
                          surrogate=config.surrogate)


def load_data(config: Config, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Train and test digits ``[n, 784]`` (normalised for direct encoding, in [0, 1] for rate), labels ``[n]``."""
    return load_mnist_sample_splits(test_fraction=config.test_fraction, seed=config.split_seed,
                                    normalise=config.encoding == "direct", device=device)


def predictions_correct(model: SpikingMLP, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Whether each sample is classified correctly, ``[n]`` bool: :func:`neuroplastic.evaluation.correct_mask`
    in batches of 500, in eval mode, with the rate encoding's draws from ``generator``; leaves the model in
    training mode."""
    model.eval()
    try:
        return correct_mask(lambda batch: model(batch, generator), x, y, batch_size=500)
    finally:
        model.train()


def paired_difference(correct_a: Tensor, correct_b: Tensor) -> tuple[float, float]:
    """Mean accuracy difference of A over B and its standard error, from per-sample correctness ``[R, n]``.

    Each of the ``R`` repeats trains A and B from the same initial weights with the same data order, and both
    are tested on the same ``n`` samples. With ``D_i = mean_r (a_ri - b_ri)`` (a sample's mean difference over
    the repeats), the difference is ``mean_i D_i`` and its standard error ``std(D) / sqrt(n)`` (the
    sampling error of the test set, with the variation between repeats inside each ``D_i``). Returns
    fractions, not points.
    """
    if correct_a.shape != correct_b.shape or correct_a.dim() != 2:
        raise ValueError(f"correct_a and correct_b must both be [R, n], got {list(correct_a.shape)} and "
                         f"{list(correct_b.shape)}")
    d = (correct_a.double() - correct_b.double()).mean(0)
    n = d.numel()
    se = float(d.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan")
    return float(d.mean()), se


@torch.no_grad()
def membrane_potentials(lif: LIF, currents: Tensor) -> tuple[Tensor, Tensor]:
    """The pre-spike membrane ``h [B, T, N]`` and the spikes of a LIF layer driven by ``currents [B, T, N]``.

    Runs the layer's equations step by step with :func:`~neuroplastic.neurons.lif_step`
    (``h = decay * v + x``, then fire and reset), with the layer's decay, threshold, reset and rectifier.
    """
    decay, threshold = lif.decay(), lif.threshold
    v = torch.zeros_like(currents[:, 0])
    hs, spikes = [], []
    for t in range(currents.shape[1]):
        x = currents[:, t]
        hs.append(decay * v + x)
        spike, v = lif_step(v, x, decay, threshold, reset=lif.reset, rectifier=lif.rectifier, surrogate=lif.surrogate)
        spikes.append(spike)
    return torch.stack(hs, 1), torch.stack(spikes, 1)


@torch.no_grad()
def _diagnostics(model: SpikingMLP, x: Tensor, threshold: float, generator: torch.Generator) -> dict[str, Any]:
    """Quantisation error before/after MPR and how often hard and soft reset change spike counts (layer 1)."""
    model.eval()
    currents = model.hidden_currents(x, generator)
    h, spikes = membrane_potentials(model.lif1, currents)
    u = h / (2 * threshold)
    phi = membrane_rectifier(h, threshold) / (2 * threshold)
    currents2 = model.second_currents(spikes)
    changed = []
    for layer_currents in (currents, currents2):
        counts = []
        for reset in ("hard", "soft"):
            lif = LIF(model.lif1.size, tau=float(model.lif1.tau.flatten()[0]), threshold=threshold, reset=reset)
            counts.append(lif(layer_currents)[0].sum(1))
        changed.append(float((counts[0] != counts[1]).float().mean()))
    model.train()
    return {"u": u, "phi": phi, "spikes": spikes,
            "quantization_error_before_mpr": float((u - spikes).abs().mean()),
            "quantization_error_after_mpr": float((phi - spikes).abs().mean()),
            "reset_changes_counts": changed[0], "reset_changes_counts_layer2": changed[1],
            "hidden1_rate": float(spikes.mean())}


def _train(variant: str, repeat: int, config: Config, run_dir: RunDirectory,
           data: tuple[Tensor, Tensor, Tensor, Tensor]) -> SpikingMLP:
    """Train one variant's repeat for ``config.epochs`` epochs in its own phase; store its test correctness."""
    x_train, y_train, x_test, y_test = data
    seed = 1000 * run_dir.seed + repeat
    model = make_network(variant, config, seed + 17).to(run_dir.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    n = len(y_train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    order_gen = torch.Generator().manual_seed(seed + 5)  # the same data order for every variant of a repeat
    spike_gen = torch.Generator(device=run_dir.device).manual_seed(seed + 7)  # rate encoding's draws
    run_dir.track(model=model, optimizer=optimizer, scheduler=scheduler, order=order_gen, spikes=spike_gen)
    phase = f"{variant}_r{repeat}"
    for epoch in run_dir.steps(config.epochs, phase=phase, checkpoint_every=max(1, config.epochs // 2),
                               desc=f"snn-reset {phase}"):
        order = torch.randperm(n, generator=order_gen).to(run_dir.device)
        loss_sum, correct = 0.0, 0
        for start in range(0, n, config.batch_size):
            index = order[start:start + config.batch_size]
            logits = model(x_train[index], spike_gen)
            loss = F.cross_entropy(logits, y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach()) * len(index)
            correct += int((logits.detach().argmax(1) == y_train[index]).sum())
        test_correct = predictions_correct(model, x_test, y_test, spike_gen)
        run_dir.log(epoch, loss=loss_sum / n, train_accuracy=correct / n,
                    test_accuracy=float(test_correct.float().mean()))
    # Read run_dir.state afresh: resuming replaces it with the checkpoint's.
    eval_gen = torch.Generator(device=run_dir.device).manual_seed(seed + 9)  # the same test draws for all
    run_dir.state.setdefault("correct", {})[phase] = predictions_correct(model, x_test, y_test, eval_gen).cpu()
    return model


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train every variant ``repeats`` times; return mean accuracies, paired differences and diagnostics.

    Metrics: ``{variant}_accuracy`` (mean test accuracy over the repeats), ``{variant}_accuracy_r{k}``;
    ``soft_minus_hard`` and ``soft_mpr_minus_soft`` (mean paired differences, fractions) with ``_se`` (their
    standard errors, :func:`paired_difference`); for the soft + MPR network of repeat 0:
    ``quantization_error_before_mpr``/``_after_mpr`` and ``hidden1_rate``; ``reset_changes_counts`` (for the
    soft network of repeat 0: the fraction of first-layer (neuron, test digit) pairs whose spike count
    differs between a hard and a soft reset fed the same currents; ``_layer2``: the same for the second layer,
    fed the currents the first layer's spikes cause).
    """
    metrics: dict[str, Any] = {"repeats": config.repeats, "time_steps": config.time_steps, "decay": config.decay}
    data = load_data(config, run_dir.device)
    metrics["test_size"] = len(data[3])
    diagnostics: dict[str, dict[str, Any]] = {}
    for repeat in range(config.repeats):
        for variant in config.variants:
            model = _train(variant, repeat, config, run_dir, data)
            if repeat == 0:
                generator = torch.Generator(device=run_dir.device).manual_seed(1000 * run_dir.seed + 3)
                diagnostics[variant] = _diagnostics(model, data[2][:500], config.threshold, generator)
    correct = {v: torch.stack([run_dir.state["correct"][f"{v}_r{r}"] for r in range(config.repeats)])
               for v in config.variants}
    for variant, c in correct.items():
        accuracy = c.double().mean(1)
        metrics[f"{variant}_accuracy"] = float(accuracy.mean())
        metrics.update({f"{variant}_accuracy_r{r}": float(a) for r, a in enumerate(accuracy)})
    for a, b in (("soft", "hard"), ("soft_mpr", "soft"), ("soft_mpr", "hard")):
        if a in correct and b in correct:
            diff, se = paired_difference(correct[a], correct[b])
            metrics[f"{a}_minus_{b}"], metrics[f"{a}_minus_{b}_se"] = diff, se
    if "soft_mpr" in diagnostics:
        d = diagnostics["soft_mpr"]
        metrics.update({k: d[k] for k in ("quantization_error_before_mpr", "quantization_error_after_mpr",
                                          "hidden1_rate")})
    if "soft" in diagnostics:
        metrics["reset_changes_counts"] = diagnostics["soft"]["reset_changes_counts"]
        metrics["reset_changes_counts_layer2"] = diagnostics["soft"]["reset_changes_counts_layer2"]
    _plot_accuracy(run_dir, config, metrics)
    if "soft_mpr" in diagnostics:
        _plot_membrane(run_dir, diagnostics["soft_mpr"])
    return metrics


# ---------------------------------------------------------------------------------------------- plots
COLORS = {"hard": "tab:red", "soft": "tab:blue", "soft_mpr": "tab:green"}
LABELS = {"hard": "hard reset", "soft": "soft reset", "soft_mpr": "soft reset + MPR"}


def _plot_accuracy(run_dir: RunDirectory, config: Config, m: dict[str, Any]) -> None:
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for variant in config.variants:
        curves = []
        for r in range(config.repeats):
            rows = [row for row in run_dir.metrics if row["phase"] == f"{variant}_r{r}"]
            steps, values = metric_series(rows, "test_accuracy")
            curves.append(values)
            left.plot(steps + 1, 100 * values, color=COLORS[variant], alpha=0.25, lw=0.8)
        length = min(len(c) for c in curves)
        mean = np.mean([c[:length] for c in curves], axis=0)
        left.plot(np.arange(1, length + 1), 100 * mean, color=COLORS[variant], lw=2, label=LABELS[variant])
    left.set_xlabel("epoch")
    left.set_ylabel(f"test accuracy (%, {m['test_size']} digits)")
    left.set_title(f"test accuracy (thin: repeats, thick: mean of {config.repeats})")
    left.legend(fontsize=8)

    for i, variant in enumerate(config.variants):
        per = [100 * m[f"{variant}_accuracy_r{r}"] for r in range(config.repeats)]
        right.plot([i] * len(per), per, "o", color=COLORS[variant], alpha=0.5)
        right.plot([i - 0.2, i + 0.2], [100 * m[f"{variant}_accuracy"]] * 2, color=COLORS[variant], lw=3)
    for a, b, y in (("soft", "hard", 0.06), ("soft_mpr", "soft", 0.14)):
        if f"{a}_minus_{b}" in m:
            right.text(0.02, y, f"{LABELS[a]} - {LABELS[b]}: {100 * m[f'{a}_minus_{b}']:+.2f} "
                       f"± {100 * m[f'{a}_minus_{b}_se']:.2f} points (paired SE)", transform=right.transAxes,
                       fontsize=8)
    right.set_xticks(range(len(config.variants)), [LABELS[v] for v in config.variants])
    right.set_ylabel("final test accuracy (%)")
    right.set_title(f"T = {config.time_steps}, decay {config.decay:g}, threshold {config.threshold:g}, "
                    f"{config.encoding} encoding")
    run_dir.save_figure(fig, "accuracy")


def _plot_membrane(run_dir: RunDirectory, d: dict[str, Any]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    u, phi = d["u"].flatten().numpy(), d["phi"].flatten().numpy()
    bins = [i / 40 for i in range(-40, 81)]  # u in [-1, 2]
    for ax, values, title, error in ((left, u, "before MPR: u = h / (2 theta)", d["quantization_error_before_mpr"]),
                                     (right, phi, "after MPR: phi(u)", d["quantization_error_after_mpr"])):
        ax.hist(values.clip(-1, 2), bins=bins, color="tab:green", alpha=0.8)
        for level in (0.0, 1.0):
            ax.axvline(level, color="k", ls=":", lw=1)
        ax.axvline(0.5, color="tab:red", ls="--", lw=1, label="threshold (u = 1/2)")
        ax.set_yscale("log")
        ax.set_xlabel("membrane potential (spike = 1; clipped to [-1, 2])")
        ax.set_title(f"{title}\nmean |value - spike| = {error:.3f}", fontsize=10)
        ax.legend(fontsize=8)
    left.set_ylabel("count (first hidden layer, 500 test digits, all steps)")
    run_dir.save_figure(fig, "membrane_distribution")


# ---------------------------------------------------------------------------------------------- claims
TOLERANCE_SE = 2.0
"""A claim "A >= B" holds when the measured mean paired difference A - B is at least -2 standard errors."""


def _at_least(a: str, b: str):
    def check(m: dict[str, Any]) -> tuple[bool, Any]:
        diff, se = m[f"{a}_minus_{b}"], m[f"{a}_minus_{b}_se"]
        return diff >= -TOLERANCE_SE * se, {
            f"{a}_accuracy": round(m[f"{a}_accuracy"], 4), f"{b}_accuracy": round(m[f"{b}_accuracy"], 4),
            "difference_points": round(100 * diff, 2), "standard_error_points": round(100 * se, 2),
            "tolerance_points": round(100 * TOLERANCE_SE * se, 2), "strictly_higher": diff > 0,
            "z": round(diff / se, 2) if se > 0 else None}
    return check


CLAIMS = [
    Claim(PAPER,
          "Soft reset >= hard reset in test accuracy (mean over the paired repeats): the difference soft - hard "
          f"is at least -{TOLERANCE_SE:g} standard errors of the paired difference, measured on the test set.",
          _at_least("soft", "hard")),
    Claim(PAPER,
          "Soft reset + MPR >= soft reset in test accuracy (mean over the paired repeats): the difference is at "
          f"least -{TOLERANCE_SE:g} standard errors of the paired difference, measured on the test set.",
          _at_least("soft_mpr", "soft")),
]

EXPERIMENT = Experiment(
    name="snn-reset",
    paper=PAPER,
    description=("A spiking MLP (784-128-128-10, LIF, rate-coded input, T = 8) on MNIST digits trained with "
                 "surrogate gradients with hard reset, soft reset and soft reset + membrane potential rectifier, "
                 "same budget and initial weights; paired test-accuracy differences with standard errors."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(hidden=400, repeats=5, epochs=60),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.7,
    main_metric="test_accuracy",
    tags=("spiking", "neurons", "supervised"),
)
