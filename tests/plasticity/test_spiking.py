"""Plastic spiking layers against a slow literal per-step implementation written here; gradients; bad input."""

import itertools
import math

import pytest
import torch
from torch.autograd import gradcheck
from torch.func import functional_call

from neuroplastic.neurons.surrogates import Surrogate
from neuroplastic.plasticity.rules import make_rule
from neuroplastic.plasticity.spiking import (
    PlasticLIF,
    PlasticRecurrentLIF,
    PlasticSpikingState,
    spike_trace,
    trace_step,
)

B, T, I, O = 2, 6, 3, 4
RULES = {"DecayingHebbianRule": "hebbian", "OjaRule": "oja", "BCMRule": "bcm", "ClippedHebbianRule": "clip",
         "SoftBoundedHebbianRule": "soft_bound"}
CASES = [("hebbian", "none"), ("oja", "none"), ("bcm", "none"), (None, "simple"), ("oja", "simple"),
         ("hebbian", "retroactive"), ("bcm", "retroactive")]


class SmoothStep(Surrogate):
    """A smooth 'spike' (a steep sigmoid forward and its exact derivative backward), for gradcheck."""

    def __call__(self, x):
        return torch.sigmoid(4.0 * x)

    def grad(self, x):
        s = torch.sigmoid(4.0 * x)
        return 4.0 * s * (1 - s)


def literal_rule(rule, trace, pre, post, rate, threshold, clip=2.0):
    """The rules element by element (loops), independent of the library's functions."""
    new = trace.clone()
    theta = None
    if rule == "bcm":
        theta = threshold + 0.1 * (post * post - threshold)
    rate = rate.expand(pre.shape[0], post.shape[1])
    for b, i, j in itertools.product(range(pre.shape[0]), range(pre.shape[1]), range(post.shape[1])):
        h, x, y, r = trace[b, i, j], pre[b, i], post[b, j], rate[b, j]
        if rule == "hebbian":
            value = (1 - r) * h + r * x * y
        elif rule == "oja":
            value = h + r * y * (x - y * h)
        elif rule == "bcm":
            value = h + r * x * y * (y - theta[b, j])
        elif rule == "clip":
            value = torch.clamp(h + r * x * y, -clip, clip)
        else:
            d = r * x * y
            value = h + torch.relu(d) * (1 - h) + torch.clamp(d, max=0) * (h + 1)
        new[b, i, j] = value
    return new, theta if theta is not None else threshold


def literal_layer(layer, inputs):
    """Every step written out: currents by explicit sums, LIF, traces, the rule (literal), the modulator."""
    recurrent = isinstance(layer, PlasticRecurrentLIF)
    syn = layer.synapses
    rule = RULES[type(syn.rule).__name__]
    batch, steps, _ = inputs.shape
    n_pre = layer.hidden_size if recurrent else layer.in_features
    n_post = layer.hidden_size if recurrent else layer.out_features
    w_in = layer.input_weight if recurrent else layer.weight
    w_plastic = layer.weight if recurrent else layer.weight
    w_rec = None if recurrent else layer.recurrent_weight
    alpha = syn.alpha * torch.ones(n_pre, n_post, dtype=inputs.dtype) if syn.alpha.dim() < 2 else syn.alpha
    lam_mem = math.exp(-1 / float(layer.tau_mem))
    lam_pre, lam_post = (math.exp(-1 / math.exp(float(x))) for x in layer.trace_log_tau)
    threshold = layer.threshold
    zeros = inputs.new_zeros
    v, z, y = zeros(batch, n_post), zeros(batch, n_post), zeros(batch, n_post)
    x = zeros(batch, n_pre)
    hebb, elig = zeros(batch, n_pre, n_post), zeros(batch, n_pre, n_post)
    theta = zeros(batch, n_post)
    outputs = []
    for t in range(steps):
        s = inputs[:, t]
        pre = z if recurrent else s
        current = zeros(batch, n_post)
        for b, j in itertools.product(range(batch), range(n_post)):
            total = layer.bias[j] if layer.bias is not None else 0.0
            if recurrent:
                total = total + sum(s[b, i] * w_in[i, j] for i in range(s.shape[1]))
            for i in range(n_pre):
                total = total + pre[b, i] * (w_plastic[i, j] + alpha[i, j] * hebb[b, i, j])
            if w_rec is not None:
                total = total + sum(z[b, k] * w_rec[k, j] for k in range(n_post))
            current[b, j] = total
        h = lam_mem * v + current
        spikes = (h > threshold).to(h.dtype)
        v = h - threshold * spikes
        x = lam_pre * x + pre
        y = lam_post * y + spikes
        z = spikes
        outputs.append(spikes)
        if syn.modulator is None:
            rate = syn.eta.reshape(1, -1)
        else:
            mod = syn.modulator
            signal = torch.tanh(y @ mod.neuromodulator.weight.t() + mod.neuromodulator.bias)
            rate = signal @ mod.fanout.weight.t() + mod.fanout.bias
        if syn.modulation == "retroactive":
            hebb = torch.clamp(hebb + rate.unsqueeze(1) * elig, -syn.clip, syn.clip)
            elig, theta = literal_rule(rule, elig, x, y, syn.modulator.eligibility_rate.reshape(1, 1), theta)
        else:
            hebb, theta = literal_rule(rule, hebb, x, y, rate, theta, syn.clip)
    return torch.stack(outputs, dim=1), v, x, y, hebb


