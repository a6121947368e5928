"""Parameter surgery: resize, replace or partly reset a parameter and keep its optimizer state in step.

Structural plasticity changes the shape of layers (neurons removed by compaction or shrinkage, added by
growth) or resets parts of them (regrown connections, re-initialised dormant neurons). Each change must
reach the optimizer too: its per-element state (SGD momentum, Adam's moments, ...) is keyed by the
parameter object and shaped like it. The functions here do both at once, for any optimizer whose
per-element state tensors have the parameter's shape (every optimizer in ``torch.optim``).

- :func:`reset_state`: zero the optimizer state of some entries (e.g. regrown weights).
- :func:`select_slices`: keep some indices along a dimension (remove neurons), parameter and state.
- :func:`append_slices`: add slices along a dimension (grow neurons): given values, zero (or mean) state.
- :func:`replace_parameter`: swap a module's parameter for another tensor, moving the optimizer's
  reference and state (transformed by a function you give).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["per_element_state", "reset_state", "replace_parameter", "select_slices", "append_slices",
           "find_parameter"]


def find_parameter(module: nn.Module, name: str) -> tuple[nn.Module, str, nn.Parameter]:
    """The module that owns parameter ``name`` (dotted, as in ``named_parameters``), its local name, and it."""
    owner_name, _, local = name.rpartition(".")
    try:
        owner = module.get_submodule(owner_name) if owner_name else module
    except AttributeError:
        owner = None
    parameter = None if owner is None else owner._parameters.get(local)
    if parameter is None:
        names = ", ".join(n for n, _ in module.named_parameters()) or "none"
        raise ValueError(f"no parameter named {name!r}; the model's parameters are: {names}")
    return owner, local, parameter


def per_element_state(optimizer: torch.optim.Optimizer | None, parameter: Tensor) -> dict[str, Tensor]:
    """The optimizer's state tensors of ``parameter`` that have its shape (momentum, moments, ...)."""
    if optimizer is None:
        return {}
    state = optimizer.state.get(parameter, {})
    return {key: value for key, value in state.items()
            if isinstance(value, Tensor) and value.shape == parameter.shape and value.dim() > 0}


def _check_in_optimizer(optimizer: torch.optim.Optimizer, parameter: Tensor, name: str) -> None:
    """``parameter`` must be one the optimizer trains (else model and optimizer do not match)."""
    if not any(p is parameter for group in optimizer.param_groups for p in group["params"]):
        raise ValueError(f"parameter {name!r} is not among the optimizer's parameters: the model and the "
                         "optimizer do not match")


@torch.no_grad()
def reset_state(optimizer: torch.optim.Optimizer | None, parameter: Tensor, where: Tensor) -> None:
    """Zero the per-element optimizer state of ``parameter`` where the boolean ``where`` is True.

    ``where`` has the parameter's shape (or broadcasts to it). Scalar state such as Adam's step count is
    shared by all entries and left alone.
    """
    for value in per_element_state(optimizer, parameter).values():
        value.masked_fill_(where.to(value.device), 0)


@torch.no_grad()
def replace_parameter(module: nn.Module, name: str, data: Tensor, optimizer: torch.optim.Optimizer | None = None,
                      transform_state: Callable[[Tensor], Tensor] | None = None) -> nn.Parameter:
    """Replace parameter ``name`` of ``module`` with a new parameter holding ``data``.

    The optimizer (if given) then optimises the new parameter in place of the old one; each per-element
    state tensor becomes ``transform_state(old_state)`` (which must have ``data``'s shape), other state is
    kept. Without ``transform_state`` the per-element state is dropped (it starts afresh). Returns the new
    parameter.
    """
    owner, local, old = find_parameter(module, name)
    if optimizer is not None:
        _check_in_optimizer(optimizer, old, name)
    new = nn.Parameter(data.detach().clone(), requires_grad=old.requires_grad)
    setattr(owner, local, new)
    if optimizer is None:
        return new
    for group in optimizer.param_groups:
        group["params"] = [new if p is old else p for p in group["params"]]
    old_state = optimizer.state.pop(old, None)
    if old_state is not None:
        new_state = {}
        for key, value in old_state.items():
            if isinstance(value, Tensor) and value.shape == old.shape and value.dim() > 0:
                if transform_state is None:
                    continue
                value = transform_state(value)
                if value.shape != new.shape:
                    raise ValueError(f"transform_state gave state {key!r} the shape {list(value.shape)}; "
                                     f"the parameter has {list(new.shape)}")
            new_state[key] = value
        if new_state:
            optimizer.state[new] = new_state
    return new


def select_slices(module: nn.Module, name: str, dim: int, index: Tensor,
                  optimizer: torch.optim.Optimizer | None = None) -> nn.Parameter:
    """Keep only the slices ``index`` (a 1-d integer tensor) of parameter ``name`` along ``dim``.

    E.g. remove output neurons of a ``Linear`` with ``select_slices(model, "fc.weight", 0, kept)`` and
    ``select_slices(model, "fc.bias", 0, kept)``. The optimizer's per-element state is selected the same way.
    """
    _, _, old = find_parameter(module, name)
    index = index.to(device=old.device, dtype=torch.long)
    return replace_parameter(module, name, old.index_select(dim, index), optimizer,
                             lambda state: state.index_select(dim, index.to(state.device)))


def append_slices(module: nn.Module, name: str, dim: int, values: Tensor,
                  optimizer: torch.optim.Optimizer | None = None, *, state: str = "zero") -> nn.Parameter:
    """Append ``values`` to parameter ``name`` along ``dim`` (new neurons).

    The new entries' per-element optimizer state is zero (``state="zero"``), or the mean of each state tensor
    over the parameter's existing entries (``state="mean"``). The mean suits optimizers that divide by a running
    second moment (Adam, RMSprop): with a zero second moment and the step count shared by the whole parameter,
    Adam's first updates of new entries are several times the learning rate (3x on the first step, about 6x
    after ten steps of a constant gradient), a burst the mean avoids.
    """
    if state not in ("zero", "mean"):
        raise ValueError(f"state must be 'zero' or 'mean', got {state!r}")
    _, _, old = find_parameter(module, name)
    values = values.to(device=old.device, dtype=old.dtype)
    expected = list(old.shape)
    expected[dim] = values.shape[dim] if values.dim() == old.dim() else -1
    if values.dim() != old.dim() or list(values.shape) != expected:
        raise ValueError(f"values for {name!r} must have shape {list(old.shape)} except along dim {dim}; "
                         f"got {list(values.shape)}")

    def grow_state(value: Tensor) -> Tensor:
        fill = float(value.mean()) if state == "mean" and value.numel() else 0.0
        return torch.cat([value, torch.full_like(values, fill, device=value.device, dtype=value.dtype)], dim)

    return replace_parameter(module, name, torch.cat([old, values], dim), optimizer, grow_state)
