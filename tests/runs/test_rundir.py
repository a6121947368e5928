"""RunDirectory: metrics.csv, figures, JSON, checkpoints (atomic, validated), Ctrl-C, and resume bookkeeping."""

from __future__ import annotations

import csv
import json
import random
import signal
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from neuroplastic.runs import CheckpointMismatch, RunDirectory, RunInterrupted


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _train(run_dir, total=10, phase="train", every=4, crash_after=None):
    """A tiny training loop; returns the model. ``crash_after`` simulates a kill after that many steps."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run_dir.track(model=model, optimizer=opt)
    for step in run_dir.steps(total, phase=phase, checkpoint_every=every):
        loss = model(torch.randn(4, 2)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run_dir.log(step, loss=loss)
        if crash_after is not None and step + 1 == crash_after:
            raise SystemError("simulated kill")
    return model


def test_log_writes_rows_with_the_union_of_columns(tmp_path):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    for step in run_dir.steps(3, phase="a"):
        run_dir.log(step, loss=torch.tensor(0.5 + step))
    run_dir.log(3, acc=np.float32(0.25), ok=True)
    rows = _rows(tmp_path / "metrics.csv")
    assert rows[0] == ["phase", "step", "loss", "acc", "ok"]
    assert rows[1] == ["a", "0", "0.5", "", ""]
    assert rows[-1] == ["a", "3", "", "0.25", "1"]
    assert run_dir.metrics[0] == {"phase": "a", "step": 0, "loss": 0.5}
    assert len(rows) == 5


@pytest.mark.parametrize("bad", [torch.ones(2), "high", [1.0]])
def test_log_rejects_non_scalars(tmp_path, bad):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    with pytest.raises((TypeError, ValueError), match="metric 'loss'"):
        run_dir.log(0, loss=bad)


def test_save_figure_and_write_json(tmp_path):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    fig = Figure()
    fig.add_subplot().plot([1, 2, 3])
    path = run_dir.save_figure(fig, "curve")
    assert path == tmp_path / "curve.png" and path.read_bytes().startswith(b"\x89PNG")
    path = run_dir.write_json("extra", {"a": float("nan"), "b": float("inf"), "t": torch.tensor(2.0)})
    assert json.loads(path.read_text()) == {"a": "nan", "b": "inf", "t": 2.0}
    with pytest.raises(ValueError, match="plain file name"):
        run_dir.write_json("../escape", {})
    assert not list(tmp_path.glob(".*.tmp"))


def test_track_accepts_stateful_objects_and_generators_only(tmp_path):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    model = torch.nn.Linear(1, 1)
    run_dir.track(model=model, opt=torch.optim.SGD(model.parameters(), lr=0.1), gen=torch.Generator(),
                  rng=random.Random(0), np_rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="track\\(thing=...\\)"):
        run_dir.track(thing=object())


def test_checkpoints_follow_the_schedule_and_mark_the_phase_done(tmp_path, monkeypatch):
    saved = []
    original = RunDirectory._save_checkpoint
    monkeypatch.setattr(RunDirectory, "_save_checkpoint",
                        lambda self, phase, step: (saved.append(step), original(self, phase, step)))
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    _train(run_dir, total=10, every=4)
    assert saved == [4, 8, 10]
    saved.clear()
    _train(run_dir, total=100, phase="default", every=None)
    assert saved == list(range(5, 101, 5))  # about every 5%
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert checkpoint["phases"]["train"]["done"] and checkpoint["phases"]["default"]["step"] == 100
    assert {"format_version", "rng", "state", "metrics", "config", "current_phase"} <= set(checkpoint)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    _train(run_dir, total=8, every=4)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        _train(run_dir, total=8, phase="second", every=4)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))
    monkeypatch.undo()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["phases"]["train"]["done"]


def test_rows_after_the_last_checkpoint_disappear_on_resume(tmp_path):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    with pytest.raises(SystemError):
        _train(run_dir, total=10, every=4, crash_after=6)  # checkpoint at 4, rows 0..5 logged
    assert len(_rows(tmp_path / "metrics.csv")) == 1 + 6
    resumed = RunDirectory(tmp_path, seed=0, progress=False, resume=True)
    assert [row[1] for row in _rows(tmp_path / "metrics.csv")] == ["step", "0", "1", "2", "3"]
    _train(resumed, total=10, every=4)
    assert [row[1] for row in _rows(tmp_path / "metrics.csv")] == ["step"] + [str(i) for i in range(10)]
    assert [row["step"] for row in resumed.metrics] == list(range(10))


def test_finished_phase_restores_its_objects_and_state(tmp_path):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    trained = _train(run_dir)
    run_dir.state["result"] = 1.5
    _train(run_dir, phase="second", every=2)  # checkpoint written after the state was set
    run_dir.state["result"] = 2.5  # set after the last checkpoint: lost
    resumed = RunDirectory(tmp_path, seed=0, progress=False, resume=True)
    assert resumed.resuming and resumed.state == {} and resumed.metrics == []
    with torch.no_grad():
        model = torch.nn.Linear(2, 1)
        model.weight.zero_()
    resumed.track(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert list(resumed.steps(10, phase="train", checkpoint_every=4)) == []
    assert torch.equal(model.weight, trained.weight)
    assert resumed.state == {} and len(resumed.metrics) == 10  # as they were when phase "train" ended
    resumed.state["result"] = 1.5
    assert list(resumed.steps(10, phase="second", checkpoint_every=2)) == []
    assert not resumed.resuming and resumed.state == {"result": 1.5} and len(resumed.metrics) == 20
    resumed.finish()


def test_sigint_checkpoints_at_the_next_step_and_restores_the_handler(tmp_path):
    previous = signal.getsignal(signal.SIGINT)
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    model = torch.nn.Linear(1, 1)
    run_dir.track(model=model)
    seen = []
    with pytest.raises(RunInterrupted) as info:
        for step in run_dir.steps(10, checkpoint_every=100):
            seen.append(step)
            if step == 2:
                signal.raise_signal(signal.SIGINT)
    assert seen == [0, 1, 2] and info.value.path == tmp_path
    assert signal.getsignal(signal.SIGINT) is previous
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["phases"]["train"]["step"] == 3


def test_second_sigint_aborts_immediately(tmp_path):
    previous = signal.getsignal(signal.SIGINT)
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    with pytest.raises(KeyboardInterrupt):
        for _ in run_dir.steps(10):
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous


@dataclass
class _Config:
    lr: float = 0.1
    steps: int = 10
    device: str = "cpu"


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False, config=_Config(), experiment="a")
    _train(run_dir)
    with pytest.raises(CheckpointMismatch, match="lr = 0.1, this run has 0.2"):
        RunDirectory(tmp_path, seed=0, resume=True, config=_Config(lr=0.2), experiment="a")
    with pytest.raises(CheckpointMismatch, match="seed = 0, this run has 1"):
        RunDirectory(tmp_path, seed=1, resume=True, config=_Config(), experiment="a")
    with pytest.raises(CheckpointMismatch, match="experiment = 'a', this run has 'b'"):
        RunDirectory(tmp_path, seed=0, resume=True, config=_Config(), experiment="b")
    # the device may change between a run and its resumption
    RunDirectory(tmp_path, seed=0, resume=True, config=_Config(device="cuda"), experiment="a")
    resumed = RunDirectory(tmp_path, seed=0, resume=True, config=_Config(), experiment="a")
    with pytest.raises(CheckpointMismatch, match="expects phase 'train'"):
        next(iter(resumed.steps(10, phase="other")))


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint.pt"):
        RunDirectory(tmp_path, seed=0, resume=True)


def test_a_new_run_deletes_the_previous_runs_files_when_it_starts(tmp_path):
    for name in ("summary.json", "metrics.csv", "old.png", "checkpoint.pt", "notes.json", "best_model.pt"):
        (tmp_path / name).write_text("stale")
    (tmp_path / ".run-files").write_text("old.png\n../outside.png\n")
    (tmp_path.parent / "outside.png").write_text("keep")
    (tmp_path / "notes.txt").write_text("keep")
    (tmp_path / "sub").mkdir()
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    assert (tmp_path / "old.png").exists()  # nothing is deleted before the run starts
    with pytest.raises(ValueError, match="total"):
        run_dir.steps(-1)  # a bad argument is not a start
    assert (tmp_path / "summary.json").exists()
    with pytest.raises(ZeroDivisionError):
        for _ in run_dir.steps(3, phase="broken"):
            raise ZeroDivisionError  # the first step fails before the run wrote anything
    assert (tmp_path / "old.png").exists() and (tmp_path / "summary.json").exists()
    list(RunDirectory(tmp_path, seed=0, progress=False).steps(1))
    # deleted: the run's own files and the manifest's; kept: the user's files and anything outside
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".run-files", "best_model.pt", "checkpoint.pt", "notes.json", "notes.txt", "sub"]
    assert (tmp_path.parent / "outside.png").read_text() == "keep"
    assert (tmp_path / "best_model.pt").read_text() == "stale" and (tmp_path / "notes.json").read_text() == "stale"


def test_the_manifest_lists_the_files_the_run_wrote(tmp_path):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    run_dir.write_json_on_start("config", {"a": 1})
    assert not (tmp_path / "config.json").exists()
    run_dir.write_json("extra", {"b": 2})
    assert (tmp_path / "config.json").exists()
    assert (tmp_path / ".run-files").read_text().split() == [
        "config.json", "summary.json", "metrics.csv", "metrics.png", "checkpoint.pt", "extra.json"]


def test_phase_misuse_is_reported(tmp_path):
    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    list(run_dir.steps(2, phase="a"))
    with pytest.raises(ValueError, match="unique"):
        run_dir.steps(2, phase="a")
    for step in run_dir.steps(5, phase="b"):
        if step == 1:
            break
    with pytest.raises(RuntimeError, match="'b' left its steps\\(\\) loop early"):
        list(run_dir.steps(2, phase="c"))
    with pytest.raises(ValueError, match="total"):
        run_dir.steps(-1, phase="d")
    with pytest.raises(ValueError, match="stop_after_steps"):
        RunDirectory(tmp_path, seed=0, stop_after_steps=0)
