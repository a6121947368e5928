"""The snn-rewiring experiment: the authors' SNN against a literal simulation, a tiny run, exact resume, claims."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from neuroplastic.experiments.snn_rewiring import CLAIMS, EXPERIMENT, Config, SpikingClassifier, spiking_activity
from neuroplastic.runs import RunInterrupted, run_experiment
from neuroplastic.structure.rewiring import GradRewiring

TINY = {"hidden": 16, "time_steps": 4, "alphas": "0.3,3.0", "epochs": 2, "batch_size": 500, "lr": 0.01}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted tiny run (seed 1), shared by the tests below."""
    out = tmp_path_factory.mktemp("reference")
    return out / "snn-rewiring", run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)


def test_tiny_run_writes_files_and_consistent_metrics(reference):
    run_dir, summary = reference
    for name in ("config.json", "summary.json", "metrics.csv", "accuracy_vs_connectivity.png",
                 "training_curves.png", "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert m["grad_r_runs"] == 2 and m["test_size"] == 1000
    assert m["target_connectivity"] == pytest.approx(0.05)
    assert m["weights_total"] == 784 * 16 + 16 * 10  # no biases: every parameter is a rewired synapse
    for k in range(2):
        assert m[f"gradr{k}_alpha"] == (0.3, 3.0)[k]
        assert 0.0 <= m[f"gradr{k}_accuracy"] <= 1.0
        assert m[f"gradr{k}_connectivity"] == m[f"gradr{k}_connections"] / m["weights_total"]
        per_layer = m[f"gradr{k}_connectivity_fc1"] * 784 * 16 + m[f"gradr{k}_connectivity_fc2"] * 160
        assert round(per_layer) == m[f"gradr{k}_connections"]
        assert m[f"gradr{k}_macs"] == round(m[f"gradr{k}_connectivity_fc1"] * 784 * 16)
        assert m[f"gradr{k}_pruned_events"] > 0
        assert 0.0 <= m[f"gradr{k}_hidden_rate"] <= 1.0 and m[f"gradr{k}_synops"] >= 0.0
    assert m["gradr1_connectivity"] < m["gradr0_connectivity"] < 1.0  # a stronger prior prunes more
    assert m["dense_connectivity"] == 1.0 and m["dense_macs"] == 784 * 16
    assert len(summary["claims"]) == 3
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == m
    phases = [line.split(",")[0] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]]
    assert phases == ["dense"] * 2 + ["gradr0"] * 2 + ["gradr1"] * 2


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):  # stops in the middle of the first Grad R run
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=3)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    assert (tmp_path / "b" / "snn-rewiring" / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def spikingjelly_reference(model: SpikingClassifier, x: torch.Tensor, tau: float, threshold: float) -> torch.Tensor:
    """SpikingJelly's LIFNode as the authors configure it, written out: v += (x - v) / tau, fire, hard reset to 0."""
    w1, w2 = model.fc1.weight, model.fc2.weight
    v1, v2 = torch.zeros(len(x), w1.shape[0]), torch.zeros(len(x), w2.shape[0])
    counts = torch.zeros(len(x), w2.shape[0])
    static = x @ w1.t()
    for _ in range(model.time_steps):
        v1 = v1 + (static - v1) / tau
        s1 = (v1 > threshold).float()
        v1 = v1 * (1 - s1)
        v2 = v2 + (s1 @ w2.t() - v2) / tau
        s2 = (v2 > threshold).float()
        v2 = v2 * (1 - s2)
        counts += s2
    return counts / model.time_steps


@pytest.mark.parametrize("tau", [2.0, 4.0])
def test_the_classifier_is_the_authors_spikingjelly_network(tau):
    torch.manual_seed(0)
    model = SpikingClassifier(hidden=40, time_steps=6, tau=tau, threshold=1.0)
    with torch.no_grad():
        model.fc1.weight.mul_(8.0)
        model.fc2.weight.mul_(8.0)
    x = torch.randn(7, 784)
    with torch.no_grad():
        rates, hidden = model(x, return_hidden=True)
        expected = spikingjelly_reference(model, x, tau, 1.0)
    assert hidden.shape == (7, 6, 40) and rates.shape == (7, 10)
    assert 0 < float(expected.sum()) and float(hidden.mean()) > 0.05  # the test exercises spikes
    assert torch.equal(rates, expected)


def test_spiking_activity_counts_spikes_and_synaptic_operations_by_hand():
    model = SpikingClassifier(hidden=3, time_steps=2, tau=2.0, threshold=1.0, in_features=2, classes=2)
    with torch.no_grad():
        # currents (times 1/tau = 1/2): neuron 0 gets 2 (fires at both steps); neuron 1 gets 0.75 (h = 0.75 < 1,
        # then 0.5 * 0.75 + 0.75 = 1.125: fires at the second step); neuron 2 gets 0
        model.fc1.weight.copy_(torch.tensor([[4.0, 0.0], [1.5, 0.0], [0.0, 0.0]]))
        model.fc2.weight.copy_(torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))  # fan-outs 1, 2, 1
    x = torch.tensor([[1.0, 5.0]])
    _, hidden = model(x, return_hidden=True)
    assert hidden[0].tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    activity = spiking_activity(model, x)
    assert activity["hidden_rate"] == pytest.approx(3 / (2 * 3))
    assert activity["synops"] == pytest.approx(2 * 1 + 1 * 2)  # neuron 0: 2 spikes x 1, neuron 1: 1 spike x 2
    assert activity["macs"] == 2.0  # the nonzero weights of the static layer


def test_grad_r_attaches_to_both_layers_and_pruned_weights_are_exactly_zero():
    model = SpikingClassifier(hidden=8, time_steps=3)
    rewiring = GradRewiring(model, nn.Linear, alpha=1.0)
    assert rewiring.names == ["fc1.weight", "fc2.weight"]
    with torch.no_grad():
        rewiring.theta("fc2.weight")[:, :4] = -1.0
    assert torch.equal(model.fc2.weight[:, :4], torch.zeros(10, 4))
    assert rewiring.connectivity().connected == int((model.fc1.weight != 0).sum()) + 10 * 4


def test_bad_arguments():
    with pytest.raises(ValueError, match="tau must be"):
        SpikingClassifier(tau=1.0)
    with pytest.raises(ValueError, match="hidden must be"):
        SpikingClassifier(hidden=0)
    with pytest.raises(ValueError, match="x must have shape"):
        SpikingClassifier(hidden=4)(torch.zeros(2, 10))
    with pytest.raises(ValueError, match="alphas"):
        EXPERIMENT.run(Config(alphas=()), None)


def metrics(dense, runs):
    m = {"dense_accuracy": dense, "target_connectivity": 0.05, "grad_r_runs": len(runs)}
    for k, (alpha, conn, acc) in enumerate(runs):
        m.update({f"gradr{k}_alpha": alpha, f"gradr{k}_connectivity": conn, f"gradr{k}_accuracy": acc})
    return m


def test_claims_pass_and_fail_on_hand_made_metrics():
    verdicts = [claim.evaluate(metrics(0.95, [(0.01, 0.30, 0.955), (0.1, 0.04, 0.94), (0.3, 0.012, 0.91)])).passed
                for claim in CLAIMS]
    assert verdicts == [True, True, True]
    bad = metrics(0.95, [(0.01, 0.30, 0.92), (0.1, 0.06, 0.945), (0.3, 0.012, 0.85)])
    assert [claim.evaluate(bad).passed for claim in CLAIMS] == [False, False, False]
    assert [claim.evaluate({"grad_r_runs": 1}).passed for claim in CLAIMS] == [False, False, False]
