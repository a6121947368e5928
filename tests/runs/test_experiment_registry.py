"""The experiment registry: modules listed in EXPERIMENT_MODULES plus experiments registered by tests."""

from __future__ import annotations

import sys
import types

import pytest

import neuroplastic.experiments as experiments


def test_register_get_and_unregister(toy):
    with experiments.registered(toy):
        assert experiments.get_experiment("toy") is toy
        assert "toy" in experiments.registry()
        with pytest.raises(ValueError, match="already registered"):
            experiments.register(toy)
    assert "toy" not in experiments.registry()
    with pytest.raises(ValueError, match="no experiment named 'toy'"):
        experiments.unregister("toy")


def test_unknown_name_lists_the_known_ones(toy):
    with experiments.registered(toy):
        with pytest.raises(ValueError, match="unknown experiment 'tyo'; known experiments: .*toy"):
            experiments.get_experiment("tyo")


def test_register_needs_an_experiment():
    with pytest.raises(TypeError, match="Experiment"):
        experiments.register("toy")


def test_modules_are_imported_in_order(toy, monkeypatch):
    import dataclasses

    for name in ("fake_b", "fake_a"):
        module = types.ModuleType(f"neuroplastic.experiments.{name}")
        module.EXPERIMENT = dataclasses.replace(toy, name=name)
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(experiments, "EXPERIMENT_MODULES", ("fake_b", "fake_a"))
    with experiments.registered(toy):
        assert list(experiments.registry()) == ["fake_b", "fake_a", "toy"]


def test_a_module_without_experiment_is_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "neuroplastic.experiments.fake_empty",
                        types.ModuleType("neuroplastic.experiments.fake_empty"))
    monkeypatch.setattr(experiments, "EXPERIMENT_MODULES", ("fake_empty",))
    with pytest.raises(TypeError, match="must define EXPERIMENT"):
        experiments.registry()
