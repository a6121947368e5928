"""Property-based tests of the dynamics package's boundaries (hypothesis): the spiking reservoir (simulate,
noise_currents), the ridge readout (fit_readout, predict), the Lyapunov spectrum of a small map and the averaged
Jacobian of the smooth LIF map (lif_linearization). Valid inputs give the documented shapes (and known values
where the map is linear); invalid ones a ValueError/TypeError from the library's own checks."""

from __future__ import annotations

import math

import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from neuroplastic.dynamics import (
    fit_readout,
    lif_linearization,
    lyapunov_spectrum,
    noise_currents,
    predict,
    random_reservoir,
    simulate,
)
from property_inputs import DTYPES, as_input

BAD_NUMBERS = [float("nan"), float("inf"), -1.0, 0.0, True, "1"]


def reservoir(n, d, seed=0):
    return random_reservoir(n, inputs=d, tau_mean=4.0, tau_shape=2, recurrent_gain=1.0, input_gain=1.0,
                            bias_max=0.5, generator=torch.Generator().manual_seed(seed))


def make(shape, dtype, special="none", seed=0):
    return as_input(torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dtype,
                    special)


@given(n=st.integers(1, 6), d=st.integers(1, 3), batch=st.one_of(st.integers(1, 3), st.integers(0, 3)),
       t=st.one_of(st.integers(1, 3), st.integers(0, 3)),
       dtype=st.one_of(st.just(torch.float32), st.sampled_from(DTYPES)),
       special=st.sampled_from(["none", "nan", "inf"]), d_in=st.sampled_from(["ok", "ok", "wrong"]),
       trace_tau=st.one_of(st.just(2.0), st.sampled_from([1] + BAD_NUMBERS)),
       threshold=st.one_of(st.just(1.0), st.sampled_from([0.5] + BAD_NUMBERS)),
       net_kind=st.sampled_from(["ok", "ok", "tuple", "ragged"]))
def test_simulate(library_error, n, d, batch, t, dtype, special, d_in, trace_tau, threshold, net_kind):
    net = reservoir(n, d)
    inputs = make((batch, t, d + (d_in == "wrong")), dtype, special)
    if net_kind == "tuple":
        net = tuple(net)
    elif net_kind == "ragged":
        net = net._replace(bias=torch.zeros(n + 1))
    good_number = lambda v: type(v) in (int, float) and math.isfinite(v) and v > 0  # noqa: E731
    valid = (batch >= 1 and t >= 1 and dtype == torch.float32 and (special == "none" or inputs.numel() == 0)
             and d_in == "ok" and good_number(trace_tau) and good_number(threshold) and net_kind == "ok")
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            simulate(net, inputs, trace_tau=trace_tau, threshold=threshold)
        return
    traces, rates = simulate(net, inputs, trace_tau=trace_tau, threshold=threshold)
    assert traces.shape == (batch, t, n) and rates.shape == (n,)
    assert bool(torch.isfinite(traces).all()) and bool(((rates >= 0) & (rates <= 1)).all())
    # one batch equals its samples one by one
    for b in range(batch):
        one, _ = simulate(net, inputs[b:b + 1], trace_tau=trace_tau, threshold=threshold)
        torch.testing.assert_close(one[0], traces[b])


@given(n=st.integers(1, 6), d=st.integers(1, 3), steps=st.sampled_from([0, 1, 3, -1, True, 2.0]),
       generator=st.sampled_from(["ok", "seed"]))
def test_noise_currents(library_error, n, d, steps, generator):
    net = reservoir(n, d)
    gen = torch.Generator().manual_seed(1) if generator == "ok" else 1
    if type(steps) is not int or steps < 0 or generator != "ok":
        with library_error():
            noise_currents(net, steps, gen)
        return
    drive = noise_currents(net, steps, gen)
    assert drive.shape == (steps, n) and drive.dtype == net.weight.dtype


@given(m=st.integers(0, 6), n=st.integers(1, 4), d=st.integers(1, 3), dtype=st.sampled_from(DTYPES),
       special=st.sampled_from(["none", "nan", "inf"]), mismatch=st.booleans(),
       ridge=st.sampled_from([1e-3, 1.0, 0] + BAD_NUMBERS[:3] + [True, "1"]))
