"""Property-based tests of the neurons package's public boundaries (hypothesis, profile "ci" by default).

Each property draws an input class (batch and sequence length including 0 and 1, a dtype, non-finite values,
a state of the module, of another module or of another batch/dtype/device, bad hyperparameters), decides from
the documented contract whether the call is valid, and checks: valid -> the documented shapes and dtype, the
same result on every backend (fused / step, C kernels / PyTorch path); invalid -> a ValueError or TypeError
raised by the library's own checks (the ``library_error`` fixture), never an error from inside torch.
"""

from __future__ import annotations

import math

import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from neuroplastic._c_kernels import use_native
from neuroplastic.neurons import (
    ALIF,
    LIF,
    ALIFCell,
    ALIFState,
    LeakyReadout,
    LIFCell,
    LIFConfig,
    LIFState,
    RecurrentLIF,
    RecurrentLIFState,
    SpikeLinear,
    SpikingSequential,
    alif_step,
    decay_from_tau,
    get_surrogate,
    latency_encode,
    lif_sequence,
    lif_step,
    membrane_readout,
    rate_encode,
    spike_count,
    spike_fn,
    spike_linear,
    surrogate_names,
)
from property_inputs import DTYPES, FLOATING, as_input

BAD_NUMBERS = [float("nan"), float("inf"), -float("inf"), True, False, -1.0, 0.0, "1"]

sizes = st.integers(1, 6)
# about half of the draws from the valid class (B, T >= 1, float32), the rest from every class
batches = st.one_of(st.integers(1, 3), st.integers(0, 3))
steps = st.one_of(st.integers(1, 3), st.integers(0, 3))
dtypes = st.one_of(st.just(torch.float32), st.sampled_from(DTYPES))
specials = st.sampled_from(["none", "nan", "inf"])


def make_input(shape, dtype, special="none", scale=2.0, seed=0):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    return as_input(x, dtype, special, bool_above=1.0, int_scale=3.0)


def tol(dtype):
    return {torch.float64: 1e-10, torch.float32: 1e-5}.get(dtype, 2e-2)


# -- the LIF family over sequences ----------------------------------------------------------------------------

STATE_KINDS = ["none", "own", "wrong_batch", "lif", "alif", "recurrent", "float64", "meta", "tuple", "missing"]


def foreign_state(kind, batch, n, like):
    zeros = torch.zeros(batch, n, dtype=like.dtype)
    return {"lif": LIFState(zeros), "alif": ALIFState(zeros, zeros.clone()),
            "recurrent": RecurrentLIFState(zeros, zeros.clone(), None), "tuple": (zeros,)}[kind]


def build(kind, n, backend):
    if kind == "lif":
        return LIF(n, tau=3.0, threshold=0.5, backend=backend)
    if kind == "alif":
        return ALIF(n, tau=3.0, threshold=0.5, tau_adapt=5.0)
    if kind == "readout":
        return LeakyReadout(n, tau=3.0)
    return RecurrentLIF(2, n, adaptive=kind == "recurrent_adaptive", tau=3.0, threshold=0.5)


OWN_STATE = {"lif": LIFState, "alif": ALIFState, "readout": LIFState, "recurrent": RecurrentLIFState,
             "recurrent_adaptive": RecurrentLIFState}


def own_state(module, kind, batch, n, dtype, device="cpu"):
    zeros = torch.zeros(batch, n, dtype=dtype, device=device)
    if kind == "alif":
        return ALIFState(zeros, zeros.clone())
    if kind.startswith("recurrent"):
        return RecurrentLIFState(zeros, zeros.clone(), zeros.clone() if kind == "recurrent_adaptive" else None)
    return LIFState(zeros)


@given(kind=st.sampled_from(list(OWN_STATE)), backend=st.sampled_from(["fused", "step"]), n=sizes, batch=batches,
       t=steps, dtype=dtypes, special=specials,
       state_kind=st.one_of(st.sampled_from(["none", "own"]), st.sampled_from(STATE_KINDS)))
