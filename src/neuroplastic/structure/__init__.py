"""Timescale 2: connections and neurons that change across training.

- Connection level: :class:`SparsityManager` (masks on any model, kept in force after every optimizer
  step, saved in ``state_dict``), criteria, schedules, and the algorithms :class:`GMP`, :class:`SET`,
  :class:`RigL`, :class:`GraNet`; :class:`GradRewiring` (Grad R: ``w = sign * relu(theta)``) and one epoch
  of training with it, :func:`grad_r_epoch`.
- Neuron level: the dormant ratio, ReDo resets and DrM perturbation (:mod:`.dormant`), compaction of
  dead units into smaller dense layers (:func:`compact`).
- Growth and shrinkage from one neuron (:class:`GrowableRNN`, :class:`GrowableMLP`, :class:`GrowthRule`).
- Reconstructive neuron pruning for backdoor removal (:func:`reconstructive_neuron_pruning`) on per-unit
  masks (:class:`NeuronMasks`, :func:`prune_units`).
- :mod:`.surgery`: resize or reset parameters together with their optimizer state.
"""

from neuroplastic.structure.compaction import CompactionReport, LayerCompaction, compact, count_parameters, dead_units
from neuroplastic.structure.criteria import gradient_magnitude, magnitude, momentum, random_scores
from neuroplastic.structure.dormant import (
    DormantResult,
    dormant_mask,
    dormant_ratio,
    dormant_scores,
    drm_perturb,
    drm_perturb_factor,
    neuron_layer_pairs,
    redo,
    redo_reset,
    unit_activity,
)
from neuroplastic.structure.growth import GrowableMLP, GrowableRNN, GrowthDecision, GrowthRule, growth_decision
from neuroplastic.structure.masks import DISTRIBUTIONS, SparsityManager, erk_densities, uniform_densities
from neuroplastic.structure.neuron_masks import NeuronMasks, prune_units
from neuroplastic.structure.rewiring import (
    Connectivity,
    GradREpoch,
    GradRewiring,
    grad_r_epoch,
    laplace_location,
    rewired_weight,
)
from neuroplastic.structure.rnp import ReconstructiveNeuronPruning, RNPConfig, RNPReport, reconstructive_neuron_pruning
from neuroplastic.structure.schedules import CosineFractionSchedule, CubicDensitySchedule
from neuroplastic.structure.sparse_training import GMP, SET, GraNet, RigL
from neuroplastic.structure.surgery import append_slices, replace_parameter, reset_state, select_slices

__all__ = [
    "GrowableMLP", "GrowableRNN", "GrowthDecision", "GrowthRule", "growth_decision", "NeuronMasks", "prune_units",
    "RNPConfig", "RNPReport", "ReconstructiveNeuronPruning", "reconstructive_neuron_pruning",
    "DISTRIBUTIONS", "GMP", "SET", "CompactionReport", "Connectivity", "CosineFractionSchedule",
    "CubicDensitySchedule", "DormantResult", "GradREpoch", "GradRewiring", "GraNet", "LayerCompaction", "RigL",
    "SparsityManager", "append_slices", "compact", "count_parameters", "dead_units", "dormant_mask",
    "dormant_ratio", "dormant_scores", "drm_perturb", "drm_perturb_factor", "erk_densities", "gradient_magnitude",
    "grad_r_epoch", "laplace_location", "magnitude", "momentum", "neuron_layer_pairs", "random_scores", "redo",
    "redo_reset",
    "replace_parameter", "reset_state", "rewired_weight", "select_slices", "uniform_densities", "unit_activity",
]
