"""A linear readout trained by ridge regression, with the ridge strength chosen on a validation tail.

The readout of a reservoir (:mod:`neuroplastic.dynamics.reservoir`): only these weights are trained::

    X = [features, 1]                              features [M, N]
    W = (X^T X + ridge * M * I)^-1 X^T Y           Y [M, D]; the bias is regularised too; float64
    y = [features, 1] W

:func:`validation_scores` fits on the first ``1 - validation_fraction`` of the samples and scores the rest
(NRMSE, :func:`neuroplastic.tasks.lorenz.nrmse`) for every ridge strength; :func:`fit_validated_readout` picks the
best and refits on all samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroplastic._checks import check_finite, check_number, check_tensor
from neuroplastic.tasks.lorenz import nrmse

__all__ = ["fit_readout", "predict", "validation_scores", "fit_validated_readout"]


def _check_samples(features: object, targets: object) -> None:
    """``features [M, N]`` and ``targets [M, D]``: floating point, finite, ``M >= 1``, on one device."""
    check_tensor("features", features, ("M", "N"))
    check_tensor("targets", targets, (features.shape[0], "D"))  # type: ignore[union-attr]
    if features.shape[0] == 0:  # type: ignore[union-attr]
        raise ValueError("features must have at least one sample [M >= 1, N], got shape [0, "
                         f"{features.shape[1]}]")  # type: ignore[union-attr]
    if targets.device != features.device:  # type: ignore[union-attr]
        raise ValueError(f"targets is on {targets.device} but features are on {features.device}")  # type: ignore
    check_finite("features", features)  # type: ignore[arg-type]
    check_finite("targets", targets)  # type: ignore[arg-type]


def _design(features: Tensor) -> Tensor:
    return torch.cat([features, features.new_ones(*features.shape[:-1], 1)], dim=-1).double()


def fit_readout(features: Tensor, targets: Tensor, ridge: float) -> Tensor:
    """Ridge regression ``[features, 1] -> targets``: ``features [M, N]``, ``targets [M, D]`` -> ``[N + 1, D]``.

    ``W = (X^T X + ridge * M * I)^-1 X^T Y`` (the bias is regularised too), in float64. ``features`` and
    ``targets``: finite, floating point, ``M >= 1``; ``ridge``: a finite number >= 0 (0 only where ``X^T X`` is
    invertible).
    """
    _check_samples(features, targets)
    check_number("ridge", ridge, minimum=0)
    x = _design(features)
    gram = x.T @ x + ridge * x.shape[0] * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    try:
        return torch.linalg.solve(gram, x.T @ targets.double())
    except torch.linalg.LinAlgError:
        raise ValueError(f"the ridge regression is singular with ridge={ridge!r} ({x.shape[0]} samples of "
                         f"{x.shape[1] - 1} features and a bias): use ridge > 0") from None


def predict(features: Tensor, readout: Tensor) -> Tensor:
    """``[..., N]`` features -> ``[..., D]`` predictions ``[features, 1] @ readout`` (float32)."""
    check_tensor("readout", readout, ("N + 1", "D"))
    check_tensor("features", features, None)
    if features.dim() < 1 or features.shape[-1] + 1 != readout.shape[0]:
        raise ValueError(f"features must have shape [..., {readout.shape[0] - 1}] (the readout is [N + 1, D] = "
                         f"{list(readout.shape)}), got {list(features.shape)}")
    if features.device != readout.device:
        raise ValueError(f"features are on {features.device} but the readout is on {readout.device}")
    return (_design(features) @ readout).float()


def validation_scores(features: Tensor, targets: Tensor, ridges: tuple[float, ...],
                      validation_fraction: float) -> list[float]:
    """Validation NRMSE per ridge strength in ``ridges``: the readout fitted on the first
    ``1 - validation_fraction`` of ``features [M, N]`` / ``targets [M, D]``, scored on the rest."""
    split = int(round(len(features) * (1 - validation_fraction)))
    scores = []
    for ridge in ridges:
        readout = fit_readout(features[:split], targets[:split], ridge)
        scores.append(float(nrmse(predict(features[split:], readout), targets[split:])))
    return scores


def fit_validated_readout(features: Tensor, targets: Tensor, ridges: tuple[float, ...],
                          validation_fraction: float) -> tuple[Tensor, float]:
    """The readout ``[N + 1, D]`` refitted on all samples with the ridge of lowest validation NRMSE (the first
    on ties), and that ridge."""
    scores = validation_scores(features, targets, ridges, validation_fraction)
    ridge = ridges[min(range(len(scores)), key=scores.__getitem__)]
    return fit_readout(features, targets, ridge), ridge
