"""Safe mutations: SM-G-SUM / ABS / SO sensitivities against slow references, the scaling, and the operator."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from neuroplastic.evolution import (
    ExperienceBuffer,
    ParameterLayout,
    SafeMutation,
    SafeMutationConfig,
    output_divergence,
    safe_mutate,
    scale_perturbation,
    sensitivity_abs,
    sensitivity_so,
    sensitivity_sum,
)

F64 = torch.float64


class _Recurrent(nn.Module):
    """A small recurrent net whose output for a sequence is its output at every step ``[T, 2]``."""

    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = cell(2, 3, batch_first=True)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(x)[0])


def _case(kind: str) -> tuple[nn.Module, ParameterLayout, torch.Tensor, torch.Tensor]:
    """(model, layout, genome [D], buffer [S, ...]) in float64."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    if kind == "mlp":
        model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
        inputs = torch.randn(5, 3, generator=gen, dtype=F64)
    else:
        model = _Recurrent(nn.LSTM if kind == "lstm" else nn.GRU).double()
        inputs = torch.randn(4, 3, 2, generator=gen, dtype=F64)  # 4 sequences of 3 steps
    layout = ParameterLayout(model)
    return model, layout, layout.flatten(model), inputs


def _loaded(model: nn.Module, layout: ParameterLayout, genome: torch.Tensor) -> tuple[nn.Module, list]:
    clone = layout.load(copy.deepcopy(model), genome)
    return clone, [dict(clone.named_parameters())[slot.name] for slot in layout]


def _slow_jacobians(model, layout, genome, inputs) -> torch.Tensor:
    """[S, O, D]: one torch.autograd.grad per entry and output, on a copy of the model holding the genome."""
    clone, params = _loaded(model, layout, genome)
    rows = []
    for t in range(inputs.shape[0]):
        y = clone(inputs[t : t + 1]).reshape(-1)
        per_output = []
        for o in range(y.numel()):
            grads = torch.autograd.grad(y[o], params, retain_graph=True, allow_unused=True)
            per_output.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                                         for g, p in zip(grads, params, strict=True)]))
        rows.append(torch.stack(per_output))
    return torch.stack(rows)


def _slow_so(model, layout, genome, inputs, direction) -> torch.Tensor:
    """The reference's SM-G-SO: double backward of mean_t sum_o (y - y_parent)^2 along the unit direction."""
    clone, params = _loaded(model, layout, genome)
    out = clone(inputs).reshape(inputs.shape[0], -1)
    loss = (out - out.detach()).square().sum(1).mean(0)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    hv = torch.autograd.grad((flat * (direction / direction.norm())).sum(), params)
    return torch.cat([h.reshape(-1) for h in hv]).abs().sqrt()


@pytest.mark.parametrize("kind", ["mlp", "lstm", "gru"])
def test_sum_and_abs_sensitivities_equal_loops_over_entries_and_outputs(kind):
    model, layout, genome, inputs = _case(kind)
    jac = _slow_jacobians(model, layout, genome, inputs)  # [S, O, D]
    expected_sum = jac.sum(0).square().sum(0).sqrt()
    expected_abs = jac.abs().mean(0).square().sum(0).sqrt()
    assert torch.allclose(sensitivity_sum(layout, model, genome, inputs), expected_sum, atol=1e-12)
    assert torch.allclose(sensitivity_sum(layout, model, genome, inputs, chunk_size=3), expected_sum, atol=1e-12)
    modes = ["auto", "samples", "outputs"] if kind == "mlp" else ["auto", "outputs"]
    for vectorize in modes:
        for chunk_size in (None, 3):
            s = sensitivity_abs(layout, model, genome, inputs, chunk_size=chunk_size, vectorize=vectorize)
            assert s.dtype == F64 and torch.allclose(s, expected_abs, atol=1e-12), (vectorize, chunk_size)


