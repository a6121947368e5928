"""The run platform: run directories with exact resume, the runner, validated configs, grid searches over them
and reports."""

from __future__ import annotations

from .config import apply_overrides, config_to_dict, param, validate_config
from .experiment import BUDGETS, Claim, ClaimResult, Experiment
from .report import write_report
from .rundir import CheckpointMismatch, RunDirectory, RunInterrupted
from .runner import check_device, run_experiment
from .tuning import grid_search

__all__ = [
    "BUDGETS",
    "CheckpointMismatch",
    "Claim",
    "ClaimResult",
    "Experiment",
    "RunDirectory",
    "RunInterrupted",
    "apply_overrides",
    "check_device",
    "config_to_dict",
    "grid_search",
    "param",
    "run_experiment",
    "validate_config",
    "write_report",
]
