"""Quantised networks on MNIST: 1-bit weights with 2-bit or 1-bit activations against the same float network.

Hubara, Courbariaux, Soudry, El-Yaniv & Bengio 2017, "Quantized neural networks: training neural networks
with low precision weights and activations" (JMLR). Networks of :mod:`neuroplastic.quantization.networks`
(the paper's layout: quantised layer -> batch norm, activations quantised at the next layer's input, the
first layer's input kept real) trained on the embedded MNIST sample (4,000 train / 1,000 test images,
:func:`neuroplastic.data.load_mnist_sample_splits`) with Adam, as the paper, the learning rate decayed
exponentially from ``lr`` to ``lr_final`` over the epochs, batch 100, no dropout or augmentation:

- ``float``: the same layers with real weights and ReLU activations;
- ``w1a2``: binary weights, 2-bit activations (levels {0, 1/3, 2/3, 1}), gated STE, latent weights clipped
  to [-1, 1] after every step (:class:`~neuroplastic.quantization.LatentWeightClipping`);
- ``w1a1``: binary weights and activations (BinaryNet), gated STE, latent clipping;
- ``w1a1_identity`` (MLP only): the identity STE and no latent clipping (the defect of a popular reference
  implementation), trained from ``ste_repeats`` initialisations, as is ``w1a1``, to compare the two STEs on
  their means.

Packed inference: the trained MLPs (``w1a2``, ``w1a1``) are packed (:func:`~neuroplastic.quantization.
pack_model`: binary weights 32 per int32 word, XNOR/AND-popcount kernels; the first layer keeps its real input
and float product) and their test predictions compared with the float-simulated quantised model's.

The paper's MNIST MLP is 3 x 4096 hidden units (with dropout, 1000 epochs, lr 3e-3 -> 3e-7 on 60,000
images); the full budget uses 3 x 4096 units and 100 epochs on the 4,000 embedded images. Deviations: the
4,000-image sample instead of MNIST's 60,000, far fewer epochs, no dropout; the float baseline uses ReLU.
Measured results: ``docs/results/quantized-nets.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic.data import load_mnist_sample_splits
from neuroplastic.quantization import LatentWeightClipping, pack_model, quantized_cnn, quantized_layers, quantized_mlp
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param
from neuroplastic.runs.plots import metric_series

__all__ = ["Config", "run", "EXPERIMENT", "VARIANTS", "MARGIN_POINTS", "STE_MARGIN_POINTS"]

PAPER = ("Hubara, Courbariaux, Soudry, El-Yaniv & Bengio 2017, Quantized neural networks: training neural "
         "networks with low precision weights and activations (JMLR)")
VARIANTS = {  # name: (weight_bits, input_bits, ste, latent clipping)
    "float": (None, None, "gated", False),
    "w1a2": (1, 2, "gated", True),
    "w1a1": (1, 1, "gated", True),
    "w1a1_identity": (1, 1, "identity", False),
}
COLORS = {"float": "black", "w1a2": "tab:blue", "w1a1": "tab:green", "w1a1_identity": "tab:red"}
MARGIN_POINTS = 2.0
"""Claim 1: 1W2A test accuracy at most this many percentage points below float's."""
STE_MARGIN_POINTS = 0.5
"""Claim 2: mean gated-STE accuracy at least the identity STE's minus this many points (seed noise)."""


@dataclass
class Config:
    """Data, networks and training of the quantized-nets experiment."""

    train_size: int = param(4000, minimum=1, maximum=4000)
    hidden: tuple[int, ...] = param((256, 256, 256), minimum=1, min_length=1)
    channels: tuple[int, ...] = param((16, 32), minimum=1, min_length=1, max_length=2)
    mlp_epochs: int = param(12, minimum=1)
    cnn_epochs: int = param(4, minimum=0)
    batch_size: int = param(100, minimum=1)
    lr: float = param(3e-3, minimum=0, exclusive_minimum=True)
    lr_final: float = param(3e-4, minimum=0, exclusive_minimum=True)
    ste_repeats: int = param(3, minimum=1)

    def check(self) -> None:
        if self.lr_final > self.lr:
            raise config_error(self, "lr_final", f"at most lr ({self.lr})")


def epoch_lr(config: Config, epochs: int, epoch: int) -> float:
    """Exponential decay from lr (first epoch) to lr_final (last epoch)."""
    return config.lr * (config.lr_final / config.lr) ** (epoch / max(1, epochs - 1))


