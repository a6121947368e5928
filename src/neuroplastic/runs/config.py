"""Experiment configs as plain dataclasses: typed overrides from ``key=value`` text, and dict conversion."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Union

from ._io import to_jsonable

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_NONE = {"none", "null"}


class _Unconvertible(ValueError):
    """A value that does not fit a field's type; the message (if any) says what would."""


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-ready dict (paths as strings, tuples as lists)."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    return {f.name: to_jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}


def apply_overrides(config: Any, overrides: Mapping[str, Any] | None) -> Any:
    """Return a copy of the config dataclass with ``overrides`` (key -> text) converted to each field's type.

    Supported field types: int, float, bool (true/false/1/0/yes/no), str, pathlib.Path, Optional[X]
    ("none" or "null" gives None), Literal[...], and tuple/list of those written as comma-separated text
    ("1,2,3"; an empty string is an empty sequence). Non-string values are checked and used as they are.

    Raises:
        ValueError: an unknown key (the message lists the valid keys), or a value that does not convert
            (the message names the key, the value and the expected type).
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    if not overrides:
        return dataclasses.replace(config)
    fields = {f.name: f for f in dataclasses.fields(config) if f.init}
    hints = typing.get_type_hints(type(config))
    changes = {}
    for key, value in overrides.items():
        if key not in fields:
            raise ValueError(
                f"unknown config key {key!r} for {type(config).__name__}; valid keys: {', '.join(fields)}"
            )
        annotation = hints.get(key, type(getattr(config, key)))
        try:
            changes[key] = _convert(value, annotation)
        except (ValueError, TypeError) as error:
            detail = f" ({error})" if isinstance(error, _Unconvertible) and str(error) else ""
            raise ValueError(
                f"bad value for {key}: {value!r} is not a valid {_type_name(annotation)}{detail}"
            ) from None
    return dataclasses.replace(config, **changes)


def _convert(value: Any, annotation: Any) -> Any:
    """Convert ``value`` (text, or an already typed value) to ``annotation``, or raise ValueError."""
    if annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Union or (hasattr(types, "UnionType") and isinstance(annotation, types.UnionType)):
        options = [a for a in args if a is not type(None)]
        is_none = value is None or (isinstance(value, str) and value.strip().lower() in _NONE)
        if type(None) in args and is_none:
            return None
        for option in options:
            try:
                return _convert(value, option)
            except (ValueError, TypeError):
                continue
        raise _Unconvertible("")
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value.strip()):
                return choice
        raise _Unconvertible(f"choose from {', '.join(map(repr, args))}")
    if origin in (tuple, list) or annotation in (tuple, list):
        container = origin or annotation
        if isinstance(value, str):
            items: list[Any] = [] if not value.strip() else [part.strip() for part in value.split(",")]
        elif isinstance(value, (tuple, list)):
            items = list(value)
        else:
            raise _Unconvertible("")
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise _Unconvertible(f"expected {len(args)} comma-separated values, got {len(items)}")
            return tuple(_convert(item, arg) for item, arg in zip(items, args, strict=True))
        element = args[0] if args else str
        return container(_convert(item, element) for item in items)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Unconvertible("")
    if annotation is int:
        if isinstance(value, bool):
            raise _Unconvertible("")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value.strip())
        raise _Unconvertible("")
    if annotation is float:
        if isinstance(value, bool):
            raise _Unconvertible("")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise _Unconvertible("")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Unconvertible("")
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        if isinstance(value, (str, PurePath)):
            return annotation(value)
        raise _Unconvertible("")
    raise _Unconvertible(f"fields of type {_type_name(annotation)} cannot be set from text")


def _type_name(annotation: Any) -> str:
    """A readable name for a type annotation: int, float, Optional[int], tuple[int, ...]."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return "path" if issubclass(annotation, PurePath) else annotation.__name__
    text = repr(annotation).replace("typing.", "").replace("pathlib.", "")
    return text.replace("<class '", "").replace("'>", "")

