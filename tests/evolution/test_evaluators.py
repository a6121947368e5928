"""Evaluators (one process, a process pool) and the gymnasium problem: fitness against slow per-genome references
written here, independence from the batch and the evaluator, first-episode masking, experience, bad input, and
a GA improving a CartPole policy end to end."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from neuroplastic.evolution import (
    Evaluation,
    Evaluator,
    GAConfig,
    GeneticAlgorithm,
    GymProblem,
    LocalEvaluator,
    MutationContext,
    ParameterLayout,
    Problem,
    ProcessPoolEvaluator,
    SteadyStateConfig,
    SteadyStateGA,
    genome_seeds,
    merge_evaluations,
)
from neuroplastic.evolution.gym_problem import episode_seed


# ---------------------------------------------------------------------- a supervised problem (module level: picklable)
class Regression:
    """Fitness = minus the mean squared error of a small MLP on a fixed data set, the whole population's forward
    pass in one ``batched_call``; seeds pick nothing (deterministic)."""

    name = "regression"

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        self.model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 1))
        self.layout = ParameterLayout(self.model)
        self.genome_size = self.layout.size
        self.x = torch.randn(20, 3, generator=gen)
        self.y = torch.sin(self.x.sum(1, keepdim=True))

    def evaluate(self, genomes: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        out = self.layout.batched_call(self.model, genomes, self.x)  # [N, 20, 1]
        return -((out - self.y) ** 2).mean((1, 2))


def noisy_sphere(genomes: torch.Tensor, seeds: torch.Tensor) -> Evaluation:
    """Minus the squared norm plus noise drawn from each genome's seed; the genome itself as its experience."""
    noise = torch.stack([torch.randn((), generator=torch.Generator().manual_seed(int(s))) for s in seeds])
    return Evaluation(-(genomes.double() ** 2).sum(1) + 0.01 * noise, {"genome": genomes.clone()})


class Returns:
    """A problem returning a fixed fitness tensor (for the bad-output tests)."""

    name = "fixed-returns"

    def __init__(self, fitness) -> None:
        self.fitness = fitness

    def evaluate(self, genomes, seeds):
        return self.fitness


def _seeds(n: int, generation: int = 0) -> torch.Tensor:
    return genome_seeds(7, torch.full((n,), generation, dtype=torch.int64), torch.arange(n))


def _genomes(n: int, d: int, seed: int = 0, scale: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    return scale * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _cartpole_policy() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))


# ---------------------------------------------------------------------- slow reference rollouts
def reference_returns(env_id: str, policy: nn.Module, genome: torch.Tensor, seed: int, episodes: int,
                      max_steps: int, continuous: str = "tanh") -> tuple[list[float], list[np.ndarray]]:
    """One single environment, one episode after the other, the policy run by ``ParameterLayout.call``."""
    layout = ParameterLayout(policy)
    env = gym.make(env_id, max_episode_steps=max_steps)
    returns, states = [], []
    for e in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, e))
        total, done = 0.0, False
        while not done:
            states.append(np.asarray(obs, dtype=np.float64).reshape(-1))
            out = layout.call(policy, genome, torch.as_tensor(obs).to(genome.dtype).reshape(1, -1))[0]
            if isinstance(env.action_space, gym.spaces.Discrete):
                action = int(out.argmax())
            else:
                low = torch.as_tensor(env.action_space.low, dtype=torch.float64)
                high = torch.as_tensor(env.action_space.high, dtype=torch.float64)
                y = out.double()
                a = low + (torch.tanh(y) + 1) / 2 * (high - low) if continuous == "tanh" else y.clamp(low, high)
                action = a.numpy().astype(env.action_space.dtype)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns, states


