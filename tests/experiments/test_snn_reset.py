"""The snn-reset experiment: a tiny run end to end, exact resume, the paired statistics and the claims."""

from __future__ import annotations

import json
import math

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.snn_reset import (
    CLAIMS,
    EXPERIMENT,
    Config,
    make_network,
    membrane_potentials,
    paired_difference,
)
from neuroplastic.neurons import LIF, Rectangle
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("snn-reset")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run (seed 1), shared by the tests below."""
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "snn-reset", "quick", 1), summary


def test_tiny_run_writes_files_and_consistent_metrics(reference):
    run_dir, summary = reference
    for name in ("config.json", "summary.json", "metrics.csv", "accuracy.png", "membrane_distribution.png",
                 "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert m["repeats"] == 2 and m["test_size"] == 1000
    for variant in ("hard", "soft", "soft_mpr"):
        per = [m[f"{variant}_accuracy_r{r}"] for r in range(2)]
        assert m[f"{variant}_accuracy"] == pytest.approx(sum(per) / 2)
        assert all(0.1 < a <= 1.0 for a in per)  # better than chance after two epochs
    # the mean paired difference is the difference of the mean accuracies
    for a, b in (("soft", "hard"), ("soft_mpr", "soft"), ("soft_mpr", "hard")):
        assert m[f"{a}_minus_{b}"] == pytest.approx(m[f"{a}_accuracy"] - m[f"{b}_accuracy"], abs=1e-9)
        assert 0.0 <= m[f"{a}_minus_{b}_se"] < 0.05
    # MPR moves membrane potentials towards the spike values: the quantisation error falls
    assert m["quantization_error_after_mpr"] < m["quantization_error_before_mpr"]
    assert 0.0 <= m["reset_changes_counts"] <= 1.0 and 0.0 <= m["hidden1_rate"] <= 1.0
    assert len(summary["claims"]) == 2
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == m
    phases = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == [f"{v}_r{r}" for r in range(2) for v in ("hard", "soft", "soft_mpr") for _ in range(2)]


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):  # stops in the middle of the second variant
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=3)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    resumed_dir = run_path(tmp_path / "b", "snn-reset", "quick", 1)
    assert (resumed_dir / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def test_direct_encoding_with_batch_norm_and_rectangle_surrogate_runs(tmp_path):
    overrides = {**TINY, "encoding": "direct", "repeats": 1, "epochs": 1, "variants": "hard,soft_mpr",
                 "surrogate": "rectangle", "norm": True}
    m = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=overrides)["metrics"]
    assert 0.1 < m["hard_accuracy"] <= 1.0 and 0.1 < m["soft_mpr_accuracy"] <= 1.0
    assert "soft_mpr_minus_hard" in m and "soft_minus_hard" not in m
    assert m["quantization_error_after_mpr"] < m["quantization_error_before_mpr"]
    assert (run_path(tmp_path, "snn-reset", "quick", 0) / "membrane_distribution.png").is_file()


def test_paired_difference_by_hand():
    a = torch.tensor([[1, 1, 0, 1], [1, 0, 0, 1]], dtype=torch.bool)
    b = torch.tensor([[1, 0, 0, 1], [0, 0, 1, 1]], dtype=torch.bool)
    # per-sample mean differences over the repeats: D = [0.5, 0.5, -0.5, 0]
    diff, se = paired_difference(a, b)
    assert diff == pytest.approx(0.125)
    deviations = [0.375, 0.375, -0.625, -0.125]
    assert se == pytest.approx(math.sqrt(sum(d * d for d in deviations) / 3) / 2)
    assert paired_difference(a, a) == (0.0, 0.0)
    with pytest.raises(ValueError, match="correct_a and correct_b"):
        paired_difference(a, b[:, :3])


def test_variants_share_initial_weights_and_differ_only_in_reset_and_rectifier():
    config = Config(hidden=8, time_steps=2)
    nets = {v: make_network(v, config, seed=3) for v in ("hard", "soft", "soft_mpr")}
    for a, b in zip(nets["hard"].parameters(), nets["soft_mpr"].parameters(), strict=True):
        assert torch.equal(a, b)
    assert [(n.lif1.reset, n.lif1.rectifier, n.lif2.reset, n.lif2.rectifier) for n in nets.values()] == [
        ("hard", False, "hard", False), ("soft", False, "soft", False), ("soft", True, "soft", True)]
    assert not torch.equal(make_network("hard", config, seed=4).fc1.weight, nets["hard"].fc1.weight)
    with pytest.raises(ValueError, match="variant must be"):
        make_network("medium", config, seed=0)


def test_membrane_potentials_by_hand_and_against_the_layer():
    lif = LIF(1, tau=-1.0 / math.log(0.5), threshold=1.0, reset="soft")
    currents = torch.full((1, 4, 1), 0.6)
    h, spikes = membrane_potentials(lif, currents)
    # h1 = 0.6; h2 = 0.3 + 0.6 = 0.9; h3 = 0.45 + 0.6 = 1.05 -> spike, v = 0.05; h4 = 0.025 + 0.6 = 0.625
    torch.testing.assert_close(h.flatten(), torch.tensor([0.6, 0.9, 1.05, 0.625]))
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    x = torch.randn(3, 6, 5, generator=torch.Generator().manual_seed(0)) * 2
    layer = LIF(5, tau=3.0, threshold=0.5, reset="hard", rectifier=True)
    assert torch.equal(membrane_potentials(layer, x)[1], layer(x)[0])


def test_rectangle_surrogate_window():
    grad = Rectangle(0.5).grad(torch.tensor([-0.6, -0.4, 0.0, 0.49, 0.5]))
    assert grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_bad_config_values_raise():
    with pytest.raises(ValueError, match="Config.variants must be"):
        validate_config(Config(variants=("soft", "gentle")))
    with pytest.raises(ValueError, match="Config.encoding must be"):
        validate_config(Config(encoding="latency"))
    with pytest.raises(ValueError, match="decay must be"):
        make_network("soft", Config(decay=1.0), seed=0)
    with pytest.raises(ValueError, match="surrogate must be"):
        make_network("soft", Config(surrogate="atan"), seed=0)


def test_claims_use_two_standard_errors_and_fail_when_unmeasured():
    m = {"hard_accuracy": 0.95, "soft_accuracy": 0.945, "soft_mpr_accuracy": 0.96,
         "soft_minus_hard": -0.005, "soft_minus_hard_se": 0.003,      # -0.5 >= -0.6 points: holds
         "soft_mpr_minus_soft": 0.015, "soft_mpr_minus_soft_se": 0.003}
    assert [c.evaluate(m).passed for c in CLAIMS] == [True, True]
    m["soft_minus_hard"] = -0.007  # -0.7 < -0.6 points
    m["soft_mpr_minus_soft"] = -0.0061
    assert [c.evaluate(m).passed for c in CLAIMS] == [False, False]
    assert [c.evaluate({}).passed for c in CLAIMS] == [False, False]
