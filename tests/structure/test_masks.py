"""SparsityManager: selection, distributions, exact counts, masks in state_dict, zero after every step."""

import math

import pytest
import torch
from torch import nn

from neuroplastic.runs.threads import torch_threads
from neuroplastic.structure.masks import (
    erk_densities,
    grow_highest,
    keep_highest,
    keep_highest_global,
    layer_counts,
    prune_lowest,
    random_mask,
    select_parameters,
    uniform_densities,
)
from neuroplastic.structure.sparsity_manager import SparsityManager


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one intra-op thread is many times faster than two on a busy machine."""
    with torch_threads(1):
        yield

class Zoo(nn.Module):
    """One of every layer type the default selection must handle (or leave alone)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.conv1 = nn.Conv1d(2, 3, 3)
        self.conv2 = nn.Conv2d(2, 3, 3)
        self.conv3 = nn.Conv3d(2, 3, 2)
        self.bn = nn.BatchNorm1d(8)
        self.ln = nn.LayerNorm(8)
        self.emb = nn.Embedding(10, 4)
        self.lstm = nn.LSTM(4, 5, num_layers=2)
        self.gru = nn.GRU(4, 5, bidirectional=True)
        self.rnn = nn.RNN(4, 5)
        self.cell = nn.GRUCell(4, 5)


class MLP(nn.Module):
    def __init__(self, sizes=(12, 16, 10, 3)):
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1])
        self.fc2 = nn.Linear(sizes[1], sizes[2])
        self.fc3 = nn.Linear(sizes[2], sizes[3])

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def train_step(model, optimizer, x=None):
    x = torch.randn(5, 12) if x is None else x
    optimizer.zero_grad()
    model(x).pow(2).mean().backward()
    optimizer.step()


# ------------------------------------------------------------------------------------------ selection
def test_default_selection_takes_linear_conv_and_recurrent_weights_only():
    names = select_parameters(Zoo())
    assert names == [
        "fc1.weight", "conv1.weight", "conv2.weight", "conv3.weight",
        "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.weight_ih_l1", "lstm.weight_hh_l1",
        "gru.weight_ih_l0", "gru.weight_hh_l0", "gru.weight_ih_l0_reverse", "gru.weight_hh_l0_reverse",
        "rnn.weight_ih_l0", "rnn.weight_hh_l0", "cell.weight_ih", "cell.weight_hh",
    ]


def test_selection_by_pattern_and_exclusion():
    model = Zoo()
    assert select_parameters(model, patterns="lstm.weight_hh_*") == ["lstm.weight_hh_l0", "lstm.weight_hh_l1"]
    assert select_parameters(model, patterns=["fc1.*"]) == ["fc1.weight", "fc1.bias"]
    assert select_parameters(model, modules=(nn.Linear, nn.Conv2d)) == ["fc1.weight", "conv2.weight"]
    names = select_parameters(model, exclude=["lstm.*", "gru.*", "rnn.*", "cell.*"])
    assert names == ["fc1.weight", "conv1.weight", "conv2.weight", "conv3.weight"]


@pytest.mark.parametrize("kwargs", [{"patterns": "decoder.*"}, {"patterns": ["fc1.weight", "fc9.weight"]},
                                    {"exclude": "nothing_here"}])
def test_a_pattern_matching_nothing_lists_the_model_parameters(kwargs):
    with pytest.raises(ValueError, match=r"matches no parameter.*fc1\.weight, fc1\.bias"):
        select_parameters(Zoo(), **kwargs)


def test_an_empty_selection_is_an_error():
    with pytest.raises(ValueError, match="no parameter selected"):
        select_parameters(nn.Sequential(nn.BatchNorm1d(3)))
    with pytest.raises(ValueError, match="no parameter selected"):
        select_parameters(MLP(), exclude="fc*")


def test_density_outside_0_1_and_unknown_distribution_are_errors():
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for density in (0.0, -0.5, 1.01):
        with pytest.raises(ValueError, match="density"):
            SparsityManager(model, optimizer, density)
    with pytest.raises(ValueError, match="distribution"):
        SparsityManager(model, optimizer, 0.5, distribution="gaussian")
    with pytest.raises(ValueError, match=r"missing \['fc3.weight'\]"):
        SparsityManager(model, optimizer, 0.5, distribution={"fc1.weight": 0.5, "fc2.weight": 0.5})


