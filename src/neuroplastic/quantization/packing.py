"""Bit packing and exact integer matrix products of binary and bit-plane operands (XNOR/AND and popcount).

Hubara, Courbariaux, Soudry, El-Yaniv & Bengio 2017, "Quantized neural networks: training neural networks
with low precision weights and activations" (JMLR), Section 5: with weights and activations in {-1, +1}, a
dot product is ``K - 2 popcount(xnor-mismatches)``, 32 (here 64) multiply-adds per instruction; a k-bit input
is a weighted sum of k bit-planes, ``s = sum_p 2^p (x_p . w)``.

Layout: a row of K values is packed into ``words(K) = 2 ceil(K / 64)`` int32 words (an even number, so that
the C kernels read them as 64-bit words): bit j of 32-bit word w is feature ``32 w + j``; the padding bits of
the last word are 0. A float32 weight row of K values thus takes ``4 K`` bytes and its packed form
``~K / 8`` bytes (32x less, up to the padding).

- signs (:func:`pack_signs`): bit 1 for +1 (``x >= 0``, so sign(0) = +1 as in :func:`~neuroplastic.quantization.
  binarize`), 0 for -1; ``[rows, K] -> [rows, words]``.
- bit-planes (:func:`pack_levels`): integer levels ``l in {0, ..., 2^P - 1}`` -> ``[rows, P, words]``, plane p
  holding bit p of l.

Products (exact integers, int32; ``x``, ``w`` packed rows, ``w`` in {-1, +1}):

    binary_matmul:    out[b, o] = sum_j x[b, j] w[o, j] = K - 2 popcount(x[b] XOR w[o])
    bitplane_matmul:  out[b, o] = sum_j l[b, j] w[o, j] = sum_p 2^p (2 popcount(x_p[b] AND w[o]) - popcount(x_p[b]))

They run in the C kernels of ``binary_kernels.c`` (compiled at first use by :mod:`neuroplastic._c_kernels`,
``-march=native``: the CPU's popcount, vectorised where it has AVX-512 VPOPCNTQ; OpenMP over output rows),
or, without a compiler, with ``NEUROPLASTIC_NATIVE=0`` or inside ``use_native(False)``, in PyTorch (XOR/AND
of int32 words and a 256-entry popcount table over their bytes): the same integers either way.
"""

from __future__ import annotations

import ctypes
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from neuroplastic import _c_kernels
from neuroplastic._c_kernels import native_enabled
from neuroplastic._checks import check_int

__all__ = ["packed_words", "pack_signs", "pack_levels", "binary_matmul", "bitplane_matmul", "BinaryKernels",
           "binary_kernels", "build_binary_kernels", "MAX_PLANES"]

MAX_PLANES = 8
"""The most bit-planes a packed activation may have (8-bit inputs, as the paper's first layer)."""
GRAIN = 1 << 20
"""64-bit words of popcount work per OpenMP thread."""
_VARIANTS = {"default": ("binary_kernels", [])}


def _source() -> bytes:
    return resources.files("neuroplastic.quantization").joinpath("binary_kernels.c").read_bytes()


def build_binary_kernels(cache_dir: Path | None = None) -> dict[str, Path]:
    """Compile ``binary_kernels.c`` unless cached; returns ``{"default": path}``."""
    return _c_kernels.build_libraries("binary-kernels", _source(), _VARIANTS, cache_dir)


