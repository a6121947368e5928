"""Sparse training on MNIST: GraNet against GMP, SET and RigL at 80-98% sparsity, with the dense network as reference.

Liu et al. 2021, "Sparse training via boosting pruning plasticity with neuroregeneration" (NeurIPS), GraNet's
headline comparison (their Tables 1-2, CIFAR and ImageNet) scaled down to the 5,000-image MNIST sample
that ships with the library (4,000 training, 1,000 test images), an MLP (LeNet-300-100: 784-300-100-10,
:class:`neuroplastic.models.LeNet300100`) and a small CNN (LeNet-5 with ReLU and max pooling: conv 1->6 5x5,
conv 6->16 5x5, 256-120-84-10, :class:`neuroplastic.models.LeNet5`), both with He initialisation.

Every method trains the same network from the same initial weights on the same batches for the same
number of steps T, with SGD (momentum 0.9, Nesterov, weight decay 5e-4) and a cosine learning rate; all the
networks of one model train in lockstep in one phase. Sparsity is over the conv and linear weights (biases
stay dense); a sparse start scales the kept initial weights by 1/sqrt(layer density) (``scale_init``):
without it LeNet-5 at >= 90% sparsity from a random sparse start never leaves chance accuracy, because no
normalisation layer restores the shrunken signal.

- dense: no masks.
- GMP (Zhu & Gupta 2017): dense start; the density falls on the cubic schedule to the target between step
  0 and t1 = ``prune_end`` * T, every ``delta_t`` steps, one magnitude threshold over all layers.
- SET (Mocanu et al. 2018): ERK masks at the target density from the start; every ``delta_t`` steps each
  layer drops f_t of its active weights by magnitude and regrows as many at random (f0 = 0.3, cosine to 0
  at ``rewire_end`` * T).
- RigL (Evci et al. 2020): as SET, regrowing where the dense gradient is largest.
- GraNet: GMP's schedule and pruning, plus at every update zero-cost neuroregeneration: each layer drops
  r_t of its active weights by magnitude and regrows as many where this step's gradient is largest
  (r0 = 0.5, cosine over the whole training to 0.005, as in the authors' code). Dense-to-sparse by default
  (``granet_initial_density`` 1.0), the variant the paper compares with GMP.

Deviations from the paper: MNIST digits (a 5,000-image sample), LeNet-300-100 and LeNet-5 instead of
CIFAR/ImageNet and VGG/ResNets; 6 (quick) or 100 (full) epochs instead of the paper's 160 on CIFAR, with
``delta_t`` scaled down accordingly; one epoch of linear learning-rate warm-up before the cosine
(``warmup_epochs``; without it the full budget's dense-start CNNs could die in their first steps);
``scale_init`` for sparse starts; the "within 3 points of dense" claim also requires the dense network to
learn (at least 50% test accuracy).

Measured results per seed and budget, why "GraNet >= GMP" is not shown, and the history of the recipe:
``docs/results/sparse-training.md``.

Shapes: MLP input ``[B, 784]``, CNN input ``[B, 1, 28, 28]`` (or ``[B, 784]``); logits ``[B, 10]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic.data import load_mnist_sample
from neuroplastic.evaluation import correct_mask
from neuroplastic.models import LeNet5, LeNet300100
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param
from neuroplastic.structure.sparse_training import GMP, PRUNING_MODES, SET, GraNet, RigL
from neuroplastic.structure.sparsity_manager import SparsityManager

__all__ = ["Config", "MODELS", "METHODS", "build_model", "make_manager", "warmup_steps", "learning_rate", "run",
           "EXPERIMENT"]

REPEAT_SEED_SHIFT = 500_000  # repeat r of seed s seeds from 1000 s + 500,000 r: no collisions for s < 500
PAPER = "Liu et al. 2021, Sparse training via boosting pruning plasticity with neuroregeneration (GraNet)"
MODELS = ("mlp", "cnn")
METHODS = ("gmp", "set", "rigl", "granet")
LABELS = {"dense": "dense", "gmp": "GMP", "set": "SET", "rigl": "RigL", "granet": "GraNet"}
COLORS = {"dense": "black", "gmp": "tab:orange", "set": "tab:green", "rigl": "tab:purple", "granet": "tab:blue"}


@dataclass
class Config:
    """Data, models, training budget and the algorithms' constants.

    The schedule constants follow the papers, scaled to the run's length T: GraNet's authors prune until
    110 of 160 epochs (``prune_end`` 0.69) and anneal the regeneration fraction from 0.5 over the whole run;
    RigL stops rewiring at 75% of training with fraction 0.3. ``delta_t`` = 10 of the quick budget's 378 steps
    gives 26 pruning updates before t1 (GraNet on CIFAR: 43) and 28 rewiring updates for SET and RigL.
    ``warmup_epochs``: the learning rate rises linearly over this many first epochs (0: none; rounded to whole
    steps, see :func:`learning_rate`). The default is one epoch (63 steps of 4,000 images at batch 64):
    without it, dense-start CNNs died in their first steps at the full budget (docs/results/sparse-training.md).
    ``repeats``: every network is trained this many times, from different initial weights, masks and batch
    orders (repeat ``r`` of seed ``s`` uses the seeds of seed ``s`` shifted by ``r``); the reported accuracies
    are the means over the repeats, the per-repeat values are kept (``..._acc_repeats``). Methods are paired
    within a repeat (same initial weights, same batches), so the claims compare paired means.
    """

    models: tuple[str, ...] = param(MODELS, choices=MODELS, min_length=1)
    methods: tuple[str, ...] = param(METHODS, choices=METHODS)
    sparsities: tuple[float, ...] = param((0.8, 0.9, 0.95, 0.98), minimum=0, maximum=1, exclusive_maximum=True)
    test_fraction: float = param(0.2, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    train_images: int = param(4000, minimum=1)
    epochs: int = param(6, minimum=1)
    batch_size: int = param(64, minimum=1)
    lr: float = param(0.05, minimum=0, exclusive_minimum=True)
    warmup_epochs: float = param(1.0, minimum=0)  # and at most epochs (check)
    momentum: float = param(0.9, minimum=0)
    weight_decay: float = param(5e-4, minimum=0)
    delta_t: int = param(10, minimum=1)
    prune_end: float = param(0.69, minimum=0, maximum=1)
    rewire_end: float = param(0.75, minimum=0, maximum=1)
    rewire_fraction: float = param(0.3, minimum=0, maximum=1)
    regrowth_fraction: float = param(0.5, minimum=0, maximum=1)
    regrowth_minimum: float = param(0.005, minimum=0, maximum=1)
    granet_initial_density: float = param(1.0, minimum=0, maximum=1, exclusive_minimum=True)
    pruning: str = param("global", choices=PRUNING_MODES)
    scale_init: bool = True
    log_every: int = param(20, minimum=1)
    checkpoint_every: int = param(200, minimum=1)
    eval_batch_size: int = param(500, minimum=1)
    repeats: int = param(1, minimum=1)

    def check(self) -> None:
        if self.warmup_epochs > self.epochs:
            raise config_error(self, "warmup_epochs", f"at most epochs ({self.epochs}; 0: no warm-up)")


def build_model(name: str) -> nn.Module:
    """The network called ``name``: "mlp" (:class:`~neuroplastic.models.LeNet300100`) or "cnn"
    (:class:`~neuroplastic.models.LeNet5`), with their default sizes (MNIST)."""
    if name == "mlp":
        return LeNet300100()
    if name == "cnn":
        return LeNet5()
    raise ValueError(f"model must be one of {MODELS}, got {name!r}")


def make_manager(method: str, model: nn.Module, optimizer: torch.optim.Optimizer, sparsity: float, total_steps: int,
                 config: Config, seed: int) -> SparsityManager:
    """The sparsity manager of ``method`` at ``sparsity`` for a run of ``total_steps`` optimizer steps."""
    density = 1.0 - sparsity
    prune_end = max(1, round(config.prune_end * total_steps))
    rewire_end = max(1, round(config.rewire_end * total_steps))
    if method == "gmp":
        return GMP(model, optimizer, density, end=prune_end, delta_t=config.delta_t, pruning=config.pruning,
                   seed=seed, scale_init=config.scale_init)
    if method in ("set", "rigl"):
        cls = SET if method == "set" else RigL
        return cls(model, optimizer, density, end=rewire_end, delta_t=config.delta_t,
                   fraction=config.rewire_fraction, distribution="erk", seed=seed, scale_init=config.scale_init)
    if method == "granet":
        return GraNet(model, optimizer, density, end=prune_end, initial_density=config.granet_initial_density,
                      delta_t=config.delta_t, regrowth_fraction=config.regrowth_fraction,
                      regrowth_end=total_steps, regrowth_minimum=config.regrowth_minimum, pruning=config.pruning,
                      distribution="erk", seed=seed, scale_init=config.scale_init)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def warmup_steps(config: Config, steps_per_epoch: int) -> int:
    """The number of warm-up steps: ``round(warmup_epochs * steps_per_epoch)``."""
    return round(config.warmup_epochs * steps_per_epoch)


def learning_rate(step: int, total: int, config: Config, steps_per_epoch: int) -> float:
    """The learning rate at optimizer step ``step`` of ``total``: ``lr * 0.5 * (1 + cos(pi * step / total))``
    (cosine annealing), times ``(step + 1) / W`` during the first ``W`` = :func:`warmup_steps` steps (linear
    warm-up; 0: none). A function of the step only, so a resumed run continues the same schedule."""
    lr = config.lr * 0.5 * (1 + math.cos(math.pi * step / total))
    warmup = warmup_steps(config, steps_per_epoch)
    if step < warmup:
        lr *= (step + 1) / warmup
    return lr


def _key(model: str, method: str, sparsity: float | None) -> str:
    return f"{model}_dense" if sparsity is None else f"{model}_{method}_{round(sparsity * 100)}"


def _train_model(model_name: str, config: Config, run_dir: RunDirectory, data: dict[str, Tensor],
                 repeat: int = 0) -> dict[str, Any]:
    """Train the dense network and every (method, sparsity) variant of ``model_name`` in lockstep, one phase.

    All variants start from the same initial weights and see the same batch at every step (so one
    checkpoint holds them all). Returns each variant's test accuracy and each sparse variant's final density
    (and GraNet's per-layer densities under ``layer_densities``). ``repeat`` shifts every seed (repeat 0 is
    the seed's own run).
    """
    device = run_dir.device
    seed = 1000 * run_dir.seed + REPEAT_SEED_SHIFT * repeat
    x, y = data["x"], data["y"]
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    total = steps_per_epoch * config.epochs
    variants: dict[str, tuple[str, float | None]] = {_key(model_name, "dense", None): ("dense", None)}
    for sparsity in config.sparsities:
        for method in config.methods:
            variants[_key(model_name, method, sparsity)] = (method, sparsity)
    nets: dict[str, tuple[nn.Module, torch.optim.Optimizer, SparsityManager | None]] = {}
    tracked: dict[str, Any] = {}
    for key, (method, sparsity) in variants.items():
        torch.manual_seed(seed + MODELS.index(model_name))  # the same initial weights for all
        model = build_model(model_name).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                    weight_decay=config.weight_decay)
        manager = None
        if sparsity is not None:
            manager = make_manager(method, model, optimizer, sparsity, total, config, seed=seed + 7)
            tracked[f"{key}_sparsity"] = manager
        tracked[f"{key}_model"], tracked[f"{key}_optimizer"] = model, optimizer
        nets[key] = (model, optimizer, manager)
    run_dir.track(**tracked)
    top = max(config.sparsities) if config.sparsities else None
    logged = {key: f"{method}_{round(sparsity * 100)}" if sparsity is not None else "dense"
              for key, (method, sparsity) in variants.items() if sparsity in (None, top)}
    orders: dict[int, Tensor] = {}
    phase = model_name if repeat == 0 else f"{model_name}_repeat{repeat}"
    desc = f"sparse-training {model_name} ({len(nets)} networks)"
    if config.repeats > 1:
        desc += f" repeat {repeat + 1}/{config.repeats}"
    for step in run_dir.steps(total, phase=phase, checkpoint_every=config.checkpoint_every, desc=desc):
        epoch, position = divmod(step, steps_per_epoch)
        if epoch not in orders:  # the batches are a function of the seed and the epoch only
            generator = torch.Generator().manual_seed(seed + 100 + epoch)
            orders = {epoch: torch.randperm(len(x), generator=generator).to(device)}
        batch = orders[epoch][position * config.batch_size:(position + 1) * config.batch_size]
        lr = learning_rate(step, total, config, steps_per_epoch)
        log_now = step % config.log_every == 0 or step == total - 1
        row: dict[str, Any] = {}
        for key, (model, optimizer, manager) in nets.items():
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()  # the manager's hook masks the weights and updates the masks on schedule
            if log_now and key in logged:
                row[f"loss_{logged[key]}"] = loss.detach()
                if manager is not None:
                    row[f"density_{logged[key]}"] = manager.density()
        if log_now and repeat == 0:
            run_dir.log(step, **row)
    result: dict[str, Any] = {}
    hits = {key: correct_mask(model, data["x_test"], data["y_test"], batch_size=config.eval_batch_size)
            for key, (model, _, _) in nets.items()}
    for key, (_, _, manager) in nets.items():
        result[f"{key}_acc"] = int(hits[key].sum()) / len(hits[key])
        if manager is not None:
            result[f"{key}_density"] = manager.density()
            if variants[key][0] == "granet":
                result.setdefault("layer_densities", {})[key] = manager.layer_densities()
    for sparsity in config.sparsities:  # test digits only GraNet gets right, and only the baseline gets right
        granet = _key(model_name, "granet", sparsity)
        for baseline in ("gmp", "set"):
            other = _key(model_name, baseline, sparsity)
            if granet in hits and other in hits:
                result[f"{granet}_vs_{baseline}_discordant"] = [int((hits[granet] & ~hits[other]).sum()),
                                                              int((~hits[granet] & hits[other]).sum())]
    return result


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train dense and sparse networks for every model, method and sparsity; return test accuracies.

    Metrics: ``{model}_dense_acc`` and ``{model}_{method}_{sparsity %}_acc`` (e.g. ``mlp_granet_98_acc``),
    and each sparse run's final overall density ``..._density``.
    """
    device = run_dir.device
    x, y = load_mnist_sample("train", test_fraction=config.test_fraction, seed=0)
    x_test, y_test = load_mnist_sample("test", test_fraction=config.test_fraction, seed=0)
    if config.train_images < len(x):  # a fixed random subset (the sample is ordered by class)
        subset = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:config.train_images]
        x, y = x[subset], y[subset]
    data = {"x": x.to(device), "y": y.to(device), "x_test": x_test.to(device), "y_test": y_test.to(device)}
    metrics: dict[str, Any] = {"train_images": len(x), "test_images": len(x_test), "repeats": config.repeats}
    layer_densities: dict[str, Any] = {}
    for model_name in config.models:
        results = [_train_model(model_name, config, run_dir, data, repeat) for repeat in range(config.repeats)]
        layer_densities.update(results[0].pop("layer_densities", {}))
        for key in results[0]:
            values = [result[key] for result in results]
            if key.endswith("_discordant"):  # summed over the repeats
                metrics[key] = [sum(pair[i] for pair in values) for i in range(2)]
                continue
            metrics[key] = sum(values) / len(values)
            if config.repeats > 1 and key.endswith("_acc"):
                metrics[f"{key}_repeats"] = values
    run_dir.write_json("granet_layer_densities", layer_densities)
    _plot(run_dir, config, metrics)
    return metrics


