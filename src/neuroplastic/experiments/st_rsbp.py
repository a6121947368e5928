"""A recurrent spiking network on 8x8 digits trained by ST-RSBP and by BPTT with surrogate gradients.

Zhang & Li 2019, "Spike-train level backpropagation for training deep recurrent spiking neural networks"
(NeurIPS). ST-RSBP (:mod:`neuroplastic.neurons.st_rsbp`) computes the gradient of a rate loss from spike
counts and spike-train level post-synaptic potentials accumulated online, and handles the recurrent
connections with a linear solve at the spike-train level instead of unrolling in time; its training memory
therefore does not depend on the number of steps ``T``, while backpropagation through time keeps every
step's state for the backward pass.

Network: ``64 -> RecurrentLIF(hidden) -> Linear + LIF(10)``, hard reset to 0 (the model ST-RSBP assumes),
rate-coded input (Bernoulli spikes with probability ``max_rate * pixel`` per step). Loss (both methods): the
paper's ``0.5 * sum_c (o_c - y_c)^2`` between the output spike counts and desired counts (``target_high`` for
the label, ``target_low`` for the others, given as fractions of ``T``). Prediction: the class with the most
output spikes. Both methods start from the same weights, see the same data order and input spikes, use Adam
with the same learning rate for the same number of epochs; accuracy is the final epoch's on the held-out
test split of ``load_digits_dataset`` (no selection on it: the paper's reported figure is its best test
accuracy over epochs).

Memory: the peak bytes of tensors alive during one training step (forward + gradient) on a batch of
``memory_batch`` digits at each ``T`` in ``memory_steps`` (:func:`~neuroplastic.neurons.peak_tensor_bytes`;
the input spikes, made before, are not counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic.data import load_digits_dataset
from neuroplastic.neurons import LIF, STRSBP, RecurrentLIF, peak_tensor_bytes, rate_encode, rate_loss, spiking_forward
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param

__all__ = ["Config", "METHODS", "make_network", "targets_for", "memory_profile", "run", "EXPERIMENT", "CLAIMS"]

PAPER = ("Zhang & Li 2019, Spike-train level backpropagation for training deep recurrent spiking neural networks "
         "(NeurIPS)")
METHODS = ("st_rsbp", "bptt")
MARGIN_POINTS = 5.0
"""Stated before running: ST-RSBP's held-out accuracy is at least BPTT's minus this many points."""
FLAT_TOLERANCE = 0.05
"""Memory counts as flat in T when the largest peak is at most 5% above the smallest."""


@dataclass
class Config:
    """Network, coding, loss and training settings; both methods get the same budget."""

    hidden: int = param(64, minimum=1)
    time_steps: int = param(25, minimum=1)
    tau: float = param(5.0, minimum=0, exclusive_minimum=True)
    threshold: float = param(1.0, minimum=0, exclusive_minimum=True)
    max_rate: float = param(0.6, minimum=0, maximum=1, exclusive_minimum=True)
    target_high: float = param(0.5, minimum=0, maximum=1)
    target_low: float = param(0.12, minimum=0, maximum=1)
    recurrent_std: float = param(0.05, minimum=0)
    hidden_bias: float = param(0.1)
    output_bias: float = param(0.2)
    epochs: int = param(20, minimum=1)
    batch_size: int = param(32, minimum=1)
    lr: float = param(3e-3, minimum=0, exclusive_minimum=True)
    ridge: float = param(1e-3, minimum=0)
    memory_steps: tuple[int, ...] = param((25, 100, 400), minimum=1, min_length=2)
    memory_batch: int = param(8, minimum=1)
    test_fraction: float = param(0.2, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True)
    split_seed: int = param(0, minimum=0)

    def check(self) -> None:
        if self.target_low > self.target_high:
            raise config_error(self, "target_low", f"at most target_high ({self.target_high})")
        if len(set(self.memory_steps)) != len(self.memory_steps):
            raise config_error(self, "memory_steps", "distinct step counts")


def make_network(config: Config, seed: int) -> nn.ModuleList:
    """``[RecurrentLIF(64, hidden), Sequential(Linear(hidden, 10), LIF(10))]``, hard reset, weights from ``seed``.

    The input weights are scaled up (x 3) so that the rate-coded digits drive the hidden layer; the recurrent
    weights are drawn ``N(0, recurrent_std^2)``; ``hidden_bias`` / ``output_bias`` are added to the biases so that
    the neurons fire from the start (ST-RSBP gives a silent neuron no gradient). The global random generator is
    untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        rec = RecurrentLIF(64, config.hidden, tau=config.tau, threshold=config.threshold, reset="hard")
        out = nn.Sequential(nn.Linear(config.hidden, 10),
                            LIF(10, tau=config.tau, threshold=config.threshold, reset="hard", backend="step"))
        with torch.no_grad():
            rec.input_linear.weight.mul_(3.0)
            rec.recurrent_linear.weight.normal_(0.0, config.recurrent_std)
            out[0].weight.mul_(3.0)
            rec.input_linear.bias.add_(config.hidden_bias)
            out[0].bias.add_(config.output_bias)
    return nn.ModuleList([rec, out])


