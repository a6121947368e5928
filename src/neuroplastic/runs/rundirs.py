"""Run directories on disk: where a run goes, whether it finished, its lock, and the manifest of its files.

A run's directory is ``<out>/<experiment>/<budget>-seed<seed>``. While a run goes on it holds ``.run-lock``
(the kernel's lock on that file, which ends with its process; the file names the owner's pid), and
``.run-files`` lists the files the run wrote, so that a new run deletes those and no others.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: an exclusive-create lock file with the owner's pid
    fcntl = None  # type: ignore[assignment]

from ._io import atomic_write

# The list of the files a run wrote (one name a line), and the lock file of a running run (its pid).
MANIFEST = ".run-files"
LOCK = ".run-lock"
# Files every run writes: a new run deletes them even where no manifest lists them (an older directory).
RUN_FILES = ("config.json", "summary.json", "metrics.csv", "metrics.png", "checkpoint.pt")


class RunDirectoryError(Exception):
    """A run directory that this run may not use (finished, locked, not writable): a one-line message."""


class RunExists(RunDirectoryError):
    """The run directory holds a finished run, which only an explicit overwrite replaces."""


class RunLocked(RunDirectoryError):
    """Another live process is running in the run directory."""


class ConfigRejected(ValueError):
    """The experiment rejected its config (a ValueError) before the run started: nothing was written."""


def run_path(out: str | Path, experiment: str, budget: str, seed: int) -> Path:
    """The directory of one run: ``out/<experiment>/<budget>-seed<seed>``."""
    return Path(out) / experiment / f"{budget}-seed{seed}"


def is_finished(path: str | Path) -> bool:
    """Whether ``path`` holds a finished run (a readable summary.json with ``finished`` true)."""
    try:
        summary = json.loads((Path(path) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("finished") is True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OSError:
        return False
    return True


class RunLock:
    """An exclusive lock on a run directory: ``path/.run-lock``, which holds the owner's pid.

    Where the operating system offers ``flock`` (Linux, macOS), the lock is the kernel's lock on that file: it
    ends with its process, however the process ends, so a lock left by a killed run is never mistaken for a live
    one and two runs that find the same stale lock cannot both take it over. The pid in the file only names the
    owner in the error. Elsewhere the file is created with ``O_CREAT | O_EXCL`` and a lock whose pid is not
    alive is stale and taken over. Use as a context manager; :class:`RunLocked` if another run holds it,
    :class:`RunDirectoryError` if the directory cannot be created or written.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = self.path / LOCK
        self.held = False
        self._fd: int | None = None
        self._created: list[Path] = []  # directories acquire() created, removed on release if still empty

    def acquire(self) -> None:
        self._created = [p for p in (self.path, *self.path.parents) if not p.exists()]
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunDirectoryError(
                f"cannot create the run directory {self.path}: {error.strerror or error}") from None
        if fcntl is None:
            self._acquire_exclusive_file()
        else:
            self._acquire_flock()
        self.held = True

    def _locked_error(self) -> RunLocked:
        owner = self._owner()
        who = f"pid {owner}" if owner is not None else "pid unknown"
        return RunLocked(f"{self.path} is in use by another run ({who}); wait for it to end "
                         f"or delete {self.file} if that process is not a run")

    def _acquire_flock(self) -> None:
        for _ in range(10):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_RDWR, 0o644)
            except OSError as error:
                raise RunDirectoryError(
                    f"cannot write to the run directory {self.path}: {error.strerror or error}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise self._locked_error() from None
            # the holder may have released (and removed) the file between our open and our lock: then we hold
            # a lock on a file nobody else can see, and must lock the one now at the path instead
            try:
                current = os.stat(self.file).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return
            os.close(fd)
        raise RunLocked(f"{self.path} is in use by another run (its lock {self.file} keeps changing)")

    def _acquire_exclusive_file(self) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _pid_alive(owner):
                    raise self._locked_error() from None
                self.file.unlink(missing_ok=True)  # stale: its owner is gone
                continue
            except OSError as error:
                raise RunDirectoryError(
                    f"cannot write to the run directory {self.path}: {error.strerror or error}") from None
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            return
        raise RunLocked(f"{self.path} is in use by another run (its lock {self.file} keeps reappearing)")

    def _owner(self) -> int | None:
        try:
            return int(self.file.read_text().strip())
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self.held:
            if self._fd is not None:
                self.file.unlink(missing_ok=True)  # removed while still locked, then unlocked by closing
                os.close(self._fd)
                self._fd = None
            elif self._owner() == os.getpid():
                self.file.unlink(missing_ok=True)
            self.held = False
            for directory in self._created:  # a run that never started leaves no empty directories
                try:
                    directory.rmdir()
                except OSError:
                    break

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def earlier_layout_checkpoint(path: Path, budget: str, seed: int) -> Path | None:
    """The checkpoint of this run where runs were kept before the ``<budget>-seed<seed>`` directories: in
    ``<out>/<experiment>/`` itself, when the config.json beside it names this budget and seed; else None."""
    old = path.parent / "checkpoint.pt"
    if not old.is_file():
        return None
    try:
        config = json.loads((path.parent / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("budget") != budget or config.get("seed") != seed:
        return None
    return old


def read_manifest(path: Path) -> list[str]:
    """The file names ``path/.run-files`` lists (plain names only; nothing outside the directory)."""
    try:
        lines = (path / MANIFEST).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line for line in lines if line and "/" not in line and "\\" not in line and line not in (".", "..")]


def write_manifest(path: Path, names: list[str]) -> None:
    """Write ``path/.run-files``: ``names``, one a line, atomically."""
    data = "".join(f"{name}\n" for name in names).encode("utf-8")
    atomic_write(path / MANIFEST, lambda f: f.write(data))


def delete_run_files(path: Path, names: list[str]) -> None:
    """Delete the files ``names`` (a previous run's manifest) and :data:`RUN_FILES` from ``path``; keep the rest."""
    for name in dict.fromkeys([*names, *RUN_FILES]):
        file = path / name
        if file.is_file() or file.is_symlink():
            file.unlink()


class Manifest:
    """The files a run wrote (``path/.run-files``): recorded as they are written, deleted by the next run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.names: list[str] = []

    def begin(self, *, resume: bool = False) -> None:
        """A new run deletes the previous run's files (:func:`delete_run_files`); a resumed one keeps them
        in its manifest and deletes only its stale summary.json. Then :data:`RUN_FILES` are recorded."""
        previous = read_manifest(self.path)
        if resume:
            (self.path / "summary.json").unlink(missing_ok=True)
            self.names = previous
        else:
            delete_run_files(self.path, previous)
        self.record(*RUN_FILES)

    def record(self, *names: str) -> None:
        """Add plain file names of the run directory to the manifest (written at once, atomically)."""
        new = [name for name in dict.fromkeys(names) if name not in self.names]
        if new:
            self.names.extend(new)
            write_manifest(self.path, self.names)


def check_run_path(path: Path, *, resume: bool = False, overwrite: bool = False) -> None:
    """Whether a run may use ``path``: RunDirectoryError (a file is in the way, not writable) or RunExists
    (a finished run there, and neither ``resume`` nor ``overwrite``)."""
    for parent in (path, *path.parents):
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise RunDirectoryError(f"cannot create the run directory {path}: {parent} is a file")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise RunDirectoryError(f"cannot write to the run directory {path}: permission denied "
                                        f"({parent})")
            break
    if not (resume or overwrite) and is_finished(path):
        raise RunExists(f"{path} holds a finished run; use --overwrite to replace it (or another --out)")


def prepare_out(out: Path, paths: list[Path], *, resume: bool = False, overwrite: bool = False) -> None:
    """Create ``out`` and check every run directory in ``paths`` (:func:`check_run_path`); nothing of a
    previous run is touched. RunDirectoryError (or RunExists) says why a directory cannot be used."""
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"cannot create the output directory {out}: it is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunDirectoryError(f"cannot create the output directory {out}: {error.strerror or error}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"cannot write to the output directory {out}: permission denied")
    for path in paths:
        check_run_path(path, resume=resume, overwrite=overwrite)


def describe_os_error(error: OSError) -> str:
    """A file-system error as one line: its type, what failed and on which file."""
    where = f": {error.filename}" if error.filename else ""
    return f"{type(error).__name__}: {error.strerror or error}{where}"
