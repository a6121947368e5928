"""The fused plastic spiking layer (``backend="fused"``) against the dense and low-rank backends, a literal loop
for its sequential autograd Function, the C kernels against the PyTorch fallback, and backend resolution."""

import itertools

import pytest
import torch
from torch.autograd import gradcheck

from neuroplastic.neurons.fused_lif import LIFConfig, plastic_lif_sequence
from neuroplastic.neurons.lif import lif_step
from neuroplastic.neurons.spike_kernels import snn_kernels, use_native
from neuroplastic.neurons.surrogates import FastSigmoid, Surrogate, get_surrogate
from neuroplastic.plasticity import spike_products
from neuroplastic.plasticity.spiking import PlasticLIF, PlasticRecurrentLIF

B, T, I, O = 3, 12, 5, 4
NATIVE = snn_kernels(torch.zeros(1, dtype=torch.double)) is not None


class ScaledFastSigmoid(Surrogate):
    """A custom surrogate (not known to the C kernels): the backward runs with PyTorch operations."""

    def grad(self, x):
        return 0.5 / (1 + 10.0 * x.abs()) ** 2


class NoGradient(Surrogate):
    """Zero surrogate gradient: spikes are locally constant, so the exact gradient is checkable numerically."""

    def grad(self, x):
        return torch.zeros_like(x)


def make_layer(backend, *, alpha="neuron", reset="soft", rectifier=False, detach_reset=False,
               surrogate="fast_sigmoid", seed=0):
    torch.manual_seed(seed)
    layer = PlasticLIF(I, O, rule="hebbian", alpha=alpha, alpha_init=0.5, eta_init=0.2, tau_pre=3.0, tau_post=2.0,
                       tau_mem=torch.tensor([4.0, 3.0, 5.0, 2.5]), learn_tau_mem=True, learn_trace_tau=True,
                       reset=reset, rectifier=rectifier, detach_reset=detach_reset, surrogate=surrogate,
                       backend=backend).double()
    with torch.no_grad():
        layer.weight.mul_(4.0)
        layer.bias.fill_(0.1)
        if alpha == "neuron":
            layer.synapses.alpha.copy_(torch.tensor([0.5, -0.8, 1.2, 0.3]))
    return layer


def spike_inputs(seed=1, p=0.2, batch=B, steps=T, size=I):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, steps, size, generator=generator) < p).double()


def run(layer, inputs, split=7):
    """A fresh call on ``inputs[:, :split]``, a second call from its state on the rest; a loss reading every output
    (spikes with per-entry weights, the final membrane, traces and Hebbian trace); returns values and gradients."""
    x = inputs.clone().requires_grad_()
    spikes1, state1 = layer(x[:, :split])
    spikes2, state2 = layer(x[:, split:], state1)
    generator = torch.Generator().manual_seed(5)
    loss = 0.0
    for tensor in (spikes1, spikes2, state2.membrane, state2.pre_trace, state2.post_trace, state2.plastic.trace,
                   state1.plastic.trace):
        loss = loss + (tensor * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)).sum()
    layer.zero_grad()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in layer.named_parameters()}
    grads["inputs"] = x.grad.clone()
    return (spikes1.detach(), spikes2.detach()), (state1.detach(), state2.detach()), grads


def assert_same(a, b, tol=1e-9):
    (sa, sb), (ta, tb), (ga, gb) = zip(a, b, strict=True)
    for x, y in zip(sa, sb, strict=True):
        assert torch.equal(x, y)
    for state_a, state_b in zip(ta, tb, strict=True):
        for name in ("membrane", "spikes", "pre_trace", "post_trace"):
            torch.testing.assert_close(getattr(state_a, name), getattr(state_b, name), rtol=tol, atol=tol, msg=name)
        torch.testing.assert_close(state_a.plastic.trace, state_b.plastic.trace, rtol=tol, atol=tol)
    assert set(ga) == set(gb)
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], rtol=tol, atol=tol, msg=name)


