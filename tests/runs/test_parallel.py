"""Experiments in worker processes: `neuroplastic run --jobs N` and run_jobs (results, Ctrl-C, resume)."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import io
import json
import os
import signal
import sys
import textwrap
import types

import pytest

import neuroplastic.experiments as experiments
from neuroplastic.cli import _job_experiment, main
from neuroplastic.runs import Claim, parallel, run_experiment
from neuroplastic.runs.parallel import Job, StatusBoard, run_job, run_jobs

# Worker processes are spawned: they import the experiments of a job by module name, so these live in a
# module of their own on sys.path (test modules are not importable by name).
MODULE = "neuroplastic_test_slow_experiments"
SOURCE = '''
import time
from dataclasses import dataclass

import torch

from neuroplastic.runs import Claim, Experiment


@dataclass
class SlowConfig:
    steps: int = 6
    delay: float = 0.0
    crash: bool = False


def slow_run(config, run_dir):
    """A noisy scalar descends to 1, one step at a time."""
    if config.crash:
        raise ArithmeticError("boom")
    model = torch.nn.Linear(1, 1, bias=False)  # trained by hand: torch.optim's first import takes seconds
    run_dir.track(model=model)
    for step in run_dir.steps(config.steps):
        with torch.no_grad():
            error = model.weight - 1 - 0.1 * torch.randn(1)
            model.weight -= 0.4 * error
        run_dir.log(step, loss=error.pow(2).sum())
        time.sleep(config.delay)
    return {"w": model.weight.item(), "threads": torch.get_num_threads()}


def near(metrics):
    return abs(metrics["w"] - 1) < 0.5, metrics["w"]


def exact(metrics):
    return metrics["w"] == 1, metrics["w"]


def make(name, steps):
    return Experiment(name=name, paper="Slow 2024", description="a scalar descends", config_class=SlowConfig,
                      budgets={"quick": SlowConfig(steps=steps), "full": SlowConfig(steps=20)}, run=slow_run,
                      claims=(Claim("Slow 2024", "w ends near 1", near), Claim("Slow 2024", "w is 1", exact)),
                      quick_minutes=steps / 100)


SLOW_A = make("slow-a", 6)
SLOW_B = make("slow-b", 4)
'''


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """The module's experiments, registered; its directory is on sys.path (worker processes inherit it)."""
    directory = tmp_path_factory.mktemp("slow_module")
    (directory / f"{MODULE}.py").write_text(textwrap.dedent(SOURCE))
    sys.path.insert(0, str(directory))
    module = importlib.import_module(MODULE)
    with experiments.registered(module.SLOW_A), experiments.registered(module.SLOW_B):
        yield module
    sys.path.remove(str(directory))
    sys.modules.pop(MODULE, None)


def _metrics(out, name):
    return json.loads((out / name / "quick-seed3" / "summary.json").read_text())["metrics"]


