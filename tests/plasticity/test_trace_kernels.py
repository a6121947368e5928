"""The native trace kernels against the same equations written as plain tensor expressions."""

import warnings

import pytest
import torch

from neuroplastic import _c_kernels
from neuroplastic.plasticity import PlasticRNN
from neuroplastic.plasticity import trace_kernels as native
from neuroplastic.plasticity.trace_kernels import build_native, native_kernels, use_native

B, I, O = 3, 5, 4


def kernels_for(dtype):
    found = native_kernels(torch.zeros(1, dtype=dtype))
    assert found is not None, "the native kernels should build on a machine with a C compiler"
    return found


def data(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "trace": torch.randn(B, I, O, generator=g, dtype=dtype).clamp(-1, 1),
        "pre": torch.randn(B, I, generator=g, dtype=dtype),
        "delta": 0.7 * torch.randn(B, O, generator=g, dtype=dtype),
        "keep": torch.rand(B, O, generator=g, dtype=dtype),
        "next": torch.randn(B, I, generator=g, dtype=dtype),
        "alpha": torch.randn(I, O, generator=g, dtype=dtype),
        "grad": torch.randn(B, I, O, generator=g, dtype=dtype),
        "g": torch.randn(B, O, generator=g, dtype=dtype),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rule", ["clip", "hebbian"])
def test_trace_step_equals_the_rule_and_the_next_plastic_input(dtype, rule):
    k, d = kernels_for(dtype), data(dtype)
    clip, keep = (1.0, None) if rule == "clip" else (None, d["keep"])
    expected = d["trace"] * (1 if keep is None else keep.unsqueeze(1)) + d["pre"].unsqueeze(2) * d["delta"].unsqueeze(1)
    if clip is not None:
        expected = expected.clamp(-clip, clip)
        assert (expected.abs() == clip).any()  # the clip is active in this test
    out, copy = torch.empty_like(d["trace"]), torch.empty_like(d["trace"])
    s, q = torch.empty(B, O, dtype=dtype), torch.empty(B, O, dtype=dtype)
    k.trace_step(d["trace"], out, d["pre"], d["delta"], keep, clip, d["next"], d["alpha"], s, q, copy)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out, expected, rtol=0, atol=tol)
    assert torch.equal(copy, out)
    torch.testing.assert_close(s, torch.einsum("bi,ij,bij->bj", d["next"], d["alpha"], expected), rtol=0, atol=tol)
    torch.testing.assert_close(q, torch.einsum("bi,bij->bj", d["next"], expected), rtol=0, atol=tol)


def test_trace_step_in_place_with_strided_rows_and_no_update():
    k, d = kernels_for(torch.float64), data(torch.float64)
    sequence = torch.randn(B, 6, I, dtype=torch.float64)  # pre as a strided row view, like outputs[:, t]
    pre = sequence[:, 2]
    trace = d["trace"].clone()
    expected = (trace + pre.unsqueeze(2) * d["delta"].unsqueeze(1)).clamp(-0.5, 0.5)
    k.trace_step(trace, trace, pre, d["delta"], None, 0.5)
    torch.testing.assert_close(trace, expected, rtol=0, atol=1e-12)
    # delta None: no update, only the plastic input of the given trace
    s = torch.empty(B, O, dtype=torch.float64)
    before = trace.clone()
    k.trace_step(trace, trace, next_pre=pre, alpha=d["alpha"], s_out=s)
    assert torch.equal(trace, before)
    torch.testing.assert_close(s, torch.einsum("bi,ij,bij->bj", pre, d["alpha"], trace), rtol=0, atol=1e-12)


def test_trace_step_rejects_rows_without_unit_stride():
    k, d = kernels_for(torch.float64), data(torch.float64)
    with pytest.raises(ValueError, match="unit inner stride"):
        k.trace_step(d["trace"], d["trace"], d["pre"].t().contiguous().t()[:, :I], d["delta"])
    with pytest.raises(ValueError, match="contiguous"):
        k.trace_step(d["trace"].transpose(1, 2), d["trace"].transpose(1, 2), d["pre"][:, :O], d["delta"][:, :I])


def update_half(k, d, rule, grad):
    """The trace-update half of ``trace_backward`` alone; returns (grad, v, d_pre, gdt)."""
    clip, keep = (1.0, None) if rule == "clip" else (None, d["keep"])
    v, d_pre = torch.empty(B, O, dtype=torch.float64), torch.empty(B, I, dtype=torch.float64)
    gdt = None if keep is None else torch.empty(B, O, dtype=torch.float64)
    k.trace_backward(grad, trace_prev=d["trace"], pre=d["pre"], delta=d["delta"], keep=keep, clip=clip, v_out=v,
                     d_pre_out=d_pre, gdt_out=gdt)
    return grad, v, d_pre, gdt


@pytest.mark.parametrize("rule", ["clip", "hebbian"])
def test_backward_through_the_update_equals_autograd(rule):
    k, d = kernels_for(torch.float64), data(torch.float64)
    clip, keep = (1.0, None) if rule == "clip" else (None, d["keep"])
    trace = d["trace"].clone().requires_grad_()
    pre = d["pre"].clone().requires_grad_()
    delta = d["delta"].clone().requires_grad_()
    new = trace * (1 if keep is None else keep.unsqueeze(1)) + pre.unsqueeze(2) * delta.unsqueeze(1)
    if clip is not None:
        new = new.clamp(-clip, clip)
    grad_trace, grad_pre, grad_delta = torch.autograd.grad(new, (trace, pre, delta), d["grad"])

    grad, v, d_pre, gdt = update_half(k, d, rule, d["grad"].clone())
    torch.testing.assert_close(grad, grad_trace, rtol=0, atol=1e-12)
    torch.testing.assert_close(d_pre, grad_pre, rtol=0, atol=1e-12)
    torch.testing.assert_close(v, grad_delta, rtol=0, atol=1e-12)  # dL/ddelta = sum_i pre G'
    if gdt is not None:
        # gdt = sum_i G H, the part of dL/dkeep (= gdt) that the rate's gradient needs
        torch.testing.assert_close(gdt, (d["grad"] * d["trace"]).sum(1), rtol=0, atol=1e-12)


def test_clip_mask_passes_the_gradient_at_the_bound_exactly():
    # torch.clamp's convention: the gradient passes where the unclipped value equals the bound.
    k = kernels_for(torch.float64)
    trace = torch.tensor([[[1.5, 1.5, -1.5]]], dtype=torch.float64)  # [1, 1, 3]
    pre = torch.tensor([[0.5]], dtype=torch.float64)
    delta = torch.tensor([[1.0, 1.5, -1.0]], dtype=torch.float64)  # z = 2.0 (at), 2.25 (over), -2.0 (at)
    grad = torch.ones(1, 1, 3, dtype=torch.float64)
    v, d_pre = torch.empty(1, 3, dtype=torch.float64), torch.empty(1, 1, dtype=torch.float64)
    k.trace_backward(grad, trace_prev=trace, pre=pre, delta=delta, clip=2.0, v_out=v, d_pre_out=d_pre)
    assert grad.flatten().tolist() == [1.0, 0.0, 1.0]


def input_half(k, d, grad, parts):
    d_pre = torch.empty(B, I, dtype=torch.float64)
    k.trace_backward(grad, trace_mid=d["trace"], pre_in=d["pre"], g=d["g"], alpha=d["alpha"], alpha_grad_parts=parts,
                     d_pre_in_out=d_pre)
    return grad, d_pre


def test_backward_through_the_plastic_input_equals_autograd():
    k, d = kernels_for(torch.float64), data(torch.float64)
    pre = d["pre"].clone().requires_grad_()
    alpha = d["alpha"].clone().requires_grad_()
    trace = d["trace"].clone().requires_grad_()
    s = torch.einsum("bi,ij,bij->bj", pre, alpha, trace)
    grad_pre, grad_alpha, grad_trace = torch.autograd.grad(s, (pre, alpha, trace), d["g"])

    parts = torch.full((torch.get_num_threads(), I, O), 0.25, dtype=torch.float64)  # accumulates onto what is there
    grad, d_pre = input_half(k, d, d["grad"].clone(), parts)
    torch.testing.assert_close(grad, d["grad"] + grad_trace, rtol=0, atol=1e-12)
    torch.testing.assert_close(parts.sum(0), 0.25 * parts.shape[0] + grad_alpha, rtol=0, atol=1e-12)
    torch.testing.assert_close(d_pre, grad_pre, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="one \\[I, O\\] part per thread"):
        input_half(k, d, d["grad"].clone(), parts[:0])


