"""split(): the rows of each partition, in input order, for any chunking of the table."""

import itertools

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.kernels.hashing import id_dtype
from shuffle_kit.kernels.split import split


def chunked(values: list, cuts: list[int], type_: pa.DataType) -> pa.ChunkedArray:
    bounds = [0, *sorted(c % (len(values) + 1) for c in cuts), len(values)]
    return pa.chunked_array([pa.array(values[a:b], type_) for a, b in itertools.pairwise(bounds)], type_)


@st.composite
def tables(draw):
    n = draw(st.integers(0, 60))
    ints = draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n))
    words = draw(st.lists(st.one_of(st.none(), st.sampled_from(["a", "bb", "", "ccc"])), min_size=n, max_size=n))
    # each column chunked on its own: batches of the table then cut every column
    cuts = st.lists(st.integers(0, 60), max_size=4)
    table = pa.table({
        "i": chunked(ints, draw(cuts), pa.int64()),
        "s": chunked(words, draw(cuts), pa.string()),
        "d": pa.chunked_array([c.dictionary_encode() for c in chunked(words, draw(cuts), pa.string()).chunks],
                              pa.dictionary(pa.int32(), pa.string())),
    })
    npartitions = draw(st.sampled_from([1, 2, 3, 64, 300]))
    ids = np.array(draw(st.lists(st.integers(0, npartitions - 1), min_size=n, max_size=n)), dtype=id_dtype(npartitions))
    return table, ids, npartitions


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
