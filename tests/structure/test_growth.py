"""Growth and shrinkage of neurons: the decision rule, the penalty, surgery on RNNs and MLPs, resizing on load."""

from __future__ import annotations

import copy

import pytest
import torch

from neuroplastic.structure.growth import (
    GrowableMLP,
    GrowableRNN,
    GrowthRule,
    carry_state,
    growth_decision,
    l1_penalty,
    outgoing_norms,
    shrink_outgoing_,
    update_counters,
)


def trained_rnn(optimizer_class=torch.optim.Adam, hidden=4, steps=2, **kwargs):
    generator = torch.Generator().manual_seed(0)
    model = GrowableRNN(3, 2, hidden, generator=generator)
    optimizer = optimizer_class(model.parameters(), lr=0.05, **kwargs)
    inputs = torch.randn(5, 6, 3, generator=generator)
    for _ in range(steps):
        optimizer.zero_grad()
        logits, _ = model(inputs)
        logits.pow(2).mean().backward()
        optimizer.step()
    return model, optimizer, inputs


def reference_rnn(model: GrowableRNN, inputs: torch.Tensor) -> torch.Tensor:
    """A literal loop: h_t = tanh(W_ih x_t + W_hh h_{t-1} + b), y_t = W_ho h_t + b_o."""
    hidden = torch.zeros(inputs.shape[0], model.hidden_size)
    outputs = []
    for t in range(inputs.shape[1]):
        hidden = torch.tanh(inputs[:, t] @ model.weight_ih.T + hidden @ model.weight_hh.T + model.bias)
        outputs.append(hidden @ model.weight_ho.T + model.bias_o)
    return torch.stack(outputs, dim=1)


# ------------------------------------------------------------------------------------------ the decision rule
def test_a_unit_is_removed_exactly_when_it_stayed_under_the_threshold_for_patience_checks():
    rule = GrowthRule(threshold=0.1, patience=3)
    # unit 1: under, under, above (reset), under, under, under -> removed at the sixth check, not before
    history = [0.05, 0.05, 0.2, 0.05, 0.05, 0.05]
    counters = torch.zeros(3, dtype=torch.long)
    for check, value in enumerate(history):
        norms = torch.tensor([0.5, value, 0.08 if check < 2 else 0.5])
        decision = growth_decision(norms, counters, rule)
        if check < 5:
            assert decision.removed.numel() == 0, check
            assert decision.keep.tolist() == [0, 1, 2]
            counters = decision.counters[:3]
        else:
            assert decision.removed.tolist() == [1] and decision.keep.tolist() == [0, 2]
    assert counters.tolist() == [0, 2, 0]  # after the fifth check: unit 1 under twice in a row, unit 2 reset


def test_a_unit_is_added_when_none_is_under_the_threshold():
    rule = GrowthRule(threshold=0.1, patience=5)
    decision = growth_decision(torch.tensor([0.3, 0.1, 0.2]), torch.tensor([0, 4, 0]), rule)
    assert decision.add == 1 and decision.keep.tolist() == [0, 1, 2]  # 0.1 is not under 0.1
    assert decision.counters.tolist() == [0, 0, 0, 0]
    decision = growth_decision(torch.tensor([0.3, 0.09, 0.2]), torch.tensor([0, 0, 0]), rule)
    assert decision.add == 0 and decision.counters.tolist() == [0, 1, 0]
    # the only idle unit is removed: the layer is fully in use again, so a fresh unit replaces it
    decision = growth_decision(torch.tensor([0.3, 0.09, 0.2]), torch.tensor([0, 4, 0]), rule)
    assert decision.removed.tolist() == [1] and decision.add == 1 and decision.counters.tolist() == [0, 0, 0]
    capped = GrowthRule(threshold=0.1, patience=5, max_size=3)
    assert growth_decision(torch.tensor([0.3, 0.2, 0.2]), torch.zeros(3, dtype=torch.long), capped).add == 0


