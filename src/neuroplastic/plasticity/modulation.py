"""Neuromodulation: plasticity rates that the network computes from its own activity.

Miconi et al. 2019, Backpropamine. A modulator reads a source activity ``s`` (usually the layer's
post-synaptic activity) and returns the plasticity rate of the current step:

``M(t) = tanh(s(t) @ W_m + b_m)``  with K modulator channels ``[B, K]``;
with ``fanout`` the K channels are mapped to one rate per receiving neuron, ``M(t) @ W_f + b_f`` ``[B, O]``.

- *simple* modulation: ``M(t)`` replaces the learned rate eta in the plasticity rule.
- *retroactive* modulation: an eligibility trace ``E <- (1 - eta_E) E + eta_E pre ⊗ post`` (or another
  rule, with rate eta_E) records recent co-activity, and ``H <- clip(H + M(t) E, ±clip)`` commits it
  when the modulator says so.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_bool, check_choice, check_int, check_number, check_tensor

__all__ = ["Modulator", "MODULATIONS", "make_modulator"]

MODULATIONS = ("none", "simple", "retroactive")


class Modulator(nn.Module):
    """Computes the neuromodulatory signal ``M(t)`` from a source activity.

    Miconi et al. 2019, Backpropamine.
    ``M = tanh(source @ W_m + b_m)`` ``[B, K]``; with ``fanout``: ``rate = M @ W_f + b_f`` ``[B, O]``,
    otherwise (K must be 1 or O) ``rate = M`` ``[B, K]``.

    Args:
        source_size: size of the activity the modulator reads.
        out_features: number of receiving (post-synaptic) neurons O.
        channels: number of modulator channels K (the reference code has one).
        fanout: map channels to one rate per receiving neuron through a learned linear layer.
        mode: ``"simple"`` or ``"retroactive"`` (see the module docstring).
        eligibility_rate: initial eta_E of the eligibility trace (retroactive mode; learned; a finite number > 0).
    """

    def __init__(
        self,
        source_size: int,
        out_features: int,
        *,
        channels: int = 1,
        fanout: bool = True,
        mode: str = "simple",
        eligibility_rate: float = 0.1,
    ) -> None:
        super().__init__()
        check_choice("mode", mode, ("simple", "retroactive"))
        check_int("source_size", source_size)
        check_int("out_features", out_features)
        check_int("channels", channels)
        check_bool("fanout", fanout)
        if not fanout and channels not in (1, out_features):
            raise ValueError(
                f"without fanout, channels must be 1 or out_features={out_features}; got {channels}"
            )
        check_number("eligibility_rate", eligibility_rate, minimum=0, exclusive_minimum=True)
        self.mode = mode
        self.channels = channels
        self.out_features = out_features
        self.neuromodulator = nn.Linear(source_size, channels)
        self.fanout = nn.Linear(channels, out_features) if fanout else None
        if mode == "retroactive":
            self.eligibility_rate = nn.Parameter(torch.tensor(float(eligibility_rate)))
        else:
            self.register_parameter("eligibility_rate", None)

    @property
    def retroactive(self) -> bool:
        """Whether the modulator commits an eligibility trace (``mode == "retroactive"``)."""
        return self.mode == "retroactive"

    def forward(self, source: Tensor) -> Tensor:
        """``source [B, S]`` -> plasticity rate ``[B, O]`` (with fanout) or ``[B, K]``."""
        check_tensor("source", source, ("B", self.neuromodulator.in_features), like=self.neuromodulator.weight,
                     like_name="the modulator's parameters")
        signal = torch.tanh(self.neuromodulator(source))
        if self.fanout is not None:
            signal = self.fanout(signal)
        return signal

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, channels={self.channels}, fanout={self.fanout is not None}"


def make_modulator(
    modulation: str | Modulator | None,
    source_size: int,
    out_features: int,
    *,
    channels: int = 1,
    fanout: bool = True,
    eligibility_rate: float = 0.1,
) -> Modulator | None:
    """A :class:`Modulator` from ``"none"``/``None``, ``"simple"``, ``"retroactive"``, or as given."""
    if modulation is None or isinstance(modulation, Modulator):
        return modulation
    check_choice("modulation", modulation, MODULATIONS)
    if modulation == "none":
        return None
    return Modulator(source_size, out_features, channels=channels, fanout=fanout, mode=modulation,
                     eligibility_rate=eligibility_rate)
