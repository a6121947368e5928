"""HardMazeProblem: a population of controllers driven through the breadcrumb hard maze in one batch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuroplastic.evolution import GAConfig, GeneticAlgorithm, HardMazeProblem, maze_controller
from neuroplastic.tasks.hard_maze import BatchedHardMaze


def _loop_fitness(problem: HardMazeProblem, genome: torch.Tensor) -> tuple[float, torch.Tensor]:
    """One genome, one robot, the template run with layout.call: the slow reference."""
    maze = BatchedHardMaze(1, max_steps=problem.max_steps, action_repeat=problem.action_repeat,
                           dtype=genome.dtype)
    observation, seen, done = maze.reset(), [], False
    while not done:
        seen.append(observation[0])
        observation, reward, done = maze.step(problem.layout.call(problem.model, genome, observation))
    return float(reward[0]), torch.stack(seen)


def test_batched_fitness_equals_one_robot_at_a_time():
    torch.manual_seed(0)
    problem = HardMazeProblem(maze_controller(hidden_size=6, num_hidden_layers=2).double(), max_steps=30)
    gen = torch.Generator().manual_seed(0)
    genomes = problem.initial_genome() + torch.randn(4, problem.layout.size, generator=gen, dtype=torch.float64)
    result = problem(genomes, torch.arange(4))
    assert result.fitness.dtype == torch.float64 and result.experience.shape == (4, 10, 11)
    assert result.solved.tolist() == [False] * 4
    for i, genome in enumerate(genomes):
        fitness, seen = _loop_fitness(problem, genome)
        assert float(result.fitness[i]) == pytest.approx(fitness, abs=1e-9)
        torch.testing.assert_close(result.experience[i], seen)
    assert float(result.metrics["breadcrumb_distance"][0]) == pytest.approx(-float(result.fitness[0]))
    assert len({round(float(x), 6) for x in result.metrics["x"]}) > 1  # the genomes drove differently


def test_a_broken_network_gets_nan_and_the_others_are_unaffected():
    torch.manual_seed(1)
    problem = HardMazeProblem(maze_controller(hidden_size=4, num_hidden_layers=1), max_steps=12, experience=False)
    genome = problem.initial_genome()
    broken = genome.clone()
    broken[0] = math.nan
    result = problem(torch.stack([genome, broken]))
    assert math.isnan(float(result.fitness[1])) and result.experience is None
    assert float(result.fitness[0]) == pytest.approx(problem(genome[None]).fitness.item())
    assert problem(genome.new_zeros(0, problem.layout.size)).fitness.shape == (0,)


def test_the_papers_controller_and_a_ga_step():
    model = maze_controller()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert len(linears) == 8 and linears[0].in_features == 11 and linears[-1].out_features == 2
    assert all(float(m.bias.detach().abs().sum()) == 0 for m in linears) and isinstance(model[-1], nn.Sigmoid)
    assert sum(isinstance(m, nn.ReLU) for m in model) == 7
    problem = HardMazeProblem(maze_controller(hidden_size=3, num_hidden_layers=1), max_steps=9)
    population = problem.initial_genome() + 0.1 * torch.randn(6, problem.layout.size)
    ga = GeneticAlgorithm(population, GAConfig(population_size=6, tournament_size=2), seed=0)
    fitness = ga.step(problem)
    assert fitness.shape == (6,) and bool((fitness < 0).all())
    assert ga.population.experience[0].shape == (3, 11)


def test_bad_arguments(library_error):
    problem = HardMazeProblem(maze_controller(hidden_size=3, num_hidden_layers=1), max_steps=3)
    wrong = HardMazeProblem(nn.Linear(11, 3), max_steps=3)
    cases = [
        (lambda: HardMazeProblem(maze_controller(), max_steps=0), "max_steps"),
        (lambda: HardMazeProblem(maze_controller(), action_repeat=0), "action_repeat"),
        (lambda: HardMazeProblem(maze_controller(), experience="yes"), "experience"),
        (lambda: maze_controller(hidden_size=0), "hidden_size"),
        (lambda: maze_controller(activation="gelu"), "activation"),
        (lambda: maze_controller(init="orthogonal"), "init"),
        (lambda: problem(torch.zeros(2, problem.layout.size + 1)), "genomes"),
        (lambda: problem(torch.zeros(2, problem.layout.size), torch.zeros(2)), "seeds"),
        (lambda: wrong(torch.zeros(2, wrong.layout.size)), "actions"),
    ]
    for call, match in cases:
        with library_error() as info:
            call()
        assert info.match(match)
