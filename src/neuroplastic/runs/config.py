"""Experiment configs as plain dataclasses: rules declared per field, validation, typed overrides from
``key=value`` text, and dict conversion.

Declaring the rules
-------------------
Each field says what it accepts with :func:`param`, a thin wrapper over ``dataclasses.field`` that stores the
rules in the field's metadata; :func:`validate_config` checks them for every experiment (the runner calls it
through :func:`apply_overrides`, before anything on disk is touched). The declared type is always checked:
a bool is not an int, an int is accepted for a float, NaN and inf are rejected for numbers (``finite=False``
allows inf), tuples and lists are checked item by item. Every error reads
``<ConfigClass>.<field> must be <what is accepted>, got <value!r>``. Rules that tie fields together go in an
optional ``check(self)`` method, which :func:`validate_config` calls after the per-field rules; it raises
:func:`config_error` so that its errors read the same.

Converting an experiment (its hand-written ``_check_config`` becomes declarations)::

    def _check_config(config: Config) -> None:          # before
        for name in ("steps", "hidden"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not config.lr > 0: ...
        check_choice("variant", config.variant, ("simple", "retroactive"))
        if config.adapt_steps > config.steps: ...

    @dataclass                                            # after
    class Config:
        steps: int = param(200, minimum=1)
        hidden: int = param(64, minimum=1)
        adapt_steps: int = param(40, minimum=0)
        lr: float = param(1e-3, minimum=0, exclusive_minimum=True)
        fraction: float = param(0.1, minimum=0, maximum=1)
        variant: str = param("simple", choices=("simple", "retroactive"))
        variants: tuple[str, ...] = param(("plain", "redo"), choices=("plain", "redo", "drm"), min_length=1)
        threads: int = 1                                  # a plain default: only its type is checked

        def check(self) -> None:
            if self.adapt_steps > self.steps:
                raise config_error(self, "adapt_steps", f"at most steps ({self.steps})")

then delete ``_check_config`` and its call in ``run`` (the runner validates). Error messages change to the
format above; adapt tests that match the old text with ``match="adapt_steps"``-style patterns.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any, Union

from .._checks import check_number, describe_number
from ._io import to_jsonable

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_NONE = {"none", "null"}
_RULES_KEY = "neuroplastic.param"


class _Unconvertible(ValueError):
    """A value that does not fit a field's type; the message (if any) says what would."""


@dataclasses.dataclass(frozen=True)
class Rules:
    """What a config field accepts beyond its declared type (see :func:`param`)."""

    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    finite: bool = True
    choices: tuple[Any, ...] | None = None
    min_length: int | None = None
    max_length: int | None = None


_NO_RULES = Rules()


def param(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Any = dataclasses.MISSING,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    finite: bool = True,
    choices: tuple[Any, ...] | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    **field_options: Any,
) -> Any:
    """A config field with its default and the rules :func:`validate_config` checks.

    Args:
        default, default_factory: as for ``dataclasses.field`` (one of them).
        minimum, maximum: bounds of a number (of each item of a tuple or list of numbers), inclusive unless
            ``exclusive_minimum`` / ``exclusive_maximum``.
        finite: reject NaN and inf (the default); ``False`` accepts inf and -inf within the bounds, never NaN.
        choices: the accepted values (of each item of a tuple or list).
        min_length, max_length: bounds of the length of a tuple, list or str (``min_length=1``: non-empty).
        field_options: passed on to ``dataclasses.field`` (``init``, ``repr``, ``compare``, ``metadata``...).

    Example: ``lr: float = param(1e-3, minimum=0, exclusive_minimum=True)``.
    """
    if default is dataclasses.MISSING and default_factory is dataclasses.MISSING:
        raise TypeError("param() needs a default or a default_factory")
    if exclusive_minimum and minimum is None or exclusive_maximum and maximum is None:
        raise ValueError("exclusive_minimum / exclusive_maximum need a minimum / maximum")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise ValueError(f"minimum ({minimum!r}) must be at most maximum ({maximum!r})")
    if choices is not None:
        choices = tuple(choices)
        if not choices:
            raise ValueError("choices must not be empty")
    for name, length in (("min_length", min_length), ("max_length", max_length)):
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 0):
            raise ValueError(f"{name} must be an int >= 0, got {length!r}")
    rules = Rules(minimum, maximum, exclusive_minimum, exclusive_maximum, finite, choices, min_length, max_length)
    metadata = {**field_options.pop("metadata", {}), _RULES_KEY: rules}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata, **field_options)
    return dataclasses.field(default=default, metadata=metadata, **field_options)


