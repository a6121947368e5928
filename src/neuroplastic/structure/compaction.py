"""Compaction: physically remove dead units, so a neuron-sparse model becomes a smaller dense one.

A unit is dead when removing it cannot change the model's output:

- all its outgoing weights are zero (the next layer never reads it), or
- all its incoming weights are zero, so its output is a constant ``c = f(b)`` (``b`` its bias, ``f`` the
  elementwise modules after it), which is folded exactly into the next layer's bias before the unit goes::

      b' <- b' + W'[:, i] * c          (Linear; for a Conv, the sum of W'[:, i] over the kernel, times c)

Removing unit i deletes row i of its layer (weight and bias; the gate rows of unit i in an LSTM/GRU), the
matching input column(s) of the next layer (for conv -> flatten -> linear, the block of the flattened
input that channel i fills), and the per-unit parameters of a PReLU between them; the optimizer state is
cut the same way (:mod:`neuroplastic.structure.surgery`). The compacted model computes the same function
(up to float rounding) with fewer parameters, so it runs faster.

Supported layers: ``nn.Linear``, ``nn.Conv1d/2d/3d`` (groups 1) and single-layer unidirectional
``nn.RNN``/``nn.LSTM``/``nn.GRU`` (hidden units; the next layer may also be a recurrent module, whose inputs
are cut). Pairs (layer, next layer) are found in ``nn.Sequential`` chains (see
:func:`neuroplastic.structure.dormant.neuron_layer_pairs`) or given explicitly, e.g.
``compact(model, pairs=[("lstm", "head")])``. A removal cascades: a unit whose only readers were removed,
or whose only inputs were folded constants, is removed in a following pass.

Exactness notes. Folding is exact in eval mode (dropout is the identity there). A constant unit feeding a
zero-padded convolution is only removed if its constant is 0 (padding would see a different value at the
borders). A recurrent unit with zero incoming weights is constant from the first step for ``nn.RNN``
(h = f(b_ih + b_hh)); for an LSTM or GRU it is constant only if its cell input is exactly zero (then h = 0),
assuming the default zero initial state; and it is folded only if no other hidden unit reads it (its value
at t = 0 is the initial state, not the constant). A model that passes an explicit initial state must size
it to the new ``hidden_size``.

Safety. Compaction assumes that a pair's next layer is the only reader of the layer's units, and that each
module and parameter it cuts is used in one place. :func:`compact` handles what it can prove and refuses
the rest with a ValueError before changing anything: a module it would cut that is reached under two
names (the same object used twice in a Sequential), and a parameter of such a module shared with another
module (tied weights) are refused. What the module tree cannot show (a residual connection ``x + f(x)``
that also reads the layer, a module called twice in a custom ``forward``) is caught by a probe: the model's
outputs on a probe batch (given, or a random batch built for the model's first layer when it is a Linear or
recurrent module) are compared before and after, in eval mode; if they differ, or the forward fails, every
change is rolled back (the original parameter objects, their values, the layers' sizes, mask buffers, the
optimizer's parameter groups and a deep copy of its state) and a ValueError is raised.

Sparsity managers. A :class:`~neuroplastic.structure.sparsity_manager.SparsityManager` attached to the model
(e.g. GraNet) stays attached and keeps working: the masks of the cut weights are cut with the same kept
units (:meth:`~neuroplastic.structure.sparsity_manager.SparsityManager.select_mask_slices`), so training
continues with pruned weights exactly zero. Its schedules' targets are absolute counts of active weights and
are unchanged (active weights removed with a unit count as pruned).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .dormant import LayerPair, resolve_pairs
from .masks import MASK_SUFFIX
from .sparsity_manager import SparsityManager, attached_managers
from .surgery import find_parameter, select_slices

__all__ = ["LayerCompaction", "CompactionReport", "compact", "dead_units", "count_parameters"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_RECURRENT = (nn.RNN, nn.LSTM, nn.GRU)
_GATES = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3}


@dataclass(frozen=True)
class LayerCompaction:
    """What :func:`compact` did to one layer: unit counts and the removed units' original indices."""

    layer: str
    next_layer: str
    units_before: int
    units_after: int
    removed: tuple[int, ...]
    folded: tuple[int, ...] = ()
    """The removed units whose constant output was folded into the next layer's bias."""


