"""Plastic RNN/LSTM: every backprop mode against a slow literal per-step implementation written here."""

import itertools

import pytest
import torch
from torch.autograd import gradcheck

from neuroplastic.plasticity import PlasticLSTM, PlasticRNN, PlasticRNNCell, PlasticState
from neuroplastic.plasticity.fused_scan import supports_fused
from neuroplastic.plasticity.trace_kernels import native_kernels, use_native

B, T, I, N = 2, 7, 3, 4


@pytest.fixture(params=["native", "torch"])
def kernels(request):
    """Run a test with the fused scan's native C kernels, then with its PyTorch operations."""
    native = request.param == "native"
    with use_native(native):
        if native:
            assert native_kernels(torch.zeros(1, dtype=torch.double)) is not None, "native kernels did not build"
        yield request.param


def literal_rule(rule, trace, pre, post, rate, threshold, clip=2.0):
    """The rules written out element by element (loops), independent of the library's functions."""
    new = trace.clone()
    theta = None if threshold is None else threshold.clone()
    rate = rate.expand(pre.shape[0], post.shape[1]) if rate.dim() else rate.expand(pre.shape[0], post.shape[1])
    if rule == "bcm":
        theta = threshold + 0.1 * (post * post - threshold)
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
        else:  # soft_bound
            d = r * x * y
            value = h + torch.relu(d) * (1 - h) + torch.clamp(d, max=0) * (h + 1)
        new[b, i, j] = value
    return new, theta


def literal_rnn(model, inputs):
    """h_t = tanh(x W_in + b + h (W + alpha * H)), H_t = rule(H, h_{t-1}, h_t, rate): one step at a time."""
    cell = model.cell
    syn = cell.synapses
    rule = {"DecayingHebbianRule": "hebbian", "OjaRule": "oja", "BCMRule": "bcm", "ClippedHebbianRule": "clip",
            "SoftBoundedHebbianRule": "soft_bound"}[type(syn.rule).__name__]
    hidden = inputs.new_zeros(inputs.shape[0], N)
    trace = inputs.new_zeros(inputs.shape[0], N, N)
    elig = torch.zeros_like(trace)
    threshold = inputs.new_zeros(inputs.shape[0], N) if rule == "bcm" else None
    alpha = syn.alpha if syn.alpha.dim() == 2 else syn.alpha * torch.ones(N, N, dtype=inputs.dtype)
    outputs = []
    for t in range(inputs.shape[1]):
        w_eff = cell.weight + alpha * trace  # [B, N, N]
        new = torch.tanh(cell.input_to_hidden(inputs[:, t]) + torch.einsum("bi,bij->bj", hidden, w_eff))
        if syn.modulator is None:
            rate = syn.eta
        else:
            rate = syn.modulator.fanout(torch.tanh(syn.modulator.neuromodulator(new)))
        if syn.modulation == "retroactive":
            trace = torch.clamp(trace + rate.unsqueeze(1) * elig, -syn.clip, syn.clip)
            elig, threshold = literal_rule(rule, elig, hidden, new, syn.modulator.eligibility_rate, threshold)
        else:
            trace, threshold = literal_rule(rule, trace, hidden, new, rate, threshold, syn.clip)
        hidden = new
        outputs.append(hidden)
    return torch.stack(outputs, 1), trace


CASES = [
    ("hebbian", "none", "connection"),
    ("hebbian", "none", "neuron"),
    ("hebbian", "simple", "scalar"),
    ("clip", "simple", "connection"),
    ("clip", "none", "neuron"),
    ("oja", "none", "connection"),
    ("bcm", "simple", "connection"),
    ("soft_bound", "none", "scalar"),
    ("hebbian", "retroactive", "connection"),
]


def build_rnn(rule, modulation, alpha, backprop, eta="scalar"):
    torch.manual_seed(0)
    model = PlasticRNN(I, N, rule=rule, modulation=modulation, alpha=alpha, eta=eta, backprop=backprop,
                       chunk_size=3, alpha_init=0.5, eta_init=0.2, clip=0.3)
    return model.double()


