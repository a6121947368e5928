"""Every plastic module checks a state it is given, in every backend, before computing anything with it.

Each case here either gave a wrong result silently (the fused scan with a trace of batch 1 for inputs of
batch 3 read unrelated memory for rows 1 and 2) or a raw torch error before the shared check
(:func:`neuroplastic._checks.check_state`, :meth:`PlasticSynapses.state_fields`).
"""

import pytest
import torch

from neuroplastic.plasticity import (
    PlasticLIF,
    PlasticLinear,
    PlasticLSTM,
    PlasticLSTMCell,
    PlasticRecurrentLIF,
    PlasticRNN,
    PlasticRNNCell,
    PlasticState,
)

B, T, I, N = 3, 5, 4, 6
BACKPROPS = ["fused", "checkpoint", "autograd"]
SEQUENCES = {"rnn": PlasticRNN, "lstm": PlasticLSTM}
CELLS = {"rnn": PlasticRNNCell, "lstm": PlasticLSTMCell}


def replace_plastic(state, **fields):
    """``state`` with fields of its plastic state replaced."""
    return state._replace(plastic=state.plastic._replace(**fields))


# -- PlasticRNN / PlasticLSTM, every backprop mode -----------------------------------------------------------

@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("backprop", BACKPROPS)
def test_sequence_rejects_a_trace_of_another_batch(kind, backprop):
    model = SEQUENCES[kind](I, N, backprop=backprop)
    state = replace_plastic(model.initial_state(B), trace=torch.zeros(1, N, N))
    with pytest.raises(ValueError, match=r"state\.plastic\.trace must have shape \[3, 6, 6\] \(batch of the input, "
                                         r"hidden, hidden\), got \[1, 6, 6\]: the state is for batch size 1"):
        model(torch.randn(B, T, I), state)


@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("backprop", BACKPROPS)
def test_sequence_rejects_a_trace_of_another_size(kind, backprop):
    model = SEQUENCES[kind](I, N, backprop=backprop)
    state = replace_plastic(model.initial_state(B), trace=torch.zeros(B, N, N + 1))
    with pytest.raises(ValueError, match=r"state\.plastic\.trace must have shape \[3, 6, 6\]"):
        model(torch.randn(B, T, I), state)


@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("backprop", BACKPROPS)
def test_sequence_rejects_hidden_and_cell_of_another_shape(kind, backprop):
    model = SEQUENCES[kind](I, N, backprop=backprop)
    state = model.initial_state(B)
    with pytest.raises(ValueError, match=r"state\.hidden must have shape \[3, 6\] \(batch of the input, hidden\), "
                                         r"got \[3, 5\]"):
        model(torch.randn(B, T, I), state._replace(hidden=torch.zeros(B, N - 1)))
    if kind == "lstm":
        with pytest.raises(ValueError, match=r"state\.cell must have shape \[3, 6\] .*batch size 1"):
            model(torch.randn(B, T, I), state._replace(cell=torch.zeros(1, N)))


@pytest.mark.parametrize("backprop", BACKPROPS)
def test_sequence_rejects_a_state_of_the_other_module(backprop):
    rnn, lstm = PlasticRNN(I, N, backprop=backprop), PlasticLSTM(I, N, backprop=backprop)
    with pytest.raises(TypeError, match="state must be a PlasticLSTMState or None, got PlasticRNNState"):
        lstm(torch.randn(B, T, I), rnn.initial_state(B))
    with pytest.raises(TypeError, match="state must be a PlasticRNNState or None, got PlasticLSTMState"):
        rnn(torch.randn(B, T, I), lstm.initial_state(B))
    with pytest.raises(TypeError, match="state must be a PlasticRNNState or None, got tuple"):
        rnn(torch.randn(B, T, I), tuple(rnn.initial_state(B)))
    state = rnn.initial_state(B)
    with pytest.raises(TypeError, match="state.plastic must be a PlasticState, got tuple"):
        rnn(torch.randn(B, T, I), state._replace(plastic=tuple(state.plastic)))


