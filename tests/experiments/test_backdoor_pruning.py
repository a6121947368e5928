"""The backdoor-pruning experiment: a tiny run end to end, its helpers, and exact resume."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from neuroplastic.experiments.backdoor_pruning import (
    EXPERIMENT,
    BackdoorCNN,
    BackdoorResNet,
    BasicBlock,
    Config,
    _lowest_masks,
    _pruned_copy,
    _spread,
    activation_units,
    augment_images,
    batch_statistics_accuracy,
    build_model,
    defense_indices,
    lr_milestone_epochs,
    oracle_counts,
    random_flip,
    random_shift,
    recalibrated_copy,
    rnp_epochs,
    trigger_ranking,
)
from neuroplastic.runs import RunInterrupted, run_experiment
from neuroplastic.structure.neuron_masks import default_mask_layers

TINY = {
    "channels": "4,8", "strides": "2,2", "epochs": 1, "batch_size": 200, "max_unlearning_updates": 3,
    "recovery_updates": 2, "ablation_fractions": "0.02", "monitor_size": 20, "sweep_thresholds": "0.2,0.5",
}


def test_tiny_run_writes_files_metrics_and_claims(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = tmp_path / "backdoor-pruning"
    for name in ("config.json", "summary.json", "metrics.csv", "metrics.png", "defence.png", "masks.png",
                 "procedure.png", "channel_costs.png", "rnp.json", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    for key in ("clean_acc_before", "asr_before", "clean_acc_after", "asr_after", "clean_drop_points",
                "pruned_units", "random_asr", "activation_asr", "ablation_2pct_asr", "ablation_2pct_clean_samples"):
        assert key in m, key
    assert m["defense_samples"] == 40 and m["ablation_2pct_clean_samples"] == 80  # 1% and 2% of 4,000
    assert m["total_units"] == 12 and m["poisoned_train_images"] == 400
    assert m["clean_drop_points"] == pytest.approx(100 * (m["clean_acc_before"] - m["clean_acc_after"]))
    assert len(summary["claims"]) == 2
    rnp = json.loads((run_dir / "rnp.json").read_text())
    assert set(rnp["masks"]) == {"blocks.0.bn", "blocks.1.bn"} and len(rnp["masks"]["blocks.1.bn"]) == 8
    assert all(0.0 <= v <= 1.0 for values in rnp["masks"].values() for v in values)
    assert sum(len(v) for v in rnp["pruned"].values()) == m["pruned_units"]
    assert [row["threshold"] for row in rnp["threshold_sweep"]] == [0.2, 0.5]
    assert len(rnp["recovery"]) == 2 and 1 <= len(rnp["unlearning"]) <= 3
    # the trigger oracle stops at the first count with ASR < 20%, or at half of the 12 channels
    curve = rnp["oracle_curve"]
    assert [row["pruned"] for row in curve] == list(range(len(curve))) and len(curve) <= 7
    assert curve[0]["clean_acc"] == pytest.approx(m["clean_acc_before"])  # nothing pruned yet
    assert curve[0]["asr"] == pytest.approx(m["asr_before"])
    assert all(row["asr"] >= 0.2 for row in curve[:-1])
    assert m["oracle_asr"] == pytest.approx(curve[-1]["asr"])
    if curve[-1]["asr"] < 0.2:
        assert m["oracle_pruned_units"] == len(curve) - 1
    else:
        assert len(curve) == 7 and str(m["oracle_pruned_units"]) == "nan"  # not found (NaN, "nan" in JSON)
    below = [row for row in rnp["threshold_sweep"] if row["asr"] < 0.2]
    if below:
        assert m["sweep_threshold_asr_below_max"] == below[0]["threshold"]
    # the BatchNorm diagnostics: one cost row per pruned channel, and their means
    costs = rnp["pruned_channel_costs"]
    assert len(costs) == m["pruned_units"] and m["pruned_fraction"] == pytest.approx(m["pruned_units"] / 12)
    assert sorted((row["layer"], row["unit"]) for row in costs) == sorted(
        (layer, unit) for layer, units in rnp["pruned"].items() for unit in units)
    if costs:
        assert m["pruned_channel_drop_eval_points"] == pytest.approx(sum(r["drop_eval"] for r in costs) / len(costs))
        assert m["pruned_channel_drop_eval_max_points"] == pytest.approx(max(r["drop_eval"] for r in costs))
    for key in ("recovered_monitor_clean_acc", "recovered_monitor_asr", "recalibrated_clean_acc", "recalibrated_asr"):
        assert 0.0 <= m[key] <= 1.0, key


@pytest.mark.parametrize("stop_after", [5, 22])  # in the training phase; in the unlearning phase
def test_interrupted_run_resumes_to_the_same_metrics(tmp_path, stop_after):
    overrides = dict(TINY, ablation_fractions="")
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=overrides)
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=overrides,
                       stop_after_steps=stop_after)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=overrides,
                             resume=True)
    assert resumed["metrics"] == reference["metrics"]


def test_random_shift_moves_images_with_zero_fill():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0
    generator = torch.Generator().manual_seed(0)
    shifted = random_shift(image.repeat(50, 1, 1, 1), generator, 2)
    assert shifted.shape == (50, 1, 5, 5) and torch.all(shifted.sum(dim=(1, 2, 3)) == 1)  # the pixel stays inside
    positions = {tuple(torch.nonzero(s[0]).flatten().tolist()) for s in shifted}
    assert len(positions) > 5 and all(0 <= r <= 4 and 0 <= c <= 4 for r, c in positions)
    edge = torch.zeros(1, 1, 3, 3)
    edge[0, 0, 0, 0] = 1.0
    assert torch.equal(random_shift(edge, generator, 0), edge)
    lost = random_shift(edge.repeat(200, 1, 1, 1), generator, 1).sum(dim=(1, 2, 3))
    assert set(lost.tolist()) == {0.0, 1.0}  # shifted out of the frame, or not


def test_random_flip_mirrors_about_half_the_images_and_draws_nothing_when_disabled():
    images = torch.arange(300 * 2 * 3 * 4, dtype=torch.float32).reshape(300, 2, 3, 4)
    flipped = random_flip(images, torch.Generator().manual_seed(5))
    expected = torch.rand(300, generator=torch.Generator().manual_seed(5)) < 0.5  # the same draws
    for image, out, mirrored in zip(images, flipped, expected, strict=True):
        assert torch.equal(out, image.flip(-1) if mirrored else image)
    assert 120 < int(expected.sum()) < 180
    # shift 0 and no flip: the images unchanged, the generator untouched (seeded runs keep their numbers)
    generator = torch.Generator().manual_seed(3)
    state = generator.get_state()
    assert torch.equal(augment_images(images, generator, Config(augment_shift=0)), images)
    assert torch.equal(generator.get_state(), state)
    both = augment_images(images, torch.Generator().manual_seed(3), Config(augment_shift=1, augment_flip=True))
    generator = torch.Generator().manual_seed(3)
    assert torch.equal(both, random_flip(random_shift(images, generator, 1), generator))


def _write_tiny_cifar(directory, per_batch=40, test=50):
    """CIFAR-10's python layout: five training batches and a test batch of random uint8 images."""
    rng = np.random.default_rng(0)
    directory.mkdir()
    for name, count in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        batch = {b"data": rng.integers(0, 256, size=(count, 3072), dtype=np.uint8),
                 b"labels": rng.integers(0, 10, size=count).tolist()}
        (directory / name).write_bytes(pickle.dumps(batch, protocol=2))


