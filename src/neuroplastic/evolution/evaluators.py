"""Evaluators: genomes to fitness in one process (vectorised over the population), a process pool, or Ray.

A *problem* defines fitness: an object with ``evaluate(genomes [N, D], seeds [N] int64) -> fitness [N]`` (or an
:class:`~neuroplastic.evolution.protocols.Evaluation` with per-genome experience), or a plain callable of the
same arguments. It should compute the whole batch at once where it can (one ``ParameterLayout.batched_call``
for a supervised loss, one ``gymnasium`` vector environment for all the genomes' episodes, see
:class:`~neuroplastic.evolution.gym_problem.GymProblem`), and it must make genome ``i``'s fitness depend only on
``genomes[i]`` and ``seeds[i]`` (never on the other genomes of the batch), so that an evaluator may split the
population into chunks anywhere and every evaluator gives a genome the same fitness:

- :class:`LocalEvaluator`: the problem in this process, the population in one call (or chunks of ``chunk_size``);
- :class:`ProcessPoolEvaluator`: worker processes with one torch thread each, the problem pickled once per
  worker, genomes sent in chunks;
- :class:`~neuroplastic.evolution.ray_evaluator.RayEvaluator`: actors on a Ray cluster (``pip install
  neuroplastic[ray]``), a dead actor's chunk evaluated again on a replacement.

Every evaluator is an :class:`~neuroplastic.evolution.protocols.Evaluator`: ``evaluator(genomes, seeds)`` returns
the fitness ``[N]`` float64 on the genomes' device, or an ``Evaluation`` when the problem reports experience.
Optional attributes of a problem: ``genome_size`` (an int: genomes of another size are refused with a
``ValueError`` before any work) and ``name`` (used in error messages).

A supervised problem, the population's forward pass as one vectorised call::

    class Regression:
        def __init__(self, model, x, y):
            self.model, self.x, self.y = model, x, y
            self.layout = ParameterLayout(model)
            self.genome_size = self.layout.size

        def evaluate(self, genomes, seeds):                                   # [N, D], [N]
            out = self.layout.batched_call(self.model, genomes, self.x)       # [N, B, out]
            return -((out - self.y) ** 2).mean(dim=(1, 2))                    # [N]

    ga.step(LocalEvaluator(Regression(model, x, y)))
    with ProcessPoolEvaluator(GymProblem("CartPole-v1", policy), workers=4) as evaluator:
        ga.run(evaluator)

Bad fitness is refused with a ``ValueError`` naming the problem: another shape than ``[N]``, an infinite value,
or NaN with ``nan_fitness="raise"`` (the default, as in the GA's configs); with ``nan_fitness="worst"`` a NaN
is passed on for the GA to count as the worst fitness (``GAConfig(nan_fitness="worst")``, which warns).
"""

from __future__ import annotations

import math
import multiprocessing
import pickle
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from .._checks import check_choice, check_int, check_optional_int
from .protocols import Evaluation, check_fitness

__all__ = ["LocalEvaluator", "Problem", "ProcessPoolEvaluator", "check_evaluation", "merge_evaluations"]

_NAN_POLICIES = ("raise", "worst")


@runtime_checkable
class Problem(Protocol):
    """A fitness definition: ``evaluate(genomes [N, D], seeds [N] int64) -> fitness [N] | Evaluation``, genome
    ``i``'s fitness a function of ``genomes[i]`` and ``seeds[i]`` only (maximised)."""

    def evaluate(self, genomes: Tensor, seeds: Tensor) -> Tensor | Evaluation: ...


def problem_name(problem: Any) -> str:
    """How errors name ``problem``: its ``name`` attribute, else its type (or function) name."""
    name = getattr(problem, "name", None)
    if isinstance(name, str) and name:
        return name
    return getattr(problem, "__qualname__", None) or type(problem).__name__


def call_problem(problem: Any, genomes: Tensor, seeds: Tensor) -> Any:
    """``problem.evaluate(genomes, seeds)``, or ``problem(genomes, seeds)`` for a plain callable."""
    evaluate = getattr(problem, "evaluate", None)
    if callable(evaluate):
        return evaluate(genomes, seeds)
    return problem(genomes, seeds)