def test_model_and_optimizer_that_do_not_match_are_an_error():
    model = MLP()
    optimizer = torch.optim.SGD(list(model.fc1.parameters()) + list(model.fc2.parameters()), lr=0.1)
    with pytest.raises(ValueError, match=r"do not match.*\['fc3.weight'\]"):
        SparsityManager(model, optimizer, 0.5)
    with pytest.raises(ValueError, match="do not match"):
        SparsityManager(MLP(), torch.optim.SGD(MLP().parameters(), lr=0.1), 0.5)


def test_attaching_twice_is_an_error_until_removed():
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    first = SparsityManager(model, optimizer, 0.5)
    with pytest.raises(ValueError, match="already has a mask"):
        SparsityManager(model, optimizer, 0.5)
    first.remove()
    SparsityManager(model, optimizer, 0.3)


# -------------------------------------------------------------------------------------- distributions
def test_erk_densities_match_hand_computed_values():
    # raw scores: (10 + 20) / 200 = 0.15 and (5 + 4) / 20 = 0.45; eps = 0.2 * 220 / (0.15 * 200 + 0.45 * 20)
    densities = erk_densities({"a": (10, 20), "b": (5, 4)}, 0.2)
    eps = 44 / 39
    assert densities["a"] == pytest.approx(0.15 * eps) and densities["b"] == pytest.approx(0.45 * eps)
    assert densities["a"] * 200 + densities["b"] * 20 == pytest.approx(44)


def test_erk_sets_layers_above_one_dense_and_rescales_the_rest():
    # raw: 200 / 10000 = 0.02 and 5 / 6; first eps = 5003 / 205 -> b would be 20.3: b dense, eps = 4997 / 200
    densities = erk_densities({"a": (100, 100), "b": (2, 3)}, 0.5)
    assert densities["b"] == 1.0
    assert densities["a"] == pytest.approx(4997 / 10000)
    conv = erk_densities({"conv": (16, 8, 3, 3), "fc": (10, 400)}, 0.1)
    assert conv["conv"] == pytest.approx((16 + 8 + 3 + 3) / (16 * 8 * 9) * conv["fc"] / (410 / 4000))


def test_layer_counts_are_exact_integers_that_hit_the_total():
    shapes = {"a": (7, 13), "b": (5, 3), "c": (11, 2), "d": (3, 3)}
    total = sum(math.prod(s) for s in shapes.values())
    for density in (0.12, 0.33, 0.5, 0.77, 1.0):  # every layer's target is >= 1 here
        for densities in (uniform_densities(shapes, density), erk_densities(shapes, density)):
            counts = layer_counts(shapes, densities)
            assert sum(counts.values()) == math.floor(density * total + 0.5)
            for name, shape in shapes.items():
                target = densities[name] * math.prod(shape)
                assert math.floor(target + 1e-9) <= counts[name] <= math.ceil(target - 1e-9)
    # largest remainder: targets 2.5, 1.5, 1.5, floors 2 + 1 + 1, total round(5.5) = 6: the two extra
    # weights go to the first layers among equal remainders
    assert layer_counts({"x": (5,), "y": (3,), "z": (3,)}, {"x": 0.5, "y": 0.5, "z": 0.5}) == {"x": 3, "y": 2, "z": 1}
    # a layer whose target is below one weight still keeps one
    assert layer_counts({"big": (100,), "tiny": (4,)}, {"big": 0.5, "tiny": 0.1}) == {"big": 50, "tiny": 1}


# ------------------------------------------------------------------------------------ mask selection
def test_prune_lowest_and_grow_highest_choose_among_candidates_only():
    mask = torch.tensor([True, True, False, True])
    scores = torch.tensor([3.0, 1.0, 0.0, 2.0])  # the inactive entry has the lowest score but is not a candidate
    assert prune_lowest(mask, scores, 2).tolist() == [True, False, False, False]
    mask = torch.tensor([True, False, False, False])
    scores = torch.tensor([9.0, 1.0, 5.0, 3.0])  # the active entry has the highest score but is not a candidate
    assert grow_highest(mask, scores, 2).tolist() == [True, False, True, True]
    with pytest.raises(ValueError, match="count"):
        prune_lowest(mask, scores, 2)
    with pytest.raises(ValueError, match="count"):
        grow_highest(mask, scores, 4)


