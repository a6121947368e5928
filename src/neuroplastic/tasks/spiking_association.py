"""A cue–target association task in spikes, re-drawn every episode, with input noise.

After Schmidgall et al. 2021, "SpikePropamine: Differentiable Plasticity in Spiking Neural Networks": a
temporal association that a spiking network must learn *within* an episode, under noise.

Each episode draws ``K = num_pairs`` random binary cue patterns (``cue_size`` channels, ``cue_active`` of
them active) and gives each a distinct label out of ``num_labels``. The pairs are shown one after the other:
for ``present_steps`` steps the cue's active channels and the label's ``label_channels`` channels fire at
``rate`` spikes per step (Bernoulli), then ``gap_steps`` silent steps. After ``delay_steps`` more silent
steps one of the cues is shown alone for ``query_steps`` steps (label channels silent); the network must
answer with its label. Cues and labels are new in every episode, so the association cannot be stored in
fixed weights.

Noise: every channel fires a spurious spike with probability ``noise_rate`` at every step (the label
channels during the query too), and every signal spike is deleted with probability ``drop_rate``.

Channels: ``[0, cue_size)`` cue, then ``num_labels * label_channels`` label channels (label ``m`` owns
``cue_size + m * label_channels ...``). Length ``T = K * (present_steps + gap_steps) + delay_steps +
query_steps``.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import torch

from neuroplastic._checks import check_fraction, check_int
from neuroplastic.tasks._common import DeviceLike, check_generator, resolve_device

__all__ = ["SpikingAssociationBatch", "spiking_association_batch", "association_length"]


class SpikingAssociationBatch(NamedTuple):
    """One batch of spiking cue–target episodes (batch-first, on the requested device).

    Attributes:
        inputs: ``[B, T, C]`` float spikes (0/1), ``C = cue_size + num_labels * label_channels``.
        target: ``[B]`` long, the label of the queried cue.
        query_mask: ``[T]`` bool, True at the query steps (where a readout should listen).
        cues: ``[B, K, cue_size]`` float (0/1), the episode's cue patterns.
        labels: ``[B, K]`` long, each cue's label (distinct within an episode).
        query_index: ``[B]`` long, which of the ``K`` pairs is queried.
        step_target: ``[B, T]`` long, the label that goes with the cue shown at each step (the pair's label
            while it is presented, the target during the query), -1 where no cue is shown.
    """

    inputs: torch.Tensor
    target: torch.Tensor
    query_mask: torch.Tensor
    cues: torch.Tensor
    labels: torch.Tensor
    query_index: torch.Tensor
    step_target: torch.Tensor


def association_length(num_pairs: int, present_steps: int, gap_steps: int, delay_steps: int, query_steps: int) -> int:
    """The episode length ``T = K * (present_steps + gap_steps) + delay_steps + query_steps``."""
    return num_pairs * (present_steps + gap_steps) + delay_steps + query_steps


def _distinct_cues(batch_size: int, num_pairs: int, cue_size: int, active: int,
                   generator: torch.Generator) -> torch.Tensor:
    """``[B, K, cue_size]`` 0/1 patterns with exactly ``active`` ones each, distinct within an episode."""
    ranks = torch.rand(batch_size, num_pairs, cue_size, generator=generator).argsort(-1).argsort(-1)
    cues = (ranks < active).float()
    for _ in range(100):  # redraw the (rare) duplicates
        same = (cues.unsqueeze(1) == cues.unsqueeze(2)).all(-1)
        duplicate = torch.triu(same, diagonal=1).any(1)  # [B, K]: equal to an earlier cue
        if not bool(duplicate.any()):
            return cues
        count = int(duplicate.sum())
        redraw = torch.rand(count, cue_size, generator=generator).argsort(-1).argsort(-1)
        cues[duplicate] = (redraw < active).float()
    # Few possible patterns for K (the redraws keep colliding): K distinct ones of all of them, per episode.
    possible = math.comb(cue_size, active)
    if possible < num_pairs or possible > 1_000_000:
        raise ValueError(f"cannot draw {num_pairs} distinct cues of {cue_size} units with {active} active: "
                         f"there are {possible} such patterns")
    patterns = torch.zeros(possible, cue_size)
    for row, ones in enumerate(itertools.combinations(range(cue_size), active)):
        patterns[row, list(ones)] = 1.0
    pick = torch.rand(batch_size, possible, generator=generator).argsort(-1)[:, :num_pairs]
    return patterns[pick]


def spiking_association_batch(
    batch_size: int,
    *,
    generator: torch.Generator,
    num_pairs: int = 3,
    num_labels: int | None = None,
    cue_size: int = 20,
    cue_active: int | None = None,
    label_channels: int = 5,
    present_steps: int = 10,
    gap_steps: int = 5,
    delay_steps: int = 5,
    query_steps: int = 10,
    rate: float = 0.5,
    noise_rate: float = 0.0,
    drop_rate: float = 0.0,
    device: DeviceLike = None,
) -> SpikingAssociationBatch:
    """Draw a batch of spiking cue–target association episodes (see the module docstring).

    Schmidgall et al. 2021 (SpikePropamine): an association re-drawn every episode, under input noise.

    Args:
        batch_size: number of independent episodes ``B``.
        generator: a CPU ``torch.Generator`` for every random draw.
        num_pairs: cue–label pairs shown per episode ``K``.
        num_labels: number of possible labels ``M >= K`` (default ``K``); chance accuracy is ``1 / K``.
        cue_size: cue channels; ``cue_active`` of them are active in a cue (default ``cue_size // 2``).
        label_channels: channels per label.
        present_steps, gap_steps, delay_steps, query_steps: the timeline (steps).
        rate: firing probability per step of an active channel.
        noise_rate: probability per channel and step of a spurious spike.
        drop_rate: probability that a signal spike is deleted.
        device: where the tensors go (drawn on the CPU).
    """
    generator = check_generator(generator)
    check_int("batch_size", batch_size)
    check_int("num_pairs", num_pairs)
    num_labels = num_pairs if num_labels is None else num_labels
    check_int("num_labels", num_labels)
    if num_labels < num_pairs:
        raise ValueError(f"num_labels must be >= num_pairs={num_pairs} (labels are distinct), got {num_labels}")
    check_int("cue_size", cue_size)
    cue_active = cue_size // 2 if cue_active is None else cue_active
    check_int("cue_active", cue_active)
    if cue_active > cue_size:
        raise ValueError(f"cue_active must be <= cue_size={cue_size}, got {cue_active}")
    check_int("label_channels", label_channels)
    check_int("present_steps", present_steps)
    check_int("gap_steps", gap_steps, minimum=0)
    check_int("delay_steps", delay_steps, minimum=0)
    check_int("query_steps", query_steps)
    rate = check_fraction("rate", rate, low_open=True)
    noise_rate = check_fraction("noise_rate", noise_rate)
    drop_rate = check_fraction("drop_rate", drop_rate, high_open=True)
    device = resolve_device(device)

    steps = association_length(num_pairs, present_steps, gap_steps, delay_steps, query_steps)
    channels = cue_size + num_labels * label_channels
    cues = _distinct_cues(batch_size, num_pairs, cue_size, cue_active, generator)
    labels = torch.rand(batch_size, num_labels, generator=generator).argsort(-1)[:, :num_pairs]
    query_index = torch.randint(0, num_pairs, (batch_size,), generator=generator)
    target = labels.gather(1, query_index.unsqueeze(1)).squeeze(1)

    # Which channels carry signal at each step: [B, T, C].
    label_codes = torch.zeros(batch_size, num_pairs, num_labels * label_channels)
    label_codes.view(batch_size, num_pairs, num_labels, label_channels)[
        torch.arange(batch_size).unsqueeze(1), torch.arange(num_pairs).unsqueeze(0), labels] = 1.0
    active = torch.zeros(batch_size, steps, channels)
    step_target = torch.full((batch_size, steps), -1, dtype=torch.long)
    period = present_steps + gap_steps
    for k in range(num_pairs):
        window = slice(k * period, k * period + present_steps)
        active[:, window, :cue_size] = cues[:, k].unsqueeze(1)
        active[:, window, cue_size:] = label_codes[:, k].unsqueeze(1)
        step_target[:, window] = labels[:, k].unsqueeze(1)
    query_start = steps - query_steps
    query_cue = cues[torch.arange(batch_size), query_index]
    active[:, query_start:, :cue_size] = query_cue.unsqueeze(1)
    step_target[:, query_start:] = target.unsqueeze(1)

    signal = (torch.rand(batch_size, steps, channels, generator=generator) < rate * (1.0 - drop_rate)) & (active > 0)
    noise = torch.rand(batch_size, steps, channels, generator=generator) < noise_rate
    inputs = (signal | noise).float()
    query_mask = torch.zeros(steps, dtype=torch.bool)
    query_mask[query_start:] = True
    return SpikingAssociationBatch(inputs.to(device), target.to(device), query_mask.to(device), cues.to(device),
                                   labels.to(device), query_index.to(device), step_target.to(device))