@pytest.mark.parametrize("kind", ["mlp", "lstm", "gru"])
def test_second_order_sensitivity_equals_the_double_backward_of_the_divergence(kind):
    model, layout, genome, inputs = _case(kind)
    direction = 0.3 * torch.randn(layout.size, generator=torch.Generator().manual_seed(4), dtype=F64)
    expected = _slow_so(model, layout, genome, inputs, direction)
    assert torch.allclose(sensitivity_so(layout, model, genome, inputs, direction), expected, atol=1e-12)
    chunked = sensitivity_so(layout, model, genome, inputs, 5 * direction, chunk_size=3)  # only the direction
    assert torch.allclose(chunked, expected, atol=1e-12)


def test_sum_cancels_opposite_gradients_and_abs_does_not():
    model = nn.Linear(2, 1, bias=False).double()  # y = w . x, so dy/dw = x
    layout = ParameterLayout(model)
    genome = torch.tensor([0.3, -0.7], dtype=F64)
    inputs = torch.tensor([[1.0, 2.0], [-1.0, 2.0]], dtype=F64)
    assert torch.allclose(sensitivity_sum(layout, model, genome, inputs), torch.tensor([0.0, 4.0], dtype=F64))
    assert torch.allclose(sensitivity_abs(layout, model, genome, inputs), torch.tensor([1.0, 2.0], dtype=F64))
    # the cancelled weight falls back to plain mutation (s == 0 -> 1), though it matters as much as ABS says
    delta = torch.tensor([0.1, 0.1], dtype=F64)
    assert torch.allclose(scale_perturbation(delta, sensitivity_sum(layout, model, genome, inputs)),
                          torch.tensor([0.1, 0.025], dtype=F64))


def test_scaling_divides_by_the_sensitivity_with_a_floor_and_zero_as_one():
    delta = torch.tensor([1.0, 1.0, 1.0, 1.0, -3.0], dtype=F64)
    s = torch.tensor([0.0, 1e-4, 0.5, 2.0, 3.0], dtype=F64)
    assert torch.equal(scale_perturbation(delta, s), torch.tensor([1.0, 100.0, 2.0, 0.5, -1.0], dtype=F64))
    assert torch.equal(scale_perturbation(delta, s, floor=2.0), torch.tensor([0.5, 0.5, 0.5, 0.5, -1.0],
                                                                             dtype=F64))
    assert torch.equal(scale_perturbation(delta, s, floor=0), torch.tensor([1.0, 1e4, 2.0, 0.5, -1.0], dtype=F64))


def _deep_mlp(depth: int = 12, width: int = 6) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(4, width), nn.Tanh()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.Tanh()]
    layers.append(nn.Linear(width, 2))
    return nn.Sequential(*layers).double()


def test_at_equal_norm_abs_moves_the_outputs_of_a_deep_network_less_than_gaussian():
    model = _deep_mlp()
    layout = ParameterLayout(model)
    parent = layout.flatten(model)[None]
    inputs = [torch.randn(10, 4, generator=torch.Generator().manual_seed(5), dtype=F64)]
    records = {}
    for method in ("gaussian", "abs"):
        op = SafeMutation(model, SafeMutationConfig(method=method, std=0.05, equal_norm=True))
        child = op(parent, torch.Generator().manual_seed(6), inputs)
        records[method] = op.records[0]
        assert torch.allclose((child - parent).norm(), torch.tensor(records[method].perturbation_norm, dtype=F64))
    assert records["abs"].perturbation_norm == pytest.approx(records["gaussian"].perturbation_norm, rel=1e-9)
    assert len(records["abs"].layer_divergence) == 12
    assert records["abs"].divergence < 0.5 * records["gaussian"].divergence


