"""The sparse-training experiment: a tiny run end to end, exact densities, claims, and exact resume."""

from __future__ import annotations

import json
import math

import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.sparse_training import (
    CLAIMS,
    EXPERIMENT,
    Config,
    build_model,
    learning_rate,
    make_manager,
    warmup_steps,
)
from neuroplastic.runs import RunInterrupted, run_experiment, run_path

TINY = tiny("sparse-training")


def test_tiny_run_writes_files_metrics_and_exact_densities(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "sparse-training", "quick", 0)
    for name in ("config.json", "summary.json", "metrics.csv", "metrics.png", "accuracy_vs_sparsity.png",
                 "granet_layer_densities.json", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for model in ("mlp", "cnn"):
        assert 0.0 <= metrics[f"{model}_dense_acc"] <= 1.0
        size = sum(p.numel() for n, p in build_model(model).named_parameters() if n.endswith("weight"))
        for method in ("gmp", "set", "rigl", "granet"):
            for pct in (90, 98):
                assert 0.0 <= metrics[f"{model}_{method}_{pct}_acc"] <= 1.0
                # every method ends exactly at the target density (GMP/GraNet have pruned to it by then)
                assert metrics[f"{model}_{method}_{pct}_density"] == pytest.approx(
                    round((100 - pct) / 100 * size) / size, abs=2 / size)
    assert len(summary["claims"]) == 3
    for model in ("mlp", "cnn"):
        for pct in (90, 98):
            for baseline in ("gmp", "set"):  # accuracy difference = (only GraNet right - only baseline right) / N
                only_granet, only_other = metrics[f"{model}_granet_{pct}_vs_{baseline}_discordant"]
                difference = metrics[f"{model}_granet_{pct}_acc"] - metrics[f"{model}_{baseline}_{pct}_acc"]
                assert difference == pytest.approx((only_granet - only_other) / metrics["test_images"])
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == metrics
    header = set((run_dir / "metrics.csv").read_text().splitlines()[0].split(","))
    assert {"loss_dense", "loss_granet_98", "density_granet_98", "density_gmp_98", "loss_set_98"} <= header


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    overrides = dict(TINY, models=["mlp"], sparsities=[0.95], methods=["set", "granet"], epochs=4)  # 12 steps
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=overrides)
    with pytest.raises(RunInterrupted):  # stops in the middle of training, after two mask updates
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=overrides,
                       stop_after_steps=5)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=overrides,
                             resume=True)
    assert resumed["metrics"] == reference["metrics"]


def test_every_method_gets_the_schedule_scaled_to_the_run():
    config = Config(delta_t=10)
    for method, cls_name in (("gmp", "GMP"), ("set", "SET"), ("rigl", "RigL"), ("granet", "GraNet")):
        model = build_model("mlp")
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        manager = make_manager(method, model, optimizer, 0.9, 1000, config, seed=0)
        assert type(manager).__name__ == cls_name
        if method in ("gmp", "granet"):
            assert manager.density() == 1.0 and manager.schedule.end == 690 and manager.schedule.every == 10
        else:
            assert manager.density() == pytest.approx(0.1, abs=1e-5) and manager.fraction_schedule.end == 750
        if method == "granet":
            assert manager.regrowth_schedule.end == 1000 and manager.regrowth_schedule.initial_fraction == 0.5


def test_claims_read_the_metrics():
    metrics = {"mlp_dense_acc": 0.95, "cnn_dense_acc": 0.96}
    for model in ("mlp", "cnn"):
        for pct in (95, 98):
            metrics.update({f"{model}_granet_{pct}_acc": 0.9, f"{model}_gmp_{pct}_acc": 0.89,
                            f"{model}_set_{pct}_acc": 0.91})
        metrics[f"{model}_granet_90_acc"] = 0.93
    results = [claim.evaluate(metrics) for claim in CLAIMS]
    assert [r.passed for r in results] == [True, False, True]
    metrics["cnn_granet_90_acc"] = 0.92  # 4 points below dense
    assert not CLAIMS[2].evaluate(metrics).passed
    assert not CLAIMS[0].evaluate({}).passed  # nothing measured is a failure, not a pass
    # a collapsed dense network (and GraNet with it, at chance) is not "GraNet within 3 points of dense"
    metrics.update(cnn_dense_acc=0.1, cnn_granet_90_acc=0.1)
    result = CLAIMS[2].evaluate(metrics)
    assert not result.passed and result.measured["cnn"]["dense_learned"] is False