def targets_for(labels: Tensor, config: Config) -> Tensor:
    """Desired output counts ``[B, 10]``: ``target_high * T`` for the label, ``target_low * T`` elsewhere."""
    targets = torch.full((len(labels), 10), config.target_low * config.time_steps, device=labels.device)
    targets[torch.arange(len(labels), device=labels.device), labels] = config.target_high * config.time_steps
    return targets


def _gradient_step(method: str, layers: nn.ModuleList, x: Tensor, targets: Tensor,
                   ridge: float) -> tuple[float, Tensor]:
    """Write the gradients of the rate loss into ``.grad`` (ST-RSBP or BPTT); returns (loss, output counts)."""
    if method == "st_rsbp":
        return STRSBP(list(layers), ridge=ridge).compute_grads(x, targets)
    counts = spiking_forward(list(layers), x).sum(1)
    loss = rate_loss(counts, targets)
    loss.backward()
    return float(loss.detach()), counts.detach()


@torch.no_grad()
def _accuracy(layers: nn.ModuleList, x: Tensor, y: Tensor, config: Config, generator: torch.Generator) -> float:
    correct = 0
    for start in range(0, len(y), 500):
        spikes = rate_encode(x[start:start + 500], config.time_steps, generator, max_rate=config.max_rate)
        counts = spiking_forward(list(layers), spikes).sum(1)
        correct += int((counts.argmax(1) == y[start:start + 500]).sum())
    return correct / len(y)


