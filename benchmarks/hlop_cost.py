"""Benchmark: HLOP's gradient projection and Hebbian updates as a fraction of a plain training step.

Xiao et al. 2024 (HLOP). The reference network: a spiking MLP 784-800-800-10 without biases, LIF neurons
(``neuroplastic.neurons.LIF``, fused backend, atan surrogate), T = 20 steps, batch 64, SGD. The unit is one plain
training step (forward, backward, ``optimizer.step()``). Measured against it, alternately timed, with the
subspace sizes the paper reaches after ``--tasks`` tasks (80/200/100 growing by 70, the growth lowered by 20
every 3 tasks):

- ``projection``: a training step with ``HLOP``'s default routes for this network (the first layer, applied
  once per step to the static image, projects its 64 input rows in the backward pass, ``InputProjector``; the
  others project the summed gradient before the step, ``GradientProjector``), minus the unit: the overhead;
- ``projection_gradient_only``: the same with every layer on ``GradientProjector`` (for comparison);
- ``hebbian_after_task``: what ``HLOP.after_task`` spends on one task (record the layer inputs of
  ``--hebbian-samples`` training images, then ``hebbian_epochs`` passes of ``SubspaceNeurons.fit`` of the new
  rows, batches of 64 rows, at least ``hebbian_min_updates`` updates per layer), divided by the task's training
  steps (``--task-examples`` / 64; the paper's permuted MNIST: 60,000 images, one epoch);
- ``hebbian_per_step_paper``: one Oja update of each layer's new rows on one training batch's layer inputs, the
  paper code's per-step Hebbian work (its code does five such updates per step), for comparison.

Each line: seconds, the unit's seconds, ``ratio`` = sec / unit_sec (for ``projection``: the projected step's
time / the unit's - 1) and the median of consecutive pairwise ratios. Target: projection + Hebbian <= 25 % of
the unit.

    python benchmarks/hlop_cost.py --tasks 1,5,10
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from _timing import alternating
from neuroplastic.continual import GradientProjector, InputProjector, hlop_sizes
from neuroplastic.neurons import LIF
from neuroplastic.plasticity import SubspaceNeurons, oja_subspace_update, orthonormal_rows


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


def timed(fn: Callable[[], object], unit: Callable[[], object], repeats: int, *,
          minus_unit: bool = False) -> dict[str, float]:
    t = alternating(fn, unit, repeats)
    shift = 1.0 if minus_unit else 0.0
    return {"sec": t["sec"] - shift * t["unit_sec"], "unit_sec": t["unit_sec"],
            "ratio": t["sec"] / t["unit_sec"] - shift, "ratio_median_pair": t["median_pair_ratio"] - shift}


def after_task_seconds(net: Net, images: torch.Tensor, rows: list[int], growth: list[int], epochs: int,
                       min_updates: int) -> float:
    """Seconds of HLOP's after-task learning: record the layer inputs of ``images``, grow and fit each layer
    (``epochs`` passes in batches of 64, more where a layer would make fewer than ``min_updates`` updates)."""
    start = time.perf_counter()
    with torch.no_grad():
        inputs = [torch.cat(parts) for parts in zip(*(net(chunk)[1] for chunk in images.split(256)), strict=True)]
    for x, k, new in zip(inputs, rows, growth, strict=True):
        neurons = SubspaceNeurons(x.shape[1], seed=0)
        neurons.grow(k - new)
        neurons.grow(new)
        neurons.fit(x, rate=0.5 / float(x.pow(2).sum(1).mean()), epochs=epochs, batch_size=64,
                    min_updates=min_updates)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="1,5,10", help="subspace sizes after this many tasks (comma list)")
    parser.add_argument("--hidden", type=int, default=800)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hebbian-samples", type=int, default=1000, help="images whose layer inputs are learnt")
    parser.add_argument("--hebbian-epochs", type=int, default=3)
    parser.add_argument("--hebbian-min-updates", type=int, default=1000)
    parser.add_argument("--task-examples", type=int, default=60000, help="training images per task")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = Net(args.hidden, args.steps)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.rand(args.batch, 784), torch.randint(0, 10, (args.batch,))
    modules = [net.fc1, net.fc2, net.fc3]

    def plain() -> None:
        optimizer.zero_grad()
        F.cross_entropy(net(x)[0], y).backward()
        optimizer.step()

    plain()
    with torch.no_grad():
        inputs = net(x)[1]
    hebbian_images = torch.rand(args.hebbian_samples, 784)
    steps_per_task = -(-args.task_examples // args.batch)
    for tasks in [int(t) for t in args.tasks.split(",")]:
        schedule = hlop_sizes(tasks, [80, 200, 100], [70, 70, 70], decrease=20, every=3)
        rows = [min(sum(r[i] for r in schedule), m.in_features) for i, m in enumerate(modules)]
        growth = [min(g, k) for g, k in zip(schedule[-1], rows, strict=True)]
        bases = [orthonormal_rows(torch.randn(k, m.in_features)) for k, m in zip(rows, modules, strict=True)]
        common = {"benchmark": "hlop_cost", "tasks": tasks, "rows": rows, "hidden": args.hidden,
                  "time_steps": args.steps, "batch": args.batch, "threads": args.threads}

        def emit(part: str, result: dict[str, float], common: dict = common, **extra: object) -> None:
            print(json.dumps({**common, "part": part, **extra, **{k: round(v, 5) for k, v in result.items()}}),
                  flush=True)

        for part, on_input in (("projection", [net.fc1]), ("projection_gradient_only", [])):
            on_gradient = [(m.weight, q) for m, q in zip(modules, bases, strict=True) if m not in on_input]
            gradient = GradientProjector([w for w, _ in on_gradient], [q for _, q in on_gradient])
            gradient.attach(optimizer)
            projector = InputProjector(on_input, [bases[modules.index(m)] for m in on_input]).attach()
            emit(part, timed(plain, plain_unattached(gradient, projector, plain), args.repeats, minus_unit=True),
                 input_side=[f"fc{modules.index(m) + 1}" for m in on_input],
                 routes=[p.kind for p in gradient.projections])
            gradient.detach()
            projector.detach()

        lateral = [torch.randn(k, m.in_features) * 0.05 for k, m in zip(rows, modules, strict=True)]
        fixed = [k - g for k, g in zip(rows, growth, strict=True)]

        def hebbian(lateral=lateral, fixed=fixed) -> None:
            for h, inp, f in zip(lateral, inputs, fixed, strict=True):
                oja_subspace_update(h, inp, 1e-4, fixed=f)

        emit("hebbian_per_step_paper", timed(hebbian, plain, args.repeats))
        seconds = min(after_task_seconds(net, hebbian_images, rows, growth, args.hebbian_epochs,
                                         args.hebbian_min_updates) for _ in range(2))
        unit = min(timed(plain, plain, 3)["unit_sec"], seconds)
        emit("hebbian_after_task", {"sec": seconds / steps_per_task, "unit_sec": unit,
                                    "ratio": seconds / steps_per_task / unit},
             task_sec=round(seconds, 3), steps_per_task=steps_per_task, hebbian_samples=args.hebbian_samples,
             hebbian_epochs=args.hebbian_epochs, hebbian_min_updates=args.hebbian_min_updates)


def plain_unattached(gradient: GradientProjector, projector: InputProjector,
                     step: Callable[[], None]) -> Callable[[], None]:
    """The plain step with the projectors detached for its duration (the unit timed alternately)."""
    def unit() -> None:
        optimizer = gradient.optimizer
        gradient.detach()
        projector.detach()
        try:
            step()
        finally:
            assert optimizer is not None
            gradient.attach(optimizer)
            projector.attach()
    return unit


if __name__ == "__main__":
    main()
