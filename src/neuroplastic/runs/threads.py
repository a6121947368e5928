"""Run a block of code with a given number of PyTorch intra-op threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .._checks import check_int

# the most intra-op threads a run may ask for (PyTorch accepts far more, and then a run can hang creating them)
MAX_THREADS = 256


def check_at_most_max_threads(name: str, count: int | None) -> int | None:
    """Return ``count`` (an int, or None) unless it is above :data:`MAX_THREADS`: a ``ValueError`` naming it."""
    if count is not None and count > MAX_THREADS:
        raise ValueError(f"{name} must be at most {MAX_THREADS} (PyTorch threads), got {count!r}")
    return count


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run a block with ``count`` intra-op threads, then restore the previous number.

    Small models (tens to hundreds of neurons) run faster on one thread than on several, and on a busy
    machine several threads can be an order of magnitude slower (figures in ``docs/benchmarks.md``).
    """
    check_at_most_max_threads("count", check_int("count", count))
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