def _check_problem(problem: Any) -> Any:
    if not callable(getattr(problem, "evaluate", None)) and not callable(problem):
        raise TypeError(f"problem must have a method evaluate(genomes, seeds) -> fitness or be such a callable, "
                        f"got {type(problem).__name__}")
    size = getattr(problem, "genome_size", None)
    if size is not None:
        check_int("problem.genome_size", size)
    return problem


def check_evaluation(result: Any, n: int, problem: Any, nan_fitness: str = "raise") -> Evaluation:
    """What ``problem`` returned for ``n`` genomes as an ``Evaluation`` with fitness ``[n]`` float64.

    Raises:
        TypeError: neither a tensor of numbers nor an object with a ``fitness`` attribute.
        ValueError: the fitness is not ``[n]``, or holds an infinite value, or NaN with ``nan_fitness="raise"``;
            the message names the problem.
    """
    experience = None
    fitness = result
    if not isinstance(result, Tensor) and hasattr(result, "fitness"):
        fitness, experience = result.fitness, getattr(result, "experience", None)
    fitness = check_fitness(fitness, n, source=f"fitness returned by problem {problem_name(problem)!r}",
                            nan_fitness=nan_fitness)
    return Evaluation(fitness, experience)


def merge_evaluations(parts: Sequence[Evaluation]) -> Evaluation:
    """The evaluations of consecutive chunks of a population as one: fitness concatenated, experience
    concatenated by kind (tensors ``[n_k, ...]``, sequences, mappings of tensors; None only if every part has
    none)."""
    fitness = torch.cat([part.fitness for part in parts])
    experiences = [part.experience for part in parts]
    if all(e is None for e in experiences):
        return Evaluation(fitness)
    sizes = [int(part.fitness.shape[0]) for part in parts]
    if all(isinstance(e, Tensor) for e in experiences):
        return Evaluation(fitness, torch.cat(experiences))
    if all(isinstance(e, Mapping) for e in experiences):
        keys = list(experiences[0])
        return Evaluation(fitness, {k: torch.cat([e[k] for e in experiences]) for k in keys})
    merged: list[Any] = []
    for e, size in zip(experiences, sizes, strict=True):
        if e is None:
            merged.extend([None] * size)
        elif isinstance(e, Tensor):
            merged.extend(e.unbind(0))
        elif isinstance(e, Mapping):
            merged.extend({k: v[i] for k, v in e.items()} for i in range(size))
        else:
            merged.extend(e)
    return Evaluation(fitness, merged)


def check_inputs(genomes: Any, seeds: Any, problem: Any) -> tuple[Tensor, Tensor]:
    """``genomes [N, D]`` (floating, ``D`` = ``problem.genome_size`` if it has one) and ``seeds [N]`` (integers
    ``>= 0``, as int64 on the genomes' device)."""
    if not isinstance(genomes, Tensor):
        raise TypeError(f"genomes must be a tensor [N, D], got {type(genomes).__name__}")
    if genomes.dim() != 2:
        raise ValueError(f"genomes must have shape [N, D], got {list(genomes.shape)}")
    if not genomes.is_floating_point():
        raise TypeError(f"genomes must be floating point, got {genomes.dtype}")
    size = getattr(problem, "genome_size", None)
    if size is not None and genomes.shape[1] != size:
        raise ValueError(f"genomes must have {size} genes each (problem {problem_name(problem)!r}), got shape "
                         f"{list(genomes.shape)}")
    if not isinstance(seeds, Tensor):
        raise TypeError(f"seeds must be a tensor [N] of int64, got {type(seeds).__name__}")
    if seeds.is_floating_point() or seeds.is_complex() or seeds.dtype == torch.bool:
        raise TypeError(f"seeds must be integers (int64), got {seeds.dtype}")
    if tuple(seeds.shape) != (genomes.shape[0],):
        raise ValueError(f"seeds must have shape [{genomes.shape[0]}] (one per genome), got {list(seeds.shape)}")
    if seeds.numel() and bool((seeds < 0).any()):
        raise ValueError("seeds must be >= 0 (genome_seed gives seeds in [0, 2**63))")
    return genomes, seeds.to(device=genomes.device, dtype=torch.int64)


def chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(n)`` in pieces of at most ``chunk_size``."""
    return [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


class _Evaluator:
    """The shared shell: input checks, fitness checks, chunk merging, the result's device and type."""

    def __init__(self, problem: Any, *, chunk_size: int | None, nan_fitness: str) -> None:
        self.problem = _check_problem(problem)
        self.chunk_size = check_optional_int("chunk_size", chunk_size)
        self.nan_fitness = check_choice("nan_fitness", nan_fitness, _NAN_POLICIES)

    def __call__(self, genomes: Tensor, seeds: Tensor) -> Tensor | Evaluation:
        """Fitness ``[N]`` float64 of ``genomes [N, D]`` evaluated with ``seeds [N]`` (an ``Evaluation`` when the
        problem reports experience), on the genomes' device."""
        genomes, seeds = check_inputs(genomes, seeds, self.problem)
        n = genomes.shape[0]
        if n == 0:
            return torch.zeros(0, dtype=torch.float64, device=genomes.device)
        result = self._evaluate(genomes.detach(), seeds)
        fitness = result.fitness.to(genomes.device)
        return fitness if result.experience is None else Evaluation(fitness, result.experience)

    def evaluate(self, genomes: Tensor, seeds: Tensor) -> Tensor | Evaluation:
        """Same as calling the evaluator."""
        return self(genomes, seeds)

    def _check(self, result: Any, n: int) -> Evaluation:
        return check_evaluation(result, n, self.problem, self.nan_fitness)

    def _evaluate(self, genomes: Tensor, seeds: Tensor) -> Evaluation:
        raise NotImplementedError

    def close(self) -> None:
        """Release workers (nothing to release in one process)."""

    def __enter__(self) -> _Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalEvaluator(_Evaluator):
    """The problem in this process: the whole population in one call of the problem (vectorised there), or in
    chunks of at most ``chunk_size`` genomes (to bound memory).

    Args:
        problem: a :class:`Problem` or a callable ``(genomes [N, D], seeds [N]) -> fitness [N] | Evaluation``.
        chunk_size: at most this many genomes per call of the problem (None: all at once).
        nan_fitness: ``"raise"`` (a NaN fitness is a ``ValueError`` naming the problem) or ``"worst"`` (passed
            on; the GA with ``nan_fitness="worst"`` counts it as the worst and warns).
    """

    def __init__(self, problem: Problem | Callable[[Tensor, Tensor], Any], *, chunk_size: int | None = None,
                 nan_fitness: str = "raise") -> None:
        super().__init__(problem, chunk_size=chunk_size, nan_fitness=nan_fitness)

    def _evaluate(self, genomes: Tensor, seeds: Tensor) -> Evaluation:
        size = self.chunk_size or genomes.shape[0]
        parts = [self._check(call_problem(self.problem, genomes[a:b], seeds[a:b]), b - a)
                 for a, b in chunk_bounds(genomes.shape[0], size)]
        return parts[0] if len(parts) == 1 else merge_evaluations(parts)

    def close(self) -> None:
        """Close the problem's resources if it has a ``close`` method (a ``GymProblem``'s environments; they
        are made again when needed)."""
        close = getattr(self.problem, "close", None)
        if callable(close):
            close()

    def __repr__(self) -> str:
        return f"LocalEvaluator({problem_name(self.problem)}, chunk_size={self.chunk_size})"


# ---------------------------------------------------------------------- moving tensors between processes
@dataclass(frozen=True)
class _Packed:
    """A tensor as a numpy array (pickled as plain bytes, no shared-memory file descriptors) and its dtype."""

    array: Any
    dtype: torch.dtype


