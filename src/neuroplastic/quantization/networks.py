"""Quantised networks as in the paper's MNIST experiments, their float counterparts, and packing a trained model.

Hubara, Courbariaux, Soudry, El-Yaniv & Bengio 2017, "Quantized neural networks" (JMLR), Section 4: every
layer is a quantised linear (or convolution) layer followed by batch normalisation; the activation is
quantised at the input of the next layer (``input_bits``), the first layer sees the real pixels and the last
layer is followed by a batch normalisation whose output are the class scores:

    MLP:  x -> [QuantLinear -> BN] (first, real input) -> [QuantLinear(input_bits) -> BN] * (depth - 1)
            -> QuantLinear(input_bits) -> BN -> logits
    CNN:  x [B, 1, 28, 28] -> [QuantConv2d 3x3 -> BN -> MaxPool 2] (first, real input)
            -> [QuantConv2d(input_bits) 3x3 -> BN -> MaxPool 2] -> Flatten -> QuantLinear(input_bits) -> BN

The float counterpart (``weight_bits=None``) has the same layers with ``nn.Linear`` / ``nn.Conv2d`` and a
ReLU where the quantised network quantises its activations. :func:`pack_model` replaces every packable
``QuantLinear`` (binary weights, quantised input, no mask) of a trained model by its
:class:`~neuroplastic.quantization.PackedBinaryLinear`; in eval mode the packed model computes the same
outputs bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import nn

from neuroplastic._checks import check_int, check_int_tuple

from .layers import QuantConv2d, QuantLinear
from .quantizers import check_bits

__all__ = ["quantized_mlp", "quantized_cnn", "pack_model"]


def _linear(n_in: int, n_out: int, weight_bits: int | None, input_bits: int | None, ste: str) -> nn.Module:
    if weight_bits is None:
        return nn.Linear(n_in, n_out)
    return QuantLinear(n_in, n_out, weight_bits=weight_bits, input_bits=input_bits, ste=ste)


def _check_bits(weight_bits: int | None, input_bits: int | None) -> None:
    if (weight_bits is None) != (input_bits is None):
        raise ValueError(f"weight_bits and input_bits must both be None (float) or both ints, got {weight_bits} "
                         f"and {input_bits}")
    if weight_bits is not None:
        check_bits("weight_bits", weight_bits)
        check_bits("input_bits", input_bits, maximum=8)


def quantized_mlp(in_features: int, hidden: Sequence[int], out_features: int, *, weight_bits: int | None = 1,
                  input_bits: int | None = 2, ste: str = "gated") -> nn.Sequential:
    """The paper's MLP (see module doc): ``[B, in_features] -> [B, out_features]``.

    ``weight_bits``/``input_bits`` None (both): the float network with ReLUs.
    """
    in_features, out_features = check_int("in_features", in_features), check_int("out_features", out_features)
    hidden = check_int_tuple("hidden", hidden)
    _check_bits(weight_bits, input_bits)
    sizes = [in_features, *hidden, out_features]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        bits = None if i == 0 else input_bits  # the first layer keeps its input real
        layers += [_linear(sizes[i], sizes[i + 1], weight_bits, bits, ste), nn.BatchNorm1d(sizes[i + 1])]
        if weight_bits is None and i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def quantized_cnn(channels: Sequence[int] = (16, 32), classes: int = 10, *, image_size: int = 28,
                  weight_bits: int | None = 1, input_bits: int | None = 2, ste: str = "gated") -> nn.Sequential:
    """A small CNN (see module doc): ``[B, 1, image_size, image_size] -> [B, classes]``; one 3x3 convolution
    and a 2x2 max-pool per entry of ``channels``."""
    channels = check_int_tuple("channels", channels)
    classes, image_size = check_int("classes", classes), check_int("image_size", image_size)
    if image_size % 2 ** len(channels):
        raise ValueError(f"image_size must be divisible by 2^len(channels) = {2 ** len(channels)}, got {image_size}")
    _check_bits(weight_bits, input_bits)
    layers: list[nn.Module] = []
    previous = 1
    for i, width in enumerate(channels):
        if weight_bits is None:
            layers += [nn.Conv2d(previous, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        else:
            bits = None if i == 0 else input_bits
            layers += [QuantConv2d(previous, width, 3, padding=1, weight_bits=weight_bits, input_bits=bits, ste=ste),
                       nn.BatchNorm2d(width)]
        layers.append(nn.MaxPool2d(2))
        previous = width
    side = image_size // 2 ** len(channels)
    layers += [nn.Flatten(), _linear(previous * side * side, classes, weight_bits, input_bits, ste),
               nn.BatchNorm1d(classes)]
    return nn.Sequential(*layers)


def pack_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every packable :class:`QuantLinear` replaced by its packed form.

    Packable: ``weight_bits=1``, quantised input and no pruned weight; the other modules are copied as they
    are. Returns the copy; ``model`` is not changed.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    packed = copy.deepcopy(model).eval()
    for name, module in list(packed.named_modules()):
        if isinstance(module, QuantLinear) and module.weight_bits == 1 and module.input_bits is not None \
                and not (hasattr(module, "weight_mask") and not bool(module.weight_mask.all())):
            if not name:  # the model is itself one layer
                return module.pack()
            parent_name, _, child = name.rpartition(".")
            setattr(packed.get_submodule(parent_name), child, module.pack())
    return packed
