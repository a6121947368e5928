"""Pattern-producing genomes: a DAG of activation nodes as plain data, its validity check, pure mutations and a
sound crossover.

Fernando et al. 2016, "Convolution by evolution: differentiable pattern producing networks" (DPPN), after
Stanley 2007 (CPPN): a small evolved graph maps the coordinates of each weight of a large network to that weight.
The topology is evolved (mutations below), the connection weights and node biases are learned by gradient descent
(:class:`~neuroplastic.evolution.pattern_network.PatternNetwork`).

A genome has ``num_inputs`` input nodes (ids ``0 .. num_inputs-1``: the coordinate features, no bias, no
activation) and hidden and output nodes (:class:`NodeGene`: id, activation, bias); connections
(:class:`ConnectionGene`: source, target, weight). A node computes ``act(bias + sum_j w_j * value(source_j))``; a
node without incoming connections gives ``act(bias)`` (so an output that no input reaches is a constant, never
undefined). Everything is Python ints, floats and strings, so a genome pickles and goes into a ``state_dict``
(:meth:`PatternGenome.to_dict`).

Node ids of split connections are derived from the split connection ``(source, target)`` (a stable integer
mix, like the evolution package's :func:`~neuroplastic.evolution.genome_seed`), so the same split made in two
lineages gives the same id: NEAT's innovation numbers without a global registry. A connection's innovation is its
``(source, target)`` pair. :func:`crossover_pattern_genomes` keeps the fitter parent's structure (acyclic by
construction) and takes each matching gene's value from either parent.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .._checks import check_choice, check_fraction, check_int, check_number
from .operators import _splitmix64

__all__ = [
    "ACTIVATIONS",
    "ConnectionGene",
    "NodeGene",
    "PatternGenome",
    "PatternMutationConfig",
    "add_connection",
    "add_node",
    "check_pattern_genome",
    "crossover_pattern_genomes",
    "delete_connection",
    "delete_node",
    "initial_pattern_genome",
    "mutate_pattern_genome",
    "perturb_weights",
    "switch_activation",
]

ACTIVATIONS: tuple[str, ...] = ("sin", "sigmoid", "tanh", "relu", "abs", "gaussian", "identity")
_ID_BITS = (1 << 62) - 1


@dataclass
class NodeGene:
    """A hidden or output node: ``id`` (int >= num_inputs), ``activation`` (one of :data:`ACTIVATIONS`), ``bias``."""

    id: int
    activation: str
    bias: float = 0.0


@dataclass
class ConnectionGene:
    """A weighted edge ``source -> target`` (node ids); its innovation is the pair ``(source, target)``."""

    source: int
    target: int
    weight: float


@dataclass
class PatternGenome:
    """A pattern-producing genome (module docstring): ``num_inputs`` input ids ``0..num_inputs-1``, ``nodes``
    (hidden and output), ``outputs`` (ids of the output nodes, in output order), ``connections``."""

    num_inputs: int
    nodes: list[NodeGene] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    connections: list[ConnectionGene] = field(default_factory=list)

    @property
    def num_outputs(self) -> int:
        return len(self.outputs)

    @property
    def num_parameters(self) -> int:
        """Learnable numbers: one weight per connection and one bias per node."""
        return len(self.connections) + len(self.nodes)

    def node(self, node_id: int) -> NodeGene:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def hidden_ids(self) -> list[int]:
        outputs = set(self.outputs)
        return [n.id for n in self.nodes if n.id not in outputs]

    def topological_order(self) -> list[int]:
        """The non-input node ids in an order where every source comes before its target (Kahn's algorithm, ties
        by position in ``nodes``); ValueError if the graph has a cycle."""
        ids = [n.id for n in self.nodes]
        indegree = dict.fromkeys(ids, 0)
        children: dict[int, list[int]] = {i: [] for i in range(self.num_inputs)} | {i: [] for i in ids}
        for c in self.connections:
            indegree[c.target] += 1
            children[c.source].append(c.target)
        position = {i: k for k, i in enumerate(ids)}
        for i in range(self.num_inputs):
            for t in children[i]:
                indegree[t] -= 1
        ready = sorted((i for i in ids if indegree[i] == 0), key=position.__getitem__)
        order: list[int] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for t in children[node]:
                indegree[t] -= 1
                if indegree[t] == 0:
                    ready.append(t)
            ready.sort(key=position.__getitem__)
        if len(order) != len(ids):
            raise ValueError("the genome's connections form a cycle")
        return order

    def to_dict(self) -> dict[str, Any]:
        """Plain lists for a ``state_dict`` or JSON."""
        return {"num_inputs": self.num_inputs,
                "nodes": [[n.id, n.activation, n.bias] for n in self.nodes],
                "outputs": list(self.outputs),
                "connections": [[c.source, c.target, c.weight] for c in self.connections]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PatternGenome:
        """The genome of :meth:`to_dict`, checked with :func:`check_pattern_genome`."""
        if not isinstance(data, Mapping) or set(data) != {"num_inputs", "nodes", "outputs", "connections"}:
            raise ValueError("data must be a mapping with keys num_inputs, nodes, outputs, connections")
        genome = cls(data["num_inputs"], [NodeGene(int(i), str(a), float(b)) for i, a, b in data["nodes"]],
                     [int(i) for i in data["outputs"]],
                     [ConnectionGene(int(s), int(t), float(w)) for s, t, w in data["connections"]])
        return check_pattern_genome(genome)


def check_pattern_genome(genome: object) -> PatternGenome:
    """Return ``genome`` if it is a valid :class:`PatternGenome`, else a ValueError/TypeError saying what is wrong.

    Invariants: ``num_inputs >= 1``; node ids unique ints ``>= num_inputs``; activations in :data:`ACTIVATIONS`;
    biases and weights finite floats; ``outputs`` non-empty, unique, ids of nodes; connection endpoints exist (a source
    may be any node, a target never an input); no repeated ``(source,
    target)``; no self-loop and no cycle.
    """
    if not isinstance(genome, PatternGenome):
        raise TypeError(f"genome must be a PatternGenome, got {type(genome).__name__}")
    check_int("genome.num_inputs", genome.num_inputs, minimum=1)
    ids = set()
    for n in genome.nodes:
        if not isinstance(n, NodeGene):
            raise TypeError(f"genome.nodes must hold NodeGene, got {type(n).__name__}")
        check_int("node id", n.id, minimum=genome.num_inputs)
        if n.id in ids:
            raise ValueError(f"node ids must be unique, got {n.id} twice")
        ids.add(n.id)
        check_choice("node activation", n.activation, ACTIVATIONS)
        check_number("node bias", n.bias)
    if not genome.outputs or len(set(genome.outputs)) != len(genome.outputs) or not set(genome.outputs) <= ids:
        raise ValueError(f"genome.outputs must be distinct ids of nodes (at least one), got {genome.outputs}")
    pairs = set()
    for c in genome.connections:
        if not isinstance(c, ConnectionGene):
            raise TypeError(f"genome.connections must hold ConnectionGene, got {type(c).__name__}")
        if not (isinstance(c.source, int) and (0 <= c.source < genome.num_inputs or c.source in ids)):
            raise ValueError(f"connection source {c.source!r} is not a node of the genome")
        if c.target not in ids:
            raise ValueError(f"connection target {c.target!r} is not a hidden or output node")
        if (c.source, c.target) in pairs or c.source == c.target:
            raise ValueError(f"connection {c.source}->{c.target} is repeated or a self-loop")
        pairs.add((c.source, c.target))
        check_number("connection weight", c.weight)
    genome.topological_order()  # raises on a cycle
    return genome


def _rand(generator: torch.Generator) -> float:
    return float(torch.rand((), generator=generator, dtype=torch.float64))


def _randint(n: int, generator: torch.Generator) -> int:
    return int(torch.randint(n, (), generator=generator))


def _normal(std: float, generator: torch.Generator) -> float:
    # float32 draws: a weight compiled to a float32 PatternNetwork is then exactly the genome's
    return float(torch.randn((), generator=generator) * std)


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator


def _descendants(genome: PatternGenome, start: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for c in genome.connections:
        children.setdefault(c.source, []).append(c.target)
    seen, stack = {start}, [start]
    while stack:
        for t in children.get(stack.pop(), ()):
            if t not in seen:
                seen.add(t)
                stack.append(t)
    return seen


def _split_id(genome: PatternGenome, source: int, target: int) -> int:
    """The id of the node splitting ``source -> target``: a stable mix of the pair (the k-th free one)."""
    taken = {n.id for n in genome.nodes}
    k = 0
    while True:
        x = _splitmix64(_splitmix64(_splitmix64(source) ^ target) ^ k)
        node_id = genome.num_inputs + (x & _ID_BITS)
        if node_id not in taken:
            return node_id
        k += 1


# ---------------------------------------------------------------------------------------------- mutations
@dataclass(frozen=True)
class PatternMutationConfig:
    """Per-call probabilities of each structural mutation of :func:`mutate_pattern_genome`, and its scales.

    ``weight_std``: std of the Gaussian added to every weight and bias by :func:`perturb_weights` (applied with
    probability ``perturb``); ``init_std``: std of a new connection's weight; ``activations``: the choices of new
    and switched nodes; ``max_nodes``: no node is added beyond this many hidden and output nodes.
    """

    add_node: float = 0.1
    delete_node: float = 0.05
    add_connection: float = 0.2
    delete_connection: float = 0.05
    switch_activation: float = 0.1
    perturb: float = 0.0
    weight_std: float = 0.1
    init_std: float = 1.0
    activations: tuple[str, ...] = ACTIVATIONS
    max_nodes: int = 64

    def __post_init__(self) -> None:
        for name in ("add_node", "delete_node", "add_connection", "delete_connection", "switch_activation",
                     "perturb"):
            check_fraction(name, getattr(self, name))
        check_number("weight_std", self.weight_std, minimum=0)
        check_number("init_std", self.init_std, minimum=0)
        if not isinstance(self.activations, tuple) or not self.activations:
            raise ValueError(f"activations must be a non-empty tuple of {ACTIVATIONS}, got {self.activations!r}")
        for a in self.activations:
            check_choice("activations", a, ACTIVATIONS)
        check_int("max_nodes", self.max_nodes, minimum=1)


def add_node(genome: PatternGenome, generator: torch.Generator, *,
             activations: Sequence[str] = ACTIVATIONS) -> PatternGenome:
    """Split a random connection ``s -> t`` (weight ``w``) into ``s -> n`` (weight 1) and ``n -> t`` (weight
    ``w``), ``n`` a new node with a random activation and bias 0 (NEAT's add-node). No connection: unchanged."""
    genome, generator = check_pattern_genome(genome), _check_generator(generator)
    if not genome.connections:
        return copy.deepcopy(genome)
    child = copy.deepcopy(genome)
    old = child.connections.pop(_randint(len(child.connections), generator))
    node_id = _split_id(child, old.source, old.target)
    child.nodes.append(NodeGene(node_id, activations[_randint(len(activations), generator)], 0.0))
    child.connections += [ConnectionGene(old.source, node_id, 1.0), ConnectionGene(node_id, old.target, old.weight)]
    return child


def delete_node(genome: PatternGenome, generator: torch.Generator) -> PatternGenome:
    """Remove a random hidden node and all its connections (outputs are never removed). No hidden node: unchanged."""
    genome, generator = check_pattern_genome(genome), _check_generator(generator)
    hidden = genome.hidden_ids()
    child = copy.deepcopy(genome)
    if hidden:
        gone = hidden[_randint(len(hidden), generator)]
        child.nodes = [n for n in child.nodes if n.id != gone]
        child.connections = [c for c in child.connections if gone not in (c.source, c.target)]
    return child


def add_connection(genome: PatternGenome, generator: torch.Generator, *, init_std: float = 1.0) -> PatternGenome:
    """Add a connection, uniform over the pairs ``s -> t`` not yet connected whose addition keeps the graph
    acyclic (``t`` is not ``s`` and ``s`` is not reachable from ``t``); weight ``N(0, init_std^2)``. None
    left: unchanged."""
    genome, generator = check_pattern_genome(genome), _check_generator(generator)
    existing = {(c.source, c.target) for c in genome.connections}
    sources = list(range(genome.num_inputs)) + genome.hidden_ids()
    candidates = []
    for t in (n.id for n in genome.nodes):
        below = _descendants(genome, t)  # t's descendants may not feed t
        candidates += [(s, t) for s in sources if s not in below and (s, t) not in existing]
    child = copy.deepcopy(genome)
    if candidates:
        s, t = candidates[_randint(len(candidates), generator)]
        child.connections.append(ConnectionGene(s, t, _normal(init_std, generator)))
    return child


def delete_connection(genome: PatternGenome, generator: torch.Generator) -> PatternGenome:
    """Remove a random connection (none: unchanged). Nodes left without inputs compute ``act(bias)``."""
    genome, generator = check_pattern_genome(genome), _check_generator(generator)
    child = copy.deepcopy(genome)
    if child.connections:
        child.connections.pop(_randint(len(child.connections), generator))
    return child


def switch_activation(genome: PatternGenome, generator: torch.Generator, *,
                      activations: Sequence[str] = ACTIVATIONS) -> PatternGenome:
    """Give a random hidden or output node another activation from ``activations`` (unchanged if none differs)."""
    genome, generator = check_pattern_genome(genome), _check_generator(generator)
    child = copy.deepcopy(genome)
    node = child.nodes[_randint(len(child.nodes), generator)]
    others = [a for a in activations if a != node.activation]
    if others:
        node.activation = others[_randint(len(others), generator)]
    return child


def perturb_weights(genome: PatternGenome, generator: torch.Generator, std: float) -> PatternGenome:
    """Add ``N(0, std^2)`` (drawn in float32) to every connection weight and node bias."""
    genome, generator = check_pattern_genome(genome), _check_generator(generator)
    std = check_number("std", std, minimum=0)
    child = copy.deepcopy(genome)
    noise = (torch.randn(len(child.connections) + len(child.nodes), generator=generator) * std).tolist()
    for c, e in zip(child.connections, noise, strict=False):
        c.weight = float(torch.tensor(c.weight + e, dtype=torch.float32))
    for n, e in zip(child.nodes, noise[len(child.connections):], strict=True):
        n.bias = float(torch.tensor(n.bias + e, dtype=torch.float32))
    return child


def mutate_pattern_genome(genome: PatternGenome, generator: torch.Generator,
                          config: PatternMutationConfig | None = None) -> PatternGenome:
    """Apply each mutation with its probability in ``config``, in the order add node, delete node, add connection,
    delete connection, switch activation, perturb weights; the result is a new valid genome (the input unchanged).
    """
    genome, generator = check_pattern_genome(genome), _check_generator(generator)
    config = PatternMutationConfig() if config is None else config
    if not isinstance(config, PatternMutationConfig):
        raise TypeError(f"config must be a PatternMutationConfig, got {type(config).__name__}")
    child = copy.deepcopy(genome)
    draws = torch.rand(6, generator=generator, dtype=torch.float64).tolist()
    if draws[0] < config.add_node and len(child.nodes) < config.max_nodes:
        child = add_node(child, generator, activations=config.activations)
    if draws[1] < config.delete_node:
        child = delete_node(child, generator)
    if draws[2] < config.add_connection:
        child = add_connection(child, generator, init_std=config.init_std)
    if draws[3] < config.delete_connection:
        child = delete_connection(child, generator)
    if draws[4] < config.switch_activation:
        child = switch_activation(child, generator, activations=config.activations)
    if draws[5] < config.perturb and config.weight_std > 0:
        child = perturb_weights(child, generator, config.weight_std)
    return child


def crossover_pattern_genomes(fitter: PatternGenome, other: PatternGenome, generator: torch.Generator, *,
                              probability: float = 0.5) -> PatternGenome:
    """NEAT-style crossover kept acyclic: the child has ``fitter``'s nodes and connections (its topology, valid by
    construction); each node (same id) and connection (same ``(source, target)``) that ``other`` also has takes
    ``other``'s bias and activation / weight with ``probability``. Same ``num_inputs`` and outputs required."""
    fitter, other = check_pattern_genome(fitter), check_pattern_genome(other)
    generator = _check_generator(generator)
    probability = check_fraction("probability", probability)
    if fitter.num_inputs != other.num_inputs or fitter.outputs != other.outputs:
        raise ValueError("crossover needs parents with the same inputs and outputs, got "
                         f"{fitter.num_inputs}/{fitter.outputs} and {other.num_inputs}/{other.outputs}")
    child = copy.deepcopy(fitter)
    nodes = {n.id: n for n in other.nodes}
    weights = {(c.source, c.target): c.weight for c in other.connections}
    draws = torch.rand(len(child.nodes) + len(child.connections), generator=generator, dtype=torch.float64).tolist()
    for n, u in zip(child.nodes, draws, strict=False):
        if n.id in nodes and u < probability:
            n.activation, n.bias = nodes[n.id].activation, nodes[n.id].bias
    for c, u in zip(child.connections, draws[len(child.nodes):], strict=True):
        if (c.source, c.target) in weights and u < probability:
            c.weight = weights[(c.source, c.target)]
    return child


def initial_pattern_genome(num_inputs: int, num_outputs: int, generator: torch.Generator, *, hidden: int = 0,
                           activations: Sequence[str] = ACTIVATIONS, output_activation: str = "identity",
                           init_std: float = 1.0, density: float = 1.0) -> PatternGenome:
    """A starting genome: ``hidden`` nodes with random activations, each fed by every input with probability
    ``density`` (at least one), every output fed by every hidden node (or, with ``hidden=0``, by every input);
    weights ``N(0, init_std^2)`` in float32, biases 0. Output ids ``num_inputs .. num_inputs+num_outputs-1``."""
    num_inputs = check_int("num_inputs", num_inputs, minimum=1)
    num_outputs = check_int("num_outputs", num_outputs, minimum=1)
    generator = _check_generator(generator)
    hidden = check_int("hidden", hidden, minimum=0)
    density = check_fraction("density", density, low_open=True)
    init_std = check_number("init_std", init_std, minimum=0)
    check_choice("output_activation", output_activation, ACTIVATIONS)
    if not activations or any(a not in ACTIVATIONS for a in activations):
        raise ValueError(f"activations must be a non-empty sequence of {ACTIVATIONS}, got {activations!r}")
    outputs = list(range(num_inputs, num_inputs + num_outputs))
    genome = PatternGenome(num_inputs, [NodeGene(i, output_activation, 0.0) for i in outputs], outputs, [])
    for k in range(hidden):
        node_id = num_inputs + num_outputs + k
        genome.nodes.insert(k, NodeGene(node_id, activations[_randint(len(activations), generator)], 0.0))
        keep = [i for i in range(num_inputs) if _rand(generator) < density] or [_randint(num_inputs, generator)]
        genome.connections += [ConnectionGene(i, node_id, _normal(init_std, generator)) for i in keep]
    feeders = genome.hidden_ids() or list(range(num_inputs))
    genome.connections += [ConnectionGene(s, o, _normal(init_std / math.sqrt(len(feeders)), generator))
                           for o in outputs for s in feeders]
    return check_pattern_genome(genome)
