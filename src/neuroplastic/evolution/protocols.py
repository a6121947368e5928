"""The contracts between a genetic algorithm and what plugs into it: evaluators and mutations.

An :class:`Evaluator` turns genomes into fitness (one process, a pool, Ray: all keep this contract); a
:class:`Mutation` turns parents into children, knowing what each parent saw during its evaluation
(:class:`MutationContext`), which a safe mutation needs (Lehman et al. 2018). Both are plain callables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from .._checks import check_values
from .operators import gaussian_mutation

__all__ = [
    "Best", "Evaluation", "Evaluator", "GaussianMutation", "Mutation", "MutationContext", "Pending", "check_fitness",
]


@dataclass(frozen=True)
class Evaluation:
    """What an evaluator may return instead of a plain fitness tensor.

    ``fitness``: ``[N]``; ``experience``: per genome, what it saw during its evaluation (for a safe mutation of
    its children): a tensor ``[N, ...]``, a sequence of ``N`` entries, a mapping of name to ``[N, ...]`` tensors,
    or None.
    """

    fitness: Tensor
    experience: Any = None


def check_fitness(fitness: Any, n: int, *, source: str = "fitness", nan_fitness: str = "raise") -> Tensor:
    """``fitness`` for ``n`` genomes as a detached float64 tensor ``[n]``, or a clear error.

    ``source`` names what produced it in the messages (e.g. "fitness returned by problem 'parity'"). NaN is
    refused with ``nan_fitness="raise"`` and passed through with ``"worst"`` (the caller counts and replaces it).

    Raises:
        TypeError: not a tensor (or sequence) of real numbers.
        ValueError: not of shape ``[n]``, an infinite value, or NaN with ``nan_fitness="raise"``.
    """
    if not isinstance(fitness, Tensor):
        try:
            fitness = torch.as_tensor(fitness, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{source} must be a tensor [N] of numbers (N = {n}) or an Evaluation, got "
                            f"{type(fitness).__name__}") from error
    if fitness.is_complex() or fitness.dtype == torch.bool:
        raise TypeError(f"{source} must be real numbers, got dtype {fitness.dtype}")
    if tuple(fitness.shape) != (n,):
        raise ValueError(f"{source} must have shape [{n}] (one value per genome), got shape {list(fitness.shape)}")
    fitness = fitness.detach().to(torch.float64)
    for bad, what in ((torch.isinf(fitness), "infinite values"), (torch.isnan(fitness), "NaN")):
        if what == "NaN" and nan_fitness != "raise":
            break
        if bool(bad.any()):
            hint = (" (set nan_fitness='worst' in the GA's config and the evaluator to count NaN as the worst "
                    "fitness instead)" if what == "NaN" else "")
            raise ValueError(f"{source} must be finite, got {int(bad.sum())} {what} of {n} (genomes "
                             f"{bad.nonzero().flatten()[:10].tolist()}){hint}")
    return fitness


@runtime_checkable
class Evaluator(Protocol):
    """``evaluate(genomes [N, D], seeds [N] int64) -> fitness [N]`` (or an :class:`Evaluation`).

    ``seeds[i]`` is :func:`~neuroplastic.evolution.operators.genome_seed` of the run seed, genome ``i``'s
    generation and id: an evaluator seeds genome ``i``'s episodes with it, so that every evaluator (one process,
    a pool, Ray) gives a genome the same fitness.
    """

    def __call__(self, genomes: Tensor, seeds: Tensor) -> Tensor | Evaluation: ...


@dataclass(frozen=True)
class MutationContext:
    """What a mutation knows about the ``N`` parents it mutates (the first parent of a crossover child).

    ``parent_ids [N]`` int64; ``parent_fitness [N]`` float64; ``experience``: ``N`` entries, what each parent's
    evaluation reported through ``tell(..., experience=...)`` (None where nothing was reported).
    """

    parent_ids: Tensor
    parent_fitness: Tensor
    experience: tuple[Any, ...]


class Mutation(Protocol):
    """``mutation(parents [N, D], generator, context) -> children [N, D]`` (a new tensor; draws from
    ``generator`` only)."""

    def __call__(self, parents: Tensor, generator: torch.Generator, context: MutationContext) -> Tensor: ...


class GaussianMutation:
    """The default mutation: ``child = parent + std * N(0, 1)`` per gene
    (:func:`~neuroplastic.evolution.operators.gaussian_mutation`); ``std`` a number or a per-weight ``[D]``."""

    def __init__(self, std: float | Tensor) -> None:
        self.std = check_values("std", std, minimum=0)

    def __call__(self, parents: Tensor, generator: torch.Generator, context: MutationContext) -> Tensor:
        return gaussian_mutation(parents, self.std, generator)

    def __repr__(self) -> str:
        return f"GaussianMutation(std={self.std})"


class Best(NamedTuple):
    """The fittest genome evaluated so far: ``genome [D]``, its ``fitness`` and ``id``."""

    genome: Tensor
    fitness: float
    id: int


class Pending(NamedTuple):
    """The batch :meth:`ask` handed out and :meth:`tell` expects: ``genomes [N, D]``, ``ids [N]``, ``seeds [N]``."""

    genomes: Tensor
    ids: Tensor
    seeds: Tensor
