"""The sparsity manager: boolean masks on the weights of any model, kept in force after every optimizer step.

:class:`SparsityManager` attaches masks (chosen with :mod:`neuroplastic.structure.masks`) to any ``nn.Module``
and its optimizer:

- **Where they live.** Each mask is a boolean buffer on the module that owns the weight, named after it
  (``fc1.weight_mask``, ``lstm.weight_hh_l0_mask``), so it is in ``model.state_dict()``: a fresh model with a
  manager attached that loads the state dict is sparse again with the same masks.
- **Exactly zero after every step.** An optimizer step post-hook multiplies every managed weight by its
  mask (one ``torch._foreach_mul_`` over float copies of the masks in the weights' dtype, cached and
  rebuilt only when a mask changes, which is faster than multiplying by the boolean masks: see
  ``benchmarks/mask_overhead.py``), then runs the algorithm's mask update when its schedule says so. The user
  only calls ``optimizer.step()``.
- **Optimizer state.** Per-element state (SGD momentum, Adam's moments, ...) is zeroed for pruned and for
  grown entries (:func:`neuroplastic.structure.surgery.reset_state`).
- **Structural surgery.** :func:`attached_managers` finds the managers attached to a model;
  :meth:`SparsityManager.select_mask_slices` cuts a mask like its weight (used by
  :func:`neuroplastic.structure.compaction.compact`, so that training goes on after removing units).
- **Distributed.** Under ``torch.distributed`` (DDP) every rank computes the same decision from the same
  inputs: identical weights, DDP's all-reduced gradients, and a generator seeded identically on every rank
  (the manager's ``seed``); then rank 0's new masks are broadcast (``sync_distributed=True``), so that ties
  broken differently or non-deterministic kernels can never make the ranks diverge.

Subclasses (:mod:`neuroplastic.structure.sparse_training`: GMP, SET, RigL, GraNet) implement
``is_update_step(step)`` and ``compute_masks(step)``; the manager does the rest.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_bool, check_fraction, check_int

from .masks import (
    DEFAULT_MODULE_TYPES,
    DISTRIBUTIONS,
    MASK_SUFFIX,
    erk_densities,
    layer_counts,
    random_mask,
    select_parameters,
    uniform_densities,
)
from .surgery import reset_state

__all__ = ["SparsityManager", "attached_managers"]

_ATTACHED: weakref.WeakSet[SparsityManager] = weakref.WeakSet()


@dataclass
class _Entry:
    name: str
    owner: nn.Module
    local: str

    @property
    def mask_name(self) -> str:
        return self.local + MASK_SUFFIX

    @property
    def parameter(self) -> nn.Parameter:
        return self.owner._parameters[self.local]

    @property
    def mask(self) -> Tensor:
        return self.owner._buffers[self.mask_name]


def _optimizer_parameters(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


def attached_managers(model: nn.Module) -> list[SparsityManager]:
    """The sparsity managers (hooks attached, not removed) that manage a weight of a module of ``model``."""
    modules = {id(module) for module in model.modules()}
    return [manager for manager in list(_ATTACHED) if any(id(e.owner) in modules for e in manager._entries)]


class SparsityManager:
    """Boolean masks on the weights of any model, kept in force after every optimizer step.

    The base class keeps its masks fixed (static sparse training); the algorithms of
    :mod:`neuroplastic.structure.sparse_training` subclass it and change them on a schedule.

    Args:
        model: any ``nn.Module`` (also a DDP wrapper).
        optimizer: the optimizer that trains ``model``; every selected weight must be among its parameters.
            May be None (masks only, applied by :meth:`apply_masks`; no hooks).
        density: the initial overall density of the selected weights, in (0, 1].
        distribution: ``"uniform"``, ``"erk"`` or a dict ``{name: density}`` over the selected weights.
        modules, patterns, exclude: which weights, see :func:`select_parameters`.
        seed: seed (int) or ``torch.Generator`` of every random decision of the manager (initial masks,
            random regrowth); use the same seed on every rank of a distributed run.
        sync_distributed: under an initialised ``torch.distributed`` with more than one process, broadcast
            rank 0's masks after every update (see the module docstring).
        process_group: the process group of that broadcast (default: the world).
        scale_init: multiply each layer's kept initial weights by ``1 / sqrt(d_l)`` (``d_l`` its initial
            density), so that a unit's summed input has the variance the dense initialisation gave it: a
            sparse layer has ``d_l * fan_in`` inputs per unit (Evci et al. 2022, "Gradient flow in sparse
            neural networks and how lottery tickets win"). Without it, deep sparse networks without
            normalisation layers can start with a vanishing signal and never train.

    Attributes:
        names: the managed weights' names. ``step_count``: optimizer steps seen since attaching.
        generator: the manager's generator. ``last_update``: counts of the last mask update
        (``{"step", "pruned": {name: n}, "grown": {name: n}, ...}``).

    A subclass implements ``is_update_step(step) -> bool`` and ``compute_masks(step) -> {name: new mask}``
    (and may set ``grow_init(name, parameter, grown) -> values or None``, ``extra_state()`` /
    ``load_extra_state(state)``). The post-hook runs after each ``optimizer.step()``::

        step_count += 1
        W <- W * M                              (every managed weight, one foreach multiply)
        if is_update_step(step_count): commit(compute_masks(step_count))

    where commit broadcasts (distributed), sets ``W <- W * M_new``, zeroes the grown entries (or sets them
    to ``grow_init``), zeroes the optimizer state of pruned and grown entries, and stores ``M_new``.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        density: float = 1.0,
        *,
        distribution: str | Mapping[str, float] = "erk",
        modules: Sequence[type[nn.Module]] = DEFAULT_MODULE_TYPES,
        patterns: str | Sequence[str] | None = None,
        exclude: str | Sequence[str] | None = None,
        seed: int | torch.Generator = 0,
        sync_distributed: bool = True,
        process_group: Any = None,
        scale_init: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer or None, got {type(optimizer).__name__}")
        density = check_fraction("density", density, low_open=True)
        check_bool("sync_distributed", sync_distributed)
        check_bool("scale_init", scale_init)
        if isinstance(seed, torch.Generator):
            self.generator = seed
        elif isinstance(seed, int) and not isinstance(seed, bool):
            self.generator = torch.Generator().manual_seed(seed)
        else:
            raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
        self.model = model
        self.optimizer = optimizer
        self.sync_distributed = bool(sync_distributed)
        self.process_group = process_group
        self.names = select_parameters(model, modules, patterns, exclude)
        self._entries = [self._entry(name) for name in self.names]
        if optimizer is not None:
            in_optimizer = _optimizer_parameters(optimizer)
            missing = [e.name for e in self._entries if id(e.parameter) not in in_optimizer]
            if missing:
                raise ValueError(f"the model and the optimizer do not match: selected parameters {missing} are not "
                                 "among the optimizer's parameters (build the optimizer from this model's "
                                 "parameters, or exclude them)")
        for entry in self._entries:
            if hasattr(entry.owner, entry.mask_name):
                raise ValueError(f"{entry.name!r} already has a mask ({entry.mask_name!r} exists on its module): is "
                                 "another SparsityManager attached? call its remove() first")
        self.shapes = {e.name: tuple(e.parameter.shape) for e in self._entries}
        self.density_distribution = self._densities(distribution, density)
        self.initial_counts = layer_counts(self.shapes, self.density_distribution)
        self.step_count = 0
        self.last_update: dict[str, Any] = {}
        self._pending_stats: dict[str, Any] = {}
        self._cache: list[tuple[Any, ...] | None] = [None] * len(self._entries)
        self._handles: list[Any] = []
        initial = {e.name: random_mask(e.parameter.shape, self.initial_counts[e.name], self.generator,
                                       device=e.parameter.device) for e in self._entries}
        initial = self._synchronise(initial)  # rank 0's masks everywhere, even if the seeds differ
        with torch.no_grad():
            for entry in self._entries:
                parameter = entry.parameter
                mask = initial[entry.name].to(parameter.device)
                entry.owner.register_buffer(entry.mask_name, mask, persistent=True)
                parameter.mul_(mask)
                if scale_init and 0 < int(mask.sum()) < mask.numel():
                    parameter.mul_(math.sqrt(mask.numel() / int(mask.sum())))
                reset_state(optimizer, parameter, ~mask)
        self._attach_hooks()
        _ATTACHED.add(self)

    # ---------------------------------------------------------------------------------- setup
    def _entry(self, name: str) -> _Entry:
        owner_name, _, local = name.rpartition(".")
        owner = self.model.get_submodule(owner_name) if owner_name else self.model
        return _Entry(name, owner, local)

    def _densities(self, distribution: str | Mapping[str, float], density: float) -> dict[str, float]:
        if isinstance(distribution, Mapping):
            unknown = sorted(set(distribution) - set(self.names))
            missing = sorted(set(self.names) - set(distribution))
            if unknown or missing:
                raise ValueError(f"distribution: a dict must give a density for exactly the selected weights "
                                 f"{self.names}; unknown {unknown}, missing {missing}")
            return {n: check_fraction(f"distribution[{n!r}]", distribution[n], low_open=True) for n in self.names}
        if distribution == "uniform":
            return uniform_densities(self.shapes, density)
        if distribution == "erk":
            return erk_densities(self.shapes, density)
        raise ValueError(f"distribution must be one of {DISTRIBUTIONS} or a dict of densities; got {distribution!r}")

    def _attach_hooks(self) -> None:
        if self.optimizer is not None:
            self._handles.append(self.optimizer.register_step_post_hook(self._after_optimizer_step))
        owners = {id(e.owner): e.owner for e in self._entries}  # one hook per module (an LSTM owns several)
        for owner in owners.values():
            self._handles.append(owner._register_load_state_dict_pre_hook(self._check_loaded_mask, with_module=True))
        self._handles.append(self.model.register_load_state_dict_post_hook(self._after_load))

    def _check_loaded_mask(self, module: nn.Module, state_dict: Mapping[str, Any], prefix: str, *args: Any) -> None:
        """Load pre-hook: a mask in the state dict must have its weight's shape (ValueError naming both)."""
        for entry in self._entries:
            if entry.owner is not module:
                continue
            key = prefix + entry.mask_name
            if key in state_dict:
                loaded = state_dict[key]
                shape = tuple(entry.parameter.shape)
                if not isinstance(loaded, Tensor) or tuple(loaded.shape) != shape:
                    got = list(loaded.shape) if isinstance(loaded, Tensor) else type(loaded).__name__
                    raise ValueError(f"cannot load the mask of parameter {entry.name!r} (state dict key {key!r}): it "
                                     f"has shape {got} but the parameter has shape {list(shape)}")

    def _after_load(self, module: nn.Module, incompatible_keys: Any) -> None:
        """Load post-hook: the loaded weights are multiplied by the loaded masks."""
        self.apply_masks()

    def remove(self, keep_masks: bool = False) -> None:
        """Detach the hooks; also delete the mask buffers unless ``keep_masks`` (weights stay as they are)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        _ATTACHED.discard(self)
        if not keep_masks:
            for entry in self._entries:
                entry.owner._buffers.pop(entry.mask_name, None)
        self._cache = [None] * len(self._entries)

    # ---------------------------------------------------------------------------------- views
    @property
    def masks(self) -> dict[str, Tensor]:
        """The current masks (the buffers themselves), by weight name."""
        return {e.name: e.mask for e in self._entries}

    def mask(self, name: str) -> Tensor:
        """The mask of weight ``name``."""
        return self._entry_named(name).mask

    def parameter(self, name: str) -> nn.Parameter:
        """The managed weight ``name``."""
        return self._entry_named(name).parameter

    def _entry_named(self, name: str) -> _Entry:
        for entry in self._entries:
            if entry.name == name:
                return entry
        raise ValueError(f"{name!r} is not a managed weight; the managed weights are: {', '.join(self.names)}")

    def managed_name(self, module: nn.Module, local: str) -> str | None:
        """The managed name of parameter ``local`` of ``module`` (the module object itself), or None."""
        for entry in self._entries:
            if entry.owner is module and entry.local == local:
                return entry.name
        return None

    @torch.no_grad()
    def select_mask_slices(self, name: str, dim: int, index: Tensor) -> None:
        """Keep only the slices ``index`` (1-d integer tensor) of the mask of ``name`` along ``dim``.

        For structural surgery that cut the weight the same way (e.g. units removed by
        :func:`neuroplastic.structure.compaction.compact`): the mask buffer is replaced by the selection and the
        recorded shape updated. The schedules' target counts are absolute numbers of active weights and are
        not changed: active weights removed with a unit count as pruned ones.
        """
        entry = self._entry_named(name)
        mask = entry.mask.index_select(dim, index.to(device=entry.mask.device, dtype=torch.long))
        entry.owner._buffers[entry.mask_name] = mask
        self.shapes[name] = tuple(mask.shape)
        if mask.shape != entry.parameter.shape:
            raise ValueError(f"the mask of {name!r} now has shape {list(mask.shape)} but the weight has "
                             f"{list(entry.parameter.shape)}: cut the weight the same way first")

    def counts(self) -> dict[str, int]:
        """Active weights per layer."""
        return {e.name: int(e.mask.sum()) for e in self._entries}

    def layer_densities(self) -> dict[str, float]:
        """Density of each managed weight (active / size)."""
        return {e.name: int(e.mask.sum()) / e.mask.numel() for e in self._entries}

    def density(self) -> float:
        """Overall density of the managed weights: active / size over all of them."""
        active = sum(int(e.mask.sum()) for e in self._entries)
        return active / sum(e.mask.numel() for e in self._entries)

    @property
    def total_size(self) -> int:
        """Number of entries of all managed weights together."""
        return sum(math.prod(shape) for shape in self.shapes.values())

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self.names)} weights, density {self.density():.4f}, "
                f"step {self.step_count})")

    # ---------------------------------------------------------------------------------- masking
    def _pairs(self) -> tuple[list[Tensor], list[Tensor]]:
        """The managed weights and their masks as float tensors of the weights' dtype and device (cached)."""
        params, floats = [], []
        for i, entry in enumerate(self._entries):
            parameter = entry.parameter
            mask = entry.mask
            cached = self._cache[i]
            if (cached is None or cached[0] is not mask or cached[1] != mask._version or cached[2] is not parameter
                    or cached[3].dtype != parameter.dtype or cached[3].device != parameter.device):
                cached = (mask, mask._version, parameter, mask.to(device=parameter.device, dtype=parameter.dtype))
                self._cache[i] = cached
            params.append(parameter)
            floats.append(cached[3])
        return params, floats

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Multiply every managed weight by its mask now (pruned weights become exactly zero)."""
        params, floats = self._pairs()
        torch._foreach_mul_(params, floats)

    def _after_optimizer_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.step_count += 1
        self.apply_masks()
        if self.is_update_step(self.step_count):
            self.update_masks()

    # ---------------------------------------------------------------------------------- updates
    def is_update_step(self, step: int) -> bool:
        """Whether the masks change after optimizer step ``step`` (never, for the static base class)."""
        return False

    def compute_masks(self, step: int) -> dict[str, Tensor] | None:
        """The new masks at ``step`` (``{name: bool tensor}``), or None for no change. Overridden by algorithms."""
        return None

    def grow_init(self, name: str, parameter: Tensor, grown: Tensor) -> Tensor | None:
        """Values of newly grown weights (``[grown.sum()]``), or None for zero (the default)."""
        return None

    def update_masks(self, step: int | None = None) -> dict[str, Any]:
        """Run the algorithm's mask update now (at ``step``, default ``step_count``) and commit it.

        Returns ``last_update``: the step, and per layer the numbers of pruned and grown entries (the net
        change from the old mask to the new one) plus whatever the algorithm recorded.
        """
        step = self.step_count if step is None else check_int("step", step, minimum=0)
        self._pending_stats = {}
        new_masks = self.compute_masks(step)
        if new_masks is not None:
            self.last_update = {"step": step, **self.commit(new_masks), **self._pending_stats}
        return self.last_update

    def record(self, **stats: Any) -> None:
        """Add figures of the update in progress to ``last_update`` (called by algorithms in ``compute_masks``)."""
        self._pending_stats.update(stats)

    @torch.no_grad()
    def commit(self, new_masks: Mapping[str, Tensor]) -> dict[str, Any]:
        """Install new masks: sync across ranks, zero pruned weights, initialise grown ones, reset optimizer state.

        ``new_masks`` maps (a subset of) the managed names to boolean tensors of the weights' shapes.
        Returns ``{"pruned": {name: n}, "grown": {name: n}}``: the net changes per layer.
        """
        unknown = sorted(set(new_masks) - set(self.names))
        if unknown:
            raise ValueError(f"new_masks has unknown names {unknown}; the managed weights are {self.names}")
        new_masks = self._synchronise(dict(new_masks))
        pruned_counts, grown_counts = {}, {}
        for entry in self._entries:
            if entry.name not in new_masks:
                continue
            new = new_masks[entry.name]
            old = entry.mask
            if not isinstance(new, Tensor) or new.dtype != torch.bool or new.shape != old.shape:
                got = f"{getattr(new, 'dtype', type(new).__name__)} {list(getattr(new, 'shape', []))}"
                raise ValueError(f"the new mask of {entry.name!r} must be a boolean tensor of shape "
                                 f"{list(old.shape)}, got {got}")
            new = new.to(old.device)
            parameter = entry.parameter
            pruned = old & ~new
            grown = new & ~old
            parameter.mul_(new.to(parameter.dtype))
            if grown.any():
                values = self.grow_init(entry.name, parameter, grown)
                if values is not None:
                    values = self._broadcast(values.to(device=parameter.device, dtype=parameter.dtype))
                    parameter[grown] = values
            reset_state(self.optimizer, parameter, pruned | grown)
            old.copy_(new)
            pruned_counts[entry.name] = int(pruned.sum())
            grown_counts[entry.name] = int(grown.sum())
        self.apply_masks()
        return {"pruned": pruned_counts, "grown": grown_counts}

    def _distributed(self) -> bool:
        """True under an initialised torch.distributed with more than one process and ``sync_distributed``."""
        if not self.sync_distributed:
            return False
        import torch.distributed as dist

        return dist.is_available() and dist.is_initialized() and dist.get_world_size(self.process_group) > 1

    def _broadcast(self, tensor: Tensor) -> Tensor:
        """Rank 0's ``tensor`` on every rank (the tensor itself when not distributed)."""
        if not self._distributed():
            return tensor
        import torch.distributed as dist

        source = 0 if self.process_group is None else dist.get_global_rank(self.process_group, 0)
        buffer = tensor.to(torch.uint8) if tensor.dtype == torch.bool else tensor.clone()
        dist.broadcast(buffer, src=source, group=self.process_group)
        return buffer.bool() if tensor.dtype == torch.bool else buffer

    def _synchronise(self, new_masks: dict[str, Tensor]) -> dict[str, Tensor]:
        """Broadcast rank 0's new masks to every rank (only under torch.distributed with > 1 process)."""
        if not self._distributed():
            return new_masks
        return {name: self._broadcast(new_masks[name]) for name in self.names if name in new_masks}

    # ---------------------------------------------------------------------------------- state
    def extra_state(self) -> dict[str, Any]:
        """The algorithm's own state (schedules); overridden by algorithms."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned; overridden by algorithms."""

    def state_dict(self) -> dict[str, Any]:
        """Step counter, generator state, last update and the algorithm's state (masks are in the model's)."""
        return {"names": list(self.names), "step_count": self.step_count,
                "generator": self.generator.get_state(), "last_update": self.last_update,
                "algorithm": type(self).__name__, "extra": self.extra_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (so a resumed run makes the same decisions)."""
        if list(state.get("names", [])) != self.names:
            raise ValueError(f"the state dict manages {state.get('names')} but this manager manages {self.names}")
        if state.get("algorithm") != type(self).__name__:
            raise ValueError(f"the state dict is from a {state.get('algorithm')!r} manager, this is a "
                             f"{type(self).__name__!r}")
        self.step_count = int(state["step_count"])
        self.generator.set_state(state["generator"])
        self.last_update = dict(state.get("last_update", {}))
        self.load_extra_state(dict(state.get("extra", {})))
