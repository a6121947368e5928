"""Training a quine: optimisation, regeneration, or both alternating; and the auxiliary quine's training.

Chang & Lipson 2018, "Neural network quine". Three schedules of :class:`QuineSchedule`:

- ``"optimise"``: each step is one optimiser step on the replication loss ``sum_i (w_hat_i - w_i)^2`` (target
  detached) over a batch of parameter indices (all of them when ``batch_size`` is None);
- ``"regenerate"``: each step is one regeneration ``theta <- f_theta(all indices)``, no optimiser;
- ``"alternate"``: optimiser steps, and after every ``regenerate_every`` of them a regeneration (None: at the end of
  each epoch, one pass over the shuffled indices, the paper's schedule).

A step's record (every ``record_every`` steps and at the last one): the replication loss (sum over all ``D``
parameters), the relative error ``||w_hat - w|| / ||w||`` and the parameter norm ``||theta||``, measured after the
step. Batches come from a permutation per epoch drawn from the trainer's generator, so a run is deterministic
given the generator's seed; :meth:`QuineTrainer.state_dict` holds the quine, the optimiser, the generator, the
epoch's permutation and the history, and a trainer restored from it continues bit-exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_int, check_number, check_optional_int, check_tensor

from .quine import REDUCTIONS, AuxiliaryQuine, Quine

__all__ = [
    "SCHEDULES",
    "AuxiliaryTrainer",
    "QuineSchedule",
    "QuineTrainer",
    "train_alternating",
    "train_optimisation",
    "train_regeneration",
]

SCHEDULES = ("optimise", "regenerate", "alternate")
HISTORY_KEYS = ("step", "loss", "relative_error", "norm", "regenerations")


@dataclass(frozen=True)
class QuineSchedule:
    """How a :class:`QuineTrainer` steps (module docstring).

    Args:
        mode: ``"optimise"``, ``"regenerate"`` or ``"alternate"``.
        regenerate_every: optimiser steps per regeneration in ``"alternate"``; None: once per epoch.
        batch_size: parameter indices per optimiser step; None: all ``D`` (one step is one epoch).
        reduction: of the replication loss that is optimised, ``"sum"`` (the paper's) or ``"mean"``.
        record_every: steps between history records (the last step is always recorded).
    """

    mode: str = "alternate"
    regenerate_every: int | None = None
    batch_size: int | None = None
    reduction: str = "sum"
    record_every: int = 1

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, SCHEDULES)
        check_optional_int("regenerate_every", self.regenerate_every, minimum=1)
        check_optional_int("batch_size", self.batch_size, minimum=1)
        check_choice("reduction", self.reduction, REDUCTIONS)
        check_int("record_every", self.record_every, minimum=1)


def _check_generator(generator: object) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator


def _check_optimizer(optimizer: object, needed: bool) -> None:
    if optimizer is None and needed:
        raise ValueError("optimizer must be a torch.optim.Optimizer for the 'optimise' and 'alternate' schedules, "
                         "got None")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")


class _Batches:
    """Batches of ``range(n)`` from one permutation per epoch (drawn from ``generator``), resumable."""

    def __init__(self, n: int, batch_size: int | None, generator: torch.Generator) -> None:
        self.n, self.size, self.generator = n, min(batch_size or n, n), generator
        self.order: Tensor | None = None
        self.cursor = 0

    @property
    def per_epoch(self) -> int:
        return math.ceil(self.n / self.size)

    def next(self) -> tuple[Tensor | None, bool]:
        """(indices, or None for all in order; whether the epoch ended with this batch)."""
        if self.size == self.n:
            return None, True
        if self.order is None or self.cursor >= self.n:
            self.order, self.cursor = torch.randperm(self.n, generator=self.generator), 0
        batch = self.order[self.cursor:self.cursor + self.size]
        self.cursor += self.size
        return batch, self.cursor >= self.n

    def state(self) -> dict[str, Any]:
        return {"order": None if self.order is None else self.order.clone(), "cursor": self.cursor}

    def load(self, state: dict[str, Any]) -> None:
        self.order = None if state["order"] is None else state["order"].clone()
        self.cursor = int(state["cursor"])


class _Trainer:
    """Shared history, step counting and state of the two trainers."""

    module: Quine | AuxiliaryQuine
    optimizer: torch.optim.Optimizer | None

    def _init(self, generator: torch.Generator | None, record_every: int) -> None:
        self.generator = _check_generator(generator)
        self.record_every = record_every
        self.steps = 0
        self.regenerations = 0
        self.history: dict[str, list[float]] = {}

    def _record(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def run(self, steps: int) -> dict[str, list[float]]:
        """Take ``steps`` steps (the last is recorded); returns the whole history (lists keyed by
        :data:`HISTORY_KEYS` and, for the auxiliary quine, ``task_loss``)."""
        check_int("steps", steps, minimum=0)
        for i in range(steps):
            self.step(record=i == steps - 1)
        return self.history

    def step(self, record: bool = False) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed trainer needs: module, optimiser, generator, batches, counters, history."""
        return {"module": self.module.state_dict(),
                "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "batches": self._batches.state(), "steps": self.steps,
                "regenerations": self.regenerations, "history": {k: list(v) for k, v in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the module and the optimiser in place)."""
        self.module.load_state_dict(state["module"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self._batches.load(state["batches"])
        self.steps, self.regenerations = int(state["steps"]), int(state["regenerations"])
        self.history = {k: list(v) for k, v in state["history"].items()}


class QuineTrainer(_Trainer):
    """Trains a :class:`Quine` on its replication loss by a :class:`QuineSchedule` (module docstring).

    Args:
        quine: the quine (trained in place).
        optimizer: over ``quine.parameters()``; may be None for ``"regenerate"``.
        schedule: the schedule.
        generator: draws the batches' permutations; a fresh one seeded 0 when None.
    """

    def __init__(self, quine: Quine, optimizer: torch.optim.Optimizer | None, schedule: QuineSchedule, *,
                 generator: torch.Generator | None = None) -> None:
        if not isinstance(quine, Quine):
            raise TypeError(f"quine must be a Quine, got {type(quine).__name__}")
        if not isinstance(schedule, QuineSchedule):
            raise TypeError(f"schedule must be a QuineSchedule, got {type(schedule).__name__}")
        _check_optimizer(optimizer, schedule.mode != "regenerate")
        self.module, self.optimizer, self.schedule = quine, optimizer, schedule
        self._init(generator, schedule.record_every)
        self._batches = _Batches(quine.num_parameters, schedule.batch_size, self.generator)
        self.optimizer_steps = 0

    def step(self, record: bool = False) -> None:
        """One step of the schedule; recorded every ``record_every`` steps or when ``record``."""
        quine, schedule = self.module, self.schedule
        regenerate = schedule.mode == "regenerate"
        if schedule.mode != "regenerate":
            assert self.optimizer is not None
            indices, epoch_end = self._batches.next()
            self.optimizer.zero_grad(set_to_none=True)
            quine.replication_loss(indices, schedule.reduction).backward()
            self.optimizer.step()
            self.optimizer_steps += 1
            if schedule.mode == "alternate":
                every = schedule.regenerate_every
                regenerate = epoch_end if every is None else self.optimizer_steps % every == 0
        if regenerate:
            quine.regenerate()
            self.regenerations += 1
        self.steps += 1
        if record or self.steps % self.record_every == 0:
            with torch.no_grad():
                predicted, weights = quine.predict_parameters(), quine.flat_parameters()
                norm = torch.linalg.vector_norm(weights)
                diff = torch.linalg.vector_norm(predicted - weights)
            self._record({"step": self.steps, "loss": float(diff.square()),
                          "relative_error": float(diff / norm) if float(norm) > 0 else math.inf,
                          "norm": float(norm), "regenerations": self.regenerations})

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "optimizer_steps": self.optimizer_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.optimizer_steps = int(state["optimizer_steps"])


def train_optimisation(quine: Quine, optimizer: torch.optim.Optimizer, steps: int, *, batch_size: int | None = None,
                       generator: torch.Generator | None = None, record_every: int = 1) -> dict[str, list[float]]:
    """Optimisation only: ``steps`` optimiser steps on the replication loss; returns the history."""
    schedule = QuineSchedule("optimise", batch_size=batch_size, record_every=record_every)
    return QuineTrainer(quine, optimizer, schedule, generator=generator).run(steps)


def train_regeneration(quine: Quine, steps: int, *, record_every: int = 1) -> dict[str, list[float]]:
    """Regeneration only: ``steps`` regenerations ``theta <- f_theta(all indices)``; returns the history."""
    return QuineTrainer(quine, None, QuineSchedule("regenerate", record_every=record_every)).run(steps)


def train_alternating(quine: Quine, optimizer: torch.optim.Optimizer, steps: int, *,
                      regenerate_every: int | None = None, batch_size: int | None = None,
                      generator: torch.Generator | None = None, record_every: int = 1) -> dict[str, list[float]]:
    """``steps`` optimiser steps with a regeneration after every ``regenerate_every`` of them (None: each epoch);
    returns the history."""
    schedule = QuineSchedule("alternate", regenerate_every=regenerate_every, batch_size=batch_size,
                             record_every=record_every)
    return QuineTrainer(quine, optimizer, schedule, generator=generator).run(steps)


class AuxiliaryTrainer(_Trainer):
    """Trains an :class:`AuxiliaryQuine` on ``L = L_sr_mean + task_weight * CE`` (``AuxiliaryQuine.loss``).

    Each step: a batch of ``batch_size`` images from a permutation of the training set per epoch, each paired with
    a random parameter index; every parameter index paired with a random training image for the replication term;
    one optimiser step; and, if ``regenerate_every`` is set, a regeneration (with the same pairing) after every
    ``regenerate_every`` optimiser steps. All draws from ``generator``. Records ``loss`` (the sum-squared
    replication error), ``relative_error``, ``norm`` (with this step's pairing) and ``task_loss``.

    Args:
        quine: the auxiliary quine.
        optimizer: over ``quine.parameters()``.
        images: ``[N, F]`` training images; labels: ``[N]`` long.
        task_weight: lambda, a finite number >= 0.
        batch_size: images per step.
        regenerate_every: optimiser steps per regeneration, or None (never).
        generator, record_every: as :class:`QuineTrainer`.
    """

    def __init__(self, quine: AuxiliaryQuine, optimizer: torch.optim.Optimizer, images: Tensor, labels: Tensor, *,
                 task_weight: float, batch_size: int = 64, regenerate_every: int | None = None,
                 generator: torch.Generator | None = None, record_every: int = 1) -> None:
        if not isinstance(quine, AuxiliaryQuine):
            raise TypeError(f"quine must be an AuxiliaryQuine, got {type(quine).__name__}")
        _check_optimizer(optimizer, True)
        check_tensor("images", images, ("N", quine.in_features), like=quine.projection,
                     like_name="the quine's buffers")
        if images.shape[0] == 0:
            raise ValueError("images must hold at least one image, got N = 0")
        quine._labels(labels, images.shape[0])
        self.task_weight = float(check_number("task_weight", task_weight, minimum=0))
        check_int("batch_size", batch_size, minimum=1)
        self.regenerate_every = check_optional_int("regenerate_every", regenerate_every, minimum=1)
        self.module, self.optimizer, self.images, self.labels = quine, optimizer, images, labels
        self._init(generator, check_int("record_every", record_every, minimum=1))
        self._batches = _Batches(images.shape[0], batch_size, self.generator)

    def step(self, record: bool = False) -> None:
        """One optimiser step (and a regeneration when due); recorded every ``record_every`` steps or when
        ``record``."""
        quine, assert_opt = self.module, self.optimizer
        assert assert_opt is not None
        batch, _ = self._batches.next()
        batch = torch.arange(self.images.shape[0]) if batch is None else batch
        device = self.images.device
        pair = torch.randint(quine.num_parameters, (batch.shape[0],), generator=self.generator).to(device)
        rep_images = self.images[torch.randint(self.images.shape[0], (quine.num_parameters,),
                                               generator=self.generator).to(device)]
        batch = batch.to(device)
        assert_opt.zero_grad(set_to_none=True)
        loss = quine.loss(pair, self.images[batch], self.labels[batch], rep_images, self.task_weight)
        loss.total.backward()
        assert_opt.step()
        self.steps += 1
        if self.regenerate_every is not None and self.steps % self.regenerate_every == 0:
            quine.regenerate(rep_images)
            self.regenerations += 1
        if record or self.steps % self.record_every == 0:
            with torch.no_grad():
                predicted, weights = quine.predict_parameters(rep_images), quine.flat_parameters()
                norm = torch.linalg.vector_norm(weights)
                diff = torch.linalg.vector_norm(predicted - weights)
            self._record({"step": self.steps, "loss": float(diff.square()),
                          "relative_error": float(diff / norm) if float(norm) > 0 else math.inf,
                          "norm": float(norm), "regenerations": self.regenerations,
                          "task_loss": float(loss.task.detach())})