def _threads(work: int) -> int:
    return max(1, min(torch.get_num_threads(), work // GRAIN))


class BinaryKernels:
    """The compiled kernels as functions on contiguous CPU tensors (outputs written in place)."""

    def __init__(self, library: ctypes.CDLL, key: str = "default") -> None:
        i64, ptr, i32 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
        self._pack = library.pack_rows
        self._pack.argtypes = [i64, i64, i64, i32, ptr, ptr, i32]
        self._pack.restype = None
        self._binary = library.binary_matmul
        self._binary.argtypes = [i64, i64, i64, i64, ptr, ptr, ptr, i32]
        self._binary.restype = None
        self._planes = library.bitplane_matmul
        self._planes.argtypes = [i64, i64, i64, i32, ptr, ptr, ptr, i32]
        self._planes.restype = i32

    def pack(self, x: Tensor, planes: int, out: Tensor) -> None:
        """``x: [rows, K]`` float32; ``out: [rows, max(planes, 1), words]`` int32 (``planes = 0``: signs)."""
        rows, k = x.shape
        self._pack(rows, k, out.shape[-1] // 2, planes, x.data_ptr(), out.data_ptr(), _threads(rows * k // 64))

    def binary(self, x: Tensor, w: Tensor, k: int, out: Tensor) -> None:
        """``x: [B, words]``, ``w: [N, words]`` int32; ``out: [B, N]`` int32."""
        words = w.shape[1] // 2
        self._binary(x.shape[0], w.shape[0], words, k, x.data_ptr(), w.data_ptr(), out.data_ptr(),
                     _threads(x.shape[0] * w.shape[0] * words))

    def planes(self, x: Tensor, w: Tensor, out: Tensor) -> None:
        """``x: [B, P, words]``, ``w: [N, words]`` int32; ``out: [B, N]`` int32."""
        words = w.shape[1] // 2
        status = self._planes(x.shape[0], w.shape[0], words, x.shape[1], x.data_ptr(), w.data_ptr(), out.data_ptr(),
                              _threads(x.shape[0] * w.shape[0] * words * x.shape[1]))
        if status:
            raise MemoryError("bitplane_matmul: out of memory")


_libraries = _c_kernels.LazyLibraries(build_binary_kernels, BinaryKernels, what="the binary (popcount) C kernels",
                                      fallback="falling back to PyTorch bit operations")


def binary_kernels(like: Tensor) -> BinaryKernels | None:
    """The compiled kernels if ``like`` is on the CPU and native kernels are enabled and built, else None.

    Enabled unless ``NEUROPLASTIC_NATIVE=0`` or inside :func:`neuroplastic._c_kernels.use_native` ``(False)``.
    """
    if not native_enabled() or like.device.type != "cpu":
        return None
    loaded = _libraries.get()
    return None if loaded is None else loaded["default"]


def packed_words(k: int) -> int:
    """Number of int32 words of a packed row of ``k`` values: ``2 ceil(k / 64)``."""
    k = check_int("k", k)
    return 2 * ((k + 63) // 64)


def _check_rows(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.dim() != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape [rows, K] with K >= 1, got {list(x.shape)}")
    return x



def _pack_bits_torch(bits: Tensor) -> Tensor:
    """``bits: [..., K]`` bool -> ``[..., words(K)]`` int32 (bit j of word w: feature 32 w + j)."""
    k = bits.shape[-1]
    padded = torch.nn.functional.pad(bits.to(torch.int64), (0, 32 * packed_words(k) - k))
    shifts = torch.arange(32, device=bits.device, dtype=torch.int64)
    words = (padded.unflatten(-1, (-1, 32)) << shifts).sum(-1)
    return torch.where(words >= 2 ** 31, words - 2 ** 32, words).to(torch.int32)


def pack_signs(x: Tensor) -> Tensor:
    """Pack the signs of ``x: [rows, K]`` (float): bit 1 where ``x >= 0`` (+1), 0 elsewhere (-1).

    Returns ``[rows, packed_words(K)]`` int32, padding bits 0. NaN is refused.
    """
    x = _check_rows("x", x)
    if torch.isnan(x).any():
        raise ValueError("x must not contain NaN (its sign is undefined)")
    kernels = binary_kernels(x)
    if kernels is not None:
        out = torch.empty(x.shape[0], 1, packed_words(x.shape[1]), dtype=torch.int32)
        kernels.pack(x.detach().to(torch.float32).contiguous(), 0, out)
        return out[:, 0]
    return _pack_bits_torch(x >= 0)


def pack_levels(levels: Tensor, bits: int) -> Tensor:
    """Pack integer ``levels: [rows, K]`` in ``{0, ..., 2^bits - 1}`` (as floats) into bit-planes.

    Returns ``[rows, bits, packed_words(K)]`` int32: plane p holds bit p of each level (``l = sum_p 2^p l_p``).
    ``bits`` in 1..8; non-integer or out-of-range levels are refused.
    """
    levels = _check_rows("levels", levels)
    bits = check_int("bits", bits, minimum=1, maximum=MAX_PLANES)
    if not torch.equal(levels, levels.round()) or levels.min() < 0 or levels.max() > 2 ** bits - 1:
        raise ValueError(f"levels must be integers in [0, {2 ** bits - 1}] for bits={bits}")
    kernels = binary_kernels(levels)
    if kernels is not None:
        out = torch.empty(levels.shape[0], bits, packed_words(levels.shape[1]), dtype=torch.int32)
        kernels.pack(levels.detach().to(torch.float32).contiguous(), bits, out)
        return out
    integers = levels.to(torch.int64)
    planes = torch.stack([(integers >> p) & 1 for p in range(bits)], dim=1).bool()
    return _pack_bits_torch(planes)


_POPCOUNT: dict[torch.device, Tensor] = {}


def _popcount_sum(words: Tensor) -> Tensor:
    """``words: [..., W]`` int32 -> ``[...]`` int64: the number of set bits per row (256-entry byte table)."""
    table = _POPCOUNT.get(words.device)
    if table is None:
        table = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int64, device=words.device)
        _POPCOUNT[words.device] = table
    as_bytes = words.contiguous().view(torch.uint8)
    return table[as_bytes.to(torch.int64)].sum(-1)


def _check_packed(name: str, x: object, dims: int) -> Tensor:
    if not isinstance(x, Tensor) or x.dtype != torch.int32:
        raise TypeError(f"{name} must be an int32 tensor of packed words, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.dim() != dims or x.shape[-1] % 2:
        raise ValueError(f"{name} must have {dims} dimensions and an even number of words (see packed_words), "
                         f"got shape {list(x.shape)}")
    return x


def _chunk(batch: int, words: int) -> int:
    return max(1, (1 << 22) // max(1, batch * words))


def binary_matmul(x: Tensor, w: Tensor, k: int) -> Tensor:
    """``sum_j x[b, j] w[o, j]`` for packed signs: ``x: [B, W]``, ``w: [N, W]`` int32 -> ``[B, N]`` int32.

    ``K - 2 popcount(x XOR w)``, exactly the integer the float product of the ±1 values gives; ``k`` is the
    number of features K (``packed_words(k) == W``).
    """
    x, w = _check_packed("x", x, 2), _check_packed("w", w, 2)
    k = check_int("k", k)
    if x.shape[1] != w.shape[1] or packed_words(k) != w.shape[1]:
        raise ValueError(f"x {list(x.shape)} and w {list(w.shape)} must both have packed_words(k={k}) = "
                         f"{packed_words(k)} words")
    kernels = binary_kernels(x)
    if kernels is not None and w.device.type == "cpu":
        out = torch.empty(x.shape[0], w.shape[0], dtype=torch.int32)
        kernels.binary(x.contiguous(), w.contiguous(), k, out)
        return out
    step = _chunk(x.shape[0], w.shape[1])
    parts = [k - 2 * _popcount_sum(x[:, None, :] ^ w[None, start:start + step, :])
             for start in range(0, w.shape[0], step)]
    return torch.cat(parts, dim=1).to(torch.int32)


def bitplane_matmul(x: Tensor, w: Tensor) -> Tensor:
    """``sum_j l[b, j] w[o, j]`` for bit-plane levels ``x: [B, P, W]``, packed signs ``w: [N, W]`` -> int32 ``[B, N]``.

    ``sum_p 2^p (2 popcount(x_p AND w) - popcount(x_p))``: exactly the integer the float product of the levels
    and the ±1 weights gives.
    """
    x, w = _check_packed("x", x, 3), _check_packed("w", w, 2)
    if x.shape[2] != w.shape[1] or not 1 <= x.shape[1] <= MAX_PLANES:
        raise ValueError(f"x {list(x.shape)} must have 1..{MAX_PLANES} planes of as many words as w {list(w.shape)}")
    kernels = binary_kernels(x)
    if kernels is not None and w.device.type == "cpu":
        out = torch.empty(x.shape[0], w.shape[0], dtype=torch.int32)
        kernels.planes(x.contiguous(), w.contiguous(), out)
        return out
    weights = 2 ** torch.arange(x.shape[1], device=x.device, dtype=torch.int64)
    ones = (_popcount_sum(x) * weights).sum(-1)  # [B]
    step = _chunk(x.shape[0] * x.shape[1], w.shape[1])
    parts = [(_popcount_sum(x[:, None, :, :] & w[None, start:start + step, None, :]) * weights).sum(-1)
             for start in range(0, w.shape[0], step)]
    return (2 * torch.cat(parts, dim=1) - ones[:, None]).to(torch.int32)
