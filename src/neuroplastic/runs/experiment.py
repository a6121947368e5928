"""What an experiment is: a config with budgets, a ``run`` function, and claims checked on metrics."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, is_dataclass
from typing import Any

from .._checks import check_bool, check_int
from .config import config_to_dict

BUDGETS = ("quick", "full")


def _type_label(annotation: Any) -> str:
    """A config field's type for people: int, float, Path, Optional[int], tuple[int, ...]."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return repr(annotation).replace("typing.", "").replace("pathlib.", "")


def _setting(value: Any) -> str:
    """A config value written as ``--set key=VALUE`` accepts it: true/false, none, comma-separated items."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return ",".join(_setting(item) for item in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class ClaimResult:
    """The verdict of one claim on one run."""

    paper: str
    statement: str
    passed: bool
    measured: Any

    def to_dict(self) -> dict[str, Any]:
        return {"paper": self.paper, "statement": self.statement, "passed": bool(self.passed),
                "measured": self.measured}


@dataclass(frozen=True)
class Claim:
    """A paper's result in words, and a function deciding from a run's final metrics whether it held.

    ``check(metrics)`` returns ``(passed, measured)``: ``measured`` is what the decision was made on
    (a number, or a small dict of numbers), shown beside the statement in summaries and reports.
    A claim whose metrics are missing fails; it is never hidden.
    """

    paper: str
    statement: str
    check: Callable[[Mapping[str, Any]], tuple[bool, Any]]

    def evaluate(self, metrics: Mapping[str, Any]) -> ClaimResult:
        try:
            passed, measured = self.check(metrics)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
            passed, measured = False, f"not measured: {type(error).__name__}: {error}"
        return ClaimResult(self.paper, self.statement, bool(passed), measured)


@dataclass(frozen=True)
class Experiment:
    """A reproduced result: its config class, budgets, run function and claims.

    ``run(config, run_dir)`` trains and evaluates, logging through ``run_dir`` (a
    :class:`neuroplastic.runs.RunDirectory`), and returns a flat dict of final metrics that the claims read.
    The runner calls it with ``threads`` PyTorch intra-op threads (the number its quick runs want; small
    models run fastest on one), unless the command line or the config's own ``threads`` field says otherwise.
    ``auto_plot=False`` skips the runner's default ``metrics.png`` (for an experiment that draws its own figures
    of everything it logs).
    """

    name: str
    paper: str
    description: str
    config_class: type
    budgets: Mapping[str, Any]
    run: Callable[[Any, Any], dict[str, Any]]
    claims: Sequence[Claim]
    quick_minutes: float
    main_metric: str = "loss"
    tags: tuple[str, ...] = field(default_factory=tuple)
    threads: int = 1
    auto_plot: bool = True

    def __post_init__(self) -> None:
        if not is_dataclass(self.config_class):
            raise TypeError(f"{self.name}: config_class must be a dataclass")
        check_int(f"{self.name}: threads", self.threads)
        check_bool(f"{self.name}: auto_plot", self.auto_plot)
        missing = [b for b in BUDGETS if b not in self.budgets]
        if missing:
            raise ValueError(f"{self.name}: budgets must define {BUDGETS}, missing {missing}")
        for budget, config in self.budgets.items():
            if not isinstance(config, self.config_class):
                raise TypeError(f"{self.name}: budget {budget!r} is not a {self.config_class.__name__}")

    def config(self, budget: str = "quick") -> Any:
        """A copy of the config for ``budget`` ("quick" or "full")."""
        if budget not in self.budgets:
            raise ValueError(f"budget must be one of {', '.join(map(repr, self.budgets))}; got {budget!r}")
        from dataclasses import replace

        return replace(self.budgets[budget])

    def describe(self) -> dict[str, Any]:
        """The experiment without its functions, as JSON-ready data: names, claims, budgets' config values."""
        return {
            "name": self.name,
            "paper": self.paper,
            "description": self.description,
            "main_metric": self.main_metric,
            "quick_minutes": self.quick_minutes,
            "threads": self.threads,
            "tags": list(self.tags),
            "claims": [{"paper": claim.paper, "statement": claim.statement} for claim in self.claims],
            "config_class": self.config_class.__name__,
            "budgets": {budget: config_to_dict(self.config(budget)) for budget in self.budgets},
        }

    def config_fields(self) -> list[dict[str, str]]:
        """The config's fields as text: ``{"name", "type", "quick", "full"}`` (values as ``--set`` takes them)."""
        quick, full = self.config("quick"), self.config("full")
        try:
            hints = typing.get_type_hints(self.config_class)
        except Exception:  # an annotation that cannot be evaluated here: show the value's type instead
            hints = {}
        return [
            {"name": f.name, "type": _type_label(hints.get(f.name, type(getattr(quick, f.name)))),
             "quick": _setting(getattr(quick, f.name)), "full": _setting(getattr(full, f.name))}
            for f in dataclasses.fields(quick) if f.init
        ]
