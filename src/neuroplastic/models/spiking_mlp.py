"""Spiking MLPs of LIF neurons for image classification, trained with surrogate gradients.

- :class:`SpikingMLP`: ``[B, I]`` images -> (direct or rate encoding over ``T`` steps) -> Linear -> LIF ->
  Linear -> LIF -> Linear read-out averaged over the ``T`` steps -> class scores ``[B, C]``; the reset mode
  and the membrane potential rectifier (Guo et al. 2022, "Reducing Information Loss for Spiking Neural
  Networks", ECCV) are those of both LIF layers; optional batch norm of the currents.
- :class:`SpikingRateMLP`: the MNIST network of Chen et al. 2021 ("Pruning of deep spiking neural networks
  through gradient rewiring", IJCAI; their ``mnist/model.py``): ``[B, I]`` -> Linear (no bias), the same
  current at each of ``T`` steps -> LIF -> Linear (no bias) -> LIF -> output firing rates ``[B, C]``, with
  SpikingJelly's LIF as they configure it (``v <- v + (x - v) / tau``, hard reset to 0, detached).
- :func:`spiking_activity`: hidden firing rate and synaptic operations of a :class:`SpikingRateMLP`.

Both build their layers in the order listed, so a seeded global generator gives the same initial weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_bool, check_choice, check_fraction, check_int, check_number
from neuroplastic.neurons import LIF, get_surrogate, rate_encode

__all__ = ["ENCODINGS", "SURROGATES", "SpikingMLP", "SpikingRateMLP", "spiking_activity"]

ENCODINGS = ("direct", "rate")
"""Input encodings of :class:`SpikingMLP`."""
SURROGATES = ("triangle", "rectangle")
"""Surrogate gradients of :class:`SpikingMLP` (their width is the threshold)."""


def _per_step(module: nn.Module, x: Tensor) -> Tensor:
    """Apply a ``[B, N]`` module (batch norm) to ``[B, T, N]`` with batch and time merged."""
    return module(x.flatten(0, 1)).view(x.shape)


class SpikingMLP(nn.Module):
    """``[B, I]`` images -> (encoding) -> Linear -> LIF -> Linear -> LIF -> Linear, averaged over T -> ``[B, C]``.

    Guo et al. 2022's setting on an MLP: ``reset`` ("hard", "soft") and ``rectifier`` (the MPR) are those of
    both LIF layers (:class:`~neuroplastic.neurons.LIF`, per-step ``decay`` in (0, 1), i.e. ``tau = -1 /
    ln(decay)``). ``forward(x, generator=None)``: ``x`` normalised images for ``encoding="direct"`` (the
    first layer's current is the same at every step), intensities in [0, 1] for ``"rate"`` (Bernoulli spikes
    with the intensity as probability, :func:`~neuroplastic.neurons.rate_encode`, drawn from ``generator``).
    ``surrogate``: "triangle" or "rectangle" (width: the threshold). ``norm``: batch norm of both LIF layers'
    input currents. Layers are created in the order fc1, lif1, fc2, lif2, norm1, norm2, readout.
    """

    def __init__(self, hidden: int, time_steps: int, *, decay: float, threshold: float, reset: str, rectifier: bool,
                 encoding: str = "direct", norm: bool = False, surrogate: str = "triangle", in_features: int = 784,
                 classes: int = 10) -> None:
        super().__init__()
        check_int("hidden", hidden)
        check_int("time_steps", time_steps)
        check_fraction("decay", decay, low_open=True, high_open=True)  # the membrane's per-step decay
        check_choice("encoding", encoding, ENCODINGS)
        check_choice("surrogate", surrogate, SURROGATES)
        check_bool("rectifier", rectifier)
        check_bool("norm", norm)
        self.time_steps, self.encoding = time_steps, encoding
        kw = dict(tau=-1.0 / math.log(decay), threshold=threshold, reset=reset, rectifier=rectifier,
                  surrogate=get_surrogate(surrogate, width=threshold))
        self.fc1, self.lif1 = nn.Linear(in_features, hidden), LIF(hidden, **kw)
        self.fc2, self.lif2 = nn.Linear(hidden, hidden), LIF(hidden, **kw)
        self.norm1 = nn.BatchNorm1d(hidden) if norm else nn.Identity()
        self.norm2 = nn.BatchNorm1d(hidden) if norm else nn.Identity()
        self.readout = nn.Linear(hidden, classes)

    def hidden_currents(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The first LIF layer's input currents ``[B, T, H]`` for images ``x [B, I]``."""
        if self.encoding == "direct":
            current = self.norm1(self.fc1(x))
            return current.unsqueeze(1).expand(x.shape[0], self.time_steps, -1).contiguous()
        return _per_step(self.norm1, self.fc1(rate_encode(x, self.time_steps, generator)))

    def second_currents(self, spikes: Tensor) -> Tensor:
        """The second LIF layer's input currents ``[B, T, H]`` for the first layer's spikes ``[B, T, H]``."""
        return _per_step(self.norm2, self.fc2(spikes))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        s1, _ = self.lif1(self.hidden_currents(x, generator))
        s2, _ = self.lif2(self.second_currents(s1))
        return self.readout(s2).mean(1)


