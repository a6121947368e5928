"""The recurrent parity data set: every bit sequence, most significant bit first, and its parity."""

from __future__ import annotations

import pytest
import torch

from neuroplastic.tasks import parity_data


def test_all_sixteen_sequences_and_their_final_parity_by_hand():
    data = parity_data(4)
    assert data.inputs.shape == (16, 4, 1) and data.inputs.dtype == torch.float32
    assert data.targets.shape == (16,) and data.targets.dtype == torch.int64
    assert data.inputs[5, :, 0].tolist() == [0, 1, 0, 1]  # 0b0101
    assert data.inputs[11, :, 0].tolist() == [1, 0, 1, 1]  # 0b1011
    assert data.targets.tolist() == [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0]
    assert len({tuple(row.tolist()) for row in data.inputs[:, :, 0]}) == 16


def test_every_step_targets_are_the_prefix_parities():
    data = parity_data(4, targets="every_step", dtype=torch.float64)
    assert data.inputs.dtype == torch.float64 and data.targets.shape == (16, 4)
    assert data.targets[11].tolist() == [1, 1, 0, 1]  # prefixes of 1011
    assert data.targets[0].tolist() == [0, 0, 0, 0]
    assert torch.equal(data.targets[:, -1], parity_data(4).targets)
    assert parity_data(1).targets.tolist() == [0, 1]


@pytest.mark.parametrize("kwargs, match", [
    ({"num_bits": 0}, "num_bits"), ({"num_bits": 17}, "num_bits"), ({"num_bits": True}, "num_bits"),
    ({"targets": "last"}, "targets"), ({"dtype": torch.int64}, "dtype"),
])
def test_bad_arguments(library_error, kwargs, match):
    with library_error() as info:
        parity_data(**kwargs)
    assert info.match(match)