@dataclass
class CompactionReport:
    """The result of :func:`compact`: per layer what was removed, and the parameter counts."""

    layers: dict[str, LayerCompaction] = field(default_factory=dict)
    parameters_before: int = 0
    parameters_after: int = 0

    @property
    def removed_units(self) -> int:
        return sum(len(layer.removed) for layer in self.layers.values())

    def summary(self) -> str:
        lines = [f"{name}: {c.units_before} -> {c.units_after} units ({len(c.folded)} folded)"
                 for name, c in self.layers.items()]
        lines.append(f"parameters: {self.parameters_before} -> {self.parameters_after}")
        return "\n".join(lines)


def count_parameters(model: nn.Module) -> int:
    """The number of parameter entries of ``model``."""
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------ checks
def _producer(model: nn.Module, name: str) -> nn.Module:
    module = model.get_submodule(name)
    if isinstance(module, nn.Linear):
        return module
    if isinstance(module, _CONV):
        if module.groups != 1:
            raise ValueError(f"layer {name!r} is a grouped convolution (groups={module.groups}); not supported")
        return module
    if isinstance(module, _RECURRENT):
        if module.num_layers != 1 or module.bidirectional or getattr(module, "proj_size", 0):
            raise ValueError(f"layer {name!r}: only single-layer, unidirectional recurrent modules without "
                             f"projection can lose hidden units (got num_layers={module.num_layers}, "
                             f"bidirectional={module.bidirectional}); stack single-layer modules instead")
        return module
    raise TypeError(f"layer {name!r} is a {type(module).__name__}; compaction removes units of nn.Linear, "
                    "nn.Conv1d/2d/3d, nn.RNN, nn.LSTM and nn.GRU")


def _consumer(model: nn.Module, name: str) -> nn.Module:
    module = model.get_submodule(name)
    if isinstance(module, nn.Linear):
        return module
    if isinstance(module, _CONV):
        if module.groups != 1:
            raise ValueError(f"next layer {name!r} is a grouped convolution (groups={module.groups}); not supported")
        return module
    if isinstance(module, _RECURRENT):
        if getattr(module, "proj_size", 0):
            raise ValueError(f"next layer {name!r} has a projection (proj_size); not supported")
        return module
    raise TypeError(f"next layer {name!r} is a {type(module).__name__}; the next layer must be nn.Linear, "
                    "nn.Conv1d/2d/3d, nn.RNN, nn.LSTM or nn.GRU")


def _units(producer: nn.Module) -> int:
    return producer.hidden_size if isinstance(producer, _RECURRENT) else producer.weight.shape[0]


def _directions(module: nn.Module) -> list[str]:
    return ["", "_reverse"] if module.bidirectional else [""]


def _input_weights(consumer: nn.Module) -> list[tuple[str, Tensor]]:
    """The consumer's weights whose dim 1 are its inputs, with their local names."""
    if isinstance(consumer, _RECURRENT):
        return [(f"weight_ih_l0{d}", getattr(consumer, f"weight_ih_l0{d}")) for d in _directions(consumer)]
    return [("weight", consumer.weight)]


def _block(producer: nn.Module, consumer: nn.Module, units: int, pair: LayerPair) -> int:
    fan_in = _input_weights(consumer)[0][1].shape[1]
    if fan_in == units:
        return 1
    if isinstance(producer, _CONV) and isinstance(consumer, nn.Linear) and units and fan_in % units == 0:
        return fan_in // units  # conv -> flatten -> linear: channel i fills inputs [i * block, (i + 1) * block)
    raise ValueError(f"next layer {pair.next_layer!r} has {fan_in} inputs but layer {pair.layer!r} has {units} "
                     "units; the pair does not match")


