"""A population of genomes with ids, parents, generations and fitness, and the lineage of every genome ever made.

A :class:`Population` holds ``P`` members: ``genomes [P, D]`` (flat parameter vectors of a template model, see
:class:`~neuroplastic.evolution.genome.ParameterLayout`), ``ids [P]``, ``fitness [P]`` (float64, NaN: not yet
evaluated) and, per member, the experience its evaluation reported (for safe mutations). Its
:class:`LineageRecord` (:attr:`Population.record`) holds every genome created, member or not: parents,
generation of birth and fitness, indexed by id (ids are 0, 1, 2, ... in order of creation), so that the
ancestry of any genome can be traced and plotted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_int, check_tensor
from .genome import ParameterLayout
from .operators import gaussian_mutation

__all__ = ["LineageRecord", "Population"]


class LineageRecord:
    """Every genome ever created: ``parents [M, 2]`` (int64 ids, -1 = none), ``generation [M]`` (int64, of
    birth) and ``fitness [M]`` (float64, NaN until evaluated), row ``i`` for the genome of id ``i``.

    The tensors grow by doubling their capacity, so that recording ``M`` genomes one at a time costs ``O(M)``.
    Invariant (checked by the tests): a parent id is smaller than its child's id and was born in an earlier
    generation.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self._count = 0
        self._parents = torch.full((16, 2), -1, dtype=torch.int64, device=device)
        self._generation = torch.zeros(16, dtype=torch.int64, device=device)
        self._fitness = torch.full((16,), float("nan"), dtype=torch.float64, device=device)

    def __len__(self) -> int:
        return self._count

    @property
    def ids(self) -> Tensor:
        """``[M]`` int64: 0, 1, ..., M - 1."""
        return torch.arange(self._count, device=self._parents.device)

    @property
    def parents(self) -> Tensor:
        """``[M, 2]`` int64 parent ids (-1: none; a mutant of one parent has ``[parent, -1]``)."""
        return self._parents[: self._count]

    @property
    def generation(self) -> Tensor:
        """``[M]`` int64 generation of birth (founders: 0)."""
        return self._generation[: self._count]

    @property
    def fitness(self) -> Tensor:
        """``[M]`` float64 fitness of the genome's evaluation (NaN: not evaluated)."""
        return self._fitness[: self._count]

    def _grow(self, needed: int) -> None:
        capacity = self._parents.shape[0]
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        extra = capacity - self._parents.shape[0]
        device = self._parents.device
        self._parents = torch.cat([self._parents, torch.full((extra, 2), -1, dtype=torch.int64, device=device)])
        self._generation = torch.cat([self._generation, torch.zeros(extra, dtype=torch.int64, device=device)])
        self._fitness = torch.cat([self._fitness, torch.full((extra,), float("nan"), dtype=torch.float64,
                                                             device=device)])

    def record(self, parents: Tensor, generation: Tensor) -> Tensor:
        """Record new genomes with ``parents [N, 2]`` (ids of recorded genomes or -1) born in ``generation [N]``;
        returns their ids ``[N]``."""
        parents = check_tensor("parents", parents, ("N", 2), floating=False)
        generation = check_tensor("generation", generation, (parents.shape[0],), floating=False)
        known = (parents == -1) | ((parents >= 0) & (parents < self._count))
        if not bool(known.all()):
            raise ValueError(f"parents must be ids of recorded genomes (0 to {self._count - 1}) or -1, got "
                             f"{parents[~known].flatten()[0].item()}")
        start, n = self._count, parents.shape[0]
        self._grow(start + n)
        self._parents[start: start + n] = parents.to(self._parents.device)
        self._generation[start: start + n] = generation.to(self._generation.device)
        self._count += n
        return torch.arange(start, start + n, device=self._parents.device)

    def set_fitness(self, ids: Tensor, fitness: Tensor) -> None:
        """Store ``fitness [N]`` of the genomes ``ids [N]``."""
        self._fitness[ids] = fitness.to(self._fitness)

    def chain(self, genome_id: int) -> Tensor:
        """The line of descent of ``genome_id`` through first parents, ``[L]`` int64 ids from the genome back
        to its founder (``[genome_id]`` for a founder). The first parent is the one that was mutated (or the
        first mate of a crossover)."""
        genome_id = check_int("genome_id", genome_id, minimum=0, maximum=self._count - 1)
        chain, current = [genome_id], genome_id
        parents = self.parents[:, 0].tolist()
        while parents[current] >= 0:
            current = parents[current]
            chain.append(current)
        return torch.tensor(chain, dtype=torch.int64)

    def ancestors(self, genome_id: int) -> Tensor:
        """Every ancestor of ``genome_id`` through both parents, ``[A]`` int64 ids in increasing order (without
        the genome itself)."""
        genome_id = check_int("genome_id", genome_id, minimum=0, maximum=self._count - 1)
        parents = self.parents.tolist()
        seen: set[int] = set()
        stack = [p for p in parents[genome_id] if p >= 0]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(p for p in parents[current] if p >= 0)
        return torch.tensor(sorted(seen), dtype=torch.int64)

    def state_dict(self) -> dict[str, Tensor]:
        return {"parents": self.parents.clone(), "generation": self.generation.clone(),
                "fitness": self.fitness.clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        parents = check_tensor("state['parents']", state["parents"], ("M", 2), floating=False)
        generation = check_tensor("state['generation']", state["generation"], (parents.shape[0],), floating=False)
        fitness = check_tensor("state['fitness']", state["fitness"], (parents.shape[0],))
        device = self._parents.device
        self._count = 0
        self._grow(max(parents.shape[0], 1))
        m = parents.shape[0]
        self._parents[:m] = parents.to(device)
        self._generation[:m] = generation.to(device)
        self._fitness[:m] = fitness.to(device, torch.float64)
        self._parents[m:] = -1
        self._generation[m:] = 0
        self._fitness[m:] = float("nan")
        self._count = m


class Population:
    """``P`` genomes of one length ``D``, with ids, fitness and per-member experience, and the lineage of every
    genome ever created.

    Build one with :meth:`from_model` (perturbations of a template model) or :meth:`from_genomes`. The genetic
    algorithms (:mod:`neuroplastic.evolution.ga`) create genomes with :meth:`create` and put them in place of
    members with :meth:`replace`; a user reads :attr:`genomes`, :attr:`ids`, :attr:`fitness`, :attr:`parents`,
    :attr:`generations` and :attr:`record`, and trace ancestry with :meth:`lineage`.

    Attributes:
        genomes: ``[P, D]`` floating tensor.
        ids: ``[P]`` int64 ids of the members (unique; ids increase in order of creation).
        fitness: ``[P]`` float64 (NaN: not yet evaluated).
        experience: list of ``P`` entries, what each member's evaluation reported for safe mutations (None: none).
        record: the :class:`LineageRecord` of every genome created.
        layout: the template's :class:`ParameterLayout` (:meth:`from_model`), or None.
    """

    def __init__(self, genomes: Tensor, *, layout: ParameterLayout | None = None) -> None:
        genomes = check_tensor("genomes", genomes, ("P", "D"))
        if genomes.shape[0] < 1 or genomes.shape[1] < 1:
            raise ValueError(f"genomes must have at least one genome of at least one gene, got shape "
                             f"{list(genomes.shape)}")
        if layout is not None and genomes.shape[1] != layout.size:
            raise ValueError(f"genomes must have {layout.size} genes (the layout's size), got {genomes.shape[1]}")
        self.layout = layout
        self.genomes = genomes.detach().clone()
        self.record = LineageRecord(genomes.device)
        size = genomes.shape[0]
        self.ids = self.record.record(torch.full((size, 2), -1, dtype=torch.int64, device=genomes.device),
                                       torch.zeros(size, dtype=torch.int64, device=genomes.device))
        self.fitness = torch.full((size,), float("nan"), dtype=torch.float64, device=genomes.device)
        self.experience: list[Any] = [None] * size

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_genomes(cls, genomes: Tensor, *, layout: ParameterLayout | None = None) -> Population:
        """A population of copies of ``genomes [P, D]``: founders (ids 0 to P - 1, no parents, generation 0)."""
        return cls(genomes, layout=layout)

    @classmethod
    def from_model(cls, model: nn.Module, size: int, generator: torch.Generator, *, std: float | Tensor,
                   keep_template: bool = False) -> Population:
        """``size`` Gaussian perturbations of ``model``'s parameters: ``genome_i = template + std * eps_i``.

        Args:
            model: the template (any ``nn.Module``; its trainable parameters form the genome).
            size: the population size ``P >= 1``.
            generator: the source of the perturbations, on the model's device.
            std: the perturbation scale, a number ``>= 0`` or a per-weight tensor ``[D]`` (see
                :func:`~neuroplastic.evolution.operators.gaussian_mutation`).
            keep_template: member 0 is the template itself, unperturbed.
        """
        layout = ParameterLayout(model)
        size = check_int("size", size)
        template = layout.flatten(model)
        genomes = gaussian_mutation(template.expand(size, -1), std, generator)
        if not isinstance(keep_template, bool):
            raise TypeError(f"keep_template must be a bool, got {type(keep_template).__name__}")
        if keep_template:
            genomes[0] = template
        return cls(genomes, layout=layout)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return self.genomes.shape[0]

    def __repr__(self) -> str:
        evaluated = int((~torch.isnan(self.fitness)).sum())
        return (f"Population(size={len(self)}, genes={self.genomes.shape[1]}, evaluated={evaluated}, "
                f"genomes_created={len(self.record)})")

    @property
    def size(self) -> int:
        return self.genomes.shape[0]

    @property
    def parents(self) -> Tensor:
        """``[P, 2]`` int64 parent ids of the members (-1: none)."""
        return self.record.parents[self.ids]

    @property
    def generations(self) -> Tensor:
        """``[P]`` int64 generation in which each member was born."""
        return self.record.generation[self.ids]

    @property
    def evaluated(self) -> Tensor:
        """``[P]`` bool: the member's fitness is known (not NaN)."""
        return ~torch.isnan(self.fitness)

    def lineage(self, genome_id: int) -> Tensor:
        """The line of descent of ``genome_id`` (any genome ever created) through first parents: ``[L]`` int64
        ids from the genome back to its founder (:meth:`LineageRecord.chain`), e.g. for a lineage plot."""
        return self.record.chain(genome_id)

    def ancestors(self, genome_id: int) -> Tensor:
        """Every ancestor of ``genome_id`` through both parents, ``[A]`` int64 ids in increasing order."""
        return self.record.ancestors(genome_id)

    # ------------------------------------------------------------------ changes (used by the algorithms)
    def create(self, parents: Tensor, generation: Tensor) -> Tensor:
        """Record new genomes (not yet members) with ``parents [N, 2]`` and birth ``generation [N]``; returns
        their ids ``[N]``."""
        return self.record.record(parents, generation)

    def set_fitness(self, ids: Tensor, fitness: Tensor) -> None:
        """Store ``fitness [N]`` of the genomes ``ids [N]`` in the lineage, and in the members among them."""
        fitness = fitness.to(self.fitness)
        self.record.set_fitness(ids, fitness)
        match = self.ids[:, None] == ids[None, :]  # [P, N]
        member, which = match.nonzero(as_tuple=True)
        self.fitness[member] = fitness[which]

    def replace(self, slots: Tensor, genomes: Tensor, ids: Tensor, fitness: Tensor,
                experience: Sequence[Any] | None = None) -> None:
        """Put genomes ``ids [K]`` with ``genomes [K, D]``, ``fitness [K]`` and ``experience`` (K entries or
        None) in place of the members at ``slots [K]`` (distinct)."""
        if slots.unique().numel() != slots.numel():
            raise ValueError("slots must be distinct")
        self.genomes[slots] = genomes.to(self.genomes)
        self.ids[slots] = ids.to(self.ids)
        self.fitness[slots] = fitness.to(self.fitness)
        entries = [None] * slots.numel() if experience is None else list(experience)
        for slot, entry in zip(slots.tolist(), entries, strict=True):
            self.experience[slot] = entry

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Members, fitness, experience and lineage (plain tensors and lists: loadable with ``weights_only``
        as long as the experience entries are tensors or None)."""
        return {"genomes": self.genomes.clone(), "ids": self.ids.clone(), "fitness": self.fitness.clone(),
                "experience": list(self.experience), "record": self.record.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a population of the same genome length."""
        genomes = check_tensor("state['genomes']", state["genomes"], ("P", self.genomes.shape[1]))
        ids = check_tensor("state['ids']", state["ids"], (genomes.shape[0],), floating=False)
        fitness = check_tensor("state['fitness']", state["fitness"], (genomes.shape[0],))
        if len(state["experience"]) != genomes.shape[0]:
            raise ValueError(f"state['experience'] must have {genomes.shape[0]} entries, got "
                             f"{len(state['experience'])}")
        self.record.load_state_dict(state["record"])
        device = self.genomes.device
        self.genomes = genomes.to(device, self.genomes.dtype).clone()
        self.ids = ids.to(device, torch.int64).clone()
        self.fitness = fitness.to(device, torch.float64).clone()
        self.experience = list(state["experience"])
