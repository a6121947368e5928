"""Benchmark: HLOP's gradient projection and Hebbian updates as a fraction of a plain training step.

Xiao et al. 2024 (HLOP). The reference network: a spiking MLP 784-800-800-10 without biases, LIF neurons
(``neuroplastic.neurons.LIF``, fused backend, atan surrogate), T = 20 steps, batch 64, SGD. The unit is one plain
training step (forward, backward, ``optimizer.step()``). Measured against it, alternately timed:

- ``projection``: the ``GradientProjector`` pre-step hook on the three weights, with the subspace sizes the paper
  reaches after ``--tasks`` tasks (80/200/100 growing by 70, the growth lowered by 20 every 3 tasks);
- ``hebbian``: one Oja subspace update (``oja_subspace_update``, the newest 70 rows trained, the rest fixed) of
  each layer's lateral neurons on one training batch's layer inputs (the image for the first layer, every time
  step's spikes for the others): the paper's per-step Hebbian cost. (The library's ``HLOP`` trains them after
  each task instead: ``hebbian_epochs`` such updates per batch of the task, i.e. that fraction times the
  epochs.)

Each line: seconds (fastest of ``--repeats``), the unit's seconds, ``ratio`` = sec / unit_sec and the median of
consecutive pairwise ratios. Target: projection + Hebbian <= 25 % of the unit.

    python benchmarks/hlop_cost.py --tasks 1,5,10
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from _timing import alternating
from neuroplastic.continual import GradientProjector, hlop_sizes
from neuroplastic.neurons import LIF
from neuroplastic.plasticity import oja_subspace_update, orthonormal_rows


class Net(nn.Module):
    def __init__(self, hidden: int, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.fc1, self.lif1 = nn.Linear(784, hidden, bias=False), LIF(hidden, tau=2.0, surrogate="atan")
        self.fc2, self.lif2 = nn.Linear(hidden, hidden, bias=False), LIF(hidden, tau=2.0, surrogate="atan")
        self.fc3 = nn.Linear(hidden, 10, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        s1, _ = self.lif1(self.fc1(x).unsqueeze(1).expand(x.shape[0], self.steps, -1).contiguous())
        s2, _ = self.lif2(self.fc2(s1))
        return self.fc3(s2).mean(1), [x, s1.reshape(-1, s1.shape[-1]), s2.reshape(-1, s2.shape[-1])]


def timed(fn: Callable[[], object], unit: Callable[[], object], repeats: int) -> dict[str, float]:
    t = alternating(fn, unit, repeats)
    return {"sec": t["sec"], "unit_sec": t["unit_sec"], "ratio": t["sec"] / t["unit_sec"],
            "ratio_median_pair": t["median_pair_ratio"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="1,5,10", help="subspace sizes after this many tasks (comma list)")
    parser.add_argument("--hidden", type=int, default=800)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = Net(args.hidden, args.steps)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.rand(args.batch, 784), torch.randint(0, 10, (args.batch,))
    weights = [net.fc1.weight, net.fc2.weight, net.fc3.weight]

    def plain() -> None:
        optimizer.zero_grad()
        F.cross_entropy(net(x)[0], y).backward()
        optimizer.step()

    plain()
    with torch.no_grad():
        inputs = net(x)[1]
    for tasks in [int(t) for t in args.tasks.split(",")]:
        schedule = hlop_sizes(tasks, [80, 200, 100], [70, 70, 70], decrease=20, every=3)
        rows = [min(sum(r[i] for r in schedule), w.shape[1]) for i, w in enumerate(weights)]
        bases = [orthonormal_rows(torch.randn(k, w.shape[1])) for k, w in zip(rows, weights, strict=True)]
        projector = GradientProjector(weights, bases)
        lateral = [torch.randn(k, w.shape[1]) * 0.05 for k, w in zip(rows, weights, strict=True)]
        fixed = [max(0, k - 70) for k in rows]

        def hebbian(lateral=lateral, fixed=fixed) -> None:
            for h, inp, f in zip(lateral, inputs, fixed, strict=True):
                oja_subspace_update(h, inp, 1e-4, fixed=f)

        for name, fn in (("projection", projector.project), ("hebbian", hebbian)):
            result = timed(fn, plain, args.repeats)
            print(json.dumps({"benchmark": "hlop_cost", "part": name, "tasks": tasks, "rows": rows,
                              "hidden": args.hidden, "time_steps": args.steps, "batch": args.batch,
                              "threads": args.threads, **{k: round(v, 5) for k, v in result.items()}}), flush=True)


if __name__ == "__main__":
    main()
