"""neuroplastic: neural networks that change themselves, on three timescales.

- ``neuroplastic.plasticity``: synapses within a lifetime (Hebbian, Oja, BCM; neuromodulation).
- ``neuroplastic.structure``: connections and neurons across training.
- ``neuroplastic.evolution``: genomes across generations.
"""

from __future__ import annotations

import os
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# NumPy and PyTorch are imported where they are used, so that `import neuroplastic.cli` is quick and a Ctrl-C
# during the command's start-up is caught by the command (see neuroplastic.cli.main).

__version__ = "0.1.0"

__all__ = ["seed_everything", "__version__"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's global generators; return a fresh ``torch.Generator``.

    Args:
        seed: a non-negative integer.

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed``, for code that takes an explicit generator.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
