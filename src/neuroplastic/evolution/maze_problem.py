"""The breadcrumb hard maze as a problem: a whole population of controllers driven through the maze at once.

Lehman, Chen, Clune & Stanley 2018 evolve a deep feed-forward controller (:func:`maze_controller`: 11 inputs,
ReLU hidden layers of 15 units, 2 sigmoid outputs) for the hard maze (:mod:`neuroplastic.tasks.hard_maze`):
fitness = minus the breadcrumb distance to the goal at the end of a 400-step episode, the network queried every
3 steps; solved when the robot came within 10 units of the goal. :class:`HardMazeProblem` steps one robot per
genome in a :class:`~neuroplastic.tasks.hard_maze.BatchedHardMaze` and runs every genome's network on its own
robot's observation in one ``torch.func.vmap`` call per decision.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._checks import check_bool, check_choice, check_int
from ..tasks.hard_maze import ACTION_REPEAT, HARD_MAZE_STEPS, OBSERVATION_SIZE, BatchedHardMaze
from .genome import ParameterLayout
from .problems import ProblemEvaluation, check_population
from .unrolled import unroll_recurrent

__all__ = ["HardMazeProblem", "maze_controller"]


def maze_controller(hidden_size: int = 15, num_hidden_layers: int = 6, *, activation: str = "relu",
                    init: str = "xavier") -> nn.Sequential:
    """The paper's hard-maze controller: ``Linear(11, H)``, ``num_hidden_layers`` times ``Linear(H, H)``, each
    followed by the activation, then ``Linear(H, 2)`` and a sigmoid (turn, speed in [0, 1]).

    As the reference's ``netmodel`` (settings ``size=15, layers=6``: an input layer and 6 hidden layers of 15
    ReLU units). ``init="xavier"``: Xavier-uniform weights and zero biases (the reference's default);
    ``"default"``: PyTorch's initialisation. Weights are drawn from the global generator.
    """
    check_int("hidden_size", hidden_size)
    check_int("num_hidden_layers", num_hidden_layers, minimum=0)
    check_choice("activation", activation, ("relu", "tanh"))
    check_choice("init", init, ("xavier", "default"))
    act = nn.ReLU if activation == "relu" else nn.Tanh
    layers: list[nn.Module] = [nn.Linear(OBSERVATION_SIZE, hidden_size), act()]
    for _ in range(num_hidden_layers):
        layers += [nn.Linear(hidden_size, hidden_size), act()]
    layers += [nn.Linear(hidden_size, 2), nn.Sigmoid()]
    model = nn.Sequential(*layers)
    if init == "xavier":
        for module in model:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
    return model


class HardMazeProblem:
    """Fitness = minus the breadcrumb distance of each genome's robot to the goal after one hard-maze episode.

    Every genome drives its own robot; at each decision (every ``action_repeat`` simulator steps) the ``N``
    observations ``[N, 11]`` go through the ``N`` networks in one vmap call, giving actions ``[N, 2]`` (turn,
    speed, read in [0, 1]). Deterministic: the seeds are accepted and unused.

    Returns a :class:`~neuroplastic.evolution.problems.ProblemEvaluation`: ``fitness [N]``; ``solved [N]``
    (came within 10 units of the goal); ``experience`` the observations each network saw ``[N, K, 11]``
    (``K = ceil(max_steps / action_repeat)`` decisions; None with ``experience=False``); ``metrics``:
    ``breadcrumb_distance``, ``x``, ``y`` (the final position, a behaviour descriptor) and ``collisions``.
    A genome whose network outputs NaN or inf gets a NaN fitness (its robot then holds a neutral action
    0.5, 0.5): configure the GA's ``nan_fitness`` ("worst") to rank it last; the reference gives it -1e8.

    Args:
        model: the controller template (e.g. :func:`maze_controller`): observation ``[B, 11] -> [B, 2]``.
        max_steps: simulator steps per episode (paper: 400).
        action_repeat: simulator steps per decision (paper: 3).
        experience: return the observations as experience.

    Attributes: ``model``, ``layout``, ``runner`` (as :class:`~neuroplastic.evolution.problems.SupervisedProblem`).
    """

    def __init__(self, model: nn.Module, *, max_steps: int = HARD_MAZE_STEPS, action_repeat: int = ACTION_REPEAT,
                 experience: bool = True) -> None:
        self.layout = ParameterLayout(model)
        self.model = model
        self.runner = unroll_recurrent(model)
        self.max_steps = check_int("max_steps", max_steps)
        self.action_repeat = check_int("action_repeat", action_repeat)
        self.experience = check_bool("experience", experience)
        self.decisions = math.ceil(max_steps / action_repeat)

    def __repr__(self) -> str:
        return (f"HardMazeProblem(genome_size={self.layout.size}, max_steps={self.max_steps}, "
                f"action_repeat={self.action_repeat})")

    def initial_genome(self) -> Tensor:
        """The template's own parameters as a genome ``[D]``."""
        return self.layout.flatten(self.model)

    def actions(self, genomes: Tensor, observations: Tensor) -> Tensor:
        """Genome ``i``'s network on observation ``i``: ``[N, D], [N, 11] -> [N, 2]`` (one vmap call)."""
        layout, runner = self.layout, self.runner

        def one(genome: Tensor, observation: Tensor) -> Tensor:
            out = torch.func.functional_call(runner, layout.unflatten(genome), (observation.unsqueeze(0),))
            return out.squeeze(0)

        with torch.no_grad():
            out = torch.func.vmap(one, randomness="different")(genomes, observations)
        if not isinstance(out, Tensor) or tuple(out.shape) != (genomes.shape[0], 2):
            raise ValueError(f"the controller must map an observation [B, {OBSERVATION_SIZE}] to actions [B, 2], got "
                             f"{list(out.shape[1:]) if isinstance(out, Tensor) else type(out).__name__} per genome")
        return out

    def __call__(self, genomes: Tensor, seeds: Tensor | None = None) -> ProblemEvaluation:
        """Run one episode per genome of ``genomes [N, D]``."""
        genomes = check_population(genomes, seeds, self.layout.size)
        n = genomes.shape[0]
        maze = BatchedHardMaze(max(n, 1), max_steps=self.max_steps, action_repeat=self.action_repeat,
                               dtype=genomes.dtype, device=genomes.device)
        observation = maze.reset()[:n]
        seen, broken = [], torch.zeros(n, dtype=torch.bool, device=genomes.device)
        done = False
        while not done:
            if self.experience:
                seen.append(observation)
            action = self.actions(genomes, observation)
            bad = ~torch.isfinite(action).all(1)
            broken |= bad
            action = torch.where(bad[:, None], torch.full_like(action, 0.5), action)
            if n == 0:
                action = action.new_full((1, 2), 0.5)
            observation, _, done = maze.step(action)
            observation = observation[:n]
        distance = maze.breadcrumb_distance()[:n]
        fitness = torch.where(broken, torch.full_like(distance, math.nan), -distance)
        state = maze.state
        metrics = {"breadcrumb_distance": distance, "x": state.position[:n, 0], "y": state.position[:n, 1],
                   "collisions": state.collisions[:n]}
        experience = torch.stack(seen, 1) if self.experience else None
        return ProblemEvaluation(fitness, experience, state.reached_goal[:n].clone(), metrics)
