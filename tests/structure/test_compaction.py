"""Compaction removes dead units exactly: same outputs, fewer parameters, optimizer state carried over."""

import pytest
import torch
from torch import nn

from neuroplastic.structure.compaction import compact, count_parameters, dead_units


def adam_steps(model, optimizer, inputs, steps=2):
    for _ in range(steps):
        optimizer.zero_grad()
        model(inputs).pow(2).mean().backward()
        optimizer.step()


def test_mlp_outgoing_dead_and_constant_units_are_removed_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 6), nn.Tanh(), nn.Linear(6, 3))
    with torch.no_grad():
        model[2].weight[:, 6] = 0               # layer 0, unit 6: nobody reads it
        model[0].weight[[1, 3]] = 0             # layer 0, units 1, 3: constant relu(b)
        model[0].bias[1] = 0.7                  # relu(0.7) = 0.7 -> folded into layer 2's bias
        model[0].bias[3] = -0.2                 # relu(-0.2) = 0 -> removed, nothing to fold
        model[2].weight[4] = 0                  # layer 2, unit 4: constant tanh(b) != 0 -> folded into layer 4
        model[2].bias[4] = 0.5
    x = torch.randn(16, 5)
    expected = model(x)
    expected_bias = model[2].bias.detach() + 0.7 * model[2].weight.detach()[:, 1]
    expected_bias[4] = 0.5  # unit 4's bias is unchanged (its row is then removed from layer 2)
    report = compact(model)
    torch.testing.assert_close(model(x), expected, atol=1e-6, rtol=0)
    assert report.layers["0"].removed == (1, 3, 6) and report.layers["0"].folded == (1,)
    assert report.layers["2"].removed == (4,) and report.layers["2"].folded == (4,)
    assert model[0].weight.shape == (5, 5) and model[0].out_features == 5
    assert model[2].weight.shape == (5, 5) and model[2].in_features == 5
    assert model[4].weight.shape == (3, 5)
    torch.testing.assert_close(model[2].bias, expected_bias[[0, 1, 2, 3, 5]])
    # parameters: 5*8+8 + 8*6+6 + 6*3+3 = 123 -> 5*5+5 + 5*5+5 + 5*3+3 = 78
    assert (report.parameters_before, report.parameters_after) == (123, 78) == (123, count_parameters(model))


def test_removal_cascades_backwards_and_forwards():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[4].weight[:, 2] = 0       # layer 2, unit 2 unread ...
        model[2].weight[:, 0] = 0       # ... layer 0, unit 0 is read only by it
        model[2].weight[2, 0] = 1.5
    x = torch.randn(10, 3)
    expected = model(x)
    report = compact(model)
    torch.testing.assert_close(model(x), expected, atol=1e-6, rtol=0)
    assert report.layers["2"].removed == (2,) and report.layers["0"].removed == (0,)


def test_cnn_channels_and_flattened_blocks_are_removed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(5 * 4 * 4, 3))
    with torch.no_grad():
        model[0].weight[1] = 0
        model[0].bias[1] = 0.3                  # constant channel, folded into conv 2 (no padding)
        model[2].weight[:, 2] = 0               # conv 1 channel 2: unread
        model[5].weight[:, 3 * 16:4 * 16] = 0   # conv 2 channel 3: its flattened block is unread
        model[2].weight[0] = 0
        model[2].bias[0] = 0.25                 # conv 2 channel 0: constant, folded into the linear bias
    x = torch.randn(3, 2, 8, 8)
    expected = model(x)
    report = compact(model)
    torch.testing.assert_close(model(x), expected, atol=1e-6, rtol=0)
    assert report.layers["0"].removed == (1, 2) and report.layers["0"].folded == (1,)
    assert report.layers["2"].removed == (0, 3) and report.layers["2"].folded == (0,)
    assert model[0].weight.shape == (2, 2, 3, 3) and model[2].weight.shape == (3, 2, 3, 3)
    assert model[5].weight.shape == (3, 3 * 16) and model[5].in_features == 48
    assert count_parameters(model) == (2 * 2 * 9 + 2) + (3 * 2 * 9 + 3) + (3 * 48 + 3)


