"""Reports of run directories: an HTML page, Markdown for the README and results pages, or JSON.

All three show the same data: each run's experiment, paper, budget, seed, runtime, claims (statement,
held or not, measured value), metrics, config, plots, and the package version and git commit the run
recorded (``neuroplastic_version``, ``git_commit``, ``git_dirty`` in its summary.json or config.json).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._io import atomic_write, to_jsonable
from .records import (
    RunRecord,
    by_experiment,
    common_provenance,
    find_run_dirs,
    format_seconds,
    format_value,
    load_runs,
)
from .report_html import render_html
from .report_markdown import render_markdown

FORMATS = ("html", "markdown", "json")
SUFFIXES = {"html": ".html", "markdown": ".md", "json": ".json"}

__all__ = ["FORMATS", "SUFFIXES", "RunRecord", "find_run_dirs", "format_seconds", "format_value", "load_runs",
           "render_report", "report_data", "write_report"]


def report_data(runs: Iterable[RunRecord], generated: str | None = None) -> dict[str, Any]:
    """The JSON report: totals, the shared provenance, and every run's :meth:`RunRecord.to_dict`."""
    runs = list(runs)
    return to_jsonable({
        "generated": generated or time.strftime("%Y-%m-%d %H:%M"),
        "provenance": common_provenance(runs) or None,
        "totals": {"runs": len(runs), "experiments": len(by_experiment(runs)),
                   "unfinished": sum(not run.finished and not run.corrupt for run in runs),
                   "corrupt": sum(run.corrupt for run in runs),
                   "claims": sum(len(run.claims) for run in runs), "held": sum(run.held for run in runs)},
        "runs": [run.to_dict() for run in runs],
    })


def render_report(
    run_dirs_or_parent: str | Path | Iterable[str | Path], format: str = "html", *, base: str | Path | None = None
) -> str:
    """The report of the runs as text in ``format`` ("html", "markdown" or "json").

    ``base``: the directory the Markdown report will live in, for relative links to the runs' figures
    (default: links as the run directories were given).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, FORMATS))}; got {format!r}")
    runs = load_runs(run_dirs_or_parent)
    generated = time.strftime("%Y-%m-%d %H:%M")
    if format == "html":
        return render_html(runs, generated)
    if format == "markdown":
        return render_markdown(runs, generated, None if base is None else Path(base))
    return json.dumps(report_data(runs, generated), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_report(
    run_dirs_or_parent: str | Path | Iterable[str | Path], output_path: str | Path, *, format: str = "html"
) -> Path:
    """Write the report of the given runs to ``output_path`` and return the path.

    ``run_dirs_or_parent`` is a run directory, a directory with run directories below it (such as ``runs/``),
    or a list of either. ``format``: "html" (one self-contained page: inline CSS, PNGs as data URIs; the
    claims and verdicts of every run, then one section per run), "markdown" (the claims table, then one
    section per experiment with its runs; figures linked relative to the output file) or "json" (the same
    data, machine-readable). Unfinished runs show their last logged metrics.
    """
    output = Path(output_path)
    text = render_report(run_dirs_or_parent, format, base=output.parent)
    output.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(output, lambda f: f.write(text.encode("utf-8")))
