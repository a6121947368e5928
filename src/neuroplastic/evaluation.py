"""Evaluating a trained classifier: batched class predictions, accuracy, and parameter counts.

Shared by every experiment and by the coming continual-learning metrics, so that "accuracy" means one thing:
the fraction of inputs whose arg-max class equals the label, computed in eval mode (the model's previous
mode is restored) without gradients, in batches, on the device of the model's parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from neuroplastic._checks import check_bool, check_int

__all__ = ["predict_classes", "correct_mask", "accuracy", "count_parameters"]


def _device(model: nn.Module, inputs: Tensor) -> torch.device:
    parameter = next(model.parameters(), None)
    return inputs.device if parameter is None else parameter.device


@torch.no_grad()
def predict_classes(model: nn.Module | Callable[[Tensor], Tensor], inputs: Tensor, *,
                    batch_size: int = 1000) -> Tensor:
    """The arg-max class of ``model(inputs)`` for each input: ``[N]`` int64, on ``inputs``' device.

    ``inputs [N, ...]`` run in batches of ``batch_size`` on the model's device, with the model in eval mode
    (its previous mode is restored afterwards, also on an error). ``model`` returns logits ``[n, C]`` (C >= 1)
    for a batch of n inputs; other outputs, and NaN logits (whose arg-max is no class), raise a ``ValueError``.
    """
    _check_inputs(model, inputs)
    check_int("batch_size", batch_size, minimum=1)
    is_module = isinstance(model, nn.Module)
    was_training = model.training if is_module else False
    device = _device(model, inputs) if is_module else inputs.device
    if is_module:
        model.eval()
    try:
        outputs = [_logits(model(inputs[i:i + batch_size].to(device)), min(batch_size, inputs.shape[0] - i))
                   .argmax(dim=1).to(inputs.device) for i in range(0, inputs.shape[0], batch_size)]
    finally:
        if is_module:
            model.train(was_training)
    if not outputs:
        return torch.empty(0, dtype=torch.long, device=inputs.device)
    return torch.cat(outputs)


def _check_inputs(model: object, inputs: object) -> None:
    if not callable(model):
        raise TypeError(f"model must be an nn.Module or a callable returning logits, got {type(model).__name__}")
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.dim() == 0:
        raise ValueError("inputs must have shape [N, ...] (one row per input), got a 0-d tensor")


def _logits(logits: object, rows: int) -> Tensor:
    """The model's output for ``rows`` inputs, if it is logits ``[rows, C]`` with C >= 1 and no NaN."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"the model must return a tensor of logits [n, C], got {type(logits).__name__}")
    if logits.dim() != 2 or logits.shape[0] != rows or logits.shape[1] == 0:
        raise ValueError(f"the model must return logits of shape [n, C] = [{rows}, C >= 1] for a batch of {rows} "
                         f"inputs, got {list(logits.shape)}")
    nan = int(torch.isnan(logits).sum()) if logits.is_floating_point() else 0
    if nan:
        raise ValueError(f"the model returned {nan} NaN logits (of {logits.numel()}): their arg-max is no class")
    return logits


def correct_mask(model: nn.Module | Callable[[Tensor], Tensor], inputs: Tensor, labels: Tensor, *,
                 batch_size: int = 1000) -> Tensor:
    """Boolean ``[N]``: whether ``model`` classifies each of ``inputs [N, ...]`` as ``labels [N]`` (class indices,
    an integer dtype)."""
    _check_inputs(model, inputs)
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != inputs.shape[0]:
        shape = list(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a tensor of shape [N] = [{inputs.shape[0]}], got {shape}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be class indices of an integer dtype (e.g. torch.long), got {labels.dtype}")
    return predict_classes(model, inputs, batch_size=batch_size) == labels.to(inputs.device)


def accuracy(model: nn.Module | Callable[[Tensor], Tensor], inputs: Tensor, labels: Tensor, *,
             batch_size: int = 1000) -> float:
    """The fraction of ``inputs [N, ...]`` that ``model`` classifies as ``labels [N]``: correct / N, exact.

    ValueError for an empty set (N = 0), where accuracy is undefined.
    """
    _check_inputs(model, inputs)
    if inputs.shape[0] == 0:
        raise ValueError("accuracy of an empty set is undefined: inputs has 0 rows")
    return int(correct_mask(model, inputs, labels, batch_size=batch_size).sum()) / inputs.shape[0]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """The number of parameter entries of ``model`` (shared parameters once); ``trainable_only`` counts
    only those with ``requires_grad``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_bool("trainable_only", trainable_only)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