def test_constant_channel_before_a_padded_conv_is_kept_unless_zero():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1))
    with torch.no_grad():
        model[0].weight[[0, 2]] = 0
        model[0].bias[0] = 0.4      # relu(0.4) != 0: zero padding would see 0 at the borders -> kept
        model[0].bias[2] = -0.4     # relu(-0.4) = 0: removed
    x = torch.randn(2, 1, 7, 7)
    expected = model(x)
    report = compact(model)
    torch.testing.assert_close(model(x), expected, atol=1e-6, rtol=0)
    assert report.layers["0"].removed == (2,)


@pytest.mark.parametrize("kind", [nn.RNN, nn.LSTM, nn.GRU])
def test_recurrent_hidden_units_with_their_gate_blocks(kind):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = kind(3, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    torch.manual_seed(0)
    net = Net()
    gates, hidden = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3}[kind], 6
    rows = lambda unit: [g * hidden + unit for g in range(gates)]  # noqa: E731
    with torch.no_grad():
        net.head.weight[:, 1] = 0
        net.rnn.weight_hh_l0[:, 1] = 0
        net.rnn.weight_hh_l0[rows(1), 1] = 0.9  # its own recurrence does not matter
        net.rnn.weight_ih_l0[rows(4)] = 0       # unit 4: no input at all, no reader but the head
        net.rnn.weight_hh_l0[rows(4)] = 0
        net.rnn.weight_hh_l0[:, 4] = 0
        if kind is nn.LSTM:                     # constant only if the cell input is 0 (then h = 0): g = 0
            net.rnn.bias_ih_l0[2 * hidden + 4] = 0.3
            net.rnn.bias_hh_l0[2 * hidden + 4] = -0.3
        if kind is nn.GRU:                      # n = tanh(b_in + r * b_hn) = 0
            net.rnn.bias_ih_l0[2 * hidden + 4] = 0.0
            net.rnn.bias_hh_l0[2 * hidden + 4] = 0.0
    x = torch.randn(4, 7, 3)
    expected = net(x)
    optimizer = torch.optim.Adam(net.parameters())
    report = compact(net, optimizer, pairs=[("rnn", "head")])
    torch.testing.assert_close(net(x), expected, atol=1e-6, rtol=0)
    assert report.layers["rnn"].removed == (1, 4)
    assert report.layers["rnn"].folded == ((4,) if kind is nn.RNN else ())
    assert net.rnn.hidden_size == 4 and net.rnn.weight_ih_l0.shape == (4 * gates, 3)
    assert net.rnn.weight_hh_l0.shape == (4 * gates, 4) and net.head.weight.shape == (2, 4)
    assert count_parameters(net) == gates * 4 * (3 + 4 + 2) + 2 * 4 + 2
    adam_steps(net, optimizer, x)  # trains on


def test_lstm_unit_with_a_nonzero_cell_input_is_not_constant():
    net = nn.ModuleDict({"rnn": nn.LSTM(2, 3), "head": nn.Linear(3, 1)})
    with torch.no_grad():
        for weight in (net["rnn"].weight_ih_l0, net["rnn"].weight_hh_l0):
            weight[[0, 3, 6, 9]] = 0
        net["rnn"].weight_hh_l0[:, 0] = 0
        net["rnn"].bias_ih_l0[6] = 1.0  # tanh(g) != 0: c_t = i*g*(1 - f^t)/(1 - f) changes over time
    removable, folded, _ = dead_units(net, ("rnn", "head"))
    assert not removable.any() and not folded.any()


def test_linear_into_lstm_input_columns():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(4, 5)
            self.rnn = nn.GRU(5, 3, batch_first=True)

        def forward(self, x):
            return self.rnn(torch.tanh(self.embed(x)))[0]

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.embed.weight[2] = 0
        net.embed.bias[2] = 0.6
    x = torch.randn(2, 5, 4)
    expected = net(x)
    report = compact(net, pairs=[("embed", "rnn", torch.tanh)])
    torch.testing.assert_close(net(x), expected, atol=1e-6, rtol=0)
    assert report.layers["embed"].folded == (2,) and net.rnn.input_size == 4


