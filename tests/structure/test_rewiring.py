"""Grad R: w = s * relu(theta), the redefined gradient s * dL/dw, the Laplace prior, regrowth, state_dict."""

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroplastic.structure.rewiring import (
    GradRewiring,
    connectivity_fraction,
    grad_r_epoch,
    laplace_location,
    laplace_prior_grad,
    prior_sparsity,
    prior_update,
    rewired_weight,
)


def test_rewired_weight_is_sign_times_relu_theta_by_hand():
    theta = torch.tensor([[0.5, -0.2, 0.0], [1.5, 0.3, -4.0]])
    sign = torch.tensor([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])
    weight = rewired_weight(theta, sign)
    assert torch.equal(weight, torch.tensor([[0.5, 0.0, 0.0], [-1.5, -0.3, 0.0]]))
    assert int((weight == 0).sum()) == 3  # pruned entries are exactly 0 (some are -0.0, which equals 0)


def test_rewired_weight_gradient_is_sign_times_weight_gradient_even_where_pruned():
    theta = torch.tensor([0.5, -0.2, 0.0, -3.0], requires_grad=True)
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0])
    upstream = torch.tensor([2.0, 3.0, -5.0, 7.0])
    (rewired_weight(theta, sign) * upstream).sum().backward()
    # dL/dw = upstream; the redefined dL/dtheta = s * dL/dw, also for the three pruned entries
    assert theta.grad.tolist() == [2.0, -3.0, -5.0, -7.0]


def seeded_mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))


def test_linear_effective_weight_and_redefined_gradient_against_a_literal_computation():
    model = seeded_mlp()
    initial = model[0].weight.detach().clone()
    rewiring = GradRewiring(model, nn.Linear, alpha=0.5)
    assert rewiring.names == ["0.weight", "2.weight"]
    theta, sign = rewiring.theta("0.weight"), rewiring.sign("0.weight")
    assert torch.equal(theta.detach(), initial.abs()) and torch.equal(sign, torch.sign(initial))
    with torch.no_grad():  # prune a few connections of the first layer
        theta[0, 1] = -0.3
        theta[2, :] = -0.1
        theta[5, 3] = 0.0
    expected = sign * theta.detach().clamp(min=0)
    assert torch.equal(model[0].weight, expected)
    assert int((model[0].weight == 0).sum()) == 6

    x = torch.randn(5, 4)
    out = model(x)
    assert torch.equal(out, model[2](torch.tanh(F.linear(x, expected, model[0].bias))))
    out.pow(2).sum().backward()
    # literal gradient of L = sum(out^2) w.r.t. the first layer's effective weight W: sum_b delta[b, i] x[b, j]
    w2 = model[2].weight.detach()
    hidden = torch.tanh(x @ expected.T + model[0].bias.detach())
    delta_out = 2 * out.detach()
    delta_hidden = (delta_out @ w2) * (1 - hidden**2)
    grad_w = torch.zeros(6, 4)
    for i in range(6):
        for j in range(4):
            grad_w[i, j] = sum(delta_hidden[b, i] * x[b, j] for b in range(5))
    torch.testing.assert_close(theta.grad, sign * grad_w)
    assert theta.grad[2].abs().min() > 0  # pruned connections get a (nonzero) gradient


def test_conv2d_weight_gets_the_redefined_gradient():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, kernel_size=3, padding=1)
    rewiring = GradRewiring(conv, nn.Conv2d, alpha=1.0)
    assert rewiring.names == ["weight"]
    theta, sign = rewiring.theta("weight"), rewiring.sign("weight")
    with torch.no_grad():
        theta[0, 0] = -0.05  # a pruned 3x3 kernel
    x = torch.randn(2, 2, 5, 5)
    conv(x).sin().sum().backward()
    # reference: the same convolution with a plain leaf weight equal to s * relu(theta)
    weight = (sign * theta.detach().clamp(min=0)).requires_grad_()
    F.conv2d(x, weight, conv.bias.detach(), padding=1).sin().sum().backward()
    assert torch.equal(conv.weight[0, 0], torch.zeros(3, 3))
    torch.testing.assert_close(theta.grad, sign * weight.grad)
    assert theta.grad[0, 0].abs().sum() > 0