def _plot(run_dir: RunDirectory, config: Config, metrics: dict[str, Any]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * len(config.models), 4.0))
    axes = fig.subplots(1, len(config.models), squeeze=False)[0]
    positions = list(range(len(config.sparsities)))
    for ax, model_name in zip(axes, config.models, strict=True):
        dense = metrics.get(f"{model_name}_dense_acc")
        if dense is not None:
            ax.axhline(100 * dense, color=COLORS["dense"], ls="--", lw=1.2, label=f"dense ({100 * dense:.1f}%)")
        for method in config.methods:
            values = [metrics.get(f"{_key(model_name, method, s)}_acc") for s in config.sparsities]
            points = [(p, 100 * v) for p, v in zip(positions, values, strict=True) if v is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", color=COLORS[method], label=LABELS[method])
        ax.set_xticks(positions, [f"{round(100 * s)}%" for s in config.sparsities])
        ax.set_xlabel("sparsity of the conv and linear weights")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{model_name.upper()} on MNIST ({metrics['train_images']} training images, "
                     f"{config.epochs} epochs)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    run_dir.save_figure(fig, "accuracy_vs_sparsity")


# ---------------------------------------------------------------------------------------------- claims
DENSE_GAP = 0.03  # GraNet at 90% sparsity within 3 accuracy points of dense
DENSE_LEARNED = 0.5  # the dense network must beat chance (0.1) by far for the gap to mean anything
HIGH_SPARSITIES = (95, 98)


def _granet_at_least(baseline: str):
    def check(m: dict[str, Any]) -> tuple[bool, Any]:
        measured, passed = {}, True
        for model_name in MODELS:
            if f"{model_name}_dense_acc" not in m:
                continue
            for pct in HIGH_SPARSITIES:
                granet, other = m[f"{model_name}_granet_{pct}_acc"], m[f"{model_name}_{baseline}_{pct}_acc"]
                cell = {"granet": granet, baseline: other}
                discordant = m.get(f"{model_name}_granet_{pct}_vs_{baseline}_discordant")
                if discordant is not None and m.get("test_images"):
                    # McNemar: the difference's standard error from the test digits the two classify differently
                    count = m["test_images"] * m.get("repeats", 1)
                    only_granet, only_other = discordant
                    cell.update(discordant=discordant, test_set_standard_error=round(math.sqrt(
                        only_granet + only_other - (only_granet - only_other) ** 2 / count) / count, 4))
                repeats = (m.get(f"{model_name}_granet_{pct}_acc_repeats"),
                           m.get(f"{model_name}_{baseline}_{pct}_acc_repeats"))
                if repeats[0] is not None and repeats[1] is not None:  # paired differences and their standard error
                    diffs = [a - b for a, b in zip(*repeats, strict=True)]
                    mean = sum(diffs) / len(diffs)
                    spread = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
                    cell.update(differences=[round(d, 4) for d in diffs], standard_error=round(spread, 4))
                measured[f"{model_name}_{pct}"] = cell
                passed = passed and granet >= other
        if not measured:
            raise KeyError("no model was run")
        return passed, measured
    return check


def _granet_near_dense(m: dict[str, Any]) -> tuple[bool, Any]:
    measured, passed = {}, True
    for model_name in MODELS:
        if f"{model_name}_dense_acc" not in m:
            continue
        dense, granet = m[f"{model_name}_dense_acc"], m[f"{model_name}_granet_90_acc"]
        learned = dense >= DENSE_LEARNED  # a collapsed dense network (chance: 0.1) would make any gap small
        measured[model_name] = {"dense": dense, "granet_90": granet, "gap": round(dense - granet, 4),
                                "dense_learned": learned}
        passed = passed and learned and dense - granet <= DENSE_GAP
    if not measured:
        raise KeyError("no model was run")
    return passed, measured


CLAIMS = [
    Claim(PAPER, "At the highest sparsities (95% and 98%), GraNet's test accuracy is at least GMP's, for both the "
                 "MLP and the CNN (neuroregeneration improves gradual magnitude pruning).",
          _granet_at_least("gmp")),
    Claim(PAPER, "At the highest sparsities (95% and 98%), GraNet's test accuracy is at least SET's, for both the "
                 "MLP and the CNN.",
          _granet_at_least("set")),
    Claim(PAPER, "At 90% sparsity GraNet is within 3 accuracy points of the dense network, for both the MLP and "
                 "the CNN (and the dense network learned the task: at least 50% test accuracy, chance being 10%).",
          _granet_near_dense),
]

EXPERIMENT = Experiment(
    name="sparse-training",
    paper=PAPER,
    description=("MLP and CNN on the MNIST sample at 80-98% sparsity: dense, GMP, SET, RigL and GraNet with the "
                 "same budget; accuracy against sparsity."),
    config_class=Config,
    budgets={
        "quick": Config(),
        # Closer to the paper: all 4,000 training images for 100 epochs (~6,300 steps), delta_t ~ 1.6% of T.
        "full": Config(epochs=100, delta_t=100, log_every=100, checkpoint_every=500),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=2.5,
    main_metric="loss",
    tags=("structure", "sparse training", "supervised"),
)
