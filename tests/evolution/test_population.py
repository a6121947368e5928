"""Population: founders, genomes from a template model, the lineage record and checkpoints."""

from __future__ import annotations

import io

import torch
from torch import nn

from neuroplastic.evolution import LineageRecord, ParameterLayout, Population


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def test_from_genomes_makes_founders_of_copies():
    genomes = torch.randn(5, 3)
    population = Population.from_genomes(genomes)
    genomes[0] = 100.0
    assert population.genomes[0, 0] != 100.0  # a copy
    assert population.ids.tolist() == [0, 1, 2, 3, 4] and population.ids.dtype == torch.int64
    assert torch.all(population.parents == -1) and population.parents.shape == (5, 2)
    assert torch.all(population.generations == 0)
    assert population.fitness.dtype == torch.float64 and torch.all(torch.isnan(population.fitness))
    assert not population.evaluated.any() and len(population) == population.size == 5
    assert population.experience == [None] * 5 and population.layout is None


def test_from_model_perturbs_the_template():
    model = _mlp()
    layout = ParameterLayout(model)
    template = layout.flatten(model)
    population = Population.from_model(model, 6, torch.Generator().manual_seed(1), std=0.1)
    assert population.genomes.shape == (6, layout.size) and population.layout is not None
    noise = torch.randn(6, layout.size, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(population.genomes, template + 0.1 * noise)
    kept = Population.from_model(model, 6, torch.Generator().manual_seed(1), std=0.1, keep_template=True)
    assert torch.equal(kept.genomes[0], template) and torch.equal(kept.genomes[1:], population.genomes[1:])
    same = Population.from_model(model, 3, torch.Generator(), std=0.0)
    assert torch.equal(same.genomes, template.expand(3, -1))


def test_bad_populations_are_refused(library_error):
    with library_error() as info:
        Population.from_genomes(torch.zeros(3))
    assert info.match("genomes must have shape")
    with library_error() as info:
        Population.from_genomes(torch.zeros(0, 3))
    assert info.match("at least one genome")
    with library_error() as info:
        Population.from_model(_mlp(), 0, torch.Generator(), std=0.1)
    assert info.match("size")
    with library_error() as info:
        Population.from_model(_mlp(), 2, torch.Generator(), std=-1.0)
    assert info.match("std")


def _tree() -> LineageRecord:
    """0 1 2 founders; 3 = mutant of 1; 4 = cross of 3 and 2; 5 = mutant of 4; 6 = mutant of 0."""
    record = LineageRecord()
    record.record(torch.full((3, 2), -1), torch.zeros(3, dtype=torch.int64))
    record.record(torch.tensor([[1, -1]]), torch.tensor([1]))
    record.record(torch.tensor([[3, 2]]), torch.tensor([2]))
    record.record(torch.tensor([[4, -1], [0, -1]]), torch.tensor([3, 1]))
    return record


def test_lineage_chain_and_ancestors_on_a_hand_built_tree(library_error):
    record = _tree()
    assert len(record) == 7 and record.ids.tolist() == list(range(7))
    assert record.chain(5).tolist() == [5, 4, 3, 1]
    assert record.chain(0).tolist() == [0]
    assert record.ancestors(5).tolist() == [1, 2, 3, 4]
    assert record.ancestors(6).tolist() == [0]
    assert record.generation.tolist() == [0, 0, 0, 1, 2, 3, 1]
    record.set_fitness(torch.tensor([5, 1]), torch.tensor([2.5, -1.0]))
    assert record.fitness[5] == 2.5 and record.fitness[1] == -1.0 and torch.isnan(record.fitness[0])
    with library_error() as info:
        record.record(torch.tensor([[7, -1]]), torch.tensor([4]))
    assert info.match("parents must be ids of recorded genomes")
    with library_error() as info:
        record.chain(7)
    assert info.match("genome_id")


def test_the_record_grows_one_genome_at_a_time_and_keeps_everything():
    record = LineageRecord()
    record.record(torch.tensor([[-1, -1]]), torch.tensor([0]))
    for i in range(1, 300):
        ids = record.record(torch.tensor([[i - 1, -1]]), torch.tensor([i]))
        assert ids.tolist() == [i]
    assert len(record) == 300
    assert record.parents[:, 0].tolist() == [-1, *range(299)]
    assert record.generation.tolist() == list(range(300))
    assert record.chain(299).tolist() == list(range(299, -1, -1))


def test_create_replace_and_lineage_through_the_population(library_error):
    population = Population.from_genomes(torch.zeros(3, 2))
    population.set_fitness(population.ids, torch.tensor([1.0, 2.0, 3.0]))
    ids = population.create(torch.tensor([[2, -1], [2, 0]]), torch.tensor([1, 1]))
    assert ids.tolist() == [3, 4]
    population.set_fitness(ids, torch.tensor([4.0, 5.0]))  # not members yet: only the record changes
    assert population.fitness.tolist() == [1.0, 2.0, 3.0] and population.record.fitness[4] == 5.0
    population.replace(torch.tensor([0, 1]), torch.ones(2, 2), ids, torch.tensor([4.0, 5.0]), ["x", "y"])
    assert population.ids.tolist() == [3, 4, 2]
    assert population.parents.tolist() == [[2, -1], [2, 0], [-1, -1]]
    assert population.generations.tolist() == [1, 1, 0]
    assert population.experience == ["x", "y", None]
    assert population.lineage(4).tolist() == [4, 2] and population.ancestors(4).tolist() == [0, 2]
    with library_error() as info:
        population.replace(torch.tensor([0, 0]), torch.ones(2, 2), ids, torch.tensor([4.0, 5.0]))
    assert info.match("slots must be distinct")


def test_state_dict_round_trips_through_a_weights_only_checkpoint():
    population = Population.from_genomes(torch.randn(4, 3))
    population.set_fitness(population.ids, torch.tensor([1.0, 0.0, -1.0, 2.0]))
    ids = population.create(torch.tensor([[3, -1]]), torch.tensor([1]))
    population.replace(torch.tensor([2]), torch.ones(1, 3), ids, torch.tensor([7.0]), [torch.arange(3.0)])
    buffer = io.BytesIO()
    torch.save(population.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    other = Population.from_genomes(torch.zeros(2, 3))
    other.load_state_dict(state)
    assert torch.equal(other.genomes, population.genomes) and torch.equal(other.ids, population.ids)
    assert torch.equal(other.fitness, population.fitness)
    assert torch.equal(other.record.parents, population.record.parents)
    assert torch.equal(other.record.generation, population.record.generation)
    assert torch.equal(other.record.fitness.nan_to_num(-9), population.record.fitness.nan_to_num(-9))
    assert torch.equal(other.experience[2], torch.arange(3.0)) and other.experience[0] is None
    more = other.create(torch.tensor([[0, -1]]), torch.tensor([2]))  # the record keeps growing after a load
    assert more.tolist() == [5]
