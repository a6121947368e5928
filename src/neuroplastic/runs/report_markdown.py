"""The Markdown report: a claims table for the README and one section per experiment for its results page."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .records import (
    RunRecord,
    by_experiment,
    common_provenance,
    format_seconds,
    format_value,
    short_statement,
    shorten,
)

_SPECIAL = re.compile(r"([\\`*\[\]<>|])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_text(text: Any) -> str:
    """Text for a Markdown table cell: one line, with Markdown and HTML characters escaped (``_`` only where
    it could start or end emphasis, so ``snake_case`` stays readable)."""
    return _SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(str(text).split()))


def md_code(text: Any) -> str:
    """Text as inline code in a table cell (pipes escaped, backticks replaced)."""
    text = " ".join(str(text).split()).replace("`", "'").replace("|", "\\|")
    return f"`{text}`" if text else ""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell if cell else " " for cell in row) + " |" for row in rows]
    return lines


def _verdict(passed: Any) -> str:
    return "held" if passed else "not held"


def claims_table(runs: Sequence[RunRecord]) -> list[str]:
    """The README table: one row per claim of each run (experiment, budget, seed and runtime on its first)."""
    rows: list[list[str]] = []
    for group in by_experiment(runs).values():
        for run in group:
            first = [md_text(run.experiment), md_text(run.budget or "?"), "?" if run.seed is None else str(run.seed)]
            runtime = format_seconds(run.runtime_seconds) if run.finished else ""
            if not run.finished:
                rows.append([*first, md_text("corrupt: " + "; ".join(run.problems)), "corrupt", "", ""]
                            if run.corrupt else [*first, "run not finished", "unfinished", "", ""])
            elif not run.claims:
                rows.append([*first, "no claims", "", "", runtime])
            for index, claim in enumerate(run.claims):
                lead = first if index == 0 else ["", "", ""]
                rows.append([*lead, md_text(short_statement(claim.get("statement", ""))),
                             _verdict(claim.get("passed")), md_code(shorten(format_value(claim.get("measured")), 90)),
                             runtime if index == 0 else ""])
    return _table(["Experiment", "Budget", "Seed", "Claim", "Verdict", "Measured", "Runtime"], rows)


def _relative(path: Path, base: Path | None) -> Path:
    return Path(os.path.relpath(path, base)) if base is not None else path


def _link(path: Path, base: Path | None) -> str:
    return f"[{md_text(path.name)}]({_relative(path, base).as_posix().replace(' ', '%20')})"


def _kv_rows(items: Mapping[str, Any]) -> list[list[str]]:
    return [[md_code(key), md_text(format_value(value))] for key, value in items.items()]


def _details(summary: str, lines: list[str]) -> list[str]:
    return ["<details><summary>" + summary + "</summary>", "", *lines, "", "</details>", ""]


def _labels(runs: Sequence[RunRecord]) -> list[str]:
    """"quick, seed 0" for each run; runs with the same budget and seed get their directory added."""
    labels = [run.label for run in runs]
    for label in set(labels):
        same = [i for i, other in enumerate(labels) if other == label]
        if len(same) > 1:
            common = os.path.commonpath([runs[i].path for i in same])
            for i in same:
                labels[i] = f"{label} ({Path(os.path.relpath(runs[i].path, common)).as_posix()})"
    return [md_text(label) for label in labels]


def experiment_section(name: str, runs: Sequence[RunRecord], base: Path | None = None, level: int = 2) -> list[str]:
    """The section of one experiment: its paper, its claims against every run (held / not held), then for
    each run what was measured, the final metrics, the config and links to the figures."""
    head = "#" * level
    lines = [f"{head} {md_text(name)}", ""]
    paper = next((run.paper for run in runs if run.paper), "")
    if paper:
        lines += [f"Paper: {md_text(paper)}", ""]
    statements = list(dict.fromkeys(str(claim.get("statement", "")) for run in runs for claim in run.claims))
    labels = _labels(runs)
    if statements:
        rows = []
        for number, statement in enumerate(statements, 1):
            cells = []
            for run in runs:
                claim = next((c for c in run.claims if str(c.get("statement", "")) == statement), None)
                cells.append(("corrupt" if run.corrupt else "unfinished") if not run.finished
                             else "—" if claim is None
                             else _verdict(claim.get("passed")))
            rows.append([f"{number}. {md_text(statement)}", *cells])
        lines += [*_table(["Claim", *labels], rows), ""]
    for run, label in zip(runs, labels, strict=True):
        lines += [f"{head}# {label.replace(',', ' budget,', 1)}", ""]
        facts = [f"runtime {format_seconds(run.runtime_seconds)}" if run.finished
                 else "corrupt" if run.corrupt else "not finished",
                 f"device {run.device or '?'}"]
        if run.provenance():
            facts.append(run.provenance())
        facts.append(f"directory {md_code(_relative(run.path, base).as_posix())}")
        lines += ["; ".join(md_text(f) if not f.startswith("directory") else f for f in facts) + ".", ""]
        if run.overrides:
            lines += ["Overrides: " + ", ".join(md_code(f"{k}={v}") for k, v in run.overrides.items()) + ".", ""]
        if run.corrupt:
            lines += ["Corrupt run: " + "; ".join(md_text(problem) for problem in run.problems) + ".", ""]
        if not run.finished:
            note = "No readable summary.json" if run.corrupt else \
                "No summary.json: the run was interrupted or is still running"
            note += " (a checkpoint exists; continue it with --resume)." if run.has_checkpoint else "."
            lines += [md_text(note), ""]
            lines += _details(f"Last logged metrics ({len(run.last_logged)})",
                              _table(["Metric", "Value"], _kv_rows(run.last_logged)))
        else:
            if run.claims:
                rows = [[str(statements.index(str(c.get("statement", ""))) + 1), _verdict(c.get("passed")),
                         md_code(format_value(c.get("measured")))] for c in run.claims]
                lines += [*_table(["Claim", "Verdict", "Measured"], rows), ""]
            lines += _details(f"Final metrics ({len(run.metrics)})",
                              _table(["Metric", "Value"], _kv_rows(run.metrics)))
        if run.config:
            lines += _details(f"Config ({len(run.config)} settings)",
                              _table(["Setting", "Value"], _kv_rows(run.config)))
        if run.plots:
            lines += ["Figures: " + ", ".join(_link(p, base) for p in run.plots) + ".", ""]
    return lines


def render_markdown(runs: Sequence[RunRecord], generated: str, base: Path | None = None) -> str:
    """The Markdown report: a heading with the totals and provenance, the claims table, then one section per
    experiment. Figure links are relative to ``base`` (the directory the report is written to)."""
    claims = sum(len(run.claims) for run in runs)
    held = sum(run.held for run in runs)
    groups = by_experiment(runs)
    overview = (f"{len(runs)} run{'s' if len(runs) != 1 else ''} of {len(groups)} "
                f"experiment{'s' if len(groups) != 1 else ''}; {held} of {claims} claims held")
    unfinished = sum(not run.finished and not run.corrupt for run in runs)
    if unfinished:
        overview += f"; {unfinished} unfinished"
    corrupt = sum(run.corrupt for run in runs)
    if corrupt:
        overview += f"; {corrupt} corrupt"
    provenance = common_provenance(runs)
    overview += f"; {provenance}" if provenance else ""
    lines = ["# neuroplastic: reproduced claims", "", f"{md_text(overview)}. Generated {generated}.", ""]
    if not runs:
        return "\n".join([*lines, "No run directories found.", ""])
    lines += [*claims_table(runs), ""]
    for name, group in groups.items():
        lines += experiment_section(name, group, base)
    return "\n".join(lines).rstrip("\n") + "\n"
