"""Validation and small helpers shared by the task generators (not public API)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

DeviceLike = torch.device | str | None


def check_generator(generator: object) -> torch.Generator:
    """Return ``generator`` if it is a CPU ``torch.Generator``."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(
            f"generator must live on the CPU (tensors are drawn on the CPU, then moved); "
            f"got a generator on {generator.device}"
        )
    return generator


def resolve_device(device: DeviceLike) -> torch.device:
    """Turn ``None`` / a string / a device into a ``torch.device`` (``None`` means CPU)."""
    if device is None:
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be a torch.device or a string like 'cpu'; got {device!r}") from err


def check_actions(action: object, batch_size: int, num_actions: int, device: torch.device) -> torch.Tensor:
    """Check that ``action`` is an integer tensor ``[B]`` with values in ``0..num_actions-1``."""
    if not isinstance(action, torch.Tensor):
        raise TypeError(f"action must be a torch.Tensor of shape [{batch_size}], got {type(action).__name__}")
    if action.shape != (batch_size,):
        raise ValueError(f"action must have shape [{batch_size}], got {list(action.shape)}")
    if action.dtype.is_floating_point or action.dtype.is_complex or action.dtype == torch.bool:
        raise ValueError(f"action must be an integer tensor (e.g. torch.long), got dtype {action.dtype}")
    action = action.to(device=device, dtype=torch.long)
    if bool(((action < 0) | (action >= num_actions)).any()):
        bad = action[(action < 0) | (action >= num_actions)][0].item()
        raise ValueError(f"action values must be in 0..{num_actions - 1}, got {bad}")
    return action


@dataclass(frozen=True)
class ObservationLayout:
    """Where each part of an observation vector lives: ``obs[..., layout.field]``.

    Fields a task does not use are ``None``.
    """

    size: int
    cue: slice | None = None
    neighbourhood: slice | None = None
    response: int | None = None
    bias: int | None = None
    time: int | None = None
    reward: int | None = None
    action: slice | None = None