def loss_and_grads(model, inputs, run):
    model.zero_grad()
    out, trace = run(model, inputs)
    loss = (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum() + 0.3 * trace.sum()
    loss.backward()
    return out.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def module_run(model, inputs):
    out, state = model(inputs)
    return out, state.plastic.trace


@pytest.mark.parametrize("rule,modulation,alpha", CASES)
@pytest.mark.parametrize("backprop", ["autograd", "checkpoint", "auto"])
def test_rnn_matches_literal_per_step_implementation(rule, modulation, alpha, backprop, kernels):
    inputs = torch.randn(B, T, I, dtype=torch.double, generator=torch.Generator().manual_seed(1))
    model = build_rnn(rule, modulation, alpha, backprop)
    out, grads = loss_and_grads(model, inputs, module_run)
    ref_out, ref_grads = loss_and_grads(model, inputs, literal_rnn)
    assert torch.allclose(out, ref_out, atol=1e-12)
    assert grads.keys() == ref_grads.keys()
    for name in grads:
        assert torch.allclose(grads[name], ref_grads[name], atol=1e-10), name


def test_clip_is_active_in_the_literal_comparison():
    # Guard: with clip 0.3 the clipped cases really hit the bound (else the mask path goes untested).
    inputs = torch.randn(B, T, I, dtype=torch.double, generator=torch.Generator().manual_seed(1))
    model = build_rnn("clip", "simple", "connection", "fused")
    _, state = model(inputs)
    assert (state.plastic.trace.abs() == 0.3).any()


@pytest.mark.parametrize("rule,modulation,alpha", [c for c in CASES if c[0] in ("hebbian", "clip")
                                                   and c[1] != "retroactive"])
def test_fused_passes_gradcheck(rule, modulation, alpha, kernels):
    model = build_rnn(rule, modulation, alpha, "fused", eta="neuron")
    inputs = torch.randn(B, 5, I, dtype=torch.double, requires_grad=True)
    hidden0 = torch.randn(B, N, dtype=torch.double, requires_grad=True)
    trace0 = (0.1 * torch.randn(B, N, N, dtype=torch.double)).requires_grad_()
    params = [p for p in model.parameters()]

    def function(x, h0, h_trace0, *_):
        state = model.cell.initial_state(B, dtype=torch.double)
        state = type(state)(h0, PlasticState(h_trace0, state.plastic.eligibility, state.plastic.threshold))
        out, final = model(x, state)
        return out, final.plastic.trace

    assert gradcheck(function, (inputs, hidden0, trace0, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("modulation", ["none", "simple"])
def test_lstm_fused_and_checkpoint_equal_autograd(modulation, kernels):
    inputs = torch.randn(B, T, I, dtype=torch.double, generator=torch.Generator().manual_seed(2))
    results = {}
    for backprop in ("autograd", "checkpoint", "fused"):
        torch.manual_seed(0)
        model = PlasticLSTM(I, N, modulation=modulation, backprop=backprop, chunk_size=2, alpha_init=0.5).double()
        results[backprop] = loss_and_grads(model, inputs, module_run)
    for backprop in ("checkpoint", "fused"):
        assert torch.allclose(results[backprop][0], results["autograd"][0], atol=1e-12)
        for name, grad in results["autograd"][1].items():
            assert torch.allclose(results[backprop][1][name], grad, atol=1e-10), (backprop, name)


def test_auto_backprop_resolves_by_rule():
    assert build_rnn("clip", "simple", "connection", "auto").resolved_backprop == "fused"
    assert build_rnn("oja", "none", "connection", "auto").resolved_backprop == "checkpoint"
    assert not supports_fused(build_rnn("hebbian", "retroactive", "connection", "auto").cell)
    with pytest.raises(ValueError, match="use backprop='checkpoint'"):
        build_rnn("oja", "none", "connection", "fused")


def test_traces_are_per_batch_element():
    model = build_rnn("clip", "simple", "connection", "auto")
    inputs = torch.randn(3, T, I, dtype=torch.double)
    changed = inputs.clone()
    changed[1] += 1.0
    out_a, state_a = model(inputs)
    out_b, state_b = model(changed)
    assert torch.equal(out_a[[0, 2]], out_b[[0, 2]])
    assert torch.equal(state_a.plastic.trace[0], state_b.plastic.trace[0])
    assert not torch.equal(out_a[1], out_b[1])


def test_state_carries_across_calls():
    model = build_rnn("hebbian", "none", "connection", "auto")
    inputs = torch.randn(B, T, I, dtype=torch.double)
    whole, _ = model(inputs)
    first, state = model(inputs[:, :3])
    second, _ = model(inputs[:, 3:], state)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-14)


@pytest.mark.parametrize("backprop", ["autograd", "checkpoint", "fused"])
def test_truncation_stops_gradients_at_the_boundary(backprop):
    torch.manual_seed(0)
    model = PlasticRNN(I, N, modulation="simple", backprop=backprop, truncate_every=3).double()
    inputs = torch.randn(B, 7, I, dtype=torch.double, requires_grad=True)
    out, _ = model(inputs)
    out[:, -1].sum().backward()
    assert inputs.grad[:, :6].abs().max() == 0  # the last segment starts at step 6
    assert inputs.grad[:, 6].abs().max() > 0


def test_no_grad_forward_equals_grad_forward():
    model = build_rnn("clip", "simple", "connection", "auto")
    inputs = torch.randn(B, T, I, dtype=torch.double)
    with torch.no_grad():
        plain, _ = model(inputs)
    graph, _ = model(inputs)
    assert torch.allclose(plain, graph, atol=1e-14)


def test_state_dict_round_trip_and_optimizer_step():
    model = build_rnn("clip", "simple", "connection", "auto")
    clone = build_rnn("clip", "simple", "connection", "auto")
    with torch.no_grad():
        for p in clone.parameters():
            p.add_(1.0)
    clone.load_state_dict(model.state_dict())
    inputs = torch.randn(B, T, I, dtype=torch.double)
    assert torch.equal(model(inputs)[0], clone(inputs)[0])
    names = {name for name, _ in model.named_parameters()}
    assert {"cell.weight", "cell.synapses.alpha", "cell.synapses.modulator.neuromodulator.weight"} <= names
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    before = model.cell.synapses.alpha.detach().clone()
    model(inputs)[0].sum().backward()
    optimizer.step()
    assert not torch.equal(before, model.cell.synapses.alpha)


def test_input_projection_false_leaves_only_plastic_parameters():
    model = PlasticRNN(N, N, input_projection=False, rule="hebbian")
    assert {name for name, _ in model.named_parameters()} == {"cell.weight", "cell.synapses.alpha",
                                                               "cell.synapses.eta"}
    with pytest.raises(ValueError, match="input_projection=False needs input_size == 4"):
        PlasticRNN(3, N, input_projection=False)


def test_cell_step_equals_sequence_module():
    model = build_rnn("clip", "simple", "connection", "autograd")
    cell = model.cell
    inputs = torch.randn(B, T, I, dtype=torch.double)
    state = None
    outs = []
    for t in range(T):
        h, state = cell(inputs[:, t], state)
        outs.append(h)
    assert torch.allclose(torch.stack(outs, 1), model(inputs)[0], atol=1e-14)


def test_bad_inputs_give_clear_errors():
    model = PlasticRNN(I, N)
    with pytest.raises(ValueError, match=r"inputs must have shape \[B, T, 3\], got \[2, 5\]"):
        model(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"inputs must have shape \[B, T, 3\], got \[2, 5, 4\]"):
        model(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.ones(2, 5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch size 4"):
        model(torch.randn(2, 5, 3), model.initial_state(4))
    with pytest.raises(ValueError, match="modulation must be one of 'none', 'simple', 'retroactive'"):
        PlasticRNN(I, N, modulation="dopamine")
    with pytest.raises(ValueError, match="alpha must be one of 'connection', 'neuron', 'scalar'"):
        PlasticRNN(I, N, alpha="synapse")
    with pytest.raises(ValueError, match="backprop must be one of"):
        PlasticRNN(I, N, backprop="magic")
    with pytest.raises(ValueError, match="activation must be one of"):
        PlasticRNNCell(I, N, activation="gelu")
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1 or None, got 0"):
        PlasticRNN(I, N, chunk_size=0)
    with pytest.raises(TypeError, match="truncate_every must be an int >= 1 or None, got bool True"):
        PlasticRNN(I, N, truncate_every=True)
    with pytest.raises(TypeError, match="hidden_size must be an int >= 1, got float 4.0"):
        PlasticRNNCell(I, 4.0)
