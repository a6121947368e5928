"""The neuroplastic command: list, run (claims, errors, Ctrl-C and resume), report and bench."""

from __future__ import annotations

import json
import shlex
import signal
from dataclasses import dataclass

import pytest
import torch

import neuroplastic.experiments as experiments
from neuroplastic.cli import main
from neuroplastic.runs import Claim, Experiment


@dataclass
class TinyConfig:
    steps: int = 5
    target: float = 2.0
    interrupt_at: int = -1  # a step at which the run sends itself Ctrl-C (for the interrupt test)


def tiny_run(config: TinyConfig, run_dir) -> dict:
    """Move a scalar towards ``target`` by gradient descent on a noisy loss."""
    model = torch.nn.Module()
    model.x = x = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    run_dir.track(model=model, opt=opt)
    for step in run_dir.steps(config.steps, checkpoint_every=2):
        loss = (x - config.target - 0.01 * torch.randn(1)).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        run_dir.log(step, loss=loss)
        if step == config.interrupt_at:
            signal.raise_signal(signal.SIGINT)
    return {"x": x.item(), "error": abs(x.item() - config.target)}


TINY = Experiment(
    name="tiny",
    paper="Tiny & Small 2023",
    description="a scalar descends to its target",
    config_class=TinyConfig,
    budgets={"quick": TinyConfig(), "full": TinyConfig(steps=50)},
    run=tiny_run,
    claims=(
        Claim("Tiny & Small 2023", "x ends within 0.5 of the target, as reported in the paper's "
              "second table, which shows this holds for every one of the settings the authors tried",
              lambda m: (m["error"] < 0.5, m["error"])),
        Claim("Tiny & Small 2023", "x lands exactly on the target", lambda m: (m["error"] == 0, m["error"])),
    ),
    quick_minutes=0.05,
)


@pytest.fixture
def tiny():
    with experiments.registered(TINY):
        yield TINY


def test_list_shows_name_paper_claim_and_minutes(tiny, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    (row,) = [line for line in out.splitlines() if line.startswith("tiny")]
    assert header.split() == ["name", "paper", "claim", "quick", "(min)"]
    assert row.startswith("tiny") and "Tiny & Small 2023" in row and "x ends within 0.5" in row
    assert row.rstrip().endswith("0.05") and "(+1 more)" in row


def test_run_prints_verdicts_and_exits_0_even_when_a_claim_fails(tiny, tmp_path, capsys):
    code = main(["run", "tiny", "--out", str(tmp_path), "--seed", "2", "--set", "steps=8", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "PASS" in out and "FAIL" in out and "x lands exactly on the target" in out
    assert "measured:" in out and str(tmp_path / "tiny") in out and "1/2 claims held" in out
    summary = json.loads((tmp_path / "tiny" / "summary.json").read_text())
    assert summary["seed"] == 2 and [c["passed"] for c in summary["claims"]] == [True, False]
    assert json.loads((tmp_path / "tiny" / "config.json").read_text())["config"]["steps"] == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "tiny", "--set", "stepz=3"], "error: tiny: unknown config key 'stepz'"),
        (["run", "tiny", "--set", "steps=many"], "error: tiny: bad value for steps: 'many' is not a valid int"),
        (["run", "tiny", "--set", "steps"], "error: --set expects key=value"),
        (["run", "nope"], "error: unknown experiment 'nope'; known experiments: pattern-completion, cue-reward"),
        (["run"], "error: name at least one experiment"),
        (["run", "tiny", "--all"], "error: name experiments or use --all"),
        (["report", "missing-dir"], "error: no such directory"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(tiny, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--no-progress"] if argv[0] == "run" else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_argparse_errors_exit_2(capsys):
    assert main(["run", "tiny", "--budget", "huge"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_ctrl_c_interrupts_and_the_printed_command_resumes(tiny, tmp_path, capsys):
    out = str(tmp_path / "out dir")
    argv = ["run", "tiny", "--out", out, "--seed", "1", "--set", "interrupt_at=2", "--no-progress"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    command = err.split("interrupted; resume with: ")[1].strip()
    resume_argv = shlex.split(command)
    assert resume_argv[:3] == ["neuroplastic", "run", "tiny"] and "--resume" in resume_argv
    assert resume_argv[resume_argv.index("--out") + 1] == out
    assert resume_argv[resume_argv.index("--set") + 1] == "interrupt_at=2"
    assert not (tmp_path / "out dir" / "tiny" / "summary.json").exists()
    # The resumed run starts after the interrupted step, so it does not interrupt itself again.
    assert main([*resume_argv[1:], "--no-progress"]) == 0
    resumed = json.loads((tmp_path / "out dir" / "tiny" / "summary.json").read_text())
    assert main(["run", "tiny", "--out", str(tmp_path / "ref"), "--seed", "1", "--no-progress"]) == 0
    reference = json.loads((tmp_path / "ref" / "tiny" / "summary.json").read_text())
    assert resumed["metrics"] == reference["metrics"]


def test_a_crashing_experiment_exits_1(tmp_path, capsys):
    def crash(config, run_dir):
        raise ArithmeticError("boom")

    import dataclasses

    with experiments.registered(dataclasses.replace(TINY, name="crash", run=crash)):
        assert main(["run", "crash", "--out", str(tmp_path), "--no-progress"]) == 1
    assert "error: crash failed: ArithmeticError: boom" in capsys.readouterr().err


def test_run_all_then_report(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(experiments, "EXPERIMENT_MODULES", ())
    assert main(["run", "--all", "--out", str(tmp_path), "--no-progress"]) == 0
    assert main(["report", str(tmp_path)]) == 0
    assert "report written to" in capsys.readouterr().out
    html = (tmp_path / "report.html").read_text()
    assert "x lands exactly on the target" in html and "data:image/png;base64," in html
    assert main(["report", str(tmp_path), "--output", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").is_file()


def test_bench_lists_scripts(capsys):
    assert main(["bench"]) == 0
    assert "bench" in capsys.readouterr().out
