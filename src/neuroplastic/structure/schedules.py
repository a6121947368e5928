"""Schedules of sparse training: how dense the network is and how much of it is rewired at step t.

- :class:`CubicDensitySchedule`: gradual pruning (Zhu & Gupta 2017, "To prune, or not to prune: exploring
  the efficacy of pruning for model compression"). The density falls from ``initial`` to ``final`` between
  steps ``start`` (t0) and ``end`` (t1), changing every ``every`` (delta_t) steps::

      d(t) = final + (initial - final) * (1 - (t_q - t0) / (t1 - t0)) ** 3
      t_q  = t0 + delta_t * floor((t - t0) / delta_t)          (the last update step at or before t)

  clamped: ``d(t) = initial`` before t0 and ``final`` from t1 on. Pruning is fast at first, while the network
  is redundant, and slow near the end.
- :class:`CosineFractionSchedule`: the fraction of active connections that a prune-and-regrow update
  rewires (RigL, Evci et al. 2020, "Rigging the lottery: making all tickets winners", eq. 1; also used by
  GraNet for its neuroregeneration)::

      f(t) = minimum + (f0 - minimum) / 2 * (1 + cos(pi * (t - start) / (end - start)))   for start <= t <= end

  with ``minimum = 0`` the paper's ``f0 / 2 * (1 + cos(pi t / T))``; ``f(t) = 0`` after ``end`` (no more
  rewiring) and ``f0`` before ``start``.

Both are small stateful objects in the style of PyTorch's LR schedulers: ``value(t)`` is a pure function of
the step, ``step()`` advances an internal counter ``t`` and returns the value there, ``is_update_step(t)``
says whether an update happens at step t, and ``state_dict()`` / ``load_state_dict()`` save and restore
the settings and the counter (loading restores the saved settings, as LR schedulers do). Steps are
optimizer steps counted from 0; shapes do not apply (scalars only).
"""

from __future__ import annotations

import math
from typing import Any

from neuroplastic._checks import check_fraction, check_int

__all__ = ["CubicDensitySchedule", "CosineFractionSchedule"]


def _check_window(start: int, end: int) -> None:
    """A schedule's window: it ends at or after it starts."""
    if end < start:
        raise ValueError(f"the schedule ends before it starts: end={end} < start={start}")


