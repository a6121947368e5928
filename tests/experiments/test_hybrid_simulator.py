"""The hybrid-simulator experiment: a tiny run end to end, exact resume, claim arithmetic, bad configs."""

from __future__ import annotations

import pytest
import torch

from experiments.refusal import assert_refused_before_start
from experiments.tiny_overrides import tiny
from neuroplastic.experiments.hybrid_simulator import CLAIMS, EXPERIMENT, NextStateMLP
from neuroplastic.runs import RunInterrupted, run_experiment, run_path

TINY = tiny("hybrid-simulator")


def test_tiny_run_writes_files_and_metrics(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "hybrid-simulator", "quick", 0)
    for name in ("summary.json", "metrics.csv", "trajectories.png", "error_vs_horizon.png", "error_vs_data.png"):
        assert (run_dir / name).is_file(), name
    metrics = summary["metrics"]
    for key in ("damping_0", "damping_1", "damping_max_rel_error", "analytic_error", "hybrid_error_1",
                "network_error_2", "data_ratio", "ground_truth_mujoco"):
        assert key in metrics, key
    assert metrics["analytic_error"] > 0 and len(summary["claims"]) == 3


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=TINY)
    with pytest.raises(RunInterrupted):  # stops inside the first hybrid phase
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=4)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    reference["metrics"].pop("id_cpu_seconds")
    resumed["metrics"].pop("id_cpu_seconds")
    assert resumed["metrics"] == reference["metrics"]


def test_claim_arithmetic():
    base = {"damping_0": 0.2, "damping_1": 0.1, "damping_max_rel_error": 0.049, "id_cpu_seconds": 5.0,
            "ground_truth_mujoco": True, "analytic_error": 0.1, "hybrid_error_1": 0.05, "network_error_1": 0.5,
            "hybrid_error_10": 0.01, "network_error_10": 0.04, "data_ratio": 10.0, "data_ratio_is_lower_bound": True,
            "hybrid_error_largest": 0.01, "network_error_largest": 0.04}
    assert [c.check(base)[0] for c in CLAIMS] == [True, True, True]
    worse = {**base, "damping_max_rel_error": 0.051, "network_error_10": 0.009, "data_ratio": 9.9}
    assert [c.check(worse)[0] for c in CLAIMS] == [False, False, False]
    assert not CLAIMS[1].check({**base, "hybrid_error_1": 0.2, "network_error_1": 0.3})[0]  # above analytic


def test_next_state_network_rolls_out_its_one_step_map():
    torch.manual_seed(0)
    net = NextStateMLP(2, (8,))
    q0, qd0 = torch.rand(3, 2, dtype=torch.float64), torch.rand(3, 2, dtype=torch.float64)
    q, qd = net.rollout(q0, qd0, 2)
    q1, qd1 = net(q0, qd0)
    torch.testing.assert_close(q[:, 2], net(q1, qd1)[0])
    assert q.shape == (3, 3, 2) and torch.equal(qd[:, 0], qd0)


@pytest.mark.parametrize(("key", "value"), [("window", "1000"), ("id_window", "100000"), ("data_sizes", "4,2"),
                                            ("true_damping", "0.1"), ("hybrid_lr", "0"), ("start_range", "nan")])
def test_bad_configs_are_refused_before_the_run_starts(tmp_path, key, value):
    assert_refused_before_start(EXPERIMENT, tmp_path, TINY, key, value)


def test_without_mujoco_the_ground_truth_is_the_damped_analytic_model(monkeypatch):
    import sys

    from neuroplastic.dynamics import HybridSimulator
    from neuroplastic.experiments.hybrid_simulator import Config, ground_truth

    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco -> ImportError
    q0, qd0 = torch.tensor([[0.5, -0.2]], dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)
    q, qd, used_mujoco = ground_truth(q0, qd0, 20, Config(), friction=True)
    assert not used_mujoco
    expected = HybridSimulator([1.0, 1.0], [1.0, 1.0], damping=[0.2, 0.1]).rollout(q0, qd0, 20)[0]
    torch.testing.assert_close(q, expected.detach())