# ---------------------------------------------------------------------- local evaluator
def test_local_evaluator_matches_a_per_genome_loop_and_any_chunking():
    problem = Regression()
    genomes, seeds = _genomes(9, problem.genome_size), _seeds(9)
    slow = torch.stack([-((problem.layout.call(problem.model, g, problem.x) - problem.y) ** 2).mean() for g in genomes])
    whole = LocalEvaluator(problem)(genomes, seeds)
    assert whole.dtype == torch.float64 and whole.shape == (9,)
    assert torch.allclose(whole, slow.double(), atol=1e-6)
    assert torch.equal(LocalEvaluator(problem, chunk_size=4)(genomes, seeds), whole)
    assert isinstance(LocalEvaluator(problem), Evaluator) and isinstance(problem, Problem)


def test_local_evaluator_passes_experience_through_chunks():
    genomes, seeds = _genomes(5, 3), _seeds(5)
    whole = LocalEvaluator(noisy_sphere)(genomes, seeds)
    chunked = LocalEvaluator(noisy_sphere, chunk_size=2)(genomes, seeds)
    assert isinstance(whole, Evaluation) and torch.equal(whole.fitness, chunked.fitness)
    assert torch.equal(chunked.experience["genome"], genomes)
    assert LocalEvaluator(noisy_sphere)(genomes[:0], seeds[:0]).shape == (0,)


@given(n=st.integers(1, 12), chunk=st.integers(1, 13))
def test_property_chunking_never_changes_fitness_or_experience(n, chunk):
    genomes, seeds = _genomes(n, 3, seed=n), _seeds(n)
    whole = LocalEvaluator(noisy_sphere)(genomes, seeds)
    chunked = LocalEvaluator(noisy_sphere, chunk_size=chunk)(genomes, seeds)
    assert torch.equal(whole.fitness, chunked.fitness)
    assert torch.equal(whole.experience["genome"], chunked.experience["genome"])


def test_merge_evaluations_concatenates_each_kind_of_experience():
    f = torch.arange(5, dtype=torch.float64)
    parts = [Evaluation(f[:2], torch.ones(2, 3)), Evaluation(f[2:], torch.zeros(3, 3))]
    merged = merge_evaluations(parts)
    assert torch.equal(merged.fitness, f) and merged.experience.shape == (5, 3)
    assert merged.experience[:2].eq(1).all() and merged.experience[2:].eq(0).all()
    mixed = merge_evaluations([Evaluation(f[:2], None), Evaluation(f[2:], ["a", "b", "c"])])
    assert mixed.experience == [None, None, "a", "b", "c"]
    assert merge_evaluations([Evaluation(f[:2]), Evaluation(f[2:])]).experience is None


@pytest.mark.parametrize(("fitness", "match"), [
    (torch.tensor([1.0, float("nan"), 2.0]), "fixed-returns.*1 NaN"),
    (torch.tensor([1.0, float("inf"), 2.0]), "fixed-returns.*1 infinite"),
    (torch.zeros(2), r"fixed-returns.*must have shape \[3\].*got shape \[2\]"),
    (torch.zeros(3, 1), r"fixed-returns.*shape \[3, 1\]"),
])
def test_bad_fitness_is_refused_naming_the_problem(library_error, fitness, match):
    with library_error() as info:
        LocalEvaluator(Returns(fitness))(_genomes(3, 2), _seeds(3))
    assert info.match(match)


def test_nan_fitness_worst_passes_nan_on_for_the_ga_to_count():
    out = LocalEvaluator(Returns(torch.tensor([1.0, float("nan")])), nan_fitness="worst")(_genomes(2, 2), _seeds(2))
    assert out[0] == 1 and torch.isnan(out[1])
    config = GAConfig(population_size=2, elite=0, tournament_size=1, nan_fitness="worst")
    ga = GeneticAlgorithm(_genomes(2, 2), config, seed=0)
    with pytest.warns(RuntimeWarning, match="1 NaN"):
        ga.step(LocalEvaluator(Returns(torch.tensor([1.0, float("nan")])), nan_fitness="worst"))
    assert ga.nan_count == 1


