"""Cue-reward association, the first reinforcement-learning task of Backpropamine.

Miconi, Rawal, Clune & Stanley 2019, "Backpropamine: training self-modifying neural networks with
differentiable neuromodulated plasticity" (ICLR), section 4.1; structure and defaults checked
against the authors' released stimulus-response code (``sr/srbatch.py``).

Each episode draws ``num_cues`` distinct random binary cues (±1 bits) and picks one of them as the
rewarded cue. The episode is a sequence of trials. In each trial the agent sees two different
cues, then a response signal; its action on the response step is scored: action 1 means "the rewarded
cue was in this trial", action 0 means "it was not". A correct answer earns ``+reward_value``, a wrong one
``-reward_value``; actions on every other step have no effect and earn 0. The reward is also fed back as an
input on the next step. The rewarded cue is never shown as such: the agent has to infer it from rewards
across trials, within the episode.

Trial layout (``L = trial_steps`` steps, the same for every trial and every episode in the batch)::

    step 0            blank (no cue)
    steps 1 .. L-3    the two cues ("sequential": each cue on one of these steps, chosen at random, the
                      others blank; "concatenated": both cues side by side on every one of these steps)
    step L-2          response signal; the action taken on this step is scored
    step L-1          blank; the observation carries the reward just earned

Differences from the released code, on purpose: trials have a fixed length (there: random, 5 to 8 steps
with 4 cues), so episodes are a whole number of trials; there is no unused input line.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neuroplastic._checks import check_choice, check_int, check_number
from neuroplastic.tasks._common import (
    DeviceLike,
    ObservationLayout,
    check_actions,
    check_generator,
    resolve_device,
)

__all__ = ["CueRewardTask", "draw_distinct_cues"]

DISPLAYS = ("sequential", "concatenated")


def draw_distinct_cues(
    batch_size: int, num_cues: int, cue_size: int, generator: torch.Generator, *, max_redraws: int = 1000
) -> torch.Tensor:
    """Draw ``num_cues`` random ±1 cues per episode, all different within an episode.

    Miconi et al. 2019, Backpropamine, cue-reward task: cues are random binary vectors (here ±1).
    Duplicates (likely only for tiny ``cue_size``) are redrawn.

    Args:
        batch_size: episodes ``B``.
        num_cues: cues per episode ``K``; needs ``K <= 2 ** cue_size``.
        cue_size: bits per cue ``S``.
        generator: CPU ``torch.Generator``.
        max_redraws: give up (``RuntimeError``) after this many redraw rounds.

    Returns:
        ``[B, K, S]`` float tensor of ±1 on the CPU.
    """
    check_int("batch_size", batch_size)
    check_int("num_cues", num_cues)
    check_int("cue_size", cue_size)
    if cue_size < 63 and num_cues > 2**cue_size:
        raise ValueError(
            f"num_cues must be <= 2 ** cue_size = {2**cue_size} so that all cues differ; got {num_cues}"
        )
    cues = torch.randint(0, 2, (batch_size, num_cues, cue_size), generator=generator).float() * 2.0 - 1.0
    for _ in range(max_redraws):
        same = (cues.unsqueeze(2) == cues.unsqueeze(1)).all(dim=-1)  # [B, K, K]
        duplicate = torch.triu(same, diagonal=1).any(dim=1)  # cue k equals an earlier cue
        if not bool(duplicate.any()):
            return cues
        fresh = torch.randint(0, 2, cues.shape, generator=generator).float() * 2.0 - 1.0
        cues = torch.where(duplicate.unsqueeze(-1), fresh, cues)
    raise RuntimeError(f"could not draw {num_cues} distinct cues of {cue_size} bits in {max_redraws} rounds")


class CueRewardTask:
    """Batched cue-reward association episodes, stepped one time step at a time.

    Miconi et al. 2019, Backpropamine, section 4.1 (cue-reward association). See the module docstring for
    the trial structure.

    Observation ``[B, obs_dim]`` (float; ``W`` = ``cue_size`` for "sequential", ``2 * cue_size`` for
    "concatenated"; the same indices are available by name in :attr:`layout`)::

        [0, W)      cue input: the ±1 bits of the cue(s) shown at this step, zeros otherwise
        W           response signal: 1 on the response step of each trial, else 0
        W + 1       bias: always 1
        W + 2       time: t / episode_length, t = steps taken so far in the episode
        W + 3       reward earned on the previous step (0 at the first step)
        W + 4, W + 5  previous action, one-hot (all zero at the first step)

    Defaults follow the paper and the authors' run command (``--ni 4 --cs 20 --eplen 120``): 4 cues of
    20 bits, 120-step episodes (here 20 trials of 6 steps; the released code draws 5 to 8 steps per trial,
    6.5 on average), reward +1 / -1.

    Args:
        batch_size: independent episodes ``B``.
        num_cues: cues per episode (>= 2).
        cue_size: bits per cue.
        trial_steps: steps per trial; >= 5 for "sequential", >= 4 for "concatenated".
        num_trials: trials per episode.
        display: "sequential" (the released code: the two cues on different steps, through one cue input)
            or "concatenated" (both cues side by side on each cue step).
        reward_value: reward magnitude for a correct (+) or wrong (-) response.
        generator: CPU ``torch.Generator`` for every random draw.
        device: where observations and rewards live (default CPU).

    Attributes:
        obs_dim: observation size. num_actions: 2. episode_length: ``trial_steps * num_trials``.
        layout: :class:`ObservationLayout` naming the observation indices.
        cues: ``[B, num_cues, cue_size]`` this episode's cues (after :meth:`reset`).
        rewarded_cue: ``[B]`` long, index of the rewarded cue in :attr:`cues` (after :meth:`reset`).
        pairs: ``[B, num_trials, 2]`` long, the cues of each trial in display order (after :meth:`reset`).
    """

    num_actions: int = 2

    def __init__(
        self,
        batch_size: int,
        *,
        num_cues: int = 4,
        cue_size: int = 20,
        trial_steps: int = 6,
        num_trials: int = 20,
        display: str = "sequential",
        reward_value: float = 1.0,
        generator: torch.Generator,
        device: DeviceLike = None,
    ) -> None:
        self.batch_size = check_int("batch_size", batch_size)
        self.num_cues = check_int("num_cues", num_cues, minimum=2)
        self.cue_size = check_int("cue_size", cue_size)
        self.display = check_choice("display", display, DISPLAYS)
        self.trial_steps = check_int("trial_steps", trial_steps, minimum=5 if display == "sequential" else 4)
        self.num_trials = check_int("num_trials", num_trials)
        self.reward_value = float(check_number("reward_value", reward_value, minimum=0, exclusive_minimum=True))
        if cue_size < 63 and num_cues > 2**cue_size:
            raise ValueError(f"num_cues must be <= 2 ** cue_size = {2**cue_size}; got {num_cues}")
        self.generator = check_generator(generator)
        self.device = resolve_device(device)

        self.episode_length = self.trial_steps * self.num_trials
        width = cue_size if display == "sequential" else 2 * cue_size
        self.layout = ObservationLayout(
            size=width + 6,
            cue=slice(0, width),
            response=width,
            bias=width + 1,
            time=width + 2,
            reward=width + 3,
            action=slice(width + 4, width + 6),
        )
        self.obs_dim = self.layout.size
        self.response_phase = self.trial_steps - 2
        self._t: int | None = None

    # ------------------------------------------------------------------ episode state
    def reset(self, generators: Sequence[torch.Generator] | None = None) -> torch.Tensor:
        """Start ``B`` new episodes (new cues, rewarded cue and trial schedule); return the first observation.

        Args:
            generators: None (draw every episode from the task's generator), or ``G`` CPU generators, ``G``
                dividing ``B``: the episodes come in ``G`` blocks of ``B / G``, block ``j`` drawn from
                ``generators[j]`` exactly as a task of batch ``B / G`` with that generator draws them (one task
                steps the episodes of many independently seeded evaluations, e.g. one block per genome).

        Returns:
            ``[B, obs_dim]`` float observation at step 0.
        """
        if generators is None:
            cues, rewarded, pairs, stimulus = self._draw(self.batch_size, self.generator)
        else:
            if isinstance(generators, torch.Generator) or not isinstance(generators, Sequence):
                raise TypeError(f"generators must be None or a sequence of torch.Generator, got "
                                f"{type(generators).__name__}")
            count = len(generators)
            if count == 0 or self.batch_size % count:
                raise ValueError(f"generators must hold a number of generators dividing batch_size="
                                 f"{self.batch_size}, got {count}")
            blocks = [self._draw(self.batch_size // count, check_generator(g)) for g in generators]
            cues, rewarded, pairs, stimulus = (torch.cat(parts) for parts in zip(*blocks, strict=True))
        dev = self.device
        self.cues = cues.to(dev)
        self.rewarded_cue = rewarded.to(dev)
        self.pairs = pairs.to(dev)
        self._stimulus = stimulus.reshape(cues.shape[0], self.episode_length, -1).to(dev)
        self._rewarded_in_pair = (pairs == rewarded[:, None, None]).any(dim=-1).to(dev)  # [B, num_trials]
        b = self.batch_size
        self._t = 0
        self._prev_reward = torch.zeros(b, device=dev)
        self._prev_action = torch.zeros(b, self.num_actions, device=dev)
        return self._observation()

    def _draw(self, b: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``b`` episodes from ``g``: cues ``[b, K, S]``, rewarded cue ``[b]``, pairs ``[b, trials, 2]``, stimulus
        ``[b, trials, trial_steps, W]`` (on the CPU)."""
        k = self.num_cues
        cues = draw_distinct_cues(b, k, self.cue_size, g)
        rewarded = torch.randint(0, k, (b,), generator=g)
        # Ordered pair of two different cues, uniform over the k * (k - 1) ordered pairs.
        first = torch.randint(0, k, (b, self.num_trials), generator=g)
        second = (first + 1 + torch.randint(0, k - 1, (b, self.num_trials), generator=g)) % k
        pairs = torch.stack([first, second], dim=-1)

        # Cue input of every step of the episode: [B, num_trials, trial_steps, W].
        stimulus = torch.zeros(b, self.num_trials, self.trial_steps, self.layout.cue.stop)
        pair_bits = cues.gather(1, pairs.reshape(b, -1, 1).expand(-1, -1, self.cue_size))
        pair_bits = pair_bits.reshape(b, self.num_trials, 2, self.cue_size)
        cue_steps = self.trial_steps - 3  # steps 1 .. L-3
        if self.display == "sequential":
            slots = torch.rand(b, self.num_trials, cue_steps, generator=g).argsort(dim=-1)[..., :2] + 1
            index = slots.unsqueeze(-1).expand(-1, -1, -1, self.cue_size)
            stimulus.scatter_(2, index, pair_bits)
        else:
            stimulus[:, :, 1 : 1 + cue_steps] = pair_bits.reshape(b, self.num_trials, 1, 2 * self.cue_size)

        return cues, rewarded, pairs, stimulus

    @property
    def t(self) -> int:
        """Steps taken in the current episode."""
        self._require_reset()
        assert self._t is not None
        return self._t

    @property
    def is_response_step(self) -> bool:
        """True when the next action will be scored (the current observation carries the response signal)."""
        return self.t < self.episode_length and self.t % self.trial_steps == self.response_phase

    def optimal_action(self) -> torch.Tensor:
        """The correct answer for the current trial: 1 if the rewarded cue is in its pair, else 0.

        Returns:
            ``[B]`` long; only scored on response steps (see :attr:`is_response_step`).
        """
        trial = min(self.t, self.episode_length - 1) // self.trial_steps
        return self._rewarded_in_pair[:, trial].long()

    def step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Apply one action per episode and advance one time step.

        Args:
            action: ``[B]`` integer tensor in {0, 1} (1 = "the rewarded cue is in this trial").

        Returns:
            ``(obs, reward, done)``: the next observation ``[B, obs_dim]``, the reward for this action
            ``[B]`` (nonzero only on response steps), and whether the episode is over (same for the whole
            batch). After ``done`` the returned observation is a blank final one; call :meth:`reset`.
        """
        if self.t >= self.episode_length:
            raise RuntimeError("the episode is over (done was returned); call reset() to start new episodes")
        action = check_actions(action, self.batch_size, self.num_actions, self.device)
        reward = torch.zeros(self.batch_size, device=self.device)
        if self.is_response_step:
            correct = action == self.optimal_action()
            reward = torch.where(correct, self.reward_value, -self.reward_value)
        self._t = self.t + 1
        self._prev_reward = reward
        self._prev_action = torch.nn.functional.one_hot(action, self.num_actions).to(reward.dtype)
        done = self._t >= self.episode_length
        return self._observation(), reward, done

    # ------------------------------------------------------------------ helpers
    def _require_reset(self) -> None:
        if self._t is None:
            raise RuntimeError("call reset() before using the task")

    def _observation(self) -> torch.Tensor:
        t, lay = self.t, self.layout
        obs = torch.zeros(self.batch_size, self.obs_dim, device=self.device)
        if t < self.episode_length:
            obs[:, lay.cue] = self._stimulus[:, t]
            obs[:, lay.response] = float(t % self.trial_steps == self.response_phase)
        obs[:, lay.bias] = 1.0
        obs[:, lay.time] = t / self.episode_length
        obs[:, lay.reward] = self._prev_reward
        obs[:, lay.action] = self._prev_action
        return obs
