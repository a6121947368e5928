"""What NIR export and import share: the optional ``nir`` import, :class:`SpikingSequential`, checks.

The mapping is described in :mod:`neuroplastic.neurons.nir_io`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from neuroplastic._checks import check_int_tuple, check_nonempty_sequence, check_same_placement
from neuroplastic.neurons.modules import (
    ALIF,
    LIF,
    ALIFCell,
    LeakyReadout,
    LIFCell,
    RecurrentLIF,
)

__all__ = ["SpikingSequential", "DISCRETIZATIONS"]

DISCRETIZATIONS = ("euler", "exact")
_SKIPPED = (nn.Identity, nn.Dropout)
_GAIN_TOL = 1e-9
# tau of a pure integrator (d == 1): exp(-1e-30) rounds to exactly 1.0 in float32 and float64.
_INTEGRATOR_TAU = 1e30


def _nir():
    """The ``nir`` package, imported on first use, with an error that says how to install it."""
    try:
        import nir
    except ImportError as error:
        raise ImportError("NIR export and import need the 'nir' package: pip install neuroplastic[nir] "
                          "(or pip install nir)") from error
    return nir


# --------------------------------------------------------------------------------------------------------
# A chain of layers over spike sequences
# --------------------------------------------------------------------------------------------------------

_SEQUENCE_MODULES = (LIF, ALIF, RecurrentLIF, LeakyReadout)


class SpikingSequential(nn.Sequential):
    """A chain of layers over sequences ``[B, T, ...]``: what :func:`import_nir` returns and :func:`export_nir` reads.

    Stateful sequence modules (:class:`~neuroplastic.neurons.modules.LIF`, ``ALIF``, ``RecurrentLIF``,
    ``LeakyReadout``) run over the whole sequence with explicit state (``out, state = module(x, state)``);
    every other module (``nn.Linear``, ``nn.Conv2d``, ``nn.Flatten``, ...) is applied to each time step, with
    the time steps folded into the batch (``[B * T, ...]``). ``forward(x: [B, T, *input_shape], state=None)
    -> (out [B, T, ...], state)``; ``state`` is a tuple with one entry per module (None for stateless ones).
    """

    def forward(self, x: Tensor, state: Sequence[Any] | None = None) -> tuple[Tensor, tuple[Any, ...]]:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 3:
            raise ValueError(f"x must have the layout [B, T, *input_shape] (at least 3 dimensions), "
                             f"got shape {list(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        check_nonempty_sequence("x", x)
        parameter = next((p for p in self.parameters() if p.is_floating_point()), None)
        if parameter is not None:  # the first layer's dtype and device: a clear error instead of one from inside it
            check_same_placement("x", x, parameter, "the model's parameters")
        modules = list(self)
        if state is None:
            state = (None,) * len(modules)
        elif not isinstance(state, (tuple, list)) or len(state) != len(modules):
            raise ValueError(f"state must be None or a tuple with one entry per module ({len(modules)}), "
                             f"got {type(state).__name__} of length {len(state) if hasattr(state, '__len__') else '?'}")
        new_state = []
        for module, module_state in zip(modules, state, strict=True):
            if isinstance(module, (LIFCell, ALIFCell)):
                raise ValueError(f"SpikingSequential runs whole sequences; {type(module).__name__} is one time "
                                 f"step: use {type(module).__name__[:-4]} instead")
            if isinstance(module, _SEQUENCE_MODULES):
                x, module_state = module(x, module_state)
            else:
                batch, steps = x.shape[:2]
                y = module(x.reshape(batch * steps, *x.shape[2:]))
                x = y.reshape(batch, steps, *y.shape[1:])
                module_state = None
            new_state.append(module_state)
        return x, tuple(new_state)


# --------------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------------

_DT = "dt (the length of one time step in the graph's time unit)"
"""How the time step is named in errors of export and import (checked with ``check_number``)."""


def _shape_tuple(input_shape: object) -> tuple[int, ...]:
    """``input_shape`` as a tuple of ints (NumPy integers, as in a NIR graph, count as ints)."""
    if isinstance(input_shape, (tuple, list)):
        input_shape = tuple(int(n) if isinstance(n, np.integer) else n for n in input_shape)
    return check_int_tuple("input_shape (the shape of one time step of one sample, without batch and time, e.g. "
                           "(784,) or (1, 28, 28))", input_shape, allow_int=True)


def _flatten_modules(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out = []
        for name, child in module.named_children():
            out.extend(_flatten_modules(child, f"{prefix}.{name}" if prefix else name))
        return out
    return [(prefix or type(module).__name__.lower(), module)]


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _step_shape(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The per-step output shape of a stateless layer, by running it on one zero sample."""
    param = next(module.parameters(), None)
    kwargs = {} if param is None else {"dtype": param.dtype, "device": param.device}
    with torch.no_grad():
        return tuple(module(torch.zeros(1, *shape, **kwargs)).shape[1:])


# --------------------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------------------