def test_sequence_modules_shapes_states_and_errors(library_error, kind, backend, n, batch, t, dtype, special,
                                                   state_kind):
    module = build(kind, n, backend)
    features = 2 if kind.startswith("recurrent") else n
    x = make_input((batch, t, features), dtype, special)
    valid = batch >= 1 and t >= 1 and dtype in FLOATING
    if kind.startswith("recurrent"):
        valid = valid and dtype == torch.float32  # a module with weights refuses another dtype
    state = None
    if state_kind == "own":
        state = own_state(module, kind, batch, n, x.dtype if x.is_floating_point() else torch.float32)
    elif state_kind == "wrong_batch":
        state = own_state(module, kind, batch + 1, n, torch.float32)
        valid = False
    elif state_kind in ("lif", "alif", "recurrent", "tuple"):
        state = foreign_state(state_kind, batch, n, x if x.is_floating_point() else torch.zeros(()))
        valid = valid and type(state) is OWN_STATE[kind] and kind != "recurrent_adaptive"  # (b is None)
    elif state_kind == "float64":
        state = own_state(module, kind, batch, n, torch.float64)
        valid = valid and dtype == torch.float64
    elif state_kind == "meta":
        state = own_state(module, kind, batch, n, torch.float32, device="meta")
        valid = False
    elif state_kind == "missing":
        state = own_state(module, kind, batch, n, x.dtype if x.is_floating_point() else torch.float32)
        if kind in ("alif", "recurrent_adaptive"):
            state = state._replace(b=None)
            valid = False
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            module(x, state)
        return
    out, new_state = module(x, state)
    assert out.shape == (batch, t, n)
    assert out.dtype == x.dtype
    assert type(new_state) is OWN_STATE[kind]
    assert new_state.v.shape == (batch, n) and new_state.v.dtype == x.dtype
    if special == "none":
        assert bool(torch.isfinite(out).all())
    if kind != "readout":
        assert bool(((out == 0) | (out == 1)).all())
    # the state continues the sequence: one call on [x, x] equals two calls
    again, _ = module(x, new_state)
    both, _ = module(torch.cat([x, x], 1), state)
    torch.testing.assert_close(both, torch.cat([out, again], 1), rtol=tol(dtype), atol=tol(dtype), equal_nan=True)


@given(n=sizes, batch=st.integers(1, 3), t=st.integers(1, 4), dtype=st.sampled_from([torch.float32, torch.float64]),
       reset=st.sampled_from(["hard", "soft", "none"]), rectifier=st.booleans(), detach_reset=st.booleans(),
       surrogate=st.sampled_from(["fast_sigmoid", "atan", "triangle", "sigmoid", "rectangle"]),
       with_state=st.booleans())
def test_lif_backends_agree(n, batch, t, dtype, reset, rectifier, detach_reset, surrogate, with_state):
    """fused (C kernels), fused (PyTorch path, NEUROPLASTIC_NATIVE=0) and step give the same spikes, final
    membrane and gradients."""
    results = []
    for backend, native in (("fused", True), ("fused", False), ("step", True)):
        torch.manual_seed(0)
        lif = LIF(n, tau=2.0, threshold=0.7, backend=backend, reset=reset, rectifier=rectifier,
                  detach_reset=detach_reset, surrogate=surrogate, learn_tau=True, learn_threshold=True).to(dtype)
        x = (make_input((batch, t, n), dtype, seed=1) * 1.3).requires_grad_()
        state = LIFState(make_input((batch, n), dtype, seed=2) * 0.5) if with_state else None
        with use_native(native):
            out, new_state = lif(x, state)
            (out.sum() + (new_state.v * 0.5).sum()).backward()
        results.append((out.detach(), new_state.v.detach(), x.grad, lif.log_tau.grad, lif.threshold.grad))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            torch.testing.assert_close(a, b, rtol=tol(dtype) * 10, atol=tol(dtype) * 10)


@given(n=sizes, batch=batches, t=steps, dtype=dtypes, v0=st.sampled_from(["none", "ok", "batch", "dtype"]),
       param=st.sampled_from(["ok", "shape", "nan"]))
