"""What a report knows about a run directory: its summary, config, last logged metrics, plots and provenance."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_FILES = ("summary.json", "config.json", "metrics.csv")
BUDGET_ORDER = {"quick": 0, "full": 1}


def find_run_dirs(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The run directories in ``paths``: each path is a run directory or has run directories below it.

    A run directory holds a summary.json, config.json or metrics.csv; directories below a run directory and
    hidden directories are not searched. The order is each path's sorted walk.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise FileNotFoundError(f"no such directory: {path}")
        found.extend(_walk(path))
    return list(dict.fromkeys(found))


def _walk(path: Path) -> list[Path]:
    if is_run_dir(path):
        return [path]
    children = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    return [run for child in children for run in _walk(child)]


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` holds one of a run's files (summary.json, config.json, metrics.csv)."""
    return any((path / name).is_file() for name in RUN_FILES)


def format_value(value: Any) -> str:
    """A compact text form of a measured value: numbers to 4 significant digits, dicts as ``k = v``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{key} = {format_value(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    if value is None:
        return "—"
    return str(value)


def format_seconds(seconds: Any) -> str:
    """A duration for a reader: "12.3 s", "4.5 min", "2.1 h" ("?" when unknown)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return "?"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def shorten(text: str, width: int = 110) -> str:
    """``text`` on one line, cut at a word boundary to at most ``width`` characters with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    cut = text[: max(width, 2) - 1]
    if text[len(cut)] != " " and " " in cut:  # whole words only ("non-plastic" stays whole)
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def short_statement(statement: str, width: int = 120) -> str:
    """A claim's statement for a summary table: without parenthetical remarks, its first sentence, at most
    ``width`` characters (the full statement stays in the per-experiment sections)."""
    text = " ".join(str(statement).split())
    bare = re.sub(r"\s*\([^()]*\)", "", text).strip() or text
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", bare, maxsplit=1)[0]
    return shorten(first, width)


def _read_json(path: Path) -> tuple[dict[str, Any], str | None]:
    """A run's JSON file as a dict ({} when absent), and what is wrong with it (None when nothing is)."""
    if not path.exists():
        return {}, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return {}, f"{path.name} is not UTF-8 text"
    except ValueError as error:
        return {}, f"{path.name} is not valid JSON (truncated or damaged: {error})"
    except OSError as error:
        return {}, f"{path.name} cannot be read ({error.strerror or error})"
    if not isinstance(data, dict):
        return {}, f"{path.name} holds a {type(data).__name__}, not an object"
    return data, None


# The types of the fields the reports read; any other type marks the file corrupt.
_TEXT = (str, type(None))
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "experiment": _TEXT, "paper": _TEXT, "budget": _TEXT, "device": _TEXT, "finished_at": _TEXT,
    "neuroplastic_version": _TEXT, "git_commit": _TEXT, "seed": (int, type(None)),
    "git_dirty": (bool, type(None)), "finished": (bool,), "runtime_seconds": (int, float, type(None)),
    "claims": (list,), "metrics": (dict,), "config": (dict,), "overrides": (dict,),
}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "an object", type(None): "null"}


def _field_problems(name: str, data: Mapping[str, Any]) -> list[str]:
    """What is wrong with the fields of a run's JSON file ``name``: each field of the wrong type, named."""
    problems = []
    for key, kinds in _FIELD_TYPES.items():
        value = data.get(key)
        if key not in data or (isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)):
            continue
        expected = " or ".join(dict.fromkeys(_TYPE_NAMES[kind] for kind in kinds))
        problems.append(f"{name}: field {key!r} is {json.dumps(value)[:40]}, expected {expected}")
    claims = data.get("claims")
    if isinstance(claims, list) and not all(isinstance(claim, dict) for claim in claims):
        problems.append(f"{name}: field 'claims' holds entries that are not objects")
    return problems


