"""The run platform: run directories with exact resume, the runner (one process or several), validated
configs, grid searches over them and reports."""

from __future__ import annotations

from .config import apply_overrides, config_error, config_to_dict, param, validate_config
from .experiment import BUDGETS, Claim, ClaimResult, Experiment
from .parallel import Job, JobResult, run_jobs
from .report import write_report
from .rundir import CheckpointMismatch, CheckpointUnreadable, RunDirectory, RunInterrupted
from .runner import check_device, provenance, resolve_threads, run_experiment
from .tuning import grid_search

__all__ = [
    "BUDGETS",
    "CheckpointMismatch",
    "CheckpointUnreadable",
    "Claim",
    "ClaimResult",
    "Experiment",
    "Job",
    "JobResult",
    "RunDirectory",
    "RunInterrupted",
    "apply_overrides",
    "check_device",
    "config_error",
    "config_to_dict",
    "grid_search",
    "param",
    "provenance",
    "resolve_threads",
    "run_experiment",
    "run_jobs",
    "validate_config",
    "write_report",
]
