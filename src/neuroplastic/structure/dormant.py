"""Dormant neurons: the dormant ratio, ReDo resets and DrM perturbation, on any model.

Sokar, Agarwal, Castro & Evci 2023, "The dormant neuron phenomenon in deep reinforcement learning" (ICML),
define a unit's score as its mean absolute activation relative to the average of its layer; Xu et al. 2023,
"DrM: Mastering visual reinforcement learning through dormant ratio minimization" (ICLR 2024), use the
fraction of such units as a measure of lost expressivity. For layer l with N units and inputs x from D::

    s_i = E_x |h_i(x)| / ( (1/N) * sum_k E_x |h_k(x)| )        unit i is dormant  <=>  s_i <= tau
    dormant ratio = (dormant units) / (all units), summed over the measured layers

with tau = 0.025 by default (DrM's value). A convolutional channel is one unit: the expectation runs over
the batch and the spatial positions.

- :func:`unit_activity`, :func:`dormant_scores`, :func:`dormant_mask`: the pure core on an activation tensor
  ``[B, N]`` or ``[B, C, *spatial]`` (``unit_dim`` says which dimension holds the units).
- :func:`dormant_ratio`: the same measured on a model with forward hooks, by default on the outputs of its
  activation modules (``nn.ReLU``, ``nn.Tanh``, ...), or on the modules you name.
- :func:`redo_reset` / :func:`redo` (Sokar et al. 2023, "ReDo"): re-initialise the incoming weights (and
  bias) of dormant units with the layer's initialiser, zero their outgoing weights in the next layer, and
  zero the optimizer state of both (so the network's output is unchanged at the moment of the reset).
- :func:`drm_perturb_factor`, :func:`drm_perturb` (Xu et al. 2023, dormant-ratio-guided perturbation)::

      alpha = clip(1 - k * beta, alpha_min, alpha_max)       beta the dormant ratio, k the perturb rate
      theta <- alpha * theta + (1 - alpha) * phi             phi a fresh initialisation of the layer

  with the constants of the authors' code: k = 2, alpha_min = 0.2, alpha_max = 0.9 (0.6 for their hardest
  tasks); the perturbed parameters' optimizer state starts afresh, as there.
- :func:`neuron_layer_pairs`: which layer reads a unit's output ("the next layer"), found automatically in
  ``nn.Sequential`` chains of Linear/Conv layers with elementwise modules (activations, dropout, identity,
  and a flatten between a convolution and a linear layer) between them. For other models pass explicit
  pairs ``(layer, next_layer)`` or ``(layer, next_layer, activation)``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_bool, check_finite, check_fraction, check_int, check_number

from .masks import MASK_SUFFIX
from .surgery import reset_state

__all__ = [
    "ACTIVATION_MODULES", "ELEMENTWISE_MODULES", "DormantResult", "LayerPair", "unit_activity", "dormant_scores",
    "dormant_mask", "dormant_ratio", "neuron_layer_pairs", "resolve_pairs", "redo_reset", "redo",
    "drm_perturb_factor", "drm_perturb",
]

DEFAULT_TAU = 0.025

ACTIVATION_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softsign, nn.Tanhshrink,
    nn.Softshrink, nn.Hardshrink, nn.LogSigmoid, nn.Threshold,
)
"""Modules whose outputs :func:`dormant_ratio` measures by default."""

_DROPOUT_MODULES: tuple[type[nn.Module], ...] = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
)
ELEMENTWISE_MODULES: tuple[type[nn.Module], ...] = ACTIVATION_MODULES + _DROPOUT_MODULES + (nn.Identity,)
"""Modules that act on each unit separately, so a chain Linear -> these -> Linear keeps units aligned."""

_LINEAR_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


# ------------------------------------------------------------------------------------------------ pure core
def _check_activations(activations: object, unit_dim: int) -> Tensor:
    """A layer's activations ``[B, N]`` or ``[B, C, *spatial]`` and a unit dimension other than the batch's."""
    if not isinstance(activations, Tensor):
        raise TypeError(f"activations must be a torch.Tensor, got {type(activations).__name__}")
    if activations.dim() < 2:
        raise ValueError(f"activations must have shape [B, N] or [B, C, *spatial], got {list(activations.shape)}")
    if not activations.is_floating_point():
        raise ValueError(f"activations must be a floating-point tensor, got dtype {activations.dtype}")
    if activations.shape[0] == 0:
        raise ValueError("activations has an empty batch: the dormant ratio of no inputs is undefined")
    check_finite("activations", activations)
    ndim = activations.dim()
    check_int("unit_dim", unit_dim, minimum=None)
    if unit_dim in (0, -ndim) or not -ndim <= unit_dim < ndim:
        raise ValueError(f"unit_dim must index a non-batch dimension of activations {list(activations.shape)}, "
                         f"got {unit_dim!r}")
    if activations.shape[unit_dim] == 0:
        raise ValueError(f"activations has no units (dimension {unit_dim} of {list(activations.shape)} is empty)")
    if activations.numel() == 0:  # a mean over no entries would be NaN
        raise ValueError(f"activations of shape {list(activations.shape)} has no entries per unit (an empty "
                         "spatial dimension)")
    return activations


def unit_activity(activations: Tensor, unit_dim: int = 1) -> Tensor:
    """Mean absolute activation of each unit: E_x |h_i(x)| over every dimension but ``unit_dim``.

    ``activations [B, N]`` -> ``[N]``; ``[B, C, *spatial]`` -> ``[C]`` (mean over batch and positions);
    ``[B, T, N]`` with ``unit_dim=-1`` -> ``[N]``.
    """
    activations = _check_activations(activations, unit_dim)
    moved = activations.detach().abs().movedim(unit_dim, 0)
    return moved.reshape(moved.shape[0], -1).mean(dim=1)


def _mask_from_activity(activity: Tensor, tau: float) -> Tensor:
    # s_i <= tau  <=>  activity_i <= tau * layer average; also right when the whole layer is silent (0 <= 0).
    return activity <= tau * activity.mean()


def _scores_from_activity(activity: Tensor) -> Tensor:
    average = activity.mean()
    if average == 0:
        return torch.zeros_like(activity)
    return activity / average


def dormant_scores(activations: Tensor, unit_dim: int = 1) -> Tensor:
    """The score s_i = E|h_i| / mean_k E|h_k| of each unit (Sokar et al. 2023), ``[N]``; 0 if the layer is silent."""
    return _scores_from_activity(unit_activity(activations, unit_dim))


def dormant_mask(activations: Tensor, tau: float = DEFAULT_TAU, unit_dim: int = 1) -> Tensor:
    """Boolean ``[N]``: True for the dormant units of one layer, s_i <= tau (every unit if the layer is silent).

    ``activations`` is the layer's output for a batch of inputs, ``[B, N]`` or ``[B, C, *spatial]``.
    """
    return _mask_from_activity(unit_activity(activations, unit_dim), float(check_number("tau", tau, minimum=0)))


# ------------------------------------------------------------------------------------------------ hooks
class DormantResult(NamedTuple):
    """What :func:`dormant_ratio` measured: the overall ratio and, per measured module, masks and scores."""

    ratio: float
    masks: dict[str, Tensor]
    scores: dict[str, Tensor]


def _module_names(model: nn.Module) -> dict[str, nn.Module]:
    return dict(model.named_modules())


def _get_module(model: nn.Module, name: str, argument: str) -> nn.Module:
    if not isinstance(name, str):
        raise TypeError(f"{argument} must name modules with strings, got {type(name).__name__}")
    modules = _module_names(model)
    if name not in modules or name == "":
        listed = ", ".join(repr(n) for n in list(modules)[1:13]) or "none"
        raise ValueError(f"{argument}: the model has no submodule named {name!r}; its modules include {listed}")
    return modules[name]


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every module in eval mode for a block, then restore each module's own flag."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def dormant_ratio(
    model: nn.Module,
    inputs: Tensor | Sequence[Any],
    tau: float = DEFAULT_TAU,
    *,
    layers: Sequence[str] | None = None,
    unit_dim: int = 1,
) -> DormantResult:
    """Measure the dormant ratio of ``model`` on ``inputs`` (one forward pass, no gradients, eval mode).

    Xu et al. 2023 (DrM), after Sokar et al. 2023: unit i of a layer is dormant if
    ``E|h_i| / mean_k E|h_k| <= tau``; the ratio is dormant units / all units over the measured layers.

    Args:
        model: any module; it is run as ``model(inputs)`` (or ``model(*inputs)`` for a tuple or list).
        tau: the threshold (0.025 in DrM; ReDo uses 0 to 0.1).
        layers: names of the modules whose outputs are measured (as in ``named_modules``). Default: every
            activation module (:data:`ACTIVATION_MODULES`). A recurrent module (``nn.RNN``/``LSTM``/``GRU``)
            is measured on its output sequence, one unit per hidden unit.
        unit_dim: the dimension of the outputs that holds the units: 1 for ``[B, N]`` and ``[B, C, H, W]``,
            -1 for sequences ``[B, T, N]``.

    Returns:
        ``DormantResult(ratio, masks, scores)``: masks and scores ``[N]`` per measured module name.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    tau = float(check_number("tau", tau, minimum=0))
    if layers is None:
        targets = {name: module for name, module in model.named_modules() if isinstance(module, ACTIVATION_MODULES)}
        if not targets:
            raise ValueError("model has no activation modules (nn.ReLU, nn.Tanh, ...) to measure, e.g. because it "
                             "calls torch.relu in forward; name the modules to measure with layers=[...]")
    else:
        if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
            raise ValueError(f"layers must be a non-empty sequence of module names or None, got {layers!r}")
        targets = {name: _get_module(model, name, "layers") for name in layers}
    activity: dict[str, Tensor] = {}

    def make_hook(name: str, module: nn.Module) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            dim = unit_dim
            if isinstance(module, nn.RNNBase):
                output, dim = output[0], -1
            if not isinstance(output, Tensor):
                raise TypeError(f"module {name!r} returned a {type(output).__name__}, not a tensor: its output "
                                "cannot be measured")
            if name in activity:
                raise ValueError(f"module {name!r} ran more than once in one forward pass, so its units cannot be "
                                 "told apart; give each layer its own activation module or name layers=[...]")
            activity[name] = unit_activity(output, dim)
        return hook

    handles = [module.register_forward_hook(make_hook(name, module)) for name, module in targets.items()]
    try:
        with torch.no_grad(), _eval_mode(model):
            if isinstance(inputs, (tuple, list)):
                model(*inputs)
            else:
                model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in targets if name not in activity]
    if missing:
        raise ValueError(f"modules {missing} did not run in the forward pass; measure other layers")
    masks = {name: _mask_from_activity(a, tau) for name, a in activity.items()}
    scores = {name: _scores_from_activity(a) for name, a in activity.items()}
    total = sum(int(m.numel()) for m in masks.values())
    dormant = sum(int(m.sum()) for m in masks.values())
    return DormantResult(dormant / total if total else 0.0, masks, scores)


