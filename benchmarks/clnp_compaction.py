"""Benchmark: CLNP's network after a stream, compacted with ``structure.compact``: inference speed-up, same outputs.

Golkar, Kagan & Cho 2019 (CLNP). An MLP (``--hidden`` units per hidden layer, 2 layers, one head per task) is
trained with :class:`neuroplastic.continual.CLNP` (tolerance ``--tolerance`` points) on split MNIST-sample (5
task-incremental tasks). After the stream the free neurons feed no used neuron and no head (CLNP zeroed those
connections), so they are dead for every task. For inference the heads are stacked into one Linear (all tasks'
logits at once) and :func:`neuroplastic.structure.compact` removes the dead units. Each line: the network before
and after (hidden sizes, parameters), the fastest of ``--repeats`` forward passes of a ``--batch`` of test
images (timed alternately), the speed-up, the largest absolute difference of the logits and each task's test
accuracy before and after.

    python benchmarks/clnp_compaction.py --hidden 1000 --tolerance 1
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

from neuroplastic.continual import CLNP, ContinualTrainer, MultiHeadClassifier, digits_stream, split_validation
from neuroplastic.structure import compact, count_parameters


def emit(**row: object) -> None:
    print(json.dumps(row), flush=True)


def stacked(model: MultiHeadClassifier) -> nn.Sequential:
    """The body and one Linear holding every head's rows (the logits of all tasks side by side)."""
    weight = torch.cat([h.weight.detach() for h in model.heads])
    bias = torch.cat([h.bias.detach() for h in model.heads])
    head = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    layers = [type(m)(m.in_features, m.out_features) if isinstance(m, nn.Linear) else m for m in model.body]
    body = nn.Sequential(*layers)
    body.load_state_dict(model.body.state_dict())
    return nn.Sequential(*body, head)


def fastest(fns: dict[str, object], x: torch.Tensor, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.no_grad():
        for fn in fns.values():
            fn(x)  # type: ignore[operator]
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn(x)  # type: ignore[operator]
                times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def accuracies(net: nn.Module, stream, sizes: tuple[int, ...]) -> list[float]:
    out = []
    offset = 0
    with torch.no_grad():
        for task, size in zip(stream, sizes, strict=True):
            logits = net(task.x_test)[:, offset:offset + size]
            out.append(round(float((logits.argmax(1) == task.y_test).double().mean()), 4))
            offset += size
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--tolerance", type=float, default=1.0, help="validation accuracy points")
    parser.add_argument("--strength", type=float, default=1e-2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, valid = split_validation(digits_stream("split-task", 5, source="mnist-sample", seed=args.seed), 0.2,
                                    seed=args.seed)
    torch.manual_seed(args.seed)
    body = nn.Sequential(nn.Linear(784, args.hidden), nn.ReLU(), nn.Linear(args.hidden, args.hidden), nn.ReLU())
    model = MultiHeadClassifier(body, args.hidden, train.head_sizes)
    strategy = CLNP(args.strength, tolerance=args.tolerance / 100, validation=valid, seed=args.seed)
    trainer = ContinualTrainer(model, train, lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), strategy=strategy,
                               epochs=args.epochs, batch_size=64, seed=args.seed)
    trainer.run()
    strategy.detach()
    model.eval()
    full = stacked(model).eval()
    small = stacked(model).eval()
    report = compact(small)
    x = torch.cat([t.x_test for t in train])[: args.batch]
    with torch.no_grad():
        difference = float((full(x) - small(x)).abs().max())
    seconds = fastest({"full": full, "compacted": small}, x, args.repeats)
    hidden_after = [m.out_features for m in small if isinstance(m, nn.Linear)][:-1]
    sizes = train.head_sizes
    common = {"hidden": args.hidden, "tolerance_points": args.tolerance, "batch": x.shape[0],
              "threads": args.threads, "used_neurons": [int((o >= 0).sum()) for o in strategy.owners]}
    emit(case="clnp_full", **common, hidden_sizes=[args.hidden, args.hidden], parameters=count_parameters(full),
         sec=seconds["full"], task_accuracy=accuracies(full, train, sizes),
         trainer_accuracy=[round(v, 4) for v in trainer.accuracy.R[-1].tolist()])
    emit(case="clnp_compacted", **common, hidden_sizes=hidden_after, parameters=count_parameters(small),
         sec=seconds["compacted"], speedup=seconds["full"] / seconds["compacted"],
         max_abs_logit_difference=difference, task_accuracy=accuracies(small, train, sizes),
         removed_units=report.removed_units)


if __name__ == "__main__":
    main()
