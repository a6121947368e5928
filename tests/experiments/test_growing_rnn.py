"""The growing-RNN experiment: a tiny run end to end, and exact resume across size changes (its tasks:
tests/tasks/test_sequences.py)."""

from __future__ import annotations

import json

import pytest

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.growing_rnn import EXPERIMENT
from neuroplastic.runs import RunInterrupted, run_experiment, run_path

TINY = tiny("growing-rnn")


def test_tiny_run_writes_files_metrics_and_claims(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "growing-rnn", "quick", 0)
    for name in ("config.json", "summary.json", "metrics.csv", "network_size.png", "losses.png",
                 "grown_vs_fixed.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for i in range(2):
        for condition in ("easy", "hard", "switch", "fixed"):
            assert metrics[f"{condition}_s{i}_size"] >= 1
            assert 0.0 <= metrics[f"{condition}_s{i}_loss"] < 10.0
        assert metrics[f"fixed_s{i}_size"] == metrics[f"hard_s{i}_size"]  # the baseline has the grown size
        assert metrics[f"switch_s{i}_size_before"] == metrics[f"easy_s{i}_size"]
    assert metrics["easy_median_size"] == (metrics["easy_s0_size"] + metrics["easy_s1_size"]) / 2
    assert len(summary["claims"]) == 3
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == metrics
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"phase", "step", "loss", "size"} <= set(header)


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    overrides = dict(TINY, seeds=1)
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=3, progress=False, overrides=overrides)
    # Stop in the middle of the hard phase (12 easy + 8 switch + 6 hard steps): the finished phases' networks
    # must be restored at their grown sizes, the current one at its size at the checkpoint.
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=3, progress=False, overrides=overrides,
                       stop_after_steps=26)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=3, progress=False, overrides=overrides,
                             resume=True)
    assert resumed["metrics"] == reference["metrics"]
    rows = (run_path(tmp_path / "a", "growing-rnn", "quick", 3) / "metrics.csv").read_text()
    assert (run_path(tmp_path / "b", "growing-rnn", "quick", 3) / "metrics.csv").read_text() == rows
    # the networks had grown before the interruption: restoring them means resizing fresh one-neuron networks
    header = rows.splitlines()[0].split(",")
    logged = [dict(zip(header, line.split(","), strict=True)) for line in rows.splitlines()[1:]]
    hard_before_stop = {int(r["size"]) for r in logged if r["phase"] == "hard-s0" and r["size"] and int(r["step"]) < 6}
    assert min(hard_before_stop) > 1 and reference["metrics"]["switch_s0_size"] > 1


def test_bad_config_values_are_refused(tmp_path):
    for key, value, message in (("penalty", "l2", "Config.penalty must be one of 'decoupled', 'loss'"),
                                ("eval_burn_in", 30, r"Config.eval_burn_in must be less than eval_length \(30\)"),
                                ("seeds", 0, "Config.seeds must be an int >= 1")):
        with pytest.raises(ValueError, match=message):
            run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, key: value})
