"""split(): the rows of each partition, in input order, for any chunking of the table."""


import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.kernels.split import ARROW_COUNTING_RANGE, count_ids, id_order, split, split_numbered
from tests.helpers.models import tables


@given(tables(), st.booleans())
def test_split_equals_a_filter_per_partition(case, give_counts):
    table, ids, n = case
    counts = np.bincount(ids, minlength=n) if give_counts else None
    pieces = split(table, ids, n, counts)
    assert list(pieces) == sorted(set(ids.tolist()))
    for p, piece in pieces.items():
        assert piece.schema == table.schema
        expected = table.filter(pa.array(ids == p))
        assert piece.to_pydict() == expected.to_pydict()


def test_a_chunked_table_is_not_concatenated():
    # each piece holds slices of the batches it came from: no copy of the whole table
    table = pa.Table.from_batches([pa.record_batch({"x": np.arange(i * 4, i * 4 + 4)}) for i in range(3)])
    ids = np.array([0, 1] * 6, dtype=np.uint8)
    pieces = split(table, ids, 2)
    assert [c.num_chunks for c in pieces[0].columns] == [3]
    assert pieces[0]["x"].to_pylist() == list(range(0, 12, 2))


def test_ids_must_match_rows():
    with pytest.raises(ValueError, match="3 partition ids for 2 rows"):
        split(pa.table({"x": [1, 2]}), np.zeros(3, np.uint8), 2)


@given(tables(), st.integers(-1000, 1000), st.sampled_from([1, 2, -3]), st.booleans())
def test_split_numbered_equals_split_of_the_numbers(case, start, step, give_counts):
    """A RangeIndex held as values is made again from the rows each piece took: the
    pieces equal split()'s, the numbers and the schema included."""
    table, ids, n = case
    numbers = pa.array(start + step * np.arange(table.num_rows), pa.int64())
    table = table.add_column(1, "__index_level_0__", numbers)
    counts = np.bincount(ids, minlength=n) if give_counts else None
    got = split_numbered(table, ids, n, "__index_level_0__", start, step, counts)
    want = split(table, ids, n, counts)
    assert list(got) == list(want)
    for p, piece in got.items():
        assert piece.schema.equals(want[p].schema, check_metadata=True)
        assert piece.to_pydict() == want[p].to_pydict()


@given(st.lists(st.integers(0, 299), max_size=80), st.sampled_from([1, 2, 3, 16, 17, 64, 300]),
       st.sampled_from([1, 3, 7, 1 << 18]))
def test_count_ids_equals_bincount(values, n, block):
    """Every id counted once, whether the ids come in one block or many (a last short one)."""
    ids = np.array([v % n for v in values], dtype=np.uint8 if n <= 256 else np.uint16)
    got = count_ids(ids, n, block)
    assert got.dtype == np.int64 and got.tolist() == np.bincount(ids, minlength=n).tolist()


@given(st.integers(0, 2**20), st.sampled_from([2, 3, 300]), st.integers(0, 2**62 // 10_000), st.booleans())
def test_a_long_table_splits_as_a_filter(seed, n, start, numbered):
    """A table of thousands of rows (past the short-table paths of the takes): every piece
    equals the filter of its rows, and a RangeIndex whose numbers do not fit 32 bits is made
    again exactly."""
    rng = np.random.default_rng(seed)
    rows = 5000
    ids = rng.integers(0, n, rows).astype(np.uint8 if n <= 256 else np.uint16)
    table = pa.table({
        "x": rng.integers(-(2**40), 2**40, rows), "s": [f"v{v}" for v in rng.integers(0, 50, rows)],
        "i": pa.array(start + 3 * np.arange(rows), pa.int64()),
    })
    pieces = split_numbered(table, ids, n, "i", start, 3) if numbered else split(table, ids, n)
    for p, piece in pieces.items():
        assert piece.to_pydict() == table.filter(pa.array(ids == p)).to_pydict()


@given(st.lists(st.text("abé", min_size=3, max_size=3).filter(lambda w: len(w.encode()) == 3), min_size=1, max_size=60),
       st.sampled_from([pa.string(), pa.large_binary()]), st.data())
def test_a_string_column_of_one_width_splits_as_a_filter(words, kind, data):
    # (its values taken as fixed-width items: the same strings as Arrow's take gives)
    values = [w.encode() for w in words] if kind == pa.large_binary() else words
    table = pa.table({"s": pa.array(values, kind), "x": np.arange(len(words))}).slice(data.draw(st.integers(0, 1)))
    ids = np.array(data.draw(st.lists(st.integers(0, 2), min_size=table.num_rows, max_size=table.num_rows)), np.uint8)
    for p, piece in split(table, ids, 3).items():
        piece.validate(full=True)
        assert piece.to_pydict() == table.filter(pa.array(ids == p)).to_pydict()


@given(st.integers(0, 2**20), st.sampled_from([np.uint8, np.uint16, np.uint32]),
       st.sampled_from([1, 2, 255, ARROW_COUNTING_RANGE, ARROW_COUNTING_RANGE + 1, ARROW_COUNTING_RANGE + 2, 60_000]),
       st.integers(0, 3000))
def test_id_order_is_the_stable_order(seed, dtype, span, rows):
    """Ids spanning up to Arrow's counting range and past it (each sort's side of the
    line): the same order as NumPy's stable sort, as int64 and as Arrow."""
    span = min(span, np.iinfo(dtype).max + 1)
    ids = np.random.default_rng(seed).integers(0, span, rows).astype(dtype)
    rows_order, arrow_order = id_order(ids)
    want = np.argsort(ids, kind="stable")
    assert rows_order.dtype == np.int64 and rows_order.tolist() == want.tolist()
    assert arrow_order.to_pylist() == want.tolist()