def test_keep_highest_and_global_selection():
    mask = torch.tensor([[True, True], [True, False]])
    scores = torch.tensor([[0.5, -1.0], [2.0, 9.0]])
    assert keep_highest(mask, scores, 2).tolist() == [[True, False], [True, False]]
    masks = {"a": torch.tensor([True, True, True]), "b": torch.tensor([True, False, True])}
    scores = {"a": torch.tensor([0.1, 0.9, 0.4]), "b": torch.tensor([0.5, 5.0, 0.2])}
    kept = keep_highest_global(masks, scores, 3)
    assert kept["a"].tolist() == [False, True, True] and kept["b"].tolist() == [True, False, False]


def test_random_mask_has_the_exact_count_and_depends_only_on_the_generator():
    a = random_mask((30, 7), 61, torch.Generator().manual_seed(3))
    b = random_mask((30, 7), 61, torch.Generator().manual_seed(3))
    c = random_mask((30, 7), 61, torch.Generator().manual_seed(4))
    assert a.dtype == torch.bool and a.shape == (30, 7) and int(a.sum()) == 61
    assert torch.equal(a, b) and not torch.equal(a, c)


# ------------------------------------------------------------------------------------------ manager
@pytest.mark.parametrize("distribution", ["uniform", "erk"])
def test_attach_registers_boolean_buffers_with_exact_counts_and_zeroes_pruned_weights(distribution):
    torch.manual_seed(0)
    model = MLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    manager = SparsityManager(model, optimizer, 0.25, distribution=distribution)
    assert manager.names == ["fc1.weight", "fc2.weight", "fc3.weight"]
    keys = set(model.state_dict())
    assert {"fc1.weight_mask", "fc2.weight_mask", "fc3.weight_mask"} <= keys
    expected = layer_counts(manager.shapes, manager.density_distribution)
    assert manager.counts() == expected
    assert sum(expected.values()) == math.floor(0.25 * manager.total_size + 0.5)
    for name, mask in manager.masks.items():
        assert mask.dtype == torch.bool and mask.device == manager.parameter(name).device
        assert manager.parameter(name)[~mask].eq(0).all()
    if distribution == "uniform":
        for name, count in manager.counts().items():
            size = math.prod(manager.shapes[name])
            assert math.floor(0.25 * size) <= count <= math.ceil(0.25 * size)


@pytest.mark.parametrize("optimizer_class,kwargs", [(torch.optim.Adam, {}), (torch.optim.SGD, {"momentum": 0.9}),
                                                    (torch.optim.AdamW, {"weight_decay": 0.1})])
def test_pruned_weights_are_exactly_zero_after_every_step(optimizer_class, kwargs):
    torch.manual_seed(0)
    model = MLP()
    optimizer = optimizer_class(model.parameters(), lr=0.05, **kwargs)
    manager = SparsityManager(model, optimizer, 0.2)
    for _ in range(5):
        train_step(model, optimizer)
        for name, mask in manager.masks.items():
            weight = manager.parameter(name)
            assert weight[~mask].eq(0).all()
            assert weight[mask].ne(0).all()  # the active ones do train
    assert manager.step_count == 5


def test_without_the_hook_the_pruned_weights_would_move():
    torch.manual_seed(0)
    model = MLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    manager = SparsityManager(model, optimizer, 0.2)
    manager.remove(keep_masks=True)
    train_step(model, optimizer)
    assert model.fc1.weight[~model.fc1.weight_mask].ne(0).any()  # the gradient is dense: Adam moved them
    manager.apply_masks()  # explicit masking without an optimizer step
    assert model.fc1.weight[~model.fc1.weight_mask].eq(0).all()
    manager.remove()
    assert "fc1.weight_mask" not in model.state_dict()


def test_attaching_mid_training_zeroes_the_optimizer_state_of_pruned_entries():
    torch.manual_seed(0)
    model = MLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    train_step(model, optimizer)
    before = {p: {k: v.clone() for k, v in optimizer.state[p].items()} for p in model.parameters()}
    manager = SparsityManager(model, optimizer, 0.3)
    for name, mask in manager.masks.items():
        parameter = manager.parameter(name)
        state = optimizer.state[parameter]
        for key in ("exp_avg", "exp_avg_sq"):
            assert state[key][~mask].eq(0).all() and before[parameter][key][~mask].ne(0).any()
            assert torch.equal(state[key][mask], before[parameter][key][mask])


