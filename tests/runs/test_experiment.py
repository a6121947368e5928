"""Experiment: budgets, thread count, and its description as data (list --json, show)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import pytest

from neuroplastic.runs import Claim, Experiment


@dataclasses.dataclass
class Config:
    steps: int = 10
    lr: float = 0.001
    plastic: bool = True
    data: Path = Path("data")
    limit: Optional[int] = None  # noqa: UP045 (the typing spelling must work too)
    sizes: tuple[int, ...] = (1, 2)


def _experiment(**changes) -> Experiment:
    fields = dict(name="described", paper="Paper 2021", description="a description", config_class=Config,
                  budgets={"quick": Config(), "full": Config(steps=100, limit=5, sizes=(3,))},
                  run=lambda config, run_dir: {}, quick_minutes=0.5,
                  claims=(Claim("Paper 2021", "it works", lambda m: (True, 1)),), tags=("a",))
    return Experiment(**{**fields, **changes})


def test_describe_is_json_ready_and_leaves_out_the_functions():
    description = _experiment(threads=2).describe()
    assert json.loads(json.dumps(description)) == description
    assert description == {
        "name": "described", "paper": "Paper 2021", "description": "a description", "main_metric": "loss",
        "quick_minutes": 0.5, "threads": 2, "tags": ["a"], "claims": [{"paper": "Paper 2021", "statement": "it works"}],
        "config_class": "Config",
        "budgets": {
            "quick": {"steps": 10, "lr": 0.001, "plastic": True, "data": "data", "limit": None, "sizes": [1, 2]},
            "full": {"steps": 100, "lr": 0.001, "plastic": True, "data": "data", "limit": 5, "sizes": [3]},
        },
    }


def test_config_fields_give_types_and_values_as_set_takes_them():
    rows = {row["name"]: (row["type"], row["quick"], row["full"]) for row in _experiment().config_fields()}
    assert rows == {
        "steps": ("int", "10", "100"), "lr": ("float", "0.001", "0.001"), "plastic": ("bool", "true", "true"),
        "data": ("Path", "data", "data"), "limit": ("Optional[int]", "none", "5"),
        "sizes": ("tuple[int, ...]", "1,2", "3"),
    }


@pytest.mark.parametrize(("threads", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                                (True, TypeError)])
def test_threads_must_be_a_positive_int(threads, error):
    with pytest.raises(error, match="described: threads must be an int >= 1, got"):
        _experiment(threads=threads)
