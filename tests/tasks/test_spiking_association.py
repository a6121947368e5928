import pytest
import torch

from neuroplastic.tasks.spiking_association import association_length, spiking_association_batch

SIZES = dict(num_pairs=3, cue_size=12, cue_active=4, label_channels=2, present_steps=4, gap_steps=2,
             delay_steps=3, query_steps=5)


def make(seed=0, batch_size=16, **overrides):
    return spiking_association_batch(batch_size, generator=torch.Generator().manual_seed(seed),
                                     **{**SIZES, **overrides})


def test_shapes_dtypes_and_timeline():
    batch = make()
    steps = association_length(3, 4, 2, 3, 5)
    assert steps == 3 * 6 + 3 + 5
    assert batch.inputs.shape == (16, steps, 12 + 3 * 2)
    assert set(batch.inputs.unique().tolist()) <= {0.0, 1.0}
    assert batch.target.shape == (16,) and batch.target.dtype == torch.long
    assert batch.query_mask.shape == (steps,) and batch.query_mask.sum() == 5 and batch.query_mask[-5:].all()
    assert batch.cues.shape == (16, 3, 12) and torch.all(batch.cues.sum(-1) == 4)
    assert batch.step_target.shape == (16, steps)


def test_without_noise_the_episode_is_exactly_what_the_docstring_says():
    batch = make(rate=1.0)
    for b in range(16):
        labels = batch.labels[b]
        assert len(set(labels.tolist())) == 3  # distinct labels
        for k in range(3):
            start = 6 * k
            cue = batch.cues[b, k]
            for t in range(start, start + 4):
                assert torch.equal(batch.inputs[b, t, :12], cue)
                label_part = batch.inputs[b, t, 12:].view(3, 2)
                assert torch.all(label_part[labels[k]] == 1) and label_part.sum() == 2
                assert batch.step_target[b, t] == labels[k]
            assert torch.all(batch.inputs[b, start + 4: start + 6] == 0)  # the gap
            assert torch.all(batch.step_target[b, start + 4: start + 6] == -1)
        assert torch.all(batch.inputs[b, 18:21] == 0)  # the delay
        q = batch.query_index[b]
        assert batch.target[b] == labels[q]
        for t in range(21, 26):
            assert torch.equal(batch.inputs[b, t, :12], batch.cues[b, q])
            assert torch.all(batch.inputs[b, t, 12:] == 0)  # no label during the query
            assert batch.step_target[b, t] == batch.target[b]


def test_cues_are_distinct_within_an_episode():
    batch = make(batch_size=200, cue_size=4, cue_active=2)  # 6 possible cues: collisions are common
    for b in range(200):
        rows = {tuple(c.tolist()) for c in batch.cues[b]}
        assert len(rows) == 3


def test_rates_noise_and_drop():
    quiet = make(batch_size=400, rate=0.5)
    on = torch.zeros_like(quiet.inputs, dtype=torch.bool)
    # the channels that carry signal
    period = 6
    rows = torch.arange(400)
    for k in range(3):
        on[:, k * period: k * period + 4, :12] = quiet.cues[:, k].unsqueeze(1).bool()
        label_channels = on[:, k * period: k * period + 4, 12:].view(400, 4, 3, 2)
        label_channels[rows, :, quiet.labels[:, k]] = True
    on[:, 21:, :12] = quiet.cues[rows, quiet.query_index].unsqueeze(1).bool()
    assert abs(float(quiet.inputs[on].mean()) - 0.5) < 0.03
    assert float(quiet.inputs[~on].sum()) == 0  # no noise: nothing fires elsewhere
    noisy = make(batch_size=400, rate=0.5, noise_rate=0.1)
    silent = noisy.inputs[:, 18:21]  # the delay: only noise
    assert abs(float(silent.mean()) - 0.1) < 0.02
    dropped = make(batch_size=400, rate=1.0, drop_rate=0.25)
    assert abs(float(dropped.inputs[on].mean()) - 0.75) < 0.03


def test_the_same_seed_gives_the_same_batch():
    a, b = make(seed=3), make(seed=3)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(make(seed=4).inputs, a.inputs)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_pairs": 0}, "num_pairs"),
    ({"num_labels": 2}, "num_labels"),
    ({"cue_active": 13}, "cue_active"),
    ({"rate": 0.0}, "rate"),
    ({"noise_rate": 1.5}, "noise_rate"),
    ({"drop_rate": 1.0}, "drop_rate"),
    ({"query_steps": 0}, "query_steps"),
    ({"gap_steps": -1}, "gap_steps"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(**kwargs)
    with pytest.raises(TypeError, match="generator"):
        spiking_association_batch(2, generator=0)


def test_cues_are_distinct_even_when_every_possible_pattern_is_needed():
    """comb(4, 2) = 6 patterns for 6 pairs: the redraws collide nearly always (it raised a RuntimeError); the
    episode then takes 6 distinct patterns of all of them."""
    from neuroplastic.tasks.spiking_association import _distinct_cues

    cues = _distinct_cues(50, 6, 4, 2, torch.Generator().manual_seed(0))
    assert cues.shape == (50, 6, 4) and bool((cues.sum(-1) == 2).all())
    assert all(len({tuple(row.tolist()) for row in episode}) == 6 for episode in cues)
    with pytest.raises(ValueError, match="there are 6 such patterns"):
        _distinct_cues(2, 7, 4, 2, torch.Generator().manual_seed(0))
