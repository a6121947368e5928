"""The st-rsbp experiment: a tiny run end to end, exact resume, memory profile, claim arithmetic, bad configs."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.st_rsbp import CLAIMS, EXPERIMENT, Config, make_network, memory_profile, targets_for
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("st-rsbp")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run (seed 1), shared by the tests below."""
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "st-rsbp", "quick", 1), summary


def test_tiny_run_writes_files_and_consistent_metrics(reference):
    run_dir, summary = reference
    for name in ("config.json", "summary.json", "metrics.csv", "st_rsbp.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert m["test_size"] == 359
    assert m["accuracy_difference"] == pytest.approx(m["st_rsbp_accuracy"] - m["bptt_accuracy"])
    for method in ("st_rsbp", "bptt"):
        assert 0.0 <= m[f"{method}_accuracy"] <= 1.0
    # ST-RSBP's peak memory is the same at every T; BPTT's grows
    assert m["st_rsbp_bytes_T4"] == m["st_rsbp_bytes_T8"] == m["st_rsbp_bytes_T16"]
    assert m["st_rsbp_growth"] == 1.0
    assert m["bptt_bytes_T4"] < m["bptt_bytes_T8"] < m["bptt_bytes_T16"]
    assert len(summary["claims"]) == 2
    assert summary["claims"][1]["passed"] == (0.8 <= m["bptt_linearity"] <= 1.25 and m["bptt_growth"] > 2)
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == m
    phases = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == ["st_rsbp", "st_rsbp", "bptt", "bptt"]


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):  # stops in the middle of the second method
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=3)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    resumed_dir = run_path(tmp_path / "b", "st-rsbp", "quick", 1)
    assert (resumed_dir / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def test_network_targets_and_memory_profile():
    config = Config(hidden=6, time_steps=10, memory_steps=(3, 6, 12), memory_batch=2)
    a, b = make_network(config, 3), make_network(config, 3)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    t = targets_for(torch.tensor([2, 0]), config)
    assert t[0, 2] == 5.0 and t[1, 0] == 5.0 and t[0, 0] == pytest.approx(1.2) and t.shape == (2, 10)
    x = torch.rand(4, 64)
    mem = memory_profile(config, x, torch.tensor([0, 1, 2, 3]), seed=0)
    assert len(set(mem["st_rsbp"])) == 1
    b3, b6, b12 = mem["bptt"]
    assert b3 < b6 < b12
    assert (b12 - b6) / 6 == pytest.approx((b6 - b3) / 3, rel=0.25)  # linear in T


def test_claims_arithmetic():
    m = {"st_rsbp_accuracy": 0.90, "bptt_accuracy": 0.94, "accuracy_difference": -0.04,
         "st_rsbp_growth": 1.0, "bptt_growth": 12.0, "bptt_linearity": 1.0}
    assert [c.evaluate(m).passed for c in CLAIMS] == [True, True]
    m.update(accuracy_difference=-0.051, st_rsbp_growth=1.06)
    assert [c.evaluate(m).passed for c in CLAIMS] == [False, False]
    assert [c.evaluate({}).passed for c in CLAIMS] == [False, False]


def test_bad_config_values_raise():
    with pytest.raises(ValueError, match="target_low"):
        validate_config(Config(target_low=0.6, target_high=0.5))
    with pytest.raises(ValueError, match="memory_steps"):
        validate_config(Config(memory_steps=(25, 25)))
    with pytest.raises(ValueError, match="hidden"):
        validate_config(Config(hidden=0))
