"""Learnable per-unit masks on any model's layers (attached by forward hooks), and permanent unit pruning.

A *unit* is one output neuron of a ``Linear`` layer, one output channel (filter) of a ``Conv1d/2d/3d``
layer, or one channel of a ``BatchNorm1d/2d/3d`` layer. A mask holds one number per unit and multiplies
the layer's output::

    Linear     y = W x + b              [B, ..., out]     ->  m * y                      m [out]
    Conv{n}d   y = W * x + b            [B, C, *spatial]  ->  m * y  (m along dim 1)     m [C]
    BatchNorm  y = gamma * x_hat + beta [B, C, *]         ->  m * gamma * x_hat + beta   m [C]
                                                              (norm_mode "weight", default)
                                                          or  m * y  (norm_mode "output")

This is the filter mask of Wu & Wang 2021 (ANP, "Adversarial neuron pruning purifies backdoored deep
models") and Li et al. 2023 (RNP, "Reconstructive neuron pruning for backdoor defense"), where it sits on
the BatchNorm layers of a ResNet and scales their weight gamma (the reference code's ``MaskBatchNorm2d``
passes ``weight * neuron_mask`` to ``batch_norm``); here it goes on any of the layers above, chosen by name.

- :func:`mask_units`: the pure function, ``output * mask`` broadcast along the unit dimension.
- :class:`NeuronMasks`: the masks as parameters of their own module (not the model's, so an optimizer on
  ``masks.parameters()`` learns only them), attached to a model by forward hooks and removable; the
  model is not rewritten. ``state_dict`` holds the mask values (keys ``masks.0``, ``masks.1``, ... in the
  order of :attr:`NeuronMasks.layer_names`).
- :func:`prune_units`: prune units permanently, as mask 0 would: zero a Linear's or Conv's incoming
  weights and bias (output rows ``weight[u]``, ``bias[u]``), so the unit outputs exactly zero; zero a
  BatchNorm's ``weight[u]`` (its output becomes the constant ``beta[u]``; with norm_mode "output" also
  ``bias[u]``, output zero). Returns boolean keep-masks keyed by parameter name, which a compaction step
  can use to remove the units physically (a gamma-pruned BatchNorm channel still feeds the constant
  ``relu(beta[u])`` forward, which compaction must fold into the next layer's bias; prune with
  norm_mode "output" to avoid that). :func:`zeroed_units` finds such units.

The masks live on their layers' device when created; ``model.to(...)`` does not move them (move the masks
too, or create them after moving the model). A deep copy of a model with attached masks shares the masks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from neuroplastic._checks import check_choice, check_int, check_number

__all__ = ["MASKABLE_TYPES", "NORM_MODES", "mask_units", "unit_dim", "num_units", "default_mask_layers", "NeuronMasks",
           "prune_units", "zeroed_units"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
MASKABLE_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, *_CONV, *_NORM)
NORM_MODES = ("weight", "output")


def mask_units(output: Tensor, mask: Tensor, dim: int = 1) -> Tensor:
    """Multiply each unit of ``output`` along ``dim`` by its mask value: ``output * mask`` (broadcast).

    Shapes: ``output [..., U (at dim), ...]``, ``mask [U]`` -> same shape as ``output``.
    """
    if not isinstance(output, Tensor) or not isinstance(mask, Tensor):
        raise TypeError(f"output and mask must be tensors, got {type(output).__name__} and {type(mask).__name__}")
    if mask.dim() != 1:
        raise ValueError(f"mask must be 1-d [units], got shape {list(mask.shape)}")
    if not -output.dim() <= dim < output.dim():
        raise ValueError(f"dim must index one of the {output.dim()} dimensions of output, got {dim}")
    dim = dim % output.dim()
    if output.shape[dim] != mask.shape[0]:
        raise ValueError(f"mask has {mask.shape[0]} units but output has {output.shape[dim]} along dim {dim} "
                         f"(output shape {list(output.shape)})")
    return output * _along(mask, dim, output.dim())


def _along(vector: Tensor, dim: int, ndim: int) -> Tensor:
    """``vector [U]`` viewed to broadcast along dimension ``dim`` of an ``ndim``-d tensor."""
    shape = [1] * ndim
    shape[dim] = vector.shape[0]
    return vector.view(shape)


def _check_maskable(name: str, module: nn.Module) -> None:
    """A layer whose units can be masked (one of :data:`MASKABLE_TYPES`)."""
    if not isinstance(module, MASKABLE_TYPES):
        accepted = ", ".join(t.__name__ for t in MASKABLE_TYPES)
        raise TypeError(f"layer {name!r} is a {type(module).__name__}; masks go on {accepted}")


def unit_dim(module: nn.Module) -> int:
    """The dimension of a layer's output that indexes its units: -1 for Linear, 1 for Conv and BatchNorm."""
    _check_maskable(type(module).__name__, module)
    return -1 if isinstance(module, nn.Linear) else 1


