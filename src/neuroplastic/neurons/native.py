"""Native CPU kernels of the neurons package (``snn_kernels.c``), built at first use.

Two groups: the fused multi-step LIF (forward and backward over a ``[B, T, N]`` sequence) and the
event-driven linear layer for spike inputs (index the nonzeros of the input once, then add up only the
weight rows they select; see :mod:`neuroplastic.neurons.spike_linear`).

Built, cached and loaded by :mod:`neuroplastic._native` (the machine's C compiler, ``~/.cache/neuroplastic``,
OpenMP with up to ``torch.get_num_threads()`` threads: one per ``GRAIN`` units of work, about a millisecond, so
that small calls do not pay for waking threads, which on a busy machine can cost a scheduler time slice each).
Where there is no compiler, the build fails, or
``NEUROPLASTIC_NATIVE=0`` is set, :func:`snn_kernels` returns None and the callers run the same
algorithms with PyTorch operations (same results to rounding; a warning says why, once).
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from neuroplastic import _native

__all__ = ["SNNKernels", "snn_kernels", "build_snn_kernels", "use_native", "RESET_CODES"]

RESET_CODES = {"hard": 0, "soft": 1, "none": 2}
_VARIANTS = {
    torch.float32: ("snn_kernels_float", ["-DREAL=float", "-DREAL_IS_FLOAT=1"]),
    torch.float64: ("snn_kernels_double", ["-DREAL=double"]),
}
_enabled = _native.env_enabled()


def _source() -> bytes:
    return resources.files("neuroplastic.neurons").joinpath("snn_kernels.c").read_bytes()


def build_snn_kernels(cache_dir: Path | None = None) -> dict[torch.dtype, Path]:
    """Compile the kernels (float32 and float64) unless cached; returns the libraries' paths."""
    return _native.build_libraries("snn-kernels", _source(), _VARIANTS, cache_dir)


GRAIN = 1 << 20
"""Work per thread (array elements for the LIF and indexing kernels, multiply-adds / 8 for the linear ones)."""


