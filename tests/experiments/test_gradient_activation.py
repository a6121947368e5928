"""The gradient-activation experiment: a tiny run end to end, exact resume, the saddle, claims, bad configs."""

from __future__ import annotations

import math

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.gradient_activation import (
    CLAIMS,
    EXPERIMENT,
    Config,
    saddle_escape_steps,
    sigmoid_mlp,
)
from neuroplastic.runs import RunInterrupted, run_experiment, run_path

TINY = tiny("gradient-activation")


def test_tiny_run_writes_files_metrics_and_claims(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "gradient-activation", "quick", 0)
    for name in ("summary.json", "metrics.csv", "loss_and_saddle.png"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for arm in ("sgd", "gaf"):
        assert 5 <= metrics[f"{arm}_steps_median"] <= 25 and 0 <= metrics[f"{arm}_reached"] <= 2
    assert len(summary["claims"]) == 2


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=TINY)
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=33)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == reference["metrics"]


def test_saddle_escape_matches_the_linearised_growth():
    config = Config(saddle_lr=0.05, saddle_y0=1e-3, saddle_escape=0.01)
    steps, path = saddle_escape_steps(config, "sgd")
    # near y = 0 plain gradient descent multiplies y by (1 + lr) per step
    assert steps == math.ceil(math.log(10) / math.log(1.05)) and path[1] == pytest.approx(1.05e-3)
    gaf_steps, gaf_path = saddle_escape_steps(config, "gaf")
    assert gaf_path[1] == pytest.approx(1e-3 + 0.05 * 0.3 * math.atan(4.5 * (1e-3 - 1e-9)))
    assert gaf_steps < steps


def test_sigmoid_mlp_centres_the_sigmoid_outputs():
    torch.manual_seed(0)
    model = sigmoid_mlp(6, 5, 4, 3, gain=4.0)
    assert len([m for m in model if isinstance(m, torch.nn.Linear)]) == 4
    second = model[2]
    assert torch.allclose(second(torch.full((1, 5), 0.5)), torch.zeros(1, 5), atol=1e-6)


def test_claim_arithmetic():
    fewer, saddle = (claim.check for claim in CLAIMS)
    m = {"sgd_steps_median": 400.0, "gaf_steps_median": 350.0, "sgd_reached": 5, "gaf_reached": 5,
         "gaf_faster_pairs": 4, "repeats": 5, "sgd_saddle_steps": 127, "gaf_saddle_steps": 95}
    assert fewer(m)[0] and not fewer({**m, "gaf_steps_median": 400.0})[0]
    assert saddle(m) == (True, {"sgd": 127, "gaf": 95})


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="Config.momentum must be above 0 when where is 'momentum'"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "where": "momentum"})
    with pytest.raises(ValueError, match="Config.saddle_y0 must be below saddle_escape"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "saddle_y0": 0.6})
