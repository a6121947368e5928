"""The dppn-autoencoder experiment: a tiny run end to end, exact resume, the claims' arithmetic and bad configs."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.dppn_autoencoder import (
    CLAIMS,
    EXPERIMENT,
    Config,
    ae_parameters,
    autoencoder,
    corrupt,
)
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("dppn-autoencoder")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "dppn-autoencoder", "quick", 1), summary


def test_tiny_run_writes_figures_and_consistent_metrics(reference):
    run_dir, summary = reference
    for name in ("fitness.png", "genome.png", "receptive_fields.png", "reconstructions.png", "summary.json"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert m["ae_parameters"] == 2 * 64 * 9 + 64 + 9
    for mode in ("lamarckian", "darwinian"):
        assert m[f"{mode}_evaluations"] == 3 * 2  # population x generations (generational)
        assert m[f"{mode}_compression"] == pytest.approx(m["ae_parameters"] / m[f"{mode}_genome_parameters"])
        assert 0 < m[f"{mode}_best_val_mse"] < 1 and 0 < m[f"{mode}_test_mse"] < 1
    assert m["dppn_over_direct"] == pytest.approx(m["lamarckian_test_mse"] / m["direct_test_mse"])
    assert [c["statement"] for c in summary["claims"]] == [c.statement for c in CLAIMS]
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == m


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):  # inside the Darwinian phase (2 Lamarckian generations, then 2 Darwinian)
        run_experiment(EXPERIMENT, out=tmp_path, seed=1, progress=False, overrides=TINY, stop_after_steps=3)
    resumed = run_experiment(EXPERIMENT, out=tmp_path, seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    again = run_path(tmp_path, "dppn-autoencoder", "quick", 1)
    assert (again / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def test_helpers():
    config = Config(image_side=5, hidden_side=2)
    model = autoencoder(config)
    assert sum(p.numel() for p in model.parameters()) == ae_parameters(config) == 2 * 25 * 4 + 25 + 4
    assert ae_parameters(Config(image_side=28, hidden_side=10)) == 157_684  # the paper's autoencoder
    x = torch.ones(200, 50)
    noisy = corrupt(x, 0.25, torch.Generator().manual_seed(0))
    assert set(noisy.unique().tolist()) == {0.0, 1.0} and 0.2 < float((noisy == 0).float().mean()) < 0.3


def _metrics(**values):
    base = {"lamarckian_best_val_mse": 0.04, "darwinian_best_val_mse": 0.05, "lamarckian_test_mse": 0.045,
            "darwinian_test_mse": 0.052, "direct_test_mse": 0.04, "lamarckian_compression": 200.0,
            "darwinian_compression": 150.0, "lamarckian_genome_parameters": 97, "ae_parameters": 19453}
    return {**base, **values}


def test_claim_arithmetic():
    lamarck, comparable, compressed = CLAIMS
    result = lamarck.evaluate(_metrics())
    assert result.passed and result.measured["lamarckian_over_darwinian"] == 0.8
    assert not lamarck.evaluate(_metrics(lamarckian_best_val_mse=0.05)).passed  # a tie is not better
    result = comparable.evaluate(_metrics())
    assert result.passed and result.measured["dppn_over_direct"] == 1.125
    assert comparable.evaluate(_metrics(lamarckian_test_mse=0.05)).passed  # exactly 1.25x
    assert not comparable.evaluate(_metrics(lamarckian_test_mse=0.0501)).passed
    assert compressed.evaluate(_metrics()).passed
    assert not compressed.evaluate(_metrics(darwinian_compression=49.9)).passed


@pytest.mark.parametrize("overrides", [
    {"hidden_side": 15}, {"tournament_size": 11}, {"elites": 10}, {"noise": 1.0}, {"max_nodes": 5},
    {"max_nodes": 40}, {"algorithm": "cma"}, {"lr": 0.0}, {"crossover": 1.5}, {"image_side": 29},
    {"val_size": 5}, {"batch_size": True}, {"population_size": 1},
])
def test_bad_configs_are_refused(overrides):
    with pytest.raises((ValueError, TypeError)):
        validate_config(Config(**overrides))