def test_cifar10_option_trains_a_three_channel_network_on_the_users_files(tmp_path):
    _write_tiny_cifar(tmp_path / "cifar")
    overrides = dict(TINY, dataset="cifar10", data_dir=str(tmp_path / "cifar"), augment_shift=4, augment_flip=True,
                     ablation_fractions="")
    summary = run_experiment(EXPERIMENT, out=tmp_path / "run", seed=0, progress=False, overrides=overrides)
    m = summary["metrics"]
    assert m["poisoned_train_images"] == 20 and m["defense_samples"] == 2  # 10% and 1% of 200 images
    state = torch.load(tmp_path / "run" / "backdoor-pruning" / "checkpoint.pt", weights_only=False)
    weights = [v for k, v in _flatten(state).items() if k.endswith("blocks.0.conv.weight")]
    assert weights and all(w.shape[1] == 3 for w in weights)  # RGB input
    with pytest.raises(ValueError, match="data_dir"):
        run_experiment(EXPERIMENT, out=tmp_path / "x", seed=0, progress=False, overrides=dict(TINY, dataset="cifar10"))
    with pytest.raises(ValueError, match="dataset must be one of 'mnist-sample', 'cifar10'"):
        run_experiment(EXPERIMENT, out=tmp_path / "y", seed=0, progress=False, overrides=dict(TINY, dataset="svhn"))
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        run_experiment(EXPERIMENT, out=tmp_path / "z", seed=0, progress=False,
                       overrides=dict(TINY, dataset="cifar10", data_dir=str(tmp_path)))


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): tree}


