"""lif_step / alif_step against sequences computed by hand; reset modes, detach_reset, MPR, errors."""

import math

import pytest
import torch

from neuroplastic.neurons import FastSigmoid, alif_step, decay_from_tau, lif_step, membrane_rectifier

D = torch.float64
INPUTS = [0.6, 0.6, 0.6, 1.5, 0.0]


def run(reset, v_reset=0.0, decay=0.5, threshold=1.0):
    v = torch.zeros(1, 1, dtype=D)
    spikes, potentials = [], []
    for x in INPUTS:
        s, v = lif_step(v, torch.tensor([[x]], dtype=D), decay, threshold, reset=reset, v_reset=v_reset)
        spikes.append(s.item())
        potentials.append(v.item())
    return spikes, potentials


# decay 0.5, threshold 1: h_t = 0.5 v_{t-1} + x_t
HAND = {
    # h: 0.6, 0.9, 1.05 (spike), 0.025 + 1.5 = 1.525 (spike), 0.2625
    "soft": ([0, 0, 1, 1, 0], [0.6, 0.9, 0.05, 0.525, 0.2625]),
    # h: 0.6, 0.9, 1.05 (spike -> 0), 1.5 (spike -> 0), 0
    "hard": ([0, 0, 1, 1, 0], [0.6, 0.9, 0.0, 0.0, 0.0]),
    # h: 0.6, 0.9, 1.05, 2.025, 1.0125: every step past the threshold spikes
    "none": ([0, 0, 1, 1, 1], [0.6, 0.9, 1.05, 2.025, 1.0125]),
}


@pytest.mark.parametrize("reset", ["soft", "hard", "none"])
def test_sequences_by_hand(reset):
    spikes, potentials = run(reset)
    assert spikes == HAND[reset][0]
    assert potentials == pytest.approx(HAND[reset][1], abs=1e-12)


def test_hard_reset_goes_to_v_reset():
    # h: 0.6, 0.9, 1.05 (spike -> -0.2), -0.1 + 1.5 = 1.4 (spike -> -0.2), -0.1
    spikes, potentials = run("hard", v_reset=-0.2)
    assert spikes == [0, 0, 1, 1, 0]
    assert potentials == pytest.approx([0.6, 0.9, -0.2, -0.2, -0.1], abs=1e-12)


def test_per_neuron_decay_and_threshold():
    v = torch.tensor([[1.0, 1.0, 1.0]], dtype=D)
    x = torch.tensor([[0.5, 0.5, 0.5]], dtype=D)
    decay = torch.tensor([0.0, 0.5, 1.0], dtype=D)
    threshold = torch.tensor([0.4, 2.0, 1.2], dtype=D)
    s, v2 = lif_step(v, x, decay, threshold, reset="soft")
    # h = [0.5, 1.0, 1.5]; spikes where h > threshold: [1, 0, 1]; soft: h - threshold * s
    assert s.tolist() == [[1.0, 0.0, 1.0]]
    assert v2[0].tolist() == pytest.approx([0.1, 1.0, 0.3])


def grads(reset, detach_reset, rectifier=False):
    """d v' / d x and d spike / d x at h = 1.05, threshold 1, fast sigmoid slope 25."""
    x = torch.tensor([[0.55]], dtype=D, requires_grad=True)
    v = torch.tensor([[1.0]], dtype=D)
    s, v2 = lif_step(v, x, 0.5, 1.0, reset=reset, v_reset=-0.3, detach_reset=detach_reset, rectifier=rectifier)
    (gv,) = torch.autograd.grad(v2.sum(), x, retain_graph=True)
    (gs,) = torch.autograd.grad(s.sum(), x)
    return gv.item(), gs.item()


SG = 1 / (1 + 25 * 0.05) ** 2  # fast sigmoid at h - threshold = 0.05


def test_gradients_through_the_reset_by_hand():
    # soft: v' = h - s  ->  dv'/dh = 1 - sg
    assert grads("soft", False) == pytest.approx((1 - SG, SG))
    # hard: v' = h (1 - s) + v_reset s  ->  dv'/dh = (1 - s) + (v_reset - h) sg = (-0.3 - 1.05) sg (s = 1)
    assert grads("hard", False) == pytest.approx(((-0.3 - 1.05) * SG, SG))
    assert grads("none", False) == pytest.approx((1.0, SG))


