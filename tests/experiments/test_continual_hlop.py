"""The continual-hlop experiment: a tiny run end to end, exact resume, the claims' arithmetic and bad configs."""

from __future__ import annotations

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.continual import digits_stream
from neuroplastic.experiments.continual_hlop import (
    CLAIMS,
    EXPERIMENT,
    METHODS,
    Config,
    standardized,
    subspace_check,
)
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("continual-hlop")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "continual-hlop", "quick", 1), summary


def test_tiny_run_writes_files_and_metrics(reference):
    run_dir, summary = reference
    for name in ("config.json", "summary.json", "metrics.csv", "accuracy_matrices.png", "metrics_table.png"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    for method in METHODS:
        assert 0.0 <= m[f"{method}_acc"] <= 1.0 and -1.0 <= m[f"{method}_bwt"] <= 1.0
        assert m[f"{method}_forgetting"] == pytest.approx(-m[f"{method}_bwt"])  # the same for two tasks
    assert m["hlop_rows_fc1"] == 8 + 2 and m["hlop_rows_fc2"] == 4 + 2 and m["hlop_rows_fc3"] == 4 + 2
    assert m["subspace_cos_svd"] > 0.9 and len(summary["claims"]) == 2
    phases = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == [p for p in METHODS for _ in range(2)]


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):  # inside HLOP's second task (6 steps a task, 12 a method)
        run_experiment(EXPERIMENT, out=tmp_path, seed=1, progress=False, overrides=TINY, stop_after_steps=44)
    resumed = run_experiment(EXPERIMENT, out=tmp_path, seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    assert (run_path(tmp_path, "continual-hlop", "quick", 1) / "metrics.csv").read_text() == \
        (run_dir / "metrics.csv").read_text()


def test_claims_arithmetic():
    bwt, subspace = CLAIMS
    base = {"hlop_acc": 0.8, "fine-tuning_acc": 0.6, "hlop_bwt": -0.1, "fine-tuning_bwt": -0.2}
    assert bwt.check(base)[0]
    assert not bwt.check({**base, "hlop_bwt": -0.11})[0]
    assert not bwt.check({**base, "hlop_acc": 0.6})[0]
    assert bwt.check(base)[1]["ratio"] == 0.5
    assert subspace.check({"subspace_cos_svd": 0.99, "subspace_cos_true": 0.98})[0]
    assert not subspace.check({"subspace_cos_svd": 0.989, "subspace_cos_true": 1.0})[0]


def test_subspace_check_finds_the_known_subspace():
    m = subspace_check(Config(synthetic_features=20, synthetic_rank=3, synthetic_samples=600), seed=0)
    assert m["subspace_cos_svd"] >= 0.99 and m["subspace_cos_true"] >= 0.99
    assert m["subspace_orthonormality_error"] < 0.1


@pytest.mark.parametrize("overrides, field", [
    ({"synthetic_rank": 64}, "synthetic_rank"),
    ({"methods": ("hlop", "hlop")}, "methods"),
    ({"methods": ("clnp",)}, "methods"),
    ({"hlop_initial": (1, 2)}, "hlop_initial"),
    ({"num_tasks": 1}, "num_tasks"),
    ({"lr": 0.0}, "lr"),
])
def test_bad_configs_are_refused(overrides, field):
    with pytest.raises(ValueError, match=field):
        validate_config(Config(**overrides))


def test_standardized_stream_centres_task_zero_and_maps_every_task_alike():
    stream = digits_stream("permuted", 2, seed=0)
    out = standardized(stream)
    x0 = out[0].x_train
    assert abs(float(x0.mean())) < 1e-5 and float(x0.std()) == pytest.approx(1.0, abs=1e-5)
    mean, std = stream[0].x_train.mean(), stream[0].x_train.std()
    for before, after in zip(stream, out, strict=True):
        assert torch.allclose(after.x_test, (before.x_test - mean) / std)
        assert torch.equal(after.y_train, before.y_train) and after.permutation is before.permutation
