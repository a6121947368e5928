"""Spiking neurons: LIF dynamics (reset modes, MPR), adaptive thresholds, surrogate gradients, fused multi-step
LIF, an event-driven linear layer for spike inputs, encoders and readouts."""

from neuroplastic.neurons.encoding import latency_encode, membrane_readout, rate_encode, spike_count
from neuroplastic.neurons.fused_lif import (
    LIFConfig,
    hebbian_lif_sequence,
    hebbian_mixing,
    lif_sequence,
    plastic_lif_sequence,
)
from neuroplastic.neurons.lif import RESETS, alif_step, decay_from_tau, lif_step, membrane_rectifier
from neuroplastic.neurons.modules import (
    ALIF,
    LIF,
    ALIFCell,
    ALIFState,
    LeakyReadout,
    LIFCell,
    LIFState,
    RecurrentLIF,
    RecurrentLIFState,
)
from neuroplastic.neurons.nir_io import SpikingSequential, export_nir, import_nir
from neuroplastic.neurons.spike_linear import SpikeLinear, spike_linear
from neuroplastic.neurons.st_rsbp import (
    STRSBP,
    SpikeTrainStats,
    peak_tensor_bytes,
    rate_loss,
    spiking_forward,
    st_rsbp_backward,
    st_rsbp_forward,
)
from neuroplastic.neurons.surrogates import (
    ATan,
    FastSigmoid,
    Rectangle,
    Sigmoid,
    Surrogate,
    Triangle,
    get_surrogate,
    register_surrogate,
    spike_fn,
    surrogate_names,
)

__all__ = [
    "export_nir",
    "import_nir",
    "SpikingSequential",
    "RESETS",
    "lif_step",
    "alif_step",
    "decay_from_tau",
    "membrane_rectifier",
    "lif_sequence",
    "plastic_lif_sequence",
    "hebbian_lif_sequence",
    "hebbian_mixing",
    "LIFConfig",
    "LIFCell",
    "LIF",
    "ALIFCell",
    "ALIF",
    "RecurrentLIF",
    "LeakyReadout",
    "LIFState",
    "ALIFState",
    "RecurrentLIFState",
    "SpikeLinear",
    "spike_linear",
    "STRSBP",
    "SpikeTrainStats",
    "st_rsbp_forward",
    "st_rsbp_backward",
    "rate_loss",
    "spiking_forward",
    "peak_tensor_bytes",
    "rate_encode",
    "latency_encode",
    "spike_count",
    "membrane_readout",
    "Surrogate",
    "FastSigmoid",
    "ATan",
    "Triangle",
    "Rectangle",
    "Sigmoid",
    "get_surrogate",
    "register_surrogate",
    "spike_fn",
    "surrogate_names",
]
