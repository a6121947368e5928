"""Safe mutations: output divergence at equal perturbation norm, and evolving an LSTM for recurrent parity.

Lehman, Chen, Clune & Stanley 2018, "Safe mutations for deep and recurrent neural networks through output
gradients" (GECCO). A Gaussian perturbation ``delta ~ N(0, std^2 I)`` of all the weights of a deep or recurrent
network moves its outputs a lot, and unevenly: a few sensitive weights break it. SM-G divides ``delta`` weight
by weight by the sensitivity ``s`` of the outputs on the parent's experience (SUM, ABS, SO:
:func:`neuroplastic.evolution.sensitivity_sum` and siblings); SM-R scales ``delta`` so that the output
divergence hits a target (:func:`neuroplastic.evolution.divergence_line_search`).

Part (a), divergence at equal norm: for a deep MLP (``deep_layers`` Linear layers, ReLU, Xavier init: the
reference's deep maze network, with 15 units) with a
buffer of 100 Gaussian input states, and the parity LSTM (two stacked layers of 15 units, softmax outputs as in
the reference code) with its 16 sequences, draw ``perturbations`` Gaussian deltas per parent; every method
perturbs the same draw and (``equal_norm``) is rescaled to the draw's length. Measured: the output divergence
``mean_{t,o} (y_child - y_parent)^2`` overall and per layer (only that layer's part of the perturbation applied;
an LSTM layer is ``*_l{k}``). SM-R keeps the Gaussian direction, so at equal norm it *is* the Gaussian draw; it
gets instead, per parent, the target divergence equal to the median divergence of that parent's Gaussian draws
(the same typical step, the tail cut). Layer uniformity: the spread across layers of ``log10`` of the per-layer
divergence of one mutation (its standard deviation, in decades), averaged over mutations.

Part (b), recurrent parity (:class:`neuroplastic.evolution.ParityProblem`, fitness = -NLL, solved when all 16
sequences are classified correctly): the steady-state GA (tournaments of 5 for parents and removal) with plain
Gaussian mutation at each of ``gaussian_stds`` and each SM-G method at its own std (``method_stds``: SUM's
sensitivity sums the gradients over the buffer and ABS's averages them, so SUM's steps are ~16x smaller at one
std), ``repeats`` runs per arm, each stopping when solved or after ``max_evaluations``. Founders are independent
default initialisations. The quick budget: population 50, 5,000 evaluations (the reference: 250 and up to
100,000). SM-G reuses a parent's sensitivity (``SafeMutation(cache_size=...)``). The hard maze
(``domains`` includes ``"maze"``: :class:`~neuroplastic.evolution.HardMazeProblem`, 6 x 15 ReLU) runs the same
arms. Measured results and what was tried: ``docs/results/safe-mutations.md``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroplastic.evolution import (
    METHODS,
    HardMazeProblem,
    ParameterLayout,
    ParityProblem,
    Population,
    SafeMutation,
    SafeMutationConfig,
    SequenceClassifier,
    SteadyStateConfig,
    SteadyStateGA,
    maze_controller,
    output_divergence,
    safe_mutate,
)
from neuroplastic.evolution.protocols import GaussianMutation
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param

__all__ = ["CLAIMS", "EXPERIMENT", "Config", "Probabilities", "arms", "deep_mlp", "layer_spread", "run"]

PAPER = ("Lehman, Chen, Clune & Stanley 2018, Safe mutations for deep and recurrent neural networks through "
         "output gradients (GECCO)")
SM_G = ("sum", "abs", "so")
NETWORKS = ("deep", "lstm")


@dataclass
class Config:
    """Part (a): the deep MLP, the parents and draws; part (b): the GA and its arms (module docstring).

    ``methods``: the safe mutations evolved, at ``method_stds`` (``"gaussian"`` is always run, at each of
    ``gaussian_stds``: the SM-G stds and a larger one, since the paper tuned each method's std). ``domains``:
    ``"parity"`` and/or ``"maze"`` (the hard maze, the full budget's second domain).
    """

    deep_layers: int = param(12, minimum=12)
    deep_width: int = param(16, minimum=1)
    deep_activation: str = param("relu", choices=("tanh", "relu"))
    deep_init: str = param("xavier", choices=("xavier", "default"))
    deep_inputs: int = param(8, minimum=1)
    deep_outputs: int = param(4, minimum=1)
    buffer_size: int = param(100, minimum=1)
    parents: int = param(3, minimum=1)
    perturbations: int = param(20, minimum=1)
    divergence_std: float = param(0.05, minimum=0, exclusive_minimum=True)
    divergence_methods: tuple[str, ...] = param(METHODS, choices=METHODS, min_length=1)
    domains: tuple[str, ...] = param(("parity",), choices=("parity", "maze"), min_length=0)
    methods: tuple[str, ...] = param(("sum", "abs"), choices=("sum", "abs", "so"), min_length=0)
    method_stds: tuple[float, ...] = param((0.01, 0.003), minimum=0, exclusive_minimum=True, min_length=0)
    gaussian_stds: tuple[float, ...] = param((0.1, 0.01, 0.003), minimum=0, exclusive_minimum=True, min_length=1)
    hidden_size: int = param(15, minimum=1)
    population_size: int = param(50, minimum=5)
    batch_size: int = param(10, minimum=1)
    max_evaluations: int = param(5000, minimum=1)
    maze_evaluations: int = param(100_000, minimum=1)
    maze_steps: int = param(400, minimum=1)
    repeats: int = param(10, minimum=1)
    report_every: int = param(100, minimum=1)
    checkpoint_every: int = param(10, minimum=1)

    def check(self) -> None:
        if "gaussian" not in self.divergence_methods:
            raise config_error(self, "divergence_methods", "a tuple that includes 'gaussian' (the baseline)")
        if len(set(self.divergence_methods)) != len(self.divergence_methods):
            raise config_error(self, "divergence_methods", "without repeats")
        if len(self.method_stds) != len(self.methods):
            raise config_error(self, "method_stds", f"one std per method ({len(self.methods)})")
        for name in ("domains", "methods", "gaussian_stds"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise config_error(self, name, "without repeats")
        if self.max_evaluations < self.population_size:
            raise config_error(self, "max_evaluations", f"at least population_size ({self.population_size})")
        if "maze" in self.domains and self.maze_evaluations < self.population_size:
            raise config_error(self, "maze_evaluations", f"at least population_size ({self.population_size})")


# ---------------------------------------------------------------------------------------------- networks
def deep_mlp(config: Config, seed: int) -> nn.Sequential:
    """``deep_layers`` Linear layers, the activation after each but the last; ``deep_init="xavier"``: Xavier-uniform
    weights and zero biases (the reference's init), ``"default"``: PyTorch's. Weights drawn under ``seed`` (the
    global generator is left as it was)."""
    act = nn.Tanh if config.deep_activation == "tanh" else nn.ReLU
    sizes = [config.deep_inputs] + [config.deep_width] * (config.deep_layers - 1) + [config.deep_outputs]
    layers: list[nn.Module] = []
    for i in range(config.deep_layers):
        layers += [nn.Linear(sizes[i], sizes[i + 1])] + ([act()] if i < config.deep_layers - 1 else [])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(*layers)
        for module in model if config.deep_init == "xavier" else ():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
    return model


class Probabilities(nn.Module):
    """The class probabilities ``[B, C]`` of a :class:`SequenceClassifier` (or its unrolled copy), with its own
    parameter names: the outputs whose sensitivity and divergence the reference's SM-G measures (softmax)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.rnn, self.readout = classifier.rnn, classifier.readout

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(self.readout(self.rnn(x)[0][:, -1]), -1)


def _classifier(config: Config, seed: int) -> SequenceClassifier:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SequenceClassifier("lstm", 1, config.hidden_size, 2, num_layers=2)


def layer_spread(per_layer: list[float]) -> float:
    """The standard deviation across layers of ``log10`` of one mutation's per-layer divergences (decades; 0 when
    every layer moves the outputs equally). Zero divergences are floored at 1e-30."""
    logs = [math.log10(max(d, 1e-30)) for d in per_layer]
    return statistics.pstdev(logs) if len(logs) > 1 else 0.0


# ---------------------------------------------------------------------------------------------- part (a)
def _network(net: str, config: Config, seed: int, generator: torch.Generator
             ) -> tuple[nn.Module, ParameterLayout, Tensor, Tensor]:
    """(model giving the compared outputs, layout, parent genome, experience buffer) of one parent."""
    if net == "deep":
        model = deep_mlp(config, seed)
        inputs = torch.randn(config.buffer_size, config.deep_inputs, generator=generator)
        layout = ParameterLayout(model)
        return model, layout, layout.flatten(model), inputs
    problem = ParityProblem("lstm", config.hidden_size, seed=seed)
    model = Probabilities(problem.runner)
    return model, problem.layout, problem.initial_genome(), problem.inputs[: config.buffer_size]


def _divergence_phase(net: str, config: Config, run_dir: RunDirectory) -> None:
    """Each parent's draws perturbed by every method; per-draw results kept in ``run_dir.state``."""
    generator = torch.Generator().manual_seed(1000 * run_dir.seed + (1 if net == "deep" else 2))
    run_dir.track(generator=generator)
    for step in run_dir.steps(config.parents, phase=f"divergence_{net}", checkpoint_every=1,
                              desc=f"safe-mutations divergence {net}"):
        model, layout, parent, inputs = _network(net, config, 1000 * run_dir.seed + 7 * step + 11, generator)
        deltas = config.divergence_std * torch.randn(config.perturbations, layout.size, generator=generator)
        results = run_dir.state.setdefault("divergence", {}).setdefault(net, {})
        gaussian: list[float] = []
        for method in ("gaussian",) + tuple(m for m in config.divergence_methods if m != "gaussian"):
            if method == "r":
                mut = SafeMutationConfig(method="r", std=config.divergence_std, record="none",
                                         target=max(statistics.median(gaussian), 1e-12))
            else:
                mut = SafeMutationConfig(method=method, std=config.divergence_std, record="none", equal_norm=True)
            rows = results.setdefault(method, [])
            for delta in deltas:
                child, record = safe_mutate(layout, model, parent, delta, inputs, mut)
                total, parts = output_divergence(layout, model, parent, child, inputs, by="stacked")
                rows.append((float(total), [float(v) for v in parts.values()], record.perturbation_norm))
                if method == "gaussian":
                    gaussian.append(float(total))
        run_dir.state.setdefault("layers", {})[net] = list(parts)
        run_dir.log(step, **{f"{net}_{m}_divergence": statistics.fmean(r[0] for r in results[m][-len(deltas):])
                             for m in config.divergence_methods})


def _divergence_metrics(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for net in NETWORKS:
        for method, rows in run_dir.state["divergence"][net].items():
            key = f"{net}_{method}"
            totals = [r[0] for r in rows]
            layers = list(zip(*(r[1] for r in rows), strict=True))
            profile = [statistics.fmean(layer) for layer in layers]
            metrics[f"{key}_divergence_mean"] = statistics.fmean(totals)
            metrics[f"{key}_divergence_median"] = statistics.median(totals)
            metrics[f"{key}_norm_mean"] = statistics.fmean(r[2] for r in rows)
            metrics[f"{key}_layer_spread"] = statistics.fmean(layer_spread(r[1]) for r in rows)
            metrics[f"{key}_profile_cv"] = statistics.pstdev(profile) / statistics.fmean(profile)
            metrics.update({f"{key}_layer{i}": value for i, value in enumerate(profile)})
    return metrics


# ---------------------------------------------------------------------------------------------- part (b)
def arms(config: Config) -> dict[str, tuple[str, float]]:
    """Arm name -> (method, std): plain Gaussian at each of ``gaussian_stds``, each SM-G at its ``method_stds``."""
    out = {f"gaussian_{std:g}": ("gaussian", std) for std in config.gaussian_stds}
    out.update({method: (method, std) for method, std in zip(config.methods, config.method_stds, strict=True)})
    return out


def _problem(domain: str, config: Config, seed: int) -> tuple[Any, nn.Module, list[Tensor]]:
    """(problem, model for the safe mutation, founders) of one run: independent default initialisations."""
    size = config.population_size
    if domain == "parity":
        problem = ParityProblem("lstm", config.hidden_size, seed=seed)
        founders = [problem.layout.flatten(_classifier(config, seed * 100_003 + i + 1)) for i in range(size)]
        return problem, Probabilities(problem.runner), founders
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        problem = HardMazeProblem(maze_controller(), max_steps=config.maze_steps)
        founders = [problem.layout.flatten(maze_controller()) for _ in range(size)]
    return problem, problem.runner, founders


def _evolve(domain: str, arm: str, repeat: int, config: Config, run_dir: RunDirectory) -> None:
    """One GA run in its own phase: a history row every ``report_every`` evaluations, stopping when solved."""
    method, std = arms(config)[arm]
    seed = 1000 * run_dir.seed + repeat
    budget = config.max_evaluations if domain == "parity" else config.maze_evaluations
    problem, model, founders = _problem(domain, config, seed)
    mutation: Any = (GaussianMutation(std) if method == "gaussian" else
                     SafeMutation(model, SafeMutationConfig(method=method, std=std, record="none"),
                                  layout=problem.layout, cache_size=config.population_size))
    ga = SteadyStateGA(Population.from_genomes(torch.stack(founders)),
                       SteadyStateConfig(population_size=config.population_size, batch_size=config.batch_size,
                                         max_evaluations=budget, nan_fitness="worst"),
                       seed=seed, mutation=mutation)
    phase = f"{domain}_{arm}_r{repeat}"
    run_dir.track(ga=ga)
    total = 1 + math.ceil((budget - config.population_size) / config.report_every)
    for step in run_dir.steps(total, phase=phase, checkpoint_every=config.checkpoint_every,
                              desc=f"safe-mutations {phase}"):
        runs = run_dir.state.setdefault("runs", {})
        if ga.done or phase in runs:
            continue  # solved or spent: the loop must run to its end
        goal = config.population_size + step * config.report_every
        while not ga.done and (ga.evaluations < goal or step == 0 and ga.evaluations == 0):
            genomes = ga.ask()
            result = problem(genomes, ga.pending.seeds)
            ga.tell(result.fitness, experience=result.experience)
            if bool(result.solved.any()):
                runs[phase] = {"solved": True, "evaluations": ga.evaluations}
                break
        fitness = ga.population.fitness
        run_dir.log(step, evaluations=ga.evaluations, best=ga.best.fitness,
                    mean=float(fitness[torch.isfinite(fitness)].mean()))
    runs = run_dir.state.setdefault("runs", {})
    runs.setdefault(phase, {"solved": False, "evaluations": ga.evaluations})
    if repeat == 0:  # the lineage of the final best genome: fitness along the chain of first parents
        chain = ga.population.lineage(ga.best.id)
        record = ga.population.record
        runs[phase]["lineage"] = {"fitness": record.fitness[chain].tolist(),
                                  "generation": record.generation[chain].tolist()}
    runs[phase]["best"] = ga.best.fitness


def _evolution_metrics(domain: str, config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    budget = config.max_evaluations if domain == "parity" else config.maze_evaluations
    for arm in arms(config):
        runs = [run_dir.state["runs"][f"{domain}_{arm}_r{r}"] for r in range(config.repeats)]
        solved = [r["evaluations"] for r in runs if r["solved"]]
        key = f"{domain}_{arm}"
        metrics[f"{key}_solved"] = len(solved)
        metrics[f"{key}_solve_rate"] = len(solved) / config.repeats
        metrics[f"{key}_evaluations_mean"] = statistics.fmean(r["evaluations"] for r in runs)
        metrics[f"{key}_evaluations_median_solved"] = statistics.median(solved) if solved else budget
        metrics[f"{key}_best_mean"] = statistics.fmean(r["best"] for r in runs)
    return metrics


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Part (a) on both networks, then every arm's ``repeats`` GA runs per domain; figures; the metrics.

    Metrics: ``{net}_{method}_divergence_mean`` / ``_median``, ``_norm_mean``, ``_layer_spread`` (module
    docstring), ``_profile_cv`` (coefficient of variation across layers of the mean per-layer divergence),
    ``_layer{i}``; per domain and arm: ``_solved``, ``_solve_rate``, ``_evaluations_mean`` (spent, the budget for
    an unsolved run), ``_evaluations_median_solved`` (the budget when none solved), ``_best_mean``.
    """
    for net in NETWORKS:
        _divergence_phase(net, config, run_dir)
    metrics = {**_divergence_metrics(config, run_dir), "deep_parameters": ParameterLayout(deep_mlp(config, 0)).size,
               "lstm_parameters": ParameterLayout(_classifier(config, 0)).size}
    for domain in config.domains:
        for arm in arms(config):
            for repeat in range(config.repeats):
                _evolve(domain, arm, repeat, config, run_dir)
        metrics.update(_evolution_metrics(domain, config, run_dir))
        _plot_fitness(domain, config, run_dir)
    _plot_divergence(config, run_dir, metrics)
    return metrics


# ---------------------------------------------------------------------------------------------- plots
COLORS = {"gaussian": "tab:red", "sum": "tab:blue", "abs": "tab:green", "so": "tab:purple", "r": "tab:orange"}


def _color(arm: str, config: Config) -> str:
    return COLORS.get(arm) or ("tab:red", "tab:brown", "tab:pink", "tab:olive")[list(arms(config)).index(arm) % 4]


def _plot_fitness(domain: str, config: Config, run_dir: RunDirectory) -> None:
    """Best and mean fitness per evaluation (each repeat a line), the fraction solved, and the lineage: fitness
    along the line of descent of repeat 0's final best genome."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 8), layout="constrained")
    (best_ax, mean_ax), (solved_ax, lineage_ax) = fig.subplots(2, 2)
    budget = config.max_evaluations if domain == "parity" else config.maze_evaluations
    for arm in arms(config):
        color = _color(arm, config)
        for r in range(config.repeats):
            rows = [row for row in run_dir.metrics if row["phase"] == f"{domain}_{arm}_r{r}"]
            x = [row["evaluations"] for row in rows]
            for ax, key in ((best_ax, "best"), (mean_ax, "mean")):
                ax.plot(x, [row[key] for row in rows], color=color, alpha=0.5, lw=0.9, label=None if r else arm)
        done = sorted(v["evaluations"] for k, v in run_dir.state["runs"].items()
                      if k.startswith(f"{domain}_{arm}_r") and v["solved"])
        solved_ax.step([0] + done + [budget], [i / config.repeats for i in range(len(done) + 1)]
                       + [len(done) / config.repeats], where="post", color=color, label=arm)
        lineage = run_dir.state["runs"][f"{domain}_{arm}_r0"]["lineage"]
        lineage_ax.plot(lineage["generation"], lineage["fitness"], marker=".", ms=3, color=color, label=arm)
    for ax, title, xlabel in ((best_ax, "best fitness so far", "evaluations"),
                              (mean_ax, "population mean fitness", "evaluations"),
                              (solved_ax, f"fraction of {config.repeats} runs solved", "evaluations"),
                              (lineage_ax, "lineage of repeat 0's final best genome", "generation of birth")):
        ax.set(xlabel=xlabel, title=title)
        ax.legend(fontsize=7)
    best_ax.set_ylabel("fitness (-NLL)" if domain == "parity" else "fitness (-breadcrumb distance)")
    stds = ", ".join(f"{m} {s:g}" for m, s in zip(config.methods, config.method_stds, strict=True))
    fig.suptitle(f"{domain}: steady-state GA, population {config.population_size}; SM-G stds: {stds}")
    run_dir.save_figure(fig, f"{domain}_fitness")


def _plot_divergence(config: Config, run_dir: RunDirectory, m: dict[str, Any]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.5), layout="constrained")
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    methods = config.divergence_methods
    width = 0.8 / len(methods)
    for ax, net in zip(axes, NETWORKS, strict=True):
        layers = run_dir.state["layers"][net]
        for j, method in enumerate(methods):
            values = [m[f"{net}_{method}_layer{i}"] for i in range(len(layers))]
            ax.bar([i + (j - (len(methods) - 1) / 2) * width for i in range(len(layers))], values, width,
                   color=COLORS[method], label=f"{method} (spread {m[f'{net}_{method}_layer_spread']:.2f})")
        ax.set_yscale("log")
        ax.set_xticks(range(len(layers)), layers, rotation=60, fontsize=7)
        ax.set_ylabel("mean output divergence, that layer perturbed")
        ax.set_title(f"{net}: {m[f'{net}_parameters']} weights, equal norm (std {config.divergence_std:g})")
        ax.legend(fontsize=7)
    run_dir.save_figure(fig, "divergence_per_layer")


# ---------------------------------------------------------------------------------------------- claims
def _below_gaussian(methods: tuple[str, ...], spread: bool = False, divergence: bool = True):
    """Each method's mean divergence (ratio to Gaussian's) and/or layer spread (decades, with Gaussian's) on both
    networks; held when every one is below Gaussian's."""
    def check(m: dict[str, Any]) -> tuple[bool, Any]:
        measured, held = {}, True
        for net, method in ((n, x) for n in NETWORKS for x in methods if f"{n}_{x}_layer_spread" in m):
            if divergence:
                ratio = m[f"{net}_{method}_divergence_mean"] / m[f"{net}_gaussian_divergence_mean"]
                measured[f"{net}_{method}_over_gaussian"], held = round(ratio, 4), held and ratio < 1
            if spread:
                mine, plain = m[f"{net}_{method}_layer_spread"], m[f"{net}_gaussian_layer_spread"]
                measured[f"{net}_{method}_spread"], measured[f"{net}_gaussian_spread"] = round(mine, 3), round(plain, 3)
                held = held and mine < plain
        if not measured:
            raise KeyError(f"no method of {methods} measured")
        return held, measured
    return check


def _parity_solve_rate(m: dict[str, Any]) -> tuple[bool, Any]:
    rates = {k[7:-11]: v for k, v in m.items() if k.startswith("parity_") and k.endswith("_solve_rate")}
    smg, plain = [rates[k] for k in ("sum", "abs") if k in rates], [v for k, v in rates.items() if "gaussian" in k]
    if not smg or not plain:
        raise KeyError("parity needs a Gaussian arm and SM-G-SUM or SM-G-ABS")
    return max(smg) > max(plain), rates


CLAIMS = [
    Claim(PAPER, "At equal perturbation norm, SM-G-SUM, SM-G-ABS and SM-G-SO each move the outputs less than plain "
          "Gaussian mutation (lower mean output divergence on the parent's experience), on the deep (12-layer) "
          "MLP and on the recurrent network (LSTM). Measured: each method's mean divergence over Gaussian's.",
          _below_gaussian(SM_G)),
    Claim(PAPER, "At equal perturbation norm, SM-G-SUM, SM-G-ABS and SM-G-SO spread the output divergence more "
          "evenly across layers than plain Gaussian mutation, on both networks (lower spread of log10 per-layer "
          "divergence across layers, averaged over mutations; in decades).",
          _below_gaussian(SM_G, spread=True, divergence=False)),
    Claim(PAPER, "SM-R (a Gaussian direction scaled to a target divergence, here each parent's median Gaussian "
          "divergence) gives lower mean output divergence and more layer-uniform divergence than plain "
          "Gaussian mutation, on both networks.",
          _below_gaussian(("r",), spread=True)),
    Claim(PAPER, "Recurrent parity with an LSTM: within the same evaluation budget the steady-state GA with SM-G "
          "(SUM or ABS) solves the task in more runs than with plain Gaussian mutation at any of the Gaussian "
          "stds tried (solve rates over the repeats).",
          _parity_solve_rate),
]

EXPERIMENT = Experiment(
    name="safe-mutations",
    paper=PAPER,
    description=("Output divergence per layer of Gaussian, SM-G and SM-R perturbations at equal norm (12-layer MLP, "
                 "LSTM); recurrent parity (and at full budget the hard maze) evolved with SM-G or Gaussian."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(parents=10, perturbations=100, domains=("parity", "maze"), population_size=250,
                       max_evaluations=100_000, repeats=20, report_every=1000),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=3.3,
    main_metric="best",
    tags=("evolution", "safe-mutations", "recurrent"),
)
