"""Timing shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, so this folder is on the path)."""

from __future__ import annotations

import statistics
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


def alternating(fn: Callable[[], object], unit: Callable[[], object], repeats: int) -> dict[str, float]:
    """Seconds of ``fn`` and of a unit, timed alternately after one warm-up each (a loaded machine slows both
    alike): the fastest of each (``sec``, ``unit_sec``; closest to the uncontended cost) and the median of the
    pairwise ratios (``median_pair_ratio``)."""
    fn(), unit()  # warm-up
    fn_times, unit_times = [], []
    for _ in range(repeats):
        for f, out in ((fn, fn_times), (unit, unit_times)):
            start = time.perf_counter()
            f()
            out.append(time.perf_counter() - start)
    return {"sec": min(fn_times), "unit_sec": min(unit_times),
            "median_pair_ratio": statistics.median(f / u for f, u in zip(fn_times, unit_times, strict=True))}
