"""grid_search: every combination of a grid, applied to a config, scored over seeds, best first."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from neuroplastic.runs import grid_search, param


@dataclass
class Config:
    gain: float = param(1.0, minimum=0)
    width: int = param(4, minimum=1)
    name: str = "base"


def _score(config: Config, seed: int) -> float:
    return (config.gain - 2.0) ** 2 + config.width / 10 + seed


def test_every_combination_is_scored_over_the_seeds_and_sorted_best_first():
    seen = []
    calls = []

    def score(config, seed):
        calls.append((config.gain, config.width, config.name, seed))
        return _score(config, seed)

    rows = grid_search(Config(name="kept"), {"gain": (1.0, 2.0, 3.0), "width": (4, 8)}, score, (0, 1),
                       progress=seen.append)
    assert len(rows) == len(seen) == 6 and len(calls) == 12
    assert {(row["gain"], row["width"]) for row in rows} == {(g, w) for g in (1.0, 2.0, 3.0) for w in (4, 8)}
    assert all(name == "kept" for _, _, name, _ in calls)  # the other fields come from the config
    assert [row["score"] for row in rows] == sorted(row["score"] for row in rows)
    best = rows[0]
    assert (best["gain"], best["width"]) == (2.0, 4)
    assert best["per_seed"] == [pytest.approx(0.4), pytest.approx(1.4)]
    assert best["score"] == sum(best["per_seed"]) / 2
    assert list(best) == ["gain", "width", "score", "per_seed"]
    # progress sees the rows in grid order, before sorting
    assert [(row["gain"], row["width"]) for row in seen] == [(1.0, 4), (1.0, 8), (2.0, 4), (2.0, 8), (3.0, 4),
                                                             (3.0, 8)]


def test_maximize_ties_and_the_score_key():
    rows = grid_search(Config(), {"gain": ("1", "3", "2")}, lambda config, seed: abs(config.gain - 2.0), [5],
                       key="error", maximize=True)
    assert [row["gain"] for row in rows] == [1.0, 3.0, 2.0]  # text converted to the field's type; ties in order
    assert [row["error"] for row in rows] == [1.0, 1.0, 0.0] and rows[0]["per_seed"] == [1.0]
    single = grid_search(Config(width=3), {}, _score, (0,))
    assert single == [{"score": pytest.approx(1.3), "per_seed": [pytest.approx(1.3)]}]  # the config itself


def test_every_candidate_is_checked_before_anything_is_scored():
    calls = []

    def score(config, seed):
        calls.append(seed)
        return 0.0

    with pytest.raises(ValueError, match="unknown config key 'depth' for Config; valid keys: gain, width, name"):
        grid_search(Config(), {"gain": (1.0,), "depth": (2,)}, score, (0,))
    with pytest.raises(ValueError, match="Config.width must be an int >= 1, got 0"):
        grid_search(Config(), {"width": (4, 0)}, score, (0,))
    assert calls == []
    with pytest.raises(ValueError, match="seeds must not be empty"):
        grid_search(Config(), {"gain": (1.0,)}, score, ())
    for values in ((), "12", 3):
        with pytest.raises(ValueError, match=r"grid\['gain'\] must be a non-empty sequence"):
            grid_search(Config(), {"gain": values}, score, (0,))