def make_layer(kind, rule, modulation, **kwargs):
    torch.manual_seed(0)
    options = dict(rule=rule, modulation=modulation, alpha_init=0.5, eta_init=0.2, tau_pre=3.0, tau_post=2.0,
                   tau_mem=4.0, eligibility_rate=0.3, backend="dense")
    options.update(kwargs)
    if kind == "recurrent":
        layer = PlasticRecurrentLIF(I, O, **options).double()
        with torch.no_grad():
            layer.input_weight.mul_(4.0)
            layer.weight.mul_(2.0)
    else:
        layer = PlasticLIF(I, O, recurrent=kind == "feedforward+rec", **options).double()
        with torch.no_grad():
            layer.weight.mul_(4.0)
            layer.bias.fill_(0.1)
    return layer


def spikes_in(generator, batch=B, steps=T, size=I, p=0.5):
    return (torch.rand(batch, steps, size, generator=generator) < p).double()


@pytest.mark.parametrize("kind", ["feedforward", "feedforward+rec", "recurrent"])
@pytest.mark.parametrize("rule,modulation", CASES)
def test_layer_matches_literal_per_step_implementation(kind, rule, modulation):
    layer = make_layer(kind, rule, modulation, alpha="connection")
    inputs = spikes_in(torch.Generator().manual_seed(1))
    with torch.no_grad():
        spikes, state = layer(inputs)
        ref_spikes, v, x, y, hebb = literal_layer(layer, inputs)
    assert spikes.shape == (B, T, O)
    assert 0 < float(spikes.mean()) < 1  # the neurons fire, and not always
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(state.membrane, v)
    torch.testing.assert_close(state.pre_trace, x)
    torch.testing.assert_close(state.post_trace, y)
    torch.testing.assert_close(state.plastic.trace, hebb)
    assert float(hebb.abs().max()) > 1e-3  # the synapses did change


@pytest.mark.parametrize("backend", ["dense", "lowrank"])
@pytest.mark.parametrize("alpha", ["neuron", "scalar"])
def test_alpha_granularities_match_literal(alpha, backend):
    layer = make_layer("feedforward+rec", "oja", "none", alpha=alpha, backend=backend)
    assert layer.resolved_backend == backend
    inputs = spikes_in(torch.Generator().manual_seed(2))
    with torch.no_grad():
        spikes, state = layer(inputs)
        ref_spikes, v, x, y, hebb = literal_layer(layer, inputs)
    assert torch.equal(spikes, ref_spikes)
    torch.testing.assert_close(state.plastic.trace, hebb)
    torch.testing.assert_close(state.pre_trace, x)
    torch.testing.assert_close(state.membrane, v)


