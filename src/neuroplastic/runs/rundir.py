"""A run directory: metrics log, figures, atomic checkpoints, progress bars, Ctrl-C and exact resume.

An experiment's ``run(config, run_dir)`` trains in named phases::

    run_dir.track(model=model, optimizer=opt, generator=gen)
    for step in run_dir.steps(config.steps, phase="plastic"):
        ...
        run_dir.log(step, loss=loss)

Resuming re-executes ``run`` from the start and replays up to the checkpoint. A phase finished before the
checkpoint yields no steps: its tracked objects, the global random generators, ``state`` and ``metrics``
are set to what they were when it ended. The phase that was in progress continues from its last
checkpoint with all of these restored; rows logged during the replay are not written twice. The run ends as
an uninterrupted one with the same seed would if all randomness comes from the global or tracked generators
and what is carried from step to step lives in tracked objects or ``state`` (docs/architecture.md).
"""

from __future__ import annotations

import copy
import csv
import io
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .._checks import check_int, check_optional_int
from ._io import atomic_write, write_json_atomic
from .checkpoint import CheckpointMismatch, CheckpointUnreadable, read_checkpoint
from .config import config_to_dict
from .rundirs import Manifest

FORMAT_VERSION = 1
CHECKPOINT = "checkpoint.pt"
METRICS_CSV = "metrics.csv"
RESUMABLE_KEYS = frozenset({"device", "progress"})  # config keys that may change between a run and its resumption


class RunInterrupted(Exception):
    """A run stopped at a step boundary (Ctrl-C or ``stop_after_steps``) after saving a checkpoint."""

    def __init__(self, path: Path | str, message: str | None = None) -> None:
        self.path = Path(path)
        super().__init__(message or f"run interrupted; checkpoint saved in {self.path}")


def _rng_states() -> dict[str, Any]:
    """The states of Python's, NumPy's and PyTorch's global random generators."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    """Restore the global random generators saved by :func:`_rng_states`."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def _is_trackable(obj: Any) -> bool:
    return isinstance(obj, (torch.Generator, random.Random, np.random.Generator)) or (
        callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))
    )


def _get_state(obj: Any) -> Any:
    """The state of a tracked object: ``state_dict()``, or a generator's state."""
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    if isinstance(obj, random.Random):
        return obj.getstate()
    if isinstance(obj, np.random.Generator):
        return obj.bit_generator.state
    return obj.state_dict()


def _set_state(obj: Any, state: Any) -> None:
    """Restore a tracked object's state saved by :func:`_get_state`."""
    if isinstance(obj, torch.Generator):
        obj.set_state(state)
    elif isinstance(obj, random.Random):
        obj.setstate(state)
    elif isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state
    else:
        obj.load_state_dict(state)


