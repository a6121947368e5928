"""Reservoirs that self-organise by intrinsic plasticity: memory capacity and the Lyapunov exponent across
spectral radii, with and without IP.

Obst & Boedecker 2013, "Guided self-organization of input-driven recurrent neural networks" (arXiv 1309.1524),
reviewing Schrauwen et al. 2008 and Boedecker et al. 2012: echo-state networks of tanh units whose gains and
biases adapt by intrinsic plasticity toward a Gaussian output distribution (Schrauwen's rule) are judged by
Jaeger's memory capacity, the largest Lyapunov exponent of the input-driven network (the edge of chaos is
``lambda = 0``) and the information storage and transfer of their units. Method, per reservoir draw and
spectral radius::

    ESN: N tanh units, W dense N(0, 1) rescaled to the radius, W_in ~ U(-input_scaling, input_scaling), bias 0
    u_t ~ U(-0.8, 0.8) i.i.d.
    before IP: MC (k_max delays, ridge readouts on the first half after the washout, scored on the second),
               lambda (Jacobian method along the driven trajectory), AIS and TE (binned plug-in, in bits)
    IP: ip_steps steps of Schrauwen's rule (eta, target N(0, sigma^2)) on a fresh input stream
    after IP:  the same measures on the same test input

AIS is the mean over units of ``I(x_{t+1}; x_t^(2))``; TE the mean over units of the transfer from the input to
the unit ``I(x_{t+1}; u_t | x_t^(2))`` (each series binned into ``bins`` equal-width bins). Each (draw, radius)
has its own generators seeded from the run's seed, so a resumed run repeats the same numbers.

Deviations: one input, no local synaptic rule (IP only); the information measures are plug-in estimates on
binned series (no bias correction), so only their trend across lambda is read. Results:
``docs/results/reservoir-self-organisation.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from neuroplastic.dynamics.esn import EchoStateNetwork
from neuroplastic.dynamics.intrinsic import adapt_intrinsic
from neuroplastic.dynamics.measures import (
    active_information_storage,
    discretize,
    jacobian_lyapunov_exponent,
    memory_capacity,
    transfer_entropy,
)
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param

__all__ = ["Config", "run", "EXPERIMENT", "CLAIMS", "EDGE_TOLERANCE", "SIDE_MARGIN"]

PAPER = "Obst & Boedecker 2013, Guided self-organization of input-driven recurrent neural networks (arXiv 1309.1524)"

EDGE_TOLERANCE = 0.05   # |lambda| at the MC peak (per step, natural log) that counts as "near 0"
SIDE_MARGIN = 0.05      # |lambda| beyond which a radius is clearly on the ordered / chaotic side


@dataclass
class Config:
    """Reservoir, input, IP and measurement settings (one ESN per reservoir draw and spectral radius)."""

    units: int = param(100, minimum=1)
    radii: tuple[float, ...] = param((0.5, 0.8, 1.0, 1.2, 1.5, 2.0), minimum=0, exclusive_minimum=True,
                                     maximum=10, min_length=2)
    reservoirs: int = param(3, minimum=1)
    input_scaling: float = param(0.1, minimum=0, exclusive_minimum=True, maximum=100)
    k_max: int = param(200, minimum=1)
    washout: int = param(200, minimum=0)
    measure_steps: int = param(3000, minimum=10)
    ridge: float = param(1e-6, minimum=0, maximum=1e6)
    ip_steps: int = param(4000, minimum=0)
    ip_eta: float = param(5e-4, minimum=0, maximum=1)
    ip_sigma: float = param(0.2, minimum=0, exclusive_minimum=True, maximum=10)
    bins: int = param(4, minimum=2, maximum=64)
    info_units: int = param(20, minimum=1)

    def check(self) -> None:
        if self.info_units > self.units:
            raise config_error(self, "info_units", f"at most units ({self.units})")
        usable = self.measure_steps - max(self.washout, self.k_max)
        if usable < 8:
            raise config_error(self, "measure_steps", f"at least max(washout, k_max) + 8 = "
                               f"{max(self.washout, self.k_max) + 8}")
        if self.washout >= self.measure_steps:
            raise config_error(self, "washout", f"less than measure_steps ({self.measure_steps})")


def _measure(esn: EchoStateNetwork, u: torch.Tensor, config: Config, gen: torch.Generator) -> dict[str, float]:
    """MC, lambda, AIS and TE of ``esn`` driven by ``u [T]``."""
    states, slopes = esn.run(u[None, :, None], return_slopes=True)
    mc = memory_capacity(states[0], u, config.k_max, washout=config.washout, ridge=config.ridge).total
    lam = float(jacobian_lyapunov_exponent(esn.weight, slopes, washout=config.washout, generator=gen)[0])
    x = states[0, config.washout:, :config.info_units].T.double()  # [units, T']
    binned = discretize(x, config.bins)
    source = discretize(u[config.washout:].double(), config.bins)
    ais = sum(active_information_storage(s, 2) for s in binned) / len(binned)
    te = sum(transfer_entropy(source, s, 2) for s in binned) / len(binned)
    return {"mc": mc, "lyapunov": lam, "ais": ais, "te": te, "state_std": float(states[0, config.washout:].std())}


def _one(config: Config, seed: int, draw: int, index: int) -> dict[str, float]:
    """Everything for reservoir ``draw`` at radius ``radii[index]`` (its own generators)."""
    base = 1_000_003 * seed + 1009 * draw
    esn = EchoStateNetwork(1, config.units, spectral_radius=config.radii[index],
                           input_scaling=config.input_scaling, generator=torch.Generator().manual_seed(base))
    gen = torch.Generator().manual_seed(base + 1 + index)
    u = torch.rand(config.measure_steps, generator=gen) * 1.6 - 0.8
    out = {f"{k}_before": v for k, v in _measure(esn, u, config, torch.Generator().manual_seed(base + 2)).items()}
    if config.ip_steps > 0:
        stream = torch.rand(1, config.ip_steps, 1, generator=gen) * 1.6 - 0.8
        adapt_intrinsic(esn, stream, rule="gaussian", eta=config.ip_eta, mu=0.0, sigma=config.ip_sigma)
    out.update({f"{k}_ip": v for k, v in _measure(esn, u, config, torch.Generator().manual_seed(base + 2)).items()})
    out["gain_ip"] = float(esn.gain.mean())
    return out


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Measure every (reservoir draw, radius) before and after IP; return the means per radius.

    Metrics per radius index ``i``: ``radius{i}``, and for ``v`` in mc, lyapunov, ais, te, state_std and ``s``
    in before, ip: ``{v}_{s}_r{i}`` (the mean over draws); ``gain_ip_r{i}``; ``radii`` (their count) and
    ``reservoirs``.
    """
    jobs = [(d, i) for d in range(config.reservoirs) for i in range(len(config.radii))]
    rows = run_dir.state.setdefault("rows", {})
    for step in run_dir.steps(len(jobs), phase="sweep", checkpoint_every=1, desc="reservoir-self-organisation"):
        draw, index = jobs[step]
        rows = run_dir.state.setdefault("rows", {})  # (a resume replaces run_dir.state)
        result = _one(config, run_dir.seed, draw, index)
        rows[f"{draw}/{index}"] = result
        run_dir.log(step, radius=config.radii[index], draw=draw, **result)
    rows = run_dir.state["rows"]
    metrics: dict[str, Any] = {"radii": len(config.radii), "reservoirs": config.reservoirs}
    for i, radius in enumerate(config.radii):
        metrics[f"radius{i}"] = radius
        per = [rows[f"{d}/{i}"] for d in range(config.reservoirs)]
        for key in per[0]:
            name = key.replace("_before", "").replace("_ip", "")
            stage = "before" if key.endswith("_before") else "ip"
            label = f"{name}_{stage}_r{i}" if name != "gain" else f"gain_ip_r{i}"
            metrics[label] = sum(p[key] for p in per) / len(per)
    _plot(run_dir, config, metrics, rows)
    return metrics


