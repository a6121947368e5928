"""The package's shape: imports point down the layers, no import cycles, no experiment imports another.

Reads every module under ``src/neuroplastic`` with ``ast`` (imports inside ``if TYPE_CHECKING:`` do not count;
imports inside functions do).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "neuroplastic"

# What each part of the package may import from the rest of it (besides itself and the private top-level
# modules such as ``neuroplastic._checks``). Layers point down: neurons < plasticity < structure.
ALLOWED = {
    "neurons": set(),
    "data": set(),
    "evaluation": set(),
    "tasks": {"neurons", "data"},
    "dynamics": {"neurons", "tasks"},
    "plasticity": {"neurons"},
    "structure": {"neurons", "plasticity", "dynamics", "evaluation"},
    "models": {"neurons", "plasticity", "structure", "dynamics", "tasks", "data", "evaluation"},
    "evolution": {"neurons", "plasticity", "structure", "dynamics", "models", "evaluation", "tasks", "data"},
    "continual": {"neurons", "plasticity", "structure", "dynamics", "models", "evaluation", "tasks", "data"},
    "runs": {"evaluation"},
    # quantised layers, quantisers and packed kernels stand alone (they compose with structure's sparsity
    # manager through its mask buffer name, without importing it)
    "quantization": set(),
    # optimizer add-ons (gradient activation functions): hooks on any torch optimizer, nothing else
    "optim": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).split(".") if path.name == "__init__.py" else _module_name(path).split(".")[:-1]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for child in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "neuroplastic" or name.startswith("neuroplastic.")}


MODULES = {_module_name(path): path for path in SRC.rglob("*.py")}
GRAPH = {name: {target for target in _imports(path) if target in MODULES and target != name}
         for name, path in MODULES.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_layers_point_down():
    wrong = []
    for module, targets in GRAPH.items():
        part = _part(module)
        if part in ("cli", "__main__", "__init__") or part.startswith("_"):
            continue
        for target in targets:
            other = _part(target)
            if other == part or other.startswith("_") or target == "neuroplastic":
                continue
            if part == "experiments":
                if other == "cli":
                    wrong.append((module, target))
                continue
            if other not in ALLOWED.get(part, set()):
                wrong.append((module, target))
    assert not wrong, "imports against the layer order:\n" + "\n".join(f"{a} -> {b}" for a, b in sorted(wrong))


def _is_private_experiments_module(module: str) -> bool:
    parts = module.split(".")
    return len(parts) > 2 and parts[1] == "experiments" and parts[2].startswith("_")


def test_no_experiment_imports_another():
    """No experiment module imports another. A private module ``neuroplastic.experiments._*`` (such as
    ``_grad_r``, the claims and figures shared by two experiments of one paper) is not an experiment: it
    registers none, experiments may import it, and it may not import an experiment either."""
    wrong = [(module, target) for module, targets in GRAPH.items() if module.startswith("neuroplastic.experiments.")
             for target in targets
             if target.startswith("neuroplastic.experiments.") and target != "neuroplastic.experiments"
             and not _is_private_experiments_module(target)]
    assert not wrong, wrong


def test_no_import_cycles():
    # Tarjan's strongly connected components; a package importing its own submodules for re-export
    # (``pkg/__init__`` -> ``pkg.mod``) is the normal direction, so edges into a package's ``__init__`` from
    # its own submodules are what would close a cycle and are counted.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert not cycles, cycles


@pytest.mark.parametrize("limit, pattern", [(600, "**/*.py"), (450, "experiments/*.py")])
def test_file_sizes(limit, pattern):
    too_long = {str(p.relative_to(SRC)): n for p in SRC.glob(pattern)
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > limit}
    assert not too_long, f"over {limit} lines: {too_long}"
