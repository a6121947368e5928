"""The run platform: run directories with exact resume, the runner (one process or several), validated
configs, grid searches over them and reports."""

from __future__ import annotations

from .config import apply_overrides, config_error, config_to_dict, param, validate_config
from .experiment import BUDGETS, Claim, ClaimResult, Experiment
from .parallel import Job, JobResult, run_jobs
from .report import write_report
from .rundir import CheckpointMismatch, CheckpointUnreadable, RunDirectory, RunInterrupted
from .rundirs import ConfigRejected, RunDirectoryError, RunExists, RunLock, RunLocked, run_path
from .runner import check_device, provenance, resolve_threads, run_experiment
from .tuning import grid_search

__all__ = [
    "BUDGETS",
    "CheckpointMismatch",
    "CheckpointUnreadable",
    "Claim",
    "ClaimResult",
    "ConfigRejected",
    "Experiment",
    "Job",
    "JobResult",
    "RunDirectory",
    "RunDirectoryError",
    "RunExists",
    "RunInterrupted",
    "RunLock",
    "RunLocked",
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
    "run_path",
    "validate_config",
    "write_report",
]
