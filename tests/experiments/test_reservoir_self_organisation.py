"""The reservoir-self-organisation experiment: a tiny run end to end, exact resume, claims' arithmetic."""

from __future__ import annotations

import pytest

from experiments.tiny_overrides import tiny
from neuroplastic.experiments.reservoir_self_organisation import CLAIMS, EXPERIMENT, Config
from neuroplastic.runs import RunInterrupted, run_experiment, run_path, validate_config

TINY = tiny("reservoir-self-organisation")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    summary = run_experiment(EXPERIMENT, out=out, seed=1, progress=False, overrides=TINY)
    return run_path(out, "reservoir-self-organisation", "quick", 1), summary


def test_tiny_run_writes_files_and_metrics(reference):
    run_dir, summary = reference
    for name in ("summary.json", "metrics.csv", "mc_lyapunov_vs_radius.png", "information_vs_lyapunov.png"):
        assert (run_dir / name).is_file(), name
    m = summary["metrics"]
    assert m["radii"] == 3 and m["reservoirs"] == 1
    for i in range(3):
        for stage in ("before", "ip"):
            assert 0.0 <= m[f"mc_{stage}_r{i}"] <= 10.0
            assert m[f"ais_{stage}_r{i}"] >= 0.0 and m[f"te_{stage}_r{i}"] >= 0.0
    assert m["lyapunov_before_r0"] < m["lyapunov_before_r2"]  # a larger radius is less stable
    assert len(summary["claims"]) == 3


def test_interrupted_run_resumes_to_the_same_metrics(reference, tmp_path):
    _, summary = reference
    with pytest.raises(RunInterrupted):
        run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, stop_after_steps=2)
    resumed = run_experiment(EXPERIMENT, out=tmp_path / "b", seed=1, progress=False, overrides=TINY, resume=True)
    assert resumed["metrics"] == summary["metrics"]


def metrics(rows):
    """rows: (radius, mc_before, mc_ip, lam_before, lam_ip)."""
    m = {"radii": len(rows)}
    for i, (r, mb, mi, lb, li) in enumerate(rows):
        m.update({f"radius{i}": r, f"mc_before_r{i}": mb, f"mc_ip_r{i}": mi, f"lyapunov_before_r{i}": lb,
                  f"lyapunov_ip_r{i}": li})
    return m


def verdicts(m):
    return [claim.evaluate(m).passed for claim in CLAIMS]


def test_claim_arithmetic():
    good = metrics([(0.5, 10, 20, -0.7, -0.02), (1.0, 30, 31, -0.01, 0.0), (2.0, 1, 25, 0.1, 0.01)])
    assert verdicts(good) == [True, True, True]
    # IP lowers MC at radius 1: claim 1 fails; the peak moves to radius 0.5 with lambda -0.7: claim 3 fails
    bad = metrics([(0.5, 40, 20, -0.7, -0.02), (1.0, 30, 29, -0.01, 0.0), (2.0, 1, 25, 0.1, 0.01)])
    assert verdicts(bad) == [False, True, False]
    # no chaotic radius in the sweep: claim 2 cannot hold; IP overshooting on the ordered side fails it too
    assert verdicts(metrics([(0.5, 10, 20, -0.7, -0.02), (1.0, 30, 31, -0.01, 0.0)]))[1] is False
    assert verdicts(metrics([(0.5, 10, 20, -0.7, 0.9), (2.0, 1, 25, 0.1, 0.01)]))[1] is False


def test_bad_configs_are_refused():
    for bad in (dict(info_units=200), dict(washout=3000), dict(radii=(1.0,)), dict(k_max=2995)):
        with pytest.raises(ValueError):
            validate_config(Config(**bad))
