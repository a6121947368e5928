"""One Linear(N, N) + LIF layer, forward + backward, on CPU: neuroplastic against snnTorch, SpikingJelly, Norse.

Prints one JSON line per library and size: ``lib``, ``N``, ``T``, ``B``, ``fwd_bwd_ms`` (median over the
repetitions), ``ratio_to_fastest_peer`` (our time / the fastest peer's, for every line) and details. Peers run
in the same process when importable and are skipped with a note otherwise (install them with
``bash benchmarks/bench_env.sh``; Norse lives in its own environment, so run this script there too:
``.bench-venv-norse/bin/python benchmarks/snn_layer.py --only neuroplastic,norse``).

The same work for every library:
- input: the same spike tensor, Bernoulli(``--rate``, default 0.1) in {0, 1}, float32, ``[B, T, N]`` (time-major
  ``[T, B, N]`` copies, made outside the timing, for the peers), not requiring grad (``--input-grad`` to
  make it require grad, as for a hidden layer);
- the same Linear weights (default init times ``--weight-gain``); each library applies its Linear to the
  whole sequence at once (one matrix product), then its LIF over time;
- the same neuron: membrane decay 0.9 per step, threshold 1, soft reset (subtract the threshold; Norse's
  LIFBox has only a reset to v_reset, so it resets hard to 0), arctan surrogate (Norse: its SuperSpike);
- the loss is ``spikes.sum()``; one timed run is forward + backward (gradients cleared before, outside);
- 2 warm-up runs each, then ``--reps`` runs per library interleaved round-robin (rotating the order), the
  median wall time reported (``fwd_bwd_ms``), with the minimum (``min_ms``) and the median process CPU time
  of all threads (``cpu_ms``, less sensitive to other programs on the machine). Threads: PyTorch's default
  (``torch.get_num_threads()``) for everyone, or ``--threads``.

Libraries: ``neuroplastic`` (SpikeLinear + LIF fused: event-driven linear layer and C kernels),
``neuroplastic-nn.Linear`` (torch.nn.Linear + our fused LIF: the neuron alone), ``snntorch`` (nn.Linear +
``snn.Leaky`` stepped in a loop), ``spikingjelly`` (``layer.Linear`` + ``neuron.LIFNode``, multi-step mode,
torch backend (SpikingJelly 2.x has no ``backend`` argument: on CPU it runs its fused multi-step LIF in
PyTorch operations), ``decay_input=False``, ``v_reset=None``), ``norse`` (nn.Linear + ``LIFBoxCell`` stepped in a
loop; dt * tau_mem_inv = 0.1 and the weights times 10 give the same membrane equation). With ``--profile``,
parts of our layer are timed too (``part:*`` lines). Plastic spiking layers' cost against our non-plastic one
of the same size (``--plastic-sizes``, ``--plastic-variants``; ``--only plastic`` for these alone) is measured
when ``neuroplastic.plasticity.spiking`` exists: one line per variant (``lib`` ``neuroplastic-plastic-<variant>``,
``plastic_over_non_plastic`` from wall times and ``plastic_over_non_plastic_cpu`` from process CPU times,
``plastic_layer`` says which layer): ``fused`` (the headline: Hebbian, alpha per neuron, ``backend="fused"``),
``fused-no-trace`` (the same layer with ``need_trace=False``: its final state without the ``[B, N, N]`` trace),
``lowrank`` (the same layer on the step-by-step low-rank path) and ``dense`` (alpha per connection, ``[B, N, N]``
traces).

Timings on a shared machine are noisy: compare lines of the same run only.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import math
import platform
import statistics
import sys
import time

import torch
from torch import nn

from neuroplastic.neurons import LIF, SpikeLinear

DECAY = 0.9
PEERS = ("snntorch", "spikingjelly", "norse")


def _ours(n: int, master: nn.Linear, spike: bool):
    linear = SpikeLinear(n, n) if spike else nn.Linear(n, n)
    linear.load_state_dict(master.state_dict())
    lif = LIF(n, tau=-1.0 / math.log(DECAY), threshold=1.0, reset="soft", surrogate="atan")

    def run(x_bt, x_tb):
        spikes, _ = lif(linear(x_bt))
        spikes.sum().backward()
        return spikes

    return run, [linear]


def _snntorch(n: int, master: nn.Linear):
    import snntorch as snn
    from snntorch import surrogate

    linear = nn.Linear(n, n)
    linear.load_state_dict(master.state_dict())
    leaky = snn.Leaky(beta=DECAY, threshold=1.0, reset_mechanism="subtract", spike_grad=surrogate.atan(alpha=2.0))

    def run(x_bt, x_tb):
        currents = linear(x_tb)
        mem = leaky.init_leaky()
        out = []
        for t in range(currents.shape[0]):
            spk, mem = leaky(currents[t], mem)
            out.append(spk)
        spikes = torch.stack(out)
        spikes.sum().backward()
        return spikes

    return run, [linear]


def _spikingjelly(n: int, master: nn.Linear):
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    linear = layer.Linear(n, n, step_mode="m")
    linear.load_state_dict(master.state_dict())
    options = {}
    if "backend" in inspect.signature(neuron.LIFNode.__init__).parameters:
        options["backend"] = "torch"  # SpikingJelly < 2.0; 2.x picks its CPU implementation (PyTorch ops) itself
    node = neuron.LIFNode(tau=1.0 / (1.0 - DECAY), decay_input=False, v_threshold=1.0, v_reset=None,
                          surrogate_function=surrogate.ATan(alpha=2.0), step_mode="m", **options)

    def run(x_bt, x_tb):
        functional.reset_net(node)
        spikes = node(linear(x_tb))
        spikes.sum().backward()
        return spikes

    return run, [linear]


def _norse(n: int, master: nn.Linear):
    import norse.torch as norse

    linear = nn.Linear(n, n)
    with torch.no_grad():
        linear.weight.copy_(master.weight * 10.0)
        linear.bias.copy_(master.bias * 10.0)
    params = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(1.0),
                                    v_reset=torch.tensor(0.0))
    cell = norse.LIFBoxCell(params, dt=1e-3)

    def run(x_bt, x_tb):
        currents = linear(x_tb)
        state = None
        out = []
        for t in range(currents.shape[0]):
            spk, state = cell(currents[t], state)
            out.append(spk)
        spikes = torch.stack(out)
        spikes.sum().backward()
        return spikes

    return run, [linear]


def _parts(n: int, master: nn.Linear, batch: int, steps: int):
    """Parts of our layer alone: the dense and the event-driven linear layer, our LIF on currents."""
    dense, spike = nn.Linear(n, n), SpikeLinear(n, n)
    dense.load_state_dict(master.state_dict())
    spike.load_state_dict(master.state_dict())
    lif = LIF(n, tau=-1.0 / math.log(DECAY), surrogate="atan")
    currents = None

    def linear_run(module):
        def run(x_bt, x_tb):
            out = module(x_bt)
            out.sum().backward()
            return None
        return run

    def lif_run(x_bt, x_tb):
        nonlocal currents
        if currents is None:
            with torch.no_grad():
                currents = dense(x_bt)
        c = currents.detach().requires_grad_()
        spikes, _ = lif(c)
        spikes.sum().backward()
        return spikes

    return {"part:linear(nn.Linear)": (linear_run(dense), [dense]),
            "part:linear(SpikeLinear)": (linear_run(spike), [spike]),
            "part:lif(neuroplastic fused)": (lif_run, [])}


PLASTIC_VARIANTS = {
    "fused": ("neuron", "fused", True, "PlasticLIF(rule='hebbian', alpha='neuron', backend='fused'): alpha per "
              "neuron, one fused autograd node with C kernels (what backend='auto' picks for this layer), the "
              "final [B, N, N] Hebbian trace returned in the state"),
    "fused-no-trace": ("neuron", "fused", False, "the same layer called with need_trace=False (the final state "
                       "without its [B, N, N] Hebbian trace, as when training on whole episodes)"),
    "lowrank": ("neuron", "lowrank", True, "PlasticLIF(rule='hebbian', alpha='neuron', backend='lowrank'): alpha "
                "per neuron, a Python loop of autograd operations per step"),
    "dense": ("connection", "dense", True, "PlasticLIF(rule='hebbian', alpha='connection'): alpha per "
              "connection, autograd through the [B, N, N] traces"),
}


DENSE_PLASTIC_MAX_N = 512


def _plastic(n: int, master_seed: int, variant: str):
    """A plastic spiking layer (Hebbian traces, one of ``PLASTIC_VARIANTS``) of the same size as ours."""
    from neuroplastic.plasticity.spiking import PlasticLIF

    alpha, backend, need_trace, _ = PLASTIC_VARIANTS[variant]
    torch.manual_seed(master_seed)
    plastic = PlasticLIF(n, n, rule="hebbian", alpha=alpha, backend=backend, tau_mem=-1.0 / math.log(DECAY),
                         surrogate="atan", reset="soft")

    def run(x_bt, x_tb):
        spikes, _ = plastic(x_bt, need_trace=need_trace)
        spikes.sum().backward()
        return spikes

    return run, [plastic]


def _available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _time_round_robin(runs: dict, x_bt, x_tb, reps: int, warmup: int) -> tuple[dict, dict]:
    def once(name):
        fn, modules = runs[name]
        for module in modules:
            module.zero_grad(set_to_none=True)
        start, start_cpu = time.perf_counter(), time.process_time()
        spikes = fn(x_bt, x_tb)
        return time.perf_counter() - start, time.process_time() - start_cpu, spikes

    rates = {}
    for name in runs:
        for _ in range(warmup):
            _, _, spikes = once(name)
        rates[name] = None if spikes is None else float(spikes.detach().float().mean())
    times = {name: [] for name in runs}
    cpu = {name: [] for name in runs}
    names = list(runs)
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            wall, used, _ = once(name)
            times[name].append(wall * 1e3)
            cpu[name].append(used * 1e3)
    return times, cpu, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="512,2048")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rate", type=float, default=0.1, help="input spike probability per step")
    parser.add_argument("--weight-gain", type=float, default=3.0)
    parser.add_argument("--input-grad", action="store_true")
    parser.add_argument("--reps", type=int, default=0, help="timed runs per library (0: 15 at N<=1024, else 7)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated libraries to run")
    parser.add_argument("--profile", action="store_true", help="also time the parts of our layer")
    parser.add_argument("--plastic-sizes", default="128,512,2048",
                        help="sizes for the plastic-vs-non-plastic lines (the dense variant only up to 512)")
    parser.add_argument("--plastic-variants", default="fused,fused-no-trace,lowrank,dense",
                        help=f"plastic layers to time against the non-plastic one: {', '.join(PLASTIC_VARIANTS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    wanted = lambda name: not only or name in only  # noqa: E731
    common = {"bench": "snn_layer", "T": args.steps, "B": args.batch, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "python": platform.python_version(),
              "input": f"bernoulli spikes p={args.rate}, requires_grad={args.input_grad}"}
    makers = {"snntorch": _snntorch, "spikingjelly": _spikingjelly, "norse": _norse}
    for peer in PEERS:
        if wanted(peer) and not _available(peer):
            print(json.dumps({**common, "lib": peer, "skipped": f"{peer} is not importable in {sys.prefix}"}))

    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        generator = torch.Generator().manual_seed(args.seed)
        torch.manual_seed(args.seed)
        master = nn.Linear(n, n)
        with torch.no_grad():
            master.weight.mul_(args.weight_gain)
        x_bt = (torch.rand(args.batch, args.steps, n, generator=generator) < args.rate).float()
        x_tb = x_bt.transpose(0, 1).contiguous()
        if args.input_grad:
            x_bt.requires_grad_()
            x_tb.requires_grad_()
        runs = {}
        if wanted("neuroplastic"):
            runs["neuroplastic"] = _ours(n, master, spike=True)
        if wanted("neuroplastic-nn.Linear"):
            runs["neuroplastic-nn.Linear"] = _ours(n, master, spike=False)
        for peer in PEERS:
            if wanted(peer) and _available(peer):
                runs[peer] = makers[peer](n, master)
        if args.profile:
            runs.update(_parts(n, master, args.batch, args.steps))
        if not runs:  # e.g. --only plastic
            continue
        reps = args.reps or (15 if n <= 1024 else 7)
        times, cpu, rates = _time_round_robin(runs, x_bt, x_tb, reps, args.warmup)
        medians = {name: statistics.median(t) for name, t in times.items()}
        peers = {name: ms for name, ms in medians.items() if name in PEERS}
        fastest = min(peers, key=peers.get) if peers else None
        for name, ms in medians.items():
            line = {**common, "lib": name, "N": n, "fwd_bwd_ms": round(ms, 2),
                    "min_ms": round(min(times[name]), 2), "cpu_ms": round(statistics.median(cpu[name]), 2),
                    "reps": reps, "output_rate": rates[name]}
            if fastest is not None:
                line["fastest_peer"] = fastest
                line["ratio_to_fastest_peer"] = round(ms / peers[fastest], 3)
            print(json.dumps(line), flush=True)

    if wanted("plastic") and _available("neuroplastic.plasticity.spiking"):
        for n in [int(s) for s in args.plastic_sizes.split(",") if s.strip()]:
            generator = torch.Generator().manual_seed(args.seed)
            torch.manual_seed(args.seed)
            master = nn.Linear(n, n)
            x_bt = (torch.rand(args.batch, args.steps, n, generator=generator) < args.rate).float()
            variants = [v.strip() for v in args.plastic_variants.split(",") if v.strip()]
            for variant in variants:
                if variant not in PLASTIC_VARIANTS:
                    raise ValueError(f"--plastic-variants: unknown {variant!r}; known: {', '.join(PLASTIC_VARIANTS)}")
            if "dense" in variants and n > DENSE_PLASTIC_MAX_N:  # its autograd graph keeps T [B, N, N] traces
                print(json.dumps({**common, "lib": "neuroplastic-plastic-dense", "N": n,
                                  "skipped": f"the dense plastic layer keeps {args.steps} [B, N, N] traces for the "
                                             f"backward pass (~{args.steps * args.batch * n * n * 4 / 1e9:.0f} GB)"}))
                variants = [v for v in variants if v != "dense"]
            runs = {"neuroplastic": _ours(n, master, spike=True)}
            runs.update({f"neuroplastic-plastic-{v}": _plastic(n, args.seed, v) for v in variants})
            times, cpu, rates = _time_round_robin(runs, x_bt, x_bt.transpose(0, 1).contiguous(), 7, args.warmup)
            plain, plain_cpu = statistics.median(times["neuroplastic"]), statistics.median(cpu["neuroplastic"])
            for variant in variants:  # the first (default: fused, per-neuron alpha) is the headline line
                name = f"neuroplastic-plastic-{variant}"
                ms, used = statistics.median(times[name]), statistics.median(cpu[name])
                print(json.dumps({**common, "lib": name, "N": n, "fwd_bwd_ms": round(ms, 2),
                                  "min_ms": round(min(times[name]), 2), "cpu_ms": round(used, 2),
                                  "non_plastic_ms": round(plain, 2), "non_plastic_cpu_ms": round(plain_cpu, 2),
                                  "plastic_over_non_plastic": round(ms / plain, 2),
                                  "plastic_over_non_plastic_cpu": round(used / plain_cpu, 2),
                                  "output_rate": rates[name], "plastic_layer": PLASTIC_VARIANTS[variant][3],
                                  "non_plastic_layer": "SpikeLinear + LIF (fused)"}), flush=True)


if __name__ == "__main__":
    main()
