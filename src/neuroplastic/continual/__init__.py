"""Continual learning: networks that keep learning on a changing stream of tasks (planned).

This package sits on the top layer of the library, beside ``neuroplastic.evolution``: it may use
``neurons``, ``plasticity`` and ``structure`` (see the package layers in ``docs/architecture.md``).
It exists so that the layering is in place; it has no public names yet.
"""

__all__: list[str] = []
