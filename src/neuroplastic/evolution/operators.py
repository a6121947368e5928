"""Genetic operators as pure functions: Gaussian mutation, uniform and one-point crossover, tournament and
truncation selection, elitism, and the per-genome evaluation seed.

Every random draw comes from the ``torch.Generator`` argument (on the device of the tensors it draws for), so the
same generator state gives the same result. Fitness is maximised (``largest=True``); a fitness tensor given to a
selection operator may hold ``-inf`` or ``+inf`` (they order as expected) but never NaN: a NaN has no place in
an order, and selecting with it silently would make a failed evaluation look like any other. The genetic
algorithms (:mod:`neuroplastic.evolution.ga`) refuse NaN fitness too, or with ``nan_fitness="worst"`` store it as
``-inf`` and count it, before it reaches these operators.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_fraction, check_int, check_number, check_tensor, check_values

__all__ = [
    "elite_indices",
    "gaussian_mutation",
    "genome_seed",
    "genome_seeds",
    "one_point_crossover",
    "tournament_selection",
    "truncation_selection",
    "uniform_crossover",
]

_MASK64 = (1 << 64) - 1


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def _check_genomes(name: str, genomes: object) -> Tensor:
    genomes = check_tensor(name, genomes, ("N", "D"))
    return genomes


def _check_pair(a: object, b: object) -> tuple[Tensor, Tensor]:
    a, b = _check_genomes("a", a), _check_genomes("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape [N, D], got {list(a.shape)} and {list(b.shape)}")
    if a.dtype != b.dtype or a.device != b.device:
        raise ValueError(f"a and b must share dtype and device, got {a.dtype} on {a.device} and {b.dtype} on "
                         f"{b.device}")
    return a, b


def check_fitness(name: str, fitness: object) -> Tensor:
    """Return ``fitness`` if it is a 1-D floating tensor without NaN (±inf allowed), else a library error."""
    fitness = check_tensor(name, fitness, ("P",))
    nan = int(torch.isnan(fitness).sum())
    if nan:
        raise ValueError(f"{name} must not contain NaN (a NaN fitness has no rank; give failed evaluations -inf, or "
                         f"use the algorithm's nan_fitness='worst'), got {nan} NaN of {fitness.numel()}")
    return fitness


def gaussian_mutation(genomes: Tensor, std: float | Tensor, generator: torch.Generator) -> Tensor:
    """Gaussian mutation: every gene plus independent normal noise.

    Equation: ``child = genome + std * eps``, ``eps ~ N(0, 1)`` per gene (Such et al. 2017, Deep GA; the plain
    mutation that Lehman et al. 2018 compare safe mutations against).

    Args:
        genomes: ``[N, D]`` floating tensor of parents.
        std: the noise scale, a finite number ``>= 0`` or a tensor of such entries broadcastable to ``[N, D]``
            (``[D]``: a per-weight scale shared by all genomes; ``[N, D]``: one scale per genome and weight).
        generator: the source of the noise, on ``genomes``' device.

    Returns:
        ``[N, D]`` children, a new tensor in ``genomes``' dtype and device.
    """
    genomes = _check_genomes("genomes", genomes)
    generator = _check_generator(generator)
    std = check_values("std", std, minimum=0)
    if isinstance(std, Tensor):
        check_tensor("std", std, None, like=genomes, like_name="the genomes")
        if std.dim() > 2 or std.shape[-1:] not in ((genomes.shape[1],), (1,), ()) or (
                std.dim() == 2 and std.shape[0] not in (genomes.shape[0], 1)):
            raise ValueError(f"std must be a number or a tensor of shape [D], [N, D] (or broadcastable to the "
                             f"genomes' [N, D] = {list(genomes.shape)}), got {list(std.shape)}")
    noise = torch.randn(genomes.shape, generator=generator, dtype=genomes.dtype, device=genomes.device)
    return genomes + std * noise


def uniform_crossover(a: Tensor, b: Tensor, generator: torch.Generator, *, probability: float = 0.5) -> Tensor:
    """Uniform crossover: each gene of the child from ``b`` with ``probability``, otherwise from ``a``.

    Equation: ``child[i, j] = b[i, j] if u[i, j] < probability else a[i, j]``, ``u ~ U[0, 1)`` per gene.

    Args:
        a, b: ``[N, D]`` parents (row ``i`` of ``a`` mates with row ``i`` of ``b``), same dtype and device.
        generator: the source of the draws, on the parents' device.
        probability: the chance that a gene comes from ``b``, in [0, 1].

    Returns:
        ``[N, D]`` children.
    """
    a, b = _check_pair(a, b)
    generator = _check_generator(generator)
    probability = check_fraction("probability", probability)
    take_b = torch.rand(a.shape, generator=generator, device=a.device) < probability
    return torch.where(take_b, b, a)


def one_point_crossover(a: Tensor, b: Tensor, generator: torch.Generator) -> Tensor:
    """One-point crossover: the child is ``a`` before a random cut and ``b`` from it on.

    Equation: ``child[i] = cat(a[i, :c_i], b[i, c_i:])`` with ``c_i`` uniform in ``{1, ..., D - 1}`` per pair,
    so that each parent gives at least one gene (``D = 1``: ``c_i = 1``, the child is ``a``).

    Args:
        a, b: ``[N, D]`` parents (row ``i`` of ``a`` mates with row ``i`` of ``b``), same dtype and device.
        generator: the source of the cut points, on the parents' device.

    Returns:
        ``[N, D]`` children.
    """
    a, b = _check_pair(a, b)
    generator = _check_generator(generator)
    n, d = a.shape
    if d == 1:
        return a.clone()
    cut = torch.randint(1, d, (n, 1), generator=generator, device=a.device)
    position = torch.arange(d, device=a.device).expand(n, d)
    return torch.where(position < cut, a, b)


def tournament_selection(fitness: Tensor, count: int, tournament_size: int, generator: torch.Generator, *,
                         largest: bool = True) -> Tensor:
    """Tournament selection: ``count`` winners, each the best of ``tournament_size`` members drawn at random.

    Each tournament draws its contestants without replacement (so a tournament of the whole population returns
    the argmax); tournaments are independent, so a member may win several. Ties are broken at random.
    ``largest=False`` picks the worst of each tournament instead: the steady-state GA's choice of the member a
    child replaces (Lehman et al. 2018: "removal by a tournament of 5 among the worst").

    Args:
        fitness: ``[P]`` floating fitness, no NaN (±inf allowed).
        count: the number of winners, ``>= 0``.
        tournament_size: contestants per tournament, in ``[1, P]``.
        generator: the source of the draws, on ``fitness``' device.
        largest: maximise (True) or minimise (False) within each tournament.

    Returns:
        ``[count]`` int64 indices into ``fitness``.
    """
    fitness = check_fitness("fitness", fitness)
    generator = _check_generator(generator)
    count = check_int("count", count, minimum=0)
    size = fitness.shape[0]
    tournament_size = check_int("tournament_size", tournament_size, minimum=1)
    if tournament_size > size:
        raise ValueError(f"tournament_size must be at most the population size {size}, got {tournament_size}")
    if not isinstance(largest, bool):
        raise TypeError(f"largest must be a bool, got {type(largest).__name__}")
    # random keys: the ``tournament_size`` largest of a row are a uniform random subset, in a random order
    keys = torch.rand(count, size, generator=generator, device=fitness.device)
    contestants = keys.topk(tournament_size, dim=1).indices  # [count, k]
    scores = fitness[contestants]
    winner = scores.argmax(dim=1) if largest else scores.argmin(dim=1)  # first of the tied: a random one
    return contestants.gather(1, winner[:, None]).squeeze(1)


def truncation_selection(fitness: Tensor, count: int, *, largest: bool = True) -> Tensor:
    """The ``count`` best members (``largest=False``: the worst), best first; ties keep the lower index first.

    Args:
        fitness: ``[P]`` floating fitness, no NaN (±inf allowed).
        count: how many, in ``[0, P]``.

    Returns:
        ``[count]`` int64 indices into ``fitness``.
    """
    fitness = check_fitness("fitness", fitness)
    count = check_int("count", count, minimum=0, maximum=fitness.shape[0])
    if not isinstance(largest, bool):
        raise TypeError(f"largest must be a bool, got {type(largest).__name__}")
    return torch.sort(fitness, descending=largest, stable=True).indices[:count]


def elite_indices(fitness: Tensor, count: int) -> Tensor:
    """Elitism: the indices ``[count]`` of the ``count`` fittest members, fittest first (ties: lower index first),
    which a generational GA copies unchanged into the next generation."""
    return truncation_selection(fitness, count, largest=True)


def _splitmix64(x: int) -> int:
    """One step of SplitMix64 (Steele, Lea & Flood 2014): a bijective 64-bit mix."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def genome_seed(run_seed: int, generation: int, genome_id: int) -> int:
    """The seed of one evaluation of a genome, the same on every evaluator (one process, a pool or Ray).

    Equation: ``s = splitmix64(splitmix64(splitmix64(run_seed) ^ generation) ^ genome_id) >> 1``, a stable
    integer mix of the three (no Python ``hash``, which varies between processes), in ``[0, 2**63)`` so that it
    fits ``torch.Generator.manual_seed`` and an int64 tensor.

    Args:
        run_seed, generation, genome_id: ints ``>= 0``.
    """
    run_seed = check_int("run_seed", run_seed, minimum=0)
    generation = check_int("generation", generation, minimum=0)
    genome_id = check_int("genome_id", genome_id, minimum=0)
    x = _splitmix64(run_seed & _MASK64)
    x = _splitmix64(x ^ (generation & _MASK64))
    return _splitmix64(x ^ (genome_id & _MASK64)) >> 1


def genome_seeds(run_seed: int, generations: Tensor, genome_ids: Tensor) -> Tensor:
    """:func:`genome_seed` for many genomes: ``generations [N]`` and ``genome_ids [N]`` (int64, ``>= 0``) give
    ``seeds [N]`` int64 on the ids' device."""
    generations = check_tensor("generations", generations, ("N",), floating=False)
    genome_ids = check_tensor("genome_ids", genome_ids, (generations.shape[0],), floating=False)
    check_number("run_seed", run_seed, minimum=0, integer=True)
    seeds = [genome_seed(run_seed, int(g), int(i)) for g, i in zip(generations.tolist(), genome_ids.tolist(),
                                                                  strict=True)]
    return torch.tensor(seeds, dtype=torch.int64, device=genome_ids.device)
