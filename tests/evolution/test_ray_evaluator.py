"""RayEvaluator on a local two-CPU cluster: the local fitness and experience, an actor killed mid-generation
(the generation completes with the same fitness on a replacement actor), the problem's own errors."""

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


def _sphere_problem():
    """Genes ``[x0, x1, x2, pause]``: fitness ``-(x0^2 + x1^2 + x2^2)`` plus noise drawn from the seed; each
    genome sleeps ``pause`` seconds; a negative pause raises. Defined in a function so that Ray pickles it by
    value (the test module is not importable in Ray's workers)."""

    class PausingSphere:
        name = "pausing-sphere"
        genome_size = 4

        def evaluate(self, genomes, seeds):
            if bool((genomes[:, 3] < 0).any()):
                raise ValueError("negative pause")
            out = []
            for genome, seed in zip(genomes, seeds.tolist(), strict=True):
                time.sleep(float(genome[3]))
                noise = torch.randn((), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
                out.append(-(genome[:3].double() ** 2).sum() + 0.1 * noise)
            return torch.stack(out)

    return PausingSphere()


def _seeds(n: int) -> torch.Tensor:
    return genome_seeds(3, torch.ones(n, dtype=torch.int64), torch.arange(n))


def test_ray_gives_the_local_fitness_survives_a_killed_actor_and_raises_the_problems_errors(cluster):
    problem = _sphere_problem()
    evaluator = RayEvaluator(problem, actors=2, chunk_size=2)
    ray.get([actor.ready.remote() for actor in evaluator.actors])
    genomes = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    genomes[:, 3] = 0.0
    expected = LocalEvaluator(problem)(genomes, _seeds(12))
    assert torch.equal(evaluator(genomes, _seeds(12)), expected)

    # a slow generation (12 genomes of 0.1 s on 2 actors), one actor killed 0.25 s into it
    slow = genomes.clone()
    slow[:, 3] = 0.1
    victim = evaluator.actors[0]
    killer = threading.Timer(0.25, lambda: ray.kill(victim))
    killer.start()
    started = time.perf_counter()
    fitness = evaluator(slow, _seeds(12))
    killer.join()
    assert time.perf_counter() - started > 0.25  # the kill happened during the generation
    assert evaluator.restarts == 1 and victim not in evaluator.actors and len(evaluator.actors) == 2
    assert torch.equal(fitness, expected)

    bad = genomes.clone()
    bad[5, 3] = -1.0
    with pytest.raises(ValueError, match="negative pause"):
        evaluator(bad, _seeds(12))
    with pytest.raises(ValueError, match="4 genes.*pausing-sphere"):
        evaluator(genomes[:, :3], _seeds(12))
    evaluator.close()
    assert evaluator.actors == []


def test_ray_evaluates_a_gym_problem_like_the_local_evaluator(cluster):
    problem = GymProblem("CartPole-v1", nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2)),
                         max_episode_steps=100, experience_size=4)
    genomes = torch.randn(10, problem.genome_size, generator=torch.Generator().manual_seed(1))
    local = LocalEvaluator(problem)(genomes, _seeds(10))
    evaluator = RayEvaluator(problem, actors=2, chunk_size=3)
    remote = evaluator(genomes, _seeds(10))
    evaluator.close()
    assert isinstance(remote, Evaluation) and torch.equal(remote.fitness, local.fitness)
    assert all(torch.equal(a, b) for a, b in zip(remote.experience, local.experience, strict=True))
