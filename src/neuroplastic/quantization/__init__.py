"""Quantised networks: straight-through quantisers, quantised layers, latent weight clipping, and packed
binary inference by XNOR/AND-popcount kernels (Hubara et al. 2017, "Quantized neural networks")."""

from neuroplastic.quantization.layers import (
    LatentWeightClipping,
    PackedBinaryLinear,
    QuantConv2d,
    QuantLinear,
    quantized_layers,
)
from neuroplastic.quantization.networks import pack_model, quantized_cnn, quantized_mlp
from neuroplastic.quantization.packing import (
    MAX_PLANES,
    binary_kernels,
    binary_matmul,
    bitplane_matmul,
    pack_levels,
    pack_signs,
    packed_words,
)
from neuroplastic.quantization.quantizers import (
    STES,
    Binarize,
    QuantActivation,
    QuantGradient,
    activation_levels,
    binarize,
    clip_latent_weights,
    quantize_activations,
    quantize_gradients,
    quantize_weights,
)

__all__ = [
    "STES", "MAX_PLANES", "binarize", "quantize_weights", "activation_levels", "quantize_activations",
    "quantize_gradients", "clip_latent_weights", "Binarize", "QuantActivation", "QuantGradient",
    "QuantLinear", "QuantConv2d", "PackedBinaryLinear", "LatentWeightClipping", "quantized_layers",
    "quantized_mlp", "quantized_cnn", "pack_model",
    "packed_words", "pack_signs", "pack_levels", "binary_matmul", "bitplane_matmul", "binary_kernels",
]
