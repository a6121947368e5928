"""Scores that decide which connections to prune (lowest score) and which to regrow (highest score).

Pure functions on tensors: each takes what it scores and returns a float tensor of the parameter's shape
``[*shape]``. The selection itself (exact counts, candidates only) is done by
:func:`neuroplastic.structure.masks.prune_lowest` and :func:`~neuroplastic.structure.masks.grow_highest`.

- :func:`magnitude`: ``|w|`` (magnitude pruning: Han et al. 2015; Zhu & Gupta 2017; SET, RigL, GraNet).
- :func:`gradient_magnitude`: ``|dL/dw|``, the dense gradient (RigL, Evci et al. 2020, regrowth; GraNet's
  zero-cost neuroregeneration uses the gradient of the training step that is already computed).
- :func:`momentum`: the optimizer's smoothed gradient (Dettmers & Zettlemoyer 2019, "Sparse networks from
  scratch"): ``|m|`` for SGD's momentum buffer, ``|m / (sqrt(v) + eps)|`` for Adam's moments.
- :func:`random_scores`: uniform scores from a generator (SET, Mocanu et al. 2018, regrowth): selecting the
  k highest is drawing k positions uniformly without replacement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from neuroplastic._checks import check_int_tuple, check_tensor

__all__ = ["magnitude", "gradient_magnitude", "momentum", "random_scores"]


def magnitude(weight: Tensor) -> Tensor:
    """Magnitude score ``|w|`` of a numeric (not boolean) tensor. Shapes: ``weight [*]`` -> ``[*]``."""
    return _numeric("weight", weight).detach().abs()


def _numeric(name: str, value: object) -> Tensor:
    """A tensor whose entries have a magnitude: any dtype but bool (which has no ``abs``)."""
    check_tensor(name, value, None, floating=False)
    if value.dtype == torch.bool:
        raise ValueError(f"{name} must be a numeric tensor, got dtype torch.bool")
    return value


def gradient_magnitude(grad: Tensor | None) -> Tensor:
    """Gradient-magnitude score ``|g|`` of a dense gradient ``g = dL/dw``. Shapes: ``grad [*]`` -> ``[*]``.

    Raises ``ValueError`` if ``grad`` is None (no backward pass before the update).
    """
    if grad is None:
        raise ValueError("grad is None: gradient-based regrowth needs the gradient of the current step; call "
                         "loss.backward() before optimizer.step() and do not set the gradients to None in between")
    return _numeric("grad", grad).detach().abs()


def momentum(state: Mapping[str, Tensor], eps: float = 1e-8) -> Tensor:
    """Momentum score from an optimizer's per-parameter state (``optimizer.state[p]``). Shapes: ``[*]``.

    Adam/AdamW (``exp_avg`` and ``exp_avg_sq``): ``|m / (sqrt(v) + eps)|``; SGD with momentum
    (``momentum_buffer``): ``|m|``. ``ValueError`` listing the keys if neither is present.
    """
    if "exp_avg" in state and "exp_avg_sq" in state:
        return (state["exp_avg"] / (state["exp_avg_sq"].sqrt() + eps)).detach().abs()
    buffer = state.get("momentum_buffer")
    if isinstance(buffer, Tensor):
        return buffer.detach().abs()
    raise ValueError("state has no momentum: expected 'exp_avg' and 'exp_avg_sq' (Adam) or 'momentum_buffer' "
                     f"(SGD with momentum), got keys {sorted(state)}")


def random_scores(shape: Sequence[int] | torch.Size, generator: torch.Generator,
                  device: torch.device | str | None = None) -> Tensor:
    """Uniform scores in [0, 1) of ``shape``, drawn from ``generator`` (on its device), moved to ``device``."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if not (isinstance(shape, (tuple, torch.Size)) and len(shape) == 0):  # () is the shape of one score
        shape = check_int_tuple("shape", shape, minimum=0)
    if device is not None:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device must be a torch.device, a device name or None, got {device!r}") from error
    scores = torch.rand(tuple(shape), generator=generator, device=generator.device)
    return scores if device is None else scores.to(device)
