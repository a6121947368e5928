"""docs/: the site builds, every relative link of the README and the docs resolves, pages cover every package
and experiment, and the code blocks of the docs run as written."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import neuroplastic
from neuroplastic.experiments import registry
from neuroplastic.runs.threads import torch_threads

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# pages of other authors: the results of each experiment, written from its runs
RESULTS = DOCS / "results"


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def relative_links(path: Path) -> list[str]:
    """The link targets of a Markdown file that point into the repository (no URLs, no code)."""
    text = INLINE_CODE.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target) and target[0] != "#"]


def code_blocks(path: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(path.read_text(encoding="utf-8")) if lang == language]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files_in_the_repository(path):
    missing = []
    for target in relative_links(path):
        resolved = (path.parent / target.split("#", 1)[0]).resolve()
        if not resolved.is_relative_to(ROOT):
            missing.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            missing.append(target)
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"


def test_readme_links_every_experiments_results_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    experiments_page = (DOCS / "experiments.md").read_text(encoding="utf-8")
    for name in registry():
        assert f"(docs/results/{name}.md)" in readme, name
        assert f"(results/{name}.md)" in experiments_page, name


@pytest.mark.parametrize("name", list(registry()))
def test_every_experiment_has_a_results_page(name):
    assert (RESULTS / f"{name}.md").is_file(), f"docs/results/{name}.md is missing"


def subpackages() -> list[str]:
    """The public subpackages of neuroplastic (directories with an __init__.py, no leading underscore)."""
    source = Path(neuroplastic.__file__).parent
    return sorted(p.name for p in source.iterdir() if (p / "__init__.py").exists() and not p.name.startswith("_"))


def test_every_subpackage_has_an_api_reference_page():
    for name in [*subpackages(), "evaluation"]:
        page = DOCS / "reference" / f"{name}.md"
        assert page.is_file(), f"add {page.relative_to(ROOT)} containing '::: neuroplastic.{name}'"
        assert f"::: neuroplastic.{name}" in page.read_text(encoding="utf-8")


def test_adding_an_experiment_is_the_same_code_in_the_readme_and_the_docs():
    readme_blocks = code_blocks(ROOT / "README.md", "python")
    example = next(block for block in readme_blocks if "EXPERIMENT = Experiment(" in block)
    assert example in code_blocks(DOCS / "experiments.md", "python")


def docs_python_blocks() -> list[tuple[str, str]]:
    """Python blocks of the docs that the README does not already have (those run in test_readme)."""
    readme_blocks = set(code_blocks(ROOT / "README.md", "python"))
    blocks = []
    for path in sorted(DOCS.glob("*.md")):
        for index, block in enumerate(code_blocks(path, "python")):
            if block not in readme_blocks:
                blocks.append((f"{path.name}:{index}", block))
    return blocks


@pytest.mark.parametrize("name,source", docs_python_blocks(), ids=[name for name, _ in docs_python_blocks()])
def test_docs_python_block_runs_as_written(name, source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("docs_block")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with torch_threads(1):  # small models: one thread is fastest, and much faster on a loaded machine
        exec(compile(source, name, "exec"), module.__dict__)  # noqa: S102 - the docs' own code


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs and mkdocstrings are not installed (pip install -e '.[docs]'; the dev extra has them)",
)
def test_the_site_builds_with_an_api_reference(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("index.html", "architecture/index.html", "experiments/index.html", "guide/index.html",
                 "benchmarks/index.html"):
        assert (site / page).is_file(), page
    reference = (site / "reference" / "plasticity" / "index.html").read_text(encoding="utf-8")
    assert 'id="neuroplastic.plasticity.PlasticRNN"' in reference  # generated from the docstrings
    assert "hebbian_update" in reference
    # warnings about this documentation's own pages (broken links or anchors); results pages are others'
    warnings = [line for line in (result.stdout + result.stderr).splitlines()
                if line.startswith("WARNING") and "'results/" not in line.split("contains")[0]]
    assert not warnings, "\n".join(warnings)
