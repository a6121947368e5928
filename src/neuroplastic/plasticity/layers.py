"""A feed-forward plastic layer, e.g. for one-shot classification with Hebbian fast weights."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_bool, check_state, check_tensor
from neuroplastic.plasticity.synapses import PlasticState, PlasticSynapses, SynapseConfig

__all__ = ["PlasticLinear"]


class PlasticLinear(nn.Module):
    """A linear layer with fixed weights plus a learned multiple of a per-episode Hebbian trace.

    Miconi et al. 2018, Differentiable plasticity (one-shot classification: the trace binds features
    to the label shown as ``target``).
    ``y = x @ (W + alpha * H) + b``; then ``H <- update(H, pre=x, post=target if given else y)``;
    a modulator, if any, reads ``y``.
    Shapes: ``x [B, I]`` -> ``y [B, O]``; trace ``[B, I, O]``; ``target [B, O]``.

    Use it inside a model that carries the state through an episode::

        layer = PlasticLinear(64, 10)
        state = layer.initial_state(batch_size)
        for x, label in episode:                       # show labelled examples ...
            _, state = layer(x, state, target=label)
        y, state = layer(query, state)                 # ... then classify a query

    Args:
        in_features, out_features: I and O.
        bias: learn the bias ``b``.
        config: the synapse settings (:class:`~neuroplastic.plasticity.synapses.SynapseConfig`; None: defaults).
        **overrides: fields of ``SynapseConfig`` replacing those of ``config`` (e.g. ``modulation="simple"``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        config: SynapseConfig | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        check_bool("bias", bias)
        self.synapses = PlasticSynapses(in_features, out_features, config=config, modulator_source=out_features,
                                        **overrides)
        self.in_features = in_features
        self.out_features = out_features
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound)) if bias else None

    def initial_state(
        self, batch_size: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> PlasticState:
        """Zero traces for ``batch_size`` episodes."""
        return self.synapses.initial_state(batch_size, device=device, dtype=dtype)

    def check_state(self, state: object, batch: int) -> None:
        """Raise unless ``state`` is a :class:`PlasticState` this layer can continue from with ``batch`` inputs
        (:meth:`PlasticSynapses.state_fields`, :func:`~neuroplastic._checks.check_state`)."""
        check_state(state, [("", PlasticState)], self.synapses.state_fields(batch), batch=batch, like=self.weight)

    def forward(
        self, x: Tensor, state: PlasticState | None = None, *, target: Tensor | None = None
    ) -> tuple[Tensor, PlasticState]:
        """``x [B, I]`` -> ``(y [B, O], new state)``; ``target [B, O]`` replaces ``y`` as the post activity."""
        check_tensor("x", x, ("B", self.in_features), like=self.weight)
        if x.shape[0] == 0:  # initial_state(0) would refuse it as "batch_size"
            raise ValueError(f"x must have at least one sample ([B, I] with B >= 1), got shape {list(x.shape)}")
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        else:
            self.check_state(state, x.shape[0])
        y = x @ self.weight + self.synapses._plastic_input(x, state)
        if self.bias is not None:
            y = y + self.bias
        post = y
        if target is not None:
            check_tensor("target", target, (x.shape[0], self.out_features))
            post = target.to(y.dtype)
        return y, self.synapses._update(state, x, post, modulator_source=y)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
