"""Pairs of values compared in place (``equal_pairs``) agree with Python's ``==`` of the
values, for keys of one width (compared by 64-bit windows) and any other."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.kernels.equal_pairs import HeldValues, equal_pairs

TYPES = [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]


@st.composite
def cases(draw):
    type_ = draw(st.sampled_from(TYPES))
    width = draw(st.sampled_from([0, 3, 7, 8, 9, 10, 15, 16, 17, 24, 31]))
    fixed = draw(st.booleans())  # (else of several widths: Arrow compares them)
    alphabet = draw(st.sampled_from(["ab", "abcdefgh"]))  # (few letters: many values differ by one byte)
    value = st.text(alphabet, min_size=width, max_size=width) if fixed else st.text(alphabet, max_size=width + 3)
    values = draw(st.lists(value, min_size=1, max_size=30, unique=True))
    # each probe paired with a value: that value, the value with one letter changed (only
    # that byte differs), or another value
    probe, rows = [], []
    for _ in range(draw(st.integers(1, 40))):
        row = draw(st.integers(0, len(values) - 1))
        v = values[row]
        how = draw(st.sampled_from(["same", "one byte", "other"]))
        if how == "one byte" and v:
            at = draw(st.integers(0, len(v) - 1))
            v = v[:at] + ("b" if v[at] == "a" else "a") + v[at + 1:]
        elif how == "other":
            v = draw(value)
        probe.append(v)
        rows.append(row)
    positions = sorted(draw(st.sets(st.integers(0, len(probe) - 1))))
    cut = draw(st.integers(0, 2))
    return type_, values, probe, rows, positions, cut


def as_array(strings: list[str], type_: pa.DataType, cut: int) -> pa.Array:
    """``strings`` (None: a null) as an array of ``type_`` that is a slice ``cut`` values
    into a larger one."""
    binary = pa.types.is_binary(type_) or pa.types.is_large_binary(type_)
    items = [s.encode() if binary and s is not None else s for s in ["z" * 9] * cut + strings]
    return pa.array(items, type=type_).slice(cut)


@given(cases(), st.sets(st.integers(0, 39)), st.integers(0, 40))
def test_equal_pairs_is_python_equality(case, nulls, at):
    type_, values, probe, rows, positions, cut = case
    pairs = [rows[p] for p in positions]  # (each position's row)
    expect = [values[r] == probe[p] for r, p in zip(pairs, positions)]
    with_nulls = [None if i in nulls else v for i, v in enumerate(probe)]
    expect_nulls = [e and p not in nulls for e, p in zip(expect, positions)]  # (a null equals nothing)
    two = min(at, len(probe))
    for held in (HeldValues(as_array(values, type_, cut)), HeldValues(as_array(values, type_, 0))):
        for probed, want in (
            (as_array(probe, type_, cut), expect),
            (pa.chunked_array([as_array(probe, type_, 0)]), expect),
            (pa.chunked_array([as_array(probe[:two], type_, 0), as_array(probe[two:], type_, cut)]), expect),
            (as_array(with_nulls, type_, cut), expect_nulls),
        ):
            # (one held column, compared with probe after probe)
            got = held.equal(np.array(pairs, dtype=np.int64), probed, np.array(positions, dtype=np.int64))
            assert got.dtype == bool and got.tolist() == want


def test_a_null_equals_nothing():
    got = equal_pairs(pa.array(["abcdefghij", "bcdefghijk"]), np.array([0, 1]),
                      pa.array(["abcdefghij", None]), np.array([0, 1]))
    assert got.tolist() == [True, False]
