"""The recurrent parity task: every bit sequence of a given length, labelled by its parity (Lehman et al. 2018).

Lehman, Chen, Clune & Stanley 2018, "Safe mutations for deep and recurrent neural networks through output
gradients" (recurrent parity experiment): a recurrent network reads the ``2**4 = 16`` sequences of 4 bits one bit
per time step and must classify each by its parity, ``y = (b_1 + b_2 + b_3 + b_4) mod 2``; fitness is minus the NLL
loss over the 16 sequences, and the task is solved when all 16 are classified correctly.

The paper's reference code (uber-research/safemutations, ``recurrent.py``: ``make_bitwise(4, parity)``) labels
each sequence by its parity at the END only (one label per sequence, the network's output after the last bit);
that is ``targets="final"`` here, the default. ``targets="every_step"`` labels every prefix instead,
``y_t = (b_1 + ... + b_t) mod 2``, an easier variant with a denser signal.

Sequence ``i`` is the binary expansion of ``i``, most significant bit first (as the reference's
``"{0:04b}".format(i)``): ``inputs[i, t, 0]`` is bit ``num_bits - 1 - t`` of ``i``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from neuroplastic._checks import check_choice, check_int

__all__ = ["PARITY_TARGETS", "ParityData", "parity_data"]

PARITY_TARGETS = ("final", "every_step")


class ParityData(NamedTuple):
    """All bit sequences of one length: ``inputs [2**n, n, 1]`` (0.0 / 1.0) and int64 ``targets``: ``[2**n]``
    (parity of the whole sequence) or ``[2**n, n]`` (parity of each prefix)."""

    inputs: Tensor
    targets: Tensor


def parity_data(
    num_bits: int = 4,
    *,
    targets: str = "final",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> ParityData:
    """Every sequence of ``num_bits`` bits and its parity, the data set of the recurrent parity task.

    ``inputs[i, t, 0] = bit (num_bits - 1 - t) of i`` (most significant bit first);
    ``targets="final"``: ``targets[i] = sum_t inputs[i, t, 0] mod 2``, shape ``[2**num_bits]``;
    ``targets="every_step"``: ``targets[i, t] = sum_{s <= t} inputs[i, s, 0] mod 2``, ``[2**num_bits, num_bits]``.

    Args:
        num_bits: sequence length, 1 to 16 (the paper: 4, so 16 sequences).
        targets: "final" (the paper's reference code) or "every_step".
        dtype: floating dtype of the inputs; targets are int64.
        device: where the tensors are made.
    """
    check_int("num_bits", num_bits, minimum=1, maximum=16)
    check_choice("targets", targets, PARITY_TARGETS)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    numbers = torch.arange(2**num_bits, device=device)
    shifts = torch.arange(num_bits - 1, -1, -1, device=device)
    bits = (numbers[:, None] >> shifts) & 1  # [2**n, n], most significant first
    prefix_parity = bits.cumsum(1) % 2
    labels = prefix_parity[:, -1] if targets == "final" else prefix_parity
    return ParityData(bits.to(dtype).unsqueeze(-1), labels.to(torch.int64))
