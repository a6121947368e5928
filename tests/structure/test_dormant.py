"""Dormant ratio (hand-computed), ReDo resets and DrM perturbation, with their errors."""

import pytest
import torch
from torch import nn

from neuroplastic.structure.dormant import (
    LayerPair,
    dormant_mask,
    dormant_ratio,
    dormant_scores,
    drm_perturb,
    drm_perturb_factor,
    neuron_layer_pairs,
    redo,
    redo_reset,
    unit_activity,
)


def test_dormant_mask_matches_a_hand_computed_example():
    # E|h| per unit: [2, 0.1, 0, 1.9] -> layer mean 1.0 -> scores [2, 0.1, 0, 1.9]
    h = torch.tensor([[2.0, 0.2, 0.0, -1.8],
                      [-2.0, 0.0, 0.0, 2.0]])
    torch.testing.assert_close(unit_activity(h), torch.tensor([2.0, 0.1, 0.0, 1.9]))
    torch.testing.assert_close(dormant_scores(h), torch.tensor([2.0, 0.1, 0.0, 1.9]))
    assert dormant_mask(h).tolist() == [False, False, True, False]            # tau = 0.025
    assert dormant_mask(h, tau=0.1).tolist() == [False, True, True, False]    # s <= tau, inclusive
    assert dormant_mask(h, tau=0.0).tolist() == [False, False, True, False]
    # a silent layer: every unit is dormant
    assert dormant_mask(torch.zeros(3, 5)).all()
    assert torch.equal(dormant_scores(torch.zeros(3, 5)), torch.zeros(5))


def test_conv_channels_average_over_batch_and_positions_and_unit_dim():
    h = torch.zeros(2, 3, 2, 2)
    h[:, 0] = 1.0                      # E|h| = 1
    h[0, 1, 0, 0] = 8.0                # E|h| = 8 / 8 = 1
    h[1, 2, 1, 1] = -0.04              # E|h| = 0.005 -> mean 0.668, score 0.0075 <= 0.025
    assert dormant_mask(h).tolist() == [False, False, True]
    seq = h.flatten(2).transpose(1, 2)  # [B, T=4, N=3], units last
    assert dormant_mask(seq, unit_dim=-1).tolist() == [False, False, True]


def test_dormant_ratio_hooks_activation_modules():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    with torch.no_grad():
        model[0].weight[1] = 0
        model[0].bias[1] = -1.0        # relu(-1) = 0 always: dormant
        model[2].weight[[0, 5]] = 0
        model[2].bias[[0, 5]] = -0.5
    x = torch.randn(32, 3)
    result = dormant_ratio(model, x)
    assert set(result.masks) == {"1", "3"}
    assert result.masks["1"][1] and result.masks["3"][0] and result.masks["3"][5]
    # the same numbers as the pure function on the activations
    h1 = torch.relu(model[0](x))
    h2 = torch.relu(model[2](h1))
    assert torch.equal(result.masks["1"], dormant_mask(h1)) and torch.equal(result.masks["3"], dormant_mask(h2))
    expected = (int(dormant_mask(h1).sum()) + int(dormant_mask(h2).sum())) / 10
    assert result.ratio == pytest.approx(expected)
    # named layers (pre-activations) instead of activation modules
    named = dormant_ratio(model, x, layers=["0"])
    assert list(named.masks) == ["0"] and torch.equal(named.masks["0"], dormant_mask(model[0](x)))


def test_dormant_ratio_restores_training_mode():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.5))
    model.train()
    model[2].eval()
    dormant_ratio(model, torch.randn(5, 3))
    assert model.training and model[0].training and not model[2].training
    with pytest.raises(ValueError, match="activation modules"):
        dormant_ratio(nn.Linear(3, 2), torch.randn(2, 3))


def test_dormant_ratio_on_a_named_lstm():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 5, batch_first=True)

        def forward(self, x):
            return self.rnn(x)[0]

    net = Net()
    x = torch.randn(2, 7, 3)
    result = dormant_ratio(net, x, layers=["rnn"])
    assert result.masks["rnn"].shape == (5,)
    assert torch.equal(result.masks["rnn"], dormant_mask(net(x).detach(), unit_dim=-1))