def test_bad_genomes_and_seeds_are_refused(library_error):
    evaluator = LocalEvaluator(Regression())
    size = Regression().genome_size
    cases = [(_genomes(3, size + 1), _seeds(3), f"{size} genes.*regression"),
             (_genomes(3, size)[0], _seeds(3), r"shape \[N, D\]"),
             (_genomes(3, size).long(), _seeds(3), "floating point"),
             (_genomes(3, size), _seeds(2), r"seeds must have shape \[3\]"),
             (_genomes(3, size), _seeds(3).double(), "integers"),
             (_genomes(3, size), -_seeds(3) - 1, ">= 0")]
    for genomes, seeds, match in cases:
        with library_error() as info:
            evaluator(genomes, seeds)
        assert info.match(match)
    with library_error() as info:
        LocalEvaluator(42)
    assert info.match("problem must have a method evaluate")
    with library_error() as info:
        LocalEvaluator(noisy_sphere, chunk_size=0)
    assert info.match("chunk_size")
    with library_error() as info:
        LocalEvaluator(noisy_sphere, nan_fitness="ignore")
    assert info.match("nan_fitness")


def test_optional_dependencies_missing_name_their_extra(monkeypatch):
    from neuroplastic.evolution import RayEvaluator

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'neuroplastic\[ray\]'"):
        RayEvaluator(noisy_sphere)
    monkeypatch.setitem(sys.modules, "gymnasium", None)
    with pytest.raises(ImportError, match=r"pip install 'neuroplastic\[rl\]'"):
        GymProblem("CartPole-v1", _cartpole_policy())


# ---------------------------------------------------------------------- process pool
def test_process_pool_gives_the_local_fitness_and_experience():
    problem = GymProblem("CartPole-v1", _cartpole_policy(), experience_size=6)
    genomes, seeds = _genomes(10, problem.genome_size, seed=3), _seeds(10)
    local = LocalEvaluator(problem)(genomes, seeds)
    with ProcessPoolEvaluator(problem, workers=2, chunk_size=3, start_method="fork") as pool:
        first = pool(genomes, seeds)
        again = pool(genomes, seeds)  # the same workers, the problem not sent again
        assert torch.equal(first.fitness, local.fitness)
    assert torch.equal(again.fitness, local.fitness)
    assert all(torch.equal(a, b) for a, b in zip(first.experience, local.experience, strict=True))
    with ProcessPoolEvaluator(Regression(), workers=2, start_method="fork") as pool:
        genomes = _genomes(7, Regression().genome_size)
        assert torch.equal(pool(genomes, _seeds(7)), LocalEvaluator(Regression())(genomes, _seeds(7)))
    with ProcessPoolEvaluator(Returns(torch.zeros(2)), workers=2, start_method="fork") as pool:  # a worker's result
        with pytest.raises(ValueError, match=r"fixed-returns.*must have shape \[4\].*got shape \[2\]"):
            pool(_genomes(7, 2), _seeds(7))


def test_process_pool_refuses_what_it_cannot_send(library_error):
    with library_error() as info:
        ProcessPoolEvaluator(lambda genomes, seeds: genomes.sum(1))
    assert info.match("picklable")
    with library_error() as info:
        ProcessPoolEvaluator(noisy_sphere, workers=0)
    assert info.match("workers")
    with library_error() as info:
        ProcessPoolEvaluator(noisy_sphere, start_method="thread")
    assert info.match("start_method")


# ---------------------------------------------------------------------- the gymnasium problem
@pytest.mark.parametrize(("env_id", "policy", "vectorization", "episodes", "cap", "dtype"), [
    ("CartPole-v1", _cartpole_policy, "native", 2, 200, torch.float32),
    ("CartPole-v1", _cartpole_policy, "sync", 1, 60, torch.float32),
    ("Acrobot-v1", lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)), "auto", 1, 40,
     torch.float32),
    ("Pendulum-v1", lambda: nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).double(), "auto", 2, 30,
     torch.float64),
])
def test_gym_problem_matches_a_single_environment_reference(env_id, policy, vectorization, episodes, cap, dtype):
    policy = policy()
    problem = GymProblem(env_id, policy, episodes=episodes, max_episode_steps=cap, vectorization=vectorization)
    genomes, seeds = _genomes(6, problem.genome_size, seed=1, dtype=dtype), _seeds(6)
    rollout = problem.rollout(genomes, seeds)
    for i in range(6):
        expected, states = reference_returns(env_id, policy, genomes[i], int(seeds[i]), episodes, cap)
        assert torch.allclose(rollout.returns[i], torch.tensor(expected, dtype=torch.float64), atol=1e-6)
        assert int(rollout.lengths[i].sum()) == len(states) and bool((rollout.lengths[i] <= cap).all())
    assert torch.allclose(problem.evaluate(genomes, seeds), rollout.returns.mean(1))


