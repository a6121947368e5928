"""Timescale 3: networks that change across generations (planned).

Genetic algorithms with safe mutations, Lamarckian evolution and self-replication will live here, on top of
``neuroplastic.structure`` and below the experiments (see the package layers in ``docs/architecture.md``).
The package exists so that the layering is in place; it has no public names yet.
"""

__all__: list[str] = []
