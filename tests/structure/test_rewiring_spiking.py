"""Grad R on spiking layers: w = s * relu(theta) through training, surrogate gradients to pruned synapses, regrowth.

Chen et al. 2021 designed Grad R for SNNs trained with surrogate gradients. These tests attach
:class:`neuroplastic.structure.GradRewiring` to ``nn.Linear`` layers feeding :class:`neuroplastic.neurons.LIF`
populations (fused and step-by-step backends) and to a :class:`neuroplastic.neurons.RecurrentLIF`'s
recurrent weight, and check them against a slow literal simulation written here with ``lif_step``.
"""

import pytest
import torch
from torch import nn

from neuroplastic.neurons import LIF, RecurrentLIF, lif_step
from neuroplastic.structure.rewiring import GradRewiring

TAU, THRESHOLD = 2.0, 0.5
DECAY = float(torch.exp(torch.tensor(-1.0 / TAU)))


class SpikingMLP(nn.Module):
    """``[B, T, 6]`` input currents -> Linear -> LIF(8) -> Linear -> LIF(3) -> spike counts ``[B, 3]``."""

    def __init__(self, backend: str, reset: str = "soft") -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 3)
        kw = dict(tau=TAU, threshold=THRESHOLD, reset=reset, backend=backend, surrogate="atan")
        self.lif1, self.lif2 = LIF(8, **kw), LIF(3, **kw)

    def forward(self, x):
        s1, _ = self.lif1(self.fc1(x))
        s2, _ = self.lif2(self.fc2(s1))
        return s2.sum(1)


def literal_forward(weights, biases, x, reset="soft"):
    """The same network as a plain loop of lif_step over time, with the given (plain) weight tensors."""
    batch, steps, _ = x.shape
    v = [torch.zeros(batch, w.shape[0]) for w in weights]
    counts = 0
    for t in range(steps):
        inp = x[:, t]
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            inp, v[k] = lif_step(v[k], inp @ w.t() + b, DECAY, THRESHOLD, reset=reset, surrogate="atan")
        counts = counts + inp
    return counts


def data(seed=0, batch=5, steps=6):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, steps, 6, generator=g) * 2.0
    y = torch.randint(0, 3, (batch,), generator=g)
    return x, y


def loss_fn(counts, y):
    return nn.functional.cross_entropy(counts, y)


@pytest.mark.parametrize("backend", ["fused", "step"])
def test_rewired_weights_stay_sign_relu_theta_through_training_and_connectivity_counts_theta(backend):
    torch.manual_seed(0)
    model = SpikingMLP(backend)
    signs0 = {n: torch.sign(p.detach()) for n, p in model.named_parameters() if n.endswith("weight")}
    rewiring = GradRewiring(model, nn.Linear, alpha=2.0, target_sparsity=0.9)
    assert rewiring.names == ["fc1.weight", "fc2.weight"]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    x, y = data()
    history = []
    for _ in range(12):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        rewiring.prior_step(optimizer)
        connected = 0
        for name, theta in rewiring.thetas().items():
            layer = getattr(model, name.split(".")[0])
            sign = rewiring.sign(name)
            assert torch.equal(sign, signs0[name])  # the signs never change
            assert torch.equal(layer.weight, sign * theta.detach().clamp(min=0))
            assert torch.equal(layer.weight != 0, theta.detach() > 0)  # pruned weights are exactly zero
            connected += int((theta.detach() > 0).sum())
        conn = rewiring.connectivity()
        assert conn.connected == connected and conn.total == 6 * 8 + 8 * 3
        assert conn.overall == connected / conn.total
        history.append(conn.overall)
    # the prior (lr * alpha = 0.1 per step towards mu < 0) pruned a good part of the network
    assert history[-1] < 0.7
    # the forward pass uses exactly the rewired weights: a literal lif_step simulation with them agrees
    with torch.no_grad():
        expected = literal_forward([model.fc1.weight, model.fc2.weight], [model.fc1.bias, model.fc2.bias], x)
        assert torch.equal(model(x), expected)