def test_a_reserve_of_k_units_is_topped_up_to_k_units_under_the_threshold():
    rule = GrowthRule(threshold=0.1, patience=5, reserve=3)
    # one of four units under the threshold: two more are added
    decision = growth_decision(torch.tensor([0.3, 0.05, 0.2, 0.4]), torch.zeros(4, dtype=torch.long), rule)
    assert decision.add == 2 and decision.keep.tolist() == [0, 1, 2, 3]
    assert decision.counters.tolist() == [0, 1, 0, 0, 0, 0]
    # three under it: none added; all in use: three added
    decision = growth_decision(torch.tensor([0.01, 0.05, 0.02, 0.4]), torch.zeros(4, dtype=torch.long), rule)
    assert decision.add == 0
    assert growth_decision(torch.tensor([0.3, 0.2]), torch.zeros(2, dtype=torch.long), rule).add == 3
    # a removed reserve unit is replaced, and max_size caps the additions
    decision = growth_decision(torch.tensor([0.3, 0.05, 0.06, 0.07]), torch.tensor([0, 4, 0, 0]), rule)
    assert decision.removed.tolist() == [1] and decision.add == 1 and decision.counters.tolist() == [0, 1, 1, 0]
    capped = GrowthRule(threshold=0.1, patience=5, max_size=5, reserve=3)
    assert growth_decision(torch.tensor([0.3, 0.2, 0.2, 0.5]), torch.zeros(4, dtype=torch.long), capped).add == 1
    # on a module: the added units are appended, with zero counters
    model = GrowableRNN(2, 2, 2, generator=torch.Generator().manual_seed(0))
    decision = model.update_structure(rule, None, torch.Generator().manual_seed(1))
    assert decision.add == 3 and model.hidden_size == 5 and model.idle_steps.tolist() == [0, 0, 0, 0, 0]


def test_removal_never_goes_below_min_size_and_keeps_the_largest_norms():
    rule = GrowthRule(threshold=1.0, patience=1, min_size=2)
    decision = growth_decision(torch.tensor([0.1, 0.5, 0.3, 0.2]), torch.zeros(4, dtype=torch.long), rule)
    assert decision.keep.tolist() == [1, 2] and decision.removed.tolist() == [0, 3] and decision.add == 0
    assert decision.changed


def test_update_counters_counts_consecutive_checks_under_the_threshold():
    counters = update_counters(torch.tensor([0.0, 0.5, 0.2, 0.19]), torch.tensor([3, 3, 0, 7]), threshold=0.2)
    assert counters.tolist() == [4, 0, 0, 8] and counters.dtype == torch.long


# ------------------------------------------------------------------------------------------ norms and penalty
def test_outgoing_norms_by_hand():
    readout = torch.tensor([[1.0, -2.0], [3.0, 0.0]])  # [O=2, H=2]
    recurrent = torch.tensor([[0.5, 1.0], [-0.5, 0.0]])  # [H=2, H=2]
    expected = torch.tensor([0.5 * ((1 + 3) / 2 + (0.5 + 0.5) / 2), 0.5 * ((2 + 0) / 2 + (1 + 0) / 2)])
    torch.testing.assert_close(outgoing_norms(readout, recurrent), expected)
    torch.testing.assert_close(outgoing_norms(readout), torch.tensor([2.0, 1.0]))


def test_l1_penalty_gradient_equals_its_formula():
    generator = torch.Generator().manual_seed(1)
    readout = torch.randn(4, 5, generator=generator)
    recurrent = torch.randn(5, 5, generator=generator)
    recurrent[2, 3] = 0.0
    readout.requires_grad_(True)
    recurrent.requires_grad_(True)
    strength = 0.3
    penalty = l1_penalty(strength, readout, recurrent)
    torch.testing.assert_close(penalty, strength * (readout.abs().sum() / 8 + recurrent.abs().sum() / 10))
    penalty.backward()
    torch.testing.assert_close(readout.grad, strength * readout.detach().sign() / (2 * 4))
    torch.testing.assert_close(recurrent.grad, strength * recurrent.detach().sign() / (2 * 5))
    assert recurrent.grad[2, 3] == 0


def test_shrink_is_the_proximal_step_of_the_penalty():
    readout = torch.tensor([[0.30, -0.01, 0.0], [-0.2, 0.02, 0.5]])  # G = 1, J = 2
    before = readout.clone()
    shrink_outgoing_(0.04, readout)  # step 0.04 / 2 = 0.02 per weight
    expected = torch.tensor([[0.28, 0.0, 0.0], [-0.18, 0.0, 0.48]])
    torch.testing.assert_close(readout, expected)
    # where no weight reaches zero, the step is minus the penalty's gradient
    weight = before.clone().requires_grad_(True)
    l1_penalty(0.04, weight).backward()
    big = before.abs() > 0.02
    torch.testing.assert_close(readout[big], (before - weight.grad)[big])


