"""Spiking networks for within-episode association tasks (Schmidgall et al. 2021, SpikePropamine).

- :class:`PlainRecurrentLIF`: the non-plastic control, :class:`~neuroplastic.plasticity.spiking.PlasticLIF`
  (``recurrent=True``) without its plastic term, with the same parameter names and layout.
- :class:`AssociationSNN`: a spiking layer (plastic or not) read out by a linear layer on a leaky trace of its
  spikes::

      r_t = lambda_r r_{t-1} + z_t,   logits_t = r_t @ W_out^T + b_out
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_fraction, check_int, check_nonempty_sequence, check_number, check_tensor
from neuroplastic.neurons.lif import _lif_step, decay_from_tau
from neuroplastic.neurons.surrogates import FastSigmoid
from neuroplastic.plasticity.spiking import spike_trace

__all__ = ["PlainRecurrentLIF", "AssociationSNN"]


class PlainRecurrentLIF(nn.Module):
    """The non-plastic control: :class:`~neuroplastic.plasticity.spiking.PlasticLIF` (``recurrent=True``)
    without the plastic term.

    ``current_t = s_t @ W + b + z_{t-1} @ W_rec``; ``z_t, v_t = lif_step(v_{t-1}, current_t)`` (soft reset,
    threshold 1, fast-sigmoid surrogate). ``W [I, O]`` and ``W_rec [O, O]`` are left uninitialised
    (``torch.empty``), ``b`` zero: the caller initialises them.
    Shapes: ``s [B, T, I]`` -> ``(z [B, T, O], None)`` (the plastic layer's call signature).
    """

    def __init__(self, in_features: int, out_features: int, *, tau_mem: float, surrogate_slope: float) -> None:
        super().__init__()
        check_int("in_features", in_features)
        check_int("out_features", out_features)
        check_number("tau_mem", tau_mem, minimum=0, exclusive_minimum=True)
        check_number("surrogate_slope", surrogate_slope, minimum=0, exclusive_minimum=True)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.recurrent_weight = nn.Parameter(torch.empty(out_features, out_features))
        self.register_buffer("tau_mem", torch.tensor(float(tau_mem)))
        self.surrogate = FastSigmoid(surrogate_slope)

    def forward(self, inputs: Tensor, state: None = None) -> tuple[Tensor, None]:
        """``inputs [B, T, I]`` -> ``(spikes [B, T, O], None)``; membrane and spikes start at zero."""
        check_tensor("inputs", inputs, ("B", "T", self.in_features), like=self.weight)
        check_nonempty_sequence("inputs", inputs)
        drive = inputs @ self.weight + self.bias
        decay = decay_from_tau(self.tau_mem)
        membrane = spikes = drive.new_zeros(drive.shape[0], self.out_features)
        outputs = []
        for t in range(drive.shape[1]):
            spikes, membrane = _lif_step(membrane, drive[:, t] + spikes @ self.recurrent_weight, decay, 1.0, "soft",
                                         0.0, False, False, self.surrogate)  # lif_step; inputs checked above
            outputs.append(spikes)
        return torch.stack(outputs, dim=1), None


class AssociationSNN(nn.Module):
    """A spiking layer and a leaky linear readout: ``inputs [B, T, I]`` -> ``(logits [B, T, K], spikes [B, T, N])``.

    Args:
        layer: a spiking layer called as ``spikes, state = layer(inputs)``.
        hidden_size: N, the layer's output size.
        classes: K outputs of the readout.
        readout_decay: ``lambda_r`` of the leaky trace the readout reads.
    """

    def __init__(self, layer: nn.Module, hidden_size: int, classes: int, readout_decay: float) -> None:
        super().__init__()
        check_int("hidden_size", hidden_size)
        check_int("classes", classes)
        check_fraction("readout_decay", readout_decay)
        width = getattr(layer, "out_features", getattr(layer, "hidden_size", hidden_size))
        if width != hidden_size:
            raise ValueError(f"hidden_size must be the layer's output size {width}, got {hidden_size}")
        self.layer = layer
        self.readout = nn.Linear(hidden_size, classes)
        self.readout_decay = float(readout_decay)

    def forward(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        spikes, _ = self.layer(inputs)
        return self.readout(spike_trace(spikes, self.readout_decay)), spikes