def _build(net: str, variant: str, config: Config) -> nn.Module:
    weight_bits, input_bits, ste, _ = VARIANTS[variant]
    if net == "mlp":
        return quantized_mlp(784, config.hidden, 10, weight_bits=weight_bits, input_bits=input_bits, ste=ste)
    return quantized_cnn(config.channels, 10, weight_bits=weight_bits, input_bits=input_bits, ste=ste)


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch: int = 500) -> Tensor:
    model.eval()
    return torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])


def _latent_stats(model: nn.Module) -> dict[str, float]:
    weights = torch.cat([m.weight.detach().abs().flatten() for m in quantized_layers(model).values()])
    return {"latent_max_abs": float(weights.max()), "latent_beyond_1": float((weights > 1).float().mean())}


def _train(net: str, variant: str, repeat: int, config: Config, run_dir: RunDirectory,
           data: tuple[Tensor, ...]) -> nn.Module:
    x, y, x_test, y_test = data
    if net == "cnn":
        x, x_test = x.view(-1, 1, 28, 28), x_test.view(-1, 1, 28, 28)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * run_dir.seed + 10 * repeat + (net == "cnn"))  # same init for every variant
        model = _build(net, variant, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    tracked: dict[str, Any] = {"model": model, "optimizer": optimizer}
    if VARIANTS[variant][3]:
        tracked["clipping"] = LatentWeightClipping(model, optimizer)
    batches = torch.Generator().manual_seed(1000 * run_dir.seed + 100 + repeat)  # same batches for every variant
    run_dir.track(batches=batches, **tracked)
    epochs = config.mlp_epochs if net == "mlp" else config.cnn_epochs
    name = f"{net}_{variant}" + (f"_r{repeat}" if repeat else "")
    for epoch in run_dir.steps(epochs, phase=name, checkpoint_every=4, desc=f"quantized-nets {name}"):
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(config, epochs, epoch)
        model.train()
        order = torch.randperm(len(x), generator=batches)
        total = 0.0
        for start in range(0, len(x), config.batch_size):
            index = order[start:start + config.batch_size]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        test_acc = float((_predict(model, x_test) == y_test).float().mean())
        run_dir.log(epoch + 1, **{f"test_acc_{name}": test_acc, f"loss_{name}": total / len(x)})
        run_dir.state[f"acc_{name}"] = test_acc
    return model


def _packed_metrics(model: nn.Module, variant: str, x_test: Tensor, y_test: Tensor) -> dict[str, float]:
    simulated = _predict(model, x_test)
    packed = _predict(pack_model(model), x_test)
    return {f"mlp_{variant}_packed_agreement": float((packed == simulated).float().mean()),
            f"mlp_{variant}_packed_acc": float((packed == y_test).float().mean()),
            f"mlp_{variant}_simulated_acc": float((simulated == y_test).float().mean())}


def _plot(run_dir: RunDirectory, config: Config, metrics: dict[str, Any], latents: dict[str, Tensor]) -> None:
    from matplotlib.figure import Figure

    nets = ["mlp"] + (["cnn"] if config.cnn_epochs else [])
    fig = Figure(figsize=(5.5 * len(nets) + 5, 3.8))
    axes = fig.subplots(1, len(nets) + 1)
    for ax, net in zip(axes, nets, strict=False):
        for variant in VARIANTS:
            steps, values = metric_series(run_dir.metrics, f"test_acc_{net}_{variant}")
            if len(steps):
                ax.plot(steps, values, "o-", ms=3, color=COLORS[variant], label=variant)
        ax.set_title(f"{net.upper()}: test accuracy (seed {run_dir.seed})")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    for variant, weights in latents.items():
        axes[-1].hist(weights.numpy(), bins=80, histtype="step", color=COLORS[variant], label=variant, log=True)
    axes[-1].set_title("MLP 1W1A latent weights after training")
    axes[-1].set_xlabel("latent weight")
    axes[-1].legend(fontsize=8)
    run_dir.save_figure(fig, "accuracy_and_latents")


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train every (network, variant); return test accuracies, the STE comparison and the packed agreement."""
    x, y, x_test, y_test = load_mnist_sample_splits(test_fraction=0.2, seed=0)
    data = (x[:config.train_size], y[:config.train_size], x_test, y_test)
    metrics: dict[str, Any] = {}
    latents: dict[str, Tensor] = {}
    for net in ("mlp", "cnn"):
        if net == "cnn" and config.cnn_epochs == 0:
            continue
        for variant in ("float", "w1a2", "w1a1"):
            model = _train(net, variant, 0, config, run_dir, data)
            metrics[f"{net}_{variant}_acc"] = run_dir.state[f"acc_{net}_{variant}"]
            if net == "mlp" and variant != "float":
                metrics.update(_packed_metrics(model, variant, x_test, y_test))
            if net == "mlp" and variant == "w1a1":
                metrics.update({f"mlp_w1a1_{k}": v for k, v in _latent_stats(model).items()})
                latents["w1a1"] = torch.cat([m.weight.detach().flatten() for m in quantized_layers(model).values()])
    gated, identity = [metrics["mlp_w1a1_acc"]], []
    for repeat in range(config.ste_repeats):
        if repeat:
            _train("mlp", "w1a1", repeat, config, run_dir, data)
            gated.append(run_dir.state[f"acc_mlp_w1a1_r{repeat}"])
        model = _train("mlp", "w1a1_identity", repeat, config, run_dir, data)
        identity.append(run_dir.state["acc_mlp_w1a1_identity" + (f"_r{repeat}" if repeat else "")])
        if repeat == 0:
            metrics.update({f"mlp_w1a1_identity_{k}": v for k, v in _latent_stats(model).items()})
            latents["w1a1_identity"] = torch.cat([m.weight.detach().flatten()
                                                  for m in quantized_layers(model).values()])
    metrics.update(mlp_w1a1_gated_mean=float(np.mean(gated)), mlp_w1a1_identity_mean=float(np.mean(identity)),
                   mlp_w1a1_gated_min=float(np.min(gated)), mlp_w1a1_identity_max=float(np.max(identity)),
                   mlp_w1a1_identity_acc=identity[0])
    _plot(run_dir, config, metrics, latents)
    return metrics


# ---------------------------------------------------------------------------------------------- claims
def _w1a2_near_float(m: dict[str, Any]) -> tuple[bool, Any]:
    nets = [net for net in ("mlp", "cnn") if f"{net}_float_acc" in m]
    gaps = {f"{net}_gap_points": round(100 * (m[f"{net}_float_acc"] - m[f"{net}_w1a2_acc"]), 2) for net in nets}
    measured = {**{f"{net}_{v}_acc": m[f"{net}_{v}_acc"] for net in nets for v in ("float", "w1a2")}, **gaps}
    return all(gap <= MARGIN_POINTS for gap in gaps.values()), measured


def _gated_at_least_identity(m: dict[str, Any]) -> tuple[bool, Any]:
    gated, identity = m["mlp_w1a1_gated_mean"], m["mlp_w1a1_identity_mean"]
    return gated >= identity - STE_MARGIN_POINTS / 100, {
        "gated_clip_mean": gated, "identity_noclip_mean": identity,
        "difference_points": round(100 * (gated - identity), 2),
        "identity_latent_max_abs": m["mlp_w1a1_identity_latent_max_abs"]}


def _packed_equal(m: dict[str, Any]) -> tuple[bool, Any]:
    measured = {f"{v}_{k}": m[f"mlp_{v}_{k}"] for v in ("w1a2", "w1a1")
                for k in ("packed_agreement", "packed_acc", "simulated_acc")}
    held = all(m[f"mlp_{v}_packed_agreement"] == 1.0 and m[f"mlp_{v}_packed_acc"] == m[f"mlp_{v}_simulated_acc"]
               for v in ("w1a2", "w1a1"))
    return held, measured


CLAIMS = [
    Claim(PAPER,
          "1-bit weights with 2-bit activations train to an accuracy comparable to the float network: the 1W2A "
          f"test accuracy is at most {MARGIN_POINTS:g} percentage points below the float network's (MLP, and the "
          "small CNN when trained), same optimiser, epochs and batches.",
          _w1a2_near_float),
    Claim(PAPER,
          "The gated straight-through estimator with latent weights clipped to [-1, 1] is at least as accurate "
          "as the plain identity STE without clipping: on the 1W1A MLP, its mean test accuracy over the "
          f"repeated initialisations is at least the identity STE's mean minus {STE_MARGIN_POINTS:g} point.",
          _gated_at_least_identity),
    Claim(PAPER,
          "Packed inference (binary weights 32 per word, XNOR/AND-popcount products) gives exactly the "
          "predictions of the float-simulated quantised MLP (1W2A and 1W1A): agreement 1.0, equal accuracy.",
          _packed_equal),
]

EXPERIMENT = Experiment(
    name="quantized-nets",
    paper=PAPER,
    description=("An MLP and a small CNN on the MNIST sample with 1-bit weights and 2-bit or 1-bit activations "
                 "against the same float network; gated vs identity straight-through estimator; packed "
                 "XNOR-popcount inference equal to the simulated quantised model."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(hidden=(4096, 4096, 4096), channels=(128, 256), mlp_epochs=100, cnn_epochs=50,
                       lr_final=3e-5, ste_repeats=5),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=2.5,
    main_metric="test_acc_mlp_w1a2",
    tags=("quantization", "supervised"),
)
