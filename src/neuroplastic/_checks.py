"""Argument validation shared by the public API: errors that name the argument and what is accepted."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import torch


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` that lists them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value  # type: ignore[return-value]


def check_int(name: str, value: object, *, minimum: int | None = 1, maximum: int | None = None) -> int:
    """Return ``value`` if it is an ``int`` (not a bool) in ``[minimum, maximum]`` (None: no bound): a
    ``TypeError`` for another type, a ``ValueError`` out of range, both naming the argument and the range."""
    return check_number(name, value, minimum=minimum, maximum=maximum, integer=True)  # type: ignore[return-value]


def check_optional_int(name: str, value: object, *, minimum: int | None = 1) -> int | None:
    """Return ``value`` if it is None or an ``int`` (not a bool) ``>= minimum``, such as an optional chunk size:
    "chunk_size must be an int >= 1 or None, got 0" (``TypeError`` for another type, ``ValueError`` below)."""
    if value is None:
        return None
    what = describe_number(minimum=minimum, integer=True) + " or None"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_int_tuple(name: str, value: object, *, minimum: int | None = 1, allow_int: bool = False) -> tuple[int, ...]:
    """Return ``value`` as a tuple if it is a non-empty sequence (not a string) of ints (not bools) ``>= minimum``,
    such as layer widths or a shape; with ``allow_int``, one such int is the tuple ``(value,)``.

    Raises:
        TypeError: not a sequence, or an entry that is not an int: "<name> must be <what>, got <type> <value>".
        ValueError: empty, or an entry below ``minimum``: "<name> must be <what>, got <value>".
    """
    bound = "" if minimum is None else f" >= {minimum}"
    what = f"a non-empty sequence of ints{bound}" + (f" or an int{bound}" if allow_int else "")
    items = (value,) if allow_int and isinstance(value, int) and not isinstance(value, bool) else value
    if (isinstance(items, (str, bytes)) or not isinstance(items, Sequence)
            or any(isinstance(n, bool) or not isinstance(n, int) for n in items)):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if len(items) == 0 or (minimum is not None and any(n < minimum for n in items)):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return tuple(items)


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a ``bool`` (not 0/1 or another truthy value), else raise a ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


def check_fraction(name: str, value: object, *, low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number in [0, 1] (``low_open``: > 0, ``high_open``: < 1),
    with :func:`check_number`'s errors: "density must be a finite number in (0, 1], got 0"."""
    return float(check_number(name, value, minimum=0, maximum=1, exclusive_minimum=low_open,
                              exclusive_maximum=high_open))


def describe_number(
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    finite: bool = True,
    integer: bool = False,
) -> str:
    """What :func:`check_number` accepts, in words: "an int >= 1", "a finite number in (0, 1]"."""
    kind = "an int" if integer else ("a finite number" if finite else "a number (±inf allowed)")
    low = None if minimum is None else _format_bound(minimum)
    high = None if maximum is None else _format_bound(maximum)
    if low is not None and high is not None:
        return f"{kind} in {'(' if exclusive_minimum else '['}{low}, {high}{')' if exclusive_maximum else ']'}"
    if low is not None:
        return f"{kind} {'>' if exclusive_minimum else '>='} {low}"
    if high is not None:
        return f"{kind} {'<' if exclusive_maximum else '<='} {high}"
    return kind


