"""Multilayer perceptrons with ReLU between layers.

``relu_mlp(in_features, hidden, out_features)`` is ``Linear -> ReLU`` for every hidden width, then a linear
read-out, with PyTorch's default initialisation: ``[B, in_features] -> [B, out_features]``. The layers are
created in order (first to last), so a seeded generator gives the same initial weights whatever calls it.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from neuroplastic._checks import check_int, check_int_tuple

__all__ = ["relu_mlp"]


def relu_mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """An MLP ``in_features -> hidden[0] -> ... -> hidden[-1] -> out_features`` with ReLU between layers.

    ``hidden`` is a non-empty sequence of positive widths. Returns ``nn.Sequential(Linear, ReLU, ..., Linear)``
    (PyTorch's default initialisation); input ``[B, in_features]``, output ``[B, out_features]``.
    """
    check_int("in_features", in_features)
    check_int("out_features", out_features)
    check_int_tuple("hidden", hidden)
    layers: list[nn.Module] = []
    sizes = (in_features, *hidden)
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], out_features))
    return nn.Sequential(*layers)
