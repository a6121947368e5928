"""Genomes as flat parameter vectors: where each of a model's parameters lies in a ``[D]`` vector, and running
the model with a genome's (or a whole population's) parameters in place of its own.

Evolution sees a network as one vector of its trainable parameters (``torch.nn.utils.parameters_to_vector``
order: ``named_parameters()``, a tied parameter once). :class:`ParameterLayout` maps a genome ``[D]`` or a
population ``[P, D]`` to the model's parameter shapes as views, and :meth:`ParameterLayout.call` /
:meth:`ParameterLayout.batched_call` run the template model with them through ``torch.func.functional_call``
(and ``torch.func.vmap`` over the population), so the template itself is never modified.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ParameterLayout", "ParameterSlot"]


@dataclass(frozen=True)
class ParameterSlot:
    """One parameter's place in a genome: ``genome[offset : offset + numel].view(shape)``."""

    name: str
    shape: torch.Size
    offset: int
    numel: int

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.numel)


class ParameterLayout:
    """How the trainable parameters of ``model`` lie in a flat genome vector of length :attr:`size`.

    Args:
        model: any ``nn.Module``; its parameters that require gradients, in ``named_parameters()`` order (a
            tied parameter appears once), make up the genome. They must share one floating dtype and device.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or its parameters mix dtypes or devices, or one is not floating.
        ValueError: the model has no trainable parameter.
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError(f"model must have at least one trainable parameter; {type(model).__name__} has none")
        dtypes = {p.dtype for _, p in named}
        devices = {p.device for _, p in named}
        if len(dtypes) > 1 or len(devices) > 1:
            raise TypeError(f"the model's parameters must share one dtype and device to form a genome, got dtypes "
                            f"{sorted(map(str, dtypes))} on devices {sorted(map(str, devices))}")
        (self.dtype,), (self.device,) = dtypes, devices
        if not self.dtype.is_floating_point:
            raise TypeError(f"the model's parameters must be floating point to form a genome, got {self.dtype}")
        slots, offset = [], 0
        for name, p in named:
            slots.append(ParameterSlot(name, p.shape, offset, p.numel()))
            offset += p.numel()
        self.slots: tuple[ParameterSlot, ...] = tuple(slots)
        self.size = offset

    def __len__(self) -> int:
        return len(self.slots)

    def __iter__(self) -> Iterator[ParameterSlot]:
        return iter(self.slots)

    def __repr__(self) -> str:
        return f"ParameterLayout(size={self.size}, parameters={[s.name for s in self.slots]})"

    def _check_genomes(self, genomes: Any, name: str = "genome") -> Tensor:
        if not isinstance(genomes, Tensor):
            raise TypeError(f"{name} must be a tensor [..., {self.size}], got {type(genomes).__name__}")
        if genomes.dim() == 0 or genomes.shape[-1] != self.size:
            raise ValueError(f"{name} must have shape [..., {self.size}] (the layout's size), "
                             f"got {tuple(genomes.shape)}")
        if not genomes.dtype.is_floating_point:
            raise TypeError(f"{name} must be floating point, got {genomes.dtype}")
        return genomes

    def flatten(self, model: nn.Module) -> Tensor:
        """The current values of ``model``'s parameters in this layout, a new tensor ``[D]`` (no gradient)."""
        params = dict(model.named_parameters())
        missing = [s.name for s in self.slots if s.name not in params or params[s.name].shape != s.shape]
        if missing:
            raise ValueError(f"model does not match the layout: parameters {missing} are missing or have "
                             f"another shape")
        with torch.no_grad():
            return torch.cat([params[s.name].reshape(-1) for s in self.slots]).clone()

    def unflatten(self, genomes: Tensor) -> dict[str, Tensor]:
        """Views of ``genomes [..., D]`` as the model's parameters: ``{name: [..., *shape]}``."""
        genomes = self._check_genomes(genomes, "genomes")
        lead = genomes.shape[:-1]
        return {s.name: genomes[..., s.slice].reshape((*lead, *s.shape)) for s in self.slots}

    def load(self, model: nn.Module, genome: Tensor) -> nn.Module:
        """Copy ``genome [D]`` into ``model``'s parameters in place (no gradient); returns ``model``."""
        genome = self._check_genomes(genome)
        if genome.dim() != 1:
            raise ValueError(f"genome must have shape [{self.size}], got {tuple(genome.shape)}")
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in self.unflatten(genome).items():
                params[name].copy_(value)
        return model

    def call(self, model: nn.Module, genome: Tensor, *args: Any, **kwargs: Any) -> Any:
        """``model(*args, **kwargs)`` with the parameters of ``genome [D]`` (the model is not modified;
        gradients flow to ``genome``). Buffers are the model's own."""
        genome = self._check_genomes(genome)
        if genome.dim() != 1:
            raise ValueError(f"genome must have shape [{self.size}], got {tuple(genome.shape)}")
        return torch.func.functional_call(model, self.unflatten(genome), args, kwargs)

    def batched_call(self, model: nn.Module, genomes: Tensor, *args: Any, **kwargs: Any) -> Any:
        """``model(*args, **kwargs)`` for every genome of ``genomes [P, D]`` in one vectorised call
        (``torch.func.vmap``); the inputs are shared, and each output gains a leading ``P`` dimension.

        The model must be vmap-compatible: no in-place update of its buffers (put batch norm in eval mode), no
        data-dependent Python control flow. Raises the vmap error otherwise; use :meth:`call` in a loop then.
        """
        genomes = self._check_genomes(genomes, "genomes")
        if genomes.dim() != 2:
            raise ValueError(f"genomes must have shape [P, {self.size}], got {tuple(genomes.shape)}")

        def one(genome: Tensor) -> Any:
            return torch.func.functional_call(model, self.unflatten(genome), args, kwargs)

        return torch.func.vmap(one, randomness="different")(genomes)
