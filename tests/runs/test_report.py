"""write_report: one self-contained HTML page with the claim table, run sections and embedded plots."""

from __future__ import annotations

import json
import re

import pytest

from neuroplastic.runs import RunInterrupted, run_experiment, write_report


@pytest.fixture(scope="module")
def runs(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    run_experiment(toy, out=out, progress=False)
    with pytest.raises(RunInterrupted):
        run_experiment(toy, out=out / "unfinished", progress=False, stop_after_steps=5)
    return out


def test_report_has_the_claim_table_and_embedded_plots(runs, tmp_path):
    path = write_report(runs, tmp_path / "report.html")
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    claims = html.split("<h2>Claims</h2>")[1].split("</section>")[0]
    assert "training fits the data (final evaluation loss below 1)" in claims
    assert claims.count(">PASS<") == 1 and claims.count(">FAIL<") == 3
    assert "check failed: RuntimeError: broken check" in claims
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]+">', html)) == 2
    assert "http://" not in html and "https://" not in html and "<link" not in html and "<script" not in html
    assert "1 of 4 claims held" in html


def test_unfinished_runs_are_listed_with_their_last_metrics(runs, tmp_path):
    html = write_report([runs / "toy", runs / "unfinished"], tmp_path / "report.html").read_text()
    assert "UNFINISHED" in html and "run not finished" in html
    section = html.split("Last logged metrics")[1]
    assert re.search(r"<td>step</td><td class=\"num\">4</td>", section)
    assert "--resume" in html


def test_report_escapes_text(tmp_path):
    run_dir = tmp_path / "odd"
    run_dir.mkdir()
    summary = {"experiment": "<b>odd</b>", "paper": "A & B", "budget": "quick", "seed": 0, "finished": True,
               "runtime_seconds": 1.0, "metrics": {"x<y": 1.0},
               "claims": [{"paper": "A & B", "statement": "<script>alert(1)</script>", "passed": True,
                           "measured": "<i>"}]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    html = write_report(tmp_path, tmp_path / "out" / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;odd&lt;/b&gt;" in html and "A &amp; B" in html and "x&lt;y" in html


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        write_report(tmp_path / "nope", tmp_path / "report.html")
