"""Next-character prediction on two symbol sequences, an easy and a hard one (Miconi 2016).

Miconi 2016, "Neural networks with differentiable structure" (arXiv 1606.06216), sections 3-4: networks
that grow should end larger on a hard sequence than on an easy one. The alphabet is {a, b, (, )}
(``ALPHABET``; batches hold character indices into it):

- easy task: the repeated sequence ``ababab...``, each window at a random phase (:func:`easy_batch`);
- hard task: groups of ``GROUP`` = 6 letters from {a, b} in parentheses, ``(aabbab)(babaab)...``: each group
  is the reverse of the previous one with the letter at one uniformly random position changed to the other
  letter (:func:`hard_batch`).

The best possible predictor of the hard task knows the previous group and where the group stands, and is
only unsure of where the change falls: ``log(6)`` nats per 8-character group, 0.224 nats/char
(``HARD_FLOOR``); a predictor that counts but remembers nothing pays ``ln 2`` on each of the 6 letters,
0.520 nats/char (``COUNTING_LOSS``).

Differences from the paper: its easy task is groups of one or more ``ab`` in parentheses with a random
number of repetitions; here it is ``abab...``. Each window is cut from its own stream at a random offset
(the paper trains on consecutive windows of one long text).

Every random draw takes an optional CPU ``torch.Generator``; results are int64 ``[batch, length]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_int

__all__ = ["ALPHABET", "TASKS", "GROUP", "HARD_FLOOR", "COUNTING_LOSS", "easy_batch", "hard_batch", "task_batch"]

ALPHABET = "ab()"
OPEN, CLOSE = ALPHABET.index("("), ALPHABET.index(")")
TASKS = ("easy", "hard")
GROUP = 6
HARD_FLOOR = math.log(GROUP) / (GROUP + 2)
"""The hard task's lowest possible cross-entropy, nats per character."""
COUNTING_LOSS = GROUP * math.log(2) / (GROUP + 2)
"""The hard task's cross-entropy for a predictor that counts but remembers no letter, nats per character."""


def easy_batch(batch: int, length: int, generator: torch.Generator | None = None) -> Tensor:
    """``[batch, length]`` windows of ``abab...`` (character indices into ``ALPHABET``), each at a random phase."""
    check_int("batch", batch)
    check_int("length", length)
    phase = torch.randint(0, 2, (batch, 1), generator=generator)
    return (phase + torch.arange(length)) % 2


def hard_batch(batch: int, length: int, generator: torch.Generator | None = None, group: int = GROUP) -> Tensor:
    """``[batch, length]`` windows of the hard task, each from its own stream and at a random offset.

    A stream is ``(g_1)(g_2)...`` with ``g_1`` random letters from {a, b} and ``g_{i+1}`` the reverse of ``g_i``
    with the letter at one uniformly random position changed (a <-> b). Character indices into ``ALPHABET``.
    """
    check_int("batch", batch)
    check_int("length", length)
    check_int("group", group)
    width = group + 2
    count = length // width + 2
    first = torch.randint(0, 2, (batch, 1, group), generator=generator)
    changes = torch.randint(0, group, (batch, count), generator=generator)
    # Without a loop: in the frame that undoes the reversals (odd groups read backwards), each group is the
    # previous one with one letter changed, so group g is the first one XOR the parity of the changes so far.
    odd = torch.arange(1, count + 1) % 2 == 1
    position = torch.where(odd, group - 1 - changes, changes)
    flips = torch.zeros(batch, count, group, dtype=torch.long).scatter_(2, position.unsqueeze(-1), 1)
    unreversed = (first + flips.cumsum(dim=1)) % 2
    body = torch.where(odd.view(1, count, 1), unreversed.flip(-1), unreversed)
    stream = torch.cat([torch.full((batch, count, 1), OPEN), body, torch.full((batch, count, 1), CLOSE)], dim=-1)
    stream = stream.reshape(batch, count * width)
    offset = torch.randint(0, width, (batch, 1), generator=generator)
    return stream.gather(1, offset + torch.arange(length))


def task_batch(task: str, batch: int, length: int, generator: torch.Generator | None = None) -> Tensor:
    """``[batch, length]`` windows of ``task`` ("easy" or "hard")."""
    check_choice("task", task, TASKS)
    return easy_batch(batch, length, generator) if task == "easy" else hard_batch(batch, length, generator)
