"""Binary pattern memorisation and completion, the first task of Miconi et al. (2018).

Miconi, Clune & Stanley 2018, "Differentiable plasticity: training plastic neural networks with
backpropagation" (ICML), binary pattern memorisation. Each episode the network is shown a few random
binary patterns, several times each, then a copy of one of them with half its bits erased; at the end it
must output the complete pattern. The patterns change every episode, so they cannot be stored in the
fixed weights: a plastic network stores them in its Hebbian traces.

The defaults are those of the authors' released ``simple.py``: 1,000-bit patterns, 5 patterns, each shown
twice for 6 steps with 4 zero steps after each showing, a 6-step test, half the bits erased. Model-side
details of that script (a bias unit, inputs multiplied by 20) belong to the experiment, not to the data.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from neuroplastic._checks import check_bool, check_fraction, check_int, check_tensor
from neuroplastic.tasks._common import DeviceLike, check_generator, resolve_device

__all__ = ["PatternCompletionBatch", "pattern_completion_batch", "bits_wrong", "bit_error_rate"]


class PatternCompletionBatch(NamedTuple):
    """One batch of pattern-completion episodes (all tensors batch-first, on the requested device).

    Attributes:
        inputs: ``[B, T, N]`` float, the input at each step: ±1 pattern bits while a pattern is shown,
            zeros in the gaps, the degraded test pattern (±1 kept bits, 0 erased bits) in the last
            ``test_steps`` steps. ``T = presentations * P * (present_steps + gap_steps) + test_steps``.
        target: ``[B, N]`` float, the complete test pattern (±1).
        test_mask: ``[B, N]`` bool, True at the erased bits of the test pattern.
        patterns: ``[B, P, N]`` float, the episode's patterns (±1).
        test_index: ``[B]`` long, which of the ``P`` patterns is the test pattern.
    """

    inputs: torch.Tensor
    target: torch.Tensor
    test_mask: torch.Tensor
    patterns: torch.Tensor
    test_index: torch.Tensor


def _random_signs(shape: tuple[int, ...], balanced: bool, generator: torch.Generator) -> torch.Tensor:
    """±1 float tensor; with ``balanced`` each last-axis row has floor(N/2) minus-ones, placed at random."""
    if not balanced:
        return torch.randint(0, 2, shape, generator=generator).float() * 2.0 - 1.0
    n = shape[-1]
    ranks = torch.rand(shape, generator=generator).argsort(dim=-1).argsort(dim=-1)
    return torch.where(ranks < n // 2, -1.0, 1.0)


def pattern_completion_batch(
    batch_size: int,
    *,
    pattern_size: int = 1000,
    num_patterns: int = 5,
    presentations: int = 2,
    present_steps: int = 6,
    gap_steps: int = 4,
    test_steps: int = 6,
    generator: torch.Generator,
    device: DeviceLike = None,
    erase_fraction: float = 0.5,
    balanced: bool = False,
) -> PatternCompletionBatch:
    """Draw a batch of pattern memorisation/completion episodes.

    Miconi et al. 2018, Differentiable plasticity: binary pattern memorisation and completion.

    Each episode has ``P = num_patterns`` random ±1 patterns of ``N = pattern_size`` bits. The sequence
    runs ``presentations`` cycles; each cycle shows every pattern once, in a fresh random order, for
    ``present_steps`` steps followed by ``gap_steps`` zero steps. Then one pattern chosen uniformly at
    random is shown for ``test_steps`` steps with exactly ``round(erase_fraction * N)`` of its bits,
    chosen at random, set to 0. The target is the complete pattern.

    Args:
        batch_size: number of independent episodes ``B``.
        pattern_size: bits per pattern ``N``.
        num_patterns: patterns per episode ``P``.
        presentations: how many times each pattern is shown.
        present_steps: steps per showing.
        gap_steps: zero steps after each showing (may be 0).
        test_steps: steps the degraded test pattern is shown.
        generator: CPU ``torch.Generator`` for every random draw.
        device: where the returned tensors live (default CPU).
        erase_fraction: fraction of test bits set to zero, in [0, 1].
        balanced: if True, every pattern has exactly ``N // 2`` minus-ones (as the authors' ``simple.py``);
            if False (default), bits are independent fair coin flips.

    Returns:
        A :class:`PatternCompletionBatch`; ``inputs`` is ``[B, T, N]``, ``target`` and ``test_mask`` are
        ``[B, N]``, ``patterns`` is ``[B, P, N]``, ``test_index`` is ``[B]``.
    """
    check_int("batch_size", batch_size)
    check_int("pattern_size", pattern_size)
    check_int("num_patterns", num_patterns)
    check_int("presentations", presentations)
    check_int("present_steps", present_steps)
    check_int("gap_steps", gap_steps, minimum=0)
    check_int("test_steps", test_steps)
    erase_fraction = check_fraction("erase_fraction", erase_fraction)
    check_bool("balanced", balanced)
    generator = check_generator(generator)
    device = resolve_device(device)
    b, p, n = batch_size, num_patterns, pattern_size

    patterns = _random_signs((b, p, n), balanced, generator)

    # Presentation order: a random permutation of the P patterns in every cycle.
    order = torch.rand(b, presentations, p, generator=generator).argsort(dim=-1).reshape(b, presentations * p)
    shown = patterns.gather(1, order.unsqueeze(-1).expand(-1, -1, n))  # [B, C*P, N]
    block = torch.zeros(b, presentations * p, present_steps + gap_steps, n)
    block[:, :, :present_steps] = shown.unsqueeze(2)
    learning = block.reshape(b, presentations * p * (present_steps + gap_steps), n)

    test_index = torch.randint(0, p, (b,), generator=generator)
    target = patterns[torch.arange(b), test_index]
    num_erased = int(round(erase_fraction * n))
    ranks = torch.rand(b, n, generator=generator).argsort(dim=-1).argsort(dim=-1)
    test_mask = ranks < num_erased
    degraded = target.masked_fill(test_mask, 0.0)
    inputs = torch.cat([learning, degraded.unsqueeze(1).expand(-1, test_steps, -1)], dim=1)

    return PatternCompletionBatch(
        inputs=inputs.to(device),
        target=target.to(device),
        test_mask=test_mask.to(device),
        patterns=patterns.to(device),
        test_index=test_index.to(device),
    )


def _mismatches(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    check_tensor("prediction", prediction, ("B", "N"), floating=False)
    check_tensor("target", target, tuple(prediction.shape), floating=False)
    wrong = torch.sign(prediction) != torch.sign(target)
    if mask is None:
        counted = torch.ones_like(wrong)
    else:
        check_tensor("mask", mask, tuple(prediction.shape), floating=False)
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor, got dtype {mask.dtype}")
        counted = mask
    return wrong & counted, counted


def bits_wrong(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Count, per episode, the bits whose sign differs between prediction and target.

    Miconi et al. 2018, Differentiable plasticity: the pattern-completion error measure.
    A bit is wrong when ``sign(prediction) != sign(target)``; a prediction of exactly 0 is wrong.

    Args:
        prediction: ``[B, N]`` network output (any real values; only the sign matters).
        target: ``[B, N]`` ±1 target pattern.
        mask: optional ``[B, N]`` bool; when given only bits where it is True (e.g. the erased bits,
            ``PatternCompletionBatch.test_mask``) are counted.

    Returns:
        ``[B]`` long tensor: the *number* of wrong bits (see :func:`bit_error_rate` for the fraction).
    """
    wrong, _ = _mismatches(prediction, target, mask)
    return wrong.sum(dim=-1)


def bit_error_rate(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Fraction of wrong-sign bits per episode, over all bits or over the bits selected by ``mask``.

    Miconi et al. 2018, Differentiable plasticity: the error rate plotted for pattern completion.
    Same rule as :func:`bits_wrong`, divided by the number of counted bits (``N``, or the mask's count per
    row; a row whose mask selects no bit has rate 0).

    Args:
        prediction: ``[B, N]`` network output.
        target: ``[B, N]`` ±1 target pattern.
        mask: optional ``[B, N]`` bool selecting the bits to count.

    Returns:
        ``[B]`` float tensor in [0, 1].
    """
    wrong, counted = _mismatches(prediction, target, mask)
    total = counted.sum(dim=-1).clamp(min=1)
    return wrong.sum(dim=-1).to(torch.get_default_dtype()) / total