def num_units(module: nn.Module) -> int:
    """The number of units of a layer: ``out_features``, ``out_channels`` or ``num_features``."""
    _check_maskable(type(module).__name__, module)
    if isinstance(module, nn.Linear):
        return module.out_features
    if isinstance(module, _CONV):
        return module.out_channels
    return module.num_features  # type: ignore[return-value]


def default_mask_layers(model: nn.Module) -> list[str]:
    """The layers that RNP masks by default: every BatchNorm layer if the model has any (as in the paper's
    ResNets), otherwise every Linear and Conv layer except the last one registered (the output layer,
    whose units are the classes)."""
    norms = [name for name, m in model.named_modules() if isinstance(m, _NORM)]
    if norms:
        return norms
    layers = [name for name, m in model.named_modules() if isinstance(m, (nn.Linear, *_CONV))]
    return layers[:-1]


def _get_layer(model: nn.Module, name: str) -> nn.Module:
    if not isinstance(name, str):
        raise TypeError(f"layer names must be strings, got {type(name).__name__}")
    try:
        module = model.get_submodule(name) if name else model
    except AttributeError:
        names = ", ".join(repr(n) for n, m in model.named_modules() if isinstance(m, MASKABLE_TYPES)) or "none"
        raise ValueError(f"the model has no layer named {name!r}; its maskable layers are: {names}") from None
    _check_maskable(name, module)
    return module


