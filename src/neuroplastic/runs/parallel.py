"""Run several experiments at once, one per worker process, with their progress reported to the caller.

Workers are started with the ``spawn`` method (PyTorch is not safe to fork) and run
:func:`neuroplastic.runs.run_experiment`, which seeds every generator itself: a run gives the same results as
in the calling process. Ctrl-C reaches the caller only (workers run in their own process group and ignore
it until a job starts); :func:`run_jobs` forwards it to the running jobs, which save a checkpoint after
their current step as they would in the foreground (a second Ctrl-C aborts them), and jobs not yet
started are not started.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .._checks import check_int
from .experiment import Experiment
from .rundir import CheckpointMismatch, RunInterrupted
from .rundirs import ConfigRejected, RunDirectoryError, describe_os_error
from .runner import run_experiment

# What became of a job.
FINISHED, INTERRUPTED, ABORTED, FAILED, MISMATCH, NOT_STARTED, REFUSED = (
    "finished", "interrupted", "aborted", "failed", "mismatch", "not started", "refused"
)
# Seconds between progress reports from a worker (the first and last step of a phase are always reported).
PROGRESS_INTERVAL = 0.5


@dataclass(frozen=True)
class Job:
    """One experiment to run in a worker process.

    ``experiment`` is an :class:`Experiment` that can be pickled (its functions defined at module level in
    an importable module), or a picklable function of no arguments returning one, such as
    ``functools.partial(neuroplastic.experiments.get_experiment, name)``. ``kwargs`` are the keyword
    arguments of :func:`run_experiment` (budget, seed, out, overrides, device, resume, overwrite, threads).
    """

    name: str
    experiment: Experiment | Callable[[], Experiment]
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobResult:
    """The outcome of a job: its status, the run's summary if it finished, or what went wrong."""

    name: str
    status: str
    summary: dict[str, Any] | None = None
    error: str = ""
    details: str = ""  # the traceback of a failed run


# In a worker process: the queue of events for the caller, and the flag that says to start no more jobs.
_events: Any = None
_stop: Any = None


def _init_worker(events: Any, stop: Any) -> None:
    global _events, _stop
    _events, _stop = events, stop
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # out of the terminal's process group: Ctrl-C comes from the caller only
    import matplotlib

    matplotlib.use("Agg")


