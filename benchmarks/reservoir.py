"""Benchmark: an echo-state network's run plus ridge fit, and memory capacity, against reservoirpy.

One JSON line per library with ``lib``, ``run_fit_ms`` (the fastest of ``--repeats``, of ``--peer-repeats``
for reservoirpy: run an ESN of ``--units`` tanh units over ``--steps`` steps of one input, then fit a ridge
readout to the input delayed by 1..10 steps), ``memory_capacity`` (Jaeger's, on reservoirpy's calibration:
100 units, spectral radius 1, ridge 1e-4, k_max 50, their seed 1 for the reservoir and the series) and, on
our line, ``speedup`` (reservoirpy's time over ours) and ``mc_difference``. Both libraries use the same
weights: reservoirpy draws the reservoir (its defaults: sparse W with 10% connectivity rescaled to the radius,
Bernoulli input weights, no bias), and
:class:`neuroplastic.dynamics.EchoStateNetwork` takes those matrices; both run in float64. Without reservoirpy
(it is never a dependency: ``bash benchmarks/bench_env.sh`` installs it in ``.bench-venv``) only our line is
printed.

    .bench-venv/bin/python benchmarks/reservoir.py
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import torch

from neuroplastic.dynamics import EchoStateNetwork, memory_capacity, ridge_regression

DELAYS = 10


def fastest_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def delayed_targets(u: np.ndarray) -> np.ndarray:
    """``[T, DELAYS]``: ``u(t - k)`` for ``k = 1..DELAYS`` (zeros before the start)."""
    out = np.zeros((len(u), DELAYS))
    for k in range(1, DELAYS + 1):
        out[k:, k - 1] = u[:-k, 0]
    return out


def ours(weight: np.ndarray, input_weight: np.ndarray, bias: np.ndarray) -> EchoStateNetwork:
    esn = EchoStateNetwork(input_weight.shape[1], weight.shape[0], weight=torch.from_numpy(weight),
                           input_weight=torch.from_numpy(input_weight)).double()
    esn.bias.copy_(torch.from_numpy(np.broadcast_to(bias, (weight.shape[0],)).copy()))
    return esn


def dense(matrix: object) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-repeats", type=int, default=1, help="timings of reservoirpy (about 80 s each)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import reservoirpy
        from reservoirpy.nodes import Reservoir, Ridge
        from reservoirpy.observables import memory_capacity as rpy_memory_capacity

    except ImportError:
        reservoirpy = None

    rng = np.random.default_rng(0)
    u = rng.uniform(-0.8, 0.8, size=(args.steps, 1))
    y = delayed_targets(u)
    warmup = 100
    results = []
    if reservoirpy is not None:
        reservoir = Reservoir(args.units, sr=1.0, seed=1)
        reservoir.initialize(u[:1])
        weight, input_weight, bias = dense(reservoir.W), dense(reservoir.Win), np.asarray(reservoir.bias, float)

        def rpy_run_fit() -> None:
            model = Reservoir(args.units, W=weight, Win=input_weight, bias=bias) >> Ridge(ridge=1e-4)
            model.fit(u, y, warmup=warmup)

        rpy_ms = fastest_ms(rpy_run_fit, args.peer_repeats)
        small_res = Reservoir(100, sr=1.0, seed=1)
        small_res.initialize(u[:1])  # (draws the same weights as memory_capacity's copy of an uninitialised one)
        small = small_res >> Ridge(ridge=1e-4)
        rpy_mc = float(rpy_memory_capacity(small, k_max=50, seed=1))
        results.append({"lib": "reservoirpy", "version": reservoirpy.__version__, "units": args.units,
                        "steps": args.steps, "run_fit_ms": round(rpy_ms, 1), "memory_capacity": round(rpy_mc, 6)})
        small_w = (dense(small_res.W), dense(small_res.Win), np.asarray(small_res.bias, float))
    else:
        gen = torch.Generator().manual_seed(1)
        draw = EchoStateNetwork(1, args.units, spectral_radius=1.0, density=0.1, generator=gen)
        weight, input_weight, bias = (draw.weight.double().numpy(), draw.input_weight.double().numpy(),
                                      np.zeros(args.units))
        small_w = None

    esn = ours(weight, input_weight, bias)
    u_t = torch.from_numpy(u)[None]
    y_t = torch.from_numpy(y)

    def our_run_fit() -> None:
        states = esn(u_t)[0]
        ridge_regression(states[warmup:], y_t[warmup:], 1e-4)

    our_ms = fastest_ms(our_run_fit, args.repeats)
    line = {"lib": "neuroplastic", "units": args.units, "steps": args.steps, "run_fit_ms": round(our_ms, 1)}
    if small_w is not None:
        # reservoirpy's memory_capacity: series U(-0.8, 0.8) of 10 k_max steps from its seed, the reservoir run
        # on series[k_max:], readouts fitted after a warmup of k_max, scored on the last 20% of the series
        k_max = 50
        series = np.random.default_rng(1).uniform(-0.8, 0.8, size=(10 * k_max, 1))
        small_esn = ours(*small_w)
        states = small_esn(torch.from_numpy(series[k_max:])[None])[0]
        mc = memory_capacity(states, torch.from_numpy(series[:, 0]), k_max, washout=k_max,
                             test_steps=round(0.2 * len(series)), ridge=1e-4).total
        line.update({"memory_capacity": round(mc, 6), "speedup": round(results[0]["run_fit_ms"] / our_ms, 2),
                     "mc_difference": abs(mc - results[0]["memory_capacity"])})
    results.append(line)
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
