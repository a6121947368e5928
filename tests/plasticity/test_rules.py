"""Plasticity rules against values computed by hand, element by element."""

import pytest
import torch

from neuroplastic.plasticity import (
    BCMRule,
    ClippedHebbianRule,
    bcm_threshold_update,
    bcm_update,
    clipped_hebbian_update,
    hebbian_update,
    make_rule,
    oja_update,
    soft_bounded_update,
)

# One batch element, two inputs, two outputs: small enough to write every number by hand.
TRACE = torch.tensor([[[0.5, -1.0], [0.0, 2.0]]])
PRE = torch.tensor([[1.0, 2.0]])
POST = torch.tensor([[3.0, -1.0]])


def test_hebbian_update_by_hand():
    # H <- (1 - eta) H + eta pre ⊗ post, eta = 0.1; pre ⊗ post = [[3, -1], [6, -2]]
    expected = torch.tensor([[[0.9 * 0.5 + 0.3, 0.9 * -1.0 - 0.1], [0.6, 0.9 * 2.0 - 0.2]]])
    assert torch.allclose(hebbian_update(TRACE, PRE, POST, 0.1), expected)


def test_oja_update_by_hand():
    # H_ij <- H_ij + eta post_j (pre_i - post_j H_ij), eta = 0.1
    h00 = 0.5 + 0.1 * 3.0 * (1.0 - 3.0 * 0.5)
    h01 = -1.0 + 0.1 * -1.0 * (1.0 - (-1.0) * (-1.0))
    h10 = 0.0 + 0.1 * 3.0 * (2.0 - 3.0 * 0.0)
    h11 = 2.0 + 0.1 * -1.0 * (2.0 - (-1.0) * 2.0)
    expected = torch.tensor([[[h00, h01], [h10, h11]]])
    assert torch.allclose(oja_update(TRACE, PRE, POST, 0.1), expected)


def test_bcm_update_and_threshold_by_hand():
    threshold = torch.tensor([[1.0, 0.5]])
    new_threshold = bcm_threshold_update(threshold, POST, 0.5)
    assert torch.allclose(new_threshold, torch.tensor([[0.5 * 1.0 + 0.5 * 9.0, 0.5 * 0.5 + 0.5 * 1.0]]))
    # dH_ij = eta pre_i post_j (post_j - theta_j) with theta = [5, 0.75]
    factor = torch.tensor([3.0 * (3.0 - 5.0), -1.0 * (-1.0 - 0.75)])
    expected = TRACE + 0.1 * torch.tensor([[[1.0 * factor[0], 1.0 * factor[1]], [2.0 * factor[0], 2.0 * factor[1]]]])
    assert torch.allclose(bcm_update(TRACE, PRE, POST, 0.1, new_threshold), expected)
    trace, theta = BCMRule(threshold_decay=0.5)(TRACE, PRE, POST, 0.1, threshold)
    assert torch.allclose(theta, new_threshold) and torch.allclose(trace, expected)


def test_bcm_rule_potentiates_above_threshold_and_depresses_below():
    rule = BCMRule(threshold_decay=0.01)
    pre = torch.ones(1, 1)
    trace = torch.zeros(1, 1, 1)
    threshold = torch.full((1, 1), 1.0)
    up, _ = rule(trace, pre, torch.full((1, 1), 2.0), 0.1, threshold)
    down, _ = rule(trace, pre, torch.full((1, 1), 0.5), 0.1, threshold)
    assert up.item() > 0 > down.item()


def test_clipped_update_by_hand():
    expected = torch.tensor([[[0.5 + 0.5 * 3.0, -1.0 - 0.5], [3.0, 2.0 - 1.0]]]).clamp(-2.0, 2.0)
    assert torch.allclose(clipped_hebbian_update(TRACE, PRE, POST, 0.5, 2.0), expected)
    assert clipped_hebbian_update(TRACE, PRE, 100 * POST, 1.0, 2.0).abs().max() == 2.0


def test_soft_bounded_update_by_hand():
    eta = 0.1
    trace = torch.tensor([[[0.5, -0.5], [0.0, 0.9]]])
    delta = eta * torch.tensor([[3.0, -1.0], [6.0, -2.0]])
    expected = torch.empty(2, 2)
    for i in range(2):
        for j in range(2):
            h, d = trace[0, i, j].item(), delta[i, j].item()
            expected[i, j] = h + (d * (1 - h) if d > 0 else d * (h + 1))
    assert torch.allclose(soft_bounded_update(trace, PRE, POST, eta), expected.unsqueeze(0))


def test_soft_bounds_keep_trace_inside_unit_interval():
    # The invariant holds while |eta pre post| <= 1, e.g. tanh activities and eta <= 1.
    trace = torch.zeros(4, 3, 3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        pre, post = torch.randn(4, 3, generator=gen).tanh(), torch.randn(4, 3, generator=gen).tanh()
        trace = soft_bounded_update(trace, pre, post, 0.3)
    assert trace.abs().max() <= 1.0


@pytest.mark.parametrize("rate_shape", [(), (2,), (1, 2), (1, 1)])
def test_rates_broadcast_along_post_synaptic_index(rate_shape):
    rate = torch.full(rate_shape, 0.1) if rate_shape else torch.tensor(0.1)
    assert torch.allclose(hebbian_update(TRACE, PRE, POST, rate), hebbian_update(TRACE, PRE, POST, 0.1))


def test_per_neuron_rate_scales_each_column():
    rate = torch.tensor([0.1, 0.0])
    out = clipped_hebbian_update(TRACE, PRE, POST, rate, 10.0)
    assert torch.equal(out[0, :, 1], TRACE[0, :, 1])  # zero rate: column unchanged
    assert torch.allclose(out[0, :, 0], TRACE[0, :, 0] + 0.1 * PRE[0] * POST[0, 0])


def test_bad_rate_shape_names_the_accepted_shapes():
    with pytest.raises(ValueError, match=r"rate must be a scalar, \[O\], \[B\]"):
        hebbian_update(TRACE, PRE, POST, torch.ones(3, 5))


def test_make_rule_names_and_errors():
    assert isinstance(make_rule("clip", clip=1.5), ClippedHebbianRule)
    assert make_rule("clip", clip=1.5).clip == 1.5
    with pytest.raises(ValueError, match="rule must be one of 'hebbian', 'oja', 'bcm', 'clip', 'soft_bound'"):
        make_rule("stdp")
    with pytest.raises(ValueError, match="clip must be > 0"):
        make_rule("clip", clip=0.0)
