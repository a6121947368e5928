"""Config overrides from key=value text: typed conversion and errors that say what is accepted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from neuroplastic.runs import apply_overrides, config_to_dict


@dataclass(frozen=True)
class Config:
    steps: int = 10
    lr: float = 0.1
    plastic: bool = True
    name: str = "run"
    data: Path = Path("data")
    limit: Optional[int] = None  # noqa: UP045 (the typing spelling must work too)
    width: int | None = 4
    sizes: tuple[int, ...] = (1, 2)
    rates: list[float] = field(default_factory=lambda: [0.5])
    shape: tuple[int, int] = (2, 3)
    rule: Literal["hebb", "oja"] = "hebb"


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("steps", "25", 25),
        ("lr", "3e-4", 3e-4),
        ("plastic", "false", False),
        ("plastic", "Yes", True),
        ("plastic", "0", False),
        ("name", "a b", "a b"),
        ("data", "/tmp/x", Path("/tmp/x")),
        ("limit", "none", None),
        ("limit", "7", 7),
        ("width", "null", None),
        ("sizes", "3, 4,5", (3, 4, 5)),
        ("sizes", "", ()),
        ("rates", "0.1,1", [0.1, 1.0]),
        ("shape", "5,6", (5, 6)),
        ("rule", "oja", "oja"),
    ],
)
def test_values_are_converted_to_the_field_type(key, text, expected):
    config = apply_overrides(Config(), {key: text})
    assert getattr(config, key) == expected
    assert type(getattr(config, key)) is type(expected)


def test_overrides_return_a_new_config_and_keep_the_rest():
    original = Config()
    config = apply_overrides(original, {"steps": "5", "lr": 0.5})
    assert (config.steps, config.lr, config.name) == (5, 0.5, "run")
    assert original.steps == 10
    assert apply_overrides(original, None) == original


def test_unknown_key_lists_the_valid_keys():
    with pytest.raises(ValueError, match="unknown config key 'step'.*valid keys: steps, lr, plastic"):
        apply_overrides(Config(), {"step": "5"})


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("steps", "2.5", "bad value for steps: '2.5' is not a valid int"),
        ("lr", "fast", "bad value for lr: 'fast' is not a valid float"),
        ("plastic", "maybe", "bad value for plastic: 'maybe' is not a valid bool"),
        ("sizes", "1,x", "bad value for sizes: '1,x' is not a valid tuple\\[int, ...\\]"),
        ("shape", "1,2,3", "expected 2 comma-separated values, got 3"),
        ("rule", "bcm", "choose from 'hebb', 'oja'"),
        ("limit", "many", "bad value for limit: 'many' is not a valid Optional\\[int\\]"),
    ],
)
def test_bad_values_name_key_value_and_type(key, text, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(Config(), {key: text})


def test_config_to_dict_is_json_ready():
    assert config_to_dict(Config()) == {
        "steps": 10, "lr": 0.1, "plastic": True, "name": "run", "data": "data", "limit": None, "width": 4,
        "sizes": [1, 2], "rates": [0.5], "shape": [2, 3], "rule": "hebb",
    }
    with pytest.raises(TypeError, match="dataclass"):
        config_to_dict({"steps": 1})
