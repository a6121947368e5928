"""Timescale 1: synapses that change within a lifetime (Hebbian traces, neuromodulation)."""

from neuroplastic.plasticity.fused_scan import FusedCell, supports_fused
from neuroplastic.plasticity.layers import PlasticLinear
from neuroplastic.plasticity.modulation import MODULATIONS, Modulator, make_modulator
from neuroplastic.plasticity.recurrent import (
    BACKPROP_MODES,
    PlasticLSTM,
    PlasticLSTMCell,
    PlasticLSTMState,
    PlasticRNN,
    PlasticRNNCell,
    PlasticRNNState,
    plastic_scan,
)
from neuroplastic.plasticity.rules import (
    RULES,
    BCMRule,
    ClippedHebbianRule,
    DecayingHebbianRule,
    OjaRule,
    PlasticityRule,
    SoftBoundedHebbianRule,
    bcm_threshold_update,
    bcm_update,
    clipped_hebbian_update,
    hebbian_update,
    make_rule,
    oja_update,
    outer,
    soft_bounded_update,
)
from neuroplastic.plasticity.spiking import (
    SPIKING_BACKENDS,
    SPIKING_BACKPROP_MODES,
    PlasticLIF,
    PlasticRecurrentLIF,
    PlasticSpikingState,
    SpikingNeuronConfig,
    spike_trace,
    trace_step,
)
from neuroplastic.plasticity.subspace import (
    SubspaceNeurons,
    complement_rows,
    oja_subspace_update,
    orthonormal_rows,
    principal_angle_cosines,
    project_out,
)
from neuroplastic.plasticity.synapses import (
    ALPHA_GRANULARITIES,
    ETA_GRANULARITIES,
    PlasticState,
    PlasticSynapses,
    SynapseConfig,
)

__all__ = [
    "ALPHA_GRANULARITIES", "BACKPROP_MODES", "ETA_GRANULARITIES", "MODULATIONS", "RULES",
    "BCMRule", "ClippedHebbianRule", "DecayingHebbianRule", "Modulator", "OjaRule", "PlasticLSTM",
    "PlasticLSTMCell", "PlasticLSTMState", "PlasticLinear", "PlasticRNN", "PlasticRNNCell",
    "PlasticRNNState", "PlasticState", "PlasticSynapses", "PlasticityRule", "SoftBoundedHebbianRule",
    "bcm_threshold_update", "bcm_update", "clipped_hebbian_update", "hebbian_update", "make_modulator",
    "make_rule", "oja_update", "outer", "soft_bounded_update",
    "SPIKING_BACKENDS", "SPIKING_BACKPROP_MODES", "PlasticLIF", "PlasticRecurrentLIF", "PlasticSpikingState",
    "SpikingNeuronConfig", "spike_trace", "trace_step",
    "SynapseConfig", "FusedCell", "plastic_scan", "supports_fused",
    "SubspaceNeurons", "oja_subspace_update", "orthonormal_rows", "complement_rows", "principal_angle_cosines",
    "project_out",
]
