"""The ridge readout: least squares with a bias, shrinkage, and the ridge chosen on a validation tail."""

from __future__ import annotations

import torch

from neuroplastic.dynamics import fit_readout, fit_validated_readout, predict, validation_scores
from neuroplastic.tasks.lorenz import nrmse


def test_readout_is_ridge_regression():
    features = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    targets = features @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.3
    readout = fit_readout(features, targets, ridge=0.0)
    torch.testing.assert_close(predict(features, readout), targets, atol=1e-4, rtol=0)
    shrunk = fit_readout(features, targets, ridge=10.0)
    assert float(shrunk[:4].norm()) < float(readout[:4].norm())


def test_ridge_solves_the_regularised_normal_equations():
    features = torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    targets = torch.randn(50, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    readout = fit_readout(features, targets, ridge=0.1)
    x = torch.cat([features, torch.ones(50, 1, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(x.T @ x @ readout + 0.1 * 50 * readout, x.T @ targets)
    assert readout.shape == (4, 2) and readout.dtype == torch.float64


def test_validation_scores_fit_the_head_and_score_the_tail():
    features = torch.randn(100, 5, generator=torch.Generator().manual_seed(3))
    targets = features[:, :2] * 2 + 0.1 * torch.randn(100, 2, generator=torch.Generator().manual_seed(4))
    ridges = (1e-6, 1.0, 100.0)
    scores = validation_scores(features, targets, ridges, 0.25)
    expected = [float(nrmse(predict(features[75:], fit_readout(features[:75], targets[:75], r)), targets[75:]))
                for r in ridges]
    assert scores == expected
    readout, ridge = fit_validated_readout(features, targets, ridges, 0.25)
    assert ridge == ridges[scores.index(min(scores))] == 1e-6
    assert torch.equal(readout, fit_readout(features, targets, ridge))