def test_lstm_recurrent_weight_by_name_only():
    torch.manual_seed(2)
    lstm = nn.LSTM(3, 4, batch_first=True)
    reference = nn.LSTM(3, 4, batch_first=True)
    rewiring = GradRewiring(lstm, "weight_hh_l0", alpha=1.0)
    assert rewiring.names == ["weight_hh_l0"]
    assert isinstance(lstm.weight_ih_l0, nn.Parameter)  # the input weights stay plain parameters
    theta, sign = rewiring.theta("weight_hh_l0"), rewiring.sign("weight_hh_l0")
    with torch.no_grad():
        theta[:5] = -1.0  # the input gate's recurrent connections are pruned
        reference.load_state_dict({"weight_ih_l0": lstm.weight_ih_l0, "weight_hh_l0": lstm.weight_hh_l0,
                                   "bias_ih_l0": lstm.bias_ih_l0, "bias_hh_l0": lstm.bias_hh_l0})
    assert torch.equal(reference.weight_hh_l0[:4], torch.zeros(4, 4))
    x = torch.randn(2, 5, 3)
    out, _ = lstm(x)
    ref_out, _ = reference(x)
    torch.testing.assert_close(out, ref_out)
    out.pow(2).sum().backward()
    ref_out.pow(2).sum().backward()
    torch.testing.assert_close(theta.grad, sign * reference.weight_hh_l0.grad)
    torch.testing.assert_close(lstm.weight_ih_l0.grad, reference.weight_ih_l0.grad)
    # a glob pattern selects the same weight
    other = nn.Sequential(nn.LSTM(3, 4))
    assert GradRewiring(other, "*.weight_hh_*").names == ["0.weight_hh_l0"]


def test_laplace_location_puts_the_target_mass_below_zero():
    alpha, s = 2.0, 0.95
    mu = laplace_location(alpha, s)
    assert mu == pytest.approx(math.log(0.1) / 2)
    laplace = torch.distributions.Laplace(torch.tensor(mu, dtype=torch.float64), torch.tensor(1 / alpha))
    assert float(laplace.cdf(torch.tensor(0.0, dtype=torch.float64))) == pytest.approx(s)
    assert prior_sparsity(alpha, mu) == pytest.approx(s)
    # below one half the location is positive
    mu_low = laplace_location(4.0, 0.2)
    assert mu_low == pytest.approx(-math.log(0.4) / 4) and mu_low > 0
    assert prior_sparsity(4.0, mu_low) == pytest.approx(0.2)


def test_prior_gradient_and_step_follow_the_formula():
    theta = torch.tensor([1.0, -0.5, -3.0, 0.25])
    alpha, mu, lr = 2.0, -1.0, 0.1
    assert laplace_prior_grad(theta, alpha, mu).tolist() == [2.0, 2.0, -2.0, 2.0]
    assert laplace_prior_grad(torch.tensor([-1.0]), alpha, mu).tolist() == [0.0]
    prior_update(theta, alpha, mu, lr)
    torch.testing.assert_close(theta, torch.tensor([0.8, -0.7, -2.8, 0.05]))

    model = seeded_mlp()
    rewiring = GradRewiring(model, "0.weight", alpha=0.3, target_sparsity=0.9)
    optimizer = torch.optim.SGD([{"params": [rewiring.theta("0.weight")], "lr": 0.5},
                                 {"params": [model[0].bias], "lr": 0.1}])
    before = rewiring.theta("0.weight").detach().clone()
    rewiring.prior_step(optimizer)
    mu = math.log(2 * 0.1) / 0.3
    torch.testing.assert_close(rewiring.theta("0.weight").detach(), before - 0.5 * 0.3 * torch.sign(before - mu))
    rewiring.prior_step(0.01)
    torch.testing.assert_close(rewiring.theta("0.weight").detach(),
                               before - (0.5 + 0.01) * 0.3 * torch.sign(before - mu))
    off = GradRewiring(seeded_mlp(), nn.Linear, prior=False)
    kept = off.theta("0.weight").detach().clone()
    off.prior_step(1.0)
    assert torch.equal(off.theta("0.weight"), kept)


