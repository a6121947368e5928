"""Lyapunov exponents (QR and two-trajectory) on maps with known exponents, the smooth LIF map, and LNP."""

from __future__ import annotations

import math
from collections import deque

import pytest
import torch

from neuroplastic.neurons import lif_step
from neuroplastic.runs.threads import torch_threads
from neuroplastic.structure import lyapunov as lyapunov_module
from neuroplastic.structure.lyapunov import (
    LNPConfig,
    LyapunovSpectrum,
    activity_prune,
    betweenness_centrality,
    discrete_lyapunov_covariance,
    lif_linearization,
    lyapunov_noise_prune,
    lyapunov_spectrum,
    network_lyapunov_spectrum,
    noise_prune_probabilities,
    noise_prune_scores,
    perturbation_lyapunov_exponent,
    prune_low_centrality,
    random_prune,
    sample_synapses,
    scale_to_lyapunov,
    smallest_stabilize_scale,
    smooth_lif_step,
    smooth_lif_tangent,
    stability_target,
    stabilize,
)

F64 = torch.float64
HENON_A, HENON_B = 1.4, 0.3


@pytest.fixture(autouse=True)
def one_thread():
    """Step-by-step loops over tiny tensors: one intra-op thread is much faster on a busy machine."""
    with torch_threads(1):
        yield


def henon(x):
    return torch.stack([1 - HENON_A * x[0] ** 2 + x[1], HENON_B * x[0]])


def henon_tangent(x, u, q):
    jac = torch.tensor([[-2 * HENON_A * float(x[0]), 1.0], [HENON_B, 0.0]], dtype=F64)
    return jac @ q


def logistic(x):
    return 4.0 * x * (1.0 - x)


def logistic_tangent(x, u, q):
    return (4.0 - 8.0 * x)[:, None] * q


# ------------------------------------------------------------------------------------------ known exponents
def test_linear_map_exponents_are_log_abs_eigenvalues():
    # Non-normal, eigenvalues 1.1, -0.6, 0.3 (distinct moduli).
    basis = torch.tensor([[1.0, 0.5, 0.2], [0.0, 1.0, 0.7], [0.3, 0.0, 1.0]], dtype=F64)
    a = basis @ torch.diag(torch.tensor([1.1, -0.6, 0.3], dtype=F64)) @ torch.linalg.inv(basis)
    result = lyapunov_spectrum(lambda x: a @ x, torch.ones(3, dtype=F64), 400, 3, method="jacrev")
    expected = torch.log(torch.tensor([1.1, 0.6, 0.3], dtype=F64))
    torch.testing.assert_close(result.exponents, expected, atol=0.01, rtol=0)


def test_logistic_map_at_r4_has_exponent_ln2():
    x0 = torch.tensor([0.3141], dtype=F64)
    qr = lyapunov_spectrum(logistic, x0, 8000, 1, warmup=100, tangent=logistic_tangent).exponents
    assert abs(float(qr[0]) - math.log(2)) < 0.02
    two = perturbation_lyapunov_exponent(logistic, x0, 5000, warmup=100, eps=1e-9)
    assert abs(two - math.log(2)) < 0.03


def test_henon_map_exponents_and_their_exact_sum():
    x0 = torch.tensor([0.1, 0.1], dtype=F64)
    result = lyapunov_spectrum(henon, x0, 8000, 2, warmup=100, tangent=henon_tangent, return_running=True)
    first, second = result.exponents.tolist()
    assert abs(first - 0.419) < 0.01
    assert abs(second - (-1.623)) < 0.01
    # |det J| = b at every step, so the exponents sum to ln b up to rounding, at any length.
    assert abs(first + second - math.log(HENON_B)) < 1e-10
    assert result.running.shape == (8000, 2)
    torch.testing.assert_close(result.running[-1].sort(descending=True).values, result.exponents)
    two = perturbation_lyapunov_exponent(henon, x0, 5000, warmup=100)
    assert abs(two - 0.419) < 0.02


def test_jacobian_methods_agree_with_the_analytic_tangent():
    x0 = torch.tensor([0.1, 0.1], dtype=F64)
    reference = lyapunov_spectrum(henon, x0, 60, 2, warmup=10, tangent=henon_tangent).exponents
    for method in ("jvp", "jacrev", "autograd"):
        torch.testing.assert_close(lyapunov_spectrum(henon, x0, 60, 2, warmup=10, method=method).exponents,
                                   reference, atol=1e-12, rtol=0)


def test_driven_map_uses_one_input_per_step():
    # x' = 0.5 x + u: the input does not change the exponent ln 0.5, but the final state is the filtered input.
    inputs = torch.arange(10, dtype=F64).reshape(10, 1)
    result = lyapunov_spectrum(lambda x, u: 0.5 * x + u, torch.zeros(1, dtype=F64), 7, 1, inputs=inputs, warmup=3,
                               method="jacrev")
    assert abs(float(result.exponents[0]) - math.log(0.5)) < 1e-12
    expected = 0.0
    for t in range(10):
        expected = 0.5 * expected + t
    assert float(result.state[0]) == pytest.approx(expected)