def _number(text: str) -> Any:
    """A metrics.csv cell as an int or float when it is one, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def last_logged(path: Path) -> dict[str, Any]:
    """The last non-empty value of each column of metrics.csv (phase and step included), numbers parsed.

    Raises:
        ValueError: the file is not UTF-8 text or not CSV (a missing or unreadable file gives {}).
    """
    last: dict[str, Any] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                last.update({key: value for key, value in row.items() if key and value not in (None, "")})
    except OSError:
        pass
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not UTF-8 text") from None
    except csv.Error as error:
        raise ValueError(f"{path.name} is not valid CSV ({error})") from None
    return {key: value if key == "phase" else _number(value) for key, value in last.items()}


@dataclass
class RunRecord:
    """One run directory as the reports see it (read with :meth:`load`)."""

    path: Path
    experiment: str
    paper: str = ""
    budget: str | None = None
    seed: int | None = None
    device: str | None = None
    finished: bool = False
    finished_at: str | None = None
    runtime_seconds: float | None = None
    claims: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    last_logged: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    neuroplastic_version: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    plots: list[Path] = field(default_factory=list)
    has_checkpoint: bool = False
    problems: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """Read a run directory: summary.json (finished runs), config.json, metrics.csv, the PNGs."""
        path = Path(path)
        problems: list[str] = []
        files = {}
        for name in ("summary.json", "config.json"):
            data, problem = _read_json(path / name)
            wrong = [problem] if problem else _field_problems(name, data)
            problems += wrong
            files[name] = {} if wrong else data  # a corrupt file is not read at all
        summary, written = files["summary.json"], files["config.json"]
        finished = bool(summary.get("finished"))
        logged: dict[str, Any] = {}
        if not finished:
            try:
                logged = last_logged(path / "metrics.csv")
            except ValueError as error:
                problems.append(str(error))

        def pick(key: str) -> Any:  # summary.json first, then config.json
            return summary.get(key, written.get(key))

        pngs = sorted(path.glob("*.png"))
        config = written.get("config")
        overrides = written.get("overrides")
        dirty = pick("git_dirty")
        return cls(
            path=path,
            experiment=str(pick("experiment") or path.name),
            paper=str(pick("paper") or ""),
            budget=None if pick("budget") is None else str(pick("budget")),
            seed=pick("seed") if isinstance(pick("seed"), int) else None,
            device=None if pick("device") is None else str(pick("device")),
            finished=finished,
            finished_at=summary.get("finished_at"),
            runtime_seconds=summary.get("runtime_seconds"),
            claims=[c for c in summary.get("claims", []) if isinstance(c, dict)] if finished else [],
            metrics=dict(summary.get("metrics") or {}) if finished else {},
            last_logged=logged,
            config=dict(config) if isinstance(config, Mapping) else {},
            overrides=dict(overrides) if isinstance(overrides, Mapping) else {},
            neuroplastic_version=None if pick("neuroplastic_version") is None else str(pick("neuroplastic_version")),
            git_commit=None if pick("git_commit") is None else str(pick("git_commit")),
            git_dirty=dirty if isinstance(dirty, bool) else None,
            plots=[p for p in pngs if p.name != "metrics.png"] + [p for p in pngs if p.name == "metrics.png"],
            has_checkpoint=(path / "checkpoint.pt").exists(),
            problems=problems,
        )

    @property
    def corrupt(self) -> bool:
        """Whether a file of the run could not be read or holds fields of the wrong type (see ``problems``)."""
        return bool(self.problems)

    @property
    def status(self) -> str:
        """"corrupt", "unfinished" or "finished"."""
        return "corrupt" if self.corrupt else "finished" if self.finished else "unfinished"

    @property
    def held(self) -> int:
        """How many of the run's claims held."""
        return sum(bool(claim.get("passed")) for claim in self.claims)

    @property
    def label(self) -> str:
        """"quick, seed 0": the run among other runs of its experiment."""
        return f"{self.budget or '?'}, seed {'?' if self.seed is None else self.seed}"

    def provenance(self) -> str:
        """"neuroplastic 0.1.0, commit 1a2b3c4d5e6f (uncommitted changes)", or "" when neither is known."""
        parts = []
        if self.neuroplastic_version:
            parts.append(f"neuroplastic {self.neuroplastic_version}")
        if self.git_commit:
            dirty = " (uncommitted changes)" if self.git_dirty else ""
            parts.append(f"commit {self.git_commit[:12]}{dirty}")
        return ", ".join(parts)

    def sort_key(self) -> tuple[Any, ...]:
        """Budgets quick before full, then seeds, then directories."""
        return (BUDGET_ORDER.get(self.budget or "", 2), self.budget or "", self.seed if self.seed is not None
                else -1, str(self.path))

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (paths as strings)."""
        claims = [{"paper": claim.get("paper", self.paper), "statement": claim.get("statement", ""),
                   "short_statement": short_statement(claim.get("statement", "")),
                   "passed": bool(claim.get("passed")), "measured": claim.get("measured")} for claim in self.claims]
        return {
            "experiment": self.experiment, "paper": self.paper, "budget": self.budget, "seed": self.seed,
            "device": self.device, "finished": self.finished, "status": self.status, "problems": self.problems,
            "finished_at": self.finished_at,
            "runtime_seconds": self.runtime_seconds, "directory": str(self.path),
            "neuroplastic_version": self.neuroplastic_version, "git_commit": self.git_commit,
            "git_dirty": self.git_dirty, "claims_held": self.held, "claims": claims, "metrics": self.metrics,
            "last_logged": self.last_logged, "config": self.config, "overrides": self.overrides,
            "plots": [p.name for p in self.plots],
        }


def load_runs(paths: str | Path | Iterable[str | Path]) -> list[RunRecord]:
    """:class:`RunRecord` of every run directory in ``paths`` (see :func:`find_run_dirs`)."""
    return [RunRecord.load(path) for path in find_run_dirs(paths)]


def common_provenance(runs: Iterable[RunRecord]) -> str:
    """The runs' shared :meth:`RunRecord.provenance`, or "" when they differ or none is known."""
    found = {run.provenance() for run in runs}
    return found.pop() if len(found) == 1 else ""


def by_experiment(runs: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """The runs grouped by experiment (in order of first appearance), each group sorted by budget and seed."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.experiment, []).append(run)
    return {name: sorted(group, key=RunRecord.sort_key) for name, group in groups.items()}
