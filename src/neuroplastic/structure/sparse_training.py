"""Sparse training algorithms: GMP, SET, RigL and GraNet, built on the sparsity manager, criteria and schedules.

Each class is a :class:`~neuroplastic.structure.sparsity_manager.SparsityManager`: construct it with the model and its
optimizer, then train as usual; after every ``optimizer.step()`` the pruned weights are zeroed and, at
update steps, the masks change. Counts are exact integers (``round`` below is half up)::

    sparsity = RigL(model, optimizer, density=0.1, delta_t=100, end=int(0.75 * total_steps))
    for x, y in data:
        optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()

- :class:`GMP`: gradual magnitude pruning (Zhu & Gupta 2017, "To prune, or not to prune"). At update
  steps t = t0, t0 + delta_t, ..., t1 the network keeps the ``n(t)`` largest-magnitude active weights, with
  ``n(t) = round(n_f + (n_i - n_f) * (1 - (t - t0) / (t1 - t0)) ** 3)`` (per layer, or over all layers at
  once with ``pruning="global"``). No regrowth.
- :class:`SET`: sparse evolutionary training (Mocanu et al. 2018, "Scalable training of artificial neural
  networks with adaptive sparse connectivity inspired by network science"). Constant density; every
  delta_t steps each layer drops ``k = round(f_t * active)`` of its smallest-magnitude active weights and
  grows ``k`` at uniformly random inactive positions; ``f_t = f0 / 2 * (1 + cos(pi t / T))``.
- :class:`RigL`: rigged lottery (Evci et al. 2020, "Rigging the lottery: making all tickets winners").
  As SET, but grows the ``k`` inactive positions with the largest dense gradient magnitude ``|dL/dW|``.
  The gradient is dense for free here: the mask multiplies the weights after each step, it is not part of
  the graph, so ``W.grad`` (the gradient of the step just taken, still there in the step post-hook) has
  entries for the pruned positions too. Grown weights start at zero.
- :class:`GraNet`: gradual pruning with zero-cost neuroregeneration (Liu et al. 2021, "Sparse training via
  boosting pruning plasticity with neuroregeneration", NeurIPS). Every delta_t steps: (1) gradual magnitude
  pruning on the cubic schedule from ``initial_density`` (1.0: dense-to-sparse; < 1: sparse-to-sparse from
  a random ERK mask) to ``final_density`` between t0 and t1, over all layers at once (``pruning="global"``,
  as the authors' ``--method GraNet``); (2) neuroregeneration: each layer drops ``k = round(r_t * active)``
  more of its smallest-magnitude active weights and regrows ``k`` inactive ones where the gradient already
  computed in this training step is largest (zero cost: no extra forward/backward), with
  ``r_t = r_min + (r0 - r_min) / 2 * (1 + cos(pi t / T))``. The authors' code uses r0 = 0.5, r_min = 0.005,
  T = the whole training, delta_t = 1000 iterations, t1 = 110 of 160 epochs (CIFAR); regeneration goes on
  after t1 until T. Grown weights start at zero.

In every update the candidates for growth are the positions inactive after the drop (a position dropped in
this update may be chosen again; it then simply stays). The committed change is the difference between
the old and the new mask: ``pruned = old & ~new``, ``grown = new & ~old``; for SET and RigL, and for
GraNet's regeneration, the numbers are equal per layer, so the density never drifts.

Shapes: masks and scores have their weight's shape; the manager's ``last_update`` records the counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_choice, check_fraction, check_int

from .criteria import gradient_magnitude, magnitude, momentum, random_scores
from .masks import (
    erk_densities,
    grow_highest,
    keep_highest,
    keep_highest_global,
    layer_counts,
    prune_lowest,
    uniform_densities,
)
from .schedules import CosineFractionSchedule, CubicDensitySchedule
from .sparsity_manager import SparsityManager

__all__ = ["GMP", "SET", "RigL", "GraNet", "PRUNING_MODES", "GROWTH_MODES"]

PRUNING_MODES = ("layerwise", "global")
GROWTH_MODES = ("gradient", "momentum", "random")
GROW_INITS = ("zeros", "normal")


def _round(value: float) -> int:
    return int(math.floor(value + 0.5))


class _ScheduledPruning:
    """Gradual magnitude pruning on a cubic schedule (shared by GMP and GraNet)."""

    schedule: CubicDensitySchedule
    pruning: str
    final_counts: dict[str, int]
    final_total: int

    def _setup_pruning(self: Any, final_density: float, distribution: Any, pruning: str) -> None:
        if pruning == "layerwise":
            if isinstance(distribution, Mapping):
                raise ValueError("distribution: a dict of densities works only with pruning='global' (with "
                                 "'layerwise' the final per-layer densities are the 'uniform' or 'erk' "
                                 "distribution at final_density)")
            densities = (uniform_densities(self.shapes, final_density) if distribution == "uniform"
                         else erk_densities(self.shapes, final_density))
            final = layer_counts(self.shapes, densities)
            self.final_counts = {n: min(final[n], self.initial_counts[n]) for n in self.names}
        else:
            self.final_counts = {}
        self.final_total = min(_round(final_density * self.total_size), sum(self.initial_counts.values()))

    def _gradual_prune(self: Any, step: int, masks: dict[str, Tensor]) -> dict[str, Tensor]:
        """Keep the largest-magnitude active weights down to the schedule's count at ``step``."""
        weights = {n: magnitude(self.parameter(n)) for n in self.names}
        if self.pruning == "global":
            target = self.schedule.count(step, sum(self.initial_counts.values()), self.final_total)
            active = sum(int(m.sum()) for m in masks.values())
            if target < active:
                masks = keep_highest_global(masks, weights, target)
            self.record(target_total=target)
            return masks
        targets = {}
        for name in self.names:
            targets[name] = self.schedule.count(step, self.initial_counts[name], self.final_counts[name])
            if targets[name] < int(masks[name].sum()):
                masks[name] = keep_highest(masks[name], weights[name], targets[name])
        self.record(target_counts=targets)
        return masks


