"""Character-level language modelling: a neuromodulated plastic LSTM against a parameter-matched LSTM.

Miconi et al. 2019, Backpropamine (ICLR): neuromodulated plastic LSTMs reach a lower perplexity than
standard LSTMs with the same number of parameters on Penn Treebank (word level). Here: character level, on
the Python standard library's own source code (:func:`neuroplastic.tasks.stdlib_corpus`), or on any text
file given as ``corpus``.

Plastic LSTM (the paper's): the hidden-to-cell-input weights are plastic,
``g_t = tanh(x_t W_xg + h_{t-1} (W_hg + alpha * Hebb_{t-1}) + b_g)``, the other gates as in an LSTM,
``Hebb_t = clip(Hebb_{t-1} + M_t * h_{t-1} ⊗ g_t, ±clip)`` with the neuromodulator
``M_t = tanh(h_t w_m + b_m) w_f + b_f`` (one rate per receiving neuron, "fanout"); alpha per neuron.
Baseline: ``torch.nn.LSTM`` whose hidden size makes its total parameter count (embedding, LSTM and
decoder) the closest to the plastic model's (with per-neuron alpha: the same hidden size, as in the paper's
1149 vs 1150 units), initialised like the plastic cell's fixed weights, so that with alpha = 0 both models
are the same function family from the same initial distribution.

Training: both models see the same batches: the training split is cut into ``batch_size`` contiguous
streams, read in consecutive windows of ``seq_len`` characters; the recurrent state (hidden, cell and, for
the plastic model, the Hebbian traces) is carried from one window to the next and detached (truncated
backpropagation through time), and reset when the streams wrap around. Adam, gradient-norm clipping; alpha
learns at ``lr / N`` (the paper divides alpha's gradient by about N). Evaluation: bits per character on the
held-out tail of the corpus, read the same way without gradients; also the trained plastic model with
alpha set to 0 at test time (a lesion showing how much it relies on its Hebbian traces). The models and
their evaluation are :mod:`neuroplastic.models.language`.

Deviations from the paper: characters of Python source instead of Penn Treebank words, much smaller models
and shorter training (see :class:`Config`), Adam with alpha's learning rate divided instead of its gradient.
Measured results and longer runs: ``docs/results/plastic-lm.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from neuroplastic.evaluation import count_parameters
from neuroplastic.models import (
    CharLanguageModel,
    detach_state,
    evaluate_bpc,
    init_like_plastic_cell,
    matched_lstm_hidden_size,
    sample_text,
)
from neuroplastic.plasticity import ALPHA_GRANULARITIES, BACKPROP_MODES, MODULATIONS, PlasticLSTM
from neuroplastic.runs import Claim, Experiment, RunDirectory, config_error, param
from neuroplastic.runs.plots import metric_series, smooth_curve
from neuroplastic.runs.threads import MAX_THREADS
from neuroplastic.tasks import (
    CharVocabulary,
    bits_per_character,
    read_corpus,
    sequential_batches,
    split_corpus,
    stdlib_corpus,
)

__all__ = ["Config", "EXPERIMENT", "build_models", "load_text", "make_optimizer", "run"]

VARIANTS = ("plastic", "lstm")
LABELS = {"plastic": "plastic LSTM (neuromodulated)", "lstm": "LSTM (parameter-matched)"}
COLORS = {"plastic": "C3", "lstm": "C0"}


@dataclass
class Config:
    """Settings of the plastic-lm experiment (see the module docstring)."""

    corpus: str = ""  # a UTF-8 text file; "" uses the Python standard library's source code
    max_chars: int = param(400_000, minimum=0)  # characters of the corpus used (0: all of it)
    # trailing share of the corpus held out for validation
    valid_fraction: float = param(0.1, minimum=0, exclusive_minimum=True, maximum=1, exclusive_maximum=True)
    embedding_dim: int = param(32, minimum=1)
    hidden_size: int = param(128, minimum=1)  # N of the plastic LSTM; the LSTM's matches the parameter count
    # plasticity coefficients: "neuron" (the paper's PTB model), "connection", "scalar"
    alpha: str = param("neuron", choices=ALPHA_GRANULARITIES)
    # "simple" (Backpropamine), "retroactive", "none" (plain Hebbian plasticity)
    modulation: str = param("simple", choices=MODULATIONS)
    clip: float = param(2.0, minimum=0, exclusive_minimum=True, finite=False)  # bound of the Hebbian traces
    alpha_init: float = 0.01
    # alpha's learning rate is lr / alpha_lr_divisor; 0: hidden_size (the paper)
    alpha_lr_divisor: float = param(0.0, minimum=0, finite=False)
    backprop: str = param("auto", choices=BACKPROP_MODES)  # how the plastic LSTM backpropagates through its traces
    batch_size: int = param(32, minimum=1)
    seq_len: int = param(64, minimum=1)  # truncated-BPTT window
    steps: int = param(400, minimum=1)  # optimizer steps per model
    lr: float = param(3e-3, minimum=0, exclusive_minimum=True)
    grad_clip: float = param(1.0, minimum=0, exclusive_minimum=True, finite=False)  # max gradient norm
    eval_every: int = param(50, minimum=1)
    eval_batch: int = param(16, minimum=1)  # parallel streams of the validation text
    # validation characters read at intermediate evaluations (0: the whole split)
    eval_chars: int = param(0, minimum=0)
    sample_chars: int = param(240, minimum=0)
    temperature: float = param(0.7, minimum=0, exclusive_minimum=True, finite=False)
    # PyTorch intra-op threads for the run (the runner sets them; 0 leaves PyTorch's setting alone, as the full
    # budget does); one thread at the quick budget (timings on the results page)
    threads: int = param(1, minimum=0)

    def check(self) -> None:  # a missing file is a bad value, refused with the others before the run starts
        if self.threads > MAX_THREADS:
            raise config_error(self, "threads", f"at most {MAX_THREADS} (0: PyTorch's setting)")
        if 0 < self.eval_chars <= self.eval_batch:  # eval_batch streams of at least one character and its target
            raise config_error(self, "eval_chars", f"0 (the whole split) or more than eval_batch ({self.eval_batch})")
        if self.corpus and not Path(self.corpus).is_file():
            raise config_error(self, "corpus", "a text file, or '' for the standard library's source")


def build_models(config: Config, vocab_size: int) -> dict[str, CharLanguageModel]:
    """The plastic LSTM language model and the standard LSTM one with (about) its parameter count."""
    core = PlasticLSTM(
        config.embedding_dim, config.hidden_size, modulation=config.modulation, clip=config.clip,
        alpha=config.alpha, alpha_init=config.alpha_init, backprop=config.backprop,
    )
    plastic = CharLanguageModel(vocab_size, config.embedding_dim, core)
    hidden = matched_lstm_hidden_size(count_parameters(plastic, trainable_only=True), vocab_size, config.embedding_dim)
    lstm_core = nn.LSTM(config.embedding_dim, hidden, batch_first=True)
    init_like_plastic_cell(lstm_core)
    return {"plastic": plastic, "lstm": CharLanguageModel(vocab_size, config.embedding_dim, lstm_core)}


def make_optimizer(model: CharLanguageModel, config: Config) -> torch.optim.Adam:
    """Adam at ``lr``; the plastic model's alpha at ``lr / alpha_lr_divisor`` (default ``lr / N``).

    Miconi et al. divide the gradient of the per-neuron alpha by about N (``--agdiv 1149`` for 1149 units)
    for stability under SGD; under Adam, which normalises gradient scale away, the equivalent is to divide
    alpha's learning rate.
    """
    alpha = [p for n, p in model.named_parameters() if n.endswith("synapses.alpha")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("synapses.alpha")]
    groups = [{"params": rest, "lr": config.lr}]
    if alpha:
        divisor = config.alpha_lr_divisor or config.hidden_size
        groups.append({"params": alpha, "lr": config.lr / divisor})
    return torch.optim.Adam(groups, lr=config.lr)


# ---------------------------------------------------------------------------------------------- run
def load_text(config: Config) -> str:
    """The corpus text: ``config.corpus`` if set, else the standard library's source; cut to ``max_chars``."""
    limit = config.max_chars if config.max_chars > 0 else None
    if config.corpus:
        text = read_corpus(config.corpus)
        return text if limit is None else text[:limit]
    return stdlib_corpus(max_chars=limit)


