"""Timescale 3: networks that change across generations.

Genomes are flat parameter vectors of a template model (:class:`ParameterLayout`), held with their ids, parents,
generations and fitness in a :class:`Population`. Genetic operators are pure functions (``operators``); the
generational :class:`GeneticAlgorithm` and the steady-state :class:`SteadyStateGA` of Lehman et al. 2018 share
an ask/tell interface. Evaluators run a problem in one process (vectorised over the population:
:class:`LocalEvaluator`; :class:`GymProblem` steps all genomes' episodes in one gymnasium vector environment), in
a process pool (:class:`ProcessPoolEvaluator`) or on Ray actors (:class:`RayEvaluator`, ``neuroplastic[ray]``).
Safe mutations, Lamarckian evolution and self-replication are being built here, on top of
``neuroplastic.structure`` and below the experiments (see the package layers in ``docs/architecture.md``).
"""

from .evaluators import LocalEvaluator, Problem, ProcessPoolEvaluator, check_evaluation, merge_evaluations
from .ga import GAConfig, GeneticAlgorithm, SteadyStateConfig, SteadyStateGA
from .genome import ParameterLayout, ParameterSlot
from .gym_problem import GymProblem, Rollout
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
from .ray_evaluator import RayEvaluator

__all__ = [
    "Best",
    "Evaluation",
    "Evaluator",
    "GAConfig",
    "GaussianMutation",
    "GeneticAlgorithm",
    "GymProblem",
    "LineageRecord",
    "LocalEvaluator",
    "Mutation",
    "MutationContext",
    "ParameterLayout",
    "ParameterSlot",
    "Pending",
    "Population",
    "Problem",
    "ProcessPoolEvaluator",
    "RayEvaluator",
    "Rollout",
    "SteadyStateConfig",
    "SteadyStateGA",
    "check_evaluation",
    "elite_indices",
    "gaussian_mutation",
    "genome_seed",
    "genome_seeds",
    "merge_evaluations",
    "one_point_crossover",
    "tournament_selection",
    "truncation_selection",
    "uniform_crossover",
]
