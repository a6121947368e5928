"""checkpoint.pt is read with the safe (weights-only) loader: code in a crafted file is refused unrun, and an
empty, truncated or garbage file is one clear error that names it and touches nothing in the directory."""

from __future__ import annotations

import os

import pytest
import torch

import neuroplastic.experiments as experiments
from neuroplastic.cli import main
from neuroplastic.runs import (
    CheckpointMismatch,
    CheckpointUnreadable,
    RunDirectory,
    RunDirectoryError,
    RunInterrupted,
    run_experiment,
    run_path,
)
from neuroplastic.runs.checkpoint import read_checkpoint


def _train(run_dir, total=6, every=2):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run_dir.track(model=model, optimizer=optimizer, generator=torch.Generator().manual_seed(1))
    for step in run_dir.steps(total, checkpoint_every=every):
        loss = model(torch.randn(4, 2)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        run_dir.log(step, loss=loss)


class _Payload:
    """Unpickled, this would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _snapshot(path):
    return {file.name: file.read_bytes() for file in sorted(path.iterdir())}


def test_a_checkpoint_is_plain_data_for_the_safe_loader(tmp_path):
    _train(RunDirectory(tmp_path, seed=0, progress=False))
    # no error: nothing but tensors, plain data and NumPy arrays (NumPy's RNG state)
    checkpoint = read_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["phases"]["train"]["done"]
    RunDirectory(tmp_path, seed=0, resume=True, progress=False)


def test_a_checkpoint_with_a_pickled_callable_is_refused_and_not_run(tmp_path):
    _train(RunDirectory(tmp_path, seed=0, progress=False))
    marker = tmp_path / "PWNED"
    checkpoint = read_checkpoint(tmp_path / "checkpoint.pt")
    checkpoint["state"]["evil"] = _Payload(marker)
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    before = _snapshot(tmp_path)
    with pytest.raises(CheckpointUnreadable, match=r"checkpoint\.pt was refused.*could run code.*system"):
        RunDirectory(tmp_path, seed=0, resume=True, progress=False)
    assert not marker.exists()
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("content", ["empty", "truncated", "garbage"])
def test_a_corrupt_checkpoint_is_one_error_naming_the_file(tmp_path, content):
    _train(RunDirectory(tmp_path, seed=0, progress=False))
    path = tmp_path / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": os.urandom(2048)}[content])
    before = _snapshot(tmp_path)
    with pytest.raises(CheckpointUnreadable, match=r"checkpoint\.pt is unreadable") as info:
        RunDirectory(tmp_path, seed=0, resume=True, progress=False)
    assert isinstance(info.value, CheckpointMismatch) and isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert _snapshot(tmp_path) == before


def test_a_checkpoint_without_its_fields_is_unreadable(tmp_path):
    _train(RunDirectory(tmp_path, seed=0, progress=False))
    checkpoint = read_checkpoint(tmp_path / "checkpoint.pt")
    del checkpoint["phases"]
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointUnreadable, match="'phases' is missing"):
        RunDirectory(tmp_path, seed=0, resume=True, progress=False)


def test_run_experiment_resume_with_a_corrupt_checkpoint_touches_nothing(toy, tmp_path):
    with pytest.raises(RunInterrupted):
        run_experiment(toy, out=tmp_path, seed=3, progress=False, stop_after_steps=5)
    run_dir = run_path(tmp_path, "toy", "quick", 3)
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    before = _snapshot(run_dir)
    with pytest.raises(CheckpointUnreadable, match="unreadable"):
        run_experiment(toy, out=tmp_path, seed=3, progress=False, resume=True)
    assert _snapshot(run_dir) == before


def test_cli_resume_with_a_corrupt_checkpoint_is_one_line_and_nonzero(toy, tmp_path, capsys):
    with pytest.raises(RunInterrupted):
        run_experiment(toy, out=tmp_path, seed=0, progress=False, stop_after_steps=5)
    (run_path(tmp_path, "toy", "quick", 0) / "checkpoint.pt").write_bytes(b"")
    capsys.readouterr()
    with experiments.registered(toy):
        code = main(["run", "toy", "--out", str(tmp_path), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "checkpoint.pt is unreadable" in lines[0], err


def test_named_tuples_of_the_package_are_restored_and_other_classes_refused(tmp_path):
    from neuroplastic.plasticity.recurrent import PlasticLSTMState

    run_dir = RunDirectory(tmp_path, seed=0, progress=False)
    run_dir.state["carry"] = PlasticLSTMState(torch.ones(1, 2), torch.zeros(1, 2), None)
    _train(run_dir)
    checkpoint = read_checkpoint(tmp_path / "checkpoint.pt")
    assert isinstance(checkpoint["state"]["carry"], PlasticLSTMState)
    assert torch.equal(checkpoint["state"]["carry"].hidden, torch.ones(1, 2))
    checkpoint["state"]["other"] = os.stat_result(range(10))  # a NamedTuple-like class outside the package
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointUnreadable, match="was refused"):
        read_checkpoint(tmp_path / "checkpoint.pt")


def test_a_run_checkpointed_before_the_safe_loader_and_the_run_directories_resumes(toy, tmp_path):
    """Before the safe loader, checkpoint.pt held ``torch.__version__`` as a TorchVersion, and a run lived in
    ``<out>/<experiment>/`` itself: --resume names where the files must go, and then continues exactly."""
    reference = run_experiment(toy, out=tmp_path / "reference", seed=2, progress=False)["metrics"]
    with pytest.raises(RunInterrupted):
        run_experiment(toy, out=tmp_path, seed=2, progress=False, stop_after_steps=9)
    path = run_path(tmp_path, "toy", "quick", 2)
    payload = torch.load(path / "checkpoint.pt", weights_only=False)
    payload["torch_version"] = torch.__version__
    assert type(payload["torch_version"]) is torch.torch_version.TorchVersion
    torch.save(payload, path / "checkpoint.pt")
    for file in path.iterdir():  # the earlier layout: the run's files in out/toy/
        file.rename(path.parent / file.name)
    path.rmdir()
    before = _snapshot(path.parent)
    with pytest.raises(RunDirectoryError, match=r"this run's checkpoint is .*toy/checkpoint.pt.*move the files"):
        run_experiment(toy, out=tmp_path, seed=2, progress=False, resume=True)
    assert _snapshot(path.parent) == before and not path.exists()
    assert run_experiment(toy, out=tmp_path, seed=3, progress=False, resume=True)["finished"]  # another seed
    path.mkdir()
    for name in ("config.json", "metrics.csv", "checkpoint.pt"):
        (path.parent / name).rename(path / name)
    assert run_experiment(toy, out=tmp_path, seed=2, progress=False, resume=True)["metrics"] == reference
