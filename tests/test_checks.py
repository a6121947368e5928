"""check_number / describe_number: numbers in a range, never a bool, NaN or (unless allowed) inf."""

from __future__ import annotations

import math

import pytest

from neuroplastic._checks import check_int, check_number, describe_number


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
