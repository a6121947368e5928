"""Reservoir sampling (algorithm R) for a tensor or a tuple of tensors."""

from __future__ import annotations

import torch

from neuroplastic.data import reservoir_slots, reservoir_update


def _algorithm_r(n: int, capacity: int, u: torch.Tensor) -> list[int]:
    """Algorithm R one item at a time, item k >= capacity using the uniform u[k - capacity]."""
    buffer = list(range(min(n, capacity)))
    for k in range(capacity, n):
        j = int(u[k - capacity] * (k + 1))
        if j < capacity:
            buffer[j] = k
    return buffer


def test_slots_of_any_batching_equal_algorithm_r():
    for seed in range(5):
        u = torch.rand(50, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        expected = _algorithm_r(56, 6, u)
        gen = torch.Generator().manual_seed(seed)
        buffer: list[int] = []
        seen = 0
        for count in (4, 1, 13, 0, 30, 8):  # the first batch only fills, the third fills then replaces
            fill, slots, sources = reservoir_slots(seen, count, 6, gen)
            buffer.extend(range(seen, seen + fill))
            for slot, source in zip(slots.tolist(), sources.tolist(), strict=True):
                buffer[slot] = seen + fill + source
            seen += count
        assert buffer == expected


def test_a_tuple_keeps_its_parts_aligned_and_matches_the_single_tensor_version():
    x = torch.arange(40.0).reshape(20, 2)
    y = torch.arange(20)
    buffer, seen = None, 0
    single, seen_single = None, 0
    gen_a, gen_b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for batch in range(0, 20, 6):
        buffer, seen = reservoir_update(buffer, seen, (x[batch:batch + 6], y[batch:batch + 6]), gen_a, capacity=5)
        single, seen_single = reservoir_update(single, seen_single, x[batch:batch + 6], gen_b, capacity=5)
        assert len(buffer[0]) == len(buffer[1]) == min(seen, 5)
    assert seen == seen_single == 20
    assert torch.equal(buffer[0], single) and torch.equal(buffer[0][:, 0], 2.0 * buffer[1].float())


def test_inclusion_probability_is_capacity_over_n_over_enumerated_seeds():
    """Deterministic: seeds 0..1999; each of 10 items is kept with probability 3/10 (std of a frequency 0.010)."""
    n, capacity, trials = 10, 3, 2000
    counts = torch.zeros(n)
    items = torch.arange(n)
    for seed in range(trials):
        gen = torch.Generator().manual_seed(seed)
        buffer, seen = None, 0
        for batch in items.split(4):
            buffer, seen = reservoir_update(buffer, seen, batch, gen, capacity=capacity)
        assert buffer.shape == (capacity,) and len(set(buffer.tolist())) == capacity
        counts[buffer] += 1
    assert torch.allclose(counts / trials, torch.full((n,), capacity / n), atol=0.045)


def test_bad_arguments(library_error):
    gen = torch.Generator()
    with library_error() as info:
        reservoir_update(None, 0, (torch.zeros(3), torch.zeros(4)), gen)
    assert info.match("share their first dimension")
    with library_error() as info:
        reservoir_update(None, 0, [torch.zeros(3)], gen)
    assert info.match("tuple")
    buffer, seen = reservoir_update(None, 0, (torch.zeros(3), torch.zeros(3)), gen)
    with library_error() as info:
        reservoir_update(buffer, seen, torch.zeros(3), gen)
    assert info.match("match the buffer")
    with library_error() as info:
        reservoir_slots(0, -1, 3, gen)
    assert info.match("count")