# ------------------------------------------------------------------------------------------ RNN
def test_rnn_matches_a_literal_loop_and_returns_the_last_state():
    model, _, inputs = trained_rnn()
    logits, state = model(inputs)
    torch.testing.assert_close(logits, reference_rnn(model, inputs))
    assert logits.shape == (5, 6, 2) and state.shape == (5, 4)
    second, _ = model(inputs[:, 3:], reference_state := model(inputs[:, :3])[1])
    torch.testing.assert_close(second, logits[:, 3:])
    assert reference_state.shape == (5, 4)


@pytest.mark.parametrize("optimizer_class,kwargs", [(torch.optim.Adam, {}), (torch.optim.SGD, {"momentum": 0.9})])
def test_rnn_removal_resizes_weights_and_optimizer_state_keeping_survivors(optimizer_class, kwargs):
    model, optimizer, _ = trained_rnn(optimizer_class, **kwargs)
    keep = torch.tensor([0, 2, 3])
    old = {name: p.detach().clone() for name, p in model.named_parameters()}
    key = "exp_avg" if optimizer_class is torch.optim.Adam else "momentum_buffer"
    old_state = {name: optimizer.state[p][key].clone() for name, p in model.named_parameters()}
    model.remove_units(keep, optimizer)
    expected = {"weight_ih": lambda t: t[keep], "bias": lambda t: t[keep], "weight_hh": lambda t: t[keep][:, keep],
                "weight_ho": lambda t: t[:, keep], "bias_o": lambda t: t}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(params) == 5
    for name, parameter in model.named_parameters():
        assert any(p is parameter for p in params), name
        assert torch.equal(parameter, expected[name](old[name])), name
        assert torch.equal(optimizer.state[parameter][key], expected[name](old_state[name])), name
    assert model.hidden_size == 3 and model.idle_steps.shape == (3,)
    assert model.weight_hh.shape == (3, 3) and model.weight_ih.shape == (3, 3) and model.weight_ho.shape == (2, 3)
    optimizer.zero_grad()
    model(torch.randn(2, 4, 3))[0].sum().backward()
    optimizer.step()  # the optimizer keeps working on the resized parameters


@pytest.mark.parametrize("new_state", ["zero", "mean"])
def test_rnn_addition_appends_rows_and_columns_with_state(new_state):
    model, optimizer, inputs = trained_rnn()
    old = {name: p.detach().clone() for name, p in model.named_parameters()}
    old_state = {name: optimizer.state[p]["exp_avg_sq"].clone() for name, p in model.named_parameters()}
    before, _ = model(inputs)
    model.add_units(2, optimizer, torch.Generator().manual_seed(3), new_state=new_state)
    assert model.hidden_size == 6 and model.idle_steps.tolist()[-2:] == [0, 0]
    assert model.weight_ih.shape == (6, 3) and model.weight_hh.shape == (6, 6) and model.weight_ho.shape == (2, 6)
    assert torch.equal(model.weight_hh[:4, :4], old["weight_hh"]) and torch.equal(model.weight_ih[:4], old["weight_ih"])
    assert model.weight_ho[:, 4:].eq(0).all() and model.weight_hh[:, 4:].eq(0).all() and model.bias[4:].eq(0).all()
    assert model.weight_hh[4:, :4].ne(0).all() and model.weight_ih[4:].ne(0).all()  # fresh incoming weights
    for name, parameter in model.named_parameters():
        state = optimizer.state[parameter]["exp_avg_sq"]
        fill = float(old_state[name].mean()) if new_state == "mean" else 0.0
        if name == "bias_o":
            assert torch.equal(state, old_state[name])
            continue
        old_part = state[:4, :4] if name == "weight_hh" else state[:, :4] if name == "weight_ho" else state[:4]
        assert torch.equal(old_part, old_state[name]), name
        if name == "weight_hh":
            new_part = torch.cat([state[4:].flatten(), state[:4, 4:].flatten()])
        else:
            new_part = state[:, 4:] if name == "weight_ho" else state[4:]
        torch.testing.assert_close(new_part, torch.full_like(new_part, fill))
    if new_state == "mean":
        assert optimizer.state[model.weight_ih]["exp_avg_sq"][4:].gt(0).all()
    # zero outgoing weights: the new units change nothing downstream (up to the order of float sums)
    after, _ = model(inputs)
    torch.testing.assert_close(after, before)


def test_new_units_outgoing_norm_equals_outgoing_init():
    model, optimizer, _ = trained_rnn()
    model.add_units(3, optimizer, torch.Generator().manual_seed(0), outgoing_init=0.01)
    torch.testing.assert_close(model.outgoing_norms()[4:], torch.full((3,), 0.01))