def test_a_fresh_model_that_loads_the_state_dict_is_sparse_with_the_same_masks():
    torch.manual_seed(0)
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    manager = SparsityManager(model, optimizer, 0.3, seed=1)
    train_step(model, optimizer)
    state = model.state_dict()
    fresh = MLP()
    fresh_manager = SparsityManager(fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), 0.3, seed=2)
    assert not torch.equal(fresh.fc1.weight_mask, model.fc1.weight_mask)  # other seed, other masks
    fresh.load_state_dict(state)
    for name in manager.names:
        assert torch.equal(fresh_manager.mask(name), manager.mask(name))
        assert torch.equal(fresh_manager.parameter(name), manager.parameter(name))
    # a dense checkpoint's weights loaded with these masks come out sparse
    dense = {k: (torch.randn_like(v) if k.endswith("weight") else v) for k, v in state.items()}
    fresh.load_state_dict(dense)
    assert fresh.fc2.weight[~fresh.fc2.weight_mask].eq(0).all()


def test_loading_a_mask_of_the_wrong_shape_names_parameter_and_shapes():
    model = MLP()
    SparsityManager(model, torch.optim.SGD(model.parameters(), lr=0.1), 0.3)
    state = model.state_dict()
    state["fc2.weight_mask"] = torch.ones(3, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"'fc2\.weight'.*\[3, 3\].*\[10, 16\]"):
        model.load_state_dict(state)


def test_recurrent_weights_get_masks_on_their_module():
    torch.manual_seed(0)
    model = nn.LSTM(4, 6, batch_first=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    manager = SparsityManager(model, optimizer, 0.3, distribution="uniform")
    assert manager.names == ["weight_ih_l0", "weight_hh_l0"]
    assert {"weight_ih_l0_mask", "weight_hh_l0_mask"} <= set(model.state_dict())
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(2, 5, 4))[0].pow(2).mean().backward()
        optimizer.step()
    assert model.weight_hh_l0[~model.weight_hh_l0_mask].eq(0).all()
    assert manager.counts() == {"weight_ih_l0": round(0.3 * 96), "weight_hh_l0": round(0.3 * 144)}


def test_masking_follows_a_dtype_change_of_the_model():
    torch.manual_seed(0)
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    manager = SparsityManager(model, optimizer, 0.3)
    train_step(model, optimizer)
    model.double()
    train_step(model, optimizer, torch.randn(5, 12, dtype=torch.float64))
    assert model.fc1.weight.dtype == torch.float64 and model.fc1.weight_mask.dtype == torch.bool
    assert model.fc1.weight[~model.fc1.weight_mask].eq(0).all()
    assert manager.density() == pytest.approx(sum(manager.initial_counts.values()) / manager.total_size)


def test_editing_a_mask_in_place_takes_effect_at_the_next_step():
    torch.manual_seed(0)
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    SparsityManager(model, optimizer, 0.5)
    train_step(model, optimizer)
    with torch.no_grad():
        model.fc1.weight_mask[0].fill_(False)  # the cached float copy must notice
    train_step(model, optimizer)
    assert model.fc1.weight[0].eq(0).all()


def test_manager_state_dict_round_trip():
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    manager = SparsityManager(model, optimizer, 0.5, seed=3)
    for _ in range(4):
        train_step(model, optimizer)
    state = manager.state_dict()
    other_model = MLP()
    other = SparsityManager(other_model, torch.optim.SGD(other_model.parameters(), lr=0.1), 0.5, seed=9)
    other.load_state_dict(state)
    assert other.step_count == 4
    assert torch.equal(other.generator.get_state(), manager.generator.get_state())
    with pytest.raises(ValueError, match="manages"):
        SparsityManager(nn.Sequential(nn.Linear(2, 2)), None, 0.5).load_state_dict(state)


def test_scale_init_restores_the_dense_input_variance_of_kept_weights():
    torch.manual_seed(0)
    model = MLP()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    manager = SparsityManager(model, None, 0.25, distribution="uniform", scale_init=True)
    for name, mask in manager.masks.items():
        factor = math.sqrt(mask.numel() / int(mask.sum()))  # 1 / sqrt(layer density)
        torch.testing.assert_close(manager.parameter(name)[mask], before[name][mask] * factor)
        assert manager.parameter(name)[~mask].eq(0).all()
    assert torch.equal(model.fc1.bias, before["fc1.bias"])
