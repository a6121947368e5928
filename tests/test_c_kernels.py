"""The shared build machinery of the C kernels (:mod:`neuroplastic._c_kernels`) and the library's one switch for
them, ``use_native``, which both kernel families (SNN and plastic trace kernels) obey."""

import ctypes
import platform
from pathlib import Path

import pytest
import torch

from neuroplastic import _c_kernels
from neuroplastic.neurons import spike_kernels
from neuroplastic.plasticity import trace_kernels


def test_shared_build_machinery_caches_and_keys_by_source(tmp_path):
    # neuroplastic._c_kernels (used by these kernels and the plasticity ones) on a tiny source, to stay fast
    source = b"int answer(void) { return ANSWER; }"
    variants = {1: ("tiny_1", ["-DANSWER=1"]), 2: ("tiny_2", ["-DANSWER=2"])}
    first = _c_kernels.build_libraries("tiny", source, variants, tmp_path)
    stamps = {k: p.stat().st_mtime_ns for k, p in first.items()}
    assert _c_kernels.build_libraries("tiny", source, variants, tmp_path) == first
    assert all(p.stat().st_mtime_ns == stamps[k] for k, p in first.items())  # cached, not rebuilt
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["tiny_1.so", "tiny_2.so"]
    assert [ctypes.CDLL(str(first[k])).answer() for k in (1, 2)] == [1, 2]
    other = _c_kernels.build_libraries("tiny", source + b"\n", variants, tmp_path)
    assert other[1].parent != first[1].parent  # another source, another key


def test_advise_huge_pages_covers_only_large_cpu_storages():
    small = torch.zeros(1000)
    assert not _c_kernels.advise_huge_pages(small)
    # an expanded view has many elements but a 4-byte storage: nothing to advise (and no memory not its own)
    assert not _c_kernels.advise_huge_pages(torch.zeros(1).expand(10_000_000))
    big = torch.arange(4 * _c_kernels.HUGE_PAGE_BYTES // 4, dtype=torch.float32)  # 8 MiB, already written
    advised = _c_kernels.advise_huge_pages(big[::3])  # a strided view advises its whole storage
    if platform.system() == "Linux" and Path("/sys/kernel/mm/transparent_hugepage/enabled").exists():
        assert advised
    # advice never changes contents, written before or after
    assert torch.equal(big[:5], torch.arange(5.0)) and float(big[-1]) == big.numel() - 1
    fresh = torch.empty(3 * _c_kernels.HUGE_PAGE_BYTES // 8, dtype=torch.float64)
    _c_kernels.advise_huge_pages(fresh)
    fresh.fill_(2.5)
    assert bool((fresh == 2.5).all())


def test_one_switch_turns_every_native_kernel_off_and_restores_it():
    assert spike_kernels.use_native is trace_kernels.use_native is _c_kernels.use_native
    like = torch.zeros(1, dtype=torch.float64)
    before = _c_kernels.native_enabled()
    with _c_kernels.use_native(False):
        assert not _c_kernels.native_enabled()
        assert spike_kernels.snn_kernels(like) is None
        assert trace_kernels.native_kernels(like) is None
        with _c_kernels.use_native(True):  # nested: on again inside, off again after
            assert _c_kernels.native_enabled()
        assert not _c_kernels.native_enabled()
    assert _c_kernels.native_enabled() == before
    with pytest.raises(KeyError), _c_kernels.use_native(False):
        raise KeyError("inside the block")
    assert _c_kernels.native_enabled() == before  # restored after an exception too
    if before:  # on a machine with a C compiler, both families load again once switched back on
        assert spike_kernels.snn_kernels(like) is not None
        assert trace_kernels.native_kernels(like) is not None
