"""LIF/ALIF/recurrent/readout modules against literal loops of the step functions; init, state, layout errors."""

import math

import pytest
import torch

from neuroplastic.neurons import (
    ALIF,
    LIF,
    ALIFCell,
    LeakyReadout,
    LIFCell,
    LIFState,
    RecurrentLIF,
    RecurrentLIFState,
    alif_step,
    lif_step,
)

D = torch.float64


def test_lif_cell_is_lif_step_with_the_module_parameters():
    cell = LIFCell(4, tau=2.0, threshold=0.8, reset="hard", v_reset=-0.1).double()
    x = torch.tensor([[0.5, 1.0, 0.1, 0.9]], dtype=D)
    spike, state = cell(x)
    ref_spike, ref_v = lif_step(torch.zeros_like(x), x, math.exp(-0.5), 0.8, reset="hard", v_reset=-0.1)
    assert torch.equal(spike, ref_spike) and torch.allclose(state.v, ref_v)
    spike2, state2 = cell(x, state)
    ref2 = lif_step(ref_v, x, math.exp(-0.5), 0.8, reset="hard", v_reset=-0.1)
    assert torch.equal(spike2, ref2[0]) and torch.allclose(state2.v, ref2[1])


def test_lif_over_a_sequence_by_hand():
    # tau such that decay = 0.5, threshold 1, soft reset: the hand sequence of test_lif.py
    lif = LIF(1, tau=1 / math.log(2.0), backend="fused").double()
    x = torch.tensor([0.6, 0.6, 0.6, 1.5, 0.0], dtype=D).view(1, 5, 1)
    spikes, state = lif(x)
    assert spikes.flatten().tolist() == [0, 0, 1, 1, 0]
    assert state.v.item() == pytest.approx(0.2625)


def test_heterogeneous_tau_is_log_uniform_in_range_reproducible_and_learnable():
    make = lambda seed: LIF(2000, heterogeneous=True, tau_range=(2.0, 50.0), learn_tau=True,  # noqa: E731
                            generator=torch.Generator().manual_seed(seed))
    a, b, c = make(0), make(0), make(1)
    assert torch.equal(a.tau, b.tau) and not torch.equal(a.tau, c.tau)
    assert a.tau.min() >= 2.0 - 1e-5 and a.tau.max() <= 50.0 + 1e-4
    # log-uniform: the median of log(tau) is near the middle of [log 2, log 50]
    assert a.log_tau.median().item() == pytest.approx((math.log(2) + math.log(50)) / 2, abs=0.1)
    spikes, _ = a(torch.rand(3, 8, 2000) * 2)
    spikes.sum().backward()
    assert a.log_tau.grad is not None and a.log_tau.grad.abs().sum() > 0
    assert LIF(5, tau=3.0, heterogeneous=True).tau.min() >= 1.5  # default range (tau / 2, 2 tau)
    fixed = LIF(3, tau=torch.tensor([1.0, 2.0, 4.0]))
    assert "log_tau" in dict(fixed.named_buffers()) and fixed.tau.tolist() == pytest.approx([1.0, 2.0, 4.0])


def test_alif_module_equals_a_loop_of_alif_step():
    alif = ALIF(3, tau=4.0, tau_adapt=20.0, beta=0.5, threshold=1.0).double()
    x = torch.rand(2, 7, 3, dtype=D, generator=torch.Generator().manual_seed(0)) * 1.5
    spikes, state = alif(x)
    v = b = torch.zeros(2, 3, dtype=D)
    for t in range(7):
        s, v, b = alif_step(v, b, x[:, t], math.exp(-1 / 4), math.exp(-1 / 20), 1.0, 0.5)
        assert torch.equal(spikes[:, t], s)
    assert torch.allclose(state.v, v) and torch.allclose(state.b, b)
    assert spikes.sum() > 0
    cell = ALIFCell(3, tau=4.0, tau_adapt=20.0, beta=0.5).double()
    assert torch.equal(cell(x[:, 0])[0], spikes[:, 0])


def test_recurrent_lif_equals_a_literal_loop():
    torch.manual_seed(0)
    layer = RecurrentLIF(3, 5, tau=3.0, threshold=0.5).double()
    with torch.no_grad():
        layer.recurrent_linear.weight.mul_(3.0)
    x = torch.rand(2, 9, 3, dtype=D, generator=torch.Generator().manual_seed(1)) * 2
    spikes, state = layer(x)
    w_in, b_in = layer.input_linear.weight, layer.input_linear.bias
    w_rec = layer.recurrent_linear.weight
    v = s = torch.zeros(2, 5, dtype=D)
    for t in range(9):
        current = x[:, t] @ w_in.T + b_in + s @ w_rec.T
        s, v = lif_step(v, current, math.exp(-1 / 3), 0.5)
        assert torch.equal(spikes[:, t], s)
    assert torch.allclose(state.v, v) and torch.equal(state.spike, s)
    assert 0 < spikes.mean() < 1
    # continuing from the state equals running on
    first, mid = layer(x[:, :4])
    second, _ = layer(x[:, 4:], mid)
    assert torch.equal(torch.cat([first, second], 1), spikes)
    adaptive = RecurrentLIF(3, 5, adaptive=True, beta=0.3)
    out, st = adaptive(x.float())
    assert out.shape == (2, 9, 5) and st.b is not None


