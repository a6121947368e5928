"""ctypes bindings of ``snn_kernels.c``: the native CPU kernels of the neurons package, built at first use.

Three groups: the fused multi-step LIF (forward and backward over a ``[B, T, N]`` sequence) and its variant
fed back its own post-synaptic traces (the fused plastic layer, :func:`neuroplastic.neurons.fused_lif.
plastic_lif_sequence`); the event-driven linear layer for spike inputs (index the nonzeros of the input once,
then add up only the weight rows they select; see :mod:`neuroplastic.neurons.spike_linear`); products of a
spike tensor with itself and with dense tensors per batch row (``s s^T``, ``s^T m``, ``s g``) in time
proportional to its nonzeros.

Built, cached and loaded by :mod:`neuroplastic._c_kernels` (the machine's C compiler, ``~/.cache/neuroplastic``,
OpenMP with up to ``torch.get_num_threads()`` threads: one per ``GRAIN`` units of work, so that small calls do
not pay for waking threads, which on a busy machine can cost a scheduler time slice each).
Where there is no compiler, the build fails, ``NEUROPLASTIC_NATIVE=0`` is set or the kernels are switched off
with :func:`use_native` (the library's one switch, shared with the plastic trace kernels), :func:`snn_kernels`
returns None and the callers run the same algorithms with PyTorch operations (same results to rounding; a
warning says why, once).
"""

from __future__ import annotations

import ctypes
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from neuroplastic import _c_kernels
from neuroplastic._c_kernels import native_enabled, use_native

__all__ = ["SNNKernels", "snn_kernels", "build_snn_kernels", "native_enabled", "use_native", "RESET_CODES"]

RESET_CODES = {"hard": 0, "soft": 1, "none": 2}
_VARIANTS = {
    torch.float32: ("snn_kernels_float", ["-DREAL=float", "-DREAL_IS_FLOAT=1"]),
    torch.float64: ("snn_kernels_double", ["-DREAL=double"]),
}


def _source() -> bytes:
    return resources.files("neuroplastic.neurons").joinpath("snn_kernels.c").read_bytes()


def build_snn_kernels(cache_dir: Path | None = None) -> dict[torch.dtype, Path]:
    """Compile the kernels (float32 and float64) unless cached; returns the libraries' paths."""
    return _c_kernels.build_libraries("snn-kernels", _source(), _VARIANTS, cache_dir)