def test_jobs_run_in_parallel_with_the_results_of_sequential_runs(slow, tmp_path, capsys):
    argv = ["run", "slow-a", "slow-b", "--seed", "3", "--no-progress", "--set", "steps=5"]
    assert main([*argv, "--out", str(tmp_path / "parallel"), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("running 2 experiments, 2 at a time")
    assert "1/2 claims held" in out and str(tmp_path / "parallel" / "slow-b" / "quick-seed3") in out
    assert "2 of 4 claims held across 2 experiments" in out
    assert main([*argv, "--out", str(tmp_path / "sequential"), "--jobs", "1"]) == 0
    assert "at a time" not in capsys.readouterr().out
    for name in ("slow-a", "slow-b"):
        assert _metrics(tmp_path / "parallel", name) == _metrics(tmp_path / "sequential", name)
        for run in ("parallel", "sequential"):
            config = json.loads((tmp_path / run / name / "quick-seed3" / "config.json").read_text())
            assert config["config"]["steps"] == 5 and config["threads"] == 1


def test_ctrl_c_checkpoints_the_running_job_skips_the_others_and_resume_is_exact(slow, tmp_path):
    kwargs = {"seed": 1, "out": tmp_path, "overrides": {"steps": "30", "delay": "0.1"}}
    jobs = [Job(name, getattr(slow, f"SLOW_{name[-1].upper()}"), kwargs) for name in ("slow-a", "slow-b")]
    events, interrupts = [], []

    def on_event(event):
        events.append(event)
        if event[0] == "progress" and event[3] >= 1 and not interrupts:
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C in the terminal would (caught by run_jobs)

    results = run_jobs(jobs, 1, on_event=on_event, on_interrupt=interrupts.append)
    assert interrupts == [1]
    assert [(r.name, r.status) for r in results] == [("slow-a", parallel.INTERRUPTED),
                                                      ("slow-b", parallel.NOT_STARTED)]
    assert ("start", "slow-a") in [event[:2] for event in events]
    assert (tmp_path / "slow-a" / "quick-seed1" / "checkpoint.pt").exists() and not (tmp_path / "slow-b").exists()
    resumed = run_experiment(slow.SLOW_A, resume=True, progress=False, **kwargs)
    reference = run_experiment(slow.SLOW_A, progress=False, **dict(kwargs, out=tmp_path / "reference"))
    assert resumed["metrics"] == reference["metrics"]


def test_run_job_turns_errors_into_statuses(slow, tmp_path):
    handler = signal.getsignal(signal.SIGINT)
    finished = run_job(Job("slow-b", slow.SLOW_B, {"out": tmp_path}))
    assert finished.status == parallel.FINISHED and finished.summary["experiment"] == "slow-b"
    mismatch = run_job(Job("slow-b", slow.SLOW_B, {"out": tmp_path, "resume": True, "overrides": {"steps": "9"}}))
    assert mismatch.status == parallel.MISMATCH and "was written with config steps = 4" in mismatch.error
    refused = run_job(Job("slow-b", slow.SLOW_B, {"out": tmp_path}))
    assert refused.status == parallel.REFUSED and "holds a finished run; use --overwrite" in refused.error
    crashed = run_job(Job("slow-b", slow.SLOW_B, {"out": tmp_path, "overrides": {"crash": "true"},
                                                  "overwrite": True}))
    assert crashed.status == parallel.FAILED and crashed.error == "ArithmeticError: boom"
    assert "Traceback" in crashed.details
    assert signal.getsignal(signal.SIGINT) is handler


def test_experiments_that_cannot_be_sent_to_workers(slow, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    unpicklable = dataclasses.replace(slow.SLOW_B, name="lambda-claims",
                                      claims=(Claim("Slow 2024", "w is finite", lambda m: (True, m["w"])),))
    argv = ["run", "slow-b", "lambda-claims", "--out", str(tmp_path), "--no-progress"]
    with experiments.registered(unpicklable):
        assert main([*argv, "--jobs", "2"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: lambda-claims was registered in this process and cannot be sent to a "
                              "worker process") and err.rstrip().endswith("use --jobs 1") and err.count("\n") == 1
        assert not tmp_path.exists() or not any(tmp_path.iterdir())
        assert main(argv) == 0  # --jobs auto falls back to one at a time
        assert "note: running one experiment at a time: lambda-claims" in capsys.readouterr().err


def test_experiments_of_the_module_list_are_found_by_name_in_the_worker(slow, monkeypatch):
    module = types.ModuleType("neuroplastic.experiments.fake_listed")
    module.EXPERIMENT = dataclasses.replace(slow.SLOW_A, name="listed")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(experiments, "EXPERIMENT_MODULES", ("fake_listed",))
    found = _job_experiment(module.EXPERIMENT)
    assert isinstance(found, functools.partial) and found() is module.EXPERIMENT
    assert _job_experiment(slow.SLOW_A) is slow.SLOW_A  # registered here, and picklable: sent as it is


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_board_redraws_one_line_per_running_job_in_place():
    screen = _Terminal()
    board = StatusBoard(stream=screen)
    board.event(("start", "a", 1))
    board.event(("start", "b", 2))
    board.event(("progress", "b", "train", 3, 10))
    assert screen.getvalue().endswith("\033[2F\033[J  a: starting  0:00\n  b: train 3/10  0:00\n")
    board.remove("a")
    board.clear()
    board.draw()
    assert screen.getvalue().endswith("\033[2F\033[J  b: train 3/10  0:00\n")
    log = io.StringIO()  # not a terminal: one line per started job
    StatusBoard(stream=log).event(("start", "a", 1))
    assert log.getvalue() == "a: started\n"
    quiet = _Terminal()
    StatusBoard(enabled=False, stream=quiet).event(("start", "a", 1))
    assert quiet.getvalue() == ""
