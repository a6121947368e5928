"""A fuzz test of ``neuroplastic run ... --set KEY=VALUE`` over every experiment (issue 17).

For each experiment, hypothesis draws 1 to 3 of its config fields (``threads`` included where the config has
it; now and then an unknown key) and a value for each from hostile classes: wrong types ("abc", "1.5" for an
int, "1,2" for a scalar, "", "none", "true"), "nan", "inf", "-inf", negatives, zero, and small valid values
("1", "2", "0.5", the field's tiny value, one of its choices). The command runs on top of the experiment's tiny
overrides (``tests/experiments/tiny_overrides.py``; a later ``--set`` replaces an earlier one) in an output
directory that already holds a finished run of the experiment at another seed and, in some examples, one at the
target path (run with or without ``--overwrite``). Each example either

- exits 0 with a finished summary.json at the target path, the other run untouched; or
- exits 2 with exactly one non-empty line on stderr (no traceback), every file of every pre-existing run
  byte-identical and no new run directory left behind.

Cost: the finished runs already in place are written by hand (a summary.json with ``finished: true`` and a few
files), not run. Rejections cost milliseconds; an accepted example runs the tiny config (0.5 to 6 s), so values
that are valid but expensive are kept out of the strategy by construction: numbers are small (at most 2, or the
tiny value), "0" is not drawn where it means "no limit" (``UNLIMITED_AT_ZERO``), and the fields listed in
``EXPENSIVE`` (e.g. a batch size of 1 in an experiment that trains whole epochs) draw only hostile values and
their tiny value (a sweep of every field over every value class, run once by hand, measured the rest). Valid
choices that fetch data (``dataset``, ``corpus``, ``data_dir``) are not drawn either. An example whose config
would be accepted is run at most ``MAX_RUNS`` times per experiment (further ones are discarded with
``reject()``), so that the test stays within about 40 s of CPU under the "ci" profile; every experiment's test
checks that it saw both an accepted and a rejected example. So under "ci" the accepted examples are few (the
first is the tiny config itself); NEUROPLASTIC_HYPOTHESIS=explore draws more of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import typing
from pathlib import Path

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from experiments.tiny_overrides import NAMES, as_text, tiny, tiny_cli
from neuroplastic.cli import main
from neuroplastic.experiments import get_experiment
from neuroplastic.runs import run_path
from neuroplastic.runs.config import field_rules
from neuroplastic.runs.runner import prepare_config

HOSTILE = ("abc", "1.5", "1,2", "", "none", "true", "nan", "inf", "-inf", "-1", "-0.5", "0")
SMALL = ("1", "2", "0.5")
# fields whose small valid values make a tiny run much longer (more steps per epoch, more evaluations):
# only their tiny value is drawn as a valid value
EXPENSIVE: dict[str, tuple[str, ...]] = {
    "backdoor-pruning": ("batch_size", "rnp_batch_size", "monitor_size", "cost_max_channels"),
    "gradient-rewiring": ("batch_size",),
    "plastic-lm": ("threads",),  # several threads on a shared machine cost more CPU than one
    "snn-reset": ("batch_size", "hidden"),  # hidden=1 measured 10x the tiny run's time
    "snn-rewiring": ("batch_size", "hidden"),
    "sparse-training": ("batch_size", "eval_batch_size"),
}
# fields where 0 means "no limit" (the whole corpus, the whole validation split, all cores): no "0" for them
UNLIMITED_AT_ZERO = {"plastic-lm": ("max_chars", "eval_chars", "threads")}
NO_VALID_CHOICES = ("dataset", "corpus", "data_dir")  # other choices fetch or read data
# runs of accepted examples per experiment under "ci": two where a tiny run takes under 2 s of CPU, else one
# ("explore", which is not derandomized: ten times as many)
_SCALE = 1 if settings.default.derandomize else 10
# one accepted run (not two) for the experiments whose tiny run takes the longest
_SLOW = ("backdoor-pruning", "dormant-neurons", "snn-lnp", "snn-reset", "snn-rewiring", "hybrid-simulator",
         "continual-clnp", "network-quine", "grid-maze", "growing-rnn", "cue-reward")
MAX_RUNS = {name: _SCALE * (1 if name in _SLOW else 2) for name in NAMES}
EXAMPLES = max(8, settings.default.max_examples // 3)  # "ci": 8; "explore": 166


def _fields(name: str) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(get_experiment(name).config_class) if f.init]


def _valid_values(name: str, field: dataclasses.Field) -> list[str]:
    """Small valid-looking values of ``field``, its tiny (or quick) value first."""
    experiment = get_experiment(name)
    current = tiny(name).get(field.name, getattr(experiment.config("quick"), field.name))
    values = [as_text(current)]
    if field.name in EXPENSIVE.get(name, ()):
        return values
    choices = field_rules(field).choices
    if choices is not None:
        if field.name not in NO_VALID_CHOICES:
            values += [str(choice) for choice in choices]
        return list(dict.fromkeys(values))
    annotation = typing.get_type_hints(experiment.config_class)[field.name]
    if annotation is bool:
        return [*values, "true", "false"]
    if annotation in (int, float) or typing.get_origin(annotation) is tuple:
        values += list(SMALL)
    return list(dict.fromkeys(values))


@st.composite
def settings_for(draw: st.DrawFn, name: str) -> list[tuple[str, str]]:
    """1 to 3 ``(key, value)`` pairs for experiment ``name``: hostile values three times in four."""
    fields = _fields(name)
    count = draw(st.integers(1, 3))
    pairs = []
    for _ in range(count):
        if draw(st.integers(0, 9)) == 9:
            pairs.append(("no_such_key", draw(st.sampled_from(("1", "abc")))))
            continue
        field = draw(st.sampled_from(fields))
        valid = _valid_values(name, field)
        hostile = [v for v in HOSTILE if v != "0" or field.name not in UNLIMITED_AT_ZERO.get(name, ())]
        value = draw(st.sampled_from(valid) if draw(st.integers(0, 3)) == 0 else st.sampled_from(hostile))
        pairs.append((field.name, value))
    return pairs


def _finished_run(path: Path, seed: int) -> None:
    """A finished run written by hand: what the CLI must neither touch nor lose to a rejected config."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"seed": seed, "config": {}}))
    (path / "metrics.csv").write_text("step,loss\n1,0.5\n")
    (path / "summary.json").write_text(json.dumps({"seed": seed, "claims": [], "finished": True}))
    (path / "notes.txt").write_text("a file the run did not write\n")
    (path / ".run-files").write_text("config.json\nmetrics.csv\nsummary.json\n")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _dirs(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir()}


