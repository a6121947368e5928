"""Property-based tests of the plastic spiking layers' boundaries and of the spike traces (hypothesis).

Every backend (``SPIKING_BACKENDS``) and backprop mode (``SPIKING_BACKPROP_MODES``) of :class:`PlasticLIF` and
:class:`PlasticRecurrentLIF`, random batch sizes and sequence lengths (0 and 1 included), input dtypes, non-finite
inputs, and states of the layer, of another layer, of another batch, dtype or device (meta) or with missing
fields: a valid call gives the documented shapes and the same values on every backend (C kernels and PyTorch
path too), an invalid one a ValueError/TypeError from the library's checks.
"""

from __future__ import annotations

import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from neuroplastic._c_kernels import use_native
from neuroplastic.plasticity import (
    SPIKING_BACKENDS,
    SPIKING_BACKPROP_MODES,
    PlasticLIF,
    PlasticRecurrentLIF,
    PlasticSpikingState,
    spike_trace,
    trace_step,
)
from property_inputs import DTYPES, as_input

STATE_KINDS = ["none", "own", "wrong_batch", "other_layer", "float64", "meta", "no_trace", "membrane_none", "tuple"]


def make_input(shape, dtype, special="none", seed=0):
    x = (torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) < 0.4).double() * 1.5
    return as_input(x, dtype, special)


def build(recurrent, n_in, n_out, backend, backprop, rule="hebbian"):
    torch.manual_seed(0)
    cls = PlasticRecurrentLIF if recurrent else PlasticLIF
    return cls(n_in, n_out, backend=backend, backprop=backprop, rule=rule, alpha="neuron", alpha_init=0.5,
               eta_init=0.3, tau_mem=3.0, threshold=0.5)


@given(recurrent=st.booleans(), backend=st.sampled_from(SPIKING_BACKENDS),
       backprop=st.sampled_from(SPIKING_BACKPROP_MODES), n_in=st.integers(1, 5), n_out=st.integers(1, 5),
       batch=st.one_of(st.integers(1, 3), st.integers(0, 3)), t=st.one_of(st.integers(1, 3), st.integers(0, 3)),
       dtype=st.one_of(st.just(torch.float32), st.sampled_from(DTYPES)),
       special=st.sampled_from(["none", "nan", "inf"]),
       state_kind=st.one_of(st.sampled_from(["none", "own"]), st.sampled_from(STATE_KINDS)))
@settings(max_examples=40)
def test_plastic_spiking_layers(library_error, recurrent, backend, backprop, n_in, n_out, batch, t, dtype, special,
                                state_kind):
    if recurrent and backend == "fused":
        with library_error():  # documented: the fused backend is the feed-forward layer's only
            build(recurrent, n_in, n_out, backend, backprop)
        return
    layer = build(recurrent, n_in, n_out, backend, backprop)
    x = make_input((batch, t, n_in), dtype, special)
    valid = batch >= 1 and t >= 1 and dtype == torch.float32  # the layer's dtype
    valid = valid and special == "none"  # non-finite inputs are refused (the backends would disagree)
    state = None
    if state_kind in ("own", "no_trace", "membrane_none", "tuple", "float64", "meta"):
        b = max(batch, 1)
        state = layer.initial_state(b)
        if state_kind == "no_trace":
            state = state._replace(plastic=state.plastic._replace(trace=None))
        elif state_kind == "membrane_none":
            state = state._replace(membrane=None)
        elif state_kind == "tuple":
            state = tuple(state)
        elif state_kind == "float64":
            state = layer.initial_state(b, dtype=torch.float64)
        elif state_kind == "meta":
            state = layer.initial_state(b, device="meta")
        valid = valid and state_kind == "own"
    elif state_kind == "wrong_batch":
        state = layer.initial_state(batch + 1)
        valid = False
    elif state_kind == "other_layer":
        other = build(not recurrent, n_in, n_out + 1, "dense", "autograd")
        state = other.initial_state(max(batch, 1))
        valid = False
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            layer(x, state)
        return
    spikes, new_state = layer(x, state)
    assert spikes.shape == (batch, t, n_out) and spikes.dtype == torch.float32
    assert isinstance(new_state, PlasticSpikingState)
    assert new_state.membrane.shape == (batch, n_out) and new_state.pre_trace.shape == (batch, layer._pre_size)
    assert new_state.plastic.trace.shape == (batch, layer._pre_size, n_out)
    assert bool(((spikes == 0) | (spikes == 1)).all())
    # the same values on the reference backend (dense, autograd) and on the PyTorch path of the kernels
    reference = build(recurrent, n_in, n_out, "dense", "autograd")
    reference.load_state_dict(layer.state_dict())
    ref_spikes, ref_state = reference(x, state)
    torch.testing.assert_close(spikes, ref_spikes, equal_nan=True)
    torch.testing.assert_close(new_state.membrane, ref_state.membrane, rtol=1e-5, atol=1e-5, equal_nan=True)
    torch.testing.assert_close(new_state.plastic.trace, ref_state.plastic.trace, rtol=1e-5, atol=1e-5,
                               equal_nan=True)
    with use_native(False):
        py_spikes, py_state = layer(x, state)
    torch.testing.assert_close(spikes, py_spikes, equal_nan=True)
    torch.testing.assert_close(new_state.membrane, py_state.membrane, rtol=1e-5, atol=1e-5, equal_nan=True)
    # the state continues the sequence
    again, _ = layer(x, new_state)
    both, _ = layer(torch.cat([x, x], 1), state)
    torch.testing.assert_close(both, torch.cat([spikes, again], 1), equal_nan=True)


