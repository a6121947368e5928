"""Recurrent policies evolved on interactive episodes: the whole population stepped together, one vmap per step.

A recurrent policy (:class:`RecurrentPolicy`: any cell, plastic or not, plus a linear policy head) acts in an
environment whose next observation depends on its action, so its episodes cannot be run as one sequence: every
time step is one call for the whole population. :func:`population_call` runs a template model with genome ``i``'s
parameters on genome ``i``'s own inputs and state for every ``i`` in one ``torch.func.vmap`` over
``torch.func.functional_call`` (what :meth:`~neuroplastic.evolution.genome.ParameterLayout.batched_call` does for
inputs shared by all genomes). It works with the plastic cells of :mod:`neuroplastic.plasticity` stepped one step
at a time (their PyTorch path; the fused C scan cannot be vmapped, and is not used for single steps), so the
``[N, B, H, H]`` Hebbian traces of ``N`` genomes' ``B`` episodes are updated in batched operations.

:class:`CueRewardProblem`: fitness = mean reward per episode of the cue-reward task (Miconi et al. 2019,
Backpropamine, :class:`~neuroplastic.tasks.CueRewardTask`), each genome on its own episodes drawn from its seed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from .._checks import check_choice, check_int
from ..tasks import CueRewardTask
from .genome import ParameterLayout
from .problems import ProblemEvaluation, check_population

__all__ = ["CueRewardProblem", "RecurrentPolicy", "population_call"]


class RecurrentPolicy(nn.Module):
    """A recurrent cell with a linear policy head: ``h_t, state = cell(x_t, state)``, ``logits = h_t W_pi + b_pi``.

    The cell is any module with an int ``hidden_size``, ``initial_state(batch, device=...)`` and
    ``cell(x, state) -> (h, state)`` (:class:`~neuroplastic.plasticity.PlasticRNNCell`,
    :class:`~neuroplastic.models.RNNCell`). Parameters: the cell's, then the head's.
    Shapes: ``obs [B, I]`` -> ``(logits [B, A], state)``.
    """

    def __init__(self, cell: nn.Module, num_actions: int = 2) -> None:
        super().__init__()
        if not isinstance(cell, nn.Module) or not isinstance(getattr(cell, "hidden_size", None), int):
            raise TypeError(f"cell must be a recurrent cell (an nn.Module with an int hidden_size and initial_state), "
                            f"got {type(cell).__name__}")
        self.cell = cell
        self.num_actions = check_int("num_actions", num_actions)
        self.policy = nn.Linear(cell.hidden_size, self.num_actions)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Any:
        """The cell's zero state for ``batch_size`` episodes."""
        return self.cell.initial_state(batch_size, device=device)

    def forward(self, obs: Tensor, state: Any) -> tuple[Tensor, Any]:
        """``obs [B, I]`` -> ``(logits [B, A], state)``."""
        hidden, state = self.cell(obs, state)
        return self.policy(hidden), state


def population_call(layout: ParameterLayout, model: nn.Module, genomes: Tensor, *args: Any) -> Any:
    """``model(*args_i)`` with genome ``i``'s parameters, for every genome, in one vectorised call.

    Unlike :meth:`ParameterLayout.batched_call` (inputs shared by all genomes), every tensor in ``args`` has a
    leading genome dimension ``N``: ``args`` may be nested tuples / named tuples of tensors ``[N, ...]`` and None
    (a recurrent state such as :class:`~neuroplastic.plasticity.PlasticRNNState`). Returns the model's output with
    the same structure, each tensor ``[N, ...]`` (None entries stay None).

    Equation: ``out_i = f(args_i; theta_i)`` with ``theta_i = unflatten(genomes[i])``, by
    ``torch.func.vmap(functional_call)``. Shapes: ``genomes [N, D]``, tensors in ``args`` ``[N, ...]``.
    """
    genomes = layout._check_genomes(genomes, "genomes")
    if genomes.dim() != 2:
        raise ValueError(f"genomes must have shape [N, {layout.size}], got {tuple(genomes.shape)}")
    n = genomes.shape[0]
    leaves, _ = tree_flatten(args)
    for leaf in leaves:
        if leaf is not None and (not isinstance(leaf, Tensor) or leaf.dim() == 0 or leaf.shape[0] != n):
            got = list(leaf.shape) if isinstance(leaf, Tensor) else type(leaf).__name__
            raise ValueError(f"every input of population_call must be a tensor [N, ...] with N = {n} (the genomes) "
                             f"or None, got {got}")
    in_dims = tree_map(lambda leaf: None if leaf is None else 0, args)
    structure: dict[str, Any] = {}

    def one(genome: Tensor, *inputs: Any) -> list[Tensor]:
        out = torch.func.functional_call(model, layout.unflatten(genome), inputs)
        flat, spec = tree_flatten(out)
        structure["spec"], structure["none"] = spec, [leaf is None for leaf in flat]
        return [leaf for leaf in flat if leaf is not None]

    tensors = iter(torch.func.vmap(one, in_dims=(0, *in_dims))(genomes, *args))
    flat = [None if missing else next(tensors) for missing in structure["none"]]
    return tree_unflatten(flat, structure["spec"])