@pytest.mark.parametrize("rule", ["hebbian", "oja", "bcm"])
def test_linear_factors_reproduce_the_rules(rule):
    gen = torch.Generator().manual_seed(10)
    trace = torch.randn(3, 4, 5, generator=gen, dtype=torch.double)
    pre, post = torch.rand(3, 4, generator=gen).double(), torch.rand(3, 5, generator=gen).double() * 2
    threshold = torch.rand(3, 5, generator=gen).double()
    rule_object = make_rule(rule)
    assert rule_object.linear
    for rate in (0.3, torch.tensor(0.2).double(), torch.rand(5, generator=gen).double(),
                 torch.rand(3, 5, generator=gen).double(), torch.rand(3, 1, generator=gen).double()):
        expected, expected_threshold = rule_object(trace, pre, post, rate, threshold)
        keep, delta, new_threshold = rule_object.linear_factors(post, rate, threshold)
        if keep is None:
            kept = trace
        elif isinstance(keep, torch.Tensor) and keep.dim() == 2:  # [1, O], [B, 1] or [B, O]
            kept = trace * keep.unsqueeze(1)
        else:
            kept = trace * keep
        torch.testing.assert_close(kept + pre.unsqueeze(2) * delta.unsqueeze(1), expected)
        if expected_threshold is not None:
            torch.testing.assert_close(new_threshold, expected_threshold)
    assert not make_rule("clip").linear
    with pytest.raises(NotImplementedError):
        make_rule("clip").linear_factors(post, 0.1)


@pytest.mark.parametrize("kind", ["feedforward", "feedforward+rec", "recurrent"])
@pytest.mark.parametrize("rule,modulation", [("hebbian", "none"), ("oja", "none"), ("bcm", "none"),
                                             ("hebbian", "simple"), ("bcm", "simple")])
def test_lowrank_backend_equals_dense_values_and_gradients(kind, rule, modulation):
    inputs = spikes_in(torch.Generator().manual_seed(11), batch=3, steps=8)
    results = {}
    for backend in ("dense", "lowrank"):
        layer = make_layer(kind, rule, modulation, alpha="neuron", backend=backend, eta_init=0.05)
        spikes, state = layer(inputs)
        more, state2 = layer(inputs[:, :5], state)  # a second call from a non-zero state
        loss = spikes.sum() + more.sum() + state2.plastic.trace.sum() + state2.post_trace.sum()
        loss.backward()
        results[backend] = (spikes, more, state2, {n: p.grad.clone() for n, p in layer.named_parameters()})
    dense, low = results["dense"], results["lowrank"]
    assert 0 < float(dense[0].detach().mean()) < 1
    assert torch.equal(dense[0], low[0]) and torch.equal(dense[1], low[1])
    for a, b in zip(dense[2], low[2], strict=True):
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b)
    torch.testing.assert_close(dense[2].plastic.trace, low[2].plastic.trace)
    if dense[2].plastic.threshold is not None:
        torch.testing.assert_close(dense[2].plastic.threshold, low[2].plastic.threshold)
    for name, grad in dense[3].items():
        torch.testing.assert_close(low[3][name], grad, msg=name)


def test_backend_auto_and_unsupported_lowrank():
    assert PlasticLIF(I, O, rule="oja", alpha="neuron").resolved_backend == "lowrank"
    assert PlasticLIF(I, O, rule="oja", alpha="connection").resolved_backend == "dense"
    assert PlasticLIF(I, O, rule="hebbian", alpha="scalar", modulation="retroactive").resolved_backend == "dense"
    assert PlasticLIF(I, O, alpha="neuron", modulation="simple").resolved_backend == "dense"  # the clip rule
    for kwargs in ({"alpha": "connection"}, {"alpha": "neuron", "rule": "clip"},
                   {"alpha": "neuron", "modulation": "retroactive"}):
        with pytest.raises(ValueError, match="lowrank"):
            PlasticLIF(I, O, backend="lowrank", **kwargs)


def test_trace_step_and_spike_trace_follow_their_rule():
    gen = torch.Generator().manual_seed(3)
    spikes = spikes_in(gen, batch=3, steps=9, size=5)
    decay = torch.tensor([0.5, 0.9, 0.0, 1.0, 0.7], dtype=torch.double)
    traces = spike_trace(spikes, decay)
    expected = torch.zeros_like(spikes)
    for b, n in itertools.product(range(3), range(5)):
        value = 0.0
        for t in range(9):
            value = float(decay[n]) * value + float(spikes[b, t, n])
            expected[b, t, n] = value
    torch.testing.assert_close(traces, expected)
    torch.testing.assert_close(trace_step(traces[:, 3], spikes[:, 4], decay), traces[:, 4])
    # a constant rate r settles at r / (1 - decay)
    steady = spike_trace(torch.full((1, 200, 1), 0.3, dtype=torch.double), 0.8)
    assert abs(float(steady[0, -1, 0]) - 0.3 / 0.2) < 1e-9