# ------------------------------------------------------------------------------------- smooth LIF network
def small_network(n=12, gain=1.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    weight = torch.randn(n, n, generator=gen, dtype=F64) * gain / math.sqrt(n)
    weight.fill_diagonal_(0.0)
    decay = torch.exp(-1.0 / (2.0 + 10.0 * torch.rand(n, generator=gen, dtype=F64)))
    currents = 0.6 * torch.randn(400, n, generator=gen, dtype=F64) + 0.4
    return weight, decay, currents


@pytest.mark.parametrize("reset", ["soft", "hard", "none"])
def test_smooth_lif_tangent_is_the_jacobian(reset):
    weight, decay, currents = small_network()
    h = 1.0 + 0.3 * torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=F64)
    kw = dict(threshold=1.0, slope=6.0, reset=reset, v_reset=0.2)
    jac = torch.func.jacrev(lambda x: smooth_lif_step(x, currents[0], weight, decay, **kw))(h)
    q = torch.randn(12, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    torch.testing.assert_close(smooth_lif_tangent(h, weight, decay, q, **kw), jac @ q)


def test_smooth_map_with_a_steep_sigmoid_is_the_spiking_network():
    weight, decay, currents = small_network()
    h_smooth = torch.zeros(12, dtype=F64)
    v, s = torch.zeros(12, dtype=F64), torch.zeros(12, dtype=F64)
    closest = math.inf
    for t in range(60):
        # lif_step: h = decay * v + x with x = I_t + W s_{t-1}; we compare h with the smooth map's state.
        h_spiking = decay * v + currents[t] + weight @ s
        s, v = lif_step(v, currents[t] + weight @ s, decay, 1.0, reset="soft")
        h_smooth = smooth_lif_step(h_smooth, currents[t], weight, decay, slope=1e5) if t else currents[0].clone()
        closest = min(closest, float((h_spiking - 1.0).abs().min()))
        torch.testing.assert_close(h_smooth, h_spiking, atol=1e-6, rtol=0)
    assert closest > 1e-3  # no state sat on the threshold, where the two would legitimately differ


def test_network_exponent_qr_matches_two_trajectories():
    weight, decay, currents = small_network(gain=3.0)
    qr = float(network_lyapunov_spectrum(weight, decay, currents, 3, warmup=50, slope=6.0).exponents[0])
    two = perturbation_lyapunov_exponent(lambda h, u: smooth_lif_step(h, u, weight, decay, slope=6.0),
                                         torch.zeros(12, dtype=F64), 350, inputs=currents, warmup=50)
    assert abs(qr - two) < 0.02


def test_linearization_averages_the_jacobian_along_the_run():
    weight, decay, currents = small_network()
    a, gain = lif_linearization(weight, decay, currents[:30], warmup=10, slope=6.0)
    h = torch.zeros(12, dtype=F64)
    jacobians = []
    for t in range(30):
        if t >= 10:
            jacobians.append(torch.func.jacrev(lambda x: smooth_lif_step(x, currents[0], weight, decay,
                                                                         slope=6.0))(h))
        h = smooth_lif_step(h, currents[t], weight, decay, slope=6.0)
    torch.testing.assert_close(a, torch.stack(jacobians).mean(0))
    assert gain.shape == (12,) and bool((gain >= 0).all())


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


# --------------------------------------------------------------------------------------------- centrality
def reference_betweenness(adjacency):
    """Slow literal definition: sum over ordered pairs s != t of sigma_st(v) / sigma_st."""
    n = adjacency.shape[0]
    succ = [[v for v in range(n) if v != u and adjacency[u, v]] for u in range(n)]
    dist, sigma = [], []
    for s in range(n):
        d, c = [-1] * n, [0] * n
        d[s], c[s] = 0, 1
        queue = deque([s])
        while queue:
            u = queue.popleft()
            for v in succ[u]:
                if d[v] < 0:
                    d[v] = d[u] + 1
                    queue.append(v)
                if d[v] == d[u] + 1:
                    c[v] += c[u]
        dist.append(d)
        sigma.append(c)
    out = [0.0] * n
    for s in range(n):
        for t in range(n):
            if s == t or dist[s][t] < 0:
                continue
            for v in range(n):
                if v in (s, t) or dist[s][v] < 0 or dist[v][t] < 0:
                    continue
                if dist[s][v] + dist[v][t] == dist[s][t]:
                    out[v] += sigma[s][v] * sigma[v][t] / sigma[s][t]
    return torch.tensor(out, dtype=F64)


def test_betweenness_matches_the_literal_definition():
    adjacency = torch.rand(25, 25, generator=torch.Generator().manual_seed(3)) < 0.12
    reference = reference_betweenness(adjacency)
    torch.testing.assert_close(betweenness_centrality(adjacency, normalized=False, chunk=7), reference)
    torch.testing.assert_close(betweenness_centrality(adjacency), reference / (24 * 23))


def test_betweenness_by_hand_and_networkx():
    path = torch.zeros(4, 4, dtype=torch.bool)
    path[0, 1] = path[1, 2] = path[2, 3] = True  # 0 -> 1 -> 2 -> 3
    torch.testing.assert_close(betweenness_centrality(path, normalized=False),
                               torch.tensor([0.0, 2.0, 2.0, 0.0], dtype=F64))
    nx = pytest.importorskip("networkx")
    adjacency = torch.rand(40, 40, generator=torch.Generator().manual_seed(4)) < 0.08
    graph = nx.DiGraph()
    graph.add_nodes_from(range(40))
    graph.add_edges_from((u, v) for u, v in adjacency.nonzero().tolist() if u != v)
    expected = nx.betweenness_centrality(graph, normalized=True)
    torch.testing.assert_close(betweenness_centrality(adjacency), torch.tensor([expected[i] for i in range(40)],
                                                                               dtype=F64))


def test_low_centrality_pruning_keeps_the_hub():
    n = 9
    weight = torch.zeros(n, n, dtype=F64)
    weight[0, 1:] = 1.0  # a star: every leaf talks to the hub 0 and back
    weight[1:, 0] = 1.0
    weight[1, 2] = weight[2, 1] = 1.0  # one leaf pair also talks directly
    mask, centrality = prune_low_centrality(weight, 3, rounds=2)
    assert int(mask.sum()) == 3 and bool(mask[0])
    assert float(centrality[0]) == float(centrality.max())


# ------------------------------------------------------------------------------------------- stability, LNP
def test_stabilize_brings_the_exponent_under_the_target():
    weight, decay, currents = small_network(gain=4.0)
    before = float(network_lyapunov_spectrum(weight, decay, currents, 1, slope=6.0).exponents[0])
    assert before > 0
    scaled, scale, after = stabilize(weight, decay, currents, 0.0, slope=6.0)
    assert after <= 0.0 and 0 < scale < 1
    torch.testing.assert_close(scaled, scale * weight)
    same, one, _ = stabilize(scaled, decay, currents, 0.0, slope=6.0)
    assert one == 1.0 and torch.equal(same, scaled)


def test_scale_to_lyapunov_hits_the_target():
    weight, decay, currents = small_network(gain=2.0)
    _, scale, value = scale_to_lyapunov(weight, decay, currents, -0.02, tol=0.003, slope=6.0)
    assert abs(value + 0.02) <= 0.003 and scale > 0


def _scale_probe(monkeypatch, exponent):
    """Replace the network's exponent by ``exponent(c)`` of the scale ``c = weight[0, 0]``; returns the calls."""
    calls = []

    def spectrum(weight, *args, **kwargs):
        calls.append(float(weight[0, 0]))
        return LyapunovSpectrum(torch.tensor([exponent(float(weight[0, 0]))], dtype=F64), None, None)

    monkeypatch.setattr(lyapunov_module, "network_lyapunov_spectrum", spectrum)
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


def test_lyapunov_noise_prune_counts_zeros_and_stability():
    weight, decay, currents = small_network(n=30, gain=3.0)
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
def test_lnp_bound_falls_back_to_zero_only_below_the_uncoupled_floor(monkeypatch, dense_exponent,
                                                                     expected_target):
    import neuroplastic.structure.lyapunov as module

    weight, decay, currents = small_network(n=20, gain=3.0)
    monkeypatch.setattr(module, "network_lyapunov_spectrum", _fake_spectrum(dense_exponent, -0.03, 20))
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
    big = torch.randn(50, 50, generator=torch.Generator().manual_seed(0))
    pruned, neurons, synapses = random_prune(big, 20, 100, generator=torch.Generator().manual_seed(1))
    assert int(neurons.sum()) == 20 and int((pruned != 0).sum()) == 100 and int(synapses.sum()) == 100
    assert bool((pruned[~neurons] == 0).all())


def test_bad_arguments_name_themselves():
    x0 = torch.zeros(2, dtype=F64)
    with pytest.raises(ValueError, match="k must be"):
        lyapunov_spectrum(henon, x0, 5, 3)
    with pytest.raises(ValueError, match="method"):
        lyapunov_spectrum(henon, x0, 5, method="finite")
    with pytest.raises(ValueError, match="inputs has 4 steps"):
        lyapunov_spectrum(lambda x, u: x, x0, 5, inputs=torch.zeros(4, 2))
    with pytest.raises(ValueError, match="num_steps"):
        perturbation_lyapunov_exponent(henon, x0, 0)
    weight, decay, currents = small_network()
    with pytest.raises(ValueError, match="decay must lie in"):
        network_lyapunov_spectrum(weight, decay * 0 + 1.0, currents)
    with pytest.raises(ValueError, match="reset"):
        network_lyapunov_spectrum(weight, decay, currents, reset="sideways")
    with pytest.raises(ValueError, match="synapse_fraction"):
        lyapunov_noise_prune(weight, decay, currents, LNPConfig(synapse_fraction=0.0),
                             generator=torch.Generator())
    with pytest.raises(ValueError, match="rescale"):
        sample_synapses(weight, torch.ones_like(weight) * 0.5, generator=torch.Generator(), rescale="half")
    with pytest.raises(ValueError, match="neuron_count"):
        activity_prune(weight, torch.ones(12), 13, 1)