@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("backprop", BACKPROPS)
def test_sequence_rejects_a_state_of_another_dtype(kind, backprop):
    model = SEQUENCES[kind](I, N, backprop=backprop)
    state = model.initial_state(B, dtype=torch.double)
    with pytest.raises(ValueError, match=r"state\.hidden has dtype torch.float64 but the layer's parameters are "
                                         r"torch.float32"):
        model(torch.randn(B, T, I), state)
    state = replace_plastic(model.initial_state(B), trace=torch.zeros(B, N, N, dtype=torch.double))
    with pytest.raises(ValueError, match=r"state\.plastic\.trace has dtype torch.float64"):
        model(torch.randn(B, T, I), state)


@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("backprop", BACKPROPS)
def test_sequence_rejects_a_state_on_the_meta_device(kind, backprop):
    model = SEQUENCES[kind](I, N, backprop=backprop)
    with pytest.raises(ValueError, match=r"state\.hidden is on the meta device"):
        model(torch.randn(B, T, I), model.initial_state(B, device="meta"))
    state = replace_plastic(model.initial_state(B), trace=torch.zeros(B, N, N, device="meta"))
    with pytest.raises(ValueError, match=r"state\.plastic\.trace is on the meta device"):
        model(torch.randn(B, T, I), state)


@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("backprop", ["checkpoint", "autograd"])  # the fused scan has no retroactive modulation
def test_retroactive_sequence_rejects_a_state_without_eligibility(kind, backprop):
    model = SEQUENCES[kind](I, N, backprop=backprop, modulation="retroactive")
    state = replace_plastic(model.initial_state(B), eligibility=None)
    with pytest.raises(ValueError, match=r"state\.plastic\.eligibility is None but must be a tensor of shape "
                                         r"\[3, 6, 6\] .*retroactive modulation keeps an eligibility trace"):
        model(torch.randn(B, T, I), state)


@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("backprop", BACKPROPS)
def test_sequence_rejects_an_eligibility_trace_it_does_not_keep(kind, backprop):
    model = SEQUENCES[kind](I, N, backprop=backprop, modulation="simple")
    state = replace_plastic(model.initial_state(B), eligibility=torch.zeros(1, N, N))
    with pytest.raises(ValueError, match=r"state\.plastic\.eligibility must be None \(modulation is 'simple'"):
        model(torch.randn(B, T, I), state)


@pytest.mark.parametrize("kind", SEQUENCES)
@pytest.mark.parametrize("backprop", ["checkpoint", "autograd"])  # the fused scan has no BCM rule
def test_bcm_sequence_rejects_a_threshold_of_another_batch(kind, backprop):
    model = SEQUENCES[kind](I, N, backprop=backprop, rule="bcm")
    state = replace_plastic(model.initial_state(B), threshold=torch.zeros(1, N))
    with pytest.raises(ValueError, match=r"state\.plastic\.threshold must have shape \[3, 6\]"):
        model(torch.randn(B, T, I), state)
    with pytest.raises(ValueError, match=r"state\.plastic\.threshold is None .*keeps a sliding threshold"):
        model(torch.randn(B, T, I), replace_plastic(state, threshold=None))


# -- the cells and PlasticLinear (one step) -----------------------------------------------------------------

@pytest.mark.parametrize("kind", CELLS)
def test_cell_checks_its_state(kind):
    cell = CELLS[kind](I, N)
    x = torch.randn(B, I)
    with pytest.raises(ValueError, match=r"state\.plastic\.trace must have shape \[3, 6, 6\] .*got \[1, 6, 6\]"):
        cell(x, replace_plastic(cell.initial_state(B), trace=torch.zeros(1, N, N)))
    with pytest.raises(ValueError, match=r"state\.hidden must have shape \[3, 6\] .*batch size 2"):
        cell(x, cell.initial_state(2))
    other = CELLS["lstm" if kind == "rnn" else "rnn"](I, N)
    with pytest.raises(TypeError, match="state must be a Plastic"):
        cell(x, other.initial_state(B))
    with pytest.raises(ValueError, match="has dtype torch.float64"):
        cell(x, cell.initial_state(B, dtype=torch.double))
    with pytest.raises(ValueError, match="meta device"):
        cell(x, cell.initial_state(B, device="meta"))
    retro = CELLS[kind](I, N, modulation="retroactive")
    with pytest.raises(ValueError, match=r"state\.plastic\.eligibility is None"):
        retro(x, replace_plastic(retro.initial_state(B), eligibility=None))