def test_learning_rate_is_cosine_after_a_linear_warm_up(tmp_path):
    config = Config(lr=0.1, warmup_epochs=0.5)  # 8 steps per epoch: 4 warm-up steps
    assert warmup_steps(config, 8) == 4 and warmup_steps(Config(), 63) == 63  # the default: one epoch
    total = 100
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * step / total)) * min(1.0, (step + 1) / 4) for step in range(8)]
    assert [learning_rate(step, total, config, 8) for step in range(8)] == pytest.approx(expected, rel=1e-12)
    assert learning_rate(0, total, config, 8) == pytest.approx(0.025)  # a quarter of the peak at the first step
    no_warmup = Config(lr=0.1, warmup_epochs=0)
    assert learning_rate(50, total, no_warmup, 8) == pytest.approx(0.05)  # half way down the cosine
    assert learning_rate(0, total, no_warmup, 8) == pytest.approx(0.1)
    for bad in (-1, 3, float("nan"), True):  # TINY trains 2 epochs
        with pytest.raises(ValueError, match="warmup_epochs"):  # "Config.warmup_epochs must be ..." (or not a float)
            run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False,
                           overrides=dict(TINY, warmup_epochs=bad))


def test_repeats_average_paired_runs_whose_first_is_the_single_run(tmp_path):
    overrides = dict(TINY, models=["mlp"], sparsities=[0.95, 0.98], methods=["gmp", "granet"])
    single = run_experiment(EXPERIMENT, out=tmp_path / "one", seed=0, progress=False, overrides=overrides)["metrics"]
    summary = run_experiment(EXPERIMENT, out=tmp_path / "two", seed=0, progress=False,
                             overrides=dict(overrides, repeats=2))
    metrics = summary["metrics"]
    for key in ("mlp_dense_acc", "mlp_gmp_95_acc", "mlp_granet_95_acc"):
        first, second = metrics[f"{key}_repeats"]
        assert first == single[key]  # repeat 0 is the seed's own run
        assert metrics[key] == pytest.approx((first + second) / 2)
    cell = summary["claims"][0]["measured"]["mlp_95"]
    pairs = zip(metrics["mlp_granet_95_acc_repeats"], metrics["mlp_gmp_95_acc_repeats"], strict=True)
    assert cell["differences"] == [round(a - b, 4) for a, b in pairs]


@pytest.mark.parametrize("repeats", [0, -1, 1.5, True])
def test_bad_repeats_are_refused(tmp_path, repeats):
    with pytest.raises(ValueError, match="repeats"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=dict(TINY, repeats=repeats))


def test_claim_reports_the_test_set_standard_error_from_discordant_digits():
    metrics = {"mlp_dense_acc": 0.95, "test_images": 1000, "repeats": 1}
    for pct in (95, 98):
        metrics.update({f"mlp_granet_{pct}_acc": 0.945, f"mlp_gmp_{pct}_acc": 0.943, f"mlp_set_{pct}_acc": 0.93,
                        f"mlp_granet_{pct}_vs_gmp_discordant": [6, 4]})
    cell = CLAIMS[0].evaluate(metrics).measured["mlp_95"]
    # McNemar: sqrt(6 + 4 - (6 - 4)^2 / 1000) / 1000
    assert cell["discordant"] == [6, 4]
    assert cell["test_set_standard_error"] == pytest.approx(round(math.sqrt(10 - 4 / 1000) / 1000, 4))
