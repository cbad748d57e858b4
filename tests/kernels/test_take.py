"""take(): Arrow's take, whichever column kind (strings and binary gathered as views),
for sliced, chunked and null-holding columns."""

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.kernels.take import SMALL, take, take_one_width

TYPES = [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]
WORDS = ["", "a", "twelve bytes", "thirteen byte", "a longer string than any view holds", "é✓"]


@st.composite
def cases(draw):
    n = draw(st.sampled_from([1, 50, SMALL + 3]))
    picks = draw(st.lists(st.integers(-1, len(WORDS) - 1), min_size=n, max_size=n))
    words = [None if i < 0 else WORDS[i] for i in picks]
    kind = draw(st.sampled_from(TYPES))
    values = [None if w is None else (w.encode() if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) else w)
              for w in words]
    table = pa.table({"s": pa.array(values, kind), "i": pa.array(range(n), pa.int64())})
    cut = draw(st.integers(0, n))
    if draw(st.booleans()):  # several chunks
        table = pa.concat_tables([table.slice(0, cut), table.slice(cut)])
    start = draw(st.integers(0, n - 1))
    table = table.slice(start)  # a slice that starts inside its buffers
    size = draw(st.sampled_from([1, table.num_rows, SMALL + 7]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return table, rng.integers(0, table.num_rows, size)


@given(cases())
def test_take_equals_arrows_take(case):
    table, indices = case
    got = take(table, indices)
    assert got.schema == table.schema
    assert got.equals(table.take(pa.array(indices)))


def test_schema_metadata_is_kept():
    table = pa.table({"s": ["x"] * SMALL}).replace_schema_metadata({"k": "v"})
    assert take(table, np.arange(SMALL)[::-1]).schema.metadata == {b"k": b"v"}


@st.composite
def one_width(draw):
    """A string or binary column (a slice) whose values are all of one width in bytes (some
    with a two-byte letter), and positions (repeats allowed) to take."""
    kind = draw(st.sampled_from(TYPES))
    width = draw(st.sampled_from([1, 3, 8, 10, 17]))
    letters = st.text("abc", min_size=width, max_size=width)
    if width >= 2:  # (a value of one two-byte letter and width - 2 one-byte ones: the same width in bytes)
        letters = st.one_of(letters, st.text("abc", min_size=width - 2, max_size=width - 2).map(lambda t: "é" + t))
    words = draw(st.lists(letters, min_size=1, max_size=40))
    binary = pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
    column = pa.array([w.encode() if binary else w for w in words], kind).slice(draw(st.integers(0, len(words) - 1)))
    positions = draw(st.lists(st.integers(0, len(column) - 1), max_size=60))
    return column, np.array(positions, dtype=np.int64)


@given(one_width(), st.booleans())
def test_a_column_of_one_width_is_taken_as_arrow_takes_it(case, chunked):
    column, positions = case
    given_ = pa.chunked_array([column]) if chunked else column
    got = take_one_width(given_, pa.array(positions, pa.int64()))
    expect = column.take(pa.array(positions, pa.int64()))
    assert got is not None and got.type == column.type and got.equals(expect)
    got.validate(full=True)


@given(st.lists(st.sampled_from(["", "a", "bb", "ccc", None]), min_size=1, max_size=30))
def test_a_column_of_several_widths_or_with_nulls_is_left_to_the_caller(words):
    column = pa.array(words, pa.string())
    widths = {len(w) for w in words if w is not None}
    one = take_one_width(column, pa.array([0]))
    if None in words or widths != {max(widths)} or not max(widths):
        assert one is None
    else:
        assert one is not None and one.to_pylist() == words[:1]
    assert take_one_width(pa.chunked_array([column, column]), pa.array([0])) is None