def _train(method: str, config: Config, run_dir: RunDirectory, data: tuple[Tensor, Tensor, Tensor, Tensor]) -> None:
    """Train one method for ``config.epochs`` epochs in its own phase; store its final held-out accuracy."""
    x_train, y_train, x_test, y_test = data
    seed = 1000 * run_dir.seed
    layers = make_network(config, seed + 17).to(run_dir.device)
    optimizer = torch.optim.Adam(layers.parameters(), lr=config.lr)
    order_gen = torch.Generator().manual_seed(seed + 5)
    spike_gen = torch.Generator(device=run_dir.device).manual_seed(seed + 7)
    run_dir.track(model=layers, optimizer=optimizer, order=order_gen, spikes=spike_gen)
    n = len(y_train)
    for epoch in run_dir.steps(config.epochs, phase=method, checkpoint_every=max(1, config.epochs // 3),
                               desc=f"st-rsbp {method}"):
        order = torch.randperm(n, generator=order_gen).to(run_dir.device)
        loss_sum, correct, rate = 0.0, 0, 0.0
        for start in range(0, n, config.batch_size):
            index = order[start:start + config.batch_size]
            x = rate_encode(x_train[index], config.time_steps, spike_gen, max_rate=config.max_rate)
            optimizer.zero_grad()
            loss, counts = _gradient_step(method, layers, x, targets_for(y_train[index], config), config.ridge)
            optimizer.step()
            loss_sum += loss * len(index)
            correct += int((counts.argmax(1) == y_train[index]).sum())
            rate += float(counts.sum()) / (10 * config.time_steps)
        eval_gen = torch.Generator(device=run_dir.device).manual_seed(seed + 9)
        run_dir.log(epoch, loss=loss_sum / n, train_accuracy=correct / n, output_rate=rate / n,
                    test_accuracy=_accuracy(layers, x_test, y_test, config, eval_gen))
    eval_gen = torch.Generator(device=run_dir.device).manual_seed(seed + 9)
    run_dir.state.setdefault("accuracy", {})[method] = _accuracy(layers, x_test, y_test, config, eval_gen)


def memory_profile(config: Config, x: Tensor, y: Tensor, seed: int) -> dict[str, list[int]]:
    """Peak tensor bytes of one training step of each method at every ``T`` in ``config.memory_steps``.

    ``x: [n, 64]`` digits (the first ``memory_batch`` are used), ``y: [n]`` labels.
    """
    result: dict[str, list[int]] = {m: [] for m in METHODS}
    generator = torch.Generator(device=x.device).manual_seed(seed)
    for steps in config.memory_steps:
        c = Config(**{**config.__dict__, "time_steps": steps})
        spikes = rate_encode(x[:config.memory_batch], steps, generator, max_rate=c.max_rate)
        targets = targets_for(y[:config.memory_batch], c)
        for method in METHODS:
            layers = make_network(c, seed).to(x.device)
            result[method].append(peak_tensor_bytes(
                lambda m=method, s=spikes, t=targets, lay=layers: _gradient_step(m, lay, s, t, config.ridge)))
    return result


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Train both methods; measure their memory at several ``T``. Metrics: ``{method}_accuracy`` (final epoch,
    held-out), ``accuracy_difference`` (ST-RSBP - BPTT, fraction), ``{method}_bytes_T{T}``, ``{method}_growth``
    (largest / smallest peak), ``bptt_linearity`` (the increase per step between the last two ``T`` over that
    between the first two: 1 for exactly linear growth)."""
    x_train, y_train = load_digits_dataset("train", test_fraction=config.test_fraction, seed=config.split_seed)
    x_test, y_test = load_digits_dataset("test", test_fraction=config.test_fraction, seed=config.split_seed)
    data = tuple(t.to(run_dir.device) for t in (x_train, y_train, x_test, y_test))
    metrics: dict[str, Any] = {"time_steps": config.time_steps, "test_size": len(y_test), "epochs": config.epochs}
    for method in METHODS:
        _train(method, config, run_dir, data)
    for method in METHODS:
        metrics[f"{method}_accuracy"] = run_dir.state["accuracy"][method]
    metrics["accuracy_difference"] = metrics["st_rsbp_accuracy"] - metrics["bptt_accuracy"]
    memory = memory_profile(config, data[2], data[3], 1000 * run_dir.seed + 17)
    steps = list(config.memory_steps)
    for method, values in memory.items():
        for t, b in zip(steps, values, strict=True):
            metrics[f"{method}_bytes_T{t}"] = b
        metrics[f"{method}_growth"] = max(values) / min(values)
    order = sorted(range(len(steps)), key=lambda k: steps[k])
    s, b = [steps[k] for k in order], [memory["bptt"][k] for k in order]
    first = (b[1] - b[0]) / (s[1] - s[0])
    last = (b[-1] - b[-2]) / (s[-1] - s[-2])
    metrics["bptt_linearity"] = last / first if first > 0 else math.nan
    _plot(run_dir, config, metrics, memory)
    return metrics


def _plot(run_dir: RunDirectory, config: Config, m: dict[str, Any], memory: dict[str, list[int]]) -> None:
    from matplotlib.figure import Figure

    from neuroplastic.runs.plots import metric_series

    fig = Figure(figsize=(11, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for method, color in zip(METHODS, ("tab:blue", "tab:red"), strict=True):
        steps, values = metric_series([r for r in run_dir.metrics if r["phase"] == method], "test_accuracy")
        left.plot(steps + 1, 100 * values, color=color, label=f"{method}: final {100 * m[f'{method}_accuracy']:.1f}%")
        right.plot(list(config.memory_steps), [b / 1e6 for b in memory[method]], "o-", color=color, label=method)
    left.set_xlabel("epoch")
    left.set_ylabel(f"held-out accuracy (%, {m['test_size']} digits)")
    left.set_title(f"recurrent SNN on 8x8 digits, T = {config.time_steps}")
    left.legend(fontsize=8)
    right.set_xlabel("time steps T")
    right.set_ylabel("peak tensor memory of a training step (MB)")
    right.set_title(f"batch {config.memory_batch}")
    right.legend(fontsize=8)
    run_dir.save_figure(fig, "st_rsbp")


def _accuracy_claim(m: dict[str, Any]) -> tuple[bool, Any]:
    diff = 100 * m["accuracy_difference"]
    return diff >= -MARGIN_POINTS, {"st_rsbp_accuracy": round(m["st_rsbp_accuracy"], 4),
                                    "bptt_accuracy": round(m["bptt_accuracy"], 4),
                                    "difference_points": round(diff, 2), "margin_points": MARGIN_POINTS}


def _memory_claim(m: dict[str, Any]) -> tuple[bool, Any]:
    flat = m["st_rsbp_growth"] <= 1.0 + FLAT_TOLERANCE
    linear = m["bptt_growth"] > 2.0 and 0.8 <= m["bptt_linearity"] <= 1.25
    return flat and linear, {"st_rsbp_growth": round(m["st_rsbp_growth"], 3),
                             "bptt_growth": round(m["bptt_growth"], 3),
                             "bptt_linearity": round(m["bptt_linearity"], 3)}


CLAIMS = [
    Claim(PAPER, f"ST-RSBP reaches a held-out accuracy within {MARGIN_POINTS:g} points of BPTT with surrogate "
                 "gradients (ST-RSBP >= BPTT - 5 points) on the same recurrent SNN at equal epochs.",
          _accuracy_claim),
    Claim(PAPER, "ST-RSBP's training memory is flat in T (largest peak <= 1.05 x smallest over the measured T) "
                 "while BPTT's grows linearly (largest / smallest > 2 and the per-step increase between the last "
                 "two T within [0.8, 1.25] x that between the first two).",
          _memory_claim),
]

EXPERIMENT = Experiment(
    name="st-rsbp",
    paper=PAPER,
    description=("A recurrent SNN (64-H recurrent LIF-10 LIF, hard reset, rate-coded 8x8 digits) trained by "
                 "spike-train level backprop (ST-RSBP) and by BPTT with surrogate gradients on the same rate loss "
                 "at equal epochs; held-out accuracy and peak tensor memory of a training step at T = 25, 100, 400."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(hidden=200, epochs=60),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=2.5,
    main_metric="test_accuracy",
    tags=("spiking", "neurons", "supervised"),
)
