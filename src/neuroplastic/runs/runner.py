"""Run one experiment end to end: config, seed, run directory, the experiment's run, claims, summary."""

from __future__ import annotations

import dataclasses
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

import neuroplastic

from .._checks import check_choice, check_int, check_optional_int
from ._io import to_jsonable
from .config import apply_overrides, config_to_dict
from .experiment import Claim, ClaimResult, Experiment
from .plots import plot_metrics
from .rundir import CHECKPOINT, RunDirectory
from .rundirs import (
    ConfigRejected,
    RunDirectoryError,
    RunLock,
    check_run_path,
    earlier_layout_checkpoint,
    run_path,
)
from .threads import check_at_most_max_threads, torch_threads

DEVICES = ("cpu", "cuda")
# the largest seed: NumPy's generator takes seeds below 2**32, and experiments derive seeds such as
# 1000 * seed + k that must stay within PyTorch's 64-bit seeds
MAX_SEED = 2**32 - 1


def check_device(device: str) -> torch.device:
    """``torch.device(device)`` for "cpu" or "cuda"; ValueError if CUDA is asked for but not available."""
    check_choice("device", device, DEVICES)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available on this machine")
    return torch.device(device)


def _has_field(config: Any, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(config))


def prepare_config(
    experiment: Experiment,
    budget: str = "quick",
    overrides: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> Any:
    """The experiment's config for ``budget`` with ``overrides`` applied (ValueError on a bad key/value).

    ``threads``, if given, also sets the config's own ``threads`` field where it has one (experiments that
    still set their thread count themselves then use it too); it cannot be combined with an override of it.
    """
    check_at_most_max_threads("threads", check_optional_int("threads", threads))
    config = apply_overrides(experiment.config(budget), overrides)
    if threads is not None and _has_field(config, "threads"):
        if "threads" in (overrides or {}):
            raise ValueError("give the thread count once: as threads or as the override threads=..., not both")
        config = dataclasses.replace(config, threads=threads)
    return config


def resolve_threads(experiment: Experiment, config: Any, threads: int | None = None) -> int | None:
    """The number of PyTorch intra-op threads a run uses, or None to leave PyTorch's setting as it is.

    In order: ``threads`` if given; else the config's ``threads`` field if it has one (0 or None there means
    "leave the setting alone"); else ``experiment.threads``.
    """
    check_at_most_max_threads("threads", check_optional_int("threads", threads))
    if threads is not None:
        return threads
    if _has_field(config, "threads"):
        return config.threads or None
    return experiment.threads


def git_revision(directory: str | Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout that tracks ``directory``; ``(None, None)`` if there is none.

    ``commit`` is ``git rev-parse HEAD``; ``dirty`` is True if tracked files differ from it. A directory that
    is not tracked (an installed package inside some other repository), a missing ``git`` or any git
    error gives ``(None, None)``.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        git("ls-files", "--error-unmatch", "--", ".")
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, dirty


def provenance() -> dict[str, Any]:
    """The package version and the git commit of its source checkout (None if it is not one), with a dirty flag."""
    commit, dirty = git_revision(Path(neuroplastic.__file__).resolve().parent)
    return {"neuroplastic_version": neuroplastic.__version__, "git_commit": commit, "git_dirty": dirty}


def evaluate_claim(claim: Claim, metrics: Mapping[str, Any]) -> ClaimResult:
    """Evaluate a claim; a check that raises any exception gives a failed result that says why."""
    try:
        return claim.evaluate(metrics)
    except Exception as error:  # a broken check is a failed claim, never a lost run
        measured = f"check failed: {type(error).__name__}: {error}"
        return ClaimResult(claim.paper, claim.statement, False, measured)


def _plain(value: Any) -> Any:
    """Unwrap one-element tensors and NumPy scalars into Python numbers; leave anything else as it is."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def run_experiment(
    experiment: Experiment,
    *,
    budget: str = "quick",
    seed: int = 0,
    out: str | Path = "runs",
    overrides: Mapping[str, Any] | None = None,
    device: str = "cpu",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    stop_after_steps: int | None = None,
    threads: int | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``experiment`` in ``out/<name>/<budget>-seed<seed>`` and return its summary (also in summary.json).

    Seeds every global generator with ``seed``, writes config.json, calls ``experiment.run(config, run_dir)``
    with the PyTorch thread count of :func:`resolve_threads` (``threads``, else the config's ``threads``
    field, else ``experiment.threads``), checks each claim on the returned metrics, and writes summary.json
    and metrics.png. Both JSON files record the thread count, the package version and the git commit of its
    source checkout (:func:`provenance`). The directory is locked while the run goes on (:class:`RunLock`).
    A finished run in the directory is replaced only with ``overwrite=True``; a new run deletes only the files
    a previous run wrote (its manifest), and only when it starts (the experiment's first write or completed
    step), so that a run that fails on its config leaves the previous one intact. ``resume=True`` continues
    from its checkpoint (or starts from the beginning, with a note on stderr, if there is none).
    ``on_progress(phase, step, total)`` is called as the run's phases advance (see :class:`RunDirectory`).

    Raises:
        ValueError: a bad budget, seed, device or override; a checkpoint that belongs to another config.
        ConfigRejected: a ValueError the experiment raised before its run started (its own config checks, or
            an error in its first step before anything was written).
        RunExists: a finished run in the directory and neither ``overwrite`` nor ``resume``.
        RunLocked: another live process runs in the directory.
        RunDirectoryError: the directory cannot be created or written.
        RunInterrupted: Ctrl-C or ``stop_after_steps``; the checkpoint is saved and ``resume=True`` continues.
    """
    if not isinstance(experiment, Experiment):
        raise TypeError(f"experiment must be an Experiment, got {type(experiment).__name__}")
    config = prepare_config(experiment, budget, overrides, threads)
    thread_count = resolve_threads(experiment, config, threads)
    torch_device = check_device(device)
    check_int("seed", seed, minimum=0, maximum=MAX_SEED)
    path = run_path(out, experiment.name, budget, seed)
    check_run_path(path, resume=resume, overwrite=overwrite)
    with RunLock(path):
        return _run_locked(experiment, path, config, thread_count, torch_device, budget=budget, seed=seed,
                           overrides=overrides, resume=resume, progress=progress,
                           stop_after_steps=stop_after_steps, on_progress=on_progress)


def _run_locked(experiment: Experiment, path: Path, config: Any, thread_count: int | None,
                torch_device: torch.device, *, budget: str, seed: int, overrides: Mapping[str, Any] | None,
                resume: bool, progress: bool, stop_after_steps: int | None,
                on_progress: Callable[[str, int, int], None] | None) -> dict[str, Any]:
    if resume and not (path / CHECKPOINT).exists() and (earlier := earlier_layout_checkpoint(path, budget, seed)):
        raise RunDirectoryError(
            f"cannot resume from {path}: this run's checkpoint is {earlier}, where runs were kept before each "
            f"budget and seed had its own directory; move the files of {earlier.parent} (config.json, "
            f"metrics.csv, checkpoint.pt) into {path} and resume again, or run without --resume to start afresh")
    if resume and not (path / CHECKPOINT).exists():
        print(f"note: no checkpoint in {path}; starting {experiment.name} from the beginning",
              file=sys.stderr)
        resume = False
    run_dir = RunDirectory(
        path,
        seed=seed,
        device=torch_device,
        budget=budget,
        resume=resume,
        progress=progress,
        stop_after_steps=stop_after_steps,
        config=config,
        experiment=experiment.name,
        main_metric=experiment.main_metric,
        on_progress=on_progress,
    )
    with torch_threads(thread_count) if thread_count is not None else nullcontext():
        # what identifies the run, at the top of both config.json and summary.json
        header = {"experiment": experiment.name, "paper": experiment.paper, "budget": budget, "seed": seed,
                  "device": str(torch_device), "threads": torch.get_num_threads(), **provenance()}
        run_dir.write_json_on_start("config", {
            **header,
            "overrides": dict(overrides or {}),
            "config": config_to_dict(config),
            "torch_version": torch.__version__,
            "python_version": platform.python_version(),
        })
        neuroplastic.seed_everything(seed)
        try:
            metrics = experiment.run(config, run_dir)
        except ValueError as error:
            if run_dir.started or isinstance(error, ConfigRejected):
                raise
            raise ConfigRejected(f"the config was rejected before the run started (nothing was written): "
                                 f"{error}") from error
    run_dir.finish()
    run_dir.start()  # an experiment that wrote nothing still replaces the previous run's files
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"{experiment.name}: run() must return a dict of final metrics, got {type(metrics).__name__}"
        )
    metrics = {str(key): _plain(value) for key, value in metrics.items()}
    claims = [evaluate_claim(claim, metrics) for claim in experiment.claims]
    plot_metrics(run_dir.metrics, path / "metrics.png", title=experiment.name, enabled=experiment.auto_plot)
    summary = {
        **header,
        "metrics": to_jsonable(metrics),
        "claims": [to_jsonable(result.to_dict()) for result in claims],
        "runtime_seconds": round(run_dir.elapsed_seconds, 3),
        "finished": True,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    run_dir.write_json("summary", summary)
    return summary