GRAIN = 1 << 20
"""Work per thread (array elements for the LIF and indexing kernels, multiply-adds / 8 for the linear ones,
``B T^2 N / 32`` forward and ``/ 8`` backward for the plastic LIF), chosen so that each takes about as long
(the measured time per grain is in ``docs/benchmarks.md``)."""


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
        self._linear_forward.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, i32, ptr, ptr, i32]
        self._weight_grad = library.spike_linear_weight_grad
        self._weight_grad.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, ptr, i32, i32]
        self._plastic_forward = library.plastic_lif_forward
        self._plastic_forward.argtypes = ([i64, i64, i64, ptr, ptr, ptr, ptr, real, real] + [ptr] * 5
                                          + [real, i32, real, i32, real] + [ptr] * 5 + [i32])
        self._plastic_backward = library.plastic_lif_backward
        self._plastic_backward.argtypes = ([i64, i64, i64, ptr, ptr, ptr, ptr, real, real] + [ptr] * 7
                                           + [real, i32, real, i32, real, i32, i32, real, ptr, real] + [ptr] * 14
                                           + [i32])
        self._gram = library.spike_gram
        self._gram.argtypes = [i64, i64, i64, ptr, ptr, i32]
        self._outer_sum = library.spike_outer_sum
        self._outer_sum.argtypes = [i64, i64, i64, i64, ptr, ptr, ptr, i32]
        self._rows_product = library.spike_rows_product
        self._rows_product.argtypes = [i64, i64, i64, i64, ptr, ptr, ptr, i32]
        self._linear_scan = library.linear_scan
        self._linear_scan.argtypes = [i64, i64, i64, ptr, ptr, real, i32, ptr, i32]
        for function in (self._forward, self._backward, self._row_counts, self._fill_csr, self._csr_to_csc,
                         self._linear_forward, self._weight_grad, self._plastic_forward, self._plastic_backward,
                         self._gram, self._outer_sum, self._rows_product, self._linear_scan):
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

    def plastic_forward(self, drive: Tensor, mixing: Tensor | None, hebbian: tuple | None, alpha: Tensor,
                        v0: Tensor | None, y0: Tensor | None, decay: Tensor, threshold: Tensor, trace_decay: float,
                        reset: str, v_reset: float, rectifier: bool, k: float, spikes: Tensor, h: Tensor,
                        plastic: Tensor, traces: Tensor, v_out: Tensor) -> None:
        """LIF fed back its post traces (see ``snn_kernels.c``): ``drive, spikes, h, plastic, traces: [B, T, N]``;
        ``mixing: [B, T, T]``, or None and ``hebbian = (gram [B, T, T], u [B, T] or None, eta, pre_decay)`` (the
        mixing matrix built by the kernel); ``alpha, decay, threshold: [N]``; ``v0, y0, v_out: [B, N]``."""
        batch, steps, n = drive.shape
        gram, u, eta, pre_decay = hebbian if hebbian is not None else (None, None, 0.0, 0.0)
        self._plastic_forward(batch, steps, n, _ptr(drive), _ptr(mixing), _ptr(gram), _ptr(u), eta, pre_decay,
                              _ptr(alpha), _ptr(v0), _ptr(y0), _ptr(decay), _ptr(threshold), trace_decay,
                              RESET_CODES[reset], v_reset, int(rectifier), k, _ptr(spikes), _ptr(h), _ptr(plastic),
                              _ptr(traces), _ptr(v_out), _threads(batch * steps * steps * n // 32))

    def plastic_backward(self, h: Tensor, mixing: Tensor | None, hebbian: tuple | None, alpha: Tensor,
                         plastic: Tensor, traces: Tensor, v0: Tensor | None, y0: Tensor | None, decay: Tensor,
                         threshold: Tensor, trace_decay: float, reset: str, v_reset: float, rectifier: bool, k: float,
                         detach_reset: bool, surrogate: tuple[int, float], grad_spikes: Tensor | None,
                         grad_spikes_const: float, grad_traces: Tensor | None, grad_v: Tensor | None,
                         grad_drive: Tensor, grad_mixing: Tensor | None, grad_hebbian: tuple | None,
                         grad_alpha_rows: Tensor, grad_v0: Tensor | None, grad_y0: Tensor | None,
                         grad_decay_rows: Tensor, grad_threshold_rows: Tensor, grad_trace_decay_rows: Tensor) -> None:
        """Gradients of :meth:`plastic_forward`; ``grad_*_rows: [B, N]`` (per batch row, summed by the caller).

        Given ``mixing``: its gradient goes to ``grad_mixing``. In Hebbian mode: ``grad_hebbian = (grad_gram or
        None, grad_u or None, grad_eta_rows [B], grad_pre_decay_rows [B])``.
        """
        batch, steps, n = h.shape
        code, parameter = surrogate
        gram, u, eta, pre_decay = hebbian if hebbian is not None else (None, None, 0.0, 0.0)
        g_gram, g_u, g_eta, g_pre = grad_hebbian if grad_hebbian is not None else (None, None, None, None)
        self._plastic_backward(batch, steps, n, _ptr(h), _ptr(mixing), _ptr(gram), _ptr(u), eta, pre_decay,
                               _ptr(alpha), _ptr(plastic), _ptr(traces), _ptr(v0), _ptr(y0), _ptr(decay),
                               _ptr(threshold), trace_decay, RESET_CODES[reset], v_reset, int(rectifier), k,
                               int(detach_reset), code, parameter, _ptr(grad_spikes), grad_spikes_const,
                               _ptr(grad_traces), _ptr(grad_v), _ptr(grad_drive), _ptr(grad_mixing), _ptr(g_gram),
                               _ptr(g_u), _ptr(g_eta), _ptr(g_pre), _ptr(grad_alpha_rows), _ptr(grad_v0),
                               _ptr(grad_y0), _ptr(grad_decay_rows), _ptr(grad_threshold_rows),
                               _ptr(grad_trace_decay_rows), _threads(batch * steps * steps * n // 8))

    def spike_gram(self, s: Tensor, out: Tensor) -> None:
        """``out [B, T, T] = s s^T`` per batch row, ``s [B, T, I]`` mostly zeros (work ~ its nonzeros)."""
        batch, steps, n_in = s.shape
        self._gram(batch, steps, n_in, _ptr(s), _ptr(out), _threads(s.numel()))

    def spike_outer_sum(self, s: Tensor, m: Tensor, out: Tensor) -> None:
        """``out [B, I, O] = s^T m`` per batch row, ``s [B, T, I]`` mostly zeros, ``m [B, T, O]``."""
        batch, steps, n_in = s.shape
        n_out = m.shape[2]
        self._outer_sum(batch, steps, n_in, n_out, _ptr(s), _ptr(m), _ptr(out), _threads(s.numel() * n_out // 64))

    def spike_rows_product(self, s: Tensor, g: Tensor, out: Tensor) -> None:
        """``out [B, T, O] = s g`` per batch row, ``s [B, T, I]`` mostly zeros, ``g [B, I, O]``."""
        batch, steps, n_in = s.shape
        n_out = g.shape[2]
        self._rows_product(batch, steps, n_in, n_out, _ptr(s), _ptr(g), _ptr(out),
                           _threads(s.numel() * n_out // 64))

    def linear_scan(self, x: Tensor, decay: float, reverse: bool, out: Tensor, weights: Tensor | None = None) -> None:
        """``out_t = decay * out_{t-1} + w_t x_t`` along dim 1 of ``x, out [B, T, N]`` (``reverse``: from the end;
        ``weights w [T]``, None: ones)."""
        batch, steps, n = x.shape
        self._linear_scan(batch, steps, n, _ptr(x), _ptr(weights), decay, int(reverse), _ptr(out),
                          _threads(x.numel()))

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
                       out: Tensor, transposed: bool = False) -> None:
        """``out [R, O] = x W^T + bias`` with ``x`` as compressed rows and ``weight = W [O, I]`` (or, with
        ``transposed``, ``weight = W^T [I, O]``)."""
        n_in = weight.shape[0] if transposed else weight.shape[1]
        self._linear_forward(out.shape[0], n_in, out.shape[1], _ptr(row_ptr), _ptr(cols), _ptr(vals), _ptr(weight),
                             int(transposed), _ptr(bias), _ptr(out), _threads(cols.numel() * out.shape[1] // 8))

    def linear_weight_grad(self, col_ptr: Tensor, rows: Tensor, cvals: Tensor, grad_out: Tensor,
                           grad_weight: Tensor, transposed: bool = False) -> None:
        """``grad_weight [O, I] = grad_out^T x`` (or, with ``transposed``, its transpose ``[I, O]``) with ``x`` as
        compressed columns, ``grad_out [R, O]``."""
        n_in = grad_weight.shape[0] if transposed else grad_weight.shape[1]
        self._weight_grad(grad_out.shape[0], n_in, grad_out.shape[1], _ptr(col_ptr), _ptr(rows), _ptr(cvals),
                          _ptr(grad_out), _ptr(grad_weight), int(transposed),
                          _threads(rows.numel() * grad_out.shape[1] // 8))


_libraries: _c_kernels.LazyLibraries[torch.dtype, SNNKernels] = _c_kernels.LazyLibraries(
    build_snn_kernels, lambda library, dtype: SNNKernels(library, dtype), "native SNN kernels",
    "the fused LIF and the spike linear layer use PyTorch operations instead (slower, same results)")


def snn_kernels(like: Tensor) -> SNNKernels | None:
    """The kernels for ``like``'s dtype if it is a CPU float32/float64 tensor and they are enabled and built.

    Enabled unless ``NEUROPLASTIC_NATIVE=0`` or inside ``use_native(False)`` (the library's one switch,
    :func:`neuroplastic._c_kernels.use_native`, re-exported here).
    """
    if not native_enabled() or like.device.type != "cpu" or like.dtype not in _VARIANTS:
        return None
    loaded = _libraries.get()
    return None if loaded is None else loaded[like.dtype]
