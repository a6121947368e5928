"""ctypes bindings of ``trace_kernels.c``: native CPU kernels for the ``[B, N, N]`` trace operations of the fused
plastic scan.

The fused scan (:mod:`neuroplastic.plasticity.fused_scan`) spends its time in a handful of operations on
Hebbian traces: the trace update, the plastic input ``pre @ (alpha * H)`` and their backward passes. As
PyTorch operations each is several passes over ``B * N * N`` numbers (with temporaries); the C kernels in
``trace_kernels.c`` do each in one pass, row by row in L1 cache (timings: ``docs/benchmarks.md``,
``benchmarks/plastic_rnn.py``).

They are compiled at first use with the machine's C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang``)
into a cache directory (``$NEUROPLASTIC_CACHE_DIR``, else ``~/.cache/neuroplastic``), keyed by the source, the
flags, the compiler and the CPU, and loaded with :mod:`ctypes` (the machinery of :mod:`neuroplastic._c_kernels`).
Where there is no compiler, the build fails, ``NEUROPLASTIC_NATIVE=0`` is set or the kernels are switched off
with :func:`use_native` (the library's one switch, shared with the SNN kernels), :func:`native_kernels`
returns None and the fused scan uses PyTorch operations instead (same results to rounding; a warning says
why, once).

Threads: the kernels use OpenMP with ``torch.get_num_threads()`` threads. They link the OpenMP runtime by
its usual name, ``libgomp.so.1``, which PyTorch's own runtime already loaded in the process answers to, so
both share one thread pool.
"""

from __future__ import annotations

import ctypes
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from neuroplastic import _c_kernels
from neuroplastic._c_kernels import native_enabled, use_native

__all__ = ["TraceKernels", "native_kernels", "native_enabled", "use_native", "build_native"]

_REALS = {torch.float32: "float", torch.float64: "double"}


def _source() -> bytes:
    return resources.files("neuroplastic.plasticity").joinpath("trace_kernels.c").read_bytes()


def build_native(cache_dir: Path | None = None) -> dict[torch.dtype, Path]:
    """Compile the kernels (float32 and float64) unless cached; returns the shared libraries' paths.

    Raises ``RuntimeError`` when there is no C compiler or the build fails. The build and cache machinery is
    :mod:`neuroplastic._c_kernels`'s.
    """
    variants = {dtype: (f"trace_kernels_{real}", [f"-DREAL={real}"]) for dtype, real in _REALS.items()}
    return _c_kernels.build_libraries("trace-kernels", _source(), variants, cache_dir)