def test_optimizer_state_is_carried_over_and_training_continues():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.randn(8, 4)
    adam_steps(model, optimizer, x)
    with torch.no_grad():
        model[2].weight[:, [0, 3]] = 0
    old = {name: (p, {k: v.clone() for k, v in optimizer.state[p].items()}) for name, p in model.named_parameters()}
    reference = [p.detach().clone() for p in model.parameters()]
    compact(model, optimizer)
    keep = torch.tensor([1, 2, 4, 5])
    new = dict(model.named_parameters())
    assert all(p is not old[name][0] for name, p in new.items() if name != "2.bias")
    torch.testing.assert_close(optimizer.state[new["0.weight"]]["exp_avg"], old["0.weight"][1]["exp_avg"][keep])
    torch.testing.assert_close(optimizer.state[new["2.weight"]]["exp_avg_sq"],
                               old["2.weight"][1]["exp_avg_sq"][:, keep])
    # the same training on the uncompacted model (its dead columns held at zero) gives the same kept weights
    twin = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    twin_optimizer = torch.optim.Adam(twin.parameters(), lr=0.01)
    with torch.no_grad():
        for (name, p), r in zip(twin.named_parameters(), reference, strict=True):
            p.copy_(r)
            twin_optimizer.state[p] = {k: v.clone() for k, v in old[name][1].items()}
        for value in twin_optimizer.state[twin[2].weight].values():
            if value.dim():
                value[:, [0, 3]] = 0
    twin[2].weight.register_hook(lambda grad: grad.index_fill(1, torch.tensor([0, 3]), 0.0))
    adam_steps(model, optimizer, x, steps=3)
    adam_steps(twin, twin_optimizer, x, steps=3)
    assert twin[2].weight[:, [0, 3]].eq(0).all()
    torch.testing.assert_close(model[0].weight, twin[0].weight[keep], atol=1e-6, rtol=0)
    torch.testing.assert_close(model[2].weight, twin[2].weight[:, keep], atol=1e-6, rtol=0)
    torch.testing.assert_close(model(x), twin(x), atol=1e-6, rtol=0)


def test_nothing_dead_nothing_removed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = [p.detach().clone() for p in model.parameters()]
    report = compact(model)
    assert report.removed_units == 0 and report.parameters_after == report.parameters_before == 26
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert report.layers["0"].units_before == report.layers["0"].units_after == 4


def test_a_layer_keeps_at_least_one_unit():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[2].weight.zero_()
    x = torch.randn(5, 3)
    expected = model(x)
    report = compact(model)
    assert model[0].out_features == 1 and report.layers["0"].removed == (1, 2, 3)
    torch.testing.assert_close(model(x), expected)


def test_errors():
    with pytest.raises(ValueError, match="no \\(layer, next_layer\\) pairs"):
        compact(nn.LSTM(2, 3))
    net = nn.ModuleDict({"rnn": nn.LSTM(2, 3, num_layers=2), "head": nn.Linear(3, 1), "norm": nn.LayerNorm(3)})
    with pytest.raises(ValueError, match="single-layer"):
        compact(net, pairs=[("rnn", "head")])
    with pytest.raises(TypeError, match="LayerNorm"):
        compact(net, pairs=[("head", "norm")])
    with pytest.raises(ValueError, match="does not match"):
        compact(nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.Linear(4, 1)}), pairs=[("a", "b")])
    with pytest.raises(ValueError, match="more than one pair"):
        compact(nn.ModuleDict({"a": nn.Linear(2, 3), "b": nn.Linear(3, 1), "c": nn.Linear(3, 1)}),
                pairs=[("a", "b"), ("a", "c")])
    with pytest.raises(ValueError, match="no submodule"):
        compact(nn.Sequential(nn.Linear(2, 2)), pairs=[("0", "1")])


