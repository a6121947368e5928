"""Binary pattern memorisation and completion: a plastic RNN completes a half-erased pattern, a plain RNN cannot.

Miconi, Clune & Stanley 2018, "Differentiable plasticity: training plastic neural networks with
backpropagation" (ICML), section 4.1 (pattern memorisation, binary patterns).

Each episode shows a few random ±1 patterns, several times each, then one of them with half its bits set to
0; the network's final hidden state must be the complete pattern. The patterns are new in every episode, so
they cannot be stored in the fixed weights: the network must store them in its Hebbian traces while they
are shown, then complete the cue by recurrent dynamics through the plastic weights.

Network (one neuron per pattern bit, plus a bias neuron as in the authors' ``simple.py``; the input is
added straight to the pre-activation, multiplied by ``input_gain`` = 20 as there)::

    x_t = tanh(x_{t-1} @ (W + alpha * H_{t-1}) + gain * u_t)
    H_t = (1 - eta) * H_{t-1} + eta * x_{t-1} ⊗ x_t          (decaying Hebbian trace, per episode)

W, alpha (one per connection) and eta (one scalar) are the only learned parameters. The loss is the mean
squared error between the final hidden state and the complete pattern. The non-plastic baseline is the same
network with alpha fixed at 0 (``x_t = tanh(x_{t-1} @ W + gain * u_t)``, W its only parameter:
:class:`neuroplastic.models.RNN` without an input projection).

Deviations from the paper: 50-bit patterns, 3 per episode, batches of 16 episodes and a larger learning rate
at the quick budget (see :class:`Config`; ``full`` is the authors' setting). Measured results:
``docs/results/pattern-completion.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from neuroplastic.evaluation import count_parameters
from neuroplastic.models import RNN
from neuroplastic.plasticity import PlasticRNN
from neuroplastic.runs import Claim, Experiment, RunDirectory, param
from neuroplastic.runs.plots import metric_series, smooth_curve
from neuroplastic.tasks import PatternCompletionBatch, bit_error_rate, pattern_completion_batch

__all__ = ["Config", "make_network", "episode_inputs", "run", "evaluate", "plasticity_stats", "EXPERIMENT",
           "VARIANTS"]

PAPER = "Miconi, Clune & Stanley 2018, Differentiable plasticity (ICML), binary pattern memorisation"
VARIANTS = ("plastic", "nonplastic")
CHANCE = 0.5  # a random guess gets half of the erased bits wrong


@dataclass
class Config:
    """Task, network and training settings of the pattern-completion experiment.

    Task settings are those of :func:`neuroplastic.tasks.pattern_completion_batch`; the authors' ``simple.py``
    uses 1000-bit balanced patterns, 5 patterns shown twice for 6 steps with 4 blank steps, a 6-step test,
    half the bits erased, inputs times 20, Adam at 3e-4 on single episodes for 2000 episodes, eta 0.01 and
    alpha initialised at 0.01 * N(0, 1).
    """

    pattern_size: int = 50
    num_patterns: int = 3
    presentations: int = 2
    present_steps: int = 6
    gap_steps: int = 4
    test_steps: int = 6
    erase_fraction: float = 0.5
    balanced: bool = True
    input_gain: float = 20.0
    bias_unit: bool = True
    alpha_init: float = 0.01
    eta_init: float = 0.01
    batch_size: int = 16
    steps: int = 600
    lr: float = 3e-3
    eval_batches: int = param(8, minimum=1)
    eval_batch_size: int = param(125, minimum=1)
    checkpoint_every: int = 50


def make_network(variant: str, config: Config) -> nn.Module:
    """The network of ``variant`` ("plastic" or "nonplastic"), one neuron per bit (+1 bias neuron)."""
    size = config.pattern_size + int(config.bias_unit)
    if variant == "plastic":
        return PlasticRNN(size, size, input_projection=False, rule="hebbian", alpha="connection", eta="scalar",
                          alpha_init=config.alpha_init, eta_init=config.eta_init)
    if variant == "nonplastic":
        return RNN(size, size, input_projection=False)
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


def episode_inputs(batch: PatternCompletionBatch, config: Config) -> Tensor:
    """The network input ``[B, T, N (+1)]``: the task's inputs with the bias neuron's 1, times ``input_gain``."""
    inputs = batch.inputs
    if config.bias_unit:
        inputs = torch.cat([inputs, inputs.new_ones(*inputs.shape[:2], 1)], dim=-1)
    return inputs * config.input_gain


def _final_output(model: nn.Module, inputs: Tensor, pattern_size: int) -> Tensor:
    """The network's answer: the pattern neurons' final hidden state ``[B, N]``."""
    outputs, _ = model(inputs)
    return outputs[:, -1, :pattern_size]


def _draw(config: Config, batch_size: int, generator: torch.Generator, device: torch.device) -> PatternCompletionBatch:
    return pattern_completion_batch(
        batch_size, pattern_size=config.pattern_size, num_patterns=config.num_patterns,
        presentations=config.presentations, present_steps=config.present_steps, gap_steps=config.gap_steps,
        test_steps=config.test_steps, erase_fraction=config.erase_fraction, balanced=config.balanced,
        generator=generator, device=device,
    )


@torch.no_grad()
def evaluate(model: nn.Module, config: Config, seed: int, device: torch.device) -> dict[str, float]:
    """Error rates on fresh episodes (a generator of its own, the same episodes for every variant).

    Returns the mean fraction of erased bits wrong (and its standard error over episodes), the mean
    fraction of kept bits wrong, and the fraction of episodes with every erased bit right.
    """
    generator = torch.Generator().manual_seed(seed)
    erased, kept = [], []
    for _ in range(config.eval_batches):
        batch = _draw(config, config.eval_batch_size, generator, device)
        output = _final_output(model, episode_inputs(batch, config), config.pattern_size)
        erased.append(bit_error_rate(output, batch.target, batch.test_mask).cpu())
        kept.append(bit_error_rate(output, batch.target, ~batch.test_mask).cpu())
    erased_rates, kept_rates = torch.cat(erased), torch.cat(kept)
    return {
        "erased_error": float(erased_rates.mean()),
        "erased_error_sem": float(erased_rates.std() / math.sqrt(len(erased_rates))),
        "kept_error": float(kept_rates.mean()),
        "perfect_fraction": float((erased_rates == 0).float().mean()),
    }


def plasticity_stats(model: PlasticRNN) -> dict[str, float]:
    """Learned eta and summary statistics of the learned plasticity coefficients alpha."""
    alpha = model.synapses.alpha.detach().cpu()
    diagonal = torch.diagonal(alpha)
    off = alpha[~torch.eye(alpha.shape[0], dtype=torch.bool)]
    weight = model.cell.weight.detach().cpu()
    return {
        "eta": float(model.synapses.eta.detach()),
        "alpha_mean": float(alpha.mean()),
        "alpha_std": float(alpha.std()),
        "alpha_abs_mean": float(alpha.abs().mean()),
        "alpha_positive_fraction": float((alpha > 0).float().mean()),
        "alpha_diag_mean": float(diagonal.mean()),
        "alpha_offdiag_mean": float(off.mean()),
        "w_abs_mean": float(weight.abs().mean()),
    }


def _train(variant: str, config: Config, run_dir: RunDirectory) -> nn.Module:
    """Train one variant in its own phase, logging the loss and the erased-bit error of every batch."""
    device = run_dir.device
    model = make_network(variant, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    # The same training episodes for both variants.
    generator = torch.Generator().manual_seed(1000 * run_dir.seed + 1)
    run_dir.track(model=model, optimizer=optimizer, generator=generator)
    for step in run_dir.steps(config.steps, phase=variant, checkpoint_every=config.checkpoint_every,
                              desc=f"pattern-completion {variant}"):
        batch = _draw(config, config.batch_size, generator, device)
        output = _final_output(model, episode_inputs(batch, config), config.pattern_size)
        loss = (output - batch.target).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        error = bit_error_rate(output.detach(), batch.target, batch.test_mask).mean()
        run_dir.log(step, **{f"loss_{variant}": loss.detach(), f"erased_error_{variant}": error})
    return model


def _plot_learning_curves(run_dir: RunDirectory, config: Config) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    colors = {"plastic": "tab:blue", "nonplastic": "tab:red"}
    labels = {"plastic": "plastic RNN (W, alpha, eta)", "nonplastic": "non-plastic RNN (W)"}
    for variant in VARIANTS:
        for ax, name in zip(axes, ("loss", "erased_error"), strict=True):
            steps, values = metric_series(run_dir.metrics, f"{name}_{variant}")
            if len(steps) == 0:
                continue
            ax.plot(steps, values, color=colors[variant], alpha=0.25, lw=0.8)
            ax.plot(steps, smooth_curve(values), color=colors[variant], lw=1.8, label=labels[variant])
    axes[0].set_title("training loss (MSE of the final state)")
    axes[1].set_title("fraction of erased bits wrong (training batches)")
    axes[1].axhline(CHANCE, color="gray", ls=":", lw=1, label="chance")
    for ax in axes:
        ax.set_xlabel(f"training step ({config.batch_size} episodes each)")
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    fig.suptitle(f"Pattern completion: {config.num_patterns} patterns of {config.pattern_size} bits, "
                 f"{round(config.erase_fraction * 100)}% erased")
    run_dir.save_figure(fig, "learning_curves")


@torch.no_grad()
def _plot_example(run_dir: RunDirectory, config: Config, models: dict[str, nn.Module]) -> None:
    """One fresh episode: the patterns, the degraded cue, each network's completion and the target."""
    from matplotlib.figure import Figure

    generator = torch.Generator().manual_seed(1000 * run_dir.seed + 3)
    batch = _draw(config, 1, generator, run_dir.device)
    inputs = episode_inputs(batch, config)
    rows = [batch.patterns[0, p].cpu() for p in range(config.num_patterns)]
    names = [f"pattern {p + 1}" + (" (tested)" if p == int(batch.test_index[0]) else "")
             for p in range(config.num_patterns)]
    cue = batch.inputs[0, -1].cpu()
    rows.append(cue)
    names.append("degraded cue (0 = erased)")
    for variant, model in models.items():
        output = _final_output(model, inputs, config.pattern_size)[0].cpu()
        rows.append(output)
        wrong = int(((torch.sign(output) != batch.target[0].cpu()) & batch.test_mask[0].cpu()).sum())
        names.append(f"{variant} output ({wrong} erased bits wrong)")
    rows.append(batch.target[0].cpu())
    names.append("target")
    image = torch.stack(rows).numpy()
    fig = Figure(figsize=(10, 0.45 * len(rows) + 1.2))
    ax = fig.subplots()
    ax.imshow(image, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    erased = batch.test_mask[0].cpu().numpy().nonzero()[0]
    ax.scatter(erased, np.full(len(erased), config.num_patterns), marker="x", s=8, color="k", lw=0.6)
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.set_xlabel("bit (red +1, blue -1; x: erased in the cue)")
    ax.set_title("An episode after training: the network must fill in the erased bits of the cue")
    run_dir.save_figure(fig, "example_episode")


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train the plastic and the non-plastic network on the same episodes, evaluate both on fresh ones.

    Returns the per-variant evaluation metrics (``{variant}_erased_error``, ...), the plastic network's
    learned eta and alpha statistics (``plastic_eta``, ``plastic_alpha_*``) and the chance level.
    """
    metrics: dict[str, Any] = {"chance_error": CHANCE}
    models: dict[str, nn.Module] = {}
    for variant in VARIANTS:
        model = _train(variant, config, run_dir)
        models[variant] = model
        for key, value in evaluate(model, config, 1000 * run_dir.seed + 2, run_dir.device).items():
            metrics[f"{variant}_{key}"] = value
        if variant == "plastic":
            assert isinstance(model, PlasticRNN)
            for key, value in plasticity_stats(model).items():
                metrics[f"plastic_{key}"] = value
        metrics[f"{variant}_parameters"] = count_parameters(model)
    _plot_learning_curves(run_dir, config)
    _plot_example(run_dir, config, models)
    return metrics


# ---------------------------------------------------------------------------------------------- claims
PLASTIC_MAX_ERROR = 0.05
NONPLASTIC_MIN_ERROR = 0.25


def _plastic_completes(m: dict[str, Any]) -> tuple[bool, Any]:
    error = m["plastic_erased_error"]
    return error <= PLASTIC_MAX_ERROR, {"plastic_erased_error": error}


def _nonplastic_fails(m: dict[str, Any]) -> tuple[bool, Any]:
    plastic, nonplastic = m["plastic_erased_error"], m["nonplastic_erased_error"]
    passed = nonplastic >= NONPLASTIC_MIN_ERROR and nonplastic - plastic >= 0.2
    return passed, {"nonplastic_erased_error": nonplastic, "plastic_erased_error": plastic,
                    "chance": CHANCE}


CLAIMS = [
    Claim(PAPER,
          "A plastic RNN whose only learned parameters are W, alpha and eta learns to complete a pattern "
          "from half its bits: after training, on fresh episodes, at most 5% of the erased bits are wrong "
          "(the paper reports near-perfect completion).",
          _plastic_completes),
    Claim(PAPER,
          "A non-plastic RNN of the same size and equations (alpha = 0) fails: at least 25% of the erased "
          "bits are wrong (chance is 50%), at least 0.2 more than the plastic network.",
          _nonplastic_fails),
]

EXPERIMENT = Experiment(
    name="pattern-completion",
    paper=PAPER,
    description=("Binary patterns shown a few times each, then one with half its bits erased: a plastic RNN "
                 "(learned W, alpha, eta) completes it through its Hebbian traces; a non-plastic RNN of the "
                 "same size cannot."),
    config_class=Config,
    budgets={
        "quick": Config(),
        # The authors' simple.py: 1000 bits, 5 patterns, single episodes, Adam 3e-4, 2000 episodes.
        "full": Config(pattern_size=1000, num_patterns=5, batch_size=1, steps=2000, lr=3e-4, eval_batches=10,
                       eval_batch_size=100, checkpoint_every=100),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.0,
    main_metric="erased_error_plastic",
    tags=("plasticity", "supervised"),
)
