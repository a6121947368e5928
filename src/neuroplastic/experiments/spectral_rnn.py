"""Spectral training of an input-output RNN: recovery error against sample count, the failure when the
activation's third derivative has zero mean, and a comparison with backprop.

Sedghi & Anandkumar 2016, "Training input-output recurrent neural networks through spectral methods" (arXiv
1603.00954). The data come from a known IO-RNN ``h_t = tanh(A x_t + U h_{t-1})``, ``y_t = c^T h_t`` with
``d = 8`` inputs, ``k = 3`` hidden units, i.i.d. inputs ``x_t ~ N(0, I)``. The input weights are recovered from
the pairs ``(x_t, y_t)`` by the cross-moment tensor ``E[y_t S3(x_t)] = sum_j lambda_j a_j^(x)3``, whitening and
the tensor power method (:func:`neuroplastic.dynamics.spectral_input_weights`; with i.i.d. inputs the previous
state acts as a random bias independent of ``x_t``, so the per-step decomposition applies). The error is
``max_j (1 - |cos(a_j, a_hat_j)|)`` (best matching), one value per (sample count, data draw).

Phases: ``tanh`` (each sample count x ``repeats`` data draws); ``square`` (the per-step network with
``sigma(z) = z^2``, ``U = 0`` since a square recurrence diverges: ``E[sigma'''] = 0``, the tensor is pure noise);
``backprop`` (the same IO-RNN, ``torch.nn.RNN`` without bias plus a linear readout, trained by full-batch Adam
from random initialisation on the smallest sample count's sequences, against the spectral fit on the same data:
``A_hat`` then the output layer by least squares on ``tanh(A_hat x_t)``, a per-step readout that ignores ``U``).

Deviations: only i.i.d. Gaussian inputs (the paper's Markov inputs need conditional score functions, not
implemented); ``U`` is not recovered spectrally; rows of ``A`` are unit vectors (the scale is not identified by
the method). Wall-clock times go to ``timing.json`` (not metrics, which must be reproducible).
Measured results: ``docs/results/spectral-rnn.md``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from neuroplastic.dynamics.spectral import (
    fit_output_layer,
    recovery_error,
    simulate_io_rnn,
    spectral_input_weights,
)
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param

__all__ = ["Config", "run", "EXPERIMENT", "CLAIMS", "SLOPE_MAX", "SQUARE_ERROR_MIN"]

PAPER = ("Sedghi & Anandkumar 2016, Training input-output recurrent neural networks through spectral methods "
         "(arXiv 1603.00954)")

SLOPE_MAX = -0.7          # log-log slope of the recovery error against n that counts as "roughly 1/n"
SQUARE_ERROR_MIN = 0.1    # recovery error that counts as "failed" for sigma(z) = z^2


@dataclass
class Config:
    """The true network, the sample counts and the backprop baseline."""

    inputs: int = param(8, minimum=1, maximum=64)
    hidden: int = param(3, minimum=1, maximum=8)
    recurrent_scale: float = param(0.5, minimum=0, maximum=0.9)
    sequence_length: int = param(50, minimum=1)
    sample_sizes: tuple[int, ...] = param((50_000, 200_000, 800_000), minimum=1, min_length=2)
    repeats: int = param(3, minimum=1)
    restarts: int = param(10, minimum=1)
    square_samples: int = param(800_000, minimum=1)
    validation_sequences: int = param(200, minimum=1)
    bp_steps: int = param(1000, minimum=1)
    bp_lr: float = param(0.02, minimum=0, exclusive_minimum=True, maximum=1)
    bp_eval_every: int = param(25, minimum=1)

    def check(self) -> None:
        if self.hidden > self.inputs:
            raise config_error(self, "hidden", f"at most inputs ({self.inputs})")
        if any(b <= a for a, b in zip(self.sample_sizes, self.sample_sizes[1:], strict=False)):
            raise config_error(self, "sample_sizes", "strictly increasing")
        for name in ("sample_sizes", "square_samples"):
            smallest = min(self.sample_sizes) if name == "sample_sizes" else self.square_samples
            if smallest < self.sequence_length or smallest < 4 * self.hidden:
                raise config_error(self, name, f"at least sequence_length ({self.sequence_length}) and "
                                   f"4 * hidden samples")
        if self.bp_eval_every > self.bp_steps:
            raise config_error(self, "bp_eval_every", f"at most bp_steps ({self.bp_steps})")


def true_network(config: Config, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``A [k, d]`` (unit rows), ``U [k, k]`` (entries N(0, scale^2 / k)) and ``c [k]`` (signs alternating,
    magnitudes in [0.5, 1.5]) drawn from the seed (float64)."""
    g = torch.Generator().manual_seed(7919 * seed + 1)
    k = config.hidden
    a = torch.randn(k, config.inputs, generator=g, dtype=torch.float64)
    u = config.recurrent_scale * torch.randn(k, k, generator=g, dtype=torch.float64) / math.sqrt(k)
    signs = torch.tensor([(-1.0) ** j for j in range(k)], dtype=torch.float64)
    c = signs * (0.5 + torch.rand(k, generator=g, dtype=torch.float64))
    return a / a.norm(dim=1, keepdim=True), u, c