def test_defense_indices_are_clean_and_seeded():
    poisoned = torch.arange(0, 100, 2)
    index = defense_indices(poisoned, 100, 10, torch.Generator().manual_seed(0))
    assert index.numel() == 10 and torch.all(index % 2 == 1) and index.unique().numel() == 10
    assert torch.equal(index, defense_indices(poisoned, 100, 10, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="only 50"):
        defense_indices(poisoned, 100, 60, torch.Generator())


def test_activation_baseline_picks_the_least_active_channels():
    model = BackdoorCNN((3,), (1,))
    with torch.no_grad():
        model.blocks[0].conv.weight.fill_(1.0)
        model.blocks[0].bn.weight.copy_(torch.tensor([1.0, 1.0, 1.0]))
        model.blocks[0].bn.bias.copy_(torch.tensor([2.0, -5.0, 0.5]))  # channel 1 is dead after the ReLU
    chosen = activation_units(model, {"blocks.0.bn": 2}, torch.rand(4, 1, 6, 6))
    assert chosen["blocks.0.bn"].tolist() == [1, 2]


def test_rnp_schedule_counts_updates_like_the_reference():
    config = Config()  # 84 unlearning updates (lr / 10 after 40 and 80), 80 recovery updates, batch 128
    assert rnp_epochs(config, 500) == {"max_unlearning_epochs": 21, "unlearning_milestones": (10, 20),
                                       "recovery_epochs": 20}  # the reference's epochs: 500 images, 4 batches
    assert rnp_epochs(config, 40) == {"max_unlearning_epochs": 84, "unlearning_milestones": (40, 80),
                                      "recovery_epochs": 80}  # one batch per epoch
    assert rnp_epochs(config, 200) == {"max_unlearning_epochs": 42, "unlearning_milestones": (20, 40),
                                       "recovery_epochs": 40}
    odd = Config(max_unlearning_updates=5, unlearning_milestones=(3,), recovery_updates=7, rnp_batch_size=10)
    assert rnp_epochs(odd, 25) == {"max_unlearning_epochs": 2, "unlearning_milestones": (1,), "recovery_epochs": 3}
    with pytest.raises(ValueError, match="samples"):
        rnp_epochs(config, 0)


def test_training_lr_milestones_are_fractions_of_the_epochs():
    assert lr_milestone_epochs(Config()) == [4, 6]  # 8 epochs: lr 0.1, then 0.01 after epoch 4, 0.001 after 6
    assert lr_milestone_epochs(Config(epochs=30)) == [15, 22]
    assert lr_milestone_epochs(Config(epochs=1)) == [1]
    assert lr_milestone_epochs(Config(epochs=8, lr_milestones=(0.5, 0.55))) == [4]


def _one_channel_model() -> BackdoorCNN:
    model = BackdoorCNN((1,), (1,))
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
    model = BackdoorCNN((3,), (1,))
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


def test_monitor_indices_are_spread_over_the_sorted_test_set():
    assert _spread(1000, 5).tolist() == [0, 250, 500, 749, 999]
    assert _spread(3, 10).tolist() == [0, 1, 2]
    labels = torch.arange(10).repeat_interleave(100)  # class-sorted like the embedded test set
    assert labels[_spread(1000, 300)].bincount().tolist() == [30] * 10


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="defense_fraction"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=dict(TINY, defense_fraction=0))
    for field, value in (("recovery_updates", -1), ("unlearning_milestones", "0"), ("oracle_max_fraction", 0),
                         ("lr_milestones", "1.5"), ("weight_decay", -1)):
        with pytest.raises(ValueError, match=field):
            run_experiment(EXPERIMENT, out=tmp_path / field, seed=0, progress=False,
                           overrides=dict(TINY, **{field: value}))