class GMP(_ScheduledPruning, SparsityManager):
    """Gradual magnitude pruning (Zhu & Gupta 2017) from ``initial_density`` to ``final_density``.

    Args:
        model, optimizer: as for :class:`~neuroplastic.structure.sparsity_manager.SparsityManager`.
        final_density: density reached at step ``end``, in (0, 1].
        end: t1, the last pruning step (optimizer steps since attaching).
        initial_density: density at attach time (1.0: dense; else a random mask of the ``distribution``).
        start: t0, the first pruning step. delta_t: steps between pruning updates.
        distribution: initial distribution; with ``pruning="layerwise"`` also the final per-layer densities.
        pruning: ``"layerwise"`` (each layer on its own cubic curve, Zhu & Gupta) or ``"global"`` (one
            magnitude threshold over all layers; the total count follows the cubic curve).
        **kwargs: ``modules``, ``patterns``, ``exclude``, ``seed``, ``sync_distributed``, ``process_group`` of
            the manager.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, final_density: float, *,
                 end: int, initial_density: float = 1.0, start: int = 0, delta_t: int = 100,
                 distribution: str | Mapping[str, float] = "uniform", pruning: str = "layerwise",
                 **kwargs: Any) -> None:
        check_fraction("final_density", final_density, low_open=True)
        self.pruning = check_choice("pruning", pruning, PRUNING_MODES)
        self.schedule = CubicDensitySchedule(initial_density, final_density, start, end, delta_t)
        super().__init__(model, optimizer, initial_density, distribution=distribution, **kwargs)
        self._setup_pruning(final_density, distribution, pruning)

    def is_update_step(self, step: int) -> bool:
        return self.schedule.is_update_step(step)

    def compute_masks(self, step: int) -> dict[str, Tensor]:
        masks = {n: m.clone() for n, m in self.masks.items()}
        self.record(density_target=self.schedule.value(step))
        return self._gradual_prune(step, masks)

    def extra_state(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "schedule" in state:
            self.schedule.load_state_dict(state["schedule"])


class _PruneAndRegrow(SparsityManager):
    """Constant-density drop-and-grow every delta_t steps on a cosine-annealed fraction (SET, RigL)."""

    default_growth = "random"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, density: float, *, end: int,
                 fraction: float = 0.3, delta_t: int = 100, start: int = 0,
                 distribution: str | Mapping[str, float] = "erk", growth: str | None = None,
                 grow_init: str = "zeros", **kwargs: Any) -> None:
        check_int("delta_t", delta_t, minimum=1)
        self.fraction_schedule = CosineFractionSchedule(fraction, end=end, start=start, every=delta_t)
        self.growth = check_choice("growth", growth or self.default_growth, GROWTH_MODES)
        self.grow_init_mode = check_choice("grow_init", grow_init, GROW_INITS)
        super().__init__(model, optimizer, density, distribution=distribution, **kwargs)

    def is_update_step(self, step: int) -> bool:
        return self.fraction_schedule.is_update_step(step)

    def compute_masks(self, step: int) -> dict[str, Tensor]:
        fraction = self.fraction_schedule.value(step)
        masks = {n: m.clone() for n, m in self.masks.items()}
        rewired = _regrow(self, masks, fraction, self.growth)
        self.record(fraction=fraction, rewired=rewired)
        return masks

    def grow_init(self, name: str, parameter: Tensor, grown: Tensor) -> Tensor | None:
        if self.grow_init_mode == "zeros":
            return None
        active = parameter[parameter != 0]
        std = float(active.std()) if active.numel() > 1 else 0.0
        count = int(grown.sum())
        return torch.randn(count, generator=self.generator, device=self.generator.device) * std

    def extra_state(self) -> dict[str, Any]:
        return {"fraction_schedule": self.fraction_schedule.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "fraction_schedule" in state:
            self.fraction_schedule.load_state_dict(state["fraction_schedule"])


def _growth_scores(manager: SparsityManager, name: str, growth: str) -> Tensor:
    parameter = manager.parameter(name)
    if growth == "gradient":
        if parameter.grad is None:
            raise ValueError(f"growth='gradient': {name!r} has no gradient at step {manager.step_count}; the mask "
                             "update needs the gradient of the step just taken (loss.backward() before "
                             "optimizer.step(), and no zero_grad(set_to_none=True) in between)")
        return gradient_magnitude(parameter.grad)
    if growth == "momentum":
        state = manager.optimizer.state.get(parameter, {}) if manager.optimizer is not None else {}
        return momentum(state)
    return random_scores(parameter.shape, manager.generator, device=parameter.device)


def _regrow(manager: SparsityManager, masks: dict[str, Tensor], fraction: float, growth: str) -> dict[str, int]:
    """Per layer, drop ``round(fraction * active)`` by magnitude and grow as many by ``growth`` (in place)."""
    rewired = {}
    for name in manager.names:
        mask = masks[name]
        count = _round(fraction * int(mask.sum()))
        rewired[name] = count
        if count == 0:
            continue
        dropped = prune_lowest(mask, magnitude(manager.parameter(name)), count)
        masks[name] = grow_highest(dropped, _growth_scores(manager, name, growth), count)
    return rewired


class SET(_PruneAndRegrow):
    """Sparse evolutionary training (Mocanu et al. 2018): magnitude drop, random regrowth, constant density.

    Args:
        model, optimizer: as for the manager.
        density: the constant overall density, in (0, 1].
        end: T, the step after which the topology stops changing (the fraction anneals to 0 there).
        fraction: f0, the fraction of each layer's active weights rewired at the first update (default 0.3).
        delta_t: steps between updates. start: first step of the annealing (updates at start + k delta_t).
        distribution: initial per-layer densities ("erk" default, "uniform" or a dict).
        growth: "random" (default, SET), or "gradient"/"momentum".
        grow_init: "zeros" (default; grown weights start at 0) or "normal" (N(0, std of the layer's active
            weights), drawn from the manager's generator, as in SET's random re-initialisation).
        **kwargs: ``modules``, ``patterns``, ``exclude``, ``seed``, ``sync_distributed``, ``process_group``.
    """

    default_growth = "random"


class RigL(_PruneAndRegrow):
    """Rigged lottery (Evci et al. 2020): magnitude drop, regrowth where the dense gradient is largest.

    Arguments as for :class:`SET` (growth default "gradient"; the paper: ERK, fraction 0.3, delta_t 100,
    end = 75% of training). Grown weights start at zero.
    """

    default_growth = "gradient"


class GraNet(_ScheduledPruning, SparsityManager):
    """Gradual pruning with zero-cost neuroregeneration (Liu et al. 2021).

    Args:
        model, optimizer: as for the manager.
        final_density: density reached at ``end`` (t1), in (0, 1].
        end: t1, the last gradual-pruning step.
        initial_density: 1.0 (default) for dense-to-sparse, < 1 for sparse-to-sparse (random mask of the
            ``distribution``; the authors use 0.5 with ERK).
        start: t0. delta_t: steps between updates (pruning and regeneration).
        regrowth_fraction: r0, the fraction of each layer's active weights regenerated at the first update
            (authors: 0.5).
        regrowth_end: T of the cosine annealing of the regeneration fraction (default ``end``; the authors
            anneal over the whole training and keep regenerating after t1).
        regrowth_minimum: floor of the annealing (default 0; the authors' code uses 0.005).
        distribution: initial distribution (default "erk"); with ``pruning="layerwise"`` also the final one.
        pruning: "global" (default, the authors' GraNet) or "layerwise" (their GraNet_uniform, roughly).
        growth: "gradient" (default), "momentum" or "random".
        **kwargs: ``modules``, ``patterns``, ``exclude``, ``seed``, ``sync_distributed``, ``process_group``.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None, final_density: float, *,
                 end: int, initial_density: float = 1.0, start: int = 0, delta_t: int = 100,
                 regrowth_fraction: float = 0.5, regrowth_end: int | None = None, regrowth_minimum: float = 0.0,
                 distribution: str | Mapping[str, float] = "erk", pruning: str = "global",
                 growth: str = "gradient", **kwargs: Any) -> None:
        check_fraction("final_density", final_density, low_open=True)
        self.pruning = check_choice("pruning", pruning, PRUNING_MODES)
        self.growth = check_choice("growth", growth, GROWTH_MODES)
        self.schedule = CubicDensitySchedule(initial_density, final_density, start, end, delta_t)
        regrowth_end = end if regrowth_end is None else regrowth_end
        self.regrowth_schedule = CosineFractionSchedule(regrowth_fraction, end=regrowth_end, start=start,
                                                        every=delta_t, minimum=regrowth_minimum)
        super().__init__(model, optimizer, initial_density, distribution=distribution, **kwargs)
        self._setup_pruning(final_density, distribution, pruning)

    def is_update_step(self, step: int) -> bool:
        return self.schedule.is_update_step(step) or self.regrowth_schedule.is_update_step(step)

    def compute_masks(self, step: int) -> dict[str, Tensor]:
        masks = {n: m.clone() for n, m in self.masks.items()}
        if self.schedule.is_update_step(step):
            masks = self._gradual_prune(step, masks)
            self.record(density_target=self.schedule.value(step))
        if self.regrowth_schedule.is_update_step(step):
            fraction = self.regrowth_schedule.value(step)
            self.record(regrowth_fraction=fraction, regenerated=_regrow(self, masks, fraction, self.growth))
        return masks

    def extra_state(self) -> dict[str, Any]:
        return {"schedule": self.schedule.state_dict(), "regrowth_schedule": self.regrowth_schedule.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "schedule" in state:
            self.schedule.load_state_dict(state["schedule"])
        if "regrowth_schedule" in state:
            self.regrowth_schedule.load_state_dict(state["regrowth_schedule"])
