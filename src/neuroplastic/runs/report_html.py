"""The HTML report: one self-contained page (inline CSS, PNGs as data URIs) of runs, claims and plots."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from .records import RunRecord, common_provenance, format_seconds, format_value

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


def _badge(kind: str) -> str:
    label = {"pass": "PASS", "fail": "FAIL", "wait": "UNFINISHED", "corrupt": "CORRUPT"}[kind]
    return f'<span class="badge {"fail" if kind == "corrupt" else kind}">{label}</span>'


def _problems(run: RunRecord) -> str:
    """The files of a corrupt run and what is wrong with each ("" for a sound run)."""
    if not run.problems:
        return ""
    items = "".join(f"<li>{escape(problem)}</li>" for problem in run.problems)
    where = escape(str(run.path))
    return f'<p class="meta">Corrupt run: what is wrong with its files (in {where}):</p><ul>{items}</ul>'


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


def _claims_table(runs: Sequence[tuple[str, RunRecord]]) -> str:
    rows = []
    for anchor, run in runs:
        link = f'<a href="#{anchor}">{escape(run.experiment)}</a>'
        where = f"<td>{escape(run.budget or '?')}</td><td>{'?' if run.seed is None else run.seed}</td>"
        if not run.finished:
            note, badge = ("corrupt: " + "; ".join(run.problems), "corrupt") if run.corrupt else \
                ("run not finished", "wait")
            rows.append(f'<tr><td>{link}</td>{where}<td>{escape(run.paper)}</td>'
                        f'<td class="meta">{escape(note)}</td><td></td><td>{_badge(badge)}</td></tr>')
            continue
        if not run.claims:
            rows.append(f'<tr><td>{link}</td>{where}<td>{escape(run.paper)}</td><td class="meta">no claims</td>'
                        "<td></td><td></td></tr>")
        for claim in run.claims:
            verdict = _badge("pass" if claim.get("passed") else "fail")
            rows.append(
                f"<tr><td>{link}</td>{where}<td>{escape(str(claim.get('paper', run.paper)))}</td>"
                f"<td>{escape(str(claim.get('statement', '')))}</td>"
                f'<td class="num">{escape(format_value(claim.get("measured")))}</td><td>{verdict}</td></tr>'
            )
    head = ("<tr><th>Experiment</th><th>Budget</th><th>Seed</th><th>Paper</th><th>Claim</th><th>Measured</th>"
            "<th>Verdict</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _run_section(anchor: str, run: RunRecord) -> str:
    meta = [f"paper: {run.paper or '?'}", f"budget: {run.budget or '?'}",
            f"seed: {'?' if run.seed is None else run.seed}", f"device: {run.device or '?'}"]
    if run.finished:
        meta.append(f"runtime: {format_seconds(run.runtime_seconds)}")
    if run.provenance():
        meta.append(run.provenance())
    if run.finished:
        kind = "pass" if run.held == len(run.claims) else "fail"
        status = f'<span class="badge {kind}">{run.held}/{len(run.claims)} claims held</span>'
    else:
        status = _badge("corrupt" if run.corrupt else "wait")
    if run.finished and run.corrupt:
        status += " " + _badge("corrupt")
    parts = [
        f'<section id="{escape(anchor)}"><h2>{escape(run.experiment)} {status}</h2>',
        '<p class="meta">' + "".join(f"<span>{escape(item)}</span>" for item in meta) + "</p>",
        f'<p class="meta">directory: {escape(str(run.path))}</p>',
    ]
    if run.corrupt:
        parts.append(_problems(run))
    if run.overrides:
        parts.append(f'<p class="meta">overrides: {escape(format_value(run.overrides))}</p>')
    if run.finished:
        parts.append("<h3>Final metrics</h3>" + _kv_table(run.metrics))
    else:
        note = ("This run has no readable summary.json" if run.corrupt else
                "This run has no summary.json: it was interrupted or is still running")
        if run.has_checkpoint:
            note += " (a checkpoint exists; continue it with --resume)"
        parts.append(f'<p class="meta">{escape(note)}.</p>')
        parts.append("<h3>Last logged metrics</h3>" + _kv_table(run.last_logged))
    if run.config:
        parts.append(f"<h3>Config</h3><details open><summary>{len(run.config)} settings</summary>"
                     f"{_kv_table(run.config)}</details>")
    if run.plots:
        parts.append("<h3>Plots</h3>" + "".join(_image(p) for p in run.plots))
    parts.append("</section>")
    return "\n".join(parts)


def render_html(runs: Sequence[RunRecord], generated: str) -> str:
    """The page: every run's claims and verdicts, then one section per run (paper, budget, seed, runtime,
    provenance, final or last logged metrics, config, plots)."""
    anchored = []
    for index, run in enumerate(runs):
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in run.path.name)
        anchored.append((f"run-{index}-{slug}", run))
    claims = sum(len(run.claims) for run in runs)
    held = sum(run.held for run in runs)
    unfinished = sum(not run.finished and not run.corrupt for run in runs)
    corrupt = sum(run.corrupt for run in runs)
    overview = f"{len(runs)} run{'s' if len(runs) != 1 else ''}; {held} of {claims} claims held"
    if unfinished:
        overview += f"; {unfinished} unfinished"
    if corrupt:
        overview += f"; {corrupt} corrupt"
    provenance = common_provenance(runs)
    if provenance:
        overview += f" · {provenance}"
    body = [
        "<h1>neuroplastic: reproduced claims</h1>",
        f'<p class="sub">{escape(overview)} · generated {escape(generated)}</p>',
        "<section><h2>Claims</h2>" + (_claims_table(anchored) if runs else "<p>No run directories found.</p>")
        + "</section>",
        *(_run_section(anchor, run) for anchor, run in anchored),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>neuroplastic report</title><style>{_CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )
