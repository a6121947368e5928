"""Config rules declared per field with param(), checked by validate_config (also through apply_overrides)."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import pytest

from neuroplastic import experiments as registry
from neuroplastic.runs import apply_overrides, validate_config
from neuroplastic.runs.config import config_error, describe_field, field_rules, param


@dataclass(frozen=True)
class Config:
    steps: int = param(200, minimum=1)
    lr: float = param(1e-3, minimum=0, exclusive_minimum=True)
    fraction: float = param(0.1, minimum=0, maximum=1)
    variant: str = param("simple", choices=("simple", "retroactive"))
    threshold: float = param(math.inf, minimum=0, finite=False)
    plastic: bool = True
    scale: float = 1.0
    name: str = param("run", min_length=1)
    sizes: tuple[int, ...] = param((1, 2), minimum=1)
    variants: tuple[str, ...] = param(("a",), choices=("a", "b"), min_length=1)
    shape: tuple[int, float] = (2, 3.0)
    rates: list[float] = param(default_factory=lambda: [0.5], minimum=0, maximum=1)
    limit: Optional[int] = param(None, minimum=0)  # noqa: UP045 (the typing spelling must work too)
    width: int | None = None
    rule: Literal["hebb", "oja"] = "hebb"
    data: Path = Path("data")
    anything: Any = None


def _error(config: Any, **changes: Any) -> str:
    with pytest.raises(ValueError) as info:
        validate_config(dataclasses.replace(config, **changes))
    return str(info.value)


def test_the_default_config_validates_and_is_returned():
    config = Config()
    assert validate_config(config) is config
    assert dataclasses.fields(Config)[0].default == 200
    assert Config().rates == [0.5] and Config().rates is not Config().rates  # default_factory
    assert field_rules(dataclasses.fields(Config)[0]).minimum == 1
    assert field_rules(dataclasses.fields(Config)[6]).minimum is None  # a plain field has no rules


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": 0}, "Config.steps must be an int >= 1, got 0"),
        ({"steps": True}, "Config.steps must be an int >= 1, got True"),  # a bool is not an int
        ({"steps": 2.0}, "Config.steps must be an int >= 1, got 2.0"),
        ({"steps": "3"}, "Config.steps must be an int >= 1, got '3'"),
        ({"lr": 0}, "Config.lr must be a finite number > 0, got 0"),
        ({"lr": -1e-3}, "Config.lr must be a finite number > 0, got -0.001"),
        ({"lr": math.nan}, "Config.lr must be a finite number > 0, got nan"),
        ({"lr": math.inf}, "Config.lr must be a finite number > 0, got inf"),
        ({"lr": False}, "Config.lr must be a finite number > 0, got False"),
        ({"fraction": 1.5}, "Config.fraction must be a finite number in [0, 1], got 1.5"),
        ({"fraction": -0.1}, "Config.fraction must be a finite number in [0, 1], got -0.1"),
        ({"variant": "other"}, "Config.variant must be one of 'simple', 'retroactive', got 'other'"),
        ({"threshold": math.nan}, "Config.threshold must be a number (±inf allowed) >= 0, got nan"),
        ({"threshold": -math.inf}, "Config.threshold must be a number (±inf allowed) >= 0, got -inf"),
        ({"plastic": 1}, "Config.plastic must be a bool, got 1"),
        ({"scale": math.nan}, "Config.scale must be a finite number, got nan"),  # plain floats are finite
        ({"scale": "1"}, "Config.scale must be a finite number, got '1'"),
        ({"name": ""}, "Config.name must be a non-empty str, got ''"),
        ({"name": 3}, "Config.name must be a non-empty str, got 3"),
        ({"sizes": (1, 0)}, "Config.sizes must be a tuple, each item an int >= 1, got (1, 0)"),
        ({"sizes": [1, 2]}, "Config.sizes must be a tuple, each item an int >= 1, got [1, 2]"),
        ({"sizes": (1, True)}, "Config.sizes must be a tuple, each item an int >= 1, got (1, True)"),
        ({"variants": ()}, "Config.variants must be a non-empty tuple, each item one of 'a', 'b', got ()"),
        ({"variants": ("a", "c")}, "Config.variants must be a non-empty tuple, each item one of 'a', 'b', "
                                   "got ('a', 'c')"),
        ({"shape": (2, 3, 4)}, "Config.shape must be a tuple of 2 items: an int; a finite number, got (2, 3, 4)"),
        ({"shape": (2.0, 3.0)}, "Config.shape must be a tuple of 2 items: an int; a finite number, "
                                "got (2.0, 3.0)"),
        ({"rates": [0.5, 2.0]}, "Config.rates must be a list, each item a finite number in [0, 1], got [0.5, 2.0]"),
        ({"rates": (0.5,)}, "Config.rates must be a list, each item a finite number in [0, 1], got (0.5,)"),
        ({"limit": -1}, "Config.limit must be an int >= 0 or None, got -1"),
        ({"width": "4"}, "Config.width must be an int or None, got '4'"),
        ({"rule": "bcm"}, "Config.rule must be one of 'hebb', 'oja', got 'bcm'"),
        ({"data": 3}, "Config.data must be a path (str or pathlib.Path), got 3"),
    ],
)
def test_a_broken_rule_raises_one_message_format(changes, message):
    assert _error(Config(), **changes) == message


@pytest.mark.parametrize(
    "changes",
    [
        {"lr": 1},  # an int is accepted for a float
        {"fraction": 0}, {"fraction": 1}, {"fraction": 1.0},  # inclusive bounds
        {"threshold": math.inf}, {"threshold": 0.0},  # finite=False accepts inf
        {"sizes": ()}, {"sizes": (3,)},
        {"variants": ("b", "a", "b")},
        {"shape": (2, 3)},  # an int item for a float item
        {"rates": []},
        {"limit": 0}, {"width": 7},
        {"rule": "oja"},
        {"data": "elsewhere"},  # a str for a path
        {"anything": object()},
    ],
)
def test_accepted_values(changes):
    validate_config(dataclasses.replace(Config(), **changes))


def test_the_message_format_is_class_field_accepted_value():
    pattern = r"^[A-Za-z_]\w*\.[a-z_]\w* must be .+, got .+$"
    for changes in ({"steps": -5}, {"variant": None}, {"rates": None}, {"limit": 1.5}):
        assert re.match(pattern, _error(Config(), **changes))


@dataclass
class Crossed:
    steps: int = param(100, minimum=1)
    adapt_steps: int = param(10, minimum=0)
    checked: list[str] = field(default_factory=list, compare=False)

    def check(self) -> None:
        self.checked.append("called")
        if self.adapt_steps > self.steps:
            raise config_error(self, "adapt_steps", f"at most steps ({self.steps})")


def test_the_check_hook_runs_after_the_field_rules():
    config = Crossed()
    validate_config(config)
    assert config.checked == ["called"]
    with pytest.raises(ValueError, match=r"^Crossed.adapt_steps must be at most steps \(100\), got 101$"):
        validate_config(Crossed(adapt_steps=101))
    early = Crossed(steps=0, adapt_steps=5)
    with pytest.raises(ValueError, match=r"^Crossed.steps must be an int >= 1, got 0$"):
        validate_config(early)
    assert early.checked == []  # field rules first: check() sees fields of the right type


def test_apply_overrides_validates_before_anything_runs():
    with pytest.raises(ValueError, match=r"^Config.steps must be an int >= 1, got 0$"):
        apply_overrides(Config(), {"steps": "0"})
    with pytest.raises(ValueError, match=r"^Config.lr must be a finite number > 0, got nan$"):
        apply_overrides(Config(), {"lr": "nan"})
    with pytest.raises(ValueError, match=r"^Crossed.adapt_steps must be at most steps \(5\), got 10$"):
        apply_overrides(Crossed(), {"steps": 5})
    with pytest.raises(ValueError, match=r"^Config.variants must be a non-empty tuple"):
        apply_overrides(Config(), {"variants": ""})
    assert apply_overrides(Config(), {"variants": "b,a"}).variants == ("b", "a")
    with pytest.raises(ValueError, match=r"^Config.fraction must be"):  # no overrides: still validated
        apply_overrides(Config(fraction=2.0), None)


def test_validate_config_needs_a_dataclass_instance():
    with pytest.raises(TypeError, match="dataclass instance"):
        validate_config(Config)
    with pytest.raises(TypeError, match="dataclass instance"):
        validate_config({"steps": 1})


def test_param_checks_its_own_arguments():
    with pytest.raises(TypeError, match="default"):
        param(minimum=0)
    with pytest.raises(ValueError, match="exclusive_minimum / exclusive_maximum need"):
        param(1.0, exclusive_minimum=True)
    with pytest.raises(ValueError, match="minimum .* must be at most maximum"):
        param(1.0, minimum=2, maximum=1)
    with pytest.raises(ValueError, match="choices must not be empty"):
        param("a", choices=())
    with pytest.raises(ValueError, match="min_length must be an int >= 0"):
        param((), min_length=-1)
    extra = param(1, minimum=0, metadata={"help": "kept"}, repr=False)
    assert extra.metadata["help"] == "kept" and not extra.repr


def test_descriptions():
    assert describe_field(int) == "an int"
    assert describe_field(float, field_rules(dataclasses.fields(Config)[1])) == "a finite number > 0"
    assert describe_field(tuple[str, ...]) == "a tuple, each item a str"
    assert describe_field(list) == "a list"
    assert describe_field(Any) == "any value"
    assert describe_field(dict[str, int]) == "a dict"


@pytest.mark.parametrize("name", sorted(registry.registry()))
def test_every_registered_experiment_budget_validates(name):
    experiment = registry.get_experiment(name)
    for budget in ("quick", "full"):
        config = experiment.config(budget)
        assert validate_config(config) is config
        assert apply_overrides(config, None) == config