def test_the_operator_is_deterministic_per_generator_and_records_each_child():
    model, layout, genome, inputs = _case("mlp")
    parents = genome + 0.1 * torch.randn(3, layout.size, generator=torch.Generator().manual_seed(7), dtype=F64)
    experience = [inputs, inputs[:2], torch.cat([inputs, -inputs])]  # the last longer than buffer_size
    op = SafeMutation(model, SafeMutationConfig(method="sum", std=0.1, buffer_size=6))
    first = op(parents, torch.Generator().manual_seed(8), experience)
    first_records = op.records
    again = op(parents, torch.Generator().manual_seed(8), experience)
    assert op.records == first_records
    other = op(parents, torch.Generator().manual_seed(9), experience)
    assert first.shape == (3, layout.size) and first.dtype == F64
    assert torch.equal(first, again) and not torch.equal(first, other)
    for i in range(2):  # buffers not subsampled: the record is the divergence on the parent's experience
        total, parts = output_divergence(layout, model, parents[i], first[i], experience[i])
        assert first_records[i].divergence == pytest.approx(float(total), rel=1e-12)
        assert first_records[i].layer_divergence == pytest.approx({k: float(v) for k, v in parts.items()})
        assert set(first_records[i].as_dict()) == {"method", "perturbation_norm", "step", "status", "divergence",
                                                   "divergence/0", "divergence/2"}
    # one tensor [N, S, ...] for equal buffers; a generator per call, the same draws for the same seed
    buffer = ExperienceBuffer(capacity=10)
    buffer.add(inputs, torch.Generator())
    stacked = op(parents[:2], torch.Generator().manual_seed(8), inputs.expand(2, *inputs.shape))
    listed = op(parents[:2], torch.Generator().manual_seed(8), [inputs, buffer])
    assert torch.equal(stacked, listed)


def test_plain_gaussian_needs_no_experience_and_sm_g_can_be_line_searched():
    model, layout, genome, inputs = _case("mlp")
    op = SafeMutation(model, SafeMutationConfig(method="gaussian", std=0.2, record="none"))
    child = op(genome[None], torch.Generator().manual_seed(1))
    expected = genome + 0.2 * torch.randn(1, layout.size, generator=torch.Generator().manual_seed(1), dtype=F64)
    assert torch.equal(child, expected) and op.records[0].divergence is None
    config = SafeMutationConfig(method="abs", std=0.2, target=1e-3, rtol=0.01)
    child, record = safe_mutate(layout, model, genome, 0.2 * torch.ones(layout.size, dtype=F64), inputs, config)
    assert record.status == "hit" and record.divergence == pytest.approx(1e-3, rel=0.01)
    assert float(output_divergence(layout, model, genome, child, inputs)[0]) == pytest.approx(1e-3, rel=0.01)


def test_bad_arguments(library_error):
    model, layout, genome, inputs = _case("mlp")
    for kwargs, message in [({"method": "plain"}, "method"), ({"method": "r"}, "target"),
                            ({"method": "gaussian", "target": 0.1}, "'r'"), ({"std": 0.0}, "std"),
                            ({"std": float("nan")}, "std"), ({"buffer_size": True}, "buffer_size"),
                            ({"floor": -1.0}, "floor"), ({"target": 0.1, "equal_norm": True}, "equal_norm"),
                            ({"step_range": (1.0, 0.1)}, "step_range"), ({"vectorize": "loop"}, "vectorize")]:
        with library_error() as info:
            SafeMutationConfig(**kwargs)
        assert info.match(message)
    op = SafeMutation(model, SafeMutationConfig(method="abs"))
    gen = torch.Generator()
    with library_error() as info:
        op(genome, gen, [inputs])
    assert info.match("parents")
    with library_error() as info:
        op(genome[None], 0, [inputs])
    assert info.match("generator")
    with library_error() as info:
        op(genome[None], gen, [inputs, inputs])
    assert info.match("one buffer per parent")
    with library_error() as info:
        op(genome[None], gen)
    assert info.match("experience")
    with library_error() as info:
        sensitivity_abs(layout, model, genome[:-1], inputs)
    assert info.match("genome")
    with library_error() as info:
        sensitivity_sum(layout, model, genome, inputs.float())
    assert info.match("dtype")
    with library_error() as info:
        sensitivity_sum(layout, model, genome, inputs[:0])
    assert info.match("at least one entry")
    with library_error() as info:
        sensitivity_so(layout, model, genome, inputs, torch.zeros_like(genome))
    assert info.match("not zero")
    with library_error() as info:
        scale_perturbation(genome, -genome.abs())
    assert info.match("non-negative")


