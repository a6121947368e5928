"""Reports of run directories: the HTML page (claims, run sections, embedded plots), Markdown and JSON."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from neuroplastic.cli import main
from neuroplastic.runs import RunInterrupted, run_experiment, write_report
from neuroplastic.runs.records import find_run_dirs, short_statement, shorten
from neuroplastic.runs.report import render_report


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
    html = write_report([runs / "toy" / "quick-seed0", runs / "unfinished"], tmp_path / "report.html").read_text()
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


@pytest.fixture(scope="module")
def results(runs, tmp_path_factory):
    """The toy runs, and a full-budget seed-1 run of toy with provenance, in runs/full-s1/toy (nested)."""
    out = tmp_path_factory.mktemp("results")
    shutil.copytree(runs, out, dirs_exist_ok=True)
    full = out / "full-s1" / "toy"
    full.mkdir(parents=True)
    (full / "loss.png").write_bytes((runs / "toy" / "quick-seed0" / "metrics.png").read_bytes())
    summary = json.loads((runs / "toy" / "quick-seed0" / "summary.json").read_text())
    summary.update(budget="full", seed=1, runtime_seconds=4000.0, neuroplastic_version="9.9.9",
                   git_commit="0123456789abcdef0123", git_dirty=True)
    summary["claims"][1]["passed"] = True
    summary["claims"][0]["measured"] = "a | b <c>"
    (full / "summary.json").write_text(json.dumps(summary))
    (full / "config.json").write_text(json.dumps({"experiment": "toy", "config": {"steps": 60},
                                                  "overrides": {"steps": "60"}}))
    return out


def test_run_directories_are_found_below_the_given_directory(results):
    assert [p.relative_to(results).as_posix() for p in find_run_dirs(results)] == [
        "full-s1/toy", "toy/quick-seed0", "unfinished/toy/quick-seed0"]


def test_markdown_has_the_claims_table_and_a_section_per_experiment(results, tmp_path):
    output = tmp_path / "docs" / "results.md"
    text = write_report(results, output, format="markdown").read_text()
    assert text.startswith("# neuroplastic: reproduced claims\n")
    assert "3 runs of 1 experiment; 3 of 8 claims held; 1 unfinished." in text
    table = text.split("| Experiment | Budget | Seed | Claim | Verdict | Measured | Runtime |\n|---|")[1]
    table = table.split("\n\n")[0]
    rows = [row for row in table.splitlines()[1:]]
    assert len(rows) == 9  # four claims of each finished run, one row for the unfinished run
    quick = next(i for i, row in enumerate(rows) if row.startswith("| toy | quick | 0 |"))
    assert rows[quick].endswith(" s |") and "| held |" in rows[quick]
    assert "| training fits the data |" in rows[quick]  # the statement without its parenthesis
    assert rows[quick + 1].startswith("|   |   |   | the loss becomes negative | not held |")
    assert "| toy | full | 1 |" in table and "66.7 min" in table
    assert "`a \\| b <c>`" in table  # a pipe in a measured value does not break the table
    assert "| run not finished | unfinished |" in table
    section = text.split("\n## toy\n")[1]
    assert "Paper: Toy et al. 2024" in section
    assert ("| Claim | quick, seed 0 (toy/quick-seed0) | quick, seed 0 (unfinished/toy/quick-seed0) | full, seed 1 |"
            in section)
    assert ("| 1. training fits the data (final evaluation loss below 1) | held | unfinished | held |"
            in section)
    assert "| 2. the loss becomes negative | not held | unfinished | held |" in section
    assert section.index("### quick budget, seed 0 (toy/quick-seed0)") < section.index("### full budget, seed 1")
    assert "neuroplastic 9.9.9, commit 0123456789ab (uncommitted changes)" in section
    assert "Overrides: `steps=60`." in section
    assert "[loss.png](../../" in section and "full-s1/toy/loss.png)" in section  # relative to the output
    assert "continue it with --resume" in section
    assert "<details><summary>Final metrics (" in section and "| `finetune_loss` |" in section


def test_json_has_the_same_data(results, tmp_path):
    data = json.loads(write_report(results, tmp_path / "r.json", format="json").read_text())
    assert data["totals"] == {"runs": 3, "experiments": 1, "unfinished": 1, "corrupt": 0, "claims": 8,
                              "held": 3}
    assert data["provenance"] is None  # the runs differ
    full = next(run for run in data["runs"] if run["budget"] == "full")
    assert (full["seed"], full["runtime_seconds"], full["claims_held"]) == (1, 4000.0, 2)
    assert (full["neuroplastic_version"], full["git_commit"], full["git_dirty"]) == ("9.9.9",
                                                                                     "0123456789abcdef0123", True)
    claim = full["claims"][0]
    assert claim["statement"] == "training fits the data (final evaluation loss below 1)"
    assert claim["short_statement"] == "training fits the data" and claim["passed"] is True
    assert full["plots"] == ["loss.png"] and full["config"] == {"steps": 60}
    quick = next(run for run in data["runs"] if run["budget"] == "quick")
    assert quick["plots"] == ["loss_curve.png", "metrics.png"] and isinstance(quick["metrics"]["bias"], float)
    unfinished = next(run for run in data["runs"] if not run["finished"])
    assert unfinished["claims"] == [] and unfinished["last_logged"]["step"] == 4
    assert isinstance(unfinished["last_logged"]["loss"], float) and unfinished["last_logged"]["phase"] == "pretrain"


def test_html_shows_version_commit_budget_and_seed(results, tmp_path):
    html = write_report(results, tmp_path / "r.html").read_text()
    assert "neuroplastic 9.9.9, commit 0123456789ab (uncommitted changes)" in html
    assert "<td>full</td><td>1</td>" in html
    assert "overrides: steps = 60" in html


def test_a_single_provenance_is_shown_once_in_the_heading(runs, tmp_path):
    text = render_report(runs / "toy" / "quick-seed0", "markdown")
    config = json.loads((runs / "toy" / "quick-seed0" / "config.json").read_text())
    provenance = f"neuroplastic {config['neuroplastic_version']}"
    if config.get("git_commit"):  # the run platform records the commit when the package is a git checkout
        dirty = " (uncommitted changes)" if config["git_dirty"] else ""
        provenance += f", commit {config['git_commit'][:12]}{dirty}"
    assert f"1 run of 1 experiment; 1 of 4 claims held; {provenance}." in text
    with pytest.raises(ValueError, match="format must be one of 'html', 'markdown', 'json'"):
        render_report(runs, "pdf")


def test_shortened_statements():
    assert short_statement("A wins (p < 0.05), B loses. Details follow.") == "A wins, B loses."
    assert short_statement("x " * 100, width=20) == "x x x x x x x x x x…"
    assert shorten("a non-plastic network", 14) == "a non-plastic…" and shorten("a non-plastic network", 10) == "a…"
    assert short_statement("(all in parentheses)") == "(all in parentheses)"


def test_the_report_command_writes_each_format(results, tmp_path, capsys):
    assert main(["report", str(results), "--format", "markdown"]) == 0
    assert (results / "report.md").read_text().startswith("# neuroplastic")
    assert main(["report", str(results), "--format", "json", "--output", str(tmp_path / "x.json")]) == 0
    assert json.loads((tmp_path / "x.json").read_text())["totals"]["runs"] == 3
    capsys.readouterr()
    assert main(["report", str(results / "toy"), "--format", "json", "--output", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["runs"] == 1
    assert main(["report", str(results), "--format", "pdf"]) == 2


@pytest.fixture
def damaged(runs, tmp_path):
    """A sound finished run and three damaged copies of it: truncated summary.json, a summary.json with fields
    of the wrong types, and an unfinished run whose metrics.csv is not UTF-8."""
    out = tmp_path / "damaged"
    shutil.copytree(runs / "toy" / "quick-seed0", out / "sound")
    text = (runs / "toy" / "quick-seed0" / "summary.json").read_text()
    shutil.copytree(runs / "toy" / "quick-seed0", out / "truncated")
    (out / "truncated" / "summary.json").write_text(text[: len(text) // 2])
    shutil.copytree(runs / "toy" / "quick-seed0", out / "wrong-types")
    summary = json.loads(text)
    summary.update(metrics=[1, 2], claims="all held", runtime_seconds="long", seed="zero")
    (out / "wrong-types" / "summary.json").write_text(json.dumps(summary))
    shutil.copytree(runs / "unfinished" / "toy" / "quick-seed0", out / "latin1")
    (out / "latin1" / "metrics.csv").write_bytes(b"phase,step,loss\npretrain,0,0.5\ncaf\xe9,1,\xff\n")
    return out


def test_corrupt_runs_are_marked_corrupt_and_the_others_still_render(damaged, tmp_path):
    data = json.loads(render_report(damaged, "json"))
    by_dir = {run["directory"].rsplit("/", 1)[-1]: run for run in data["runs"]}
    assert set(by_dir) == {"sound", "truncated", "wrong-types", "latin1"}
    assert by_dir["sound"]["status"] == "finished" and by_dir["sound"]["problems"] == []
    assert by_dir["sound"]["claims_held"] == data["totals"]["held"] > 0
    assert data["totals"]["corrupt"] == 3 and data["totals"]["unfinished"] == 0
    assert by_dir["truncated"]["status"] == "corrupt"
    assert by_dir["truncated"]["problems"][0].startswith("summary.json is not valid JSON")
    wrong = " ".join(by_dir["wrong-types"]["problems"])
    for field in ("metrics", "claims", "runtime_seconds", "seed"):
        assert f"summary.json: field {field!r}" in wrong
    assert by_dir["latin1"]["status"] == "corrupt"
    assert by_dir["latin1"]["problems"] == ["metrics.csv is not UTF-8 text"]

    html = render_report(damaged, "html")
    assert html.count("CORRUPT") >= 6  # the claims table and the section of each corrupt run
    assert "summary.json is not valid JSON" in html and "metrics.csv is not UTF-8 text" in html
    assert "interrupted or is still running" not in html and "UNFINISHED" not in html
    assert "claims held" in html and "PASS" in html  # the sound run is still there

    markdown = render_report(damaged, "markdown")
    assert "; 3 corrupt" in markdown and "unfinished" not in markdown
    assert "summary.json is not valid JSON" in markdown and "field 'metrics' is \\[1, 2\\]" in markdown
    assert "| held |" in markdown or "held" in markdown.split("## toy")[0]
    assert "interrupted or is still running" not in markdown


def test_the_report_command_renders_corrupt_runs(damaged, tmp_path, capsys):
    for fmt in ("html", "markdown", "json"):
        output = tmp_path / f"report.{fmt}"
        assert main(["report", str(damaged), "--format", fmt, "--output", str(output)]) == 0
        assert "corrupt" in output.read_text().lower()
