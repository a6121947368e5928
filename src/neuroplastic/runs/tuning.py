"""Hyperparameter search over an experiment's config: every combination of a grid, scored over seeds."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .config import apply_overrides


def grid_search(config: Any, grid: Mapping[str, Sequence[Any]], score: Callable[[Any, int], float],
                seeds: Sequence[int], *, key: str = "score", maximize: bool = False,
                progress: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Score every combination of ``grid`` (config field -> values) by ``score(candidate, seed)`` averaged over
    ``seeds``; best first (lowest mean, or highest with ``maximize``; ties keep the grid's order).

    Each candidate is ``config`` with the combination applied by :func:`~neuroplastic.runs.apply_overrides`
    (typed values, or text as in ``key=value`` overrides), and every candidate is built, so its field names and
    values checked, before anything is scored. Rows: the combination's fields (their values in the candidate,
    of the fields' types), ``key`` (the mean over the seeds) and ``per_seed`` (the scores in the order of
    ``seeds``); ``progress(row)`` is called after each combination, in the grid's order.

    Raises:
        ValueError: empty ``seeds`` or an empty list of values in ``grid``; an unknown field or a bad value
            (from :func:`~neuroplastic.runs.apply_overrides`).
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid[{name!r}] must be a non-empty sequence of values, got {values!r}")
    combinations = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    candidates = [apply_overrides(config, params) for params in combinations]
    rows = []
    for params, candidate in zip(combinations, candidates, strict=True):
        per_seed = [score(candidate, seed) for seed in seeds]
        rows.append({**{name: getattr(candidate, name) for name in params}, key: sum(per_seed) / len(per_seed),
                     "per_seed": per_seed})
        if progress is not None:
            progress(rows[-1])
    return sorted(rows, key=lambda row: -row[key] if maximize else row[key])
