"""Pattern genomes: validity, mutations keep the DAG valid, crossover, serialisation, bad inputs."""

from __future__ import annotations

import pickle

import torch
from hypothesis import given
from hypothesis import strategies as st

from neuroplastic.evolution import (
    PATTERN_ACTIVATIONS,
    ConnectionGene,
    NodeGene,
    PatternGenome,
    PatternMutationConfig,
    add_connection,
    add_node,
    check_pattern_genome,
    crossover_pattern_genomes,
    delete_connection,
    delete_node,
    initial_pattern_genome,
    mutate_pattern_genome,
    perturb_weights,
    switch_activation,
)


def _genome(seed: int = 0, hidden: int = 3) -> PatternGenome:
    return initial_pattern_genome(4, 2, torch.Generator().manual_seed(seed), hidden=hidden)


def _has_cycle(genome: PatternGenome) -> bool:
    edges = {(c.source, c.target) for c in genome.connections}
    nodes = set(range(genome.num_inputs)) | {n.id for n in genome.nodes}
    state = dict.fromkeys(nodes, 0)

    def visit(n):  # depth-first search: 1 = on the stack
        state[n] = 1
        for s, t in edges:
            if s == n and (state[t] == 1 or state[t] == 0 and visit(t)):
                return True
        state[n] = 2
        return False
    return any(state[n] == 0 and visit(n) for n in nodes)


def test_initial_genome_structure():
    g = _genome(hidden=3)
    assert g.outputs == [4, 5] and len(g.nodes) == 5 and g.hidden_ids() == [6, 7, 8]
    assert all(c.target in (6, 7, 8) or c.source in (6, 7, 8) for c in g.connections)
    assert len([c for c in g.connections if c.target in g.outputs]) == 6  # every hidden node feeds each output
    assert g.num_parameters == len(g.connections) + 5
    order = g.topological_order()
    assert order.index(4) > max(order.index(h) for h in (6, 7, 8))
    direct = initial_pattern_genome(3, 1, torch.Generator().manual_seed(0))
    assert {(c.source, c.target) for c in direct.connections} == {(0, 3), (1, 3), (2, 3)}


def test_each_mutation_does_what_it_says():
    gen = torch.Generator().manual_seed(1)
    g = _genome()
    bigger = add_node(g, gen)
    assert len(bigger.nodes) == len(g.nodes) + 1 and len(bigger.connections) == len(g.connections) + 1
    new = bigger.nodes[-1].id
    into, out = [c for c in bigger.connections if c.target == new], [c for c in bigger.connections if c.source == new]
    assert into[0].weight == 1.0 and (into[0].source, out[0].target) not in {
        (c.source, c.target) for c in bigger.connections}  # the split connection is gone
    assert out[0].weight == next(c.weight for c in g.connections if (c.source, c.target) == (into[0].source,
                                                                                             out[0].target))
    smaller = delete_node(g, gen)
    assert len(smaller.nodes) == len(g.nodes) - 1 and set(smaller.outputs) == set(g.outputs)
    assert len(add_connection(g, gen).connections) == len(g.connections) + 1
    assert len(delete_connection(g, gen).connections) == len(g.connections) - 1
    switched = switch_activation(g, gen)
    assert sum(a.activation != b.activation for a, b in zip(g.nodes, switched.nodes, strict=True)) == 1
    moved = perturb_weights(g, gen, 0.1)
    assert all(a.weight != b.weight for a, b in zip(g.connections, moved.connections, strict=True))
    assert [c.weight for c in g.connections] == [c.weight for c in _genome().connections]  # input untouched


def test_add_connection_never_closes_a_cycle():
    # chain 0 -> a -> b -> out: the only free pairs that keep it acyclic must be forward
    g = PatternGenome(1, [NodeGene(1, "identity"), NodeGene(2, "sin"), NodeGene(3, "tanh")], [1],
                      [ConnectionGene(0, 2, 1.0), ConnectionGene(2, 3, 1.0), ConnectionGene(3, 1, 1.0)])
    seen = set()
    for seed in range(40):
        child = add_connection(g, torch.Generator().manual_seed(seed))
        check_pattern_genome(child)
        seen |= {(c.source, c.target) for c in child.connections} - {(0, 2), (2, 3), (3, 1)}
    assert seen == {(0, 3), (0, 1), (2, 1)}  # never 3 -> 2