@given(recurrent=st.booleans(), batch=st.integers(1, 3), t=st.integers(1, 4), rule=st.sampled_from(["hebbian",
                                                                                                 "oja", "bcm"]),
       backprop=st.sampled_from(SPIKING_BACKPROP_MODES))
@settings(max_examples=15)
def test_plastic_spiking_backends_agree_in_float64(recurrent, batch, t, rule, backprop):
    """Every applicable backend gives the dense backend's spikes, final state and gradients (float64)."""
    results = []
    backends = ["dense", "lowrank"] + ([] if recurrent or rule != "hebbian" else ["fused"])
    x = make_input((batch, t, 3), torch.float64, seed=1) * 2
    for backend in backends:
        layer = build(recurrent, 3, 4, backend, backprop, rule).double()
        spikes, state = layer(x)
        (spikes.sum() + state.membrane.sum() + state.plastic.trace.sum()).backward()
        results.append((spikes.detach(), state.membrane.detach(), state.plastic.trace.detach(),
                        layer.weight.grad))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@given(recurrent=st.booleans(), backend=st.sampled_from(["auto", "dense", "lowrank"]), batch=st.integers(1, 3),
       t=st.integers(1, 3), kind=st.one_of(st.just("ok"), st.sampled_from(["ok", "float64", "int64", "meta", "nan",
                                                                           "shape", "missing", "unexpected"])))
@settings(max_examples=20)
def test_modulator_inputs(library_error, recurrent, backend, batch, t, kind):
    """A layer built with ``modulator_input_size=S`` reads ``modulator_inputs [B, T, S]`` of its dtype and device."""
    cls = PlasticRecurrentLIF if recurrent else PlasticLIF
    torch.manual_seed(0)
    layer = cls(2, 3, modulation="simple", rule="hebbian", alpha="neuron",
                modulator_input_size=None if kind == "unexpected" else 2, backend=backend)
    x = make_input((batch, t, 2), torch.float32)
    m = {"ok": torch.rand(batch, t, 2), "float64": torch.rand(batch, t, 2, dtype=torch.float64),
         "int64": torch.ones(batch, t, 2, dtype=torch.int64), "meta": torch.rand(batch, t, 2, device="meta"),
         "nan": torch.full((batch, t, 2), float("nan")), "shape": torch.rand(batch, t + 1, 2), "missing": None,
         "unexpected": torch.rand(batch, t, 2)}[kind]
    event(kind)
    if kind != "ok":
        with library_error():
            layer(x, None, m)
        return
    spikes, state = layer(x, None, m)
    assert spikes.shape == (batch, t, 3)
    reference = cls(2, 3, modulation="simple", rule="hebbian", alpha="neuron", modulator_input_size=2,
                    backend="dense")
    reference.load_state_dict(layer.state_dict())
    ref_spikes, ref_state = reference(x, None, m)
    torch.testing.assert_close(spikes, ref_spikes)
    torch.testing.assert_close(state.plastic.trace, ref_state.plastic.trace, rtol=1e-5, atol=1e-5)


BAD = [float("nan"), float("inf"), -1.0, 0.0, True, "1"]


@given(name=st.sampled_from(["tau_mem", "threshold", "tau_pre", "tau_post", "dt", "reset", "surrogate", "rectifier",
                             "chunk_size", "backprop", "backend", "learn_trace_tau"]),
       value=st.sampled_from(BAD + [None, 2]), recurrent=st.booleans())
def test_bad_hyperparameters_are_refused_at_construction(library_error, name, value, recurrent):
    cls = PlasticRecurrentLIF if recurrent else PlasticLIF
    accepted = {
        "chunk_size": value is None or value == 2 and not isinstance(value, bool),
        "rectifier": isinstance(value, bool), "learn_trace_tau": isinstance(value, bool),
    }.get(name, type(value) in (int, float) and value == value and value not in (float("inf"), -1.0, 0.0))
    if name in ("reset", "surrogate", "backprop", "backend"):
        accepted = False
    if accepted:
        cls(2, 3, **{name: value})
        return
    with library_error():
        cls(2, 3, **{name: value})


# -- spike traces ------------------------------------------------------------------------------------------