def _train(name: str, model: CharLanguageModel, config: Config, train: Tensor, valid: Tensor,
           run_dir: RunDirectory) -> None:
    """Train one model for ``config.steps`` windows in phase ``name``, evaluating every ``eval_every``."""
    optimizer = make_optimizer(model, config)
    run_dir.track(model=model, optimizer=optimizer)
    windows = list(sequential_batches(train, config.batch_size, config.seq_len))
    eval_text = valid[: config.eval_chars] if 0 < config.eval_chars < valid.numel() else valid
    for step in run_dir.steps(config.steps, phase=name, checkpoint_every=max(1, config.eval_every)):
        index = step % len(windows)
        inputs, targets = windows[index]
        state = run_dir.state.get(f"carry_{name}") if index > 0 else None  # fresh state when streams wrap
        started = time.perf_counter()
        logits, state = model(inputs.to(run_dir.device), state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).to(run_dir.device))
        optimizer.zero_grad()
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        # wall clock, in state (restored on resume) so that it sums over the processes of a resumed run
        timing = run_dir.state.setdefault("timing", {}).setdefault(name, {"seconds": 0.0, "steps": 0})
        timing["seconds"] += time.perf_counter() - started
        timing["steps"] += 1
        run_dir.state[f"carry_{name}"] = detach_state(state)
        row = {"train_bpc": bits_per_character(loss), "grad_norm": float(grad_norm)}
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            row["valid_bpc"], _ = evaluate_bpc(model, eval_text, config.eval_batch, config.seq_len)
        run_dir.log(step, **{f"{name}_{key}": value for key, value in row.items()})