def test_lif_sequence_checks_its_arguments(library_error, n, batch, t, dtype, v0, param):
    x = make_input((batch, t, n), dtype)
    config = LIFConfig("soft", 0.0, False, False, get_surrogate("fast_sigmoid"))
    valid = batch >= 1 and t >= 1 and dtype in FLOATING
    like = x.dtype if x.is_floating_point() else torch.float32
    other = torch.float32 if like == torch.float64 else torch.float64
    v = {"none": None, "ok": torch.zeros(batch, n, dtype=like), "batch": torch.zeros(batch + 1, n, dtype=like),
         "dtype": torch.zeros(batch, n, dtype=other)}[v0]
    valid = valid and v0 in ("none", "ok")
    decay = torch.full((n,), 0.5, dtype=like)
    threshold = torch.ones(n, dtype=like)
    if param == "shape":
        decay = torch.full((n + 1,), 0.5, dtype=like)
        valid = False
    elif param == "nan":
        threshold = threshold.clone()
        threshold[0] = float("nan")
        valid = False
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            lif_sequence(x, v, decay, threshold, config)
        return
    spikes, v_out = lif_sequence(x, v, decay, threshold, config)
    assert spikes.shape == x.shape and v_out.shape == (batch, n) and spikes.dtype == x.dtype


# -- construction --------------------------------------------------------------------------------------------

@given(name=st.sampled_from(["tau", "threshold", "dt", "v_reset", "tau_adapt", "beta"]),
       value=st.sampled_from(BAD_NUMBERS),
       kind=st.sampled_from(["lif", "alif", "readout", "recurrent"]))
def test_bad_hyperparameters_are_refused_at_construction(library_error, name, value, kind):
    if kind in ("lif", "readout", "recurrent") and name in ("tau_adapt", "beta"):
        name = "tau"
    if kind == "readout" and name in ("threshold", "v_reset"):
        name = "dt"
    accepted = type(value) is float and ((name == "v_reset" and value in (-1.0, 0.0))
                                         or (name == "beta" and value == 0.0))
    kwargs = {name: value}
    make = {"lif": lambda: LIF(3, **kwargs), "alif": lambda: ALIF(3, **kwargs),
            "readout": lambda: LeakyReadout(3, **kwargs), "recurrent": lambda: RecurrentLIF(2, 3, **kwargs)}[kind]
    if accepted:
        make()
        return
    with library_error():
        make()


@given(arg=st.sampled_from(["size", "backend", "reset", "surrogate", "rectifier", "detach_reset", "learn_tau",
                            "heterogeneous", "bias", "adaptive", "max_density"]),
       value=st.sampled_from([0, -1, True, 1.5, "x", None, float("nan")]))
def test_bad_structural_arguments_are_refused(library_error, arg, value):
    if arg == "size":
        calls = [lambda: LIF(value), lambda: LeakyReadout(value), lambda: RecurrentLIF(value, 3),
                 lambda: SpikeLinear(value, 3)]
        refused = True
    elif arg in ("backend", "reset", "surrogate"):
        calls = [lambda: LIF(3, **{arg: value})]
        refused = True
    elif arg == "max_density":
        calls = [lambda: SpikeLinear(2, 3, max_density=value)]
        refused = not (isinstance(value, float) and 0 <= value <= 1) and not (
            type(value) is int and 0 <= value <= 1)
    elif arg in ("bias", "adaptive"):
        calls = [lambda: RecurrentLIF(2, 3, **{arg: value})]
        refused = not isinstance(value, bool)
    else:
        calls = [lambda: LIF(3, **{arg: value})]
        refused = not isinstance(value, bool)
    for call in calls:
        if refused:
            with library_error():
                call()
        else:
            call()


# -- step functions ------------------------------------------------------------------------------------------

PER_NEURON = ["number", "0d", "n", "n+1", "nan", "nan_tensor", "bool", "negative"]


def per_neuron(kind, n, dtype, value):
    return {"number": value, "0d": torch.tensor(value, dtype=dtype), "n": torch.full((n,), value, dtype=dtype),
            "n+1": torch.full((n + 1,), value, dtype=dtype), "nan": float("nan"),
            "nan_tensor": torch.full((n,), float("nan"), dtype=dtype), "bool": True, "negative": -value}[kind]


@given(n=sizes, batch=batches, dtype=dtypes, v_kind=st.sampled_from(["same", "0d", "wrong", "list"]),
       decay=st.sampled_from(PER_NEURON), threshold=st.sampled_from(PER_NEURON), adaptive=st.booleans(),
       reset=st.sampled_from(["soft", "hard", "none", "zero"]))
