"""The gradient-rewiring experiment: a tiny run end to end, exact resume, and the claims' arithmetic."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.gradient_rewiring import CLAIMS, EXPERIMENT, Config
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("gradient-rewiring")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run (seed 1), shared by the tests below."""
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "gradient-rewiring", "quick", 1), summary


def test_tiny_run_writes_files_and_metrics(reference):
    run_dir, summary = reference
    for name in ("config.json", "summary.json", "metrics.csv", "metrics.png", "accuracy_vs_connectivity.png",
                 "training_curves.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert m["grad_r_runs"] == 2 and m["test_size"] == 1000
    assert m["target_connectivity"] == pytest.approx(0.05)
    assert m["weights_total"] == 784 * 16 + 16 * 10
    for k in range(2):
        assert m[f"gradr{k}_alpha"] == (0.3, 3.0)[k]
        assert 0.0 <= m[f"gradr{k}_accuracy"] <= 1.0
        # the overall connectivity is the count of nonzero weights over all of them, and the layers add up
        assert m[f"gradr{k}_connectivity"] == m[f"gradr{k}_connections"] / m["weights_total"]
        per_layer = m[f"gradr{k}_connectivity_layer0"] * 784 * 16 + m[f"gradr{k}_connectivity_layer2"] * 160
        assert round(per_layer) == m[f"gradr{k}_connections"]
        assert m[f"gradr{k}_pruned_events"] > 0
    # a stronger prior prunes more in the same number of steps
    assert m["gradr1_connectivity"] < m["gradr0_connectivity"] < 1.0
    assert m["dense_connectivity"] == 1.0 and 0.0 <= m["dense_accuracy"] <= 1.0
    assert len(summary["claims"]) == 3
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == m
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == ["phase", "step", "loss", "train_accuracy", "test_accuracy", "connectivity", "pruned", "regrown"]
    phases = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == ["dense"] * 2 + ["gradr0"] * 2 + ["gradr1"] * 2


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):  # stops in the middle of the first Grad R run
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=3)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    resumed_dir = run_path(tmp_path / "b", "gradient-rewiring", "quick", 1)
    assert (resumed_dir / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def test_every_variant_starts_from_the_same_initial_weights():
    from neuroplastic.experiments.gradient_rewiring import _build

    first, second = _build(Config(hidden=(8,)), 3, torch.device("cpu")), _build(Config(hidden=(8,)), 3, "cpu")
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def metrics(dense, runs):
    m = {"dense_accuracy": dense, "target_connectivity": 0.05, "grad_r_runs": len(runs)}
    for k, (alpha, conn, acc) in enumerate(runs):
        m.update({f"gradr{k}_alpha": alpha, f"gradr{k}_connectivity": conn, f"gradr{k}_accuracy": acc})
    return m


def verdicts(m):
    return [claim.evaluate(m).passed for claim in CLAIMS]


def test_claims_pass_and_fail_on_hand_made_metrics():
    good = metrics(0.95, [(0.01, 0.30, 0.955), (0.1, 0.04, 0.94), (0.3, 0.012, 0.91)])
    assert verdicts(good) == [True, True, True]
    # the second strongest prior stays above the 5% target
    assert verdicts(metrics(0.95, [(0.01, 0.30, 0.95), (0.1, 0.06, 0.94), (0.3, 0.012, 0.91)]))[0] is False
    # a sparser net 2.5 points better than a denser one is not "non-increasing within noise"
    assert verdicts(metrics(0.95, [(0.01, 0.30, 0.92), (0.1, 0.04, 0.945), (0.3, 0.012, 0.91)]))[1] is False
    # the sparsest is 6 points below dense; or it is not sparse enough to count
    assert verdicts(metrics(0.95, [(0.1, 0.04, 0.94), (0.3, 0.012, 0.89)]))[2] is False
    assert verdicts(metrics(0.95, [(0.1, 0.08, 0.94), (0.3, 0.06, 0.94)]))[2] is False
    # missing metrics fail instead of passing
    assert verdicts({"grad_r_runs": 1}) == [False, False, False]


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="Config.alphas must be a non-empty tuple"):
        validate_config(Config(alphas=()))
    with pytest.raises(ValueError, match="Config.alphas must be"):
        validate_config(Config(alphas=(0.1, 0.0)))
