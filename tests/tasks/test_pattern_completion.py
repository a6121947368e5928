import pytest
import torch

from neuroplastic.tasks import bit_error_rate, bits_wrong, pattern_completion_batch

SIZES = dict(pattern_size=50, num_patterns=3, presentations=2, present_steps=3, gap_steps=2, test_steps=4)


def make(seed=0, batch_size=8, **overrides):
    kwargs = {**SIZES, **overrides}
    return pattern_completion_batch(batch_size, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_shapes_and_dtypes():
    batch = make()
    t = 2 * 3 * (3 + 2) + 4
    assert batch.inputs.shape == (8, t, 50)
    assert batch.target.shape == (8, 50)
    assert batch.test_mask.shape == (8, 50) and batch.test_mask.dtype == torch.bool
    assert batch.patterns.shape == (8, 3, 50)
    assert batch.test_index.shape == (8,) and batch.test_index.dtype == torch.long
    assert set(batch.patterns.unique().tolist()) == {-1.0, 1.0}


def test_learning_phase_shows_every_pattern_once_per_cycle_then_a_gap():
    batch = make()
    p, present, gap = 3, 3, 2
    for b in range(8):
        slot = 0
        for _cycle in range(2):
            seen = []
            for _ in range(p):
                start = slot * (present + gap)
                shown = batch.inputs[b, start : start + present]
                assert torch.equal(shown, shown[:1].expand_as(shown))  # the same pattern on every step
                matches = [k for k in range(p) if torch.equal(shown[0], batch.patterns[b, k])]
                assert len(matches) >= 1
                seen.append(matches[0])
                assert torch.all(batch.inputs[b, start + present : start + present + gap] == 0)
                slot += 1
            assert sorted(seen) == list(range(p))  # a permutation of the patterns in every cycle


def test_test_pattern_is_a_degraded_copy_with_exact_erased_fraction():
    batch = make(pattern_size=51, erase_fraction=0.3)
    n_erased = round(0.3 * 51)
    test = batch.inputs[:, -4:]
    assert torch.equal(test, test[:, :1].expand_as(test))
    shown = test[:, 0]
    for b in range(8):
        original = batch.patterns[b, batch.test_index[b]]
        assert torch.equal(batch.target[b], original)
        mask = batch.test_mask[b]
        assert int(mask.sum()) == n_erased
        assert torch.all(shown[b][mask] == 0)
        assert torch.equal(shown[b][~mask], original[~mask])


def test_erase_fraction_extremes():
    full = make(erase_fraction=0.0)
    assert not full.test_mask.any()
    assert torch.equal(full.inputs[:, -1], full.target)
    empty = make(erase_fraction=1.0)
    assert empty.test_mask.all() and torch.all(empty.inputs[:, -1] == 0)


def test_balanced_patterns_have_half_minus_ones():
    batch = make(pattern_size=40, balanced=True)
    assert torch.all((batch.patterns == -1).sum(-1) == 20)


def test_same_generator_seed_same_batch_and_different_seed_differs():
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a.patterns, c.patterns)


def test_device_argument():
    batch = make(device="cpu")
    assert batch.inputs.device.type == "cpu"


def test_bits_wrong_counts_sign_mismatches():
    target = torch.tensor([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
    prediction = torch.tensor([[0.3, 0.2, -5.0, -0.1], [1.0, 0.0, 2.0, 3.0]])
    assert bits_wrong(prediction, target).tolist() == [2, 1]  # a zero output counts as wrong
    mask = torch.tensor([[True, False, False, True], [False, True, False, False]])
    assert bits_wrong(prediction, target, mask).tolist() == [0, 1]
    assert bit_error_rate(prediction, target).tolist() == [0.5, 0.25]
    assert bit_error_rate(prediction, target, mask).tolist() == [0.0, 1.0]
    assert bit_error_rate(prediction, target, torch.zeros_like(mask)).tolist() == [0.0, 0.0]


def test_perfect_completion_has_no_wrong_bits():
    batch = make()
    assert torch.all(bits_wrong(batch.target * 0.5, batch.target, batch.test_mask) == 0)
    # Echoing the degraded input gets every erased bit wrong (0 has no sign).
    echo = batch.inputs[:, -1]
    assert torch.equal(bits_wrong(echo, batch.target, batch.test_mask), batch.test_mask.sum(-1))


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"erase_fraction": 1.5}, "erase_fraction"),
        ({"num_patterns": 0}, "num_patterns"),
        ({"pattern_size": -2}, "pattern_size"),
        ({"gap_steps": -1}, "gap_steps"),
        ({"test_steps": 0}, "test_steps"),
    ],
)
def test_bad_arguments_name_the_argument(overrides, name):
    with pytest.raises(ValueError, match=name):
        make(**overrides)


def test_bad_batch_size_and_generator():
    with pytest.raises(ValueError, match="batch_size"):
        make(batch_size=0)
    with pytest.raises(TypeError, match="generator"):
        pattern_completion_batch(2, generator=None, **SIZES)


def test_bits_wrong_shape_errors():
    with pytest.raises(ValueError, match="target"):
        bits_wrong(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="mask"):
        bits_wrong(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
