"""The snn-rewiring experiment: a tiny run, exact resume, claims (its network: tests/models/test_spiking.py)."""

from __future__ import annotations

import json

import pytest

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.snn_rewiring import CLAIMS, EXPERIMENT, Config
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("snn-rewiring")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run (seed 1), shared by the tests below."""
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "snn-rewiring", "quick", 1), summary


def test_tiny_run_writes_files_and_consistent_metrics(reference):
    run_dir, summary = reference
    for name in ("config.json", "summary.json", "metrics.csv", "accuracy_vs_connectivity.png",
                 "training_curves.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert m["grad_r_runs"] == 2 and m["test_size"] == 1000
    assert m["target_connectivity"] == pytest.approx(0.05)
    assert m["weights_total"] == 784 * 16 + 16 * 10  # no biases: every parameter is a rewired synapse
    for k in range(2):
        assert m[f"gradr{k}_alpha"] == (0.3, 3.0)[k]
        assert 0.0 <= m[f"gradr{k}_accuracy"] <= 1.0
        assert m[f"gradr{k}_connectivity"] == m[f"gradr{k}_connections"] / m["weights_total"]
        per_layer = m[f"gradr{k}_connectivity_fc1"] * 784 * 16 + m[f"gradr{k}_connectivity_fc2"] * 160
        assert round(per_layer) == m[f"gradr{k}_connections"]
        assert m[f"gradr{k}_macs"] == round(m[f"gradr{k}_connectivity_fc1"] * 784 * 16)
        assert m[f"gradr{k}_pruned_events"] > 0
        assert 0.0 <= m[f"gradr{k}_hidden_rate"] <= 1.0 and m[f"gradr{k}_synops"] >= 0.0
    assert m["gradr1_connectivity"] < m["gradr0_connectivity"] < 1.0  # a stronger prior prunes more
    assert m["dense_connectivity"] == 1.0 and m["dense_macs"] == 784 * 16
    assert len(summary["claims"]) == 3
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == m
    phases = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == ["dense"] * 2 + ["gradr0"] * 2 + ["gradr1"] * 2


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):  # stops in the middle of the first Grad R run
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=3)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    resumed_dir = run_path(tmp_path / "b", "snn-rewiring", "quick", 1)
    assert (resumed_dir / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def test_bad_arguments():
    with pytest.raises(ValueError, match="Config.alphas must be a non-empty tuple"):
        validate_config(Config(alphas=()))


def metrics(dense, runs):
    m = {"dense_accuracy": dense, "target_connectivity": 0.05, "grad_r_runs": len(runs)}
    for k, (alpha, conn, acc) in enumerate(runs):
        m.update({f"gradr{k}_alpha": alpha, f"gradr{k}_connectivity": conn, f"gradr{k}_accuracy": acc})
    return m


def test_claims_pass_and_fail_on_hand_made_metrics():
    verdicts = [claim.evaluate(metrics(0.95, [(0.01, 0.30, 0.955), (0.1, 0.04, 0.94), (0.3, 0.012, 0.91)])).passed
                for claim in CLAIMS]
    assert verdicts == [True, True, True]
    bad = metrics(0.95, [(0.01, 0.30, 0.92), (0.1, 0.06, 0.945), (0.3, 0.012, 0.85)])
    assert [claim.evaluate(bad).passed for claim in CLAIMS] == [False, False, False]
    assert [claim.evaluate({"grad_r_runs": 1}).passed for claim in CLAIMS] == [False, False, False]