# ------------------------------------------------------------------------------------------------ dead units
def _incoming_zero(producer: nn.Module) -> Tensor:
    if isinstance(producer, _RECURRENT):
        gates, hidden = _GATES[type(producer)], producer.hidden_size
        w_ih = producer.weight_ih_l0.detach().view(gates, hidden, -1)
        w_hh = producer.weight_hh_l0.detach().view(gates, hidden, hidden)
        return w_ih.eq(0).all(-1).all(0) & w_hh.eq(0).all(-1).all(0)
    weight = producer.weight.detach()
    return weight.reshape(weight.shape[0], -1).eq(0).all(1)


def _recurrent_outgoing_zero(producer: nn.Module) -> Tensor:
    """True for hidden units that no other hidden unit reads (their column of W_hh is 0 off their own rows)."""
    if not isinstance(producer, _RECURRENT):
        return torch.ones(_units(producer), dtype=torch.bool, device=producer.weight.device)
    gates, hidden = _GATES[type(producer)], producer.hidden_size
    w_hh = producer.weight_hh_l0.detach().view(gates, hidden, hidden)
    own = torch.eye(hidden, dtype=torch.bool, device=w_hh.device).unsqueeze(0)
    return w_hh.masked_fill(own, 0).eq(0).all(0).all(0)


def _consumer_zero(consumer: nn.Module, units: int, block: int) -> Tensor:
    zero = None
    for _, weight in _input_weights(consumer):
        weight = weight.detach()
        if isinstance(consumer, nn.Linear):
            columns = weight.view(weight.shape[0], units, block).eq(0).all(-1).all(0)
        else:
            columns = weight.transpose(0, 1).reshape(units, -1).eq(0).all(1)
        zero = columns if zero is None else zero & columns
    assert zero is not None
    return zero


def _summed_bias(module: nn.Module, gates: int) -> tuple[Tensor, Tensor]:
    hidden = module.hidden_size
    weight = module.weight_ih_l0
    if not module.bias:
        return weight.new_zeros(gates, hidden), weight.new_zeros(gates, hidden)
    return module.bias_ih_l0.detach().view(gates, hidden), module.bias_hh_l0.detach().view(gates, hidden)


def _constants(producer: nn.Module, activation: Callable[[Tensor], Tensor] | None) -> tuple[Tensor, Tensor]:
    """The constant output of each unit if its incoming weights were zero, and where it is constant at all."""
    if isinstance(producer, _RECURRENT):
        gates = _GATES[type(producer)]
        b_ih, b_hh = _summed_bias(producer, gates)
        if isinstance(producer, nn.RNN):
            pre = b_ih[0] + b_hh[0]
            values = torch.tanh(pre) if producer.nonlinearity == "tanh" else torch.relu(pre)
            defined = torch.ones_like(values, dtype=torch.bool)
        elif isinstance(producer, nn.LSTM):
            b = b_ih + b_hh  # gates i, f, g, o
            cell_input = torch.sigmoid(b[0]) * torch.tanh(b[2])
            defined = cell_input == 0  # then c_t = 0 and h_t = 0 at every step
            values = torch.zeros_like(cell_input)
        else:  # GRU, gates r, z, n: n = tanh(b_in + r * b_hn), h_t = (1 - z) * n + z * h_{t-1}
            r = torch.sigmoid(b_ih[0] + b_hh[0])
            z = torch.sigmoid(b_ih[1] + b_hh[1])
            n = torch.tanh(b_ih[2] + r * b_hh[2])
            defined = (n == 0) | (z == 0)
            values = torch.where(z == 0, n, torch.zeros_like(n))
    else:
        bias = producer.bias.detach() if producer.bias is not None else producer.weight.new_zeros(_units(producer))
        values = bias.clone()
        defined = torch.ones_like(values, dtype=torch.bool)
    if activation is not None:
        values = activation(values.clone().view(1, -1)).reshape(-1)
    return values.detach(), defined & torch.isfinite(values)


