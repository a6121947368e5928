"""Plots of recurrent dynamics: each function draws what it is given on matplotlib Axes."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from neuroplastic.dynamics.plots import plot_kept_timescales, plot_lyapunov_spectra, plot_predictions


def test_predictions_draw_the_truth_then_each_prediction_per_component():
    axes = Figure().subplots(2, 1, squeeze=False)[:, 0]
    time = torch.arange(4) * 0.5
    target = torch.arange(8.0).view(4, 2)
    predictions = [("a", target + 1, "tab:blue"), ("b", target - 1, "tab:red")]
    plot_predictions(axes, time, target, predictions, ["x", "z"])
    for c, ax in enumerate(axes):
        truth, a, b = ax.lines
        assert list(truth.get_ydata()) == target[:, c].tolist() and list(truth.get_xdata()) == time.tolist()
        assert list(a.get_ydata()) == (target[:, c] + 1).tolist() and a.get_color() == "tab:blue"
        assert list(b.get_ydata()) == (target[:, c] - 1).tolist()
        assert ax.get_ylabel() == "xz"[c]
    assert [text.get_text() for text in axes[0].get_legend().get_texts()] == ["truth", "a", "b"]
    assert axes[1].get_legend() is None


def test_lyapunov_spectra_are_lines_by_index_with_zero_marked():
    ax = Figure().subplots()
    plot_lyapunov_spectra(ax, [("dense", [0.1, -0.2, -0.5], "o-", "black"), ("lnp", [-0.05], "x--", "tab:blue")])
    dense, lnp, zero = ax.lines
    assert list(dense.get_xdata()) == [1, 2, 3] and list(dense.get_ydata()) == [0.1, -0.2, -0.5]
    assert dense.get_marker() == "o" and lnp.get_linestyle() == "--" and lnp.get_color() == "tab:blue"
    assert list(zero.get_ydata()) == [0.0, 0.0]
    assert ax.get_xlabel() == "index"


def test_kept_timescales_histogram_the_dense_and_the_kept_neurons():
    ax = Figure().subplots()
    tau = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    kept = torch.tensor([False, True, True, False, True])
    plot_kept_timescales(ax, tau, [("kept by LNP", kept, "tab:blue")], edges=5)
    dense_bars = [patch for patch in ax.patches if patch.get_facecolor()[:3] != (0, 0, 0)][:4]
    assert [bar.get_x() for bar in dense_bars] == [1.0, 2.0, 3.0, 4.0]  # 5 edges: 4 bins from 1 to 5
    assert [bar.get_height() for bar in dense_bars] == [1, 1, 1, 2]
    labels = [text.get_text() for text in ax.legend().get_texts()]
    assert labels == ["dense", "kept by LNP (mean 3.33)"]
