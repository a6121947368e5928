"""The generational and steady-state GAs: convergence on a tiny problem, determinism, exact resume, the
evaluator and mutation contracts, lineage invariants and bad input."""

from __future__ import annotations

import io
import warnings

import pytest
import torch

from neuroplastic.evolution import (
    Evaluation,
    Evaluator,
    GAConfig,
    GaussianMutation,
    GeneticAlgorithm,
    MutationContext,
    Population,
    SteadyStateConfig,
    SteadyStateGA,
    genome_seeds,
)

TARGET = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)


def sphere(genomes: torch.Tensor) -> torch.Tensor:
    """Maximise -||g - target||^2 (best 0)."""
    return -((genomes - TARGET) ** 2).sum(1)


def _founders(size: int, seed: int = 0) -> Population:
    return Population.from_genomes(torch.randn(size, 5, generator=torch.Generator().manual_seed(seed),
                                               dtype=torch.float64))


def _generational(seed: int = 0, **overrides) -> GeneticAlgorithm:
    config = GAConfig(**{"population_size": 30, "elite": 2, "mutation_std": 0.1, **overrides})
    return GeneticAlgorithm(_founders(config.population_size), config, seed=seed)


def _steady(seed: int = 0, **overrides) -> SteadyStateGA:
    config = SteadyStateConfig(**{"population_size": 20, "mutation_std": 0.1, "batch_size": 4, **overrides})
    return SteadyStateGA(_founders(config.population_size), config, seed=seed)


# ---------------------------------------------------------------------- convergence and determinism
@pytest.mark.parametrize("overrides", [{}, {"crossover": "uniform"}, {"crossover": "one_point", "elite": 0},
                                       {"selection": "truncation", "truncation_size": 8}])
def test_the_generational_ga_converges_on_a_sphere(overrides):
    ga = _generational(**overrides)
    for _ in range(50):
        ga.step(sphere)
    assert ga.history["best"][0] < -5 and ga.best.fitness > -0.1
    assert torch.allclose(ga.best.genome, TARGET, atol=0.3)
    assert ga.evaluations == 30 + 49 * (30 - ga.config.elite) and ga.generation == 49
    assert len(ga.history["best"]) == 50
    assert ga.best.fitness == float(sphere(ga.best.genome[None])[0])


def test_elites_keep_the_population_best_from_falling():
    ga = _generational(crossover="uniform", elite=1)
    for _ in range(20):
        ga.step(sphere)
    population_best = torch.tensor(ga.history["population_best"])
    assert torch.all(population_best[1:] >= population_best[:-1])
    assert ga.history["best"] == ga.history["population_best"]


@pytest.mark.parametrize("batch_size", [1, 4])
def test_the_steady_state_ga_converges_and_stops_when_solved(batch_size):
    ga = _steady(batch_size=batch_size, target_fitness=-0.05, max_evaluations=5000)
    best = ga.run(sphere)
    assert ga.done and ga.solved and best.fitness >= -0.05
    assert ga.evaluations < 5000
    with pytest.raises(RuntimeError, match="done"):
        ga.ask()
    population_best = torch.tensor(ga.history["population_best"])  # removal never takes the best member
    assert torch.all(population_best[1:] >= population_best[:-1])


def test_the_evaluation_budget_is_exact():
    ga = _steady(population_size=10, batch_size=4, max_evaluations=53)
    sizes = []
    while not ga.done:
        sizes.append(ga.ask().shape[0])
        ga.tell(sphere(ga.pending.genomes))
    assert sizes == [10] + [4] * 10 + [3] and ga.evaluations == 53
    # a row after the founders, at the first tell past each further population_size evaluations, and at the end
    assert ga.history["evaluations"] == [10, 22, 30, 42, 50, 53]


@pytest.mark.parametrize("make", [_generational, _steady])
def test_runs_are_deterministic_per_seed(make):
    def curve(seed):
        ga = make(seed, crossover="uniform")
        for _ in range(15):
            ga.step(sphere)
        return ga.history["best"], ga.history["mean"], ga.population.genomes

    best, mean, genomes = curve(3)
    again = curve(3)
    assert best == again[0] and mean == again[1] and torch.equal(genomes, again[2])
    assert curve(4)[1] != mean


