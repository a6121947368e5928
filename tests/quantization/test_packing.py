"""Packed kernels: exactly the integers of the float product on odd sizes, C and PyTorch paths alike."""

from __future__ import annotations

import pytest
import torch

from neuroplastic._c_kernels import use_native
from neuroplastic.quantization import (
    binary_kernels,
    binary_matmul,
    bitplane_matmul,
    pack_levels,
    pack_signs,
    packed_words,
)

SIZES = [(1, 1, 1), (3, 5, 31), (4, 7, 33), (2, 9, 64), (5, 3, 65), (6, 17, 200), (1, 4, 1001)]
PATHS = [pytest.param(True, id="native"), pytest.param(False, id="torch")]


def _signs(shape, generator):
    return torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)


def _native_or_skip(native):
    if native and binary_kernels(torch.zeros(1)) is None:
        pytest.skip("no C compiler: the native kernels are unavailable")


@pytest.mark.parametrize("native", PATHS)
@pytest.mark.parametrize("batch, n_out, k", SIZES)
def test_binary_matmul_equals_float_product(native, batch, n_out, k):
    _native_or_skip(native)
    generator = torch.Generator().manual_seed(k)
    x, w = _signs((batch, k), generator), _signs((n_out, k), generator)
    with use_native(native):
        out = binary_matmul(pack_signs(x), pack_signs(w), k)
    assert out.dtype == torch.int32
    assert torch.equal(out, (x.double() @ w.double().T).to(torch.int32))


@pytest.mark.parametrize("native", PATHS)
@pytest.mark.parametrize("bits", [1, 2, 3, 8])
@pytest.mark.parametrize("batch, n_out, k", SIZES[1:5])
def test_bitplane_matmul_equals_float_product(native, bits, batch, n_out, k):
    _native_or_skip(native)
    generator = torch.Generator().manual_seed(10 * k + bits)
    levels = torch.randint(0, 2 ** bits, (batch, k), generator=generator).float()
    w = _signs((n_out, k), generator)
    with use_native(native):
        out = bitplane_matmul(pack_levels(levels, bits), pack_signs(w))
    assert torch.equal(out, (levels.double() @ w.double().T).to(torch.int32))


@pytest.mark.parametrize("k", [1, 31, 32, 33, 64, 65, 130])
def test_packing_layout_and_paths_agree(k):
    generator = torch.Generator().manual_seed(k)
    x = torch.randn(3, k, generator=generator)
    x[0, 0] = 0.0  # sign(0) = +1: bit set
    levels = torch.randint(0, 4, (3, k), generator=generator).float()
    with use_native(False):
        signs, planes = pack_signs(x), pack_levels(levels, 2)
    assert signs.shape == (3, packed_words(k)) and planes.shape == (3, 2, packed_words(k))
    # bit j of word w is feature 32 w + j; padding bits are 0
    unpacked = (signs[:, :, None].to(torch.int64) >> torch.arange(32)) & 1
    unpacked = unpacked.flatten(1)
    assert torch.equal(unpacked[:, :k].bool(), x >= 0) and not unpacked[:, k:].any()
    plane_bits = ((planes[..., None].to(torch.int64) >> torch.arange(32)) & 1).flatten(2)[..., :k]
    assert torch.equal(plane_bits[:, 0] + 2 * plane_bits[:, 1], levels.long())
    if binary_kernels(x) is not None:
        assert torch.equal(pack_signs(x), signs) and torch.equal(pack_levels(levels, 2), planes)


def test_native_switch_is_honoured(monkeypatch):
    with use_native(False):
        assert binary_kernels(torch.zeros(1)) is None


def test_packed_memory_is_32_times_smaller():
    weight = torch.randn(256, 1024)
    packed = pack_signs(weight)
    assert packed.dtype == torch.int32 and packed.shape == (256, 32)
    assert weight.nbytes == 32 * packed.nbytes


def test_bad_inputs_are_refused(library_error):
    with library_error() as info:
        pack_signs(torch.ones(2, 3, dtype=torch.int32))
    assert info.match("floating-point")
    with library_error() as info:
        pack_signs(torch.ones(3))
    assert info.match(r"shape \[rows, K\]")
    with library_error() as info:
        pack_signs(torch.tensor([[float("nan")]]))
    assert info.match("NaN")
    with library_error() as info:
        pack_levels(torch.tensor([[0.0, 4.0]]), 2)
    assert info.match(r"integers in \[0, 3\]")
    with library_error() as info:
        pack_levels(torch.tensor([[0.5]]), 2)
    assert info.match("integers")
    with library_error() as info:
        pack_levels(torch.tensor([[1.0]]), 0)
    assert info.match("bits must be")
    w = pack_signs(torch.ones(4, 70))
    with library_error() as info:
        binary_matmul(pack_signs(torch.ones(2, 70)).float(), w, 70)
    assert info.match("int32")
    with library_error() as info:
        binary_matmul(pack_signs(torch.ones(2, 70)), w, 200)
    assert info.match("packed_words")
    with library_error() as info:
        bitplane_matmul(pack_signs(torch.ones(2, 70)), w)
    assert info.match("3 dimensions")
