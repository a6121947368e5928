"""Benchmark: the cost of the SM-G-SUM and SM-G-ABS sensitivities, in forward+backward passes on the buffer.

Lehman et al. 2018 (safe mutations). A 12-layer tanh MLP (``--width`` units per hidden layer, ``--outputs``
outputs) and a buffer of 100 states. The unit is one forward pass of the buffer and one backward pass of the sum
of its outputs to the parameters (plain autograd). Each sensitivity is one call of the library
(``neuroplastic.evolution.sensitivity_sum`` / ``sensitivity_abs``, no Python loop over outputs or entries);
target: no more units than outputs. Against them, the reference's loops (uber-research/safemutations,
``sm_simple.py``; rewritten here for modern torch, not copied): SUM is one forward pass and one backward pass per
output (the graph retained); ABS is one forward and one backward pass per output *and* per buffer entry. Each
line gives ``units``: the fastest of ``--repeats`` timings over the fastest unit of the configuration (units are
timed alternately with every case; on a loaded machine the fastest is the closest to the uncontended cost),
``units_median_pair``: the median of the ratios of consecutive (case, unit) pairs, and the largest relative
difference from the reference's values.

    python benchmarks/safe_mutation_cost.py --outputs 4,16
"""

from __future__ import annotations

import argparse
import json

import torch
from torch import nn

from _timing import alternating
from neuroplastic.evolution import ParameterLayout, sensitivity_abs, sensitivity_sum

LAYERS = 12
STATES = 100


def mlp(inputs: int, width: int, outputs: int) -> nn.Module:
    sizes = [inputs] + [width] * (LAYERS - 1) + [outputs]
    layers: list[nn.Module] = []
    for i in range(LAYERS):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < LAYERS - 1:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def reference_sum(model: nn.Module, buffer: torch.Tensor) -> torch.Tensor:
    """The reference's SM-G-SUM: one forward pass, then one backward pass per output (graph retained)."""
    out = model(buffer)
    rows = []
    for o in range(out.shape[1]):
        model.zero_grad()
        cotangent = torch.zeros_like(out)
        cotangent[:, o] = 1.0
        out.backward(cotangent, retain_graph=True)
        rows.append(grads(model))
    return torch.stack(rows).square().sum(0).sqrt()


def reference_abs(model: nn.Module, buffer: torch.Tensor) -> torch.Tensor:
    """The reference's SM-G-ABS: a forward and a backward pass per output and per buffer entry."""
    outputs = model(buffer[:1]).shape[1]
    mean_abs = []
    for o in range(outputs):
        total = 0
        for t in range(buffer.shape[0]):
            model.zero_grad()
            out = model(buffer[t : t + 1])
            out[0, o].backward()
            total = total + grads(model).abs()
        mean_abs.append(total / buffer.shape[0])
    return torch.stack(mean_abs).square().sum(0).sqrt()


def emit(**row: object) -> None:
    print(json.dumps(row), flush=True)


def run(width: int, outputs: int, repeats: int, seed: int) -> None:
    torch.manual_seed(seed)
    model = mlp(8, width, outputs)
    buffer = torch.randn(STATES, 8)
    layout = ParameterLayout(model)
    genome = layout.flatten(model)

    def unit() -> None:
        model.zero_grad()
        model(buffer).sum().backward()

    ref_sum, ref_abs = reference_sum(model, buffer), reference_abs(model, buffer)
    common = {"layers": LAYERS, "width": width, "outputs": outputs, "states": STATES, "parameters": layout.size}
    cases = [
        ("reference", "sm_g_sum_per_output_loop", lambda: reference_sum(model, buffer), ref_sum),
        ("neuroplastic", "sm_g_sum", lambda: sensitivity_sum(layout, model, genome, buffer), ref_sum),
        ("reference", "sm_g_abs_per_output_per_entry_loop", lambda: reference_abs(model, buffer), ref_abs),
        ("neuroplastic", "sm_g_abs", lambda: sensitivity_abs(layout, model, genome, buffer), ref_abs),
        ("neuroplastic", "sm_g_abs_samples",
         lambda: sensitivity_abs(layout, model, genome, buffer, vectorize="samples"), ref_abs),
    ]
    rows = []
    for lib, case, fn, expected in cases:
        value = fn().detach() if lib == "neuroplastic" else expected
        difference = float(((value - expected).abs() / expected.abs().clamp_min(1e-12)).max())
        times = alternating(fn, unit, max(3, repeats // 10) if "entry_loop" in case else repeats)
        rows.append({"lib": lib, "case": case, **times, "max_relative_difference": float(f"{difference:.2e}")})
    unit_sec = min(row["unit_sec"] for row in rows)  # the fastest unit of the whole configuration
    for row in rows:
        emit(lib=row["lib"], case=row["case"], units=round(row["sec"] / unit_sec, 2),
             units_median_pair=round(row["median_pair_ratio"], 2), sec=round(row["sec"], 6),
             unit_sec=round(unit_sec, 6), max_relative_difference=row["max_relative_difference"], **common)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", default="4,16", help="comma-separated numbers of outputs")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for outputs in (int(o) for o in args.outputs.split(",")):
        run(args.width, outputs, args.repeats, args.seed)


if __name__ == "__main__":
    main()
