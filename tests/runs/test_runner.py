"""run_experiment: the files of a run directory, claims in the summary, and errors on bad input."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch

import neuroplastic
from neuroplastic.runs import (
    Experiment,
    RunDirectoryError,
    RunExists,
    RunLock,
    RunLocked,
    provenance,
    run_experiment,
    run_path,
)
from neuroplastic.runs.rundirs import is_finished
from neuroplastic.runs.runner import git_revision


def test_a_run_writes_its_directory(toy, tmp_path):
    summary = run_experiment(toy, out=tmp_path, seed=1, overrides={"steps": "12"}, progress=False)
    run_dir = tmp_path / "toy" / "quick-seed1"
    for name in ("config.json", "metrics.csv", "summary.json", "metrics.png", "loss_curve.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.glob(".*.tmp"))
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["steps"] == 12 and config["seed"] == 1 and config["experiment"] == "toy"
    assert config["torch_version"] == torch.__version__ and config["budget"] == "quick"
    assert summary["finished"] is True and summary["runtime_seconds"] > 0
    assert summary["experiment"] == "toy" and summary["paper"] == "Toy et al. 2024"
    assert set(summary["metrics"]) == {"pretrain_loss", "finetune_loss", "weight", "bias", "pretrain_steps",
                                       "finetune_steps", "pretrain_recent", "finetune_recent"}
    assert summary["metrics"]["pretrain_steps"] == summary["metrics"]["finetune_steps"] == 12
    assert len(summary["metrics"]["weight"]) == 3  # tensors become numbers and lists
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert lines[0] == "phase,step,loss,weight_error,eval_loss"
    assert len(lines) == 1 + 2 * (12 + 1 + 1)  # per phase: 12 steps, one weight_error row, one eval row


def test_auto_plot_false_skips_the_default_metrics_plot(toy, tmp_path):
    quiet = dataclasses.replace(toy, auto_plot=False)
    run_experiment(quiet, out=tmp_path, overrides={"steps": "4"}, progress=False)
    assert not (tmp_path / "toy" / "quick-seed0" / "metrics.png").exists()
    # the experiment's own figure is still written
    assert (tmp_path / "toy" / "quick-seed0" / "loss_curve.png").is_file()
    with pytest.raises(TypeError, match="auto_plot must be a bool"):
        dataclasses.replace(toy, auto_plot="no")


def test_claims_that_fail_raise_or_miss_metrics_are_failed_results(toy, tmp_path):
    claims = run_experiment(toy, out=tmp_path, progress=False)["claims"]
    assert [set(c) for c in claims] == [{"paper", "statement", "passed", "measured"}] * 4
    assert [c["passed"] for c in claims] == [True, False, False, False]
    assert isinstance(claims[0]["measured"], float)
    assert claims[1]["measured"] == {"finetune_loss": claims[0]["measured"]}
    assert claims[2]["measured"] == "check failed: RuntimeError: broken check"
    assert claims[3]["measured"].startswith("not measured: KeyError")


def test_a_finished_run_is_replaced_only_with_overwrite_and_only_its_own_files(toy, tmp_path):
    run_experiment(toy, out=tmp_path, progress=False)
    run_dir = tmp_path / "toy" / "quick-seed0"
    assert (run_dir / ".run-files").read_text().split() == [
        "config.json", "summary.json", "metrics.csv", "metrics.png", "checkpoint.pt", "loss_curve.png"]
    (run_dir / "notes.json").write_text("{}")  # the user's own files, with the suffixes of a run's files
    (run_dir / "best_model.pt").write_bytes(b"weights")
    before = (run_dir / "summary.json").read_bytes()
    with pytest.raises(RunExists, match="holds a finished run; use --overwrite"):
        run_experiment(toy, out=tmp_path, progress=False, overrides={"steps": "3"})
    assert (run_dir / "summary.json").read_bytes() == before
    run_experiment(toy, out=tmp_path, progress=False, overrides={"steps": "3"}, overwrite=True)
    assert json.loads((run_dir / "config.json").read_text())["config"]["steps"] == 3
    assert (run_dir / "notes.json").read_text() == "{}" and (run_dir / "best_model.pt").read_bytes() == b"weights"


def test_a_new_run_deletes_the_files_the_previous_one_wrote(toy, tmp_path):
    def run(config, run_dir):
        for step in run_dir.steps(2):
            run_dir.log(step, loss=1.0)
        if config.steps == 30:
            run_dir.write_json("extra", {"a": 1})
        return {"loss": 1.0}

    experiment = dataclasses.replace(toy, name="extra", run=run)
    run_experiment(experiment, out=tmp_path, progress=False)
    run_dir = tmp_path / "extra" / "quick-seed0"
    assert (run_dir / "extra.json").is_file()
    run_experiment(experiment, out=tmp_path, progress=False, overwrite=True, overrides={"steps": "3"})
    assert not (run_dir / "extra.json").exists()  # written by the previous run, not by this one
    assert "extra.json" not in (run_dir / ".run-files").read_text().split()


def test_a_run_that_fails_before_it_starts_leaves_the_previous_run_intact(toy, tmp_path):
    run_experiment(toy, out=tmp_path, progress=False)
    run_dir = tmp_path / "toy" / "quick-seed0"
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    # steps=-5 passes the config's declared rules but fails in the experiment, before its first phase
    with pytest.raises(ValueError, match="total"):
        run_experiment(toy, out=tmp_path, progress=False, overrides={"steps": "-5"}, overwrite=True)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    with pytest.raises(ValueError, match="total"):  # a new directory: removed again, as it stayed empty
        run_experiment(toy, out=tmp_path / "new", progress=False, overrides={"steps": "-5"})
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="lr"):
        run_experiment(toy, out=tmp_path, progress=False, overrides={"lr": "nan"}, overwrite=True)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_each_budget_and_seed_has_its_own_directory(toy, tmp_path):
    run_experiment(toy, out=tmp_path, progress=False, overrides={"steps": "2"})
    run_experiment(toy, out=tmp_path, seed=1, progress=False, overrides={"steps": "2"})
    assert run_path(tmp_path, "toy", "quick", 1) == tmp_path / "toy" / "quick-seed1"
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["quick-seed0", "quick-seed1"]
    assert is_finished(tmp_path / "toy" / "quick-seed0") and is_finished(tmp_path / "toy" / "quick-seed1")


def test_a_locked_run_directory_is_refused_and_a_stale_lock_taken_over(toy, tmp_path):
    run_dir = tmp_path / "toy" / "quick-seed0"
    with RunLock(run_dir):
        assert (run_dir / ".run-lock").read_text().strip() == str(os.getpid())
        with pytest.raises(RunLocked, match=f"in use by another run \\(pid {os.getpid()}\\)"):
            run_experiment(toy, out=tmp_path, progress=False)
    assert not run_dir.exists()  # created for the lock, empty at its release: removed
    run_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir / ".run-lock").write_text(f"{dead.pid}\n")  # a run that died without releasing its lock
    assert run_experiment(toy, out=tmp_path, progress=False, overrides={"steps": "2"})["finished"]
    assert not (run_dir / ".run-lock").exists()


def test_a_read_only_run_directory_is_a_run_directory_error(toy, tmp_path, monkeypatch):
    run_dir = tmp_path / "toy" / "quick-seed0"
    run_dir.mkdir(parents=True)
    run_dir.chmod(0o555)
    real_access = os.access
    # root may write to read-only directories; answer as the file system does for anyone else
    monkeypatch.setattr(os, "access", lambda path, mode: (mode & os.W_OK == 0 and real_access(path, mode))
                        if os.fspath(path) == os.fspath(run_dir) else real_access(path, mode))
    try:
        with pytest.raises(RunDirectoryError, match="cannot write to the run directory .*permission denied"):
            run_experiment(toy, out=tmp_path, progress=False)
    finally:
        run_dir.chmod(0o755)
    assert list(run_dir.iterdir()) == []


def test_a_file_in_place_of_the_run_directory_is_a_run_directory_error(toy, tmp_path):
    (tmp_path / "toy").write_text("a file")
    with pytest.raises(RunDirectoryError, match="is a file"):
        run_experiment(toy, out=tmp_path, progress=False)
    assert (tmp_path / "toy").read_text() == "a file"


def test_resume_without_a_checkpoint_starts_over(toy, tmp_path, capsys):
    summary = run_experiment(toy, out=tmp_path, progress=False, resume=True, overrides={"steps": "2"})
    assert summary["finished"]
    assert "no checkpoint" in capsys.readouterr().err


def test_non_finite_metrics_give_valid_json(toy, tmp_path):
    def run(config, run_dir):
        for step in run_dir.steps(2):
            run_dir.log(step, loss=float("nan"))
        return {"loss": float("nan"), "best": float("-inf")}

    experiment = dataclasses.replace(toy, name="nan", run=run)
    summary = run_experiment(experiment, out=tmp_path, progress=False)
    text = (tmp_path / "nan" / "quick-seed0" / "summary.json").read_text()
    assert json.loads(text)["metrics"] == {"loss": "nan", "best": "-inf"} == summary["metrics"]
    assert "NaN" not in text and "Infinity" not in text
    assert not summary["claims"][0]["passed"]  # nan < 1 is false


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"overrides": {"stepz": "1"}}, ValueError, "valid keys: steps, lr"),
        ({"overrides": {"lr": "x"}}, ValueError, "bad value for lr"),
        ({"budget": "huge"}, ValueError, "budget must be one of"),
        ({"device": "tpu"}, ValueError, "device must be one of"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_arguments_are_rejected_before_running(toy, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        run_experiment(toy, out=tmp_path, progress=False, **kwargs)
    assert not (tmp_path / "toy").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_says_so(toy, tmp_path):
    with pytest.raises(ValueError, match="CUDA is not available"):
        run_experiment(toy, out=tmp_path, device="cuda")


def test_run_must_return_a_dict(toy, tmp_path):
    experiment = dataclasses.replace(toy, name="bad", run=lambda config, run_dir: 1.0)
    assert isinstance(experiment, Experiment)
    with pytest.raises(TypeError, match="must return a dict"):
        run_experiment(experiment, out=tmp_path, progress=False)


def test_config_and_summary_record_the_version_and_git_commit(toy, tmp_path):
    summary = run_experiment(toy, out=tmp_path, progress=False, overrides={"steps": "2"})
    config = json.loads((tmp_path / "toy" / "quick-seed0" / "config.json").read_text())
    expected = provenance()
    assert expected["neuroplastic_version"] == neuroplastic.__version__
    for record in (config, summary):
        assert {key: record[key] for key in expected} == expected
    if expected["git_commit"] is not None:  # a source checkout (as in development), not an installed wheel
        assert re.fullmatch("[0-9a-f]{40}", expected["git_commit"]) and isinstance(expected["git_dirty"], bool)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_revision_of_a_checkout_a_plain_directory_and_without_git(tmp_path, monkeypatch):
    assert git_revision(tmp_path) == (None, None)  # not a git checkout
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "code.py").write_text("x = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert git_revision(repo / "pkg") == (head, False)
    (repo / "pkg" / "code.py").write_text("x = 2\n")
    assert git_revision(repo / "pkg") == (head, True)
    (repo / "untracked").mkdir()
    assert git_revision(repo / "untracked") == (None, None)  # e.g. a package installed inside another repo
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert git_revision(repo / "pkg") == (None, None)


def test_on_progress_reports_each_phase_from_start_to_end(toy, tmp_path):
    calls = []
    run_experiment(toy, out=tmp_path, progress=False, overrides={"steps": "3"},
                   on_progress=lambda *args: calls.append(args))
    assert calls == [(f"toy {phase}", step, 3) for phase in ("pretrain", "finetune") for step in range(4)]


def _contend_for_lock(run_dir: str, barrier, acquired) -> None:
    barrier.wait()
    try:
        with RunLock(run_dir):
            acquired.put(os.getpid())
            time.sleep(0.5)  # hold it while the others try
    except RunLocked:
        pass


def test_runs_that_find_the_same_stale_lock_at_once_take_it_over_one_at_a_time(tmp_path):
    """Eight processes released together at a directory whose lock a killed run left behind: one gets it."""
    run_dir = tmp_path / "toy" / "quick-seed0"
    run_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    context = multiprocessing.get_context("fork")
    for _ in range(3):
        (run_dir / ".run-lock").write_text(f"{dead.pid}\n")
        barrier, acquired = context.Barrier(8), context.Queue()
        workers = [context.Process(target=_contend_for_lock, args=(str(run_dir), barrier, acquired))
                   for _ in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        holders = []
        while not acquired.empty():
            holders.append(acquired.get())
        assert len(holders) == 1, f"{len(holders)} processes held the lock at once"
        assert not (run_dir / ".run-lock").exists()


def test_a_lock_is_released_when_its_process_is_killed(tmp_path):
    run_dir = tmp_path / "toy" / "quick-seed0"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom neuroplastic.runs import RunLock\n"
         f"lock = RunLock({str(run_dir)!r}); lock.acquire(); print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"in use by another run \\(pid {holder.pid}\\)"):
            RunLock(run_dir).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(run_dir):  # the file is still there, naming a pid that is gone: taken over
        assert (run_dir / ".run-lock").read_text().strip() == str(os.getpid())
