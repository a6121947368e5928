"""Character-level language models: embedding -> recurrent core -> decoder, and a parameter-matched LSTM.

Miconi et al. 2019 (Backpropamine, ICLR) compare neuromodulated plastic LSTMs with standard LSTMs of the same
number of parameters. :class:`CharLanguageModel` takes either core (a
:class:`~neuroplastic.plasticity.PlasticLSTM` or a ``torch.nn.LSTM``); :func:`matched_lstm_hidden_size` finds
the LSTM hidden size whose parameter count (:func:`lstm_parameter_count`) is the closest to a target, and
:func:`init_like_plastic_cell` initialises that LSTM as the plastic cell initialises its fixed weights.
:func:`evaluate_bpc` and :func:`sample_text` evaluate and sample any of them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic._checks import check_int
from neuroplastic.plasticity import PlasticLSTM
from neuroplastic.tasks.text import CharVocabulary, bits_per_character, sequential_batches

__all__ = [
    "CharLanguageModel",
    "detach_state",
    "lstm_parameter_count",
    "matched_lstm_hidden_size",
    "init_like_plastic_cell",
    "evaluate_bpc",
    "sample_text",
]


class CharLanguageModel(nn.Module):
    """Embedding -> recurrent core -> linear decoder over characters.

    Args:
        vocab_size: V characters.
        embedding_dim: E.
        core: a ``PlasticLSTM(E, N, ...)`` or ``torch.nn.LSTM(E, N, batch_first=True)``.

    Shapes: ``ids [B, T]`` long -> ``logits [B, T, V]``; the core's state is passed in and returned.
    Parameters are created in the order embedding, core (given), decoder.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, core: nn.Module) -> None:
        super().__init__()
        check_int("vocab_size", vocab_size)
        check_int("embedding_dim", embedding_dim)
        if not isinstance(core, nn.Module) or not isinstance(getattr(core, "hidden_size", None), int):
            raise TypeError(f"core must be a recurrent nn.Module with an int hidden_size (a PlasticLSTM or an "
                            f"nn.LSTM), got {type(core).__name__}")
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.core = core
        self.decoder = nn.Linear(core.hidden_size, vocab_size)

    @property
    def plastic(self) -> bool:
        return isinstance(self.core, PlasticLSTM)

    def forward(self, ids: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """``ids [B, T]`` -> ``(logits [B, T, V], state)``; ``state=None`` starts from zeros."""
        out, state = self.core(self.embedding(ids), state)
        return self.decoder(out), state


def detach_state(state: Any) -> Any:
    """The recurrent state cut from the autograd graph (a PlasticLSTMState or an ``(h, c)`` tuple)."""
    if hasattr(state, "detach"):
        return state.detach()
    return tuple(t.detach() for t in state)


def lstm_parameter_count(vocab_size: int, embedding_dim: int, hidden_size: int) -> int:
    """Parameters of embedding + ``nn.LSTM`` (two bias vectors) + decoder.

    ``V E + 4 H (E + H) + 8 H + H V + V``.
    """
    v, e, h = (check_int(name, value) for name, value in
               (("vocab_size", vocab_size), ("embedding_dim", embedding_dim), ("hidden_size", hidden_size)))
    return v * e + 4 * h * (e + h) + 8 * h + h * v + v


def matched_lstm_hidden_size(target: int, vocab_size: int, embedding_dim: int) -> int:
    """The LSTM hidden size whose :func:`lstm_parameter_count` is the closest to ``target``.

    Solves ``4 H^2 + (4 E + 8 + V) H + V E + V = target`` and picks the better of the integers around the root.
    """
    check_int("target", target)
    check_int("vocab_size", vocab_size)
    check_int("embedding_dim", embedding_dim)
    a, b, c = 4.0, 4.0 * embedding_dim + 8 + vocab_size, float(vocab_size * embedding_dim + vocab_size - target)
    root = (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)
    candidates = {max(1, math.floor(root) + k) for k in (-1, 0, 1, 2)}
    return min(candidates, key=lambda h: (abs(lstm_parameter_count(vocab_size, embedding_dim, h) - target), h))


def init_like_plastic_cell(lstm: nn.LSTM) -> None:
    """Initialise a one-layer ``nn.LSTM`` as :class:`PlasticLSTMCell` initialises its non-plastic weights.

    Input weights and bias ``U(±1/sqrt(E))`` (``nn.Linear``'s default), recurrent weights ``U(±1/sqrt(H))``,
    recurrent bias 0, forget-gate bias 1. With alpha = 0 the plastic LSTM then computes the same function
    class from the same initial distribution, so the comparison isolates plasticity and neuromodulation.
    """
    hidden, inputs = lstm.hidden_size, lstm.input_size
    with torch.no_grad():
        nn.init.uniform_(lstm.weight_ih_l0, -1 / math.sqrt(inputs), 1 / math.sqrt(inputs))
        nn.init.uniform_(lstm.bias_ih_l0, -1 / math.sqrt(inputs), 1 / math.sqrt(inputs))
        nn.init.uniform_(lstm.weight_hh_l0, -1 / math.sqrt(hidden), 1 / math.sqrt(hidden))
        lstm.bias_hh_l0.zero_()
        lstm.bias_ih_l0[hidden: 2 * hidden].fill_(1.0)  # PyTorch's gate order: input, forget, cell, output


@torch.no_grad()
def evaluate_bpc(
    model: CharLanguageModel, encoded: Tensor, batch_size: int, seq_len: int
) -> tuple[float, list[float]]:
    """Bits per character of ``model`` on ``encoded [L]``, read as ``batch_size`` streams with carried state.

    Every character after the first of each stream is predicted once (see
    :func:`neuroplastic.tasks.sequential_batches`); the state starts at zero and is carried across windows.
    The model runs in eval mode; its previous mode is restored.

    Returns:
        ``(bpc, per_window)``: the mean over all predicted characters, and the mean of each consecutive window
        (so ``per_window[k]`` shows how prediction improves with ``k * seq_len`` characters of context).
    """
    was_training = model.training
    model.eval()
    state = None
    total, count, per_window = 0.0, 0, []
    for inputs, targets in sequential_batches(encoded, batch_size, seq_len):
        logits, state = model(inputs, state)
        nats = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
        total += float(nats)
        count += targets.numel()
        per_window.append(bits_per_character(float(nats) / targets.numel()))
    model.train(was_training)
    return bits_per_character(total / count), per_window


@torch.no_grad()
def sample_text(
    model: CharLanguageModel, vocab: CharVocabulary, prompt: str, length: int, temperature: float,
    generator: torch.Generator,
) -> str:
    """Generate ``length`` characters after ``prompt`` by sampling ``softmax(logits / temperature)``.

    The model is left in training mode afterwards.
    """
    model.eval()
    logits, state = model(vocab.encode(prompt).unsqueeze(0))
    out = []
    for _ in range(length):
        probs = torch.softmax(logits[0, -1] / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=generator)
        out.append(int(nxt))
        logits, state = model(nxt.view(1, 1), state)
    model.train()
    return vocab.decode(out)
