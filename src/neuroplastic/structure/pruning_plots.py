"""Plots of unit pruning for backdoor defences: RNP's masks and histories, threshold sweeps, the trigger
oracle, and what pruning each unit alone costs.

Each function draws on a given matplotlib ``Axes`` (the caller makes and saves the figure), from the outputs
of :class:`~neuroplastic.structure.ReconstructiveNeuronPruning` and :mod:`neuroplastic.structure.backdoor`:

- :func:`plot_unit_masks`: mask values per unit, layer after layer, pruned units marked, the threshold.
- :func:`plot_rnp_history`: accuracy on the clean samples (and a monitor's clean accuracy and ASR) per
  epoch of unlearning, then of mask recovery.
- :func:`plot_threshold_sweep`: clean accuracy and ASR against the pruning threshold
  (:func:`~neuroplastic.structure.backdoor.threshold_sweep` rows), with the baselines.
- :func:`plot_oracle_curve`: the trigger oracle's curve (:func:`~neuroplastic.structure.backdoor.oracle_curve`)
  against the number of units pruned, with the sweep's points.
- :func:`plot_unit_costs`: :func:`~neuroplastic.structure.backdoor.unit_pruning_costs` as paired bars.
- :func:`plot_defence_bars`: clean accuracy and ASR of several models (before and after defences) as paired bars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

__all__ = ["plot_unit_masks", "plot_rnp_history", "plot_threshold_sweep", "plot_oracle_curve", "plot_unit_costs",
           "plot_defence_bars", "short_layer_name"]

_COLORS = ("tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:cyan")


def short_layer_name(name: str) -> str:
    """A short label for a BatchNorm layer: ``blocks.2.bn`` -> ``b2``, ``stages.1.0.shortcut_bn`` -> ``s1.0.sc``,
    ``stem.bn`` -> ``st``."""
    name = name.replace("blocks.", "b").replace("stages.", "s").replace(".shortcut_bn", ".sc").replace("stem.bn", "st")
    return name[:-len(".bn")] if name.endswith(".bn") else name


def plot_unit_masks(ax: Any, masks: Mapping[str, Tensor], pruned: Mapping[str, Tensor], threshold: float) -> None:
    """Bars of the mask values ``masks[layer] [U]``, layers side by side (named in the legend up to 8 layers,
    else alternating colours), the ``pruned`` units (layer -> indices) marked x, and the ``threshold``."""
    start = 0
    for position, (name, values) in enumerate(masks.items()):
        ax.bar(list(range(start, start + values.numel())), values.tolist(), width=1.0,
               color=_COLORS[position % len(_COLORS)], alpha=0.7, label=name if len(masks) <= 8 else None)
        index = pruned[name]
        if index.numel():
            ax.scatter((start + index).tolist(), values[index].tolist(), marker="x", color="k", s=18, zorder=3)
        start += values.numel()
    ax.scatter([], [], marker="x", color="k", label="pruned")
    ax.axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_xlim(-1, start)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("channel (BatchNorm layers in order" + (", colours alternate by layer)" if len(masks) > 8 else ")"))
    ax.set_ylabel("recovered mask")
    ax.legend(fontsize=7, ncol=3, loc="lower left")
    ax.set_title("RNP masks after recovery on the unlearned model")


def plot_rnp_history(ax: Any, history: Mapping[str, Sequence[Mapping[str, float]]], clean_threshold: float) -> None:
    """RNP's ``history`` (``"unlearning"`` and ``"recovery"`` rows with ``accuracy`` and, with a monitor,
    ``clean_acc`` and ``asr``) epoch by epoch, the phases split by a dotted line, and ``clean_threshold``."""
    unlearning = list(history["unlearning"])
    rows = unlearning + list(history["recovery"])
    xs = list(range(1, len(rows) + 1))
    for key, label, color in (("accuracy", "accuracy on the clean samples (train mode)", "tab:green"),
                              ("clean_acc", "clean test accuracy (monitor)", "tab:blue"),
                              ("asr", "attack success rate (monitor)", "tab:red")):
        ax.plot(xs, [row.get(key, float("nan")) for row in rows], color=color, marker=".", label=label)
    ax.axvline(len(unlearning) + 0.5, color="gray", ls=":", lw=1)
    ax.text(len(unlearning) + 0.7, 1.02, "recovery ->", fontsize=8, color="gray")
    ax.axhline(clean_threshold, color="tab:green", ls="--", lw=0.8)
    ax.set_xlabel("epoch (unlearning, then mask recovery)")
    ax.set_ylim(-0.02, 1.08)
    ax.legend(fontsize=7)
    ax.set_title("The unlearned (then masked) model during RNP")


def plot_threshold_sweep(ax: Any, sweep: Sequence[Mapping[str, float]], threshold: float,
                         baselines: Mapping[str, str] | None = None) -> None:
    """Clean accuracy and ASR of the sweep's rows against their threshold (the number of pruned units written
    above each point), and of each baseline ``name -> label`` (keys ``{name}_clean_acc``, ``{name}_asr``;
    dotted, then dashed lines); the chosen ``threshold`` as a vertical line."""
    thresholds = [row["threshold"] for row in sweep]
    ax.plot(thresholds, [row["clean_acc"] for row in sweep], color="tab:blue", marker="o", label="RNP: clean accuracy")
    ax.plot(thresholds, [row["asr"] for row in sweep], color="tab:red", marker="o", label="RNP: ASR")
    for position, (name, label) in enumerate((baselines or {}).items()):
        style = (":", "--", "-.")[position % 3]
        ax.plot(thresholds, [row[f"{name}_clean_acc"] for row in sweep], color="tab:blue", ls=style, lw=1,
                label=f"{label} (same # per layer): clean")
        ax.plot(thresholds, [row[f"{name}_asr"] for row in sweep], color="tab:red", ls=style, lw=1,
                label=f"{label}: ASR")
    for row in sweep:
        ax.text(row["threshold"], row["clean_acc"] + 0.02, str(row["pruned"]), fontsize=7, ha="center")
    ax.axvline(threshold, color="k", ls="--", lw=1)
    ax.set_xlabel("pruning threshold (numbers: channels pruned)")
    ax.set_ylim(-0.02, 1.08)
    ax.legend(fontsize=6, loc="lower left")
    ax.set_title("Pruning the original model by mask threshold")


def plot_oracle_curve(ax: Any, curve: Sequence[Mapping[str, float]], sweep: Sequence[Mapping[str, float]], *,
                      asr_max: float, clean_min: float, total_units: int) -> None:
    """The trigger oracle's clean accuracy and ASR against the number of units it pruned, the sweep's rows as
    squares at theirs, and the claim's lines ``asr_max`` and ``clean_min`` (dotted)."""
    for key, color, name in (("clean_acc", "tab:blue", "clean accuracy"), ("asr", "tab:red", "ASR")):
        ax.plot([row["pruned"] for row in curve], [row[key] for row in curve], color=color, marker=".",
                label=f"trigger oracle: {name}")
    for key, color, name in (("clean_acc", "tab:blue", "clean accuracy"), ("asr", "tab:red", "ASR")):
        ax.scatter([row["pruned"] for row in sweep], [row[key] for row in sweep], color=color, marker="s", s=18,
                   label=f"RNP sweep: {name}")
    ax.axhline(asr_max, color="tab:red", ls=":", lw=1)
    ax.axhline(clean_min, color="tab:blue", ls=":", lw=1)
    ax.set_xlabel(f"channels pruned (of {total_units})")
    ax.set_ylim(-0.02, 1.08)
    ax.legend(fontsize=6, loc="center right")
    ax.set_title("Channels needed: the trigger oracle vs RNP's masks")


def plot_unit_costs(ax: Any, costs: Sequence[Mapping[str, Any]]) -> None:
    """Paired bars per unit (labelled ``layer:unit``): ``drop_eval`` (stored statistics) and ``drop_batchstats``
    (batch statistics), in accuracy points."""
    xs = list(range(len(costs)))
    ax.bar([x - 0.2 for x in xs], [row["drop_eval"] for row in costs], width=0.4, color="tab:red",
           label="stored running statistics (eval mode, as deployed)")
    ax.bar([x + 0.2 for x in xs], [row["drop_batchstats"] for row in costs], width=0.4, color="tab:gray",
           label="batch statistics (train mode, as RNP's recovery sees it)")
    ax.set_xticks(xs, [f"{short_layer_name(row['layer'])}:{row['unit']}" for row in costs], rotation=90, fontsize=7)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("clean accuracy drop (points)")
    ax.legend(fontsize=7)
    ax.set_title("Each RNP-pruned channel pruned alone from the backdoored model", fontsize=10)


def plot_defence_bars(ax: Any, bars: Sequence[tuple[str, float, float]], *, asr_max: float | None = None) -> None:
    """Paired bars per model ``(label, clean accuracy, ASR)`` (e.g. the backdoored model, then defences), their
    values written above, and the claim's ``asr_max`` as a dotted red line."""
    for column, offset, color, label in ((1, -0.2, "tab:blue", "clean test accuracy"),
                                         (2, 0.2, "tab:red", "attack success rate")):
        values = [bar[column] for bar in bars]
        ax.bar([p + offset for p in range(len(bars))], values, width=0.4, color=color, label=label)
        for p, value in enumerate(values):
            ax.text(p + offset, value + 0.01, f"{value:.2f}", ha="center", fontsize=8)
    ax.set_xticks(list(range(len(bars))), [bar[0] for bar in bars], fontsize=8)
    ax.set_ylim(0, 1.25)
    if asr_max is not None:
        ax.axhline(asr_max, color="tab:red", ls=":", lw=1)
    ax.legend(fontsize=8, loc="upper center", ncol=2)
