"""Quantised layers (``QuantLinear``, ``QuantConv2d``), their packed inference form, and latent weight clipping.

Hubara, Courbariaux, Soudry, El-Yaniv & Bengio 2017, "Quantized neural networks" (JMLR). A quantised layer
keeps real-valued latent weights ``W`` (trained by any optimizer) and computes with their quantisation
(:func:`~neuroplastic.quantization.quantize_weights`, ``weight_bits``, 1 = binary +-1); its input is
quantised in front of it (``input_bits``) or kept real (``input_bits=None``: the paper keeps the first
layer's input real, e.g. the pixels). With ``input_bits = k >= 2`` the layer computes on the integer levels
``l = round((2^k - 1) clip(x, 0, 1))``:

    y = (l W_q^T) / (2^k - 1) + b          (input_bits >= 2)
    y = sign(x) W_q^T + b                 (input_bits = 1)
    y = x W_q^T + b                       (input_bits = None)

so that with binary weights the product ``l W_q^T`` is an exact integer (for ``K (2^k - 1) < 2^24`` in
float32) and :meth:`QuantLinear.pack` gives a :class:`PackedBinaryLinear` whose output is the same float,
bit for bit: the packed kernels compute the same integers (:mod:`neuroplastic.quantization.packing`).

Composition with the structure package: a layer carrying a ``weight_mask`` buffer (as a
:class:`neuroplastic.structure.SparsityManager` attaches) multiplies its quantised weight by the mask, so a
pruned weight is 0, not sign(0) = +1. Such a layer cannot be packed (binary weights have no zero).

:class:`LatentWeightClipping` attaches to an optimizer like the sparsity manager (an
``optimizer.register_step_post_hook``) and clips the latent weights of every quantised layer to ``[-1, 1]``
after each step (the paper's Algorithm 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic._checks import check_choice, check_number

from .packing import MAX_PLANES, binary_matmul, bitplane_matmul, pack_levels, pack_signs, packed_words
from .quantizers import STES, activation_levels, binarize, check_bits, clip_latent_weights, quantize_weights

__all__ = ["QuantLinear", "QuantConv2d", "PackedBinaryLinear", "LatentWeightClipping", "quantized_layers"]


def _check_optional_bits(name: str, bits: object) -> int | None:
    return None if bits is None else check_bits(name, bits, maximum=MAX_PLANES)


class _Quantised:
    """What QuantLinear and QuantConv2d share: settings, the quantised weight and the quantised input."""

    weight: nn.Parameter
    weight_bits: int
    input_bits: int | None
    ste: str

    def _setup(self, weight_bits: int, input_bits: int | None, ste: str) -> None:
        self.weight_bits = check_bits("weight_bits", weight_bits)
        self.input_bits = _check_optional_bits("input_bits", input_bits)
        self.ste = check_choice("ste", ste, STES)

    def quantized_weight(self) -> Tensor:
        """The weight the layer computes with: ``quantize_weights(W, weight_bits)`` (times ``weight_mask`` if any)."""
        q = quantize_weights(self.weight, self.weight_bits, self.ste)
        mask = getattr(self, "weight_mask", None)
        return q * mask.to(q.dtype) if isinstance(mask, Tensor) else q

    def _input(self, x: Tensor) -> tuple[Tensor, float]:
        """The quantised input and the divisor of the product (``2^k - 1`` for k >= 2 levels, else 1)."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        if self.input_bits is None:
            return x, 1.0
        if self.input_bits == 1:
            return binarize(x, self.ste), 1.0
        return activation_levels(x, self.input_bits, self.ste), float(2 ** self.input_bits - 1)

    def _extra(self) -> str:
        return f"weight_bits={self.weight_bits}, input_bits={self.input_bits}, ste={self.ste!r}"


