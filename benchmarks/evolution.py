"""Benchmark: neuroevolution throughput, ours against EvoTorch, and Ray actors on a fitness that cannot be vectorised.

Cases (one JSON line each, keys ``lib``, ``case``, ``env_steps_per_s``, ``sec_per_gen`` where they apply):

- ``cartpole``: CartPole-v1, policy 4-16-2 tanh, population 128, one episode per genome (capped at 500 steps).
  Ours: a generational GA whose generations are evaluated by :class:`LocalEvaluator` over a
  :class:`GymProblem` (the whole population in gymnasium's native CartPole vector environment, the policy as
  batched matrix products). EvoTorch (when ``evotorch`` is importable, e.g. in the benchmark venv; never a
  dependency of neuroplastic): ``GymNE`` with the same network and SNES with the same population, in one
  process (``num_actors=1``) and with 2 Ray actors. ``env_steps_per_s``: environment steps taken by the
  episodes (each genome's steps until its episode ends) per second of whole generations; the first generation
  (environment creation) is a warm-up, not timed.
- ``ray_python_loop``: a fitness that is a Python loop per genome (nothing to vectorise), population 32, on
  ``RayEvaluator`` with 1 actor and with 2 actors of a local 2-CPU Ray instance; ``speedup`` = the 1-actor time
  over the 2-actor time.

    python benchmarks/evolution.py --generations 10
    .bench-venv/bin/python benchmarks/evolution.py --only cartpole   # with evotorch installed there
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from neuroplastic.evolution import GAConfig, GeneticAlgorithm, GymProblem, LocalEvaluator, RayEvaluator

POPULATION = 128


def emit(**row: object) -> None:
    print(json.dumps(row), flush=True)


def policy() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))


# ---------------------------------------------------------------------- ours
def ours_cartpole(generations: int, population: int, seed: int) -> None:
    torch.set_num_threads(1)
    problem = GymProblem("CartPole-v1", policy(), episodes=1)
    steps = [0]

    class Counting:  # the problem, counting the environment steps of its episodes
        genome_size, name = problem.genome_size, problem.name

        def evaluate(self, genomes: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
            rollout = problem.rollout(genomes, seeds)
            steps[0] += int(rollout.lengths.sum())
            return rollout.returns.mean(1)

    evaluate = LocalEvaluator(Counting())

    founders = 0.5 * torch.randn(population, problem.genome_size, generator=torch.Generator().manual_seed(seed))
    ga = GeneticAlgorithm(founders, GAConfig(population_size=population, elite=2, mutation_std=0.1), seed=seed)
    problem.rollout(founders, torch.arange(population))  # warm-up: the vector environment is created
    start = time.perf_counter()
    ga.step(evaluate)  # the founders: random policies, short episodes
    founders_time, founders_steps = time.perf_counter() - start, steps[0]
    steps[0] = 0
    start = time.perf_counter()
    for _ in range(generations):
        ga.step(evaluate)
    elapsed = time.perf_counter() - start
    emit(lib="neuroplastic", case="cartpole", population=population, generations=generations,
         env_steps=steps[0], env_steps_per_s=round(steps[0] / elapsed, 1), sec_per_gen=round(elapsed / generations, 4),
         best_return=ga.best.fitness, founders_env_steps_per_s=round(founders_steps / founders_time, 1),
         founders_sec_per_gen=round(founders_time, 4))


# ---------------------------------------------------------------------- EvoTorch (benchmark venv only)
def evotorch_cartpole(generations: int, population: int, actors: int, seed: int) -> bool:
    try:
        import evotorch
        from evotorch.algorithms import SNES
        from evotorch.neuroevolution import GymNE
    except ImportError:
        emit(lib="evotorch", case="cartpole", skipped="evotorch is not importable in this environment "
                                                     "(install it in the benchmark venv, never in neuroplastic's)")
        return False
    torch.manual_seed(seed)
    problem = GymNE(env="CartPole-v1", network="Linear(obs_length, 16) >> Tanh() >> Linear(16, act_length)",
                    num_episodes=1, num_actors=actors if actors > 1 else None)
    searcher = SNES(problem, popsize=population, stdev_init=0.5)
    searcher.step()  # warm-up (actors and environments created)

    def interactions() -> int:
        status = dict(searcher.status)
        if "total_interaction_count" in status:
            return int(status["total_interaction_count"])
        return int(getattr(problem, "_interaction_count", 0))

    before = interactions()
    start = time.perf_counter()
    for _ in range(generations):
        searcher.step()
    elapsed = time.perf_counter() - start
    steps = interactions() - before
    emit(lib="evotorch", version=getattr(evotorch, "__version__", "?"), case="cartpole" if actors <= 1 else
         f"cartpole_ray_{actors}_actors", population=population, generations=generations, env_steps=steps,
         env_steps_per_s=round(steps / elapsed, 1), sec_per_gen=round(elapsed / generations, 4))
    return True


# ---------------------------------------------------------------------- Ray: a Python-loop fitness
def python_loop_fitness(genomes: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """A fitness with nothing to vectorise: a logistic-map iteration per genome in plain Python (tens of ms each)."""
    out = []
    for genome in genomes.tolist():
        r = 3.6 + 0.3 * (genome[0] % 1.0)
        x, total = 0.5, 0.0
        for _ in range(150_000):
            x = r * x * (1.0 - x)
            total += x
        out.append(total / 150_000)
    return torch.tensor(out, dtype=torch.float64)


def ray_python_loop(generations: int, population: int) -> None:
    try:
        import ray
    except ImportError:
        emit(lib="neuroplastic", case="ray_python_loop", skipped="ray is not installed (pip install neuroplastic[ray])")
        return
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    genomes = torch.rand(population, 4, generator=torch.Generator().manual_seed(0))
    seeds = torch.arange(population)
    times = {}
    for actors in (1, 2):
        evaluator = RayEvaluator(python_loop_fitness, actors=actors, chunk_size=max(1, population // 8))
        evaluator(genomes, seeds)  # warm-up: actors started
        start = time.perf_counter()
        for _ in range(generations):
            evaluator(genomes, seeds)
        times[actors] = (time.perf_counter() - start) / generations
        evaluator.close()
        row = {"lib": "neuroplastic", "case": f"ray_python_loop_{actors}_actor{'s' if actors > 1 else ''}",
               "population": population, "sec_per_gen": round(times[actors], 4)}
        if actors == 2:
            row["speedup"] = round(times[1] / times[2], 3)
        emit(**row)
    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--population", type=int, default=POPULATION)
    parser.add_argument("--ray-generations", type=int, default=3)
    parser.add_argument("--ray-population", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="cartpole,evotorch,ray",
                        help="comma-separated: cartpole (ours), evotorch (EvoTorch, 1 process and 2 Ray actors), ray")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if "cartpole" in only:
        ours_cartpole(args.generations, args.population, args.seed)
    if "evotorch" in only:
        if evotorch_cartpole(args.generations, args.population, 1, args.seed):
            evotorch_cartpole(args.generations, args.population, 2, args.seed)
    if "ray" in only:
        ray_python_loop(args.ray_generations, args.ray_population)


if __name__ == "__main__":
    main()