def test_plastic_linear_checks_its_state():
    layer = PlasticLinear(I, N)
    x = torch.randn(B, I)
    with pytest.raises(ValueError, match=r"state\.trace must have shape \[3, 4, 6\] \(batch of the input, "
                                         r"in_features, out_features\), got \[1, 4, 6\]"):
        layer(x, layer.initial_state(1))
    with pytest.raises(TypeError, match="state must be a PlasticState or None, got tuple"):
        layer(x, tuple(layer.initial_state(B)))
    with pytest.raises(ValueError, match="has dtype torch.float64"):
        layer(x, layer.initial_state(B, dtype=torch.double))
    with pytest.raises(ValueError, match="meta device"):
        layer(x, layer.initial_state(B, device="meta"))
    retro = PlasticLinear(I, N, modulation="retroactive")
    with pytest.raises(ValueError, match=r"state\.eligibility is None"):
        retro(x, retro.initial_state(B)._replace(eligibility=None))
    bcm = PlasticLinear(I, N, rule="bcm")
    with pytest.raises(ValueError, match=r"state\.threshold must have shape \[3, 6\]"):
        bcm(x, bcm.initial_state(B)._replace(threshold=torch.zeros(1, N)))


# -- PlasticLIF / PlasticRecurrentLIF, every backend -----------------------------------------------------------

def spiking_layer(backend, recurrent=False, **overrides):
    """A plastic spiking layer running ``backend`` (the fused one only exists for the feed-forward layer)."""
    overrides.setdefault("alpha", "neuron")  # the low-rank and fused backends need alpha per neuron or scalar
    make = PlasticRecurrentLIF if recurrent else PlasticLIF
    layer = make(I, N, backend=backend, **overrides)
    assert layer.resolved_backend == backend
    return layer


SPIKING = [("dense", False), ("lowrank", False), ("fused", False), ("dense", True), ("lowrank", True)]
SPIKE_IDS = [f"{backend}-{'recurrent' if recurrent else 'lif'}" for backend, recurrent in SPIKING]


def spikes(batch=B):
    return (torch.rand(batch, T, I) < 0.5).float()


@pytest.mark.parametrize(("backend", "recurrent"), SPIKING, ids=SPIKE_IDS)
def test_spiking_rejects_a_trace_of_another_batch(backend, recurrent):
    layer = spiking_layer(backend, recurrent)
    state = replace_plastic(layer.initial_state(B), trace=torch.zeros(1, layer._pre_size, N))
    with pytest.raises(ValueError, match=r"state\.plastic\.trace must have shape \[3, \d, 6\] \(batch of the "
                                         r"input, pre-synaptic size, post-synaptic size\), got \[1, \d, 6\]"):
        layer(spikes(), state)


@pytest.mark.parametrize(("backend", "recurrent"), SPIKING, ids=SPIKE_IDS)
def test_spiking_rejects_neuron_state_of_another_shape(backend, recurrent):
    layer = spiking_layer(backend, recurrent)
    state = layer.initial_state(B)
    for field in ("membrane", "spikes", "post_trace"):
        with pytest.raises(ValueError, match=rf"state\.{field} must have shape \[3, 6\] .*batch size 1"):
            layer(spikes(), state._replace(**{field: torch.zeros(1, N)}))
    with pytest.raises(ValueError, match=r"state\.pre_trace must have shape \[3, \d\]"):
        layer(spikes(), state._replace(pre_trace=torch.zeros(B, layer._pre_size + 1)))


