"""The plastic-lm experiment: a tiny end-to-end run, exact resume, parameter matching."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from neuroplastic.evaluation import count_parameters
from neuroplastic.experiments.plastic_lm import EXPERIMENT, Config, build_models
from neuroplastic.models import lstm_parameter_count, matched_lstm_hidden_size
from neuroplastic.plasticity import PlasticLSTM
from neuroplastic.runs import RunInterrupted, run_experiment

TINY = {
    "max_chars": "12000", "embedding_dim": "8", "hidden_size": "12", "batch_size": "4", "seq_len": "16",
    "steps": "6", "eval_every": "3", "eval_batch": "4", "eval_chars": "2000", "sample_chars": "16",
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and far steadier on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("plastic_lm")
    summary = run_experiment(EXPERIMENT, out=out, seed=0, overrides=TINY, progress=False)
    return summary, out / EXPERIMENT.name


def test_tiny_run_writes_files_and_metrics(tiny_run):
    summary, path = tiny_run
    for name in ("summary.json", "config.json", "metrics.csv", "metrics.png", "learning_curves.png",
                 "comparison.png", "samples.json", "timing.json"):
        assert (path / name).is_file(), name
    metrics = summary["metrics"]
    for key in ("plastic_valid_bpc", "lstm_valid_bpc", "plastic_params", "lstm_params", "param_ratio",
                "plastic_hidden_size", "lstm_hidden_size", "bpc_difference", "vocab_size", "plastic_valid_bpc_alpha0"):
        assert key in metrics, key
    assert 0 < metrics["plastic_valid_bpc"] < 10 and 0 < metrics["lstm_valid_bpc"] < 10
    assert abs(metrics["param_ratio"] - 1) <= 0.01
    assert len(summary["claims"]) == 1 and isinstance(summary["claims"][0]["passed"], bool)
    samples = json.loads((path / "samples.json").read_text())
    assert len(samples["plastic"]) == 16 and len(samples["lstm"]) == 16
    timing = json.loads((path / "timing.json").read_text())
    assert timing["plastic_ms_per_step"] > 0 and timing["lstm_ms_per_step"] > 0
    header = (path / "metrics.csv").read_text().splitlines()[0]
    assert "plastic_valid_bpc" in header and "lstm_train_bpc" in header


def test_resume_is_exact(tiny_run, tmp_path):
    reference, _ = tiny_run
    with pytest.raises(RunInterrupted):  # inside the plastic phase, then inside the LSTM phase
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, overrides=TINY, progress=False, stop_after_steps=4)
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, overrides=TINY, progress=False, stop_after_steps=4,
                       resume=True)
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, overrides=TINY, progress=False, resume=True)
    assert summary["metrics"] == reference["metrics"]


@pytest.mark.parametrize("alpha", ["neuron", "connection"])
def test_lstm_is_parameter_matched_and_not_plastic(alpha):
    config = Config(embedding_dim=16, hidden_size=96, alpha=alpha)
    models = build_models(config, vocab_size=50)
    plastic, lstm = models["plastic"], models["lstm"]
    assert isinstance(plastic.core, PlasticLSTM) and isinstance(lstm.core, nn.LSTM)
    assert not any("alpha" in name or "synapses" in name for name, _ in lstm.named_parameters())
    hidden = lstm.core.hidden_size
    lstm_count = count_parameters(lstm, trainable_only=True)
    assert lstm_count == lstm_parameter_count(50, 16, hidden)  # the formula counts nn.LSTM right
    target = count_parameters(plastic, trainable_only=True)
    assert abs(lstm_count / target - 1) <= 0.01
    for other in (hidden - 1, hidden + 1):  # no other hidden size is closer
        assert abs(lstm_parameter_count(50, 16, other) - target) >= abs(lstm_count - target)
    if alpha == "connection":  # N^2 extra plastic coefficients buy the LSTM extra units
        assert hidden > config.hidden_size
    assert matched_lstm_hidden_size(lstm_parameter_count(50, 16, 37), 50, 16) == 37