def test_step_functions(library_error, n, batch, dtype, v_kind, decay, threshold, adaptive, reset):
    x = make_input((batch, n), dtype)
    like = x.dtype if x.is_floating_point() else torch.float32
    v = {"same": torch.zeros(batch, n, dtype=like), "0d": torch.zeros((), dtype=like),
         "wrong": torch.zeros(batch + 1, n + 1, dtype=like), "list": [0.0] * n}[v_kind]
    valid = (x.is_floating_point() and v_kind in ("same", "0d") and decay not in ("n+1", "nan", "nan_tensor", "bool")
             and threshold not in ("n+1", "nan", "nan_tensor", "bool", "negative") and reset != "zero")
    d = per_neuron(decay, n, like, 0.5)
    th = per_neuron(threshold, n, like, 0.8)
    if adaptive:
        b = v if isinstance(v, list) else v.clone()
        call = lambda: alif_step(v, b, x, d, 0.9, th, 0.2, reset=reset)  # noqa: E731
    else:
        call = lambda: lif_step(v, x, d, th, reset=reset)  # noqa: E731
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            call()
        return
    out = call()
    assert all(o.shape == x.shape for o in out)
    assert out[0].dtype == x.dtype
    assert bool(((out[0] == 0) | (out[0] == 1)).all())


@given(tau=st.sampled_from([2.0, 1, 0.0, -1.0, float("nan"), float("inf"), True, "2", "tensor", "tensor_bad",
                            "tensor_int", "tensor_bool"]),
       dt=st.sampled_from([1.0, 0.5, 0.0, -1.0, float("nan"), float("inf"), True]))
def test_decay_from_tau(library_error, tau, dt):
    values = {"tensor": torch.tensor([1.0, 2.0]), "tensor_bad": torch.tensor([1.0, 0.0]),
              "tensor_int": torch.tensor([1, 2]), "tensor_bool": torch.tensor([True, True])}
    tau_value = values.get(tau, tau) if isinstance(tau, str) else tau
    valid_tau = (tau in (2.0, 1, float("inf"), "tensor", "tensor_int")) and not isinstance(tau, bool)
    valid_dt = dt in (1.0, 0.5) and not isinstance(dt, bool)
    if not (valid_tau and valid_dt):
        with library_error():
            decay_from_tau(tau_value, dt)
        return
    decay = decay_from_tau(tau_value, dt)
    assert decay.is_floating_point() and bool(((decay > 0) & (decay <= 1)).all())
    assert decay.shape == (tau_value.shape if isinstance(tau_value, torch.Tensor) else ())


@given(surrogate=st.sampled_from(list(surrogate_names()) + ["nope", 3]), dtype=dtypes, special=specials,
       shape=st.lists(st.integers(0, 3), min_size=0, max_size=3))
def test_spike_fn(library_error, surrogate, dtype, special, shape):
    x = make_input(tuple(shape), dtype, special)
    x = x - 1 if dtype in FLOATING else x
    if surrogate not in surrogate_names() or not x.is_floating_point():
        with library_error():
            spike_fn(x, surrogate)
        return
    x = x.requires_grad_()
    out = spike_fn(x, surrogate)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, (x.detach() > 0).to(x.dtype))
    out.sum().backward()
    assert x.grad.shape == x.shape


# -- encoders and readouts -----------------------------------------------------------------------------------

@given(batch=batches, n=sizes, t=st.one_of(st.sampled_from([1, 3]), st.sampled_from([0, 1, 3, -1, True, 2.0])),
       dtype=dtypes, special=st.one_of(st.just("none"), specials),
       method=st.sampled_from(["bernoulli", "poisson", "gauss"]), normalize=st.booleans(),
       encoder=st.sampled_from(["rate", "latency"]))
def test_encoders(library_error, batch, n, t, dtype, special, method, normalize, encoder):
    x = make_input((batch, n), dtype, special, scale=1.0)
    valid = (x.is_floating_point() and (special == "none" or x.numel() == 0) and type(t) is int and t >= 1
             and (encoder == "latency" or method != "gauss"))
    if encoder == "rate":
        call = lambda: rate_encode(x, t, torch.Generator().manual_seed(0), method=method)  # noqa: E731
    else:
        call = lambda: latency_encode(x, t, normalize=normalize)  # noqa: E731
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            call()
        return
    out = call()
    assert out.shape == (batch, t, n) and out.dtype == x.dtype
    assert bool(((out == 0) | (out == 1)).all())
    if encoder == "latency":
        assert bool((out.sum(1) <= 1).all())


