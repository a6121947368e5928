"""The ``neuroplastic`` command: list, show, run and report experiments, and point to the benchmarks.

Only the standard library is imported with this module: PyTorch, the run platform and the experiment
registry are imported inside :func:`main`, so that a Ctrl-C at any moment of the start-up ends the command
with one line and exit code 130.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
import pickle
import shlex
import shutil
import sys
import textwrap
import traceback
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runs import Experiment, JobResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXIT_CODES = """\
exit codes:
  0    done (a claim that does not hold is reported, not an error, unless --strict)
  1    an experiment crashed; with --strict, a claim did not hold; `report`: no runs found
  2    usage error: bad arguments, an unknown experiment or config key, a bad value, an output
       directory that cannot be created or written, a finished run in the way (use --overwrite), a run
       directory in use by another run, a checkpoint that does not match (--resume)
  130  interrupted (Ctrl-C); `run` prints the command that resumes
"""


class UsageError(Exception):
    """Bad input from the command line: printed as one ``error:`` line, exit code 2."""


def _registry() -> ModuleType:
    """The experiment registry, :mod:`neuroplastic.experiments` (imported on first use: it imports PyTorch)."""
    from . import experiments

    return experiments


def _truncate(text: str, width: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    return textwrap.shorten(text, width=max(width, 8), placeholder="…")


def _format_table(header: Sequence[str], rows: list[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [header, ["-" * w for w in widths], *rows]
    text = ("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines)
    return "\n".join(line.rstrip() for line in text)


def cmd_list(args: argparse.Namespace) -> int:
    """Print a table of the registered experiments (or, with --json, everything about them as JSON)."""
    experiments = _registry().registry()
    if args.json:
        print(json.dumps([e.describe() for e in experiments.values()], indent=2))
        return EXIT_OK
    if not experiments:
        print("no experiments registered")
        return EXIT_OK
    terminal = shutil.get_terminal_size((120, 24)).columns
    names = list(experiments)
    papers = [_truncate(e.paper, 34) for e in experiments.values()]
    fixed = max(map(len, names)) + max(map(len, papers)) + len("quick (min)") + 6
    claim_width = max(40, terminal - fixed - 2)
    rows = []
    for name, paper, experiment in zip(names, papers, experiments.values(), strict=True):
        claims = list(experiment.claims)
        more = f" (+{len(claims) - 1} more)" if len(claims) > 1 else ""
        first = claims[0].statement if claims else "(no claims)"
        claim = _truncate(first, claim_width - len(more)) + more
        rows.append([name, paper, claim, f"{experiment.quick_minutes:g}"])
    print(_format_table(["name", "paper", "claim", "quick (min)"], rows))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """Print one experiment: paper, description, claims, main metric, budgets and its config fields."""
    from .runs.runner import resolve_threads

    try:
        experiment = _registry().get_experiment(args.name)
    except ValueError as error:
        raise UsageError(str(error)) from None
    width = max(60, shutil.get_terminal_size((100, 24)).columns - 2)
    print(f"{experiment.name}  ({experiment.paper})")
    print(textwrap.fill(" ".join(experiment.description.split()), width, initial_indent="  ",
                        subsequent_indent="  "))
    print(f"\nmain metric: {experiment.main_metric}")
    print(f"budgets: quick (about {experiment.quick_minutes:g} min on a laptop CPU), full (the paper's scale)")
    threads = resolve_threads(experiment, experiment.config("quick")) or "all"
    print(f"threads: {threads} (PyTorch intra-op threads of a quick run)")
    if experiment.tags:
        print(f"tags: {', '.join(experiment.tags)}")
    print("\nclaims (of the paper above, unless another is named):")
    for number, claim in enumerate(experiment.claims, start=1):
        source = f" [{claim.paper}]" if claim.paper != experiment.paper else ""
        print(textwrap.fill(" ".join(claim.statement.split()) + source, width, initial_indent=f"  {number}. ",
                            subsequent_indent="     "))
    rows = [[row["name"], row["type"], row["quick"], row["full"]] for row in experiment.config_fields()]
    print(f"\nconfig ({experiment.config_class.__name__}; change a field with --set KEY=VALUE):")
    print(textwrap.indent(_format_table(["field", "type", "quick", "full"], rows), "  "))
    print(f"\nrun: neuroplastic run {experiment.name} --budget quick|full --seed N")
    return EXIT_OK


def _parse_sets(items: Sequence[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects key=value, got {item!r}")
        overrides[key.strip()] = value
    return overrides


def _own_overrides(experiments: Sequence[Experiment], overrides: Mapping[str, str],
                   notes: list[str]) -> dict[str, dict[str, str]]:
    """Per experiment, the ``--set`` keys its config has (all of them when one is selected). With several, a key
    that only some have gets a line in ``notes`` (printed once all is checked); one that none has is an error."""
    if len(experiments) == 1:
        return {experiments[0].name: dict(overrides)}
    fields = {e.name: {f.name for f in dataclasses.fields(e.config_class) if f.init} for e in experiments}
    for key in overrides:
        having = [e.name for e in experiments if key in fields[e.name]]
        if not having:
            raise UsageError(f"--set {key}: none of the {len(experiments)} selected experiments has a config "
                             f"field {key!r} (see `neuroplastic show NAME`)")
        if len(having) < len(experiments):
            notes.append(f"note: --set {key} applies to {len(having)} of {len(experiments)} experiments: "
                         f"{', '.join(having)}")
    return {e.name: {k: v for k, v in overrides.items() if k in fields[e.name]} for e in experiments}


def _resume_command(
    names: Sequence[str], args: argparse.Namespace, own: Mapping[str, Mapping[str, str]], resume: bool = True
) -> str:
    """The command that resumes (or, with ``resume=False``, runs) ``names`` as ``args`` ran them."""
    parts = ["neuroplastic", "run", *names, *(["--resume"] if resume else []), "--seed", str(args.seed),
             "--out", args.out, "--budget", args.budget]
    if not resume and getattr(args, "overwrite", False):
        parts.append("--overwrite")
    if args.device != "cpu":
        parts += ["--device", args.device]
    if args.threads is not None:
        parts += ["--threads", str(args.threads)]
    overrides: dict[str, str] = {}
    for name in names:
        overrides.update(own.get(name, {}))
    for key, value in overrides.items():
        parts += ["--set", f"{key}={value}"]
    return shlex.join(parts)


def _color(text: str, code: str) -> str:
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[{code}m{text}\033[0m"
    return text


def _print_summary(experiment: Experiment, summary: dict[str, Any], run_dir: Path) -> None:
    from .runs.report import format_value

    print(f"\n{experiment.name}  ({experiment.paper})")
    for claim in summary["claims"]:
        verdict = _color("PASS", "1;32") if claim["passed"] else _color("FAIL", "1;31")
        print(f"  {verdict}  {claim['statement']}")
        print(f"        measured: {format_value(claim['measured'])}")
    held = sum(c["passed"] for c in summary["claims"])
    print(f"  {held}/{len(summary['claims'])} claims held; {summary['runtime_seconds']:.1f} s; "
          f"run directory: {run_dir}")


def _select(args: argparse.Namespace) -> list[Experiment]:
    registry = _registry()
    if args.all and args.names:
        raise UsageError("name experiments or use --all, not both")
    if args.all:
        experiments = list(registry.registry().values())
        if not experiments:
            raise UsageError("no experiments registered")
        return experiments
    if not args.names:
        raise UsageError("name at least one experiment (see `neuroplastic list`) or use --all")
    try:
        return [registry.get_experiment(name) for name in dict.fromkeys(args.names)]
    except ValueError as error:
        raise UsageError(str(error)) from None


def _prepare_out(args: argparse.Namespace, experiments: Sequence[Experiment]) -> None:
    """Create --out and check every run directory, or a usage error saying why not (nothing is deleted)."""
    from .runs.rundirs import RunDirectoryError, prepare_out, run_path

    paths = [run_path(args.out, e.name, args.budget, args.seed) for e in experiments]
    try:
        prepare_out(Path(args.out), paths, resume=args.resume, overwrite=args.overwrite)
    except RunDirectoryError as error:
        raise UsageError(str(error)) from None


def _job_experiment(experiment: Experiment) -> Any:
    """What a worker process needs to find ``experiment``: its name in the registry, or the experiment itself.

    Raises:
        UsageError: an experiment registered in this process whose functions cannot be pickled.
    """
    registry = _registry()
    if experiment.name not in registry.registered_names():
        return partial(registry.get_experiment, experiment.name)
    try:
        pickle.loads(pickle.dumps(experiment))
    except Exception as error:
        raise UsageError(f"{experiment.name} was registered in this process and cannot be sent to a worker "
                         f"process ({type(error).__name__}: {error}); use --jobs 1") from None
    return experiment


def _workers(args: argparse.Namespace, experiments: Sequence[Experiment], threads: Mapping[str, int | None]) -> int:
    """How many experiments run at once: --jobs, or as many as the cores allow at their thread counts."""
    if len(experiments) == 1:
        return 1
    if args.jobs == "auto":
        cores = os.cpu_count() or 1
        widest = max((count or cores) for count in threads.values())
        workers = min(len(experiments), max(1, cores // widest))
    else:
        workers = min(len(experiments), args.jobs)
    if workers > 1:
        try:
            for experiment in experiments:
                _job_experiment(experiment)
        except UsageError as error:
            if args.jobs != "auto":
                raise
            print(f"note: running one experiment at a time: {error}", file=sys.stderr)
            return 1
    return workers


def cmd_run(args: argparse.Namespace) -> int:
    """Run the named experiments (or all), print each claim's verdict, and return the exit code."""
    from .runs.runner import check_device, prepare_config, resolve_threads

    experiments = _select(args)
    overrides = _parse_sets(args.set or [])
    try:
        check_device(args.device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    own = _own_overrides(experiments, overrides, notes := [])
    threads: dict[str, int | None] = {}
    for experiment in experiments:  # check every config before spending time on the first run
        try:
            config = prepare_config(experiment, args.budget, own[experiment.name], args.threads)
        except ValueError as error:
            raise UsageError(f"{experiment.name}: {error}") from None
        threads[experiment.name] = resolve_threads(experiment, config, args.threads)
    workers = _workers(args, experiments, threads)
    _prepare_out(args, experiments)
    print(*notes, sep="\n", end="\n" if notes else "", file=sys.stderr)  # after any error in the checks above
    if workers > 1:
        return _run_parallel(args, experiments, own, workers)
    return _run_sequential(args, experiments, own)


def _finish(args: argparse.Namespace, summaries: Sequence[dict[str, Any]], failed: Sequence[str]) -> int:
    """Print the total over several experiments and the errors; return the exit code of a completed run."""
    total = sum(len(s["claims"]) for s in summaries)
    held = sum(c["passed"] for s in summaries for c in s["claims"])
    if len(summaries) + len(failed) > 1:
        print(f"\n{held} of {total} claims held across {len(summaries)} experiments")
    if failed:
        print(f"error: {len(failed)} experiment(s) failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    if args.strict and held < total:
        print(f"error: {total - held} of {total} claims did not hold (--strict)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _run_sequential(
    args: argparse.Namespace, experiments: Sequence[Experiment], own: Mapping[str, Mapping[str, str]]
) -> int:
    """Run the experiments one after another in this process, with progress bars."""
    from .runs import CheckpointMismatch, ConfigRejected, RunDirectoryError, RunInterrupted, run_experiment, run_path
    from .runs.rundirs import describe_os_error

    failed: list[str] = []
    summaries: list[dict[str, Any]] = []
    for index, experiment in enumerate(experiments):
        run_dir = run_path(args.out, experiment.name, args.budget, args.seed)
        try:
            summary = run_experiment(
                experiment, budget=args.budget, seed=args.seed, out=args.out, overrides=own[experiment.name],
                device=args.device, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                threads=args.threads,
            )
        except RunInterrupted:
            remaining = [e.name for e in experiments[index + 1:]]
            print(f"\ninterrupted; resume with: {_resume_command([experiment.name], args, own)}",
                  file=sys.stderr)
            if remaining:
                command = _resume_command(remaining, args, own, resume=False)
                print(f"not started: {', '.join(remaining)} (run with: {command})", file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            print(f"\naborted; the last checkpoint in {run_dir} can be resumed with: "
                  f"{_resume_command([experiment.name], args, own)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except CheckpointMismatch as error:
            raise UsageError(f"{experiment.name}: {error} (run without --resume to start over)") from None
        except (RunDirectoryError, ConfigRejected) as error:
            raise UsageError(f"{experiment.name}: {error}") from None
        except OSError as error:  # the file system failed (e.g. the directory became read-only): one line
            print(f"error: {experiment.name} failed: {describe_os_error(error)}", file=sys.stderr)
            failed.append(experiment.name)
            continue
        except Exception as error:
            traceback.print_exc()
            print(f"error: {experiment.name} failed: {type(error).__name__}: {error}", file=sys.stderr)
            failed.append(experiment.name)
            continue
        _print_summary(experiment, summary, run_dir)
        summaries.append(summary)
    return _finish(args, summaries, failed)


_INTERRUPT_NOTES = {
    1: "interrupt: the running experiments save a checkpoint after their current step and no other starts "
       "(Ctrl-C again to stop them at once)",
    2: "interrupt: stopping the running experiments now (Ctrl-C again to terminate them)",
}


def _run_parallel(
    args: argparse.Namespace, experiments: Sequence[Experiment], own: Mapping[str, Mapping[str, str]],
    workers: int,
) -> int:
    """Run the experiments in ``workers`` processes, the longest first (so that the last to finish is short),
    with a status line for each running one and its claims as each finishes."""
    from .runs import parallel, run_path

    by_name = {e.name: e for e in experiments}
    ordered = sorted(experiments, key=lambda e: -parallel.expected_seconds(Path(args.out), e, args.budget))
    jobs = [
        parallel.Job(e.name, _job_experiment(e), {
            "budget": args.budget, "seed": args.seed, "out": args.out, "overrides": own[e.name],
            "device": args.device, "resume": args.resume, "overwrite": args.overwrite, "threads": args.threads,
        })
        for e in ordered
    ]
    board = parallel.StatusBoard(enabled=not args.no_progress)
    print(f"running {len(jobs)} experiments, {workers} at a time (--jobs)", flush=True)
    summaries: list[dict[str, Any]] = []
    failed: list[str] = []
    mismatched: list[str] = []
    interrupts: list[int] = []

    def on_result(result: JobResult) -> None:
        board.remove(result.name)
        board.clear()
        if result.status == parallel.FINISHED:
            assert result.summary is not None
            _print_summary(by_name[result.name], result.summary,
                           run_path(args.out, result.name, args.budget, args.seed))
            summaries.append(result.summary)
        elif result.status == parallel.FAILED:
            if result.details:
                print(result.details, file=sys.stderr, end="")
            print(f"error: {result.name} failed: {result.error}", file=sys.stderr)
            failed.append(result.name)
        elif result.status == parallel.MISMATCH:
            print(f"error: {result.name}: {result.error} (run without --resume to start over)", file=sys.stderr)
            mismatched.append(result.name)
        elif result.status == parallel.REFUSED:
            print(f"error: {result.name}: {result.error}", file=sys.stderr)
            mismatched.append(result.name)
        sys.stdout.flush()
        board.draw()

    def on_interrupt(count: int) -> None:
        interrupts.append(count)
        board.clear()
        print(_INTERRUPT_NOTES.get(count, "interrupt: terminating the running experiments"), file=sys.stderr)
        board.draw()

    results = parallel.run_jobs(jobs, workers, on_event=board.event, on_result=on_result,
                                on_interrupt=on_interrupt)
    board.clear()
    unfinished = (parallel.INTERRUPTED, parallel.ABORTED) + ((parallel.FAILED,) if interrupts else ())
    stopped = [r.name for r in results if r.status in unfinished]  # a worker terminated by Ctrl-C: FAILED
    not_started = [r.name for r in results if r.status == parallel.NOT_STARTED]
    if stopped or not_started or interrupts:
        if summaries:
            print(f"\n{len(summaries)} experiments finished: {', '.join(s['experiment'] for s in summaries)}")
        if stopped:
            print(f"\ninterrupted; resume with: {_resume_command(stopped, args, own)}", file=sys.stderr)
        if not_started:
            command = _resume_command(not_started, args, own, resume=False)
            print(f"not started: {', '.join(not_started)} (run with: {command})", file=sys.stderr)
        return EXIT_INTERRUPTED
    code = _finish(args, summaries, failed)
    return EXIT_USAGE if mismatched else code


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report (HTML, Markdown or JSON) of the run directories under ``args.directory``."""
    from .runs import write_report
    from .runs.report import SUFFIXES, find_run_dirs, render_report

    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"no such directory: {directory}")
    if not find_run_dirs(directory):
        print(f"error: no runs found in {directory}", file=sys.stderr)
        return EXIT_FAILED
    if args.output == "-":
        sys.stdout.write(render_report(directory, args.format, base=Path.cwd()))
        return EXIT_OK
    output = Path(args.output) if args.output else directory / f"report{SUFFIXES[args.format]}"
    path = write_report(directory, output, format=args.format)
    print(f"report written to {path}")
    return EXIT_OK


def _benchmark_dirs() -> list[Path]:
    candidates = [Path.cwd() / "benchmarks", Path(__file__).resolve().parents[2] / "benchmarks"]
    return [path for path in dict.fromkeys(candidates) if path.is_dir()]


def _first_docstring_line(path: Path) -> str:
    try:
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError, ValueError):
        return ""
    return docstring.strip().splitlines()[0] if docstring.strip() else ""


def cmd_bench(args: argparse.Namespace) -> int:
    """List the benchmark scripts and how to run them."""
    directories = _benchmark_dirs()
    scripts = [p for d in directories for p in sorted(d.glob("*.py")) if not p.name.startswith("_")]
    if not scripts:
        print("no benchmarks found (looked for a benchmarks/ directory here and next to the source tree)")
        return EXIT_OK
    print("benchmarks (each prints one JSON line; run with --help for options):")
    for script in scripts:
        try:
            shown = script.relative_to(Path.cwd())
        except ValueError:
            shown = script
        print(f"  python {shown}")
        description = _first_docstring_line(script)
        if description:
            print(f"      {description}")
    return EXIT_OK


def _int_arg(text: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer option from ``minimum`` to ``maximum`` (None: no bound), or an argparse error saying so."""
    value = int(text) if text.strip().removeprefix("-").isdecimal() else minimum - 1
    if value < minimum:
        sign = "positive" if minimum else "non-negative"
        raise argparse.ArgumentTypeError(f"expected a {sign} integer, got {text!r}")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"expected at most {maximum}, got {text!r}")
    return value


def _jobs(text: str) -> int | str:
    return "auto" if text == "auto" else _int_arg(text)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``error: <message> (see `<prog> --help`)``, exit code 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"error: {message} (see `{self.prog} --help`)\n")


RUN_EPILOG = """\
--set with several experiments (or --all): each KEY applies to the experiments whose config has that field
(`neuroplastic show NAME` lists them); it is an error only if none has it. Every value is checked before
anything is run or written.

--jobs N runs N experiments at once, each in its own process with its own seed, so results are those of
one-at-a-time runs; auto (the default) runs as many as the cores allow at the experiments' thread counts.
Ctrl-C stops them after their current step with a checkpoint and prints the command that resumes them.

""" + EXIT_CODES


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neuroplastic`` command."""
    from .runs.experiment import BUDGETS
    from .runs.report import FORMATS as REPORT_FORMATS
    from .runs.runner import DEVICES, MAX_SEED
    from .runs.threads import MAX_THREADS

    parser = _Parser(
        prog="neuroplastic", description="Reproduce results on plastic neural networks and report them.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="list the experiments")
    listing.add_argument("--json", action="store_true",
                         help="print every experiment's claims, budgets and config values as JSON")
    listing.set_defaults(handler=cmd_list)

    show = commands.add_parser("show", help="describe one experiment: claims, budgets, config fields")
    show.add_argument("name", metavar="NAME", help="an experiment (see `neuroplastic list`)")
    show.set_defaults(handler=cmd_show)

    run = commands.add_parser("run", help="run experiments and check their claims", epilog=RUN_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (see `neuroplastic list`)")
    run.add_argument("--all", action="store_true", help="run every registered experiment")
    run.add_argument("--budget", choices=BUDGETS, default="quick",
                     help="quick: minutes on a laptop CPU; full: the paper's scale (default: quick)")
    run.add_argument("--seed", type=partial(_int_arg, minimum=0, maximum=MAX_SEED), default=0,
                     help=f"random seed, 0 to {MAX_SEED} (default: 0)")
    run.add_argument("--out", default="runs", help="runs go in OUT/NAME/BUDGET-seedSEED (default: runs)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config field, e.g. --set steps=100 (repeatable; with several "
                          "experiments, applied where the field exists)")
    run.add_argument("--device", choices=DEVICES, default="cpu", help="device (default: cpu)")
    run.add_argument("--threads", type=partial(_int_arg, maximum=MAX_THREADS), metavar="N",
                     help="PyTorch threads per experiment (default: the experiment's own, usually 1)")
    run.add_argument("--jobs", type=_jobs, default="auto", metavar="N",
                     help="experiments run at once in separate processes (default: auto, i.e. cores "
                          "divided by threads; 1 runs them one after another in this process)")
    run.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    run.add_argument("--overwrite", action="store_true", help="replace finished runs (else a finished run is an error)")
    run.add_argument("--strict", action="store_true", help="exit with code 1 if a claim does not hold")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars and status lines")
    run.set_defaults(handler=cmd_run)

    report = commands.add_parser("report", help="write a report (HTML, Markdown or JSON) of run directories")
    report.add_argument("directory", metavar="DIR", help="a run directory or a directory with run directories below")
    report.add_argument("--format", choices=REPORT_FORMATS, default="html",
                        help="html: one self-contained page; markdown: the claims table and a section per "
                             "experiment (README, results pages); json: the same data (default: html)")
    report.add_argument("--output", metavar="FILE",
                        help="where to write it; - for standard output (default: DIR/report.html, .md or .json)")
    report.set_defaults(handler=cmd_report)

    commands.add_parser("bench", help="list the benchmark scripts").set_defaults(handler=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neuroplastic`` command; returns the exit code (see ``EXIT_CODES``)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C outside a run (which handles it itself), e.g. while importing PyTorch
        print(("\n" if sys.stderr.isatty() else "") + "interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away, e.g. `neuroplastic list --json | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_FAILED


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    import matplotlib

    matplotlib.use("Agg")  # runs save figures to files and never need a display
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