def _series(m: dict[str, Any], name: str) -> list[float]:
    return [float(m[f"{name}_r{i}"]) for i in range(int(m["radii"]))]


def _plot(run_dir: RunDirectory, config: Config, m: dict[str, Any], rows: dict[str, Any]) -> None:
    """MC and lambda against the radius (before / after IP); AIS and TE against lambda (every draw)."""
    from matplotlib.figure import Figure

    radii = list(config.radii)
    fig = Figure(figsize=(10, 4))
    ax_mc, ax_lam = fig.subplots(1, 2)
    for stage, style in (("before", "o-"), ("ip", "s-")):
        label = "without IP" if stage == "before" else "with IP"
        ax_mc.plot(radii, _series(m, f"mc_{stage}"), style, label=label)
        ax_lam.plot(radii, _series(m, f"lyapunov_{stage}"), style, label=label)
    ax_lam.axhline(0.0, color="gray", lw=0.8)
    ax_mc.set(xlabel="spectral radius", ylabel="memory capacity", title=f"N = {config.units}, mean of "
              f"{config.reservoirs} reservoirs")
    ax_lam.set(xlabel="spectral radius", ylabel="largest Lyapunov exponent (per step)")
    ax_mc.legend()
    ax_lam.legend()
    fig.tight_layout()
    run_dir.save_figure(fig, "mc_lyapunov_vs_radius")
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 3)
    for stage, marker in (("before", "o"), ("ip", "s")):
        lam = [r[f"lyapunov_{stage}"] for r in rows.values()]
        for ax, key in zip(axes, ("ais", "te", "mc"), strict=True):
            ax.scatter(lam, [r[f"{key}_{stage}"] for r in rows.values()], marker=marker,
                       label="without IP" if stage == "before" else "with IP", s=14)
    for ax, label in zip(axes, ("active information storage (bits)", "transfer entropy input -> unit (bits)",
                                "memory capacity"), strict=True):
        ax.axvline(0.0, color="gray", lw=0.8)
        ax.set(xlabel="largest Lyapunov exponent", ylabel=label)
    axes[0].legend()
    fig.tight_layout()
    run_dir.save_figure(fig, "information_vs_lyapunov")


