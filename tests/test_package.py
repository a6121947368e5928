"""The package: lazy subpackages, seeding, argument checks, and its license and citation files."""

import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import neuroplastic
from neuroplastic._checks import check_choice, check_int, check_positive, check_tensor


def test_seed_everything_reproduces_every_generator():
    def draw():
        gen = neuroplastic.seed_everything(7)
        return random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item()

    assert draw() == draw()
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        neuroplastic.seed_everything(-1)


def test_checks_name_the_argument_and_accepted_values():
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match="mode must be one of 'a', 'b'; got 'c'"):
        check_choice("mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match="rate must be > 0, got 0"):
        check_positive("rate", 0)
    assert check_positive("rate", 0, allow_zero=True) == 0
    with pytest.raises(TypeError, match="rate must be a number"):
        check_positive("rate", "fast")
    assert check_int("steps", 3) == 3 and check_int("gap", 0, minimum=0) == 0
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        check_int("steps", 0)
    for bad in (2.0, True, "3"):  # a float, a bool (an int subclass) and a string are not ints
        with pytest.raises(TypeError, match="steps must be an int >= 1, got"):
            check_int("steps", bad)
    x = torch.zeros(2, 3)
    assert check_tensor("x", x, ("B", 3)) is x
    with pytest.raises(ValueError, match=r"x must have shape \[B, 4\], got \[2, 3\]"):
        check_tensor("x", x, ("B", 4))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        check_tensor("x", [1, 2], ("B",))


def test_inputs_of_another_dtype_or_device_than_the_layer_get_a_clear_error():
    from neuroplastic.neurons import RecurrentLIF, SpikeLinear
    from neuroplastic.plasticity import PlasticLinear
    from neuroplastic.plasticity.spiking import PlasticLIF, PlasticRecurrentLIF

    doubles = torch.rand(2, 5, 4, dtype=torch.float64)
    cases = [(SpikeLinear(4, 3), doubles, "x has dtype torch.float64 but the weights are torch.float32"),
             (PlasticLinear(4, 3), doubles[:, 0], "x has dtype torch.float64 but the layer's parameters are "
                                                  "torch.float32"),
             (PlasticLIF(4, 3, rule="hebbian", alpha="neuron"), doubles, "inputs has dtype torch.float64"),
             (PlasticRecurrentLIF(4, 3), doubles, "inputs has dtype torch.float64"),
             (RecurrentLIF(4, 3), doubles, "x has dtype torch.float64")]
    for module, inputs, message in cases:
        with pytest.raises(ValueError, match=message):
            module(inputs)
        module(inputs.float())  # the same inputs in the layer's dtype run
    with pytest.raises(ValueError, match="inputs is on meta but the layer's parameters are on cpu"):
        PlasticLIF(4, 3)(torch.empty(2, 5, 4, device="meta"))
    with pytest.raises(ValueError, match="inputs has dtype torch.float64"):  # a device autocast does not know
        PlasticLIF(4, 3).to("meta")(torch.empty(2, 5, 4, device="meta", dtype=torch.float64))
    # under autocast the dtypes may differ (autocast casts per operation); devices may not
    weight = torch.zeros(3, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        check_tensor("x", torch.zeros(2, 3, dtype=torch.bfloat16), ("B", 3), like=weight)
    with pytest.raises(ValueError, match="x has dtype torch.bfloat16"):
        check_tensor("x", torch.zeros(2, 3, dtype=torch.bfloat16), ("B", 3), like=weight)


ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(neuroplastic.__file__).parent


def test_import_is_cheap():
    """``import neuroplastic`` loads no subpackage, not even torch or NumPy; a subpackage loads when used."""
    code = (
        "import sys, neuroplastic\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('torch', 'numpy', 'neuroplastic.')))\n"
        "assert not loaded, loaded\n"
        "assert neuroplastic.evolution is sys.modules['neuroplastic.evolution']\n"  # loaded on first use
    )
    env = {"PYTHONPATH": str(SOURCE.parent), "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_subpackage_is_an_attribute_of_the_package():
    """Loaded on first use: ``import neuroplastic; neuroplastic.plasticity.PlasticRNN`` works."""
    directories = [p.name for p in SOURCE.iterdir() if (p / "__init__.py").exists() and not p.name.startswith("_")]
    missing = sorted(set(directories) - set(neuroplastic._SUBMODULES))
    assert not missing, f"add {missing} to neuroplastic._SUBMODULES (src/neuroplastic/__init__.py)"
    for name in neuroplastic._SUBMODULES:
        module = getattr(neuroplastic, name)
        assert module is sys.modules[f"neuroplastic.{name}"]
        assert name in dir(neuroplastic) and name in neuroplastic.__all__
    with pytest.raises(AttributeError, match="module 'neuroplastic' has no attribute 'nothing'"):
        neuroplastic.nothing  # noqa: B018


def test_version_license_and_citation_agree():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^version = "(.*)"$', pyproject, re.M).group(1) == neuroplastic.__version__
    assert re.search(r'^license = "(.*)"$', pyproject, re.M).group(1) == "MIT"
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License\n\nCopyright (c) 2026 the neuroplastic authors\n")
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in license_text
    yaml = pytest.importorskip("yaml")  # installed with the docs (dev extra)
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert {"cff-version", "message", "title", "authors"} <= set(citation)
    assert citation["version"] == neuroplastic.__version__ and citation["license"] == "MIT"
    assert all(isinstance(author, dict) and author.get("name") for author in citation["authors"])


def test_no_file_refers_to_a_design_document_outside_the_repository():
    outside = re.compile(r"(\.\./)+shared/|\bshared/" + "DESIGN")
    files = [ROOT / "README.md", ROOT / "Makefile", ROOT / "pyproject.toml", ROOT / "mkdocs.yml"]
    for folder in ("src", "tests", "docs", "benchmarks"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".c", ".sh", ".toml", ".yml")]
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if p.is_file() and outside.search(p.read_text(encoding="utf-8"))]
    assert not offenders, f"these name a path outside the repository: {offenders}"