# ------------------------------------------------------------------------------------------------ layer pairs
@dataclass(frozen=True)
class LayerPair:
    """A layer whose units are measured or reset, and the layer that reads their outputs.

    ``between`` names the elementwise modules between them (in order), ``activation`` is the function they
    compute on a unit's output (None: identity). ``next_layer`` is None for a layer whose readers are unknown.
    """

    layer: str
    next_layer: str | None
    between: tuple[str, ...] = ()
    activation: Callable[[Tensor], Tensor] | None = None


def _is_layer(module: nn.Module) -> bool:
    return isinstance(module, _LINEAR_LAYERS)


def _sequential_activation(modules: list[nn.Module]) -> Callable[[Tensor], Tensor] | None:
    functional = [m for m in modules if not isinstance(m, (nn.Flatten, nn.Identity) + _DROPOUT_MODULES)]
    if not functional:
        return None

    def activation(x: Tensor) -> Tensor:
        for module in functional:  # evaluated in eval mode (dropout is the identity there)
            flag = module.training
            module.training = False
            try:
                x = module(x)
            finally:
                module.training = flag
        return x
    return activation


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def neuron_layer_pairs(model: nn.Module) -> list[LayerPair]:
    """The (layer, next layer) pairs of every ``nn.Sequential`` in ``model`` (nested ones included).

    In a Sequential, a Linear or Conv layer is paired with the next Linear or Conv layer when only
    elementwise modules (:data:`ELEMENTWISE_MODULES`) lie between them, plus an ``nn.Flatten(1)`` between a
    convolution and a linear layer. Any other module between them (normalisation, pooling, ...) breaks the
    chain; the last layer of a Sequential has no pair.
    """
    pairs: list[LayerPair] = []
    for prefix, container in model.named_modules():
        if not isinstance(container, nn.Sequential):
            continue
        children = list(container.named_children())
        for index, (name, module) in enumerate(children):
            if not _is_layer(module):
                continue
            between: list[tuple[str, nn.Module]] = []
            for next_name, next_module in children[index + 1:]:
                if _is_layer(next_module):
                    flattens = [m for _, m in between if isinstance(m, nn.Flatten)]
                    if flattens and not (isinstance(module, nn.modules.conv._ConvNd)
                                         and isinstance(next_module, nn.Linear)
                                         and all(m.start_dim == 1 and m.end_dim == -1 for m in flattens)):
                        break
                    pairs.append(LayerPair(_join(prefix, name), _join(prefix, next_name),
                                           tuple(_join(prefix, n) for n, _ in between),
                                           _sequential_activation([m for _, m in between])))
                    break
                if isinstance(next_module, ELEMENTWISE_MODULES + (nn.Flatten,)):
                    between.append((next_name, next_module))
                    continue
                break
    return pairs


