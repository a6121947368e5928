"""The continual-clnp experiment: a tiny run end to end, exact resume, claim arithmetic, bad configs."""

from __future__ import annotations

import pytest

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.continual_clnp import CLAIMS, EXPERIMENT, clnp_key
from neuroplastic.runs import RunInterrupted, run_experiment, run_path

TINY = tiny("continual-clnp")


def test_tiny_run_writes_figures_metrics_and_claims(tmp_path):
    summary = run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides=TINY)
    run_dir = run_path(tmp_path, "continual-clnp", "quick", 0)
    for name in ("accuracy_matrices.png", "tolerance_curve.png", "free_neurons.png", "summary.json", "metrics.csv"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    for method in ("finetune", "ewc", "replay", "joint", "clnp_tol0", "clnp_tol5"):
        for stat in ("acc", "bwt", "fwt", "forgetting"):
            assert f"{method}_{stat}" in m, f"{method}_{stat}"
        assert 0.0 <= m[f"{method}_acc"] <= 1.0
    assert m["clnp_tol0_bwt"] == 0.0 and m["clnp_tol5_bwt"] == 0.0  # old outputs never change
    assert m["ewc_lambda"] in (1.0, 100.0)
    assert m["clnp_tol0_free_l0_t4"] <= m["clnp_tol0_free_l0_t0"] <= 16
    assert len(summary["claims"]) == 3


def test_interrupted_run_resumes_to_the_same_metrics(tmp_path):
    reference = run_experiment(EXPERIMENT, out=tmp_path / "a", seed=1, progress=False, overrides=TINY)
    # 2 steps per task: the EWC sweep takes 2 x 10 steps, the baselines 10 + 10 + 10 + 30; stop in task 2 of CLNP
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=85)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == reference["metrics"]


def _metrics(**changes):
    m = {}
    for tau, used, graceful in ((0.0, 100, -0.0), (2.0, 90, -0.015), (5.0, 80, -0.05)):
        key = clnp_key(tau)
        m.update({f"{key}_tolerance": tau, f"{key}_used_end": used, f"{key}_graceful_bwt": graceful,
                  f"{key}_acc": 0.9})
    m.update({"clnp_tol0_bwt": 0.0, "clnp_tol0_max_change": 0.0, "clnp_tol0_acc": 0.95, "ewc_acc": 0.9,
              "ewc_lambda": 1.0})
    m.update(changes)
    return m


def test_claim_arithmetic():
    bwt, ewc, graceful = (claim.check for claim in CLAIMS)
    assert bwt(_metrics())[0] and not bwt(_metrics(clnp_tol0_bwt=-1e-12))[0]
    assert not bwt(_metrics(clnp_tol0_max_change=0.01))[0]
    assert ewc(_metrics())[0] and ewc(_metrics(ewc_acc=0.95))[0] and not ewc(_metrics(ewc_acc=0.951))[0]
    assert graceful(_metrics())[0]
    assert not graceful(_metrics(clnp_tol5_graceful_bwt=-0.0501))[0]
    assert not graceful(_metrics(clnp_tol5_used_end=100))[0]
    assert clnp_key(0.5) == "clnp_tol0p5" and clnp_key(2.0) == "clnp_tol2"


@pytest.mark.parametrize("overrides, match", [
    ({"tolerances": (0.5, 1.0)}, "tolerances must be strictly increasing and starting at 0"),
    ({"tolerances": (0.0, 2.0, 1.0)}, "tolerances must be strictly increasing"),
    ({"tolerances": (0.0,)}, "tolerances"),
    ({"num_tasks": 3}, "num_tasks"),
    ({"validation_fraction": 1.0}, "validation_fraction"),
    ({"clnp_strength": -0.1}, "clnp_strength"),
])
def test_bad_config_is_rejected(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        run_experiment(EXPERIMENT, out=tmp_path, seed=0, progress=False, overrides={**TINY, **overrides})
