"""The dormant-neurons experiment: a tiny run end to end, its stream, and exact resume."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.dormant_neurons import EXPERIMENT, phase_permutations
from neuroplastic.runs import RunInterrupted, run_experiment, run_path

TINY = tiny("dormant-neurons")


def test_tiny_run_writes_files_metrics_and_claims(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "dormant-neurons", "quick", 0)
    for name in ("config.json", "summary.json", "metrics.csv", "metrics.png", "dormant_and_accuracy.png",
                 "per_phase.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for variant in ("plain", "redo", "drm"):
        for key in ("adapt_acc", "final_acc", "dormant_first", "dormant_last", "dormant_late_mean", "dormant_rise"):
            assert f"{variant}_{key}" in metrics, f"{variant}_{key}"
        assert 0.0 <= metrics[f"{variant}_dormant_last"] <= 1.0
        assert 0.0 <= metrics[f"{variant}_adapt_acc"] <= 1.0
    assert len(summary["claims"]) == 3
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == metrics
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"dormant_plain", "test_acc_redo", "loss_drm", "drm_factor"} <= set(header)


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=TINY)
    # stops inside the drm phase: plain and redo (30 steps each) are replayed, drm continues mid-phase
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=75)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == reference["metrics"]


def test_stream_permutations():
    perms = phase_permutations(4, seed=3)
    assert perms.shape == (4, 10) and torch.equal(perms[0], torch.arange(10))
    for perm in perms:
        assert sorted(perm.tolist()) == list(range(10))
    assert torch.equal(perms, phase_permutations(4, seed=3))


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="Config.variants must be a non-empty tuple, each item one of"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "variants": ("adam",)})
    with pytest.raises(ValueError, match=r"Config.adapt_steps must be at most steps_per_phase \(10\), got 11"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "adapt_steps": 11})