def _scalar(name: str, value: Any) -> int | float:
    """A logged metric as a Python int or float (0-d tensors and NumPy scalars are unwrapped)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"metric {name!r} must be a scalar, got a tensor of shape {list(value.shape)}")
        value = value.item()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    raise TypeError(f"metric {name!r} must be a number or a 0-d tensor, got {type(value).__name__}")


def _format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class RunDirectory:
    """A run's directory and bookkeeping: metrics.csv, figures, JSON files and resumable checkpoints.

    Args:
        path: the directory (created if missing). A new run (``resume=False``) deletes the files a previous
            run wrote there (those its manifest ``.run-files`` lists, and the run's own config.json,
            summary.json, metrics.csv, metrics.png and checkpoint.pt) when it starts, i.e. at its first
            write or completed step, so that a run failing before then (on its config, or in the body of
            its first step) leaves the previous one as it was.
            Any other file is kept. Every file written through the directory is added to the manifest.
        seed: the run's seed, for the experiment to seed its own generators with.
        device: where the experiment should put its tensors ("cpu", "cuda", a ``torch.device``).
        budget: the budget name ("quick" or "full").
        resume: continue from ``path/checkpoint.pt`` (which must exist).
        progress: show a tqdm bar per phase.
        stop_after_steps: after this many steps completed in this process, save a checkpoint and raise
            :class:`RunInterrupted`, as Ctrl-C does (for tests and time-sliced jobs).
        config: the experiment's config dataclass, saved in checkpoints and compared on resume.
        experiment: the experiment's name, saved in checkpoints and compared on resume.
        main_metric: the metric shown in the progress bar when it is logged.
        on_progress: called as ``on_progress(desc, step, total)`` when a phase starts and after each of its
            steps (``desc`` is the phase's description), e.g. to report progress to another process.

    Attributes:
        path, seed, device, budget: as given (``path`` a ``Path``, ``device`` a ``torch.device``).
        state: the experiment's small picklable results and anything it carries from step to step; saved
            in every checkpoint and restored on resume.
        metrics: every logged row, as dicts with "phase", "step" and the metrics.

    While a resumed run replays the part its checkpoint covers, ``state`` and ``metrics`` hold what they
    held at the same point of the original run (see the module docstring).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        seed: int,
        device: str | torch.device = "cpu",
        budget: str = "quick",
        resume: bool = False,
        progress: bool = True,
        stop_after_steps: int | None = None,
        config: Any = None,
        experiment: str | None = None,
        main_metric: str | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        check_optional_int("stop_after_steps", stop_after_steps)
        self.path = Path(path)
        self.seed = seed
        self.device = torch.device(device)
        self.budget = budget
        self.progress = progress
        self.stop_after_steps = stop_after_steps
        self.experiment = experiment
        self.main_metric = main_metric
        self.on_progress = on_progress
        self.config = config
        self._config_dict = config_to_dict(config) if config is not None else None
        self.state: dict[str, Any] = {}
        self.metrics: list[dict[str, Any]] = []
        self._columns: list[str] = ["phase", "step"]
        self._tracked: dict[str, Any] = {}
        # Per phase, in order: total, step, done, and once done its end states: tracked objects, global
        # RNGs, a copy of ``state`` and the number of metric rows.
        self._phases: dict[str, dict[str, Any]] = {}
        self._visited: set[str] = set()
        self._phase_name = "run"
        self._active_phase: str | None = None
        self._bar: Any = None
        self._main_logged = False
        self._steps_this_process = 0
        self._interrupt_requested = False
        self._started = time.perf_counter()
        self._elapsed_before = 0.0
        # While resuming: the phases still to replay, and where the checkpoint was written (phase, RNG
        # states, state, metric rows).
        self._replay: list[str] | None = None
        self._checkpoint_phase: str | None = None
        self._checkpoint_rng: dict[str, Any] | None = None
        self._checkpoint_state: dict[str, Any] = {}
        self._checkpoint_metrics: list[dict[str, Any]] = []

        self._resume, self.started, self._manifest = resume, False, Manifest(self.path)
        self._start_json: dict[str, Any] = {}  # written when the run starts, e.g. the runner's config.json

        self.path.mkdir(parents=True, exist_ok=True)
        if resume:
            self._load_checkpoint()

    # ----------------------------------------------------------------- public API
    @property
    def checkpoint_path(self) -> Path:
        """Where checkpoints are written: ``path / "checkpoint.pt"``."""
        return self.path / CHECKPOINT

    @property
    def elapsed_seconds(self) -> float:
        """Wall time spent in this run, summed over the processes that resumed it."""
        return self._elapsed_before + time.perf_counter() - self._started

    @property
    def resuming(self) -> bool:
        """True while a resumed run is replaying the part that the checkpoint already covers."""
        return self._replay is not None

    def start(self) -> None:
        """Start the run's files, once (every write and the first completed step call it): a new run deletes
        the previous run's files (see ``path``), a resumed one its summary.json; then the manifest and the
        JSON files of :meth:`write_json_on_start` are written. ``started`` says whether it has happened."""
        if not self.started:
            self.started = True
            self._manifest.begin(resume=self._resume)
            for name, obj in self._start_json.items():
                self.write_json(name, obj)

    def write_json_on_start(self, name: str, obj: Any) -> None:
        """Write ``obj`` as ``name.json`` when the run starts (:meth:`start`), not before."""
        self._start_json[name] = obj
        if self.started:
            self.write_json(name, obj)

    def track(self, **objects: Any) -> None:
        """Register the objects the next phase checkpoints and restores, replacing the previous set.

        Accepted: anything with ``state_dict``/``load_state_dict`` (modules, optimizers, LR schedulers,
        stateful rules), ``torch.Generator``, ``random.Random`` and ``numpy.random.Generator``.
        """
        if self._active_phase is not None:
            raise RuntimeError(
                f"track() was called inside phase {self._active_phase!r}; call it before steps()"
            )
        for name, obj in objects.items():
            if not _is_trackable(obj):
                raise TypeError(
                    f"track({name}=...): {type(obj).__name__} has no state_dict/load_state_dict and is not a "
                    "torch.Generator, random.Random or numpy.random.Generator"
                )
        self._tracked = dict(objects)

    def steps(
        self,
        total: int,
        *,
        phase: str = "train",
        checkpoint_every: int | None = None,
        desc: str | None = None,
    ) -> Iterator[int]:
        """Yield the step numbers 0..total-1 of a phase, with a progress bar, checkpoints and Ctrl-C handling.

        A checkpoint is written every ``checkpoint_every`` completed steps (default: about every 5% of
        ``total``) and when the phase ends. Phase names must be unique within a run, and the loop must run
        to its end (to stop early, ``continue`` through the remaining steps).
        On resume, a finished phase yields nothing and restores its end states (tracked objects, global
        random generators, ``state``, ``metrics``); the phase that was in progress restores the same from
        the checkpoint and continues from the checkpointed step.
        """
        check_int("total", total, minimum=0)
        if not isinstance(phase, str) or not phase:
            raise ValueError(f"phase must be a non-empty string, got {phase!r}")
        if check_optional_int("checkpoint_every", checkpoint_every) is None:
            checkpoint_every = max(1, round(total / 20))
        if self._active_phase is not None:
            raise RuntimeError(f"steps(phase={phase!r}) started inside phase {self._active_phase!r}")
        if phase in self._visited:
            raise ValueError(f"phase names must be unique within a run; {phase!r} was already used")
        return self._phase_steps(total, phase, checkpoint_every, desc or phase)

    def log(self, step: int, **metrics: Any) -> None:
        """Record a row (phase, step, metrics) in memory and in metrics.csv.

        Values are ints, floats, bools (stored as 0/1), NumPy scalars or one-element tensors. The row's phase
        is the current phase, or the last one that ran. A new metric name adds a column to metrics.csv.
        """
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"step must be an int, got {type(step).__name__}")
        if not metrics:
            raise ValueError("log() needs at least one metric, e.g. log(step, loss=0.5)")
        if "phase" in metrics:
            raise ValueError("'phase' is a column of metrics.csv and cannot be a metric name")
        row: dict[str, Any] = {"phase": self._phase_name, "step": int(step)}
        for name, value in metrics.items():
            row[name] = _scalar(name, value)
        self.metrics.append(row)
        if self.resuming:
            return  # metrics.csv already holds this row: it was logged before the checkpoint
        self.start()
        new_columns = [name for name in row if name not in self._columns]
        if new_columns:
            self._columns.extend(new_columns)
            self._rewrite_csv()
        else:
            with open(self.path / METRICS_CSV, "a", newline="", encoding="utf-8") as f:
                self._writer(f).writerow(row)
        self._update_postfix(metrics)

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as ``name.png`` (110 dpi) in the run directory and close it."""
        name = name[:-4] if name.endswith(".png") else name
        self._check_name(name)
        if name == "metrics":
            raise ValueError("'metrics' is reserved for the default metrics plot; choose another name")
        self.start()
        self._manifest.record(f"{name}.png")
        target = self.path / f"{name}.png"
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(fig)
        return atomic_write(target, lambda f: f.write(buffer.getvalue()))

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as ``name.json`` atomically; non-finite floats become strings, tensors numbers."""
        name = name[:-5] if name.endswith(".json") else name
        self._check_name(name)
        self.start()
        self._manifest.record(f"{name}.json")
        return write_json_atomic(self.path / f"{name}.json", obj)

    def finish(self) -> None:
        """Check that a resumed run replayed up to its checkpoint; call after the experiment's ``run``."""
        if self._replay is not None:
            raise CheckpointMismatch(
                f"the experiment ended before reaching phase {self._checkpoint_phase!r} of the checkpoint in "
                f"{self.path}; its code or config changed since the checkpoint was written"
            )
        unfinished = [name for name, entry in self._phases.items() if not entry["done"]]
        if unfinished:
            warnings.warn(
                f"phase {unfinished[0]!r} left its steps() loop early, so a resumed run cannot reproduce it",
                stacklevel=2,
            )

    # ----------------------------------------------------------------- phases
    def _phase_steps(self, total: int, phase: str, every: int, desc: str) -> Iterator[int]:
        start = self._enter_phase(phase, total)
        if start is None:
            return
        self._active_phase = phase
        self._main_logged = False
        self._bar = tqdm(total=total, initial=start, desc=desc, disable=not self.progress,
                         dynamic_ncols=True, leave=True)
        previous_handler = self._install_sigint()
        try:
            stop = False
            step = start
            if self.on_progress is not None:
                self.on_progress(desc, step, total)
            while step < total:
                yield step
                self.start()  # the first step completed: the run has started (a no-op afterwards)
                step += 1
                self._steps_this_process += 1
                self._bar.update(1)
                if self.on_progress is not None:
                    self.on_progress(desc, step, total)
                stop = self._interrupt_requested or (
                    self.stop_after_steps is not None and self._steps_this_process >= self.stop_after_steps
                )
                if step < total and (stop or step % every == 0):
                    self._save_checkpoint(phase, step)
                    if stop:
                        raise RunInterrupted(self.path)
            self.start()
            self._finish_phase(phase, total)
            if stop:
                raise RunInterrupted(self.path)
        finally:
            self._bar.close()
            self._bar = None
            self._active_phase = None
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)

    def _enter_phase(self, phase: str, total: int) -> int | None:
        """Start ``phase``: the step to start from, or None for a finished phase restored on resume."""
        unfinished = [name for name, entry in self._phases.items() if not entry["done"] and name != phase]
        if unfinished and self._replay is None:
            raise RuntimeError(
                f"phase {unfinished[0]!r} left its steps() loop early; resumable runs need every loop to run "
                "to its end (skip the remaining steps with `continue` to stop early)"
            )
        self._visited.add(phase)
        self._phase_name = phase
        if self._replay is None:
            self._phases[phase] = {"total": total, "step": 0, "done": False}
            return 0
        expected = self._replay[0] if self._replay else None
        if phase != expected:
            raise CheckpointMismatch(
                f"phase {phase!r} does not match the checkpoint in {self.path}, which expects phase "
                f"{expected!r} next; the experiment's code or config changed since it was written"
            )
        self._replay.pop(0)
        saved = self._phases[phase]
        if saved["total"] != total:
            raise CheckpointMismatch(
                f"phase {phase!r} has {total} steps but the checkpoint in {self.path} has "
                f"{saved['total']}"
            )
        self._restore_objects(phase, saved["objects"])
        if saved["done"]:
            _set_rng_states(saved["rng"])
            self.state = copy.deepcopy(saved["state"])
            self.metrics = self._checkpoint_metrics[: saved["rows"]]
            if phase == self._checkpoint_phase:
                self._replay = None
            return None
        assert self._checkpoint_rng is not None
        _set_rng_states(self._checkpoint_rng)
        self.state = copy.deepcopy(self._checkpoint_state)
        self.metrics = list(self._checkpoint_metrics)
        self._replay = None
        return saved["step"]

    def _finish_phase(self, phase: str, total: int) -> None:
        """Mark ``phase`` done, keep copies of its end states (objects, RNG, state, rows), write a checkpoint."""
        entry = self._phases[phase]
        entry.update(step=total, done=True, objects=copy.deepcopy(self._object_states()), rng=_rng_states(),
                     state=copy.deepcopy(self.state), rows=len(self.metrics))
        self._save_checkpoint(phase, total)

    def _object_states(self) -> dict[str, Any]:
        return {name: _get_state(obj) for name, obj in self._tracked.items()}

    def _restore_objects(self, phase: str, states: dict[str, Any]) -> None:
        if set(states) != set(self._tracked):
            raise CheckpointMismatch(
                f"phase {phase!r} tracks {sorted(self._tracked)} but the checkpoint in {self.path} saved "
                f"{sorted(states)}"
            )
        for name, obj in self._tracked.items():
            # A copy, so that objects trained further never alias the saved end state of a finished phase.
            _set_state(obj, copy.deepcopy(states[name]))

    # ----------------------------------------------------------------- Ctrl-C
    def _install_sigint(self) -> Any:
        """Install the Ctrl-C handler (main thread only); return the previous handler to restore, or None."""
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._on_sigint)
        return previous if previous is not None else signal.SIG_DFL

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupt_requested:
            raise KeyboardInterrupt
        self._interrupt_requested = True
        sys.stderr.write("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to abort now)\n")
        sys.stderr.flush()

    # ----------------------------------------------------------------- checkpoints
    def _save_checkpoint(self, phase: str, step: int) -> None:
        """Write checkpoint.pt atomically: phases, tracked objects, RNG states, state, metrics, config."""
        phases = {}
        for name, entry in self._phases.items():
            if name == phase and not entry["done"]:
                entry = dict(entry, step=step, objects=self._object_states())
            phases[name] = entry
        payload = {
            "format_version": FORMAT_VERSION,
            "experiment": self.experiment,
            "seed": self.seed,
            "budget": self.budget,
            "config": self._config_dict,
            "current_phase": phase,
            "phases": phases,
            "rng": _rng_states(),
            "state": self.state,
            "metrics": self.metrics,
            "elapsed_seconds": self.elapsed_seconds,
            "torch_version": str(torch.__version__),  # a str: TorchVersion is not plain data
        }
        atomic_write(self.checkpoint_path, lambda f: torch.save(payload, f))

    def _load_checkpoint(self) -> None:
        """Read checkpoint.pt, check that it belongs to this run, prepare the replay, rewrite metrics.csv.

        ``state`` and ``metrics`` start empty, as in a new run, and are set to their saved values as the
        replay passes the end of each finished phase and reaches the checkpoint.
        """
        if not self.checkpoint_path.exists():
            raise FileNotFoundError(f"cannot resume: no {CHECKPOINT} in {self.path}")
        checkpoint = read_checkpoint(self.checkpoint_path)
        self._check_compatible(checkpoint)
        self._check_structure(checkpoint)
        self._phases = dict(checkpoint["phases"])
        self._replay = list(self._phases)
        self._checkpoint_phase = checkpoint["current_phase"]
        self._checkpoint_rng = checkpoint["rng"]
        self._checkpoint_state = checkpoint["state"]
        self._checkpoint_metrics = list(checkpoint["metrics"])
        self._elapsed_before = float(checkpoint.get("elapsed_seconds", 0.0))
        for row in self._checkpoint_metrics:
            self._columns.extend(name for name in row if name not in self._columns)
        self._rewrite_csv(self._checkpoint_metrics)

    def _check_structure(self, checkpoint: dict[str, Any]) -> None:
        """The fields a resume reads exist and have the right types (else :class:`CheckpointUnreadable`)."""
        expected = {"phases": dict, "current_phase": str, "rng": dict, "state": dict, "metrics": list}
        for key, kind in expected.items():
            if not isinstance(checkpoint.get(key), kind):
                raise CheckpointUnreadable(
                    f"{self.checkpoint_path} is unreadable: field {key!r} is missing or not a {kind.__name__}"
                )
        for name, entry in checkpoint["phases"].items():
            if not isinstance(entry, dict) or not {"total", "step", "done"} <= set(entry):
                raise CheckpointUnreadable(f"{self.checkpoint_path} is unreadable: phase {name!r} is malformed")

    def _check_compatible(self, checkpoint: Any) -> None:
        """A checkpoint resumes only the run that wrote it: same format version, experiment, seed and budget."""
        where = f"the checkpoint in {self.path}"
        if not isinstance(checkpoint, dict) or checkpoint.get("format_version") != FORMAT_VERSION:
            version = checkpoint.get("format_version") if isinstance(checkpoint, dict) else None
            raise CheckpointMismatch(
                f"{where} has format version {version!r}; this version reads {FORMAT_VERSION}"
            )
        for field in ("experiment", "seed", "budget"):
            saved, now = checkpoint.get(field), getattr(self, field)
            if saved != now:
                raise CheckpointMismatch(
                    f"{where} was written with {field} = {saved!r}, this run has {now!r}"
                )
        saved_config, config = checkpoint.get("config"), self._config_dict
        if saved_config is None or config is None:
            return
        for key in dict.fromkeys([*saved_config, *config]):
            if key in RESUMABLE_KEYS:
                continue
            if key not in saved_config or key not in config:
                side = "the checkpoint" if key not in saved_config else "this run's config"
                raise CheckpointMismatch(f"{where} does not match: config key {key!r} is missing from {side}")
            if saved_config[key] != config[key]:
                raise CheckpointMismatch(
                    f"{where} was written with config {key} = {saved_config[key]!r}, "
                    f"this run has {config[key]!r}"
                )

    # ----------------------------------------------------------------- files
    def _writer(self, f: Any) -> csv.DictWriter:
        return csv.DictWriter(f, fieldnames=self._columns, lineterminator="\n")

    def _rewrite_csv(self, rows: list[dict[str, Any]] | None = None) -> None:
        text = io.StringIO()
        writer = self._writer(text)
        writer.writeheader()
        writer.writerows(self.metrics if rows is None else rows)
        data = text.getvalue().encode("utf-8")
        atomic_write(self.path / METRICS_CSV, lambda f: f.write(data))

    @staticmethod
    def _check_name(name: str) -> None:
        """A file name inside the run directory (no directories, not hidden)."""
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"name must be a plain file name without directories, got {name!r}")

    def _update_postfix(self, metrics: dict[str, Any]) -> None:
        if self._bar is None or self._bar.disable:
            return
        main = self.main_metric
        if main is not None and main in metrics:
            self._main_logged = True
            shown = {main: metrics[main]}
        elif self._main_logged:
            return
        else:
            shown = dict(list(metrics.items())[:4])
        text = ", ".join(f"{k}={_format_value(_scalar(k, v))}" for k, v in shown.items())
        self._bar.set_postfix_str(text, refresh=False)

    def __repr__(self) -> str:
        return (f"RunDirectory({str(self.path)!r}, seed={self.seed}, device={str(self.device)!r}, "
                f"budget={self.budget!r})")