@given(shape=st.lists(st.integers(0, 3), min_size=0, max_size=4), dtype=dtypes,
       reduce=st.sampled_from(["max", "mean", "last", "min"]), readout=st.sampled_from(["count", "membrane"]))
def test_readouts(library_error, shape, dtype, reduce, readout):
    x = make_input(tuple(shape), dtype)
    if readout == "count":
        valid = len(shape) >= 2
        call = lambda: spike_count(x)  # noqa: E731
    else:
        valid = len(shape) >= 2 and reduce != "min" and x.is_floating_point() and shape[1] >= 1
        call = lambda: membrane_readout(x, reduce)  # noqa: E731
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            call()
        return
    out = call()
    assert out.shape == tuple(shape[:1] + shape[2:])


# -- event-driven linear layer -------------------------------------------------------------------------------

@given(leading=st.lists(st.integers(0, 3), min_size=0, max_size=2), n_in=sizes, n_out=sizes, dtype=dtypes,
       weight_dtype=st.sampled_from([torch.float32, torch.float64]), density=st.sampled_from([0.0, 0.2, 1.0]),
       bias=st.sampled_from(["none", "ok", "wrong"]), mismatch=st.booleans())
def test_spike_linear(library_error, leading, n_in, n_out, dtype, weight_dtype, density, bias, mismatch):
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand((*leading, n_in), generator=gen) < density).to(dtype) if dtype != torch.bool else \
        torch.rand((*leading, n_in), generator=gen) < density
    weight = torch.randn(n_out, n_in + (1 if mismatch else 0), generator=gen, dtype=weight_dtype)
    b = {"none": None, "ok": torch.randn(n_out, dtype=weight_dtype), "wrong": torch.randn(n_out + 1,
                                                                                       dtype=weight_dtype)}[bias]
    valid = dtype == weight_dtype and not mismatch and bias != "wrong"
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            spike_linear(x, weight, b)
        return
    out = spike_linear(x, weight, b)
    assert out.shape == (*leading, n_out) and out.dtype == dtype
    expected = torch.nn.functional.linear(x, weight, b)
    torch.testing.assert_close(out, expected, rtol=tol(dtype), atol=tol(dtype))
    with use_native(False):
        torch.testing.assert_close(spike_linear(x, weight, b), expected, rtol=tol(dtype), atol=tol(dtype))


# -- a chain of layers ---------------------------------------------------------------------------------------

@given(batch=batches, t=steps, n=sizes, dtype=dtypes, first=st.sampled_from(["lif", "linear"]),
       state=st.sampled_from(["none", "own", "short", "list"]))
@settings(max_examples=20)
def test_spiking_sequential(library_error, batch, t, n, dtype, first, state):
    layers = [LIF(n, backend="fused"), torch.nn.Linear(n, 2), LeakyReadout(2)]
    if first == "linear":
        layers = [torch.nn.Linear(n, n)] + layers
    model = SpikingSequential(*layers)
    x = make_input((batch, t, n), dtype)
    valid = batch >= 1 and t >= 1 and dtype == torch.float32
    states = None
    if state != "none" and valid:
        _, states = model(x)
        if state == "short":
            states = states[:-1]
            valid = False
        elif state == "list":
            states = list(states)
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            model(x, states)
        return
    out, new_states = model(x, states)
    assert out.shape == (batch, t, 2) and len(new_states) == len(layers)
    # seen non-finite once in a full parallel run (2026-12-07) and never reproduced in isolation: keep what
    # would identify it
    assert math.isfinite(float(out.sum())), (x, states, out, new_states, dict(model.named_parameters()))



# -- regression tests: each failed before the fix it documents ------------------------------------------------

