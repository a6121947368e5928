"""Benchmark: steps per second of 1,000 batched double pendulums, forward and forward+backward.

Heiden et al. 2021 (NeuralSim). ``neuroplastic.dynamics.HybridSimulator`` (point masses, RK4 or semi-implicit
Euler, dt 1/500) rolls out ``--batch`` pendulums for ``--steps`` steps at once: ``forward`` without autograd,
``backward`` with a learned damping and the gradient of the summed final angles back to it. The baseline,
measured in the same run: MuJoCo (if installed) stepping the same pendulums one after the other with
``mj_step`` (RK4; its C loop is per model, not batched). Each line gives pendulum-steps per second (the fastest
of ``--repeats`` timings; on a loaded machine the fastest is the closest to the uncontended cost) and the ratio
to MuJoCo's.

    python benchmarks/simulator.py --batch 1000 --steps 100
"""

from __future__ import annotations

import argparse
import json

import torch

from _timing import fastest
from neuroplastic.dynamics import HybridSimulator


def mujoco_rate(batch: int, steps: int, repeats: int) -> float | None:
    try:
        import mujoco

        from neuroplastic.dynamics.mujoco_reference import chain_mjcf
    except ImportError:
        return None
    model = mujoco.MjModel.from_xml_string(chain_mjcf([1.0, 1.0], [1.0, 1.0], damping=[0.2, 0.1]))
    data = mujoco.MjData(model)
    count = min(batch, 100)  # sequential: time 100 pendulums and scale

    def go() -> None:
        for _ in range(count):
            mujoco.mj_resetData(model, data)
            data.qpos[:] = (0.5, -0.3)
            for _ in range(steps):
                mujoco.mj_step(model, data)

    return count * steps / fastest(go, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    baseline = mujoco_rate(args.batch, args.steps, args.repeats)
    print(json.dumps({"lib": "mujoco", "mode": "forward", "integrator": "RK4", "batch": args.batch,
                      "steps_per_sec": None if baseline is None else round(baseline)}))
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float64, torch.float32):
        q0 = (torch.rand(args.batch, 2, generator=g, dtype=torch.float64) - 0.5).to(dtype)
        qd0 = torch.zeros_like(q0)
        for integrator in ("rk4", "semi_implicit_euler"):
            sim = HybridSimulator([1.0, 1.0], [1.0, 1.0], damping=[0.2, 0.1], integrator=integrator, dtype=dtype)

            def forward(sim: HybridSimulator = sim, q0: torch.Tensor = q0, qd0: torch.Tensor = qd0) -> None:
                with torch.no_grad():
                    sim.rollout(q0, qd0, args.steps)

            def backward(sim: HybridSimulator = sim, q0: torch.Tensor = q0, qd0: torch.Tensor = qd0) -> None:
                sim.zero_grad()
                q, _ = sim.rollout(q0, qd0, args.steps)
                q[:, -1].sum().backward()

            for mode, fn in (("forward", forward), ("backward", backward)):
                rate = args.batch * args.steps / fastest(fn, args.repeats)
                print(json.dumps({"lib": "neuroplastic", "mode": mode, "integrator": integrator,
                                  "dtype": str(dtype).removeprefix("torch."), "batch": args.batch,
                                  "steps_per_sec": round(rate), "vs_mujoco": None if baseline is None
                                  else round(rate / baseline, 2)}))


if __name__ == "__main__":
    main()