def test_fit_readout_and_predict(library_error, m, n, d, dtype, special, mismatch, ridge):
    features = make((m, n), dtype, special)
    targets = make((m + mismatch, d), torch.float32, seed=1)
    floating = features.is_floating_point()
    valid = (m >= 1 and floating and (special == "none") and not mismatch
             and type(ridge) in (int, float) and math.isfinite(ridge) and ridge >= 0)
    if valid and ridge == 0 and m < n + 1:  # singular without regularisation: an exactly singular system is
        try:                                  # refused with advice, a numerically near-singular one may solve
            fit_readout(features, targets, ridge)
        except ValueError as error:
            assert "use ridge > 0" in str(error)
        return
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            fit_readout(features, targets, ridge)
        return
    readout = fit_readout(features, targets, ridge)
    assert readout.shape == (n + 1, d) and readout.dtype == torch.float64
    assert bool(torch.isfinite(readout).all())
    prediction = predict(features, readout)
    assert prediction.shape == (m, d) and prediction.dtype == torch.float32
    with library_error():
        predict(features[:, :-1] if n > 1 else features.repeat(1, 2), readout)
    with library_error():
        predict(features, readout[:-1] if n > 0 else readout.repeat(2, 1))


@given(dim=st.integers(0, 4), steps=st.sampled_from([1, 3, 0, True]), k=st.sampled_from([None, 1, 2, 0, 5]),
       dtype=st.sampled_from(DTYPES), special=st.sampled_from(["none", "nan"]),
       method=st.sampled_from(["jvp", "jacrev", "autograd", "nope"]), dt=st.sampled_from([1.0, 0.5] + BAD_NUMBERS))
@settings(max_examples=30)
def test_lyapunov_spectrum_of_a_linear_map(library_error, dim, steps, k, dtype, special, method, dt):
    """``x -> a * x`` with ``a`` known, from the first ``k`` unit vectors: the exponents are ``log|a[:k]|`` sorted,
    divided by ``dt``."""
    a = torch.tensor([0.5, 2.0, -1.5, 0.25][:dim], dtype=torch.float64)
    x0 = make((dim,), dtype, special)
    kk = dim if k is None else k
    valid = (dim >= 1 and type(steps) is int and steps >= 1 and 1 <= kk <= dim and x0.is_floating_point()
             and special == "none" and method != "nope" and type(dt) in (int, float) and math.isfinite(dt)
             and dt > 0)
    step = lambda x: a.to(x.dtype) * x  # noqa: E731
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            lyapunov_spectrum(step, x0, steps, k, method=method, dt=dt)
        return
    vectors = torch.eye(dim, dtype=torch.float64)[:, :kk]
    if x0.dtype in (torch.float16, torch.bfloat16):
        x0 = x0.double()  # (QR has no half-precision kernel on CPU: the map runs in float64 here)
    result = lyapunov_spectrum(step, x0, steps, k, method=method, dt=dt, initial_vectors=vectors)
    expected = (a[:kk].abs().log().sort(descending=True).values / dt).to(x0.dtype)
    assert result.exponents.shape == (kk,)
    torch.testing.assert_close(result.exponents, expected, rtol=1e-4, atol=1e-4)


@given(n=st.integers(1, 5), t=st.integers(0, 5), warmup=st.sampled_from([0, 1, 2, -1, True]),
       dtype=st.sampled_from([torch.float64, torch.float32, torch.int64]),
       special=st.sampled_from(["none", "nan"]), slope=st.sampled_from([10.0, 0.0, float("nan"), True]),
       reset=st.sampled_from(["soft", "hard", "zero"]))
def test_lif_linearization(library_error, n, t, warmup, dtype, special, slope, reset):
    gen = torch.Generator().manual_seed(0)
    weight = (torch.randn(n, n, generator=gen, dtype=torch.float64) * 1.5 / math.sqrt(n)).fill_diagonal_(0.0)
    decay = torch.exp(-1.0 / (2.0 + 10.0 * torch.rand(n, generator=gen, dtype=torch.float64)))
    currents = 0.6 * torch.randn(t, n, generator=gen, dtype=torch.float64) + 0.4
    currents = make((t, n), dtype, special, seed=2) if dtype != torch.float64 or special != "none" \
        else currents
    valid = (type(warmup) is int and 0 <= warmup < t and dtype == torch.float64 and special == "none"
             and type(slope) is float and math.isfinite(slope) and slope > 0 and reset != "zero")
    event('valid' if valid else 'invalid')
    if not valid:
        with library_error():
            lif_linearization(weight, decay, currents, warmup=warmup, slope=slope, reset=reset)
        return
    a, gain = lif_linearization(weight, decay, currents, warmup=warmup, slope=slope, reset=reset)
    assert a.shape == (n, n) and gain.shape == (n,)
    assert bool(torch.isfinite(a).all()) and bool((gain >= 0).all())
    torch.testing.assert_close(a - torch.diag(torch.diagonal(a)), (weight * gain[None, :]).fill_diagonal_(0.0))


# -- regression tests: each failed before the fix it documents ------------------------------------------------

