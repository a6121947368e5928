"""Neuron masks, unit pruning and Reconstructive Neuron Pruning (Li et al. 2023) on toy models."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from neuroplastic.structure.neuron_masks import (
    NeuronMasks,
    default_mask_layers,
    mask_units,
    prune_units,
    zeroed_units,
)
from neuroplastic.structure.rnp import (
    ReconstructiveNeuronPruning,
    RNPConfig,
    reconstructive_neuron_pruning,
    rnp_schedule_epochs,
)


def mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))


def cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(3, 2))


# ----------------------------------------------------------------------------------------- masks
def test_mask_units_scales_the_chosen_dimension_by_hand():
    output = torch.arange(12.0).reshape(2, 3, 2)
    mask = torch.tensor([1.0, 0.0, 0.5])
    result = mask_units(output, mask, dim=1)
    expected = output.clone()
    expected[:, 1] = 0
    expected[:, 2] *= 0.5
    assert torch.equal(result, expected)
    last = mask_units(torch.ones(2, 3), torch.tensor([2.0, 3.0, 4.0]), dim=-1)
    assert torch.equal(last, torch.tensor([[2.0, 3.0, 4.0], [2.0, 3.0, 4.0]]))
    with pytest.raises(ValueError, match="mask has 2 units"):
        mask_units(output, torch.ones(2), dim=1)
    with pytest.raises(ValueError, match="dim"):
        mask_units(output, mask, dim=3)


def test_masks_multiply_linear_units_and_are_removable():
    model = mlp()
    x = torch.randn(6, 4)
    reference = model(x)
    masks = NeuronMasks(model, ["0"])
    assert masks.layer_names == ("0",) and masks["0"].shape == (5,)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    torch.testing.assert_close(model(x), reference)  # mask 1 changes nothing
    with torch.no_grad():
        masks["0"].copy_(torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0]))
    hidden = (x @ model[0].weight.T + model[0].bias) * torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0])
    expected = torch.relu(hidden) @ model[2].weight.T + model[2].bias
    torch.testing.assert_close(model(x), expected)
    masks.remove()
    assert not masks.attached
    torch.testing.assert_close(model(x), reference)


def test_masks_multiply_conv_channels():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 4, 3)
    x = torch.randn(3, 2, 6, 6)
    masks = NeuronMasks(conv, [""])
    with torch.no_grad():
        masks[""].copy_(torch.tensor([0.0, 1.0, 0.25, 1.0]))
    expected = F.conv2d(x, conv.weight, conv.bias) * torch.tensor([0.0, 1.0, 0.25, 1.0]).view(1, 4, 1, 1)
    torch.testing.assert_close(conv(x), expected)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_weight_mode_scales_gamma_and_output_mode_scales_everything(training):
    model = cnn()
    bn = model[1]
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, -0.5, 2.0]))
        bn.bias.copy_(torch.tensor([0.3, 0.7, -0.2]))
        bn.running_mean.copy_(torch.tensor([0.1, -0.1, 0.2]))
        bn.running_var.copy_(torch.tensor([1.5, 0.5, 2.0]))
    model.train(training)
    x = torch.randn(4, 3, 5, 5)
    m = torch.tensor([0.0, 0.5, 1.0])
    bn_state = copy.deepcopy(bn.state_dict())
    expected_weight = F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight * m, bn.bias,
                                   training, 0.0, bn.eps)
    expected_output = m.view(1, 3, 1, 1) * F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(),
                                                        bn.weight, bn.bias, training, 0.0, bn.eps)
    for mode, expected in (("weight", expected_weight), ("output", expected_output)):
        bn.load_state_dict(bn_state)
        masks = NeuronMasks(model, ["1"], norm_mode=mode)
        with torch.no_grad():
            masks["1"].copy_(m)
        torch.testing.assert_close(bn(x), expected)
        masks.remove()


def test_gradients_reach_the_masks_and_clipping_keeps_them_in_unit_interval():
    model = mlp()
    model.requires_grad_(False)
    masks = NeuronMasks(model, ["0"])
    loss = F.cross_entropy(model(torch.randn(8, 4)), torch.randint(0, 3, (8,)))
    loss.backward()
    assert masks["0"].grad is not None and masks["0"].grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        masks["0"].copy_(torch.tensor([-3.0, 0.5, 7.0, 1.0, 0.0]))
    masks.clip_()
    assert torch.equal(masks["0"].detach(), torch.tensor([0.0, 0.5, 1.0, 1.0, 0.0]))


def test_below_and_lowest_choose_units_by_mask_value():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    masks = NeuronMasks(model, attach=False)
    assert masks.layer_names == ("0", "2")  # the output layer is not masked by default
    with torch.no_grad():
        masks["0"].copy_(torch.tensor([0.1, 0.9, 0.3]))
        masks["2"].copy_(torch.tensor([0.25, 1.0, 0.05, 0.2]))
    below = masks.below(0.2)
    assert below["0"].tolist() == [0] and below["2"].tolist() == [2, 3]  # <= threshold
    lowest = masks.lowest(3)
    assert lowest["0"].tolist() == [0] and lowest["2"].tolist() == [2, 3]
    assert masks.lowest(0)["0"].numel() == 0
    with pytest.raises(ValueError, match="count"):
        masks.lowest(8)


def test_default_layers_are_the_batchnorm_layers_when_there_are_some():
    assert default_mask_layers(cnn()) == ["1"]
    assert default_mask_layers(mlp()) == ["0"]


def test_mask_errors_name_the_problem():
    model = mlp()
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        NeuronMasks(model, ["nope"])
    with pytest.raises(TypeError, match="ReLU"):
        NeuronMasks(model, ["1"])
    with pytest.raises(ValueError, match="repeat"):
        NeuronMasks(model, ["0", "0"])
    with pytest.raises(ValueError, match="empty"):
        NeuronMasks(model, [])
    with pytest.raises(ValueError, match="norm_mode"):
        NeuronMasks(model, ["0"], norm_mode="gamma")
    masks = NeuronMasks(model, ["0"])
    with pytest.raises(RuntimeError, match="already attached"):
        masks.attach(model)
    with pytest.raises(ValueError, match="has 6 units but its mask has 5"):
        NeuronMasks(model, ["0"], attach=False).attach(nn.Sequential(nn.Linear(4, 6)))


# --------------------------------------------------------------------------------------- pruning
def test_prune_units_zeroes_exactly_the_chosen_units():
    model = mlp()
    before = copy.deepcopy(model)
    keep = prune_units(model, {"0": [1, 3]})
    assert set(keep) == {"0.weight", "0.bias"}
    assert torch.equal(keep["0.weight"][:, 0], torch.tensor([True, False, True, False, True]))
    assert torch.all(model[0].weight[[1, 3]] == 0) and torch.all(model[0].bias[[1, 3]] == 0)
    assert torch.equal(model[0].weight[[0, 2, 4]], before[0].weight[[0, 2, 4]])
    assert torch.equal(model[2].weight, before[2].weight)
    assert zeroed_units(model, "0").tolist() == [1, 3]
    # a pruned unit behaves like mask 0
    masks = NeuronMasks(before, ["0"])
    with torch.no_grad():
        masks["0"][[1, 3]] = 0
    x = torch.randn(5, 4)
    torch.testing.assert_close(model(x), before(x))


def test_prune_conv_and_batchnorm_units():
    model = cnn()
    boolean = torch.tensor([False, True, False])
    prune_units(model, {"0": boolean})
    assert torch.all(model[0].weight[1] == 0) and model[0].bias[1] == 0 and model[0].weight[0].abs().sum() > 0
    model = cnn()
    with torch.no_grad():
        model[1].bias.fill_(0.5)
    keep = prune_units(model, {"1": [2]})  # norm_mode "weight": gamma only, as the reference
    assert set(keep) == {"1.weight"} and model[1].weight[2] == 0 and model[1].bias[2] == 0.5
    assert zeroed_units(model, "1").tolist() == [2]
    prune_units(model, {"1": [0]}, norm_mode="output")
    assert model[1].weight[0] == 0 and model[1].bias[0] == 0
    model.eval()
    out = {}
    model[1].register_forward_hook(lambda m, i, o: out.setdefault("bn", o))
    model(torch.randn(2, 1, 4, 4))
    assert torch.all(out["bn"][:, 0] == 0) and torch.all(out["bn"][:, 2] == 0.5)


def test_prune_units_rejects_bad_input():
    model = mlp()
    with pytest.raises(ValueError, match=r"in \[0, 5\)"):
        prune_units(model, {"0": [5]})
    with pytest.raises(TypeError, match="ints"):
        prune_units(model, {"0": [1.5]})
    with pytest.raises(TypeError, match="mapping"):
        prune_units(model, [0, 1])
    with pytest.raises(ValueError, match="boolean unit mask"):
        prune_units(model, {"0": torch.tensor([True, False])})
    assert torch.all(model[0].weight != 0)  # nothing was changed by the failed calls


# ------------------------------------------------------------------------------------------- RNP
def blobs(n_per_class: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three classes: x = 3 * one-hot(class) + noise, and a fourth input that is always 1."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(3).repeat_interleave(n_per_class)
    x = torch.zeros(len(y), 4)
    x[torch.arange(len(y)), y] = 3.0
    x[:, :3] += 0.1 * torch.randn(len(y), 3, generator=generator)
    x[:, 3] = 1.0
    return x, y


def planted_model() -> nn.Sequential:
    """Hidden units 0-2 detect classes 0-2; unit 3 fires on every input and pushes the logits to class 0."""
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(4))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[2.0, 0, 0, 10.0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]]))
        model[2].bias.zero_()
    return model


def test_planted_unit_mask_collapses_and_it_is_the_one_pruned():
    x, y = blobs()
    model = planted_model()
    assert (model(x).argmax(1) == y).float().mean() < 0.4  # the planted unit sends everything to class 0
    # A negligible unlearning step (threshold 1 stops it after one epoch), then the paper's recovery.
    config = RNPConfig(unlearning_lr=1e-9, clean_threshold=1.0, batch_size=16)
    pruned, report = reconstructive_neuron_pruning(model, (x, y), config, seed=0)
    assert report.reached_threshold and len(report.unlearning) == 1 and len(report.recovery) == 20
    assert report.masks["0"][3] <= 0.2 and torch.all(report.masks["0"][:3] > 0.9)
    assert report.pruned == {"0": [3]} and report.num_pruned == 1
    assert pruned is not model and model[0].weight[3, 3] == 1.0  # the original is left alone
    assert torch.all(pruned[0].weight[3] == 0) and pruned[0].bias[3] == 0
    assert torch.equal((pruned(x).argmax(1) == y).float().mean(), torch.tensor(1.0))
    assert report.keep["0.weight"][3].sum() == 0 and report.keep["0.weight"][:3].all()


def test_recovery_learns_masks_with_the_weights_frozen():
    x, y = blobs()
    model = planted_model()
    rnp = ReconstructiveNeuronPruning(model, (x, y), RNPConfig(unlearning_lr=1e-9, clean_threshold=1.0), seed=0)
    with pytest.raises(RuntimeError, match="before unlearning is done"):
        rnp.recover_epoch()
    rnp.unlearn()
    weights = {name: p.detach().clone() for name, p in rnp.unlearned.named_parameters()}
    before = rnp.masks["0"].detach().clone()
    row = rnp.recover_epoch()
    assert set(row) >= {"epoch", "loss", "accuracy", "mask_mean", "mask_min"}
    assert not torch.equal(rnp.masks["0"].detach(), before)
    for name, p in rnp.unlearned.named_parameters():
        assert torch.equal(p, weights[name]) and p.grad is None
    assert torch.all((rnp.masks["0"] >= 0) & (rnp.masks["0"] <= 1))
    with pytest.raises(RuntimeError, match="after recovery has started"):
        rnp.reached_threshold = False
        rnp.unlearn_epoch()


def trained_mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    x, y = blobs(seed=1)
    model = mlp(2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model, x, y


def test_unlearning_raises_the_clean_loss_and_stops_at_the_threshold():
    model, x, y = trained_mlp()
    reference = copy.deepcopy(model)
    loss_before = F.cross_entropy(model(x), y).item()
    # Three balanced classes: a collapsed model still gets 1/3 right, so the threshold here is 0.4.
    config = RNPConfig(unlearning_lr=0.5, clean_threshold=0.4, max_unlearning_epochs=50, unlearning_milestones=(100,))
    rnp = ReconstructiveNeuronPruning(model, (x, y), config, seed=0)
    rnp.unlearn_epoch()
    with torch.no_grad():
        assert F.cross_entropy(rnp.unlearned(x), y).item() > loss_before
    rnp.unlearn()
    rows = rnp.history["unlearning"]
    assert rnp.reached_threshold and rows[-1]["accuracy"] <= 0.4 and len(rows) < 50
    assert all(row["accuracy"] > 0.4 for row in rows[:-1])  # it stops after the first epoch at the threshold
    with pytest.raises(RuntimeError, match="unlearning is done"):
        rnp.unlearn_epoch()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q)  # the original model is unchanged


def test_one_unlearning_step_is_sgd_ascent_unclipped_by_default():
    # The reference's clip_grad_norm_ runs before backward (on zero gradients), so its ascent is unclipped:
    # the first step is theta - lr * (-grad L + wd * theta) (the momentum buffer starts at the gradient).
    model, x, y = trained_mlp()
    assert RNPConfig().grad_clip is None
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
    norm = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
    assert norm > 0
    lr, wd = 0.05, 5e-4
    for clip in (None, norm / 2):  # unclipped, and a clip that halves the ascent gradient
        config = RNPConfig(unlearning_lr=lr, unlearning_weight_decay=wd, grad_clip=clip, max_unlearning_epochs=1,
                           batch_size=x.shape[0])
        rnp = ReconstructiveNeuronPruning(model, (x, y), config, seed=0)
        rnp.unlearn_epoch()
        scale = 1.0 if clip is None else clip / (norm + 1e-6)
        for p0, g, p1 in zip(model.parameters(), grads, rnp.unlearned.parameters(), strict=True):
            torch.testing.assert_close(p1, p0 - lr * (-scale * g + wd * p0), rtol=1e-5, atol=1e-7)


def test_state_dict_resumes_exactly():
    model, x, y = trained_mlp()
    config = RNPConfig(unlearning_lr=0.05, batch_size=16, recovery_epochs=3)

    def make() -> ReconstructiveNeuronPruning:
        return ReconstructiveNeuronPruning(model, (x, y), config, seed=3)

    straight = make()
    straight.unlearn_epoch()
    state = copy.deepcopy(straight.state_dict())
    straight.unlearn()
    straight.recover()
    resumed = make()
    resumed.load_state_dict(state)
    resumed.unlearn()
    resumed.recover()
    assert torch.equal(resumed.masks["0"], straight.masks["0"])
    assert resumed.history == straight.history


def test_clean_data_as_a_list_of_batches_and_the_evaluate_callback():
    model, x, y = trained_mlp()
    batches = [(x[:30], y[:30]), (x[30:], y[30:])]
    calls = []

    def evaluate(m: nn.Module) -> dict[str, float]:
        calls.append(m.training)
        return {"probe": 1.5}

    config = RNPConfig(unlearning_lr=0.05, max_unlearning_epochs=2, recovery_epochs=2, prune_count=2)
    _, report = reconstructive_neuron_pruning(model, batches, config, evaluate=evaluate)
    assert report.num_pruned == 2 and len(calls) == len(report.unlearning) + 2 and not any(calls)
    assert all(row["probe"] == 1.5 for row in report.unlearning + report.recovery)


def test_summary_gives_flat_figures_of_the_run():
    x, y = blobs()
    calls = []

    def evaluate(m: nn.Module) -> dict[str, float]:
        calls.append(None)
        return {"clean_acc": 0.25 * len(calls), "asr": 0.5}

    rnp = ReconstructiveNeuronPruning(planted_model(), (x, y), RNPConfig(unlearning_lr=1e-9, clean_threshold=1.0,
                                                                         recovery_epochs=3), evaluate=evaluate)
    assert rnp.summary({"0": torch.tensor([], dtype=torch.long)}) == {
        "clean_samples": x.shape[0], "pruned_units": 0, "total_units": 4, "unlearning_epochs": 0,
        "unlearning_reached_threshold": 0, "pruned_fraction": 0.0, "pruned_layer0": 0}  # nothing run yet
    rnp.unlearn()
    rnp.recover()
    summary = rnp.summary(rnp.units_to_prune())
    last_unlearning, last_recovery = rnp.history["unlearning"][-1], rnp.history["recovery"][-1]
    assert summary == {
        "clean_samples": x.shape[0], "pruned_units": 1, "total_units": 4, "unlearning_epochs": 1,
        "unlearning_reached_threshold": 1,
        "unlearned_train_acc": last_unlearning["accuracy"], "unlearned_monitor_clean_acc": 0.25,
        "unlearned_monitor_asr": 0.5,
        "recovered_train_acc": last_recovery["accuracy"], "recovered_monitor_clean_acc": 1.0,
        "recovered_monitor_asr": 0.5, "pruned_fraction": 0.25, "pruned_layer0": 1}
    assert list(summary)[5:8] == ["unlearned_train_acc", "unlearned_monitor_clean_acc", "unlearned_monitor_asr"]
    batches = ReconstructiveNeuronPruning(planted_model(), [(x, y)], RNPConfig())
    assert batches.summary({"0": torch.tensor([1, 2])})["clean_samples"] == -1


def test_rnp_rejects_bad_arguments():
    model, x, y = trained_mlp()
    with pytest.raises(ValueError, match="unlearning_lr"):
        RNPConfig(unlearning_lr=0)
    with pytest.raises(ValueError, match="clean_threshold"):
        RNPConfig(clean_threshold=1.5)
    with pytest.raises(ValueError, match="both None"):
        RNPConfig(pruning_threshold=None)
    with pytest.raises(ValueError, match="same N"):
        ReconstructiveNeuronPruning(model, (x, y[:5]))
    with pytest.raises(TypeError, match="iterator"):
        ReconstructiveNeuronPruning(model, iter([(x, y)]))
    with pytest.raises(TypeError, match="clean_data"):
        ReconstructiveNeuronPruning(model, 3)
    with pytest.raises(ValueError, match="integer class indices"):
        ReconstructiveNeuronPruning(model, (x, y.float()))
    with pytest.raises(TypeError, match="config"):
        ReconstructiveNeuronPruning(model, (x, y), config={"unlearning_lr": 0.1})
    with pytest.raises(TypeError, match="unknown RNP hyperparameter"):
        reconstructive_neuron_pruning(model, (x, y), unlearning_rate=0.1)
    rnp = ReconstructiveNeuronPruning(model, (x, y))
    with pytest.raises(ValueError, match="not both"):
        rnp.units_to_prune(threshold=0.2, count=1)


def test_rnp_schedule_epochs_converts_update_counts_like_the_reference():
    reference = {"max_unlearning_updates": 84, "unlearning_milestones": (40, 80), "recovery_updates": 80}
    assert rnp_schedule_epochs(500, 128, **reference) == {  # the reference: 500 images, 4 batches per epoch
        "max_unlearning_epochs": 21, "unlearning_milestones": (10, 20), "recovery_epochs": 20}
    assert rnp_schedule_epochs(40, 128, **reference) == {"max_unlearning_epochs": 84,
                                                         "unlearning_milestones": (40, 80), "recovery_epochs": 80}
    assert rnp_schedule_epochs(25, 10, max_unlearning_updates=5, unlearning_milestones=[3], recovery_updates=7) == {
        "max_unlearning_epochs": 2, "unlearning_milestones": (1,), "recovery_epochs": 3}  # 3 batches: ceil(5/3)
    config = RNPConfig(**rnp_schedule_epochs(200, 128, **reference))  # the result is RNPConfig's fields
    assert config.max_unlearning_epochs == 42 and config.unlearning_milestones == (20, 40)
    with pytest.raises(ValueError, match="samples"):
        rnp_schedule_epochs(0, 128, **reference)
    with pytest.raises(ValueError, match="batch_size"):
        rnp_schedule_epochs(10, 0, **reference)
