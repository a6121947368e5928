"""Lyapunov noise pruning: noise-aware sparsification, stabilisation, LNP itself and its baselines."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.dynamics import LyapunovSpectrum, network_lyapunov_spectrum
from neuroplastic.runs.threads import torch_threads
from neuroplastic.structure import lnp as lnp_module
from neuroplastic.structure.lnp import (
    LNPConfig,
    activity_prune,
    discrete_lyapunov_covariance,
    lyapunov_noise_prune,
    noise_prune_probabilities,
    noise_prune_scores,
    random_prune,
    sample_synapses,
    scale_to_lyapunov,
    smallest_stabilize_scale,
    stability_target,
    stabilize,
)

F64 = torch.float64


@pytest.fixture(autouse=True)
def one_thread():
    """Step-by-step loops over tiny tensors: one intra-op thread is much faster on a busy machine."""
    with torch_threads(1):
        yield



# --------------------------------------------------------------------------------- noise-aware sparsification
def test_discrete_lyapunov_covariance_solves_the_equation():
    a = 0.3 * torch.randn(6, 6, generator=torch.Generator().manual_seed(0), dtype=F64)
    q = torch.eye(6, dtype=F64) + 0.1
    cov = discrete_lyapunov_covariance(a, q)
    vec = torch.linalg.solve(torch.eye(36, dtype=F64) - torch.kron(a, a), q.flatten())
    torch.testing.assert_close(cov, vec.view(6, 6), atol=1e-10, rtol=0)
    torch.testing.assert_close(cov, a @ cov @ a.T + q, atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match="spectral radius"):
        discrete_lyapunov_covariance(torch.eye(3, dtype=F64) * 1.01)


def test_noise_prune_scores_by_hand():
    coupling = torch.tensor([[0.0, 2.0, -1.0], [0.5, 0.0, 0.0], [0.0, -3.0, 0.0]], dtype=F64)
    cov = torch.tensor([[2.0, 0.5, -0.2], [0.5, 1.0, 0.1], [-0.2, 0.1, 3.0]], dtype=F64)
    scores = noise_prune_scores(coupling, cov)
    expected = torch.zeros(3, 3, dtype=F64)
    expected[0, 1] = 2.0 * (2.0 + 1.0 - 2 * 0.5)  # positive weight: C_ii + C_jj - 2 C_ij
    expected[0, 2] = 1.0 * (2.0 + 3.0 + 2 * -0.2)  # negative weight: C_ii + C_jj + 2 C_ij
    expected[1, 0] = 0.5 * (1.0 + 2.0 - 2 * 0.5)
    expected[2, 1] = 3.0 * (3.0 + 1.0 + 2 * 0.1)
    torch.testing.assert_close(scores, expected)


def test_probabilities_sum_to_the_budget_and_are_capped():
    scores = torch.tensor([[0.0, 10.0, 1.0], [2.0, 0.0, 0.5], [0.0, 4.0, 0.0]], dtype=F64)
    p = noise_prune_probabilities(scores, 2.5)
    assert float(p.sum()) == pytest.approx(2.5, rel=1e-9)
    assert float(p.max()) == 1.0 and float(p[0, 1]) == 1.0  # the largest score is capped at 1
    below = (p > 0) & (p < 1)
    ratios = p[below] / scores[below]
    torch.testing.assert_close(ratios, ratios[0].expand_as(ratios))  # proportional below the cap
    assert bool((p[scores == 0] == 0).all())
    torch.testing.assert_close(noise_prune_probabilities(scores, 10.0), (scores > 0).double())


@pytest.mark.parametrize("rescale,factor", [("inverse", lambda p: 1 / p), ("sqrt_inverse", lambda p: p ** -0.5),
                                            ("none", lambda p: 1.0)])
def test_sampled_synapses_are_zero_or_rescaled(rescale, factor):
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(200, 200, generator=gen, dtype=F64)
    p = torch.rand(200, 200, generator=gen, dtype=F64) * 0.5 + 0.25
    sparse, mask = sample_synapses(weight, p, generator=torch.Generator().manual_seed(1), rescale=rescale)
    assert bool((sparse[~mask] == 0).all())
    torch.testing.assert_close(sparse[mask], weight[mask] * factor(p[mask]))
    assert abs(mask.double().mean().item() - p.mean().item()) < 0.01  # each kept with probability p
    same, _ = sample_synapses(weight, p, generator=torch.Generator().manual_seed(1), rescale=rescale)
    assert torch.equal(same, sparse)


def test_importance_weights_are_unbiased():
    """Noise-prune's estimator: ``E[W'] = W`` with ``W / p`` and ``E[W'^2] = W^2`` with ``W / sqrt(p)``, checked
    over many independent draws within 4 Monte Carlo standard errors (computed from ``p``; exact where p = 1)."""
    weight = torch.tensor([[0.0, 2.0, -1.0], [0.5, 0.0, 3.0], [-4.0, 1.5, 0.0]], dtype=F64)
    p = torch.tensor([[0.0, 0.2, 0.5], [0.9, 0.0, 0.1], [0.3, 1.0, 0.0]], dtype=F64)
    gen = torch.Generator().manual_seed(5)
    draws = 4000
    mean, square, kept = torch.zeros_like(weight), torch.zeros_like(weight), torch.zeros_like(weight)
    for _ in range(draws):
        sparse, mask = sample_synapses(weight, p, generator=gen)
        mean += sparse
        kept += mask
        root, _ = sample_synapses(weight, p, generator=gen, rescale="sqrt_inverse")
        square += root ** 2
    odds = torch.where(p > 0, (1 - p) / p.clamp_min(1e-12), torch.zeros_like(p))
    assert bool(((kept / draws - p).abs() <= 4 * (p * (1 - p) / draws).sqrt() + 1e-12).all())
    assert bool(((mean / draws - weight).abs() <= 4 * weight.abs() * (odds / draws).sqrt() + 1e-12).all())
    assert bool(((square / draws - weight ** 2).abs() <= 4 * weight ** 2 * (odds / draws).sqrt() + 1e-12).all())
    # the budget: the probabilities sum to the expected count, and so does the mean kept count
    scores = torch.rand(50, 50, generator=torch.Generator().manual_seed(6), dtype=F64)
    scores.fill_diagonal_(0.0)
    probabilities = noise_prune_probabilities(scores, 300.0)
    assert float(probabilities.sum()) == pytest.approx(300.0, rel=1e-9)
    counts = [int(sample_synapses(torch.ones(50, 50, dtype=F64), probabilities,
                                  generator=torch.Generator().manual_seed(s))[1].sum()) for s in range(200)]
    sd_of_mean = math.sqrt(float((probabilities * (1 - probabilities)).sum()) / len(counts))
    assert abs(sum(counts) / len(counts) - 300.0) <= 4 * sd_of_mean


# ------------------------------------------------------------------------------------------- stability, LNP
def test_stabilize_brings_the_exponent_under_the_target(small_lif_network):
    weight, decay, currents = small_lif_network(gain=4.0)
    before = float(network_lyapunov_spectrum(weight, decay, currents, 1, slope=6.0).exponents[0])
    assert before > 0
    scaled, scale, after = stabilize(weight, decay, currents, 0.0, slope=6.0)
    assert after <= 0.0 and 0 < scale < 1
    torch.testing.assert_close(scaled, scale * weight)
    same, one, _ = stabilize(scaled, decay, currents, 0.0, slope=6.0)
    assert one == 1.0 and torch.equal(same, scaled)


def test_scale_to_lyapunov_hits_the_target(small_lif_network):
    weight, decay, currents = small_lif_network(gain=2.0)
    _, scale, value = scale_to_lyapunov(weight, decay, currents, -0.02, tol=0.003, slope=6.0)
    assert abs(value + 0.02) <= 0.003 and scale > 0


def _scale_probe(monkeypatch, exponent):
    """Replace the network's exponent by ``exponent(c)`` of the scale ``c = weight[0, 0]``; returns the calls."""
    calls = []

    def spectrum(weight, *args, **kwargs):
        calls.append(float(weight[0, 0]))
        return LyapunovSpectrum(torch.tensor([exponent(float(weight[0, 0]))], dtype=F64), None, None)

    monkeypatch.setattr(lnp_module, "network_lyapunov_spectrum", spectrum)
    return calls


def test_scale_to_lyapunov_keeps_a_scale_of_one_already_within_tolerance(monkeypatch):
    calls = _scale_probe(monkeypatch, lambda c: -0.05 + 0.01 * c)  # c = 1: -0.04
    one = torch.ones(1, 1, dtype=F64)
    scaled, scale, value = scale_to_lyapunov(one, one, one, -0.043, tol=0.005)
    assert scale == 1.0 and value == pytest.approx(-0.04) and calls == [1.0] and torch.equal(scaled, one)
    # out of tolerance: bracketed by halving, then bisected on a log scale until within it
    calls.clear()
    _, scale, value = scale_to_lyapunov(one, one, one, -0.046, tol=0.0005)
    assert calls[:3] == [1.0, 0.5, 0.25] and calls[3] == pytest.approx(math.sqrt(0.125)) and len(calls) == 4
    assert scale == calls[3] and abs(value + 0.046) <= 0.0005


def test_scale_to_lyapunov_stops_at_the_floor_instead_of_removing_the_recurrence(monkeypatch):
    calls = _scale_probe(monkeypatch, lambda c: max(-0.04 + 0.02 * c, -0.03))  # the leak's floor: -0.03
    one = torch.ones(1, 1, dtype=F64)
    _, scale, value = scale_to_lyapunov(one, one, one, -0.1, tol=0.005)
    # c = 1 (-0.02), 0.5 (-0.03), 0.25 (-0.03: no longer moves) -> stop; the tie goes to the scale nearer 1
    assert calls == [1.0, 0.5, 0.25] and scale == 0.5 and value == pytest.approx(-0.03)
    calls = _scale_probe(monkeypatch, lambda c: min(-0.04 + 0.02 * c, 0.0))  # and a ceiling when scaling up
    _, scale, value = scale_to_lyapunov(one, one, one, 0.5, tol=0.005)
    assert calls == [1.0, 2.0, 4.0] and scale == 2.0 and value == 0.0


def test_lyapunov_noise_prune_counts_zeros_and_stability(small_lif_network):
    weight, decay, currents = small_lif_network(n=30, gain=3.0)
    config = LNPConfig(synapse_fraction=0.3, neuron_fraction=0.5, slope=6.0, warmup=50)
    result = lyapunov_noise_prune(weight, decay, currents, config, generator=torch.Generator().manual_seed(0))
    assert int(result.neuron_mask.sum()) == 15
    removed = ~result.neuron_mask
    assert bool((result.weight[removed] == 0).all()) and bool((result.weight[:, removed] == 0).all())
    assert torch.equal(result.weight != 0, result.synapse_mask)
    assert result.synapse_mask.sum() < 0.3 * 30 * 29
    target = min(result.lyapunov_dense, 0.0)
    assert result.lyapunov_pruned <= target
    kept = result.neuron_mask
    recomputed = network_lyapunov_spectrum(result.weight[kept][:, kept], decay[kept], currents[:, kept], 1,
                                           warmup=50, slope=6.0, generator=torch.Generator().manual_seed(0))
    assert float(recomputed.exponents[0]) == pytest.approx(result.lyapunov_pruned)
    again = lyapunov_noise_prune(weight, decay, currents, config, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.weight, result.weight)
    assert result.lyapunov_pruned <= result.lyapunov_target


def test_stability_target_by_hand():
    assert stability_target(-0.04, -0.05) == -0.04  # reachable: at least as stable as the dense network
    assert stability_target(-0.04, -0.04) == -0.04
    assert stability_target(-0.04, -0.03) == 0.0  # below the uncoupled neurons' floor: only "stable"
    assert stability_target(0.1, -0.2) == 0.0  # a chaotic dense network: stable
    assert stability_target(0.1, 0.05) == 0.0  # unreachable either way (stabilize then raises)


def test_smallest_stabilize_scale_is_the_last_factor_tried():
    assert smallest_stabilize_scale() == pytest.approx(0.85 ** 40, rel=1e-12)
    assert smallest_stabilize_scale(0.5, 3) == 0.125


def _fake_spectrum(dense_exponent: float, floor: float, dense_size: int):
    """A stand-in for network_lyapunov_spectrum: the dense network has ``dense_exponent``; a smaller one
    has ``floor + ||W||_F`` (so scaling its weights to 0 reaches exactly ``floor``)."""
    def spectrum(weight, decay, currents, k, **kwargs):
        value = dense_exponent if weight.shape[0] == dense_size else floor + float(weight.norm())
        return LyapunovSpectrum(torch.tensor([value], dtype=F64), None, weight.new_zeros(weight.shape[0]))
    return spectrum


# -0.03: the dense exponent equals the uncoupled limit, which stabilize's smallest factor cannot quite reach
@pytest.mark.parametrize("dense_exponent, expected_target", [(-0.05, 0.0), (-0.03, 0.0), (-0.01, -0.01)])
def test_lnp_bound_falls_back_to_zero_only_below_the_uncoupled_floor(small_lif_network, monkeypatch, dense_exponent,
                                                                     expected_target):
    weight, decay, currents = small_lif_network(n=20, gain=3.0)
    monkeypatch.setattr(lnp_module, "network_lyapunov_spectrum", _fake_spectrum(dense_exponent, -0.03, 20))
    config = LNPConfig(synapse_fraction=0.5, neuron_fraction=0.5, slope=6.0, warmup=20)
    result = lyapunov_noise_prune(weight, decay, currents, config, generator=torch.Generator().manual_seed(0))
    assert result.lyapunov_dense == dense_exponent and result.lyapunov_sampled > 0
    assert result.lyapunov_target == expected_target
    assert result.lyapunov_pruned <= expected_target and 0 < result.scale < 1
    kept = result.neuron_mask
    assert -0.03 + float(result.weight[kept][:, kept].norm()) == pytest.approx(result.lyapunov_pruned)
    # an explicit target is never relaxed: below the floor it cannot be met
    with pytest.raises(ValueError, match="could not bring the largest Lyapunov exponent below -0.05"):
        lyapunov_noise_prune(weight, decay, currents, LNPConfig(synapse_fraction=0.5, neuron_fraction=0.5,
                                                                slope=6.0, warmup=20, lyapunov_target=-0.05),
                             generator=torch.Generator().manual_seed(0))


def test_activity_and_random_pruning_hit_exact_counts():
    weight = torch.tensor([[0.0, 5.0, 1.0, 2.0], [3.0, 0.0, -4.0, 0.5], [1.0, 1.0, 0.0, 9.0], [2.0, -6.0, 1.5, 0.0]])
    activity = torch.tensor([0.3, 0.1, 0.5, 0.4])
    pruned, neurons, synapses = activity_prune(weight, activity, 3, 4)
    assert neurons.tolist() == [True, False, True, True]  # neuron 1 is the least active
    expected = torch.zeros(4, 4)
    for i, j in [(2, 3), (0, 3), (3, 0), (3, 2)]:  # |9|, |2|, |2|, |1.5| among neurons {0, 2, 3}
        expected[i, j] = weight[i, j]
    assert torch.equal(pruned, expected) and int(synapses.sum()) == 4
    pruned, neurons, synapses = activity_prune(weight, activity, 3, None)  # neurons only: all their synapses
    kept = torch.tensor([True, False, True, True])
    assert neurons.tolist() == kept.tolist() and int(synapses.sum()) == 6
    assert torch.equal(pruned, weight * (kept[:, None] & kept[None, :]))
    big = torch.randn(50, 50, generator=torch.Generator().manual_seed(0))
    pruned, neurons, synapses = random_prune(big, 20, 100, generator=torch.Generator().manual_seed(1))
    assert int(neurons.sum()) == 20 and int((pruned != 0).sum()) == 100 and int(synapses.sum()) == 100
    assert bool((pruned[~neurons] == 0).all())



def test_bad_arguments_name_themselves(small_lif_network):
    weight, decay, currents = small_lif_network()
    with pytest.raises(ValueError, match="synapse_fraction"):
        lyapunov_noise_prune(weight, decay, currents, LNPConfig(synapse_fraction=0.0),
                             generator=torch.Generator())
    with pytest.raises(ValueError, match="rescale"):
        sample_synapses(weight, torch.ones_like(weight) * 0.5, generator=torch.Generator(), rescale="half")
    with pytest.raises(ValueError, match="neuron_count"):
        activity_prune(weight, torch.ones(12), 13, 1)
