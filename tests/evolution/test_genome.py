"""ParameterLayout: genomes as flat parameter vectors, and running a model with them."""

from __future__ import annotations

import torch
from torch import nn

from neuroplastic.evolution import ParameterLayout


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def test_the_layout_is_parameters_to_vector_order_and_round_trips():
    model = _mlp()
    layout = ParameterLayout(model)
    assert layout.size == 3 * 4 + 4 + 4 * 2 + 2 == 26
    assert [s.name for s in layout] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    genome = layout.flatten(model)
    assert torch.equal(genome, nn.utils.parameters_to_vector(model.parameters()))
    other = _mlp()
    layout.load(other, genome * 2)
    assert torch.equal(other[2].bias, model[2].bias * 2)
    assert torch.equal(layout.unflatten(genome)["2.weight"], model[2].weight)


def test_call_runs_the_template_with_a_genome_and_leaves_it_unchanged():
    model = _mlp()
    layout = ParameterLayout(model)
    before = layout.flatten(model)
    genome = torch.randn(layout.size, requires_grad=True)
    x = torch.randn(5, 3)
    copy = _mlp()
    layout.load(copy, genome.detach())
    out = layout.call(model, genome, x)
    assert torch.allclose(out, copy(x))
    assert torch.equal(layout.flatten(model), before)
    out.sum().backward()  # gradients reach the genome
    assert genome.grad is not None and genome.grad.abs().sum() > 0


def test_batched_call_equals_one_call_per_genome():
    model = _mlp()
    layout = ParameterLayout(model)
    genomes = torch.randn(6, layout.size)
    x = torch.randn(5, 3)
    batched = layout.batched_call(model, genomes, x)
    assert batched.shape == (6, 5, 2)
    for i in range(6):
        assert torch.allclose(batched[i], layout.call(model, genomes[i], x), atol=1e-6)


def test_tied_and_frozen_parameters():
    model = _mlp()
    model[0].bias.requires_grad_(False)
    tied = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False))
    tied[1].weight = tied[0].weight
    assert [s.name for s in ParameterLayout(model)] == ["0.weight", "2.weight", "2.bias"]
    layout = ParameterLayout(tied)
    assert layout.size == 9
    genome = torch.randn(9)
    x = torch.randn(2, 3)
    w = genome.view(3, 3)
    assert torch.allclose(layout.call(tied, genome, x), x @ w.T @ w.T, atol=1e-6)


def test_bad_input_is_a_clear_error(library_error):
    layout = ParameterLayout(_mlp())
    with library_error() as info:
        ParameterLayout("model")
    assert info.type is TypeError and info.match("model must be a torch.nn.Module")
    with library_error() as info:
        ParameterLayout(nn.ReLU())
    assert info.type is ValueError and info.match("at least one trainable parameter")
    with library_error() as info:
        ParameterLayout(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double()))
    assert info.type is TypeError and info.match("share one dtype")
    with library_error() as info:
        layout.unflatten(torch.zeros(25))
    assert info.type is ValueError and info.match(r"shape \[\.\.\., 26\]")
    with library_error() as info:
        layout.call(_mlp(), torch.zeros(26, dtype=torch.long), torch.zeros(1, 3))
    assert info.type is TypeError and info.match("floating point")
    with library_error() as info:
        layout.batched_call(_mlp(), torch.zeros(26), torch.zeros(1, 3))
    assert info.type is ValueError and info.match(r"genomes must have shape \[P, 26\]")
    with library_error() as info:
        layout.flatten(nn.Linear(3, 4))
    assert info.type is ValueError and info.match("does not match the layout")


def test_a_zero_dimensional_parameter_unflattens_from_a_single_genome():
    model = torch.nn.Module()
    model.scale = torch.nn.Parameter(torch.tensor(2.0))
    layout = ParameterLayout(model)
    assert layout.unflatten(torch.tensor([3.0]))["scale"].shape == ()
    assert layout.unflatten(torch.tensor([[3.0], [4.0]]))["scale"].shape == (2,)
