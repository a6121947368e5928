"""ACC, BWT, FWT (Lopez-Paz & Ranzato 2017), forgetting (Avalanche) and the accuracy-matrix recorder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuroplastic.continual import (
    AccuracyMatrix,
    average_accuracy,
    backward_transfer,
    continual_metrics,
    forgetting,
    forward_transfer,
)

# R[i, j]: accuracy on task j after training task i (3 tasks); b: at initialisation
R = [[0.9, 0.2, 0.1],
     [0.6, 0.8, 0.3],
     [0.5, 0.7, 0.95]]
B = [0.1, 0.15, 0.05]


def test_hand_computed_values():
    assert average_accuracy(R) == pytest.approx((0.5 + 0.7 + 0.95) / 3)
    # BWT = mean(R[2,0] - R[0,0], R[2,1] - R[1,1]) = mean(-0.4, -0.1)
    assert backward_transfer(R) == pytest.approx(-0.25)
    # FWT = mean(R[0,1] - b[1], R[1,2] - b[2]) = mean(0.05, 0.25)
    assert forward_transfer(R, B) == pytest.approx(0.15)
    # forgetting = mean(R[0,0] - R[2,0], R[1,1] - R[2,1]) = mean(0.4, 0.1): Avalanche's StreamForgetting
    assert forgetting(R) == pytest.approx(0.25)
    assert continual_metrics(R, B) == pytest.approx({"acc": 2.15 / 3, "bwt": -0.25, "forgetting": 0.25, "fwt": 0.15})


def test_forgetting_uses_the_row_right_after_training_not_the_best_earlier_one():
    # task 0 peaks at 0.95 after task 1, but forgetting compares with R[0, 0] = 0.5 (Avalanche), not the max
    r = [[0.5, 0.0, 0.0], [0.95, 0.9, 0.0], [0.4, 0.9, 0.8]]
    assert forgetting(r) == pytest.approx(((0.5 - 0.4) + (0.9 - 0.9)) / 2)
    assert forgetting(r) == pytest.approx(-backward_transfer(r))


def test_inputs_as_tensor_array_or_lists_and_a_single_task():
    for r in (torch.tensor(R, dtype=torch.float32), np.array(R), R):
        assert average_accuracy(r) == pytest.approx(2.15 / 3, abs=1e-6)
    assert forward_transfer(torch.tensor(R), torch.tensor(B)) == pytest.approx(0.15)
    assert continual_metrics([[0.7]], [0.1]) == {"acc": pytest.approx(0.7), "bwt": 0.0, "forgetting": 0.0}


def test_bad_matrices(library_error):
    for bad, pattern in (([[1.0, 2.0]], "square"), ([0.5, 0.5], "square"), ([[math.nan, 0], [0, 1]], "finite"),
                         (torch.zeros(0, 0), "square")):
        with library_error() as info:
            average_accuracy(bad)
        assert info.match(pattern)
    for f in (backward_transfer, forgetting):
        with library_error() as info:
            f([[0.5]])
        assert info.match("at least 2 tasks")
    with library_error() as info:
        forward_transfer(R, [0.1, 0.2])
    assert info.match(r"b must have shape \[T\] = \[3\]")
    with library_error() as info:
        forward_transfer(R, [0.1, math.inf, 0.2])
    assert info.match("finite")
    with library_error() as info:
        average_accuracy(3.0)
    assert info.match("T x T")
    with library_error() as info:
        forward_transfer(R, None)
    assert info.match("b must be")


def test_recorder_fills_rows_in_order_and_resumes(library_error):
    rec = AccuracyMatrix(3)
    assert torch.isnan(rec.R).all() and not rec.complete
    rec.record_initial(B)
    rec.record(0, R[0])
    saved = rec.state_dict()
    with library_error() as info:
        rec.record(2, R[2])
    assert info.match("expected row 1")
    with library_error() as info:
        rec.record_initial(B)
    assert info.match("once")
    with library_error() as info:
        rec.metrics()
    assert info.match("incomplete")
    fresh = AccuracyMatrix(3)
    fresh.load_state_dict(saved)
    fresh.record(1, R[1])
    fresh.record(2, torch.tensor(R[2], dtype=torch.float64))
    assert fresh.complete and torch.equal(fresh.R, torch.tensor(R, dtype=torch.float64))
    assert torch.equal(fresh.initial, torch.tensor(B, dtype=torch.float64))
    assert fresh.metrics() == pytest.approx(continual_metrics(R, B))
    with library_error() as info:
        fresh.record(1, [0.1, 0.2])
    assert info.match("expected row 3|task must be")
    with library_error() as info:
        AccuracyMatrix(2).load_state_dict(saved)
    assert info.match("num_tasks")
    with library_error() as info:
        AccuracyMatrix(3).record(0, [0.1, math.nan, 0.2])
    assert info.match("finite")
