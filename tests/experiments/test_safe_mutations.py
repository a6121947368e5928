"""The safe-mutations experiment: a tiny run end to end, exact resume, the claims' arithmetic and bad configs."""

from __future__ import annotations

import json

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.evolution import ParameterLayout, ParityProblem
from neuroplastic.experiments.safe_mutations import (
    CLAIMS,
    EXPERIMENT,
    Config,
    Probabilities,
    arms,
    deep_mlp,
    layer_spread,
)
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("safe-mutations")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "safe-mutations", "quick", 1), summary


def test_tiny_run_writes_figures_and_consistent_metrics(reference):
    run_dir, summary = reference
    for name in ("divergence_per_layer.png", "parity_fitness.png", "metrics.csv",
                 "summary.json"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    for net, layers in (("deep", 12), ("lstm", 3)):  # 12 Linear layers; two LSTM layers and the read-out
        assert f"{net}_gaussian_layer{layers - 1}" in m and f"{net}_gaussian_layer{layers}" not in m
        for method in ("gaussian", "sum", "abs"):  # equal norm: the Gaussian draw's length
            assert m[f"{net}_{method}_norm_mean"] == pytest.approx(m[f"{net}_gaussian_norm_mean"], rel=1e-5)
            assert m[f"{net}_{method}_divergence_mean"] > 0 and m[f"{net}_{method}_layer_spread"] >= 0
    for arm in ("gaussian_0.1", "sum", "abs"):
        assert m[f"parity_{arm}_solve_rate"] == m[f"parity_{arm}_solved"] / 2
        assert m[f"parity_{arm}_evaluations_mean"] <= 12 and m[f"parity_{arm}_best_mean"] < 0
    assert [c["statement"] for c in summary["claims"]] == [c.statement for c in CLAIMS]
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == m


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):  # inside the GA runs (the divergence phases take 1 step each)
        run_experiment(EXPERIMENT, out=tmp_path, seed=1, progress=False, overrides=TINY, stop_after_steps=6)
    resumed = run_experiment(EXPERIMENT, out=tmp_path, seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    again = run_path(tmp_path, "safe-mutations", "quick", 1)
    assert (again / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def test_the_maze_domain_runs(tmp_path):
    overrides = {**TINY, "domains": "maze", "methods": "abs", "method_stds": "0.01", "repeats": 1,
                 "maze_evaluations": 7, "divergence_methods": "gaussian", "perturbations": 1}
    m = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=overrides)["metrics"]
    assert m["maze_abs_evaluations_mean"] == 7 and m["maze_gaussian_0.1_best_mean"] < 0
    assert (run_path(tmp_path, "safe-mutations", "quick", 0) / "maze_fitness.png").is_file()


def test_networks_and_helpers():
    config = Config(deep_width=5)
    model = deep_mlp(config, seed=3)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 12 and linears[0].in_features == 8 and linears[-1].out_features == 4
    assert all(float(m.bias.detach().abs().sum()) == 0 for m in linears)  # Xavier init, zero biases
    assert torch.equal(deep_mlp(config, 3)[0].weight, model[0].weight)
    problem = ParityProblem("lstm", 4, seed=0)
    probs = Probabilities(problem.runner)
    assert [n for n, _ in probs.named_parameters()] == [slot.name for slot in problem.layout]
    p = probs(problem.inputs)
    torch.testing.assert_close(p.log(), problem.model(problem.inputs))  # the classifier's log-probabilities
    assert ParameterLayout(probs).size == problem.layout.size
    assert layer_spread([1e-2, 1e-4]) == pytest.approx(1.0) and layer_spread([3.0, 3.0]) == 0.0
    assert arms(Config(gaussian_stds=(0.1, 0.03), methods=("abs",), method_stds=(0.002,))) == {
        "gaussian_0.1": ("gaussian", 0.1), "gaussian_0.03": ("gaussian", 0.03), "abs": ("abs", 0.002)}


def _metrics(**values):
    base = {}
    for net in ("deep", "lstm"):
        for method, div, spread in (("gaussian", 1.0, 1.0), ("sum", 0.1, 0.5), ("abs", 0.2, 0.4), ("so", 0.3, 0.9),
                                    ("r", 0.9, 1.0)):
            base[f"{net}_{method}_divergence_mean"] = div
            base[f"{net}_{method}_layer_spread"] = spread
    base.update({"parity_gaussian_0.1_solve_rate": 0.2, "parity_gaussian_0.01_solve_rate": 0.0,
                 "parity_sum_solve_rate": 0.1, "parity_abs_solve_rate": 0.5})
    base.update(values)
    return base


def test_claim_arithmetic():
    divergence, uniform, smr, parity = CLAIMS
    assert divergence.evaluate(_metrics()).passed
    assert not divergence.evaluate(_metrics(lstm_so_divergence_mean=1.5)).passed
    assert uniform.evaluate(_metrics()).passed
    assert not uniform.evaluate(_metrics(deep_sum_layer_spread=1.0)).passed  # equal is not lower
    result = smr.evaluate(_metrics())
    assert not result.passed and result.measured["deep_r_over_gaussian"] == 0.9  # spread not lower
    assert smr.evaluate(_metrics(deep_r_layer_spread=0.5, lstm_r_layer_spread=0.5)).passed
    assert parity.evaluate(_metrics()).passed
    assert not parity.evaluate(_metrics(parity_abs_solve_rate=0.2)).passed  # a tie is not more often
    missing = {k: v for k, v in _metrics().items() if "sum" not in k and "abs" not in k}
    assert not parity.evaluate(missing).passed


@pytest.mark.parametrize("overrides", [
    {"deep_layers": 11}, {"divergence_methods": ("sum", "abs")}, {"divergence_methods": ("gaussian", "gaussian")},
    {"methods": ("gaussian",)}, {"methods": ("abs",)}, {"method_stds": (0.1, -0.1)}, {"gaussian_stds": ()},
    {"gaussian_stds": (0.1, 0.1)},
    {"population_size": 4}, {"max_evaluations": 10}, {"maze_steps": 0}, {"domains": ("atari",)}, {"repeats": 0},
    {"domains": ("maze",), "maze_evaluations": 10}, {"deep_init": "he"}, {"batch_size": True},
])
def test_bad_configs_are_refused(overrides):
    with pytest.raises((ValueError, TypeError)):
        validate_config(Config(**overrides))
