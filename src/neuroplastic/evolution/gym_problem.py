"""Any ``gymnasium`` environment as a fitness: a policy network's mean episode return, the whole population
stepped together in one vector environment.

:class:`GymProblem` turns genomes (flat parameter vectors of a policy network, see
:class:`~neuroplastic.evolution.genome.ParameterLayout`) into fitness: genome ``i`` plays ``episodes`` episodes
of ``env_id``, each capped at ``max_episode_steps`` steps, and its fitness is the mean undiscounted return
``f_i = (1 / E) sum_e sum_t r_{i,e,t}``. All ``N * E`` episodes of a batch run in one vector environment
(``gymnasium.make_vec``: the environment's native vectorised implementation where gymnasium has one and
the per-environment seeding is known (CartPole), else ``"sync"``), and the policy acts for all of them in one
batched computation: a chain of ``nn.Linear`` layers and activations as batched matrix products over the
genomes' unflattened weights (``torch.baddbmm``), any other policy through ``torch.func.vmap`` over
``functional_call``.

Each environment contributes its first episode only: its reward counts while it is alive and it is masked
from the step it terminates or is truncated on (the vector environment's autoreset starts another episode in
it, which never reaches the return). Episode ``e`` of genome ``i`` is seeded from ``seeds[i]`` alone, so a
genome's fitness does not depend on the other genomes of the batch, its position in it, or the evaluator.

Actions: a ``Discrete(n)`` action space takes the argmax of ``n`` policy outputs (plus the space's start); a
``Box`` takes ``low + (tanh(y) + 1) / 2 * (high - low)`` (``continuous="tanh"``) or ``clip(y, low, high)``
(``continuous="clip"``). Observations are flattened to ``[obs_dim]`` and cast to the genomes' dtype. The policy
is stateless: ``policy(obs [B, obs_dim]) -> [B, outputs]``.

With ``experience_size > 0`` the evaluation also returns, per genome, up to that many observations it acted
on (drawn uniformly without replacement from all its episodes' states, with a generator seeded from its
seed), as an :class:`~neuroplastic.evolution.protocols.Evaluation`: the experience buffer of a safe mutation
(Lehman, Chen, Clune & Stanley 2018).

Needs ``gymnasium`` (``pip install neuroplastic[rl]``), imported when a problem is built.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_choice, check_int, check_optional_int
from .evaluators import check_inputs
from .genome import ParameterLayout
from .operators import genome_seed
from .protocols import Evaluation

__all__ = ["GymProblem", "Rollout"]

_VECTORIZATION = ("auto", "native", "sync", "async")
_CONTINUOUS = ("tanh", "clip")
_ELEMENTWISE = (nn.Tanh, nn.ReLU, nn.Sigmoid, nn.Identity, nn.ELU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Softsign,
                nn.Softplus, nn.Hardtanh, nn.Tanhshrink, nn.ReLU6, nn.SELU, nn.Mish)


def import_gymnasium() -> Any:
    """``gymnasium``, or an ``ImportError`` saying which extra installs it."""
    try:
        import gymnasium
    except ImportError as error:
        raise ImportError("GymProblem needs gymnasium: pip install 'neuroplastic[rl]' (or pip install "
                          "'gymnasium>=1.0')") from error
    return gymnasium


def episode_seed(seed: int, episode: int) -> int:
    """The seed of episode ``episode`` of a genome evaluated with ``seed``: ``genome_seed(seed, episode, 0)``."""
    return genome_seed(seed, episode, 0)


def _cartpole_reset(envs: Any, seeds: list[int]) -> np.ndarray:
    """Start CartPole's native vector environment with environment ``j`` in the state ``CartPoleEnv.reset(seed=
    seeds[j])`` draws (4 values uniform in [-0.05, 0.05] from ``np_random(seed)``); returns the observations."""
    from gymnasium.utils import seeding

    envs.reset(seed=0)
    core = envs.unwrapped
    state = np.stack([seeding.np_random(s)[0].uniform(low=core.low, high=core.high, size=(4,)) for s in seeds],
                     axis=1)
    core.state = state
    return state.T.astype(np.float32)


# native vector environments whose environments can be started one seed each (vector_entry_point -> reset)
NATIVE_RESETS: dict[str, Callable[[Any, list[int]], np.ndarray]] = {
    "gymnasium.envs.classic_control.cartpole:CartPoleVectorEnv": _cartpole_reset,
}


@dataclass(frozen=True)
class Rollout:
    """What :meth:`GymProblem.rollout` measured: ``returns [N, E]`` float64 (episode returns), ``lengths [N, E]``
    int64 (steps of each episode), ``experience``: None or ``N`` tensors ``[k_i, obs_dim]``."""

    returns: Tensor
    lengths: Tensor
    experience: list[Tensor] | None = None


def _linear_chain(policy: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """``policy``'s layers if it is an ``nn.Sequential`` of ``nn.Linear`` layers and parameter-free elementwise
    activations (batched matrix products then apply), else None."""
    if not isinstance(policy, nn.Sequential) or len(policy) == 0:
        return None
    layers = list(policy.named_children())
    for _, layer in layers:
        if isinstance(layer, nn.Linear):
            continue
        if not isinstance(layer, _ELEMENTWISE) or any(True for _ in layer.parameters()):
            return None
    return layers


class GymProblem:
    """Fitness of policy genomes on a ``gymnasium`` environment: the mean return of ``episodes`` capped episodes,
    the whole batch stepped together (module docstring).

    Args:
        env_id: a registered environment id (``"CartPole-v1"``, ``"Acrobot-v1"``, ``"Pendulum-v1"``, ...).
        policy: the template network, ``policy(obs [B, obs_dim]) -> [B, outputs]`` (``outputs``: ``n`` for a
            ``Discrete(n)`` action space, the action's size for a ``Box``); genomes are its parameters
            (:class:`ParameterLayout`). It is never modified.
        episodes: episodes per genome (fitness: their mean return).
        max_episode_steps: the cap on an episode's length (None: the environment's registered limit, which must
            then exist).
        env_kwargs: keyword arguments of the environment (``gymnasium.make(env_id, **env_kwargs)``).
        vectorization: ``"auto"`` (the native vector environment where the per-environment seeding is known,
            :data:`NATIVE_RESETS`, else ``"sync"``), ``"native"``, ``"sync"`` or ``"async"`` (``make_vec``'s
            modes; async steps the environments in subprocesses).
        continuous: how a ``Box`` action is made from the outputs: ``"tanh"`` (scaled into the bounds) or
            ``"clip"``.
        experience_size: states recorded per genome (0: none; the result is then a plain fitness tensor).
        name: the problem's name in error messages (default: the environment id).

    Raises:
        ImportError: gymnasium is not installed.
        TypeError / ValueError: bad arguments, an unsupported observation or action space (observations must be
            a ``Box``; actions ``Discrete`` or ``Box``), or a policy whose output does not fit the action space.
    """

    def __init__(self, env_id: str, policy: nn.Module, *, episodes: int = 1, max_episode_steps: int | None = None,
                 env_kwargs: Mapping[str, Any] | None = None, vectorization: str = "auto",
                 continuous: str = "tanh", experience_size: int = 0, name: str | None = None) -> None:
        gym = import_gymnasium()
        if not isinstance(env_id, str):
            raise TypeError(f"env_id must be a registered gymnasium environment id (str), got {type(env_id).__name__}")
        try:
            spec = gym.spec(env_id)
        except gym.error.Error as error:
            raise ValueError(f"env_id {env_id!r} is not a registered gymnasium environment: {error}") from error
        if not isinstance(policy, nn.Module):
            raise TypeError(f"policy must be a torch.nn.Module, got {type(policy).__name__}")
        self.env_id = env_id
        self.policy = policy
        self.layout = ParameterLayout(policy)
        self.genome_size = self.layout.size
        self.episodes = check_int("episodes", episodes)
        self.max_episode_steps = check_optional_int("max_episode_steps", max_episode_steps)
        if self.max_episode_steps is None:
            if spec.max_episode_steps is None:
                raise ValueError(f"{env_id} has no registered episode limit: give max_episode_steps")
            self.max_episode_steps = int(spec.max_episode_steps)
        if env_kwargs is not None and not isinstance(env_kwargs, Mapping):
            raise TypeError(f"env_kwargs must be a mapping or None, got {type(env_kwargs).__name__}")
        self.env_kwargs = dict(env_kwargs or {})
        self.vectorization = check_choice("vectorization", vectorization, _VECTORIZATION)
        native = spec.vector_entry_point if isinstance(spec.vector_entry_point, str) else None
        if self.vectorization == "native" and native not in NATIVE_RESETS:
            raise ValueError(f"vectorization='native' needs a native vector environment whose environments can be "
                             f"seeded one by one ({sorted(NATIVE_RESETS)}); {env_id} has "
                             f"{spec.vector_entry_point!r}: use 'sync'")
        self._mode = ("native" if self.vectorization == "auto" and native in NATIVE_RESETS
                      else self.vectorization if self.vectorization != "auto" else "sync")
        self._native_reset = NATIVE_RESETS.get(native or "") if self._mode == "native" else None
        self.continuous = check_choice("continuous", continuous, _CONTINUOUS)
        self.experience_size = check_int("experience_size", experience_size, minimum=0)
        self.name = name if name is not None else env_id
        self._chain = _linear_chain(policy)
        self._envs: OrderedDict[int, Any] = OrderedDict()
        probe = gym.make(env_id, **self.env_kwargs)
        try:
            self._check_spaces(gym, probe.observation_space, probe.action_space)
        finally:
            probe.close()

    # ------------------------------------------------------------------ spaces and the policy
    def _check_spaces(self, gym: Any, observation_space: Any, action_space: Any) -> None:
        Box, Discrete = gym.spaces.Box, gym.spaces.Discrete
        if not isinstance(observation_space, Box):
            raise ValueError(f"GymProblem needs a Box observation space, {self.env_id} has {observation_space}")
        self.obs_dim = int(np.prod(observation_space.shape))
        if isinstance(action_space, Discrete):
            self.discrete = True
            self.outputs = int(action_space.n)
            self._action_start = int(action_space.start)
        elif isinstance(action_space, Box):
            self.discrete = False
            self.action_shape = tuple(action_space.shape)
            self.outputs = int(np.prod(self.action_shape))
            self._low = torch.as_tensor(action_space.low.reshape(-1), dtype=torch.float64)
            self._high = torch.as_tensor(action_space.high.reshape(-1), dtype=torch.float64)
            self._action_dtype = action_space.dtype
            if self.continuous == "tanh" and not bool(torch.isfinite(self._high - self._low).all()):
                raise ValueError(f"continuous='tanh' needs finite action bounds, {self.env_id} has {action_space}; "
                                 f"use continuous='clip'")
        else:
            raise ValueError(f"GymProblem needs a Discrete or Box action space, {self.env_id} has {action_space}")
        probe = torch.zeros(1, self.obs_dim, dtype=self.layout.dtype, device=self.layout.device)
        try:
            with torch.no_grad():
                out = self.policy(probe)
        except Exception as error:  # the policy's own error, with the sizes it was given
            raise ValueError(f"policy must map observations [B, {self.obs_dim}] of {self.env_id} to [B, "
                             f"{self.outputs}]; it failed on [1, {self.obs_dim}]: {error}") from error
        if not isinstance(out, Tensor) or tuple(out.shape) != (1, self.outputs):
            got = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"policy must map observations [B, {self.obs_dim}] of {self.env_id} to [B, "
                             f"{self.outputs}] (its action space: {action_space}), got {got} for B = 1")

    def _policy_fn(self, genomes: Tensor) -> Callable[[Tensor], Tensor]:
        """``obs [N, E, obs_dim] -> outputs [N, E, outputs]`` for the ``N`` genomes, each on its own rows."""
        params = self.layout.unflatten(genomes)
        if self._chain is not None:
            steps: list[Any] = []
            for key, layer in self._chain:
                if isinstance(layer, nn.Linear):
                    bias = params.get(f"{key}.bias")
                    steps.append((params[f"{key}.weight"].transpose(1, 2),
                                  None if bias is None else bias.unsqueeze(1)))
                else:
                    steps.append(layer)

            def chain(x: Tensor) -> Tensor:
                for step in steps:
                    if isinstance(step, tuple):
                        weight, bias = step
                        x = torch.bmm(x, weight) if bias is None else torch.baddbmm(bias, x, weight)
                    else:
                        x = step(x)
                return x

            return chain
        policy = self.policy
        batched = torch.func.vmap(lambda p, x: torch.func.functional_call(policy, p, (x,)))
        return lambda x: batched(params, x)

    def _actions(self, outputs: Tensor) -> np.ndarray:
        """Environment actions ``[M, ...]`` from policy outputs ``[M, outputs]``."""
        if self.discrete:
            return (outputs.argmax(-1) + self._action_start).cpu().numpy()
        y = outputs.to(torch.float64).cpu()
        if self.continuous == "tanh":
            action = self._low + (torch.tanh(y) + 1) / 2 * (self._high - self._low)
        else:
            action = torch.maximum(torch.minimum(y, self._high), self._low)
        return action.numpy().astype(self._action_dtype).reshape(-1, *self.action_shape)

    # ------------------------------------------------------------------ environments
    def _make_envs(self, count: int) -> Any:
        if count in self._envs:
            self._envs.move_to_end(count)
            return self._envs[count]
        gym = import_gymnasium()
        kwargs = dict(self.env_kwargs, max_episode_steps=self.max_episode_steps)
        if self._mode == "native":
            envs = gym.make_vec(self.env_id, num_envs=count, vectorization_mode="vector_entry_point", **kwargs)
        else:
            envs = gym.make_vec(self.env_id, num_envs=count, vectorization_mode=self._mode,
                                disable_env_checker=True, **kwargs)
        self._envs[count] = envs
        while len(self._envs) > 2:  # a population size and its last, smaller chunk
            self._envs.popitem(last=False)[1].close()
        return envs

    def _reset(self, envs: Any, seeds: list[int]) -> np.ndarray:
        if self._native_reset is not None:
            return self._native_reset(envs, seeds)
        observations, _ = envs.reset(seed=seeds)
        return observations

    def close(self) -> None:
        """Close the cached vector environments."""
        while self._envs:
            self._envs.popitem()[1].close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_envs"] = OrderedDict()  # environments are rebuilt where the problem is unpickled
        return state

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def rollout(self, genomes: Tensor, seeds: Tensor) -> Rollout:
        """Play every genome's episodes: ``genomes [N, D]``, ``seeds [N]`` int64 -> :class:`Rollout`."""
        genomes, seeds = check_inputs(genomes, seeds, self)
        n, e = genomes.shape[0], self.episodes
        if n == 0:
            empty = torch.zeros(0, e, dtype=torch.float64)
            return Rollout(empty, empty.long(), [] if self.experience_size else None)
        m = n * e
        genome_seeds = [int(s) for s in seeds.tolist()]
        envs = self._make_envs(m)
        obs = self._reset(envs, [episode_seed(s, k) for s in genome_seeds for k in range(e)])
        policy = self._policy_fn(genomes.to(self.layout.device))
        dtype, device = genomes.dtype, self.layout.device
        returns = np.zeros(m, dtype=np.float64)
        lengths = np.zeros(m, dtype=np.int64)
        alive = np.ones(m, dtype=bool)
        seen: list[Tensor] = []
        acted: list[np.ndarray] = []
        for _ in range(self.max_episode_steps):
            x = torch.as_tensor(np.asarray(obs).reshape(m, -1)).to(device=device, dtype=dtype)
            if self.experience_size:
                seen.append(x)
                acted.append(alive.copy())
            outputs = policy(x.view(n, e, self.obs_dim)).reshape(m, self.outputs)
            obs, reward, terminated, truncated, _ = envs.step(self._actions(outputs))
            returns += np.where(alive, np.asarray(reward, dtype=np.float64), 0.0)
            lengths += alive
            alive &= ~(np.asarray(terminated) | np.asarray(truncated))
            if not alive.any():
                break
        experience = None
        if self.experience_size:
            experience = self._sample_experience(torch.stack(seen), torch.as_tensor(np.stack(acted)),
                                                 genome_seeds)
        return Rollout(torch.from_numpy(returns).view(n, e), torch.from_numpy(lengths).view(n, e), experience)

    def _sample_experience(self, seen: Tensor, acted: Tensor, seeds: list[int]) -> list[Tensor]:
        """Per genome, up to ``experience_size`` of the states it acted on (``seen [T, M, obs_dim]`` where
        ``acted [T, M]``), uniformly without replacement, drawn with a generator seeded from its seed."""
        e, out = self.episodes, []
        for i, seed in enumerate(seeds):
            rows = slice(i * e, (i + 1) * e)
            states = seen[:, rows][acted[:, rows]]
            generator = torch.Generator().manual_seed(genome_seed(seed, 0, 1))
            pick = torch.randperm(states.shape[0], generator=generator)[: self.experience_size]
            out.append(states[pick.to(states.device)].clone())
        return out

    def evaluate(self, genomes: Tensor, seeds: Tensor) -> Tensor | Evaluation:
        """Mean episode return per genome, ``[N]`` float64 (an :class:`Evaluation` with the recorded states when
        ``experience_size > 0``)."""
        result = self.rollout(genomes, seeds)
        fitness = result.returns.mean(1).to(genomes.device)
        return fitness if result.experience is None else Evaluation(fitness, result.experience)

    __call__ = evaluate

    def __repr__(self) -> str:
        return (f"GymProblem({self.env_id!r}, genome_size={self.genome_size}, episodes={self.episodes}, "
                f"max_episode_steps={self.max_episode_steps}, vectorization={self._mode!r})")
