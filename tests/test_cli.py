"""The neuroplastic command: list, show, run (claims, errors, Ctrl-C and resume, --set, --strict), report, bench."""

from __future__ import annotations

import json
import runpy
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import neuroplastic.experiments as experiments
from neuroplastic.cli import main
from neuroplastic.runs import Claim, Experiment, RunInterrupted, run_experiment


@dataclass
class TinyConfig:
    steps: int = 5
    target: float = 2.0
    interrupt_at: int = -1  # a step at which the run sends itself Ctrl-C (for the interrupt test)


def tiny_run(config: TinyConfig, run_dir) -> dict:
    """Move a scalar towards ``target`` by gradient descent on a noisy loss."""
    model = torch.nn.Module()
    first_step_check = config.target  # checked in the first step, as experiments check batch sizes
    model.x = x = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    run_dir.track(model=model, opt=opt)
    for step in run_dir.steps(config.steps, checkpoint_every=2):
        if first_step_check < 0:
            raise ValueError(f"target must be >= 0, got {first_step_check}")
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
    assert "measured:" in out and str(tmp_path / "tiny" / "quick-seed2") in out and "1/2 claims held" in out
    summary = json.loads((tmp_path / "tiny" / "quick-seed2" / "summary.json").read_text())
    assert summary["seed"] == 2 and [c["passed"] for c in summary["claims"]] == [True, False]
    assert json.loads((tmp_path / "tiny" / "quick-seed2" / "config.json").read_text())["config"]["steps"] == 8


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
    assert not (tmp_path / "out dir" / "tiny" / "quick-seed1" / "summary.json").exists()
    # The resumed run starts after the interrupted step, so it does not interrupt itself again.
    assert main([*resume_argv[1:], "--no-progress"]) == 0
    resumed = json.loads((tmp_path / "out dir" / "tiny" / "quick-seed1" / "summary.json").read_text())
    assert main(["run", "tiny", "--out", str(tmp_path / "ref"), "--seed", "1", "--no-progress"]) == 0
    reference = json.loads((tmp_path / "ref" / "tiny" / "quick-seed1" / "summary.json").read_text())
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


@dataclass
class OtherConfig:  # no `steps` field, as most real experiments
    rounds: int = 2


def other_run(config: OtherConfig, run_dir) -> dict:
    for step in run_dir.steps(config.rounds):
        run_dir.log(step, loss=1.0 / (step + 1))
    return {"rounds": config.rounds}


OTHER = Experiment(
    name="other", paper="Other 2020", description="counts rounds", config_class=OtherConfig,
    budgets={"quick": OtherConfig(), "full": OtherConfig(rounds=9)}, run=other_run,
    claims=(Claim("Other 2020", "it ran", lambda m: (m["rounds"] > 0, m["rounds"])),), quick_minutes=0.01,
)


@pytest.fixture
def two(tiny, monkeypatch):
    monkeypatch.setattr(experiments, "EXPERIMENT_MODULES", ())
    with experiments.registered(OTHER):
        yield