def test_dormant_errors_name_the_argument():
    with pytest.raises(TypeError, match="activations"):
        dormant_mask([[1.0]])
    with pytest.raises(ValueError, match="tau"):
        dormant_mask(torch.ones(2, 3), tau=-0.1)
    with pytest.raises(ValueError, match="unit_dim"):
        dormant_mask(torch.ones(2, 3), unit_dim=0)
    with pytest.raises(ValueError, match="shape"):
        dormant_mask(torch.ones(3))
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    with pytest.raises(ValueError, match="no submodule named 'fc'"):
        dormant_ratio(model, torch.ones(1, 2), layers=["fc"])
    relu = nn.ReLU()
    shared = nn.Sequential(nn.Linear(2, 2), relu, nn.Linear(2, 2), relu)
    with pytest.raises(ValueError, match="more than once"):
        dormant_ratio(shared, torch.ones(1, 2))


def test_layer_pairs_of_sequential_chains():
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Dropout(0.1), nn.Conv2d(2, 3, 3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(12, 5), nn.Tanh(), nn.Linear(5, 2))
    pairs = neuron_layer_pairs(nn.ModuleDict({"net": cnn}))
    assert [(p.layer, p.next_layer, p.between) for p in pairs] == [
        ("net.0", "net.3", ("net.1", "net.2")), ("net.3", "net.6", ("net.4", "net.5")), ("net.6", "net.8", ("net.7",))]
    value = torch.tensor([[-1.0, 2.0]])
    torch.testing.assert_close(pairs[2].activation(value), torch.tanh(value))
    # a normalisation layer between two layers breaks the chain; so does a flatten between two linear layers
    broken = nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3), nn.ReLU(), nn.Linear(3, 3), nn.Flatten(0),
                           nn.Linear(3, 1))
    assert neuron_layer_pairs(broken) == []


def trained_mlp(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(8, 4)).pow(2).sum().backward()
        optimizer.step()
    return model, optimizer


def test_redo_reinitialises_incoming_zeroes_outgoing_and_resets_state():
    model, optimizer = trained_mlp()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    state_before = {p: {k: v.clone() for k, v in optimizer.state[p].items()} for p in model.parameters()}
    mask = torch.tensor([False, True, False, False, True, False])
    # the same fresh layer that redo_reset draws: reset_parameters() under a generator seeded the same way
    generator = torch.Generator().manual_seed(5)
    counts = redo_reset(model, {"1": mask}, optimizer, generator=generator)
    assert counts == {"1": 2}
    reference = nn.Linear(4, 6)
    seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(5)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        reference.reset_parameters()
    w, b, w_next = model[0].weight, model[0].bias, model[2].weight
    assert torch.equal(w[mask], reference.weight[mask]) and torch.equal(b[mask], reference.bias[mask])
    assert torch.equal(w[~mask], before["0.weight"][~mask]) and torch.equal(b[~mask], before["0.bias"][~mask])
    assert w_next[:, mask].eq(0).all()
    assert torch.equal(w_next[:, ~mask], before["2.weight"][:, ~mask])
    for name in ("2.bias", "4.weight", "4.bias"):
        assert torch.equal(dict(model.named_parameters())[name], before[name])
    for parameter, where in ((w, mask[:, None].expand_as(w)), (b, mask), (w_next, mask[None, :].expand_as(w_next))):
        for key in ("exp_avg", "exp_avg_sq"):
            state = optimizer.state[parameter][key]
            assert state[where].eq(0).all()
            assert torch.equal(state[~where], state_before[parameter][key][~where])
    # the recycled units contribute nothing yet: the output is the old network's without their outgoing weights
    x = torch.randn(3, 4)
    h = torch.relu(x @ before["0.weight"].T + before["0.bias"])
    h = torch.relu(h @ (before["2.weight"] * ~mask).T + before["2.bias"])
    torch.testing.assert_close(model(x), h @ before["4.weight"].T + before["4.bias"])


def test_redo_on_conv_flatten_linear_zeroes_the_channel_block():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4, 2))
    old_conv = model[0].weight.detach().clone()
    old_linear = model[3].weight.detach().clone()
    redo_reset(model, {"1": torch.tensor([False, True, False])}, generator=torch.Generator().manual_seed(0))
    assert model[3].weight[:, 4:8].eq(0).all()
    assert torch.equal(model[3].weight[:, :4], old_linear[:, :4])
    assert torch.equal(model[3].weight[:, 8:], old_linear[:, 8:])
    assert not torch.equal(model[0].weight[1], old_conv[1]) and torch.equal(model[0].weight[0], old_conv[0])


def test_redo_measures_and_resets_dormant_units_with_explicit_pairs():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.fc1.weight[2] = 0
        net.fc1.bias[2] = -1
    x = torch.randn(16, 3)
    with pytest.raises(ValueError, match="no \\(layer, next_layer\\) pair"):
        redo_reset(net, dormant_ratio(net, x).masks)
    result = redo(net, x, pairs=[("fc1", "fc2", "act")], generator=torch.Generator().manual_seed(1))
    mask = result.masks["act"]
    assert mask[2] and not mask.all()
    assert net.fc1.weight[2].ne(0).all() and net.fc2.weight[:, mask].eq(0).all()
    assert net.fc2.weight[:, ~mask].ne(0).all()