class SpikingRateMLP(nn.Module):
    """Static Linear -> LIF -> Linear -> LIF, output firing rates over ``T`` steps (Chen et al. 2021's MNIST SNN).

    ``forward(x [B, I]) -> rates [B, C]`` (spike counts / T); ``forward(x, return_hidden=True)`` also returns
    the hidden spikes ``[B, T, hidden]``. Direct encoding: ``fc1(x) / tau`` is the hidden layer's current at
    every step. Neurons: SpikingJelly's LIF ``v <- v + (x - v) / tau`` = :class:`~neuroplastic.neurons.LIF`
    with decay ``1 - 1/tau`` on input currents scaled by ``1/tau``; threshold ``threshold``, hard reset to 0
    detached from the graph; ``tau > 1``. Both Linear layers have no bias; created in the order fc1, lif1,
    fc2, lif2.
    """

    def __init__(self, hidden: int = 800, time_steps: int = 8, *, tau: float = 2.0, threshold: float = 1.0,
                 surrogate: str = "atan", in_features: int = 784, classes: int = 10) -> None:
        super().__init__()
        for name, value in (("hidden", hidden), ("time_steps", time_steps), ("in_features", in_features),
                            ("classes", classes)):
            check_int(name, value)
        check_number("tau (SpikingJelly's decay is 1 - 1/tau)", tau, minimum=1, exclusive_minimum=True)
        self.time_steps = time_steps
        self.input_scale = 1.0 / tau
        # our LIF's decay is exp(-1/tau_ours); SpikingJelly's is 1 - 1/tau
        neuron_tau = -1.0 / math.log(1.0 - 1.0 / tau)
        kw = dict(tau=neuron_tau, threshold=threshold, reset="hard", detach_reset=True, surrogate=surrogate)
        self.fc1 = nn.Linear(in_features, hidden, bias=False)
        self.lif1 = LIF(hidden, **kw)
        self.fc2 = nn.Linear(hidden, classes, bias=False)
        self.lif2 = LIF(classes, **kw)

    def forward(self, x: Tensor, return_hidden: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if x.dim() != 2 or x.shape[1] != self.fc1.in_features:
            raise ValueError(f"x must have shape [B, {self.fc1.in_features}], got {list(x.shape)}")
        current = self.input_scale * self.fc1(x)
        batch = x.shape[0]
        hidden, _ = self.lif1(current.unsqueeze(1).expand(batch, self.time_steps, -1).contiguous())
        out, _ = self.lif2(self.input_scale * self.fc2(hidden))
        rates = out.mean(1)
        return (rates, hidden) if return_hidden else rates


@torch.no_grad()
def spiking_activity(model: SpikingRateMLP, x: Tensor, *, batch_size: int = 1000) -> dict[str, float]:
    """Hidden firing rate (spikes per neuron per step) and synaptic operations per sample on ``x [n, I]``.

    Synaptic operations (accumulates) of the spiking layer: every hidden spike costs one addition per
    existing outgoing synapse, ``sum_t sum_j s_j(t) * fanout_j`` with ``fanout_j`` the nonzero weights of
    column ``j`` of ``fc2``; the static first layer costs one multiply-accumulate per nonzero weight, once
    (``macs``). Runs in eval mode, in batches of ``batch_size``; leaves the model in training mode.
    """
    model.eval()
    fanout = (model.fc2.weight != 0).sum(0).to(x.dtype)
    spikes, synops = 0.0, 0.0
    for i in range(0, len(x), batch_size):
        _, hidden = model(x[i:i + batch_size], return_hidden=True)
        spikes += float(hidden.sum())
        synops += float((hidden.sum(1) * fanout).sum())
    model.train()
    n = len(x)
    return {"hidden_rate": spikes / (n * model.time_steps * model.fc1.out_features),
            "synops": synops / n, "macs": float((model.fc1.weight != 0).sum())}
