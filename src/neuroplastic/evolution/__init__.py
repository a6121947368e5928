"""Timescale 3: networks that change across generations.

Genomes are flat parameter vectors of a template model (:class:`ParameterLayout`), held with their ids, parents,
generations and fitness in a :class:`Population`. Genetic operators are pure functions (``operators``); the
generational :class:`GeneticAlgorithm` and the steady-state :class:`SteadyStateGA` of Lehman et al. 2018 share
an ask/tell interface. Safe mutations, evaluators from one process to a Ray cluster, Lamarckian evolution and
self-replication are being built here, on top of ``neuroplastic.structure`` and below the experiments (see the
package layers in ``docs/architecture.md``).
"""

from .ga import GAConfig, GeneticAlgorithm, SteadyStateConfig, SteadyStateGA
from .genome import ParameterLayout, ParameterSlot
from .operators import (
    elite_indices,
    gaussian_mutation,
    genome_seed,
    genome_seeds,
    one_point_crossover,
    tournament_selection,
    truncation_selection,
    uniform_crossover,
)
from .population import LineageRecord, Population
from .protocols import Best, Evaluation, Evaluator, GaussianMutation, Mutation, MutationContext, Pending

__all__ = [
    "Best",
    "Evaluation",
    "Evaluator",
    "GAConfig",
    "GaussianMutation",
    "GeneticAlgorithm",
    "LineageRecord",
    "Mutation",
    "MutationContext",
    "ParameterLayout",
    "ParameterSlot",
    "Pending",
    "Population",
    "SteadyStateConfig",
    "SteadyStateGA",
    "elite_indices",
    "gaussian_mutation",
    "genome_seed",
    "genome_seeds",
    "one_point_crossover",
    "tournament_selection",
    "truncation_selection",
    "uniform_crossover",
]
