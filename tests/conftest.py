"""Fixtures shared across test packages."""

from __future__ import annotations

import math

import pytest
import torch


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
