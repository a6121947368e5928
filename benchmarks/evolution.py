"""Benchmark: neuroevolution throughput, ours against EvoTorch, and Ray actors on a fitness that cannot be vectorised.

Cases (one JSON line each, keys ``lib``, ``case``, ``env_steps_per_s``, ``sec_per_gen`` where they apply):

- ``cartpole``: CartPole-v1, policy 4-16-2 tanh, population 128, one episode per genome (capped at 500 steps).
  Ours: a generational GA whose generations are evaluated by :class:`LocalEvaluator` over a
  :class:`GymProblem` (the whole population in gymnasium's native CartPole vector environment, the policy as
  batched matrix products). EvoTorch (when ``evotorch`` is importable, e.g. in the benchmark venv; never a
  dependency of neuroplastic): ``GymNE`` with the same network, ``num_episodes=1`` and SNES with the same
  population, in one process (no actors) and with 2 Ray actors. ``env_steps_per_s``: environment steps taken
  by the episodes (each genome's steps until its episode ends) per second of whole generations; the first
  generation (environment and actor creation) is a warm-up, not timed. The two searches reach different
  episode lengths (our GA solves CartPole within a few generations, SNES from a zero centre takes longer), and
  both libraries' throughput grows with the episode length, so:
- ``cartpole_same_genomes``: the genomes of our GA's last generation evaluated ``--repeats`` times by each
  library (the same parameter vectors: both flatten the network with ``parameters_to_vector``, both act by
  the argmax of the outputs), evaluation only: the like-for-like throughput.
- ``ratio_*``: ours over EvoTorch's, measured in the same run (``env_steps_per_s_ratio``; the issue's target
  is 30 against EvoTorch in one process).
- ``ray_python_loop``: a fitness that is a Python loop per genome (nothing to vectorise), population 32, on
  ``RayEvaluator`` with 1 actor and with 2 actors of a local 2-CPU Ray instance; ``speedup`` = the 1-actor time
  over the 2-actor time.

    python benchmarks/evolution.py --generations 10            # ours and Ray only (no evotorch here)
    .bench-venv/bin/python benchmarks/evolution.py             # with EvoTorch (make bench-env)
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from neuroplastic.evolution import GAConfig, GeneticAlgorithm, GymProblem, LocalEvaluator, RayEvaluator

POPULATION = 128


def emit(**row: object) -> dict:
    print(json.dumps(row), flush=True)
    return row


def policy() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))


# ---------------------------------------------------------------------- ours
class Counting:
    """A :class:`GymProblem` counting the environment steps of its episodes and keeping the last genomes."""

    def __init__(self, problem: GymProblem) -> None:
        self.problem, self.genome_size, self.name = problem, problem.genome_size, problem.name
        self.steps, self.last = 0, torch.empty(0)

    def evaluate(self, genomes: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
        rollout = self.problem.rollout(genomes, seeds)
        self.steps += int(rollout.lengths.sum())
        self.last = genomes
        return rollout.returns.mean(1)


def ours_cartpole(generations: int, population: int, seed: int) -> tuple[dict, torch.Tensor]:
    """Our GA's generations; returns the row and the last generation's genomes (for the same-genomes case)."""
    torch.set_num_threads(1)
    problem = Counting(GymProblem("CartPole-v1", policy(), episodes=1))
    evaluate = LocalEvaluator(problem)
    founders = 0.5 * torch.randn(population, problem.genome_size, generator=torch.Generator().manual_seed(seed))
    ga = GeneticAlgorithm(founders, GAConfig(population_size=population, elite=2, mutation_std=0.1), seed=seed)
    problem.problem.rollout(founders, torch.arange(population))  # warm-up: the vector environment is created
    start = time.perf_counter()
    ga.step(evaluate)  # the founders: random policies, short episodes
    founders_time, founders_steps = time.perf_counter() - start, problem.steps
    problem.steps = 0
    start = time.perf_counter()
    for _ in range(generations):
        ga.step(evaluate)
    elapsed = time.perf_counter() - start
    row = emit(lib="neuroplastic", case="cartpole", population=population, generations=generations,
               env_steps=problem.steps, env_steps_per_s=round(problem.steps / elapsed, 1),
               sec_per_gen=round(elapsed / generations, 4), best_return=ga.best.fitness,
               founders_env_steps_per_s=round(founders_steps / founders_time, 1),
               founders_sec_per_gen=round(founders_time, 4))
    return row, problem.last.detach().clone()


def ours_same_genomes(genomes: torch.Tensor, repeats: int) -> dict:
    """The same genomes evaluated ``repeats`` times (one episode each): evaluation only, no GA operators.

    At least 40 times: one evaluation takes a few tens of milliseconds here, too short to time alone."""
    repeats = max(repeats, 40)
    torch.set_num_threads(1)
    problem = Counting(GymProblem("CartPole-v1", policy(), episodes=1))
    evaluate = LocalEvaluator(problem)
    seeds = torch.arange(len(genomes))
    evaluate(genomes, seeds)  # warm-up
    problem.steps, start = 0, time.perf_counter()
    for r in range(repeats):
        evaluate(genomes, seeds + r * len(genomes))
    elapsed = time.perf_counter() - start
    return emit(lib="neuroplastic", case="cartpole_same_genomes", population=len(genomes), repeats=repeats,
                env_steps=problem.steps, env_steps_per_s=round(problem.steps / elapsed, 1),
                sec_per_gen=round(elapsed / repeats, 4))


# ---------------------------------------------------------------------- EvoTorch (benchmark venv only)
def evotorch_cartpole(generations: int, population: int, actors: int, seed: int, genomes: torch.Tensor,
                      repeats: int) -> list[dict]:
    """EvoTorch's GymNE + SNES generations, then the same genomes as ours evaluated ``repeats`` times."""
    try:
        import evotorch
        from evotorch.algorithms import SNES
        from evotorch.neuroevolution import GymNE
    except ImportError:
        emit(lib="evotorch", case="cartpole", skipped="evotorch is not importable in this environment "
                                                     "(install it in the benchmark venv, never in neuroplastic's)")
        return []
    import logging

    logging.getLogger("evotorch").setLevel(logging.WARNING)
    torch.manual_seed(seed)
    problem = GymNE(env="CartPole-v1", network="Linear(obs_length, 16) >> Tanh() >> Linear(16, act_length)",
                    num_episodes=1, num_actors=actors if actors > 1 else None)
    searcher = SNES(problem, popsize=population, stdev_init=0.5)
    searcher.step()  # warm-up (actors and environments created)
    suffix = "" if actors <= 1 else f"_ray_{actors}_actors"
    common = {"lib": "evotorch", "version": getattr(evotorch, "__version__", "?"), "population": population}
    before = int(searcher.status["total_interaction_count"])
    start = time.perf_counter()
    for _ in range(generations):
        searcher.step()
    elapsed = time.perf_counter() - start
    steps = int(searcher.status["total_interaction_count"]) - before
    rows = [emit(case="cartpole" + suffix, generations=generations, env_steps=steps,
                 env_steps_per_s=round(steps / elapsed, 1), sec_per_gen=round(elapsed / generations, 4), **common)]
    if genomes.numel():
        batch = problem.generate_batch(len(genomes))
        if tuple(batch.values.shape) != tuple(genomes.shape):
            raise RuntimeError(f"EvoTorch's genomes are {tuple(batch.values.shape)}, ours {tuple(genomes.shape)}")
        batch.set_values(genomes.to(batch.values.dtype))  # same order: parameters_to_vector of the same network
        problem.evaluate(batch)  # warm-up
        before, start = problem.interaction_count, time.perf_counter()
        for _ in range(repeats):
            batch = problem.generate_batch(len(genomes))
            batch.set_values(genomes.to(batch.values.dtype))
            problem.evaluate(batch)
        elapsed = time.perf_counter() - start
        steps = problem.interaction_count - before
        rows.append(emit(case="cartpole_same_genomes" + suffix, repeats=repeats, env_steps=steps,
                         env_steps_per_s=round(steps / elapsed, 1), sec_per_gen=round(elapsed / repeats, 4),
                         **common))
    if actors > 1:
        problem.kill_actors()
    return rows


