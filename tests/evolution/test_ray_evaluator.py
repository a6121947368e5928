"""RayEvaluator on a local two-CPU cluster: the local fitness and experience of a gym problem, an actor killed
mid-generation (the generation completes with the same fitness on a replacement actor), the problem's errors."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from torch import nn

ray = pytest.importorskip("ray", reason="ray is not installed (pip install neuroplastic[ray])")

from neuroplastic.evolution import Evaluation, GymProblem, LocalEvaluator, RayEvaluator, genome_seeds  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    if started:
        ray.shutdown()


def _pausing_cartpole():
    """CartPole returns of the genes ``[:-1]`` (a 4-16-2 tanh policy, recording 4 states per genome); each genome
    first sleeps its last gene in seconds, and a negative one raises. Defined in a function so that Ray pickles
    the class by value (the test module is not importable in Ray's workers)."""

    class PausingCartPole:
        name = "pausing-cartpole"

        def __init__(self) -> None:
            self.gym = GymProblem("CartPole-v1", nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2)),
                                  max_episode_steps=100, experience_size=4)
            self.genome_size = self.gym.genome_size + 1

        def evaluate(self, genomes, seeds):
            if bool((genomes[:, -1] < 0).any()):
                raise ValueError("negative pause")
            time.sleep(float(genomes[:, -1].sum()))
            return self.gym.evaluate(genomes[:, :-1], seeds)

    return PausingCartPole()


def _seeds(n: int) -> torch.Tensor:
    return genome_seeds(3, torch.ones(n, dtype=torch.int64), torch.arange(n))


def test_ray_gives_the_local_fitness_survives_a_killed_actor_and_raises_the_problems_errors(cluster):
    problem = _pausing_cartpole()
    genomes = torch.randn(12, problem.genome_size, generator=torch.Generator().manual_seed(0))
    genomes[:, -1] = 0.0
    expected = LocalEvaluator(problem)(genomes, _seeds(12))
    evaluator = RayEvaluator(problem, actors=2, chunk_size=2)
    first = evaluator(genomes, _seeds(12))  # genomes and seeds through the object store, 6 chunks
    assert isinstance(first, Evaluation) and torch.equal(first.fitness, expected.fitness)
    assert all(torch.equal(a, b) for a, b in zip(first.experience, expected.experience, strict=True))

    # a slow generation (6 chunks of 2 genomes pausing 0.2 s each, on 2 actors: 1.2 s), one actor killed 0.3 s in
    slow = genomes.clone()
    slow[:, -1] = 0.2
    victim = evaluator.actors[0]
    killer = threading.Timer(0.3, lambda: ray.kill(victim))
    killer.start()
    started = time.perf_counter()
    fitness = evaluator(slow, _seeds(12)).fitness
    killer.join()
    assert time.perf_counter() - started > 0.3  # the kill happened during the generation
    assert evaluator.restarts == 1 and victim not in evaluator.actors and len(evaluator.actors) == 2
    assert torch.equal(fitness, expected.fitness)

    bad = genomes.clone()
    bad[5, -1] = -1.0
    with pytest.raises(ValueError, match="negative pause"):  # raised in an actor, raised again here
        evaluator(bad, _seeds(12))
    with pytest.raises(ValueError, match=f"{problem.genome_size} genes.*pausing-cartpole"):
        evaluator(genomes[:, :-1], _seeds(12))
    evaluator.close()
    assert evaluator.actors == []