def _foldable(consumer: nn.Module) -> bool:
    """Whether a constant input can be folded into ``consumer``'s bias exactly."""
    if isinstance(consumer, _RECURRENT):
        return bool(consumer.bias)
    if consumer.bias is None:
        return False
    if isinstance(consumer, _CONV) and consumer.padding_mode == "zeros":
        padding = consumer.padding
        if padding == "same":
            return all(k == 1 for k in consumer.kernel_size)
        return padding == "valid" or all(p == 0 for p in padding)
    return True


def dead_units(model: nn.Module, pair: LayerPair | tuple[Any, ...]) -> tuple[Tensor, Tensor, Tensor]:
    """Which units of ``pair.layer`` can be removed exactly: ``(removable, folded, constants)``, each ``[N]``.

    ``removable`` marks units whose outgoing weights are all zero, or whose incoming weights are all zero
    and whose constant output is 0 or can be folded into the next layer's bias; ``folded`` marks the latter
    with a non-zero constant, whose value is in ``constants``.
    """
    if not isinstance(pair, LayerPair):
        pair = resolve_pairs(model, [pair])[0]
    if pair.next_layer is None:
        raise ValueError(f"layer {pair.layer!r} has no next layer: its units cannot be removed")
    producer, consumer = _producer(model, pair.layer), _consumer(model, pair.next_layer)
    units = _units(producer)
    block = _block(producer, consumer, units, pair)
    recurrent_free = _recurrent_outgoing_zero(producer)
    outgoing = _consumer_zero(consumer, units, block) & recurrent_free
    values, defined = _constants(producer, pair.activation)
    constant = _incoming_zero(producer) & defined
    zero_constant = constant & (values == 0)
    folded = constant & ~zero_constant & ~outgoing & recurrent_free
    if not _foldable(consumer):
        folded = torch.zeros_like(folded)
    removable = outgoing | zero_constant | folded
    if removable.all():  # keep one unit, so that no layer becomes empty
        first = 0
        removable[first] = False
        folded[first] = False
    return removable, folded, values


# ------------------------------------------------------------------------------------------------ surgery
@torch.no_grad()
def _fold(consumer: nn.Module, units: Tensor, values: Tensor, total: int, block: int) -> None:
    for local, weight in _input_weights(consumer):
        if isinstance(consumer, nn.Linear):
            columns = weight.view(weight.shape[0], total, block)[:, units, :].sum(-1)
        else:
            columns = weight[:, units].reshape(weight.shape[0], len(units), -1).sum(-1)
        shift = columns @ values[units].to(columns)
        getattr(consumer, local.replace("weight", "bias")).add_(shift)


def _cut(model: nn.Module, name: str, dim: int, index: Tensor, optimizer: torch.optim.Optimizer | None,
         managers: Sequence[SparsityManager]) -> None:
    """``select_slices`` on parameter ``name``, and on its sparsity mask (a manager's, or a bare mask buffer)."""
    owner, local, _ = find_parameter(model, name)
    select_slices(model, name, dim, index, optimizer)
    handled = False
    for manager in managers:
        managed = manager.managed_name(owner, local)
        if managed is not None:
            manager.select_mask_slices(managed, dim, index)
            handled = True
    mask = owner._buffers.get(local + MASK_SUFFIX)
    if not handled and mask is not None and mask.shape != owner._parameters[local].shape:
        owner._buffers[local + MASK_SUFFIX] = mask.index_select(dim, index.to(mask.device))