def test_state_continues_across_calls_and_samples_are_independent():
    layer = make_layer("feedforward+rec", "oja", "simple")
    inputs = spikes_in(torch.Generator().manual_seed(4), batch=3)
    with torch.no_grad():
        full, state = layer(inputs)
        first, mid = layer(inputs[:, :2])
        second, end = layer(inputs[:, 2:], mid)
        torch.testing.assert_close(torch.cat([first, second], 1), full)
        for a, b in zip(end.plastic, state.plastic, strict=True):
            if a is not None:
                torch.testing.assert_close(a, b)
        # per-sample traces: each episode run alone gives the same spikes and traces as in the batch
        for b in range(3):
            alone, alone_state = layer(inputs[b: b + 1])
            torch.testing.assert_close(alone[0], full[b])
            torch.testing.assert_close(alone_state.plastic.trace[0], state.plastic.trace[b])
            torch.testing.assert_close(alone_state.post_trace[0], state.post_trace[b])
    # changing one episode's input changes only that episode's traces
    other = inputs.clone()
    other[1] = 1 - other[1]
    with torch.no_grad():
        _, changed = layer(other)
    assert torch.equal(changed.plastic.trace[0], state.plastic.trace[0])
    assert torch.equal(changed.plastic.trace[2], state.plastic.trace[2])
    assert not torch.equal(changed.plastic.trace[1], state.plastic.trace[1])


def test_zero_alpha_is_a_plain_lif_layer():
    from neuroplastic.neurons.lif import decay_from_tau, lif_step

    layer = make_layer("feedforward+rec", "hebbian", "none")
    with torch.no_grad():
        layer.synapses.alpha.zero_()
    inputs = spikes_in(torch.Generator().manual_seed(5))
    with torch.no_grad():
        spikes, _ = layer(inputs)
        v = z = inputs.new_zeros(B, O)
        expected = []
        for t in range(T):
            current = inputs[:, t] @ layer.weight + layer.bias + z @ layer.recurrent_weight
            z, v = lif_step(v, current, decay_from_tau(layer.tau_mem), 1.0)
            expected.append(z)
    assert torch.equal(spikes, torch.stack(expected, 1))


@pytest.mark.parametrize("kind", ["feedforward+rec", "recurrent"])
@pytest.mark.parametrize("rule,modulation", [("hebbian", "none"), ("oja", "none"), ("bcm", "none"),
                                             (None, "simple"), ("hebbian", "retroactive")])
