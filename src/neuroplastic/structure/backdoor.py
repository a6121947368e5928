"""Backdoor measures and channel-pruning baselines, beside RNP (:mod:`neuroplastic.structure.rnp`).

- :func:`attack_success_rate`: the fraction of triggered images (of classes other than the target) that a
  model classifies as the target (BadNets, Gu et al. 2017), exact ``hits / N`` like
  :func:`neuroplastic.evaluation.accuracy`; :func:`backdoor_scores`: clean accuracy and ASR together.
- BatchNorm statistics: :func:`batch_statistics_accuracy` (the accuracy with every BatchNorm normalising
  by the evaluated batch, as a train-mode defence such as RNP's recovery sees the model) and
  :func:`recalibrated_copy` (running statistics re-estimated on a few clean images).
- Which units to prune: :func:`activation_units` (the least active channels on clean data: the pruning
  step of Fine-Pruning, Liu, Dolan-Gavitt & Garg 2018), :func:`random_units`, and the trigger oracle
  :func:`trigger_ranking` (channels ranked by how much the known trigger raises them; it measures how
  concentrated a backdoor is) with :func:`oracle_counts` and :func:`oracle_curve` (the three in one call:
  :func:`trigger_oracle`).
- Pruning: :func:`pruned_copy` (a copy of a model with units pruned by
  :func:`~neuroplastic.structure.neuron_masks.prune_units`), :func:`unit_pruning_costs` (what pruning each
  unit alone costs, with stored and with batch statistics), :func:`lowest_mask_units`, and
  :func:`threshold_sweep` (prune by mask threshold, with baselines that prune as many units per layer).

Units are channels of a layer's output ``[B, U, ...]`` (dimension 1): BatchNorm, Conv or Linear layers,
named as in ``model.named_modules()``. Images ``[N, C, H, W]``, labels ``[N]``. Evaluations run in eval
mode, without gradients, in batches of ``batch_size`` on the model's device.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from neuroplastic._checks import check_int, check_number
from neuroplastic.evaluation import accuracy
from neuroplastic.structure.neuron_masks import num_units, prune_units

__all__ = ["attack_success_rate", "backdoor_scores", "batch_statistics_accuracy", "recalibrated_copy", "pruned_copy",
           "mean_activations", "activation_units", "random_units", "trigger_ranking", "oracle_counts",
           "oracle_curve", "trigger_oracle", "lowest_mask_units", "unit_pruning_costs", "threshold_sweep"]


def attack_success_rate(model: nn.Module, triggered: Tensor, target: int, *, batch_size: int = 500) -> float:
    """The fraction of ``triggered`` images ``[N, C, H, W]`` (of classes other than ``target``) that ``model``
    (in eval mode) classifies as ``target``: exact ``hits / N``."""
    labels = torch.full((triggered.shape[0],), int(target), dtype=torch.long, device=triggered.device)
    return accuracy(model, triggered, labels, batch_size=batch_size)


def backdoor_scores(model: nn.Module, images: Tensor, labels: Tensor, triggered: Tensor, target: int, *,
                    batch_size: int = 500) -> dict[str, float]:
    """A (defended) model's two figures: ``{"clean_acc": accuracy on images [N, C, H, W] / labels [N],
    "asr": attack_success_rate on triggered [M, C, H, W]}`` (both exact fractions, eval mode)."""
    return {"clean_acc": accuracy(model, images, labels, batch_size=batch_size),
            "asr": attack_success_rate(model, triggered, target, batch_size=batch_size)}


@torch.no_grad()
def batch_statistics_accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """The accuracy of ``model`` on ``images [N, C, H, W]`` with every BatchNorm layer normalising by the
    statistics of these N images (one batch, train mode), as RNP's recovery sees a model; ``model`` and its
    running statistics are left unchanged (a copy is run). Exact ``correct / N``."""
    probe = copy.deepcopy(model)
    probe.train()
    device = next(probe.parameters()).device
    return int((probe(images.to(device)).argmax(dim=1).cpu() == labels.cpu()).sum()) / images.shape[0]


@torch.no_grad()
def recalibrated_copy(model: nn.Module, images: Tensor, batch_size: int = 500) -> nn.Module:
    """A copy of ``model`` (in eval mode) whose BatchNorm running statistics are re-estimated on ``images``
    (the cumulative average over one pass in batches of ``batch_size``); the weights are unchanged."""
    probe = copy.deepcopy(model)
    norms = [m for m in probe.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for module in norms:
        module.reset_running_stats()
        module.momentum = None
    probe.train()
    device = next(probe.parameters()).device
    for start in range(0, images.shape[0], batch_size):
        probe(images[start:start + batch_size].to(device))
    for module, momentum in zip(norms, momenta, strict=True):
        module.momentum = momentum
    return probe.eval()


def pruned_copy(model: nn.Module, units: Mapping[str, Tensor]) -> nn.Module:
    """A deep copy of ``model`` with ``units`` (layer name -> unit indices) pruned by
    :func:`~neuroplastic.structure.neuron_masks.prune_units`; layers with no index are skipped."""
    pruned = copy.deepcopy(model)
    prune_units(pruned, {name: index for name, index in units.items() if index.numel()})
    return pruned


@torch.no_grad()
def mean_activations(model: nn.Module, layers: Sequence[str], images: Tensor, *,
                     batch_size: int = 500) -> dict[str, Tensor]:
    """Per layer, the mean of ``relu(output)`` over ``images`` and positions, per unit ``[U]`` (model in eval
    mode; the sums are accumulated batch by batch)."""
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    handles = []
    for name in layers:
        module = model.get_submodule(name)

        def hook(mod: nn.Module, inputs: Any, output: Tensor, name: str = name) -> None:
            dims = tuple(i for i in range(output.dim()) if i != 1)
            sums[name] = sums.get(name, 0) + F.relu(output).sum(dim=dims).cpu()
            counts[name] = counts.get(name, 0) + output.numel() // output.shape[1]
        handles.append(module.register_forward_hook(hook))
    check_int("batch_size", batch_size)
    was_training = model.training
    device = next((p.device for p in model.parameters()), images.device)
    model.eval()
    try:  # the model's outputs need not be logits: only the hooks' sums are kept
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                model(images[start:start + batch_size].to(device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return {name: sums[name] / counts[name] for name in layers}


def activation_units(model: nn.Module, layers: Mapping[str, int], images: Tensor, *,
                     batch_size: int = 500) -> dict[str, Tensor]:
    """Per layer, the ``layers[name]`` units with the smallest mean activation ``relu(output)`` on ``images``
    (the dormant channels that Fine-Pruning removes first; ties: lower index first), sorted."""
    means = mean_activations(model, list(layers), images, batch_size=batch_size)
    return {name: torch.sort(torch.argsort(means[name], stable=True)[:count]).values
            for name, count in layers.items()}


def random_units(model: nn.Module, layers: Mapping[str, int], generator: torch.Generator) -> dict[str, Tensor]:
    """Per layer, ``layers[name]`` units drawn at random without repeats (sorted)."""
    result = {}
    for name, count in layers.items():
        size = num_units(model.get_submodule(name))
        result[name] = torch.sort(torch.randperm(size, generator=generator)[:count]).values
    return result


def trigger_ranking(model: nn.Module, layers: Sequence[str], clean: Tensor, triggered: Tensor, *,
                    batch_size: int = 500) -> list[tuple[str, int]]:
    """Every unit of ``layers`` as ``(layer, index)``, ranked by how much the trigger raises its mean
    activation ``relu(output)``: ``mean over triggered - mean over clean`` (largest first, ties in layer order).

    An oracle (it knows the trigger), used to measure how concentrated the backdoor is. ``clean`` and
    ``triggered``: ``[N, C, H, W]`` images (the same images with and without the trigger).
    """
    before = mean_activations(model, layers, clean, batch_size=batch_size)
    after = mean_activations(model, layers, triggered, batch_size=batch_size)
    scores = torch.cat([after[name] - before[name] for name in layers])
    names = [(name, unit) for name in layers for unit in range(before[name].numel())]
    return [names[i] for i in torch.argsort(scores, descending=True, stable=True).tolist()]


def oracle_counts(limit: int) -> list[int]:
    """The numbers of top-ranked channels the trigger oracle prunes, in order: one at a time up to 16, then
    steps of ``count // 8`` (12.5% more each time, so 600 channels take 50 evaluations, not 600), ending
    with ``limit``. The oracle's count is thus exact up to 16 and at most 12.5% above the smallest
    sufficient count beyond."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be an int >= 0, got {limit!r}")
    counts, count = [], 0
    while count < limit:
        counts.append(count)
        count += max(1, count // 8)
    return [*counts, limit]


def oracle_curve(model: nn.Module, ranking: Sequence[tuple[str, int]], counts: Sequence[int],
                 score: Callable[[nn.Module], Mapping[str, float]], *, asr_max: float) -> list[dict[str, float]]:
    """Prune the first ``count`` units of ``ranking`` from a copy of ``model`` for each of ``counts`` in turn,
    and score each copy: rows ``{"pruned": count, **score(copy)}``, stopping after the first whose
    ``score(...)["asr"]`` is below ``asr_max`` (or after the last count)."""
    curve: list[dict[str, float]] = []
    for count in counts:
        chosen: dict[str, list[int]] = {}
        for name, unit in ranking[:count]:
            chosen.setdefault(name, []).append(unit)
        pruned = pruned_copy(model, {name: torch.tensor(index) for name, index in chosen.items()})
        curve.append({"pruned": count, **score(pruned)})
        if curve[-1]["asr"] < asr_max:
            break
    return curve


def trigger_oracle(model: nn.Module, layers: Sequence[str], clean: Tensor, triggered: Tensor,
                   score: Callable[[nn.Module], Mapping[str, float]], *, max_fraction: float, asr_max: float,
                   batch_size: int = 500) -> tuple[list[tuple[str, int]], list[dict[str, float]]]:
    """The trigger oracle: rank the units of ``layers`` by the trigger's effect (:func:`trigger_ranking` on
    ``clean`` and ``triggered`` images), then prune the top ones in growing counts (:func:`oracle_counts` up to
    ``max(1, int(max_fraction * units))``) until ``score(...)["asr"] < asr_max`` (:func:`oracle_curve`).

    Returns ``(ranking, curve)``: every unit as ``(layer, index)`` (most raised first) and the curve's rows.
    """
    check_number("max_fraction", max_fraction, minimum=0, exclusive_minimum=True, maximum=1)
    ranking = trigger_ranking(model, layers, clean, triggered, batch_size=batch_size)
    counts = oracle_counts(max(1, int(max_fraction * len(ranking))))
    return ranking, oracle_curve(model, ranking, counts, score, asr_max=asr_max)


def lowest_mask_units(masks: Mapping[str, Tensor], units: Mapping[str, Tensor], count: int) -> dict[str, Tensor]:
    """Of the ``units`` per layer, the ``count`` whose ``masks`` are smallest (ties: layer order, then index),
    per layer of ``units`` (sorted; empty where none is chosen)."""
    check_int("count", count, minimum=0)
    pairs = [(float(masks[name][unit]), position, int(unit), name)
             for position, (name, index) in enumerate(units.items()) for unit in index.tolist()]
    chosen = sorted(pairs)[:count]
    return {name: torch.tensor(sorted(unit for _, _, unit, layer in chosen if layer == name), dtype=torch.long)
            for name in units}


def unit_pruning_costs(model: nn.Module, units: Mapping[str, Tensor], images: Tensor, labels: Tensor, *,
                       batch_size: int = 500) -> list[dict[str, Any]]:
    """For each of ``units``, the accuracy drop (points) on ``images``/``labels`` of pruning it alone:
    ``drop_eval`` in eval mode (stored running statistics, as a pruned model is used) and ``drop_batchstats``
    with the batch statistics of ``images`` (as RNP's recovery sees it). Rows ``{layer, unit, drop_eval,
    drop_batchstats}`` in the order of ``units``."""
    base_eval = accuracy(model, images, labels, batch_size=batch_size)
    base_batch = batch_statistics_accuracy(model, images, labels)
    rows = []
    for name, index in units.items():
        for unit in index.tolist():
            pruned = pruned_copy(model, {name: torch.tensor([unit])})
            rows.append({"layer": name, "unit": int(unit),
                         "drop_eval": 100 * (base_eval - accuracy(pruned, images, labels, batch_size=batch_size)),
                         "drop_batchstats": 100 * (base_batch - batch_statistics_accuracy(pruned, images, labels))})
    return rows


def threshold_sweep(model: nn.Module, units_at: Callable[[float], Mapping[str, Tensor]], thresholds: Sequence[float],
                    score: Callable[[nn.Module], Mapping[str, float]], *,
                    baselines: Mapping[str, Callable[[dict[str, int]], Mapping[str, Tensor]]] | None = None,
                    ) -> list[dict[str, float]]:
    """Prune ``units_at(threshold)`` (e.g. RNP's masks <= threshold, the reference's ``evaluate_by_threshold``)
    from a copy of ``model`` for each threshold and score it; each baseline ``name -> choose(counts)`` then
    prunes as many units per layer (``counts``: layer -> number), chosen its own way.

    Rows ``{"threshold", "pruned" (total units), **score, **{f"{name}_{key}": ...}}``, one per threshold. The
    baselines are called in order, once per threshold, so a seeded baseline draws the same numbers each time.
    """
    rows = []
    for threshold in thresholds:
        chosen = units_at(threshold)
        counts = {name: int(index.numel()) for name, index in chosen.items()}
        row: dict[str, float] = {"threshold": threshold, "pruned": sum(counts.values())}
        choices = {"": chosen, **{f"{name}_": choose(counts) for name, choose in (baselines or {}).items()}}
        for prefix, units in choices.items():
            row.update({f"{prefix}{key}": value for key, value in score(pruned_copy(model, units)).items()})
        rows.append(row)
    return rows
