"""The baseline strategies of continual learning: joint training, EWC (separate and online), experience replay.

Fine-tuning, the lower bound, is :class:`~neuroplastic.continual.FineTuning` (every hook a no-op).

- :class:`JointTraining`, the upper bound: task ``i`` trains on the union of the training sets of tasks
  ``0..i`` (cumulative joint training, Avalanche's "Cumulative"), so the last row of the accuracy matrix is a
  network trained on all tasks together.
- :class:`EWC`, elastic weight consolidation (Kirkpatrick et al. 2017): after task ``k`` it stores the
  parameters ``theta*_k`` and the diagonal of the Fisher information ``F_k`` on the task's data, and later
  tasks add ``lambda/2 sum_k sum_i F_k,i (theta_i - theta*_k,i)^2`` to the loss ("separate": one term per
  task). "online" (Schwarz et al. 2018, "Progress & compress") keeps one running Fisher
  ``F~_k = gamma F~_{k-1} + F_k`` and the latest parameters: ``lambda/2 sum_i F~_i (theta_i - theta*_i)^2``.
- :class:`ExperienceReplay`: a reservoir-sampled buffer of the examples seen so far
  (:func:`~neuroplastic.data.reservoir_update`); each step trains on the task's batch concatenated with a
  batch drawn uniformly from the buffer (the "tiny episodic memories" of Chaudhry et al. 2019).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice, check_fraction, check_int, check_number, check_optional_int
from ..data.reservoir import reservoir_update
from .strategy import Batch, Strategy

if TYPE_CHECKING:
    from .streams import Task
    from .trainer import ContinualTrainer

__all__ = ["JointTraining", "EWC", "ExperienceReplay", "diagonal_fisher", "ewc_penalty"]

EWC_MODES = ("separate", "online")


class JointTraining(Strategy):
    """The upper bound: task ``i`` trains on the union of the training sets of tasks ``0..i`` (task ids kept).

    The network continues from the previous task's (cumulative training); for a network trained once on all
    tasks from scratch, build a one-task stream of their union. A step count grows with the tasks seen.
    """

    name = "joint"

    def training_data(self, trainer: ContinualTrainer, task_index: int) -> Batch:
        parts = [trainer.task_data(j) for j in range(task_index + 1)]
        return Batch(*(torch.cat(p) for p in zip(*parts, strict=True)))


def diagonal_fisher(forward: Callable[[Tensor, Tensor], Tensor], parameters: Mapping[str, Tensor], x: Tensor,
                    y: Tensor, task_ids: Tensor) -> dict[str, Tensor]:
    """The diagonal of the empirical Fisher information of a classifier on examples: ``F_i = mean_n g_n,i^2``.

    ``g_n = d log p(y_n | x_n; theta) / d theta``, one backward pass per example (per-example gradients, not the
    square of a batch gradient), ``p`` the softmax of ``forward(x, task_ids)``'s logits. The gradients of
    ``parameters`` are left as they were.

    Args:
        forward: ``(x [B, ...], task_ids [B]) -> logits [B, C]``.
        parameters: the named parameters to measure (tensors that require grad).
        x, y, task_ids: ``[N, ...]`` inputs, ``[N]`` long labels and task ids, ``N >= 1``.

    Returns:
        ``{name: F [same shape as the parameter]}``, same dtype and device.
    """
    if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[0] == 0:
        raise ValueError("x must be a tensor [N, ...] of N >= 1 examples")
    for name, value in (("y", y), ("task_ids", task_ids)):
        if not isinstance(value, Tensor) or value.shape != (x.shape[0],) or value.dtype != torch.long:
            raise ValueError(f"{name} must be a long tensor [N] = [{x.shape[0]}]")
    names = [n for n, p in parameters.items() if p.requires_grad]
    if not names:
        raise ValueError("parameters must hold at least one tensor that requires grad")
    tensors = [parameters[n] for n in names]
    total = [torch.zeros_like(p) for p in tensors]
    for i in range(x.shape[0]):
        log_p = F.log_softmax(forward(x[i:i + 1], task_ids[i:i + 1]), dim=1)[0, y[i]]
        grads = torch.autograd.grad(log_p, tensors, allow_unused=True)
        for acc, g in zip(total, grads, strict=True):
            if g is not None:
                acc.add_(g.detach() ** 2)
    return {n: acc / x.shape[0] for n, acc in zip(names, total, strict=True)}


def ewc_penalty(parameters: Mapping[str, Tensor], anchors: Sequence[Mapping[str, Tensor]],
                fishers: Sequence[Mapping[str, Tensor]], strength: float) -> Tensor:
    """The EWC penalty ``strength/2 * sum_k sum_i F_k,i (theta_i - theta*_k,i)^2`` (Kirkpatrick et al. 2017).

    Args:
        parameters: the current named parameters ``theta``.
        anchors: one ``{name: theta*_k}`` per consolidated task (or one for online EWC).
        fishers: the matching ``{name: F_k}``, the same names and shapes.
        strength: ``lambda >= 0``.

    Returns:
        A 0-dim tensor, differentiable in ``parameters`` (0 when there are no anchors).
    """
    strength = check_number("strength", strength, minimum=0.0)
    if len(anchors) != len(fishers):
        raise ValueError(f"anchors and fishers must pair up, got {len(anchors)} and {len(fishers)}")
    reference = next(iter(parameters.values()))
    total = reference.new_zeros(())
    for anchor, fisher in zip(anchors, fishers, strict=True):
        for name, value in fisher.items():
            if name not in parameters or name not in anchor:
                raise ValueError(f"parameter {name!r} of a Fisher is missing from the parameters or the anchor")
            total = total + (value * (parameters[name] - anchor[name]) ** 2).sum()
    return 0.5 * strength * total


class EWC(Strategy):
    """Elastic weight consolidation, separate (Kirkpatrick et al. 2017) or online (Schwarz et al. 2018).

    After each task, the diagonal empirical Fisher (:func:`diagonal_fisher`) on ``fisher_samples`` training
    examples of the task (drawn without replacement from the strategy's generator; all when None) and the
    parameters are stored; the loss of later tasks adds :func:`ewc_penalty`. Parameters are those of
    ``model.named_parameters()`` that require grad at the end of the task.

    Args:
        strength: ``lambda >= 0``.
        mode: ``"separate"`` (one penalty per earlier task) or ``"online"`` (one running Fisher).
        gamma: online EWC's decay of the old Fisher, in [0, 1] (1 adds them up; unused when separate).
        fisher_samples: examples per task for the Fisher (None: the whole training set).
        seed: seed of the sample's generator.
    """

    name = "ewc"

    def __init__(self, strength: float, *, mode: str = "separate", gamma: float = 1.0,
                 fisher_samples: int | None = 200, seed: int = 0) -> None:
        self.strength = check_number("strength", strength, minimum=0.0)
        self.mode = check_choice("mode", mode, EWC_MODES)
        self.gamma = check_fraction("gamma", gamma)
        self.fisher_samples = check_optional_int("fisher_samples", fisher_samples, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.anchors: list[dict[str, Tensor]] = []
        self.fishers: list[dict[str, Tensor]] = []

    def __repr__(self) -> str:
        return f"EWC(strength={self.strength}, mode={self.mode!r}, gamma={self.gamma}, tasks={len(self.anchors)})"

    def loss_term(self, trainer: ContinualTrainer, batch: Batch, logits: Tensor) -> Tensor | None:
        if not self.anchors:
            return None
        return ewc_penalty(dict(trainer.model.named_parameters()), self.anchors, self.fishers, self.strength)

    def after_task(self, trainer: ContinualTrainer, task: Task) -> None:
        data = trainer.task_data(task.task_id)
        n = data.x.shape[0]
        if self.fisher_samples is not None and self.fisher_samples < n:
            pick = torch.randperm(n, generator=self.generator)[: self.fisher_samples]
            data = Batch(*(t[pick.to(t.device)] for t in data))
        data = data.to(trainer.device)
        params = {k: p for k, p in trainer.model.named_parameters() if p.requires_grad}
        was_training = trainer.model.training
        trainer.model.eval()
        try:
            fisher = diagonal_fisher(trainer.forward, params, data.x, data.y, data.task_ids)
        finally:
            trainer.model.train(was_training)
        anchor = {k: p.detach().clone() for k, p in params.items()}
        if self.mode == "online" and self.fishers:
            old = self.fishers[0]
            fisher = {k: self.gamma * old[k] + v if k in old else v for k, v in fisher.items()}
            self.anchors, self.fishers = [anchor], [fisher]
        else:
            self.anchors.append(anchor)
            self.fishers.append(fisher)

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "generator": self.generator.get_state(),
                "anchors": [{k: v.clone() for k, v in a.items()} for a in self.anchors],
                "fishers": [{k: v.clone() for k, v in f.items()} for f in self.fishers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state.get("mode") != self.mode:
            raise ValueError(f"state['mode'] is {state.get('mode')!r} but this EWC is {self.mode!r}")
        anchors, fishers = state.get("anchors"), state.get("fishers")
        if not isinstance(anchors, list) or not isinstance(fishers, list) or len(anchors) != len(fishers):
            raise ValueError("state['anchors'] and state['fishers'] must be lists of the same length")
        self.generator.set_state(state["generator"])
        self.anchors = [{k: v.clone() for k, v in a.items()} for a in anchors]
        self.fishers = [{k: v.clone() for k, v in f.items()} for f in fishers]


class ExperienceReplay(Strategy):
    """Experience replay from a reservoir-sampled buffer of the training examples seen so far.

    After each step the task's batch enters the buffer (:func:`~neuroplastic.data.reservoir_update`: after
    ``n`` examples each is held with probability ``min(1, capacity / n)``); before each step,
    ``replay_batch_size`` examples (the task's batch size when None; fewer while the buffer holds fewer) drawn
    without replacement from the buffer are appended to the batch, with their own labels and task ids, and
    the loss is the mean over both. The buffer stays on the data's device.

    Args:
        capacity: the most examples held.
        replay_batch_size: replayed examples per step (None: as many as the task's batch).
        seed: seed of the strategy's generator (reservoir draws and replay samples).
    """

    name = "replay"

    def __init__(self, capacity: int, *, replay_batch_size: int | None = None, seed: int = 0) -> None:
        self.capacity = check_int("capacity", capacity, minimum=1)
        self.replay_batch_size = check_optional_int("replay_batch_size", replay_batch_size, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.buffer: tuple[Tensor, Tensor, Tensor] | None = None
        self.seen = 0

    def __repr__(self) -> str:
        return f"ExperienceReplay(capacity={self.capacity}, held={len(self)}, seen={self.seen})"

    def __len__(self) -> int:
        return 0 if self.buffer is None else self.buffer[0].shape[0]

    def before_step(self, trainer: ContinualTrainer, batch: Batch) -> Batch:
        held = len(self)
        if self.buffer is None or held == 0:
            return batch
        count = min(held, self.replay_batch_size or len(batch))
        pick = torch.randperm(held, generator=self.generator)[:count]
        replay = Batch(*(t[pick.to(t.device)] for t in self.buffer)).to(batch.x.device)
        return Batch(*(torch.cat([a, b]) for a, b in zip(batch, replay, strict=True)))

    def after_step(self, trainer: ContinualTrainer, batch: Batch) -> None:
        items = tuple(t.detach() for t in batch)
        self.buffer, self.seen = reservoir_update(self.buffer, self.seen, items, self.generator,
                                                  self.capacity)  # type: ignore[assignment]

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "seen": self.seen, "generator": self.generator.get_state(),
                "buffer": None if self.buffer is None else tuple(t.clone() for t in self.buffer)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state.get("capacity") != self.capacity:
            raise ValueError(f"state['capacity'] is {state.get('capacity')!r} but this buffer holds {self.capacity}")
        seen = check_int("state['seen']", state.get("seen"), minimum=0)
        buffer = state.get("buffer")
        held = 0 if buffer is None else buffer[0].shape[0]
        if (buffer is not None and (not isinstance(buffer, tuple) or len(buffer) != 3)) \
                or held != min(seen, self.capacity):
            raise ValueError(f"state['buffer'] must be None or a tuple (x, y, task_ids) of min(seen, capacity) = "
                             f"{min(seen, self.capacity)} examples, got {held}")
        self.generator.set_state(state["generator"])
        self.seen = seen
        self.buffer = None if buffer is None else tuple(t.clone() for t in buffer)  # type: ignore[assignment]
