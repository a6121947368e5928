"""Timescale 2: connections and neurons that change across training.

- Connection level: :class:`SparsityManager` (masks on any model, kept in force after every optimizer
  step, saved in ``state_dict``), criteria, schedules, and the algorithms :class:`GMP`, :class:`SET`,
  :class:`RigL`, :class:`GraNet`; :class:`GradRewiring` (Grad R: ``w = sign * relu(theta)``) and one epoch
  of training with it, :func:`grad_r_epoch`.
- Neuron level: the dormant ratio, ReDo resets and DrM perturbation (:mod:`.dormant`), compaction of
  dead units into smaller dense layers (:func:`compact`).
- Growth and shrinkage from one neuron (:class:`GrowableRNN`, :class:`GrowableMLP`, :class:`GrowthRule`).
- Reconstructive neuron pruning for backdoor removal (:func:`reconstructive_neuron_pruning`) on per-unit
  masks (:class:`NeuronMasks`, :func:`prune_units`); backdoor measures and pruning baselines
  (:mod:`.backdoor`: :func:`attack_success_rate`, BatchNorm recalibration, Fine-Pruning's
  :func:`activation_units`, the trigger oracle :func:`trigger_ranking`) and their plots (:mod:`.pruning_plots`).
- Lyapunov noise pruning of recurrent spiking networks before training (:func:`lyapunov_noise_prune`,
  :mod:`.lnp`), with its baselines (:func:`activity_prune`, :func:`random_prune`) and graph centrality
  (:mod:`.centrality`); it measures stability with :mod:`neuroplastic.dynamics`.
- :mod:`.surgery`: resize or reset parameters together with their optimizer state.
"""

from neuroplastic.structure.backdoor import (
    activation_units,
    attack_success_rate,
    backdoor_scores,
    batch_statistics_accuracy,
    lowest_mask_units,
    mean_activations,
    oracle_counts,
    oracle_curve,
    pruned_copy,
    random_units,
    recalibrated_copy,
    threshold_sweep,
    trigger_oracle,
    trigger_ranking,
    unit_pruning_costs,
)
from neuroplastic.structure.centrality import betweenness_centrality, prune_low_centrality
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
from neuroplastic.structure.lnp import (
    RESCALE_MODES,
    LNPConfig,
    LNPResult,
    activity_prune,
    discrete_lyapunov_covariance,
    lyapunov_noise_prune,
    noise_prune_probabilities,
    noise_prune_scores,
    random_prune,
    sample_synapses,
    scale_to_lyapunov,
    smallest_stabilize_scale,
    stability_target,
    stabilize,
)
from neuroplastic.structure.masks import DISTRIBUTIONS, erk_densities, uniform_densities
from neuroplastic.structure.neuron_masks import NeuronMasks, prune_units
from neuroplastic.structure.rewiring import (
    Connectivity,
    GradREpoch,
    GradRewiring,
    grad_r_epoch,
    laplace_location,
    rewired_weight,
)
from neuroplastic.structure.rnp import (
    ReconstructiveNeuronPruning,
    RNPConfig,
    RNPReport,
    reconstructive_neuron_pruning,
    rnp_schedule_epochs,
)
from neuroplastic.structure.schedules import CosineFractionSchedule, CubicDensitySchedule
from neuroplastic.structure.sparse_training import GMP, SET, GraNet, RigL
from neuroplastic.structure.sparsity_manager import SparsityManager
from neuroplastic.structure.surgery import append_slices, replace_parameter, reset_state, select_slices

__all__ = [
    "GrowableMLP", "GrowableRNN", "GrowthDecision", "GrowthRule", "growth_decision", "NeuronMasks", "prune_units",
    "RNPConfig", "RNPReport", "ReconstructiveNeuronPruning", "reconstructive_neuron_pruning", "rnp_schedule_epochs",
    "attack_success_rate", "backdoor_scores", "batch_statistics_accuracy", "recalibrated_copy", "pruned_copy",
    "mean_activations", "activation_units", "random_units", "trigger_ranking", "oracle_counts", "oracle_curve",
    "trigger_oracle", "lowest_mask_units",
    "unit_pruning_costs", "threshold_sweep",
    "DISTRIBUTIONS", "GMP", "SET", "CompactionReport", "Connectivity", "CosineFractionSchedule",
    "CubicDensitySchedule", "DormantResult", "GradREpoch", "GradRewiring", "GraNet", "LayerCompaction", "RigL",
    "SparsityManager", "append_slices", "compact", "count_parameters", "dead_units", "dormant_mask",
    "dormant_ratio", "dormant_scores", "drm_perturb", "drm_perturb_factor", "erk_densities", "gradient_magnitude",
    "grad_r_epoch", "laplace_location", "magnitude", "momentum", "neuron_layer_pairs", "random_scores", "redo",
    "redo_reset",
    "replace_parameter", "reset_state", "rewired_weight", "select_slices", "uniform_densities", "unit_activity",
    "LNPConfig", "LNPResult", "lyapunov_noise_prune", "activity_prune", "random_prune", "RESCALE_MODES",
    "discrete_lyapunov_covariance", "noise_prune_scores", "noise_prune_probabilities", "sample_synapses",
    "stabilize", "smallest_stabilize_scale", "stability_target", "scale_to_lyapunov", "betweenness_centrality",
    "prune_low_centrality",
]
