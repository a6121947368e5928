"""Inputs shared by the property-based tests (hypothesis) of every package: the dtypes they try, and a drawn
float64 tensor turned into an input of any of them with an optional non-finite first entry.

Importable as ``property_inputs`` because pytest puts ``tests`` on ``sys.path`` (``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

import torch

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.bool]
FLOATING = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def as_input(x: torch.Tensor, dtype: torch.dtype, special: object = "none", *, bool_above: float = 0.0,
             int_scale: float = 1.0) -> torch.Tensor:
    """``x`` (float64) with its first entry set to ``special`` ("nan", "inf", a float; "none" or None: unchanged),
    cast to ``dtype``: bool as ``x > bool_above``, int64 as ``x * int_scale`` with non-finite entries 0."""
    if x.numel() and special not in ("none", None):
        x.view(-1)[0] = float(special)
    if dtype == torch.bool:
        return x > bool_above
    if dtype == torch.int64:
        return (x * int_scale).nan_to_num(0.0, 0.0, 0.0).long()
    return x.to(dtype)