# ------------------------------------------------------------------------------------------ the ResNet option
TINY_RESNET = dict(TINY, architecture="resnet", resnet_width=4, resnet_stages="1,1", resnet_stem_stride=2,
                   ablation_fractions="", sweep_thresholds="0.2", oracle_max_fraction=0.1, cost_max_channels=2)


def _bn_names(model):
    return [name for name, module in model.named_modules() if isinstance(module, torch.nn.BatchNorm2d)]


def test_resnet_layout_counts_channels_like_resnet18():
    model = BackdoorResNet(16, (2, 2, 2, 2), stem_stride=2)
    sizes = {name: model.get_submodule(name).num_features for name in _bn_names(model)}
    # stem 16; stage 0: 2 blocks x 2 BNs x 16; stages 1-3: 4 BNs + 1 shortcut BN of 32 / 64 / 128 channels
    assert sum(sizes.values()) == 16 + 4 * 16 + 5 * 32 + 5 * 64 + 5 * 128 == 1200
    assert [name for name in sizes if "shortcut" in name] == ["stages.1.0.shortcut_bn", "stages.2.0.shortcut_bn",
                                                             "stages.3.0.shortcut_bn"]
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert BackdoorResNet(4, (1,), stem_stride=1).stem(torch.rand(2, 1, 28, 28)).shape == (2, 4, 28, 28)
    assert default_mask_layers(model) == list(sizes)  # RNP masks every BatchNorm layer, shortcuts included


