"""One self-contained HTML page for a set of run directories: claims vs measured, metrics, configs, plots."""

from __future__ import annotations

import base64
import csv
import json
import math
import time
from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any

from ._io import atomic_write

_RUN_FILES = ("summary.json", "config.json", "metrics.csv")

_CSS = """
:root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f7f8fa; --pass: #067647; --pass-bg: #dcfae6;
        --fail: #b42318; --fail-bg: #fee4e2; --wait: #93370d; --wait-bg: #fef0c7; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); line-height: 1.45;
       font: 15px/1.45 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 0 0 6px; }
h3 { font-size: 14px; margin: 20px 0 8px; text-transform: uppercase; letter-spacing: .04em;
     color: var(--muted); }
.sub { color: var(--muted); margin: 0 0 22px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 20px 22px;
          margin: 18px 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); background: #fafbfc; }
td.num { font-variant-numeric: tabular-nums; font-size: 13px;
         font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table.kv { width: auto; min-width: 340px; }
table.kv td:first-child { color: var(--muted); padding-right: 28px; }
.badge { display: inline-block; min-width: 58px; text-align: center; padding: 2px 8px; border-radius: 999px;
         font-weight: 700; font-size: 12px; letter-spacing: .03em; }
.pass { color: var(--pass); background: var(--pass-bg); }
.fail { color: var(--fail); background: var(--fail-bg); }
.wait { color: var(--wait); background: var(--wait-bg); }
.meta { color: var(--muted); margin: 0 0 4px; }
.meta span + span::before { content: " · "; }
figure { margin: 8px 0 0; }
figure img { max-width: 100%; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
a { color: #175cd3; text-decoration: none; }
a:hover { text-decoration: underline; }
details summary { cursor: pointer; color: var(--muted); }
"""


def find_run_dirs(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The run directories in ``paths``: each path is a run directory or a parent of run directories."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise FileNotFoundError(f"no such directory: {path}")
        if _is_run_dir(path):
            found.append(path)
        else:
            found.extend(child for child in sorted(path.iterdir()) if child.is_dir() and _is_run_dir(child))
    return list(dict.fromkeys(found))


def _is_run_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in _RUN_FILES)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _last_metrics(path: Path) -> dict[str, str]:
    """The last non-empty value of each column of metrics.csv (phase and step included)."""
    last: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                last.update({key: value for key, value in row.items() if key and value not in (None, "")})
    except OSError:
        pass
    return last


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


