"""Package-level helpers: seeding and argument checks."""

import random

import numpy as np
import pytest
import torch

import neuroplastic
from neuroplastic._checks import check_choice, check_int, check_positive, check_tensor


def test_seed_everything_reproduces_every_generator():
    def draw():
        gen = neuroplastic.seed_everything(7)
        return random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item()

    assert draw() == draw()
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        neuroplastic.seed_everything(-1)


def test_checks_name_the_argument_and_accepted_values():
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match="mode must be one of 'a', 'b'; got 'c'"):
        check_choice("mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match="rate must be > 0, got 0"):
        check_positive("rate", 0)
    assert check_positive("rate", 0, allow_zero=True) == 0
    with pytest.raises(TypeError, match="rate must be a number"):
        check_positive("rate", "fast")
    assert check_int("steps", 3) == 3 and check_int("gap", 0, minimum=0) == 0
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        check_int("steps", 0)
    for bad in (2.0, True, "3"):  # a float, a bool (an int subclass) and a string are not ints
        with pytest.raises(TypeError, match="steps must be an int >= 1, got"):
            check_int("steps", bad)
    x = torch.zeros(2, 3)
    assert check_tensor("x", x, ("B", 3)) is x
    with pytest.raises(ValueError, match=r"x must have shape \[B, 4\], got \[2, 3\]"):
        check_tensor("x", x, ("B", 4))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        check_tensor("x", [1, 2], ("B",))


def test_inputs_of_another_dtype_or_device_than_the_layer_get_a_clear_error():
    from neuroplastic.neurons import RecurrentLIF, SpikeLinear
    from neuroplastic.plasticity import PlasticLinear
    from neuroplastic.plasticity.spiking import PlasticLIF, PlasticRecurrentLIF

    doubles = torch.rand(2, 5, 4, dtype=torch.float64)
    cases = [(SpikeLinear(4, 3), doubles, "x has dtype torch.float64 but the weights are torch.float32"),
             (PlasticLinear(4, 3), doubles[:, 0], "x has dtype torch.float64 but the layer's parameters are "
                                                  "torch.float32"),
             (PlasticLIF(4, 3, rule="hebbian", alpha="neuron"), doubles, "inputs has dtype torch.float64"),
             (PlasticRecurrentLIF(4, 3), doubles, "inputs has dtype torch.float64"),
             (RecurrentLIF(4, 3), doubles, "x has dtype torch.float64")]
    for module, inputs, message in cases:
        with pytest.raises(ValueError, match=message):
            module(inputs)
        module(inputs.float())  # the same inputs in the layer's dtype run
    with pytest.raises(ValueError, match="inputs is on meta but the layer's parameters are on cpu"):
        PlasticLIF(4, 3)(torch.empty(2, 5, 4, device="meta"))
    with pytest.raises(ValueError, match="inputs has dtype torch.float64"):  # a device autocast does not know
        PlasticLIF(4, 3).to("meta")(torch.empty(2, 5, 4, device="meta", dtype=torch.float64))
    # under autocast the dtypes may differ (autocast casts per operation); devices may not
    weight = torch.zeros(3, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        check_tensor("x", torch.zeros(2, 3, dtype=torch.bfloat16), ("B", 3), like=weight)
    with pytest.raises(ValueError, match="x has dtype torch.bfloat16"):
        check_tensor("x", torch.zeros(2, 3, dtype=torch.bfloat16), ("B", 3), like=weight)
