"""Build, cache and load small C kernels at first use (shared by the packages that ship ``.c`` files).

A kernel source ships as package data. :func:`build_libraries` compiles it with the machine's C compiler
(``$CC``, else ``cc``, ``gcc`` or ``clang``) into a cache directory (``$NEUROPLASTIC_CACHE_DIR``, else
``$XDG_CACHE_HOME/neuroplastic`` or ``~/.cache/neuroplastic``), one shared library per variant (e.g. per
``-DREAL=float|double``), keyed by the source, the flags, the compiler and its version, and the CPU (for
``-march=native``). Builds are atomic (compiled to a temporary file, then renamed), with OpenMP when the
compiler has it. :class:`LazyLibraries` builds and loads once per process, remembers a failure and warns
about it once, so that callers fall back to PyTorch operations.

One switch governs every native kernel of the library (the SNN kernels of :mod:`neuroplastic.neurons.spike_kernels`
and the trace kernels of :mod:`neuroplastic.plasticity.trace_kernels`): ``NEUROPLASTIC_NATIVE=0`` (or
``false``/``no``/``off``) at import turns them off (:func:`env_enabled`), and :func:`use_native` turns them off
(or on) within a block; :func:`native_enabled` reads it.

:func:`advise_huge_pages` asks Linux to back a large, freshly allocated CPU buffer with 2 MiB pages before a
kernel first writes it (one page fault per 2 MiB instead of per 4 KiB).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["FLAGS", "HUGE_PAGE_BYTES", "advise_huge_pages", "env_enabled", "native_enabled", "use_native",
           "find_compiler", "cpu_identity", "cache_dir", "compile_library", "build_libraries", "LazyLibraries"]

FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-shared", "-fPIC", "-std=c99")
"""Compiler flags; ``-ffp-contract=off`` keeps ``a * b + c`` rounded as PyTorch rounds it (no FMA)."""

K = TypeVar("K", bound=Hashable)
W = TypeVar("W")


def env_enabled() -> bool:
    """False when ``NEUROPLASTIC_NATIVE`` is ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get("NEUROPLASTIC_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


_enabled = env_enabled()


def native_enabled() -> bool:
    """Whether the native kernels may be used: :func:`env_enabled` at import, or as :func:`use_native` set it."""
    return _enabled


@contextlib.contextmanager
def use_native(enabled: bool) -> Iterator[None]:
    """Within the block, allow (True) or forbid (False) every native kernel of the library.

    The one switch for the SNN kernels and the plastic trace kernels (e.g. to compare a native path with its
    PyTorch fallback); the previous setting is restored on exit, also after an exception. Process-wide, not
    per thread.
    """
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


HUGE_PAGE_BYTES = 2 << 20
"""The transparent huge page size of x86-64 and most arm64 Linux kernels (2 MiB)."""
_MADV_HUGEPAGE = 14  # <sys/mman.h> on Linux (every architecture)


@functools.cache
def _madvise() -> Callable[[int, int, int], int] | None:
    """libc's ``madvise`` on Linux (looked up once), else None."""
    if platform.system() != "Linux":
        return None
    with contextlib.suppress(OSError, AttributeError):
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        madvise.restype = ctypes.c_int
        return madvise
    return None


def advise_huge_pages(tensor: Tensor) -> bool:
    """Ask Linux to back the untouched pages of a freshly allocated CPU ``tensor`` with transparent huge pages.

    ``madvise(MADV_HUGEPAGE)`` on the 2 MiB-aligned part of its storage (what PyTorch's
    ``THP_MEM_ALLOC_ENABLE=1`` does for every allocation, here for one buffer). Writing a buffer of hundreds of
    MB into fresh memory otherwise costs one page fault per 4 KiB; on a kernel whose THP mode is ``madvise``
    (the usual default) that is most of the time of a kernel that fills it. Returns whether the advice was
    given: False off Linux, for non-CPU tensors, tensors under two huge pages, or a refused call (the memory
    then just stays in small pages). Pages already written are not changed.
    """
    if tensor.device.type != "cpu":
        return False
    storage = tensor.untyped_storage()  # the whole allocation, whatever the view's strides
    madvise, nbytes = _madvise(), storage.nbytes()
    if madvise is None or nbytes < 2 * HUGE_PAGE_BYTES:
        return False
    start = (storage.data_ptr() + HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1)
    stop = (storage.data_ptr() + nbytes) & ~(HUGE_PAGE_BYTES - 1)
    return stop > start and madvise(start, stop - start, _MADV_HUGEPAGE) == 0


def find_compiler() -> str | None:
    """The C compiler to use: ``$CC``, else ``cc``, ``gcc`` or ``clang`` (full path), or None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cpu_identity() -> str:
    """What ``-march=native`` depends on: the CPU model and its feature flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine() + platform.processor()
    lines = [line for line in text.splitlines() if line.startswith(("model name", "flags", "Features"))]
    return platform.machine() + "".join(sorted(set(lines)))


def cache_dir() -> Path:
    """Where compiled kernels are cached."""
    if os.environ.get("NEUROPLASTIC_CACHE_DIR"):
        return Path(os.environ["NEUROPLASTIC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "neuroplastic"


def compile_library(compiler: str, source: Path, defines: Sequence[str], target: Path,
                    flags: Sequence[str] = FLAGS) -> None:
    """Compile ``source`` into the shared library ``target`` atomically, with OpenMP if the compiler has it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(handle)
    errors = []
    try:
        for openmp in (["-fopenmp"], []):
            command = [compiler, *flags, *openmp, *defines, str(source), "-o", temporary, "-lm"]
            result = subprocess.run(command, capture_output=True, text=True, timeout=300)
            if result.returncode == 0:
                os.replace(temporary, target)
                return
            errors.append(result.stderr.strip()[-400:])
        raise RuntimeError(f"{compiler} failed: {errors[-1]}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def build_libraries(name: str, source: bytes, variants: Mapping[K, tuple[str, Sequence[str]]],
                    directory: Path | None = None, compiler: str | None = None,
                    flags: Sequence[str] = FLAGS) -> dict[K, Path]:
    """Compile ``source`` once per variant unless cached; returns each variant's shared library path.

    ``variants`` maps a key to ``(file_stem, defines)``, e.g. ``{torch.float32: ("k_float", ["-DREAL=float"])}``.
    Libraries go to ``directory / f"{name}-{key}" / f"{file_stem}.so"``, ``key`` a hash of the source, the
    flags, the compiler, its version and the CPU. Raises ``RuntimeError`` without a compiler or on a failed
    build.
    """
    compiler = compiler or find_compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (set $CC, or install gcc or clang)")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(b"\0".join([source, " ".join(flags).encode(), compiler.encode(), version.encode(),
                                     cpu_identity().encode()])).hexdigest()[:16]
    folder = (directory or cache_dir()) / f"{name}-{key}"
    paths = {variant: folder / f"{stem}.so" for variant, (stem, _) in variants.items()}
    missing = [variant for variant, path in paths.items() if not path.exists()]
    if missing:
        with tempfile.TemporaryDirectory() as scratch:
            source_path = Path(scratch) / f"{name}.c"
            source_path.write_bytes(source)
            for variant in missing:
                compile_library(compiler, source_path, variants[variant][1], paths[variant], flags)
    return paths


class LazyLibraries(Generic[K, W]):
    """Build (or find cached) and load a set of libraries at first use; remember a failure, warn once.

    ``build()`` returns ``{key: path}`` (e.g. :func:`build_libraries`); ``wrap(cdll, key)`` turns each loaded
    library into the object callers use. :meth:`get` returns ``{key: wrapped}`` or None if building or
    loading failed (the reason is in :attr:`failure`, and a warning naming ``what`` and ``fallback`` is
    issued once).
    """

    def __init__(self, build: Callable[[], Mapping[K, Path]], wrap: Callable[[ctypes.CDLL, K], W], what: str,
                 fallback: str) -> None:
        self._build, self._wrap, self.what, self.fallback = build, wrap, what, fallback
        self._lock = threading.Lock()
        self.loaded: dict[K, W] | None = None
        self.failure: str | None = None

    def get(self) -> dict[K, W] | None:
        """``{key: wrapped library}``, built and loaded at the first call; None if that failed (warned once)."""
        if self.loaded is None and self.failure is None:
            with self._lock:
                if self.loaded is None and self.failure is None:
                    try:
                        paths = self._build()
                        self.loaded = {key: self._wrap(ctypes.CDLL(str(path)), key) for key, path in paths.items()}
                    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                        self.failure = str(error)
                        warnings.warn(f"neuroplastic: {self.what} unavailable ({self.failure}); {self.fallback}",
                                      stacklevel=3)
        return self.loaded

    def reset(self) -> None:
        """Forget what was loaded or failed (the next :meth:`get` tries again)."""
        with self._lock:
            self.loaded, self.failure = None, None