def test_set_with_several_experiments_applies_where_the_field_exists(two, tmp_path, capsys):
    argv = ["run", "--all", "--out", str(tmp_path), "--jobs", "1", "--no-progress"]
    assert main([*argv, "--set", "steps=3", "--set", "rounds=4"]) == 0
    captured = capsys.readouterr()
    assert "note: --set steps applies to 1 of 2 experiments: tiny" in captured.err
    tiny_config = json.loads((tmp_path / "tiny" / "quick-seed0" / "config.json").read_text())
    other_config = json.loads((tmp_path / "other" / "quick-seed0" / "config.json").read_text())
    assert tiny_config["overrides"] == {"steps": "3"} and tiny_config["config"]["steps"] == 3
    assert other_config["overrides"] == {"rounds": "4"} and other_config["config"]["rounds"] == 4
    assert "3 of 3 claims held across 2 experiments" not in captured.out  # tiny's exact claim fails
    assert "2 of 3 claims held across 2 experiments" in captured.out


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["steps=3", "nope=1"], "error: --set nope: none of the 2 selected experiments has a config field 'nope'"),
        (["steps=3", "rounds=many"], "error: other: bad value for rounds: 'many' is not a valid int"),
    ],
)
def test_set_with_several_experiments_checks_every_key_and_value_first(two, tmp_path, capsys, sets, message):
    argv = ["run", "tiny", "other", "--out", str(tmp_path / "runs"), "--no-progress"]
    assert main([*argv, *[arg for item in sets for arg in ("--set", item)]]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(message) and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_strict_exits_1_when_a_claim_does_not_hold(tiny, tmp_path, capsys):
    assert main(["run", "tiny", "--out", str(tmp_path), "--strict", "--no-progress"]) == 1
    assert capsys.readouterr().err == "error: 1 of 2 claims did not hold (--strict)\n"


def test_threads_option_is_used_and_recorded(tiny, tmp_path, capsys):
    assert main(["run", "tiny", "--out", str(tmp_path), "--threads", "2", "--no-progress"]) == 0
    assert json.loads((tmp_path / "tiny" / "quick-seed0" / "config.json").read_text())["threads"] == 2
    assert main(["run", "tiny", "--threads", "0"]) == 2
    assert "--threads: expected a positive integer, got '0'" in capsys.readouterr().err


def test_show_prints_claims_budgets_and_config_fields(tiny, capsys):
    assert main(["show", "tiny"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny  (Tiny & Small 2023)\n  a scalar descends to its target")
    assert "main metric: loss" in out and "quick (about 0.05 min" in out and "threads: 1" in out
    assert "  1. x ends within 0.5 of the target" in out and "  2. x lands exactly on the target" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.split("config (TinyConfig")[1].splitlines()[3:6]}
    assert rows == {"steps": ["int", "5", "50"], "target": ["float", "2.0", "2.0"],
                    "interrupt_at": ["int", "-1", "-1"]}
    assert main(["show", "nope"]) == 2


def test_list_json(tiny, capsys):
    assert main(["list", "--json"]) == 0
    (entry,) = [e for e in json.loads(capsys.readouterr().out) if e["name"] == "tiny"]
    assert entry["paper"] == "Tiny & Small 2023" and entry["main_metric"] == "loss" and entry["threads"] == 1
    assert [c["statement"] for c in entry["claims"]][1] == "x lands exactly on the target"
    assert entry["budgets"]["full"] == {"steps": 50, "target": 2.0, "interrupt_at": -1}


def test_help_lists_exit_codes_and_the_set_rule(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "130  interrupted" in out and "with --strict, a claim did not hold" in out
    assert "it is an error only if none has it" in out and "--jobs N" in out


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(monkeypatch, capsys):
    import neuroplastic.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert main(["list"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_while_importing_pytorch_in_a_fresh_process():
    # The signal arrives while main() imports PyTorch and the registry (the module itself imports neither).
    code = ("import os, signal, sys, threading\n"
            "import neuroplastic.cli as cli\n"
            "assert 'torch' not in sys.modules\n"
            "threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
            "sys.exit(cli.main(['list']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (130, "interrupted\n")


def test_python_m_neuroplastic_runs_the_command(tiny, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["neuroplastic", "show", "tiny"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("neuroplastic", run_name="__main__")
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("tiny  (Tiny & Small 2023)")


def test_out_that_cannot_be_created_is_one_error_line(tiny, tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    assert main(["run", "tiny", "--out", str(tmp_path / "file" / "runs"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot create the output directory {tmp_path / 'file' / 'runs'}: ")
    assert err.count("\n") == 1
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "tiny").write_text("a file where the run directory goes")
    assert main(["run", "tiny", "--out", str(tmp_path / "runs"), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot create the run directory {tmp_path / 'runs' / 'tiny'}")


def test_report_without_runs_exits_1(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().err == f"error: no runs found in {tmp_path / 'empty'}\n"
    assert not (tmp_path / "empty" / "report.html").exists()


def test_parallel_runs_start_with_the_longest_by_the_last_runtime(tiny, tmp_path):
    from neuroplastic.runs.parallel import expected_seconds as _expected_seconds

    assert _expected_seconds(tmp_path, TINY, "quick") == pytest.approx(3.0)  # quick_minutes: 0.05
    (tmp_path / "tiny" / "quick-seed4").mkdir(parents=True)
    summary = {"budget": "quick", "runtime_seconds": 99.5}
    (tmp_path / "tiny" / "quick-seed4" / "summary.json").write_text(json.dumps(summary))
    assert _expected_seconds(tmp_path, TINY, "quick") == 99.5
    assert _expected_seconds(tmp_path, TINY, "full") == pytest.approx(3.0)


def _files(directory):
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def test_a_finished_run_is_kept_unless_overwrite(tiny, tmp_path, capsys):
    argv = ["run", "tiny", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    run_dir = tmp_path / "tiny" / "quick-seed0"
    (run_dir / "notes.json").write_text("{}")
    (run_dir / "best_model.pt").write_bytes(b"weights")
    before = _files(run_dir)
    capsys.readouterr()
    assert main([*argv, "--set", "steps=3"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {run_dir} holds a finished run; use --overwrite to replace it (or another --out)\n"
    assert _files(run_dir) == before
    assert main([*argv, "--seed", "1"]) == 0  # another seed is another directory
    assert _files(run_dir) == before
    assert main([*argv, "--set", "steps=3", "--overwrite"]) == 0
    assert json.loads((run_dir / "config.json").read_text())["config"]["steps"] == 3
    assert (run_dir / "notes.json").read_text() == "{}" and (run_dir / "best_model.pt").read_bytes() == b"weights"


@pytest.mark.parametrize("value", ["steps=-5", "target=nan", "target=-1"])
def test_a_bad_set_value_leaves_the_previous_run_intact(tiny, tmp_path, capsys, value):
    argv = ["run", "tiny", "--out", str(tmp_path), "--no-progress"]
    with pytest.raises(RunInterrupted):  # an unfinished previous run: no --overwrite needed to replace it
        run_experiment(TINY, out=tmp_path, progress=False, stop_after_steps=2)
    run_dir = tmp_path / "tiny" / "quick-seed0"
    (run_dir / "notes.json").write_text("{}")
    before = _files(run_dir)
    capsys.readouterr()
    assert main([*argv, "--set", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tiny") and err.count("\n") == 1 and "Traceback" not in err
    assert _files(run_dir) == before


@pytest.mark.parametrize("value", ["steps=-5", "lr=nan", "batch_size=0"])
def test_pattern_completion_with_a_bad_value_is_one_line_and_keeps_the_previous_run(tmp_path, capsys, value):
    run_dir = tmp_path / "pattern-completion" / "quick-seed0"
    run_dir.mkdir(parents=True)
    for name in ("metrics.csv", "config.json", "checkpoint.pt", "notes.json"):
        (run_dir / name).write_text("previous")
    before = _files(run_dir)
    argv = ["run", "pattern-completion", "--out", str(tmp_path), "--no-progress", "--set", value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pattern-completion") and err.count("\n") == 1 and "Traceback" not in err
    assert _files(run_dir) == before


def test_a_second_run_into_a_locked_directory_is_refused(tiny, tmp_path, capsys):
    from neuroplastic.runs import RunLock

    run_dir = tmp_path / "tiny" / "quick-seed0"
    with RunLock(run_dir):  # a run in progress in this directory
        assert main(["run", "tiny", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: tiny: {run_dir} is in use by another run (pid ") and err.count("\n") == 1
    assert not run_dir.exists()  # the lock holder's directory, removed as it released the lock empty


def test_concurrent_runs_into_one_directory_one_is_refused(tiny, tmp_path):
    """The first run holds the directory until the second has given up; the second is refused in one line."""
    release = tmp_path / "release"
    code = (
        "import dataclasses, sys, time\n"
        "sys.path.insert(0, {tests!r})\n"
        "import neuroplastic.experiments as experiments\n"
        "from pathlib import Path\n"
        "from test_cli import TINY\n"
        "from neuroplastic.cli import main\n"
        "def held(config, run_dir):\n"
        "    result = TINY.run(config, run_dir)\n"
        "    while not Path({release!r}).exists():\n"
        "        time.sleep(0.05)\n"
        "    return result\n"
        "with experiments.registered(dataclasses.replace(TINY, run=held)):\n"
        "    sys.exit(main(['run', 'tiny', '--out', {out!r}, '--no-progress']))\n"
    ).format(tests=str(Path(__file__).parent), out=str(tmp_path / "runs"), release=str(release))
    lock = tmp_path / "runs" / "tiny" / "quick-seed0" / ".run-lock"
    first = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if lock.exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        second = subprocess.run([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        release.write_text("")
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2, second.stderr
    assert "is in use by another run" in second.stderr and second.stderr.count("\n") == 1
    summary = json.loads((tmp_path / "runs" / "tiny" / "quick-seed0" / "summary.json").read_text())
    assert summary["finished"] and not lock.exists()


def test_file_system_errors_are_one_line(tiny, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("not a directory")
    assert main(["run", "tiny", "--out", str(tmp_path / "file"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot create the output directory {tmp_path / 'file'}: it is a file\n"
    from neuroplastic.runs import _io

    def read_only(path, write):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_io, "atomic_write", read_only)
    monkeypatch.setattr("neuroplastic.runs.rundir.atomic_write", read_only)
    assert main(["run", "tiny", "--out", str(tmp_path / "runs"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[0].startswith(
        "error: tiny failed: PermissionError: Permission denied: ")
