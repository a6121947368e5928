"""Benchmark: one episode forward + backward of a neuromodulated PlasticRNN vs a naive per-step loop.

The reference is the shape of the original Backpropamine code: a Python loop of ``bmm`` on ``[B, N, N]``
traces with every step kept by autograd. Both run the same equations with the same parameters
(simple modulation with fan-out, clip 2):

    h_t = tanh(x_t W_in + b + h_{t-1} (W + alpha * H))
    M_t = tanh(h_t W_m + b_m) W_f + b_f
    H   = clip(H + M_t * h_{t-1} ⊗ h_t, -2, 2)

Prints one JSON line: time and peak memory of each, their ratios, and the largest differences of outputs
and gradients. Each variant runs in a process of its own; the parent alternates their episodes
(so that a busy moment of the machine slows both) and reports median times. Peak memory is the growth of
each process's peak resident memory during its first episode.

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
from neuroplastic.plasticity.trace_kernels import native_kernels

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


def serve(args: argparse.Namespace) -> None:
    """Child process: one episode per line read from stdin, answering with its time (and, first, peak memory)."""
    torch.set_num_threads(args.threads)
    model = build(args.hidden, args.backprop, args.chunk_size)
    inputs = torch.randn(args.batch, args.steps, INPUT_SIZE, generator=torch.Generator().manual_seed(1))
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in sys.stdin:
        start = time.perf_counter()
        episode(model, inputs, args.serve)
        milliseconds = (time.perf_counter() - start) * 1000
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline_kb) / 1024
        print(json.dumps({"ms": milliseconds, "peak_mb": peak_mb}), flush=True)


def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Median fwd+bwd milliseconds and first-episode peak memory of each variant, episodes alternating."""
    children = {}
    for variant in ("ours", "reference"):
        command = [sys.executable, __file__, "--serve", variant, "--hidden", str(args.hidden), "--steps",
                   str(args.steps), "--batch", str(args.batch), "--threads", str(args.threads), "--backprop",
                   args.backprop] + (["--chunk-size", str(args.chunk_size)] if args.chunk_size else [])
        children[variant] = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    results: dict[str, dict] = {variant: {"times": []} for variant in children}
    try:
        for repeat in range(args.repeats + 1):  # the first episode measures memory and warms up
            for variant, child in children.items():
                child.stdin.write("\n")
                child.stdin.flush()
                answer = json.loads(child.stdout.readline())
                if repeat == 0:
                    results[variant]["peak_mb"] = answer["peak_mb"]
                else:
                    results[variant]["times"].append(answer["ms"])
    finally:
        for child in children.values():
            child.stdin.close()
            child.wait()
    return {variant: {"fwd_bwd_ms": statistics.median(r["times"]), "peak_mb": r["peak_mb"]}
            for variant, r in results.items()}


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
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--backprop", default="auto", choices=["auto", "fused", "checkpoint", "autograd"])
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--serve", choices=["ours", "reference"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    measured = measure(args)
    times = {variant: m["fwd_bwd_ms"] for variant, m in measured.items()}
    peak = {variant: m["peak_mb"] for variant, m in measured.items()}
    result = {
        "benchmark": "plastic_rnn", "hidden": args.hidden, "steps": args.steps, "batch": args.batch,
        "backprop": args.backprop, "chunk_size": args.chunk_size, "threads": args.threads,
        "native_kernels": args.backprop in ("auto", "fused") and native_kernels(torch.zeros(1)) is not None,
        "repeats": args.repeats,
        "fwd_bwd_ms": round(times["ours"], 1), "peak_mb": round(peak["ours"], 1),
        "reference_fwd_bwd_ms": round(times["reference"], 1), "reference_peak_mb": round(peak["reference"], 1),
        "speedup": round(times["reference"] / times["ours"], 2),
        "memory_ratio": round(peak["ours"] / max(peak["reference"], 1e-9), 3),
    }
    result.update(compare(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