def _as_activation(model: nn.Module, activation: object) -> tuple[tuple[str, ...], Callable[[Tensor], Tensor] | None]:
    if activation is None:
        return (), None
    if isinstance(activation, str):
        module = _get_module(model, activation, "pairs")
        return (activation,), _sequential_activation([module])
    if callable(activation):
        return (), activation  # type: ignore[return-value]
    raise TypeError(f"pairs: the third element must be a module name or a callable, got {type(activation).__name__}")


def resolve_pairs(model: nn.Module, pairs: Sequence[Any] | None) -> list[LayerPair]:
    """The pairs to use: ``neuron_layer_pairs(model)`` if ``pairs`` is None, else the explicit ones checked.

    Explicit pairs are :class:`LayerPair` objects or tuples ``(layer, next_layer)`` (the next layer reads
    the layer's output directly) or ``(layer, next_layer, activation)`` with ``activation`` the name of an
    elementwise module between them or a callable applied to each unit's output.
    """
    if pairs is None:
        return neuron_layer_pairs(model)
    if isinstance(pairs, (str, LayerPair)) or not isinstance(pairs, Sequence):
        raise TypeError(f"pairs must be a sequence of (layer, next_layer[, activation]) tuples, got {pairs!r}")
    resolved = []
    for pair in pairs:
        if isinstance(pair, LayerPair):
            resolved.append(pair)
            continue
        if not isinstance(pair, (tuple, list)) or len(pair) not in (2, 3):
            raise ValueError(f"pairs: each pair must be (layer, next_layer) or (layer, next_layer, activation), "
                             f"got {pair!r}")
        layer, next_layer = pair[0], pair[1]
        _get_module(model, layer, "pairs")
        if next_layer is not None:
            _get_module(model, next_layer, "pairs")
        between, activation = _as_activation(model, pair[2] if len(pair) == 3 else None)
        resolved.append(LayerPair(layer, next_layer, between, activation))
    return resolved


