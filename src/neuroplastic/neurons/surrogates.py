"""Surrogate gradients: a Heaviside step forward, the derivative of a smooth step backward.

A spiking neuron emits ``spike = H(v - threshold)``, whose derivative is zero almost everywhere. Surrogate
gradient learning (Neftci, Mostafa & Zenke 2019, "Surrogate Gradient Learning in Spiking Neural Networks")
keeps the step in the forward pass and uses the derivative of a smooth step in the backward pass:

    forward:  spike = H(x) = 1.0 if x > 0 else 0.0          (x = v - threshold)
    backward: d spike / d x := grad(x)

Built-in surrogates (``grad`` is the derivative of ``smooth``, both shown):

- ``"fast_sigmoid"`` :class:`FastSigmoid` (Zenke & Ganguli 2018, SuperSpike):
  ``smooth(x) = x / (1 + slope |x|)``, ``grad(x) = 1 / (1 + slope |x|)^2``
- ``"atan"`` :class:`ATan` (Fang et al. 2021): ``smooth(x) = atan(pi/2 alpha x) / pi + 1/2``,
  ``grad(x) = alpha / 2 / (1 + (pi/2 alpha x)^2)``
- ``"triangle"`` :class:`Triangle` (Esser et al. 2016, Bellec et al. 2018):
  ``grad(x) = max(0, 1 - |x| / width) / width``
- ``"sigmoid"`` :class:`Sigmoid`: ``smooth(x) = sigmoid(slope x)``,
  ``grad(x) = slope sigmoid(slope x) (1 - sigmoid(slope x))``
- ``"rectangle"`` :class:`Rectangle` (straight-through estimator on a window; Wu et al. 2018, STBP):
  ``smooth(x) = clamp(x / (2 width) + 1/2, 0, 1)``, ``grad(x) = 1 / (2 width)`` for ``|x| < width``, else 0

A custom surrogate subclasses :class:`Surrogate` and implements :meth:`Surrogate.grad` (and optionally
:meth:`Surrogate.smooth`); :func:`register_surrogate` makes it available by name. The fused multi-step LIF
runs the built-in surrogates in its own kernels and falls back to the step-by-step form for custom ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from neuroplastic._checks import check_number

__all__ = [
    "Surrogate",
    "FastSigmoid",
    "ATan",
    "Triangle",
    "Sigmoid",
    "Rectangle",
    "spike_fn",
    "get_surrogate",
    "register_surrogate",
    "surrogate_names",
]


class _Heaviside(torch.autograd.Function):
    """``H(x)`` forward, ``grad_output * surrogate.grad(x)`` backward (differentiable again)."""

    @staticmethod
    def forward(ctx, x: Tensor, surrogate: Surrogate) -> Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.grad(x), None


class Surrogate:
    """Base class of surrogate gradients: subclass it and implement :meth:`grad` for a custom one.

    Calling an instance on ``x`` (``v - threshold``, any shape) returns the spikes ``H(x)`` (``x > 0`` -> 1.0,
    same dtype as ``x``) as an autograd node whose backward multiplies the incoming gradient by ``grad(x)``.
    """

    name: str = "custom"

    def grad(self, x: Tensor) -> Tensor:
        """``d smooth(x) / dx``: the surrogate derivative of the step at ``x = v - threshold``."""
        raise NotImplementedError(f"{type(self).__name__} must implement grad(x)")

    def smooth(self, x: Tensor) -> Tensor:
        """The smooth step whose derivative is :meth:`grad` (used for checks; optional for custom ones)."""
        raise NotImplementedError(f"{type(self).__name__} does not define smooth(x)")

    def __call__(self, x: Tensor) -> Tensor:
        return _Heaviside.apply(x, self)

    def _kernel(self) -> tuple[int, float] | None:
        """(code, parameter) for the fused kernels, or None if this surrogate is not one they know."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FastSigmoid(Surrogate):
    """SuperSpike's fast sigmoid (Zenke & Ganguli 2018): ``grad(x) = 1 / (1 + slope |x|)^2``."""

    name = "fast_sigmoid"

    def __init__(self, slope: float = 25.0) -> None:
        self.slope = float(check_number("FastSigmoid: slope", slope, minimum=0, exclusive_minimum=True))

    def grad(self, x: Tensor) -> Tensor:
        return 1.0 / (1.0 + self.slope * x.abs()).square()

    def smooth(self, x: Tensor) -> Tensor:
        return x / (1.0 + self.slope * x.abs())

    def _kernel(self) -> tuple[int, float] | None:
        return (0, self.slope) if type(self) is FastSigmoid else None

    def __repr__(self) -> str:
        return f"FastSigmoid(slope={self.slope})"


