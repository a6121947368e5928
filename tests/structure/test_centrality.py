"""Betweenness centrality against its literal definition and networkx, and low-centrality neuron removal."""

from __future__ import annotations

from collections import deque

import pytest
import torch

from neuroplastic.structure.centrality import betweenness_centrality, prune_low_centrality

F64 = torch.float64


def reference_betweenness(adjacency):
    """Slow literal definition: sum over ordered pairs s != t of sigma_st(v) / sigma_st."""
    n = adjacency.shape[0]
    succ = [[v for v in range(n) if v != u and adjacency[u, v]] for u in range(n)]
    dist, sigma = [], []
    for s in range(n):
        d, c = [-1] * n, [0] * n
        d[s], c[s] = 0, 1
        queue = deque([s])
        while queue:
            u = queue.popleft()
            for v in succ[u]:
                if d[v] < 0:
                    d[v] = d[u] + 1
                    queue.append(v)
                if d[v] == d[u] + 1:
                    c[v] += c[u]
        dist.append(d)
        sigma.append(c)
    out = [0.0] * n
    for s in range(n):
        for t in range(n):
            if s == t or dist[s][t] < 0:
                continue
            for v in range(n):
                if v in (s, t) or dist[s][v] < 0 or dist[v][t] < 0:
                    continue
                if dist[s][v] + dist[v][t] == dist[s][t]:
                    out[v] += sigma[s][v] * sigma[v][t] / sigma[s][t]
    return torch.tensor(out, dtype=F64)


def test_betweenness_matches_the_literal_definition():
    adjacency = torch.rand(25, 25, generator=torch.Generator().manual_seed(3)) < 0.12
    reference = reference_betweenness(adjacency)
    torch.testing.assert_close(betweenness_centrality(adjacency, normalized=False, chunk=7), reference)
    torch.testing.assert_close(betweenness_centrality(adjacency), reference / (24 * 23))


def test_betweenness_by_hand_and_networkx():
    path = torch.zeros(4, 4, dtype=torch.bool)
    path[0, 1] = path[1, 2] = path[2, 3] = True  # 0 -> 1 -> 2 -> 3
    torch.testing.assert_close(betweenness_centrality(path, normalized=False),
                               torch.tensor([0.0, 2.0, 2.0, 0.0], dtype=F64))
    nx = pytest.importorskip("networkx")
    adjacency = torch.rand(40, 40, generator=torch.Generator().manual_seed(4)) < 0.08
    graph = nx.DiGraph()
    graph.add_nodes_from(range(40))
    graph.add_edges_from((u, v) for u, v in adjacency.nonzero().tolist() if u != v)
    expected = nx.betweenness_centrality(graph, normalized=True)
    torch.testing.assert_close(betweenness_centrality(adjacency), torch.tensor([expected[i] for i in range(40)],
                                                                               dtype=F64))


def test_low_centrality_pruning_keeps_the_hub():
    n = 9
    weight = torch.zeros(n, n, dtype=F64)
    weight[0, 1:] = 1.0  # a star: every leaf talks to the hub 0 and back
    weight[1:, 0] = 1.0
    weight[1, 2] = weight[2, 1] = 1.0  # one leaf pair also talks directly
    mask, centrality = prune_low_centrality(weight, 3, rounds=2)
    assert int(mask.sum()) == 3 and bool(mask[0])
    assert float(centrality[0]) == float(centrality.max())