def test_regression_lif_refuses_a_state_of_another_module(library_error):
    zeros = torch.zeros(2, 3)
    with library_error() as info:  # was: ALIFState accepted, its b ignored
        LIF(3)(torch.rand(2, 4, 3), ALIFState(zeros, zeros))
    assert "state must be a LIFState or None, got ALIFState" in str(info.value)
    with library_error():  # was: AttributeError ('tuple' object has no attribute 'v')
        LIF(3)(torch.rand(2, 4, 3), (zeros,))
    with library_error():  # was: TypeError from torch (None * tensor)
        ALIF(3)(torch.rand(2, 4, 3), ALIFState(zeros, None))
    with library_error():  # was: a RuntimeError from torch (shape [2, 4] against [2, 3])
        LIF(3, backend="step")(torch.rand(2, 4, 3), LIFState(torch.zeros(2, 4)))
    with library_error():  # was: accepted, b ignored and returned
        RecurrentLIF(2, 3)(torch.rand(2, 4, 2), RecurrentLIFState(zeros, zeros, zeros))


def test_regression_lif_state_of_another_dtype_or_on_meta_is_refused(library_error):
    x = torch.rand(2, 4, 3)
    with library_error() as info:  # was: float64 spikes from backend="step", float32 from "fused"
        LIF(3, backend="step")(x, LIFState(torch.zeros(2, 3, dtype=torch.float64)))
    assert "dtype torch.float64" in str(info.value)
    with library_error():  # was: NotImplementedError from torch on the meta device
        LeakyReadout(3)(x, LIFState(torch.zeros(2, 3, device="meta")))


def test_regression_lif_backends_give_the_same_dtype_for_half_inputs():
    x = torch.rand(2, 4, 3).to(torch.bfloat16)
    fused, _ = LIF(3, backend="fused")(x)
    step, state = LIF(3, backend="step")(x)
    # was: bfloat16 from "fused", float32 (promoted by the float32 buffers) from "step"
    assert fused.dtype == step.dtype == state.v.dtype == torch.bfloat16
    assert torch.equal(fused, step)
    assert ALIF(3)(x)[0].dtype == LeakyReadout(3)(x)[0].dtype == torch.bfloat16


def test_regression_lif_sequence_checks_its_arguments(library_error):
    config = LIFConfig("soft", 0.0, False, False, get_surrogate("fast_sigmoid"))
    with library_error():  # was: accepted, NaN threshold -> no spike ever
        lif_sequence(torch.rand(1, 2, 3), None, torch.full((3,), 0.5), torch.tensor([1.0, float("nan"), 1.0]),
                     config)
    with library_error():  # was: an empty result from the kernel for T = 0
        lif_sequence(torch.rand(1, 0, 3), None, torch.full((3,), 0.5), torch.ones(3), config)
    with library_error():  # was: a RuntimeError from torch (size mismatch)
        lif_sequence(torch.rand(1, 2, 3), None, torch.full((4,), 0.5), torch.ones(3), config)


def test_regression_spike_linear_refuses_integer_inputs_and_a_bias_of_another_dtype(library_error):
    weight = torch.randn(2, 3)
    with library_error():  # was: RuntimeError from torch (long int != float)
        spike_linear(torch.zeros(4, 3, dtype=torch.int64), weight)
    with library_error():  # was: RuntimeError from torch
        spike_linear(torch.zeros(4, 3, dtype=torch.bool), weight)
    with library_error():  # was: RuntimeError from torch
        spike_linear(torch.zeros(4, 3), weight, torch.zeros(2, dtype=torch.float64))
    with library_error():  # was: accepted as max_density 1.0
        SpikeLinear(3, 2, max_density=True)
    with library_error():  # was: TypeError from torch.empty inside nn.Linear
        SpikeLinear(1.5, 2)


def test_regression_latency_encode_normalize_with_an_empty_batch():
    # was: RuntimeError "cannot reshape tensor of 0 elements into shape [0, -1]"
    assert latency_encode(torch.rand(0, 3), 4, normalize=True).shape == (0, 4, 3)


def test_regression_readouts_refuse_what_they_cannot_reduce(library_error):
    with library_error():  # was: IndexError from torch (max of an empty dimension)
        membrane_readout(torch.rand(2, 0, 3))
    with library_error():  # was: RuntimeError from torch (mean of a long tensor)
        membrane_readout(torch.ones(2, 3, 4, dtype=torch.int64), "mean")
    with library_error():  # was: IndexError from torch
        spike_count(torch.rand(2, 3), dim=5)