def field_rules(field: dataclasses.Field) -> Rules:
    """The rules declared with :func:`param` for a dataclass field (no rules for a plain field)."""
    return field.metadata.get(_RULES_KEY, _NO_RULES)


def config_error(config: Any, name: str, accepted: str) -> ValueError:
    """The error :func:`validate_config` raises, for use in a config's ``check`` method:
    ``ValueError("<ConfigClass>.<name> must be <accepted>, got <value!r>")``."""
    return ValueError(f"{type(config).__name__}.{name} must be {accepted}, got {getattr(config, name)!r}")


def validate_config(config: Any) -> Any:
    """Check every field of a config dataclass against its declared type and :func:`param` rules, then call
    the config's ``check()`` method if it has one; return the config.

    Types: int (not bool), float (int or float), bool, str, pathlib.Path (a str or a path), Optional[X] and
    other unions, Literal[...], tuple[X, ...], tuple[X, Y], list[X] (item by item), other classes by
    ``isinstance``; ``Any`` and unknown annotations accept any value (the rules still apply).

    Raises:
        TypeError: ``config`` is not a dataclass instance.
        ValueError: ``"<ConfigClass>.<field> must be <what is accepted>, got <value!r>"``, for the first
            field that breaks its rules (or whatever ``check()`` raises).
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        rules = field_rules(field)
        annotation = hints.get(field.name, Any)
        value = getattr(config, field.name)
        if not _accepts(value, annotation, rules) or not _length_ok(value, rules):
            raise config_error(config, field.name, describe_field(annotation, rules))
    check = getattr(config, "check", None)
    if callable(check):
        check()
    return config


def describe_field(annotation: Any, rules: Rules = _NO_RULES) -> str:
    """What a field of type ``annotation`` with ``rules`` accepts, in words ("an int >= 1")."""
    if annotation is Any:
        return _describe_rules(rules) or "any value"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_union(annotation):
        parts = [describe_field(arg, rules) for arg in args if arg is not type(None)]
        if type(None) in args:
            parts.append("None")
        return " or ".join(dict.fromkeys(parts))
    if origin is typing.Literal:
        allowed = [a for a in args if rules.choices is None or a in rules.choices]
        return "one of " + ", ".join(map(repr, allowed))
    if origin in (tuple, list) or annotation in (tuple, list):
        container = (origin or annotation).__name__
        text = f"a {_length_phrase(container, rules)}"
        if container == "tuple" and args and not (len(args) == 2 and args[1] is Ellipsis):
            items = [describe_field(arg, _item_rules(rules)) for arg in args]
            if len(set(items)) == 1:
                return f"a {container} of {len(args)} items, each {items[0]}"
            return f"a {container} of {len(args)} items: " + "; ".join(items)
        item = describe_field(args[0] if args else Any, _item_rules(rules))
        return f"{text}, each item {item}" if item != "any value" else text
    if rules.choices is not None:
        return "one of " + ", ".join(map(repr, rules.choices))
    if annotation is bool:
        return "a bool"
    if annotation in (int, float):
        return describe_number(minimum=rules.minimum, maximum=rules.maximum,
                               exclusive_minimum=rules.exclusive_minimum, exclusive_maximum=rules.exclusive_maximum,
                               finite=rules.finite, integer=annotation is int)
    if annotation is str:
        return f"a {_length_phrase('str', rules)}"
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "a path (str or pathlib.Path)"
    name = _type_name(origin if isinstance(origin, type) else annotation)  # dict[str, int]: "a dict"
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _describe_rules(rules: Rules) -> str:
    """The rules of an ``Any`` field in words ("" without rules)."""
    if rules.choices is not None:
        return "one of " + ", ".join(map(repr, rules.choices))
    if rules.minimum is not None or rules.maximum is not None:
        return describe_number(minimum=rules.minimum, maximum=rules.maximum,
                               exclusive_minimum=rules.exclusive_minimum, exclusive_maximum=rules.exclusive_maximum,
                               finite=rules.finite)
    return ""


def _length_phrase(container: str, rules: Rules) -> str:
    """"tuple", "non-empty tuple", "tuple of 2 to 4 items" (the length rules of the field's value)."""
    low, high = rules.min_length, rules.max_length
    if low in (None, 0) and high is None:
        return container
    if low == 1 and high is None:
        return f"non-empty {container}"
    unit = "characters" if container == "str" else "items"
    if high is None:
        return f"{container} of at least {low} {unit}"
    if low in (None, 0):
        return f"{container} of at most {high} {unit}"
    return f"{container} of {low} {unit}" if low == high else f"{container} of {low} to {high} {unit}"


def _item_rules(rules: Rules) -> Rules:
    """The rules for the items of a tuple or list: all but the length rules, which are the container's."""
    return dataclasses.replace(rules, min_length=None, max_length=None)


def _length_ok(value: Any, rules: Rules) -> bool:
    if rules.min_length is None and rules.max_length is None:
        return True
    if not isinstance(value, (str, tuple, list)):
        return value is None  # an Optional field's None has no length
    return ((rules.min_length is None or len(value) >= rules.min_length)
            and (rules.max_length is None or len(value) <= rules.max_length))


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) is Union or (
        hasattr(types, "UnionType") and isinstance(annotation, types.UnionType))