def test_redo_errors():
    model, _ = trained_mlp()
    with pytest.raises(ValueError, match="has 6 units"):
        redo_reset(model, {"1": torch.ones(5, dtype=torch.bool)})
    with pytest.raises(ValueError, match="boolean"):
        redo_reset(model, {"1": torch.ones(6)})
    with pytest.raises(ValueError, match="no submodule"):
        redo_reset(model, {"1": torch.ones(6, dtype=torch.bool)}, pairs=[("0", "nope")])
    with pytest.raises(TypeError, match="ReDo resets units"):
        redo_reset(model, {"1": torch.ones(6, dtype=torch.bool)}, pairs=[("1", "2")])
    assert redo_reset(model, {"3": torch.zeros(5, dtype=torch.bool), "x": torch.ones(2, dtype=torch.bool)},
                      strict=False) == {"3": 0, "x": 0}
    assert isinstance(neuron_layer_pairs(model)[0], LayerPair)


def test_drm_perturb_factor_formula():
    # alpha = clip(1 - k * beta, alpha_min, alpha_max), k = 2, [0.2, 0.9] by default
    assert drm_perturb_factor(0.0) == 0.9
    assert drm_perturb_factor(0.1) == pytest.approx(0.8)
    assert drm_perturb_factor(0.3) == pytest.approx(0.4)
    assert drm_perturb_factor(0.5) == 0.2
    assert drm_perturb_factor(0.2, rate=1.0, min_factor=0.0, max_factor=1.0) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="dormant_ratio"):
        drm_perturb_factor(1.5)
    with pytest.raises(ValueError, match="min_factor"):
        drm_perturb_factor(0.1, min_factor=0.8, max_factor=0.5)


def test_drm_perturb_interpolates_toward_a_fresh_init_and_drops_state():
    model, optimizer = trained_mlp()
    old = {name: p.detach().clone() for name, p in model.named_parameters()}
    names = drm_perturb(model, 0.75, optimizer, layers=["0"], generator=torch.Generator().manual_seed(3))
    assert names == ["0.weight", "0.bias"]
    fresh = nn.Linear(4, 6)
    seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(3)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh.reset_parameters()
    torch.testing.assert_close(model[0].weight, 0.75 * old["0.weight"] + 0.25 * fresh.weight)
    torch.testing.assert_close(model[0].bias, 0.75 * old["0.bias"] + 0.25 * fresh.bias)
    assert model[0].weight not in optimizer.state and model[2].weight in optimizer.state
    assert torch.equal(model[2].weight, old["2.weight"])
    # factor 1 leaves everything; by default every Linear is perturbed
    assert drm_perturb(model, 1.0) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    with pytest.raises(ValueError, match="factor"):
        drm_perturb(model, 1.5)
    # the global generator is untouched when a generator is given
    state = torch.get_rng_state()
    drm_perturb(model, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(state, torch.get_rng_state())


def test_resets_keep_pruned_weights_of_a_sparsity_manager_at_zero():
    from neuroplastic.structure import SparsityManager

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    manager = SparsityManager(model, optimizer, density=0.4, distribution="uniform")
    masks = {name: mask.clone() for name, mask in manager.masks.items()}
    with torch.no_grad():
        model[0].weight[:4].zero_()  # units 0-3 are dead: all of them are dormant
        model[0].bias[:4] = -1.0
    redo(model, torch.randn(16, 6), optimizer, pairs=[("0", "2", "1")])
    assert model[0].weight[4:].ne(0).any()
    for name, mask in masks.items():
        assert manager.parameter(name)[~mask].eq(0).all()  # exactly zero, before any optimizer step
    assert model[0].weight[:4][masks["0.weight"][:4]].ne(0).any()  # the reset did write the kept positions
    drm_perturb(model, 0.5, optimizer)
    for name, mask in masks.items():
        assert manager.parameter(name)[~mask].eq(0).all()


def test_non_finite_activations_and_an_empty_batch_are_errors_not_a_ratio_of_zero():
    from torch import nn

    from neuroplastic.structure import dormant_ratio

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="activations must be finite, got 4 NaN"):
        dormant_ratio(model, torch.full((1, 3), float("nan")))
    with pytest.raises(ValueError, match="empty batch"):
        dormant_ratio(model, torch.zeros(0, 3))
    assert 0.0 <= dormant_ratio(model, torch.randn(5, 3)).ratio <= 1.0