class _Schedule:
    """Shared bookkeeping: an internal step counter and (de)serialisation of the settings."""

    _settings: tuple[str, ...] = ()

    t: int

    def value(self, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self) -> float:
        """Advance the internal counter by one step and return the value there."""
        self.t += 1
        return self.value(self.t)

    @property
    def current(self) -> float:
        """The value at the internal counter ``t``."""
        return self.value(self.t)

    def state_dict(self) -> dict[str, Any]:
        """The settings and the internal counter ``t``."""
        state = {name: getattr(self, name) for name in self._settings}
        state["t"] = self.t
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore settings and counter saved by :meth:`state_dict` (validated as in the constructor)."""
        missing = [name for name in (*self._settings, "t") if name not in state]
        if missing:
            raise ValueError(f"{type(self).__name__} state is missing {missing}; got keys {sorted(state)}")
        restored = type(self)(**{name: state[name] for name in self._settings})
        self.__dict__.update(restored.__dict__)
        self.t = check_int("t", state["t"], minimum=0)

    def __repr__(self) -> str:
        settings = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._settings)
        return f"{type(self).__name__}({settings})"


class CubicDensitySchedule(_Schedule):
    """Density of gradual magnitude pruning at step t (Zhu & Gupta 2017), updated every ``every`` steps.

    ``d(t) = final + (initial - final) * (1 - (t_q - start) / (end - start)) ** 3`` with ``t_q`` the last
    update step at or before t; ``initial`` before ``start``, ``final`` from ``end`` on (also when
    ``end == start``: a one-shot prune at ``start``).

    Args:
        initial_density: density at ``start`` (1.0 = dense), in (0, 1].
        final_density: density from ``end`` on, in (0, 1], at most ``initial_density``.
        start: first pruning step t0 (>= 0).
        end: last pruning step t1 (>= start).
        every: steps between pruning updates, delta_t (>= 1).
    """

    _settings = ("initial_density", "final_density", "start", "end", "every")

    def __init__(self, initial_density: float, final_density: float, start: int, end: int, every: int = 1) -> None:
        self.initial_density = check_fraction("initial_density", initial_density, low_open=True)
        self.final_density = check_fraction("final_density", final_density, low_open=True)
        if self.final_density > self.initial_density:
            raise ValueError(f"final_density ({final_density!r}) must not exceed initial_density "
                             f"({initial_density!r}): this schedule only prunes")
        self.start = check_int("start", start, minimum=0)
        self.end = check_int("end", end, minimum=0)
        _check_window(self.start, self.end)
        self.every = check_int("every", every, minimum=1)
        self.t = 0

    def progress(self, t: int) -> float:
        """Fraction of the pruning window done at the last update step at or before ``t``, in [0, 1]."""
        check_int("t", t, minimum=0)
        if t < self.start:
            return 0.0
        if t >= self.end:
            return 1.0
        quantised = self.start + (t - self.start) // self.every * self.every
        return (quantised - self.start) / (self.end - self.start)

    def value(self, t: int) -> float:
        """The density at step ``t``."""
        remaining = (1.0 - self.progress(t)) ** 3
        return self.final_density + (self.initial_density - self.final_density) * remaining

    def count(self, t: int, initial_count: int, final_count: int) -> int:
        """The number of active weights at step ``t`` for a tensor going from ``initial_count`` to ``final_count``.

        The same cubic curve in counts, rounded half up: ``round(final + (initial - final) * (1 - p) ** 3)``;
        exactly ``initial_count`` before ``start`` and ``final_count`` from ``end`` on.
        """
        if final_count > initial_count:
            raise ValueError(f"final_count ({final_count}) must not exceed initial_count ({initial_count})")
        remaining = (1.0 - self.progress(t)) ** 3
        return int(math.floor(final_count + (initial_count - final_count) * remaining + 0.5))

    def is_update_step(self, t: int) -> bool:
        """True at the pruning steps ``start, start + every, ...`` up to and including ``end``."""
        check_int("t", t, minimum=0)
        return self.start <= t <= self.end and ((t - self.start) % self.every == 0 or t == self.end)


class CosineFractionSchedule(_Schedule):
    """Fraction of active connections rewired at step t, annealed by a cosine (RigL eq. 1).

    ``f(t) = minimum + (initial_fraction - minimum) / 2 * (1 + cos(pi * (t - start) / (end - start)))`` for
    ``start <= t <= end``; ``initial_fraction`` before ``start`` and 0 after ``end`` (rewiring stops).

    Args:
        initial_fraction: f0, in [0, 1] (RigL: 0.3, GraNet: 0.5).
        end: T, the step at which the annealing ends (>= start).
        start: the step at which it begins (default 0).
        every: steps between updates, delta_t (>= 1); ``is_update_step`` is True at ``start + k * every``
            (k >= 1) up to ``end``.
        minimum: the floor of the annealing, in [0, initial_fraction] (default 0; GraNet's code uses 0.005).
    """

    _settings = ("initial_fraction", "end", "start", "every", "minimum")

    def __init__(self, initial_fraction: float, end: int, start: int = 0, every: int = 1,
                 minimum: float = 0.0) -> None:
        self.initial_fraction = check_fraction("initial_fraction", initial_fraction)
        self.end = check_int("end", end, minimum=0)
        self.start = check_int("start", start, minimum=0)
        _check_window(self.start, self.end)
        self.every = check_int("every", every, minimum=1)
        self.minimum = check_fraction("minimum", minimum)
        if self.minimum > self.initial_fraction:
            raise ValueError(f"minimum ({minimum!r}) must not exceed initial_fraction ({initial_fraction!r})")
        self.t = 0

    def value(self, t: int) -> float:
        """The fraction at step ``t``."""
        check_int("t", t, minimum=0)
        if t < self.start:
            return self.initial_fraction
        if t > self.end:
            return 0.0
        if self.end == self.start:
            return self.minimum
        phase = math.pi * (t - self.start) / (self.end - self.start)
        return self.minimum + (self.initial_fraction - self.minimum) / 2.0 * (1.0 + math.cos(phase))

    def is_update_step(self, t: int) -> bool:
        """True at steps ``start + every, start + 2 * every, ...`` up to ``end`` (exclusive of ``start``)."""
        check_int("t", t, minimum=0)
        return self.start < t <= self.end and (t - self.start) % self.every == 0
