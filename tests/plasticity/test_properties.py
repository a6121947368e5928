"""Property-based tests of the boundaries of rate-based plasticity (:mod:`neuroplastic.plasticity`).

Each property draws an input class (shapes with B and T in {0, 1, more}, dtypes, non-finite values, states of
another module, batch, dtype or device), decides from the documented contract whether the call is valid, and
checks: valid -> the documented shape, finite for finite inputs, the same result in every backend (fused C
kernels, fused PyTorch operations, checkpoint, autograd); invalid -> a ValueError/TypeError from the library.
The plain tests at the end are the regression tests of the defects these properties found.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neuroplastic._c_kernels import use_native
from neuroplastic.plasticity import (
    ALPHA_GRANULARITIES,
    BACKPROP_MODES,
    ETA_GRANULARITIES,
    MODULATIONS,
    RULES,
    Modulator,
    PlasticLinear,
    PlasticLSTM,
    PlasticLSTMCell,
    PlasticRNN,
    PlasticRNNCell,
    PlasticState,
    PlasticSynapses,
    SynapseConfig,
    bcm_threshold_update,
    bcm_update,
    clipped_hebbian_update,
    hebbian_update,
    make_modulator,
    make_rule,
    oja_update,
    outer,
    plastic_scan,
    soft_bounded_update,
    supports_fused,
)
from property_inputs import DTYPES, as_input

SEQUENCES = {"rnn": PlasticRNN, "lstm": PlasticLSTM}
CELLS = {"rnn": PlasticRNNCell, "lstm": PlasticLSTMCell}
NON_NUMBERS = [float("nan"), float("inf"), -float("inf"), True, "0.1", None]


def tensor(shape, dtype, seed=0, special=None):
    """A small random tensor of ``dtype``; ``special`` (nan/inf) put into its first entry if it has one."""
    return as_input(torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dtype,
                    special)


# -- pure rules ---------------------------------------------------------------------------------------------

RULE_CALLS = {
    "hebbian": lambda tr, pre, post, rate, thr: hebbian_update(tr, pre, post, rate),
    "oja": lambda tr, pre, post, rate, thr: oja_update(tr, pre, post, rate),
    "bcm": lambda tr, pre, post, rate, thr: bcm_update(tr, pre, post, rate, thr),
    "clip": lambda tr, pre, post, rate, thr: clipped_hebbian_update(tr, pre, post, rate, 1.5),
    "soft_bound": lambda tr, pre, post, rate, thr: soft_bounded_update(tr, pre, post, rate),
}


@st.composite
def rule_case(draw):
    batch, inputs, outputs = draw(st.integers(0, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    broken = draw(st.sampled_from(["none", "pre_shape", "post_batch", "pre_dtype", "trace_dtype", "trace_rank",
                                   "rate_value", "rate_shape", "rate_dtype", "threshold_shape"]))
    rate_kind = draw(st.sampled_from(["number", "scalar", "[O]", "[B]", "[B, 1]", "[B, O]"]))
    return batch, inputs, outputs, dtype, broken, rate_kind, draw(st.sampled_from(sorted(RULE_CALLS)))


@given(rule_case(), st.sampled_from(NON_NUMBERS))
def test_pure_rules_give_the_trace_shape_or_refuse(library_error, case, bad_number):
    batch, inputs, outputs, dtype, broken, rate_kind, name = case
    trace = tensor((batch, inputs, outputs), dtype, 1)
    pre, post = tensor((batch, inputs), dtype, 2), tensor((batch, outputs), dtype, 3)
    threshold = tensor((batch, outputs), dtype, 4).abs()
    rate = {"number": 0.3, "scalar": torch.tensor(0.3, dtype=dtype), "[O]": torch.rand(outputs, dtype=dtype),
            "[B]": torch.rand(batch, dtype=dtype), "[B, 1]": torch.rand(batch, 1, dtype=dtype),
            "[B, O]": torch.rand(batch, outputs, dtype=dtype)}[rate_kind]
    valid = True
    if broken == "pre_shape":
        pre, valid = tensor((batch, inputs + 1), dtype), False
    elif broken == "post_batch":
        post, valid = tensor((batch + 1, outputs), dtype), False
    elif broken == "pre_dtype":
        pre = pre.to(torch.float16 if dtype == torch.float32 else torch.float32)
        valid = False
    elif broken == "trace_dtype":
        trace, valid = trace.to(torch.int64), False
    elif broken == "trace_rank":
        trace, valid = torch.zeros(inputs, outputs, dtype=dtype), False
    elif broken == "rate_value":
        rate, valid = bad_number, False
    elif broken == "rate_shape":
        rate, valid = torch.rand(inputs + outputs + batch + 2, dtype=dtype), False
    elif broken == "rate_dtype":
        rate, valid = torch.ones(outputs, dtype=torch.int64), False
    elif broken == "threshold_shape" and name == "bcm":
        threshold, valid = tensor((batch, outputs + 1), dtype), False
    if not valid:
        with library_error():
            RULE_CALLS[name](trace, pre, post, rate, threshold)
        return
    out = RULE_CALLS[name](trace, pre, post, rate, threshold)
    assert out.shape == (batch, inputs, outputs) and out.dtype == dtype
    assert torch.isfinite(out).all()


@given(st.integers(0, 3), st.integers(1, 4), st.integers(1, 4), st.sampled_from(DTYPES), st.sampled_from(DTYPES))
def test_outer_and_threshold_update_shapes_or_refuse(library_error, batch, inputs, outputs, pre_dtype, post_dtype):
    pre, post = tensor((batch, inputs), pre_dtype), tensor((batch, outputs), post_dtype)
    valid = pre_dtype == post_dtype and pre_dtype.is_floating_point
    if valid:
        assert outer(pre, post).shape == (batch, inputs, outputs)
        assert bcm_threshold_update(tensor((batch, outputs), post_dtype), post, 0.1).shape == (batch, outputs)
    else:
        with library_error():
            outer(pre, post)
        if not post_dtype.is_floating_point:
            with library_error():
                bcm_threshold_update(post, post, 0.1)
    with library_error():
        outer(tensor((batch + 1, inputs), torch.float32), tensor((batch, outputs), torch.float32))


@given(st.one_of(st.sampled_from(sorted(RULES)), st.text(max_size=6), st.integers(), st.none()),
       st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 3), st.booleans()))
def test_make_rule_builds_a_known_rule_or_refuses(library_error, name, clip):
    valid_name = isinstance(name, str) and name in RULES
    valid_clip = (not isinstance(clip, bool) and not math.isnan(clip) and clip > 0) if name == "clip" else True
    if valid_name and valid_clip:
        assert isinstance(make_rule(name, clip=clip), RULES[name])
    else:
        with library_error():
            make_rule(name, clip=clip)


@given(st.one_of(st.sampled_from(MODULATIONS), st.text(max_size=6), st.integers()),
       st.integers(-1, 3), st.integers(-1, 3), st.one_of(st.booleans(), st.integers(0, 1)),
       st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.booleans()))
def test_make_modulator_builds_or_refuses(library_error, mode, source, channels, fanout, eligibility_rate):
    valid = (isinstance(mode, str) and mode in MODULATIONS and (mode == "none" or (
        source >= 1 and channels >= 1 and isinstance(fanout, bool) and (fanout or channels in (1, 4))
        and not isinstance(eligibility_rate, bool) and math.isfinite(eligibility_rate) and eligibility_rate > 0)))
    if not valid:
        with library_error():
            make_modulator(mode, source, 4, channels=channels, fanout=fanout, eligibility_rate=eligibility_rate)
        return
    modulator = make_modulator(mode, source, 4, channels=channels, fanout=fanout, eligibility_rate=eligibility_rate)
    if mode == "none":
        assert modulator is None
        return
    rate = modulator(torch.randn(2, source))
    assert rate.shape == (2, 4 if fanout else channels)
    with library_error():
        modulator(torch.randn(2, source + 1))


# -- sequence modules: backends agree on valid inputs --------------------------------------------------------

@st.composite
def plastic_config(draw):
    return {"rule": draw(st.sampled_from(sorted(RULES))), "modulation": draw(st.sampled_from(MODULATIONS)),
            "alpha": draw(st.sampled_from(ALPHA_GRANULARITIES)), "eta": draw(st.sampled_from(ETA_GRANULARITIES)),
            "alpha_init": 0.3, "eta_init": 0.2}


def run_sequence(kind, config, backprop, native, x, dtype, seed=1, **options):
    torch.manual_seed(seed)
    model = SEQUENCES[kind](3, 4, backprop=backprop, **config, **options).to(dtype)
    inputs = x.clone().requires_grad_()
    with use_native(native):
        outputs, state = model(inputs)
        (outputs.sin().sum() + state.plastic.trace.sum()).backward()
    grads = [p.grad for p in model.parameters()]
    return outputs.detach(), state.plastic.trace.detach(), inputs.grad, grads


@settings(max_examples=5)
@given(st.sampled_from(sorted(SEQUENCES)), plastic_config(), st.integers(1, 3), st.integers(1, 4),
       st.sampled_from([torch.float32, torch.float64]), st.sampled_from([None, 1, 2, 5]),
       st.sampled_from([None, 1, 3]))
def test_every_backend_gives_the_same_outputs_and_gradients(kind, config, batch, steps, dtype, chunk_size,
                                                            truncate_every):
    x = tensor((batch, steps, 3), dtype, 5)
    reference = run_sequence(kind, config, "autograd", False, x, dtype, truncate_every=truncate_every)
    assert reference[0].shape == (batch, steps, 4) and torch.isfinite(reference[0]).all()
    tolerance = 1e-5 if dtype == torch.float32 else 1e-10
    fused = supports_fused(SEQUENCES[kind](3, 4, **config))
    for backprop in BACKPROP_MODES:
        if backprop == "fused" and not fused:
            continue
        for native in (True, False):
            got = run_sequence(kind, config, backprop, native, x, dtype, chunk_size=chunk_size,
                               truncate_every=truncate_every)
            for a, b in zip(got[:3], reference[:3], strict=True):
                torch.testing.assert_close(a, b, atol=tolerance, rtol=tolerance)
            for a, b in zip(got[3], reference[3], strict=True):
                assert (a is None) == (b is None)
                if a is not None:
                    torch.testing.assert_close(a, b, atol=tolerance, rtol=tolerance)


# -- sequence modules and cells: input classes ---------------------------------------------------------------

@settings(max_examples=20)
@given(st.sampled_from(sorted(SEQUENCES)), st.sampled_from(BACKPROP_MODES), st.integers(0, 2), st.integers(0, 3),
       st.sampled_from(DTYPES), st.sampled_from([None, math.nan, math.inf]), st.integers(3, 4))
def test_sequence_inputs_run_or_are_refused(library_error, kind, backprop, batch, steps, dtype, special, features):
    model = SEQUENCES[kind](3, 4, backprop=backprop)
    x = tensor((batch, steps, features), dtype, 6, special)
    valid = batch >= 1 and steps >= 1 and dtype == torch.float32 and features == 3
    if not valid:
        with library_error():
            model(x)
        return
    outputs, state = model(x)
    assert outputs.shape == (batch, steps, 4) and outputs.dtype == torch.float32
    assert type(state) is type(model.initial_state(batch))
    if special is None:
        assert torch.isfinite(outputs).all()


@given(st.sampled_from(sorted(CELLS)), st.integers(0, 2), st.sampled_from(DTYPES), st.sampled_from([3, 5]))
def test_cell_inputs_run_or_are_refused(library_error, kind, batch, dtype, features):
    cell = CELLS[kind](3, 4)
    x = tensor((batch, features), dtype, 7)
    if batch >= 1 and dtype == torch.float32 and features == 3:
        hidden, _ = cell(x)
        assert hidden.shape == (batch, 4)
    else:
        with library_error():
            cell(x)


STATE_BREAKS = ["valid", "other_module", "tuple", "wrong_batch", "wrong_dtype", "meta", "trace_none", "trace_list",
                "eligibility", "threshold", "hidden_shape"]


def broken_plastic(plastic, how, batch):
    """A :class:`PlasticState` broken in the way ``how`` names (or as it is)."""
    if how == "tuple":
        return tuple(plastic)
    if how == "wrong_batch":
        return plastic._replace(trace=torch.zeros((batch + 1,) + plastic.trace.shape[1:]))
    if how == "wrong_dtype":
        return plastic._replace(trace=plastic.trace.double())
    if how == "meta":
        return plastic._replace(trace=plastic.trace.to("meta"))
    if how == "trace_none":
        return plastic._replace(trace=None)
    if how == "trace_list":
        return plastic._replace(trace=plastic.trace.tolist())
    if how == "eligibility":  # present where the module keeps none, or missing where it keeps one
        eligibility = None if plastic.eligibility is not None else torch.zeros_like(plastic.trace)
        return plastic._replace(eligibility=eligibility)
    if how == "threshold":
        return plastic._replace(
            threshold=None if plastic.threshold is not None else torch.zeros(batch, plastic.trace.shape[2]))
    return plastic


def broken_state(state, how, batch, other):
    """A recurrent state broken in the way ``how`` names: of the other module, a plain tuple, or with its hidden
    activity or plastic state broken."""
    if how == "other_module":
        return other.initial_state(batch)
    if how == "tuple":
        return tuple(state)
    if how == "hidden_shape":
        return state._replace(hidden=torch.zeros(batch, 5))
    return state._replace(plastic=broken_plastic(state.plastic, how, batch))


@settings(max_examples=30)
@given(st.sampled_from(sorted(SEQUENCES)), st.sampled_from(["fused", "checkpoint", "autograd"]),
       st.sampled_from(["hebbian", "clip", "bcm"]), st.sampled_from(MODULATIONS), st.integers(1, 3),
       st.sampled_from(STATE_BREAKS), st.booleans())
def test_states_are_checked_in_every_backend(library_error, kind, backprop, rule, modulation, batch, how, cell):
    config = {"rule": rule, "modulation": modulation}
    if backprop == "fused" and not supports_fused(PlasticSynapses(4, 4, **config)):
        backprop = "checkpoint"
    model = SEQUENCES[kind](3, 4, backprop=backprop, **config)
    other = SEQUENCES["lstm" if kind == "rnn" else "rnn"](3, 4, **config)
    state = broken_state(model.initial_state(batch), how, batch, other)
    if cell:
        run, x = model.cell, torch.randn(batch, 3)
    else:
        run, x = model, torch.randn(batch, 2, 3)
    if how == "valid":
        outputs, _ = run(x, state)
        assert outputs.shape[0] == batch and torch.isfinite(outputs).all()
        return
    with library_error():
        run(x, state)


@given(st.sampled_from(STATE_BREAKS), st.sampled_from(["hebbian", "bcm"]), st.sampled_from(MODULATIONS),
       st.integers(1, 3), st.sampled_from(DTYPES), st.sampled_from(["update", "plastic_input", "forward"]))
def test_plastic_linear_and_synapses_check_states_and_activities(library_error, how, rule, modulation, batch,
                                                                   dtype, method):
    layer = PlasticLinear(3, 4, rule=rule, modulation=modulation)
    synapses = layer.synapses
    state = layer.initial_state(batch)
    bad = broken_plastic(state, "tuple" if how in ("other_module", "hidden_shape") else how, batch)
    x = tensor((batch, 3), dtype, 8)
    valid_x = dtype == torch.float32
    if how == "valid" and valid_x:
        y, new = layer(x, bad, target=torch.randn(batch, 4))
        assert y.shape == (batch, 4) and new.trace.shape == (batch, 3, 4)
    else:
        with library_error():
            layer(x, bad)
    call = {"update": lambda s: synapses.update(s, x, torch.randn(batch, 4), modulator_source=torch.randn(batch, 4)),
            "plastic_input": lambda s: synapses.plastic_input(x, s),
            "forward": lambda s: synapses(x, layer.weight, s)}[method]
    if how == "valid" and valid_x:
        assert isinstance(call(bad), (PlasticState, torch.Tensor))
    else:
        with library_error():
            call(bad)


@given(st.sampled_from([PlasticRNN, PlasticLSTM, PlasticRNNCell, PlasticLSTMCell, PlasticLinear, PlasticSynapses]),
       st.integers(-1, 2), st.sampled_from(DTYPES + [None, "float32"]), st.sampled_from([None, "cpu", "meta"]))
def test_initial_state_has_the_requested_batch_dtype_and_device_or_refuses(library_error, kind, batch, dtype, device):
    module = kind(4, 4)
    if batch < 1 or not (dtype is None or (isinstance(dtype, torch.dtype) and dtype.is_floating_point)):
        with library_error():
            module.initial_state(batch, dtype=dtype, device=device)
        return
    state = module.initial_state(batch, dtype=dtype, device=device)
    trace = state.trace if isinstance(state, PlasticState) else state.plastic.trace
    assert trace.shape == (batch, 4, 4) and trace.dtype == (dtype or torch.float32)
    assert trace.device.type == (device or "cpu")


# -- regression tests of the defects found by the properties ---------------------------------------------------

def test_pure_rules_refuse_mismatched_activities_with_a_library_error(library_error):
    trace = torch.zeros(2, 3, 4)
    with library_error() as info:  # was a RuntimeError from inside torch.baddbmm
        hebbian_update(trace, torch.randn(2, 5), torch.randn(2, 4), 0.1)
    assert "pre must have shape [2, 3], got [2, 5]" in str(info.value)
    with library_error() as info:  # was a RuntimeError from a broadcast
        oja_update(trace, torch.randn(2, 3), torch.randn(3, 4), 0.1)
    assert "post must have shape [2, 4]" in str(info.value)
    with library_error() as info:  # was a RuntimeError from torch.baddbmm
        hebbian_update(trace, torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 4), 0.1)
    assert "pre must have the dtype and device of trace" in str(info.value)
    with library_error():  # was an IndexError
        hebbian_update(trace[0], torch.randn(2, 3), torch.randn(2, 4), 0.1)
    with library_error():  # was a RuntimeError
        bcm_update(trace, torch.randn(2, 3), torch.randn(2, 4), 0.1, torch.zeros(2, 5))
    with library_error():  # was an IndexError
        outer(torch.randn(3), torch.randn(4))


def test_pure_rules_refuse_a_rate_that_is_not_a_finite_number():
    trace, pre, post = torch.zeros(2, 3, 4), torch.randn(2, 3), torch.randn(2, 4)
    with pytest.raises(ValueError, match="rate must be a finite number, got nan"):  # was a NaN trace
        hebbian_update(trace, pre, post, float("nan"))
    with pytest.raises(TypeError, match="rate must be a finite number or a tensor, got bool"):  # was taken as 1
        soft_bounded_update(trace, pre, post, True)
    with pytest.raises(TypeError, match="rate must be a finite number or a tensor, got str"):
        hebbian_update(trace, pre, post, "0.1")
    with pytest.raises(ValueError, match="clip must be > 0, got -1.0"):  # clamp(min=1, max=-1) gave -1 everywhere
        clipped_hebbian_update(trace, pre, post, 0.1, -1.0)
    with pytest.raises(ValueError, match="decay must be a finite number, got nan"):
        bcm_threshold_update(torch.zeros(2, 4), post, float("nan"))


def test_bcm_threshold_update_takes_a_per_batch_decay_per_batch_element():
    threshold, post = torch.zeros(2, 3), torch.ones(2, 3)
    decay = torch.tensor([0.5, 0.25])  # [B]: was broadcast against O (a RuntimeError here, B != O)
    assert torch.equal(bcm_threshold_update(threshold, post, decay), torch.tensor([[0.5] * 3, [0.25] * 3]))


def test_modulator_checks_its_arguments(library_error):
    with library_error():  # fanout=1 was taken as True
        make_modulator("simple", 3, 4, fanout=1)
    with library_error():  # an infinite initial eligibility rate made the traces NaN
        make_modulator("retroactive", 3, 4, eligibility_rate=float("inf"))
    with pytest.raises(ValueError, match="eligibility_rate must be a finite number > 0, got inf"):
        SynapseConfig(modulation="retroactive", eligibility_rate=float("inf"))
    with library_error() as info:  # was a RuntimeError from inside nn.Linear
        Modulator(3, 4)(torch.randn(2, 5))
    assert "source must have shape [B, 3], got [2, 5]" in str(info.value)


def test_plastic_synapses_check_their_calls(library_error):
    synapses = PlasticSynapses(3, 4)
    state = synapses.initial_state(2)
    with library_error():  # was a RuntimeError from inside torch
        synapses(torch.zeros(2, 3), torch.zeros(3, 5), state)
    with library_error():  # was a RuntimeError from inside the rule
        synapses.update(state, torch.zeros(2, 3), torch.zeros(2, 5))
    with library_error() as info:  # was a RuntimeError: a state of batch 1 with activities of batch 2
        synapses.update(synapses.initial_state(1), torch.zeros(2, 3), torch.zeros(2, 4))
    assert "the state is for batch size 1 but the inputs have batch size 2" in str(info.value)
    with pytest.raises(ValueError, match="modulator_source must be an int >= 1 or None, got 0"):  # 0 read as None
        PlasticSynapses(3, 4, modulator_source=0, modulation="simple")
    with pytest.raises(ValueError, match="dtype must be a floating-point torch.dtype or None, got torch.int64"):
        synapses.initial_state(2, dtype=torch.int64)  # was an integer state, refused only when used


def test_bool_flags_and_plastic_scan_cells_are_checked():
    with pytest.raises(TypeError, match="bias must be a bool, got int 1"):
        PlasticLinear(3, 4, bias=1)
    with pytest.raises(TypeError, match="input_projection must be a bool, got int 0"):  # was a misleading error
        PlasticRNN(3, 4, input_projection=0)
    with pytest.raises(TypeError, match="bias must be a bool"):
        PlasticLSTMCell(3, 4, bias=0)
    with pytest.raises(TypeError, match=r"cell must be a PlasticRNNCell or PlasticLSTMCell \(pass the module's "
                                        r"\.cell\), got PlasticRNN"):  # was an AttributeError
        plastic_scan(PlasticRNN(3, 4), torch.zeros(2, 2, 3))
    with pytest.raises(TypeError, match="got Linear"):
        plastic_scan(torch.nn.Linear(3, 4), torch.zeros(2, 2, 3))


def test_one_step_modules_name_an_empty_batch():
    with pytest.raises(ValueError, match=r"x must have at least one sample .* got shape \[0, 3\]"):
        PlasticLinear(3, 4)(torch.zeros(0, 3))  # was "batch_size must be an int >= 1, got 0"
    for cell in (PlasticRNNCell(3, 4), PlasticLSTMCell(3, 4)):
        with pytest.raises(ValueError, match=r"inputs must have at least one sample .* got shape \[0, 3\]"):
            cell(torch.zeros(0, 3))
