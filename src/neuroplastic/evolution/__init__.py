"""Timescale 3: networks that change across generations.

Genomes are flat parameter vectors of a template model (:class:`ParameterLayout`). Genetic algorithms with
safe mutations, evaluators from one process to a Ray cluster, Lamarckian evolution and self-replication are
being built here, on top of ``neuroplastic.structure`` and below the experiments (see the package layers in
``docs/architecture.md``).
"""

from .genome import ParameterLayout, ParameterSlot

__all__ = ["ParameterLayout", "ParameterSlot"]
