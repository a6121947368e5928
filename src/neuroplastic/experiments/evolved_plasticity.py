"""Evolved plasticity: a genetic algorithm evolves plastic recurrent networks that learn within their lifetime.

The three timescales composed: evolution (across generations, :mod:`neuroplastic.evolution`, no gradient
descent) shapes the fixed weights and the plasticity of a network whose synapses change within each episode
(:mod:`neuroplastic.plasticity`), on the cue-reward task of Miconi, Rawal, Clune & Stanley 2019 (Backpropamine,
section 4.1; :class:`neuroplastic.tasks.CueRewardTask`): each episode has a secret rewarded cue, found only from
the rewards of its trials. Evolving neuromodulated plastic networks for such reward-based tasks follows Soltoggio,
Bullinaria, Mattiussi, Duerr & Floreano 2008 ("Evolutionary advantages of neuromodulated plasticity in dynamic,
reward-based scenarios").

Networks of the same hidden size N, each a :class:`~neuroplastic.evolution.RecurrentPolicy` (the cell plus a
2-action linear head; greedy actions)::

    h_t = tanh(x_t @ W_in + b + h_{t-1} @ (W + alpha * H_{t-1}))

- ``modulated``: simple neuromodulation, ``M_t = tanh(h_t @ w_m + b_m)``, ``H <- clip(H + M_t h_{t-1} ⊗ h_t, ±c)``;
  the genome holds W_in, b, W, alpha (per connection), w_m, b_m and the head;
- ``nonplastic``: ``h_t = tanh(x_t @ W_in + b + h_{t-1} @ W)`` (:class:`~neuroplastic.models.RNNCell`, the same
  equations with alpha = 0); the genome holds W_in, b, W and the head;
- ``plasticity_only`` (optional): as ``modulated`` with W_in, b and W fixed at their random initial values; the
  genome holds alpha, the modulator and the head.

Each variant is evolved by the same generational GA (:class:`~neuroplastic.evolution.GeneticAlgorithm`, Gaussian
mutation, elitism) with the same population, generations and episodes per evaluation: the same evaluation budget.
Fitness: the mean reward per episode over ``episodes`` episodes drawn from the genome's evaluation seed
(:class:`~neuroplastic.evolution.CueRewardProblem`; reproducible, and noisy). The whole population is stepped
together, one ``torch.func.vmap`` over ``functional_call`` per time step. After evolution, the ``finalists``
fittest members are re-evaluated on the same validation episodes, and the best of them is tested on fresh
episodes (the same for every variant). Measured results: ``docs/results/evolved-plasticity.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from neuroplastic.evolution import (
    CueRewardProblem,
    GAConfig,
    GeneticAlgorithm,
    Population,
    RecurrentPolicy,
)
from neuroplastic.models import RNNCell
from neuroplastic.plasticity import PlasticRNNCell
from neuroplastic.runs import Claim, Experiment, RunDirectory
from neuroplastic.runs.config import config_error, param
from neuroplastic.runs.plots import reward_per_trial_figure

__all__ = ["Config", "EXPERIMENT", "VARIANTS", "make_policy", "make_problem", "run"]

PAPER = ("Miconi, Rawal, Clune & Stanley 2019, Backpropamine (ICLR), cue-reward task; evolved as in Soltoggio "
         "et al. 2008")
VARIANTS = ("modulated", "nonplastic", "plasticity_only")
LABELS = {"modulated": "plastic, neuromodulated", "nonplastic": "non-plastic RNN",
          "plasticity_only": "plasticity only (W fixed)"}
COLORS = {"modulated": "tab:blue", "nonplastic": "tab:red", "plasticity_only": "tab:green"}
_VALIDATION_SEED = 10_000_019
_TEST_SEED = 20_000_003


@dataclass
class Config:
    """Task, network and GA settings.

    Task (:class:`~neuroplastic.tasks.CueRewardTask`): ``num_cues`` cues of ``cue_size`` bits shown as ``display``,
    ``num_trials`` trials of ``trial_steps`` steps. Network: ``hidden_size`` neurons, plastic traces clipped at
    ``clip``, alpha drawn ``alpha_init * N(0, 1)`` per connection; ``input_projection=False`` feeds the observation
    to the recurrent layer as it is (then ``hidden_size`` must be the observation size). GA: ``population``
    genomes, ``generations`` generations after the founders, ``elite`` kept unchanged (with their fitness),
    parents by tournaments of ``tournament_size``, Gaussian mutation of ``mutation_std`` (founders: the template
    plus the same noise). Fitness: ``episodes`` episodes per evaluation. The result of a variant: ``finalists``
    members re-evaluated on ``validation_episodes`` common episodes, the best tested on ``test_episodes`` fresh
    ones (the same for every variant). ``plasticity_only``: also evolve the variant with fixed random W.

    ``quick`` is the task of the ``cue-reward`` experiment's quick budget (the paper's 4 cues of 20 bits shown one
    after the other; 10 trials of 5 steps), where A2C trains the same plastic network of 32 neurons to learn
    within the episode; here 16 neurons, a population of 128, 200 generations, 32 episodes per evaluation.
    ``full``: the paper's episode length (20 trials of 6 steps), 32 neurons, a population of 256 and 2000
    generations, and the plasticity-only variant (not run; expected several hours of CPU).
    """

    num_cues: int = param(4, minimum=3)
    cue_size: int = param(20, minimum=1)
    trial_steps: int = param(5, minimum=4)
    num_trials: int = param(10, minimum=2)
    display: str = param("sequential", choices=("sequential", "concatenated"))
    hidden_size: int = param(16, minimum=1)
    input_projection: bool = True
    clip: float = param(1.0, minimum=0, exclusive_minimum=True)
    alpha_init: float = param(0.1, minimum=0)
    population: int = param(128, minimum=2)
    generations: int = param(200, minimum=1)
    elite: int = param(1, minimum=0)
    tournament_size: int = param(5, minimum=1)
    mutation_std: float = param(0.05, minimum=0, exclusive_minimum=True)
    episodes: int = param(32, minimum=1)
    finalists: int = param(5, minimum=1)
    validation_episodes: int = param(128, minimum=1)
    test_episodes: int = param(512, minimum=2)
    plasticity_only: bool = False
    checkpoint_every: int = param(10, minimum=1)

    def check(self) -> None:
        if self.cue_size < 63 and self.num_cues > 2 ** self.cue_size:
            raise config_error(self, "num_cues", f"at most 2 ** cue_size = {2 ** self.cue_size} (distinct cues)")
        if not self.input_projection and self.hidden_size != obs_size(self):
            raise config_error(self, "hidden_size", f"the observation size {obs_size(self)} without an input "
                               "projection (the observation enters the recurrent layer as it is)")
        if self.display == "sequential" and self.trial_steps < 5:
            raise config_error(self, "trial_steps", "at least 5 with display 'sequential'")
        for name in ("elite", "tournament_size", "finalists"):
            limit = self.population - 1 if name == "elite" else self.population
            if getattr(self, name) > limit:
                raise config_error(self, name, f"at most {limit} (population {self.population})")


def obs_size(config: Config) -> int:
    """The cue-reward observation size: the cue input (one cue, or two side by side) plus 6."""
    return (1 if config.display == "sequential" else 2) * config.cue_size + 6


def variants(config: Config) -> tuple[str, ...]:
    """The variants a run evolves."""
    return VARIANTS if config.plasticity_only else VARIANTS[:2]


def make_policy(variant: str, obs_dim: int, config: Config) -> RecurrentPolicy:
    """The template network of ``variant`` (its parameters drawn from the global generator)."""
    if variant == "nonplastic":
        return RecurrentPolicy(RNNCell(obs_dim, config.hidden_size, input_projection=config.input_projection))
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    cell = PlasticRNNCell(obs_dim, config.hidden_size, rule="clip", modulation="simple", modulator_channels=1,
                          fanout=False, alpha="connection", clip=config.clip, alpha_init=config.alpha_init,
                          input_projection=config.input_projection)
    policy = RecurrentPolicy(cell)
    if variant == "plasticity_only":  # fixed random W_in, b and W: not in the genome
        fixed = [cell.weight] + ([] if cell.input_to_hidden is None else list(cell.input_to_hidden.parameters()))
        for parameter in fixed:
            parameter.requires_grad_(False)
    return policy


def make_problem(policy: RecurrentPolicy, config: Config, episodes: int | None = None) -> CueRewardProblem:
    """The cue-reward fitness of ``config`` for ``policy``."""
    return CueRewardProblem(policy, episodes=episodes or config.episodes, num_cues=config.num_cues,
                            cue_size=config.cue_size, trial_steps=config.trial_steps, num_trials=config.num_trials,
                            display=config.display)


def _evolve(variant: str, index: int, config: Config, run_dir: RunDirectory,
            obs_dim: int) -> tuple[GeneticAlgorithm, CueRewardProblem]:
    """Evolve one variant in its own phase (step 0: the founders); log best and mean fitness per generation."""
    torch.manual_seed(1000 * run_dir.seed + index)  # the template: the same for a run and its resumption
    policy = make_policy(variant, obs_dim, config)
    problem = make_problem(policy, config)
    generator = torch.Generator().manual_seed(1000 * run_dir.seed + 10 + index)
    population = Population.from_model(policy, config.population, generator, std=config.mutation_std)
    ga_config = GAConfig(population_size=config.population, elite=config.elite, selection="tournament",
                         tournament_size=config.tournament_size, mutation_std=config.mutation_std)
    ga = GeneticAlgorithm(population, ga_config, seed=1000 * run_dir.seed + 20 + index)
    run_dir.track(ga=ga)
    for step in run_dir.steps(config.generations + 1, phase=variant, checkpoint_every=config.checkpoint_every,
                              desc=f"evolved-plasticity {variant}"):
        ga.step(problem)
        fitness = ga.population.fitness
        run_dir.log(step, **{f"best_{variant}": float(fitness.max()), f"mean_{variant}": float(fitness.mean()),
                             f"evaluations_{variant}": ga.evaluations})
    return ga, problem


def _select_and_test(ga: GeneticAlgorithm, problem: CueRewardProblem, config: Config) -> dict[str, Any]:
    """Re-evaluate the finalists on the validation episodes, test the best on the test episodes."""
    population = ga.population
    order = torch.argsort(population.fitness, descending=True)[: config.finalists]
    finalists = population.genomes[order]
    seeds = torch.full((finalists.shape[0],), _VALIDATION_SEED, dtype=torch.int64)
    validation = problem.trial_rewards(finalists, seeds, config.validation_episodes).sum(-1).mean(-1)
    pick = int(validation.argmax())
    genome, genome_id = finalists[pick], int(population.ids[order[pick]])
    trials = problem.trial_rewards(genome[None], torch.tensor([_TEST_SEED]), config.test_episodes)[0].double()
    totals, late = trials.sum(1), trials[:, config.num_trials // 2:].mean(1)
    gain = late - trials[:, 0]
    sqrt_e = math.sqrt(trials.shape[0])
    return {"genome": genome, "id": genome_id, "validation_reward": float(validation[pick]),
            "reward": float(totals.mean()), "reward_sem": float(totals.std() / sqrt_e),
            "first_trial_reward": float(trials[:, 0].mean()), "late_trial_reward": float(late.mean()),
            "within_episode_gain": float(gain.mean()), "within_episode_gain_sem": float(gain.std() / sqrt_e),
            "per_trial": trials.mean(0).tolist(), "per_trial_sem": (trials.std(0) / sqrt_e).tolist()}


def _plot_fitness(run_dir: RunDirectory, config: Config, names: tuple[str, ...]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for variant in names:
        rows = [r for r in run_dir.metrics if f"best_{variant}" in r and r[f"best_{variant}"] is not None]
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r[f"best_{variant}"] for r in rows], color=COLORS[variant], lw=1.0, alpha=0.6,
                label=f"{LABELS[variant]}: best")
        ax.plot(steps, [r[f"mean_{variant}"] for r in rows], color=COLORS[variant], lw=1.8,
                label=f"{LABELS[variant]}: mean")
    ax.axhline(0, color="gray", ls=":", lw=1)
    ax.set_xlabel(f"generation (population {config.population}, {config.episodes} episodes per evaluation)")
    ax.set_ylabel(f"fitness: reward per episode ({config.num_trials} trials)")
    ax.set_title(f"Evolving cue-reward networks: {config.num_cues} cues, hidden size {config.hidden_size}")
    ax.legend(fontsize=7)
    run_dir.save_figure(fig, "fitness")


def _plot_lineage(run_dir: RunDirectory, results: dict[str, dict[str, Any]], gas: dict[str, GeneticAlgorithm]) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for variant, ga in gas.items():
        record = ga.population.record
        chain = ga.population.lineage(results[variant]["id"])
        ax.plot(record.generation[chain].numpy(), record.fitness[chain].numpy(), color=COLORS[variant],
                marker="o", ms=2.5, lw=1.0, label=f"{LABELS[variant]} ({len(chain)} ancestors)")
    ax.axhline(0, color="gray", ls=":", lw=1)
    ax.set_xlabel("generation of birth")
    ax.set_ylabel("fitness of the ancestor (its own noisy evaluation)")
    ax.set_title("Lineage of the selected genome: its line of descent back to a founder")
    ax.legend(fontsize=8)
    run_dir.save_figure(fig, "lineage")


def _plot_per_trial(run_dir: RunDirectory, config: Config, results: dict[str, dict[str, Any]]) -> None:
    title = f"Selected genomes: reward per trial on {config.test_episodes} fresh episodes (±1 s.e.)"
    run_dir.save_figure(reward_per_trial_figure(results, colors=COLORS, labels=LABELS, title=title),
                        "reward_per_trial")


def run(config: Config, run_dir: RunDirectory) -> dict[str, Any]:
    """Evolve each variant in turn with the same budget; select and test the best genome of each.

    Returns, per variant, ``{variant}_reward`` (mean reward per test episode) and its standard error, the
    first-trial and late-trial rewards, the within-episode gain, the final best and mean fitness, the genome size
    and evaluations, and for the plastic variants the selected genome's mean |alpha|.
    """
    obs_dim = obs_size(config)
    metrics: dict[str, Any] = {"max_reward": float(config.num_trials)}
    results: dict[str, dict[str, Any]] = {}
    gas: dict[str, GeneticAlgorithm] = {}
    names = variants(config)
    for index, variant in enumerate(names):
        ga, problem = _evolve(variant, index, config, run_dir, obs_dim)
        gas[variant] = ga
        result = _select_and_test(ga, problem, config)
        results[variant] = result
        for key, value in result.items():
            if isinstance(value, (int, float)) and key != "id":
                metrics[f"{variant}_{key}"] = value
        metrics[f"{variant}_final_best_fitness"] = float(ga.population.fitness.max())
        metrics[f"{variant}_final_mean_fitness"] = float(ga.population.fitness.mean())
        metrics[f"{variant}_genome_size"] = problem.genome_size
        metrics[f"{variant}_evaluations"] = ga.evaluations
        metrics[f"{variant}_lineage_length"] = len(ga.population.lineage(result["id"]))
        params = problem.layout.unflatten(result["genome"])
        if "cell.synapses.alpha" in params:
            alpha = params["cell.synapses.alpha"]
            metrics[f"{variant}_alpha_abs_mean"] = float(alpha.abs().mean())
            # The same genome with its plasticity switched off (alpha = 0), on the same test episodes.
            frozen = result["genome"].clone()
            frozen[next(s for s in problem.layout if s.name == "cell.synapses.alpha").slice] = 0
            trials = problem.trial_rewards(frozen[None], torch.tensor([_TEST_SEED]), config.test_episodes)
            metrics[f"{variant}_reward_alpha_zero"] = float(trials.sum(-1).mean())
    run_dir.state["per_trial"] = {v: r["per_trial"] for v, r in results.items()}
    _plot_fitness(run_dir, config, names)
    _plot_lineage(run_dir, results, gas)
    _plot_per_trial(run_dir, config, results)
    return metrics


# ---------------------------------------------------------------------------------------------- claims
def _plastic_wins(m: dict[str, Any]) -> tuple[bool, Any]:
    """The evolved plastic network's test reward exceeds the non-plastic one's by > 2 s.e. of the difference."""
    diff = m["modulated_reward"] - m["nonplastic_reward"]
    sem = math.hypot(m["modulated_reward_sem"], m["nonplastic_reward_sem"])
    measured = {"modulated_reward": round(m["modulated_reward"], 3),
                "nonplastic_reward": round(m["nonplastic_reward"], 3), "difference_sem": round(sem, 3)}
    return bool(diff > 2 * sem), measured


def _plastic_learns(m: dict[str, Any]) -> tuple[bool, Any]:
    """The evolved plastic network's late-trial reward exceeds its first-trial reward by > 2 s.e."""
    held = m["modulated_within_episode_gain"] > 2 * m["modulated_within_episode_gain_sem"]
    return bool(held), {"first_trial_reward": round(m["modulated_first_trial_reward"], 3),
                        "late_trial_reward": round(m["modulated_late_trial_reward"], 3)}


