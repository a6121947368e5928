"""_checks: numbers in a range (never a bool, NaN or, unless allowed, inf), ints, int tuples, flags, fractions,
numbers or tensors of numbers, and tensors of any shape."""

from __future__ import annotations

import math

import pytest
import torch

from neuroplastic._checks import (
    check_bool,
    check_fraction,
    check_int,
    check_int_tuple,
    check_number,
    check_optional_int,
    check_positive,
    check_tensor,
    check_values,
    describe_number,
)


def test_accepted_numbers_are_returned_unchanged():
    assert check_number("x", 3) == 3 and check_number("x", 0.5) == 0.5
    assert check_number("x", 0, minimum=0) == 0 and check_number("x", 1.0, maximum=1) == 1.0
    assert check_number("x", math.inf, minimum=0, finite=False) == math.inf
    assert check_number("n", 4, minimum=1, integer=True) == 4


@pytest.mark.parametrize(
    ("value", "options", "error", "message"),
    [
        (True, {}, TypeError, "x must be a finite number, got bool True"),
        ("1", {}, TypeError, "x must be a finite number, got str '1'"),
        (2.0, {"integer": True, "minimum": 1}, TypeError, "x must be an int >= 1, got float 2.0"),
        (math.nan, {}, ValueError, "x must be a finite number, got nan"),
        (math.nan, {"finite": False}, ValueError, r"x must be a number \(±inf allowed\), got nan"),
        (-math.inf, {"finite": False, "minimum": 0}, ValueError, r"x must be a number \(±inf allowed\) >= 0"),
        (math.inf, {}, ValueError, "x must be a finite number, got inf"),
        (0, {"minimum": 0, "exclusive_minimum": True}, ValueError, "x must be a finite number > 0, got 0"),
        (1, {"maximum": 1, "exclusive_maximum": True}, ValueError, "x must be a finite number < 1, got 1"),
        (1.5, {"minimum": 0, "maximum": 1}, ValueError, r"x must be a finite number in \[0, 1\], got 1.5"),
        (0.0, {"minimum": 0, "maximum": 1, "exclusive_minimum": True}, ValueError,
         r"x must be a finite number in \(0, 1\], got 0.0"),
        (3, {"maximum": 2, "integer": True}, ValueError, "x must be an int <= 2, got 3"),
    ],
)
def test_rejected_values_name_the_argument_and_what_is_accepted(value, options, error, message):
    with pytest.raises(error, match=f"^{message}"):
        check_number("x", value, **options)


def test_descriptions_and_check_int_share_the_wording():
    assert describe_number() == "a finite number"
    assert describe_number(minimum=1e-8, maximum=0.5) == "a finite number in [1e-08, 0.5]"
    assert describe_number(minimum=2.0, integer=True) == "an int >= 2"
    with pytest.raises(ValueError, match="^steps must be an int >= 1, got 0$"):
        check_int("steps", 0)
    with pytest.raises(TypeError, match="^steps must be an int >= 1, got bool True$"):
        check_int("steps", True)
    assert check_number("x", 10**400, minimum=0, integer=True) == 10**400  # big ints are not converted


def test_check_int_takes_an_upper_bound_and_check_optional_int_accepts_none():
    assert check_int("count", 3, minimum=0, maximum=3) == 3 and check_int("dim", -2, minimum=None) == -2
    with pytest.raises(ValueError, match=r"^count must be an int in \[0, 3\], got 4$"):
        check_int("count", 4, minimum=0, maximum=3)
    assert check_optional_int("chunk_size", None) is None and check_optional_int("chunk_size", 5) == 5
    with pytest.raises(ValueError, match="^chunk_size must be an int >= 1 or None, got 0$"):
        check_optional_int("chunk_size", 0)
    for bad in (True, 2.0, "3"):
        with pytest.raises(TypeError, match="^chunk_size must be an int >= 1 or None, got "):
            check_optional_int("chunk_size", bad)


def test_check_int_tuple_accepts_sequences_of_ints_and_with_allow_int_one_int():
    assert check_int_tuple("hidden", [4, 8]) == (4, 8) and check_int_tuple("shape", torch.Size([2, 3])) == (2, 3)
    assert check_int_tuple("size", 5, allow_int=True) == (5,)
    assert check_int_tuple("pads", (0, 2), minimum=0) == (0, 2)
    with pytest.raises(ValueError, match=r"^hidden must be a non-empty sequence of ints >= 1, got \(\)$"):
        check_int_tuple("hidden", ())
    with pytest.raises(ValueError, match=r"^hidden must be a non-empty sequence of ints >= 1, got \(4, 0\)$"):
        check_int_tuple("hidden", (4, 0))
    for bad in ((4, 2.0), (True,), "12", 5, None):
        with pytest.raises(TypeError, match="^hidden must be a non-empty sequence of ints >= 1, got "):
            check_int_tuple("hidden", bad)
    with pytest.raises(ValueError, match="^size must be a non-empty sequence of ints >= 1 or an int >= 1, got 0$"):
        check_int_tuple("size", 0, allow_int=True)


