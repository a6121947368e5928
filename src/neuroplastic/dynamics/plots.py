"""Plots of recurrent networks and what they do: predicted series, Lyapunov spectra, the time constants that a
pruning keeps.

Each function draws on given matplotlib ``Axes`` (the caller makes and saves the figure):

- :func:`plot_predictions`: per component, the true series and several networks' predictions of it.
- :func:`plot_lyapunov_spectra`: Lyapunov exponents against their index, one line per network, and zero.
- :func:`plot_kept_timescales`: the histogram of a network's time constants, and of those each pruning kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["plot_predictions", "plot_lyapunov_spectra", "plot_kept_timescales"]


def plot_predictions(axes: Sequence[Any], time: Tensor, target: Tensor,
                     predictions: Sequence[tuple[str, Tensor, str]], names: Sequence[str]) -> None:
    """On ``axes[c]`` for each component ``c``: the true series ``target [T, C]`` (thick, grey, "truth") and each
    prediction ``(label, prediction [T, C], color)`` against ``time [T]``; ``names[c]`` as the y label; the legend
    on the first axes."""
    for c, ax in enumerate(axes):
        ax.plot(time, target[:, c], color="k", lw=2.2, alpha=0.35, label="truth")
        for label, prediction, color in predictions:
            ax.plot(time, prediction[:, c], color=color, lw=1.0, label=label)
        ax.set_ylabel(names[c])
    axes[0].legend(fontsize=8, ncol=2)


def plot_lyapunov_spectra(ax: Any, spectra: Sequence[tuple[str, Sequence[float], str, str]]) -> None:
    """Each spectrum ``(label, exponents (largest first), line style, color)`` against the index 1, 2, ...; a line
    at zero (above it: chaotic)."""
    for label, spectrum, style, color in spectra:
        ax.plot(range(1, len(spectrum) + 1), list(spectrum), style, color=color, label=label)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set_xlabel("index")
    ax.set_ylabel("Lyapunov exponent (per step)")


def plot_kept_timescales(ax: Any, tau: Tensor, kept: Sequence[tuple[str, Tensor, str]], *, edges: int = 30) -> None:
    """The histogram of the time constants ``tau [N]`` (grey, "dense") and, as outlines, of those that each
    pruning ``(label, neuron_mask [N] bool, color)`` kept, with their mean in the label; the bins have ``edges``
    equally spaced edges from the smallest to the largest ``tau``."""
    tau = tau.cpu()
    bins = torch.linspace(float(tau.min()), float(tau.max()), edges).tolist()
    ax.hist(tau.tolist(), bins=bins, color="lightgray", label="dense")
    for label, mask, color in kept:
        ax.hist(tau[mask].tolist(), bins=bins, histtype="step", lw=1.6, color=color,
                label=f"{label} (mean {float(tau[mask].mean()):.2f})")
    ax.set_xlabel("membrane time constant tau (steps)")
    ax.set_ylabel("neurons")