def _accepted(name: str, pairs: list[tuple[str, str]]) -> bool:
    """Whether the config checks accept the tiny overrides with ``pairs`` (what ``run`` checks first)."""
    overrides = {**{k: as_text(v) for k, v in tiny(name).items()}, **dict(pairs)}
    try:
        prepare_config(get_experiment(name), "quick", overrides)
    except ValueError:
        return False
    return True


def test_every_registered_experiment_has_tiny_overrides():
    """A new experiment needs an entry in tests/experiments/tiny_overrides.py, so that the fuzz test covers it."""
    from neuroplastic.experiments import registry

    assert sorted(registry()) == list(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_cli_set_fuzz(name, tmp_path_factory):
    outcomes: list[str] = []
    runs = [0]

    @settings(max_examples=EXAMPLES)
    @given(pairs=settings_for(name), existing=st.booleans(), overwrite=st.booleans())
    def fuzz(pairs: list[tuple[str, str]], existing: bool, overwrite: bool) -> None:
        if _accepted(name, pairs) and (overwrite or not existing):  # it would run
            if runs[0] >= MAX_RUNS[name]:
                reject()
            runs[0] += 1
        out = tmp_path_factory.mktemp("fuzz")
        target = run_path(out, name, "quick", 0)
        _finished_run(run_path(out, name, "quick", 1), seed=1)
        if existing:
            _finished_run(target, seed=0)
        before, dirs = _hashes(out), _dirs(out)
        argv = ["run", name, "--budget", "quick", "--seed", "0", "--out", str(out), "--no-progress",
                *tiny_cli(name), *(part for key, value in pairs for part in ("--set", f"{key}={value}")),
                *(["--overwrite"] if overwrite else [])]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        err = stderr.getvalue()
        after = _hashes(out)
        if code == 0:
            summary = json.loads((target / "summary.json").read_text())
            assert summary["finished"] is True and summary["seed"] == 0
            assert not existing or overwrite, "a finished run was replaced without --overwrite"
            other = {k: v for k, v in before.items() if not k.startswith(f"{name}/quick-seed0/")}
            assert {k: after[k] for k in other} == other, "another run's files changed"
            outcomes.append("accepted")
            return
        assert code == 2, f"exit {code} for {pairs}: {err}"
        assert err.strip() and err.count("\n") == 1 and err.endswith("\n"), f"not one line for {pairs}: {err!r}"
        assert "Traceback" not in err and err.startswith("error: "), err
        assert after == before, f"files changed by a rejected run {pairs}: {err}"
        assert _dirs(out) == dirs, f"a run directory was left behind by {pairs}: {err}"
        outcomes.append("rejected")

    fuzz()
    assert "accepted" in outcomes and "rejected" in outcomes, outcomes


# ------------------------------------------------------------------ the other options of `run`, and --all
@pytest.mark.parametrize("option, value, message", [
    ("--threads", "abc", "expected a positive integer, got 'abc'"), ("--threads", "0", "positive integer"),
    ("--threads", "-1", "positive integer"), ("--threads", "1.5", "positive integer"),
    ("--threads", "nan", "positive integer"), ("--threads", "100000", "expected at most 256, got '100000'"),
    ("--jobs", "0", "positive integer"), ("--jobs", "abc", "positive integer"), ("--jobs", "-2", "positive integer"),
    ("--budget", "huge", "invalid choice: 'huge'"), ("--budget", "", "invalid choice: ''"),
    ("--seed", "-1", "expected a non-negative integer"), ("--seed", "abc", "non-negative integer"),
    ("--seed", "1.5", "non-negative integer"), ("--seed", "4294967296", "expected at most 4294967295"),
    ("--seed", "99999999999999999999999", "at most 4294967295"),
])
def test_hostile_run_options_are_one_line_and_exit_2(tmp_path, capsys, option, value, message):
    # before: argparse printed its usage (5 lines) above the error; --threads 100000 was accepted (and a run
    # then hung creating threads); --seed 99999999999999999999999 ran and crashed with a traceback from torch
    out = tmp_path / "out"
    assert main(["run", "cue-reward", "--out", str(out), "--no-progress", *tiny_cli("cue-reward"), option, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: argument {option}: ") and message in err and err.count("\n") == 1, err
    assert err.rstrip().endswith("(see `neuroplastic run --help`)") and not out.exists()


def test_a_seed_or_thread_count_out_of_range_is_refused_before_the_run(tmp_path):
    from neuroplastic.runs import run_experiment
    from neuroplastic.runs.threads import torch_threads

    experiment = get_experiment("cue-reward")
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 4294967295\], got 4294967296"):
        run_experiment(experiment, out=tmp_path, seed=2**32, progress=False, overrides=tiny("cue-reward"))
    with pytest.raises(ValueError, match="threads must be at most 256"):
        run_experiment(experiment, out=tmp_path, threads=100_000, progress=False, overrides=tiny("cue-reward"))
    with pytest.raises(ValueError, match="count must be at most 256"), torch_threads(100_000):
        pass
    with pytest.raises(ValueError, match=r"Config.threads must be at most 256 \(0: PyTorch's setting\), got 100000"):
        prepare_config(get_experiment("plastic-lm"), "quick", {"threads": "100000"})
    assert not tmp_path.joinpath("cue-reward").exists()


def test_all_with_a_key_some_experiments_have(tmp_path, capsys):
    # a bad value: the error alone, one line (before: the note on where the key applies came first)
    argv = ["run", "--all", "--out", str(tmp_path / "out"), "--no-progress", "--jobs", "1"]
    assert main([*argv, "--set", "hidden_size=abc"]) == 2
    err = capsys.readouterr().err
    assert err == "error: cue-reward: bad value for hidden_size: 'abc' is not a valid int\n"
    assert main([*argv, "--set", "no_such_key=1"]) == 2
    count = len(NAMES)
    assert capsys.readouterr().err.startswith(f"error: --set no_such_key: none of the {count} selected experiments has")
    # a good value and a finished run in the way: the error alone too
    _finished_run(run_path(tmp_path / "out", NAMES[0], "quick", 0), seed=0)
    assert main([*argv, "--set", "hidden_size=8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a finished run; use --overwrite" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [NAMES[0]]


def test_all_prints_where_a_key_applies_once_the_checks_pass(tmp_path, capsys, monkeypatch):
    import neuroplastic.cli as cli

    monkeypatch.setattr(cli, "_run_sequential", lambda args, experiments, own: 0)  # the checks, not the runs
    assert main(["run", "--all", "--out", str(tmp_path), "--jobs", "1", "--set", "hidden_size=8"]) == 0
    from neuroplastic.experiments import registry

    having = [name for name, experiment in registry().items()
              if "hidden_size" in {f.name for f in dataclasses.fields(experiment.config_class)}]
    assert {"cue-reward", "grid-maze", "plastic-lm", "snn-plasticity"} <= set(having)
    assert capsys.readouterr().err == (f"note: --set hidden_size applies to {len(having)} of {len(NAMES)} "
                                       f"experiments: {', '.join(having)}\n")