def test_check_bool_accepts_only_bools():
    assert check_bool("flag", True) is True and check_bool("flag", False) is False
    for bad in (1, 0, None, "yes"):
        with pytest.raises(TypeError, match="^flag must be a bool, got "):
            check_bool("flag", bad)


def test_check_fraction_returns_a_float_with_open_ends_as_asked():
    assert check_fraction("p", 1) == 1.0 and isinstance(check_fraction("p", 1), float)
    assert check_fraction("p", 0) == 0.0 and check_fraction("d", 1, low_open=True) == 1.0
    with pytest.raises(ValueError, match=r"^density must be a finite number in \(0, 1\], got 0$"):
        check_fraction("density", 0, low_open=True)
    with pytest.raises(ValueError, match=r"^p must be a finite number in \[0, 1\), got 1.0$"):
        check_fraction("p", 1.0, high_open=True)
    with pytest.raises(ValueError, match=r"^p must be a finite number in \[0, 1\], got nan$"):
        check_fraction("p", math.nan)
    with pytest.raises(TypeError, match=r"^p must be a finite number in \[0, 1\], got bool True$"):
        check_fraction("p", True)


def test_check_values_checks_a_number_or_every_entry_of_a_tensor():
    tau = torch.tensor([1.0, 2.0])
    assert check_values("tau", tau, minimum=0, exclusive_minimum=True) is tau
    assert check_values("tau", 3, minimum=0, exclusive_minimum=True) == 3
    assert check_values("tau", torch.tensor([math.inf]), minimum=0, finite=False).item() == math.inf
    with pytest.raises(ValueError, match=r"^tau must be a finite number > 0, got 0.0 \(an entry of a tensor of "
                                         r"shape \[3\]\)$"):
        check_values("tau", torch.tensor([1.0, 0.0, -1.0]), minimum=0, exclusive_minimum=True)
    with pytest.raises(ValueError, match=r"^x must be a finite number, got inf \(an entry of a tensor of shape "
                                         r"\[\]\)$"):
        check_values("x", torch.tensor(math.inf))
    with pytest.raises(ValueError, match=r"^x must be a number \(±inf allowed\), got nan \(an entry"):
        check_values("x", torch.tensor([0.0, math.nan]), finite=False)
    with pytest.raises(ValueError, match="^beta must be a finite number >= 0, got -1$"):
        check_values("beta", -1, minimum=0)
    with pytest.raises(ValueError, match=r"^x must be a finite number <= 1, got 2 \(an entry"):
        check_values("x", torch.tensor([2]), maximum=1)  # integer tensors too
    for bad in (True, "1", None, [1.0]):
        with pytest.raises(TypeError, match="^tau must be a finite number > 0 or a tensor of such numbers, got "):
            check_values("tau", bad, minimum=0, exclusive_minimum=True)


def test_check_positive_rejects_nan_but_accepts_inf():
    assert check_positive("clip", math.inf) == math.inf
    with pytest.raises(ValueError, match="^clip must be > 0, got nan$"):
        check_positive("clip", math.nan)
    with pytest.raises(ValueError, match="^clip must be >= 0, got nan$"):
        check_positive("clip", math.nan, allow_zero=True)


def test_check_tensor_without_a_shape_checks_only_type_dtype_and_placement():
    x = torch.zeros(2, 3, 4, dtype=torch.long)
    assert check_tensor("x", x, None, floating=False) is x
    with pytest.raises(ValueError, match="^x must be a floating-point tensor"):
        check_tensor("x", x, None)
    with pytest.raises(TypeError, match="^x must be a torch.Tensor, got list$"):
        check_tensor("x", [1.0], None)


def test_check_finite_counts_what_is_wrong():
    from neuroplastic._checks import check_finite

    x = torch.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    with pytest.raises(ValueError, match=r"x must be finite, got 1 NaN and 2 infinite entries \(of 4\)"):
        check_finite("x", x)
    ok = torch.ones(3)
    assert check_finite("x", ok) is ok
