"""Character-level language models: the model, the parameter-matched LSTM, evaluation and sampling."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuroplastic.evaluation import count_parameters
from neuroplastic.models import (
    CharLanguageModel,
    detach_state,
    evaluate_bpc,
    init_like_plastic_cell,
    lstm_parameter_count,
    matched_lstm_hidden_size,
    sample_text,
)
from neuroplastic.plasticity import PlasticLSTM
from neuroplastic.tasks import CharVocabulary


def test_model_shapes_and_state():
    model = CharLanguageModel(11, 4, nn.LSTM(4, 6, batch_first=True))
    assert not model.plastic
    ids = torch.randint(0, 11, (2, 5))
    logits, state = model(ids)
    assert logits.shape == (2, 5, 11)
    more, _ = model(ids[:, :1], state)  # the state carries on
    assert more.shape == (2, 1, 11)
    plastic = CharLanguageModel(11, 4, PlasticLSTM(4, 6, modulation="simple", alpha="neuron"))
    assert plastic.plastic
    logits, state = plastic(ids)
    assert logits.shape == (2, 5, 11)
    logits.sum().backward()
    cut = detach_state(state)
    assert type(cut) is type(state) and not cut.hidden.requires_grad
    h, c = detach_state(tuple(t * 2 for t in (torch.ones(1, requires_grad=True), torch.ones(1, requires_grad=True))))
    assert not h.requires_grad and not c.requires_grad


@pytest.mark.parametrize(("vocab", "embedding", "hidden"), [(50, 16, 37), (13, 4, 1), (97, 32, 128)])
def test_lstm_parameter_count_counts_nn_lstm(vocab, embedding, hidden):
    model = CharLanguageModel(vocab, embedding, nn.LSTM(embedding, hidden, batch_first=True))
    assert count_parameters(model, trainable_only=True) == lstm_parameter_count(vocab, embedding, hidden)
    assert matched_lstm_hidden_size(lstm_parameter_count(vocab, embedding, hidden), vocab, embedding) == hidden


def test_matched_hidden_size_is_the_closest():
    target = 98_401
    hidden = matched_lstm_hidden_size(target, 97, 32)
    best = min(range(1, 400), key=lambda h: (abs(lstm_parameter_count(97, 32, h) - target), h))
    assert hidden == best
    assert matched_lstm_hidden_size(1, 97, 32) == 1  # below the smallest LSTM: one unit


def test_init_like_plastic_cell_bounds_and_forget_bias():
    lstm = nn.LSTM(9, 16, batch_first=True)
    init_like_plastic_cell(lstm)
    assert lstm.weight_ih_l0.abs().max() <= 1 / 3 and lstm.weight_hh_l0.abs().max() <= 1 / 4
    assert torch.equal(lstm.bias_hh_l0, torch.zeros(64))
    assert torch.equal(lstm.bias_ih_l0[16:32], torch.ones(16))  # the forget gate
    assert lstm.bias_ih_l0[:16].abs().max() <= 1 / 3


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


def test_evaluate_bpc_restores_the_mode():
    model = CharLanguageModel(5, 3, nn.LSTM(3, 4, batch_first=True))
    encoded = torch.randint(0, 5, (41,), generator=torch.Generator().manual_seed(1))
    model.train()
    evaluate_bpc(model, encoded, batch_size=2, seq_len=5)
    assert model.training
    model.eval()
    evaluate_bpc(model, encoded, batch_size=2, seq_len=5)
    assert not model.training


def test_sample_text_is_reproducible_and_from_the_vocabulary():
    vocab = CharVocabulary("abcab cab")
    torch.manual_seed(0)
    model = CharLanguageModel(vocab.size, 4, nn.LSTM(4, 6, batch_first=True))
    first = sample_text(model, vocab, "ab", 12, 0.7, torch.Generator().manual_seed(3))
    second = sample_text(model, vocab, "ab", 12, 0.7, torch.Generator().manual_seed(3))
    assert first == second and len(first) == 12 and set(first) <= set("abc ")
