"""Growth and shrinkage of neurons: start from one hidden unit, add units while all are in use, remove idle ones.

Miconi 2016, "Neural networks with differentiable structure" (arXiv 1606.06216). An L1 penalty on each hidden
unit's outgoing weights makes every unit "earn its keep": a unit that does not help the task sees its outgoing
weights shrink toward zero and is removed once they stay small; when every unit is in use (none is small), a
fresh unit is added as a reserve that gradient descent can recruit.

Equations (k a hidden unit, W[j, k] the weight from unit k to target j, PyTorch's ``[out, in]`` layout)::

    outgoing norm   n_k = mean over the unit's outgoing matrices W of ( mean_j |W[j, k]| )
        RNN:        n_k = 0.5 * (mean_o |W_ho[o, k]| + mean_j |W_hh[j, k]|)
        MLP layer l: n_k = mean_j |W_{l+1}[j, k]|
    penalty         P = strength * sum_k n_k            (dP/dW[j, k] = strength * sign(W[j, k]) / (G * J),
                                                         G matrices, J targets each), either added to the task
                                                         loss (``l1_penalty``) or applied after each optimizer
                                                         step as its proximal step (``shrink_``):
                    W[j, k] <- sign(W[j, k]) * max(|W[j, k]| - strength / (G * J), 0)
    after each optimizer step, for every unit:
        c_k <- c_k + 1 if n_k < threshold else 0      (consecutive checks under the threshold)
        remove unit k if c_k >= patience               (never below ``min_size`` units)
        then, if u < reserve remaining units have n_k < threshold: add reserve - u units (fewer if the layer
        would exceed ``max_size``), each with fresh incoming weights U(-1/sqrt(fan_in), 1/sqrt(fan_in)), zero
        bias, outgoing weights ``outgoing_init`` times random signs (so its outgoing norm is exactly
        ``outgoing_init``; 0 by default) and c = 0.

Since a new unit starts under the threshold, the rule keeps about ``reserve`` units below it (the paper's k,
1 by default, as in the paper): a reserve unit is replaced by a fresh one every ``patience`` checks until
gradient descent raises its outgoing weights above the threshold; then it counts as in use and another
reserve unit is added. With k reserve units, up to k units can be recruited at the same time, so a layer can
grow up to k times faster.

Removing unit k of an RNN removes row k of W_ih, W_hh and the bias (its incoming weights) and column k of W_hh
and W_ho (its outgoing weights); of an MLP's hidden layer l, row k of W_l and b_l and column k of W_{l+1}.
Every change goes through :mod:`neuroplastic.structure.surgery`, so the optimizer's per-element state (SGD
momentum, Adam's moments) follows: kept units keep theirs; new units get each state tensor's mean over the
existing entries (``new_state="mean"``, the default) or zeros. With zeros, Adam moves a new unit's weights by
several times the learning rate for its first tens of steps (its second moment starts at 0 while the bias
correction, shared by the whole parameter, is already ~1), which recruits new units on noise (measured in
``docs/results/growing-rnn.md``); the paper's code likewise starts new units' RMSProp memory at 0.01, not 0.

Use: after each ``optimizer.step()``, call ``model.shrink_(strength)`` (or add ``model.l1_penalty(strength)`` to
the loss before ``backward``) and ``model.update_structure(rule, optimizer, generator)``.

Differences from the paper (its final version and code, ``rnn.py`` of ThomasMiconi/DiffRNN):

- Norm: the paper uses ``0.5 * (sum_o |W_ho[o, k]| + (O / H) * sum_j |W_hh[j, k]|)``, O times ours (O outputs);
  its threshold 0.05 with O = 4 is 0.0125 here. Means keep the threshold independent of the layer sizes.
- Penalty: the paper subtracts ``c * sign(W)`` from every W_ho and W_hh entry after its RMSProp step; ``shrink_``
  is that decoupled step, stopping at 0 instead of stepping past it, with the per-weight amounts of the norm
  above (so that the penalty is exactly the sum of the norms on which removal is decided; the paper's amount is
  the same for every weight). ``l1_penalty`` is the loss-term form. With Adam the two differ: Adam rescales the
  loss term's pull together with the task gradient, so a unit survives whenever its task gradient outweighs
  ``strength / (G * J)``, however small both are; the decoupled step pulls by a fixed amount that any consistent
  task gradient (which Adam turns into steps of about the learning rate) overcomes (how the two compared in
  the growing-RNN experiment: ``docs/results/growing-rnn.md``).
- Decisions: the paper keeps k = 1 sub-threshold units (``reserve``), deletes each excess one with probability
  0.05 per step and adds one with probability 0.01 per step when fewer than k are below the threshold; here both
  are deterministic (a patience counter for removal, which also replaces a reserve unit that stays unrecruited;
  additions at the first check with fewer than k units below it), so growth can be as fast as k units per
  check.
- New units: the paper gives their outgoing weights an L1 norm equal to the threshold (here ``outgoing_init``,
  0 by default so that adding a unit leaves the network's output unchanged).
- The paper's first version scaled each unit's output by a learned multiplier instead; not implemented.

Shapes: :class:`GrowableRNN` maps ``inputs [B, T, I]`` (and an optional state ``[B, H]``) to
``(logits [B, T, O], state [B, H])``; :class:`GrowableMLP` maps ``[B, I]`` to ``[B, O]``. Norms and counters
are ``[H]`` per hidden layer. A growable module's ``load_state_dict`` first resizes its parameters and buffers
to the saved shapes (in place, so an optimizer built on the module stays valid and can load its own saved
state), which is what restoring a checkpoint of a network that grew or shrank needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_choice, check_int, check_positive
from neuroplastic.structure.surgery import append_slices, select_slices

__all__ = ["GrowthRule", "GrowthDecision", "outgoing_norms", "l1_penalty", "shrink_outgoing_", "update_counters",
           "growth_decision", "carry_state", "GrowableRNN", "GrowableMLP"]


@dataclass(frozen=True)
class GrowthRule:
    """The settings of growth and shrinkage (see the module docstring for the rule).

    Args:
        threshold: a unit is "idle" while its outgoing norm ``n_k`` is below this (> 0).
        patience: an idle unit is removed after this many consecutive idle checks (>= 1).
        min_size: removal never leaves a layer with fewer units (>= 1); the idle units with the largest norms
            are kept instead.
        max_size: no unit is added to a layer of this size (None: no limit).
        reserve: how many units under the threshold a layer keeps as a reserve (>= 1; the paper's k): when fewer
            are under it after the removals, units are added to make up the difference.
        outgoing_init: a new unit's outgoing weights are ``outgoing_init`` times random signs, so that its
            outgoing norm is exactly ``outgoing_init`` (>= 0; the default 0 leaves the network's output unchanged;
            just under ``threshold`` is the paper's choice: the new unit is recruited by a small push).
        new_state: the optimizer state of a new unit's weights: "mean" (each state tensor's mean over the
            parameter's existing entries) or "zero". See
            :func:`~neuroplastic.structure.surgery.append_slices`: with Adam, zero second moments make the new
            unit's first updates several times the learning rate, which recruits new units on noise.
    """

    threshold: float
    patience: int
    min_size: int = 1
    max_size: int | None = None
    outgoing_init: float = 0.0
    new_state: str = "mean"
    reserve: int = 1

    def __post_init__(self) -> None:
        check_positive("threshold", self.threshold)
        check_int("patience", self.patience, minimum=1)
        check_int("min_size", self.min_size, minimum=1)
        if self.max_size is not None:
            check_int("max_size", self.max_size, minimum=self.min_size)
        check_positive("outgoing_init", self.outgoing_init, allow_zero=True)
        check_choice("new_state", self.new_state, ("mean", "zero"))
        check_int("reserve", self.reserve, minimum=1)


class GrowthDecision(NamedTuple):
    """What one check decided for a layer.

    Attributes:
        keep: ``[H_kept]`` long, the indices of the kept units (increasing).
        removed: ``[H - H_kept]`` long, the indices of the removed units (increasing).
        add: how many units are added after the kept ones (0 to ``rule.reserve``).
        counters: ``[H_kept + add]`` long, the idle counters of the new layout (0 for added units).
    """

    keep: Tensor
    removed: Tensor
    add: int
    counters: Tensor

    @property
    def changed(self) -> bool:
        """Whether the layer's size or unit order changes."""
        return self.add > 0 or self.removed.numel() > 0


# ------------------------------------------------------------------------------------------------ pure core
def outgoing_norms(*weights: Tensor) -> Tensor:
    """The outgoing norm of every unit: ``n_k = mean over weights W of (mean_j |W[j, k]|)``.

    Each weight is ``[J, H]`` (J targets, the same H units along dim 1, PyTorch's ``[out, in]`` layout), e.g. an
    RNN's readout ``W_ho [O, H]`` and recurrent ``W_hh [H, H]``. Returns ``[H]``, differentiable.
    """
    if not weights:
        raise ValueError("outgoing_norms needs at least one weight matrix, got none")
    units = None
    for i, weight in enumerate(weights):
        if not isinstance(weight, Tensor):
            raise TypeError(f"weights[{i}] must be a torch.Tensor, got {type(weight).__name__}")
        if weight.dim() != 2 or weight.shape[0] == 0:
            raise ValueError(f"weights[{i}] must have shape [J, H] with J >= 1, got {list(weight.shape)}")
        if units is not None and weight.shape[1] != units:
            raise ValueError(f"weights[{i}] has {weight.shape[1]} units (dim 1); weights[0] has {units}")
        units = weight.shape[1]
    return torch.stack([weight.abs().mean(dim=0) for weight in weights]).mean(dim=0)


def l1_penalty(strength: float, *weights: Tensor) -> Tensor:
    """The L1 penalty on outgoing weights, ``strength * sum_k n_k`` (see :func:`outgoing_norms`); a scalar.

    Its gradient is ``strength * sign(W[j, k]) / (G * J)`` for each of the G matrices W ``[J, H]`` (0 where
    ``W[j, k] = 0``).
    """
    check_positive("strength", strength, allow_zero=True)
    return strength * outgoing_norms(*weights).sum()


@torch.no_grad()
def shrink_outgoing_(strength: float, *weights: Tensor) -> None:
    """One proximal step of the L1 penalty, in place: each weight moves toward 0 by its penalty gradient, not past.

    ``W[j, k] <- sign(W[j, k]) * max(|W[j, k]| - strength / (G * J), 0)`` for each of the G matrices ``W [J, H]``:
    the decoupled form of :func:`l1_penalty` (the paper subtracts ``c * sign(W)`` after each optimizer step),
    whose pull does not pass through an adaptive optimizer's normalisation and leaves unused weights at exactly 0.
    """
    check_positive("strength", strength, allow_zero=True)
    outgoing_norms(*weights)  # validates the shapes
    for weight in weights:
        step = strength / (len(weights) * weight.shape[0])
        weight.copy_(weight.sign() * (weight.abs() - step).clamp_min(0))


def update_counters(norms: Tensor, counters: Tensor, threshold: float) -> Tensor:
    """Idle counters after one check: ``c_k + 1`` where ``n_k < threshold``, else 0. ``[H], [H] -> [H]`` long."""
    check_positive("threshold", threshold)
    if norms.dim() != 1 or counters.shape != norms.shape:
        raise ValueError(f"norms and counters must both have shape [H], got {list(norms.shape)} and "
                         f"{list(counters.shape)}")
    under = norms.detach() < threshold
    return torch.where(under.to(counters.device), counters.long() + 1, torch.zeros_like(counters, dtype=torch.long))


def growth_decision(norms: Tensor, counters: Tensor, rule: GrowthRule) -> GrowthDecision:
    """Which units to keep and whether to add one, given the outgoing norms and idle counters of a layer.

    Counts the check (:func:`update_counters`), removes the units whose counter reached ``rule.patience``
    (keeping the ones with the largest norms if fewer than ``rule.min_size`` would remain), and adds
    ``rule.reserve - u`` units if only u < ``rule.reserve`` kept units are under ``rule.threshold`` (at most as
    many as keep the layer within ``rule.max_size``).
    ``norms [H], counters [H]`` -> :class:`GrowthDecision`.
    """
    if not isinstance(rule, GrowthRule):
        raise TypeError(f"rule must be a GrowthRule, got {type(rule).__name__}")
    if norms.numel() == 0:
        raise ValueError("norms must hold at least one unit, got an empty tensor")
    counters = update_counters(norms, counters, rule.threshold)
    norms = norms.detach()
    remove = counters >= rule.patience
    shortfall = rule.min_size - int((~remove).sum())
    if shortfall > 0:
        candidates = remove.nonzero().flatten()
        order = torch.argsort(norms[candidates], descending=True, stable=True)
        remove[candidates[order[:shortfall]]] = False
    keep = (~remove).nonzero().flatten()
    removed = remove.nonzero().flatten()
    idle = int((norms[keep] < rule.threshold).sum())
    add = max(rule.reserve - idle, 0)
    if rule.max_size is not None:
        add = max(min(add, rule.max_size - keep.numel()), 0)
    new_counters = torch.cat([counters[keep], counters.new_zeros(add)])
    return GrowthDecision(keep=keep, removed=removed, add=add, counters=new_counters)


def carry_state(state: Tensor, keep: Tensor, add: int) -> Tensor:
    """A hidden state after a structural change: the kept units' values, then zeros for added units.

    ``state [..., H]``, ``keep [H_kept]`` -> ``[..., H_kept + add]``.
    """
    check_int("add", add, minimum=0)
    kept = state.index_select(-1, keep.to(state.device))
    return torch.cat([kept, kept.new_zeros(*kept.shape[:-1], add)], dim=-1)


# ------------------------------------------------------------------------------------------------ modules
def _uniform(shape: Sequence[int], bound: float, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """U(-bound, bound) of ``shape`` (drawn on the CPU from ``generator``, then moved to ``like``'s device)."""
    values = (torch.rand(*shape, generator=generator) * 2 - 1) * bound
    return values.to(device=like.device, dtype=like.dtype)


def _signs(shape: Sequence[int], magnitude: float, generator: torch.Generator | None, like: Tensor) -> Tensor:
    """``magnitude`` times random signs, of ``shape`` (zeros, and no draw, if ``magnitude`` is 0)."""
    if magnitude == 0:
        return like.new_zeros(shape)
    signs = torch.randint(0, 2, tuple(shape), generator=generator) * 2 - 1
    return (signs * magnitude).to(device=like.device, dtype=like.dtype)


def _check_keep(keep: Any, size: int) -> Tensor:
    """Unit indices to keep: a non-empty 1-d integer tensor of distinct indices below ``size``."""
    if not isinstance(keep, Tensor) or keep.dim() != 1 or keep.dtype in (torch.bool,) or keep.is_floating_point():
        raise TypeError(f"keep must be a 1-d integer tensor of unit indices, got {keep!r}")
    if keep.numel() == 0:
        raise ValueError("keep must hold at least one unit index; a layer cannot become empty")
    if int(keep.min()) < 0 or int(keep.max()) >= size:
        raise ValueError(f"keep must hold indices in [0, {size}), got {keep.tolist()}")
    if torch.unique(keep).numel() != keep.numel():
        raise ValueError(f"keep must not repeat an index, got {keep.tolist()}")
    return keep.long()


class _Growable(nn.Module):
    """Shared behaviour: ``load_state_dict`` first resizes parameters and buffers to the saved shapes."""

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        with torch.no_grad():
            for name, parameter in self.named_parameters():
                saved = state_dict.get(prefix + name)
                if isinstance(saved, Tensor) and saved.shape != parameter.shape:
                    # In place: the same Parameter object, so an optimizer built on it stays valid.
                    parameter.data = parameter.new_empty(saved.shape)
            for name, buffer in list(self.named_buffers()):
                saved = state_dict.get(prefix + name)
                if isinstance(saved, Tensor) and saved.shape != buffer.shape:
                    owner_name, _, local = name.rpartition(".")
                    owner = self.get_submodule(owner_name) if owner_name else self
                    owner._buffers[local] = buffer.new_empty(saved.shape)
        self._sync_sizes()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _sync_sizes(self) -> None:
        """Update size attributes of submodules after their parameters changed shape (nothing by default)."""


def _remove(module: nn.Module, incoming: Sequence[tuple[str, int]], outgoing: Sequence[tuple[str, int]],
            keep: Tensor, optimizer: torch.optim.Optimizer | None) -> None:
    for name, dim in (*incoming, *outgoing):
        select_slices(module, name, dim, keep, optimizer)


class GrowableRNN(_Growable):
    """An Elman RNN with a readout whose hidden layer grows and shrinks (Miconi 2016).

    ``h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)``, ``y_t = W_ho h_t + b_o``. Parameters ``weight_ih [H, I]``,
    ``weight_hh [H, H]``, ``bias [H]``, ``weight_ho [O, H]``, ``bias_o [O]``; buffer ``idle_steps [H]`` (the idle
    counters, saved in ``state_dict``). Unit k's outgoing weights are column k of ``weight_ho`` and of
    ``weight_hh``; its incoming weights are row k of ``weight_ih`` and of ``weight_hh`` and ``bias[k]``.

    Initialisation: incoming weights U(-1/sqrt(I + H), 1/sqrt(I + H)), ``weight_ho`` U(-1/sqrt(H), 1/sqrt(H))
    (``nn.Linear``'s), biases 0; drawn from ``generator`` (or PyTorch's global generator).
    """

    _INCOMING = (("weight_ih", 0), ("bias", 0), ("weight_hh", 0))
    _OUTGOING = (("weight_hh", 1), ("weight_ho", 1))

    def __init__(self, input_size: int, output_size: int, hidden_size: int = 1, *,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        check_int("input_size", input_size, minimum=1)
        check_int("output_size", output_size, minimum=1)
        check_int("hidden_size", hidden_size, minimum=1)
        like = torch.empty(0)
        bound = 1 / math.sqrt(input_size + hidden_size)
        self.weight_ih = nn.Parameter(_uniform((hidden_size, input_size), bound, generator, like))
        self.weight_hh = nn.Parameter(_uniform((hidden_size, hidden_size), bound, generator, like))
        self.bias = nn.Parameter(torch.zeros(hidden_size))
        self.weight_ho = nn.Parameter(_uniform((output_size, hidden_size), 1 / math.sqrt(hidden_size), generator,
                                               like))
        self.bias_o = nn.Parameter(torch.zeros(output_size))
        self.register_buffer("idle_steps", torch.zeros(hidden_size, dtype=torch.long))

    @property
    def input_size(self) -> int:
        return self.weight_ih.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.weight_hh.shape[0]

    @property
    def output_size(self) -> int:
        return self.weight_ho.shape[0]

    def forward(self, inputs: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``inputs [B, T, I]`` (and ``state [B, H]``, default zeros) -> ``(logits [B, T, O], state [B, H])``."""
        if not isinstance(inputs, Tensor) or inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            shape = list(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
            raise ValueError(f"inputs must have shape [B, T, {self.input_size}], got {shape}")
        batch = inputs.shape[0]
        if state is None:
            state = inputs.new_zeros(batch, self.hidden_size)
        elif state.shape != (batch, self.hidden_size):
            raise ValueError(f"state must have shape [{batch}, {self.hidden_size}], got {list(state.shape)}")
        # The fused CPU/GPU kernel of nn.RNN, on our own parameters (their number changes during training).
        hidden, last = torch.rnn_tanh(inputs, state.unsqueeze(0).contiguous(),
                                      [self.weight_ih, self.weight_hh, self.bias, torch.zeros_like(self.bias)],
                                      True, 1, 0.0, self.training, False, True)
        return hidden @ self.weight_ho.t() + self.bias_o, last.squeeze(0)

    def outgoing_norms(self) -> Tensor:
        """``n_k = 0.5 * (mean_o |W_ho[o, k]| + mean_j |W_hh[j, k]|)``, ``[H]``."""
        return outgoing_norms(self.weight_ho, self.weight_hh)

    def l1_penalty(self, strength: float) -> Tensor:
        """``strength * sum_k n_k``: the L1 penalty on the outgoing weights, to add to the loss."""
        return l1_penalty(strength, self.weight_ho, self.weight_hh)

    def shrink_(self, strength: float) -> None:
        """The decoupled L1 step on the outgoing weights (:func:`shrink_outgoing_`); call after the optimizer step."""
        shrink_outgoing_(strength, self.weight_ho, self.weight_hh)

    def remove_units(self, keep: Tensor, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Keep only the hidden units ``keep`` (``[H_kept]`` indices): rows and columns, optimizer state too."""
        keep = _check_keep(keep, self.hidden_size)
        _remove(self, self._INCOMING, self._OUTGOING, keep, optimizer)
        self.idle_steps = self.idle_steps[keep.to(self.idle_steps.device)]

    def add_units(self, count: int = 1, optimizer: torch.optim.Optimizer | None = None,
                  generator: torch.Generator | None = None, outgoing_init: float = 0.0,
                  new_state: str = "mean") -> None:
        """Append ``count`` hidden units: fresh incoming weights, outgoing ±outgoing_init, bias 0.

        Their optimizer state is ``new_state`` ("mean" or "zero", see :class:`GrowthRule`).
        """
        check_int("count", count, minimum=1)
        check_positive("outgoing_init", outgoing_init, allow_zero=True)
        check_choice("new_state", new_state, ("mean", "zero"))
        hidden, inputs, outputs = self.hidden_size, self.input_size, self.output_size
        like = self.weight_hh
        bound = 1 / math.sqrt(inputs + hidden + count)
        parts = (("weight_ih", 0, _uniform((count, inputs), bound, generator, like)),
                 ("bias", 0, like.new_zeros(count)),
                 ("weight_hh", 0, _uniform((count, hidden), bound, generator, like)),
                 ("weight_hh", 1, _signs((hidden + count, count), outgoing_init, generator, like)),
                 ("weight_ho", 1, _signs((outputs, count), outgoing_init, generator, like)))
        for name, dim, values in parts:
            append_slices(self, name, dim, values, optimizer, state=new_state)
        self.idle_steps = torch.cat([self.idle_steps, self.idle_steps.new_zeros(count)])

    def update_structure(self, rule: GrowthRule, optimizer: torch.optim.Optimizer | None = None,
                         generator: torch.Generator | None = None) -> GrowthDecision:
        """One check of the growth rule (call after each optimizer step): count, remove, add. Returns the decision."""
        with torch.no_grad():
            decision = growth_decision(self.outgoing_norms(), self.idle_steps, rule)
        if decision.removed.numel():
            self.remove_units(decision.keep, optimizer)
        if decision.add:
            self.add_units(decision.add, optimizer, generator, rule.outgoing_init, rule.new_state)
        self.idle_steps = decision.counters.to(self.idle_steps.device)
        return decision

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, output_size={self.output_size}"


_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}


class GrowableMLP(_Growable):
    """A multilayer perceptron whose hidden layers grow and shrink (Miconi 2016, applied within each layer).

    ``h_0 = x``, ``h_l = act(W_l h_{l-1} + b_l)``, output ``W_L h_{L-1} + b_L``; ``layers[l]`` is an
    ``nn.Linear``. Hidden layer l's unit k has outgoing weights ``layers[l + 1].weight[:, k]`` and incoming
    weights ``layers[l].weight[k]`` and ``layers[l].bias[k]``. Buffers ``idle_steps_{l} [H_l]`` hold the idle
    counters. Initialisation is ``nn.Linear``'s, drawn from ``generator`` (or the global generator).
    """

    def __init__(self, input_size: int, output_size: int, hidden_sizes: Sequence[int] = (1,), *,
                 activation: str = "tanh", generator: torch.Generator | None = None) -> None:
        super().__init__()
        check_int("input_size", input_size, minimum=1)
        check_int("output_size", output_size, minimum=1)
        if isinstance(hidden_sizes, (str, bytes)) or not isinstance(hidden_sizes, Sequence) or not hidden_sizes:
            raise ValueError(f"hidden_sizes must be a non-empty sequence of positive ints, got {hidden_sizes!r}")
        for size in hidden_sizes:
            check_int("hidden_sizes[i]", size, minimum=1)
        self.activation = check_choice("activation", activation, _ACTIVATIONS)
        sizes = [input_size, *hidden_sizes, output_size]
        self.layers = nn.ModuleList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            layer = nn.Linear(fan_in, fan_out)
            bound = 1 / math.sqrt(fan_in)
            with torch.no_grad():
                layer.weight.copy_(_uniform((fan_out, fan_in), bound, generator, layer.weight))
                layer.bias.copy_(_uniform((fan_out,), bound, generator, layer.bias))
            self.layers.append(layer)
        for index, size in enumerate(hidden_sizes):
            self.register_buffer(f"idle_steps_{index}", torch.zeros(size, dtype=torch.long))

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(layer.weight.shape[0] for layer in self.layers[:-1])

    def forward(self, inputs: Tensor) -> Tensor:
        """``inputs [B, I]`` -> ``[B, O]``."""
        act = _ACTIVATIONS[self.activation]
        hidden = inputs
        for layer in self.layers[:-1]:
            hidden = act(layer(hidden))
        return self.layers[-1](hidden)

    def _check_layer(self, layer: int) -> int:
        """``layer`` if it indexes a hidden layer (the valid indices depend on the network's depth)."""
        return check_int("layer (a hidden layer index)", layer, minimum=0, maximum=len(self.layers) - 2)

    def idle_steps(self, layer: int) -> Tensor:
        """The idle counters of hidden layer ``layer``, ``[H_layer]`` long."""
        return getattr(self, f"idle_steps_{self._check_layer(layer)}")

    def outgoing_norms(self, layer: int) -> Tensor:
        """``n_k = mean_j |W_{layer+1}[j, k]|`` for hidden layer ``layer``, ``[H_layer]``."""
        return outgoing_norms(self.layers[self._check_layer(layer) + 1].weight)

    def l1_penalty(self, strength: float) -> Tensor:
        """``strength * sum over hidden layers and units of n_k``, to add to the loss."""
        return sum((l1_penalty(strength, layer.weight) for layer in self.layers[1:]),
                   start=self.layers[0].weight.new_zeros(()))

    def shrink_(self, strength: float) -> None:
        """The decoupled L1 step (:func:`shrink_outgoing_`) on every hidden layer's outgoing weights."""
        for layer in self.layers[1:]:
            shrink_outgoing_(strength, layer.weight)

    def _names(self, layer: int) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
        incoming = ((f"layers.{layer}.weight", 0), (f"layers.{layer}.bias", 0))
        return incoming, ((f"layers.{layer + 1}.weight", 1),)

    def remove_units(self, layer: int, keep: Tensor, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Keep only the units ``keep`` of hidden layer ``layer``; the optimizer state follows."""
        keep = _check_keep(keep, self.hidden_sizes[self._check_layer(layer)])
        _remove(self, *self._names(layer), keep, optimizer)
        counters = self.idle_steps(layer)
        setattr(self, f"idle_steps_{layer}", counters[keep.to(counters.device)])
        self._sync_sizes()

    def add_units(self, layer: int, count: int = 1, optimizer: torch.optim.Optimizer | None = None,
                  generator: torch.Generator | None = None, outgoing_init: float = 0.0,
                  new_state: str = "mean") -> None:
        """Append ``count`` units to hidden layer ``layer``: fresh incoming weights, outgoing ±outgoing_init.

        Their bias is 0 and their optimizer state ``new_state`` ("mean" or "zero", see :class:`GrowthRule`).
        """
        self._check_layer(layer)
        check_int("count", count, minimum=1)
        check_positive("outgoing_init", outgoing_init, allow_zero=True)
        check_choice("new_state", new_state, ("mean", "zero"))
        below, above = self.layers[layer], self.layers[layer + 1]
        fan_in, targets = below.weight.shape[1], above.weight.shape[0]
        like = below.weight
        parts = ((f"layers.{layer}.weight", 0, _uniform((count, fan_in), 1 / math.sqrt(fan_in), generator, like)),
                 (f"layers.{layer}.bias", 0, like.new_zeros(count)),
                 (f"layers.{layer + 1}.weight", 1, _signs((targets, count), outgoing_init, generator, like)))
        for name, dim, values in parts:
            append_slices(self, name, dim, values, optimizer, state=new_state)
        counters = self.idle_steps(layer)
        setattr(self, f"idle_steps_{layer}", torch.cat([counters, counters.new_zeros(count)]))
        self._sync_sizes()

    def update_structure(self, rule: GrowthRule, optimizer: torch.optim.Optimizer | None = None,
                         generator: torch.Generator | None = None) -> list[GrowthDecision]:
        """One check of the growth rule on every hidden layer (after each optimizer step); one decision each."""
        decisions = []
        for layer in range(len(self.layers) - 1):
            with torch.no_grad():
                decision = growth_decision(self.outgoing_norms(layer), self.idle_steps(layer), rule)
            if decision.removed.numel():
                self.remove_units(layer, decision.keep, optimizer)
            if decision.add:
                self.add_units(layer, decision.add, optimizer, generator, rule.outgoing_init, rule.new_state)
            setattr(self, f"idle_steps_{layer}", decision.counters.to(self.idle_steps(layer).device))
            decisions.append(decision)
        return decisions

    def _sync_sizes(self) -> None:
        for layer in self.layers:
            layer.out_features, layer.in_features = layer.weight.shape

