"""The package's one size parser and formatter."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.byte_sizes import format_size, parse_size


@given(st.integers(1, 10**15))
def test_a_formatted_size_reads_back_within_its_rounding(n):
    back = parse_size(format_size(n).replace(" ", ""))
    assert math.isclose(back, n, rel_tol=0.05, abs_tol=1)


@pytest.mark.parametrize("text, value", [
    ("1GB", 10**9), ("1gb", 10**9), ("2 GiB", 2 * 2**30), ("500mb", 500 * 10**6), ("1e9", 10**9),
    ("0.5KiB", 512), ("3", 3), (2.5e6, 2_500_000), (7, 7), ("1PB", 10**15),
])
def test_sizes_read_as_written(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["lots", "", "1.2.3GB", "-5MB", "0", 0, -1, float("nan"), float("inf"), "5 XB"])
def test_a_bad_size_is_one_clear_error(bad):
    with pytest.raises(ValueError, match="size"):
        parse_size(bad)


def test_a_bool_is_not_a_size():
    with pytest.raises(TypeError):
        parse_size(True)
