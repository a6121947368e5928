"""neuroplastic: neural networks that change themselves, on three timescales.

- ``neuroplastic.plasticity``: synapses within a lifetime (Hebbian, Oja, BCM; neuromodulation), and
  ``neuroplastic.neurons``: spiking neurons.
- ``neuroplastic.structure``: connections and neurons across training.
- ``neuroplastic.evolution``: genomes across generations (genetic algorithms, safe mutations, pattern-producing
  genomes with Lamarckian learning, self-replicating networks).
- Around them: ``neuroplastic.continual`` (task streams, metrics, CLNP, HLOP), ``neuroplastic.dynamics``
  (reservoirs, memory capacity, Lyapunov exponents), ``neuroplastic.quantization`` (quantised layers, packed
  binary kernels) and ``neuroplastic.optim`` (gradient activation functions).

``import neuroplastic`` is cheap: it defines :func:`seed_everything` and ``__version__`` and imports a
subpackage when it is first used, so ``import neuroplastic; neuroplastic.plasticity.PlasticRNN`` works.
The package layers and their import direction are described in ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
import os
import random
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# NumPy and PyTorch are imported where they are used, so that `import neuroplastic.cli` is quick and a Ctrl-C
# during the command's start-up is caught by the command (see neuroplastic.cli.main).

__version__ = "0.1.0"

# Subpackages and public modules loaded on first attribute access (module ``__getattr__``, PEP 562).
_SUBMODULES: tuple[str, ...] = (
    "neurons", "plasticity", "structure", "dynamics", "evolution", "continual", "quantization", "optim", "models",
    "tasks", "data", "evaluation", "runs", "experiments",
)

__all__ = ["__version__", "seed_everything", *_SUBMODULES]


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module  # later accesses do not come back here
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBMODULES))


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's global generators; return a fresh ``torch.Generator``.

    Args:
        seed: a non-negative integer.

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed``, for code that takes an explicit generator.
    """
    import numpy as np
    import torch

    from neuroplastic._checks import check_int

    check_int("seed", seed, minimum=0)

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
