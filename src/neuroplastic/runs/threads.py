"""Run a block of code with a given number of PyTorch intra-op threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .._checks import check_int


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run a block with ``count`` intra-op threads, then restore the previous number.

    Small models (tens to hundreds of neurons) run faster on one thread than on several, and on a busy
    machine several threads can be an order of magnitude slower (figures in ``docs/benchmarks.md``).
    """
    check_int("count", count)
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