class ATan(Surrogate):
    """Arctangent surrogate (Fang et al. 2021): ``grad(x) = alpha / 2 / (1 + (pi/2 alpha x)^2)``."""

    name = "atan"

    def __init__(self, alpha: float = 2.0) -> None:
        self.alpha = float(check_number("ATan: alpha", alpha, minimum=0, exclusive_minimum=True))

    def grad(self, x: Tensor) -> Tensor:
        return (self.alpha / 2.0) / (1.0 + (math.pi / 2.0 * self.alpha * x).square())

    def smooth(self, x: Tensor) -> Tensor:
        return torch.atan(math.pi / 2.0 * self.alpha * x) / math.pi + 0.5

    def _kernel(self) -> tuple[int, float] | None:
        return (1, self.alpha) if type(self) is ATan else None

    def __repr__(self) -> str:
        return f"ATan(alpha={self.alpha})"


class Triangle(Surrogate):
    """Triangular (piecewise-linear) surrogate (Esser et al. 2016; Bellec et al. 2018):
    ``grad(x) = max(0, 1 - |x| / width) / width``."""

    name = "triangle"

    def __init__(self, width: float = 1.0) -> None:
        self.width = float(check_number("Triangle: width", width, minimum=0, exclusive_minimum=True))

    def grad(self, x: Tensor) -> Tensor:
        return (1.0 - x.abs() / self.width).clamp_min(0.0) / self.width

    def smooth(self, x: Tensor) -> Tensor:
        u = (x / self.width).clamp(-1.0, 1.0)
        return u - u * u.abs() / 2.0

    def _kernel(self) -> tuple[int, float] | None:
        return (2, self.width) if type(self) is Triangle else None

    def __repr__(self) -> str:
        return f"Triangle(width={self.width})"


class Sigmoid(Surrogate):
    """Logistic surrogate: ``grad(x) = slope sigmoid(slope x) (1 - sigmoid(slope x))``."""

    name = "sigmoid"

    def __init__(self, slope: float = 4.0) -> None:
        self.slope = float(check_number("Sigmoid: slope", slope, minimum=0, exclusive_minimum=True))

    def grad(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.slope * x)
        return self.slope * s * (1.0 - s)

    def smooth(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.slope * x)

    def _kernel(self) -> tuple[int, float] | None:
        return (3, self.slope) if type(self) is Sigmoid else None

    def __repr__(self) -> str:
        return f"Sigmoid(slope={self.slope})"


class Rectangle(Surrogate):
    """Rectangular surrogate, a straight-through estimator on a window (Wu et al. 2018, STBP):
    ``grad(x) = 1 / (2 width)`` for ``|x| < width``, else 0.

    With ``width`` equal to the threshold theta, the window is ``0 < u < 1`` in units of the spike
    (``u = v / (2 theta)``), the clamp of Guo et al. 2022 ("Reducing information loss for SNNs").
    """

    name = "rectangle"

    def __init__(self, width: float = 0.5) -> None:
        self.width = float(check_number("Rectangle: width", width, minimum=0, exclusive_minimum=True))

    def grad(self, x: Tensor) -> Tensor:
        return (x.abs() < self.width).to(x.dtype) / (2.0 * self.width)

    def smooth(self, x: Tensor) -> Tensor:
        return (x / (2.0 * self.width) + 0.5).clamp(0.0, 1.0)

    def _kernel(self) -> tuple[int, float] | None:
        return (4, self.width) if type(self) is Rectangle else None

    def __repr__(self) -> str:
        return f"Rectangle(width={self.width})"


_REGISTRY: dict[str, Callable[..., Surrogate]] = {
    "fast_sigmoid": FastSigmoid,
    "atan": ATan,
    "triangle": Triangle,
    "sigmoid": Sigmoid,
    "rectangle": Rectangle,
}


def surrogate_names() -> tuple[str, ...]:
    """The names :func:`get_surrogate` accepts."""
    return tuple(_REGISTRY)


def register_surrogate(name: str, factory: Callable[..., Surrogate]) -> None:
    """Make ``get_surrogate(name, **kwargs)`` return ``factory(**kwargs)`` (a :class:`Surrogate`)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable (a Surrogate subclass or a function), got {factory!r}")
    _REGISTRY[name] = factory


def get_surrogate(spec: str | Surrogate, **kwargs) -> Surrogate:
    """A surrogate from its name (with its parameters as keywords, e.g. ``slope=10``) or an instance as is."""
    if isinstance(spec, Surrogate):
        if kwargs:
            raise ValueError(f"surrogate parameters {sorted(kwargs)} given with a Surrogate instance; "
                             "set them on the instance")
        return spec
    if not isinstance(spec, str) or spec not in _REGISTRY:
        raise ValueError(f"surrogate must be a Surrogate instance or one of {', '.join(map(repr, _REGISTRY))}; "
                         f"got {spec!r}")
    surrogate = _REGISTRY[spec](**kwargs)
    if not isinstance(surrogate, Surrogate):
        raise TypeError(f"the factory registered as {spec!r} returned {type(surrogate).__name__}, not a Surrogate")
    return surrogate


def spike_fn(x: Tensor, surrogate: str | Surrogate = "fast_sigmoid") -> Tensor:
    """``H(x)`` with the given surrogate gradient; ``x = v - threshold``, a floating-point tensor of any shape."""
    surrogate = get_surrogate(surrogate)
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor (a membrane potential minus the threshold), got dtype "
                         f"{x.dtype}")
    return surrogate(x)
