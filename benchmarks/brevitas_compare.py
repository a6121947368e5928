"""Benchmark: the quantized-nets MLP at 1W1A and 1W2A, ours against the same network in Brevitas's layers.

The network, data and training of the ``quantized-nets`` experiment's MLP (quick budget, its ``Config``):
784-256-256-256-10, each layer a binary-weight linear layer followed by ``BatchNorm1d`` (the last one giving
the scores), the first layer on the real pixels, every other layer's input quantised (1W1A: sign; 1W2A:
``round(3 clip(x, 0, 1)) / 3``); the embedded MNIST sample (``load_mnist_sample_splits(test_fraction=0.2,
seed=0)``, 4,000 / 1,000 images); Adam, batch 100, the learning rate decayed exponentially from 3e-3 to 3e-4
over 12 epochs; initial weights drawn under ``torch.manual_seed(1000 seed)`` and batches under
``1000 seed + 100``, as the experiment's ``mlp_w1a1`` / ``mlp_w1a2`` runs of that seed.

- ours: :func:`neuroplastic.quantization.quantized_mlp` (gated STE) with
  :class:`~neuroplastic.quantization.LatentWeightClipping` (latent weights clipped to [-1, 1] after each step);
- Brevitas: ``brevitas.nn.QuantLinear(weight_quant=SignedBinaryWeightPerTensorConst)`` (weights
  ``0.1 sign(w)``: +-0.1, not +-1; the latent weight clamped in place to [-0.1, 0.1] at every forward, identity
  STE through the clamp and the sign), activations by ``QuantIdentity`` in front of every layer but the first:
  ``SignedBinaryActPerTensorConst`` (sign, gradient zero outside [-1, 1]) or, for 1W2A, an unsigned 2-bit
  quantiser with constant scale (``Uint8ActPerTensorFloat`` with ``bit_width=2``, ``scaling_impl_type=CONST``,
  ``max_val = scaling_const = 1``: levels {0, 1/3, 2/3, 1}). Same BatchNorm1d layers, float biases.
  ``--weight-scales 0.1,1`` also trains Brevitas with ``scaling_const = 1`` (+-1 weights, latent clamp at
  [-1, 1]) to separate the weight scale from the rest. Brevitas starts from our initial weights (copied).

One JSON line per (lib, case, weight scale, seed): ``lib``, ``case`` (``w1a1``/``w1a2``), ``seed``,
``test_acc`` (after the last epoch), ``train_sec`` (wall time of training, one thread), and on Brevitas's
lines ``ours_test_acc`` and ``diff_points`` (100 x (Brevitas - ours), same run); ``weight_scale`` (the binary
weights' magnitude) and ``latent_at_bound`` (the share of latent weights at the clipping bound, +-1 for ours,
+-weight_scale for Brevitas, after training) on every line. Without
Brevitas (never a dependency of neuroplastic: ``bash benchmarks/bench_env.sh`` installs it in ``.bench-venv``)
only our lines and one ``skipped`` line are printed.

    .bench-venv/bin/python benchmarks/brevitas_compare.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic.data import load_mnist_sample_splits
from neuroplastic.experiments.quantized_nets import Config, epoch_lr
from neuroplastic.quantization import LatentWeightClipping, quantized_mlp

CASES = {"w1a1": 1, "w1a2": 2}  # case: input (activation) bits


def ours_model(config: Config, bits: int, seed: int) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * seed)  # the experiment's initialisation of its repeat 0
        return quantized_mlp(784, config.hidden, 10, weight_bits=1, input_bits=bits, ste="gated")


def brevitas_model(config: Config, bits: int, weight_scale: float, init: nn.Sequential) -> nn.Sequential:
    """The same MLP in Brevitas's layers, with ``init``'s (our model's) initial weights and biases."""
    from brevitas.inject.enum import ScalingImplType
    from brevitas.nn import QuantIdentity, QuantLinear
    from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
    from brevitas.quant.scaled_int import Uint8ActPerTensorFloat

    class BinaryWeight(SignedBinaryWeightPerTensorConst):
        scaling_const = weight_scale  # Brevitas's default 0.1

    class TwoBitAct(Uint8ActPerTensorFloat):  # unsigned levels {0, 1/3, 2/3, 1}
        bit_width = 2
        scaling_impl_type = ScalingImplType.CONST
        scaling_const = 1.0
        max_val = 1.0

    sizes = [784, *config.hidden, 10]
    ours_linear = [m for m in init if isinstance(m, nn.Linear)]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        if i > 0:
            act = SignedBinaryActPerTensorConst if bits == 1 else TwoBitAct
            layers.append(QuantIdentity(act_quant=act, return_quant_tensor=False))
        linear = QuantLinear(sizes[i], sizes[i + 1], bias=True, weight_quant=BinaryWeight)
        with torch.no_grad():
            linear.weight.copy_(ours_linear[i].weight)
            linear.bias.copy_(ours_linear[i].bias)
        layers += [linear, nn.BatchNorm1d(sizes[i + 1])]
    return nn.Sequential(*layers)


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def at_bound(model: nn.Module, bound: float) -> float:
    """Share of the binary layers' latent weights at (or beyond) the clipping bound after training."""
    weights = torch.cat([m.weight.detach().abs().flatten() for m in model if isinstance(m, nn.Linear)])
    return round(float((weights >= bound * (1 - 1e-6)).float().mean()), 4)


def train(model: nn.Module, config: Config, seed: int, data: tuple[Tensor, ...], clip: bool) -> dict[str, Any]:
    x, y, x_test, y_test = data
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if clip:
        LatentWeightClipping(model, optimizer)
    batches = torch.Generator().manual_seed(1000 * seed + 100)  # the experiment's batches of its repeat 0
    start = time.perf_counter()
    for epoch in range(config.mlp_epochs):
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(config, config.mlp_epochs, epoch)
        model.train()
        order = torch.randperm(len(x), generator=batches)
        for first in range(0, len(x), config.batch_size):
            index = order[first:first + config.batch_size]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    return {"test_acc": round(accuracy(model, x_test, y_test), 4), "train_sec": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cases", default="w1a1,w1a2")
    parser.add_argument("--weight-scales", default="0.1,1", help="Brevitas's binary weight scales (its default 0.1)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the experiment's quick MLP epochs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = Config() if args.epochs is None else Config(mlp_epochs=args.epochs)
    try:
        import brevitas
    except ImportError as error:
        brevitas = None
        print(json.dumps({"lib": "brevitas", "skipped": f"not importable ({type(error).__name__}: {error})"}),
              flush=True)
    x, y, x_test, y_test = load_mnist_sample_splits(test_fraction=0.2, seed=0)
    data = (x[:config.train_size], y[:config.train_size], x_test, y_test)
    for case in args.cases.split(","):
        bits = CASES[case]
        for seed in (int(s) for s in args.seeds.split(",")):
            model = ours_model(config, bits, seed)
            ours = train(model, config, seed, data, clip=True)
            print(json.dumps({"lib": "neuroplastic", "case": case, "seed": seed, "weight_scale": 1.0, **ours,
                              "latent_at_bound": at_bound(model, 1.0)}), flush=True)
            if brevitas is None:
                continue
            for scale in (float(s) for s in args.weight_scales.split(",")):
                peer = brevitas_model(config, bits, scale, ours_model(config, bits, seed))
                row = train(peer, config, seed, data, clip=False)
                print(json.dumps({"lib": "brevitas", "version": brevitas.__version__, "case": case, "seed": seed,
                                  "weight_scale": scale, **row, "latent_at_bound": at_bound(peer, scale),
                                  "ours_test_acc": ours["test_acc"],
                                  "diff_points": round(100 * (row["test_acc"] - ours["test_acc"]), 2)}),
                      flush=True)


if __name__ == "__main__":
    main()
