"""The plastic-lm experiment: a tiny end-to-end run, exact resume, parameter matching, evaluation."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from neuroplastic.experiments.plastic_lm import (
    EXPERIMENT,
    CharLanguageModel,
    Config,
    build_models,
    evaluate_bpc,
    init_like_plastic_cell,
    lstm_parameter_count,
    matched_lstm_hidden_size,
    parameter_count,
)
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
    assert parameter_count(lstm) == lstm_parameter_count(50, 16, hidden)  # the formula counts nn.LSTM right
    target = parameter_count(plastic)
    assert abs(parameter_count(lstm) / target - 1) <= 0.01
    for other in (hidden - 1, hidden + 1):  # no other hidden size is closer
        assert abs(lstm_parameter_count(50, 16, other) - target) >= abs(parameter_count(lstm) - target)
    if alpha == "connection":  # N^2 extra plastic coefficients buy the LSTM extra units
        assert hidden > config.hidden_size
    assert matched_lstm_hidden_size(lstm_parameter_count(50, 16, 37), 50, 16) == 37


def test_plastic_lstm_without_plasticity_is_the_baseline_lstm():
    """With alpha = 0, the plastic LSTM computes what nn.LSTM computes with the same weights (gates reordered)."""
    torch.manual_seed(0)
    e, n = 5, 7
    plastic = PlasticLSTM(e, n, modulation="simple", alpha="neuron")
    with torch.no_grad():
        plastic.cell.synapses.alpha.zero_()
    lstm = nn.LSTM(e, n, batch_first=True)
    init_like_plastic_cell(lstm)
    order = [0, 1, 3, 2]  # plastic: input, forget, output, cell; PyTorch: input, forget, cell, output
    with torch.no_grad():
        w_x = plastic.cell.input_to_hidden.weight.view(4, n, e)[order].reshape(4 * n, e)
        b_x = plastic.cell.input_to_hidden.bias.view(4, n)[order].reshape(4 * n)
        w_h = plastic.cell.weight.T.reshape(4, n, n)[order].reshape(4 * n, n)
        lstm.weight_ih_l0.copy_(w_x)
        lstm.bias_ih_l0.copy_(b_x)
        lstm.weight_hh_l0.copy_(w_h)
    x = torch.randn(3, 9, e)
    out_plastic, _ = plastic(x)
    out_lstm, _ = lstm(x)
    torch.testing.assert_close(out_plastic, out_lstm, rtol=1e-5, atol=1e-6)


def test_evaluate_bpc_of_a_uniform_model_is_log2_vocab():
    vocab = 13
    model = CharLanguageModel(vocab, 4, nn.LSTM(4, 6, batch_first=True))
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
    encoded = torch.randint(0, vocab, (101,), generator=torch.Generator().manual_seed(0))
    bpc, per_window = evaluate_bpc(model, encoded, batch_size=4, seq_len=7)
    assert bpc == pytest.approx(math.log2(vocab), rel=1e-6)
    assert len(per_window) == math.ceil(25 / 7)  # (101 - 1) // 4 = 25 characters per stream
    assert all(v == pytest.approx(math.log2(vocab), rel=1e-6) for v in per_window)
