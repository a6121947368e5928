"""The quantized-nets experiment: a tiny run end to end, exact resume, claim arithmetic, bad configs."""

from __future__ import annotations

import json

import pytest

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.quantized_nets import CLAIMS, EXPERIMENT, Config, epoch_lr
from neuroplastic.runs import RunInterrupted, run_experiment, run_path

TINY = tiny("quantized-nets")


def test_tiny_run_writes_files_metrics_and_claims(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "quantized-nets", "quick", 0)
    for name in ("config.json", "summary.json", "metrics.csv", "accuracy_and_latents.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for net in ("mlp", "cnn"):
        for variant in ("float", "w1a2", "w1a1"):
            assert 0.0 <= metrics[f"{net}_{variant}_acc"] <= 1.0
    for variant in ("w1a2", "w1a1"):  # packed inference: exactly the simulated model's predictions
        assert metrics[f"mlp_{variant}_packed_agreement"] == 1.0
        assert metrics[f"mlp_{variant}_packed_acc"] == metrics[f"mlp_{variant}_simulated_acc"]
    assert metrics["mlp_w1a1_latent_max_abs"] <= 1.0  # clipped latent weights
    assert len(summary["claims"]) == 3 and summary["claims"][2]["passed"]
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == metrics
    header = (run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"test_acc_mlp_w1a2", "loss_cnn_float", "test_acc_mlp_w1a1_identity_r1"} <= set(header)


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    overrides = {**TINY, "cnn_epochs": 0}
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=overrides)
    # 3 phases of 2 epochs, then the STE repeats: stops inside the w1a1 phase (clipping hook state restored)
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=overrides,
                       stop_after_steps=5)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=overrides,
                             resume=True)
    assert resumed["metrics"] == reference["metrics"]


def test_claim_arithmetic():
    near, ste, packed = (claim.check for claim in CLAIMS)
    base = {"mlp_float_acc": 0.95, "mlp_w1a2_acc": 0.935, "cnn_float_acc": 0.97, "cnn_w1a2_acc": 0.949}
    held, measured = near(base)
    assert not held and measured["cnn_gap_points"] == 2.1 and measured["mlp_gap_points"] == 1.5
    assert near({**base, "cnn_w1a2_acc": 0.95})[0]
    assert near({"mlp_float_acc": 0.95, "mlp_w1a2_acc": 0.93})[0]  # CNN not trained: MLP only
    m = {"mlp_w1a1_gated_mean": 0.90, "mlp_w1a1_identity_mean": 0.904, "mlp_w1a1_identity_latent_max_abs": 2.0}
    assert ste(m)[0] and not ste({**m, "mlp_w1a1_identity_mean": 0.906})[0]
    p = {f"mlp_{v}_{k}": 1.0 for v in ("w1a2", "w1a1") for k in ("packed_agreement", "packed_acc", "simulated_acc")}
    assert packed(p)[0] and not packed({**p, "mlp_w1a1_packed_agreement": 0.999})[0]


def test_learning_rate_schedule():
    config = Config(lr=1e-2, lr_final=1e-4)
    assert epoch_lr(config, 3, 0) == pytest.approx(1e-2) and epoch_lr(config, 3, 2) == pytest.approx(1e-4)
    assert epoch_lr(config, 3, 1) == pytest.approx(1e-3)


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"Config.lr_final must be at most lr"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "lr_final": 1.0})
    with pytest.raises(ValueError, match="Config.train_size"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "train_size": 5000})
    with pytest.raises(ValueError, match="Config.channels"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, "channels": (2, 2, 2)})
