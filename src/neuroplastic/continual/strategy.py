"""The interface of a continual-learning strategy: hooks the trainer calls before and after each task and
around each step, and the batch they see.

A strategy (fine-tuning, joint training, EWC, replay, and later CLNP and HLOP) changes what
:class:`~neuroplastic.continual.ContinualTrainer` does at fixed points; every hook is a no-op by default. For
task ``i`` the trainer calls::

    before_task(trainer, task)            once, after the task's optimiser is made (resume_task instead when
                                          a trainer loaded in the middle of the task continues)
    training_data(trainer, i) -> Batch    the examples the task trains on (the task's own by default)
    per step, for a batch of the task's training data:
        batch' = before_step(trainer, batch)             e.g. add replayed examples
        logits = trainer.forward(batch'.x, batch'.task_ids)
        loss   = trainer.loss_fn(logits, batch'.y) + loss_term(trainer, batch', logits)   (None adds nothing)
        loss.backward()
        after_backward(trainer, batch')                  e.g. project or mask the gradients
        trainer.optimizer.step()
        after_step(trainer, batch)                       the task's own batch, e.g. fill a buffer
    after_task(trainer, task)             before the evaluation of row i of the accuracy matrix

``trainer`` exposes ``model``, ``optimizer``, ``stream``, ``task_index``, ``device``, ``forward(x, task_ids)``,
``task_data(j)``, ``evaluate(j)`` and ``evaluate_task(task)`` (e.g. on a validation stream). A strategy owns
its random generators and returns everything it needs to continue exactly from ``state_dict()``;
``training_data`` must depend only on the stream, the task index and state fixed at ``before_task`` (it is
called again when a trainer resumes mid-task). Things that are not state (forward hooks on the model, hooks on
the optimiser) are attached in ``before_task`` and again in ``resume_task``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .streams import Task
    from .trainer import ContinualTrainer

__all__ = ["Batch", "Strategy", "FineTuning"]


class Batch(NamedTuple):
    """A batch of examples: inputs ``x [B, ...]``, labels ``y [B]`` (long) and task ids ``task_ids [B]`` (long)."""

    x: Tensor
    y: Tensor
    task_ids: Tensor

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.x.to(device), self.y.to(device), self.task_ids.to(device))

    def __len__(self) -> int:  # type: ignore[override]
        return self.x.shape[0]


class Strategy:
    """A continual-learning strategy: hooks around tasks and steps (all no-ops here; see the module docstring).

    Subclasses override the hooks they need and ``state_dict`` / ``load_state_dict`` when they hold state.
    """

    name = "strategy"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def before_task(self, trainer: ContinualTrainer, task: Task) -> None:
        """Called at the start of task ``task`` (``trainer.optimizer`` is already the task's)."""

    def resume_task(self, trainer: ContinualTrainer, task: Task) -> None:
        """Called instead of :meth:`before_task` when a trainer loaded mid-task continues (state already loaded):
        re-attach hooks or other things that are not state."""

    def training_data(self, trainer: ContinualTrainer, task_index: int) -> Batch:
        """The examples task ``task_index`` trains on: by default its own training set."""
        return trainer.task_data(task_index)

    def before_step(self, trainer: ContinualTrainer, batch: Batch) -> Batch:
        """The batch the step trains on, from the task's batch (unchanged by default)."""
        return batch

    def loss_term(self, trainer: ContinualTrainer, batch: Batch, logits: Tensor) -> Tensor | None:
        """A term added to the loss (a 0-dim tensor), or None."""
        return None

    def after_backward(self, trainer: ContinualTrainer, batch: Batch) -> None:
        """Called between ``loss.backward()`` and ``optimizer.step()``: the gradients are in ``.grad``."""

    def after_step(self, trainer: ContinualTrainer, batch: Batch) -> None:
        """Called after ``optimizer.step()`` with the task's own batch (before :meth:`before_step` changed it)."""

    def after_task(self, trainer: ContinualTrainer, task: Task) -> None:
        """Called when task ``task`` has been trained, before the trainer evaluates every task."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from {type(self).__name__}.state_dict(), got "
                            f"{type(state).__name__}")


class FineTuning(Strategy):
    """Plain sequential training (the lower bound): every hook a no-op, the network trained on each task in turn."""

    name = "fine-tuning"
