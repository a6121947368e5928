"""torch_threads, and the thread count the runner gives a run: argument, config field or experiment's own."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from neuroplastic.runs import Experiment, resolve_threads, run_experiment
from neuroplastic.runs.runner import prepare_config
from neuroplastic.runs.threads import torch_threads


@dataclasses.dataclass
class NoThreadsConfig:
    steps: int = 2


def test_torch_threads_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="count must be an int >= 1, got 0"):
        with torch_threads(0):
            pass


@dataclasses.dataclass
class ThreadsConfig:
    steps: int = 2
    threads: int = 3  # an experiment that still declares its own thread count


def _report_threads(config, run_dir) -> dict:
    for step in run_dir.steps(config.steps):
        run_dir.log(step, loss=0.0)
    return {"threads_seen": torch.get_num_threads()}


def _experiment(config_class, threads: int = 1) -> Experiment:
    return Experiment(name="threads", paper="-", description="-", config_class=config_class,
                      budgets={"quick": config_class(), "full": config_class()}, run=_report_threads, claims=(),
                      quick_minutes=0.01, threads=threads)


@pytest.mark.parametrize(
    ("config_class", "experiment_threads", "argument", "expected"),
    [
        (NoThreadsConfig, 2, None, 2),  # the experiment's own count
        (NoThreadsConfig, 2, 1, 1),  # the argument (--threads) wins
        (ThreadsConfig, 2, None, 3),  # the config's field, while experiments still declare it
        (ThreadsConfig, 2, 1, 1),  # the argument wins, and sets the field too
    ],
)
def test_the_runner_runs_with_the_resolved_thread_count_and_records_it(
    tmp_path, config_class, experiment_threads, argument, expected
):
    before = torch.get_num_threads()
    experiment = _experiment(config_class, experiment_threads)
    summary = run_experiment(experiment, out=tmp_path, progress=False, threads=argument)
    assert summary["metrics"]["threads_seen"] == expected == summary["threads"]
    config = json.loads((tmp_path / "threads" / "quick-seed0" / "config.json").read_text())
    assert config["threads"] == expected
    if config_class is ThreadsConfig:
        assert config["config"]["threads"] == expected
    assert torch.get_num_threads() == before


def test_resolve_threads_order_and_zero_leaves_the_setting_alone():
    assert resolve_threads(_experiment(NoThreadsConfig, 4), NoThreadsConfig()) == 4
    assert resolve_threads(_experiment(ThreadsConfig, 4), ThreadsConfig()) == 3
    assert resolve_threads(_experiment(ThreadsConfig, 4), ThreadsConfig(threads=0)) is None
    assert resolve_threads(_experiment(ThreadsConfig, 4), ThreadsConfig(threads=0), threads=2) == 2
    with pytest.raises(ValueError, match="threads must be an int >= 1 or None, got 0"):
        resolve_threads(_experiment(ThreadsConfig), ThreadsConfig(), threads=0)


def test_threads_is_given_once_and_must_be_positive():
    with pytest.raises(ValueError, match="give the thread count once"):
        prepare_config(_experiment(ThreadsConfig), overrides={"threads": "2"}, threads=2)
    assert prepare_config(_experiment(ThreadsConfig), threads=2).threads == 2
    with pytest.raises(ValueError, match="threads must be an int >= 1, got 0"):
        _experiment(NoThreadsConfig, threads=0)