def test_clipped_continuous_actions_match_the_reference():
    policy = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    problem = GymProblem("Pendulum-v1", policy, max_episode_steps=20, continuous="clip")
    genomes, seeds = _genomes(3, problem.genome_size, seed=8, scale=3.0, dtype=torch.float64), _seeds(3)
    fitness = problem.evaluate(genomes, seeds)
    for i in range(3):
        expected, _ = reference_returns("Pendulum-v1", policy, genomes[i], int(seeds[i]), 1, 20, continuous="clip")
        assert abs(float(fitness[i]) - expected[0]) < 1e-6


def test_cartpole_returns_count_only_the_first_episode():
    """Short episodes end long before the longest one: the autoreset episodes after them add nothing."""
    problem = GymProblem("CartPole-v1", _cartpole_policy(), vectorization="sync", max_episode_steps=500)
    genomes, seeds = _genomes(16, problem.genome_size, seed=4), _seeds(16)
    rollout = problem.rollout(genomes, seeds)
    assert rollout.lengths.min() < 30 < rollout.lengths.max()  # some ended early while others went on
    assert torch.equal(rollout.returns, rollout.lengths.double())  # reward 1 per step of the first episode


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_a_genome_gets_the_same_fitness_alone_and_anywhere_in_a_batch(env_id):
    policy = _cartpole_policy() if env_id == "CartPole-v1" else nn.Sequential(nn.Linear(3, 8), nn.Tanh(),
                                                                               nn.Linear(8, 1))
    problem = GymProblem(env_id, policy, max_episode_steps=100)
    genomes, seeds = _genomes(12, problem.genome_size, seed=2), _seeds(12)
    batch = problem.evaluate(genomes, seeds)
    alone = torch.cat([problem.evaluate(genomes[i:i + 1], seeds[i:i + 1]) for i in range(12)])
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    shuffled = problem.evaluate(genomes[order], seeds[order])
    assert torch.equal(alone, batch) and torch.equal(shuffled, batch[order])
    assert len(set(batch.tolist())) > 3  # genomes differ


def test_native_and_sync_cartpole_agree_and_policies_run_without_the_fast_path():
    class Policy(nn.Module):  # not a Sequential: evaluated through vmap over functional_call
        def __init__(self) -> None:
            super().__init__()
            self.hidden, self.out = nn.Linear(4, 16), nn.Linear(16, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.tanh(self.hidden(x)))

    native = GymProblem("CartPole-v1", _cartpole_policy())
    assert "native" in repr(native)
    genomes, seeds = _genomes(20, native.genome_size, seed=5), _seeds(20)
    expected = native.evaluate(genomes, seeds)
    assert torch.equal(GymProblem("CartPole-v1", _cartpole_policy(), vectorization="sync").evaluate(genomes, seeds),
                       expected)
    assert torch.equal(GymProblem("CartPole-v1", Policy()).evaluate(genomes, seeds), expected)


def test_gym_experience_is_a_uniform_sample_of_the_states_each_genome_acted_on():
    policy = _cartpole_policy()
    problem = GymProblem("CartPole-v1", policy, episodes=2, max_episode_steps=50, experience_size=8)
    genomes, seeds = _genomes(5, problem.genome_size, seed=6), _seeds(5)
    result = problem.evaluate(genomes, seeds)
    assert isinstance(result, Evaluation) and len(result.experience) == 5
    for i, states in enumerate(result.experience):
        _, reference = reference_returns("CartPole-v1", policy, genomes[i], int(seeds[i]), 2, 50)
        assert states.shape == (min(8, len(reference)), 4) and states.dtype == genomes.dtype
        seen = torch.tensor(np.stack(reference), dtype=torch.float32)
        assert bool((states[:, None, :] == seen[None]).all(-1).any(1).all())  # each one was seen
        assert len({tuple(s.tolist()) for s in states}) == states.shape[0]  # without replacement
    alone = problem.evaluate(genomes[3:4], seeds[3:4])
    assert torch.equal(alone.experience[0], result.experience[3])


