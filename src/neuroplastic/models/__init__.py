"""Reusable networks of the experiments, built from explicit arguments (no experiment config).

- :mod:`~neuroplastic.models.mlp`: ReLU multilayer perceptrons (:func:`relu_mlp`).
- :mod:`~neuroplastic.models.spiking`: spiking MLPs of LIF neurons (:class:`SpikingMLP`,
  :class:`SpikingRateMLP`, :func:`spiking_activity`).
"""

from neuroplastic.models.mlp import relu_mlp
from neuroplastic.models.spiking import SpikingMLP, SpikingRateMLP, spiking_activity

__all__ = [
    "relu_mlp",
    "SpikingMLP", "SpikingRateMLP", "spiking_activity",
]
