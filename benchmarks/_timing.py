"""Timing shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, so this folder is on the path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def fastest(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``fn`` in seconds, after one untimed warm-up call."""
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
