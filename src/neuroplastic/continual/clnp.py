"""CLNP, continual learning via neural pruning (Golkar, Kagan & Cho 2019), as a continual-learning strategy.

Each task trains the free neurons of a network with an L1 penalty on the hidden activations, so that the task
is solved by few active neurons; after the task the least active free neurons (average ``|activation|`` on a
validation split) are pruned, i.e. given back to the pool of free neurons, as long as the validation accuracy
stays within ``tolerance`` of the unpruned network ("graceful forgetting": ``tolerance > 0`` trades a little
accuracy for capacity). The rest become the task's neurons and are frozen. Later tasks train only free neurons;
the "interference" connections from free neurons into used ones (and into the finished tasks' heads) are set
to zero and kept there, so a later task can never change an earlier task's outputs.

Model protocol: a :class:`~neuroplastic.continual.MultiHeadClassifier` (one head per task, task-incremental)
whose ``body`` is an ``nn.Sequential`` of an optional leading ``nn.Flatten`` and then ``Linear`` layers, each
followed directly by an activation module (ReLU, tanh, ...; :data:`~neuroplastic.structure.ACTIVATION_MODULES`)
and ending with the last one's activation (the heads read it). The hidden activations are captured by forward
hooks on these activation modules.

Per hidden layer ``l`` with weight ``W_l [N_l, N_{l-1}]`` and bias ``b_l [N_l]`` (``N_{-1}`` the input size),
``owner_l [N_l]`` holds the task that uses each neuron (``-1``: free). With ``used = owner >= 0``::

    loss         = task loss + strength * sum_l mean_b sum_i |h_l[b, i]|
    activity_l,i = mean over the validation examples of |h_l,i(x)|
    pruned       = the k least active neurons that were free at the start of the task (one global ranking
                   over the layers, i.e. a threshold on the average activity), k the largest on a grid of
                   ``search_steps + 1`` counts with  val_acc(pruned) >= val_acc(unpruned) - tolerance
                   (pruned neurons' outputs multiplied by 0 while measuring, ``mask_units``)
    after task t: owner[free at start and not pruned] = t
                  W_l[used_l, free_{l-1}] = 0,   head_t[:, free_L] = 0         (interference zeroed)
                  frozen exactly: rows W_l[used_l], b_l[used_l], head_t entirely

Recycling (an addition to the paper, ``reinit_free``): the L1 pressure leaves many pruned ReLU neurons dead
(negative input for every example), so they could never learn a later task. After each task but the last the
free neurons are recycled as ReDo does (:func:`~neuroplastic.structure.dormant.redo_reset`): fresh incoming
weights and bias from the strategy's generator and zero outgoing weights into the next hidden layer, whose own
free neurons are then fresh as a whole (inputs from free neurons included); per-element optimiser state of
these entries zeroed. Used neurons never read free ones, so this changes no earlier output.

Frozen entries have their gradients zeroed after ``backward`` (and their per-element optimiser state zeroed,
:func:`~neuroplastic.structure.reset_state`) and are copied back from the stored values after every optimiser
step, so they stay bit-identical whatever the optimiser (momentum, weight decay, Adam). Since a used neuron
reads only used neurons of earlier layers and a finished head reads only used neurons, every earlier task's
logits are bit-for-bit the same after any later training (``0 * h`` adds exact zeros). Pruning happens
before the trainer evaluates row ``t`` of the accuracy matrix, so its cost shows in ``R[t, t]``; the test
accuracy right before pruning is kept in :attr:`CLNP.unpruned_accuracy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from .._checks import check_bool, check_fraction, check_int, check_number
from ..structure.dormant import ACTIVATION_MODULES, redo_reset, unit_activity
from ..structure.neuron_masks import mask_units
from ..structure.surgery import reset_state
from .strategy import Batch, Strategy
from .streams import TaskStream
from .trainer import MultiHeadClassifier

if TYPE_CHECKING:
    from .streams import Task
    from .trainer import ContinualTrainer

__all__ = ["CLNP", "clnp_layers", "activation_l1"]


def activation_l1(activations: Sequence[Tensor], strength: float) -> Tensor:
    """The L1 activation penalty of CLNP: ``strength * sum_l mean_b sum_i |h_l[b, i]|``.

    Args:
        activations: the hidden activations ``h_l [B, N_l]`` of one batch (at least one layer).
        strength: ``>= 0``.

    Returns:
        A 0-dim tensor, differentiable in the activations.
    """
    strength = check_number("strength", strength, minimum=0.0)
    if isinstance(activations, Tensor) or not isinstance(activations, Sequence) or not activations:
        raise TypeError("activations must be a non-empty sequence of tensors [B, N_l]")
    total = None
    for index, h in enumerate(activations):
        if not isinstance(h, Tensor) or h.dim() != 2:
            raise ValueError(f"activations[{index}] must be a tensor [B, N], got "
                             f"{list(h.shape) if isinstance(h, Tensor) else type(h).__name__}")
        term = h.abs().sum(dim=1).mean()
        total = term if total is None else total + term
    assert total is not None
    return strength * total


def clnp_layers(model: nn.Module) -> list[tuple[str, str]]:
    """The hidden layers of a CLNP model: ``[(linear name, activation name), ...]`` in order (see the protocol).

    Raises a ValueError naming what does not fit: not a MultiHeadClassifier, a body that is not an
    ``nn.Sequential`` of ``[Flatten,] (Linear, activation)+``, or sizes that do not chain into the heads.
    """
    if not isinstance(model, MultiHeadClassifier):
        raise TypeError(f"model must be a MultiHeadClassifier (one head per task), got {type(model).__name__}")
    body = model.body
    if not isinstance(body, nn.Sequential):
        raise ValueError(f"model.body must be an nn.Sequential of [Flatten,] (Linear, activation)+, got "
                         f"{type(body).__name__}")
    children = list(body.named_children())
    if children and isinstance(children[0][1], nn.Flatten):
        children = children[1:]
    if not children or len(children) % 2:
        raise ValueError("model.body must be [Flatten,] followed by (Linear, activation) pairs")
    layers: list[tuple[str, str]] = []
    width = None
    for (lin_name, lin), (act_name, act) in zip(children[::2], children[1::2], strict=True):
        if not isinstance(lin, nn.Linear) or not isinstance(act, ACTIVATION_MODULES):
            raise ValueError(f"model.body: expected a Linear then an activation module, got "
                             f"{type(lin).__name__} ({lin_name!r}) then {type(act).__name__} ({act_name!r})")
        if width is not None and lin.in_features != width:
            raise ValueError(f"model.body.{lin_name} reads {lin.in_features} features, the layer before has {width}")
        width = lin.out_features
        layers.append((f"body.{lin_name}", f"body.{act_name}"))
    for index, head in enumerate(model.heads):
        if head.in_features != width:
            raise ValueError(f"model.heads[{index}] reads {head.in_features} features, the body gives {width}")
    return layers


class CLNP(Strategy):
    """Continual learning via neural pruning (Golkar, Kagan & Cho 2019); see the module docstring.

    Args:
        strength: the L1 activation penalty ``alpha >= 0``.
        tolerance: the validation accuracy (a fraction in [0, 1]; 0.01 is one point) pruning may cost a task.
        validation: the validation stream (:func:`~neuroplastic.continual.split_validation`, its "test" sets
            are the held-out examples), the same length as the trained stream; None: the task's own training
            set measures activity and accuracy.
        search_steps: the number of prune counts tried is ``search_steps + 1`` (0 to all candidates).
        eval_batch_size: batch size of the activity measurement.
        reinit_free: recycle the free neurons after each task (fresh incoming weights, none into used neurons).
        seed: seed of the recycling's generator.
    """

    name = "clnp"

    def __init__(self, strength: float, *, tolerance: float = 0.0, validation: TaskStream | None = None,
                 search_steps: int = 32, eval_batch_size: int = 1000, reinit_free: bool = True,
                 seed: int = 0) -> None:
        self.strength = check_number("strength", strength, minimum=0.0)
        self.tolerance = check_fraction("tolerance", tolerance)
        if validation is not None and not isinstance(validation, TaskStream):
            raise TypeError(f"validation must be a TaskStream or None, got {type(validation).__name__}")
        self.validation = validation
        self.search_steps = check_int("search_steps", search_steps, minimum=1)
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, minimum=1)
        self.reinit_free = check_bool("reinit_free", reinit_free)
        self.seed = check_int("seed", seed, minimum=0)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.layers: list[tuple[str, str]] = []
        self.owners: list[Tensor] = []  # per layer [N_l] long, -1 = free
        self.frozen: dict[str, tuple[Tensor, Tensor]] = {}  # parameter name -> (mask, values)
        self.free_history: list[list[int]] = []  # free neurons per layer after each task
        self.unpruned_accuracy: list[float] = []  # test accuracy of each task before pruning
        self.validation_accuracy: list[tuple[float, float]] = []  # (unpruned, pruned) per task
        self._handles: list[RemovableHandle] = []
        self._captured: list[Tensor | None] = []
        self._keep: list[Tensor] | None = None  # activation masks while measuring a pruning

    def __repr__(self) -> str:
        return (f"CLNP(strength={self.strength}, tolerance={self.tolerance}, tasks={len(self.free_history)}, "
                f"free={self.free_neurons() if self.owners else None})")

    # ------------------------------------------------------------------ hooks and bookkeeping
    def _attach(self, model: nn.Module) -> None:
        layers = clnp_layers(model)
        if self.layers and layers != self.layers:
            raise ValueError(f"the model's hidden layers {layers} differ from those CLNP was set up on {self.layers}")
        modules = dict(model.named_modules())
        if not self.owners:
            self.layers = layers
            self.owners = [torch.full((modules[lin].out_features,), -1, dtype=torch.long) for lin, _ in layers]
        for handle in self._handles:
            handle.remove()
        self._captured = [None] * len(layers)
        self._handles = [modules[act].register_forward_hook(self._hook(i)) for i, (_, act) in enumerate(layers)]

    def _hook(self, index: int):  # noqa: ANN202 - a forward hook
        def hook(module: nn.Module, inputs: object, output: Tensor) -> Tensor | None:
            if self._keep is not None:
                output = mask_units(output, self._keep[index].to(output.device, output.dtype), dim=1)
            self._captured[index] = output
            return output if self._keep is not None else None
        return hook

    def detach(self) -> None:
        """Remove the forward hooks from the model (the frozen values stay enforced only while attached)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def free_neurons(self) -> dict[str, int]:
        """The number of free neurons of each hidden layer (keyed by the Linear layer's name)."""
        return {lin: int((owner < 0).sum()) for (lin, _), owner in zip(self.layers, self.owners, strict=True)}

    def _enforce(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, (mask, values) in self.frozen.items():
                p = params[name]
                p.copy_(torch.where(mask.to(p.device), values.to(p.device, p.dtype), p))

    # ------------------------------------------------------------------ strategy hooks
    def before_task(self, trainer: ContinualTrainer, task: Task) -> None:
        if self.validation is not None and len(self.validation) != len(trainer.stream):
            raise ValueError(f"validation has {len(self.validation)} tasks, the stream {len(trainer.stream)}")
        self._attach(trainer.model)
        self._enforce(trainer.model)
        if trainer.optimizer is not None:
            params = dict(trainer.model.named_parameters())
            for name, (mask, _) in self.frozen.items():
                reset_state(trainer.optimizer, params[name], mask.to(params[name].device))

    def resume_task(self, trainer: ContinualTrainer, task: Task) -> None:
        self._attach(trainer.model)

    def loss_term(self, trainer: ContinualTrainer, batch: Batch, logits: Tensor) -> Tensor | None:
        if self.strength == 0 or any(h is None for h in self._captured):
            return None
        return activation_l1([h for h in self._captured if h is not None], self.strength)

    def after_backward(self, trainer: ContinualTrainer, batch: Batch) -> None:
        params = dict(trainer.model.named_parameters())
        for name, (mask, _) in self.frozen.items():
            grad = params[name].grad
            if grad is not None:
                grad.masked_fill_(mask.to(grad.device), 0)

    def after_step(self, trainer: ContinualTrainer, batch: Batch) -> None:
        self._enforce(trainer.model)

    @torch.no_grad()
    def _activity(self, trainer: ContinualTrainer, x: Tensor, task_id: int) -> list[Tensor]:
        was_training = trainer.model.training
        trainer.model.eval()
        sums = [torch.zeros(o.shape[0], dtype=torch.float64) for o in self.owners]
        try:
            for start in range(0, x.shape[0], self.eval_batch_size):
                chunk = x[start:start + self.eval_batch_size].to(trainer.device)
                ids = torch.full((chunk.shape[0],), task_id, dtype=torch.long, device=chunk.device)
                trainer.forward(chunk, ids)
                for total, h in zip(sums, self._captured, strict=True):
                    assert h is not None
                    total += unit_activity(h).double().cpu() * chunk.shape[0]
        finally:
            trainer.model.train(was_training)
        return [s / x.shape[0] for s in sums]

    def _accuracy_with(self, trainer: ContinualTrainer, task: Task, keep: list[Tensor] | None) -> float:
        self._keep = keep
        try:
            return trainer.evaluate_task(task)
        finally:
            self._keep = None

    def after_task(self, trainer: ContinualTrainer, task: Task) -> None:
        t = task.task_id
        self.unpruned_accuracy.append(trainer.evaluate_task(task))
        val_task = task if self.validation is None else self.validation[t]
        x_val = val_task.x_test if self.validation is not None else task.x_train
        if self.validation is None:
            val_task = type(task)(t, task.x_train, task.y_train, task.x_train, task.y_train, task.classes, task.head,
                                  task.num_outputs, task.permutation)
        activity = self._activity(trainer, x_val, t)
        candidates = [owner < 0 for owner in self.owners]
        scores = torch.cat([a[c] for a, c in zip(activity, candidates, strict=True)])
        layer_of = torch.cat([torch.full((int(c.sum()),), i, dtype=torch.long) for i, c in enumerate(candidates)])
        index_in = torch.cat([c.nonzero().flatten() for c in candidates])
        order = torch.sort(scores, stable=True).indices
        total = scores.shape[0]
        base = self._accuracy_with(trainer, val_task, None)
        chosen, chosen_acc = 0, base
        counts = sorted({round(j * total / self.search_steps) for j in range(self.search_steps + 1)}, reverse=True)
        for k in counts:
            if k == 0:
                break
            keep = [torch.ones_like(o, dtype=torch.float32) for o in self.owners]
            for position in order[:k].tolist():
                keep[int(layer_of[position])][int(index_in[position])] = 0.0
            acc = self._accuracy_with(trainer, val_task, keep)
            if acc >= base - self.tolerance - 1e-12:
                chosen, chosen_acc = k, acc
                break
        pruned = set(order[:chosen].tolist())
        for position in range(total):
            if position not in pruned:
                self.owners[int(layer_of[position])][int(index_in[position])] = t
        self._freeze(trainer.model, t)
        if self.reinit_free and t + 1 < len(trainer.stream):
            masks = {lin: owner < 0 for (lin, _), owner in zip(self.layers, self.owners, strict=True)}
            pairs = [(lin, nxt) for (lin, _), (nxt, _) in zip(self.layers, self.layers[1:], strict=False)]
            redo_reset(trainer.model, masks, trainer.optimizer, pairs=[*pairs, (self.layers[-1][0], None)],
                       generator=self.generator)
            self._enforce(trainer.model)
        self.free_history.append(list(self.free_neurons().values()))
        self.validation_accuracy.append((base, chosen_acc))

    @torch.no_grad()
    def _freeze(self, model: nn.Module, t: int) -> None:
        assert isinstance(model, MultiHeadClassifier)
        modules = dict(model.named_modules())
        previous_used: Tensor | None = None  # the inputs count as used
        for (lin, _), owner in zip(self.layers, self.owners, strict=True):
            layer = modules[lin]
            used = owner >= 0
            weight_mask = used[:, None].expand(layer.weight.shape).clone()
            if previous_used is not None:
                cut = used[:, None] & ~previous_used[None, :]
                layer.weight.masked_fill_(cut.to(layer.weight.device), 0.0)
            self.frozen[f"{lin}.weight"] = (weight_mask, layer.weight.detach().clone().cpu())
            if layer.bias is not None:
                self.frozen[f"{lin}.bias"] = (used.clone(), layer.bias.detach().clone().cpu())
            previous_used = used
        assert previous_used is not None
        head = model.heads[t]
        head.weight.masked_fill_((~previous_used)[None, :].to(head.weight.device), 0.0)
        self.frozen[f"heads.{t}.weight"] = (torch.ones_like(head.weight, dtype=torch.bool).cpu(),
                                            head.weight.detach().clone().cpu())
        if head.bias is not None:
            self.frozen[f"heads.{t}.bias"] = (torch.ones_like(head.bias, dtype=torch.bool).cpu(),
                                              head.bias.detach().clone().cpu())

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "layers": [list(p) for p in self.layers],
                "owners": [o.clone() for o in self.owners],
                "frozen": {k: (m.clone(), v.clone()) for k, (m, v) in self.frozen.items()},
                "free_history": [list(r) for r in self.free_history],
                "unpruned_accuracy": list(self.unpruned_accuracy),
                "validation_accuracy": [list(p) for p in self.validation_accuracy]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        keys = {"generator", "layers", "owners", "frozen", "free_history", "unpruned_accuracy", "validation_accuracy"}
        missing = keys - set(state)
        if missing:
            raise ValueError(f"state is missing {sorted(missing)}: not a CLNP.state_dict()")
        layers = [tuple(p) for p in state["layers"]]
        if len(layers) != len(state["owners"]):
            raise ValueError("state['owners'] must hold one tensor per layer of state['layers']")
        self.layers = layers  # type: ignore[assignment]
        self.generator.set_state(state["generator"])
        self.owners = [o.clone() for o in state["owners"]]
        self.frozen = {k: (m.clone(), v.clone()) for k, (m, v) in state["frozen"].items()}
        self.free_history = [list(r) for r in state["free_history"]]
        self.unpruned_accuracy = list(state["unpruned_accuracy"])
        self.validation_accuracy = [(float(a), float(b)) for a, b in state["validation_accuracy"]]