class NeuronMasks(nn.Module):
    """One learnable mask value per unit of the chosen layers, applied by forward hooks.

    Li et al. 2023 (RNP), the filter-level recovery: the masked layer outputs ``y * m`` with ``m`` in
    [0, 1] (kept there by :meth:`clip_`), learned while the weights stay frozen. Shapes: the mask of a
    layer with U units is ``[U]`` (see the module docstring for how it broadcasts).

    Args:
        model: the model whose layers are masked (only read here; :meth:`attach` hooks into it).
        layers: names of its Linear / Conv / BatchNorm layers (as in ``named_modules``); default
            :func:`default_mask_layers`.
        init: the initial mask value (1 leaves the model's function unchanged).
        attach: attach to ``model`` at once (default True); otherwise call :meth:`attach` later.
        norm_mode: how a mask acts on a BatchNorm layer ``y = gamma * x_hat + beta``: "weight" (default, the
            reference code's ``MaskBatchNorm2d``) scales the normalised part, ``y = m * gamma * x_hat + beta``;
            "output" scales the whole output, ``y = m * (gamma * x_hat + beta)``. Linear and Conv outputs are
            always scaled whole.

    Each mask lives on the device and dtype of its layer's weight. The masks are parameters of this
    module, not of the model: optimise them with ``torch.optim.SGD(masks.parameters(), ...)``.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str] | None = None, *, init: float = 1.0,
                 attach: bool = True, norm_mode: str = "weight") -> None:
        super().__init__()
        self.norm_mode = check_choice("norm_mode", norm_mode, NORM_MODES)
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        if layers is None:
            layers = default_mask_layers(model)
        elif isinstance(layers, str) or not isinstance(layers, Sequence):
            raise TypeError(f"layers must be a sequence of layer names, got {type(layers).__name__}")
        if len(layers) == 0:
            raise ValueError("layers is empty: give at least one Linear, Conv or BatchNorm layer to mask")
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers must not repeat a name, got {list(layers)}")
        check_number("init", init)
        masks = []
        for name in layers:
            module = _get_layer(model, name)
            reference = next((p for p in module.parameters(recurse=False)), None)
            kwargs = {} if reference is None else {"device": reference.device, "dtype": reference.dtype}
            masks.append(nn.Parameter(torch.full((num_units(module),), float(init), **kwargs)))
        self.layer_names: tuple[str, ...] = tuple(layers)
        self.masks = nn.ParameterList(masks)
        self._dims = tuple(unit_dim(_get_layer(model, name)) for name in layers)
        self._handles: list[RemovableHandle] = []
        if attach:
            self.attach(model)

    # ------------------------------------------------------------------ access
    def __getitem__(self, layer: str) -> nn.Parameter:
        """The mask parameter of ``layer``."""
        try:
            return self.masks[self.layer_names.index(layer)]
        except ValueError:
            raise KeyError(f"no mask on layer {layer!r}; masked layers: {list(self.layer_names)}") from None

    def items(self) -> Iterator[tuple[str, nn.Parameter]]:
        """(layer name, mask parameter) pairs in order."""
        return zip(self.layer_names, self.masks, strict=True)

    def values_dict(self) -> dict[str, Tensor]:
        """Detached CPU copies of the masks, keyed by layer name."""
        return {name: mask.detach().cpu().clone() for name, mask in self.items()}

    @property
    def num_units(self) -> int:
        """The total number of masked units."""
        return sum(mask.numel() for mask in self.masks)

    # ------------------------------------------------------------------ hooks
    @property
    def attached(self) -> bool:
        """True while the hooks are registered on a model."""
        return bool(self._handles)

    def attach(self, model: nn.Module) -> NeuronMasks:
        """Register the forward hooks on ``model``'s layers (same names and unit counts); returns self."""
        if self.attached:
            raise RuntimeError("the masks are already attached; call remove() first")
        modules = [_get_layer(model, name) for name in self.layer_names]
        for name, module, mask in zip(self.layer_names, modules, self.masks, strict=True):
            if num_units(module) != mask.numel():
                raise ValueError(f"layer {name!r} has {num_units(module)} units but its mask has {mask.numel()}")
        for index, module in enumerate(modules):
            self._handles.append(module.register_forward_hook(self._hook(index)))
        return self

    def _hook(self, index: int):  # noqa: ANN202 - a forward hook
        def hook(module: nn.Module, inputs: object, output: Tensor) -> Tensor:
            mask, dim = self.masks[index], self._dims[index]
            bias = getattr(module, "bias", None)
            if self.norm_mode == "weight" and isinstance(module, _NORM) and bias is not None:
                # m * gamma * x_hat + beta: scale the normalised part, keep the shift beta.
                shift = _along(bias, dim, output.dim())
                return shift + mask_units(output - shift, mask, dim)
            return mask_units(output, mask, dim)
        return hook

    def remove(self) -> None:
        """Remove the hooks: the model computes as if it had never been masked."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ------------------------------------------------------------------ values
    @torch.no_grad()
    def clip_(self, low: float = 0.0, high: float = 1.0) -> NeuronMasks:
        """Clamp every mask value into [low, high] in place (RNP keeps masks in [0, 1]); returns self."""
        if not low <= high:
            raise ValueError(f"low must be <= high, got low={low!r}, high={high!r}")
        for mask in self.masks:
            mask.clamp_(low, high)
        return self

    @torch.no_grad()
    def fill_(self, value: float) -> NeuronMasks:
        """Set every mask value to ``value``; returns self."""
        for mask in self.masks:
            mask.fill_(value)
        return self

    def below(self, threshold: float) -> dict[str, Tensor]:
        """Per layer, the (sorted) indices of the units whose mask is <= ``threshold``."""
        check_number("threshold", threshold, finite=False)
        return {name: torch.nonzero(mask.detach() <= threshold).flatten().cpu() for name, mask in self.items()}

    def lowest(self, count: int) -> dict[str, Tensor]:
        """Per layer, the (sorted) indices of the ``count`` units with the smallest masks over all layers
        (ties broken by layer order, then unit index)."""
        check_int("count", count, minimum=0, maximum=self.num_units)
        values = torch.cat([mask.detach().float().cpu() for mask in self.masks])
        order = torch.sort(values, stable=True).indices[:count]
        chosen = torch.zeros(values.numel(), dtype=torch.bool)
        chosen[order] = True
        result, start = {}, 0
        for name, mask in self.items():
            result[name] = torch.nonzero(chosen[start:start + mask.numel()]).flatten()
            start += mask.numel()
        return result

    def extra_repr(self) -> str:
        layers = ", ".join(f"{name}: {mask.numel()}" for name, mask in self.items())
        return f"layers={{{layers}}}, attached={self.attached}"


def _unit_index(name: str, units: object, size: int) -> Tensor:
    if isinstance(units, Tensor):
        index = units.detach().flatten().cpu()
        if index.dtype == torch.bool:
            if index.numel() != size:
                raise ValueError(f"the boolean unit mask of layer {name!r} has {index.numel()} entries, not {size}")
            index = torch.nonzero(index).flatten()
        elif index.is_floating_point():
            raise TypeError(f"units of layer {name!r} must be integer indices or a boolean mask, got {index.dtype}")
    elif isinstance(units, Sequence) and not isinstance(units, str):
        if not all(isinstance(u, int) and not isinstance(u, bool) for u in units):
            raise TypeError(f"units of layer {name!r} must be ints, got {list(units)!r}")
        index = torch.tensor(list(units), dtype=torch.long)
    else:
        raise TypeError(f"units of layer {name!r} must be a sequence of ints or a tensor, got {type(units).__name__}")
    index = index.long()
    if index.numel() and (index.min() < 0 or index.max() >= size):
        raise ValueError(f"unit indices of layer {name!r} must be in [0, {size}), got {index.tolist()}")
    return index


@torch.no_grad()
def prune_units(model: nn.Module, units: Mapping[str, Sequence[int] | Tensor], *,
                norm_mode: str = "weight") -> dict[str, Tensor]:
    """Prune units permanently: zero each chosen unit's incoming weights (and bias), in place; as mask 0.

    Linear / Conv: ``weight[u] = 0`` (the unit's row ``[in]`` or filter ``[in/groups, *kernel]``) and
    ``bias[u] = 0``: the unit outputs exactly 0 for every input. BatchNorm with ``norm_mode="weight"``
    (the reference code's pruning): ``weight[u] = 0``, so the channel outputs its constant shift
    ``beta[u]``; with ``norm_mode="output"``: ``weight[u] = bias[u] = 0``, so it outputs 0.

    Args:
        model: the model, changed in place.
        units: layer name -> unit indices (a sequence of ints, an integer tensor, or a boolean tensor
            ``[U]`` with True for the units to prune).
        norm_mode: as in :class:`NeuronMasks`; pruning matches what mask 0 does there.

    Returns:
        Boolean keep-masks keyed by parameter name (``"conv1.weight"``, ``"conv1.bias"``, ...), shaped like
        the parameters, False where a weight was zeroed; for compaction or to keep the pruned weights at
        zero during later training.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(units, Mapping):
        raise TypeError(f"units must be a mapping from layer name to unit indices, got {type(units).__name__}")
    check_choice("norm_mode", norm_mode, NORM_MODES)
    plan = []
    for name, chosen in units.items():
        module = _get_layer(model, name)
        if getattr(module, "weight", None) is None:
            raise ValueError(f"layer {name!r} has no weight to zero (a BatchNorm with affine=False cannot be "
                             "pruned; prune the layer before it)")
        plan.append((name, module, _unit_index(name, chosen, num_units(module))))
    keep: dict[str, Tensor] = {}
    for name, module, index in plan:
        zeroed = ("weight",) if isinstance(module, _NORM) and norm_mode == "weight" else ("weight", "bias")
        for local in zeroed:
            parameter = getattr(module, local, None)
            if parameter is None:
                continue
            full = f"{name}.{local}" if name else local
            where = index.to(parameter.device)
            parameter[where] = 0
            mask = keep.get(full)
            if mask is None:
                mask = torch.ones_like(parameter, dtype=torch.bool)
            mask[where] = False
            keep[full] = mask
    return keep


def zeroed_units(model: nn.Module, layer: str, *, norm_mode: str = "weight") -> Tensor:
    """The indices of the units of ``layer`` that :func:`prune_units` pruned: incoming weights and bias all
    exactly zero (for a BatchNorm layer with ``norm_mode="weight"``, its weight only)."""
    check_choice("norm_mode", norm_mode, NORM_MODES)
    module = _get_layer(model, layer)
    dead = torch.ones(num_units(module), dtype=torch.bool)
    checked = ("weight",) if isinstance(module, _NORM) and norm_mode == "weight" else ("weight", "bias")
    for local in checked:
        parameter = getattr(module, local, None)
        if parameter is not None:
            dead &= (parameter.detach().reshape(parameter.shape[0], -1) == 0).all(dim=1).cpu()
    return torch.nonzero(dead).flatten()
