"""Evolution of pattern-producing genomes with learning in each evaluation: Lamarckian (learned weights written
back into the genome) or Darwinian (the inherited weights kept), generational or microbial.

Fernando et al. 2016, "Convolution by evolution: differentiable pattern producing networks": the topology of a
DPPN is evolved, its weights are learned; "a Lamarckian algorithm, that combines evolution and learning". An
evaluation compiles the genome (:class:`~neuroplastic.evolution.pattern_network.PatternNetwork`), trains it for
``inner_steps`` Adam steps on the target's training loss through the produced weights, and scores it by the
target's held-out loss after training: ``fitness = -eval_loss`` (a non-finite loss gives ``-inf``).

Generational (:attr:`LamarckianConfig.algorithm` ``"generational"``): the ``elites`` best members are copied,
the rest are mutated children of tournament winners (:func:`~neuroplastic.evolution.tournament_selection`),
with crossover (:func:`~neuroplastic.evolution.cppn.crossover_pattern_genomes`) with a second winner at rate
``crossover``; then every member, elites included, is evaluated. Microbial (Harvey 2009, the GA of the DPPN
paper): one generation is ``population_size`` tournaments of two random members; the loser is replaced by the
winner's mutated copy (crossed over with the loser at rate ``crossover``), which is then evaluated. Each
evaluation draws from its own generator, seeded with :func:`~neuroplastic.evolution.genome_seed` (run seed,
generation, member id), so it is reproducible on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .._checks import check_choice, check_fraction, check_int, check_number
from .cppn import (
    PatternGenome,
    PatternMutationConfig,
    check_pattern_genome,
    crossover_pattern_genomes,
    mutate_pattern_genome,
)
from .operators import elite_indices, genome_seed, tournament_selection
from .pattern_network import PatternNetwork, WeightCoordinates

__all__ = ["LamarckianConfig", "LamarckianEvolution", "PatternEvaluation", "evaluate_pattern_genome"]

TrainLoss = Callable[[Mapping[str, Tensor], torch.Generator], Tensor]
EvalLoss = Callable[[Mapping[str, Tensor]], Tensor]


@dataclass(frozen=True)
class LamarckianConfig:
    """``inheritance``: ``"lamarckian"`` or ``"darwinian"``; ``algorithm``: ``"generational"`` or ``"microbial"``;
    ``inner_steps`` Adam steps at ``lr`` per evaluation; ``tournament_size`` and ``elites`` (generational);
    ``crossover``: the probability that a child is crossed over; ``mutation``: the structural mutation rates."""

    population_size: int = 8
    inner_steps: int = 20
    lr: float = 0.01
    inheritance: str = "lamarckian"
    algorithm: str = "generational"
    tournament_size: int = 3
    elites: int = 1
    crossover: float = 0.0
    mutation: PatternMutationConfig = field(default_factory=PatternMutationConfig)

    def __post_init__(self) -> None:
        check_int("population_size", self.population_size, minimum=2)
        check_int("inner_steps", self.inner_steps, minimum=0)
        check_number("lr", self.lr, minimum=0, exclusive_minimum=True)
        check_choice("inheritance", self.inheritance, ("lamarckian", "darwinian"))
        check_choice("algorithm", self.algorithm, ("generational", "microbial"))
        check_int("tournament_size", self.tournament_size, minimum=1, maximum=self.population_size)
        check_int("elites", self.elites, minimum=0, maximum=self.population_size - 1)
        check_fraction("crossover", self.crossover)
        if not isinstance(self.mutation, PatternMutationConfig):
            raise TypeError(f"mutation must be a PatternMutationConfig, got {type(self.mutation).__name__}")


@dataclass
class PatternEvaluation:
    """One evaluation: ``fitness`` (``-eval_loss`` after training, ``-inf`` if not finite), the genome with the
    learned weights (``learned``), and the training losses of the inner steps."""

    fitness: float
    learned: PatternGenome
    train_losses: list[float]


def evaluate_pattern_genome(genome: PatternGenome, coordinates: WeightCoordinates, train_loss: TrainLoss,
                            eval_loss: EvalLoss, *, steps: int, lr: float, seed: int) -> PatternEvaluation:
    """Compile ``genome``, train it ``steps`` Adam steps on ``train_loss(params, generator)`` (``params``: the
    target's produced weights, :meth:`WeightCoordinates.parameters_from`; ``generator`` seeded with ``seed``, on
    the coordinates' device, for batches and noise), then ``fitness = -eval_loss(params)`` without gradients.

    A non-finite training loss stops the training; a non-finite eval loss or learned weight gives ``-inf`` and
    ``learned`` = the input genome.
    """
    genome = check_pattern_genome(genome)
    if not isinstance(coordinates, WeightCoordinates):
        raise TypeError(f"coordinates must be a WeightCoordinates, got {type(coordinates).__name__}")
    steps = check_int("steps", steps, minimum=0)
    lr = check_number("lr", lr, minimum=0, exclusive_minimum=True)
    seed = check_int("seed", seed, minimum=0)
    coords = coordinates.coords
    generator = torch.Generator(device=coords.device).manual_seed(seed)
    net = PatternNetwork(genome, dtype=coords.dtype, device=coords.device)
    losses: list[float] = []
    if steps and net.weights.numel() + net.biases.numel():
        optimizer = torch.optim.Adam([p for p in net.parameters() if p.numel()], lr=lr)
        for _ in range(steps):
            loss = train_loss(coordinates.parameters_from(net), generator)
            if not torch.isfinite(loss):
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    with torch.no_grad():
        final = float(eval_loss(coordinates.parameters_from(net)))
        ok = math.isfinite(final) and bool(torch.isfinite(net.weights).all()) and bool(torch.isfinite(net.biases).all())
    return PatternEvaluation(-final if ok else -math.inf, net.to_genome() if ok else genome, losses)


class LamarckianEvolution:
    """Evolve a population of pattern genomes (module docstring); :meth:`step` runs one generation.

    Args:
        genomes: the founders (``population_size`` of them).
        coordinates: the target's weight coordinates.
        train_loss: ``(params, generator) -> scalar``, the target's training loss (differentiable).
        eval_loss: ``params -> scalar``, the held-out loss giving the fitness.
        config: :class:`LamarckianConfig`.
        seed: run seed of the selection/mutation generator and of every evaluation's seed.

    After each :meth:`step`, :attr:`genomes` and :attr:`fitness` are the evaluated population (under
    ``"lamarckian"`` the genomes hold the learned weights); :attr:`history` one row per generation.
    """

    def __init__(self, genomes: Sequence[PatternGenome], coordinates: WeightCoordinates, train_loss: TrainLoss,
                 eval_loss: EvalLoss, config: LamarckianConfig, *, seed: int) -> None:
        if not isinstance(config, LamarckianConfig):
            raise TypeError(f"config must be a LamarckianConfig, got {type(config).__name__}")
        if not isinstance(coordinates, WeightCoordinates):
            raise TypeError(f"coordinates must be a WeightCoordinates, got {type(coordinates).__name__}")
        if isinstance(genomes, PatternGenome) or len(genomes) != config.population_size:
            raise ValueError(f"genomes must be a sequence of population_size ({config.population_size}) genomes")
        self.genomes = [check_pattern_genome(g) for g in genomes]
        if len({(g.num_inputs, tuple(g.outputs)) for g in self.genomes}) != 1:
            raise ValueError("all genomes must have the same inputs and outputs")
        self.config, self.coordinates = config, coordinates
        self.train_loss, self.eval_loss = train_loss, eval_loss
        self.seed = check_int("seed", seed, minimum=0)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.fitness: list[float] = []
        self.ids = list(range(config.population_size))
        self.next_id = config.population_size
        self.generation = 0
        self.evaluations = 0
        self.history: list[dict[str, float]] = []
        self.best_genome: PatternGenome | None = None
        self.best_fitness = -math.inf

    def _evaluate(self, genome: PatternGenome, member_id: int) -> tuple[float, PatternGenome]:
        result = evaluate_pattern_genome(genome, self.coordinates, self.train_loss, self.eval_loss,
                                         steps=self.config.inner_steps, lr=self.config.lr,
                                         seed=genome_seed(self.seed, self.generation, member_id))
        self.evaluations += 1
        kept = result.learned if self.config.inheritance == "lamarckian" else genome
        if result.fitness > self.best_fitness:  # the best phenotype: the trained network's weights
            self.best_fitness, self.best_genome = result.fitness, result.learned
        return result.fitness, kept

    def _child(self, winner: PatternGenome, other: PatternGenome | None) -> PatternGenome:
        draw = float(torch.rand((), generator=self.generator, dtype=torch.float64))
        parent = crossover_pattern_genomes(winner, other, self.generator) if (
            other is not None and draw < self.config.crossover) else winner
        return mutate_pattern_genome(parent, self.generator, self.config.mutation)

    def step(self) -> dict[str, float]:
        """One generation (the founders' evaluation first); returns and appends its :attr:`history` row:
        generation, evaluations, best, mean and median fitness of the population, best so far."""
        config = self.config
        if not self.fitness:
            results = [self._evaluate(g, i) for g, i in zip(self.genomes, self.ids, strict=True)]
            self.fitness, self.genomes = [f for f, _ in results], [g for _, g in results]
        elif config.algorithm == "generational":
            fitness = torch.tensor(self.fitness, dtype=torch.float64)
            elites = elite_indices(fitness, config.elites).tolist()
            count = config.population_size - len(elites)
            parents = tournament_selection(fitness, count, config.tournament_size, self.generator).tolist()
            others = tournament_selection(fitness, count, config.tournament_size, self.generator).tolist()
            children = [self._child(self.genomes[p], self.genomes[o]) for p, o in zip(parents, others, strict=True)]
            genomes = [self.genomes[e] for e in elites] + children
            ids = [self.ids[e] for e in elites] + list(range(self.next_id, self.next_id + count))
            self.next_id += count
            results = [self._evaluate(g, i) for g, i in zip(genomes, ids, strict=True)]
            self.genomes, self.ids = [g for _, g in results], ids
            self.fitness = [f for f, _ in results]
        else:
            for _ in range(config.population_size):
                a, b = torch.randperm(config.population_size, generator=self.generator)[:2].tolist()
                winner, loser = (a, b) if self.fitness[a] >= self.fitness[b] else (b, a)
                child = self._child(self.genomes[winner], self.genomes[loser])
                self.fitness[loser], self.genomes[loser] = self._evaluate(child, self.next_id)
                self.ids[loser], self.next_id = self.next_id, self.next_id + 1
        finite = [f for f in self.fitness if math.isfinite(f)]
        row = {"generation": float(self.generation), "evaluations": float(self.evaluations),
               "best": max(self.fitness), "mean": sum(finite) / len(finite) if finite else -math.inf,
               "median": float(torch.tensor(self.fitness, dtype=torch.float64).median()),
               "best_so_far": self.best_fitness}
        self.history.append(row)
        self.generation += 1
        return row

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`step` depends on: genomes, fitness, ids, counters, the generator's state, history."""
        return {"genomes": [g.to_dict() for g in self.genomes], "fitness": list(self.fitness), "ids": list(self.ids),
                "next_id": self.next_id, "generation": self.generation, "evaluations": self.evaluations,
                "generator": self.generator.get_state(), "history": [dict(r) for r in self.history],
                "best_genome": None if self.best_genome is None else self.best_genome.to_dict(),
                "best_fitness": self.best_fitness, "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (same config and seed)."""
        if not isinstance(state, Mapping) or state.get("seed") != self.seed:
            raise ValueError(f"state must be a LamarckianEvolution state_dict of a run with seed {self.seed}")
        genomes = [PatternGenome.from_dict(g) for g in state["genomes"]]
        if len(genomes) != self.config.population_size:
            raise ValueError(f"state holds {len(genomes)} genomes, the config {self.config.population_size}")
        self.genomes, self.fitness, self.ids = genomes, [float(f) for f in state["fitness"]], list(state["ids"])
        self.next_id, self.generation = int(state["next_id"]), int(state["generation"])
        self.evaluations = int(state["evaluations"])
        self.generator.set_state(state["generator"])
        self.history = [dict(r) for r in state["history"]]
        best = state["best_genome"]
        self.best_genome = None if best is None else PatternGenome.from_dict(best)
        self.best_fitness = float(state["best_fitness"])