@pytest.mark.parametrize("rule", ["clip", "hebbian"])
def test_both_halves_in_one_call_equal_the_halves_in_turn(rule):
    k, d = kernels_for(torch.float64), data(torch.float64)
    threads = torch.get_num_threads()
    parts_apart, parts_together = (torch.zeros(threads, I, O, dtype=torch.float64) for _ in range(2))
    grad, d_pre_in = input_half(k, d, d["grad"].clone(), parts_apart)
    grad, v, d_pre, gdt = update_half(k, d, rule, grad)

    together = d["grad"].clone()
    d_pre_in2, v2, d_pre2 = (torch.empty_like(x) for x in (d_pre_in, v, d_pre))
    gdt2 = None if gdt is None else torch.empty_like(gdt)
    clip, keep = (1.0, None) if rule == "clip" else (None, d["keep"])
    k.trace_backward(together, d["trace"], d["pre"], d["g"], d["alpha"], parts_together, d_pre_in2, d["trace"],
                     d["pre"], d["delta"], keep, clip, v2, d_pre2, gdt2)
    pairs = ((grad, together), (d_pre_in, d_pre_in2), (v, v2), (d_pre, d_pre2), (parts_apart, parts_together),
             (gdt, gdt2))
    for apart, joint in pairs:
        if apart is not None:
            torch.testing.assert_close(joint, apart, rtol=0, atol=1e-12)


def test_native_and_torch_backends_agree_on_a_float32_episode():
    torch.manual_seed(0)
    model = PlasticRNN(3, 16, modulation="simple", clip=0.5, alpha_init=0.3)
    inputs = torch.randn(4, 20, 3, generator=torch.Generator().manual_seed(3))
    results = {}
    for native_on in (True, False):
        with use_native(native_on):
            model.zero_grad()
            out, state = model(inputs)
            (out.pow(2).sum() + state.plastic.trace.sum()).backward()
            results[native_on] = (out.detach(), {n: p.grad.clone() for n, p in model.named_parameters()})
    torch.testing.assert_close(results[True][0], results[False][0], rtol=0, atol=1e-5)
    for name, grad in results[False][1].items():
        torch.testing.assert_close(results[True][1][name], grad, rtol=1e-4, atol=1e-5, msg=name)


def test_disabled_or_off_cpu_means_no_native_kernels():
    with use_native(False):
        assert native_kernels(torch.zeros(1)) is None
    assert native_kernels(torch.zeros(1, dtype=torch.float16)) is None


def test_build_is_cached_and_keyed(tmp_path):
    first = build_native(tmp_path)
    stamps = {dtype: path.stat().st_mtime_ns for dtype, path in first.items()}
    second = build_native(tmp_path)
    assert first == second and all(path.stat().st_mtime_ns == stamps[d] for d, path in second.items())
    # only the two libraries, no temporary files left behind
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(p.name for p in first.values())


def test_without_a_compiler_the_fused_scan_falls_back_with_a_warning(monkeypatch):
    monkeypatch.setattr(_c_kernels, "find_compiler", lambda: None)
    fresh = _c_kernels.LazyLibraries(native.build_native, native.TraceKernels, "native trace kernels",
                                     "the fused plastic scan uses PyTorch operations instead")
    monkeypatch.setattr(native, "_libraries", fresh)
    with pytest.raises(RuntimeError, match="no C compiler"):
        build_native()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert native_kernels(torch.zeros(1)) is None
    assert any("PyTorch operations instead" in str(w.message) for w in caught)
    model = PlasticRNN(3, 8, modulation="simple", clip=1.0)
    out, _ = model(torch.randn(2, 5, 3))
    out.sum().backward()  # the fused scan still runs, on PyTorch operations
    assert model.cell.synapses.alpha.grad is not None
