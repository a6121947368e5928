"""Timescale 3: networks that change across generations.

Genomes are flat parameter vectors of a template model (:class:`ParameterLayout`). Safe mutations (Lehman et
al. 2018: SM-G-SUM, SM-G-ABS, SM-G-SO, SM-R) scale a Gaussian perturbation by how much each weight moves the
outputs on a buffer of the parent's experience (:class:`SafeMutation`, :class:`ExperienceBuffer`). Genetic
algorithms, evaluators from one process to a Ray cluster, Lamarckian evolution and self-replication are being
built here, on top of ``neuroplastic.structure`` and below the experiments (see the package layers in
``docs/architecture.md``).
"""

from .divergence import ROOT, StepSearch, buffer_outputs, divergence_line_search, output_divergence
from .experience import ExperienceBuffer, reservoir_update
from .genome import ParameterLayout, ParameterSlot
from .safe_mutation import (
    METHODS,
    MutationRecord,
    SafeMutation,
    SafeMutationConfig,
    safe_mutate,
    scale_perturbation,
    scaled_perturbation,
    sensitivity_abs,
    sensitivity_so,
    sensitivity_sum,
)

__all__ = [
    "METHODS",
    "ROOT",
    "ExperienceBuffer",
    "MutationRecord",
    "ParameterLayout",
    "ParameterSlot",
    "SafeMutation",
    "SafeMutationConfig",
    "StepSearch",
    "buffer_outputs",
    "divergence_line_search",
    "output_divergence",
    "reservoir_update",
    "safe_mutate",
    "scale_perturbation",
    "scaled_perturbation",
    "sensitivity_abs",
    "sensitivity_so",
    "sensitivity_sum",
]