class CueRewardProblem:
    """Fitness of recurrent policies on the cue-reward task: the mean reward per episode over a few episodes.

    Miconi, Rawal, Clune & Stanley 2019, Backpropamine, section 4.1 (:class:`~neuroplastic.tasks.CueRewardTask`):
    each trial shows two of ``num_cues`` cues; answering 1 on the response step when the episode's secret
    rewarded cue was among them (0 otherwise) earns +1, a wrong answer -1. The rewarded cue changes every
    episode, so a policy must find it from the rewards within the episode.

    ``fitness_i = (1 / E) sum_e sum_k r_{i,e,k}``, the reward summed over the ``num_trials`` trials ``k`` of
    episode ``e``, averaged over ``episodes = E``; chance is 0, the maximum ``num_trials``. Genome ``i``'s ``E``
    episodes (cues, rewarded cue, trial schedule) are drawn from a generator seeded with ``seeds[i]``, so its
    fitness depends on ``genomes[i]`` and ``seeds[i]`` only (reproducible; the same on every evaluator up to the
    floating-point rounding of batched products). The fitness is a noisy estimate (standard deviation about
    ``sqrt(num_trials / E)`` for a policy at chance). Actions are greedy: ``argmax`` of the logits (ties: 0).

    All genomes' episodes are stepped together: one :func:`population_call` per time step, all episodes in one
    :class:`CueRewardTask` (each genome's block drawn from its own generator). ``metrics``: ``first_trial``
    (mean reward of the first trial, where the rewarded cue is unknown)
    and ``late_trials`` (mean reward per trial over the second half of the episode), each ``[N]``.

    Args:
        policy: the template, a :class:`RecurrentPolicy` (or any module with ``initial_state`` and
            ``policy(obs, state) -> (logits [B, 2], state)``).
        episodes: episodes per evaluation ``E``.
        num_cues, cue_size, trial_steps, num_trials, display: the task's settings (:class:`CueRewardTask`).
    """

    name = "cue-reward"

    def __init__(self, policy: nn.Module, *, episodes: int = 8, num_cues: int = 4, cue_size: int = 20,
                 trial_steps: int = 5, num_trials: int = 10, display: str = "sequential") -> None:
        if not isinstance(policy, nn.Module) or not callable(getattr(policy, "initial_state", None)):
            raise TypeError(f"policy must be an nn.Module with initial_state (a RecurrentPolicy), got "
                            f"{type(policy).__name__}")
        self.policy = policy
        self.layout = ParameterLayout(policy)
        self.genome_size = self.layout.size
        self.episodes = check_int("episodes", episodes)
        self.task_settings = dict(num_cues=check_int("num_cues", num_cues, minimum=2),
                                  cue_size=check_int("cue_size", cue_size), trial_steps=trial_steps,
                                  num_trials=check_int("num_trials", num_trials),
                                  display=check_choice("display", display, ("sequential", "concatenated")))
        probe = self.make_task(1, 0)  # validates trial_steps against the display, and the cue count
        self.obs_dim = probe.obs_dim
        self.num_trials = num_trials
        self.trial_steps = probe.trial_steps

    def make_task(self, episodes: int, seed: int) -> CueRewardTask:
        """``episodes`` cue-reward episodes of this problem, drawn from a generator seeded with ``seed``."""
        return CueRewardTask(episodes, generator=torch.Generator().manual_seed(int(seed)), **self.task_settings)

    @torch.no_grad()
    def trial_rewards(self, genomes: Tensor, seeds: Tensor, episodes: int | None = None) -> Tensor:
        """The reward of every trial: ``[N, E, num_trials]`` (+1 or -1) for ``genomes [N, D]`` and ``seeds [N]``,
        ``E = episodes`` (default: the problem's)."""
        genomes = check_population(genomes, seeds, self.genome_size)
        if seeds is None:
            raise TypeError("seeds must be an integer tensor [N]: they draw each genome's episodes")
        episodes = self.episodes if episodes is None else check_int("episodes", episodes)
        n, device, dtype = genomes.shape[0], genomes.device, genomes.dtype
        task = CueRewardTask(n * episodes, generator=torch.Generator(), **self.task_settings)
        generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds.tolist()]
        obs = task.reset(generators).view(n, episodes, -1).to(device, dtype)  # [N, E, obs]
        state = self.policy.initial_state(episodes, device=device)
        state = tree_map(lambda t: None if t is None else t.to(dtype).expand(n, *t.shape).clone(), state)
        rewards, done = [], False
        while not done:
            response = task.is_response_step
            logits, state = population_call(self.layout, self.policy, genomes, obs, state)
            obs, reward, done = task.step(logits.argmax(-1).reshape(-1).to(task.device))
            obs = obs.view(n, episodes, -1).to(device, dtype)
            if response:
                rewards.append(reward.view(n, episodes).to(device))
        return torch.stack(rewards, dim=-1)  # [N, E, num_trials]

    def evaluate(self, genomes: Tensor, seeds: Tensor) -> ProblemEvaluation:
        """Fitness ``[N]`` float64 (mean reward per episode) and the metrics ``first_trial``, ``late_trials``."""
        rewards = self.trial_rewards(genomes, seeds).double()
        late = rewards[..., self.num_trials // 2:].mean(-1)
        return ProblemEvaluation(rewards.sum(-1).mean(-1), metrics={"first_trial": rewards[..., 0].mean(-1),
                                                                    "late_trials": late.mean(-1)})

    __call__ = evaluate
