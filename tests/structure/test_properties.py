"""Property-based tests of the boundaries of structural plasticity (:mod:`neuroplastic.structure`).

Dormant measures, ReDo and DrM, the sparsity manager and its algorithms on small random MLPs, compaction,
layer densities and pruning criteria: each property draws an input class, decides from the documented contract
whether it is valid, and checks the documented result or a ValueError/TypeError from the library. The plain
tests at the end are the regression tests of the defects these properties found.
"""

from __future__ import annotations

import math
import signal

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neuroplastic.structure import (
    GMP,
    SET,
    GraNet,
    RigL,
    SparsityManager,
    compact,
    count_parameters,
    dormant_mask,
    dormant_ratio,
    dormant_scores,
    drm_perturb,
    erk_densities,
    gradient_magnitude,
    magnitude,
    mean_activations,
    random_scores,
    redo,
    redo_reset,
    uniform_densities,
    unit_activity,
)
from property_inputs import DTYPES

BAD_FRACTIONS = [float("nan"), float("inf"), -0.5, 0, 0.0, 1.5, True, "0.5", None]


def mlp(widths, seed=0):
    """A Linear-ReLU chain with the given widths (input first)."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


widths_strategy = st.lists(st.integers(1, 6), min_size=3, max_size=4)


def valid_fraction(value, *, low_open=True):
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and (value > 0 if low_open else value >= 0) and value <= 1)


# -- dormant measures --------------------------------------------------------------------------------------------

@given(st.integers(0, 3), st.integers(0, 4), st.sampled_from([(), (2,), (0,)]), st.sampled_from(DTYPES),
       st.sampled_from([None, math.nan, math.inf]), st.sampled_from([1, -1, 0, 2, True]),
       st.one_of(st.floats(0, 1), st.sampled_from([math.nan, math.inf, -0.1, True])))
def test_dormant_measures_give_one_value_per_unit_or_refuse(library_error, batch, units, spatial, dtype, special,
                                                            unit_dim, tau):
    gen = torch.Generator().manual_seed(batch * 10 + units)
    x = torch.randn((batch, units) + spatial, generator=gen, dtype=torch.float64)
    x[:, : units // 2] = 0  # some silent units
    if special is not None and x.numel():
        x.view(-1)[-1] = special
    x = x > 0 if dtype == torch.bool else x.to(dtype)
    ndim = x.dim()
    valid_dim = not isinstance(unit_dim, bool) and unit_dim != 0 and -ndim <= unit_dim < ndim and unit_dim != -ndim
    valid = (batch >= 1 and dtype.is_floating_point and (special is None or x.numel() == 0) and valid_dim
             and x.numel() >= 1)
    if not valid:
        with library_error():
            unit_activity(x, unit_dim)
        with library_error():
            dormant_scores(x, unit_dim)
        return
    n = x.shape[unit_dim]
    activity, scores = unit_activity(x, unit_dim), dormant_scores(x, unit_dim)
    assert activity.shape == scores.shape == (n,) and (activity >= 0).all() and (scores >= 0).all()
    if activity.sum() > 0:
        assert abs(float(scores.double().mean()) - 1) < 1e-2
    else:
        assert (scores == 0).all()
    if valid_fraction(tau, low_open=False) or (isinstance(tau, float) and math.isfinite(tau) and tau > 1):
        mask = dormant_mask(x, tau, unit_dim)
        assert mask.dtype == torch.bool and mask.shape == (n,)
        assert torch.equal(mask, scores <= tau) or activity.sum() == 0 or dtype != torch.float32
    else:
        with library_error():
            dormant_mask(x, tau, unit_dim)


@settings(max_examples=15)
@given(widths_strategy, st.integers(0, 4), st.sampled_from([0.0, 0.1, 0.5]), st.integers(0, 2 ** 16))
def test_dormant_ratio_and_redo_keep_the_outputs_of_silent_units(library_error, widths, batch, tau, seed):
    model = mlp(widths, seed)
    with torch.no_grad():  # silence a random set of hidden units of the first layer
        dead = torch.rand(widths[1], generator=torch.Generator().manual_seed(seed)) < 0.5
        model[0].weight[dead] = 0
        model[0].bias[dead] = -1
    x = torch.randn(batch, widths[0], generator=torch.Generator().manual_seed(seed + 1))
    if batch == 0:
        with library_error():
            dormant_ratio(model, x)
        with library_error():
            redo(model, x)
        return
    result = dormant_ratio(model, x, tau)
    assert 0 <= result.ratio <= 1
    assert set(result.masks) == {name for name, m in model.named_modules() if isinstance(m, nn.ReLU)}
    assert bool(result.masks["1"][dead].all())  # silent units are dormant at any tau >= 0
    before = model(x)
    counts = redo_reset(model, {"1": dead}, strict=True) if len(widths) >= 3 else {}
    assert counts.get("1", 0) == int(dead.sum())
    torch.testing.assert_close(model(x), before)  # outgoing weights of the reset units are zero


@given(widths_strategy, st.one_of(st.floats(0, 1), st.sampled_from(BAD_FRACTIONS)))
def test_drm_perturb_mixes_in_a_fresh_initialisation_or_refuses(library_error, widths, factor):
    model = mlp(widths)
    old = {name: p.detach().clone() for name, p in model.named_parameters()}
    if not valid_fraction(factor, low_open=False):
        with library_error():
            drm_perturb(model, factor)
        assert all(torch.equal(p, old[n]) for n, p in model.named_parameters())
        return
    names = drm_perturb(model, factor, generator=torch.Generator().manual_seed(3))
    assert sorted(names) == sorted(old)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    if factor == 1:
        assert all(torch.allclose(p, old[n]) for n, p in model.named_parameters())


# -- sparsity manager and algorithms --------------------------------------------------------------------------

@settings(max_examples=20)
@given(widths_strategy, st.one_of(st.floats(0.05, 1), st.sampled_from(BAD_FRACTIONS)),
       st.sampled_from(["uniform", "erk"]), st.sampled_from(["manager", "SET", "RigL", "GMP", "GraNet"]))
def test_sparsity_algorithms_keep_their_density_or_refuse(library_error, widths, density, distribution, kind):
    model = mlp(widths)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    build = {
        "manager": lambda: SparsityManager(model, optimizer, density, distribution=distribution),
        "SET": lambda: SET(model, optimizer, density, end=3, delta_t=1, distribution=distribution),
        "RigL": lambda: RigL(model, optimizer, density, end=3, delta_t=1, distribution=distribution),
        "GMP": lambda: GMP(model, optimizer, density, end=2, delta_t=1, distribution=distribution),
        "GraNet": lambda: GraNet(model, optimizer, density, end=2, delta_t=1, distribution=distribution),
    }[kind]
    if not valid_fraction(density):
        with library_error():
            build()
        return
    manager = build()
    total = manager.total_size
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(4, widths[0])).square().sum().backward()
        optimizer.step()
    for name, mask in manager.masks.items():
        assert mask.dtype == torch.bool and mask.shape == manager.parameter(name).shape
        assert not manager.parameter(name).detach()[~mask].any()  # pruned weights are exactly zero
        assert mask.sum() >= 1 or kind == "GraNet"  # global pruning (GraNet's default) may empty a layer
    # the density: the requested one up to rounding (and at least one weight per layer)
    slack = (len(manager.masks) + 1) / total
    assert manager.density() <= density + slack + 1e-9 or density == 1.0
    assert manager.density() >= min(density - slack, 1.0) - 1e-9
    manager.remove()


def test_sparsity_manager_refuses_a_model_without_weights(library_error):
    for model in (nn.Sequential(), nn.ReLU(), nn.Sequential(nn.ReLU(), nn.Identity())):
        with library_error():
            SparsityManager(model, None, 0.5)


@st.composite
def layer_shapes(draw):
    names = draw(st.lists(st.sampled_from("abcde"), min_size=0, max_size=4, unique=True))
    return {name: tuple(draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))) for name in names}


@given(layer_shapes(), st.one_of(st.floats(0.01, 1), st.sampled_from(BAD_FRACTIONS)),
       st.one_of(st.floats(0, 3), st.sampled_from([math.nan, math.inf, -1.0, True])))
def test_layer_densities_are_fractions_with_the_requested_mean_or_refuse(library_error, shapes, density, power):
    valid = bool(shapes) and valid_fraction(density)
    valid_power = not isinstance(power, bool) and math.isfinite(power) and power >= 0
    if not valid:
        with library_error():
            uniform_densities(shapes, density)
        with library_error():
            erk_densities(shapes, density, power if valid_power else 1.0)
        return
    assert uniform_densities(shapes, density) == dict.fromkeys(shapes, density)
    if not valid_power:
        with library_error():
            erk_densities(shapes, density, power)
        return
    densities = erk_densities(shapes, density, power)
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    assert set(densities) == set(shapes) and all(0 < d <= 1 + 1e-12 for d in densities.values())
    mean = sum(densities[n] * sizes[n] for n in shapes) / sum(sizes.values())
    assert mean == pytest.approx(density, rel=1e-6)


@given(st.sampled_from([(2, 3), [4], (3.5,), ("3",), (0, 2), (-1,), 5, "34", (True, 2)]))
def test_layer_shapes_must_be_positive_ints(library_error, shape):
    valid = isinstance(shape, (tuple, list)) and all(type(s) is int and s >= 1 for s in shape)
    if valid:
        assert uniform_densities({"w": shape}, 0.5) == {"w": 0.5}
    else:
        with library_error():
            uniform_densities({"w": shape}, 0.5)


# -- compaction ------------------------------------------------------------------------------------------------

@settings(max_examples=15)
@given(widths_strategy, st.integers(0, 2 ** 16), st.booleans())
def test_compact_removes_dead_units_without_changing_the_outputs(widths, seed, zero_outgoing):
    model = mlp(widths, seed).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for index in range(0, len(model) - 1, 2):  # every hidden layer: kill a random set of units
            dead = torch.rand(model[index].out_features, generator=gen) < 0.5
            if zero_outgoing:
                model[index + 2].weight[:, dead] = 0
            else:
                model[index].weight[dead] = 0
                model[index].bias[dead] = torch.randn(int(dead.sum()), generator=gen)
    probe = torch.randn(5, widths[0], generator=gen)
    before, parameters = model(probe), count_parameters(model)
    report = compact(model, probe=probe)
    assert report.parameters_before == parameters and report.parameters_after == count_parameters(model)
    assert report.parameters_after <= parameters
    torch.testing.assert_close(model(probe), before, atol=1e-5, rtol=1e-5)


# -- criteria -------------------------------------------------------------------------------------------------

@given(st.lists(st.integers(0, 3), min_size=0, max_size=3), st.sampled_from(DTYPES))
def test_magnitude_scores_have_the_weights_shape_or_refuse(library_error, shape, dtype):
    weight = torch.randn(shape, dtype=torch.float64)
    weight = weight > 0 if dtype == torch.bool else weight.to(dtype)
    if dtype == torch.bool:
        with library_error():
            magnitude(weight)
        with library_error():
            gradient_magnitude(weight)
        return
    for score in (magnitude(weight), gradient_magnitude(weight)):
        assert score.shape == weight.shape and score.dtype == dtype and (score >= 0).all()


@given(st.one_of(st.lists(st.integers(-1, 3), max_size=3).map(tuple), st.sampled_from([3, (2.0,), (True,), "2"])),
       st.sampled_from([None, "cpu", "meta", "nowhere", 7]))
def test_random_scores_have_the_requested_shape_or_refuse(library_error, shape, device):
    generator = torch.Generator().manual_seed(0)
    valid_shape = isinstance(shape, tuple) and all(type(s) is int and s >= 0 for s in shape)
    if not valid_shape or device in ("nowhere", 7):
        with library_error():
            random_scores(shape, generator, device)
        return
    scores = random_scores(shape, generator, device)
    assert scores.shape == shape and scores.device.type == (device or "cpu")
    if device != "meta":
        assert ((scores >= 0) & (scores < 1)).all()
    with library_error():
        random_scores(shape, 0)


# -- regression tests of the defects found by the properties ---------------------------------------------------

def test_erk_densities_refuse_a_nan_or_infinite_power_scale_instead_of_looping():
    shapes = {"a": (3, 4), "b": (5, 6)}

    def timeout(*_):
        raise AssertionError("erk_densities did not return")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(10)
    try:
        with pytest.raises(ValueError, match="power_scale must be a finite number >= 0, got nan"):  # looped forever
            erk_densities(shapes, 0.5, float("nan"))
        with pytest.raises(ValueError, match="power_scale must be a finite number >= 0, got inf"):  # ZeroDivision
            erk_densities(shapes, 0.5, float("inf"))
        with pytest.raises(TypeError, match="power_scale must be a finite number >= 0, got str"):
            erk_densities(shapes, 0.5, "1")
        with pytest.raises(ValueError, match="power_scale=2000.0 is too large for these shapes"):  # OverflowError
            erk_densities({"a": (1, 1), "b": (5, 6)}, 0.5, 2000.0)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_layer_shapes_are_not_converted_silently():
    with pytest.raises(TypeError, match=r"shapes\['a'\] must be a non-empty sequence of ints >= 1, got str '34'"):
        uniform_densities({"a": "34"}, 0.5)  # was read as (3, 4)
    with pytest.raises(TypeError, match=r"got tuple \(3.5, 4\)"):
        erk_densities({"a": (3.5, 4)}, 0.5)  # was read as (3, 4)
    with pytest.raises(TypeError, match="got int 5"):
        uniform_densities({"a": 5}, 0.5)  # was "'int' object is not iterable"


def test_criteria_and_unit_activity_refuse_what_they_cannot_score(library_error):
    with pytest.raises(ValueError, match="weight must be a numeric tensor, got dtype torch.bool"):
        magnitude(torch.tensor([True]))  # was NotImplementedError from inside torch
    with library_error():
        random_scores((2, -3), torch.Generator())  # was a RuntimeError from inside torch.rand
    with library_error():
        random_scores((2,), torch.Generator(), device="nowhere")
    with pytest.raises(ValueError, match=r"activations has no units \(dimension 1 of \[2, 0\] is empty\)"):
        dormant_mask(torch.zeros(2, 0))  # was a RuntimeError from inside reshape
    with pytest.raises(ValueError, match=r"activations of shape \[1, 3, 0\] has no entries per unit"):
        dormant_scores(torch.zeros(1, 3, 0))  # was NaN scores (a mean over no positions)


def test_boolean_flags_and_the_update_step_are_checked():
    model = mlp([3, 4, 2])
    with pytest.raises(TypeError, match="strict must be a bool, got int 0"):
        redo_reset(model, {"1": torch.ones(4, dtype=torch.bool)}, strict=0)
    with pytest.raises(TypeError, match="sync_distributed must be a bool, got int 1"):
        SparsityManager(model, None, 0.5, sync_distributed=1)
    with pytest.raises(TypeError, match="scale_init must be a bool, got int 1"):
        SparsityManager(model, None, 0.5, scale_init=1)
    manager = SparsityManager(model, None, 0.5)
    with pytest.raises(TypeError, match="step must be an int >= 0, got float nan"):
        manager.update_masks(float("nan"))


def test_mean_activations_read_a_model_whose_output_is_not_logits():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Flatten(0))  # output [n * 2]: not logits [n, C]
    means = mean_activations(model, ["0"], torch.randn(4, 3), batch_size=3)
    assert means["0"].shape == (2,)