class QuantLinear(nn.Linear, _Quantised):
    """A linear layer with ``weight_bits``-bit weights and an optional ``input_bits``-bit input (see module doc).

    ``x: [*, in_features] -> [*, out_features]``. ``weight_bits`` 1..16 (1: binary); ``input_bits`` None
    (real input) or 1..8 (1: sign, k >= 2: levels in [0, 1]); ``ste``: ``"gated"`` or ``"identity"``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, weight_bits: int = 1,
                 input_bits: int | None = None, ste: str = "gated", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        self._setup(weight_bits, input_bits, ste)

    def forward(self, x: Tensor) -> Tensor:
        x, divisor = self._input(x)
        y = F.linear(x, self.quantized_weight())
        if divisor != 1.0:
            y = y / divisor
        return y if self.bias is None else y + self.bias

    def pack(self) -> PackedBinaryLinear:
        """The inference form: binary weights packed 32 per int32 word; needs ``weight_bits=1``, an
        ``input_bits`` and no weight mask. Its output equals this layer's (bit for bit, in float32)."""
        if self.weight_bits != 1 or self.input_bits is None:
            raise ValueError(f"only a layer with weight_bits=1 and quantised inputs can be packed; this one has "
                             f"weight_bits={self.weight_bits}, input_bits={self.input_bits}")
        if isinstance(getattr(self, "weight_mask", None), Tensor) and not bool(self.weight_mask.all()):
            raise ValueError("a layer with pruned (masked) weights cannot be packed: binary weights have no zero")
        with torch.no_grad():
            weight = pack_signs(self.weight.detach().float())  # on the weight's device (C kernels on the CPU)
            bias = None if self.bias is None else self.bias.detach().clone()
        return PackedBinaryLinear(weight, self.in_features, self.input_bits, bias, ste=self.ste)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", " + self._extra()