def ratios(ours: list[dict], theirs: list[dict]) -> None:
    """Our throughput over EvoTorch's in the same run, for each case both measured (target: 30x one process)."""
    by_case = {row["case"]: row for row in theirs}
    for row in ours:
        for suffix in ("", "_ray_2_actors"):
            peer = by_case.get(row["case"] + suffix)
            if peer and peer.get("env_steps_per_s"):
                emit(lib="neuroplastic", case=f"ratio_{row['case']}_vs_evotorch{suffix or '_1_process'}",
                     env_steps_per_s_ratio=round(row["env_steps_per_s"] / peer["env_steps_per_s"], 2),
                     sec_per_gen_ratio=round(peer["sec_per_gen"] / row["sec_per_gen"], 2),
                     target=30.0 if not suffix else None)


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
    parser.add_argument("--repeats", type=int, default=5, help="evaluations of the same genomes")
    parser.add_argument("--ray-generations", type=int, default=3)
    parser.add_argument("--ray-population", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="cartpole,evotorch,ray",
                        help="comma-separated: cartpole (ours), evotorch (EvoTorch, 1 process and 2 Ray actors), ray")
    args = parser.parse_args()
    only = set(args.only.split(","))
    ours: list[dict] = []
    genomes = torch.empty(0)
    if "cartpole" in only:
        row, genomes = ours_cartpole(args.generations, args.population, args.seed)
        ours += [row, ours_same_genomes(genomes, args.repeats)]
    if "evotorch" in only:
        theirs = evotorch_cartpole(args.generations, args.population, 1, args.seed, genomes, args.repeats)
        if theirs:
            theirs += evotorch_cartpole(args.generations, args.population, 2, args.seed, genomes, args.repeats)
        ratios(ours, theirs)
    if "ray" in only:
        ray_python_loop(args.ray_generations, args.ray_population)


if __name__ == "__main__":
    main()