@pytest.mark.parametrize("reset", ["soft", "hard", "none"])
@pytest.mark.parametrize("rectifier", [False, True])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "atan"])
def test_fused_equals_dense_and_lowrank(reset, rectifier, detach_reset, surrogate):
    inputs = spike_inputs()
    options = dict(reset=reset, rectifier=rectifier, detach_reset=detach_reset, surrogate=surrogate)
    fused = run(make_layer("fused", **options), inputs)
    rate = float(torch.cat(fused[0], dim=1).mean())
    assert 0.05 < rate < 0.95, rate  # the neurons spike, but not always
    assert float(fused[1][1].plastic.trace.abs().max()) > 1e-2  # the synapses changed
    for backend in ("dense", "lowrank"):
        assert_same(run(make_layer(backend, **options), inputs), fused)


@pytest.mark.parametrize("alpha", ["neuron", "scalar"])
def test_fused_equals_dense_with_scalar_alpha_and_real_valued_inputs(alpha):
    generator = torch.Generator().manual_seed(3)
    dense_inputs = torch.rand(B, T, I, generator=generator, dtype=torch.double)  # not sparse: dense products
    for inputs in (spike_inputs(seed=4), dense_inputs):
        assert_same(run(make_layer("dense", alpha=alpha), inputs), run(make_layer("fused", alpha=alpha), inputs))


def test_sparse_products_are_used_for_spike_inputs():
    if not NATIVE:
        pytest.skip("no native kernels")
    assert spike_products.sparse_kernels(spike_inputs()) is not None  # so the tests above run the sparse kernels
    assert spike_products.sparse_kernels(torch.rand(B, T, I, dtype=torch.double)) is None


@pytest.mark.parametrize("surrogate", ["triangle", "sigmoid", ScaledFastSigmoid()])
@pytest.mark.parametrize("reset,rectifier", [("soft", True), ("hard", False)])
def test_native_kernels_equal_the_pytorch_fallback(surrogate, reset, rectifier):
    if not NATIVE:
        pytest.skip("no native kernels")
    inputs = spike_inputs(seed=6)
    options = dict(reset=reset, rectifier=rectifier, surrogate=surrogate)
    native = run(make_layer("fused", **options), inputs)
    with use_native(False):
        assert snn_kernels(inputs) is None
        fallback = run(make_layer("fused", **options), inputs)
    assert_same(native, fallback, tol=1e-12)
    assert 0.05 < float(torch.cat(native[0], dim=1).mean()) < 0.95