@pytest.mark.parametrize("stride,out_channels", [(1, 3), (2, 5)])  # identity shortcut; 1x1 conv + BN shortcut
def test_basic_block_matches_a_literal_computation(stride, out_channels):
    torch.manual_seed(0)
    block = BasicBlock(3, out_channels, stride)
    with torch.no_grad():  # non-trivial BatchNorm parameters and running statistics
        for module in block.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    block.eval()
    x = torch.randn(2, 3, 6, 6)

    def bn(module, h):
        scale = module.weight / torch.sqrt(module.running_var + module.eps)
        return (h - module.running_mean[:, None, None]) * scale[:, None, None] + module.bias[:, None, None]

    out = F.relu(bn(block.bn1, F.conv2d(x, block.conv1.weight, stride=stride, padding=1)))
    out = bn(block.bn2, F.conv2d(out, block.conv2.weight, padding=1))
    if stride == 1:
        assert block.shortcut_conv is None and block.shortcut_bn is None
        skip = x
    else:
        assert block.shortcut_conv.weight.shape == (out_channels, 3, 1, 1)
        skip = bn(block.shortcut_bn, F.conv2d(x, block.shortcut_conv.weight, stride=2))
    expected = F.relu(out + skip)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected)
    assert expected.shape == (2, out_channels, 6 // stride, 6 // stride)


def test_pruning_a_resnet_channel_zeroes_only_that_gamma():
    model = BackdoorResNet(4, (1, 1), stem_stride=2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)  # no parameter is zero before pruning
    before = {name: value.clone() for name, value in model.state_dict().items()}
    pruned = _pruned_copy(model, {"stages.1.0.shortcut_bn": torch.tensor([2]), "stages.0.0.bn2": torch.tensor([0, 3])})
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


def test_tiny_resnet_run_masks_every_batchnorm_layer(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY_RESNET)
    m = summary["metrics"]
    names = _bn_names(BackdoorResNet(4, (1, 1), stem_stride=2))
    assert names == ["stem.bn", "stages.0.0.bn1", "stages.0.0.bn2", "stages.1.0.bn1", "stages.1.0.bn2",
                     "stages.1.0.shortcut_bn"]
    assert m["total_units"] == 4 + 2 * 4 + 3 * 8 == 36
    rnp = json.loads((tmp_path / "backdoor-pruning" / "rnp.json").read_text())
    assert list(rnp["masks"]) == names and [len(v) for v in rnp["masks"].values()] == [4, 4, 4, 8, 8, 8]
    assert sum(len(v) for v in rnp["pruned"].values()) == m["pruned_units"]
    assert all(0.0 <= v <= 1.0 for values in rnp["masks"].values() for v in values)
    assert all(rnp["masks"][layer][unit] <= 0.2 for layer, units in rnp["pruned"].items() for unit in units)
    # the per-channel cost is measured on at most cost_max_channels = 2 pruned channels, the lowest masks
    costs = rnp["pruned_channel_costs"]
    assert len(costs) == m["pruned_channel_cost_count"] == min(2, m["pruned_units"]) and len(summary["claims"]) == 2
    pruned_masks = sorted(rnp["masks"][layer][unit] for layer, units in rnp["pruned"].items() for unit in units)
    assert sorted(rnp["masks"][row["layer"]][row["unit"]] for row in costs) == pruned_masks[:len(costs)]
    assert len(rnp["oracle_curve"]) <= 4  # at most 10% of the 36 channels: 0, 1, 2, 3
    assert m["clean_drop_points"] == pytest.approx(100 * (m["clean_acc_before"] - m["clean_acc_after"]))
    for key in ("random_asr", "activation_asr", "oracle_asr", "recalibrated_clean_acc", "recovered_monitor_asr"):
        assert 0.0 <= m[key] <= 1.0, key


def test_bad_architecture_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="architecture.*'plain', 'resnet'.*'vgg'"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=dict(TINY, architecture="vgg"))
    with pytest.raises(ValueError, match="architecture"):
        build_model(Config(architecture="ResNet"))
    with pytest.raises(ValueError, match="resnet_stages"):
        run_experiment(EXPERIMENT, out=tmp_path / "stages", seed=0, progress=False,
                       overrides=dict(TINY_RESNET, resnet_stages="1,0"))
    with pytest.raises(ValueError, match="width"):
        BackdoorResNet(0)


def test_oracle_counts_step_by_one_then_by_an_eighth():
    assert oracle_counts(6) == [0, 1, 2, 3, 4, 5, 6]
    assert oracle_counts(40) == list(range(17)) + [18, 20, 22, 24, 27, 30, 33, 37, 40]
    assert oracle_counts(0) == [0]
    with pytest.raises(ValueError, match="limit"):
        oracle_counts(-1)


def test_channel_costs_are_measured_on_the_lowest_masks():
    masks = {"a": torch.tensor([0.1, 0.0, 0.5, 0.2]), "b": torch.tensor([0.05, 0.0])}
    units = {"a": torch.tensor([0, 1, 3]), "b": torch.tensor([0, 1])}
    chosen = _lowest_masks(masks, units, 3)  # 0.0 (a:1), 0.0 (b:1), 0.05 (b:0)
    assert {name: index.tolist() for name, index in chosen.items()} == {"a": [1], "b": [0, 1]}
    assert {name: index.tolist() for name, index in _lowest_masks(masks, units, 10).items()} == {
        "a": [0, 1, 3], "b": [0, 1]}