def test_the_paper_defaults():
    config = SteadyStateConfig()
    assert (config.population_size, config.tournament_size, config.removal_tournament_size, config.batch_size) == (
        250, 5, 5, 1)
    assert config.crossover == "none"


# ---------------------------------------------------------------------- exact resume
def _reload(ga, make, seed):
    buffer = io.BytesIO()
    torch.save(ga.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # what the run platform's safe loader accepts
    fresh = make(seed, crossover="one_point", nan_fitness="worst")
    fresh.load_state_dict(state)
    return fresh


def _noisy(genomes: torch.Tensor, seeds: torch.Tensor) -> Evaluation:
    """A seeded noisy fitness, NaN for one genome in nine by id, and the genome as its experience."""
    noise = torch.stack([torch.randn((), generator=torch.Generator().manual_seed(int(s)), dtype=torch.float64)
                         for s in seeds])
    fitness = sphere(genomes) + 0.01 * noise
    fitness[seeds % 9 == 0] = float("nan")
    return Evaluation(fitness, experience=genomes * 2)


@pytest.mark.parametrize("make", [_generational, _steady])
@pytest.mark.parametrize("stop", [1, 4, 7])
def test_a_run_resumed_from_its_state_dict_gives_identical_curves(make, stop):
    seed = 5
    reference = make(seed, crossover="one_point", nan_fitness="worst")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(12):
            reference.step(_noisy)
        first = make(seed, crossover="one_point", nan_fitness="worst")
        for _ in range(stop):
            first.step(_noisy)
        first.ask()  # interrupted between ask and tell: the pending batch is part of the state
        resumed = _reload(first, make, seed)
        for _ in range(12 - stop):
            resumed.step(_noisy)
    assert reference.nan_count > 0
    assert resumed.history == reference.history
    assert torch.equal(resumed.population.genomes, reference.population.genomes)
    assert torch.equal(resumed.population.ids, reference.population.ids)
    assert torch.equal(resumed.population.record.parents, reference.population.record.parents)
    assert resumed.best.id == reference.best.id and torch.equal(resumed.best.genome, reference.best.genome)
    assert all(torch.equal(a, b) for a, b in zip(resumed.population.experience, reference.population.experience,
                                                 strict=True))


def test_a_state_of_another_config_is_refused(library_error):
    ga = _generational()
    ga.step(sphere)
    with library_error() as info:
        _generational(elite=1).load_state_dict(ga.state_dict())
    assert info.match("state was saved with config")
    with library_error() as info:
        _steady().load_state_dict(ga.state_dict())
    assert info.match("GeneticAlgorithm")


# ---------------------------------------------------------------------- contracts
def test_evaluators_get_the_genome_seeds_and_one_argument_callables_work():
    seen = []

    class Recorder:
        def __call__(self, genomes, seeds):
            seen.append(seeds)
            return sphere(genomes)

    recorder = Recorder()
    assert isinstance(recorder, Evaluator)
    ga = _steady(seed=9)
    ga.step(recorder)
    ga.step(recorder)
    ga.step(sphere)  # one argument: called without seeds

    class Sphere(torch.nn.Module):  # a module is called by its forward's arguments
        def forward(self, genomes):
            return sphere(genomes)

    ga.step(Sphere())
    assert torch.equal(seen[0], genome_seeds(9, torch.zeros(20, dtype=torch.int64), torch.arange(20)))
    born = ga.population.record.generation[20:24]
    assert torch.all(born == 1)
    assert torch.equal(seen[1], genome_seeds(9, born, torch.arange(20, 24)))
    ga.ask()
    assert ga.evaluations == 32
    assert torch.equal(ga.pending.seeds, genome_seeds(9, ga.population.record.generation[ga.pending.ids],
                                                      ga.pending.ids))


def test_ask_twice_returns_the_same_batch_and_tell_needs_an_ask():
    ga = _generational()
    with pytest.raises(RuntimeError, match="ask"):
        ga.tell(torch.zeros(30))
    first = ga.ask()
    assert ga.ask() is first and ga.pending.ids.tolist() == list(range(30))
    ga.tell(sphere(first).tolist())  # a list of numbers is accepted
    children = ga.ask()
    assert children.shape == (28, 5) and ga.pending.ids.tolist() == list(range(30, 58))


def test_the_mutation_sees_each_parents_experience():
    contexts: list[MutationContext] = []

    def mutation(parents, generator, context):
        contexts.append(context)
        return GaussianMutation(0.1)(parents, generator, context)

    ga = GeneticAlgorithm(_founders(12), GAConfig(population_size=12, elite=1), seed=0, mutation=mutation)
    for _ in range(4):
        genomes = ga.ask()
        ga.tell(sphere(genomes), experience={"inputs": genomes * 3, "ids": ga.pending.ids})
    assert len(contexts) == 3
    for context in contexts:
        assert context.parent_ids.shape == (11,) and len(context.experience) == 11
        for parent, entry in zip(context.parent_ids.tolist(), context.experience, strict=True):
            assert int(entry["ids"]) == parent  # the experience told for that very genome
        assert torch.allclose(context.parent_fitness, ga.population.record.fitness[context.parent_ids])


def test_lineage_invariants_after_a_steady_state_run_with_crossover():
    ga = _steady(crossover="uniform", crossover_rate=0.5, max_evaluations=400)
    ga.run(sphere)
    record = ga.population.record
    parents, generation = record.parents, record.generation
    ids = record.ids
    has = parents >= 0
    assert torch.all(parents[has] < ids[:, None].expand_as(parents)[has])  # parents existed before
    assert torch.all(generation[parents.clamp(min=0)][has] < generation[:, None].expand_as(parents)[has])
    assert torch.all(has[:, 0] == (ids >= 20))  # every child has a first parent, founders none
    assert has[:, 1].any() and not has[:, 1].all()  # some children of a crossover, some mutants only
    assert ga.population.ids.unique().numel() == 20
    assert torch.equal(ga.population.fitness, record.fitness[ga.population.ids])
    assert not torch.isnan(record.fitness).any()
    chain = ga.population.lineage(ga.best.id)
    assert chain[0] == ga.best.id and chain[-1] < 20
    assert torch.all(generation[chain][:-1] > generation[chain][1:])


def test_on_report_receives_each_history_row():
    rows = []
    ga = GeneticAlgorithm(_founders(10), GAConfig(population_size=10, mutation_std=0.1), seed=0,
                          on_report=rows.append)
    for _ in range(3):
        ga.step(sphere)
    assert [row["generation"] for row in rows] == [0, 1, 2] == ga.history["generation"]
    assert [row["evaluations"] for row in rows] == [10, 19, 28]
    assert set(rows[0]) == {"generation", "evaluations", "best", "best_id", "population_best", "mean", "nan"}
    assert rows[-1]["best"] == ga.best.fitness and rows[-1]["best_id"] == ga.best.id


# ---------------------------------------------------------------------- bad input
def test_bad_fitness_is_refused(library_error):
    ga = _generational()
    ga.ask()
    with library_error() as info:
        ga.tell(torch.zeros(29))
    assert info.match(r"fitness must have shape \[30\]")
    with library_error() as info:
        ga.tell(torch.zeros(30, 1))
    assert info.match(r"shape \[30\]")
    bad = torch.zeros(30)
    bad[3] = float("inf")
    with library_error() as info:
        ga.tell(bad)
    assert info.match("1 infinite")
    bad[3] = float("nan")
    with library_error() as info:
        ga.tell(bad)
    assert info.match("1 NaN of 30.*nan_fitness='worst'")
    with library_error() as info:
        ga.tell("high")
    assert info.match("fitness must be a tensor")
    with library_error() as info:
        ga.tell(torch.zeros(30), experience=torch.zeros(29, 2))
    assert info.match("experience")
    with library_error() as info:
        ga.step(lambda genomes: genomes.sum())
    assert info.match(r"fitness must have shape \[30\]")
    assert ga.evaluations == 0 and ga.pending is not None  # nothing was taken


def test_nan_fitness_as_the_worst_is_counted_and_never_selected():
    ga = _generational(nan_fitness="worst", elite=0, tournament_size=30)
    genomes = ga.ask()
    fitness = sphere(genomes)
    fitness[[0, 5]] = float("nan")
    with pytest.warns(RuntimeWarning, match="2 NaN fitness of 30 counted as the worst"):
        told = ga.tell(fitness)
    assert told[0] == float("-inf") and ga.nan_count == 2 and ga.history["nan"] == [2]
    assert ga.population.fitness[0] == float("-inf")
    ga.ask()  # tournaments of the whole population: every parent is the best
    assert torch.all(ga.population.record.parents[30:, 0] == int(fitness.nan_to_num(float("-inf")).argmax()))


def test_bad_configs_are_refused(library_error):
    with library_error() as info:
        GAConfig(population_size=4, tournament_size=5)
    assert info.match(r"population_size \(4\) must be at least tournament_size \(5\)")
    with library_error() as info:
        SteadyStateConfig(population_size=4, tournament_size=2)
    assert info.match("removal_tournament_size")
    with library_error() as info:
        GAConfig(population_size=10, selection="truncation", truncation_size=11)
    assert info.match("truncation_size")
    with library_error() as info:
        GAConfig(population_size=10, elite=10)
    assert info.match("elite")
    with library_error() as info:
        GAConfig(crossover="two_point")
    assert info.match("crossover must be one of")
    with library_error() as info:
        GAConfig(crossover_rate=1.5)
    assert info.match("crossover_rate")
    with library_error() as info:
        GAConfig(mutation_std=float("nan"))
    assert info.match("mutation_std")
    with library_error() as info:
        GAConfig(population_size=True)
    assert info.match("population_size")
    with library_error() as info:
        SteadyStateConfig(nan_fitness="ignore")
    assert info.match("nan_fitness")
    with library_error() as info:
        SteadyStateConfig(batch_size=0)
    assert info.match("batch_size")


def test_bad_construction_and_mutations_are_refused(library_error):
    with library_error() as info:
        GeneticAlgorithm(_founders(10), GAConfig(population_size=12), seed=0)
    assert info.match("10 members but config.population_size is 12")
    with library_error() as info:
        GeneticAlgorithm(_founders(10), SteadyStateConfig(population_size=10), seed=0)
    assert info.match("config must be a GAConfig")
    with library_error() as info:
        GeneticAlgorithm(_founders(10), GAConfig(population_size=10), seed=-1)
    assert info.match("seed")
    with library_error() as info:
        GaussianMutation(-0.5)
    assert info.match("std")
    with library_error() as info:
        _generational().run(sphere)
    assert info.match("run\\(\\) needs an end")
    ga = GeneticAlgorithm(torch.zeros(10, 5, dtype=torch.float64), GAConfig(population_size=10), seed=0,
                          mutation=lambda parents, generator, context: parents[:1])
    ga.step(sphere)
    with library_error() as info:
        ga.ask()
    assert info.match("the mutation must return children of the parents' shape")


def test_a_refused_tell_changes_nothing(library_error):
    ga = _generational(nan_fitness="worst")
    genomes = ga.ask()
    fitness = sphere(genomes)
    fitness[0] = float("nan")
    before = ga.state_dict()
    with library_error() as info:
        ga.tell(fitness, experience=[None] * 29)
    assert info.match("experience")
    assert ga.nan_count == 0 and ga.evaluations == 0 and ga.pending is not None
    assert torch.equal(ga.population.fitness.nan_to_num(), before["population"]["fitness"].nan_to_num())
    with pytest.warns(RuntimeWarning, match="1 NaN"):
        ga.tell(fitness, experience=[None] * 30)
    assert ga.nan_count == 1


def test_evolving_a_model_from_its_template_with_a_vectorised_fitness():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    y = x @ torch.tensor([[1.0], [-1.0]]) + 0.5
    population = Population.from_model(model, 24, torch.Generator().manual_seed(2), std=0.5, keep_template=True)
    layout = population.layout

    def fitness(genomes):  # the whole population's forward pass in one call
        return -((layout.batched_call(model, genomes, x) - y) ** 2).mean(dim=(1, 2))

    ga = GeneticAlgorithm(population, GAConfig(population_size=24, elite=2, mutation_std=0.05,
                                               target_fitness=-1e-3, max_evaluations=24 * 200), seed=0)
    best = ga.run(fitness)
    assert ga.solved and best.fitness >= -1e-3
    layout.load(model, best.genome)
    assert torch.allclose(model.weight, torch.tensor([[1.0, -1.0]]), atol=0.1)