def test_split_ids_are_shared_between_lineages():
    g = PatternGenome(1, [NodeGene(1, "identity")], [1], [ConnectionGene(0, 1, 0.5)])
    a, b = add_node(g, torch.Generator().manual_seed(0)), add_node(g, torch.Generator().manual_seed(5))
    assert a.nodes[-1].id == b.nodes[-1].id  # the same split, the same innovation


@given(st.integers(0, 10_000), st.lists(st.sampled_from(["an", "dn", "ac", "dc", "sw", "pw", "all"]),
                                       min_size=1, max_size=25))
def test_random_mutation_sequences_keep_the_dag_valid(seed, ops):
    gen = torch.Generator().manual_seed(seed)
    g = _genome(seed % 7, hidden=seed % 3)
    config = PatternMutationConfig(add_node=0.5, delete_node=0.3, add_connection=0.6, delete_connection=0.3,
                                   switch_activation=0.5, perturb=0.5)
    for op in ops:
        g = {"an": add_node, "dn": delete_node, "ac": add_connection, "dc": delete_connection,
             "sw": switch_activation, "pw": lambda x, r: perturb_weights(x, r, 0.5),
             "all": lambda x, r: mutate_pattern_genome(x, r, config)}[op](g, gen)
        check_pattern_genome(g)
        assert not _has_cycle(g) and g.outputs == [4, 5]
        assert len({n.id for n in g.nodes}) == len(g.nodes)
    assert PatternGenome.from_dict(g.to_dict()) == g and pickle.loads(pickle.dumps(g)) == g


def test_mutation_is_reproducible_from_the_generator():
    a = mutate_pattern_genome(_genome(), torch.Generator().manual_seed(3), PatternMutationConfig(add_node=1.0))
    b = mutate_pattern_genome(_genome(), torch.Generator().manual_seed(3), PatternMutationConfig(add_node=1.0))
    assert a == b and len(a.nodes) == len(_genome().nodes) + 1


def test_crossover_keeps_the_fitter_topology_and_mixes_matching_genes():
    gen = torch.Generator().manual_seed(0)
    fitter, other = _genome(0), _genome(1)
    other = add_node(other, gen)
    child = crossover_pattern_genomes(fitter, other, gen, probability=1.0)
    assert [(c.source, c.target) for c in child.connections] == [(c.source, c.target) for c in fitter.connections]
    weights = {(c.source, c.target): c.weight for c in other.connections}
    for c in child.connections:  # probability 1: every matching gene from the other parent
        assert c.weight == weights.get((c.source, c.target), next(
            f.weight for f in fitter.connections if (f.source, f.target) == (c.source, c.target)))
    assert crossover_pattern_genomes(fitter, other, gen, probability=0.0) == fitter
    check_pattern_genome(child)


def test_bad_inputs_are_refused(library_error):
    g = _genome()
    cyclic = PatternGenome(1, [NodeGene(1, "sin"), NodeGene(2, "sin")], [1],
                           [ConnectionGene(1, 2, 1.0), ConnectionGene(2, 1, 1.0)])
    bad = [
        cyclic,
        PatternGenome(1, [NodeGene(1, "sin"), NodeGene(1, "tanh")], [1], []),  # repeated id
        PatternGenome(1, [NodeGene(1, "swish")], [1], []),
        PatternGenome(1, [NodeGene(1, "sin")], [], []),
        PatternGenome(1, [NodeGene(1, "sin")], [1], [ConnectionGene(0, 7, 1.0)]),
        PatternGenome(1, [NodeGene(1, "sin")], [1], [ConnectionGene(0, 1, float("nan"))]),
        PatternGenome(2, [NodeGene(1, "sin")], [1], []),  # a node id among the inputs
        "genome",
    ]
    for genome in bad:
        with library_error():
            check_pattern_genome(genome)
    with library_error() as info:
        add_node(g, 0)
    assert info.match("generator")
    with library_error():
        PatternMutationConfig(add_node=1.5)
    with library_error():
        PatternMutationConfig(activations=("sin", "swish"))
    with library_error():
        perturb_weights(g, torch.Generator(), -1.0)
    with library_error():
        crossover_pattern_genomes(g, _genome(hidden=0).__class__(5, g.nodes, g.outputs, []), torch.Generator())
    with library_error():
        initial_pattern_genome(0, 1, torch.Generator())
    with library_error():
        PatternGenome.from_dict({"num_inputs": 1})
    assert set(PATTERN_ACTIVATIONS) == {"sin", "sigmoid", "tanh", "relu", "abs", "gaussian", "identity"}
