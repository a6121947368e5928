"""README.md: every code block runs as written, every command parses, and the experiment table is complete."""

from __future__ import annotations

import re
import shlex
import sys
import types
from pathlib import Path

import pytest

from neuroplastic.cli import build_parser
from neuroplastic.experiments import registry
from neuroplastic.runs.threads import torch_threads

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def code_blocks(text: str, language: str) -> list[str]:
    """The contents of the fenced code blocks of ``language`` in a Markdown text, in order."""
    return [body for lang, body in FENCE.findall(text) if lang == language]


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


PYTHON_BLOCKS = code_blocks(readme_text(), "python")


def run_block(source: str) -> dict:
    """Execute a Python code block as a module of its own (dataclasses need one), in the working directory.

    One intra-op thread: the snippets' models are small, and on a loaded machine several threads are many
    times slower (the snippets' results do not depend on it).
    """
    module = types.ModuleType("readme_block")
    sys.modules[module.__name__] = module
    try:
        with torch_threads(1):
            exec(compile(source, str(README), "exec"), module.__dict__)  # noqa: S102 - the README's own code
    finally:
        del sys.modules[module.__name__]
    return module.__dict__


def test_readme_has_the_expected_code_blocks():
    # plastic layer, structural plasticity, evolution, adding an experiment
    assert len(PYTHON_BLOCKS) == 4
    assert any("PlasticRNN" in block for block in PYTHON_BLOCKS)
    assert any("GraNet" in block for block in PYTHON_BLOCKS)
    assert any("GeneticAlgorithm" in block and "SafeMutation" in block for block in PYTHON_BLOCKS)
    assert any("EXPERIMENT = Experiment(" in block for block in PYTHON_BLOCKS)


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs_as_written(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a block that writes files (runs/) writes them here
    namespace = run_block(PYTHON_BLOCKS[index])
    if "EXPERIMENT" in namespace:
        # "Adding an experiment": registered for the block only, run through the runner, claim held
        summary = namespace["summary"]
        assert summary["experiment"] == "my-result" and summary["finished"]
        assert summary["claims"][0]["passed"], summary["claims"]
        assert summary["metrics"]["final_loss"] < 0.01
        assert (tmp_path / "runs" / "my-result" / "quick-seed0" / "summary.json").exists()
        assert (tmp_path / "runs" / "my-result" / "quick-seed0" / "checkpoint.pt").exists()
        assert "my-result" not in registry()


def test_the_example_experiment_resumes_exactly(tmp_path, monkeypatch):
    """The README's example follows the resume rules it states: an interrupted run resumes to the same result."""
    from neuroplastic.experiments import registered
    from neuroplastic.runs import RunInterrupted, run_experiment

    monkeypatch.chdir(tmp_path)
    block = next(block for block in PYTHON_BLOCKS if "EXPERIMENT = Experiment(" in block)
    definitions = block.split("with registered(EXPERIMENT)")[0]  # the module, without the try-out
    experiment = run_block(definitions)["EXPERIMENT"]
    with torch_threads(1), registered(experiment):
        whole = run_experiment(experiment, out=tmp_path / "whole", progress=False)
        with pytest.raises(RunInterrupted):
            run_experiment(experiment, out=tmp_path / "cut", progress=False, stop_after_steps=70)
        resumed = run_experiment(experiment, out=tmp_path / "cut", progress=False, resume=True)
    assert resumed["metrics"] == whole["metrics"]


def bash_commands() -> list[str]:
    """Every command line of the README's bash blocks, without comments."""
    commands = []
    for block in code_blocks(readme_text(), "bash"):
        for line in block.splitlines():
            command = line.split("#", 1)[0].strip()
            if command:
                commands.append(command)
    return commands


def test_every_bash_command_is_a_make_target_or_a_cli_command():
    commands = bash_commands()
    assert commands
    for command in commands:
        program = shlex.split(command)[0]
        assert program in ("make", "neuroplastic", ".venv/bin/neuroplastic"), command


@pytest.mark.parametrize("command", [c for c in bash_commands() if "neuroplastic" in shlex.split(c)[0]])
def test_cli_commands_in_the_readme_parse(command):
    args = build_parser().parse_args(shlex.split(command)[1:])  # SystemExit on a usage error
    assert callable(args.handler)


@pytest.mark.parametrize("command", [c for c in bash_commands() if c.startswith("make ")])
def test_make_commands_in_the_readme_are_makefile_targets(command):
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M))
    for target in shlex.split(command)[1:]:
        assert target in targets, f"make {target}: no such target in the Makefile"


def test_readme_names_every_make_target_it_describes():
    text = readme_text()
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M))
    for target in re.findall(r"`make ([\w-]+)`", text):
        assert target in targets, f"`make {target}` in the README is not a Makefile target"


def test_experiment_table_lists_every_experiment_once_with_its_results_page():
    text = readme_text()
    rows = re.findall(r"^\| \[`([\w-]+)`\]\(docs/results/([\w-]+)\.md\) \|", text, re.M)
    names = [name for name, _ in rows]
    assert names == list(registry()), "the README's table must list the registered experiments, in order"
    assert all(name == page for name, page in rows)


def test_readme_stays_short():
    lines = readme_text().splitlines()
    assert len(lines) <= 240, "the README is an overview: details go to docs/"
    assert max(map(len, lines)) <= 200, "long table cells belong on the results pages under docs/results/"
