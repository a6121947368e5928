"""Argument validation shared by the public API: errors that name the argument and what is accepted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` that lists them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value  # type: ignore[return-value]


def check_int(name: str, value: object, *, minimum: int = 1) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) that is ``>= minimum``: a ``TypeError`` for another
    type, a ``ValueError`` below the minimum, both naming the argument and the accepted range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` if it is a positive (or, with ``allow_zero``, non-negative) number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return value


def check_tensor(
    name: str,
    tensor: object,
    shape: Sequence[int | None | str],
    *,
    floating: bool = True,
    like: torch.Tensor | None = None,
    like_name: str = "the layer's parameters",
) -> torch.Tensor:
    """Check a tensor's rank and sizes; ``None`` or a string in ``shape`` matches any size.

    String entries name the dimension in the error message, e.g. ``("B", 64)`` reads as ``[B, 64]``.
    ``like``: a tensor (e.g. a layer's weight) whose device and floating dtype ``tensor`` must share (the
    dtype is not checked inside an enabled ``torch.autocast`` region, which casts per operation).
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    expected = "[" + ", ".join(str(s) if s is not None else "*" for s in shape) + "]"
    if tensor.dim() != len(shape) or any(
        isinstance(s, int) and s != n for s, n in zip(shape, tensor.shape, strict=False)
    ):
        raise ValueError(f"{name} must have shape {expected}, got {list(tensor.shape)}")
    if floating and not tensor.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")
    if like is not None:
        check_same_placement(name, tensor, like, like_name)
    return tensor


def check_same_placement(name: str, tensor: torch.Tensor, like: torch.Tensor, like_name: str) -> None:
    """Raise a ``ValueError`` if ``tensor`` is on another device than ``like``, or (floating tensors, outside
    autocast) has another dtype: the error says how to convert one to the other."""
    if tensor.device != like.device:
        raise ValueError(f"{name} is on {tensor.device} but {like_name} are on {like.device}: move one to the "
                         f"other (e.g. module.to({str(tensor.device)!r}))")
    if (tensor.is_floating_point() and like.is_floating_point() and tensor.dtype != like.dtype
            and not _autocast_enabled(tensor.device.type)):
        raise ValueError(f"{name} has dtype {tensor.dtype} but {like_name} are {like.dtype}: convert one to the "
                         f"other (e.g. {name}.to({like.dtype}) or module.to({tensor.dtype}))")


def _autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (False for device types autocast does not know, e.g. meta)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:
        return False
