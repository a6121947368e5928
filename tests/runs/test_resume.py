"""An interrupted and resumed run ends exactly as an uninterrupted one with the same seed."""

from __future__ import annotations

import pytest

from neuroplastic.runs import RunInterrupted, run_experiment, run_path


def _outputs(summary, out):
    run_dir = run_path(out, summary["experiment"], summary["budget"], summary["seed"])
    return summary["metrics"], (run_dir / "metrics.csv").read_text()


@pytest.fixture(scope="module")
def reference(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    return _outputs(run_experiment(toy, out=out, seed=3, progress=False), out)


# Inside phase 1, on and off the checkpoint grid (every 4 steps), exactly at the phase boundary (30),
# inside phase 2, and after the last step of the last phase (60).
@pytest.mark.parametrize("stop", [1, 4, 7, 29, 30, 31, 45, 59, 60])
def test_resume_after_one_interruption_is_exact(toy, tmp_path, reference, stop):
    with pytest.raises(RunInterrupted) as info:
        run_experiment(toy, out=tmp_path, seed=3, progress=False, stop_after_steps=stop)
    assert info.value.path == tmp_path / "toy" / "quick-seed3"
    assert not (tmp_path / "toy" / "quick-seed3" / "summary.json").exists()
    summary = run_experiment(toy, out=tmp_path, seed=3, progress=False, resume=True)
    assert _outputs(summary, tmp_path) == reference


def test_resume_after_several_interruptions_is_exact(toy, tmp_path, reference):
    stops = [6, 24, 3, 1]  # completed steps 6, 30, 33, 34, then the rest
    for stop in stops:
        with pytest.raises(RunInterrupted):
            run_experiment(toy, out=tmp_path, seed=3, progress=False, stop_after_steps=stop,
                           resume=stop != stops[0])
    summary = run_experiment(toy, out=tmp_path, seed=3, progress=False, resume=True)
    assert _outputs(summary, tmp_path) == reference


def test_resuming_a_finished_run_reproduces_it(toy, tmp_path, reference):
    run_experiment(toy, out=tmp_path, seed=3, progress=False)
    summary = run_experiment(toy, out=tmp_path, seed=3, progress=False, resume=True)
    assert _outputs(summary, tmp_path) == reference


def test_another_seed_gives_another_run(toy, tmp_path, reference):
    summary = run_experiment(toy, out=tmp_path, seed=4, progress=False)
    assert _outputs(summary, tmp_path)[0] != reference[0]
