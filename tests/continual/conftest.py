"""The continual tests train tiny networks: one thread is faster than several on a shared machine."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread: None) -> None:
    """Every continual test module runs on one intra-op thread (the shared ``one_thread`` fixture)."""