def test_detach_reset_stops_the_gradient_through_the_reset_term_only():
    assert grads("soft", True) == pytest.approx((1.0, SG))  # v' = h - sg(s): only dh/dx = 1
    assert grads("hard", True) == pytest.approx((0.0, SG))  # v' = h (1 - 1) + v_reset: nothing flows
    # the spike itself still carries the surrogate gradient
    assert grads("soft", True)[1] > 0


def phi(u, k=3.0):
    """Guo et al. 2022's rectifier for threshold 1/2, written out segment by segment."""
    if u < 0:
        return 1 - (1 - u) ** (1 / 3)
    if u > 1:
        return u ** (1 / 3)
    return math.tanh(k * (u - 0.5)) / (2 * math.tanh(k / 2)) + 0.5


def dphi(u, k=3.0):
    if u < 0:
        return (1 - u) ** (-2 / 3) / 3
    if u > 1:
        return u ** (-2 / 3) / 3
    return k / (2 * math.tanh(k / 2)) / math.cosh(k * (u - 0.5)) ** 2


def test_rectifier_values_by_hand():
    h = torch.tensor([-1.0, 0.0, 0.25, 0.5, 1.0, 8.0], dtype=D)
    got = membrane_rectifier(h, 0.5)  # threshold 0.5: u = h
    expected = [1 - 2 ** (1 / 3), 0.0, phi(0.25), 0.5, 1.0, 2.0]
    assert got.tolist() == pytest.approx(expected, abs=1e-12)
    assert phi(0.25) < 0.25  # pushed towards 0
    # threshold 2: mpr(h) = 4 phi(h / 4); fixes the threshold
    h = torch.tensor([2.0, 3.0, -5.0], dtype=D)
    assert membrane_rectifier(h, 2.0).tolist() == pytest.approx([2.0, 4 * phi(0.75), 4 * phi(-1.25)], abs=1e-12)


