"""The backdoor-pruning experiment: a tiny run end to end, its config helpers, and exact resume. The networks,
augmentation and backdoor measures it uses are tested in tests/models, tests/data and tests/structure."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.backdoor_pruning import (
    EXPERIMENT,
    Config,
    _spread,
    build_model,
    lr_milestone_epochs,
    rnp_epochs,
)
from neuroplastic.models import ResNet
from neuroplastic.runs import RunInterrupted, apply_overrides, run_experiment, run_path

TINY = tiny("backdoor-pruning")


def test_tiny_run_writes_files_metrics_and_claims(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "backdoor-pruning", "quick", 0)
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
    state = torch.load(run_path(tmp_path / "run", "backdoor-pruning", "quick", 0) / "checkpoint.pt", weights_only=False)
    weights = [v for k, v in _flatten(state).items() if k.endswith("blocks.0.conv.weight")]
    assert weights and all(w.shape[1] == 3 for w in weights)  # RGB input
    with pytest.raises(ValueError, match="Config.data_dir must be "):
        run_experiment(EXPERIMENT, out=tmp_path / "x", seed=0, progress=False, overrides=dict(TINY, dataset="cifar10"))
    with pytest.raises(ValueError, match="Config.dataset must be one of 'mnist-sample', 'cifar10', got 'svhn'"):
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


def test_monitor_indices_are_spread_over_the_sorted_test_set():
    assert _spread(1000, 5).tolist() == [0, 250, 500, 749, 999]
    assert _spread(3, 10).tolist() == [0, 1, 2]
    labels = torch.arange(10).repeat_interleave(100)  # class-sorted like the embedded test set
    assert labels[_spread(1000, 300)].bincount().tolist() == [30] * 10


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"Config.defense_fraction must be a finite number in \(0, 1\], got 0"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=dict(TINY, defense_fraction=0))
    for field, value in (("recovery_updates", -1), ("unlearning_milestones", "0"), ("oracle_max_fraction", 0),
                         ("lr_milestones", "1.5"), ("weight_decay", -1)):
        with pytest.raises(ValueError, match=f"Config.{field} must be "):
            run_experiment(EXPERIMENT, out=tmp_path / field, seed=0, progress=False,
                           overrides=dict(TINY, **{field: value}))


@pytest.mark.parametrize("field, value, accepted", [
    ("poison_fraction", "0", r"a finite number in \(0, 1\]"), ("poison_fraction", "1.5", r"in \(0, 1\]"),
    ("ablation_fractions", "0.5,0", r"a tuple, each item a finite number in \(0, 1\]"),
    ("target_class", "10", r"an int in \[0, 9\]"), ("target_class", "-1", r"an int in \[0, 9\]"),
    ("epochs", "0", "an int >= 1"), ("batch_size", "0", "an int >= 1"), ("max_unlearning_updates", "0", ">= 1"),
    ("rnp_batch_size", "0", ">= 1"), ("monitor_size", "0", ">= 1"), ("trigger_size", "0", ">= 1"),
    ("cost_max_channels", "0", ">= 1"), ("augment_shift", "-1", "an int >= 0"),
    ("lr", "0", "a finite number > 0"), ("lr", "inf", "> 0"), ("momentum", "-0.1", "a finite number >= 0"),
    ("weight_decay", "nan", ">= 0"), ("lr_milestones", "0", r"each item a finite number in \(0, 1\]"),
    ("unlearning_milestones", "40,0", "each item an int >= 1"), ("recovery_updates", "-1", "an int >= 0"),
    ("oracle_max_fraction", "1.5", r"in \(0, 1\]"), ("architecture", "vgg", "one of 'plain', 'resnet'"),
    ("dataset", "svhn", "one of 'mnist-sample', 'cifar10'"), ("resnet_width", "0", ">= 1"),
    ("resnet_stem_stride", "0", ">= 1"), ("resnet_stages", "", "a non-empty tuple, each item an int >= 1"),
    ("resnet_stages", "1,0", "each item an int >= 1"),
])
def test_every_bad_field_is_rejected_by_its_declaration(field, value, accepted):
    with pytest.raises(ValueError, match=f"Config.{field} must be (.* )?{accepted}, got "):
        apply_overrides(Config(), {field: value})


def test_cifar10_needs_a_data_dir_and_threads_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="Config.data_dir must be the folder holding CIFAR-10's python batches"):
        apply_overrides(Config(), {"dataset": "cifar10"})
    assert apply_overrides(Config(), {"dataset": "cifar10", "data_dir": "somewhere"}).data_dir == "somewhere"
    with pytest.raises(ValueError, match="threads"):  # the runner sets the thread count, and checks it first
        run_experiment(EXPERIMENT, out=tmp_path, threads=0, progress=False)
    assert not (tmp_path / EXPERIMENT.name).exists()  # rejected before anything is run


def test_a_poison_fraction_that_leaves_too_few_clean_images_is_refused_before_the_run_starts(tmp_path):
    # found by tests/test_cli_fuzz.py: poison_fraction=1 passed the config checks, trained, and then failed in the
    # defence ("asked for 40 clean samples but only 0 training images are clean") after the run had started
    from neuroplastic.runs import ConfigRejected

    previous = run_path(tmp_path, EXPERIMENT.name, "quick", 0)
    previous.mkdir(parents=True)
    (previous / "summary.json").write_text(json.dumps({"finished": True}))
    for overrides in ({"poison_fraction": 1}, {"poison_fraction": 0.995},
                      {"defense_fraction": 0.5, "poison_fraction": 0.6}, {"ablation_fractions": "0.95"}):
        with pytest.raises(ConfigRejected, match="Config.poison_fraction must be small enough to leave the"):
            run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overwrite=True,
                           overrides=dict(TINY, **overrides))
        assert sorted(p.name for p in previous.iterdir()) == ["summary.json"]  # the finished run is intact


# ------------------------------------------------------------------------------------------ the ResNet option
TINY_RESNET = dict(TINY, architecture="resnet", resnet_width=4, resnet_stages="1,1", resnet_stem_stride=2,
                   ablation_fractions="", sweep_thresholds="0.2", oracle_max_fraction=0.1, cost_max_channels=2)


def _bn_names(model):
    return [name for name, module in model.named_modules() if isinstance(module, torch.nn.BatchNorm2d)]



def test_tiny_resnet_run_masks_every_batchnorm_layer(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY_RESNET)
    m = summary["metrics"]
    names = _bn_names(ResNet(4, (1, 1), stem_stride=2))
    assert names == ["stem.bn", "stages.0.0.bn1", "stages.0.0.bn2", "stages.1.0.bn1", "stages.1.0.bn2",
                     "stages.1.0.shortcut_bn"]
    assert m["total_units"] == 4 + 2 * 4 + 3 * 8 == 36
    rnp = json.loads((run_path(tmp_path, "backdoor-pruning", "quick", 0) / "rnp.json").read_text())
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
    with pytest.raises(ValueError, match="Config.architecture must be one of 'plain', 'resnet', got 'vgg'"):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=dict(TINY, architecture="vgg"))
    with pytest.raises(ValueError, match="architecture"):
        build_model(Config(architecture="ResNet"))
    with pytest.raises(ValueError, match=r"Config.resnet_stages must be a non-empty tuple, each item an int >= 1, "
                                         r"got \(1, 0\)"):
        run_experiment(EXPERIMENT, out=tmp_path / "stages", seed=0, progress=False,
                       overrides=dict(TINY_RESNET, resnet_stages="1,0"))