@pytest.mark.parametrize(("backend", "recurrent"), SPIKING, ids=SPIKE_IDS)
def test_spiking_rejects_a_state_of_another_type_dtype_or_device(backend, recurrent):
    layer = spiking_layer(backend, recurrent)
    state = layer.initial_state(B)
    with pytest.raises(TypeError, match="state must be a PlasticSpikingState or None, got tuple"):
        layer(spikes(), tuple(state))
    with pytest.raises(TypeError, match="state.plastic must be a PlasticState, got tuple"):
        layer(spikes(), state._replace(plastic=tuple(state.plastic)))
    with pytest.raises(ValueError, match=r"state\.membrane has dtype torch.float64"):
        layer(spikes(), layer.initial_state(B, dtype=torch.double))
    with pytest.raises(ValueError, match=r"state\.plastic\.trace has dtype torch.float64"):
        layer(spikes(), replace_plastic(state, trace=state.plastic.trace.double()))
    with pytest.raises(ValueError, match=r"state\.membrane is on the meta device"):
        layer(spikes(), layer.initial_state(B, device="meta"))
    with pytest.raises(ValueError, match=r"state\.plastic\.trace is on the meta device"):
        layer(spikes(), replace_plastic(state, trace=torch.zeros(state.plastic.trace.shape, device="meta")))


@pytest.mark.parametrize("recurrent", [False, True], ids=["lif", "recurrent"])
def test_retroactive_spiking_rejects_a_state_without_eligibility(recurrent):
    layer = spiking_layer("dense", recurrent, modulation="retroactive")  # only dense runs retroactive modulation
    state = replace_plastic(layer.initial_state(B), eligibility=None)
    with pytest.raises(ValueError, match=r"state\.plastic\.eligibility is None but must be a tensor"):
        layer(spikes(), state)


@pytest.mark.parametrize(("backend", "recurrent"), SPIKING, ids=SPIKE_IDS)
def test_spiking_rejects_an_eligibility_trace_or_threshold_it_does_not_keep(backend, recurrent):
    layer = spiking_layer(backend, recurrent)
    state = layer.initial_state(B)
    with pytest.raises(ValueError, match=r"state\.plastic\.eligibility must be None"):
        layer(spikes(), replace_plastic(state, eligibility=torch.zeros(1, layer._pre_size, N)))
    with pytest.raises(ValueError, match=r"state\.plastic\.threshold must be None"):
        layer(spikes(), replace_plastic(state, threshold=torch.zeros(1, N)))


@pytest.mark.parametrize("backend", ["dense", "lowrank"])  # the fused backend has no BCM rule
def test_bcm_spiking_rejects_a_threshold_of_another_batch(backend):
    layer = spiking_layer(backend, rule="bcm")
    state = replace_plastic(layer.initial_state(B), threshold=torch.zeros(1, N))
    with pytest.raises(ValueError, match=r"state\.plastic\.threshold must have shape \[3, 6\]"):
        layer(spikes(), state)


def test_a_valid_state_is_accepted_and_the_check_changes_no_value():
    torch.manual_seed(0)
    model = PlasticRNN(I, N)
    inputs = torch.randn(B, T, I)
    out, state = model(inputs)
    again, _ = model(inputs, model.initial_state(B))
    torch.testing.assert_close(again, out, rtol=0, atol=0)
    model(inputs, state)  # the returned state is accepted
    layer = PlasticLIF(I, N)
    _, spiking_state = layer(spikes())
    layer(spikes(), spiking_state)
    assert isinstance(state.plastic, PlasticState)


@pytest.mark.parametrize("shape", [(2, 0), (0, 5)])
def test_every_sequence_module_refuses_an_empty_batch_or_sequence(shape):
    from neuroplastic.neurons import ALIF, LIF, LeakyReadout, RecurrentLIF
    from neuroplastic.plasticity import PlasticLIF, PlasticLSTM, PlasticRecurrentLIF, PlasticRNN

    modules = [(LIF(4), 4), (LIF(4, backend="step"), 4), (ALIF(4), 4), (LeakyReadout(4), 4), (RecurrentLIF(3, 4), 3),
               (PlasticRNN(3, 4), 3), (PlasticRNN(3, 4, backprop="autograd"), 3), (PlasticLSTM(3, 4), 3),
               (PlasticLIF(3, 4), 3), (PlasticLIF(3, 4, backend="dense"), 3), (PlasticRecurrentLIF(3, 4), 3)]
    for module, size in modules:
        with pytest.raises(ValueError, match=r"at least one sample and one time step .* got shape \[" +
                           f"{shape[0]}, {shape[1]}, {size}" + r"\]"):
            module(torch.zeros(*shape, size))