@pytest.mark.parametrize("backend", ["fused", "step"])
@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_pruned_synapses_get_the_surrogate_gradient_sign_times_dl_dw(backend, reset):
    torch.manual_seed(1)
    model = SpikingMLP(backend, reset)
    rewiring = GradRewiring(model, nn.Linear, alpha=1.0)
    theta1, theta2 = rewiring.theta("fc1.weight"), rewiring.theta("fc2.weight")
    with torch.no_grad():  # prune a third of each layer, scattered (no neuron loses all its synapses)
        theta1[(torch.arange(8)[:, None] + torch.arange(6)) % 3 == 0] = -0.2
        theta2[(torch.arange(3)[:, None] + torch.arange(8)) % 3 == 0] = -0.1
    pruned1, pruned2 = theta1.detach() <= 0, theta2.detach() <= 0
    x, y = data(1)
    loss_fn(model(x), y).backward()

    # reference: the same effective weights as plain leaf tensors, a literal lif_step loop, autograd
    w1 = model.fc1.weight.detach().clone().requires_grad_()
    w2 = model.fc2.weight.detach().clone().requires_grad_()
    assert int((w1 == 0).sum()) == int(pruned1.sum()) and int((w2 == 0).sum()) == int(pruned2.sum())
    loss_fn(literal_forward([w1, w2], [model.fc1.bias.detach(), model.fc2.bias.detach()], x, reset), y).backward()
    torch.testing.assert_close(theta1.grad, rewiring.sign("fc1.weight") * w1.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(theta2.grad, rewiring.sign("fc2.weight") * w2.grad, rtol=1e-5, atol=1e-7)
    # the pruned synapses (weight exactly 0) receive a gradient through the surrogate, not a masked zero:
    # every pruned input synapse (analog inputs > 0, atan surrogate > 0 everywhere), and every pruned hidden
    # synapse whose presynaptic neuron fired (dL/dw2[k, j] = sum_t dL/dh2_k(t) * s1_j(t))
    assert bool((theta1.grad[pruned1] != 0).all())
    with torch.no_grad():
        fired = model.lif1(model.fc1(x))[0].sum((0, 1)) > 0
    assert 0 < int(fired.sum()) < 8
    assert torch.equal(theta2.grad[pruned2] != 0, fired.expand(3, 8)[pruned2])


@pytest.mark.parametrize("backend", ["fused", "step"])
def test_a_pruned_synapse_regrows_when_the_surrogate_gradient_asks_for_it(backend):
    """One LIF neuron, two inputs both pruned: the loss wants more spikes, so the excitatory synapse regrows
    (its theta rises above 0) and the neuron starts to fire; the inhibitory one is pushed further down."""
    fc = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[0.4, -0.4]]))  # signs +1 and -1
    neuron = LIF(1, tau=TAU, threshold=1.0, backend=backend, surrogate="atan")
    model = nn.Sequential(fc)
    rewiring = GradRewiring(model, nn.Linear, prior=False)
    theta = rewiring.theta("0.weight")
    with torch.no_grad():
        theta.fill_(-0.01)  # both pruned
    assert torch.equal(fc.weight, torch.zeros(1, 2))
    x = torch.ones(1, 8, 2)
    optimizer = torch.optim.SGD([theta], lr=0.05)
    first_spikes, grads = None, []
    for step in range(40):
        spikes, _ = neuron(fc(x))
        if first_spikes is None and spikes.sum() > 0:
            first_spikes = step
        loss = -spikes.sum()
        optimizer.zero_grad()
        loss.backward()
        grads.append(theta.grad.detach().clone())
        optimizer.step()
    # at the start both weights are 0, the membrane is 0 and no spike is emitted, yet theta gets a gradient:
    # the excitatory synapse's theta a negative one (descent raises it), the inhibitory one's a positive one
    assert grads[0][0, 0] < 0 < grads[0][0, 1]
    assert theta[0, 0] > 0 and fc.weight[0, 0] > 0  # regrown
    assert theta[0, 1] < -0.01 and fc.weight[0, 1] == 0  # still pruned
    assert first_spikes is not None and first_spikes > 0  # silent while pruned, fires after regrowth
    assert rewiring.connectivity().connected == 1


def test_grad_r_on_a_recurrent_spiking_layer_by_parameter_name():
    torch.manual_seed(2)
    layer = RecurrentLIF(4, 5, tau=TAU, threshold=THRESHOLD, surrogate="atan")
    with torch.no_grad():
        layer.recurrent_linear.weight.mul_(3.0)  # enough recurrent drive to matter
    rewiring = GradRewiring(layer, "recurrent_linear.weight", alpha=1.0)
    assert rewiring.names == ["recurrent_linear.weight"]
    theta, sign = rewiring.theta("recurrent_linear.weight"), rewiring.sign("recurrent_linear.weight")
    with torch.no_grad():
        theta[:, :2] = -0.5  # prune the synapses from neurons 0 and 1
    x = torch.rand(3, 7, 4, generator=torch.Generator().manual_seed(2)) * 1.5
    spikes, _ = layer(x)
    assert spikes.sum() > 0
    (spikes * torch.linspace(-1, 1, 5)).sum().backward()

    # reference: a literal recurrent loop with the effective recurrent weight as a leaf tensor
    w_in, b_in = layer.input_linear.weight.detach(), layer.input_linear.bias.detach()
    w_rec = layer.recurrent_linear.weight.detach().clone().requires_grad_()
    assert torch.equal(w_rec[:, :2], torch.zeros(5, 2))
    v, s, out = torch.zeros(3, 5), torch.zeros(3, 5), []
    for t in range(7):
        s, v = lif_step(v, x[:, t] @ w_in.t() + b_in + s @ w_rec.t(), DECAY, THRESHOLD, surrogate="atan")
        out.append(s)
    reference = torch.stack(out, 1)
    assert torch.equal(spikes.detach(), reference.detach())
    (reference * torch.linspace(-1, 1, 5)).sum().backward()
    torch.testing.assert_close(theta.grad, sign * w_rec.grad, rtol=1e-5, atol=1e-7)
    assert bool((theta.grad[:, :2] != 0).any())  # pruned recurrent synapses still see the gradient