def test_regression_spike_fn_refuses_an_integer_tensor(library_error):
    with library_error():  # was: int64 spikes, then a RuntimeError in backward
        spike_fn(torch.tensor([1, -1]))


def test_regression_step_functions(library_error):
    with library_error():  # was: a NaN number refused but a NaN tensor decay accepted (membrane NaN)
        lif_step(torch.zeros(2, 3), torch.rand(2, 3), torch.tensor(float("nan")))
    with library_error():  # was: accepted; float spikes from an int64 input
        lif_step(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.int64), 0.5)
    with library_error():  # was: float64 spikes for a float32 input
        lif_step(torch.zeros(2, 3, dtype=torch.float64), torch.rand(2, 3), 0.5)
    with library_error():  # was: a bool tensor accepted as time constants
        decay_from_tau(torch.tensor([True, True]))
    # a 0-d float32 zero membrane still broadcasts against a float64 input (it does not widen the spikes)
    assert lif_step(torch.zeros(()), torch.rand(2, 3, dtype=torch.float64), 0.5)[0].dtype == torch.float64


def test_regression_tau_range_must_be_finite_numbers(library_error):
    for tau_range in ((True, 2.0), (1.0, float("inf"))):
        with library_error():  # was: accepted (True as 1; an infinite time constant, so a decay of 1)
            LIF(3, heterogeneous=True, tau_range=tau_range)


@given(cell=st.sampled_from(["lif", "alif"]), n=sizes, batch=batches, dtype=dtypes,
       state_kind=st.one_of(st.sampled_from(["none", "own"]), st.sampled_from(STATE_KINDS)))
def test_cells(library_error, cell, n, batch, dtype, state_kind):
    """One step ``[B, N]``: the same checks as the sequence modules (an empty batch is a valid step)."""
    module = (LIFCell if cell == "lif" else ALIFCell)(n, tau=3.0, threshold=0.5)
    x = make_input((batch, n), dtype)
    like = x.dtype if x.is_floating_point() else torch.float32
    kind = "alif" if cell == "alif" else "lif"
    valid = x.is_floating_point()
    state = None
    if state_kind in ("own", "missing"):
        state = own_state(module, kind, batch, n, like)
        if state_kind == "missing" and cell == "alif":
            state, valid = state._replace(b=None), False
    elif state_kind == "wrong_batch":
        state, valid = own_state(module, kind, batch + 1, n, torch.float32), False
    elif state_kind in ("lif", "alif", "recurrent", "tuple"):
        state = foreign_state(state_kind, batch, n, torch.zeros((), dtype=like))
        valid = valid and state_kind == kind
    elif state_kind == "float64":
        state = own_state(module, kind, batch, n, torch.float64)
        valid = valid and dtype == torch.float64
    elif state_kind == "meta":
        state, valid = own_state(module, kind, batch, n, torch.float32, device="meta"), False
    event("valid" if valid else "invalid")
    if not valid:
        with library_error():
            module(x, state)
        return
    spike, new_state = module(x, state)
    assert spike.shape == (batch, n) and spike.dtype == x.dtype and new_state.v.shape == (batch, n)
    sequence = (LIF(n, tau=3.0, threshold=0.5) if cell == "lif" else ALIF(n, tau=3.0, threshold=0.5))
    if batch:
        torch.testing.assert_close(sequence(x[:, None], state)[0][:, 0], spike)


def test_regression_flags_must_be_bools(library_error):
    for make in (lambda: LIF(3, rectifier="no"), lambda: LIF(3, learn_tau=1), lambda: RecurrentLIF(2, 3, adaptive=1),
                 lambda: RecurrentLIF(2, 3, bias="yes")):
        with library_error():  # was: any truthy value accepted
            make()


def test_regression_spiking_sequential_checks_its_input(library_error):
    model = SpikingSequential(torch.nn.Linear(3, 3), LIF(3))
    with library_error():  # was: RuntimeError from inside nn.Linear (Double and Float)
        model(torch.rand(2, 4, 3, dtype=torch.float64))
    with library_error():  # was: an error from the LIF behind the Linear, or silently [0, T, ...] without one
        SpikingSequential(torch.nn.Linear(3, 3))(torch.rand(0, 4, 3))