# ------------------------------------------------------------------------------------------------ init helpers
@contextlib.contextmanager
def _seeded(generator: torch.Generator | None, device: torch.device) -> Iterator[None]:
    """Run a block whose global-RNG draws come from ``generator`` (global RNG state restored after)."""
    if generator is None:
        yield
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _fresh(layer: nn.Module, init: Callable[[nn.Module], Any] | None,
           generator: torch.Generator | None) -> nn.Module:
    """A copy of ``layer`` re-initialised by ``init(copy)`` or, by default, ``copy.reset_parameters()``."""
    fresh = copy.deepcopy(layer)
    device = next((p.device for p in layer.parameters()), torch.device("cpu"))
    with _seeded(generator, device), torch.no_grad():
        if init is not None:
            init(fresh)
        elif callable(getattr(fresh, "reset_parameters", None)):
            fresh.reset_parameters()
        else:
            raise TypeError(f"{type(layer).__name__} has no reset_parameters(); pass init=callable(module) that "
                            "re-initialises a module in place")
    return fresh


@torch.no_grad()
def _respect_mask(module: nn.Module, local: str) -> None:
    """Zero ``module.<local>`` where a sparsity mask (buffer ``<local>_mask``) is False, if it has one."""
    mask = module._buffers.get(local + MASK_SUFFIX)
    parameter = module._parameters.get(local)
    if mask is not None and parameter is not None and mask.shape == parameter.shape:
        parameter.mul_(mask.to(device=parameter.device, dtype=parameter.dtype))


