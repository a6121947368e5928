"""Benchmark: producing the 157,684 weights of the DPPN paper's 784-100-784 autoencoder from a pattern genome.

Fernando et al. 2016 (DPPN). The untied autoencoder's encoder and decoder weights and biases (input and output
pixels on a 28 x 28 grid, hidden units on 10 x 10) are produced by a genome of about ``--parameters`` learnable
numbers (:func:`neuroplastic.evolution.initial_pattern_genome` grown by add-node/add-connection mutations until it
has that many). Timed: ``WeightCoordinates.parameters_from`` (one batched pass of
:class:`neuroplastic.evolution.PatternNetwork` over all coordinates, level by level) forward, and forward +
backward of the sum of the produced weights to the genome's parameters. Baseline: the same genome evaluated
coordinate by coordinate (one ``PatternNetwork`` call per coordinate row, the way a per-weight CPPN query runs),
timed on ``--subset`` coordinates spread over all layers and extrapolated linearly to all 157,684 (each call
does the same work, so the time per coordinate is constant). Each line gives the fastest of ``--repeats``.

    python benchmarks/pattern_weights.py --threads 1
"""

from __future__ import annotations

import argparse
import json

import torch
from torch import nn

from _timing import fastest
from neuroplastic.evolution import (
    COORDINATE_FEATURES,
    PatternMutationConfig,
    PatternNetwork,
    WeightCoordinates,
    initial_pattern_genome,
    mutate_pattern_genome,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parameters", type=int, default=200)
    parser.add_argument("--subset", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = nn.Sequential()
    model.add_module("encoder", nn.Linear(784, 100))
    model.add_module("decoder", nn.Linear(100, 784))
    coords = WeightCoordinates(model, {"encoder": ((28, 28), (10, 10)), "decoder": ((10, 10), (28, 28))},
                               outputs={"encoder": 0, "decoder": 1})
    generator = torch.Generator().manual_seed(0)
    genome = initial_pattern_genome(len(COORDINATE_FEATURES), 2, generator, hidden=8)
    grow = PatternMutationConfig(add_node=0.5, add_connection=1.0, delete_node=0.0, delete_connection=0.0)
    while genome.num_parameters < args.parameters:
        genome = mutate_pattern_genome(genome, generator, grow)
    net = PatternNetwork(genome)
    depth = len(net._levels)

    def forward() -> None:
        with torch.no_grad():
            coords.parameters_from(net)

    def forward_backward() -> None:
        net.zero_grad(set_to_none=True)
        sum(p.sum() for p in coords.parameters_from(net).values()).backward()

    rows = torch.linspace(0, coords.num_weights - 1, args.subset).long()
    subset = coords.coords[rows]

    def per_coordinate() -> None:
        with torch.no_grad():
            for k in range(subset.shape[0]):
                net(subset[k: k + 1])

    base = {"weights": coords.num_weights, "genome_parameters": genome.num_parameters,
            "nodes": len(genome.nodes), "connections": len(genome.connections), "levels": depth,
            "threads": args.threads}
    slow = fastest(per_coordinate, max(1, args.repeats // 10)) * coords.num_weights / args.subset
    for name, fn in (("forward", forward), ("forward_backward", forward_backward)):
        sec = fastest(fn, args.repeats)
        print(json.dumps({**base, "case": name, "batched_ms": round(sec * 1e3, 3),
                          "per_coordinate_ms_extrapolated": round(slow * 1e3, 1),
                          "per_coordinate_subset": args.subset, "speedup": round(slow / sec, 1)}))


if __name__ == "__main__":
    main()
