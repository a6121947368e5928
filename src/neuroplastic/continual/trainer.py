"""The continual trainer: trains any model on a task stream with any strategy, fills the accuracy matrix, and
saves and restores everything (also in the middle of a task) so that a resumed stream gives identical results.

:class:`ContinualTrainer` works in steps: ``step()`` does one optimiser step of the current task (evaluating
every task at initialisation before the first, and after the last step of each task), so an experiment drives
it with ``for _ in run_dir.steps(trainer.total_steps): trainer.step()`` and checkpoints it with
``run_dir.track(trainer=trainer)``; ``run()`` runs to the end. :class:`MultiHeadClassifier` puts one output
head per task on a shared body for task-incremental streams.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_bool, check_int
from .metrics import AccuracyMatrix
from .strategy import Batch, FineTuning, Strategy
from .streams import Task, TaskStream

__all__ = ["ContinualTrainer", "StepInfo", "MultiHeadClassifier"]


class StepInfo(NamedTuple):
    """What a :meth:`ContinualTrainer.step` did: the task, the epoch, the loss (with the strategy's term), and
    whether the step finished the task (then ``row`` holds its row of the accuracy matrix ``[T]``)."""

    task: int
    epoch: int
    loss: float
    task_done: bool
    row: Tensor | None


class MultiHeadClassifier(nn.Module):
    """A shared body and one linear head per task: ``forward(x, task_ids)`` gives each example its task's logits.

    ``logits[b] = heads[task_ids[b]](body(x)[b])``, padded with ``-inf`` to the widest head (a padded class is
    never predicted and takes no probability). ``task_ids`` is a long tensor ``[B]`` or one int for the batch.

    Args:
        body: maps ``x [B, ...]`` to features ``[B, features]``.
        features: the body's output size.
        head_sizes: the number of classes of each head (``TaskStream.head_sizes``).
        bias: whether the heads have biases.
    """

    def __init__(self, body: nn.Module, features: int, head_sizes: Sequence[int], *, bias: bool = True) -> None:
        super().__init__()
        if not isinstance(body, nn.Module):
            raise TypeError(f"body must be an nn.Module, got {type(body).__name__}")
        features = check_int("features", features, minimum=1)
        if isinstance(head_sizes, (str, bytes)) or not isinstance(head_sizes, Sequence) or not head_sizes:
            raise TypeError(f"head_sizes must be a non-empty sequence of ints, got {type(head_sizes).__name__}")
        sizes = tuple(check_int(f"head_sizes[{i}]", s, minimum=1) for i, s in enumerate(head_sizes))
        self.body = body
        self.heads = nn.ModuleList(nn.Linear(features, s, bias=check_bool("bias", bias)) for s in sizes)
        self.head_sizes = sizes

    def forward(self, x: Tensor, task_ids: Tensor | int) -> Tensor:
        h = self.body(x)
        batch = h.shape[0]
        if isinstance(task_ids, int) and not isinstance(task_ids, bool):
            task_ids = torch.full((batch,), task_ids, dtype=torch.long, device=h.device)
        if not isinstance(task_ids, Tensor) or task_ids.shape != (batch,) or task_ids.dtype != torch.long:
            got = (list(task_ids.shape), task_ids.dtype) if isinstance(task_ids, Tensor) else task_ids
            raise ValueError(f"task_ids must be an int or a long tensor [B] = [{batch}], got {got!r}")
        if batch and (int(task_ids.min()) < 0 or int(task_ids.max()) >= len(self.heads)):
            raise ValueError(f"task_ids must be in 0..{len(self.heads) - 1}, got "
                             f"{int(task_ids.min())}..{int(task_ids.max())}")
        width = max(self.head_sizes)
        out = h.new_full((batch, width), float("-inf"))
        for t in torch.unique(task_ids).tolist():
            rows = task_ids == t
            out[rows, : self.head_sizes[t]] = self.heads[t](h[rows])
        return out


OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer]


class ContinualTrainer:
    """Trains ``model`` on the tasks of ``stream`` in order with ``strategy``, recording the accuracy matrix.

    Each task trains for ``epochs`` passes over ``strategy.training_data`` (the task's training set unless the
    strategy says otherwise) in batches of ``batch_size`` drawn in a random order from the trainer's generator
    (the last batch of an epoch may be smaller), minimising ``loss_fn(logits, y)`` plus the strategy's term
    with the optimiser ``optimizer(model)`` (a new one per task when ``reset_optimizer``, else one for the whole
    stream). The hooks are those of :class:`~neuroplastic.continual.Strategy`. In a task-incremental stream the
    model is called ``model(x, task_ids)`` (``task_ids [B]`` long; e.g. :class:`MultiHeadClassifier`), else
    ``model(x)``; it returns logits ``[B, C]``.

    ``accuracy`` (an :class:`~neuroplastic.continual.AccuracyMatrix`) receives the test accuracy on every task
    before training (``evaluate_initial``; the ``b`` of FWT) and after each task (row ``i`` of ``R``).
    ``state_dict()`` holds the model, the optimiser, the strategy, the generator, the matrix so far and the
    position in the stream (task, epoch, batch and the epoch's order), so a fresh trainer on fresh objects
    that loads it continues bit for bit (on the same device and thread count).

    Args:
        model: the network (its parameters' device is where batches go).
        stream: the tasks.
        optimizer: a factory ``model -> torch.optim.Optimizer``.
        strategy: the strategy (default :class:`~neuroplastic.continual.FineTuning`).
        epochs: passes over each task's data.
        batch_size: training batch size.
        seed: seed of the trainer's generator (the batch order).
        loss_fn: ``(logits [B, C], y [B]) -> 0-dim loss`` (default cross-entropy).
        eval_batch_size: batch size of the evaluations.
        reset_optimizer: a new optimiser (fresh state) for each task.
        evaluate_initial: evaluate every task before training (the initialisation row).
    """

    def __init__(self, model: nn.Module, stream: TaskStream, optimizer: OptimizerFactory, *,
                 strategy: Strategy | None = None, epochs: int = 1, batch_size: int = 64, seed: int = 0,
                 loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None, eval_batch_size: int = 1000,
                 reset_optimizer: bool = True, evaluate_initial: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if not isinstance(stream, TaskStream):
            raise TypeError(f"stream must be a TaskStream, got {type(stream).__name__}")
        if not callable(optimizer) or isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError("optimizer must be a factory model -> torch.optim.Optimizer (e.g. "
                            "lambda m: torch.optim.SGD(m.parameters(), lr=0.1)), not an optimiser")
        strategy = FineTuning() if strategy is None else strategy
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy, got {type(strategy).__name__}")
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable (logits, y) -> loss, got {type(loss_fn).__name__}")
        self.model, self.stream, self.strategy = model, stream, strategy
        self.optimizer_factory = optimizer
        self.epochs = check_int("epochs", epochs, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        self.loss_fn = F.cross_entropy if loss_fn is None else loss_fn
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, minimum=1)
        self.reset_optimizer = check_bool("reset_optimizer", reset_optimizer)
        self.evaluate_initial = check_bool("evaluate_initial", evaluate_initial)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.accuracy = AccuracyMatrix(len(stream))
        self.optimizer: torch.optim.Optimizer | None = None
        self.task_index = 0  # the task being trained (= tasks finished)
        self.epoch = 0
        self.position = 0  # examples of the epoch already trained on
        self.global_step = 0
        self._in_task = False  # before_task was called for task_index
        self._order: Tensor | None = None
        self._data: Batch | None = None  # training data of the current task (rebuilt on resume)
        self._total: int | None = None

    def __repr__(self) -> str:
        return (f"ContinualTrainer(strategy={self.strategy!r}, tasks={len(self.stream)}, task={self.task_index}, "
                f"epoch={self.epoch}, step={self.global_step})")

    # ------------------------------------------------------------------ model calls and evaluation
    @property
    def device(self) -> torch.device:
        parameter = next(self.model.parameters(), None)
        return self.stream[0].x_train.device if parameter is None else parameter.device

    @property
    def done(self) -> bool:
        """Whether every task has been trained and evaluated."""
        return self.task_index == len(self.stream)

    def forward(self, x: Tensor, task_ids: Tensor) -> Tensor:
        """The model's logits ``[B, C]``: ``model(x, task_ids)`` in a task-incremental stream, else ``model(x)``."""
        return self.model(x, task_ids) if self.stream.task_incremental else self.model(x)

    def task_data(self, task_index: int) -> Batch:
        """Task ``task_index``'s training set as a :class:`~neuroplastic.continual.Batch` (task ids filled)."""
        task = self.stream[task_index]
        ids = torch.full((task.x_train.shape[0],), task_index, dtype=torch.long, device=task.y_train.device)
        return Batch(task.x_train, task.y_train, ids)

    def evaluate(self, task_index: int) -> float:
        """Test accuracy on task ``task_index`` of the stream (:meth:`evaluate_task`)."""
        task_index = check_int("task_index", task_index, minimum=0, maximum=len(self.stream) - 1)
        return self.evaluate_task(self.stream[task_index])

    @torch.no_grad()
    def evaluate_task(self, task: Task) -> float:
        """Accuracy on ``task``'s test set (e.g. a task of a validation stream, :func:`split_validation`), the
        model in eval mode (its mode restored after) and called with ``task.task_id`` as the task id."""
        if not isinstance(task, Task):
            raise TypeError(f"task must be a Task, got {type(task).__name__}")
        was_training = self.model.training
        self.model.eval()
        correct = 0
        try:
            for start in range(0, task.x_test.shape[0], self.eval_batch_size):
                x = task.x_test[start:start + self.eval_batch_size].to(self.device)
                y = task.y_test[start:start + self.eval_batch_size].to(self.device)
                ids = torch.full((x.shape[0],), task.task_id, dtype=torch.long, device=x.device)
                correct += int((self.forward(x, ids).argmax(dim=1) == y).sum())
        finally:
            self.model.train(was_training)
        return correct / task.x_test.shape[0]

    def evaluate_all(self) -> Tensor:
        """Test accuracies on every task ``[T]`` (float64)."""
        return torch.tensor([self.evaluate(j) for j in range(len(self.stream))], dtype=torch.float64)

    # ------------------------------------------------------------------ stepping
    def _batches_in_task(self, task_index: int) -> int:
        size = self.strategy.training_data(self, task_index).x.shape[0]
        return self.epochs * -(-size // self.batch_size)

    @property
    def total_steps(self) -> int:
        """The number of :meth:`step` calls of the whole stream (optimiser steps)."""
        if self._total is None:
            self._total = sum(self._batches_in_task(i) for i in range(len(self.stream)))
        return self._total

    def _check_data(self, data: object) -> Batch:
        if not isinstance(data, Batch):
            raise TypeError(f"{type(self.strategy).__name__}.training_data must return a Batch, "
                            f"got {type(data).__name__}")
        if data.x.shape[0] == 0 or data.y.shape != (data.x.shape[0],) or data.task_ids.shape != data.y.shape:
            raise ValueError(f"training data must hold n >= 1 examples with labels and task ids [n], got x "
                             f"{list(data.x.shape)}, y {list(data.y.shape)}, task_ids {list(data.task_ids.shape)}")
        return data

    def _make_optimizer(self) -> None:
        optimizer = self.optimizer_factory(self.model)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"the optimizer factory must return a torch.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer

    def _enter_task(self, resumed: bool) -> None:
        task = self.stream[self.task_index]
        if resumed:
            self.strategy.resume_task(self, task)
        else:
            if self.reset_optimizer or self.optimizer is None:
                self._make_optimizer()
            self.strategy.before_task(self, task)
            self._in_task = True
        self._data = self._check_data(self.strategy.training_data(self, self.task_index))

    def step(self) -> StepInfo:
        """One optimiser step of the current task (with the evaluations due before or after it)."""
        if self.done:
            raise RuntimeError("the stream is finished: every task has been trained")
        if self.evaluate_initial and not self.accuracy.has_initial:
            self.accuracy.record_initial(self.evaluate_all())
        if not self._in_task:
            self._enter_task(resumed=False)
        elif self._data is None:
            self._enter_task(resumed=True)
        assert self._data is not None and self.optimizer is not None
        n = self._data.x.shape[0]
        if self._order is None:
            self._order = torch.randperm(n, generator=self.generator)
        index = self._order[self.position:self.position + self.batch_size]
        own = Batch(*(t[index.to(t.device)] for t in self._data)).to(self.device)
        loss = self._train_step(own)
        task, epoch = self.task_index, self.epoch
        self.position += index.shape[0]
        self.global_step += 1
        if self.position >= n:
            self.epoch, self.position, self._order = self.epoch + 1, 0, None
        row = None
        if self.epoch == self.epochs:
            row = self._finish_task()
        return StepInfo(task, epoch, loss, row is not None, row)

    def _train_step(self, own: Batch) -> float:
        assert self.optimizer is not None
        self.model.train()
        batch = self.strategy.before_step(self, own)
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.forward(batch.x, batch.task_ids)
        loss = self.loss_fn(logits, batch.y)
        extra = self.strategy.loss_term(self, batch, logits)
        if extra is not None:
            loss = loss + extra
        loss.backward()
        self.strategy.after_backward(self, batch)
        self.optimizer.step()
        self.strategy.after_step(self, own)
        return float(loss.detach())

    def _finish_task(self) -> Tensor:
        self.strategy.after_task(self, self.stream[self.task_index])
        row = self.evaluate_all()
        self.accuracy.record(self.task_index, row)
        self.task_index += 1
        self.epoch, self.position, self._order, self._data, self._in_task = 0, 0, None, None, False
        return row

    def run(self, max_steps: int | None = None) -> bool:
        """Step until the stream is finished (or ``max_steps`` steps were made); returns :attr:`done`."""
        limit = None if max_steps is None else check_int("max_steps", max_steps, minimum=0)
        made = 0
        while not self.done and (limit is None or made < limit):
            self.step()
            made += 1
        return self.done

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: model, optimiser, strategy, generator, matrix, position."""
        return {
            "num_tasks": len(self.stream),
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": None if self.optimizer is None else copy.deepcopy(self.optimizer.state_dict()),
            "strategy": copy.deepcopy(self.strategy.state_dict()),
            "generator": self.generator.get_state(),
            "accuracy": self.accuracy.state_dict(),
            "task_index": self.task_index, "epoch": self.epoch, "position": self.position,
            "global_step": self.global_step, "in_task": self._in_task,
            "order": None if self._order is None else self._order.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (of a trainer built the same way); the next :meth:`step` continues."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from ContinualTrainer.state_dict(), got {type(state).__name__}")
        missing = {"num_tasks", "model", "optimizer", "strategy", "generator", "accuracy", "task_index", "epoch",
                   "position", "global_step", "in_task", "order"} - set(state)
        if missing:
            raise ValueError(f"state is missing {sorted(missing)}: not a ContinualTrainer.state_dict()")
        if state["num_tasks"] != len(self.stream):
            raise ValueError(f"state['num_tasks'] is {state['num_tasks']} but the stream has {len(self.stream)} tasks")
        task_index = check_int("state['task_index']", state["task_index"], minimum=0, maximum=len(self.stream))
        self.model.load_state_dict(state["model"])
        self.strategy.load_state_dict(copy.deepcopy(state["strategy"]))
        self.generator.set_state(state["generator"])
        self.accuracy.load_state_dict(state["accuracy"])
        self.task_index = task_index
        self.epoch = check_int("state['epoch']", state["epoch"], minimum=0)
        self.position = check_int("state['position']", state["position"], minimum=0)
        self.global_step = check_int("state['global_step']", state["global_step"], minimum=0)
        self._in_task = check_bool("state['in_task']", state["in_task"])
        order = state["order"]
        self._order = None if order is None else order.clone()
        self._data = None
        self.optimizer = None
        if state["optimizer"] is not None:
            self._make_optimizer()
            assert self.optimizer is not None
            self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
