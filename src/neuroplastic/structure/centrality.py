"""Graph centrality of a network's connections, and removal of its least central neurons.

- :func:`betweenness_centrality`: Brandes 2001, "A faster algorithm for betweenness centrality", on a directed,
  unweighted graph, all sources at once by matrix products (``c(v) = sum_{s != v != t} sigma_st(v) / sigma_st``).
- :func:`prune_low_centrality`: remove the neurons of lowest betweenness on the graph of a weight matrix's
  nonzero synapses, recomputed over a few rounds (step 4 of Lyapunov noise pruning, :mod:`.lnp`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuroplastic._checks import check_int, check_tensor

__all__ = ["betweenness_centrality", "prune_low_centrality"]


def betweenness_centrality(adjacency: Tensor, *, normalized: bool = True, chunk: int = 256) -> Tensor:
    """Betweenness centrality of every node of a directed, unweighted graph (Brandes 2001), ``[N]``.

    ``adjacency`` ``[N, N]`` bool (or any tensor, nonzero = edge), ``adjacency[u, v]`` = edge ``u -> v``;
    self-loops are ignored. ``c(v) = sum_{s != v != t} sigma_st(v) / sigma_st`` over ordered pairs, with
    ``sigma_st`` the number of shortest paths from ``s`` to ``t`` and ``sigma_st(v)`` those through ``v``.
    ``normalized`` divides by ``(N - 1)(N - 2)`` (as networkx does for directed graphs). All sources are
    processed together (``chunk`` at a time): breadth-first levels by matrix products, then Brandes'
    dependency accumulation level by level.
    """
    check_tensor("adjacency", adjacency, ("N", "N"), floating=False)
    n = adjacency.shape[0]
    if adjacency.shape[1] != n:
        raise ValueError(f"adjacency must be square, got {list(adjacency.shape)}")
    a = (adjacency != 0).double()
    a.fill_diagonal_(0.0)
    total = torch.zeros(n, dtype=torch.float64, device=adjacency.device)
    for start in range(0, n, chunk):
        sources = torch.arange(start, min(start + chunk, n), device=adjacency.device)
        m = len(sources)
        rows = torch.arange(m, device=adjacency.device)
        dist = torch.full((m, n), -1, dtype=torch.long, device=adjacency.device)
        sigma = torch.zeros(m, n, dtype=torch.float64, device=adjacency.device)
        dist[rows, sources] = 0
        sigma[rows, sources] = 1.0
        frontier = dist == 0
        level = 0
        while bool(frontier.any()):
            level += 1
            arriving = (sigma * frontier) @ a
            new = (arriving > 0) & (dist < 0)
            sigma = torch.where(new, arriving, sigma)
            dist = torch.where(new, torch.full_like(dist, level), dist)
            frontier = new
        delta = torch.zeros(m, n, dtype=torch.float64, device=adjacency.device)
        for d in range(level - 1, 0, -1):
            at = dist == d
            coefficient = torch.where(at, (1.0 + delta) / sigma.clamp_min(1.0), torch.zeros_like(delta))
            contribution = coefficient @ a.T
            delta = delta + torch.where(dist == d - 1, sigma * contribution, torch.zeros_like(delta))
        delta[rows, sources] = 0.0
        total += delta.sum(dim=0)
    if normalized and n > 2:
        total = total / ((n - 1) * (n - 2))
    return total


def prune_low_centrality(weight: Tensor, keep: int, *, rounds: int = 4,
                         alive: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Remove the neurons of lowest betweenness centrality until ``keep`` remain.

    The graph has an edge ``j -> i`` for every nonzero ``weight[i, j]`` (``[N_post, N_pre]``) between alive
    neurons. Centrality is recomputed over ``rounds`` rounds (each removes an equal share; ties go to the
    lower index). Returns ``(neuron_mask [N] bool, centrality [N])``: the betweenness of the last round
    (0 for neurons that were not alive in it).
    """
    check_tensor("weight", weight, ("N", "N"))
    n = weight.shape[0]
    check_int("keep", keep, minimum=1, maximum=n)
    check_int("rounds", rounds)
    mask = torch.ones(n, dtype=torch.bool, device=weight.device) if alive is None else alive.clone()
    centrality = torch.zeros(n, dtype=torch.float64, device=weight.device)
    start = int(mask.sum())
    for r in range(rounds):
        if int(mask.sum()) <= keep:
            break
        target = start - round((start - keep) * (r + 1) / rounds)
        index = mask.nonzero().squeeze(1)
        sub = weight[index][:, index] != 0
        scores = betweenness_centrality(sub.T)
        centrality = torch.zeros(n, dtype=torch.float64, device=weight.device)
        centrality[index] = scores
        remove = len(index) - target
        order = torch.sort(scores, stable=True).indices[:remove]
        mask[index[order]] = False
    return mask, centrality

