"""A pool of reusable CPU buffers for the large per-sequence tensors of the fused plastic scan.

A fused plastic sequence needs tens of megabytes of ``[B, N, N]`` buffers per call (chunk boundaries,
recomputed traces, gradients). Fresh CPU memory is expensive: each new page is faulted in and zeroed by
the kernel, which can cost as much as all the arithmetic of the backward pass (figures in
``docs/benchmarks.md``, "Native kernels and fused paths").
CUDA has a caching allocator; CPU PyTorch does not, so the fused scan takes its buffers from here.

Safety: a pooled buffer is handed out as a new tensor that aliases its storage (not a view, so autograd
treats it as any other tensor). The buffer counts as in use as long as any tensor shares its storage,
wherever that reference lives (a Python variable, a tensor saved for backward, a view of it), so it is
never handed out twice. It is reused only once every such tensor is gone.

The pool keeps at most :func:`workspace_limit` bytes (default 1 GiB); beyond that, buffers are plain
allocations. :func:`clear_workspace` frees what is idle. Off the CPU, or while ``torch.compile`` traces,
:func:`take` is plain ``torch.empty``.
"""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor

from neuroplastic._checks import check_int

__all__ = ["take", "clear_workspace", "workspace_limit", "set_workspace_limit", "workspace_bytes"]

_lock = threading.Lock()
_buffers: list[Tensor] = []
_limit = 1 << 30


def _storage_references(tensor: Tensor) -> int:
    return torch._C._storage_Use_Count(tensor.untyped_storage()._cdata)


def _probe_idle_count() -> int | None:
    """References to a storage that only the pool holds, as counted by :func:`_storage_references`."""
    try:
        return _storage_references(torch.empty(1))
    except (AttributeError, RuntimeError, TypeError):  # private API gone: no pooling
        return None


_IDLE = _probe_idle_count()


def _idle(buffer: Tensor) -> bool:
    return _storage_references(buffer) == _IDLE


def _is_compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


def take(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """An uninitialised tensor of ``shape``, reusing an idle pooled CPU buffer of that size when there is one."""
    device = torch.device(device)
    if device.type != "cpu" or _IDLE is None or _is_compiling():
        return torch.empty(shape, dtype=dtype, device=device)
    numel = math.prod(shape)
    with _lock:
        for buffer in _buffers:
            if buffer.dtype == dtype and buffer.numel() == numel and _idle(buffer):
                return torch.empty(0, dtype=dtype).set_(buffer.untyped_storage(), 0, shape)
        buffer = torch.empty(numel, dtype=dtype)
        if workspace_bytes() + buffer.nbytes > _limit:
            _evict(buffer.nbytes)
        if workspace_bytes() + buffer.nbytes <= _limit:
            _buffers.append(buffer)
        return torch.empty(0, dtype=dtype).set_(buffer.untyped_storage(), 0, shape)


def _evict(needed: int) -> None:
    """Drop idle buffers, largest first, until ``needed`` more bytes fit under the limit."""
    for buffer in sorted((b for b in _buffers if _idle(b)), key=lambda b: b.nbytes, reverse=True):
        if workspace_bytes() + needed <= _limit:
            return
        _buffers.remove(buffer)


def workspace_bytes() -> int:
    """Bytes held by the pool (idle and in use)."""
    return sum(buffer.nbytes for buffer in _buffers)


def workspace_limit() -> int:
    """The most bytes the pool keeps."""
    return _limit


def set_workspace_limit(limit_bytes: int) -> None:
    """Keep at most ``limit_bytes`` in the pool (0 turns pooling off); idle buffers beyond it are freed."""
    global _limit
    check_int("limit_bytes", limit_bytes, minimum=0)
    with _lock:
        _limit = limit_bytes
        _evict(0)


def clear_workspace() -> None:
    """Empty the pool: idle buffers are freed now, buffers in use when their last user lets go."""
    with _lock:
        _buffers.clear()