def test_float32_fused_equals_dense():
    inputs = spike_inputs(seed=8).float()
    results = []
    for backend in ("dense", "fused"):
        layer = make_layer(backend).float()
        spikes, state = layer(inputs)
        (spikes * torch.linspace(0, 1, T).view(1, T, 1)).sum().backward()
        results.append((spikes, state.plastic.trace, layer.synapses.eta.grad, layer.weight.grad))
    assert torch.equal(results[0][0], results[1][0])
    for a, b in zip(results[0][1:], results[1][1:], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_sequence_in_two_calls_equals_one_call():
    layer = make_layer("fused")
    inputs = spike_inputs(seed=9, steps=15)
    with torch.no_grad():
        whole, state = layer(inputs)
        first, mid = layer(inputs[:, :6])
        second, end = layer(inputs[:, 6:], mid)
    assert torch.equal(whole, torch.cat([first, second], dim=1))
    for a, b in zip(state[:4], end[:4], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state.plastic.trace, end.plastic.trace, rtol=1e-12, atol=1e-12)


def literal_sequence(drive, mixing, alpha, v0, y0, decay, threshold, trace_decay, config):
    """``plastic_lif_sequence`` written as a loop of differentiable steps (autograd does the backward pass)."""
    v, y = v0, y0
    spikes, traces = [], []
    for t in range(drive.shape[1]):
        plastic = sum((mixing[:, t, s:s + 1] * traces[s] for s in range(t)), torch.zeros_like(y))
        z, v = lif_step(v, drive[:, t] + alpha * plastic, decay, threshold, reset=config.reset,
                        rectifier=config.rectifier, detach_reset=config.detach_reset, surrogate=config.surrogate)
        y = trace_decay * y + z
        spikes.append(z)
        traces.append(y)
    return torch.stack(spikes, 1), torch.stack(traces, 1), v


def sequence_inputs(seed, batch=2, steps=6, n=3):
    generator = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.rand(*shape, generator=generator, dtype=torch.double)  # noqa: E731
    drive = 1.6 * rand(batch, steps, n)
    mixing = 0.5 * rand(batch, steps, steps) - 0.1
    return [drive, mixing, 2 * rand(n) - 0.5, rand(batch, n), rand(batch, n), 0.5 + 0.4 * rand(n),
            0.8 + 0.4 * rand(n), torch.tensor(0.7, dtype=torch.double)]


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("reset,rectifier,detach_reset,surrogate", [
    ("soft", False, False, "fast_sigmoid"), ("hard", True, False, "atan"), ("none", False, True, "sigmoid"),
    ("soft", True, True, "triangle")])
def test_plastic_lif_sequence_equals_a_literal_loop(native, reset, rectifier, detach_reset, surrogate):
    config = LIFConfig(reset, 0.0, rectifier, detach_reset, get_surrogate(surrogate))
    args = sequence_inputs(10)
    results = []
    for function in (literal_sequence, plastic_lif_sequence):
        leaves = [a.clone().requires_grad_() for a in args]
        with use_native(native):
            spikes, traces, v = function(*leaves, config)
        generator = torch.Generator().manual_seed(2)
        loss = sum((x * torch.randn(x.shape, generator=generator, dtype=x.dtype)).sum() for x in (spikes, traces, v))
        loss.backward()
        results.append((spikes.detach(), traces.detach(), v.detach(), [leaf.grad for leaf in leaves]))
    literal, fused = results
    assert 0 < float(literal[0].mean()) < 1
    assert torch.equal(literal[0], fused[0])
    torch.testing.assert_close(literal[1], fused[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(literal[2], fused[2], rtol=1e-12, atol=1e-12)
    mask = torch.ones(6, 6, dtype=torch.bool).tril(-1)  # A[t, s] is read for s < t only
    assert float(fused[3][1][:, ~mask].abs().max()) == 0.0
    for index, (a, b) in enumerate(zip(literal[3], fused[3], strict=True)):
        if index == 1:
            a = a * mask
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=f"input {index}")


@pytest.mark.parametrize("native", [True, False])
def test_plastic_lif_sequence_gradcheck(native):
    config = LIFConfig("soft", 0.0, True, False, NoGradient())  # C forward (if native), PyTorch backward
    args = [a.requires_grad_() for a in sequence_inputs(12, steps=5)]
    with use_native(native):
        spikes, _, _ = plastic_lif_sequence(*args, config)
        assert 0 < float(spikes.detach().mean()) < 1
        assert gradcheck(lambda *a: plastic_lif_sequence(*a, config)[1:], args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_out", [64, 67])  # rows 32-byte aligned (streaming stores) / mostly not (plain)
def test_spike_outer_sum_wide_rows_match_the_dense_product(dtype, n_out):
    generator = torch.Generator().manual_seed(3)
    s = (torch.rand(3, 30, 40, generator=generator) < 0.15).to(dtype)
    m = torch.randn(3, 30, n_out, generator=generator, dtype=dtype)
    kernels = spike_products.sparse_kernels(s) if NATIVE else None
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(spike_products.spike_outer_sum(s, m, kernels), s.transpose(1, 2) @ m, rtol=0,
                               atol=tolerance)


def test_sparse_products_and_scan_gradcheck():
    generator = torch.Generator().manual_seed(13)
    s = (torch.rand(2, 6, 7, generator=generator) < 0.2).double()
    s.view(-1)[3] = 0.5
    m = torch.rand(2, 6, 3, generator=generator, dtype=torch.double, requires_grad=True)
    kernels = spike_products.sparse_kernels(s) if NATIVE else None
    if NATIVE:
        assert kernels is not None
    torch.testing.assert_close(spike_products.spike_gram(s, kernels), s @ s.transpose(1, 2), rtol=0, atol=1e-15)
    torch.testing.assert_close(spike_products.spike_outer_sum(s, m, kernels), s.transpose(1, 2) @ m, rtol=0, atol=1e-15)
    s.requires_grad_()
    assert gradcheck(lambda a: spike_products.spike_gram(a, kernels), (s,))
    assert gradcheck(lambda a, b: spike_products.spike_outer_sum(a, b, kernels), (s, m))
    decay = torch.tensor(0.6, dtype=torch.double, requires_grad=True)
    weights = torch.rand(6, generator=generator, dtype=torch.double, requires_grad=True)
    for reverse, w in itertools.product((False, True), (None, weights)):
        out = spike_products.linear_scan(m, decay, reverse, w)
        expected = torch.zeros_like(m)
        for t in range(6):  # out_t = sum over the steps r on one side of t of decay^|t-r| w_r m_r
            for r in range(6):
                if (r <= t and not reverse) or (r >= t and reverse):
                    expected[:, t] += 0.6 ** abs(t - r) * (1.0 if w is None else float(w[r].detach())) * m[:, r]
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
        inputs = (m, decay) if w is None else (m, decay, w)
        assert gradcheck(lambda a, d, *ws, reverse=reverse: spike_products.linear_scan(a, d, reverse, *ws), inputs)


def test_auto_resolves_to_fused_exactly_where_it_applies():
    assert PlasticLIF(I, O, alpha="neuron").resolved_backend == "fused"  # default rule: decaying Hebbian
    assert PlasticLIF(I, O, rule="hebbian", alpha="scalar").resolved_backend == "fused"
    assert PlasticLIF(I, O, rule="hebbian", alpha="neuron", surrogate="atan").resolved_backend == "fused"
    assert PlasticLIF(I, O, rule="hebbian", alpha="connection").resolved_backend == "dense"
    assert PlasticLIF(I, O, rule="oja", alpha="neuron").resolved_backend == "lowrank"
    assert PlasticLIF(I, O, rule="bcm", alpha="neuron").resolved_backend == "lowrank"
    assert PlasticLIF(I, O, rule="hebbian", alpha="neuron", eta="neuron").resolved_backend == "lowrank"
    assert PlasticLIF(I, O, rule="hebbian", alpha="neuron", modulation="simple").resolved_backend == "lowrank"
    assert PlasticLIF(I, O, rule="hebbian", alpha="neuron", recurrent=True).resolved_backend == "lowrank"
    assert PlasticLIF(I, O, alpha="neuron", surrogate=ScaledFastSigmoid()).resolved_backend == "lowrank"
    assert PlasticLIF(I, O, alpha="neuron", surrogate=FastSigmoid(3.0)).resolved_backend == "fused"
    assert PlasticRecurrentLIF(I, O, rule="hebbian", alpha="neuron").resolved_backend == "lowrank"
    # asked for explicitly: a custom surrogate is allowed (its backward runs with PyTorch operations)
    assert PlasticLIF(I, O, alpha="neuron", surrogate=ScaledFastSigmoid(), backend="fused").resolved_backend == "fused"


@pytest.mark.parametrize("make", [
    lambda: PlasticLIF(I, O, rule="hebbian", alpha="connection", backend="fused"),
    lambda: PlasticLIF(I, O, rule="oja", alpha="neuron", backend="fused"),
    lambda: PlasticLIF(I, O, rule="hebbian", alpha="neuron", eta="neuron", backend="fused"),
    lambda: PlasticLIF(I, O, rule="hebbian", alpha="neuron", modulation="simple", backend="fused"),
    lambda: PlasticLIF(I, O, rule="hebbian", alpha="neuron", recurrent=True, backend="fused"),
    lambda: PlasticRecurrentLIF(I, O, rule="hebbian", alpha="neuron", backend="fused"),
])
def test_fused_where_it_does_not_apply_raises(make):
    with pytest.raises(ValueError, match="backend='fused'"):
        make()


def test_bad_backend_name_raises():
    with pytest.raises(ValueError, match="backend"):
        PlasticLIF(I, O, alpha="neuron", backend="fast")


def _loss_without_trace(spikes, state):
    """A loss reading the spikes and every state tensor but the Hebbian trace (per-entry weights)."""
    generator = torch.Generator().manual_seed(9)
    loss = 0.0
    for tensor in (spikes, state.membrane, state.pre_trace, state.post_trace):
        loss = loss + (tensor * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)).sum()
    return loss


@pytest.mark.parametrize("kind,backend,rule", [
    ("ff", "fused", "hebbian"), ("ff", "lowrank", "hebbian"), ("ff", "lowrank", "oja"), ("ff", "dense", "hebbian"),
    ("ff", "dense", "bcm"), ("recurrent", "lowrank", "hebbian"), ("recurrent", "dense", "oja")])
@pytest.mark.parametrize("from_state", [False, True])
def test_need_trace_false_drops_only_the_final_trace(kind, backend, rule, from_state):
    """need_trace=False: the same spikes, the same other state tensors and gradients; the trace is None."""
    inputs = spike_inputs()
    results = []
    make = PlasticLIF if kind == "ff" else PlasticRecurrentLIF
    for need_trace in (True, False):
        torch.manual_seed(0)
        layer = make(I, O, rule=rule, alpha="neuron", alpha_init=0.5, eta_init=0.2, backend=backend).double()
        with torch.no_grad():
            layer.weight.mul_(4.0)
        state = layer(inputs[:, :5])[1] if from_state else None
        spikes, final = layer(inputs[:, 5:], state, need_trace=need_trace)
        layer.zero_grad()
        _loss_without_trace(spikes, final).backward()
        results.append((spikes.detach(), final, {n: p.grad.clone() for n, p in layer.named_parameters()}))
    (spikes_a, state_a, grads_a), (spikes_b, state_b, grads_b) = results
    assert state_a.plastic.trace is not None and state_b.plastic.trace is None
    assert torch.equal(spikes_a, spikes_b)
    for name in ("membrane", "spikes", "pre_trace", "post_trace"):
        torch.testing.assert_close(getattr(state_a, name), getattr(state_b, name), rtol=1e-12, atol=1e-12)
    assert set(grads_a) == set(grads_b)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize(("backend", "rule"), [("fused", "hebbian"), ("lowrank", "hebbian"), ("lowrank", "bcm")])
def test_need_trace_false_builds_no_input_by_output_tensor(backend, rule):
    """The fused and low-rank backends with need_trace=False allocate nothing of the [B, I, O] size (not even
    a fresh state's zero trace)."""
    layer = PlasticLIF(64, 48, rule=rule, alpha="neuron", backend=backend)
    inputs = (torch.rand(2, 10, 64, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    sizes = []

    class Record(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(tensor, torch.Tensor):
                    sizes.append(tensor.numel())
            return out

    for need_trace in (True, False):
        sizes.clear()
        with Record():
            spikes, state = layer(inputs, need_trace=need_trace)
            spikes.sum().backward()
        assert (2 * 64 * 48 in sizes) == need_trace


def test_a_state_without_trace_cannot_be_passed_back():
    layer = PlasticLIF(I, O, rule="hebbian", alpha="neuron").double()
    _, state = layer(spike_inputs(), need_trace=False)
    with pytest.raises(ValueError, match="need_trace"):
        layer(spike_inputs(), state)
    with pytest.raises(TypeError, match="need_trace"):
        layer(spike_inputs(), need_trace=1)


def test_fused_layer_works_with_torch_compile():
    """torch.compile (graph breaks around the C kernels) gives the eager spikes, state and gradients."""
    inputs = spike_inputs().requires_grad_()
    results = []
    for compiled in (False, True):
        layer = make_layer("fused")
        module = torch.compile(layer, backend="aot_eager") if compiled else layer
        spikes, state = module(inputs)
        inputs.grad = None
        (spikes.sum() + state.plastic.trace.sum()).backward()
        results.append((spikes.detach(), state.detach(), inputs.grad.clone(),
                        {n: p.grad.clone() for n, p in layer.named_parameters()}))
    (spikes_a, state_a, grad_a, params_a), (spikes_b, state_b, grad_b, params_b) = results
    assert torch.equal(spikes_a, spikes_b) and float(spikes_a.mean()) > 0
    torch.testing.assert_close(state_a.plastic.trace, state_b.plastic.trace)
    torch.testing.assert_close(grad_a, grad_b)
    for name in params_a:
        torch.testing.assert_close(params_a[name], params_b[name], msg=name)


def test_need_trace_false_drops_the_eligibility_trace_too():
    layer = PlasticLIF(I, O, alpha="connection", modulation="retroactive").double()
    _, kept = layer(spike_inputs())
    _, dropped = layer(spike_inputs(), need_trace=False)
    assert kept.plastic.eligibility is not None and kept.plastic.trace is not None
    assert dropped.plastic.eligibility is None and dropped.plastic.trace is None