def test_per_unit_prelu_is_cut_and_used_for_the_constant():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.PReLU(4), nn.Dropout(0.3), nn.Linear(4, 2)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
        model[0].weight[2] = 0
        model[0].bias[2] = -2.0     # PReLU(-2) = 0.3 * -2 = -0.6, folded into the last bias
    x = torch.randn(6, 3)
    expected = model(x)
    shift = -0.6 * model[3].weight.detach()[:, 2]
    bias = model[3].bias.detach().clone()
    report = compact(model)
    torch.testing.assert_close(model(x), expected, atol=1e-6, rtol=0)
    assert report.layers["0"].folded == (2,)
    torch.testing.assert_close(model[3].bias, bias + shift)
    assert model[1].weight.tolist() == pytest.approx([0.1, 0.2, 0.4]) and model[1].num_parameters == 3


# ------------------------------------------------------------------------------------------------ refusals
def _state(model, optimizer):
    """Parameter objects and values, optimizer groups and state: what a refused compaction must leave as it was."""
    parameters = {n: (p, p.detach().clone()) for n, p in model.named_parameters(remove_duplicate=False)}
    groups = [list(group["params"]) for group in optimizer.param_groups]
    state = {id(p): {k: v.clone() for k, v in s.items()} for p, s in optimizer.state.items()}
    return parameters, groups, state


def _assert_unchanged(model, optimizer, saved, x, output):
    parameters, groups, state = saved
    now = dict(model.named_parameters(remove_duplicate=False))
    assert now.keys() == parameters.keys()
    for name, (parameter, value) in parameters.items():
        assert now[name] is parameter
        assert torch.equal(parameter, value)
    assert [list(group["params"]) for group in optimizer.param_groups] == groups
    assert {id(p) for p in optimizer.state} == state.keys()
    for p, s in optimizer.state.items():
        assert s.keys() == state[id(p)].keys()
        assert all(torch.equal(v, state[id(p)][k]) for k, v in s.items())
    assert torch.equal(model(x), output)


def _trained(model, x):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    adam_steps(model, optimizer, x)
    return optimizer


def test_a_module_used_twice_is_refused_before_any_change():
    torch.manual_seed(0)
    shared = nn.Linear(5, 5)
    model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(5, 2))
    x = torch.randn(8, 3)
    optimizer = _trained(model, x)
    with torch.no_grad():
        model[0].weight[1] = 0
        model[0].bias[1] = -1.0  # unit 1 is constant 0 after the ReLU: removable
        shared.weight[:, 3] = 0  # unit 3 of the first use is unread: removable
    saved, output = _state(model, optimizer), model(x)
    with pytest.raises(ValueError, match="several places"):
        compact(model, optimizer)
    _assert_unchanged(model, optimizer, saved, x, output)


def test_tied_weights_are_refused_before_any_change():
    torch.manual_seed(0)
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), a, nn.ReLU(), b, nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(8, 3)
    optimizer = _trained(model, x)
    with torch.no_grad():
        model[0].weight[2] = 0
        model[0].bias[2] = -1.0
    saved, output = _state(model, optimizer), model(x)
    before = count_parameters(model)
    with pytest.raises(ValueError, match="tied weights"):
        compact(model, optimizer)
    _assert_unchanged(model, optimizer, saved, x, output)
    assert count_parameters(model) == before


class _Residual(nn.Module):
    """fc.2 reads fc.0's units plus the input: removing a unit of fc.0 changes the shape of the sum."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))

    def forward(self, x):
        return self.fc[2](self.fc[1](self.fc[0](x)) + x)


class _SkipSum(nn.Module):
    """The output also reads the sum of fc.0's units: removing an unread unit changes the values, not shapes."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))

    def forward(self, x):
        h = self.fc[1](self.fc[0](x))
        return self.fc[2](h) + h.sum(-1, keepdim=True)