def _remove(model: nn.Module, pair: LayerPair, keep: Tensor, block: int,
            optimizer: torch.optim.Optimizer | None, managers: Sequence[SparsityManager] = ()) -> None:
    producer = model.get_submodule(pair.layer)
    consumer = model.get_submodule(pair.next_layer)
    units = _units(producer)
    if isinstance(producer, _RECURRENT):
        gates = _GATES[type(producer)]
        rows = torch.cat([g * units + keep for g in range(gates)])
        _cut(model, f"{pair.layer}.weight_ih_l0", 0, rows, optimizer, managers)
        _cut(model, f"{pair.layer}.weight_hh_l0", 0, rows, optimizer, managers)
        _cut(model, f"{pair.layer}.weight_hh_l0", 1, keep, optimizer, managers)
        if producer.bias:
            _cut(model, f"{pair.layer}.bias_ih_l0", 0, rows, optimizer, managers)
            _cut(model, f"{pair.layer}.bias_hh_l0", 0, rows, optimizer, managers)
        producer.hidden_size = len(keep)
        producer.flatten_parameters()
    else:
        _cut(model, f"{pair.layer}.weight", 0, keep, optimizer, managers)
        if producer.bias is not None:
            _cut(model, f"{pair.layer}.bias", 0, keep, optimizer, managers)
        if isinstance(producer, nn.Linear):
            producer.out_features = len(keep)
        else:
            producer.out_channels = len(keep)
    for name in pair.between:
        module = model.get_submodule(name)
        if isinstance(module, nn.PReLU) and module.num_parameters == units and units > 1:
            _cut(model, f"{name}.weight", 0, keep, optimizer, managers)
            module.num_parameters = len(keep)
    columns = (keep.unsqueeze(1) * block + torch.arange(block, device=keep.device)).reshape(-1)
    for local, _ in _input_weights(consumer):
        _cut(model, f"{pair.next_layer}.{local}", 1, columns, optimizer, managers)
    if isinstance(consumer, nn.Linear):
        consumer.in_features = len(columns)
    elif isinstance(consumer, _CONV):
        consumer.in_channels = len(keep)
    else:
        consumer.input_size = len(keep)
        consumer.flatten_parameters()


# ------------------------------------------------------------------------------------------------ safety
_SIZES = ("in_features", "out_features", "in_channels", "out_channels", "input_size", "hidden_size", "num_parameters")


def _touched(model: nn.Module, pairs: Sequence[LayerPair]) -> dict[str, nn.Module]:
    """The modules compaction may change, by name: each pair's layer, next layer and modules between."""
    names = [name for pair in pairs for name in (pair.layer, pair.next_layer, *pair.between)]
    return {name: model.get_submodule(name) for name in dict.fromkeys(names)}


def _check_unshared(model: nn.Module, touched: dict[str, nn.Module]) -> None:
    """Refuse (ValueError) a cut module reached under two names or owning a parameter shared with another."""
    places: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        places.setdefault(id(module), []).append(name)
    owners: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        owners.setdefault(id(parameter), []).append(name)
    for name, module in touched.items():
        own = list(module.named_parameters(recurse=False))
        if own and len(places[id(module)]) > 1:
            raise ValueError(f"cannot compact: module {name!r} is used in several places "
                             f"({', '.join(places[id(module)])}); removing its units would change every use. "
                             "Give each place its own module, or compact other layers with pairs=[...]")
        for local, parameter in own:
            shared = owners[id(parameter)]
            if len(shared) > 1:
                raise ValueError(f"cannot compact: parameter {name}.{local} is shared ({', '.join(shared)}: tied "
                                 "weights); cutting it in one module would untie it")


def _default_probe(model: nn.Module) -> Tensor | None:
    """A random batch for the model's first module with parameters, if it is a Linear or recurrent one."""
    first = next((m for m in model.modules() if any(True for _ in m.parameters(recurse=False))), None)
    if first is None:
        return None
    weight = next(first.parameters(recurse=False))
    generator = torch.Generator().manual_seed(0)
    if isinstance(first, nn.Linear):
        shape: tuple[int, ...] = (8, first.in_features)
    elif isinstance(first, _RECURRENT):
        shape = (3, 4, first.input_size)
    else:
        return None
    return torch.randn(shape, generator=generator).to(device=weight.device, dtype=weight.dtype)


def _outputs(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value.detach().clone()]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _outputs(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _outputs(item)]
    return []


