"""The fused multi-step LIF against the step-by-step form: same spikes, same gradients (to 1e-5)."""

import itertools
import warnings

import pytest
import torch

from neuroplastic import _c_kernels
from neuroplastic.neurons import LIF, LIFState, Surrogate, get_surrogate, surrogate_names
from neuroplastic.neurons import spike_kernels as snn_native
from neuroplastic.neurons.fused_lif import LIFConfig, lif_sequence
from neuroplastic.neurons.lif import _lif_step
from neuroplastic.neurons.spike_kernels import snn_kernels, use_native

B, T, N = 2, 12, 300  # N crosses the kernels' block of 256 neurons


def problem(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = (0.8 * torch.randn(B, T, N, generator=g, dtype=dtype) + 0.35).requires_grad_()
    v0 = torch.randn(B, N, generator=g, dtype=dtype).requires_grad_()
    decay = (0.3 + 0.7 * torch.rand(N, generator=g, dtype=dtype)).requires_grad_()
    threshold = (0.5 + torch.rand(N, generator=g, dtype=dtype)).requires_grad_()
    weights = (torch.randn(B, T, N, generator=g, dtype=dtype), torch.randn(B, N, generator=g, dtype=dtype))
    return x, v0, decay, threshold, weights


def step_by_step(x, v0, decay, threshold, config):
    v, out = v0, []
    for t in range(x.shape[1]):
        s, v = _lif_step(v, x[:, t], decay, threshold, config.reset, config.v_reset, config.rectifier,
                         config.detach_reset, config.surrogate)
        out.append(s)
    return torch.stack(out, 1), v


def compare(config, dtype=torch.float64, native=True, seed=0, tol=1e-5):
    x, v0, decay, threshold, (ws, wv) = problem(dtype, seed)
    inputs = (x, v0, decay, threshold)
    with use_native(native):
        spikes, v = lif_sequence(x, v0, decay, threshold, config)
        grads = torch.autograd.grad((spikes * ws).sum() + (v * wv).sum(), inputs)
    ref_spikes, ref_v = step_by_step(x, v0, decay, threshold, config)
    ref_grads = torch.autograd.grad((ref_spikes * ws).sum() + (ref_v * wv).sum(), inputs)
    assert torch.equal(spikes, ref_spikes)
    assert 0.02 < spikes.mean().item() < 0.9  # a test with spikes and silences
    torch.testing.assert_close(v, ref_v, rtol=tol, atol=tol)
    for name, got, want in zip(("x", "v0", "decay", "threshold"), grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=tol, atol=tol, msg=lambda m, n=name: f"d/d{n}: {m}")
        assert want.abs().sum() > 0, name


MODES = list(itertools.product(["soft", "hard", "none"], [False, True], [False, True]))


@pytest.mark.parametrize("reset, rectifier, detach_reset", MODES)
@pytest.mark.parametrize("surrogate", surrogate_names())
def test_native_fused_equals_step_by_step(reset, rectifier, detach_reset, surrogate):
    config = LIFConfig(reset, -0.2 if reset == "hard" else 0.0, rectifier, detach_reset, get_surrogate(surrogate))
    compare(config, native=True)


@pytest.mark.parametrize("reset, rectifier, detach_reset", MODES)
def test_pytorch_fused_equals_step_by_step(reset, rectifier, detach_reset):
    # the fallback (CUDA, no compiler) runs the same algorithm with PyTorch operations
    config = LIFConfig(reset, -0.2 if reset == "hard" else 0.0, rectifier, detach_reset, get_surrogate("sigmoid"))
    compare(config, native=False)


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_float32_fused_equals_step_by_step(reset):
    compare(LIFConfig(reset, 0.0, True, False, get_surrogate("fast_sigmoid")), dtype=torch.float32, seed=1)
    compare(LIFConfig(reset, 0.0, False, False, get_surrogate("atan")), dtype=torch.float32, seed=2)


class Gaussian(Surrogate):
    """A custom surrogate the C kernels do not know: the fused path runs its backward with PyTorch ops."""

    def grad(self, x):
        return torch.exp(-8.0 * x * x) * 2.0


@pytest.mark.parametrize("reset, rectifier", [("soft", True), ("hard", False)])
def test_custom_surrogate_through_the_fused_path(reset, rectifier):
    compare(LIFConfig(reset, 0.0, rectifier, False, Gaussian()), native=True)


def test_module_backends_agree_with_learned_tau_threshold_and_state():
    g = torch.Generator().manual_seed(5)
    kwargs = dict(learn_tau=True, learn_threshold=True, heterogeneous=True, tau_range=(2.0, 20.0), reset="soft",
                  rectifier=True, surrogate="triangle")
    fused = LIF(N, backend="fused", generator=torch.Generator().manual_seed(1), **kwargs).double()
    step = LIF(N, backend="step", generator=torch.Generator().manual_seed(1), **kwargs).double()
    assert torch.equal(fused.log_tau, step.log_tau)
    x = torch.randn(B, T, N, generator=g, dtype=torch.float64) + 0.4
    state = LIFState(torch.randn(B, N, generator=g, dtype=torch.float64))
    results = []
    for module in (fused, step):
        spikes, final = module(x, state)
        (spikes.sum() + final.v.square().sum()).backward()
        results.append((spikes, final.v, module.log_tau.grad, module.threshold.grad))
    assert torch.equal(results[0][0], results[1][0])
    for got, want in zip(results[0][1:], results[1][1:], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_sequence_in_two_halves_equals_the_whole():
    lif = LIF(N, tau=5.0, reset="hard").double()
    x = torch.randn(B, T, N, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.4
    whole, state = lif(x)
    first, mid = lif(x[:, : T // 2])
    second, end = lif(x[:, T // 2:], mid)
    assert torch.equal(torch.cat([first, second], 1), whole)
    assert torch.equal(end.v, state.v)


def test_multi_dimensional_neurons():
    lif = LIF((3, 4, 5), tau=4.0)
    x = torch.randn(2, 6, 3, 4, 5) + 0.5
    spikes, state = lif(x)
    assert spikes.shape == x.shape and state.v.shape == (2, 3, 4, 5)
    ref = LIF((3, 4, 5), tau=4.0, backend="step")(x)[0]
    assert torch.equal(spikes, ref)


def test_kernels_apply_to_cpu_float32_and_float64_when_enabled(monkeypatch, tmp_path):
    monkeypatch.setenv("NEUROPLASTIC_CACHE_DIR", str(tmp_path))
    assert _c_kernels.cache_dir() == tmp_path
    assert snn_kernels(torch.zeros(1, dtype=torch.float64)) is not None  # built (or cached) at first use
    assert snn_kernels(torch.zeros(1, dtype=torch.float32)) is not None
    assert snn_kernels(torch.zeros(1, dtype=torch.float16)) is None
    with use_native(False):
        assert snn_kernels(torch.zeros(1)) is None


def test_without_a_compiler_the_fused_lif_falls_back_with_a_warning(monkeypatch):
    monkeypatch.setattr(_c_kernels, "find_compiler", lambda: None)
    fresh = _c_kernels.LazyLibraries(snn_native.build_snn_kernels, snn_native.SNNKernels, "native SNN kernels",
                                     "the fused LIF uses PyTorch operations instead")
    monkeypatch.setattr(snn_native, "_libraries", fresh)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert snn_kernels(torch.zeros(1)) is None
    assert any("PyTorch operations instead" in str(w.message) and "no C compiler" in str(w.message) for w in caught)
    compare(LIFConfig("soft", 0.0, False, False, get_surrogate("atan")), native=True)  # runs on the fallback
