"""Recurrent policies on interactive episodes: population_call and the cue-reward fitness, vectorised over genomes."""

from __future__ import annotations

import torch
from torch.utils._pytree import tree_map

from neuroplastic.evolution import (
    CueRewardProblem,
    GAConfig,
    GeneticAlgorithm,
    ParameterLayout,
    Population,
    RecurrentPolicy,
    population_call,
)
from neuroplastic.models import RNNCell
from neuroplastic.plasticity import PlasticRNNCell
from neuroplastic.tasks import CueRewardTask

SETTINGS = dict(num_cues=4, cue_size=5, trial_steps=5, num_trials=4)


def _plastic_policy(obs_dim: int = 11, hidden: int = 6, modulation: str = "simple") -> RecurrentPolicy:
    torch.manual_seed(0)
    cell = PlasticRNNCell(obs_dim, hidden, rule="clip", modulation=modulation, fanout=False, clip=1.0,
                          alpha_init=0.3)
    return RecurrentPolicy(cell).double()


def _genomes(layout: ParameterLayout, policy, n: int, std: float = 0.3, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    base = layout.flatten(policy)
    return base + std * torch.randn(n, layout.size, generator=gen, dtype=base.dtype)


def test_population_call_equals_each_genome_called_alone_with_its_own_state():
    policy = _plastic_policy(modulation="retroactive")  # a state with an eligibility trace and a None threshold
    layout = ParameterLayout(policy)
    genomes = _genomes(layout, policy, 3)
    gen = torch.Generator().manual_seed(2)
    obs = torch.randn(3, 4, 11, generator=gen, dtype=torch.float64)
    state = policy.initial_state(4)
    state = tree_map(lambda t: None if t is None else torch.randn(3, *t.shape, generator=gen, dtype=torch.float64),
                     state)
    logits, new_state = population_call(layout, policy, genomes, obs, state)
    assert logits.shape == (3, 4, 2) and new_state.plastic.threshold is None
    for i in range(3):
        mine = tree_map(lambda t, i=i: None if t is None else t[i], state)
        ref_logits, ref_state = layout.call(policy, genomes[i], obs[i], mine)
        torch.testing.assert_close(logits[i], ref_logits)
        torch.testing.assert_close(new_state.plastic.trace[i], ref_state.plastic.trace)
        torch.testing.assert_close(new_state.plastic.eligibility[i], ref_state.plastic.eligibility)
        torch.testing.assert_close(new_state.hidden[i], ref_state.hidden)


def _slow_fitness(problem: CueRewardProblem, genome: torch.Tensor, seed: int) -> float:
    """One genome, its own task, the policy called step by step with its parameters (greedy actions)."""
    task = CueRewardTask(problem.episodes, generator=torch.Generator().manual_seed(seed), **SETTINGS)
    obs = task.reset().double()
    state = tree_map(lambda t: None if t is None else t.double(), problem.policy.initial_state(problem.episodes))
    total, done = torch.zeros(problem.episodes, dtype=torch.float64), False
    while not done:
        logits, state = problem.layout.call(problem.policy, genome, obs, state)
        obs, reward, done = task.step(logits.argmax(-1))
        obs = obs.double()
        total += reward
    return float(total.mean())


def test_fitness_equals_a_slow_per_genome_rollout_and_ignores_the_rest_of_the_batch():
    for policy in (_plastic_policy(), RecurrentPolicy(RNNCell(11, 6)).double()):
        problem = CueRewardProblem(policy, episodes=5, **SETTINGS)
        genomes = _genomes(problem.layout, policy, 4, std=1.0)
        seeds = torch.tensor([7, 8, 9, 10])
        result = problem(genomes, seeds)
        assert result.fitness.dtype == torch.float64 and result.fitness.shape == (4,)
        expected = torch.tensor([_slow_fitness(problem, genomes[i], int(seeds[i])) for i in range(4)],
                                dtype=torch.float64)
        torch.testing.assert_close(result.fitness, expected)
        assert bool((result.fitness.abs() <= SETTINGS["num_trials"]).all())
        torch.testing.assert_close(problem(genomes[2:], seeds[2:]).fitness, result.fitness[2:])
        assert set(result.metrics) == {"first_trial", "late_trials"}
    rewards = problem.trial_rewards(genomes, seeds)
    assert rewards.shape == (4, 5, SETTINGS["num_trials"]) and set(rewards.unique().tolist()) <= {-1.0, 1.0}


def test_a_ga_step_on_the_problem_is_reproducible():
    policy = RecurrentPolicy(RNNCell(11, 4))
    problem = CueRewardProblem(policy, episodes=2, **SETTINGS)

    def evolve() -> list[float]:
        population = Population.from_model(policy, 6, torch.Generator().manual_seed(0), std=0.1)
        ga = GeneticAlgorithm(population, GAConfig(population_size=6, tournament_size=2, mutation_std=0.1), seed=3)
        for _ in range(3):
            ga.step(problem)
        return ga.history["mean"]

    assert evolve() == evolve()


def test_bad_arguments_are_refused(library_error):
    policy = RecurrentPolicy(RNNCell(11, 4))
    problem = CueRewardProblem(policy, episodes=2, **SETTINGS)
    genomes = _genomes(problem.layout, policy, 2)
    with library_error() as info:
        problem.trial_rewards(genomes, None)
    assert info.match("seeds")
    with library_error() as info:
        problem(genomes[:, 1:], torch.tensor([1, 2]))
    assert info.match("genomes")
    with library_error() as info:
        CueRewardProblem(torch.zeros(3), episodes=2)
    assert info.match("policy")
    with library_error() as info:
        CueRewardProblem(policy, episodes=0)
    assert info.match("episodes")
    with library_error() as info:
        population_call(problem.layout, policy, genomes, torch.zeros(3, 2, 11), None)
    assert info.match("N = 2")
    with library_error() as info:
        RecurrentPolicy(torch.nn.Linear(2, 2))
    assert info.match("cell")
