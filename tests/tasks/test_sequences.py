"""The easy and hard next-character tasks of Miconi 2016: their structure, floors, reproducibility, and checks."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic.tasks import easy_batch, hard_batch, task_batch
from neuroplastic.tasks.sequences import ALPHABET, COUNTING_LOSS, HARD_FLOOR


def decode(row: torch.Tensor) -> str:
    return "".join(ALPHABET[int(i)] for i in row)


def test_easy_task_alternates_a_and_b():
    batch = easy_batch(5, 9, torch.Generator().manual_seed(0))
    assert batch.shape == (5, 9)
    for row in batch:
        text = decode(row)
        assert text in ("ababababa", "babababab")


def test_hard_task_groups_are_the_reversed_previous_group_with_one_letter_changed():
    batch = hard_batch(4, 80, torch.Generator().manual_seed(1))
    assert batch.shape == (4, 80)
    for row in batch:
        text = decode(row)
        start = text.index("(")
        groups = [g for g in text[start:].split(")") if len(g) == 7]
        assert len(groups) >= 8
        for group in groups:
            assert group[0] == "(" and set(group[1:]) <= {"a", "b"}
        for previous, current in zip(groups, groups[1:], strict=False):
            reversed_previous = previous[1:][::-1]
            changed = sum(x != y for x, y in zip(reversed_previous, current[1:], strict=True))
            assert changed == 1, (previous, current)
    # the floors quoted by the claims
    assert math.isclose(HARD_FLOOR, math.log(6) / 8) and math.isclose(COUNTING_LOSS, 6 * math.log(2) / 8)


def test_task_batch_rejects_unknown_tasks_and_sizes():
    with pytest.raises(ValueError, match="task"):
        task_batch("medium", 2, 3)
    with pytest.raises(ValueError, match="length"):
        easy_batch(2, 0)
    with pytest.raises(ValueError, match="batch"):
        hard_batch(-1, 5)


def test_batches_are_reproducible_from_the_generator_and_task_batch_dispatches():
    for task, fn in (("easy", easy_batch), ("hard", hard_batch)):
        a = task_batch(task, 3, 20, torch.Generator().manual_seed(4))
        assert torch.equal(a, fn(3, 20, torch.Generator().manual_seed(4)))
        assert torch.equal(a, task_batch(task, 3, 20, torch.Generator().manual_seed(4)))
        assert a.dtype == torch.int64 and int(a.min()) >= 0 and int(a.max()) < len(ALPHABET)


def test_hard_batch_with_another_group_size():
    batch = hard_batch(2, 40, torch.Generator().manual_seed(2), group=3)
    for row in batch:
        text = decode(row)
        start = text.index("(")
        groups = [g for g in text[start:].split(")") if len(g) == 4]
        assert len(groups) >= 5 and all(g[0] == "(" and set(g[1:]) <= {"a", "b"} for g in groups)
    with pytest.raises(ValueError, match="group"):
        hard_batch(2, 5, group=0)
