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
so a step leaves the layer's response to old inputs (approximately) unchanged. Layers chosen with
``projection="input"`` get the same gradient from their inputs projected in the backward pass instead
(:class:`InputProjector`, the paper code's route).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .._checks import check_bool, check_choice, check_int, check_number, check_optional_int
from ..plasticity.subspace import SubspaceNeurons, complement_rows
from .strategy import Batch, Strategy

if TYPE_CHECKING:
    from .streams import Task
    from .trainer import ContinualTrainer

__all__ = ["GradientProjector", "HLOP", "InputProjector", "PROJECTION_SIDES", "SubspaceProjection", "hlop_sizes"]

PROJECTION_SIDES = ("gradient", "input")


class SubspaceProjection:
    """``m -> m (I - Q^T Q)`` for rows ``m [*, n]``, by the cheapest exact route for a basis ``Q [k, n]``.

    Xiao et al. 2024 (HLOP), Eq. 3. Per row of ``m``: ``2 k`` multiply-adds with ``m - (m Q^T) Q`` when
    ``k <= n / 2``; else ``2 (n - k)`` with ``(m C^T) C``, ``C`` an orthonormal basis of the complement
    (:func:`~neuroplastic.plasticity.complement_rows`; ``Q`` orthonormal), or ``n`` with the precomputed
    ``I - Q^T Q`` when the rows of ``Q`` are not orthonormal (the paper's ``H^T H``). ``kind`` names the route.
    """

    def __init__(self, basis: Tensor) -> None:
        if not isinstance(basis, Tensor) or basis.dim() != 2 or not basis.is_floating_point():
            raise ValueError("basis must be a floating-point tensor [k, n]")
        k, n = basis.shape
        self.basis = basis
        self.kind, self.factor = "basis", basis
        if 2 * k > n:
            gram = basis @ basis.T
            eye = torch.eye(k, dtype=basis.dtype, device=basis.device)
            if k <= n and torch.allclose(gram, eye, atol=torch.finfo(basis.dtype).eps ** 0.5):
                self.kind, self.factor = "complement", complement_rows(basis)
            else:
                self.kind = "matrix"
                self.factor = torch.eye(n, dtype=basis.dtype, device=basis.device) - basis.T @ basis

    def __call__(self, m: Tensor) -> Tensor:
        """``m (I - Q^T Q)``, a new tensor of ``m``'s shape ``[*, n]``."""
        if self.kind == "basis":
            return m - (m @ self.factor.T) @ self.factor
        if self.kind == "complement":
            return (m @ self.factor.T) @ self.factor
        return m @ self.factor

    def project_(self, m: Tensor) -> Tensor:
        """``m <- m (I - Q^T Q)`` in place for a 2-D ``m [rows, n]`` (the subtraction or product written into
        ``m``, no temporary of ``m``'s size where the route allows); returns ``m``."""
        if self.kind == "basis":
            return m.addmm_(m @ self.factor.T, self.factor, alpha=-1)
        if self.kind == "complement":
            return torch.mm(m @ self.factor.T, self.factor, out=m)
        return m.copy_(m @ self.factor)


class GradientProjector:
    """An optimizer step pre-hook that projects weight gradients orthogonal to input subspaces.

    For each pair ``(W [out, n], Q [k, n])`` the hook sets ``W.grad <- W.grad (I - Q^T Q)``, i.e.
    ``W.grad - (W.grad Q^T) Q``, before the optimizer steps (Xiao et al. 2024, HLOP), by the cheapest route
    (:class:`SubspaceProjection`: ``2 out n min(k, n - k)`` multiply-adds per step for an orthonormal ``Q``).
    Attach it with :meth:`attach` (``optimizer.register_step_pre_hook``, the attachment pattern of
    :class:`~neuroplastic.structure.SparsityManager`) and remove it with :meth:`detach`; :meth:`project`
    does the same by hand. Pairs with ``k = 0`` are skipped. (:class:`InputProjector` is the other route, cheaper
    for a layer that sees fewer input rows per step than it has outputs.)

    Args:
        weights: the weights ``[out, n]`` (parameters).
        bases: one ``Q [k, n]`` per weight, same dtype and device.
    """

    def __init__(self, weights: Sequence[Tensor], bases: Sequence[Tensor]) -> None:
        if isinstance(weights, Tensor) or not isinstance(weights, Sequence):
            raise TypeError(f"weights must be a sequence of tensors, got {type(weights).__name__}")
        for i, w in enumerate(weights):
            if not isinstance(w, Tensor) or w.dim() != 2 or not w.is_floating_point():
                raise ValueError(f"weights[{i}] must be a floating-point tensor [out, n]")
        _check_bases(bases, weights)
        self.pairs = [(w, q) for w, q in zip(weights, bases, strict=True) if q.shape[0] > 0]
        self.projections = [SubspaceProjection(q) for _, q in self.pairs]
        self._handle: Any = None
        self.optimizer: torch.optim.Optimizer | None = None

    @property
    def attached(self) -> bool:
        return self._handle is not None

    @torch.no_grad()
    def project(self) -> None:
        """Project every weight's ``.grad`` in place (weights without a gradient are left alone)."""
        for (weight, _), projection in zip(self.pairs, self.projections, strict=True):
            if weight.grad is not None:
                projection.project_(weight.grad)

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


def _check_bases(bases: object, weights: Sequence[Tensor]) -> None:
    if isinstance(bases, Tensor) or not isinstance(bases, Sequence) or len(bases) != len(weights):
        raise ValueError(f"bases must be a sequence of one basis per weight ({len(weights)})")
    for i, (w, q) in enumerate(zip(weights, bases, strict=True)):
        if not isinstance(q, Tensor) or q.dim() != 2 or q.shape[1] != w.shape[1]:
            raise ValueError(f"bases[{i}] must be a tensor [k, {w.shape[1]}], got "
                             f"{list(q.shape) if isinstance(q, Tensor) else type(q).__name__}")
        if q.dtype != w.dtype or q.device != w.device:
            raise ValueError(f"bases[{i}] must have weights[{i}]'s dtype and device ({w.dtype}, {w.device})")


class _InputProjectedLinear(torch.autograd.Function):
    """A linear layer's output (computed already) whose weight gradient uses projected inputs."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, output: Tensor, projection: SubspaceProjection) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.projection = projection
        ctx.mark_dirty(output)  # the module's own output (detached), returned as this node's output
        return output

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = grad @ weight
        if ctx.needs_input_grad[1]:
            rows = x.reshape(-1, x.shape[-1])
            grad_weight = grad.reshape(-1, grad.shape[-1]).T @ ctx.projection(rows)
        return grad_x, grad_weight, None, None


class InputProjector:
    """Project ``nn.Linear`` weight gradients orthogonal to input subspaces through the layers' inputs.

    A linear layer's weight gradient is ``sum_b d_b x_b^T`` (``d`` the output gradients, ``x`` the inputs), so
    ``g (I - Q^T Q) = sum_b d_b (x_b (I - Q^T Q))^T``: projecting each call's inputs in the backward pass gives
    the projected gradient of :class:`GradientProjector` (Xiao et al. 2024, HLOP; the paper's code projects this
    way) for ``2 r n min(k, n - k)`` multiply-adds per call of ``r`` input rows instead of ``2 out n min(k, n - k)``
    per step: cheaper for a layer that sees fewer rows per step than it has outputs (a spiking network's first
    layer applied once to static images: ``r`` = batch). :meth:`attach` registers a forward hook on each module
    that keeps the module's output and replaces its backward (inputs' gradients unchanged); it acts only when
    gradients are enabled and the weight requires them. :meth:`detach` removes the hooks.

    Args:
        modules: ``nn.Linear`` layers without a trainable bias.
        bases: one ``Q [k, n]`` per module (``n = in_features``), the weight's dtype and device.
    """

    def __init__(self, modules: Sequence[nn.Linear], bases: Sequence[Tensor]) -> None:
        if isinstance(modules, nn.Module) or not isinstance(modules, Sequence):
            raise TypeError(f"modules must be a sequence of nn.Linear, got {type(modules).__name__}")
        for i, module in enumerate(modules):
            if not isinstance(module, nn.Linear):
                raise ValueError(f"modules[{i}] must be an nn.Linear, got {type(module).__name__}")
            if module.bias is not None and module.bias.requires_grad:
                raise ValueError(f"modules[{i}] has a trainable bias; the projection covers weights only")
        weights = [m.weight for m in modules]
        _check_bases(bases, weights)
        self.pairs = [(m, q) for m, q in zip(modules, bases, strict=True) if q.shape[0] > 0]
        self.projections = [SubspaceProjection(q) for _, q in self.pairs]
        self._handles: list[Any] = []

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self) -> InputProjector:
        """Register the forward hooks (removing any registered before)."""
        self.detach()
        for module, projection in zip((m for m, _ in self.pairs), self.projections, strict=True):
            self._handles.append(module.register_forward_hook(self._hook(projection)))
        return self

    @staticmethod
    def _hook(projection: SubspaceProjection):  # noqa: ANN205 (a forward hook)
        def hook(module: nn.Linear, args: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
            if not (torch.is_grad_enabled() and module.weight.requires_grad):
                return None
            if not args:
                raise TypeError("InputProjector: the layer must be called with its input as a positional argument")
            return _InputProjectedLinear.apply(args[0], module.weight, output.detach(), projection)
        return hook

    def detach(self) -> None:
        """Remove the hooks (nothing when not attached)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


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
    ``hebbian_batch_size`` (shuffled by the strategy's generator), more passes where a layer would otherwise
    make fewer than ``hebbian_min_updates`` updates (a first layer sees one input per image, a hidden layer of
    a spiking network ``T``), at the rate ``hebbian_rate / mean ||x||^2``
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
        hebbian_min_updates: the fewest updates each layer's new rows make per task (0: ``hebbian_epochs`` passes
            only). Oja's rule converges slowly in the directions of small variance: the paper's code updates
            at every training step, five times (about 4,700 updates per permuted-MNIST task).
        hebbian_samples: examples of the task whose layer inputs are learnt, drawn by the strategy's generator
            (None: all; every input of every call is held in memory, so all of a large task is costly: 60,000
            images of a 784-800-800 spiking MLP at T = 20 are 3.8 GB per hidden layer).
        orthonormalize: project with an orthonormal basis of the learnt rows.
        projection: where each layer's gradient is projected, one value for all layers or one per layer:
            ``"gradient"`` (:class:`GradientProjector`, the summed gradient before each optimizer step) or
            ``"input"`` (:class:`InputProjector`, each call's inputs in the backward pass: cheaper for a layer
            that sees fewer input rows per step than it has outputs). Both give the same gradients.
        seed: seed of the new rows and of the sample and order of the Hebbian inputs.
    """

    name = "hlop"

    def __init__(self, model: nn.Module, sizes: Sequence[Sequence[int]], *, layers: Sequence[str] | None = None,
                 hebbian_rate: float = 0.5, hebbian_epochs: int = 3, hebbian_batch_size: int = 64,
                 hebbian_momentum: float = 0.9, hebbian_samples: int | None = 1000, hebbian_min_updates: int = 1000,
                 orthonormalize: bool = True,
                 projection: str | Sequence[str] = "gradient", seed: int = 0) -> None:
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
        self.hebbian_min_updates = check_int("hebbian_min_updates", hebbian_min_updates, minimum=0)
        self.hebbian_batch_size = check_int("hebbian_batch_size", hebbian_batch_size, minimum=1)
        self.hebbian_momentum = check_number("hebbian_momentum", hebbian_momentum, minimum=0.0, maximum=1.0,
                                             exclusive_maximum=True)
        self.hebbian_samples = check_optional_int("hebbian_samples", hebbian_samples, minimum=1)
        self.orthonormalize = check_bool("orthonormalize", orthonormalize)
        if isinstance(projection, str):
            projection = [projection] * len(self.layers)
        if not isinstance(projection, Sequence) or len(projection) != len(self.layers):
            raise ValueError(f"projection must be 'gradient', 'input' or a list of them, one per layer "
                             f"({len(self.layers)})")
        self.projection = [check_choice(f"projection[{i}]", p, PROJECTION_SIDES) for i, p in enumerate(projection)]
        self.seed = check_int("seed", seed, minimum=0)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.neurons = [SubspaceNeurons(m.in_features, seed=self.seed + 1 + i, orthonormalize=self.orthonormalize)
                        for i, m in enumerate(self._modules)]
        self.tasks_learnt = 0
        self.projector: GradientProjector | None = None
        self.input_projector: InputProjector | None = None

    def __repr__(self) -> str:
        return f"HLOP(layers={self.layers}, rows={self.subspace_rows()}, tasks_learnt={self.tasks_learnt})"

    def subspace_rows(self) -> list[int]:
        """The lateral neurons of each layer."""
        return [n.rows for n in self.neurons]

    # ------------------------------------------------------------------ projection
    def _attach(self, trainer: ContinualTrainer) -> None:
        if trainer.model is not self.model:
            raise ValueError("HLOP was built for another model than the trainer's")
        self._detach()
        bases = [n.basis().to(m.weight) for n, m in zip(self.neurons, self._modules, strict=True)]
        on_gradient = [(m.weight, q) for m, q, p in zip(self._modules, bases, self.projection, strict=True)
                       if p == "gradient"]
        on_input = [(m, q) for m, q, p in zip(self._modules, bases, self.projection, strict=True) if p == "input"]
        assert trainer.optimizer is not None
        self.projector = GradientProjector([w for w, _ in on_gradient], [q for _, q in on_gradient])
        self.projector.attach(trainer.optimizer)
        self.input_projector = InputProjector([m for m, _ in on_input], [q for _, q in on_input]).attach()

    def _detach(self) -> None:
        for projector in (self.projector, self.input_projector):
            if projector is not None:
                projector.detach()

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
        self._detach()
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
                            batch_size=self.hebbian_batch_size, momentum=self.hebbian_momentum,
                            min_updates=self.hebbian_min_updates)
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