def _plot_learning_curves(rows: list[dict[str, Any]], results: dict[str, Any]) -> Figure:
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_train, ax_valid = fig.subplots(1, 2)
    for name in VARIANTS:
        steps, values = metric_series(rows, f"{name}_train_bpc")
        if len(values):
            label = f"{LABELS[name]}, {results[name + '_params']:,} params"
            ax_train.plot(steps + 1, values, color=COLORS[name], alpha=0.2, linewidth=0.8)
            ax_train.plot(steps + 1, smooth_curve(values), color=COLORS[name], label=label)
        steps, values = metric_series(rows, f"{name}_valid_bpc")
        ax_valid.plot(steps + 1, values, color=COLORS[name], marker="o", markersize=3, label=LABELS[name])
    ax_train.set(title="training loss (bits per character)", xlabel="step", ylabel="bpc")
    ax_valid.set(title="validation bits per character", xlabel="step", ylabel="bpc")
    for ax in (ax_train, ax_valid):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def _plot_comparison(results: dict[str, Any], per_window: dict[str, list[float]], seq_len: int,
                     timing: dict[str, float]) -> Figure:
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_bar, ax_ctx = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
    values = [results[f"{name}_valid_bpc"] for name in VARIANTS]
    bars = ax_bar.bar(["plastic", "LSTM"], values, color=[COLORS[n] for n in VARIANTS])
    for bar, name, value in zip(bars, VARIANTS, values, strict=True):
        text = f"{value:.3f} bpc\n{results[name + '_params']:,} params"
        if name in timing:
            text += f"\n{timing[name]:.0f} ms/step"
        ax_bar.annotate(text, (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom", fontsize=8)
    ax_bar.set_ylim(0, max(values) * 1.3)
    ax_bar.set(title="final validation bpc", ylabel="bits per character")
    gap = [b - a for a, b in zip(per_window["plastic"], per_window["lstm"], strict=True)]
    ends = [(k + 1) * seq_len for k in range(len(gap))]
    ax_ctx.bar(ends, gap, width=0.8 * seq_len, color=["C2" if g > 0 else "C7" for g in gap])
    ax_ctx.axhline(0, color="black", linewidth=0.8)
    mean_gap = results["bpc_difference"]
    ax_ctx.axhline(mean_gap, color="C3", linestyle="--", linewidth=1, label=f"mean {mean_gap:+.3f} bpc")
    ax_ctx.set(title="LSTM bpc minus plastic bpc, per window of the validation streams\n"
                     "(state and traces start at zero, then carry over; > 0: plastic better)",
               xlabel="characters of each validation stream read", ylabel="bpc difference")
    ax_ctx.grid(alpha=0.3)
    ax_ctx.legend(fontsize=8)
    return fig


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train the plastic LSTM and the parameter-matched LSTM on the same windows; compare validation bpc.

    Miconi et al. 2019, Backpropamine (language modelling). Returns the final validation bits per character of
    both, their parameter counts and hidden sizes; writes learning curves, a comparison figure, samples of
    generated text (``samples.json``) and measured step times (``timing.json``, wall clock, so not part of
    the metrics, which are identical for identical seeds).
    """
    text = load_text(config)
    vocab = CharVocabulary(text)
    train, valid = split_corpus(vocab.encode(text), config.valid_fraction)
    if train.numel() < config.batch_size * (config.seq_len + 1) + 1:
        raise ValueError(
            f"the training split ({train.numel()} characters) is too short for batch_size={config.batch_size} "
            f"streams of seq_len={config.seq_len}; use a longer corpus or a larger max_chars"
        )
    if valid.numel() < config.eval_batch + 1:
        raise ValueError(f"the validation split ({valid.numel()} characters) is too short for eval_batch="
                         f"{config.eval_batch} streams; use a longer corpus, a larger max_chars or valid_fraction")
    models = build_models(config, vocab.size)  # both initialised from the seeded global generator
    for model in models.values():
        model.to(run_dir.device)
    train, valid = train.to(run_dir.device), valid.to(run_dir.device)

    for name in VARIANTS:
        _train(name, models[name], config, train, valid, run_dir)

    results: dict[str, Any] = {
        "vocab_size": vocab.size,
        "train_chars": int(train.numel()),
        "valid_chars": int(valid.numel()),
        "plastic_hidden_size": config.hidden_size,
        "lstm_hidden_size": models["lstm"].core.hidden_size,
    }
    per_window = {}
    for name in VARIANTS:
        results[f"{name}_params"] = count_parameters(models[name], trainable_only=True)
        results[f"{name}_valid_bpc"], per_window[name] = evaluate_bpc(
            models[name], valid, config.eval_batch, config.seq_len)
    results["param_ratio"] = results["lstm_params"] / results["plastic_params"]
    results["bpc_difference"] = results["lstm_valid_bpc"] - results["plastic_valid_bpc"]
    synapses = models["plastic"].core.synapses
    results["plastic_alpha_mean_abs"] = float(synapses.alpha.detach().abs().mean())
    # Lesion: the trained plastic model with its plastic term switched off (alpha = 0) at test time.
    alpha = synapses.alpha.detach().clone()
    with torch.no_grad():
        synapses.alpha.zero_()
        results["plastic_valid_bpc_alpha0"], _ = evaluate_bpc(models["plastic"], valid, config.eval_batch,
                                                              config.seq_len)
        synapses.alpha.copy_(alpha)

    timing = {name: 1000 * t["seconds"] / max(1, t["steps"]) for name, t in run_dir.state.get("timing", {}).items()}
    run_dir.write_json("timing", {f"{name}_ms_per_step": round(ms, 2) for name, ms in timing.items()}
                       | {"note": "wall clock of one training step (forward, backward, clip, Adam)",
                          "threads": torch.get_num_threads(), "backprop": models["plastic"].core.resolved_backprop})

    generator = torch.Generator().manual_seed(run_dir.seed)
    prompt = vocab.decode(valid[:64].cpu())
    samples = {"prompt": prompt}
    for name in VARIANTS:
        samples[name] = sample_text(models[name], vocab, prompt, config.sample_chars, config.temperature, generator)
    run_dir.write_json("samples", samples)

    run_dir.save_figure(_plot_learning_curves(run_dir.metrics, results), "learning_curves")
    run_dir.save_figure(_plot_comparison(results, per_window, config.seq_len, timing), "comparison")
    return results


def _check_plastic_wins(metrics: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    plastic, lstm = metrics["plastic_valid_bpc"], metrics["lstm_valid_bpc"]
    ratio = metrics["param_ratio"]
    measured = {"plastic_valid_bpc": round(plastic, 4), "lstm_valid_bpc": round(lstm, 4),
                "plastic_params": metrics["plastic_params"], "lstm_params": metrics["lstm_params"]}
    return plastic < lstm and abs(ratio - 1) <= 0.01, measured


EXPERIMENT = Experiment(
    name="plastic-lm",
    paper="Miconi et al. 2019, Backpropamine (ICLR)",
    description=(
        "Character-level language modelling of the Python standard library's source: a neuromodulated plastic "
        "LSTM (plastic hidden-to-cell weights, per-neuron alpha, simple neuromodulation, clipped traces) "
        "against a torch.nn.LSTM with the same number of parameters (within 1%), both trained on the same "
        "windows with carried state; validation bits per character."
    ),
    config_class=Config,
    budgets={
        "quick": Config(),
        # The whole standard library (~11 M characters; validation: its last 10%, unittest/ to zoneinfo/).
        "full": Config(max_chars=0, embedding_dim=128, hidden_size=512, batch_size=32, seq_len=128,
                       steps=30_000, lr=2e-3, eval_every=1000, eval_batch=64, eval_chars=200_000, threads=0),
    },
    run=run,
    claims=[
        Claim(
            paper="Miconi et al. 2019, Backpropamine (ICLR)",
            statement=("A neuromodulated plastic LSTM reaches lower validation bits per character than a standard "
                       "LSTM with the same number of parameters (within 1%), trained on the same data."),
            check=_check_plastic_wins,
        ),
    ],
    quick_minutes=3.0,
    main_metric="plastic_train_bpc",
    tags=("plasticity", "neuromodulation", "language-model"),
)