def _data(config: Config, n: int, g: torch.Generator, u: torch.Tensor, a: torch.Tensor, c: torch.Tensor,
          activation: str = "tanh") -> tuple[torch.Tensor, torch.Tensor]:
    """``x [B, T, d]``, ``y [B, T]`` with ``B * T >= n`` (whole sequences of length T)."""
    t = config.sequence_length
    x = torch.randn(-(-n // t), t, config.inputs, generator=g, dtype=torch.float64)
    return x, simulate_io_rnn(x, a, u, c, activation)


def _recover(config: Config, seed: int, phase: str, index: int, repeat: int) -> dict[str, float]:
    """One recovery: sample count ``sample_sizes[index]`` (tanh) or ``square_samples`` (square, U = 0)."""
    a, u, c = true_network(config, seed)
    g = torch.Generator().manual_seed(1_000_003 * seed + 1009 * repeat + 17 * index + (5 if phase == "square" else 0))
    if phase == "square":
        n, activation, u = config.square_samples, "square", torch.zeros_like(u)
    else:
        n, activation = config.sample_sizes[index], "tanh"
    x, y = _data(config, n, g, u, a, c, activation)
    started = time.perf_counter()
    a_hat, _ = spectral_input_weights(x.reshape(-1, config.inputs)[:n], y.reshape(-1)[:n], config.hidden,
                                      generator=g, restarts=config.restarts)
    return {"error": _digits(recovery_error(a, a_hat)), "n": n, "seconds": time.perf_counter() - started}


def _digits(value: float) -> float:
    """``value`` to 10 significant digits: LAPACK's SVD and least squares differ in the last bits from one call
    to the next in one process (memory alignment), which would break the exact-resume check."""
    return float(f"{value:.10g}")


def _nmse(prediction: torch.Tensor, y: torch.Tensor) -> float:
    return float((prediction - y).pow(2).mean() / y.var())


def _backprop(config: Config, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """Spectral fit (A_hat, per-step readout) and backprop (full IO-RNN, Adam) on the same data; metrics, times."""
    a, u, c = true_network(config, seed)
    g = torch.Generator().manual_seed(1_000_003 * seed + 999_983)
    n = config.sample_sizes[0]
    x, y = _data(config, n, g, u, a, c)
    xv = torch.randn(config.validation_sequences, config.sequence_length, config.inputs, generator=g,
                     dtype=torch.float64)
    yv = simulate_io_rnn(xv, a, u, c)
    started = time.perf_counter()
    flat_x, flat_y = x.reshape(-1, config.inputs), y.reshape(-1)
    a_hat, _ = spectral_input_weights(flat_x, flat_y, config.hidden, generator=g, restarts=config.restarts)
    readout = fit_output_layer(flat_x, flat_y, a_hat)
    spectral_seconds = time.perf_counter() - started
    spectral_pred = torch.tanh(xv.reshape(-1, config.inputs) @ a_hat.T) @ readout[:-1] + readout[-1]
    spectral_nmse = _nmse(spectral_pred, yv.reshape(-1))

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1000 * seed + 23)
        rnn = nn.RNN(config.inputs, config.hidden, bias=False, batch_first=True, dtype=torch.float64)
        out = nn.Linear(config.hidden, 1, dtype=torch.float64)
    params = list(rnn.parameters()) + list(out.parameters())
    optimizer = torch.optim.Adam(params, lr=config.bp_lr)
    match_step, match_seconds, match_error, bp_nmse, curve = None, None, -1.0, float("nan"), []
    started = time.perf_counter()
    for step in range(1, config.bp_steps + 1):
        optimizer.zero_grad()
        loss = (out(rnn(x)[0])[..., 0] - y).pow(2).mean()
        loss.backward()
        optimizer.step()
        if step % config.bp_eval_every == 0 or step == config.bp_steps:
            with torch.no_grad():
                bp_nmse = _nmse(out(rnn(xv)[0])[..., 0], yv)
            curve.append((step, bp_nmse))
            if match_step is None and bp_nmse <= spectral_nmse:
                match_step, match_seconds = step, time.perf_counter() - started
                match_error = recovery_error(a, rnn.weight_ih_l0.detach())
    bp_seconds = time.perf_counter() - started
    metrics = {
        "spectral_nmse": spectral_nmse, "spectral_bp_data_error": recovery_error(a, a_hat),
        "bp_nmse": bp_nmse, "bp_error": recovery_error(a, rnn.weight_ih_l0.detach()),
        "bp_steps_to_match": match_step if match_step is not None else -1, "bp_error_at_match": match_error,
        "bp_samples": int(x.numel() // config.inputs),
    }
    for step, value in curve:
        metrics[f"bp_nmse_step{step}"] = value
    metrics = {key: _digits(value) if isinstance(value, float) else value for key, value in metrics.items()}
    timing = {"spectral_fit_seconds": spectral_seconds, "bp_seconds": bp_seconds,
              "bp_seconds_to_match": match_seconds if match_seconds is not None else -1.0}
    return metrics, timing


def log_log_slope(ns: list[float], errors: list[float]) -> float:
    """Least-squares slope of ``log(error)`` against ``log(n)``."""
    lx, ly = [math.log(v) for v in ns], [math.log(max(e, 1e-300)) for e in errors]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((p - mx) * (q - my) for p, q in zip(lx, ly, strict=True)) / sum((p - mx) ** 2 for p in lx)


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Recovery errors per sample count (mean over draws), their log-log slope, the square activation's error,
    and the backprop comparison.

    Metrics: ``n{i}``, ``error_n{i}`` (mean over draws), ``error_max_n{i}``, ``slope``, ``square_error`` (mean)
    and ``square_error_min``; ``spectral_nmse``, ``bp_nmse``, ``bp_error``, ``spectral_bp_data_error``,
    ``bp_steps_to_match`` (-1: never) and ``bp_error_at_match`` (the recovery error of backprop's input weights
    then), ``bp_samples``, ``bp_nmse_step{s}``.
    """
    for phase, jobs in (("tanh", [(i, r) for i in range(len(config.sample_sizes)) for r in range(config.repeats)]),
                        ("square", [(0, r) for r in range(config.repeats)])):
        for step in run_dir.steps(len(jobs), phase=phase, checkpoint_every=1, desc=f"spectral-rnn {phase}"):
            index, repeat = jobs[step]
            result = _recover(config, run_dir.seed, phase, index, repeat)
            seconds = result.pop("seconds")
            run_dir.state.setdefault("rows", {})[f"{phase}/{index}/{repeat}"] = result
            run_dir.state.setdefault("timing", {})[f"{phase}/{index}/{repeat}"] = seconds
            run_dir.log(step, n=result["n"], error=result["error"])
    for step in run_dir.steps(1, phase="backprop", checkpoint_every=1, desc="spectral-rnn backprop"):
        result, timing = _backprop(config, run_dir.seed)
        run_dir.state["backprop"] = result
        run_dir.state.setdefault("timing", {}).update(timing)
        run_dir.log(step, n=result["bp_samples"], error=result["bp_error"])
    rows = run_dir.state["rows"]
    metrics: dict[str, Any] = {"sample_sizes": len(config.sample_sizes), "repeats": config.repeats}
    means = []
    for i, n in enumerate(config.sample_sizes):
        errors = [rows[f"tanh/{i}/{r}"]["error"] for r in range(config.repeats)]
        metrics[f"n{i}"], metrics[f"error_n{i}"], metrics[f"error_max_n{i}"] = n, sum(errors) / len(errors), max(errors)
        means.append(metrics[f"error_n{i}"])
    metrics["slope"] = log_log_slope(list(config.sample_sizes), means)
    square = [rows[f"square/0/{r}"]["error"] for r in range(config.repeats)]
    metrics["square_error"], metrics["square_error_min"] = sum(square) / len(square), min(square)
    metrics.update(run_dir.state["backprop"])
    timing = run_dir.state["timing"]
    run_dir.write_json("timing", {"note": "wall clock, seconds, of the decomposition only (data generation "
                                  "excluded); the backprop row is the whole training", **timing})
    _plot(run_dir, config, metrics, rows)
    return metrics


def _plot(run_dir: RunDirectory, config: Config, m: dict[str, Any], rows: dict[str, Any]) -> None:
    """Recovery error against n (log-log, every draw and the mean, a 1/n guide); the backprop NMSE curve."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax, ax_bp = fig.subplots(1, 2)
    ns = list(config.sample_sizes)
    for r in range(config.repeats):
        ax.scatter(ns, [rows[f"tanh/{i}/{r}"]["error"] for i in range(len(ns))], color="gray", s=12)
    means = [m[f"error_n{i}"] for i in range(len(ns))]
    ax.plot(ns, means, "o-", label=f"tanh IO-RNN, mean (slope {m['slope']:.2f})")
    ax.plot(ns, [means[0] * ns[0] / n for n in ns], "k--", lw=0.8, label="1/n")
    ax.axhline(m["square_error"], color="tab:red", label=f"sigma = z^2 at n = {config.square_samples:,}")
    ax.set(xscale="log", yscale="log", xlabel="samples n", ylabel="max_j (1 - |cos(a_j, a_hat_j)|)",
           title=f"spectral recovery, d = {config.inputs}, k = {config.hidden}")
    ax.legend(fontsize=8)
    steps = sorted(int(key[len("bp_nmse_step"):]) for key in m if key.startswith("bp_nmse_step"))
    ax_bp.plot(steps, [m[f"bp_nmse_step{s}"] for s in steps], label="backprop (Adam), IO-RNN")
    ax_bp.axhline(m["spectral_nmse"], color="tab:orange", label="spectral A_hat + least-squares readout")
    ax_bp.set(yscale="log", xlabel="Adam step (full batch)", ylabel="validation NMSE",
              title=f"same {m['bp_samples']:,} samples")
    ax_bp.legend(fontsize=8)
    fig.tight_layout()
    run_dir.save_figure(fig, "recovery_vs_samples")


def error_falls_as_one_over_n(m: dict[str, Any]) -> tuple[bool, Any]:
    return m["slope"] <= SLOPE_MAX, {"slope": round(m["slope"], 3),
                                     "errors": [round(m[f"error_n{i}"], 6) for i in range(int(m["sample_sizes"]))]}


def square_fails(m: dict[str, Any]) -> tuple[bool, Any]:
    return m["square_error_min"] >= SQUARE_ERROR_MIN, {"square_error_min": round(m["square_error_min"], 4),
                                                        "square_error_mean": round(m["square_error"], 4)}


CLAIMS = [
    Claim(PAPER, f"The recovery error max_j (1 - |cos(a_j, a_hat_j)|) of the input weights falls roughly as 1/n "
          f"with the sample count: the log-log slope of the mean error against n is at most {SLOPE_MAX}.",
          error_falls_as_one_over_n),
    Claim(PAPER, "Recovery fails when the activation's third derivative has zero mean (sigma(z) = z^2): the error "
          f"stays at or above {SQUARE_ERROR_MIN} on every data draw at the largest sample count.",
          square_fails),
]

EXPERIMENT = Experiment(
    name="spectral-rnn",
    paper=PAPER,
    description=("Input weights of a known IO-RNN (d = 8, k = 3, tanh, i.i.d. Gaussian inputs) recovered from the "
                 "cross-moment tensor E[y S3(x)] by whitening and the tensor power method: error against sample "
                 "count, failure for sigma(z) = z^2, and the same network trained by backprop."),
    config_class=Config,
    budgets={
        "quick": Config(),
        # more draws and a fourth sample count (3.2M): about 10 minutes of CPU, mostly data generation.
        "full": Config(sample_sizes=(50_000, 200_000, 800_000, 3_200_000), repeats=10, square_samples=3_200_000,
                       bp_steps=5000),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.0,
    main_metric="slope",
    tags=("dynamics", "spectral", "supervised"),
)