CLAIMS = [
    Claim(PAPER,
          "An evolved neuromodulated plastic RNN earns more reward per episode than an evolved non-plastic RNN "
          "of the same hidden size, evolved by the same GA with the same evaluation budget (on fresh test "
          "episodes; difference larger than two standard errors).",
          _plastic_wins),
    Claim(PAPER,
          "The evolved plastic network learns within the episode: its reward per trial in the second half of the "
          "episode exceeds its first-trial reward, where the rewarded cue is unknown (by more than two standard "
          "errors).",
          _plastic_learns),
]

EXPERIMENT = Experiment(
    name="evolved-plasticity",
    paper=PAPER,
    description=("A genetic algorithm (no gradient descent) evolves a neuromodulated plastic RNN and a non-plastic "
                 "RNN of the same size on the cue-reward task, with the same evaluation budget: evolution across "
                 "generations composed with plasticity within the lifetime."),
    config_class=Config,
    budgets={
        "quick": Config(),
        "full": Config(num_cues=4, cue_size=20, display="sequential", num_trials=20, trial_steps=6, hidden_size=32,
                       population=256, generations=2000, episodes=32, finalists=10, validation_episodes=256,
                       test_episodes=1000, plasticity_only=True, checkpoint_every=20),
    },
    run=run,
    claims=CLAIMS,
    quick_minutes=3.0,
    main_metric="modulated_reward",
    tags=("evolution", "plasticity", "neuromodulation", "reinforcement-learning"),
)