def test_gradcheck_through_plasticity_with_a_smooth_spike(kind, rule, modulation):
    layer = make_layer(kind, rule, modulation, surrogate=SmoothStep(), learn_tau_mem=True, alpha="neuron")
    inputs = spikes_in(torch.Generator().manual_seed(6), batch=2, steps=4)
    names = [n for n, p in layer.named_parameters()]
    wanted = [n for n in names if n.endswith(("alpha", "eta", "trace_log_tau", "tau_mem", "eligibility_rate"))
              or ".modulator." in n or n in ("weight", "input_weight")]
    assert "synapses.alpha" in wanted and "trace_log_tau" in wanted
    if modulation == "none":
        assert "synapses.eta" in wanted
    else:
        assert any(".modulator.neuromodulator" in n for n in wanted)
    params = dict(layer.named_parameters())

    def f(*values):
        spikes, state = functional_call(layer, {**params, **dict(zip(wanted, values, strict=True))}, (inputs,))
        return spikes.sum() + state.plastic.trace.sum()

    values = tuple(params[n].detach().clone().requires_grad_() for n in wanted)
    assert gradcheck(f, values, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("rule,modulation", [("bcm", "none"), (None, "simple"), ("oja", "retroactive")])
def test_surrogate_gradients_reach_every_plasticity_parameter(rule, modulation):
    layer = make_layer("feedforward+rec", rule, modulation, surrogate="fast_sigmoid")
    inputs = spikes_in(torch.Generator().manual_seed(7), batch=3, steps=8)
    spikes, state = layer(inputs)
    (spikes.sum() + state.post_trace.sum()).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert float(layer.synapses.alpha.grad.abs().sum()) > 0
    assert float(layer.trace_log_tau.grad.abs().sum()) > 0
    if modulation == "none":
        assert float(layer.synapses.eta.grad.abs()) > 0
    else:
        assert float(layer.synapses.modulator.neuromodulator.weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("kind", ["feedforward+rec", "recurrent"])
def test_checkpointed_backprop_gives_the_same_gradients(kind):
    inputs = spikes_in(torch.Generator().manual_seed(8), batch=2, steps=7)
    grads = {}
    for mode in ("autograd", "checkpoint"):
        layer = make_layer(kind, "oja", "simple", backprop=mode, chunk_size=3)
        spikes, state = layer(inputs)
        (spikes.sum() + state.plastic.trace.sum()).backward()
        grads[mode] = {n: p.grad.clone() for n, p in layer.named_parameters()}
    for name, grad in grads["autograd"].items():
        torch.testing.assert_close(grads["checkpoint"][name], grad, msg=name)


def test_external_modulator_input():
    torch.manual_seed(0)
    layer = PlasticLIF(I, O, modulation="simple", modulator_input_size=2).double()
    inputs = spikes_in(torch.Generator().manual_seed(9))
    signal = torch.zeros(B, T, 2, dtype=torch.double)
    with torch.no_grad():
        layer.synapses.modulator.fanout.weight.zero_()
        layer.synapses.modulator.fanout.bias.zero_()  # M(t) = 0: no plasticity
        _, state = layer(inputs, modulator_inputs=signal)
    assert torch.equal(state.plastic.trace, torch.zeros_like(state.plastic.trace))
    with pytest.raises(ValueError, match="modulator_inputs"):
        layer(inputs)


def test_initial_state_and_repr():
    layer = PlasticRecurrentLIF(I, O, rule="bcm", modulation="retroactive")
    state = layer.initial_state(5)
    assert isinstance(state, PlasticSpikingState)
    assert state.membrane.shape == (5, O) and state.pre_trace.shape == (5, O)
    assert state.plastic.trace.shape == (5, O, O) and state.plastic.eligibility.shape == (5, O, O)
    assert state.plastic.threshold.shape == (5, O)
    torch.testing.assert_close(layer.trace_taus, torch.tensor([5.0, 5.0]))
    assert "BCMRule" in repr(layer) and "retroactive" in repr(layer)
    detached = state.detach()
    assert detached.plastic.trace.shape == state.plastic.trace.shape


@pytest.mark.parametrize("kwargs,match", [
    ({"tau_mem": 0.0}, "tau_mem"),
    ({"tau_mem": -2.0}, "tau_mem"),
    ({"tau_pre": 0.0}, "tau_pre"),
    ({"tau_post": float("inf")}, "tau_post"),
    ({"threshold": 0.0}, "threshold"),
    ({"reset": "sideways"}, "reset"),
    ({"surrogate": "nope"}, "surrogate"),
    ({"rule": "stdp"}, "rule"),
    ({"modulation": "loud"}, "modulation"),
    ({"backprop": "magic"}, "backprop"),
    ({"backend": "sparse"}, "backend"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"alpha": "synapse"}, "alpha"),
    ({"modulator_input_size": 3}, "modulator_input_size"),
    ({"tau_mem": torch.ones(7)}, "tau_mem"),
])
def test_bad_arguments_raise_errors_naming_them(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PlasticLIF(I, O, **kwargs)


def test_bad_sizes_and_inputs():
    with pytest.raises(ValueError, match="in_features"):
        PlasticLIF(0, O)
    with pytest.raises(TypeError, match="hidden_size must be an int >= 1, got float 2.5"):
        PlasticRecurrentLIF(I, 2.5)
    layer = PlasticLIF(I, O)
    with pytest.raises(ValueError, match="inputs"):
        layer(torch.zeros(B, T, I + 1))
    with pytest.raises(ValueError, match="inputs"):
        layer(torch.zeros(B, I))
    with pytest.raises(TypeError, match="inputs"):
        layer([[0.0] * I])
    # [T, B, I] given where [B, T, I] is expected, with a state for batch B: detected
    state = layer.initial_state(B)
    with pytest.raises(ValueError, match="batch-first"):
        layer(torch.zeros(T, B, I), state)
    with pytest.raises(ValueError, match="modulator_inputs"):
        layer(torch.zeros(B, T, I), modulator_inputs=torch.zeros(B, T, 2))
    with pytest.raises(ValueError, match="spikes"):
        spike_trace(torch.zeros(B, I), 0.5)
