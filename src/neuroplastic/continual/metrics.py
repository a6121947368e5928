"""The standard continual-learning metrics, pure functions of the accuracy matrix, and a recorder that fills it.

The accuracy matrix ``R [T, T]`` of a stream of ``T`` tasks holds ``R[i, j]``, the test accuracy on task ``j``
after training task ``i``; ``b [T]`` holds the accuracies on each task at initialisation (before any training).
Lopez-Paz & Ranzato 2017 ("Gradient episodic memory for continual learning", GEM) define::

    ACC = 1/T       sum_{j=0}^{T-1} R[T-1, j]
    BWT = 1/(T-1)   sum_{j=0}^{T-2} (R[T-1, j] - R[j, j])
    FWT = 1/(T-1)   sum_{j=1}^{T-1} (R[j-1, j] - b[j])

and Avalanche's ``StreamForgetting`` (Lomonaco et al. 2021) averages, over every task but the last, the
accuracy recorded right after training the task minus the final one (its "initial" value is the evaluation
that follows training on the task, not the best earlier value as in Chaudhry et al. 2018)::

    forgetting = 1/(T-1) sum_{j=0}^{T-2} (R[j, j] - R[T-1, j])      (= -BWT)

All take tensors, NumPy arrays or nested sequences, compute in float64 and return a Python float.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import check_int

__all__ = ["average_accuracy", "backward_transfer", "forward_transfer", "forgetting", "continual_metrics",
           "AccuracyMatrix"]

MatrixLike = Tensor | np.ndarray | Sequence[Sequence[float]]


def _as_matrix(name: str, value: object, *, min_tasks: int = 1) -> Tensor:
    if isinstance(value, bool) or value is None or isinstance(value, (str, bytes, int, float)):
        raise TypeError(f"{name} must be a T x T matrix (tensor, array or nested sequence), "
                        f"got {type(value).__name__}")
    try:
        matrix = torch.as_tensor(value).detach().to("cpu", torch.float64) if not isinstance(value, Tensor) else \
            value.detach().to("cpu", torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a T x T matrix of numbers, got {type(value).__name__}: {err}") from None
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"{name} must be a square T x T matrix with T >= 1 (R[i, j] = accuracy on task j after "
                         f"training task i), got shape {list(matrix.shape)}")
    if matrix.shape[0] < min_tasks:
        raise ValueError(f"{name} must cover at least {min_tasks} tasks for this metric, got T = {matrix.shape[0]}")
    if not bool(torch.isfinite(matrix).all()):
        raise ValueError(f"{name} must be finite: it holds NaN or inf (a row not recorded yet?)")
    return matrix


def average_accuracy(R: MatrixLike) -> float:
    """ACC (Lopez-Paz & Ranzato 2017): the mean accuracy over all tasks after the last one, ``mean_j R[T-1, j]``.

    Args:
        R: the accuracy matrix ``[T, T]`` (``R[i, j]`` accuracy on task ``j`` after training task ``i``).
    """
    matrix = _as_matrix("R", R)
    return float(matrix[-1].mean())


def backward_transfer(R: MatrixLike) -> float:
    """BWT (Lopez-Paz & Ranzato 2017): ``mean_{j < T-1} (R[T-1, j] - R[j, j])``; negative is forgetting.

    Args:
        R: the accuracy matrix ``[T, T]``, ``T >= 2``.
    """
    matrix = _as_matrix("R", R, min_tasks=2)
    t = matrix.shape[0]
    return float((matrix[-1, : t - 1] - matrix.diagonal()[: t - 1]).mean())


def forward_transfer(R: MatrixLike, b: Tensor | np.ndarray | Sequence[float]) -> float:
    """FWT (Lopez-Paz & Ranzato 2017): ``mean_{j > 0} (R[j-1, j] - b[j])``, what earlier tasks give a new one.

    Args:
        R: the accuracy matrix ``[T, T]``, ``T >= 2``.
        b: the accuracies on each task at initialisation ``[T]`` (``b[0]`` is not used).
    """
    matrix = _as_matrix("R", R, min_tasks=2)
    t = matrix.shape[0]
    if isinstance(b, bool) or b is None or isinstance(b, (str, bytes, int, float)):
        raise TypeError(f"b must be a vector of T = {t} accuracies at initialisation, got {type(b).__name__}")
    try:
        base = b.detach().to("cpu", torch.float64) if isinstance(b, Tensor) else torch.as_tensor(b, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"b must be a vector of numbers, got {type(b).__name__}: {err}") from None
    if base.shape != (t,):
        raise ValueError(f"b must have shape [T] = [{t}] (one accuracy at initialisation per task), "
                         f"got {list(base.shape)}")
    if not bool(torch.isfinite(base).all()):
        raise ValueError("b must be finite: it holds NaN or inf")
    return float((matrix.diagonal(offset=1) - base[1:]).mean())


def forgetting(R: MatrixLike) -> float:
    """Forgetting as Avalanche's ``StreamForgetting``: ``mean_{j < T-1} (R[j, j] - R[T-1, j])`` (= -BWT).

    The accuracy on a task right after training it minus its final accuracy, averaged over all tasks but the
    last (which has no later evaluation).

    Args:
        R: the accuracy matrix ``[T, T]``, ``T >= 2``.
    """
    matrix = _as_matrix("R", R, min_tasks=2)
    t = matrix.shape[0]
    return float((matrix.diagonal()[: t - 1] - matrix[-1, : t - 1]).mean())


def continual_metrics(R: MatrixLike, b: Tensor | np.ndarray | Sequence[float] | None = None) -> dict[str, float]:
    """All the metrics of an accuracy matrix at once: ``{"acc", "bwt", "forgetting", "fwt"}``.

    ``bwt`` and ``forgetting`` are 0.0 for a single task (nothing can be forgotten); ``fwt`` is left out when
    ``b`` is None or ``T == 1``.
    """
    matrix = _as_matrix("R", R)
    single = matrix.shape[0] == 1
    out = {"acc": average_accuracy(matrix),
           "bwt": 0.0 if single else backward_transfer(matrix),
           "forgetting": 0.0 if single else forgetting(matrix)}
    if b is not None and not single:
        out["fwt"] = forward_transfer(matrix, b)
    return out


class AccuracyMatrix:
    """Records the accuracy matrix of a stream as a trainer runs: the row at initialisation, then one per task.

    ``record_initial(accuracies [T])`` fills ``b``; ``record(i, accuracies [T])`` fills row ``i`` of ``R``
    (rows in order, each once). ``R`` and ``initial`` read as float64 tensors with NaN where nothing was recorded
    yet; ``complete`` says whether every row is in, then :meth:`metrics` gives ACC, BWT, forgetting and FWT.

    Args:
        num_tasks: ``T``.
    """

    def __init__(self, num_tasks: int) -> None:
        self.num_tasks = check_int("num_tasks", num_tasks, minimum=1)
        self._initial = torch.full((self.num_tasks,), float("nan"), dtype=torch.float64)
        self._rows = torch.full((self.num_tasks, self.num_tasks), float("nan"), dtype=torch.float64)
        self.has_initial = False
        self.rows_recorded = 0

    def __repr__(self) -> str:
        return f"AccuracyMatrix(num_tasks={self.num_tasks}, rows_recorded={self.rows_recorded})"

    def _accuracies(self, accuracies: object) -> Tensor:
        if isinstance(accuracies, bool) or not isinstance(accuracies, (Tensor, np.ndarray, list, tuple)):
            raise TypeError(f"accuracies must be a sequence of {self.num_tasks} numbers, "
                            f"got {type(accuracies).__name__}")
        values = torch.as_tensor(accuracies if not isinstance(accuracies, Tensor) else accuracies.detach().cpu(),
                                 dtype=torch.float64)
        if values.shape != (self.num_tasks,):
            raise ValueError(f"accuracies must have shape [T] = [{self.num_tasks}], got {list(values.shape)}")
        if not bool(torch.isfinite(values).all()):
            raise ValueError("accuracies must be finite, got NaN or inf")
        return values

    def record_initial(self, accuracies: Tensor | Sequence[float]) -> None:
        """Record ``b``, the accuracies on every task before any training (once, before the first row)."""
        if self.has_initial or self.rows_recorded:
            raise ValueError("the initial accuracies are recorded once, before the first task's row")
        self._initial = self._accuracies(accuracies)
        self.has_initial = True

    def record(self, task: int, accuracies: Tensor | Sequence[float]) -> None:
        """Record row ``task`` of ``R``: the accuracies on every task after training task ``task``."""
        task = check_int("task", task, minimum=0, maximum=self.num_tasks - 1)
        if task != self.rows_recorded:
            raise ValueError(f"rows are recorded in order: expected row {self.rows_recorded}, got task={task}")
        self._rows[task] = self._accuracies(accuracies)
        self.rows_recorded += 1

    @property
    def R(self) -> Tensor:  # noqa: N802 (the paper's name)
        """``[T, T]`` float64, NaN in the rows not recorded yet (a copy)."""
        return self._rows.clone()

    @property
    def initial(self) -> Tensor:
        """``b [T]`` float64, NaN until recorded (a copy)."""
        return self._initial.clone()

    @property
    def complete(self) -> bool:
        return self.rows_recorded == self.num_tasks

    def metrics(self) -> dict[str, float]:
        """:func:`continual_metrics` of the complete matrix (with FWT when the initial row was recorded)."""
        if not self.complete:
            raise ValueError(f"the accuracy matrix is incomplete: {self.rows_recorded} of {self.num_tasks} rows "
                             "recorded")
        return continual_metrics(self._rows, self._initial if self.has_initial else None)

    def state_dict(self) -> dict[str, Any]:
        return {"num_tasks": self.num_tasks, "initial": self._initial.clone(), "rows": self._rows.clone(),
                "has_initial": self.has_initial, "rows_recorded": self.rows_recorded}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from AccuracyMatrix.state_dict(), got {type(state).__name__}")
        num_tasks = check_int("state['num_tasks']", state.get("num_tasks"), minimum=1)
        if num_tasks != self.num_tasks:
            raise ValueError(f"state['num_tasks'] is {num_tasks} but this matrix has {self.num_tasks} tasks")
        rows, initial = state.get("rows"), state.get("initial")
        if not isinstance(rows, Tensor) or rows.shape != (num_tasks, num_tasks):
            raise ValueError(f"state['rows'] must be a tensor [{num_tasks}, {num_tasks}]")
        if not isinstance(initial, Tensor) or initial.shape != (num_tasks,):
            raise ValueError(f"state['initial'] must be a tensor [{num_tasks}]")
        recorded = check_int("state['rows_recorded']", state.get("rows_recorded"), minimum=0, maximum=num_tasks)
        has_initial = state.get("has_initial")
        if not isinstance(has_initial, bool):
            raise TypeError("state['has_initial'] must be a bool")
        self._rows, self._initial = rows.to(torch.float64).clone(), initial.to(torch.float64).clone()
        self.rows_recorded, self.has_initial = recorded, has_initial