def test_leaky_readout_by_hand():
    readout = LeakyReadout(2, tau=1 / math.log(2.0)).double()  # decay 0.5
    x = torch.tensor([[[1.0, 0.0], [1.0, 2.0], [0.0, 0.0]]], dtype=D)
    v, state = readout(x)
    expected = torch.tensor([[1.0, 0.0], [1.5, 2.0], [0.75, 1.0]], dtype=D)
    torch.testing.assert_close(v[0], expected, rtol=1e-7, atol=1e-7)  # tau stored in float32, then doubled
    torch.testing.assert_close(state.v[0], expected[-1], rtol=1e-7, atol=1e-7)


def test_time_major_input_with_a_state_is_a_layout_error():
    lif = LIF(8)
    x = torch.rand(4, 10, 8)  # [B=4, T=10, N]
    _, state = lif(x)
    with pytest.raises(ValueError, match=r"layout must be \[B, T, \.\.\.\].*x.shape\[1\]"):
        lif(x.transpose(0, 1), state)  # [T=10, B=4, N] with a batch-4 state
    rec = RecurrentLIF(8, 6)
    _, rstate = rec(x)
    with pytest.raises(ValueError, match=r"layout must be \[B, T, \.\.\.\]"):
        rec(x.transpose(0, 1), rstate)
    with pytest.raises(ValueError, match=r"batch size 4 but x .* has batch size 3"):
        lif(torch.rand(3, 10, 8), state)


def test_other_bad_inputs_and_arguments_name_what_is_accepted():
    lif = LIF(8)
    with pytest.raises(ValueError, match=r"layout \[B, T, 8\], got shape \[4, 8\].*goes to the Cell"):
        lif(torch.rand(4, 8))
    with pytest.raises(ValueError, match=r"layout \[B, T, 8\], got shape \[4, 10, 7\]"):
        lif(torch.rand(4, 10, 7))
    with pytest.raises(ValueError, match=r"LIFCell: x must have the layout \[B, 8\].*sequence module"):
        LIFCell(8)(torch.rand(4, 10, 8))
    with pytest.raises(ValueError, match="tau must be a finite number > 0, got -1"):
        LIF(3, tau=-1.0)
    with pytest.raises(ValueError, match=r"tau must be a finite number > 0, got 0.0 \(an entry of a tensor "
                                         r"of shape \[3\]\)"):
        LIF(3, tau=torch.tensor([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="threshold must be a finite number > 0"):
        LIF(3, threshold=0.0)
    with pytest.raises(ValueError, match="reset must be one of 'hard', 'soft', 'none'; got 'zero'"):
        LIF(3, reset="zero")
    with pytest.raises(ValueError, match="backend must be one of 'fused', 'step'"):
        LIF(3, backend="cuda")
    with pytest.raises(ValueError, match="surrogate must be .*'atan'"):
        LIF(3, surrogate="tanh")
    with pytest.raises(ValueError, match="tau_range must be"):
        LIF(3, heterogeneous=True, tau_range=(5.0, 1.0))
    with pytest.raises(ValueError, match="tau_range is only used with heterogeneous=True"):
        LIF(3, tau_range=(1.0, 5.0))
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        ALIF(3, beta=-0.1)
    with pytest.raises(ValueError, match="hidden_size must be an int >= 1, got 0"):
        RecurrentLIF(3, 0)
    with pytest.raises(ValueError, match="size must be a non-empty sequence of ints >= 1 or an int >= 1, got 0"):
        LIF(0)


def test_states_are_named_tuples_batch_first():
    cell = LIFCell(5)
    state = cell.initial_state(3)
    assert isinstance(state, LIFState) and state.v.shape == (3, 5)
    rec_state = RecurrentLIF(2, 5).initial_state(3)
    assert isinstance(rec_state, RecurrentLIFState) and rec_state.spike.shape == (3, 5) and rec_state.b is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, "0"])
def test_v_reset_must_be_a_finite_number(value):
    from neuroplastic.neurons import LIF

    with pytest.raises((ValueError, TypeError), match="v_reset"):
        LIF(4, v_reset=value)
    assert LIF(4, v_reset=-0.5).v_reset == -0.5
