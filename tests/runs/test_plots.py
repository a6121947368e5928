"""The default metrics plot: one labelled panel per plottable metric, a grid without blank cells, phases."""

from __future__ import annotations

import math

import pytest

from neuroplastic.runs.plots import grid_shape, metrics_figure, plot_metrics, readable


def _rows(phases=("train",), steps=40):
    rows = []
    for phase in phases:
        for step in range(steps):
            rows.append({"phase": phase, "step": step, "train_loss": 1.0 / (step + 1), "test_acc": step / steps,
                         "never_finite": math.nan})
        rows.append({"phase": phase, "step": steps, "eval_loss": 0.5})
    return rows


def test_one_labelled_panel_per_plottable_metric():
    fig = metrics_figure(_rows(), title="toy")
    axes = fig.get_axes()
    assert len(axes) == 3  # train_loss, test_acc, eval_loss; never_finite has no finite value
    assert [ax.get_title() for ax in axes] == ["train loss", "test acc", "eval loss"]
    assert all("_" not in ax.get_title() for ax in axes)
    assert [ax.get_ylabel() for ax in axes] == ["train loss", "test acc", "eval loss"]
    assert {ax.get_xlabel() for ax in axes} == {"step"}
    assert all(ax.get_visible() and ax.lines for ax in axes)
    assert not fig.legends  # one phase: no legend
    assert fig.get_suptitle() == "toy"
    assert metrics_figure(_rows(), step_label="episode").get_axes()[0].get_xlabel() == "episode"


def test_one_line_per_phase_and_a_legend_of_the_phases():
    fig = metrics_figure(_rows(phases=("pre_train", "fine_tune")))
    axes = fig.get_axes()
    assert len(axes) == 3 and all(len(ax.lines) == 2 for ax in axes)
    assert len(fig.legends) == 1
    assert [text.get_text() for text in fig.legends[0].get_texts()] == ["pre train", "fine tune"]
    colours = {tuple(map(str, (line.get_color() for line in ax.lines))) for ax in axes}
    assert len(colours) == 1  # each phase has one colour in every panel


def test_long_lines_are_smoothed_and_wide_positive_ranges_get_a_log_scale():
    rows = [{"phase": "a", "step": s, "loss": 10.0 ** (-s / 100)} for s in range(500)]
    ax = metrics_figure(rows).get_axes()[0]
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"  # faint raw line and its moving average
    assert metrics_figure(_rows()).get_axes()[0].get_yscale() == "linear"


@pytest.mark.parametrize(
    ("panels", "shape"),
    [(1, (1, 1)), (2, (1, 2)), (3, (1, 3)), (4, (2, 2)), (5, (2, 3)), (6, (2, 3)), (7, (3, 3)), (8, (2, 4)),
     (9, (3, 3)), (10, (2, 5)), (12, (3, 4)), (13, (4, 4)), (15, (3, 5))],
)
def test_grid_shape(panels, shape):
    assert grid_shape(panels) == shape


def test_no_blank_cells_and_a_short_last_row_is_centred():
    rows = [{"phase": "a", "step": s, **{f"m_{i}": float(s * i) for i in range(5)}} for s in range(5)]
    fig = metrics_figure(rows)
    axes = fig.get_axes()
    assert len(axes) == 5 and all(ax.get_visible() for ax in axes)
    top, bottom = axes[:3], axes[3:]
    lefts = [ax.get_position().x0 for ax in top]
    rights = [ax.get_position().x1 for ax in top]
    middle = (lefts[0] + rights[-1]) / 2
    assert (bottom[0].get_position().x0 + bottom[1].get_position().x1) / 2 == pytest.approx(middle)


def test_plot_metrics_writes_a_png_or_returns_none(tmp_path):
    path = plot_metrics(_rows(), tmp_path / "metrics.png", title="toy")
    assert path == tmp_path / "metrics.png" and path.read_bytes().startswith(b"\x89PNG")
    assert plot_metrics(_rows(), tmp_path / "off.png", enabled=False) is None  # the experiment asked for none
    assert plot_metrics([{"phase": "a", "step": 0, "x": math.inf}], tmp_path / "empty.png") is None
    assert plot_metrics([], tmp_path / "none.png") is None
    assert not (tmp_path / "off.png").exists() and not (tmp_path / "empty.png").exists()


def test_readable_names():
    assert readable("train_loss") == "train loss"
    assert readable("__x__y") == "x y"
    assert readable("") == ""


def test_reward_per_trial_figure_draws_one_curve_per_variant_and_the_chance_line():
    from neuroplastic.runs.plots import reward_per_trial_figure

    results = {"a": {"per_trial": [0.1, 0.5, 0.9], "per_trial_sem": [0.1, 0.1, 0.1]},
               "b": {"per_trial": [0.0, -0.2, 0.1], "per_trial_sem": [0.05, 0.05, 0.05]}}
    fig = reward_per_trial_figure(results, colors={"a": "C0", "b": "C1"}, labels={"a": "plastic", "b": "fixed"},
                                  title="t")
    ax = fig.axes[0]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["chance", "plastic", "fixed"]
    assert list(ax.get_xticks()) == [1, 2, 3] and ax.get_title() == "t"
    assert list(ax.containers[0].lines[0].get_ydata()) == [0.1, 0.5, 0.9]
