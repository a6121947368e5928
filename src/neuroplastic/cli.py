"""The ``neuroplastic`` command: list, run and report experiments, and point to the benchmarks."""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import shutil
import sys
import textwrap
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import experiments as registry_module
from .runs import BUDGETS, CheckpointMismatch, Experiment, RunInterrupted, run_experiment, write_report
from .runs.report import FORMATS as REPORT_FORMATS
from .runs.report import SUFFIXES as REPORT_SUFFIXES
from .runs.report import format_value, render_report
from .runs.runner import DEVICES, check_device, prepare_config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad input from the command line: printed as one ``error:`` line, exit code 2."""


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
    """Print a table of the registered experiments."""
    experiments = registry_module.registry()
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


def _parse_sets(items: Sequence[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects key=value, got {item!r}")
        overrides[key.strip()] = value
    return overrides


def _resume_command(names: Sequence[str], args: argparse.Namespace, overrides: dict[str, str]) -> str:
    parts = ["neuroplastic", "run", *names, "--resume", "--seed", str(args.seed), "--out", args.out,
             "--budget", args.budget]
    if args.device != "cpu":
        parts += ["--device", args.device]
    for key, value in overrides.items():
        parts += ["--set", f"{key}={value}"]
    return shlex.join(parts)


def _color(text: str, code: str) -> str:
    if sys.stdout.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[{code}m{text}\033[0m"
    return text


def _print_summary(experiment: Experiment, summary: dict[str, Any], run_dir: Path) -> None:
    print(f"\n{experiment.name}  ({experiment.paper})")
    for claim in summary["claims"]:
        verdict = _color("PASS", "1;32") if claim["passed"] else _color("FAIL", "1;31")
        print(f"  {verdict}  {claim['statement']}")
        print(f"        measured: {format_value(claim['measured'])}")
    held = sum(c["passed"] for c in summary["claims"])
    print(f"  {held}/{len(summary['claims'])} claims held; {summary['runtime_seconds']:.1f} s; "
          f"run directory: {run_dir}")


def cmd_run(args: argparse.Namespace) -> int:
    """Run the named experiments (or all), print each claim's verdict, and return the exit code."""
    if args.all and args.names:
        raise UsageError("name experiments or use --all, not both")
    if args.all:
        experiments = list(registry_module.registry().values())
        if not experiments:
            raise UsageError("no experiments registered")
    elif args.names:
        try:
            experiments = [registry_module.get_experiment(name) for name in dict.fromkeys(args.names)]
        except ValueError as error:
            raise UsageError(str(error)) from None
    else:
        raise UsageError("name at least one experiment (see `neuroplastic list`) or use --all")
    overrides = _parse_sets(args.set or [])
    try:
        check_device(args.device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    for experiment in experiments:  # check every config before spending time on the first run
        try:
            prepare_config(experiment, args.budget, overrides)
        except ValueError as error:
            raise UsageError(f"{experiment.name}: {error}") from None

    failed: list[str] = []
    total_claims = held_claims = 0
    for index, experiment in enumerate(experiments):
        run_dir = Path(args.out) / experiment.name
        try:
            summary = run_experiment(
                experiment, budget=args.budget, seed=args.seed, out=args.out, overrides=overrides,
                device=args.device, resume=args.resume, progress=not args.no_progress,
            )
        except RunInterrupted:
            remaining = [e.name for e in experiments[index + 1:]]
            print(f"\ninterrupted; resume with: {_resume_command([experiment.name], args, overrides)}",
                  file=sys.stderr)
            if remaining:
                command = _resume_command(remaining, args, overrides).replace(" --resume", "")
                print(f"not started: {', '.join(remaining)} (run with: {command})", file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:
            print(f"\naborted; the last checkpoint in {run_dir} can be resumed with: "
                  f"{_resume_command([experiment.name], args, overrides)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except CheckpointMismatch as error:
            raise UsageError(f"{experiment.name}: {error} (run without --resume to start over)") from None
        except Exception as error:
            traceback.print_exc()
            print(f"error: {experiment.name} failed: {type(error).__name__}: {error}", file=sys.stderr)
            failed.append(experiment.name)
            continue
        _print_summary(experiment, summary, run_dir)
        total_claims += len(summary["claims"])
        held_claims += sum(c["passed"] for c in summary["claims"])
    if len(experiments) > 1:
        finished = len(experiments) - len(failed)
        print(f"\n{held_claims} of {total_claims} claims held across {finished} experiments")
    if failed:
        print(f"error: {len(failed)} experiment(s) failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report (HTML, Markdown or JSON) of the run directories under ``args.directory``."""
    directory = Path(args.directory)
    if not directory.is_dir():
        raise UsageError(f"no such directory: {directory}")
    if args.output == "-":
        sys.stdout.write(render_report(directory, args.format, base=Path.cwd()))
        return EXIT_OK
    output = Path(args.output) if args.output else directory / f"report{REPORT_SUFFIXES[args.format]}"
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neuroplastic`` command."""
    parser = argparse.ArgumentParser(
        prog="neuroplastic", description="Reproduce results on plastic neural networks and report them."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser("list", help="list the experiments").set_defaults(handler=cmd_list)

    run = commands.add_parser("run", help="run experiments and check their claims")
    run.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (see `neuroplastic list`)")
    run.add_argument("--all", action="store_true", help="run every registered experiment")
    run.add_argument("--budget", choices=BUDGETS, default="quick",
                     help="quick: minutes on a laptop CPU; full: the paper's scale (default: quick)")
    run.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    run.add_argument("--out", default="runs", help="parent directory of the run directories (default: runs)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config field, e.g. --set steps=100 (repeatable)")
    run.add_argument("--device", choices=DEVICES, default="cpu", help="device (default: cpu)")
    run.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
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
    """Entry point of the ``neuroplastic`` command; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if args.command == "run" and args.seed < 0:
        print("error: --seed must be a non-negative integer", file=sys.stderr)
        return EXIT_USAGE
    import matplotlib

    matplotlib.use("Agg")  # runs save figures to files and never need a display
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