def pack(obj: Any) -> Any:
    """``obj`` with every tensor (inside lists, tuples, dicts, Evaluations) as a :class:`_Packed` array."""
    if isinstance(obj, Tensor):
        tensor = obj.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            return _Packed(tensor.float().numpy(), tensor.dtype)
        return _Packed(tensor.numpy(), tensor.dtype)
    if isinstance(obj, Evaluation):
        return Evaluation(pack(obj.fitness), pack(obj.experience))
    if isinstance(obj, Mapping):
        return {k: pack(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(pack(v) for v in obj)
    return obj


def unpack(obj: Any) -> Any:
    """The inverse of :func:`pack` (tensors on the CPU)."""
    if isinstance(obj, _Packed):
        return torch.from_numpy(np.array(obj.array, copy=True)).to(obj.dtype)  # a writable copy
    if isinstance(obj, Evaluation):
        return Evaluation(unpack(obj.fitness), unpack(obj.experience))
    if isinstance(obj, Mapping):
        return {k: unpack(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(unpack(v) for v in obj)
    return obj


# ---------------------------------------------------------------------- process pool
_WORKER_PROBLEM: Any = None


def _init_worker(blob: bytes, threads: int) -> None:
    """Runs once in each worker: one torch thread (the pool's processes share the cores), the problem unpickled."""
    global _WORKER_PROBLEM
    torch.set_num_threads(threads)
    _WORKER_PROBLEM = pickle.loads(blob)


def _evaluate_in_worker(genomes: Any, seeds: Any) -> Any:
    result = call_problem(_WORKER_PROBLEM, unpack(genomes), unpack(seeds))
    if not isinstance(result, Tensor) and hasattr(result, "fitness"):
        result = Evaluation(result.fitness, getattr(result, "experience", None))
    return pack(result)


class ProcessPoolEvaluator(_Evaluator):
    """The problem in ``workers`` processes (``concurrent.futures.ProcessPoolExecutor``) with ``threads`` torch
    threads each: the problem is pickled once and unpickled once per worker (the pool's initializer), then each
    call sends the genomes in chunks (as arrays) and gathers the fitness in order.

    The pool starts at the first call and lives until :meth:`close` (or the end of a ``with`` block), so the
    problem (a model template, a data set, an environment) is sent once per worker, not once per generation.

    Args:
        problem: as for :class:`LocalEvaluator`; it must be picklable (a function defined at module level, not a
            lambda or a closure).
        workers: the number of processes.
        chunk_size: genomes per task (None: ``ceil(N / workers)``, one chunk per worker; smaller chunks balance
            uneven evaluation times at the cost of more messages).
        threads: torch threads per worker (1: the workers are the parallelism).
        start_method: how workers start: ``"spawn"`` (default: safe with threads in the parent, the same on
            every OS), ``"forkserver"`` or ``"fork"`` (fastest to start, Linux/macOS).
        nan_fitness: as for :class:`LocalEvaluator`.
    """

    def __init__(self, problem: Problem | Callable[[Tensor, Tensor], Any], *, workers: int = 2,
                 chunk_size: int | None = None, threads: int = 1, start_method: str = "spawn",
                 nan_fitness: str = "raise") -> None:
        super().__init__(problem, chunk_size=chunk_size, nan_fitness=nan_fitness)
        self.workers = check_int("workers", workers)
        self.threads = check_int("threads", threads)
        self.start_method = check_choice("start_method", start_method, multiprocessing.get_all_start_methods())
        try:
            self._blob = pickle.dumps(problem)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            raise TypeError(f"problem {problem_name(problem)!r} must be picklable to be sent to worker processes "
                            f"(define functions at module level, not as lambdas or closures): {error}") from error
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(self.start_method),
                                             initializer=_init_worker, initargs=(self._blob, self.threads))
        return self._pool

    def _evaluate(self, genomes: Tensor, seeds: Tensor) -> Evaluation:
        n = genomes.shape[0]
        size = self.chunk_size or math.ceil(n / self.workers)
        bounds = chunk_bounds(n, size)
        pool = self._executor()
        futures = [pool.submit(_evaluate_in_worker, pack(genomes[a:b]), pack(seeds[a:b])) for a, b in bounds]
        parts = [self._check(unpack(future.result()), b - a) for future, (a, b) in zip(futures, bounds, strict=True)]
        return parts[0] if len(parts) == 1 else merge_evaluations(parts)

    def close(self) -> None:
        """Shut the worker processes down (a later call starts new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pool"] = None
        return state

    def __repr__(self) -> str:
        return (f"ProcessPoolEvaluator({problem_name(self.problem)}, workers={self.workers}, "
                f"chunk_size={self.chunk_size}, start_method={self.start_method!r})")
