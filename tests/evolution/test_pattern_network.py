"""PatternNetwork against a slow node-by-node evaluation; exact write-back; coordinates; gradients through a target."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuroplastic.evolution import (
    COORDINATE_FEATURES,
    ConnectionGene,
    NodeGene,
    PatternGenome,
    PatternNetwork,
    WeightCoordinates,
    add_connection,
    add_node,
    axis_positions,
    functional_forward,
    grid_positions,
    initial_pattern_genome,
)

_ACT = {"sin": math.sin, "sigmoid": lambda x: 1 / (1 + math.exp(-x)), "tanh": math.tanh, "relu": lambda x: max(x, 0),
        "abs": abs, "gaussian": lambda x: math.exp(-x * x), "identity": lambda x: x}


pytestmark = pytest.mark.usefixtures("one_thread")


def slow_evaluate(genome: PatternGenome, coordinate: list[float]) -> list[float]:
    """One coordinate, node by node in plain Python floats (a node is ready when all its sources are)."""
    values = dict(enumerate(coordinate))
    pending = [n for n in genome.nodes]
    while pending:
        for node in pending:
            incoming = [c for c in genome.connections if c.target == node.id]
            if all(c.source in values for c in incoming):
                values[node.id] = _ACT[node.activation](node.bias + sum(c.weight * values[c.source] for c in incoming))
                pending.remove(node)
                break
    return [values[o] for o in genome.outputs]


def _rich_genome(seed: int) -> PatternGenome:
    gen = torch.Generator().manual_seed(seed)
    g = initial_pattern_genome(len(COORDINATE_FEATURES), 2, gen, hidden=4)
    for _ in range(6):
        g = add_connection(add_node(g, gen), gen)
    for k, node in enumerate(g.nodes):  # every activation, non-zero biases
        node.activation = ("sin", "sigmoid", "tanh", "relu", "abs", "gaussian", "identity")[k % 7]
        node.bias = 0.1 * (k - 3)
    return g


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_genome_matches_slow_per_coordinate_evaluation(seed):
    genome = _rich_genome(seed)
    coords = torch.rand(50, len(COORDINATE_FEATURES), generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64) * 2 - 1
    net = PatternNetwork(genome, dtype=torch.float64)
    fast = net(coords)
    slow = torch.tensor([slow_evaluate(genome, row) for row in coords.tolist()], dtype=torch.float64)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(net.forward_features(coords.t().contiguous()).t(), fast)


def test_node_without_inputs_is_its_activated_bias():
    g = PatternGenome(2, [NodeGene(2, "sigmoid", 0.3), NodeGene(3, "identity", 0.0)], [2, 3],
                      [ConnectionGene(0, 3, 2.0)])
    out = PatternNetwork(g)(torch.tensor([[1.0, 5.0], [-1.0, 0.0]]))
    torch.testing.assert_close(out, torch.tensor([[torch.sigmoid(torch.tensor(0.3)).item(), 2.0],
                                                  [torch.sigmoid(torch.tensor(0.3)).item(), -2.0]]))


def test_lamarckian_write_back_is_exact():
    genome = _rich_genome(0)
    net = PatternNetwork(genome)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    coords = torch.rand(30, len(COORDINATE_FEATURES))
    for _ in range(5):
        optimizer.zero_grad()
        net(coords).pow(2).mean().backward()
        optimizer.step()
    learned = net.to_genome()
    assert [c.weight for c in learned.connections] != [c.weight for c in genome.connections]
    again = PatternNetwork(learned)
    assert torch.equal(again.weights, net.weights) and torch.equal(again.biases, net.biases)
    assert torch.equal(again(coords), net(coords))
    assert again.to_genome() == learned
    assert [(c.source, c.target) for c in learned.connections] == [(c.source, c.target) for c in genome.connections]


def test_grid_positions_and_axis():
    assert axis_positions(1).tolist() == [0.0] and axis_positions(3).tolist() == [-1.0, 0.0, 1.0]
    grid = grid_positions((2, 3))
    assert grid.tolist() == [[-1, -1], [0, -1], [1, -1], [-1, 1], [0, 1], [1, 1]]  # (x = column, y = row)
    assert grid_positions((3,)).tolist() == [[-1, 0], [0, 0], [1, 0]]


def test_weight_coordinates_of_linear_and_conv_layers():
    model = nn.Sequential(nn.Conv2d(2, 3, (3, 2)), nn.Flatten(), nn.Linear(4, 6), nn.Linear(6, 1, bias=False))
    wc = WeightCoordinates(model, {"2": ((2, 2), (2, 3))}, outputs={"3": 1})
    assert wc.num_weights == 3 * 2 * 3 * 2 + 3 + 4 * 6 + 6 + 6
    names = [s[0] for s in wc.slots]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight"]
    conv = wc.coords[:36].view(3, 2, 3, 2, -1)
    assert conv[..., 0].unique().tolist() == [-1.0]  # first of 3 layers
    assert conv[2, 1, 0, 1, 1:7].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, -1.0]  # in 1 of 2, out 2 of 3, kx 1, ky 0
    linear = wc.coords[39:63].view(6, 4, -1)
    assert linear[5, 0, 1:5].tolist() == [-1.0, -1.0, 1.0, 1.0]  # in (0,0) of 2x2, out (2,1) of 2x3 grid
    assert linear[5, 0, 7].item() == pytest.approx(math.sqrt(8) / math.sqrt(8))
    bias = wc.coords[63:69]
    assert bias[:, 8].tolist() == [1.0] * 6 and bias[:, 1:3].abs().sum() == 0
    assert wc.coords[:36, 8].abs().sum() == 0 and wc.coords[39:63, 8].abs().sum() == 0
    assert wc.coords[36:39, 8].tolist() == [1.0] * 3
    # produced parameters: the network's output column times 1/sqrt(fan_in), in the target's shapes
    net = PatternNetwork(initial_pattern_genome(len(COORDINATE_FEATURES), 2, torch.Generator().manual_seed(0),
                                                hidden=2))
    params = wc.parameters_from(net)
    assert {k: tuple(v.shape) for k, v in params.items()} == {k: tuple(p.shape) for k, p in model.named_parameters()}
    out = net(wc.coords)
    torch.testing.assert_close(params["2.weight"].flatten(), out[39:63, 0] / 2)
    torch.testing.assert_close(params["3.weight"].flatten(), out[69:75, 1] / math.sqrt(6))
    torch.testing.assert_close(params["0.weight"].flatten(), out[:36, 0] / math.sqrt(12))


def test_target_loss_gradient_reaches_the_genome_weights():
    model = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 4))
    wc = WeightCoordinates(model, {"0": ((2, 2), (3,)), "2": ((3,), (2, 2))}, outputs={"2": 1})
    genome = initial_pattern_genome(len(COORDINATE_FEATURES), 2, torch.Generator().manual_seed(0), hidden=3)
    net = PatternNetwork(genome, dtype=torch.float64)
    wc = wc.double()
    x = torch.rand(5, 4, dtype=torch.float64)

    def loss_of(weights):
        net.weights.data.copy_(weights)
        return functional_forward(model.double(), wc.parameters_from(net), x).pow(2).mean()

    loss = functional_forward(model.double(), wc.parameters_from(net), x).pow(2).mean()
    loss.backward()
    assert net.weights.grad is not None and net.weights.grad.abs().sum() > 0 and net.biases.grad.abs().sum() > 0
    w0, grad = net.weights.detach().clone(), net.weights.grad.clone()
    for e in range(0, w0.numel(), 5):  # central differences through the whole target
        step = torch.zeros_like(w0)
        step[e] = 1e-6
        numeric = (loss_of(w0 + step) - loss_of(w0 - step)) / 2e-6
        assert float(numeric.detach()) == pytest.approx(float(grad[e]), rel=1e-4, abs=1e-9)
    for p in model.parameters():
        assert p.grad is None  # the model's own parameters are not used


def test_bad_inputs_are_refused(library_error):
    net = PatternNetwork(initial_pattern_genome(3, 1, torch.Generator().manual_seed(0)))
    with library_error():
        net(torch.zeros(4, 2))
    with library_error():
        net(torch.zeros(4, 3, dtype=torch.float64))
    with library_error():
        PatternNetwork("genome")
    with library_error():
        WeightCoordinates(nn.ReLU())
    with library_error():
        WeightCoordinates(nn.Linear(4, 2), {"": ((3,), (2,))})
    with library_error():
        WeightCoordinates(nn.Linear(4, 2), {"missing": ((4,), (2,))})
    with library_error():
        WeightCoordinates(nn.Linear(4, 2), scale="xavier")
    with library_error():
        grid_positions((2, 2, 2))
    wc = WeightCoordinates(nn.Linear(4, 2), outputs={"": 1})
    with library_error():
        wc.parameters_from(PatternNetwork(initial_pattern_genome(len(COORDINATE_FEATURES), 1,
                                                                 torch.Generator())))
