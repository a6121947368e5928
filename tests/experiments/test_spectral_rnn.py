"""The spectral-rnn experiment: a tiny run end to end, exact resume, and the claims' arithmetic."""

from __future__ import annotations

import json
import math

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.spectral_rnn import CLAIMS, EXPERIMENT, Config, log_log_slope, true_network
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("spectral-rnn")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run (seed 1), shared by the tests below."""
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "spectral-rnn", "quick", 1), summary


def test_tiny_run_writes_files_and_metrics(reference):
    run_dir, summary = reference
    for name in ("config.json", "summary.json", "metrics.csv", "recovery_vs_samples.png", "timing.json"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert (m["n0"], m["n1"], m["sample_sizes"], m["repeats"]) == (2000, 8000, 2, 1)
    for key in ("error_n0", "error_n1", "square_error", "bp_error", "spectral_bp_data_error"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["error_max_n0"] == m["error_n0"]  # one draw
    assert m["slope"] == pytest.approx(math.log(m["error_n1"] / m["error_n0"]) / math.log(4))
    assert m["bp_samples"] == 2000 and m["spectral_nmse"] > 0 and m["bp_nmse"] > 0
    assert sorted(int(k[len("bp_nmse_step"):]) for k in m if k.startswith("bp_nmse_step")) == [5, 10, 15, 20]
    assert m["bp_steps_to_match"] in (-1, 5, 10, 15, 20)
    assert len(summary["claims"]) == 2
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == m
    phases = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == ["tanh", "tanh", "square", "backprop"]


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=2)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    resumed_dir = run_path(tmp_path / "b", "spectral-rnn", "quick", 1)
    assert (resumed_dir / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def test_true_network_is_fixed_by_the_seed():
    a, u, c = true_network(Config(), 0)
    again = true_network(Config(), 0)
    assert all(torch.equal(p, q) for p, q in zip((a, u, c), again, strict=True))
    assert torch.allclose(a.norm(dim=1), torch.ones(3, dtype=torch.float64))
    assert (c.abs() >= 0.5).all() and (c.abs() <= 1.5).all() and c[0] > 0 > c[1]


def test_claims_pass_and_fail_on_hand_made_metrics():
    def metrics(errors, square_min):
        m = {"sample_sizes": len(errors), "square_error_min": square_min, "square_error": square_min + 0.1}
        m.update({f"error_n{i}": e for i, e in enumerate(errors)})
        m["slope"] = log_log_slope([5e4 * 4 ** i for i in range(len(errors))], errors)
        return m

    def verdicts(m):
        return [claim.evaluate(m).passed for claim in CLAIMS]

    assert verdicts(metrics([0.008, 0.002, 0.0005], 0.5)) == [True, True]  # slope -1
    assert verdicts(metrics([0.008, 0.004, 0.002], 0.05)) == [False, False]  # slope -0.5; square recovered
    assert log_log_slope([1, 10, 100], [1, 0.1, 0.01]) == pytest.approx(-1.0)
    assert verdicts({"sample_sizes": 2}) == [False, False]  # missing metrics fail


def test_bad_config_values_are_refused():
    with pytest.raises(ValueError, match="Config.hidden must be at most inputs"):
        validate_config(Config(inputs=2, hidden=3))
    with pytest.raises(ValueError, match="Config.sample_sizes must be strictly increasing"):
        validate_config(Config(sample_sizes=(1000, 1000)))
    with pytest.raises(ValueError, match="Config.square_samples must be at least"):
        validate_config(Config(square_samples=10))
    with pytest.raises(ValueError, match="Config.recurrent_scale must be"):
        validate_config(Config(recurrent_scale=1.5))
