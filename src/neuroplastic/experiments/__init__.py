"""The registry of reproduced results: one module per experiment, each defining ``EXPERIMENT``.

Modules listed in ``EXPERIMENT_MODULES`` are imported on first use, in order. Tests and notebooks can add
experiments with :func:`register` (or the :func:`registered` context manager) without touching this list.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from ..runs.experiment import Experiment

# Module names under neuroplastic.experiments, each defining a module-level ``EXPERIMENT: Experiment``.
EXPERIMENT_MODULES: tuple[str, ...] = (
    "pattern_completion", "cue_reward", "grid_maze", "plastic_lm",
    "sparse_training", "gradient_rewiring", "dormant_neurons", "growing_rnn", "backdoor_pruning",
    "snn_plasticity", "snn_lnp", "snn_reset", "snn_rewiring",
    "safe_mutations", "evolved_plasticity", "dppn_autoencoder", "network_quine",
    "continual_clnp", "continual_hlop", "reservoir_self_organisation", "spectral_rnn", "hybrid_simulator",
    "quantized_nets", "gradient_activation", "st_rsbp",
)

_registered: dict[str, Experiment] = {}


def _from_modules() -> dict[str, Experiment]:
    experiments: dict[str, Experiment] = {}
    for module_name in EXPERIMENT_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        experiment = getattr(module, "EXPERIMENT", None)
        if not isinstance(experiment, Experiment):
            raise TypeError(f"{module.__name__} must define EXPERIMENT as an Experiment")
        if experiment.name in experiments:
            raise ValueError(f"two experiment modules define the name {experiment.name!r}")
        experiments[experiment.name] = experiment
    return experiments


def registry() -> dict[str, Experiment]:
    """All experiments by name: those of ``EXPERIMENT_MODULES`` in order, then the registered ones."""
    experiments = _from_modules()
    for name, experiment in _registered.items():
        if name in experiments:
            raise ValueError(f"registered experiment {name!r} clashes with a module of the same name")
        experiments[name] = experiment
    return experiments


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ValueError listing the known names if there is none."""
    experiments = registry()
    if name not in experiments:
        known = ", ".join(experiments) or "none registered"
        raise ValueError(f"unknown experiment {name!r}; known experiments: {known}")
    return experiments[name]


def register(experiment: Experiment) -> Experiment:
    """Add an experiment to the registry (for tests and notebooks); its name must be new."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be an Experiment, got {type(experiment).__name__}")
    if experiment.name in _registered or experiment.name in _from_modules():
        raise ValueError(f"an experiment named {experiment.name!r} is already registered")
    _registered[experiment.name] = experiment
    return experiment


def registered_names() -> tuple[str, ...]:
    """The names of the experiments added with :func:`register` (not defined by a module of the list).

    A worker process started by ``neuroplastic run --jobs N`` finds the others by name; these ones have to
    be sent to it (pickled).
    """
    return tuple(_registered)


def unregister(name: str) -> None:
    """Remove an experiment added with :func:`register`."""
    if name not in _registered:
        raise ValueError(f"no experiment named {name!r} was added with register()")
    del _registered[name]


@contextmanager
def registered(experiment: Experiment) -> Iterator[Experiment]:
    """Register ``experiment`` for the duration of a ``with`` block."""
    register(experiment)
    try:
        yield experiment
    finally:
        unregister(experiment.name)


__all__ = ["EXPERIMENT_MODULES", "get_experiment", "register", "registered", "registered_names", "registry",
           "unregister"]
