"""The default plot of a run (every logged metric against step, one line per phase) and curve helpers."""

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


def readable(name: str) -> str:
    """A metric or phase name for a reader: ``"train_loss"`` -> ``"train loss"``."""
    return " ".join(name.replace("_", " ").split()) or name


def grid_shape(panels: int) -> tuple[int, int]:
    """``(rows, columns)`` for ``panels`` plots: ``2 x 2`` for 4, else up to 3 in a row, or 4 (8, or more than
    9 panels) or 5 (10, 15, 20...) when that fills more rows completely."""
    if panels <= 0:
        return 0, 0
    if panels == 4:
        return 2, 2
    if panels <= 9:
        columns = 4 if panels == 8 else min(panels, 3)
    else:
        columns = next((c for c in (4, 5) if panels % c == 0), 4)
    return math.ceil(panels / columns), columns


def plot_metrics(
    rows: Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    title: str | None = None,
    step_label: str = "step",
    enabled: bool = True,
) -> Path | None:
    """Save :func:`metrics_figure` of ``rows`` as a PNG at ``path`` (110 dpi), the default plot of a run.

    ``enabled=False`` (an experiment that draws its own figures and asks for no default plot) draws nothing.
    Returns the path written, or None when nothing was drawn (disabled, or no finite metric logged).
    """
    fig = metrics_figure(rows, title=title, step_label=step_label) if enabled else None
    if fig is None:
        return None

    def write(f: Any) -> None:
        fig.savefig(f, format="png", dpi=110)

    return atomic_write(Path(path), write)


def metrics_figure(
    rows: Sequence[Mapping[str, Any]], *, title: str | None = None, step_label: str = "step"
) -> Any:
    """A matplotlib ``Figure`` of each metric of ``rows`` against step: one panel per metric, one line per phase.

    A metric gets a panel when it has at least one finite value; panels are titled and labelled with readable
    names ("train loss"), the x axis with ``step_label``. The panels fill a grid sized to their number (a
    short last row is centred). With more than one phase, the figure has one legend of the phases, each
    phase keeping its colour in every panel. Lines with more than 200 points are drawn faintly with a moving
    average on top; a positive metric spanning more than three orders of magnitude gets a log scale.
    Returns None when no metric has a finite value.
    """
    from matplotlib.figure import Figure  # the Figure API needs no display and leaves pyplot's backend alone
    from matplotlib.ticker import MaxNLocator

    names = numeric_metric_names(rows)
    if not names:
        return None
    plotted = {str(row.get("phase", "")): None for row in rows if any(_finite(row.get(name)) for name in names)}
    phases = list(plotted)
    colors = {phase: f"C{i % 10}" for i, phase in enumerate(phases)}
    n_rows, columns = grid_shape(len(names))
    legend_rows = math.ceil(len(phases) / 6) if len(phases) > 1 else 0
    title_space, legend_space = (0.45 if title else 0.1), 0.3 * legend_rows
    top = title_space + legend_space + 0.35  # inches above the grid: title, legend, the panels' titles
    width, height = 4.0 * columns, 2.9 * n_rows + top + 0.25
    fig = Figure(figsize=(width, height))
    # Fixed margins in inches (cheaper than a layout engine, and the same for every run).
    grid = fig.add_gridspec(n_rows, 2 * columns, left=0.85 / width, right=1 - 0.2 / width, bottom=0.55 / height,
                            top=1 - top / height, wspace=0.9, hspace=0.45)
    handles: dict[str, Any] = {}
    for index, name in enumerate(names):
        row, column = divmod(index, columns)
        in_row = min(columns, len(names) - row * columns)
        start = (columns - in_row) + 2 * column  # a short last row is centred
        ax = fig.add_subplot(grid[row, start:start + 2])
        positive, low, high = True, math.inf, -math.inf
        for phase in phases:
            points = [(row_["step"], float(row_[name])) for row_ in rows
                      if str(row_.get("phase", "")) == phase and _finite(row_.get(name))]
            if not points:
                continue
            steps, values = (np.asarray(column_, dtype=float) for column_ in zip(*points, strict=True))
            positive = positive and bool((values > 0).all())
            low, high = min(low, float(values.min())), max(high, float(values.max()))
            if len(values) > _SMOOTH_ABOVE:
                ax.plot(steps, values, color=colors[phase], alpha=0.25, linewidth=0.8)
                line, = ax.plot(steps, smooth(values, max(3, len(values) // 50)), color=colors[phase])
            else:
                line, = ax.plot(steps, values, color=colors[phase], marker="." if len(values) < 30 else None)
            handles.setdefault(phase, line)
        if positive and high > 1e3 * low:
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", useOffset=False)  # no "1e-6+2e-2" above a nearly flat line
        label = readable(name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(step_label, fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.set_ylabel(label, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, y=1 - 0.12 / height, va="top", fontsize=12)
    if legend_rows:
        fig.legend([handles[phase] for phase in phases], [readable(phase) or "(no phase)" for phase in phases],
                   loc="upper center", ncol=min(6, len(phases)), frameon=False, fontsize=9,
                   bbox_to_anchor=(0.5, 1 - title_space / height))
    return fig


def reward_per_trial_figure(results: Mapping[str, Mapping[str, Any]], *, colors: Mapping[str, str],
                            labels: Mapping[str, str], title: str) -> Any:
    """A figure of the mean reward per trial within an episode, one curve (±1 s.e.) per variant.

    ``results[variant]`` holds ``per_trial`` and ``per_trial_sem`` (one value per trial); rewards are +1 for a
    correct and -1 for a wrong response, so the chance line is at 0.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    trials = np.arange(1, 1 + max(len(result["per_trial"]) for result in results.values()))
    for variant, result in results.items():
        ax.errorbar(trials[: len(result["per_trial"])], result["per_trial"], yerr=result["per_trial_sem"],
                    color=colors[variant], marker="o", ms=3, capsize=2, label=labels[variant])
    ax.axhline(0, color="gray", ls=":", lw=1, label="chance")
    ax.set_xlabel("trial within the episode")
    ax.set_ylabel("mean reward (+1 correct, -1 wrong)")
    ax.set_title(title)
    ax.set_xticks(trials)
    ax.legend(fontsize=8)
    return fig