def test_regression_simulate_checks_its_arguments(library_error):
    net = reservoir(4, 2)
    inputs = torch.randn(2, 3, 2)
    with library_error():  # was: accepted; a NaN input never fires, so the traces looked fine
        simulate(net, torch.full((1, 3, 2), float("nan")), trace_tau=2.0)
    with library_error():  # was: RuntimeError from torch (3 input channels against 2)
        simulate(net, torch.randn(1, 3, 3), trace_tau=2.0)
    with library_error():  # was: NaN rates (0 / 0) for an empty batch
        simulate(net, torch.randn(0, 3, 2), trace_tau=2.0)
    with library_error():  # was: ZeroDivisionError from math.exp(-1 / 0)
        simulate(net, inputs, trace_tau=0.0)
    with library_error():  # was: accepted, no neuron ever fires
        simulate(net, inputs, trace_tau=2.0, threshold=float("nan"))
    with library_error():  # was: AttributeError ('tuple' object has no attribute 'neurons')
        simulate(tuple(net), inputs, trace_tau=2.0)


def test_regression_noise_currents_checks_its_arguments(library_error):
    net = reservoir(4, 2)
    with library_error():  # was: RuntimeError from torch.randn
        noise_currents(net, -1, torch.Generator())
    with library_error():  # was: TypeError from inside torch.randn
        noise_currents(net, 3, 0)
    with library_error():  # was: accepted as 1 step
        noise_currents(net, True, torch.Generator())
    assert noise_currents(net, 0, torch.Generator()).shape == (0, 4)


def test_regression_readout_checks_its_arguments(library_error):
    features, targets = torch.randn(5, 3), torch.randn(5, 2)
    with library_error():  # was: accepted, a NaN readout
        fit_readout(features.masked_fill(torch.eye(5, 3, dtype=torch.bool), float("nan")), targets, 1e-3)
    with library_error():  # was: accepted, a NaN readout
        fit_readout(features, targets, float("nan"))
    with library_error():  # was: RuntimeError from torch (5 samples against 4)
        fit_readout(features, targets[:4], 1e-3)
    with library_error():  # was: torch.linalg.LinAlgError (singular) for ridge 0 with no sample
        fit_readout(torch.zeros(0, 3), torch.zeros(0, 2), 0.0)
    with library_error():  # was: RuntimeError from torch (a readout for 3 features applied to 2)
        predict(features[:, :2], fit_readout(features, targets, 1e-3))


def test_regression_lyapunov_spectrum_refuses_an_infinite_dt_and_a_nan_start(library_error):
    step = lambda x: 0.5 * x  # noqa: E731
    with library_error():  # was: accepted, every exponent 0
        lyapunov_spectrum(step, torch.ones(2, dtype=torch.float64), 3, dt=float("inf"))
    with library_error():  # was: accepted
        lyapunov_spectrum(step, torch.tensor([float("nan"), 1.0], dtype=torch.float64), 3)


def test_regression_lif_linearization_checks_its_arguments(library_error):
    weight = torch.zeros(3, 3, dtype=torch.float64)
    decay = torch.full((3,), 0.5, dtype=torch.float64)
    currents = torch.rand(6, 3, dtype=torch.float64)
    with library_error():  # was: RuntimeError from torch (float32 currents into a float64 network)
        lif_linearization(weight, decay, currents.float(), warmup=1)
    with library_error():  # was: accepted, a negative warmup averaged over more steps than were run
        lif_linearization(weight, decay, currents, warmup=-2)
    with library_error():  # was: accepted, a NaN Jacobian
        lif_linearization(weight, decay, currents, warmup=1, slope=float("nan"))
    with library_error():  # was: accepted, a NaN Jacobian
        lif_linearization(weight, decay, currents.masked_fill(currents > 0.5, float("nan")), warmup=1)


def test_spike_divergence_and_stability_refuse_a_warmup_as_long_as_the_run(library_error):
    """Found by the CLI sweep: a warmup of at least the steps ran past the currents (an IndexError)."""
    from neuroplastic.dynamics import random_reservoir
    from neuroplastic.dynamics.reservoir import reservoir_stability, spike_divergence

    net = random_reservoir(6, inputs=3, tau_mean=5.0, tau_shape=3, recurrent_gain=1.0, input_gain=1.0, bias_max=0.5,
                           generator=torch.Generator().manual_seed(0))
    with library_error() as info:
        spike_divergence(net, torch.zeros(5, 6), warmup=5, generator=torch.Generator())
    assert info.match("warmup")
    with library_error() as info:
        reservoir_stability(net, 5, 2, warmup=5, generator=torch.Generator(), divergence_generator=torch.Generator())
    assert info.match("steps")
