"""Backdoor measures and pruning baselines: ASR, BatchNorm statistics, Fine-Pruning's ranking, the trigger
oracle, pruned copies and the threshold sweep, on hand-built models."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from neuroplastic.models import ResNet, SmallCNN
from neuroplastic.structure import (
    activation_units,
    attack_success_rate,
    backdoor_scores,
    batch_statistics_accuracy,
    lowest_mask_units,
    mean_activations,
    oracle_counts,
    oracle_curve,
    pruned_copy,
    random_units,
    recalibrated_copy,
    threshold_sweep,
    trigger_oracle,
    trigger_ranking,
    unit_pruning_costs,
)


class _Constant(nn.Module):
    """Always predicts ``label`` (logits one-hot), whatever the input."""

    def __init__(self, label: int, classes: int = 10) -> None:
        super().__init__()
        self.bias = nn.Parameter(F.one_hot(torch.tensor(label), classes).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1)


def test_attack_success_rate_is_the_exact_fraction_sent_to_the_target():
    triggered = torch.rand(7, 1, 4, 4)
    assert attack_success_rate(_Constant(3), triggered, 3) == 1.0  # always the target: every attack succeeds
    assert attack_success_rate(_Constant(2), triggered, 3) == 0.0
    model = SmallCNN((1,), (1,), num_classes=2)  # class 1 exactly when the image mean is above 0.5
    with torch.no_grad():
        model.blocks[0].conv.weight.zero_()
        model.blocks[0].conv.weight[0, 0, 1, 1] = 1.0
        model.head.weight.copy_(torch.tensor([[0.0], [1.0]]))
        model.head.bias.copy_(torch.tensor([0.5, 0.0]))
    images = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.7, 0.0, 0.3]).reshape(7, 1, 1, 1).expand(7, 1, 3, 3).clone()
    assert attack_success_rate(model, images, 1, batch_size=2) == 3 / 7  # 0.9, 0.8, 0.7; exact, not float32
    assert model.training  # the previous mode is restored


def test_activation_baseline_picks_the_least_active_channels():
    model = SmallCNN((3,), (1,))
    with torch.no_grad():
        model.blocks[0].conv.weight.fill_(1.0)
        model.blocks[0].bn.weight.copy_(torch.tensor([1.0, 1.0, 1.0]))
        model.blocks[0].bn.bias.copy_(torch.tensor([2.0, -5.0, 0.5]))  # channel 1 is dead after the ReLU
    chosen = activation_units(model, {"blocks.0.bn": 2}, torch.rand(4, 1, 6, 6))
    assert chosen["blocks.0.bn"].tolist() == [1, 2]

def _one_channel_model() -> SmallCNN:
    model = SmallCNN((1,), (1,))
    with torch.no_grad():
        model.blocks[0].conv.weight.zero_()
        model.blocks[0].conv.weight[0, 0, 1, 1] = 1.0  # the conv copies the image
        model.head.weight.copy_(torch.linspace(-1, 1, 10)[:, None])
        model.head.bias.zero_()
    return model


def test_batch_statistics_accuracy_normalises_by_the_batch_and_leaves_the_model_alone():
    model = _one_channel_model()
    with torch.no_grad():
        model.blocks[0].bn.running_mean.fill_(5.0)  # stored statistics far from the images'
    state = {k: v.clone() for k, v in model.state_dict().items()}
    scale = torch.arange(30.0)[:, None, None, None]
    images = torch.rand(30, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * scale
    bn = model.blocks[0].bn
    # the slow literal reference: normalise by the batch's own mean and (biased) variance
    normalised = F.batch_norm(images, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    logits = model.head(F.relu(normalised).mean(dim=(2, 3)))
    labels = torch.randint(0, 10, (30,), generator=torch.Generator().manual_seed(1))
    labels[:15] = logits.argmax(1)[:15]
    expected = float((logits.argmax(1) == labels).float().mean())
    assert batch_statistics_accuracy(model, images, labels) == pytest.approx(expected)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # running stats untouched


def test_recalibrated_copy_re_estimates_running_statistics():
    model = _one_channel_model()
    images = torch.rand(50, 1, 4, 4, generator=torch.Generator().manual_seed(2)) * 3
    recalibrated = recalibrated_copy(model, images, batch_size=20)  # three batches, averaged
    bn = recalibrated.blocks[0].bn
    assert not recalibrated.training and bn.momentum == model.blocks[0].bn.momentum
    batches = [images[i:i + 20] for i in (0, 20, 40)]
    torch.testing.assert_close(bn.running_mean, torch.stack([b.mean() for b in batches]).mean().reshape(1))
    torch.testing.assert_close(bn.running_var, torch.stack([b.var() for b in batches]).mean().reshape(1))
    assert model.blocks[0].bn.running_mean.item() == 0.0  # the original keeps its statistics


def test_trigger_ranking_orders_channels_by_the_trigger_effect():
    model = SmallCNN((3,), (1,))
    with torch.no_grad():
        model.blocks[0].conv.weight.zero_()
        model.blocks[0].conv.weight[0, 0, 1, 1] = 1.0  # channel 0 copies the pixel
        model.blocks[0].conv.weight[1, 0, 1, 1] = -1.0  # channel 1: its negative (the trigger lowers it)
        model.blocks[0].conv.weight[2, 0, 1, 1] = 0.5  # channel 2: half of it
    model.eval()  # running statistics 0 and 1: BatchNorm is the identity
    clean = torch.zeros(2, 1, 4, 4)
    triggered = clean.clone()
    triggered[:, :, 3, 3] = 1.0
    assert trigger_ranking(model, ["blocks.0.bn"], clean, triggered) == [("blocks.0.bn", 0), ("blocks.0.bn", 2),
                                                                         ("blocks.0.bn", 1)]

def test_pruning_a_resnet_channel_zeroes_only_that_gamma():
    model = ResNet(4, (1, 1), stem_stride=2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)  # no parameter is zero before pruning
    before = {name: value.clone() for name, value in model.state_dict().items()}
    pruned = pruned_copy(model, {"stages.1.0.shortcut_bn": torch.tensor([2]), "stages.0.0.bn2": torch.tensor([0, 3])})
    after = pruned.state_dict()
    assert after["stages.1.0.shortcut_bn.weight"].tolist() == [v if i != 2 else 0.0 for i, v in
                                                               enumerate(before["stages.1.0.shortcut_bn.weight"].tolist())]
    assert after["stages.0.0.bn2.weight"][[0, 3]].tolist() == [0.0, 0.0]
    torch.testing.assert_close(after["stages.0.0.bn2.weight"][1:3], before["stages.0.0.bn2.weight"][1:3])
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"stages.1.0.shortcut_bn.weight", "stages.0.0.bn2.weight"}  # beta and the rest are kept
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())  # original intact
    # the pruned channel outputs its constant beta, whatever the input
    outputs = {}
    pruned.get_submodule("stages.1.0.shortcut_bn").register_forward_hook(lambda m, i, o: outputs.update(sc=o))
    pruned.eval()
    pruned(torch.rand(3, 1, 28, 28))
    beta = after["stages.1.0.shortcut_bn.bias"][2]
    torch.testing.assert_close(outputs["sc"][:, 2], torch.full_like(outputs["sc"][:, 2], float(beta)))

def test_oracle_counts_step_by_one_then_by_an_eighth():
    assert oracle_counts(6) == [0, 1, 2, 3, 4, 5, 6]
    assert oracle_counts(40) == list(range(17)) + [18, 20, 22, 24, 27, 30, 33, 37, 40]
    assert oracle_counts(0) == [0]
    with pytest.raises(ValueError, match="limit"):
        oracle_counts(-1)


def test_lowest_mask_units_picks_the_smallest_masks():
    masks = {"a": torch.tensor([0.1, 0.0, 0.5, 0.2]), "b": torch.tensor([0.05, 0.0])}
    units = {"a": torch.tensor([0, 1, 3]), "b": torch.tensor([0, 1])}
    chosen = lowest_mask_units(masks, units, 3)  # 0.0 (a:1), 0.0 (b:1), 0.05 (b:0)
    assert {name: index.tolist() for name, index in chosen.items()} == {"a": [1], "b": [0, 1]}
    assert {name: index.tolist() for name, index in lowest_mask_units(masks, units, 10).items()} == {
        "a": [0, 1, 3], "b": [0, 1]}


def test_mean_activations_average_relu_over_images_and_positions_by_hand():
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
    images = torch.tensor([[1.0, -2.0], [3.0, 0.0]]).reshape(1, 1, 2, 2).repeat(3, 1, 1, 1)
    images[1] *= 2
    means = mean_activations(model, ["0"], images, batch_size=2)  # batches of 2 and 1 are summed
    # channel 0: relu(x), mean over 12 positions = (4 + 8 + 4) / 12; channel 1: relu(-x) = (2 + 4 + 2) / 12
    torch.testing.assert_close(means["0"], torch.tensor([16 / 12, 8 / 12]))
    assert not model._forward_hooks  # the hooks are removed


def test_random_units_are_seeded_sorted_and_distinct():
    model = SmallCNN((6, 4), (1, 1))
    chosen = random_units(model, {"blocks.0.bn": 3, "blocks.1.bn": 4}, torch.Generator().manual_seed(0))
    assert chosen["blocks.1.bn"].tolist() == [0, 1, 2, 3]  # all four channels
    index = chosen["blocks.0.bn"].tolist()
    assert index == sorted(index) and len(set(index)) == 3 and all(0 <= i < 6 for i in index)
    again = random_units(model, {"blocks.0.bn": 3, "blocks.1.bn": 4}, torch.Generator().manual_seed(0))
    assert all(torch.equal(chosen[name], again[name]) for name in chosen)


def test_pruned_copy_skips_empty_layers_and_leaves_the_model():
    model = SmallCNN((3, 2), (1, 1))
    pruned = pruned_copy(model, {"blocks.0.bn": torch.tensor([1]), "blocks.1.bn": torch.tensor([], dtype=torch.long)})
    assert pruned.blocks[0].bn.weight[1].item() == 0.0 and model.blocks[0].bn.weight[1].item() == 1.0
    assert torch.equal(pruned.blocks[1].bn.weight, model.blocks[1].bn.weight)


def test_unit_pruning_costs_are_accuracy_drops_in_points():
    model = _one_channel_model()
    images = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    labels = model.eval()(images).argmax(1)  # the model is right on every image
    model.train()
    rows = unit_pruning_costs(model, {"blocks.0.bn": torch.tensor([0])}, images, labels)
    pruned = pruned_copy(model, {"blocks.0.bn": torch.tensor([0])})
    expected_eval = 100 * (1.0 - float((pruned.eval()(images).argmax(1) == labels).sum()) / 20)
    assert rows[0]["layer"] == "blocks.0.bn" and rows[0]["unit"] == 0
    assert rows[0]["drop_eval"] == pytest.approx(expected_eval)
    base = batch_statistics_accuracy(model, images, labels)
    assert rows[0]["drop_batchstats"] == pytest.approx(100 * (base - batch_statistics_accuracy(pruned, images, labels)))
    assert unit_pruning_costs(model, {"blocks.0.bn": torch.tensor([], dtype=torch.long)}, images, labels) == []


def test_oracle_curve_prunes_the_ranking_in_steps_until_the_asr_falls():
    model = SmallCNN((4,), (1,))
    seen = []

    def score(pruned):
        zeroed = int((pruned.blocks[0].bn.weight == 0).sum())
        seen.append(pruned.blocks[0].bn.weight.eq(0).nonzero().flatten().tolist())
        return {"clean_acc": 1.0 - 0.1 * zeroed, "asr": 1.0 if zeroed < 2 else 0.0}

    ranking = [("blocks.0.bn", 2), ("blocks.0.bn", 0), ("blocks.0.bn", 3), ("blocks.0.bn", 1)]
    curve = oracle_curve(model, ranking, [0, 1, 2, 3, 4], score, asr_max=0.2)
    assert curve == [{"pruned": 0, "clean_acc": 1.0, "asr": 1.0}, {"pruned": 1, "clean_acc": 0.9, "asr": 1.0},
                     {"pruned": 2, "clean_acc": 0.8, "asr": 0.0}]  # stops at the first ASR below 0.2
    assert seen == [[], [2], [0, 2]]  # the top-ranked channels, in order
    assert len(oracle_curve(model, ranking, [0, 1], score, asr_max=0.2)) == 2  # never below: every count


def test_threshold_sweep_prunes_by_threshold_and_baselines_match_the_counts():
    model = SmallCNN((4, 2), (1, 1))
    masks = {"blocks.0.bn": torch.tensor([0.0, 0.3, 0.1, 0.9]), "blocks.1.bn": torch.tensor([0.5, 0.05])}
    calls = []

    def units_at(threshold):
        return {name: torch.nonzero(values <= threshold).flatten() for name, values in masks.items()}

    def first(counts):
        calls.append(dict(counts))
        return {name: torch.arange(count) for name, count in counts.items()}

    def score(pruned):
        return {"clean_acc": float(sum(int((m.weight == 0).sum()) for m in pruned.modules()
                                       if isinstance(m, nn.BatchNorm2d))), "asr": 0.5}

    rows = threshold_sweep(model, units_at, [0.0, 0.1, 0.5], score, baselines={"first": first})
    assert [row["pruned"] for row in rows] == [1, 3, 5]
    assert calls == [{"blocks.0.bn": 1, "blocks.1.bn": 0}, {"blocks.0.bn": 2, "blocks.1.bn": 1},
                     {"blocks.0.bn": 3, "blocks.1.bn": 2}]
    assert list(rows[1]) == ["threshold", "pruned", "clean_acc", "asr", "first_clean_acc", "first_asr"]
    assert rows[1]["clean_acc"] == rows[1]["first_clean_acc"] == 3.0  # as many channels, chosen another way
    assert threshold_sweep(model, units_at, [0.1], score)[0] == {"threshold": 0.1, "pruned": 3, "clean_acc": 3.0,
                                                                 "asr": 0.5}


def test_backdoor_scores_are_the_clean_accuracy_and_the_asr():
    images, triggered = torch.rand(4, 1, 4, 4), torch.rand(5, 1, 4, 4)
    labels = torch.tensor([3, 3, 1, 2])
    assert backdoor_scores(_Constant(3), images, labels, triggered, 3) == {"clean_acc": 0.5, "asr": 1.0}
    assert backdoor_scores(_Constant(1), images, labels, triggered, 3, batch_size=2) == {"clean_acc": 0.25,
                                                                                         "asr": 0.0}


def test_trigger_oracle_ranks_then_prunes_the_top_channels_until_the_asr_falls():
    model = SmallCNN((3,), (1,))
    with torch.no_grad():
        model.blocks[0].conv.weight.zero_()
        model.blocks[0].conv.weight[0, 0, 1, 1] = 1.0  # channel 0 copies the pixel: the trigger raises it most
        model.blocks[0].conv.weight[2, 0, 1, 1] = 0.5
    model.eval()
    clean = torch.zeros(2, 1, 4, 4)
    triggered = clean.clone()
    triggered[:, :, 3, 3] = 1.0

    def score(pruned):  # the backdoor lives in channel 0
        return {"clean_acc": 1.0, "asr": 0.0 if pruned.blocks[0].bn.weight[0] == 0 else 1.0}

    ranking, curve = trigger_oracle(model, ["blocks.0.bn"], clean, triggered, score, max_fraction=1.0, asr_max=0.2)
    assert ranking == trigger_ranking(model, ["blocks.0.bn"], clean, triggered)
    assert ranking[0] == ("blocks.0.bn", 0)
    assert curve == oracle_curve(model, ranking, oracle_counts(3), score, asr_max=0.2)
    assert [row["pruned"] for row in curve] == [0, 1] and curve[-1]["asr"] == 0.0
    _, capped = trigger_oracle(model, ["blocks.0.bn"], clean, triggered, lambda m: {"clean_acc": 1.0, "asr": 1.0},
                               max_fraction=0.5, asr_max=0.2)
    assert [row["pruned"] for row in capped] == [0, 1]  # at most int(0.5 * 3) = 1 channel
    with pytest.raises(ValueError, match="max_fraction"):
        trigger_oracle(model, ["blocks.0.bn"], clean, triggered, score, max_fraction=0.0, asr_max=0.2)