@given(batch=st.integers(0, 3), t=st.integers(0, 3), n=st.integers(1, 5), dtype=st.sampled_from(DTYPES),
       decay=st.sampled_from(["number", "0d", "n", "n+1", "nan", "bool"]),
       initial=st.sampled_from(["none", "ok", "batch", "dtype"]))
def test_spike_trace(library_error, batch, t, n, dtype, decay, initial):
    spikes = make_input((batch, t, n), dtype)
    like = spikes.dtype if spikes.is_floating_point() else torch.float32
    d = {"number": 0.5, "0d": torch.tensor(0.5, dtype=like), "n": torch.full((n,), 0.5, dtype=like),
         "n+1": torch.full((n + 1,), 0.5, dtype=like), "nan": float("nan"), "bool": True}[decay]
    other = torch.float32 if like == torch.float64 else torch.float64
    init = {"none": None, "ok": torch.ones(batch, n, dtype=like), "batch": torch.ones(batch + 1, n, dtype=like),
            "dtype": torch.ones(batch, n, dtype=other)}[initial]
    valid = spikes.is_floating_point() and decay not in ("n+1", "nan", "bool") and initial in ("none", "ok")
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            spike_trace(spikes, d, init)
        return
    trace = spike_trace(spikes, d, init)
    assert trace.shape == spikes.shape and trace.dtype == spikes.dtype
    # step by step with trace_step
    state = torch.zeros(batch, n, dtype=like) if init is None else init
    for step in range(t):
        state = trace_step(state, spikes[:, step], d)
        torch.testing.assert_close(trace[:, step], state)


@given(batch=st.integers(0, 3), n=st.integers(1, 5), dtype=st.sampled_from(DTYPES),
       shape=st.sampled_from(["same", "other"]), decay=st.sampled_from(["number", "n", "bn", "n+1", "nan", "str"]))
def test_trace_step(library_error, batch, n, dtype, shape, decay):
    spikes = make_input((batch, n), dtype)
    like = spikes.dtype if spikes.is_floating_point() else torch.float32
    trace = torch.ones(batch, n + (shape == "other"), dtype=like)
    d = {"number": 0.5, "n": torch.full((n,), 0.5, dtype=like), "bn": torch.full((batch, n), 0.5, dtype=like),
         "n+1": torch.full((n + 1,), 0.5, dtype=like), "nan": float("nan"), "str": "0.5"}[decay]
    valid = spikes.is_floating_point() and shape == "same" and decay not in ("n+1", "nan", "str")
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            trace_step(trace, spikes, d)
        return
    out = trace_step(trace, spikes, d)
    assert out.shape == spikes.shape and out.dtype == spikes.dtype
    torch.testing.assert_close(out, 0.5 * trace + spikes)


# -- regression tests: each failed before the fix it documents ------------------------------------------------

def test_regression_modulator_inputs_of_another_dtype_or_device(library_error):
    layer = PlasticLIF(2, 3, modulation="simple", modulator_input_size=2)
    x = torch.rand(2, 3, 2)
    with library_error():  # was: RuntimeError from torch (Double and Float)
        layer(x, None, torch.rand(2, 3, 2, dtype=torch.float64))
    with library_error():  # was: RuntimeError from torch (Tensor.item() on a meta tensor)
        layer(x, None, torch.rand(2, 3, 2, device="meta"))


def test_regression_plastic_lif_refuses_non_finite_inputs(library_error):
    x = torch.tensor([[[float("inf")]]])
    for backend in ("fused", "lowrank", "dense"):
        torch.manual_seed(0)
        layer = PlasticLIF(1, 1, backend=backend, alpha="neuron")
        with torch.no_grad():
            layer.weight.fill_(-1.0)
        with library_error():  # was: final membrane -inf from "fused" and "lowrank", NaN from "dense" (inf * 0)
            layer(x)


def test_regression_trace_step_checks_its_arguments(library_error):
    with library_error():  # was: RuntimeError from torch (size 3 against 2)
        trace_step(torch.zeros(2, 3), torch.zeros(2, 2), 0.5)
    with library_error():  # was: accepted, every trace NaN
        trace_step(torch.zeros(2, 3), torch.zeros(2, 3), float("nan"))
    with library_error():  # was: accepted, a float64 trace of float32 spikes
        trace_step(torch.zeros(2, 3), torch.zeros(2, 3), torch.full((3,), 0.5, dtype=torch.float64))


def test_regression_spike_trace(library_error):
    # was: RuntimeError "stack expects a non-empty TensorList"
    assert spike_trace(torch.zeros(2, 0, 3), 0.5).shape == (2, 0, 3)
    with library_error():  # was: RuntimeError from torch (decay [4] against [2, 3])
        spike_trace(torch.zeros(2, 1, 3), torch.full((4,), 0.5))
    with library_error():  # was: accepted, the trace in float64
        spike_trace(torch.zeros(2, 1, 3), 0.5, torch.zeros(2, 3, dtype=torch.float64))
    with library_error():  # was: accepted, a NaN trace
        spike_trace(torch.zeros(2, 1, 3), float("nan"))
