"""Genetic algorithms with one ask/tell interface: a generational GA and the steady-state GA of Lehman et al.

Lehman, Chen, Clune & Stanley 2018, "Safe mutations for deep and recurrent neural networks through output
gradients": a steady-state GA with a population of 250, parents chosen by tournaments of 5, each child
replacing a member chosen by a tournament of 5 among the worst, until the task is solved or an evaluation
budget is spent. :class:`SteadyStateGA` is that algorithm (``batch_size`` children per ask; 1 is the paper's);
:class:`GeneticAlgorithm` is the generational GA with elitism (Such et al. 2017, "Deep neuroevolution").

Use either as ask/tell::

    ga = SteadyStateGA(population, SteadyStateConfig(max_evaluations=10_000), seed=0)
    while not ga.done:
        genomes = ga.ask()                       # [N, D]; ga.pending has their ids and seeds
        ga.tell(fitness_of(genomes))             # [N], maximised

or let ``ga.step(evaluate)`` / ``ga.run(evaluate)`` call an :class:`Evaluator`: any callable
``evaluate(genomes [N, D], seeds [N]) -> fitness [N]`` (a callable of one argument, ``evaluate(genomes)``, is
called without the seeds; an ``nn.Module`` is judged by its ``forward``). It may return an :class:`Evaluation`
instead of a tensor (any object with a ``fitness`` attribute and optionally ``experience``), so that a safe
mutation receives what each parent saw.

Fitness is float64 and maximised. A NaN or infinite fitness, or one of another shape, is refused with a
``ValueError`` (``nan_fitness="raise"``, the default); with ``nan_fitness="worst"`` a NaN counts as ``-inf``
(the worst: never selected while another is available, the first removed) and a ``RuntimeWarning`` says how
many there were; :attr:`nan_count` and the history count them too.

Mutation is pluggable: any callable ``mutation(parents [N, D], generator, context) -> children [N, D]`` with a
:class:`MutationContext` (the parents' ids, fitness and the experience their evaluations reported through
``tell(..., experience=...)``); the default is :class:`GaussianMutation`. A mutation with ``state_dict`` /
``load_state_dict`` methods is saved and restored with the algorithm.

``state_dict()`` holds everything that changes (population, lineage, generator, counters, the pending batch,
the best genome, the history), so a run interrupted between any two calls and resumed gives the same fitness
values bit for bit.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_fraction, check_int, check_number
from .operators import (
    genome_seeds,
    one_point_crossover,
    tournament_selection,
    truncation_selection,
    uniform_crossover,
)
from .population import Population
from .protocols import Best, Evaluator, GaussianMutation, Mutation, MutationContext, Pending, check_fitness

__all__ = ["GAConfig", "GeneticAlgorithm", "SteadyStateConfig", "SteadyStateGA"]

_CROSSOVERS = ("none", "uniform", "one_point")
_NAN_POLICIES = ("raise", "worst")
_HISTORY_KEYS = ("generation", "evaluations", "best", "best_id", "population_best", "mean", "nan")


# ---------------------------------------------------------------------- configs
def _check_common(config: Any) -> None:
    check_int("population_size", config.population_size)
    check_int("tournament_size", config.tournament_size)
    check_choice("crossover", config.crossover, _CROSSOVERS)
    check_fraction("crossover_rate", config.crossover_rate)
    check_number("mutation_std", config.mutation_std, minimum=0)
    if config.target_fitness is not None:
        check_number("target_fitness", config.target_fitness)
    if config.max_evaluations is not None:
        check_int("max_evaluations", config.max_evaluations)
    check_choice("nan_fitness", config.nan_fitness, _NAN_POLICIES)


@dataclass(frozen=True)
class GAConfig:
    """A generational GA: each generation keeps the ``elite`` fittest members unchanged (not re-evaluated) and
    replaces the others by mutated children (of a crossover, with probability ``crossover_rate``) of parents
    chosen by ``selection``.

    ``selection="tournament"``: each parent wins a tournament of ``tournament_size``; ``"truncation"``: each
    parent is drawn uniformly from the ``truncation_size`` fittest (Such et al. 2017). ``crossover``:
    ``"none"``, ``"uniform"`` or ``"one_point"``. ``mutation_std``: the default Gaussian mutation's scale.
    Stops (:attr:`GeneticAlgorithm.done`) when the best fitness reaches ``target_fitness`` or after
    ``max_evaluations`` (None: no such limit). ``nan_fitness``: ``"raise"`` or ``"worst"`` (module docstring).
    """

    population_size: int = 100
    elite: int = 1
    selection: str = "tournament"
    tournament_size: int = 5
    truncation_size: int = 20
    crossover: str = "none"
    crossover_rate: float = 0.5
    mutation_std: float = 0.02
    target_fitness: float | None = None
    max_evaluations: int | None = None
    nan_fitness: str = "raise"

    def __post_init__(self) -> None:
        _check_common(self)
        check_int("elite", self.elite, minimum=0, maximum=self.population_size - 1)
        check_choice("selection", self.selection, ("tournament", "truncation"))
        check_int("truncation_size", self.truncation_size)
        if self.selection == "tournament" and self.tournament_size > self.population_size:
            raise ValueError(f"population_size ({self.population_size}) must be at least tournament_size "
                             f"({self.tournament_size})")
        if self.selection == "truncation" and self.truncation_size > self.population_size:
            raise ValueError(f"population_size ({self.population_size}) must be at least truncation_size "
                             f"({self.truncation_size})")


@dataclass(frozen=True)
class SteadyStateConfig:
    """The steady-state GA of Lehman et al. 2018 (defaults: theirs).

    Each ask breeds ``batch_size`` children (1: the paper; more for vectorised evaluation) from parents that win
    tournaments of ``tournament_size``; each evaluated child replaces the worst of ``removal_tournament_size``
    members drawn at random, one child after the other. ``crossover``, ``crossover_rate``, ``mutation_std``,
    ``target_fitness``, ``max_evaluations``, ``nan_fitness``: as in :class:`GAConfig`. ``report_every``: a
    history row (and ``on_report`` call) every so many evaluations after the founders' (None: the population
    size, one "generation" of evaluations).
    """

    population_size: int = 250
    tournament_size: int = 5
    removal_tournament_size: int = 5
    batch_size: int = 1
    crossover: str = "none"
    crossover_rate: float = 0.5
    mutation_std: float = 0.02
    target_fitness: float | None = None
    max_evaluations: int | None = None
    nan_fitness: str = "raise"
    report_every: int | None = None

    def __post_init__(self) -> None:
        _check_common(self)
        check_int("removal_tournament_size", self.removal_tournament_size)
        check_int("batch_size", self.batch_size)
        if self.report_every is not None:
            check_int("report_every", self.report_every)
        for name in ("tournament_size", "removal_tournament_size"):
            if getattr(self, name) > self.population_size:
                raise ValueError(f"population_size ({self.population_size}) must be at least {name} "
                                 f"({getattr(self, name)})")


# ---------------------------------------------------------------------- the shared shell
def _takes_seeds(evaluate: Callable[..., Any]) -> bool:
    """Whether ``evaluate`` accepts two positional arguments (genomes, seeds); True when unknown. An
    ``nn.Module`` is judged by its ``forward``."""
    target = evaluate.forward if isinstance(evaluate, nn.Module) else evaluate
    try:
        inspect.signature(target).bind(None, None)
    except TypeError:
        return False
    except ValueError:
        return True
    return True


def _split_experience(experience: Any, n: int) -> list[Any]:
    """Per-genome entries of ``experience`` (a tensor ``[N, ...]``, a sequence of N, a mapping of such tensors)."""
    what = ("experience must be None, a tensor [N, ...], a sequence of N entries or a mapping of name to "
            f"[N, ...] tensors, with N = {n} (the genomes told)")
    if experience is None:
        return [None] * n
    if isinstance(experience, Tensor):
        if experience.dim() == 0 or experience.shape[0] != n:
            raise ValueError(f"{what}; got a tensor of shape {list(experience.shape)}")
        return [entry.detach().clone() for entry in experience]
    if isinstance(experience, Mapping):
        bad = [k for k, v in experience.items() if not isinstance(v, Tensor) or v.dim() == 0 or v.shape[0] != n]
        if bad:
            raise ValueError(f"{what}; entry {bad[0]!r} is not such a tensor")
        return [{k: v[i].detach().clone() for k, v in experience.items()} for i in range(n)]
    if isinstance(experience, Sequence) and not isinstance(experience, (str, bytes)):
        if len(experience) != n:
            raise ValueError(f"{what}; got a sequence of {len(experience)}")
        return list(experience)
    raise TypeError(f"{what}; got {type(experience).__name__}")


class _Algorithm:
    """ask / tell / step / run, the checks, the best genome, the history and the checkpoint, shared by both GAs.
    Subclasses define how to breed (:meth:`_breed`) and how evaluated children join (:meth:`_insert`)."""

    _config_type: type = GAConfig

    def __init__(self, population: Population | Tensor, config: Any, *, seed: int,
                 mutation: Mutation | None = None, on_report: Callable[[dict[str, float]], None] | None = None
                 ) -> None:
        if not isinstance(config, self._config_type):
            raise TypeError(f"config must be a {self._config_type.__name__}, got {type(config).__name__}")
        if isinstance(population, Tensor):
            population = Population.from_genomes(population)
        if not isinstance(population, Population):
            raise TypeError(f"population must be a Population or a tensor [P, D], got {type(population).__name__}")
        if population.size != config.population_size:
            raise ValueError(f"the population has {population.size} members but config.population_size is "
                             f"{config.population_size}")
        if mutation is not None and not callable(mutation):
            raise TypeError(f"mutation must be callable (parents, generator, context) -> children, got "
                            f"{type(mutation).__name__}")
        if on_report is not None and not callable(on_report):
            raise TypeError(f"on_report must be callable, got {type(on_report).__name__}")
        self.config = config
        self.seed = check_int("seed", seed, minimum=0)
        self.population = population
        self.mutation: Mutation = GaussianMutation(config.mutation_std) if mutation is None else mutation
        self.on_report = on_report
        self.generator = torch.Generator(device=population.genomes.device).manual_seed(self.seed)
        self.evaluations = 0
        self.generation = 0
        self.nan_count = 0
        self.history: dict[str, list[float]] = {key: [] for key in _HISTORY_KEYS}
        self._pending: Pending | None = None
        self._pending_members = False
        self._best: Best | None = None

    # ------------------------------------------------------------------ public interface
    @property
    def pending(self) -> Pending | None:
        """The batch handed out by :meth:`ask` and not yet told, or None."""
        return self._pending

    @property
    def best(self) -> Best | None:
        """The fittest genome evaluated so far (None before the first :meth:`tell`)."""
        return self._best

    @property
    def solved(self) -> bool:
        """The best fitness reached ``config.target_fitness``."""
        target = self.config.target_fitness
        return target is not None and self._best is not None and self._best.fitness >= target

    @property
    def done(self) -> bool:
        """Solved, or ``config.max_evaluations`` evaluations were spent."""
        limit = self.config.max_evaluations
        return self.solved or (limit is not None and self.evaluations >= limit)

    def ask(self) -> Tensor:
        """The genomes to evaluate next, ``[N, D]`` (their ids and seeds: :attr:`pending`). The founders are
        asked for all at once; then a generation (generational GA) or ``batch_size`` children (steady state).
        Asking again before :meth:`tell` returns the same batch."""
        if self._pending is None:
            if self.done:
                raise RuntimeError(f"the run is done ({self._done_reason()}): nothing left to ask")
            unevaluated = ~self.population.evaluated
            if bool(unevaluated.any()):
                slots = unevaluated.nonzero().squeeze(1)
                genomes, ids = self.population.genomes[slots].clone(), self.population.ids[slots].clone()
                self._pending_members = True
            else:
                genomes, ids = self._breed()
                self._pending_members = False
            generation = self.population.record.generation[ids]
            self._pending = Pending(genomes, ids, genome_seeds(self.seed, generation, ids))
        return self._pending.genomes

    def tell(self, fitness: Tensor | Sequence[float], *, experience: Any = None) -> Tensor:
        """Report the fitness ``[N]`` (maximised) of the genomes of the last :meth:`ask`, and optionally what
        each saw during its evaluation (``experience``: a tensor ``[N, ...]``, N entries, a mapping of ``[N, ...]``
        tensors), stored with the genome and given to the mutation of its children. Returns the fitness as
        stored, ``[N]`` float64 (``nan_fitness="worst"``: NaN as ``-inf``).

        Raises:
            RuntimeError: no :meth:`ask` is pending.
            ValueError: ``fitness`` is not ``[N]``, or holds an infinite value or (``nan_fitness="raise"``) NaN.
        """
        if self._pending is None:
            raise RuntimeError("tell() needs a pending ask(): call ask() first")
        n = self._pending.ids.shape[0]
        fitness = check_fitness(fitness, n, nan_fitness=self.config.nan_fitness).to(self.population.fitness.device)
        entries = _split_experience(experience, n)
        nan = torch.isnan(fitness)
        if bool(nan.any()):  # nan_fitness="worst" (the check refused NaN otherwise); counted once all is valid
            self.nan_count += int(nan.sum())
            warnings.warn(f"{int(nan.sum())} NaN fitness of {n} counted as the worst (-inf); "
                          f"{self.nan_count} so far in this run", RuntimeWarning, stacklevel=2)
            fitness = fitness.masked_fill(nan, float("-inf"))
        ids = self._pending.ids
        self.population.set_fitness(ids, fitness)
        if self._pending_members:
            slots, which = (self.population.ids[:, None] == ids[None, :]).nonzero(as_tuple=True)
            for slot, j in zip(slots.tolist(), which.tolist(), strict=True):
                self.population.experience[slot] = entries[j]
        else:
            self._insert(self._pending.genomes, ids, fitness, entries)
        self.evaluations += n
        top = int(fitness.argmax())
        if self._best is None or float(fitness[top]) > self._best.fitness:
            self._best = Best(self._pending.genomes[top].clone(), float(fitness[top]), int(ids[top]))
        members = self._pending_members
        self._pending = None
        self._after_tell(members)
        return fitness

    def step(self, evaluate: Evaluator | Callable[[Tensor], Tensor]) -> Tensor:
        """One :meth:`ask`, ``evaluate`` and :meth:`tell`; returns the fitness told, ``[N]`` float64."""
        if not callable(evaluate):
            raise TypeError(f"evaluate must be callable (genomes, seeds) -> fitness, got {type(evaluate).__name__}")
        genomes = self.ask()
        pending = self._pending
        assert pending is not None
        result = evaluate(genomes, pending.seeds) if _takes_seeds(evaluate) else evaluate(genomes)
        if isinstance(result, Tensor) or not hasattr(result, "fitness"):
            return self.tell(result)
        return self.tell(result.fitness, experience=getattr(result, "experience", None))

    def run(self, evaluate: Evaluator | Callable[[Tensor], Tensor], *, max_steps: int | None = None) -> Best | None:
        """:meth:`step` until :attr:`done` (or ``max_steps`` steps); returns :attr:`best`."""
        if max_steps is not None:
            check_int("max_steps", max_steps, minimum=0)
        elif self.config.target_fitness is None and self.config.max_evaluations is None:
            raise ValueError("run() needs an end: set config.target_fitness or config.max_evaluations, or give "
                             "max_steps")
        steps = 0
        while not self.done and (max_steps is None or steps < max_steps):
            self.step(evaluate)
            steps += 1
        return self._best

    # ------------------------------------------------------------------ shared machinery
    def _done_reason(self) -> str:
        if self.solved and self._best is not None:
            return f"best fitness {self._best.fitness} >= target_fitness {self.config.target_fitness}"
        return f"{self.evaluations} evaluations >= max_evaluations {self.config.max_evaluations}"

    def _select(self, count: int) -> Tensor:
        return tournament_selection(self.population.fitness, count, self.config.tournament_size, self.generator)

    def _offspring(self, count: int) -> tuple[Tensor, Tensor, Tensor]:
        """``count`` children: ``(genomes [count, D], parent ids [count, 2], first parent slots [count])``."""
        population, config = self.population, self.config
        first = self._select(count)
        base = population.genomes[first]
        parents = torch.stack([population.ids[first], torch.full_like(first, -1)], dim=1)
        if config.crossover != "none":
            second = self._select(count)
            mates = population.genomes[second]
            if config.crossover == "uniform":
                mixed = uniform_crossover(base, mates, self.generator)
            else:
                mixed = one_point_crossover(base, mates, self.generator)
            crossed = torch.rand(count, generator=self.generator, device=base.device) < config.crossover_rate
            base = torch.where(crossed[:, None], mixed, base)
            parents[:, 1] = torch.where(crossed, population.ids[second], parents[:, 1])
        context = MutationContext(population.ids[first].clone(), population.fitness[first].clone(),
                                  tuple(population.experience[i] for i in first.tolist()))
        children = self.mutation(base, self.generator, context)
        if not isinstance(children, Tensor) or children.shape != base.shape:
            got = list(children.shape) if isinstance(children, Tensor) else type(children).__name__
            raise ValueError(f"the mutation must return children of the parents' shape {list(base.shape)}, got {got}")
        return children.detach().to(base.dtype), parents, first

    def _report(self) -> None:
        fitness = self.population.fitness
        finite = fitness[torch.isfinite(fitness)]
        best = self._best
        row = {"generation": self.generation, "evaluations": self.evaluations,
               "best": best.fitness if best is not None else float("nan"),
               "best_id": best.id if best is not None else -1,
               "population_best": float(fitness.max()) if fitness.numel() else float("nan"),
               "mean": float(finite.mean()) if finite.numel() else float("nan"), "nan": self.nan_count}
        for key, value in row.items():
            self.history[key].append(value)
        if self.on_report is not None:
            self.on_report(dict(row))

    def _breed(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _insert(self, genomes: Tensor, ids: Tensor, fitness: Tensor, experience: list[Any]) -> None:
        raise NotImplementedError

    def _after_tell(self, members: bool) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything that changes during a run: population and lineage, generator, counters, the pending batch,
        the best genome, the history (and the mutation's own state, if it has a ``state_dict``)."""
        pending = None if self._pending is None else {
            "genomes": self._pending.genomes.clone(), "ids": self._pending.ids.clone(),
            "seeds": self._pending.seeds.clone(), "members": self._pending_members}
        best = None if self._best is None else {"genome": self._best.genome.clone(), "fitness": self._best.fitness,
                                                 "id": self._best.id}
        state = {"algorithm": type(self).__name__, "config": dataclasses.asdict(self.config), "seed": self.seed,
                 "population": self.population.state_dict(), "generator": self.generator.get_state(),
                 "evaluations": self.evaluations, "generation": self.generation, "nan_count": self.nan_count,
                 "history": {key: list(values) for key, values in self.history.items()},
                 "pending": pending, "best": best}
        if hasattr(self.mutation, "state_dict"):
            state["mutation"] = self.mutation.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` saved by the same algorithm with the same config and seed."""
        if state.get("algorithm") != type(self).__name__:
            raise ValueError(f"state was saved by {state.get('algorithm')!r}, not {type(self).__name__!r}")
        mine = dataclasses.asdict(self.config)
        if dict(state["config"]) != mine or state["seed"] != self.seed:
            raise ValueError(f"state was saved with config {dict(state['config'])} and seed {state['seed']}, but "
                             f"this algorithm has config {mine} and seed {self.seed}")
        self.population.load_state_dict(state["population"])
        self.generator.set_state(state["generator"])
        self.evaluations = int(state["evaluations"])
        self.generation = int(state["generation"])
        self.nan_count = int(state["nan_count"])
        self.history = {key: list(state["history"][key]) for key in _HISTORY_KEYS}
        pending = state["pending"]
        device = self.population.genomes.device
        self._pending = None if pending is None else Pending(
            pending["genomes"].to(device), pending["ids"].to(device), pending["seeds"].to(device))
        self._pending_members = bool(pending["members"]) if pending is not None else False
        best = state["best"]
        self._best = None if best is None else Best(best["genome"].to(device), float(best["fitness"]),
                                                    int(best["id"]))
        if "mutation" in state and hasattr(self.mutation, "load_state_dict"):
            self.mutation.load_state_dict(state["mutation"])


# ---------------------------------------------------------------------- the two algorithms
class GeneticAlgorithm(_Algorithm):
    """The generational GA (:class:`GAConfig`): per generation, the ``elite`` fittest members stay (keeping their
    fitness), the others are replaced by ``P - elite`` new children, evaluated in one batch.

    Args:
        population: the founders, a :class:`Population` or a tensor ``[P, D]``, ``P = config.population_size``.
        config: a :class:`GAConfig`.
        seed: the run seed (``>= 0``): the algorithm's generator and the genomes' evaluation seeds.
        mutation: a :class:`Mutation` (default: :class:`GaussianMutation` with ``config.mutation_std``).
        on_report: called with each history row (``generation``, ``evaluations``, ``best``, ``best_id``,
            ``population_best``, ``mean``, ``nan``), once the founders are evaluated and after each generation.

    The first :meth:`ask` returns the founders; each later one a generation of children.
    """

    _config_type = GAConfig

    def _select(self, count: int) -> Tensor:
        if self.config.selection == "tournament":
            return super()._select(count)
        top = truncation_selection(self.population.fitness, self.config.truncation_size)
        pick = torch.randint(0, top.shape[0], (count,), generator=self.generator, device=top.device)
        return top[pick]

    def _breed(self) -> tuple[Tensor, Tensor]:
        count = self.config.population_size - self.config.elite
        children, parents, _ = self._offspring(count)
        born = torch.full((count,), self.generation + 1, dtype=torch.int64, device=parents.device)
        return children, self.population.create(parents, born)

    def _insert(self, genomes: Tensor, ids: Tensor, fitness: Tensor, experience: list[Any]) -> None:
        keep = torch.zeros(self.population.size, dtype=torch.bool, device=genomes.device)
        keep[truncation_selection(self.population.fitness, self.config.elite)] = True
        self.population.replace((~keep).nonzero().squeeze(1), genomes, ids, fitness, experience)
        self.generation += 1

    def _after_tell(self, members: bool) -> None:
        self._report()


class SteadyStateGA(_Algorithm):
    """The steady-state GA of Lehman et al. 2018 (:class:`SteadyStateConfig`; defaults: population 250,
    tournaments of 5 for parents and for removal).

    Args: as :class:`GeneticAlgorithm`, with a :class:`SteadyStateConfig`; ``on_report`` is called once the
    founders are evaluated, then at the first tell on or after each multiple of ``config.report_every``
    evaluations past the founders', and when the run is done.

    The first :meth:`ask` returns the founders; each later one ``batch_size`` children (fewer at the end of the
    evaluation budget). A child's generation is one more than its latest parent's. Each told child replaces, in
    order, the member that loses a removal tournament (the worst of ``removal_tournament_size`` drawn at random;
    an earlier child of the same batch may be replaced by a later one, as with ``batch_size = 1``).
    :attr:`generation` counts the history rows after the founders'.
    """

    _config_type = SteadyStateConfig

    def __init__(self, population: Population | Tensor, config: SteadyStateConfig, *, seed: int,
                 mutation: Mutation | None = None, on_report: Callable[[dict[str, float]], None] | None = None
                 ) -> None:
        super().__init__(population, config, seed=seed, mutation=mutation, on_report=on_report)
        self._report_every = config.report_every or config.population_size
        self._next_report = 0

    def _breed(self) -> tuple[Tensor, Tensor]:
        count = self.config.batch_size
        if self.config.max_evaluations is not None:
            count = min(count, self.config.max_evaluations - self.evaluations)
        children, parents, _ = self._offspring(count)
        record = self.population.record
        born = record.generation[parents.clamp(min=0)].masked_fill(parents < 0, -1)
        born = torch.maximum(born[:, 0], born[:, 1]) + 1
        return children, self.population.create(parents, born)

    def _insert(self, genomes: Tensor, ids: Tensor, fitness: Tensor, experience: list[Any]) -> None:
        size = self.config.removal_tournament_size
        for i in range(ids.shape[0]):
            slot = tournament_selection(self.population.fitness, 1, size, self.generator, largest=False)
            self.population.replace(slot, genomes[i: i + 1], ids[i: i + 1], fitness[i: i + 1], [experience[i]])

    def _after_tell(self, members: bool) -> None:
        if members and bool(self.population.evaluated.all()):
            self._next_report = self.evaluations + self._report_every
            self._report()
        elif not members and (self.evaluations >= self._next_report or self.done):
            while self._next_report <= self.evaluations:  # rows on a fixed grid of evaluations
                self._next_report += self._report_every
            self.generation += 1
            self._report()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["next_report"] = self._next_report
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._next_report = int(state["next_report"])