def _format_seconds(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _badge(kind: str) -> str:
    label = {"pass": "PASS", "fail": "FAIL", "wait": "UNFINISHED"}[kind]
    return f'<span class="badge {kind}">{label}</span>'


def _kv_table(items: Mapping[str, Any]) -> str:
    if not items:
        return '<p class="meta">none</p>'
    rows = "".join(
        f'<tr><td>{escape(str(key))}</td><td class="num">{escape(format_value(value))}</td></tr>'
        for key, value in items.items()
    )
    return f'<table class="kv">{rows}</table>'


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{escape(path.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(path.name)}</figcaption></figure>")


class _Run:
    """What the report needs from one run directory."""

    def __init__(self, path: Path, anchor: str) -> None:
        self.path = path
        self.anchor = anchor
        self.summary = _read_json(path / "summary.json")
        self.config = _read_json(path / "config.json") or {}
        self.finished = bool(self.summary and self.summary.get("finished"))
        source = self.summary or self.config
        self.name = str(source.get("experiment") or path.name)
        self.paper = str(source.get("paper") or "")
        self.claims = [c for c in (self.summary or {}).get("claims", []) if isinstance(c, dict)]

    def plots(self) -> list[Path]:
        pngs = sorted(self.path.glob("*.png"))
        return [p for p in pngs if p.name != "metrics.png"] + [p for p in pngs if p.name == "metrics.png"]


def _claims_table(runs: list[_Run]) -> str:
    rows = []
    for run in runs:
        link = f'<a href="#{run.anchor}">{escape(run.name)}</a>'
        if not run.finished:
            rows.append(f'<tr><td>{link}</td><td>{escape(run.paper)}</td>'
                        f'<td class="meta">run not finished</td><td></td><td>{_badge("wait")}</td></tr>')
            continue
        if not run.claims:
            rows.append(f'<tr><td>{link}</td><td>{escape(run.paper)}</td><td class="meta">no claims</td>'
                        "<td></td><td></td></tr>")
        for claim in run.claims:
            verdict = _badge("pass" if claim.get("passed") else "fail")
            rows.append(
                f"<tr><td>{link}</td><td>{escape(str(claim.get('paper', run.paper)))}</td>"
                f"<td>{escape(str(claim.get('statement', '')))}</td>"
                f'<td class="num">{escape(format_value(claim.get("measured")))}</td><td>{verdict}</td></tr>'
            )
    head = "<tr><th>Experiment</th><th>Paper</th><th>Claim</th><th>Measured</th><th>Verdict</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _run_section(run: _Run) -> str:
    source = run.summary or run.config
    meta = [
        f"paper: {run.paper or '?'}",
        f"budget: {source.get('budget', '?')}",
        f"seed: {source.get('seed', '?')}",
        f"device: {source.get('device', '?')}",
    ]
    if run.finished:
        meta.append(f"runtime: {_format_seconds(run.summary.get('runtime_seconds'))}")
    if run.finished:
        held = sum(bool(claim.get("passed")) for claim in run.claims)
        kind = "pass" if held == len(run.claims) else "fail"
        status = f'<span class="badge {kind}">{held}/{len(run.claims)} claims held</span>'
    else:
        status = _badge("wait")
    parts = [
        f'<section id="{escape(run.anchor)}"><h2>{escape(run.name)} {status}</h2>',
        '<p class="meta">' + "".join(f"<span>{escape(item)}</span>" for item in meta) + "</p>",
        f'<p class="meta">directory: {escape(str(run.path))}</p>',
    ]
    if run.finished:
        parts.append("<h3>Final metrics</h3>" + _kv_table(run.summary.get("metrics") or {}))
    else:
        last = _last_metrics(run.path / "metrics.csv")
        note = "This run has no summary.json: it was interrupted or is still running"
        if (run.path / "checkpoint.pt").exists():
            note += " (a checkpoint exists; continue it with --resume)"
        parts.append(f'<p class="meta">{escape(note)}.</p>')
        parts.append("<h3>Last logged metrics</h3>" + _kv_table(last))
    config = run.config.get("config")
    if isinstance(config, Mapping):
        parts.append(f"<h3>Config</h3><details open><summary>{len(config)} settings</summary>"
                     f"{_kv_table(config)}</details>")
    plots = run.plots()
    if plots:
        parts.append("<h3>Plots</h3>" + "".join(_image(p) for p in plots))
    parts.append("</section>")
    return "\n".join(parts)


def write_report(
    run_dirs_or_parent: str | Path | Iterable[str | Path], output_path: str | Path
) -> Path:
    """Write one self-contained HTML page (inline CSS, PNGs as data URIs) about the given runs.

    ``run_dirs_or_parent`` is a run directory, a directory of run directories (such as ``runs/``), or a list
    of either. The page opens with every run's claims and verdicts, then one section per run: paper,
    budget, seed, runtime, final metrics, config and plots. Unfinished runs show their last logged metrics.
    """
    paths = find_run_dirs(run_dirs_or_parent)
    runs: list[_Run] = []
    for index, path in enumerate(paths):
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in path.name)
        runs.append(_Run(path, f"run-{index}-{slug}"))
    claims = [claim for run in runs for claim in run.claims]
    held = sum(bool(claim.get("passed")) for claim in claims)
    unfinished = sum(not run.finished for run in runs)
    overview = f"{len(runs)} run{'s' if len(runs) != 1 else ''}; {held} of {len(claims)} claims held"
    if unfinished:
        overview += f"; {unfinished} unfinished"
    generated = time.strftime("%Y-%m-%d %H:%M")
    body = [
        "<h1>neuroplastic: reproduced claims</h1>",
        f'<p class="sub">{escape(overview)} · generated {escape(generated)}</p>',
        "<section><h2>Claims</h2>" + (_claims_table(runs) if runs else "<p>No run directories found.</p>")
        + "</section>",
        *(_run_section(run) for run in runs),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>neuroplastic report</title><style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )
    output = Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(output, lambda f: f.write(page.encode("utf-8")))
