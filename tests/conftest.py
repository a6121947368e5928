"""Fixtures shared across test packages, and the hypothesis profiles of the property-based tests."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

from neuroplastic.runs.threads import torch_threads

# "ci" (the default, used by `make test`): a fixed sequence of examples, so that a run is reproducible and its
# time predictable. "explore": random examples, many more of them; run it by hand to look for new failures:
# NEUROPLASTIC_HYPOTHESIS=explore pytest tests -k property
settings.register_profile("ci", derandomize=True, database=None, deadline=None, max_examples=25,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("NEUROPLASTIC_HYPOTHESIS", "ci"))

SOURCE = Path(__file__).resolve().parents[1] / "src" / "neuroplastic"


@contextmanager
def _library_error() -> Iterator[pytest.ExceptionInfo]:
    with pytest.raises((ValueError, TypeError)) as info:
        yield info
    origin = Path(str(info.traceback[-1].path)).resolve()
    assert SOURCE in origin.parents, (
        f"{type(info.value).__name__} came from {origin}, not from the library's own checks: {info.value}"
    )


@pytest.fixture(scope="session")
def library_error() -> Callable[[], AbstractContextManager[pytest.ExceptionInfo]]:
    """``with library_error() as info:`` expects a ``ValueError`` or ``TypeError`` raised by neuroplastic's own
    code (the innermost frame of the traceback is under ``src/neuroplastic``), never one from inside torch."""
    return _library_error


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread for a whole test module: tiny models run faster on one thread than on several, and far
    steadier on a busy machine. Use ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    with torch_threads(1):
        yield


@pytest.fixture
def small_lif_network():
    """A factory of a small recurrent LIF network in float64 for the dynamics and LNP tests:
    ``(n, gain, seed) -> (weight [n, n] (zero diagonal, scaled by gain / sqrt(n)), decay [n], currents [400, n])``."""

    def make(n: int = 12, gain: float = 1.5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        weight = torch.randn(n, n, generator=gen, dtype=torch.float64) * gain / math.sqrt(n)
        weight.fill_diagonal_(0.0)
        decay = torch.exp(-1.0 / (2.0 + 10.0 * torch.rand(n, generator=gen, dtype=torch.float64)))
        currents = 0.6 * torch.randn(400, n, generator=gen, dtype=torch.float64) + 0.4
        return weight, decay, currents

    return make