def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    finite: bool = True,
    integer: bool = False,
) -> int | float:
    """Return ``value`` if it is a number in the given range, else raise an error that names the argument and
    says what is accepted (:func:`describe_number`).

    Accepted: an ``int`` or ``float`` (``integer=True``: an ``int`` only), never a bool or NaN; +-inf only
    with ``finite=False`` (and then within the bounds: -inf is not ``>= 0``).

    Raises:
        TypeError: not a number (not an int, with ``integer=True``): "<name> must be <what>, got <type> <value>".
        ValueError: NaN or infinite, or out of range: "<name> must be <what>, got <value>".
    """
    what = describe_number(minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum,
                           exclusive_maximum=exclusive_maximum, finite=finite, integer=integer)
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if ((isinstance(value, float) and (math.isnan(value) or (finite and math.isinf(value))))
            or (minimum is not None and (value <= minimum if exclusive_minimum else value < minimum))
            or (maximum is not None and (value >= maximum if exclusive_maximum else value > maximum))):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def _format_bound(bound: float) -> str:
    """A range bound as text: 1, 0.5, 1e-08 (floats that are whole numbers without ".0")."""
    if isinstance(bound, float) and bound.is_integer() and abs(bound) < 1e15:
        return str(int(bound))
    return format(bound, "g") if isinstance(bound, float) else str(bound)


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` if it is a positive (or, with ``allow_zero``, non-negative) number, +inf included; a
    bool is not a number and NaN is not positive. (:func:`check_number` with ``minimum=0`` also rejects inf.)"""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return value


def check_values(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    finite: bool = True,
) -> int | float | torch.Tensor:
    """Return ``value`` if it is a number, or a tensor whose every entry is one, that :func:`check_number` accepts
    with these rules (never NaN; +-inf only with ``finite=False``), e.g. a per-neuron threshold or time constant.

    Raises:
        TypeError: neither a number (a bool is none) nor a tensor.
        ValueError: a number or an entry out of range: "<name> must be <what>, got <value>", for a tensor with
            "(an entry of a tensor of shape [...])" after the first such entry.
    """
    if not isinstance(value, torch.Tensor):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            what = describe_number(minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum,
                                   exclusive_maximum=exclusive_maximum, finite=finite)
            raise TypeError(f"{name} must be {what} or a tensor of such numbers, got {type(value).__name__}")
        return check_number(name, value, minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum,
                            exclusive_maximum=exclusive_maximum, finite=finite)
    entries = value.detach()
    bad = entries.isnan() | entries.isinf() if finite else entries.isnan()
    if minimum is not None:
        bad |= entries <= minimum if exclusive_minimum else entries < minimum
    if maximum is not None:
        bad |= entries >= maximum if exclusive_maximum else entries > maximum
    if bool(bad.any()):
        what = describe_number(minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum,
                               exclusive_maximum=exclusive_maximum, finite=finite)
        raise ValueError(f"{name} must be {what}, got {entries[bad].flatten()[0].item()!r} (an entry of a tensor "
                         f"of shape {list(value.shape)})")
    return value


def check_finite(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` if every entry is finite, else a ``ValueError`` that names it and counts the NaN and
    infinite entries (a measure or an encoder would otherwise turn them into a silently wrong result)."""
    bad = ~torch.isfinite(tensor.detach())
    if bool(bad.any()):
        nan = int(torch.isnan(tensor.detach()).sum())
        raise ValueError(f"{name} must be finite, got {nan} NaN and {int(bad.sum()) - nan} infinite entries "
                         f"(of {tensor.numel()})")
    return tensor


def check_nonempty_sequence(name: str, x: torch.Tensor) -> torch.Tensor:
    """Return ``x [B, T, ...]`` if it has at least one sample and one time step, else a ``ValueError``: every
    sequence module of the library refuses an empty batch or an empty sequence at its boundary (as
    ``torch.nn.RNN`` refuses T = 0), instead of failing inside a kernel or returning a state of another batch."""
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one sample and one time step ([B, T, ...] with B >= 1 and "
                         f"T >= 1), got shape {list(x.shape)}")
    return x


def check_tensor(
    name: str,
    tensor: object,
    shape: Sequence[int | None | str] | None,
    *,
    floating: bool = True,
    like: torch.Tensor | None = None,
    like_name: str = "the layer's parameters",
) -> torch.Tensor:
    """Check a tensor's rank and sizes; ``None`` or a string in ``shape`` matches any size (``shape=None``: any
    rank and sizes, only the type, dtype and placement are checked).

    String entries name the dimension in the error message, e.g. ``("B", 64)`` reads as ``[B, 64]``.
    ``like``: a tensor (e.g. a layer's weight) whose device and floating dtype ``tensor`` must share (the
    dtype is not checked inside an enabled ``torch.autocast`` region, which casts per operation).
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if shape is not None and (tensor.dim() != len(shape) or any(
        isinstance(s, int) and s != n for s, n in zip(shape, tensor.shape, strict=False)
    )):
        expected = "[" + ", ".join(str(s) if s is not None else "*" for s in shape) + "]"
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