def test_pruned_connection_regrows_when_the_gradient_pushes_theta_above_zero():
    linear = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.5, -0.4]]))
    rewiring = GradRewiring(linear, nn.Linear, alpha=1.0)
    theta = rewiring.theta("weight")
    with torch.no_grad():
        theta[0, 1] = -0.05  # prune the negative connection
    optimizer = torch.optim.SGD(linear.parameters(), lr=0.1)
    x = torch.tensor([[1.0, 1.0]])
    assert linear.weight[0, 1] == 0 and rewiring.connectivity().overall == 0.5
    # the loss wants the output lower: dL/dw = x = [1, 1], so for the pruned weight (sign -1)
    # dL/dtheta = -1 and SGD raises theta by 0.1, from -0.05 to 0.05
    linear(x).sum().backward()
    assert theta.grad.tolist() == [[1.0, -1.0]]
    optimizer.step()
    torch.testing.assert_close(theta.detach(), torch.tensor([[0.4, 0.05]]))
    torch.testing.assert_close(linear.weight.detach(), torch.tensor([[0.4, -0.05]]))
    assert rewiring.connectivity().overall == 1.0


def test_pruned_weights_stay_exactly_zero_and_connectivity_counts_them():
    model = seeded_mlp(3)
    rewiring = GradRewiring(model, nn.Linear, alpha=5.0, target_sparsity=0.95)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        x = torch.randn(8, 4, generator=generator)
        optimizer.zero_grad()
        model(x).pow(2).mean().backward()
        optimizer.step()
        rewiring.prior_step(optimizer)
        for name in rewiring.names:
            theta = rewiring.theta(name)
            weight = model.get_submodule(name.split(".")[0]).weight
            assert torch.equal(weight == 0, theta <= 0)
    conn = rewiring.connectivity()
    first, second = model[0].weight, model[2].weight
    assert conn.per_parameter["0.weight"] == int((first != 0).sum()) / 24
    assert conn.per_parameter["2.weight"] == int((second != 0).sum()) / 18
    assert conn.connected == int((first != 0).sum() + (second != 0).sum()) and conn.total == 42
    assert conn.overall == conn.connected / 42 < 1.0  # a strong prior pruned some
    assert connectivity_fraction(rewiring.theta("2.weight")) == conn.per_parameter["2.weight"]


def test_state_dict_round_trip_restores_theta_and_signs():
    model = seeded_mlp(4)
    rewiring = GradRewiring(model, nn.Linear, alpha=2.0)
    with torch.no_grad():
        rewiring.theta("2.weight")[1] = -0.2
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert "0.parametrizations.weight.0.sign" in model.state_dict()

    fresh = seeded_mlp(5)  # other initial weights, so other signs
    fresh_rewiring = GradRewiring(fresh, nn.Linear, alpha=2.0)
    assert not torch.equal(fresh_rewiring.sign("0.weight"), rewiring.sign("0.weight"))
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer))
    for name in rewiring.names:
        assert torch.equal(fresh_rewiring.sign(name), rewiring.sign(name))
        assert torch.equal(fresh_rewiring.theta(name), rewiring.theta(name))
    x = torch.randn(3, 4)
    assert torch.equal(fresh(x), model(x))
    assert fresh_rewiring.connectivity() == rewiring.connectivity()


def test_zero_weight_gets_a_positive_sign_and_starts_pruned_and_dtype_moves_with_the_model():
    linear = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.0, -1.0], [2.0, 0.0]]))
    rewiring = GradRewiring(linear, "weight")
    assert rewiring.sign("weight").tolist() == [[1.0, -1.0], [1.0, 1.0]]
    assert rewiring.connectivity().overall == 0.5
    linear.double()
    assert rewiring.sign("weight").dtype == torch.float64 and linear.weight.dtype == torch.float64


def test_remove_leaves_plain_sparse_weights():
    model = seeded_mlp(6)
    rewiring = GradRewiring(model, nn.Linear)
    with torch.no_grad():
        rewiring.theta("0.weight")[:, 0] = -1.0
    expected = model[0].weight.detach().clone()
    rewiring.remove()
    assert isinstance(model[0].weight, nn.Parameter) and torch.equal(model[0].weight, expected)
    assert model[0].weight[:, 0].eq(0).all()
    assert sorted(model.state_dict()) == ["0.bias", "0.weight", "2.bias", "2.weight"]