# ------------------------------------------------------------------------------------------------ ReDo
def _check_layer(model: nn.Module, name: str) -> nn.Module:
    """A layer ReDo can reset units of: an ``nn.Linear`` or ungrouped ``nn.Conv1d/2d/3d`` of ``model``."""
    module = _get_module(model, name, "pairs")
    if not _is_layer(module):
        raise TypeError(f"layer {name!r} is a {type(module).__name__}; ReDo resets units of nn.Linear and "
                        "nn.Conv1d/2d/3d layers")
    if isinstance(module, nn.modules.conv._ConvNd) and module.groups != 1:
        raise ValueError(f"layer {name!r} is a grouped convolution (groups={module.groups}); not supported")
    return module


def _outgoing_columns(layer: nn.Module, next_layer: nn.Module, units: int, name: str) -> int:
    """How many consecutive input columns of ``next_layer`` each unit of ``layer`` feeds (flatten block)."""
    fan_in = next_layer.weight.shape[1]
    if fan_in == units:
        return 1
    if isinstance(layer, nn.modules.conv._ConvNd) and isinstance(next_layer, nn.Linear) and fan_in % units == 0:
        return fan_in // units
    raise ValueError(f"next layer {name!r} has {fan_in} inputs, which does not match the {units} units of the layer "
                     "before it")


def _row_mask(mask: Tensor, parameter: Tensor) -> Tensor:
    return mask.view(-1, *([1] * (parameter.dim() - 1)))


def _column_mask(mask: Tensor, parameter: Tensor, block: int) -> Tensor:
    columns = mask.repeat_interleave(block)
    return columns.view(1, -1, *([1] * (parameter.dim() - 2)))