class QuantConv2d(nn.Conv2d, _Quantised):
    """A 2-D convolution with quantised weights and input (see module doc; zero padding pads with 0).

    ``x: [B, C_in, H, W] -> [B, C_out, H', W']``; the arguments of ``nn.Conv2d`` plus ``weight_bits``,
    ``input_bits`` and ``ste`` as in :class:`QuantLinear`. Float simulation only (no packed form).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True, *, weight_bits: int = 1,
                 input_bits: int | None = None, ste: str = "gated", device: Any = None, dtype: Any = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         device=device, dtype=dtype)
        self._setup(weight_bits, input_bits, ste)

    def forward(self, x: Tensor) -> Tensor:
        x, divisor = self._input(x)
        y = self._conv_forward(x, self.quantized_weight(), None)
        if divisor != 1.0:
            y = y / divisor
        return y if self.bias is None else y + self.bias[:, None, None]

    def extra_repr(self) -> str:
        return super().extra_repr() + ", " + self._extra()


class PackedBinaryLinear(nn.Module):
    """Inference with packed binary weights: ``y = (l W^T) / (2^k - 1) + b`` by XNOR/AND-popcount kernels.

    Args:
        weight: ``[out_features, packed_words(in_features)]`` int32, the packed signs of the weights
            (:func:`~neuroplastic.quantization.pack_signs`).
        in_features: K.
        input_bits: 1 (input signs; ``y = sign(x) W^T + b``) or 2..8 (levels of ``clip(x, 0, 1)`` as bit-planes).
        bias: ``[out_features]`` or None.
        ste: kept for :meth:`QuantLinear.pack` symmetry (inference has no gradient).

    ``x: [*, in_features]`` float -> ``[*, out_features]`` in ``x``'s dtype. No gradients. The weight memory
    is ``4 * packed_words(K)`` bytes per output, 32x less than float32 when K is a multiple of 64.
    """

    def __init__(self, weight: Tensor, in_features: int, input_bits: int, bias: Tensor | None = None,
                 ste: str = "gated") -> None:
        super().__init__()
        self.in_features = check_bits("in_features", in_features, maximum=2 ** 31 - 1)
        self.input_bits = check_bits("input_bits", input_bits, maximum=MAX_PLANES)
        self.ste = check_choice("ste", ste, STES)
        if not isinstance(weight, Tensor) or weight.dtype != torch.int32 or weight.dim() != 2 \
                or weight.shape[1] != packed_words(self.in_features):
            raise ValueError(f"weight must be an int32 tensor [out_features, {packed_words(self.in_features)}] of "
                             f"packed signs, got {getattr(weight, 'dtype', type(weight).__name__)} "
                             f"{list(getattr(weight, 'shape', []))}")
        self.out_features = weight.shape[0]
        if bias is not None and (not isinstance(bias, Tensor) or tuple(bias.shape) != (self.out_features,)):
            raise ValueError(f"bias must be None or a tensor of shape [{self.out_features}]")
        self.register_buffer("weight", weight.contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
        if x.shape[-1] != self.in_features:
            raise ValueError(f"input must have shape [*, {self.in_features}], got {list(x.shape)}")
        rows = x.reshape(-1, self.in_features)
        if self.input_bits == 1:
            y = binary_matmul(pack_signs(rows), self.weight, self.in_features).to(x.dtype)
        else:
            levels = activation_levels(rows, self.input_bits)
            y = bitplane_matmul(pack_levels(levels, self.input_bits), self.weight).to(x.dtype)
            y = y / float(2 ** self.input_bits - 1)
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, input_bits={self.input_bits}"


QUANTISED_LAYERS = (QuantLinear, QuantConv2d)


def quantized_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``{name: module}`` of every :class:`QuantLinear` / :class:`QuantConv2d` in ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return {name: m for name, m in model.named_modules() if isinstance(m, QUANTISED_LAYERS)}


class LatentWeightClipping:
    """Clip the latent weights of every quantised layer of ``model`` to ``[-bound, bound]`` after each step.

    Attached like :class:`neuroplastic.structure.SparsityManager`: an ``optimizer.register_step_post_hook``
    (the user only calls ``optimizer.step()``); the weights are also clipped once on attaching. Biases and
    real-valued layers are not clipped. ``state_dict()`` holds the managed names, the bound and the step count.

    Args:
        model: any ``nn.Module`` with :class:`QuantLinear` / :class:`QuantConv2d` layers (at least one).
        optimizer: the optimizer training ``model``; every managed weight must be among its parameters.
        bound: the clipping bound (> 0; the paper's 1).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, bound: float = 1.0) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.bound = float(check_number("bound", bound, minimum=0, exclusive_minimum=True))
        layers = quantized_layers(model)
        if not layers:
            raise ValueError("model has no QuantLinear or QuantConv2d layer to clip")
        self.names = [f"{name}.weight" if name else "weight" for name in layers]
        self._weights = [m.weight for m in layers.values()]
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [n for n, w in zip(self.names, self._weights, strict=True) if id(w) not in in_optimizer]
        if missing:
            raise ValueError(f"the quantised weights {missing} are not among the optimizer's parameters")
        self.optimizer = optimizer
        self.step_count = 0
        self.clip()
        self._handle = optimizer.register_step_post_hook(self._after_step)

    def clip(self) -> None:
        """Clip every managed weight to ``[-bound, bound]`` now."""
        clip_latent_weights(self._weights, self.bound)

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.step_count += 1
        self.clip()

    def remove(self) -> None:
        """Detach the hook (the weights stay as they are)."""
        self._handle.remove()

    def state_dict(self) -> dict[str, Any]:
        """Names, bound and step count."""
        return {"names": list(self.names), "bound": self.bound, "step_count": self.step_count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` (the same managed weights are required)."""
        if list(state.get("names", [])) != self.names:
            raise ValueError(f"the state dict manages {state.get('names')} but this one manages {self.names}")
        self.bound = float(check_number("bound", state["bound"], minimum=0, exclusive_minimum=True))
        self.step_count = int(state["step_count"])
