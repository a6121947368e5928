"""HLOP: Hebbian learning based orthogonal projection (Xiao et al. 2024, ICLR), as a continual strategy.

Each selected layer ``W [out, n]`` (an ``nn.Linear`` without a trainable bias: rate-based, or the weights of
a spiking network whose LIF neurons train by surrogate gradients) gets lateral subspace neurons
(:class:`~neuroplastic.plasticity.SubspaceNeurons`). After task ``t`` the network runs over the task's training
data, each layer's inputs (presynaptic activities; for a layer applied at every time step, every step's
input, so spikes ``[B * T, n]``) are recorded, the layer's lateral neurons grow by ``sizes[t]`` rows and learn
the principal subspace of those inputs by Oja's subspace rule with the older rows fixed
(:func:`~neuroplastic.plasticity.oja_subspace_update`). While a later task trains, an optimizer pre-step hook
(:class:`GradientProjector`, attached in ``before_task`` and ``resume_task``) replaces each weight gradient
by ``g - (g Q^T) Q`` with ``Q`` a basis of the learnt subspaces (:func:`~neuroplastic.plasticity.project_out`),
so a step leaves the layer's response to old inputs (approximately) unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .._checks import check_bool, check_int, check_number, check_optional_int
from ..plasticity.subspace import SubspaceNeurons
from .strategy import Batch, Strategy

if TYPE_CHECKING:
    from .streams import Task
    from .trainer import ContinualTrainer

__all__ = ["GradientProjector", "HLOP", "hlop_sizes"]


class GradientProjector:
    """An optimizer step pre-hook that projects weight gradients orthogonal to input subspaces.

    For each pair ``(W [out, n], Q [k, n])`` the hook sets ``W.grad <- W.grad - (W.grad Q^T) Q`` before the
    optimizer steps (Xiao et al. 2024, HLOP; with orthonormal rows ``Q`` that is ``g (I - Q^T Q)``). Attach it
    with :meth:`attach` (``optimizer.register_step_pre_hook``, the attachment pattern of
    :class:`~neuroplastic.structure.SparsityManager`) and remove it with :meth:`detach`; :meth:`project`
    does the same by hand. Pairs with ``k = 0`` are skipped; with ``k > n / 2`` the hook multiplies by the
    precomputed complement ``I - Q^T Q`` instead (one product of ``n x n`` rather than two of ``n x k``).

    Args:
        weights: the weights ``[out, n]`` (parameters).
        bases: one ``Q [k, n]`` per weight, same dtype and device.
    """

    def __init__(self, weights: Sequence[Tensor], bases: Sequence[Tensor]) -> None:
        if isinstance(weights, Tensor) or not isinstance(weights, Sequence):
            raise TypeError(f"weights must be a sequence of tensors, got {type(weights).__name__}")
        if isinstance(bases, Tensor) or not isinstance(bases, Sequence) or len(bases) != len(weights):
            raise ValueError(f"bases must be a sequence of one basis per weight ({len(weights)})")
        for i, (w, q) in enumerate(zip(weights, bases, strict=True)):
            if not isinstance(w, Tensor) or w.dim() != 2 or not w.is_floating_point():
                raise ValueError(f"weights[{i}] must be a floating-point tensor [out, n]")
            if not isinstance(q, Tensor) or q.dim() != 2 or q.shape[1] != w.shape[1]:
                raise ValueError(f"bases[{i}] must be a tensor [k, {w.shape[1]}], got "
                                 f"{list(q.shape) if isinstance(q, Tensor) else type(q).__name__}")
            if q.dtype != w.dtype or q.device != w.device:
                raise ValueError(f"bases[{i}] must have weights[{i}]'s dtype and device ({w.dtype}, {w.device})")
        self.pairs = [(w, q) for w, q in zip(weights, bases, strict=True) if q.shape[0] > 0]
        # with k > n / 2 rows, one product with the complement projector I - Q^T Q [n, n] is cheaper
        self._complements = [torch.eye(q.shape[1], dtype=q.dtype, device=q.device) - q.T @ q
                             if 2 * q.shape[0] > q.shape[1] else None for _, q in self.pairs]
        self._handle: Any = None
        self.optimizer: torch.optim.Optimizer | None = None

    @property
    def attached(self) -> bool:
        return self._handle is not None

    @torch.no_grad()
    def project(self) -> None:
        """Project every weight's ``.grad`` in place (weights without a gradient are left alone)."""
        for (weight, basis), complement in zip(self.pairs, self._complements, strict=True):
            if weight.grad is None:
                continue
            if complement is None:
                weight.grad.sub_((weight.grad @ basis.T) @ basis)
            else:
                weight.grad.copy_(weight.grad @ complement)

    def _hook(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.project()

    def attach(self, optimizer: torch.optim.Optimizer) -> GradientProjector:
        """Register the pre-step hook on ``optimizer`` (detaching from any earlier optimizer first)."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.detach()
        self._handle = optimizer.register_step_pre_hook(self._hook)
        self.optimizer = optimizer
        return self

    def detach(self) -> None:
        """Remove the hook (nothing when not attached)."""
        if self._handle is not None:
            self._handle.remove()
        self._handle, self.optimizer = None, None


def hlop_sizes(num_tasks: int, initial: Sequence[int], growth: Sequence[int], *, decrease: int = 0,
               every: int = 0) -> list[list[int]]:
    """The lateral neurons each layer adds after each task: ``initial`` after task 0, then ``growth``.

    The paper's code (permuted MNIST: initial 80/200/100, growth 70 per layer) lowers the growth by ``decrease``
    at every task whose index is a multiple of ``every`` (20 every 3 tasks there); ``every=0`` keeps it fixed.
    Returns ``[num_tasks][layers]`` (non-negative).
    """
    num_tasks = check_int("num_tasks", num_tasks, minimum=1)
    initial = _int_list("initial", initial, None)
    growth = _int_list("growth", growth, len(initial))
    decrease = check_int("decrease", decrease, minimum=0)
    every = check_int("every", every, minimum=0)
    out, current = [list(initial)], list(growth)
    for t in range(1, num_tasks):
        if every and t % every == 0:
            current = [max(0, g - decrease) for g in current]
        out.append(list(current))
    return out


def _int_list(name: str, values: object, length: int | None) -> list[int]:
    if isinstance(values, (str, bytes, Tensor)) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{name} must be a non-empty sequence of ints, got {type(values).__name__}")
    out = [check_int(f"{name}[{i}]", v, minimum=0) for i, v in enumerate(values)]
    if length is not None and len(out) != length:
        raise ValueError(f"{name} must have one entry per layer ({length}), got {len(out)}")
    return out


class HLOP(Strategy):
    """Hebbian learning based orthogonal projection (Xiao et al. 2024, ICLR): see the module docstring.

    After task ``t`` each layer's lateral neurons grow by ``sizes[t][l]`` (capped at the layer's input size) and
    learn the task's layer inputs: ``hebbian_epochs`` passes of :meth:`SubspaceNeurons.fit` in batches of
    ``hebbian_batch_size`` (shuffled by the strategy's generator), at the rate ``hebbian_rate / mean ||x||^2``
    (the rate normalised by the inputs' mean squared norm, which bounds ``eta * lambda_max`` by ``hebbian_rate``
    so the rule is stable for pixels and spikes alike), on at most ``hebbian_samples`` examples of the task.
    The projection uses an orthonormal basis of the lateral weights (``orthonormalize``; the paper's
    ``H^T H`` with ``False``). The first task trains unprojected.

    Args:
        model: the network the trainer trains (the layers are looked up in it).
        sizes: ``[tasks][layers]`` rows added after each task (e.g. :func:`hlop_sizes`); tasks beyond the list
            repeat its last row.
        layers: names of ``nn.Linear`` modules of ``model`` (default: all of them), none with a trainable bias.
        hebbian_rate, hebbian_epochs, hebbian_batch_size, hebbian_momentum: the Hebbian training.
        hebbian_samples: examples of the task whose layer inputs are learnt (None: all).
        orthonormalize: project with an orthonormal basis of the learnt rows.
        seed: seed of the new rows and of the sample and order of the Hebbian inputs.
    """

    name = "hlop"

    def __init__(self, model: nn.Module, sizes: Sequence[Sequence[int]], *, layers: Sequence[str] | None = None,
                 hebbian_rate: float = 0.5, hebbian_epochs: int = 3, hebbian_batch_size: int = 64,
                 hebbian_momentum: float = 0.9, hebbian_samples: int | None = None, orthonormalize: bool = True,
                 seed: int = 0) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        modules = dict(model.named_modules())
        if layers is None:
            layers = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
        if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
            raise TypeError("layers must be a non-empty sequence of module names")
        for name in layers:
            module = modules.get(name) if isinstance(name, str) else None
            if not isinstance(module, nn.Linear):
                raise ValueError(f"layers: {name!r} is not an nn.Linear module of the model")
            if module.bias is not None and module.bias.requires_grad:
                raise ValueError(f"layers: {name!r} has a trainable bias; HLOP projects weights only: build it "
                                 "with bias=False or freeze the bias")
        self.model, self.layers = model, list(layers)
        self._modules = [modules[n] for n in self.layers]
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or not sizes:
            raise TypeError("sizes must be a non-empty sequence of per-layer sizes, one per task")
        self.sizes = [_int_list(f"sizes[{t}]", row, len(self.layers)) for t, row in enumerate(sizes)]
        self.hebbian_rate = check_number("hebbian_rate", hebbian_rate, minimum=0.0, exclusive_minimum=True)
        self.hebbian_epochs = check_int("hebbian_epochs", hebbian_epochs, minimum=1)
        self.hebbian_batch_size = check_int("hebbian_batch_size", hebbian_batch_size, minimum=1)
        self.hebbian_momentum = check_number("hebbian_momentum", hebbian_momentum, minimum=0.0, maximum=1.0,
                                             exclusive_maximum=True)
        self.hebbian_samples = check_optional_int("hebbian_samples", hebbian_samples, minimum=1)
        self.orthonormalize = check_bool("orthonormalize", orthonormalize)
        self.seed = check_int("seed", seed, minimum=0)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.neurons = [SubspaceNeurons(m.in_features, seed=self.seed + 1 + i, orthonormalize=self.orthonormalize)
                        for i, m in enumerate(self._modules)]
        self.tasks_learnt = 0
        self.projector: GradientProjector | None = None

    def __repr__(self) -> str:
        return f"HLOP(layers={self.layers}, rows={self.subspace_rows()}, tasks_learnt={self.tasks_learnt})"

    def subspace_rows(self) -> list[int]:
        """The lateral neurons of each layer."""
        return [n.rows for n in self.neurons]

    # ------------------------------------------------------------------ projection
    def _attach(self, trainer: ContinualTrainer) -> None:
        if trainer.model is not self.model:
            raise ValueError("HLOP was built for another model than the trainer's")
        if self.projector is not None:
            self.projector.detach()
        weights = [m.weight for m in self._modules]
        bases = [n.basis().to(w) for n, w in zip(self.neurons, weights, strict=True)]
        assert trainer.optimizer is not None
        self.projector = GradientProjector(weights, bases).attach(trainer.optimizer)

    def before_task(self, trainer: ContinualTrainer, task: Task) -> None:
        self._attach(trainer)

    def resume_task(self, trainer: ContinualTrainer, task: Task) -> None:
        self._attach(trainer)

    # ------------------------------------------------------------------ Hebbian learning
    @torch.no_grad()
    def layer_inputs(self, trainer: ContinualTrainer, data: Batch) -> list[Tensor]:
        """Every selected layer's inputs ``[N_l, n_l]`` over ``data`` (the model in eval mode, every call of the
        layer: each time step of a spiking network), recorded by forward pre-hooks."""
        recorded: list[list[Tensor]] = [[] for _ in self._modules]

        def recorder(i: int):
            def hook(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
                recorded[i].append(inputs[0].detach().reshape(-1, module.in_features))
            return hook

        handles = [m.register_forward_pre_hook(recorder(i)) for i, m in enumerate(self._modules)]
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, data.x.shape[0], trainer.eval_batch_size):
                part = Batch(*(t[start:start + trainer.eval_batch_size] for t in data)).to(trainer.device)
                trainer.forward(part.x, part.task_ids)
        finally:
            self.model.train(was_training)
            for handle in handles:
                handle.remove()
        return [torch.cat(r) for r in recorded]

    def after_task(self, trainer: ContinualTrainer, task: Task) -> None:
        if self.projector is not None:
            self.projector.detach()
        data = trainer.task_data(task.task_id)
        n = data.x.shape[0]
        if self.hebbian_samples is not None and self.hebbian_samples < n:
            pick = torch.randperm(n, generator=self.generator)[: self.hebbian_samples]
            data = Batch(*(t[pick.to(t.device)] for t in data))
        sizes = self.sizes[min(self.tasks_learnt, len(self.sizes) - 1)]
        for neurons, x, size in zip(self.neurons, self.layer_inputs(trainer, data), sizes, strict=True):
            neurons.grow(size)
            order = torch.randperm(x.shape[0], generator=self.generator).to(x.device)
            scale = float(x.pow(2).sum(1).mean())
            if scale > 0:
                neurons.fit(x[order], rate=self.hebbian_rate / scale, epochs=self.hebbian_epochs,
                            batch_size=self.hebbian_batch_size, momentum=self.hebbian_momentum)
        self.tasks_learnt += 1

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"layers": list(self.layers), "tasks_learnt": self.tasks_learnt,
                "generator": self.generator.get_state(),
                "neurons": [{k: v.clone() if isinstance(v, Tensor) else v for k, v in n.state_dict().items()}
                            for n in self.neurons]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if state.get("layers") != self.layers:
            raise ValueError(f"state['layers'] is {state.get('layers')!r} but this HLOP has {self.layers}")
        neurons = state.get("neurons")
        if not isinstance(neurons, list) or len(neurons) != len(self.neurons):
            raise ValueError(f"state['neurons'] must be a list of {len(self.neurons)} SubspaceNeurons states")
        self.tasks_learnt = check_int("state['tasks_learnt']", state.get("tasks_learnt"), minimum=0)
        self.generator.set_state(state["generator"])
        for module, values in zip(self.neurons, neurons, strict=True):
            module.load_state_dict(values)