def test_a_steady_state_ga_with_safe_mutation_passes_each_parent_its_experience():
    """The GA hands the mutation a MutationContext; SafeMutation measures each child on its parent's buffer."""
    from neuroplastic.evolution import SteadyStateConfig, SteadyStateGA, output_divergence

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    layout = ParameterLayout(model)
    target = torch.tensor([0.5, -0.5])
    safe = SafeMutation(model, SafeMutationConfig(method="abs", std=0.05))
    calls = []

    def mutation(parents, generator, context):
        children = safe(parents, generator, context)
        calls.append((parents, children, context.parent_ids.tolist(), list(safe.records)))
        return children

    ga = SteadyStateGA(torch.randn(8, layout.size) * 0.3,
                       SteadyStateConfig(population_size=8, tournament_size=3, removal_tournament_size=3,
                                         batch_size=2, max_evaluations=40),
                       seed=1, mutation=mutation)
    seen = {}
    while not ga.done:
        genomes = ga.ask()
        inputs = torch.randn(genomes.shape[0], 5, 2, generator=torch.Generator().manual_seed(ga.evaluations))
        outputs = torch.stack([layout.call(model, g, x) for g, x in zip(genomes, inputs, strict=True)])
        for i, genome_id in enumerate(ga.pending.ids.tolist()):
            seen[genome_id] = inputs[i]
        ga.tell(-(outputs.squeeze(-1) - inputs @ target).pow(2).mean(1), experience=inputs)
    assert ga.evaluations == 40 and len(calls) == 16
    for parents, children, parent_ids, records in calls:
        for parent, child, parent_id, record in zip(parents, children, parent_ids, records, strict=True):
            expected, _ = output_divergence(layout, model, parent, child, seen[parent_id])
            assert record.divergence == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("method", ["sum", "abs"])
def test_the_sensitivity_cache_reuses_a_parent_and_changes_no_child(method, library_error):
    from neuroplastic.evolution import MutationContext

    model, layout, genome, inputs = _case("mlp")
    parents = genome + 0.1 * torch.randn(3, layout.size, generator=torch.Generator().manual_seed(7), dtype=F64)
    config = SafeMutationConfig(method=method, std=0.1, buffer_size=6)
    plain, cached = SafeMutation(model, config), SafeMutation(model, config, cache_size=2)

    def context(ids, buffers):
        return MutationContext(torch.tensor(ids), torch.zeros(len(ids), dtype=F64), tuple(buffers))

    calls = [([0, 1, 0], parents[[0, 1, 0]], [inputs, inputs, inputs]),  # parent 0 twice: one hit
             ([0, 2], parents[[0, 2]], [inputs, inputs]),  # 0 again: a hit; 2 evicts 1 (size 2)
             ([1, 0], parents[[1, 0]], [inputs, inputs[:4]]),  # 1 recomputed; 0 with another buffer: recomputed
             ([2, 2], torch.stack([parents[2], parents[0]]), [inputs, inputs])]  # same id, other genome: recomputed
    for seed, (ids, batch, buffers) in enumerate(calls):
        expected = plain(batch, torch.Generator().manual_seed(seed), context(ids, buffers))
        got = cached(batch, torch.Generator().manual_seed(seed), context(ids, buffers))
        assert torch.equal(expected, got)
    assert cached.cache_hits == 2  # parent 0 in calls 1 and 2; 2 was evicted by call 3 before call 4
    # a buffer larger than buffer_size is subsampled per call, never cached
    big = torch.cat([inputs, -inputs])
    before = cached.cache_hits
    cached(parents[[0, 0]], torch.Generator().manual_seed(9), context([0, 0], [big, big]))
    assert cached.cache_hits == before
    # safe_mutate with a precomputed sensitivity gives the same child
    s = (sensitivity_sum if method == "sum" else sensitivity_abs)(layout, model, genome, inputs)
    delta = 0.1 * torch.randn(layout.size, generator=torch.Generator().manual_seed(3), dtype=F64)
    assert torch.equal(safe_mutate(layout, model, genome, delta, inputs, config)[0],
                       safe_mutate(layout, model, genome, delta, inputs, config, sensitivity=s)[0])
    with library_error() as info:
        safe_mutate(layout, model, genome, delta, inputs, SafeMutationConfig(method="so"), sensitivity=s)
    assert info.match("sensitivity")
    with library_error() as info:
        SafeMutation(model, config, cache_size=-1)
    assert info.match("cache_size")