def _accepts(value: Any, annotation: Any, rules: Rules) -> bool:
    """Whether ``value`` has type ``annotation`` and keeps ``rules`` (lengths aside: see ``_length_ok``)."""
    if annotation is Any:
        return _rules_ok(value, rules)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if _is_union(annotation):
        if value is None:
            return type(None) in args
        return any(_accepts(value, arg, rules) for arg in args if arg is not type(None))
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args) and _choice_ok(value, rules)
    if origin in (tuple, list) or annotation in (tuple, list):
        container = origin or annotation
        if not isinstance(value, container):
            return False
        items = _item_rules(rules)
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return len(value) == len(args) and all(
                _accepts(item, arg, items) for item, arg in zip(value, args, strict=True))
        return all(_accepts(item, args[0] if args else Any, items) for item in value)
    if annotation is bool:
        return isinstance(value, bool) and _choice_ok(value, rules)
    if annotation in (int, float):
        try:
            check_number("value", value, minimum=rules.minimum, maximum=rules.maximum,
                         exclusive_minimum=rules.exclusive_minimum, exclusive_maximum=rules.exclusive_maximum,
                         finite=rules.finite, integer=annotation is int)
        except (TypeError, ValueError):
            return False
        return _choice_ok(value, rules)
    if annotation is str:
        return isinstance(value, str) and _choice_ok(value, rules)
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return isinstance(value, (str, PurePath))
    kind = origin if isinstance(origin, type) else annotation
    return (not isinstance(kind, type) or isinstance(value, kind)) and _choice_ok(value, rules)


def _rules_ok(value: Any, rules: Rules) -> bool:
    """Whether a value of any type keeps the rules: number bounds apply to numbers, choices to everything."""
    if (rules.minimum is not None or rules.maximum is not None) and not _accepts(value, float, rules):
        return False
    return _choice_ok(value, rules)


def _choice_ok(value: Any, rules: Rules) -> bool:
    return rules.choices is None or any(value == c and type(value) is type(c) for c in rules.choices) or (
        isinstance(value, float) and any(isinstance(c, int) and not isinstance(c, bool) and value == c
                                         for c in rules.choices))


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
    The result is checked with :func:`validate_config` (with or without overrides).

    Raises:
        ValueError: an unknown key (the message lists the valid keys), a value that does not convert
            (the message names the key, the value and the expected type), or a config that breaks its
            declared rules (``"<ConfigClass>.<field> must be ..., got ..."``).
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a dataclass instance, got {type(config).__name__}")
    if not overrides:
        return validate_config(dataclasses.replace(config))
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
    return validate_config(dataclasses.replace(config, **changes))


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

