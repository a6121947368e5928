"""run_experiment: the files of a run directory, claims in the summary, and errors on bad input."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess

import pytest
import torch

import neuroplastic
from neuroplastic.runs import Experiment, provenance, run_experiment
from neuroplastic.runs.runner import git_revision


def test_a_run_writes_its_directory(toy, tmp_path):
    summary = run_experiment(toy, out=tmp_path, seed=1, overrides={"steps": "12"}, progress=False)
    run_dir = tmp_path / "toy"
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
    assert not (tmp_path / "toy" / "metrics.png").exists()
    assert (tmp_path / "toy" / "loss_curve.png").is_file()  # the experiment's own figure is still written
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


def test_a_new_run_replaces_the_old_one(toy, tmp_path):
    run_experiment(toy, out=tmp_path, progress=False)
    (tmp_path / "toy" / "stale.png").write_bytes(b"old")
    run_experiment(toy, out=tmp_path, progress=False, overrides={"steps": "3"})
    assert not (tmp_path / "toy" / "stale.png").exists()
    assert json.loads((tmp_path / "toy" / "config.json").read_text())["config"]["steps"] == 3


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
    text = (tmp_path / "nan" / "summary.json").read_text()
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
    config = json.loads((tmp_path / "toy" / "config.json").read_text())
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