class StateField(NamedTuple):
    """One tensor of a recurrent state, as :func:`check_state` checks it.

    ``path``: where it is in the state (``"hidden"``, ``"plastic.trace"``); ``shape``: the sizes it must have, or
    None when the module keeps no such tensor (it must then be None); ``dims``: what the sizes are, in words
    (``"batch of the input, hidden, hidden"``); ``why``: why the tensor is required or absent (for the error).
    """

    path: str
    shape: tuple[int, ...] | None
    dims: str = ""
    why: str = ""


def check_state(
    state: object,
    types: Sequence[tuple[str, type]],
    fields: Iterable[StateField],
    *,
    batch: int,
    like: torch.Tensor,
    like_name: str = "the layer's parameters",
    batch_note: str = "",
) -> None:
    """Check a recurrent state a module was given, before it computes anything with it.

    ``types``: ``(path, type)`` pairs the state and its parts must be instances of (``""`` is the state
    itself), e.g. ``[("", PlasticRNNState), ("plastic", PlasticState)]``. ``fields``: the tensors and the shapes
    they must have (:class:`StateField`). ``batch``: the input's batch size; ``like``: a parameter whose device
    and floating dtype every tensor must share (:func:`check_same_placement`). ``batch_note`` is added to the
    error of a tensor whose first size is not ``batch``.

    Raises:
        TypeError: the state or a part of it has another type, or a field is not a tensor:
            "state must be a PlasticLSTMState or None, got PlasticRNNState".
        ValueError: a field with other sizes ("state.plastic.trace must have shape [3, 64, 64] (batch of the
            input, hidden, hidden), got [1, 64, 64]: the state is for batch size 1 but the inputs have batch
            size 3"), missing or present where the module keeps none, on the meta device, not floating-point,
            or on another device or dtype than ``like``.
    """
    for path, kind in types:
        part = _state_part(state, path)
        if not isinstance(part, kind):
            name = "state" + (f".{path}" if path else "")
            raise TypeError(f"{name} must be a {kind.__name__}{' or None' if not path else ''}, "
                            f"got {type(part).__name__}")
    for field in fields:
        name = f"state.{field.path}"
        tensor = _state_part(state, field.path)
        why = f" ({field.why})" if field.why else ""
        if field.shape is None:
            if tensor is not None:
                raise ValueError(f"{name} must be None{why}, got a tensor of shape {list(tensor.shape)}")
            continue
        expected = f"shape {list(field.shape)}" + (f" ({field.dims})" if field.dims else "")
        if tensor is None:
            raise ValueError(f"{name} is None but must be a tensor of {expected}{why}")
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of {expected}, got {type(tensor).__name__}")
        if tensor.device.type == "meta" and like.device.type != "meta":
            raise ValueError(f"{name} is on the meta device (a tensor without values) but {like_name} are on "
                             f"{like.device}: build the state with the module's initial_state()")
        if tuple(tensor.shape) != tuple(field.shape):
            message = f"{name} must have {expected}, got {list(tensor.shape)}"
            if tensor.dim() >= 1 and tensor.shape[0] != batch:
                message += (f": the state is for batch size {tensor.shape[0]} but the inputs have batch size "
                            f"{batch}{batch_note}")
            raise ValueError(message)
        if not tensor.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {tensor.dtype}")
        check_same_placement(name, tensor, like, like_name)


def _state_part(state: object, path: str) -> object:
    """The part of ``state`` at the dotted attribute ``path`` (``""``: the state itself)."""
    for attribute in filter(None, path.split(".")):
        state = getattr(state, attribute)
    return state
