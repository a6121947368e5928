"""Benchmark: a 4096 x 4096 binary linear layer at inference, packed XNOR-popcount vs torch float32 matmul.

Hubara et al. 2017 ("Quantized neural networks") ran their binary MNIST network 7x faster with a binary
matrix-multiplication GPU kernel than with an unoptimised one. Here, on the CPU, side by side in one run: the
library's packed path (:func:`neuroplastic.quantization.pack_signs` of the input, then
:func:`~neuroplastic.quantization.binary_matmul` against the weights packed once: 32 per int32 word) against
``torch`` float32 ``x @ w.T`` on the same +-1 values (MKL/oneDNN sgemm), and the 2-bit activation case
(``--levels 2``: bit-planes, :func:`~neuroplastic.quantization.bitplane_matmul`, vs the float product of the
levels {0, 1, 2, 3}). Both at one thread and at all threads (``torch.set_num_threads``; the packed kernels
use the same number through OpenMP).

One JSON line per (mode, threads, batch): ``batch``, ``packed_ms``, ``float_ms`` (the fastest of
``--repeats`` alternated timings: on a loaded machine the fastest is the closest to the uncontended cost),
their ranges (``*_ms_median``, ``*_ms_max``), ``ratio`` (float_ms / packed_ms), ``equal`` (the packed
integers equal the float product exactly), ``weight_memory_ratio`` (float32 bytes / packed bytes).
Target (issue 22): ratio >= 7 at batch 1 and >= 3 at batch 64.

    python benchmarks/binary_matmul.py --batches 1,64 --repeats 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import torch

from neuroplastic.quantization import (
    binary_kernels,
    binary_matmul,
    bitplane_matmul,
    pack_levels,
    pack_signs,
)


def timed(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Milliseconds of each case over ``repeats`` rounds, the cases alternated within each round."""
    for fn in cases.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(1e3 * (time.perf_counter() - start))
    return times


def run(size: int, batch: int, levels: int, threads: int, repeats: int, seed: int) -> dict[str, object]:
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(seed)
    weight = torch.where(torch.rand(size, size, generator=generator) < 0.5, -1.0, 1.0)
    packed_weight = pack_signs(weight)
    if levels == 1:
        x = torch.where(torch.rand(batch, size, generator=generator) < 0.5, -1.0, 1.0)

        def packed() -> torch.Tensor:
            return binary_matmul(pack_signs(x), packed_weight, size)
    else:
        x = torch.randint(0, 2 ** levels, (batch, size), generator=generator).float()

        def packed() -> torch.Tensor:
            return bitplane_matmul(pack_levels(x, levels), packed_weight)

    def dense() -> torch.Tensor:
        return x @ weight.T

    equal = torch.equal(packed(), dense().to(torch.int32))
    times = timed({"packed": packed, "float": dense}, repeats)
    row: dict[str, object] = {"mode": "1w1a" if levels == 1 else f"1w{levels}a", "size": size, "threads": threads,
                              "batch": batch}
    for name in ("packed", "float"):
        row[f"{name}_ms"] = round(min(times[name]), 4)
        row[f"{name}_ms_median"] = round(statistics.median(times[name]), 4)
        row[f"{name}_ms_max"] = round(max(times[name]), 4)
    row["ratio"] = round(row["float_ms"] / row["packed_ms"], 2)  # type: ignore[operator]
    row["ratio_median"] = round(row["float_ms_median"] / row["packed_ms_median"], 2)  # type: ignore[operator]
    row["equal"] = equal
    row["weight_memory_ratio"] = round(weight.nbytes / packed_weight.nbytes, 2)
    row["native"] = binary_kernels(x) is not None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--levels", default="1,2", help="input bits: 1 (signs, XNOR) and/or 2.. (bit-planes)")
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}", help="comma-separated thread counts")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for levels in (int(v) for v in args.levels.split(",")):
        for threads in (int(t) for t in args.threads.split(",")):
            for batch in (int(b) for b in args.batches.split(",")):
                print(json.dumps(run(args.size, batch, levels, threads, args.repeats, args.seed)), flush=True)


if __name__ == "__main__":
    main()
