"""The network-quine experiment: a tiny run end to end, exact resume, the claims' arithmetic and bad configs."""

from __future__ import annotations

import json
import math

import pytest

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.network_quine import CLAIMS, EXPERIMENT, Config, nontrivial, rank_correlation
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("network-quine")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "network-quine", "quick", 1), summary


def test_tiny_run_writes_figures_and_consistent_metrics(reference):
    run_dir, summary = reference
    for name in ("replication_over_training.png", "tradeoff.png", "metrics.csv", "summary.json"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert m["parameters"] == 8 * 8 + 8 + 8 + 1
    assert m["aux_parameters"] == (4 + 64) * 8 + 8 + 8 * 11 + 11
    for mode in ("optimise", "regenerate", "alternate"):
        assert float(m[f"{mode}_relative_error"]) >= 0 and 0 <= m[f"{mode}_nontrivial"] <= 1
    for i in range(2):
        assert 0 <= m[f"aux_l{i}_accuracy"] <= 1 and float(m[f"aux_l{i}_relative_error"]) > 0
    assert [c["statement"] for c in summary["claims"]] == [c.statement for c in CLAIMS]
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == m


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    run_dir, summary = reference
    with pytest.raises(RunInterrupted):  # inside the second vanilla phase
        run_experiment(EXPERIMENT, out=tmp_path, seed=1, progress=False, overrides=TINY, stop_after_steps=17)
    resumed = run_experiment(EXPERIMENT, out=tmp_path, seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]
    again = run_path(tmp_path, "network-quine", "quick", 1)
    assert (again / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()


def _metrics(**values):
    base = {"margin": 0.9}
    for mode, err, nt in (("optimise", 0.3, 1.0), ("regenerate", math.inf, 0.0), ("alternate", 0.2, 1.0)):
        base.update({f"{mode}_relative_error": err, f"{mode}_norm_ratio": 1.0, f"{mode}_spread": 1.0,
                     f"{mode}_nontrivial": nt})
    for i, (acc, err) in enumerate(((0.5, 0.1), (0.7, 0.3), (0.9, 0.5))):
        base[f"aux_l{i}_accuracy"], base[f"aux_l{i}_relative_error"] = acc, err
    base.update({"aux_accuracy_rank_corr": 1.0, "aux_error_rank_corr": 1.0})
    base.update(values)
    return base


def test_claim_arithmetic():
    alternating, tradeoff = CLAIMS
    assert alternating.evaluate(_metrics()).passed
    assert not alternating.evaluate(_metrics(alternate_relative_error=0.28)).passed  # 0.28 > 0.9 * 0.3
    assert not alternating.evaluate(_metrics(alternate_nontrivial=2 / 3)).passed  # one repeat trivial
    assert not alternating.evaluate(_metrics(regenerate_relative_error=0.1)).passed
    assert tradeoff.evaluate(_metrics()).passed
    assert not tradeoff.evaluate(_metrics(aux_l2_accuracy=0.4)).passed
    assert not tradeoff.evaluate(_metrics(aux_l2_relative_error=0.1)).passed  # equal is not worse
    assert not tradeoff.evaluate(_metrics(aux_error_rank_corr=-0.5)).passed


def test_helpers():
    assert rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 2, 3], [5, 5, 5]) == 0.0
    assert rank_correlation([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    config = Config()
    assert nontrivial(0.5, 0.9, config) and not nontrivial(0.05, 0.9, config)
    assert not nontrivial(0.5, 0.01, config) and not nontrivial(math.nan, 1.0, config)


@pytest.mark.parametrize("overrides", [
    {"task_weights": (1.0, 0.1)}, {"task_weights": (0.1, 0.1)}, {"task_weights": (0.1,)}, {"margin": 0.0},
    {"margin": 1.5}, {"hidden": ()}, {"activation": "swish"}, {"optimizer": "rmsprop"}, {"lr": 0.0},
    {"steps": 0}, {"aux_dataset": "cifar"}, {"norm_threshold": -0.1}, {"task_weights": (-1.0, 1.0)},
    {"repeats": True}, {"momentum": 1.0},
])
def test_bad_configs_are_refused(overrides):
    with pytest.raises((ValueError, TypeError)):
        validate_config(Config(**overrides))