def test_removing_a_unit_with_zero_outgoing_weights_leaves_the_output_unchanged():
    model, optimizer, inputs = trained_rnn(hidden=5)
    with torch.no_grad():
        model.weight_ho[:, 1] = 0
        model.weight_hh[:, 1] = 0
    before, _ = model(inputs)
    model.remove_units(torch.tensor([0, 2, 3, 4]), optimizer)
    after, _ = model(inputs)
    torch.testing.assert_close(after, before)


def test_update_structure_removes_an_idle_unit_after_patience_steps_and_adds_a_reserve():
    model, optimizer, _ = trained_rnn(hidden=3)
    with torch.no_grad():
        model.weight_ho.copy_(torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, -1.0]]))
        model.weight_hh[:, 1] = 0
    rule = GrowthRule(threshold=0.1, patience=2)
    first = model.update_structure(rule, optimizer)
    assert not first.changed and model.idle_steps.tolist()[1] == 1
    second = model.update_structure(rule, optimizer, torch.Generator().manual_seed(0))
    # unit 1 removed, none idle left -> one new unit (zero outgoing weights: idle from the next check)
    assert second.removed.tolist() == [1] and second.add == 1
    assert model.hidden_size == 3 and model.idle_steps.tolist() == [0, 0, 0]
    assert torch.equal(model.weight_ho[:, :2], torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    third = model.update_structure(rule, optimizer)
    assert not third.changed and model.idle_steps.tolist() == [0, 0, 1]


def test_load_state_dict_resizes_so_a_resumed_run_continues_exactly():
    model, optimizer, inputs = trained_rnn()
    model.add_units(2, optimizer, torch.Generator().manual_seed(1), outgoing_init=0.05)
    model.remove_units(torch.tensor([0, 1, 3, 4, 5]), optimizer)
    model.idle_steps = torch.tensor([0, 3, 0, 1, 2])
    # copies, as a checkpoint holds (state_dict() returns references to the live tensors)
    saved_model, saved_optimizer = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())

    fresh = GrowableRNN(3, 2, 1, generator=torch.Generator().manual_seed(9))
    fresh_optimizer = torch.optim.Adam(fresh.parameters(), lr=0.05)
    fresh.load_state_dict(saved_model)
    fresh_optimizer.load_state_dict(saved_optimizer)
    assert fresh.hidden_size == 5 and torch.equal(fresh.idle_steps, torch.tensor([0, 3, 0, 1, 2]))
    for (name, a), b in zip(model.named_parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b), name
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(optimizer.state[a][key], fresh_optimizer.state[b][key]), (name, key)
    rule = GrowthRule(threshold=0.3, patience=1)
    for net, opt in ((model, optimizer), (fresh, fresh_optimizer)):
        for _ in range(3):
            opt.zero_grad()
            net(inputs)[0].pow(2).mean().backward()
            opt.step()
            net.update_structure(rule, opt, torch.Generator().manual_seed(4))
    assert model.hidden_size == fresh.hidden_size
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)


def test_carry_state_keeps_kept_units_and_zeroes_new_ones():
    state = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert carry_state(state, torch.tensor([0, 2]), 1).tolist() == [[1.0, 3.0, 0.0], [4.0, 6.0, 0.0]]