@torch.no_grad()
def redo_reset(
    model: nn.Module,
    masks: Mapping[str, Tensor],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    pairs: Sequence[Any] | None = None,
    init: Callable[[nn.Module], Any] | None = None,
    generator: torch.Generator | None = None,
    strict: bool = True,
) -> dict[str, int]:
    """Recycle dormant units (Sokar et al. 2023, ReDo): fresh incoming weights, zero outgoing weights.

    For each unit i with ``masks[name][i]`` True, in its layer L and the next layer L'::

        W_L[i, :], b_L[i]  <- a fresh initialisation of L (``init``, default ``L.reset_parameters()``)
        W_L'[:, i]         <- 0            (for a conv -> flatten -> linear chain, the block of channel i)

    and the optimizer's per-element state (momentum, Adam moments) of these entries is zeroed. Under a
    sparsity manager (a boolean buffer ``weight_mask`` / ``bias_mask`` next to the parameter), fresh values
    at masked positions are zeroed at once: pruned weights stay exactly zero. The recycled
    units contribute nothing until their outgoing weights grow again, so for truly dormant units (output
    near 0) the network's output hardly changes at the reset.

    Args:
        masks: boolean ``[N]`` per name, as returned by :func:`dormant_ratio`; a name is the layer's or one of
            the elementwise modules between it and the next layer (e.g. its activation).
        pairs: explicit (layer, next_layer[, activation]) pairs (see :func:`resolve_pairs`); default: found in
            the model's ``nn.Sequential`` chains.
        init: re-initialises a copy of the layer in place; default ``reset_parameters()``.
        generator: the source of the fresh weights (default: the global generator).
        strict: raise if a mask with dormant units matches no pair; otherwise skip it.

    Returns:
        The number of units reset per mask name.
    """
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a mapping of module name to a boolean tensor, got {type(masks).__name__}")
    check_bool("strict", strict)
    lookup: dict[str, LayerPair] = {}
    resolved = resolve_pairs(model, pairs)
    for pair in resolved:
        for name in (pair.layer, *pair.between):
            lookup.setdefault(name, pair)
    counts: dict[str, int] = {}
    for key, mask in masks.items():
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 1:
            raise ValueError(f"masks[{key!r}] must be a 1-d boolean tensor, got "
                             f"{mask.dtype if isinstance(mask, Tensor) else type(mask).__name__}")
        count = int(mask.sum())
        counts[key] = 0
        if count == 0:
            continue
        pair = lookup.get(key)
        if pair is None:
            if not strict:
                continue
            known = ", ".join(f"({p.layer!r} -> {p.next_layer!r})" for p in resolved) or "none"
            raise ValueError(f"masks[{key!r}]: no (layer, next_layer) pair contains module {key!r}; pairs found: "
                             f"{known}. Pass pairs=[(layer, next_layer, {key!r})], or strict=False to skip it")
        layer = _check_layer(model, pair.layer)
        units = layer.weight.shape[0]
        if mask.numel() != units:
            raise ValueError(f"masks[{key!r}] has {mask.numel()} entries but layer {pair.layer!r} has {units} units")
        mask = mask.to(layer.weight.device)
        fresh = _fresh(layer, init, generator)
        for local in ("weight", "bias"):
            parameter = getattr(layer, local, None)
            if parameter is None:
                continue
            where = _row_mask(mask, parameter)
            parameter.copy_(torch.where(where, getattr(fresh, local).to(parameter), parameter))
            _respect_mask(layer, local)
            reset_state(optimizer, parameter, where.expand_as(parameter))
        if pair.next_layer is not None:
            next_layer = _check_layer(model, pair.next_layer)
            block = _outgoing_columns(layer, next_layer, units, pair.next_layer)
            where = _column_mask(mask, next_layer.weight, block)
            next_layer.weight.masked_fill_(where, 0.0)
            reset_state(optimizer, next_layer.weight, where.expand_as(next_layer.weight))
        counts[key] = count
    return counts