# ---------------------------------------------------------------------------------------------- claims
def ip_raises_memory(m: dict[str, Any]) -> tuple[bool, Any]:
    """At every radius >= 1 of the sweep, the mean MC with IP exceeds the mean MC without."""
    idx = [i for i in range(int(m["radii"])) if m[f"radius{i}"] >= 1.0]
    if not idx:
        raise ValueError("no spectral radius >= 1 in the sweep")
    gains = {m[f"radius{i}"]: round(m[f"mc_ip_r{i}"] - m[f"mc_before_r{i}"], 2) for i in idx}
    mean_all = sum(m[f"mc_ip_r{i}"] - m[f"mc_before_r{i}"] for i in range(int(m["radii"]))) / int(m["radii"])
    return all(g > 0 for g in gains.values()), {"mc_gain_by_radius": gains, "mean_gain_all_radii": round(mean_all, 2)}


def ip_moves_lyapunov_to_zero(m: dict[str, Any]) -> tuple[bool, Any]:
    """Radii with lambda < -SIDE_MARGIN (ordered) and > SIDE_MARGIN (chaotic) without IP both exist, and at every
    such radius |lambda| with IP is smaller."""
    ordered, chaotic = [], []
    for i in range(int(m["radii"])):
        before, after = m[f"lyapunov_before_r{i}"], m[f"lyapunov_ip_r{i}"]
        if abs(before) > SIDE_MARGIN:
            (ordered if before < 0 else chaotic).append((m[f"radius{i}"], abs(after) < abs(before)))
    held = bool(ordered) and bool(chaotic) and all(ok for _, ok in ordered + chaotic)
    return held, {"ordered_radii": [r for r, _ in ordered], "chaotic_radii": [r for r, _ in chaotic],
                  "closer_to_0": [ok for _, ok in ordered + chaotic]}


def memory_peaks_at_edge(m: dict[str, Any]) -> tuple[bool, Any]:
    """Without IP, the radius of largest mean MC has |mean lambda| <= EDGE_TOLERANCE."""
    mc = _series(m, "mc_before")
    best = max(range(len(mc)), key=mc.__getitem__)
    lam = m[f"lyapunov_before_r{best}"]
    return abs(lam) <= EDGE_TOLERANCE, {"peak_radius": m[f"radius{best}"], "peak_mc": round(mc[best], 2),
                                        "lyapunov_at_peak": round(lam, 4)}


CLAIMS = [
    Claim(PAPER, "Intrinsic plasticity (Schrauwen's Gaussian target) raises memory capacity: at every spectral "
          "radius >= 1 of the sweep the mean MC with IP exceeds the mean MC without (the issue's first "
          "measurement: 15.0 -> 24.4 at radius 1.2, 8.3 -> 24.2 at 1.5).", ip_raises_memory),
    Claim(PAPER, "IP moves the largest Lyapunov exponent toward 0 from both sides: there are radii with lambda < "
          f"-{SIDE_MARGIN} and radii with lambda > {SIDE_MARGIN} without IP, and at each of them |lambda| is "
          "smaller with IP.", ip_moves_lyapunov_to_zero),
    Claim(PAPER, f"Memory capacity peaks near the edge of chaos: without IP, the radius of largest mean MC has "
          f"|lambda| <= {EDGE_TOLERANCE} (per step).", memory_peaks_at_edge),
]

EXPERIMENT = Experiment(
    name="reservoir-self-organisation",
    paper=PAPER,
    description=("Echo-state networks (100 tanh units) over a sweep of spectral radii, with and without "
                 "intrinsic plasticity toward a Gaussian: memory capacity, largest Lyapunov exponent, active "
                 "information storage and transfer entropy."),
    config_class=Config,
    budgets={
        "quick": Config(),
        # 5 reservoir draws, a finer sweep, longer measurement and IP phases: about 12 minutes of CPU (55 x 13 s).
        "full": Config(radii=(0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0), reservoirs=5,
                       measure_steps=6000, ip_steps=10000, info_units=100),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=1.0,
    main_metric="mc_ip_r3",
    tags=("dynamics", "reservoir", "intrinsic-plasticity"),
)