# ------------------------------------------------------------------------------------------ MLP
def trained_mlp(hidden_sizes=(4, 3)):
    generator = torch.Generator().manual_seed(0)
    model = GrowableMLP(5, 2, hidden_sizes, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    inputs = torch.randn(7, 5, generator=generator)
    for _ in range(2):
        optimizer.zero_grad()
        model(inputs).pow(2).mean().backward()
        optimizer.step()
    return model, optimizer, inputs


def test_mlp_removal_and_addition_resize_layers_and_state():
    model, optimizer, inputs = trained_mlp()
    first, second = model.layers[0].weight.detach().clone(), model.layers[1].weight.detach().clone()
    first_state = optimizer.state[model.layers[0].weight]["exp_avg"].clone()
    next_state = optimizer.state[model.layers[1].weight]["exp_avg"].clone()
    keep = torch.tensor([1, 3])
    model.remove_units(0, keep, optimizer)
    assert model.hidden_sizes == (2, 3) and model.layers[0].out_features == 2 and model.layers[1].in_features == 2
    assert torch.equal(model.layers[0].weight, first[keep]) and torch.equal(model.layers[1].weight, second[:, keep])
    assert torch.equal(optimizer.state[model.layers[0].weight]["exp_avg"], first_state[keep])
    assert torch.equal(optimizer.state[model.layers[1].weight]["exp_avg"], next_state[:, keep])
    before = model(inputs)
    model.add_units(1, 2, optimizer, torch.Generator().manual_seed(0), new_state="zero")
    assert model.hidden_sizes == (2, 5) and model.idle_steps(1).tolist()[-2:] == [0, 0]
    assert optimizer.state[model.layers[2].weight]["exp_avg"][:, 3:].eq(0).all()
    torch.testing.assert_close(model(inputs), before)


def test_mlp_removing_a_unit_with_zero_outgoing_weights_leaves_the_output_unchanged():
    model, optimizer, inputs = trained_mlp()
    with torch.no_grad():
        model.layers[2].weight[:, 0] = 0
    before = model(inputs)
    model.remove_units(1, torch.tensor([1, 2]), optimizer)
    torch.testing.assert_close(model(inputs), before)


def test_mlp_update_structure_and_resizing_load():
    model, optimizer, inputs = trained_mlp()
    with torch.no_grad():
        model.layers[1].weight[:, 2] = 0
    rule = GrowthRule(threshold=0.05, patience=1)
    decisions = model.update_structure(rule, optimizer, torch.Generator().manual_seed(0))
    assert decisions[0].removed.tolist() == [2] and decisions[0].add == 1
    assert model.hidden_sizes[0] == 4
    model.shrink_(0.01)
    fresh = GrowableMLP(5, 2, (1, 1))
    fresh.load_state_dict(model.state_dict())
    assert fresh.hidden_sizes == model.hidden_sizes and fresh.layers[1].in_features == 4
    torch.testing.assert_close(fresh(inputs), model(inputs))
    penalty = model.l1_penalty(0.5)
    expected = 0.5 * sum(layer.weight.abs().mean(0).sum() for layer in model.layers[1:])
    torch.testing.assert_close(penalty, expected)


# ------------------------------------------------------------------------------------------ errors
def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="threshold"):
        GrowthRule(threshold=0.0, patience=1)
    with pytest.raises(ValueError, match="patience"):
        GrowthRule(threshold=0.1, patience=0)
    with pytest.raises(TypeError, match="patience"):
        GrowthRule(threshold=0.1, patience=1.5)
    with pytest.raises(ValueError, match="max_size"):
        GrowthRule(threshold=0.1, patience=1, min_size=3, max_size=2)
    with pytest.raises(ValueError, match="new_state"):
        GrowthRule(threshold=0.1, patience=1, new_state="ones")
    with pytest.raises(ValueError, match="outgoing_init"):
        GrowthRule(threshold=0.1, patience=1, outgoing_init=-1.0)
    with pytest.raises(ValueError, match="reserve"):
        GrowthRule(threshold=0.1, patience=1, reserve=0)
    with pytest.raises(TypeError, match="rule"):
        growth_decision(torch.ones(2), torch.zeros(2, dtype=torch.long), {"threshold": 0.1})
    with pytest.raises(ValueError, match="norms and counters"):
        update_counters(torch.ones(2), torch.zeros(3, dtype=torch.long), 0.1)
    with pytest.raises(ValueError, match=r"weights\[1\] has 3 units"):
        outgoing_norms(torch.ones(2, 2), torch.ones(2, 3))
    with pytest.raises(ValueError, match="strength"):
        l1_penalty(-1.0, torch.ones(2, 2))
    model, optimizer, inputs = trained_rnn()
    for keep, error in ((torch.tensor([], dtype=torch.long), ValueError), (torch.tensor([0, 4]), ValueError),
                        (torch.tensor([1, 1]), ValueError), (torch.tensor([0.0, 1.0]), TypeError), ([0, 1], TypeError)):
        with pytest.raises(error, match="keep"):
            model.remove_units(keep, optimizer)
    with pytest.raises(ValueError, match="count"):
        model.add_units(0, optimizer)
    with pytest.raises(ValueError, match="inputs"):
        model(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="state"):
        model(inputs, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="hidden_size"):
        GrowableRNN(3, 2, 0)
    with pytest.raises(ValueError, match="hidden_sizes"):
        GrowableMLP(3, 2, ())
    with pytest.raises(ValueError, match="activation"):
        GrowableMLP(3, 2, (2,), activation="gelu")
    with pytest.raises(ValueError, match="layer"):
        GrowableMLP(3, 2, (2,)).outgoing_norms(1)