def test_rectifier_gradcheck_in_threshold_and_membrane():
    h = torch.tensor([-1.7, -0.3, 0.2, 0.9, 1.4, 2.6, 5.0], dtype=D, requires_grad=True)
    theta = torch.tensor(0.8, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(membrane_rectifier, (h, theta))


def test_mpr_keeps_the_spikes_and_changes_the_gradient_by_hand():
    h = torch.tensor([[0.3, 0.99, 1.0, 1.01, 1.2, 3.0]], dtype=D)
    plain, _ = lif_step(torch.zeros_like(h), h, 0.9, 1.0)
    rect, _ = lif_step(torch.zeros_like(h), h, 0.9, 1.0, rectifier=True)
    assert torch.equal(plain, rect)
    # d spike / dh = sg(mpr(h) - 1) * phi'(h / 2) at h = 1.2 (u = 0.6)
    x = torch.tensor([[1.2]], dtype=D, requires_grad=True)
    s, _ = lif_step(torch.zeros_like(x), x, 0.9, 1.0, rectifier=True, surrogate=FastSigmoid(25.0))
    s.sum().backward()
    z = 2 * phi(0.6) - 1.0
    expected = 1 / (1 + 25 * abs(z)) ** 2 * dphi(0.6)
    assert x.grad.item() == pytest.approx(expected, rel=1e-12)
    assert x.grad.item() != pytest.approx(1 / (1 + 25 * 0.2) ** 2)  # not the plain surrogate


def test_alif_sequence_by_hand():
    # decay 0.5, rho 0.5, threshold 1, beta 1: theta = 1 + b
    v, b = torch.zeros(1, 1, dtype=D), torch.zeros(1, 1, dtype=D)
    seen = []
    for x in [1.2, 1.2, 1.2]:
        s, v, b = alif_step(v, b, torch.tensor([[x]], dtype=D), 0.5, 0.5, 1.0, 1.0)
        seen.append((s.item(), v.item(), b.item()))
    # t0: h 1.2 > 1 spike; v = 1.2 - 1 = 0.2; b = 0.5
    # t1: theta 1.5; h = 0.1 + 1.2 = 1.3 no spike; v = 1.3; b = 0.25
    # t2: theta 1.25; h = 0.65 + 1.2 = 1.85 spike; v = 1.85 - 1.25 = 0.6; b = 0.125 + 0.5 = 0.625
    expected = [(1, 0.2, 0.5), (0, 1.3, 0.25), (1, 0.6, 0.625)]
    for got, want in zip(seen, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-12)


def test_decay_from_tau():
    assert decay_from_tau(2.0).item() == pytest.approx(math.exp(-0.5))
    tau = torch.tensor([1.0, 4.0], dtype=D, requires_grad=True)
    decay = decay_from_tau(tau, dt=2.0)
    assert decay.tolist() == pytest.approx([math.exp(-2), math.exp(-0.5)])
    decay.sum().backward()  # d exp(-dt/tau) / dtau = exp(-dt/tau) dt / tau^2
    assert tau.grad.tolist() == pytest.approx([math.exp(-2) * 2, math.exp(-0.5) * 2 / 16])


def test_bad_arguments_name_the_argument_and_what_is_accepted():
    v = x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"tau \(a time constant\) must be a number \(±inf allowed\) > 0, got 0"):
        decay_from_tau(0.0)
    with pytest.raises(ValueError, match=r"tau \(a time constant\) must be .* > 0, got -1.0 "
                                         r"\(an entry of a tensor of shape \[2\]\)"):
        decay_from_tau(torch.tensor([2.0, -1.0]))
    with pytest.raises(ValueError, match="dt must be a finite number > 0, got 0"):
        decay_from_tau(1.0, dt=0)
    with pytest.raises(ValueError, match="threshold must be a finite number > 0, got 0"):
        lif_step(v, x, 0.5, 0.0)
    with pytest.raises(ValueError, match="threshold must be a finite number > 0, got -0.5"):
        lif_step(v, x, 0.5, torch.tensor([1.0, -0.5, 1.0]))
    with pytest.raises(ValueError, match="reset must be one of 'hard', 'soft', 'none'; got 'subtract'"):
        lif_step(v, x, 0.5, reset="subtract")
    with pytest.raises(ValueError, match="surrogate must be .*'fast_sigmoid'"):
        lif_step(v, x, 0.5, surrogate="step")
    with pytest.raises(ValueError, match="decay must be .*per-neuron \\[N=3\\]"):
        lif_step(v, x, torch.ones(4))
    with pytest.raises(ValueError, match="v of shape \\[3, 2\\] does not match x of shape \\[2, 3\\]"):
        lif_step(torch.zeros(3, 2), x, 0.5)
    with pytest.raises(ValueError, match=r"beta \(an adaptation strength\) must be a finite number >= 0"):
        alif_step(v, v, x, 0.5, 0.5, beta=-1.0)
    with pytest.raises(ValueError, match="threshold must be a finite number > 0"):
        alif_step(v, v, x, 0.5, 0.5, threshold=-1.0)
    # NaN and infinite thresholds, NaN time constants and decays are rejected too
    with pytest.raises(ValueError, match=r"threshold must be a finite number > 0, got nan \(an entry"):
        lif_step(v, x, 0.5, torch.tensor([1.0, float("nan"), 1.0]))
    with pytest.raises(ValueError, match="threshold must be a finite number > 0, got inf"):
        lif_step(v, x, 0.5, float("inf"))
    with pytest.raises(ValueError, match=r"decay must be a number \(±inf allowed\), got nan"):
        lif_step(v, x, float("nan"))
    with pytest.raises(ValueError, match=r"tau \(a time constant\) must be .* > 0, got nan \(an entry"):
        decay_from_tau(torch.tensor([2.0, float("nan")]))
    assert decay_from_tau(float("inf")).item() == 1.0  # an infinite time constant: no leak
    with pytest.raises(ValueError, match=r"beta \(an adaptation strength\) must be a finite number >= 0, got nan"):
        alif_step(v, v, x, 0.5, 0.5, beta=torch.tensor(float("nan")))
    with pytest.raises(TypeError, match="dt must be a finite number > 0, got bool True"):
        decay_from_tau(1.0, dt=True)