@pytest.mark.parametrize("targets,kwargs,error,match", [
    ("fc.weight", {}, ValueError, "targets: name or pattern 'fc.weight' matches no weight"),
    ("*.weight_hh_*", {}, ValueError, "targets: name or pattern"),
    ("0.bias", {}, ValueError, "biases are excluded"),
    (nn.Conv2d, {}, ValueError, "targets: module type Conv2d matches no weight"),
    ([], {}, ValueError, "targets must be"),
    (3, {}, ValueError, "targets must be"),
    ([nn.Linear, 3.5], {}, TypeError, "targets: each entry"),
    (int, {}, TypeError, "targets: a type must be an nn.Module"),
    (nn.Linear, {"alpha": 0.0}, ValueError, "alpha .* must be a finite number > 0, got 0.0"),
    (nn.Linear, {"alpha": -1.0}, ValueError, "alpha"),
    (nn.Linear, {"alpha": "big"}, TypeError, r"alpha \(.*\) must be a finite number > 0, got str 'big'"),
    (nn.Linear, {"target_sparsity": 1.0}, ValueError,
     r"target_sparsity \(the prior's mass below 0\) must be a finite number in \(0, 1\), got 1.0"),
    (nn.Linear, {"target_sparsity": 0.0}, ValueError, "target_sparsity"),
])
def test_bad_arguments_raise_errors_naming_them(targets, kwargs, error, match):
    with pytest.raises(error, match=match):
        GradRewiring(seeded_mlp(), targets, **kwargs)


def test_other_bad_inputs():
    model = seeded_mlp()
    rewiring = GradRewiring(model, "0.weight")
    with pytest.raises(ValueError, match="already parametrized"):
        GradRewiring(model, nn.Linear)
    with pytest.raises(ValueError, match=r"lr \(a number or a torch.optim.Optimizer\) must be a finite number >= 0, "
                                         r"got -0.1"):
        rewiring.prior_step(-0.1)
    with pytest.raises(ValueError, match="lr: the optimizer does not train theta of '0.weight'"):
        rewiring.prior_step(torch.optim.SGD(model[2].parameters(), lr=0.1))
    with pytest.raises(ValueError, match="name must be one of"):
        rewiring.theta("2.weight")
    with pytest.raises(ValueError, match="sign must have theta's shape"):
        rewired_weight(torch.zeros(2, 3), torch.ones(3, 2))
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        GradRewiring("model", nn.Linear)


def epoch_data(seed=0, n=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g), torch.randperm(n, generator=g)


@pytest.mark.parametrize("rewired", [True, False])
def test_grad_r_epoch_is_the_literal_loop_and_counts_every_crossing_of_zero(rewired):
    x, y, order = epoch_data()
    models = [seeded_mlp(3), seeded_mlp(3)]
    rewirings = [GradRewiring(m, nn.Linear, alpha=20.0) if rewired else None for m in models]
    optimizers = [torch.optim.Adam(m.parameters(), lr=0.05) for m in models]
    stats = grad_r_epoch(models[0], optimizers[0], F.cross_entropy, x, y, order, 4, rewirings[0])

    model, optimizer, rewiring = models[1], optimizers[1], rewirings[1]
    loss_sum, correct, pruned, regrown = 0.0, 0, 0, 0
    for batch in (order[:4], order[4:8], order[8:]):  # the last batch is smaller
        before = {n: t.detach() > 0 for n, t in rewiring.thetas().items()} if rewired else {}
        out = model(x[batch])
        loss = F.cross_entropy(out, y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if rewired:
            rewiring.prior_step(optimizer)
            for name, theta in rewiring.thetas().items():
                pruned += int((before[name] & (theta <= 0)).sum())
                regrown += int((~before[name] & (theta > 0)).sum())
        loss_sum += float(loss.detach()) * len(batch)
        correct += int((out.argmax(1) == y[batch]).sum())
    assert stats == (loss_sum / 10, correct, pruned, regrown)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)
    if rewired:  # a strong prior prunes within the epoch
        assert stats.pruned > 0 and rewirings[0].connectivity().overall < 1.0
    else:
        assert stats.pruned == stats.regrown == 0


def test_grad_r_epoch_bad_arguments():
    x, y, order = epoch_data()
    model = seeded_mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="batch_size"):
        grad_r_epoch(model, optimizer, F.cross_entropy, x, y, order, 0)
    with pytest.raises(ValueError, match="order"):
        grad_r_epoch(model, optimizer, F.cross_entropy, x, y, order[:0], 4)
