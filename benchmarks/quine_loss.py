"""Benchmark: a quine's replication loss (forward + backward) for all parameters in one batched pass, against a
per-parameter Python loop.

Chang & Lipson 2018 (neural network quine). The quine (:class:`neuroplastic.evolution.Quine`, ``--embedding``
wide index embedding, ``--hidden`` layers, ReLU) has a few thousand parameters. Ours: ``quine.replication_loss()``,
one pass of the ``[D, E]`` projection through the MLP, then one backward pass. The loop (the community code's
approach, e.g. AustinT/nn-quine, rewritten here): for each index, a one-hot vector ``[D]`` through the projection
and the MLP, the parameter found by walking the parameter list, the squared error added to the loss; one backward
pass at the end. The loop is timed on ``--subset`` indices and extrapolated linearly to ``D`` (its cost per index
is constant: each iteration does the same work), which the ``loop_subset_sec`` field shows. Both losses are
checked equal on the subset. Each line: the fastest of ``--repeats`` timings and the ratio loop / ours.

    python benchmarks/quine_loss.py --hidden 32,32 --embedding 32
"""

from __future__ import annotations

import argparse
import json

import torch

from _timing import fastest
from neuroplastic.evolution import Quine


def loop_loss(quine: Quine, indices: list[int]) -> torch.Tensor:
    """The per-parameter loop: one-hot index through the projection and the MLP, one parameter at a time."""
    params = list(quine.parameters())
    sizes = [p.numel() for p in params]
    loss = torch.zeros((), dtype=quine.projection.dtype)
    for i in indices:
        onehot = torch.zeros(quine.num_parameters, dtype=quine.projection.dtype)
        onehot[i] = 1.0
        predicted = quine._mlp((onehot @ quine.projection).unsqueeze(0))[0, 0]
        j, k = i, 0
        while j >= sizes[k]:
            j, k = j - sizes[k], k + 1
        loss = loss + (predicted - params[k].reshape(-1)[j].detach()) ** 2
    return loss


def run(embedding: int, hidden: tuple[int, ...], subset: int, repeats: int, threads: int) -> None:
    torch.set_num_threads(threads)
    quine = Quine(embedding, hidden, "relu", generator=torch.Generator().manual_seed(0))
    d = quine.num_parameters
    indices = list(range(min(subset, d)))

    def ours() -> None:
        quine.zero_grad()
        quine.replication_loss().backward()

    def loop() -> None:
        quine.zero_grad()
        loop_loss(quine, indices).backward()

    check = float(quine.replication_loss(torch.tensor(indices)).detach())
    difference = abs(float(loop_loss(quine, indices).detach()) - check) / max(abs(check), 1e-12)
    ours_sec = fastest(ours, repeats)
    loop_subset = fastest(loop, max(1, repeats // 5))
    loop_sec = loop_subset * d / len(indices)
    print(json.dumps({"benchmark": "quine_replication_loss", "parameters": d, "embedding": embedding,
                      "hidden": list(hidden), "threads": threads, "ours_sec": ours_sec,
                      "loop_subset": len(indices), "loop_subset_sec": loop_subset,
                      "loop_sec_extrapolated": loop_sec, "ratio_loop_over_ours": loop_sec / ours_sec,
                      "max_relative_difference": difference}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedding", type=int, default=32)
    parser.add_argument("--hidden", default="32,32")
    parser.add_argument("--subset", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    run(args.embedding, tuple(int(h) for h in args.hidden.split(",")), args.subset, args.repeats, args.threads)


if __name__ == "__main__":
    main()
