"""A check shared by the experiment tests: a bad ``--set`` value is refused before a run starts.

Importable as ``experiments.refusal`` because pytest puts ``tests`` on ``sys.path`` (``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neuroplastic.runs import Experiment, apply_overrides, run_experiment


def assert_refused_before_start(experiment: Experiment, out: Path, overrides: dict[str, Any], key: str,
                                value: str) -> None:
    """``key=value`` is refused by the config's own check and by ``run_experiment`` (with ``overrides`` for the
    rest of the config) with ``Config.<key> must be ...``, and the refused run wrote nothing under ``out``."""
    with pytest.raises(ValueError, match=f"Config.{key} must be "):
        apply_overrides(experiment.config("quick"), {key: value})
    with pytest.raises(ValueError, match=f"Config.{key} must be "):
        run_experiment(experiment, out=out, seed=0, progress=False, overrides={**overrides, key: value})
    assert not (out / experiment.name).exists()
