"""Benchmark: one episode forward + backward of a neuromodulated PlasticRNN vs a naive per-step loop.

The reference is the shape of the original Backpropamine code: a Python loop of ``bmm`` on ``[B, N, N]``
traces with every step kept by autograd. Both run the same equations with the same parameters
(simple modulation with fan-out, clip 2):

    h_t = tanh(x_t W_in + b + h_{t-1} (W + alpha * H))
    M_t = tanh(h_t W_m + b_m) W_f + b_f
    H   = clip(H + M_t * h_{t-1} ⊗ h_t, -2, 2)

Prints one JSON line: time (median of repeats) and peak memory of each, their ratios, and the largest
differences of outputs and gradients. Each memory figure is measured in a fresh subprocess as the growth of
peak resident memory during one forward + backward.

    python benchmarks/plastic_rnn.py --hidden 200 --steps 200 --batch 30
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from neuroplastic.plasticity import PlasticRNN

INPUT_SIZE = 8


def build(hidden: int, backprop: str, chunk_size: int | None, seed: int = 0) -> PlasticRNN:
    torch.manual_seed(seed)
    return PlasticRNN(INPUT_SIZE, hidden, modulation="simple", clip=2.0, backprop=backprop,
                      chunk_size=chunk_size)


def naive_forward(model: PlasticRNN, inputs: torch.Tensor) -> torch.Tensor:
    """The reference: every step's trace kept by autograd, written literally."""
    cell = model.cell
    syn = cell.synapses
    batch, steps, _ = inputs.shape
    n = cell.hidden_size
    hidden = inputs.new_zeros(batch, n)
    trace = inputs.new_zeros(batch, n, n)
    outputs = []
    for t in range(steps):
        drive = cell.input_to_hidden(inputs[:, t])
        new_hidden = torch.tanh(drive + torch.bmm(hidden.unsqueeze(1), cell.weight + syn.alpha * trace).squeeze(1))
        modulation = syn.modulator.fanout(torch.tanh(syn.modulator.neuromodulator(new_hidden)))
        delta = torch.bmm(hidden.unsqueeze(2), new_hidden.unsqueeze(1))
        trace = torch.clamp(trace + modulation.unsqueeze(1) * delta, -2.0, 2.0)
        hidden = new_hidden
        outputs.append(hidden)
    return torch.stack(outputs, dim=1)


def episode(model: PlasticRNN, inputs: torch.Tensor, variant: str):
    model.zero_grad(set_to_none=True)
    out = naive_forward(model, inputs) if variant == "reference" else model(inputs)[0]
    loss = out.pow(2).mean()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return out.detach(), grads


def measure(args: argparse.Namespace) -> dict:
    """Run in a fresh process: peak memory of the first episode, then the median time of repeats."""
    torch.set_num_threads(args.threads)
    model = build(args.hidden, args.backprop, args.chunk_size)
    inputs = torch.randn(args.batch, args.steps, INPUT_SIZE, generator=torch.Generator().manual_seed(1))
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    episode(model, inputs, args.variant)
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kb) / 1024
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        episode(model, inputs, args.variant)
        times.append((time.perf_counter() - start) * 1000)
    return {"fwd_bwd_ms": statistics.median(times), "peak_mb": peak_mb}


def run_subprocess(args: argparse.Namespace, variant: str) -> dict:
    command = [sys.executable, __file__, "--measure", variant, "--hidden", str(args.hidden),
               "--steps", str(args.steps), "--batch", str(args.batch), "--repeats", str(args.repeats),
               "--threads", str(args.threads), "--backprop", args.backprop]
    if args.chunk_size:
        command += ["--chunk-size", str(args.chunk_size)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace) -> dict:
    """Largest differences of outputs and gradients between ours and the reference (same parameters)."""
    model = build(args.hidden, args.backprop, args.chunk_size)
    inputs = torch.randn(args.batch, min(args.steps, 50), INPUT_SIZE, generator=torch.Generator().manual_seed(1))
    ours_out, ours_grads = episode(model, inputs, "ours")
    ref_out, ref_grads = episode(model, inputs, "reference")
    grad_diff = max((ours_grads[k] - ref_grads[k]).abs().max().item() for k in ours_grads)
    grad_scale = max(ref_grads[k].abs().max().item() for k in ref_grads)
    return {"compare_steps": inputs.shape[1], "max_output_diff": (ours_out - ref_out).abs().max().item(),
            "max_grad_diff": grad_diff, "max_grad_abs": grad_scale}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--backprop", default="auto", choices=["auto", "fused", "checkpoint", "autograd"])
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--measure", choices=["ours", "reference"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        args.variant = args.measure
        print(json.dumps(measure(args)))
        return
    ours = run_subprocess(args, "ours")
    reference = run_subprocess(args, "reference")
    result = {
        "benchmark": "plastic_rnn", "hidden": args.hidden, "steps": args.steps, "batch": args.batch,
        "backprop": args.backprop, "chunk_size": args.chunk_size, "threads": args.threads,
        "fwd_bwd_ms": round(ours["fwd_bwd_ms"], 1), "peak_mb": round(ours["peak_mb"], 1),
        "reference_fwd_bwd_ms": round(reference["fwd_bwd_ms"], 1),
        "reference_peak_mb": round(reference["peak_mb"], 1),
        "speedup": round(reference["fwd_bwd_ms"] / ours["fwd_bwd_ms"], 2),
        "memory_ratio": round(ours["peak_mb"] / max(reference["peak_mb"], 1e-9), 3),
    }
    result.update(compare(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