class TraceKernels:
    """The compiled kernels for one dtype, as functions on tensors (see ``trace_kernels.c`` for the math).

    Big tensors (``[B, I, O]`` traces and gradients, ``[I, O]`` alpha) must be contiguous CPU tensors of the
    kernels' dtype; per-row vectors ``[B, I]`` / ``[B, O]`` need a unit inner stride (rows may be strided,
    e.g. ``outputs[:, t]``). Outputs are written in place.
    """

    def __init__(self, library: ctypes.CDLL, dtype: torch.dtype) -> None:
        self.dtype = dtype
        real = ctypes.c_float if dtype == torch.float32 else ctypes.c_double
        i64, ptr, i32 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
        self._step = library.trace_step
        self._step.argtypes = [i64, i64, i64, ptr, ptr, ptr, i64, ptr, i64, ptr, i64, real, i32, ptr, i64, ptr,
                               ptr, i64, ptr, i64, ptr, i32]
        self._backward = library.trace_backward
        self._backward.argtypes = [i64, i64, i64, ptr, ptr, ptr, i64, ptr, i64, ptr, ptr, ptr,
                                   ptr, ptr, i64, ptr, i64, ptr, i64, real, i32, ptr, ptr, ptr, i32]
        for function in (self._step, self._backward):
            function.restype = None

    @staticmethod
    def _rows(x: Tensor | None) -> tuple[int | None, int]:
        """Pointer and row stride of a ``[B, K]`` vector (None -> NULL)."""
        if x is None:
            return None, 0
        if x.stride(-1) != 1:
            raise ValueError("per-row vectors must have a unit inner stride")
        return x.data_ptr(), x.stride(0)

    @staticmethod
    def _whole(x: Tensor | None) -> int | None:
        if x is None:
            return None
        if not x.is_contiguous():
            raise ValueError("trace-sized tensors must be contiguous")
        return x.data_ptr()

    def trace_step(self, trace_in: Tensor, trace_out: Tensor, pre: Tensor | None = None, delta: Tensor | None = None,
                   keep: Tensor | None = None, clip: float | None = None, next_pre: Tensor | None = None,
                   alpha: Tensor | None = None, s_out: Tensor | None = None, q_out: Tensor | None = None,
                   copy_out: Tensor | None = None) -> None:
        """``trace_out = rule(trace_in)`` (skipped if ``delta`` is None), then optionally the next plastic input.

        ``trace_out[b,i,j] = clip(trace_in[b,i,j] * keep[b,j] + pre[b,i] * delta[b,j])``; with ``next_pre``:
        ``s_out[b,j] = sum_i next_pre[b,i] alpha[i,j] trace_out[b,i,j]`` and (if given)
        ``q_out[b,j] = sum_i next_pre[b,i] trace_out[b,i,j]``; ``copy_out`` receives a copy of ``trace_out``.
        """
        batch, n_in, n_out = trace_in.shape
        if delta is None:
            trace_out = trace_in
        self._step(batch, n_in, n_out, self._whole(trace_in), self._whole(trace_out), *self._rows(pre),
                   *self._rows(delta), *self._rows(keep), 0.0 if clip is None else clip, clip is not None,
                   *self._rows(next_pre), self._whole(alpha), *self._rows(s_out), *self._rows(q_out),
                   self._whole(copy_out), torch.get_num_threads())

    def trace_backward(self, grad: Tensor, trace_mid: Tensor | None = None, pre_in: Tensor | None = None,
                       g: Tensor | None = None, alpha: Tensor | None = None, alpha_grad_parts: Tensor | None = None,
                       d_pre_in_out: Tensor | None = None, trace_prev: Tensor | None = None, pre: Tensor | None = None,
                       delta: Tensor | None = None, keep: Tensor | None = None, clip: float | None = None,
                       v_out: Tensor | None = None, d_pre_out: Tensor | None = None,
                       gdt_out: Tensor | None = None) -> None:
        """One backward step on ``grad`` (dL/dH_t, updated in place), in two optional halves.

        With ``g`` (dL/ds ``[B, O]`` of ``s_{t+1} = pre_in @ (alpha * trace_mid)``): ``grad += alpha * pre_in (x) g``,
        ``alpha_grad_parts[thread] += sum_b pre_in (x) g * trace_mid`` (``[threads, I, O]``, zero it first and
        sum it over threads at the end), ``d_pre_in_out [B, I] = sum_j alpha trace_mid g``.
        Then, with ``trace_prev`` (H_{t-1}; the update ``H_t = clip(H_{t-1} * keep + pre (x) delta)``):
        ``grad`` becomes dL/dH_{t-1} through the update, ``v_out [B, O] = sum_i pre G'``,
        ``d_pre_out [B, I] = sum_j G' delta`` and, with ``keep``, ``gdt_out [B, O] = sum_i G' H_{t-1}``; G' is
        ``grad`` masked where the clip was active (the unclipped value beyond the bound). Outputs contiguous.
        """
        batch, n_in, n_out = grad.shape
        threads = torch.get_num_threads()
        if g is not None and (alpha_grad_parts is None or alpha_grad_parts.shape[0] < threads):
            raise ValueError(f"alpha_grad_parts needs one [I, O] part per thread ({threads})")
        self._backward(batch, n_in, n_out, self._whole(grad), self._whole(trace_mid), *self._rows(pre_in),
                       *self._rows(g), self._whole(alpha), self._whole(alpha_grad_parts), self._whole(d_pre_in_out),
                       self._whole(trace_prev), *self._rows(pre), *self._rows(delta), *self._rows(keep),
                       0.0 if clip is None else clip, clip is not None, self._whole(v_out), self._whole(d_pre_out),
                       self._whole(gdt_out), threads)


_libraries: _c_kernels.LazyLibraries[torch.dtype, TraceKernels] = _c_kernels.LazyLibraries(
    build_native, lambda library, dtype: TraceKernels(library, dtype), "native trace kernels",
    "the fused plastic scan uses PyTorch operations instead (slower, same results)")


def native_kernels(like: Tensor) -> TraceKernels | None:
    """The kernels for ``like``'s dtype if it is a CPU float32/float64 tensor and they are enabled and built.

    Enabled unless ``NEUROPLASTIC_NATIVE=0`` or inside ``use_native(False)`` (the library's one switch,
    :func:`neuroplastic._c_kernels.use_native`, re-exported here).
    """
    if not native_enabled() or like.device.type != "cpu" or like.dtype not in _REALS:
        return None
    loaded = _libraries.get()
    return None if loaded is None else loaded[like.dtype]
