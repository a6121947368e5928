"""Pruning plots: each function draws what it is given on a matplotlib Axes."""

import math

import torch
from matplotlib.figure import Figure

from neuroplastic.structure.pruning_plots import (
    plot_defence_bars,
    plot_oracle_curve,
    plot_rnp_history,
    plot_threshold_sweep,
    plot_unit_costs,
    plot_unit_masks,
    short_layer_name,
)


def _axes():
    return Figure().subplots()


def test_short_layer_names():
    assert short_layer_name("blocks.2.bn") == "b2"
    assert short_layer_name("stages.1.0.shortcut_bn") == "s1.0.sc"
    assert short_layer_name("stages.0.1.bn2") == "s0.1.bn2"
    assert short_layer_name("stem.bn") == "st"


def test_unit_masks_are_bars_layer_after_layer_with_pruned_units_marked():
    ax = _axes()
    masks = {"a": torch.tensor([0.1, 0.9, 0.5]), "b": torch.tensor([0.0, 1.0])}
    plot_unit_masks(ax, masks, {"a": torch.tensor([0]), "b": torch.tensor([0])}, 0.2)
    bars = ax.patches
    assert [bar.get_x() + bar.get_width() / 2 for bar in bars] == [0, 1, 2, 3, 4]
    assert [round(bar.get_height(), 6) for bar in bars] == [0.1, 0.9, 0.5, 0.0, 1.0]
    marked = ax.collections[0].get_offsets().tolist() + ax.collections[1].get_offsets().tolist()
    assert [[round(x, 6), round(y, 6)] for x, y in marked] == [[0, 0.1], [3, 0.0]]  # b's unit 0 is channel 3
    assert ax.get_xlim() == (-1, 5)
    assert {text.get_text() for text in ax.get_legend().get_texts()} == {"a", "b", "pruned", "threshold 0.2"}


def test_rnp_history_plots_both_phases_in_order():
    ax = _axes()
    history = {"unlearning": [{"accuracy": 0.9, "clean_acc": 0.8, "asr": 1.0}, {"accuracy": 0.1}],
               "recovery": [{"accuracy": 0.5, "clean_acc": 0.6, "asr": 0.2}]}
    plot_rnp_history(ax, history, 0.2)
    accuracy, clean, asr = ax.lines[:3]
    assert list(accuracy.get_xdata()) == [1, 2, 3] and list(accuracy.get_ydata()) == [0.9, 0.1, 0.5]
    assert math.isnan(clean.get_ydata()[1]) and list(asr.get_ydata())[::2] == [1.0, 0.2]
    assert ax.lines[3].get_xdata()[0] == 2.5  # between the last unlearning and the first recovery epoch


def test_threshold_sweep_and_oracle_curve_plot_their_rows():
    sweep = [{"threshold": 0.1, "pruned": 2, "clean_acc": 0.9, "asr": 0.8, "r_clean_acc": 0.7, "r_asr": 0.9},
             {"threshold": 0.3, "pruned": 5, "clean_acc": 0.5, "asr": 0.1, "r_clean_acc": 0.4, "r_asr": 0.6}]
    ax = _axes()
    plot_threshold_sweep(ax, sweep, 0.2, {"r": "random"})
    assert [list(line.get_ydata()) for line in ax.lines[:4]] == [[0.9, 0.5], [0.8, 0.1], [0.7, 0.4], [0.9, 0.6]]
    assert [text.get_text() for text in ax.texts] == ["2", "5"]
    assert "random (same # per layer): clean" in [text.get_text() for text in ax.get_legend().get_texts()]
    ax = _axes()
    curve = [{"pruned": 0, "clean_acc": 0.95, "asr": 1.0}, {"pruned": 1, "clean_acc": 0.94, "asr": 0.1}]
    plot_oracle_curve(ax, curve, sweep, asr_max=0.2, clean_min=0.9, total_units=12)
    assert list(ax.lines[0].get_xdata()) == [0, 1] and list(ax.lines[1].get_ydata()) == [1.0, 0.1]
    assert ax.collections[0].get_offsets().tolist() == [[2, 0.9], [5, 0.5]]
    assert ax.get_xlabel() == "channels pruned (of 12)"


def test_unit_costs_are_paired_bars_labelled_by_layer_and_unit():
    ax = _axes()
    costs = [{"layer": "blocks.0.bn", "unit": 3, "drop_eval": 5.0, "drop_batchstats": 0.5},
             {"layer": "stages.1.0.shortcut_bn", "unit": 1, "drop_eval": -1.0, "drop_batchstats": 0.0}]
    plot_unit_costs(ax, costs)
    assert [bar.get_height() for bar in ax.patches] == [5.0, -1.0, 0.5, 0.0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["b0:3", "s1.0.sc:1"]


def test_defence_bars_pair_clean_accuracy_and_asr_per_model():
    ax = _axes()
    plot_defence_bars(ax, [("backdoored", 0.98, 1.0), ("RNP", 0.95, 0.05)], asr_max=0.2)
    heights = [round(bar.get_height(), 6) for bar in ax.patches]
    assert heights == [0.98, 0.95, 1.0, 0.05]  # clean bars, then ASR bars
    assert [round(bar.get_x() + bar.get_width() / 2, 6) for bar in ax.patches] == [-0.2, 0.8, 0.2, 1.2]
    assert [text.get_text() for text in ax.texts] == ["0.98", "0.95", "1.00", "0.05"]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["backdoored", "RNP"]
    assert ax.lines[0].get_ydata()[0] == 0.2  # the claim's ASR line
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["clean test accuracy", "attack success rate"]
    ax = _axes()
    plot_defence_bars(ax, [("a", 0.5, 0.5)])
    assert not ax.lines
