"""Problems: fitness functions that evaluate a whole population in one process, vectorised over the genomes.

A problem is a plain object that is itself an :class:`~neuroplastic.evolution.protocols.Evaluator`:
``problem(genomes [N, D], seeds [N] int64 | None) -> ProblemEvaluation``, where the fitness of every genome is
computed in one batched computation (``torch.func.vmap`` over ``functional_call`` of the template model). An
evaluator (one process, a pool of processes, Ray actors) runs it on its share of the population; a GA's
``step(problem)`` calls it directly. Besides ``fitness [N]`` a :class:`ProblemEvaluation` reports ``solved [N]``
(bool: the genome solves the task, so that a run can stop), ``experience`` (what each genome saw, for a safe
mutation of its children) and named ``metrics [N]``.

- :class:`SupervisedProblem`: fitness = minus a loss (NLL, cross-entropy, MSE or a callable) on a fixed data set.
- :class:`ParityProblem`: the recurrent parity task of Lehman et al. 2018 (LSTM / GRU / RNN, NLL loss).
- :class:`HardMazeProblem` (module ``maze_problem``): the breadcrumb hard maze.

Recurrent templates (``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` and their cells) run through
:func:`~neuroplastic.evolution.unrolled.unroll_recurrent`, because vmap has no batching rule for the fused
recurrent kernels; the genome layout is the template's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_bool, check_choice, check_int, check_number, check_optional_int
from ..tasks.parity import PARITY_TARGETS, parity_data
from .genome import ParameterLayout
from .protocols import Evaluation
from .unrolled import unroll_recurrent

__all__ = ["LOSSES", "ParityProblem", "ProblemEvaluation", "SequenceClassifier", "SupervisedProblem",
           "check_population"]

LOSSES = ("nll", "cross_entropy", "mse")
CELLS = ("lstm", "gru", "rnn", "rnn_relu")


@dataclass(frozen=True)
class ProblemEvaluation(Evaluation):
    """What a problem returns: ``fitness [N]`` and ``experience`` (as :class:`Evaluation`), ``solved [N]`` bool
    (None when the problem has no notion of solving) and ``metrics``: name -> ``[N]`` tensor."""

    solved: Tensor | None = None
    metrics: Mapping[str, Tensor] = field(default_factory=dict)


def check_population(genomes: Any, seeds: Any, size: int) -> Tensor:
    """Check the arguments of a problem call: ``genomes`` a floating tensor ``[N, size]``; ``seeds`` None or an
    integer tensor ``[N]`` (deterministic problems accept and ignore them). Returns ``genomes``."""
    if not isinstance(genomes, Tensor):
        raise TypeError(f"genomes must be a tensor [N, {size}], got {type(genomes).__name__}")
    if genomes.dim() != 2 or genomes.shape[1] != size:
        raise ValueError(f"genomes must have shape [N, {size}] (the layout's size), got {list(genomes.shape)}")
    if not genomes.is_floating_point():
        raise TypeError(f"genomes must be floating point, got {genomes.dtype}")
    if seeds is not None:
        if (not isinstance(seeds, Tensor) or seeds.is_floating_point() or seeds.is_complex()
                or seeds.dtype == torch.bool):
            raise TypeError(f"seeds must be None or an integer tensor [N], got {getattr(seeds, 'dtype', type(seeds))}")
        if tuple(seeds.shape) != (genomes.shape[0],):
            raise ValueError(f"seeds must have shape [{genomes.shape[0]}] (one per genome), got {list(seeds.shape)}")
    return genomes


class SupervisedProblem:
    """Fitness = minus the loss of each genome's model on a fixed data set, the population in one vmap call.

    ``fitness_i = -L(f(inputs; theta_i), targets)`` with ``L``: "nll" (the model returns log-probabilities
    ``[B, ..., C]``, targets int64 ``[B, ...]``: the mean of ``-log p[target]``), "cross_entropy" (the same from
    logits), "mse" (``mean (f - targets)**2``, targets of the output's shape) or a callable
    ``loss(outputs [N, B, ...], targets) -> [N]``.

    ``solved_i``: for "nll" / "cross_entropy", every prediction ``argmax_c f[..., c]`` equals its target (and
    ``metrics["accuracy"]`` is the fraction that does); otherwise ``loss_i <= tolerance`` (None: solved is None).

    Args:
        model: the template ``nn.Module`` (its trainable parameters make the genome, :class:`ParameterLayout`);
            it must return one tensor. Recurrent modules inside are unrolled for vmap (module docstring).
        inputs: the data set's inputs ``[B, ...]`` (floating: cast to the genomes' dtype and device per call).
        targets: ``[B, ...]`` as the loss requires.
        loss: "nll", "cross_entropy", "mse" or a callable.
        tolerance: the loss at or below which a genome solves the task ("mse" and callables only).
        experience: also return the inputs as every genome's experience, ``[N, B, ...]`` (for a safe mutation).
        chunk_size: evaluate at most this many genomes per vmap call (None: all at once), to bound memory.

    Attributes: ``model`` (the template), ``layout``, ``runner`` (the template with its recurrent modules
    unrolled, :func:`~neuroplastic.evolution.unrolled.unroll_recurrent`: same layout, vmap-compatible; give it to a
    safe mutation that vmaps over samples).
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Tensor,
        targets: Tensor,
        loss: str | Callable[[Tensor, Tensor], Tensor] = "nll",
        *,
        tolerance: float | None = None,
        experience: bool = False,
        chunk_size: int | None = None,
    ) -> None:
        self.layout = ParameterLayout(model)
        self.model = model
        self.runner = unroll_recurrent(model)
        if not isinstance(inputs, Tensor) or not isinstance(targets, Tensor):
            bad, value = ("inputs", inputs) if not isinstance(inputs, Tensor) else ("targets", targets)
            raise TypeError(f"{bad} must be a tensor [B, ...], got {type(value).__name__}")
        if inputs.dim() == 0 or targets.dim() == 0 or inputs.shape[0] != targets.shape[0] or inputs.shape[0] == 0:
            raise ValueError(f"inputs and targets must be [B, ...] with the same B >= 1, got {list(inputs.shape)} "
                             f"and {list(targets.shape)}")
        if not inputs.is_floating_point():
            raise TypeError(f"inputs must be floating point, got {inputs.dtype}")
        if not callable(loss):
            check_choice("loss", loss, LOSSES)
            classify = loss in ("nll", "cross_entropy")
            if classify and (targets.is_floating_point() or targets.dtype == torch.bool):
                raise TypeError(f"targets must be integer class indices for loss={loss!r}, got {targets.dtype}")
            if classify and bool((targets < 0).any()):
                raise ValueError(f"targets must be class indices >= 0 for loss={loss!r}, got {int(targets.min())}")
            if loss == "mse" and not targets.is_floating_point():
                raise TypeError(f"targets must be floating point for loss='mse', got {targets.dtype}")
        if tolerance is not None:
            if loss in ("nll", "cross_entropy"):
                raise ValueError(f"tolerance is for loss='mse' or a callable; loss={loss!r} is solved when every "
                                 f"prediction is correct")
            check_number("tolerance", tolerance, minimum=0)
        self.inputs, self.targets, self.loss = inputs, targets, loss
        self.tolerance = tolerance
        self.experience = check_bool("experience", experience)
        self.chunk_size = check_optional_int("chunk_size", chunk_size)

    def __repr__(self) -> str:
        loss = self.loss if isinstance(self.loss, str) else getattr(self.loss, "__name__", "callable")
        return (f"{type(self).__name__}(genome_size={self.layout.size}, samples={self.inputs.shape[0]}, "
                f"loss={loss!r})")

    def initial_genome(self) -> Tensor:
        """The template's own parameters as a genome ``[D]``."""
        return self.layout.flatten(self.model)

    @property
    def target_fitness(self) -> float | None:
        """A fitness at or above which a genome solves the task, for a GA's ``target_fitness`` (None: none known).

        "mse" / callable with a tolerance: ``-tolerance`` (exact). "nll" / "cross_entropy" over ``M`` labels:
        ``-ln(2) / (2 M)``, sufficient but not necessary: the losses are >= 0, so each label's loss is below
        ``ln 2``, its probability above 1/2, and its prediction correct.
        """
        if self.loss in ("nll", "cross_entropy"):
            return -math.log(2) / (2 * self.targets.numel())
        return None if self.tolerance is None else -float(self.tolerance)

    def outputs(self, genomes: Tensor) -> Tensor:
        """Every genome's outputs on the data set, ``[N, B, ...]``, in the genomes' dtype and device."""
        genomes = check_population(genomes, None, self.layout.size)
        if genomes.shape[0] == 0:  # the output's shape, from one genome of zeros
            return self.outputs(genomes.new_zeros(1, self.layout.size))[:0]
        inputs = self.inputs.to(genomes.device, genomes.dtype)
        step = self.chunk_size or genomes.shape[0]
        parts = []
        with torch.no_grad():
            for start in range(0, genomes.shape[0], step):
                out = self.layout.batched_call(self.runner, genomes[start: start + step], inputs)
                if not isinstance(out, Tensor):
                    raise TypeError(f"the model must return one tensor, got {type(out).__name__} (wrap it so that "
                                    f"forward returns the prediction only)")
                parts.append(out)
        return torch.cat(parts)

    def losses(self, outputs: Tensor) -> tuple[Tensor, Tensor | None]:
        """Per-genome loss ``[N]`` and (classification) accuracy ``[N]`` of ``outputs [N, B, ...]``."""
        targets = self.targets.to(outputs.device)
        n = outputs.shape[0]
        if callable(self.loss):
            loss = self.loss(outputs, targets)
            if not isinstance(loss, Tensor) or tuple(loss.shape) != (n,):
                raise ValueError(f"the loss callable must return a tensor [{n}] (one loss per genome), got "
                                 f"{list(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__}")
            return loss, None
        if self.loss == "mse":
            if outputs.shape[1:] != targets.shape:
                raise ValueError(f"the model's outputs {list(outputs.shape[1:])} must have the targets' shape "
                                 f"{list(targets.shape)} for loss='mse'")
            return (outputs - targets.to(outputs.dtype)).pow(2).flatten(1).mean(1), None
        if outputs.shape[1:-1] != targets.shape:
            raise ValueError(f"the model's outputs {list(outputs.shape[1:])} must be the targets' shape "
                             f"{list(targets.shape)} plus a class dimension for loss={self.loss!r}")
        if int(targets.max()) >= outputs.shape[-1]:
            raise ValueError(f"targets must be class indices below the model's {outputs.shape[-1]} outputs, got "
                             f"{int(targets.max())}")
        log_probs = F.log_softmax(outputs, -1) if self.loss == "cross_entropy" else outputs
        index = targets.expand(n, *targets.shape).unsqueeze(-1)
        loss = -log_probs.gather(-1, index).squeeze(-1).flatten(1).mean(1)
        accuracy = (outputs.argmax(-1) == targets).flatten(1).to(outputs.dtype).mean(1)
        return loss, accuracy

    def __call__(self, genomes: Tensor, seeds: Tensor | None = None) -> ProblemEvaluation:
        """Evaluate ``genomes [N, D]`` (``seeds [N]``: accepted and unused, the data set is fixed)."""
        genomes = check_population(genomes, seeds, self.layout.size)
        outputs = self.outputs(genomes)
        loss, accuracy = self.losses(outputs)
        metrics = {"loss": loss}
        if accuracy is not None:
            metrics["accuracy"] = accuracy
            solved: Tensor | None = accuracy == 1
        else:
            solved = None if self.tolerance is None else loss <= self.tolerance
        experience = None
        if self.experience:
            inputs = self.inputs.to(genomes.device, genomes.dtype)
            experience = inputs.expand(genomes.shape[0], *inputs.shape)
        return ProblemEvaluation(-loss, experience, solved, metrics)


