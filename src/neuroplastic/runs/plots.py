"""The default plot of a run: every logged metric against step, one line per phase."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_write

_SMOOTH_ABOVE = 200  # points per line above which a lightly smoothed line is drawn over the raw one


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def numeric_metric_names(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metric names (not phase or step) with at least one finite numeric value, in first-seen order."""
    names: dict[str, None] = {}
    for row in rows:
        for name, value in row.items():
            if name in ("phase", "step") or name in names:
                continue
            if _finite(value):
                names[name] = None
    return list(names)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """A centred moving average of ``values`` over ``window`` points (shorter at the ends)."""
    if window <= 1 or len(values) < 3:
        return values
    kernel = np.ones(window)
    sums = np.convolve(values, kernel, mode="same")
    counts = np.convolve(np.ones_like(values), kernel, mode="same")
    return sums / counts


def metric_series(rows: Sequence[Mapping[str, Any]], name: str) -> tuple[np.ndarray, np.ndarray]:
    """The steps and values of metric ``name`` over the rows that logged it, as float arrays."""
    points = [(row["step"], row[name]) for row in rows if name in row and row[name] != ""]
    if not points:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*points, strict=True)
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def smooth_curve(values: np.ndarray, max_window: int = 20) -> np.ndarray:
    """A learning curve smoothed over up to ``max_window`` points (a fifth of its length at most)."""
    return smooth(values, max(1, min(max_window, len(values) // 5)))


def plot_metrics(
    rows: Sequence[Mapping[str, Any]], path: str | Path, *, title: str | None = None
) -> Path | None:
    """Plot each numeric metric of ``rows`` against step as a PNG: one subplot per metric, one line per phase.

    Lines with more than 200 points are drawn faintly with a moving average on top.
    Returns the path written, or None when no numeric metric was logged.
    """
    from matplotlib.figure import Figure  # the Figure API needs no display and leaves pyplot's backend alone

    names = numeric_metric_names(rows)
    if not names:
        return None
    columns = min(3, len(names))
    lines = math.ceil(len(names) / columns)
    width, height = 4.2 * columns, 3.0 * lines + (0.4 if title else 0.0)
    fig = Figure(figsize=(width, height))
    # Fixed margins in inches (cheaper than a layout engine, and the same for every run).
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.2 / width, bottom=0.55 / height,
                        top=1 - (0.75 if title else 0.35) / height, wspace=0.3, hspace=0.55)
    axes = fig.subplots(lines, columns, squeeze=False).ravel()
    phases = list(dict.fromkeys(str(row.get("phase", "")) for row in rows))
    colors = {phase: f"C{i % 10}" for i, phase in enumerate(phases)}
    for ax, name in zip(axes, names, strict=False):
        for phase in phases:
            points = [
                (row["step"], float(row[name]))
                for row in rows
                if str(row.get("phase", "")) == phase and _finite(row.get(name))
            ]
            if not points:
                continue
            steps, values = (np.asarray(column, dtype=float) for column in zip(*points, strict=True))
            if len(values) > _SMOOTH_ABOVE:
                ax.plot(steps, values, color=colors[phase], alpha=0.25, linewidth=0.8)
                ax.plot(steps, smooth(values, max(3, len(values) // 50)), color=colors[phase], label=phase)
            else:
                marker = "." if len(values) < 30 else None
                ax.plot(steps, values, color=colors[phase], label=phase, marker=marker)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(phases) > 1:
            ax.legend(fontsize=8)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    path = Path(path)

    def write(f: Any) -> None:
        fig.savefig(f, format="png", dpi=110)

    return atomic_write(path, write)
