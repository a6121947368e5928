"""The plastic-lm experiment: a tiny end-to-end run, exact resume, parameter matching."""

from __future__ import annotations

import dataclasses
import json

import pytest
from torch import nn

from experiments.tiny_overrides import tiny
from neuroplastic.evaluation import count_parameters
from neuroplastic.experiments.plastic_lm import EXPERIMENT, Config, build_models
from neuroplastic.models import lstm_parameter_count, matched_lstm_hidden_size
from neuroplastic.plasticity import PlasticLSTM
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("plastic-lm")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("plastic_lm")
    summary = run_experiment(EXPERIMENT, out=out, seed=0, overrides=TINY, progress=False)
    return summary, run_path(out, "plastic-lm", "quick", 0)


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


POSITIVE_INTS = ("embedding_dim", "hidden_size", "batch_size", "seq_len", "steps", "eval_every", "eval_batch")
NON_NEGATIVE_INTS = ("max_chars", "eval_chars", "sample_chars", "threads")
POSITIVE_NUMBERS = ("lr", "grad_clip", "temperature", "clip")
REJECTED = (
    [(name, value, "an int >= 1") for name in POSITIVE_INTS for value in (0, -3, True, 2.0)]
    + [(name, value, "an int >= 0") for name in NON_NEGATIVE_INTS for value in (-1, True, 2.0)]
    + [(name, value, "a .*number .*> 0") for name in POSITIVE_NUMBERS for value in (0, -1e-3, float("nan"), "1")]
    + [("alpha_lr_divisor", value, "a .*number .*>= 0") for value in (-1.0, float("nan"), -float("inf"))]
    + [("lr", float("inf"), "a finite number > 0")]
    + [("valid_fraction", value, r"a finite number in \(0, 1\)") for value in (0, 1, 1.5, float("nan"))]
    + [("alpha", "row", "one of 'connection', 'neuron', 'scalar'"), ("modulation", "hebbian", "one of 'none'"),
       ("backprop", "manual", "one of 'auto'")]
)


@pytest.mark.parametrize(("name", "value", "accepted"), REJECTED)
def test_bad_config_values_are_rejected(name, value, accepted):
    config = dataclasses.replace(Config(), **{name: value})
    with pytest.raises(ValueError, match=f"Config.{name} must be {accepted}.*, got "):
        validate_config(config)


def test_config_bounds_are_inclusive_where_they_should_be():
    for budget in ("quick", "full"):
        validate_config(EXPERIMENT.config(budget))
    assert EXPERIMENT.config("full").threads == 0  # the full budget leaves PyTorch's thread count alone
    edges = {**{name: 1 for name in POSITIVE_INTS}, **{name: 0 for name in NON_NEGATIVE_INTS},
             "alpha_lr_divisor": 0.0, "clip": float("inf"), "grad_clip": float("inf"), "temperature": 1e-9}
    validate_config(dataclasses.replace(Config(), **edges))


def test_bad_config_is_rejected_before_the_run(tmp_path):
    with pytest.raises(ValueError, match="Config.seq_len must be an int >= 1, got 0"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, overrides={**TINY, "seq_len": "0"}, progress=False)
    assert not (tmp_path / EXPERIMENT.name).exists()


def test_a_missing_corpus_file_is_a_bad_config_value(tmp_path):
    # found by tests/test_cli_fuzz.py: --set corpus=abc passed the config checks and the run then failed with a
    # FileNotFoundError (exit 1, "plastic-lm failed"); now it is refused with the other config values
    for corpus in ("abc", str(tmp_path)):  # no such file; a directory
        with pytest.raises(ValueError, match="Config.corpus must be a text file, or '' for the standard library's"):
            run_experiment(EXPERIMENT, out=tmp_path / "out", seed=0, overrides={**TINY, "corpus": corpus},
                           progress=False)
    assert not (tmp_path / "out" / EXPERIMENT.name).exists()
    (tmp_path / "text.txt").write_text("some text\n" * 10)
    assert validate_config(dataclasses.replace(Config(), corpus=str(tmp_path / "text.txt"))).corpus.endswith("txt")


def test_evaluation_text_shorter_than_its_streams_is_refused_before_the_run(tmp_path):
    # found by tests/test_cli_fuzz.py: eval_chars=1 (with eval_batch=4) passed the config checks and the run failed
    # at its first evaluation, after it had started writing ("encoded must hold at least 5 characters here")
    from neuroplastic.runs import ConfigRejected

    for chars in ("1", "4"):
        with pytest.raises(ValueError, match=r"Config.eval_chars must be 0 \(the whole split\) or more than"):
            run_experiment(EXPERIMENT, out=tmp_path, seed=0, overrides={**TINY, "eval_chars": chars}, progress=False)
    validate_config(dataclasses.replace(Config(), eval_chars=17))  # eval_batch 16: one character per stream
    # a validation split shorter than eval_batch streams (about 1,200 characters of the tiny 12,000)
    with pytest.raises(ConfigRejected, match="the validation split .* is too short for eval_batch=1500 streams"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, overrides={**TINY, "eval_batch": "1500", "eval_chars": "0"},
                       progress=False)
    assert not (tmp_path / EXPERIMENT.name).exists()
