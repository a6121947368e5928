"""Continual learning: networks that keep learning on a stream of tasks without forgetting the earlier ones.

The frame of Parisi et al. 2019 ("Continual lifelong learning with neural networks: a review"):

- :mod:`.streams`: :class:`Task`, :class:`TaskStream` and their builders (permuted digits, split digits
  task- or class-incremental; from the embedded data or the full MNIST IDX files), every one seeded;
  :func:`split_validation` holds out a validation share of each task's training set.
- :mod:`.metrics`: ACC, BWT, FWT (Lopez-Paz & Ranzato 2017) and forgetting (Avalanche) as pure functions of the
  accuracy matrix ``R [T, T]``; :class:`AccuracyMatrix` records it as training runs.
- :mod:`.strategy`: the interface of a strategy (hooks before and after a task and around each step) and
  :class:`FineTuning`, the lower bound; :mod:`.baselines`: :class:`JointTraining` (the upper bound),
  :class:`EWC` (separate and online) and :class:`ExperienceReplay` (a reservoir-sampled buffer).
- :mod:`.trainer`: :class:`ContinualTrainer`, any model with any strategy, step by step, with exact resume in
  the middle of a task; :class:`MultiHeadClassifier`, one head per task.
- :mod:`.hlop`: :class:`HLOP` (Xiao et al. 2024), Hebbian lateral subspace neurons per layer and the
  gradient projection orthogonal to the earlier tasks' input subspaces (:class:`GradientProjector` on the
  gradients before the optimizer steps, :class:`InputProjector` on each layer's inputs in the backward pass).
- :mod:`.clnp`: :class:`CLNP`, continual learning via neural pruning (Golkar, Kagan & Cho 2019): L1 activation
  sparsity, pruning by validation activity within a tolerance, frozen per-task neurons.

This package sits on the top layer of the library, beside ``neuroplastic.evolution`` (see the package layers
in ``docs/architecture.md``); it never imports the run platform.
"""

from .baselines import EWC, ExperienceReplay, JointTraining, diagonal_fisher, ewc_penalty
from .clnp import CLNP, activation_l1, clnp_layers
from .hlop import HLOP, PROJECTION_SIDES, GradientProjector, InputProjector, SubspaceProjection, hlop_sizes
from .metrics import (
    AccuracyMatrix,
    average_accuracy,
    backward_transfer,
    continual_metrics,
    forgetting,
    forward_transfer,
)
from .strategy import Batch, FineTuning, Strategy
from .streams import (
    SCENARIOS,
    Task,
    TaskStream,
    digits_stream,
    mnist_idx_stream,
    permuted_tasks,
    split_tasks,
    split_validation,
)
from .trainer import ContinualTrainer, MultiHeadClassifier, StepInfo

__all__ = [
    "Task", "TaskStream", "SCENARIOS", "permuted_tasks", "split_tasks", "digits_stream", "mnist_idx_stream",
    "split_validation",
    "average_accuracy", "backward_transfer", "forward_transfer", "forgetting", "continual_metrics",
    "AccuracyMatrix",
    "Batch", "Strategy", "FineTuning", "JointTraining", "EWC", "ExperienceReplay", "diagonal_fisher", "ewc_penalty",
    "ContinualTrainer", "MultiHeadClassifier", "StepInfo",
    "HLOP", "GradientProjector", "InputProjector", "SubspaceProjection", "PROJECTION_SIDES", "hlop_sizes",
    "CLNP", "clnp_layers", "activation_l1",
]