@pytest.mark.parametrize("given_probe", [False, True])
def test_a_residual_model_is_rolled_back_by_the_probe(given_probe):
    torch.manual_seed(0)
    model = _Residual()
    x = torch.randn(8, 4)
    optimizer = _trained(model, x)
    with torch.no_grad():
        model.fc[2].weight[:, 1] = 0  # fc.2 no longer reads unit 1 of fc.0, but the sum does
    saved, output = _state(model, optimizer), model(x)
    with pytest.raises(ValueError, match="restored unchanged"):
        compact(model, optimizer, probe=x if given_probe else None)
    _assert_unchanged(model, optimizer, saved, x, output)


def test_an_output_change_on_the_probe_is_rolled_back():
    torch.manual_seed(0)
    model = _SkipSum()
    x = torch.randn(8, 4)
    optimizer = _trained(model, x)
    with torch.no_grad():
        model.fc[2].weight[:, 1] = 0
        model.fc[0].bias[1] = 1.0
    saved, output = _state(model, optimizer), model(x)
    with pytest.raises(ValueError, match="changed the model's outputs"):
        compact(model, optimizer, probe=x)
    _assert_unchanged(model, optimizer, saved, x, output)
    report = compact(model, optimizer, probe=False)  # the caller's choice: no check
    assert report.removed_units == 1


def test_training_under_granet_continues_after_compaction():
    from neuroplastic.structure import GraNet

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    manager = GraNet(model, optimizer, 0.5, end=20, delta_t=5)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))

    def train(steps):
        for _ in range(steps):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()

    train(6)
    masks = {name: mask.clone() for name, mask in manager.masks.items()}
    masks["0.weight"][[2, 7]] = False  # units 2 and 7 lose their inputs (constant, folded)
    masks["2.weight"][:, 4] = False  # unit 4 loses its readers
    manager.commit(masks)
    output = model(x)
    report = compact(model, optimizer)
    removed = report.layers["0"].removed
    assert {2, 4, 7} <= set(removed)  # and any unit GraNet's pruning emptied
    kept = torch.tensor([i for i in range(10) if i not in removed])
    torch.testing.assert_close(model(x), output, atol=1e-5, rtol=1e-5)
    assert tuple(manager.mask("0.weight").shape) == (len(kept), 6)
    assert tuple(manager.mask("2.weight").shape) == (3, len(kept))
    assert manager.shapes["0.weight"] == (len(kept), 6)
    assert torch.equal(manager.mask("0.weight"), masks["0.weight"][kept])
    train(15)  # through the mask updates at steps 10, 15 and 20
    assert manager.step_count == 21 and manager.last_update["step"] == 20
    for name in manager.names:
        assert manager.parameter(name).shape == manager.mask(name).shape
        assert manager.parameter(name)[~manager.mask(name)].eq(0).all()


def test_a_shared_parameter_free_activation_is_allowed():
    torch.manual_seed(0)
    act = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 5), act, nn.Linear(5, 4), act, nn.Linear(4, 2))
    x = torch.randn(8, 3)
    with torch.no_grad():
        model[2].weight[:, 1] = 0
    output = model(x)
    assert compact(model).removed_units == 1
    torch.testing.assert_close(model(x), output)


class _RecurrentSkip(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out) + out.sum(-1, keepdim=True)


def test_a_recurrent_model_is_restored_after_a_rollback():
    torch.manual_seed(0)
    model = _RecurrentSkip()
    x = torch.randn(4, 6, 3)
    optimizer = _trained(model, x)
    with torch.no_grad():
        model.head.weight[:, 1] = 0
        model.lstm.weight_hh_l0[:, 1] = 0  # no hidden unit reads unit 1: only the sum does
    saved, output = _state(model, optimizer), model(x)
    with pytest.raises(ValueError, match="changed the model's outputs"):
        compact(model, optimizer, pairs=[("lstm", "head")], probe=x)
    _assert_unchanged(model, optimizer, saved, x, output)
    assert model.lstm.hidden_size == 5 and model.head.in_features == 5
    adam_steps(model, optimizer, x)  # still trains
