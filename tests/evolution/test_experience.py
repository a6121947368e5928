"""Experience buffers: reservoir sampling of the states a genome saw."""

from __future__ import annotations

import torch

from neuroplastic.evolution import ExperienceBuffer, reservoir_update


def _sequential_reservoir(stream: torch.Tensor, capacity: int, seed: int) -> torch.Tensor:
    """Algorithm R one state at a time, with the same uniforms as one batch of ``reservoir_update``."""
    gen = torch.Generator().manual_seed(seed)
    rest = max(0, stream.shape[0] - capacity)
    u = torch.rand(rest, generator=gen, dtype=torch.float64)
    buffer = list(stream[:capacity])
    for i in range(rest):
        k = capacity + i
        j = int(u[i] * (k + 1))
        if j < capacity:
            buffer[j] = stream[k]
    return torch.stack(buffer)


def test_the_first_states_fill_the_buffer_in_order():
    gen = torch.Generator().manual_seed(0)
    states = torch.arange(12.0).reshape(6, 2)
    buffer, seen = reservoir_update(None, 0, states[:4], gen, capacity=5)
    assert seen == 4 and torch.equal(buffer, states[:4])
    buffer, seen = reservoir_update(buffer, seen, states[4:], gen, capacity=5)
    assert seen == 6 and buffer.shape == (5, 2)
    changed = (buffer != states[:5]).any(1)
    assert int(changed.sum()) <= 1 and (buffer[changed] == states[5]).all()  # at most one slot replaced by the 6th


def test_a_batch_equals_algorithm_r_one_state_at_a_time():
    stream = torch.arange(60.0).unsqueeze(1)
    for seed in range(5):
        gen = torch.Generator().manual_seed(seed)
        buffer, seen = reservoir_update(None, 0, stream, gen, capacity=7)
        assert seen == 60
        assert torch.equal(buffer, _sequential_reservoir(stream, 7, seed))


def test_every_state_is_kept_with_probability_capacity_over_seen():
    trials, capacity, n = 1000, 5, 20
    gen = torch.Generator().manual_seed(1)
    counts = torch.zeros(n)
    stream = torch.arange(float(n))
    for _ in range(trials):
        buffer, seen = None, 0
        for batch in stream.split(12):  # a batch filling the buffer and replacing, then one replacing
            buffer, seen = reservoir_update(buffer, seen, batch, gen, capacity=capacity)
        counts[buffer.long()] += 1
    frequency = counts / trials
    assert torch.allclose(frequency, torch.full((n,), capacity / n), atol=0.055)  # 4 sigma


def test_the_buffer_does_not_modify_its_input_and_resumes_exactly(library_error):
    stream = torch.randn(50, 3, generator=torch.Generator().manual_seed(2))
    whole = ExperienceBuffer(capacity=8)
    gen = torch.Generator().manual_seed(3)
    for batch in stream.split(9):
        whole.add(batch, gen)
    resumed = ExperienceBuffer(capacity=8)
    gen = torch.Generator().manual_seed(3)
    for batch in stream[:27].split(9):
        resumed.add(batch, gen)
    saved, gen_state = resumed.state_dict(), gen.get_state()
    before = saved["states"].clone()
    fresh, gen2 = ExperienceBuffer(), torch.Generator()
    fresh.load_state_dict(saved)
    gen2.set_state(gen_state)
    for batch in stream[27:].split(9):
        fresh.add(batch, gen2)
    assert torch.equal(saved["states"], before)
    assert fresh.seen == whole.seen == 50 and len(fresh) == 8
    assert torch.equal(fresh.states, whole.states)
    fresh.clear()
    with library_error() as info:
        _ = fresh.states
    assert info.match("empty")


def test_bad_arguments(library_error):
    gen = torch.Generator()
    with library_error() as info:
        ExperienceBuffer(capacity=0)
    assert info.match("capacity")
    with library_error() as info:
        reservoir_update(None, 0, torch.zeros(3, 2), gen, capacity=True)
    assert info.match("capacity")
    buffer, seen = reservoir_update(None, 0, torch.zeros(3, 2), gen)
    with library_error() as info:
        reservoir_update(buffer, seen, torch.zeros(3, 4), gen)
    assert info.match("match the buffer")
    with library_error() as info:
        reservoir_update(buffer, 7, torch.zeros(3, 2), gen)
    assert info.match("min\\(seen, capacity\\)")
    with library_error() as info:
        reservoir_update(buffer, seen, torch.zeros(3, 2), 0)
    assert info.match("generator")
    with library_error() as info:
        ExperienceBuffer().load_state_dict({"capacity": 4, "seen": 9, "states": torch.zeros(2, 1)})
    assert info.match("states")
