"""Echo-state networks: leaky rate units with fixed random weights, a per-unit gain and bias, run batch-first.

Jaeger 2001 ("The echo state approach to analysing and training recurrent neural networks"), with the leaky
units of Jaeger et al. 2007 and a per-unit gain ``a`` and bias ``b`` that intrinsic plasticity adapts
(:mod:`neuroplastic.dynamics.intrinsic`)::

    z_t     = W x_{t-1} + W_in u_t                      (the net input; W [N, N], W_in [N, I])
    y_t     = f(a * z_t + b)                            f = tanh or the Fermi function 1 / (1 + exp(-.))
    x_t     = (1 - leak) * x_{t-1} + leak * y_t         x_0 = 0 unless given

``W`` is drawn dense (N(0, 1)) or sparse (a fraction ``density`` of entries N(0, 1), the rest 0) and rescaled
to the spectral radius ``spectral_radius``; ``W_in ~ U(-input_scaling, input_scaling)``. The run precomputes
``W_in u_t`` for every step in one matmul and keeps the Python loop to one ``addmm`` and the nonlinearity per
step. The tangent map used by :func:`neuroplastic.dynamics.measures.jacobian_lyapunov_exponent` is
``J_t = (1 - leak) I + leak * diag(a * f'(a z_t + b)) W``: :meth:`EchoStateNetwork.run` returns the slopes
``a * f'`` when asked.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuroplastic._checks import (
    check_choice,
    check_finite,
    check_fraction,
    check_int,
    check_nonempty_sequence,
    check_number,
    check_tensor,
)

__all__ = ["ACTIVATIONS", "EchoStateNetwork", "scale_to_spectral_radius", "spectral_radius"]

ACTIVATIONS = ("tanh", "fermi")


def spectral_radius(weight: Tensor) -> float:
    """The largest absolute eigenvalue of a square matrix ``weight [N, N]`` (computed in float64)."""
    check_tensor("weight", weight, ("N", "N"))
    return float(torch.linalg.eigvals(weight.detach().double().cpu()).abs().max())


def scale_to_spectral_radius(weight: Tensor, radius: float) -> Tensor:
    """``weight [N, N]`` rescaled so its spectral radius is ``radius`` (>= 0); a nilpotent matrix is refused."""
    check_number("radius", radius, minimum=0)
    current = spectral_radius(weight)
    if current == 0.0:
        raise ValueError("weight has spectral radius 0 (nilpotent or zero): it cannot be rescaled")
    return weight * (radius / current)


class EchoStateNetwork(nn.Module):
    """A leaky echo-state network with per-unit gain and bias: ``[B, T, I]`` inputs -> ``[B, T, N]`` states.

    See the module docstring for the equations. Buffers (all in ``state_dict``): ``weight [N, N]``,
    ``input_weight [N, I]``, ``gain [N]`` (ones), ``bias [N]`` (``U(-bias_scaling, bias_scaling)``). Nothing is
    trained by gradient; the readout is :func:`neuroplastic.dynamics.measures.ridge_regression`.

    Args:
        inputs, units: ``I`` and ``N`` (ints >= 1).
        spectral_radius: the spectral radius of ``W`` (finite, >= 0).
        input_scaling: the half-width of ``W_in``'s uniform entries (finite, >= 0).
        leak: the leak rate in (0, 1] (1: no leak).
        density: the fraction of nonzero entries of ``W`` in (0, 1] (1: dense).
        bias_scaling: the half-width of the initial bias (finite, >= 0).
        activation: "tanh" or "fermi" (the logistic function, for Triesch's exponential target).
        generator: the ``torch.Generator`` every weight is drawn from (default: seed 0); float32 on the CPU
            (use ``.to(...)`` / ``.double()`` to move it).
        weight / input_weight: given matrices instead of drawn ones (``weight`` is used as is, not rescaled).
    """

    def __init__(self, inputs: int, units: int, *, spectral_radius: float = 0.9, input_scaling: float = 1.0,
                 leak: float = 1.0, density: float = 1.0, bias_scaling: float = 0.0, activation: str = "tanh",
                 generator: torch.Generator | None = None, weight: Tensor | None = None,
                 input_weight: Tensor | None = None) -> None:
        super().__init__()
        check_int("inputs", inputs)
        check_int("units", units)
        check_number("spectral_radius", spectral_radius, minimum=0)
        check_number("input_scaling", input_scaling, minimum=0)
        check_fraction("leak", leak, low_open=True)
        check_fraction("density", density, low_open=True)
        check_number("bias_scaling", bias_scaling, minimum=0)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.leak = float(leak)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        if weight is None:
            w = torch.randn(units, units, generator=gen, dtype=torch.float64)
            if density < 1.0:
                w = w * (torch.rand(units, units, generator=gen, dtype=torch.float64) < density)
            w = scale_to_spectral_radius(w, spectral_radius) if spectral_radius > 0 else w * 0
        else:
            check_tensor("weight", weight, (units, units))
            check_finite("weight", weight)
            w = weight.detach().double()
        if input_weight is None:
            w_in = (torch.rand(units, inputs, generator=gen, dtype=torch.float64) * 2 - 1) * input_scaling
        else:
            check_tensor("input_weight", input_weight, (units, inputs))
            check_finite("input_weight", input_weight)
            w_in = input_weight.detach().double()
        bias = (torch.rand(units, generator=gen, dtype=torch.float64) * 2 - 1) * bias_scaling
        self.register_buffer("weight", w.float())
        self.register_buffer("input_weight", w_in.float())
        self.register_buffer("gain", torch.ones(units))
        self.register_buffer("bias", bias.float())

    @property
    def units(self) -> int:
        return self.weight.shape[0]

    @property
    def inputs(self) -> int:
        return self.input_weight.shape[1]

    def extra_repr(self) -> str:
        return f"inputs={self.inputs}, units={self.units}, leak={self.leak}, activation={self.activation!r}"

    def _f(self, z: Tensor) -> Tensor:
        return torch.tanh(z) if self.activation == "tanh" else torch.sigmoid(z)

    def _slope(self, y: Tensor) -> Tensor:
        """``a * f'(a z + b)`` from ``y = f(a z + b)``."""
        return self.gain * ((1 - y * y) if self.activation == "tanh" else y * (1 - y))

    def check_inputs(self, inputs: object, state: object = None) -> Tensor:
        """``inputs [B, T, I]`` (finite, the buffers' dtype and device, B, T >= 1) and ``state [B, N]`` or None."""
        check_tensor("inputs", inputs, ("B", "T", self.inputs), like=self.weight, like_name="the network's weights")
        check_nonempty_sequence("inputs", inputs)  # type: ignore[arg-type]
        check_finite("inputs", inputs)  # type: ignore[arg-type]
        if state is not None:
            check_tensor("state", state, (inputs.shape[0], self.units), like=self.weight,  # type: ignore[union-attr]
                         like_name="the network's weights")
            check_finite("state", state)  # type: ignore[arg-type]
        return inputs  # type: ignore[return-value]

    @torch.no_grad()
    def run(self, inputs: Tensor, state: Tensor | None = None, *,
            return_slopes: bool = False) -> tuple[Tensor, Tensor | None]:
        """States ``[B, T, N]`` for ``inputs [B, T, I]`` from ``state [B, N]`` (default zeros), and with
        ``return_slopes`` the slopes ``a * f'(a z_t + b)`` ``[B, T, N]`` (else None)."""
        self.check_inputs(inputs, state)
        batch, steps, _ = inputs.shape
        drive = (inputs @ self.input_weight.T) * self.gain  # a * W_in u_t for every t in one matmul
        weight_t = (self.weight.T * self.gain).contiguous()  # a * (W x) = x @ (W^T * a)
        x = inputs.new_zeros(batch, self.units) if state is None else state.clone()
        out = inputs.new_empty(batch, steps, self.units)
        slopes = inputs.new_empty(batch, steps, self.units) if return_slopes else None
        leak, bias, tanh = self.leak, self.bias, self.activation == "tanh"
        z = inputs.new_empty(batch, self.units)
        for t in range(steps):
            torch.addmm(drive[:, t], x, weight_t, out=z)
            z += bias
            y = torch.tanh(z) if tanh else torch.sigmoid(z)
            if slopes is not None:
                slopes[:, t] = self._slope(y)
            x = y if leak == 1.0 else x.mul(1 - leak).add_(y, alpha=leak)
            out[:, t] = x
        return out, slopes

    def forward(self, inputs: Tensor, state: Tensor | None = None) -> Tensor:
        """States ``[B, T, N]`` for ``inputs [B, T, I]`` (from ``state [B, N]``, default zeros)."""
        return self.run(inputs, state)[0]

    def step(self, x: Tensor, u: Tensor) -> Tensor:
        """One step ``x [..., N]``, ``u [..., I]`` -> ``x' [..., N]`` (unchecked; a map for
        :func:`neuroplastic.dynamics.perturbation_lyapunov_exponent`)."""
        z = self.gain * (x @ self.weight.T + u @ self.input_weight.T) + self.bias
        return (1 - self.leak) * x + self.leak * self._f(z)

    def net_input(self, x: Tensor, u: Tensor) -> Tensor:
        """The net input ``z = W x + W_in u`` ``[..., N]`` before gain and bias (what intrinsic plasticity sees)."""
        return x @ self.weight.T + u @ self.input_weight.T