@torch.no_grad()
def _run_probe(model: nn.Module, probe: Any) -> list[Tensor]:
    """The model's output tensors on ``probe`` in eval mode (every module's training flag restored)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        return _outputs(model(probe))
    finally:
        for module, mode in modes:
            module.training = mode


def _difference(before: list[Tensor], after: list[Tensor]) -> float | None:
    """The largest relative output change, or None if the outputs do not even have the same shapes."""
    if len(before) != len(after) or any(a.shape != b.shape for a, b in zip(before, after, strict=True)):
        return None
    worst = 0.0
    for a, b in zip(before, after, strict=True):
        if a.numel():
            scale = max(1.0, float(a.abs().max()))
            worst = max(worst, float((a.double() - b.double()).abs().max()) / scale)
    return worst


@dataclass
class _Snapshot:
    """What compaction may change, to restore it: parameter objects and values, sizes, buffers, optimizer."""

    modules: list[tuple[nn.Module, dict[str, Any], dict[str, Tensor], dict[str, Any], dict[str, Any]]]
    groups: list[list[Tensor]]
    state: dict[Any, Any]
    shapes: list[tuple[SparsityManager, dict[str, tuple[int, ...]]]]


def _snapshot(modules: Sequence[nn.Module], optimizer: torch.optim.Optimizer | None,
              managers: Sequence[SparsityManager]) -> _Snapshot:
    saved = []
    touched_parameters = set()
    for module in modules:
        parameters = dict(module._parameters)
        values = {k: p.detach().clone() for k, p in parameters.items() if p is not None}
        touched_parameters |= {id(p) for p in parameters.values() if p is not None}
        sizes = {k: getattr(module, k) for k in _SIZES if hasattr(module, k)}
        saved.append((module, parameters, values, dict(module._buffers), sizes))
    groups, state = [], {}
    if optimizer is not None:
        groups = [list(group["params"]) for group in optimizer.param_groups]
        state = {p: copy.deepcopy(v) if id(p) in touched_parameters else v for p, v in optimizer.state.items()}
    return _Snapshot(saved, groups, state, [(m, dict(m.shapes)) for m in managers])


@torch.no_grad()
def _restore(snapshot: _Snapshot, optimizer: torch.optim.Optimizer | None) -> None:
    for module, parameters, values, buffers, sizes in snapshot.modules:
        for key, value in sizes.items():
            setattr(module, key, value)
        for key in [k for k in module._parameters if k not in parameters]:
            del module._parameters[key]
        for key, parameter in parameters.items():
            if parameter is not None:
                parameter.copy_(values[key])
            setattr(module, key, parameter)  # through __setattr__: an RNN's flat weight list follows
        module._buffers.clear()
        module._buffers.update(buffers)
        if isinstance(module, _RECURRENT):
            module.flatten_parameters()
    if optimizer is not None:
        for group, params in zip(optimizer.param_groups, snapshot.groups, strict=True):
            group["params"] = params
        optimizer.state.clear()
        optimizer.state.update(snapshot.state)
    for manager, shapes in snapshot.shapes:
        manager.shapes = shapes


def compact(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    pairs: Sequence[Any] | None = None,
    probe: Any = None,
) -> CompactionReport:
    """Remove every dead unit of ``model`` in place (and from ``optimizer``'s state); report what went.

    The model is either compacted exactly or left unchanged with a ValueError (see "Safety" in the module
    docstring): modules and parameters used in several places are refused before any change, and the
    outputs on a probe batch are compared before and after, with a rollback if they differ by more than
    ``1e-4 * max(1, max|output|)``. A sparsity manager attached to the model keeps working (its masks are
    cut too).

    Args:
        model: the model; its layers are replaced by smaller ones in place.
        optimizer: if given, its parameters and per-element state (momentum, Adam moments) are cut to
            match, so that training continues where it was.
        pairs: (layer, next_layer) or (layer, next_layer, activation) pairs, see
            :func:`neuroplastic.structure.dormant.resolve_pairs`; default: every pair of the model's
            ``nn.Sequential`` chains. Recurrent layers always need explicit pairs.
        probe: the input of the output check (anything ``model(probe)`` accepts); default None: a random
            batch (fixed seed, the global generator untouched) when the model's first module with parameters
            is a Linear or recurrent layer, else no check; False: no check. The probe runs in eval mode
            without gradients; a model that keeps state across forward calls should get ``probe=False``
            or a probe whose forward leaves no trace.

    Returns:
        A :class:`CompactionReport` with one entry per pair's layer and the parameter counts.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    resolved = [pair for pair in resolve_pairs(model, pairs) if pair.next_layer is not None]
    if not resolved:
        raise ValueError("found no (layer, next_layer) pairs to compact: the model has no nn.Sequential chain of "
                         "Linear/Conv layers; pass pairs=[(layer, next_layer), ...]")
    seen: set[str] = set()
    for pair in resolved:
        if pair.layer in seen:
            raise ValueError(f"layer {pair.layer!r} appears in more than one pair; a layer's units can have one "
                             "next layer only")
        seen.add(pair.layer)
        _producer(model, pair.layer)
        _consumer(model, pair.next_layer)
    touched = _touched(model, resolved)
    _check_unshared(model, touched)
    before = None
    if probe is None:
        probe = _default_probe(model)
        if probe is not None:
            try:
                before = _run_probe(model, probe)
            except Exception:  # the guessed input does not fit the model: no check
                before = None
    elif probe is not False:
        try:
            before = _run_probe(model, probe)
        except Exception as error:
            raise ValueError(f"compact: the model fails on the given probe ({error}); nothing was changed") from error
    managers = attached_managers(model)
    snapshot = _snapshot(list(touched.values()), optimizer, managers)
    try:
        report = _compact(model, optimizer, resolved, managers)
        if before is not None:
            try:
                after = _run_probe(model, probe)
            except Exception as error:
                raise ValueError(f"cannot compact: the compacted model fails on the probe batch ({error}); it "
                                 "reads a layer's output somewhere else than in the next layer (a residual "
                                 "connection?). The model and optimizer were restored unchanged") from error
            change = _difference(before, after)
            if change is None or change > 1e-4:
                what = "output shapes" if change is None else f"outputs (by {change:.3g}, relative)"
                raise ValueError(f"cannot compact: compaction changed the model's {what} on the probe batch; the "
                                 "model uses a layer's units elsewhere than in the next layer (a residual "
                                 "connection, a module called twice in forward?). The model and optimizer were "
                                 "restored unchanged")
    except BaseException:
        _restore(snapshot, optimizer)
        raise
    return report


def _compact(model: nn.Module, optimizer: torch.optim.Optimizer | None, resolved: Sequence[LayerPair],
             managers: Sequence[SparsityManager]) -> CompactionReport:
    report = CompactionReport(parameters_before=count_parameters(model))
    original = {pair.layer: torch.arange(_units(model.get_submodule(pair.layer))) for pair in resolved}
    removed: dict[str, list[int]] = {pair.layer: [] for pair in resolved}
    folded_ids: dict[str, list[int]] = {pair.layer: [] for pair in resolved}
    changed = True
    while changed:
        changed = False
        for pair in resolved:
            producer, consumer = model.get_submodule(pair.layer), model.get_submodule(pair.next_layer)
            units = _units(producer)
            block = _block(producer, consumer, units, pair)
            removable, folded, values = dead_units(model, pair)
            if not removable.any():
                continue
            if folded.any():
                _fold(consumer, folded.nonzero().view(-1), values, units, block)
            keep = (~removable).nonzero().view(-1).cpu()
            ids = original[pair.layer]
            removed[pair.layer] += ids[removable.cpu()].tolist()
            folded_ids[pair.layer] += ids[folded.cpu()].tolist()
            original[pair.layer] = ids[keep]
            _remove(model, pair, keep.to(_input_weights(consumer)[0][1].device), block, optimizer, managers)
            changed = True
    for pair in resolved:
        before = len(original[pair.layer]) + len(removed[pair.layer])
        report.layers[pair.layer] = LayerCompaction(
            pair.layer, pair.next_layer, before, len(original[pair.layer]), tuple(sorted(removed[pair.layer])),
            tuple(sorted(folded_ids[pair.layer])))
    report.parameters_after = count_parameters(model)
    return report