def _threads(work: int) -> int:
    """Threads for a call of ``work`` units: ``torch.get_num_threads()`` at most, one per ``GRAIN``."""
    return max(1, min(torch.get_num_threads(), work // GRAIN))


def _ptr(x: Tensor | None) -> int | None:
    if x is None:
        return None
    if not x.is_contiguous():
        raise ValueError("the SNN kernels need contiguous tensors")
    return x.data_ptr()


class SNNKernels:
    """The compiled kernels for one dtype, as functions on contiguous CPU tensors (outputs written in place)."""

    def __init__(self, library: ctypes.CDLL, dtype: torch.dtype) -> None:
        self.dtype = dtype
        real = ctypes.c_float if dtype == torch.float32 else ctypes.c_double
        i64, ptr, i32 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
        self._forward = library.lif_forward
        self._forward.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, i32, real, i32, real, ptr, ptr, ptr, i32]
        self._backward = library.lif_backward
        self._backward.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, i32, real, i32, real, i32, i32, real, ptr,
                                   real, ptr, ptr, ptr, ptr, ptr, i32]
        self._row_counts = library.spike_row_counts
        self._row_counts.argtypes = [i64, i64, ptr, ptr, i32]
        self._fill_csr = library.spike_fill_csr
        self._fill_csr.argtypes = [i64, i64, ptr, ptr, ptr, ptr, i32]
        self._csr_to_csc = library.spike_csr_to_csc
        self._csr_to_csc.argtypes = [i64, i64, ptr, ptr, ptr, ptr, ptr, ptr]
        self._linear_forward = library.spike_linear_forward
        self._linear_forward.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, ptr, ptr, i32]
        self._weight_grad = library.spike_linear_weight_grad
        self._weight_grad.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, ptr, i32]
        for function in (self._forward, self._backward, self._row_counts, self._fill_csr, self._csr_to_csc,
                         self._linear_forward, self._weight_grad):
            function.restype = None

    def forward(self, x: Tensor, v0: Tensor | None, decay: Tensor, threshold: Tensor, reset: str, v_reset: float,
                rectifier: bool, k: float, spikes: Tensor, h: Tensor, v_out: Tensor) -> None:
        """``x, spikes, h: [B, T, N]``; ``v0, v_out: [B, N]``; ``decay, threshold: [N]``."""
        batch, steps, n = x.shape
        self._forward(batch, steps, n, _ptr(x), _ptr(v0), _ptr(decay), _ptr(threshold), RESET_CODES[reset],
                      v_reset, int(rectifier), k, _ptr(spikes), _ptr(h), _ptr(v_out), _threads(x.numel()))

    def backward(self, h: Tensor, v0: Tensor | None, decay: Tensor, threshold: Tensor, reset: str, v_reset: float,
                 rectifier: bool, k: float, detach_reset: bool, surrogate: tuple[int, float],
                 grad_spikes: Tensor | None, grad_v: Tensor | None, grad_x: Tensor, grad_v0: Tensor | None,
                 grad_decay_rows: Tensor, grad_threshold_rows: Tensor, grad_spikes_const: float = 0.0) -> None:
        """Gradients of a forward pass whose pre-spike membrane was ``h``; ``grad_*_rows: [B, N]`` (per row).

        ``grad_spikes`` None means that every spike's gradient is ``grad_spikes_const``.
        """
        batch, steps, n = h.shape
        code, parameter = surrogate
        self._backward(batch, steps, n, _ptr(h), _ptr(v0), _ptr(decay), _ptr(threshold), RESET_CODES[reset],
                       v_reset, int(rectifier), k, int(detach_reset), code, parameter, _ptr(grad_spikes),
                       grad_spikes_const, _ptr(grad_v), _ptr(grad_x), _ptr(grad_v0), _ptr(grad_decay_rows),
                       _ptr(grad_threshold_rows), _threads(h.numel()))


    def row_counts(self, x: Tensor, counts: Tensor) -> None:
        """``counts[r]`` = number of nonzeros in row ``r`` of ``x [R, I]`` (``counts``: int64 ``[R]``)."""
        self._row_counts(x.shape[0], x.shape[1], _ptr(x), _ptr(counts), _threads(x.numel() // 4))

    def fill_csr(self, x: Tensor, row_ptr: Tensor, cols: Tensor, vals: Tensor) -> None:
        """Compressed rows of ``x``: ``row_ptr`` int64 ``[R + 1]`` given; fills ``cols`` (int32) and ``vals``."""
        self._fill_csr(x.shape[0], x.shape[1], _ptr(x), _ptr(row_ptr), _ptr(cols), _ptr(vals),
                       _threads(x.numel()))

    def csr_to_csc(self, n_rows: int, n_cols: int, row_ptr: Tensor, cols: Tensor, vals: Tensor, col_ptr: Tensor,
                   rows: Tensor, cvals: Tensor) -> None:
        """Compressed columns from compressed rows (``col_ptr`` int64 ``[I + 1]``, ``rows`` int32)."""
        self._csr_to_csc(n_rows, n_cols, _ptr(row_ptr), _ptr(cols), _ptr(vals), _ptr(col_ptr), _ptr(rows),
                         _ptr(cvals))

    def linear_forward(self, row_ptr: Tensor, cols: Tensor, vals: Tensor, weight: Tensor, bias: Tensor | None,
                       out: Tensor) -> None:
        """``out [R, O] = x W^T + bias`` with ``x`` as compressed rows and ``weight = W [O, I]``."""
        self._linear_forward(out.shape[0], weight.shape[1], out.shape[1], _ptr(row_ptr), _ptr(cols), _ptr(vals),
                             _ptr(weight), _ptr(bias), _ptr(out), _threads(cols.numel() * out.shape[1] // 8))

    def linear_weight_grad(self, col_ptr: Tensor, rows: Tensor, cvals: Tensor, grad_out: Tensor,
                           grad_weight: Tensor) -> None:
        """``grad_weight [O, I] = grad_out^T x`` with ``x`` as compressed columns, ``grad_out [R, O]``."""
        self._weight_grad(grad_out.shape[0], grad_weight.shape[1], grad_out.shape[1], _ptr(col_ptr), _ptr(rows),
                          _ptr(cvals), _ptr(grad_out), _ptr(grad_weight),
                          _threads(rows.numel() * grad_out.shape[1] // 8))


_libraries: _native.LazyLibraries[torch.dtype, SNNKernels] = _native.LazyLibraries(
    build_snn_kernels, lambda library, dtype: SNNKernels(library, dtype), "native SNN kernels",
    "the fused LIF and the spike linear layer use PyTorch operations instead (slower, same results)")


def snn_kernels(like: Tensor) -> SNNKernels | None:
    """The kernels for ``like``'s dtype if it is a CPU float32/float64 tensor and they are enabled and built."""
    if not _enabled or like.device.type != "cpu" or like.dtype not in _VARIANTS:
        return None
    loaded = _libraries.get()
    return None if loaded is None else loaded[like.dtype]


@contextlib.contextmanager
def use_native(enabled: bool) -> Iterator[None]:
    """Within the block, allow (True) or forbid (False) the native SNN kernels; e.g. to compare the paths."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous
