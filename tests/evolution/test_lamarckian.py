"""Lamarckian/Darwinian evolution of pattern genomes: evaluation, write-back, selection, exact resume, bad input."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroplastic.evolution import (
    COORDINATE_FEATURES,
    LamarckianConfig,
    LamarckianEvolution,
    PatternMutationConfig,
    PatternNetwork,
    WeightCoordinates,
    evaluate_pattern_genome,
    functional_forward,
    genome_seed,
    initial_pattern_genome,
)

MODEL = nn.Sequential(nn.Linear(4, 2), nn.Tanh(), nn.Linear(2, 4))
X = torch.rand(64, 4, generator=torch.Generator().manual_seed(0))
COORDS = WeightCoordinates(MODEL, {"0": ((2, 2), (2,)), "2": ((2,), (2, 2))}, outputs={"2": 1})


pytestmark = pytest.mark.usefixtures("one_thread")


def train_loss(params, generator):
    batch = X[torch.randint(64, (16,), generator=generator)]
    return F.mse_loss(functional_forward(MODEL, params, batch), batch)


def eval_loss(params):
    return F.mse_loss(functional_forward(MODEL, params, X), X)


def founders(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [initial_pattern_genome(len(COORDINATE_FEATURES), 2, gen, hidden=2) for _ in range(n)]


def test_evaluation_trains_and_scores_on_the_held_out_loss():
    genome = founders(1)[0]
    with torch.no_grad():
        before = float(eval_loss(COORDS.parameters_from(PatternNetwork(genome))))
    result = evaluate_pattern_genome(genome, COORDS, train_loss, eval_loss, steps=10, lr=0.05, seed=7)
    assert len(result.train_losses) == 10 and result.fitness > -before
    with torch.no_grad():
        produced = COORDS.parameters_from(PatternNetwork(result.learned))
        assert result.fitness == pytest.approx(-float(eval_loss(produced)))
    again = evaluate_pattern_genome(genome, COORDS, train_loss, eval_loss, steps=10, lr=0.05, seed=7)
    assert again.fitness == result.fitness and again.learned == result.learned  # seeded: reproducible
    assert evaluate_pattern_genome(genome, COORDS, train_loss, eval_loss, steps=0, lr=0.05, seed=7).fitness == -before
    nan = evaluate_pattern_genome(genome, COORDS, train_loss, lambda p: torch.tensor(math.nan), steps=2, lr=0.05,
                                  seed=7)
    assert nan.fitness == -math.inf and nan.learned == genome


@pytest.mark.parametrize("algorithm", ["generational", "microbial"])
def test_lamarckian_keeps_learned_weights_and_darwinian_the_inherited(algorithm):
    mutation = PatternMutationConfig(add_node=0.0, delete_node=0.0, add_connection=0.0, delete_connection=0.0,
                                     switch_activation=0.0)  # no change by mutation: only learning moves weights
    runs = {}
    for mode in ("lamarckian", "darwinian"):
        config = LamarckianConfig(population_size=4, inner_steps=5, lr=0.05, inheritance=mode, algorithm=algorithm,
                                  tournament_size=2, mutation=mutation)
        evo = LamarckianEvolution(founders(4), COORDS, train_loss, eval_loss, config, seed=3)
        evo.step()
        runs[mode] = evo
    start = founders(4)
    for i, genome in enumerate(runs["lamarckian"].genomes):
        learned = evaluate_pattern_genome(start[i], COORDS, train_loss, eval_loss, steps=5, lr=0.05,
                                          seed=genome_seed(3, 0, i))
        assert genome == learned.learned and runs["lamarckian"].fitness[i] == learned.fitness
    assert runs["darwinian"].genomes == start
    assert runs["darwinian"].fitness == runs["lamarckian"].fitness
    for evo in runs.values():
        evo.step()
        assert evo.evaluations == 8 and evo.generation == 2 and len(evo.history) == 2
        assert evo.best_fitness == max(r["best_so_far"] for r in evo.history)
    # Darwinian genomes only ever copy founders' weights (no perturbation configured)
    founder_weights = {tuple(c.weight for c in g.connections) for g in start}
    assert all(tuple(c.weight for c in g.connections) in founder_weights for g in runs["darwinian"].genomes)


def test_generational_elites_survive():
    config = LamarckianConfig(population_size=5, inner_steps=2, lr=0.05, elites=2, tournament_size=2)
    evo = LamarckianEvolution(founders(5), COORDS, train_loss, eval_loss, config, seed=0)
    evo.step()
    fitness, ids = torch.tensor(evo.fitness), list(evo.ids)
    top = [ids[i] for i in fitness.topk(2).indices.tolist()]
    evo.step()
    assert evo.ids[:2] == top and evo.ids[2:] == [5, 6, 7]


@pytest.mark.parametrize("algorithm", ["generational", "microbial"])
def test_state_dict_resumes_exactly(algorithm):
    config = LamarckianConfig(population_size=4, inner_steps=3, lr=0.05, algorithm=algorithm, tournament_size=2,
                              crossover=0.5, mutation=PatternMutationConfig(add_node=0.5, add_connection=0.5))
    a = LamarckianEvolution(founders(4), COORDS, train_loss, eval_loss, config, seed=1)
    for _ in range(4):
        a.step()
    b = LamarckianEvolution(founders(4), COORDS, train_loss, eval_loss, config, seed=1)
    for _ in range(2):
        b.step()
    state = copy.deepcopy(b.state_dict())
    c = LamarckianEvolution(founders(4, seed=9), COORDS, train_loss, eval_loss, config, seed=1)
    c.load_state_dict(state)
    for _ in range(2):
        c.step()
    assert c.genomes == a.genomes and c.fitness == a.fitness and c.history == a.history and c.ids == a.ids
    assert c.best_genome == a.best_genome and c.evaluations == a.evaluations == 16


def test_bad_inputs_are_refused(library_error):
    config = LamarckianConfig(population_size=3, inner_steps=1)
    for bad in ({"population_size": 1}, {"inheritance": "baldwin"}, {"algorithm": "cma"}, {"lr": 0.0},
                {"tournament_size": 9}, {"elites": 3}, {"crossover": 2.0}, {"mutation": {}}, {"inner_steps": True}):
        with library_error():
            LamarckianConfig(**{"population_size": 3, **bad})
    with library_error():
        LamarckianEvolution(founders(2), COORDS, train_loss, eval_loss, config, seed=0)
    with library_error():
        LamarckianEvolution(founders(3), MODEL, train_loss, eval_loss, config, seed=0)
    with library_error():
        LamarckianEvolution(founders(3), COORDS, train_loss, eval_loss, config, seed=-1)
    odd = founders(3)
    odd[1] = initial_pattern_genome(len(COORDINATE_FEATURES), 3, torch.Generator())
    with library_error():
        LamarckianEvolution(odd, COORDS, train_loss, eval_loss, config, seed=0)
    evo = LamarckianEvolution(founders(3), COORDS, train_loss, eval_loss, config, seed=0)
    with library_error():
        evo.load_state_dict({"seed": 5})
    with library_error():
        evaluate_pattern_genome(founders(1)[0], COORDS, train_loss, eval_loss, steps=-1, lr=0.1, seed=0)