def redo(
    model: nn.Module,
    inputs: Tensor | Sequence[Any],
    optimizer: torch.optim.Optimizer | None = None,
    tau: float = DEFAULT_TAU,
    *,
    layers: Sequence[str] | None = None,
    unit_dim: int = 1,
    pairs: Sequence[Any] | None = None,
    init: Callable[[nn.Module], Any] | None = None,
    generator: torch.Generator | None = None,
    strict: bool = False,
) -> DormantResult:
    """Measure the dormant units on ``inputs`` and recycle them (:func:`dormant_ratio` then :func:`redo_reset`).

    Sokar et al. 2023, ReDo, one recycling step. Measured masks whose module is in no pair are skipped
    (``strict=False``), e.g. the activation after a model's last layer. Returns the measurement (before
    the reset).
    """
    result = dormant_ratio(model, inputs, tau, layers=layers, unit_dim=unit_dim)
    redo_reset(model, result.masks, optimizer, pairs=pairs, init=init, generator=generator, strict=strict)
    return result


# ------------------------------------------------------------------------------------------------ DrM
def drm_perturb_factor(dormant_ratio: float, *, rate: float = 2.0, min_factor: float = 0.2,
                       max_factor: float = 0.9) -> float:
    """DrM's perturbation factor alpha = clip(1 - rate * dormant_ratio, min_factor, max_factor) (Xu et al. 2023).

    The more dormant units, the more of a fresh initialisation :func:`drm_perturb` mixes in. Defaults are
    the authors' (perturb rate 2, minimum 0.2, maximum 0.9).
    """
    check_fraction("dormant_ratio", dormant_ratio)
    check_number("rate", rate, minimum=0)
    check_fraction("min_factor", min_factor)
    check_fraction("max_factor", max_factor)
    if min_factor > max_factor:
        raise ValueError(f"need 0 <= min_factor <= max_factor <= 1, got min_factor={min_factor!r}, "
                         f"max_factor={max_factor!r}")
    return float(min(max(1.0 - rate * dormant_ratio, min_factor), max_factor))


@torch.no_grad()
def drm_perturb(
    model: nn.Module,
    factor: float,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    layers: Sequence[str] | None = None,
    init: Callable[[nn.Module], Any] | None = None,
    generator: torch.Generator | None = None,
) -> list[str]:
    """Shrink-and-perturb toward a fresh initialisation: theta <- factor * theta + (1 - factor) * phi.

    Xu et al. 2023 (DrM), dormant-ratio-guided perturbation, with ``factor`` from :func:`drm_perturb_factor`;
    phi is a fresh initialisation of each layer (``init(copy)`` or ``reset_parameters()``). By default every
    ``nn.Linear`` and ``nn.Conv1d/2d/3d`` is perturbed (other parameters, e.g. normalisation, are kept, as
    in the authors' code), or the modules named in ``layers``. The optimizer state of the perturbed
    parameters is dropped: they restart like new parameters (DrM clears its optimizers' state). Weights
    under a sparsity mask (buffer ``<name>_mask``) stay exactly zero at masked positions.
    Returns the names of the perturbed parameters.
    """
    check_fraction("factor", factor)
    if layers is None:
        targets = [(name, module) for name, module in model.named_modules() if _is_layer(module)]
        if not targets:
            raise ValueError("model has no nn.Linear or nn.Conv layers to perturb; name them with layers=[...]")
    else:
        if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
            raise ValueError(f"layers must be a non-empty sequence of module names or None, got {layers!r}")
        targets = [(name, _get_module(model, name, "layers")) for name in layers]
    perturbed = []
    for name, module in targets:
        fresh = _fresh(module, init, generator)
        for local, parameter in module.named_parameters(recurse=False):
            parameter.mul_(factor).add_(getattr(fresh, local).to(parameter), alpha=1.0 - factor)
            _respect_mask(module, local)
            if optimizer is not None:
                optimizer.state.pop(parameter, None)
            perturbed.append(f"{name}.{local}" if name else local)
    return perturbed
