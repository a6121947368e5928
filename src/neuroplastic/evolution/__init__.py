"""Timescale 3: networks that change across generations.

Genomes are flat parameter vectors of a template model (:class:`ParameterLayout`), held with their ids, parents,
generations and fitness in a :class:`Population`. Genetic operators are pure functions (``operators``); the
generational :class:`GeneticAlgorithm` and the steady-state :class:`SteadyStateGA` of Lehman et al. 2018 share
an ask/tell interface. Safe mutations (Lehman et al. 2018: SM-G-SUM, SM-G-ABS, SM-G-SO, SM-R) scale a Gaussian
perturbation by how much each weight moves the outputs on a buffer of the parent's experience
(:class:`SafeMutation`, :class:`ExperienceBuffer`). Evaluators run a problem in one process (vectorised over the
population: :class:`LocalEvaluator`; :class:`GymProblem` steps all genomes' episodes in one gymnasium vector
environment), in a process pool (:class:`ProcessPoolEvaluator`) or on Ray actors (:class:`RayEvaluator`,
``neuroplastic[ray]``). Problems: supervised fitness (:class:`SupervisedProblem`, the recurrent parity task
:class:`ParityProblem`, with recurrent layers unrolled for ``vmap``) and the breadcrumb hard maze
(:class:`HardMazeProblem`), and recurrent (plastic) policies on the cue-reward task, the population stepped
together by ``vmap`` (:class:`CueRewardProblem`, :class:`RecurrentPolicy`, :func:`population_call`).
Self-replicating networks (Chang & Lipson 2018): :class:`Quine` outputs its own weights from a fixed random
embedding of each parameter index, trained by optimisation, regeneration or both (:class:`QuineTrainer`);
:class:`AuxiliaryQuine` also classifies digits (:class:`AuxiliaryTrainer`). The package sits on top of
``neuroplastic.structure`` and below the experiments (see the package layers in ``docs/architecture.md``).
"""

from .cppn import (
    ACTIVATIONS as PATTERN_ACTIVATIONS,
)
from .cppn import (
    ConnectionGene,
    NodeGene,
    PatternGenome,
    PatternMutationConfig,
    add_connection,
    add_node,
    check_pattern_genome,
    crossover_pattern_genomes,
    delete_connection,
    delete_node,
    initial_pattern_genome,
    mutate_pattern_genome,
    perturb_weights,
    switch_activation,
)
from .divergence import ROOT, StepSearch, buffer_outputs, divergence_line_search, output_divergence
from .evaluators import LocalEvaluator, Problem, ProcessPoolEvaluator, check_evaluation, merge_evaluations
from .experience import ExperienceBuffer, reservoir_update
from .ga import GAConfig, GeneticAlgorithm, SteadyStateConfig, SteadyStateGA
from .genome import ParameterLayout, ParameterSlot
from .gym_problem import GymProblem, Rollout
from .lamarckian import LamarckianConfig, LamarckianEvolution, PatternEvaluation, evaluate_pattern_genome
from .maze_problem import HardMazeProblem, maze_controller
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
from .pattern_network import (
    COORDINATE_FEATURES,
    PatternNetwork,
    WeightCoordinates,
    activation_function,
    axis_positions,
    functional_forward,
    grid_positions,
)
from .population import LineageRecord, Population
from .problems import LOSSES, ParityProblem, ProblemEvaluation, SequenceClassifier, SupervisedProblem, check_population
from .protocols import (
    Best,
    Evaluation,
    Evaluator,
    GaussianMutation,
    Mutation,
    MutationContext,
    Pending,
    check_fitness,
)
from .quine import (
    ACTIVATIONS as QUINE_ACTIVATIONS,
)
from .quine import (
    AuxiliaryLoss,
    AuxiliaryQuine,
    Quine,
    index_embedding,
    random_projection,
    regenerate_,
    relative_error,
    replication_loss,
)
from .quine_training import (
    SCHEDULES,
    AuxiliaryTrainer,
    QuineSchedule,
    QuineTrainer,
    train_alternating,
    train_optimisation,
    train_regeneration,
)
from .ray_evaluator import RayEvaluator
from .recurrent_problem import CueRewardProblem, RecurrentPolicy, population_call
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
from .unrolled import UnrolledCell, UnrolledRecurrent, unroll_recurrent

__all__ = [
    "PATTERN_ACTIVATIONS",
    "QUINE_ACTIVATIONS",
    "AuxiliaryLoss",
    "AuxiliaryQuine",
    "Quine",
    "index_embedding",
    "random_projection",
    "regenerate_",
    "relative_error",
    "replication_loss",
    "SCHEDULES",
    "AuxiliaryTrainer",
    "QuineSchedule",
    "QuineTrainer",
    "train_alternating",
    "train_optimisation",
    "train_regeneration",
    "ConnectionGene",
    "NodeGene",
    "PatternGenome",
    "PatternMutationConfig",
    "add_connection",
    "add_node",
    "check_pattern_genome",
    "crossover_pattern_genomes",
    "delete_connection",
    "delete_node",
    "initial_pattern_genome",
    "mutate_pattern_genome",
    "perturb_weights",
    "switch_activation",
    "LamarckianConfig",
    "LamarckianEvolution",
    "PatternEvaluation",
    "evaluate_pattern_genome",
    "COORDINATE_FEATURES",
    "PatternNetwork",
    "WeightCoordinates",
    "activation_function",
    "axis_positions",
    "functional_forward",
    "grid_positions",
    "LOSSES",
    "METHODS",
    "ROOT",
    "Best",
    "CueRewardProblem",
    "Evaluation",
    "Evaluator",
    "ExperienceBuffer",
    "GAConfig",
    "GaussianMutation",
    "GeneticAlgorithm",
    "GymProblem",
    "HardMazeProblem",
    "LineageRecord",
    "LocalEvaluator",
    "Mutation",
    "MutationContext",
    "MutationRecord",
    "ParameterLayout",
    "ParameterSlot",
    "ParityProblem",
    "Pending",
    "Population",
    "Problem",
    "ProblemEvaluation",
    "ProcessPoolEvaluator",
    "RecurrentPolicy",
    "RayEvaluator",
    "Rollout",
    "SafeMutation",
    "SafeMutationConfig",
    "SequenceClassifier",
    "SteadyStateConfig",
    "SteadyStateGA",
    "StepSearch",
    "SupervisedProblem",
    "UnrolledCell",
    "UnrolledRecurrent",
    "buffer_outputs",
    "check_evaluation",
    "check_fitness",
    "check_population",
    "divergence_line_search",
    "elite_indices",
    "gaussian_mutation",
    "genome_seed",
    "genome_seeds",
    "maze_controller",
    "merge_evaluations",
    "one_point_crossover",
    "population_call",
    "output_divergence",
    "reservoir_update",
    "safe_mutate",
    "scale_perturbation",
    "scaled_perturbation",
    "sensitivity_abs",
    "sensitivity_so",
    "sensitivity_sum",
    "tournament_selection",
    "truncation_selection",
    "uniform_crossover",
    "unroll_recurrent",
]
