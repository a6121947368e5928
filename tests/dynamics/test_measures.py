"""Measures of driven dynamics: ridge readout, memory capacity, Jacobian Lyapunov exponent, AIS and TE."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from neuroplastic.dynamics import (
    EchoStateNetwork,
    active_information_storage,
    discretize,
    jacobian_lyapunov_exponent,
    memory_capacity,
    perturbation_lyapunov_exponent,
    random_reservoir,
    ridge_regression,
    simulate,
    transfer_entropy,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_ridge_regression_equals_a_lstsq_reference():
    x = torch.randn(80, 5, generator=gen(0), dtype=torch.float64)
    y = x @ torch.randn(5, 3, generator=gen(1), dtype=torch.float64) + 0.1 * torch.randn(80, 3, generator=gen(2),
                                                                                        dtype=torch.float64)
    design = torch.cat([x, torch.ones(80, 1, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(ridge_regression(x, y, 0.0), torch.linalg.lstsq(design, y).solution)
    # ridge > 0: the bias is free, the weights shrink: lstsq of the centred samples stacked on sqrt(ridge) I
    ridge = 3.0
    xc, yc = x - x.mean(0), y - y.mean(0)
    stacked = torch.cat([xc, math.sqrt(ridge) * torch.eye(5, dtype=torch.float64)])
    w = torch.linalg.lstsq(stacked, torch.cat([yc, torch.zeros(5, 3, dtype=torch.float64)])).solution
    got = ridge_regression(x, y, ridge)
    torch.testing.assert_close(got[:-1], w)
    torch.testing.assert_close(got[-1], y.mean(0) - x.mean(0) @ w)
    torch.testing.assert_close(ridge_regression(x, y, ridge, bias=False),
                               torch.linalg.solve(x.T @ x + ridge * torch.eye(5, dtype=torch.float64), x.T @ y))


def shift_register(u: torch.Tensor, n: int, lag: int) -> torch.Tensor:
    """States of a delay line: unit i holds u(t - lag - i) (a linear network whose units copy the previous unit,
    the first getting the input ``lag`` steps late); zeros before the start."""
    states = torch.zeros(len(u), n, dtype=torch.float64)
    for t in range(len(u)):
        for i in range(n):
            if t - lag - i >= 0:
                states[t, i] = u[t - lag - i]
    return states


@pytest.mark.parametrize(("lag", "perfect"), [(1, 10), (0, 9)])
def test_memory_capacity_of_a_delay_line(lag, perfect):
    n, k_max, steps = 10, 30, 4000
    u = torch.rand(steps, generator=gen(3), dtype=torch.float64) * 1.6 - 0.8
    mc = memory_capacity(shift_register(u, n, lag), u, k_max, washout=n, ridge=1e-10)
    # delays the register holds are recalled exactly; each other delay scores the squared correlation of
    # independent series, expected 1 / (test samples) ~ 5e-4 each: about 0.01 for the 20+ of them, with
    # correlated fluctuations (neighbouring delays share one series; 0.002 to 0.06 over seeds), bounded by 0.1
    assert mc.per_delay[:perfect].min() > 1 - 1e-8
    assert mc.per_delay[perfect:].max() < 0.02
    assert perfect <= mc.total < perfect + 0.1
    assert mc.per_delay.shape == (k_max,)


def test_memory_capacity_with_earlier_inputs_as_targets():
    u = torch.rand(600, generator=gen(4), dtype=torch.float64) * 1.6 - 0.8
    states = shift_register(u, 5, 1)[100:]  # the states never saw the first 100 inputs ...
    mc = memory_capacity(states, u, 5, ridge=1e-10)  # ... which serve as delayed targets from step 0 on
    assert mc.total == pytest.approx(5.0, abs=1e-6)


def test_memory_capacity_of_the_spiking_reservoir_runs():
    net = random_reservoir(20, inputs=1, tau_mean=4.0, tau_shape=3, recurrent_gain=1.0, input_gain=2.0,
                           bias_max=0.5, generator=gen(5))
    u = torch.rand(1, 500, 1, generator=gen(6)) * 1.6 - 0.8
    traces, _ = simulate(net, u, trace_tau=3.0)
    mc = memory_capacity(traces[0], u[0, :, 0], 10, washout=50, ridge=1e-4)
    assert 0.0 < mc.total <= 10.0


def test_lyapunov_exponent_of_a_linear_map_is_log_spectral_radius():
    a = torch.randn(6, 6, generator=gen(7), dtype=torch.float64) / math.sqrt(6)
    rho = float(torch.linalg.eigvals(a).abs().max())
    slopes = torch.ones(2, 3000, 6, dtype=torch.float64)
    lam = jacobian_lyapunov_exponent(a, slopes, washout=200)
    torch.testing.assert_close(lam, torch.full((2,), math.log(rho), dtype=torch.float64), atol=2e-3, rtol=0)
    leaky = (1 - 0.3) * torch.eye(6, dtype=torch.float64) + 0.3 * a
    lam = jacobian_lyapunov_exponent(a, slopes, leak=0.3, washout=200)
    assert float(lam[0]) == pytest.approx(math.log(float(torch.linalg.eigvals(leaky).abs().max())), abs=2e-3)


def test_jacobian_exponent_agrees_with_two_trajectories_on_an_esn():
    esn = EchoStateNetwork(1, 20, spectral_radius=1.5, input_scaling=0.5, leak=0.7, generator=gen(8)).double()
    esn.gain.fill_(1.3)
    u = torch.rand(1, 1500, 1, generator=gen(9), dtype=torch.float64) * 1.6 - 0.8
    _, slopes = esn.run(u, return_slopes=True)
    jac = float(jacobian_lyapunov_exponent(esn.weight, slopes, leak=0.7, washout=300)[0])
    two = perturbation_lyapunov_exponent(esn.step, torch.zeros(20, dtype=torch.float64), 1200, inputs=u[0],
                                         warmup=300)
    assert jac == pytest.approx(two, abs=0.01)


def plug_in_mi(pairs):
    """I(a; b) in bits from a list of (a, b) by counting (the slow reference)."""
    n = len(pairs)
    joint, left, right = Counter(pairs), Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    return sum(c / n * math.log2((c / n) / (left[a] / n * right[b] / n)) for (a, b), c in joint.items())


def test_active_information_storage_hand_computed():
    x = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1, 0])
    assert active_information_storage(x, 1) == pytest.approx(0.0, abs=1e-12)  # 4 equally likely pairs
    # k = 2: the next value is a function of the last two; 4 ones and 3 zeros follow
    h = -(4 / 7 * math.log2(4 / 7) + 3 / 7 * math.log2(3 / 7))
    assert active_information_storage(x, 2) == pytest.approx(h)
    y = torch.randint(0, 3, (300,), generator=gen(10))
    pairs = [(tuple(y[t - 1:t + 1].tolist()), int(y[t + 1])) for t in range(1, 299)]
    assert active_information_storage(y, 2) == pytest.approx(plug_in_mi(pairs))


def test_transfer_entropy_hand_computed():
    y = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0])
    x = torch.cat([torch.tensor([0]), y[:-1]])  # x_{t+1} = y_t: the source determines the target's next value
    triples = [(int(x[t]), int(y[t]), int(x[t + 1])) for t in range(len(x) - 1)]
    n = len(triples)

    def h(keys):
        counts = Counter(keys)
        return -sum(c / n * math.log2(c / n) for c in counts.values())

    expected = (h([(a, c) for a, _, c in triples]) - h([a for a, _, _ in triples])
                - h(triples) + h([(a, b) for a, b, _ in triples]))
    assert transfer_entropy(y, x, 1) == pytest.approx(expected)
    assert expected > 0.5
    # an independent source transfers (almost) nothing; TE is never negative
    z = torch.randint(0, 2, (4000,), generator=gen(11))
    w = torch.randint(0, 2, (4000,), generator=gen(12))
    assert 0.0 <= transfer_entropy(z, w, 1) < 0.01


def test_discretize_bins_equal_width():
    x = torch.tensor([[0.0, 0.24, 0.26, 0.5, 0.74, 1.0], [3.0, 3.0, 3.0, 3.0, 3.0, 3.0]])
    assert discretize(x, 4).tolist() == [[0, 0, 1, 2, 2, 3], [0] * 6]


def test_bad_inputs_are_refused(library_error):
    u = torch.rand(100, dtype=torch.float64)
    states = torch.rand(100, 4, dtype=torch.float64)
    with library_error() as info:
        memory_capacity(states, u[:50], 5)
    assert info.match("inputs")
    with library_error() as info:
        memory_capacity(states, u, 0)
    assert info.match("k_max")
    with library_error() as info:
        memory_capacity(states, u, 5, washout=99)
    assert info.match("training")
    with library_error() as info:
        ridge_regression(states, u[:, None], float("nan"))
    assert info.match("ridge")
    with library_error() as info:
        jacobian_lyapunov_exponent(torch.eye(3), torch.ones(1, 5, 4))
    assert info.match("slopes")
    with library_error() as info:
        active_information_storage(torch.tensor([0.5, 1.0, 0.0]))
    assert info.match("integer")
    with library_error() as info:
        transfer_entropy(torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 1]))
    assert info.match("one length")
    with library_error() as info:
        discretize(torch.tensor([0.0, float("inf")]), 4)
    assert info.match("finite")