def test_gym_problem_refuses_bad_arguments(library_error):
    policy = _cartpole_policy()
    cases = [
        (lambda: GymProblem("NoSuchEnv-v0", policy), "not a registered"),
        (lambda: GymProblem(3, policy), "env_id"),
        (lambda: GymProblem("CartPole-v1", "policy"), "policy must be a torch.nn.Module"),
        (lambda: GymProblem("CartPole-v1", nn.Sequential(nn.Linear(4, 3))), r"to \[B, 2\].*\[1, 3\]"),
        (lambda: GymProblem("CartPole-v1", nn.Sequential(nn.Linear(5, 2))), r"failed on \[1, 4\]"),
        (lambda: GymProblem("CartPole-v1", policy, episodes=0), "episodes"),
        (lambda: GymProblem("CartPole-v1", policy, max_episode_steps=0), "max_episode_steps"),
        (lambda: GymProblem("CartPole-v1", policy, vectorization="gpu"), "vectorization"),
        (lambda: GymProblem("Acrobot-v1", nn.Linear(6, 3), vectorization="native"), "native"),
        (lambda: GymProblem("CartPole-v1", policy, continuous="sigmoid"), "continuous"),
        (lambda: GymProblem("CartPole-v1", policy, experience_size=-1), "experience_size"),
        (lambda: GymProblem("FrozenLake-v1", nn.Linear(1, 4)), "Box observation space"),
    ]
    for make, match in cases:
        with library_error() as info:
            make()
        assert info.match(match)
    problem = GymProblem("CartPole-v1", policy)
    with library_error() as info:
        problem.evaluate(_genomes(2, problem.genome_size - 1), _seeds(2))
    assert info.match(f"{problem.genome_size} genes")


# ---------------------------------------------------------------------- end to end
def test_a_ga_with_the_local_gym_evaluator_improves_cartpole_deterministically():
    def run() -> list[float]:
        problem = GymProblem("CartPole-v1", _cartpole_policy(), max_episode_steps=200)
        config = GAConfig(population_size=16, elite=2, tournament_size=3, mutation_std=0.3)
        ga = GeneticAlgorithm(_genomes(16, problem.genome_size, seed=9, scale=0.3), config, seed=1)
        evaluator = LocalEvaluator(problem)
        with evaluator:
            for _ in range(6):
                ga.step(evaluator)
        assert not problem._envs  # closed with the evaluator
        return ga.history["best"]

    best = run()
    assert best[-1] > best[0] and best[-1] >= 100
    assert run() == best


def test_the_steady_state_ga_hands_each_parents_states_to_the_mutation():
    """Experience recorded by the gym problem reaches the mutation of the parent's children (safe mutations)."""
    problem = GymProblem("CartPole-v1", _cartpole_policy(), max_episode_steps=50, experience_size=5)
    contexts: list[MutationContext] = []

    def mutation(parents, generator, context):
        contexts.append(context)
        return parents + 0.1 * torch.randn(parents.shape, generator=generator, dtype=parents.dtype)

    config = SteadyStateConfig(population_size=8, tournament_size=2, removal_tournament_size=2, batch_size=4)
    ga = SteadyStateGA(_genomes(8, problem.genome_size, seed=2), config, seed=0, mutation=mutation)
    evaluator = LocalEvaluator(problem)
    for _ in range(3):
        ga.step(evaluator)
    assert len(contexts) == 2
    for context in contexts:
        for experience in context.experience:
            assert isinstance(experience, torch.Tensor) and experience.shape[1] == 4 and 1 <= experience.shape[0] <= 5