class _TwiceLinear(nn.Module):
    """A layer applied twice (its per-entry gradient is a sum of two outer products, not rank one)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner, self.head = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.inner(torch.tanh(self.inner(x)))))


class _Sequences(nn.Module):
    """Linear layers on sequences [S, T, F] (per-entry gradients summed over steps, not rank one)."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.head = nn.Linear(2, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.body(x)))


def test_linear_abs_path_equals_per_entry_jacobians_on_a_deep_mlp_with_a_frozen_bias():
    torch.manual_seed(3)
    layers: list[nn.Module] = [nn.Linear(4, 6), nn.ReLU()]
    for _ in range(4):
        layers += [nn.Linear(6, 6), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(6, 3)).double()
    model[2].bias.requires_grad_(False)
    layout = ParameterLayout(model)
    genome = layout.flatten(model)
    inputs = torch.randn(7, 4, generator=torch.Generator().manual_seed(4), dtype=F64)
    jac = _slow_jacobians(model, layout, genome, inputs)
    expected = jac.abs().mean(0).square().sum(0).sqrt()
    for chunk_size in (None, 2):
        fast = sensitivity_abs(layout, model, genome, inputs, chunk_size=chunk_size, vectorize="linear")
        samples = sensitivity_abs(layout, model, genome, inputs, chunk_size=chunk_size, vectorize="samples")
        assert torch.allclose(fast, expected, atol=1e-12) and torch.allclose(fast, samples, atol=1e-12)


@pytest.mark.parametrize("kind", ["twice", "sequences"])
def test_linear_abs_path_refuses_layers_whose_entry_gradients_are_not_rank_one_and_auto_falls_back(kind,
                                                                                                   library_error):
    torch.manual_seed(5)
    model = (_TwiceLinear() if kind == "twice" else _Sequences()).double()
    gen = torch.Generator().manual_seed(6)
    inputs = torch.randn(4, 3, generator=gen, dtype=F64) if kind == "twice" else torch.randn(4, 3, 2, generator=gen,
                                                                                              dtype=F64)
    layout = ParameterLayout(model)
    genome = layout.flatten(model)
    expected = _slow_jacobians(model, layout, genome, inputs).abs().mean(0).square().sum(0).sqrt()
    assert torch.allclose(sensitivity_abs(layout, model, genome, inputs), expected, atol=1e-12)
    with library_error() as info:
        sensitivity_abs(layout, model, genome, inputs, vectorize="linear")
    assert info.match("called once")
    lstm, lstm_layout, lstm_genome, lstm_inputs = _case("lstm")
    with library_error() as info:
        sensitivity_abs(lstm_layout, lstm, lstm_genome, lstm_inputs, vectorize="linear")
    assert info.match("nn.Linear of its own")


def test_linear_abs_path_refuses_a_layer_registered_twice(library_error):
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.Tanh(), layer).double()
    layout = ParameterLayout(model)
    genome = layout.flatten(model)
    inputs = torch.randn(4, 3, generator=torch.Generator().manual_seed(7), dtype=F64)
    expected = _slow_jacobians(model, layout, genome, inputs).abs().mean(0).square().sum(0).sqrt()
    assert torch.allclose(sensitivity_abs(layout, model, genome, inputs), expected, atol=1e-12)
    with library_error() as info:
        sensitivity_abs(layout, model, genome, inputs, vectorize="linear")
    assert info.match("nn.Linear of its own")
