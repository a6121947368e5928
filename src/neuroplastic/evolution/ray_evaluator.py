"""Evaluate genomes on Ray actors, from one machine to a cluster, surviving the loss of an actor.

Needs Ray (``pip install neuroplastic[ray]``), imported when a :class:`RayEvaluator` is built.

One machine: ``RayEvaluator(problem, actors=4)`` starts a local Ray instance (``ray.init``) unless one is running.
Many machines::

    # on the head machine
    ray start --head --port=6379
    # on every other machine (the same Python environment, neuroplastic installed)
    ray start --address=<head-ip>:6379
    # in the driver script, on any machine of the cluster
    evaluator = RayEvaluator(problem, actors=32, address="auto")   # or address="<head-ip>:6379"

Each actor holds the problem (a model template, an environment, a data set): it is put into the object store
once and handed to every actor when the actor starts. A call splits the genomes into chunks, puts each into
the object store as a tensor, and hands chunks to idle actors until all are evaluated. An actor that dies
(its machine lost, its process killed) is replaced by a new one and its chunk is evaluated again from the same
genomes and seeds, so the generation completes with the same fitness values. An error raised by the problem
itself is raised again in the driver (it would fail on any actor).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from .._checks import check_int, check_number
from .evaluators import (
    Problem,
    _Evaluator,
    call_problem,
    chunk_bounds,
    merge_evaluations,
    pack,
    problem_name,
    unpack,
)
from .protocols import Evaluation

__all__ = ["RayEvaluator"]


def import_ray() -> Any:
    """``ray``, or an ``ImportError`` naming the extra that installs it."""
    try:
        import ray
    except ImportError as error:
        raise ImportError("RayEvaluator needs Ray: pip install 'neuroplastic[ray]' (or pip install 'ray>=2.9')"
                          ) from error
    return ray


class ProblemActor:
    """The body of a Ray actor: holds a problem and evaluates chunks of genomes with ``threads`` torch threads."""

    def __init__(self, problem: Any, threads: int) -> None:
        torch.set_num_threads(threads)
        self.problem = problem

    def ready(self) -> bool:
        return True

    def evaluate(self, genomes: Tensor, seeds: Tensor) -> Any:
        result = call_problem(self.problem, genomes, seeds)
        if not isinstance(result, Tensor) and hasattr(result, "fitness"):
            result = Evaluation(result.fitness, getattr(result, "experience", None))
        return pack(result)


class RayEvaluator(_Evaluator):
    """The problem on ``actors`` Ray actors (module docstring: joining a cluster, surviving a dead actor).

    Args:
        problem: as for :class:`~neuroplastic.evolution.evaluators.LocalEvaluator`; picklable (Ray's
            cloudpickle also takes lambdas and closures).
        actors: the number of actors, each with ``num_cpus`` CPUs and ``threads`` torch threads.
        address: the cluster to join when Ray is not initialised yet (``"auto"``, ``"<head-ip>:6379"``, or None:
            a new local instance); ignored if ``ray.init`` was already called.
        chunk_size: genomes per task (None: ``ceil(N / actors)``).
        num_cpus: CPUs reserved per actor (Ray's scheduling).
        threads: torch threads per actor.
        max_restarts: replacements of dead actors allowed during one call before a ``RuntimeError``.
        init_kwargs: further arguments of ``ray.init`` (e.g. ``num_cpus``, ``include_dashboard``).
        nan_fitness: as for ``LocalEvaluator``.

    Raises:
        ImportError: Ray is not installed (``pip install neuroplastic[ray]``).
    """

    def __init__(self, problem: Problem | Callable[[Tensor, Tensor], Any], *, actors: int = 2,
                 address: str | None = None, chunk_size: int | None = None, num_cpus: float = 1, threads: int = 1,
                 max_restarts: int = 8, init_kwargs: Mapping[str, Any] | None = None,
                 nan_fitness: str = "raise") -> None:
        super().__init__(problem, chunk_size=chunk_size, nan_fitness=nan_fitness)
        self.num_actors = check_int("actors", actors)
        self.threads = check_int("threads", threads)
        self.max_restarts = check_int("max_restarts", max_restarts, minimum=0)
        self.num_cpus = check_number("num_cpus", num_cpus, minimum=0)
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a str (e.g. 'auto' or '<head-ip>:6379') or None, got "
                            f"{type(address).__name__}")
        if init_kwargs is not None and not isinstance(init_kwargs, Mapping):
            raise TypeError(f"init_kwargs must be a mapping or None, got {type(init_kwargs).__name__}")
        ray = import_ray()
        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=address, **dict(init_kwargs or {}))
        self._actor_class = ray.remote(num_cpus=self.num_cpus)(ProblemActor)
        self._problem_ref = ray.put(problem)
        self.actors: list[Any] = [self._start_actor() for _ in range(self.num_actors)]
        self.restarts = 0

    def _start_actor(self) -> Any:
        return self._actor_class.remote(self._problem_ref, self.threads)

    def _replace(self, actor: Any) -> Any:
        """A new actor in place of the dead ``actor`` (in :attr:`actors` too)."""
        try:
            self._ray.kill(actor)
        except Exception:  # already gone  # noqa: S110
            pass
        fresh = self._start_actor()
        self.actors = [fresh if a is actor else a for a in self.actors]
        return fresh

    def _evaluate(self, genomes: Tensor, seeds: Tensor) -> Evaluation:
        ray = self._ray
        dead = (ray.exceptions.RayActorError,) + tuple(
            getattr(ray.exceptions, name) for name in ("ActorUnavailableError", "WorkerCrashedError")
            if hasattr(ray.exceptions, name))
        if not self.actors:  # after close()
            self.actors = [self._start_actor() for _ in range(self.num_actors)]
        n = genomes.shape[0]
        bounds = chunk_bounds(n, self.chunk_size or math.ceil(n / self.num_actors))
        cpu_genomes, cpu_seeds = genomes.detach().cpu(), seeds.cpu()
        chunks = [(ray.put(cpu_genomes[a:b].clone()), ray.put(cpu_seeds[a:b].clone())) for a, b in bounds]
        queue = deque(range(len(chunks)))
        idle = list(self.actors)
        running: dict[Any, tuple[int, Any]] = {}
        parts: dict[int, Evaluation] = {}
        restarts = 0
        while queue or running:
            while queue and idle:
                k, actor = queue.popleft(), idle.pop()
                running[actor.evaluate.remote(*chunks[k])] = (k, actor)
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                k, actor = running.pop(ref)
                try:
                    result = unpack(ray.get(ref))
                except dead as error:
                    restarts += 1
                    self.restarts += 1
                    if restarts > self.max_restarts:
                        raise RuntimeError(f"{restarts} Ray actors died during one evaluation of "
                                           f"{problem_name(self.problem)!r} (max_restarts={self.max_restarts}): "
                                           f"{error}") from error
                    idle.append(self._replace(actor))
                    queue.appendleft(k)
                    continue
                except ray.exceptions.RayTaskError as error:  # the problem's own error: raise it here
                    cause = getattr(error, "cause", None)
                    if isinstance(cause, Exception):
                        raise cause from error
                    raise
                a, b = bounds[k]
                parts[k] = self._check(result, b - a)
                idle.append(actor)
        ordered = [parts[k] for k in range(len(chunks))]
        return ordered[0] if len(ordered) == 1 else merge_evaluations(ordered)

    def close(self) -> None:
        """Stop the actors (Ray itself keeps running: ``ray.shutdown()`` ends it)."""
        for actor in self.actors:
            try:
                self._ray.kill(actor)
            except Exception:  # already gone  # noqa: S110
                pass
        self.actors = []

    def __repr__(self) -> str:
        return (f"RayEvaluator({problem_name(self.problem)}, actors={self.num_actors}, "
                f"chunk_size={self.chunk_size})")
