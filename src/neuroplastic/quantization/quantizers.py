"""Quantisers with straight-through gradients: sign binarisation, k-bit weights, activations and gradients.

Hubara, Courbariaux, Soudry, El-Yaniv & Bengio 2017, "Quantized neural networks: training neural networks
with low precision weights and activations" (JMLR). The forward pass uses the quantised values; the backward
pass uses a straight-through estimator (STE), the gradient of a clipped identity:

    sign:        q = sign(x) in {-1, +1}, sign(0) = +1
                 gated STE (the paper's):  dL/dx = dL/dq * 1{|x| <= 1}    (the gradient of hard tanh)
                 identity STE:             dL/dx = dL/dq                  (passes gradients of saturated units)
    k-bit weights (k >= 2):  q = 2 round((2^k - 1) (clip(w, -1, 1) + 1) / 2) / (2^k - 1) - 1
                 2^k levels evenly spaced from -1 to 1; dL/dw = dL/dq * 1{|w| <= 1} (gated)
    k-bit activations (k >= 2): l = round((2^k - 1) clip(x, 0, 1)),  q = l / (2^k - 1)
                 2^k levels in [0, 1] (k = 2: {0, 1/3, 2/3, 1}); dL/dx = dL/dq * 1{0 <= x <= 1} (gated)
    1-bit activations: the sign above (+-1, the paper's binary activation after hard tanh).

``round`` rounds half to even (``torch.round``). The identity STE is offered to show its defect: it keeps
pushing latent values that are far outside the clipping range, whose quantised value can no longer change.

k-bit gradients (:func:`quantize_gradients`, the paper's Section 3.3): identity forward; backward
``g_q = s Q(g / s)`` with ``s = max |g|`` over the tensor and ``Q`` a stochastic rounding to the
``2^(k-1) - 1`` positive and negative levels of ``[-1, 1]``: ``Q(y) = floor(n y + u) / n``, ``n = 2^(k-1) - 1``,
``u ~ U[0, 1)`` drawn from an explicit generator, so that ``E[g_q] = g`` (unbiased, as the paper requires of
quantised gradients).

Latent weights: the real-valued weights behind the quantised ones are clipped to [-1, 1] after every step
(:func:`clip_latent_weights`; attached to an optimizer by
:class:`~neuroplastic.quantization.LatentWeightClipping`), since values beyond the range no longer change the
quantised weight and, under the gated STE, no longer receive gradients.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_choice, check_int, check_number

__all__ = ["STES", "binarize", "quantize_weights", "activation_levels", "quantize_activations",
           "quantize_gradients", "clip_latent_weights", "Binarize", "QuantActivation", "QuantGradient",
           "check_bits"]

STES = ("gated", "identity")
"""Straight-through estimators: ``"gated"`` (gradient zero outside the clipping range) or ``"identity"``."""


def check_bits(name: str, bits: object, maximum: int = 16) -> int:
    """``bits`` as an int in ``[1, maximum]`` (a bool or float refused)."""
    return check_int(name, bits, minimum=1, maximum=maximum)


def _check_input(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


class _Sign(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, gated: bool) -> Tensor:
        ctx.gated = gated
        if gated:
            ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        if not ctx.gated:
            return grad, None
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype), None


class _Levels(torch.autograd.Function):
    """``l = round(scale * (clip(x, low, high) - low))``; STE gradient ``scale`` inside [low, high]."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float, low: float, high: float, gated: bool) -> Tensor:
        ctx.scale, ctx.low, ctx.high, ctx.gated = scale, low, high, gated
        if gated:
            ctx.save_for_backward(x)
        return torch.round((x.clamp(low, high) - low) * scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        if not ctx.gated:
            return grad * ctx.scale, None, None, None, None
        (x,) = ctx.saved_tensors
        inside = (x >= ctx.low) & (x <= ctx.high)
        return grad * ctx.scale * inside.to(grad.dtype), None, None, None, None


def binarize(x: Tensor, ste: str = "gated") -> Tensor:
    """``sign(x)`` in {-1, +1} with ``sign(0) = +1``, and a straight-through gradient (any shape).

    ``ste="gated"``: ``dL/dx = dL/dq 1{|x| <= 1}`` (the paper's); ``"identity"``: ``dL/dx = dL/dq``.
    """
    x = _check_input("x", x)
    return _Sign.apply(x, check_choice("ste", ste, STES) == "gated")


def quantize_weights(w: Tensor, bits: int = 1, ste: str = "gated") -> Tensor:
    """k-bit weights in [-1, 1]: ``bits = 1`` is :func:`binarize`; ``bits >= 2`` gives the ``2^bits`` levels
    ``2 l / (2^bits - 1) - 1``, ``l = round((2^bits - 1) (clip(w, -1, 1) + 1) / 2)``; STE gated on ``|w| <= 1``."""
    w = _check_input("w", w)
    bits = check_bits("bits", bits)
    gated = check_choice("ste", ste, STES) == "gated"
    if bits == 1:
        return _Sign.apply(w, gated)
    n = 2 ** bits - 1
    return _Levels.apply(w, n / 2, -1.0, 1.0, gated) * (2 / n) - 1


def activation_levels(x: Tensor, bits: int, ste: str = "gated") -> Tensor:
    """The integer levels ``l = round((2^bits - 1) clip(x, 0, 1))`` of k-bit activations (as ``x``'s dtype).

    ``bits >= 1``; the gradient is ``(2^bits - 1) dL/dl`` where ``0 <= x <= 1`` (gated) or everywhere
    (identity). The packed kernels take these levels as bit-planes.
    """
    x = _check_input("x", x)
    bits = check_bits("bits", bits)
    gated = check_choice("ste", ste, STES) == "gated"
    return _Levels.apply(x, float(2 ** bits - 1), 0.0, 1.0, gated)


def quantize_activations(x: Tensor, bits: int, ste: str = "gated") -> Tensor:
    """k-bit activations: ``bits = 1`` is :func:`binarize` (+-1); ``bits >= 2`` is ``l / (2^bits - 1)`` in [0, 1]
    with ``l`` the :func:`activation_levels`. Any shape."""
    bits = check_bits("bits", bits)
    if bits == 1:
        return binarize(x, ste)
    return activation_levels(x, bits, ste) / (2 ** bits - 1)


class _GradientQuantizer(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, bits: int, generator: torch.Generator | None) -> Tensor:
        ctx.bits, ctx.generator = bits, generator
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        n = 2 ** (ctx.bits - 1) - 1
        scale = grad.abs().max()
        if scale == 0 or not torch.isfinite(scale):
            return grad, None, None
        noise = torch.rand(grad.shape, generator=ctx.generator, dtype=grad.dtype, device=ctx.generator.device)
        quantised = torch.floor(grad / scale * n + noise.to(grad.device)) / n
        return quantised * scale, None, None


def quantize_gradients(x: Tensor, bits: int, generator: torch.Generator) -> Tensor:
    """Identity forward; the gradient reaching ``x`` is stochastically rounded to ``bits`` bits (``bits >= 2``).

    ``g_q = s floor(n g / s + u) / n``, ``s = max |g|``, ``n = 2^(bits-1) - 1``, ``u ~ U[0, 1)`` from
    ``generator`` (on any device; the noise is moved to the gradient's): unbiased, ``E[g_q] = g``.
    """
    x = _check_input("x", x)
    bits = check_int("bits", bits, minimum=2, maximum=16)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return _GradientQuantizer.apply(x, bits, generator)


@torch.no_grad()
def clip_latent_weights(parameters: Iterable[Tensor], bound: float = 1.0) -> None:
    """Clip every tensor of ``parameters`` in place to ``[-bound, bound]`` (the latent weights of quantised
    layers, after an optimizer step)."""
    bound = float(check_number("bound", bound, minimum=0, exclusive_minimum=True))
    tensors = list(parameters)
    if not all(isinstance(t, Tensor) and t.is_floating_point() for t in tensors):
        raise TypeError("parameters must be floating-point tensors")
    for tensor in tensors:
        tensor.clamp_(-bound, bound)


class Binarize(nn.Module):
    """Module form of :func:`binarize` (sign with ``sign(0) = +1``, gated or identity STE)."""

    def __init__(self, ste: str = "gated") -> None:
        super().__init__()
        self.ste = check_choice("ste", ste, STES)

    def forward(self, x: Tensor) -> Tensor:
        return binarize(x, self.ste)

    def extra_repr(self) -> str:
        return f"ste={self.ste!r}"


class QuantActivation(nn.Module):
    """Module form of :func:`quantize_activations`: ``bits = 1``: +-1; ``bits >= 2``: ``2^bits`` levels in [0, 1]."""

    def __init__(self, bits: int = 2, ste: str = "gated") -> None:
        super().__init__()
        self.bits = check_bits("bits", bits)
        self.ste = check_choice("ste", ste, STES)

    def forward(self, x: Tensor) -> Tensor:
        return quantize_activations(x, self.bits, self.ste)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, ste={self.ste!r}"


class QuantGradient(nn.Module):
    """Module form of :func:`quantize_gradients` (identity forward, k-bit stochastic gradients backward).

    Holds its generator (``seed``: an int, or a ``torch.Generator`` used as is); its state is in
    ``state_dict()`` (extra state), so a resumed run draws the same roundings.
    """

    def __init__(self, bits: int = 6, seed: int | torch.Generator = 0) -> None:
        super().__init__()
        self.bits = check_int("bits", bits, minimum=2, maximum=16)
        if isinstance(seed, torch.Generator):
            self.generator = seed
        else:
            self.generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))

    def forward(self, x: Tensor) -> Tensor:
        return quantize_gradients(x, self.bits, self.generator)

    def get_extra_state(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    def extra_repr(self) -> str:
        return f"bits={self.bits}"