class SequenceClassifier(nn.Module):
    """A stacked recurrent network with a linear read-out of log-probabilities, the network of the recurrent
    parity task (Lehman et al. 2018; the reference code stacks two cells and reads the second one out).

    ``h_t = cell(x_t, h_{t-1})`` through ``num_layers`` layers; ``y = log_softmax(W h_T + b)`` ``[B, C]``, or at
    every step ``[B, T, C]`` with ``every_step``. Input ``x [B, T, input_size]``.

    Args:
        cell: "lstm", "gru", "rnn" (tanh) or "rnn_relu".
        input_size, hidden_size, num_classes, num_layers: sizes (ints >= 1).
        every_step: read out after every step instead of after the last one.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_classes: int, *, num_layers: int = 2,
                 every_step: bool = False) -> None:
        super().__init__()
        check_choice("cell", cell, CELLS)
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_classes", num_classes), ("num_layers", num_layers)):
            check_int(name, value)
        self.every_step = check_bool("every_step", every_step)
        self.cell = cell
        if cell == "lstm":
            self.rnn: nn.Module = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
        elif cell == "gru":
            self.rnn = nn.GRU(input_size, hidden_size, num_layers, batch_first=True)
        else:
            self.rnn = nn.RNN(input_size, hidden_size, num_layers, batch_first=True,
                              nonlinearity="tanh" if cell == "rnn" else "relu")
        self.readout = nn.Linear(hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        hidden, _ = self.rnn(x)
        return F.log_softmax(self.readout(hidden if self.every_step else hidden[:, -1]), -1)


class ParityProblem(SupervisedProblem):
    """The recurrent parity task of Lehman et al. 2018: fitness = minus the NLL of a :class:`SequenceClassifier`
    genome on all ``2**num_bits`` bit sequences (:func:`~neuroplastic.tasks.parity.parity_data`), solved when every
    sequence's parity is classified correctly.

    As the reference code: two stacked cells, a read-out of log-probabilities of the 2 classes after the last
    bit, the NLL averaged over the 16 sequences; the parent's inputs as experience. The template's weights are
    PyTorch's default initialisation drawn under ``seed`` (the global generator is left as it was).

    Args:
        cell: "lstm" (default), "gru", "rnn" or "rnn_relu".
        hidden_size: units per layer (the reference's default: 15).
        num_layers: stacked layers (reference: 2).
        num_bits: sequence length (paper: 4).
        targets: "final" (reference) or "every_step" (a label after each bit).
        experience: return the 16 sequences as every genome's experience.
        dtype: the template's (and so the genomes') dtype.
        seed: seed of the template's initial weights.
    """

    def __init__(self, cell: str = "lstm", hidden_size: int = 15, *, num_layers: int = 2, num_bits: int = 4,
                 targets: str = "final", experience: bool = True, dtype: torch.dtype = torch.float32,
                 seed: int = 0) -> None:
        check_choice("targets", targets, PARITY_TARGETS)
        check_int("seed", seed, minimum=0)
        data = parity_data(num_bits, targets=targets, dtype=dtype)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = SequenceClassifier(cell, 1, hidden_size, 2, num_layers=num_layers,
                                       every_step=targets == "every_step").to(dtype)
        super().__init__(model, data.inputs, data.targets, "nll", experience=experience)
        self.cell, self.num_bits = cell, num_bits