def _reporter(name: str) -> Callable[[str, int, int], None]:
    """An ``on_progress`` callback that sends ("progress", name, phase, step, total) at most every 0.5 s."""
    last = 0.0

    def report(phase: str, step: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL or step in (0, total):
            last = now
            _events.put(("progress", name, phase, step, total))

    return report


def run_job(job: Job) -> JobResult:
    """Run one job (in a worker process of :func:`run_jobs`); exceptions become the result's status.

    While it runs, SIGINT raises KeyboardInterrupt (a worker ignores it between jobs) or, within a phase's
    steps, makes the run save a checkpoint and stop (status INTERRUPTED).
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler) if in_main_thread else None
    try:
        if _stop is not None and _stop.is_set():
            return JobResult(job.name, NOT_STARTED)
        if _events is not None:
            _events.put(("start", job.name, os.getpid()))
        experiment = job.experiment if isinstance(job.experiment, Experiment) else job.experiment()
        on_progress = _reporter(job.name) if _events is not None else None
        summary = run_experiment(experiment, progress=False, on_progress=on_progress, **job.kwargs)
        return JobResult(job.name, FINISHED, summary=summary)
    except RunInterrupted as error:
        return JobResult(job.name, INTERRUPTED, error=str(error))
    except KeyboardInterrupt:
        return JobResult(job.name, ABORTED)
    except CheckpointMismatch as error:
        return JobResult(job.name, MISMATCH, error=str(error))
    except (RunDirectoryError, ConfigRejected) as error:  # finished, locked, not writable, a bad config: not run
        return JobResult(job.name, REFUSED, error=str(error))
    except OSError as error:  # the file system failed during the run: one line, no traceback
        return JobResult(job.name, FAILED, error=describe_os_error(error))
    except Exception as error:
        return JobResult(job.name, FAILED, error=f"{type(error).__name__}: {error}",
                         details=traceback.format_exc())
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)


def _outcome(job: Job, future: Future) -> JobResult:
    try:
        return future.result()
    except CancelledError:
        return JobResult(job.name, NOT_STARTED)
    except Exception as error:  # the worker died (killed, out of memory) or the job could not be sent
        return JobResult(job.name, FAILED, error=f"{type(error).__name__}: {error}")


def run_jobs(
    jobs: Sequence[Job],
    workers: int,
    *,
    on_event: Callable[[tuple[Any, ...]], None] | None = None,
    on_result: Callable[[JobResult], None] | None = None,
    on_interrupt: Callable[[int], None] | None = None,
    poll_seconds: float = 0.2,
) -> list[JobResult]:
    """Run ``jobs`` in ``workers`` spawned processes; return their results in the order of ``jobs``.

    Called in the caller's process: ``on_event(event)`` for each event from a worker, ``("start", name,
    pid)`` or ``("progress", name, phase, step, total)``, and at least every ``poll_seconds`` with
    ``("tick",)``; ``on_result(result)`` as each job ends; ``on_interrupt(count)`` on the count-th Ctrl-C.
    The first Ctrl-C starts no more jobs and sends SIGINT to the running ones (they save a checkpoint after
    their current step and end INTERRUPTED); the second sends it again (they stop at once, ABORTED); the
    third terminates them.
    """
    check_int("workers", workers)
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique, got {names}")
    context = multiprocessing.get_context("spawn")
    events, stop = context.Queue(), context.Event()
    in_main_thread = threading.current_thread() is threading.main_thread()
    # Workers inherit an ignored SIGINT, so that a Ctrl-C while they start up cannot kill them.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main_thread else None
    try:
        executor = ProcessPoolExecutor(min(workers, max(1, len(jobs))), mp_context=context,
                                       initializer=_init_worker, initargs=(events, stop))
        futures = {executor.submit(run_job, job): job for job in jobs}
    except BaseException:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
        raise
    results: dict[str, JobResult] = {}
    running: dict[str, int] = {}  # name -> pid of the worker running it
    requested = 0  # Ctrl-C presses received, counted by the handler below
    handled = 0  # and acted upon

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal requested
        requested += 1

    def signal_running(signum: int) -> None:
        for pid in running.values():
            try:
                os.kill(pid, signum)
            except OSError:
                pass

    def drain() -> None:
        while True:
            try:
                event = events.get_nowait()
            except Exception:  # queue.Empty, or a queue closed by a dead worker
                return
            if event[0] == "start" and event[1] not in results:
                running[event[1]] = event[2]
                if handled:  # it started before it saw the stop flag: interrupt it too
                    try:
                        os.kill(event[2], signal.SIGINT)
                    except OSError:
                        pass
            if on_event is not None:
                on_event(event)

    def handle_interrupts() -> None:
        nonlocal handled
        while handled < requested:
            handled += 1
            if handled == 1:
                stop.set()
                for future in futures:
                    future.cancel()  # those still waiting in this process
            if on_interrupt is not None:
                on_interrupt(handled)
            signal_running(signal.SIGINT if handled < 3 else signal.SIGTERM)

    if in_main_thread:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        while len(results) < len(futures):
            wait([f for f, job in futures.items() if job.name not in results], timeout=poll_seconds,
                 return_when=FIRST_COMPLETED)
            handle_interrupts()
            drain()
            for future, job in futures.items():
                if future.done() and job.name not in results:
                    results[job.name] = result = _outcome(job, future)
                    running.pop(job.name, None)
                    if on_result is not None:
                        on_result(result)
            if on_event is not None:
                on_event(("tick",))
    except BaseException:  # a callback failed: stop the workers rather than wait for them
        stop.set()
        signal_running(signal.SIGTERM)
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        events.close()
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
    return [results[job.name] for job in jobs]


def expected_seconds(out: str | Path, experiment: Experiment, budget: str) -> float:
    """How long a run will take: the last run's runtime in ``out`` at this budget, else its quick estimate.

    :func:`run_jobs` callers start the longest first, so that the last to finish is a short one.
    """
    for path in sorted((Path(out) / experiment.name).glob(f"{budget}-seed*/summary.json")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
            if summary.get("budget") == budget:
                return float(summary["runtime_seconds"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    return 60.0 * experiment.quick_minutes


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


class StatusBoard:
    """One line per running job, ``name: phase step/total  m:ss``, redrawn in place on a terminal.

    Pass :meth:`event` as ``run_jobs(on_event=...)``. On a stream that is not a terminal (a log file, a
    pipe) it prints one ``name: started`` line per job instead; ``enabled=False`` prints nothing.
    Call :meth:`clear` before printing anything else to the stream, then :meth:`draw`.
    """

    def __init__(self, enabled: bool = True, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty()
        self.running: dict[str, list[Any]] = {}  # name -> [start time, text]
        self.lines: list[str] = []

    def event(self, event: tuple[Any, ...]) -> None:
        """Take an event of :func:`run_jobs` and redraw."""
        if event[0] == "start":
            self.running[event[1]] = [time.monotonic(), "starting"]
            if self.enabled and not self.tty:
                print(f"{event[1]}: started", file=self.stream, flush=True)
        elif event[0] == "progress" and event[1] in self.running:
            _, name, phase, step, total = event
            self.running[name][1] = f"{phase} {step}/{total}"
        self.draw()

    def remove(self, name: str) -> None:
        """Drop a job's line (it ended); the next :meth:`draw` shows the others."""
        self.running.pop(name, None)

    def draw(self) -> None:
        """Redraw the lines in place if they changed (on a terminal)."""
        if not (self.enabled and self.tty):
            return
        width = shutil.get_terminal_size((100, 24)).columns - 1
        now = time.monotonic()
        lines = [f"  {name}: {text}  {_clock(now - start)}"[:width] for name, (start, text) in self.running.items()]
        if lines != self.lines:
            self.clear()
            self.stream.write("".join(line + "\n" for line in lines))
            self.stream.flush()
            self.lines = lines

    def clear(self) -> None:
        """Erase the lines drawn last (cursor up to the first of them, clear to the end of the screen)."""
        if self.lines:
            self.stream.write(f"\033[{len(self.lines)}F\033[J")
            self.stream.flush()
            self.lines = []


__all__ = ["ABORTED", "FAILED", "FINISHED", "INTERRUPTED", "MISMATCH", "NOT_STARTED", "Job", "JobResult",
           "StatusBoard", "expected_seconds", "run_job", "run_jobs"]
