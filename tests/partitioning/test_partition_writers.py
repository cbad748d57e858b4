"""Output files: which schemas may carry dictionaries into Parquet, one dictionary per column
chunk, and WriterPool's files per key value, numbered per directory, written one by one or
many at once."""

import os

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit.partitioning.writers import (
    WriterPool,
    one_dictionary_each,
    parquet_dictionary_schema,
)

SCHEMA = pa.schema({"v": pa.int64()})


@given(st.sampled_from([pa.string(), pa.large_string(), pa.binary(), pa.large_binary()]),
       st.sampled_from([None, "UTC", "Europe/Paris"]), st.booleans())
def test_dictionaries_written_to_parquet_read_back_as_the_plain_schema(tmp_path_factory, text, zone, record):
    # any string type, beside types Parquet alone cannot say (large, a time zone): the
    # file keeps the plain schema as Arrow's, and reads back as it, with dictionary pages
    from shuffle_kit.io.provenance import Provenance
    from shuffle_kit.partitioning.writers import Writer

    plain = pa.schema({"s": text, "t": pa.timestamp("us", zone), "n": pa.int64()}, metadata={b"k": b"v"})
    encoded = parquet_dictionary_schema(plain, ["s"])
    assert [str(t) for t in encoded.types] == [str(pa.dictionary(pa.int32(), text)), str(plain.field("t").type),
                                               "int64"]
    assert encoded.metadata == plain.metadata and parquet_dictionary_schema(plain, []) is None
    values = pa.array([b"b", b"a", None, b"b"], text).dictionary_encode()
    table = pa.table([values, pa.array([0, 1, 2, 3], plain.field("t").type), [1, 2, 3, 4]], schema=encoded)
    path = str(tmp_path_factory.mktemp("w") / "f.parquet")
    made = Provenance("hash", ("n",), 4, 1, hash_version=1) if record else None
    writer = Writer(path, encoded, "parquet", "lz4", stored=plain, record=made)
    writer.write(table)
    writer.close()
    back = pq.read_table(path)
    assert back.schema.equals(plain) and back.column("s").to_pylist() == values.to_pylist()
    column = pq.read_metadata(path).row_group(0).column(0)
    stats = column.statistics
    as_bytes = [v if isinstance(v, bytes) else v.encode() for v in (stats.min, stats.max)]
    assert column.has_dictionary_page and as_bytes == [b"a", b"b"]
    if record:
        assert Provenance.from_metadata(pq.read_metadata(path).metadata) is not None


def test_one_dictionary_per_column_chunk():
    t = pa.dictionary(pa.int32(), pa.string())
    column = pa.chunked_array(
        [pa.array(["a", "b", "a"] * 10).dictionary_encode(), pa.array(["c", None, "a"] * 10).dictionary_encode()], t
    )
    table = one_dictionary_each(pa.table({"s": column, "n": range(60)}))
    chunks = table.column("s").chunks
    assert all(c.dictionary.equals(chunks[0].dictionary) for c in chunks)
    assert sorted(chunks[0].dictionary.to_pylist()) == ["a", "b", "c"]
    assert table.column("s").to_pylist() == column.to_pylist()
    # a dictionary with far more entries than the rows use is replaced by the used ones
    wide = pa.DictionaryArray.from_arrays(pa.array([5, 7, 5, 5], pa.int32()), pa.array([f"v{i}" for i in range(100)]))
    narrow = one_dictionary_each(pa.table({"s": wide})).column("s")
    assert narrow.type == t and narrow.to_pylist() == ["v5", "v7", "v5", "v5"]
    assert sorted(narrow.chunk(0).dictionary.to_pylist()) == ["v5", "v7"]
    # so is one with a single unused entry among many rows (it would be written into the
    # file's dictionary page)
    few = pa.DictionaryArray.from_arrays(pa.array([0, 1, None] * 20, pa.int32()), pa.array(["b", "c", "zz"]))
    compact = one_dictionary_each(pa.table({"s": few})).column("s")
    assert compact.to_pylist() == few.to_pylist() and sorted(compact.chunk(0).dictionary.to_pylist()) == ["b", "c"]
    # an ordered dictionary (a pandas ordered categorical, a polars Enum) stays ordered
    ranks = pa.DictionaryArray.from_arrays(pa.array([2, None], pa.int8()), pa.array(["lo", "mid", "hi"]), ordered=True)
    kept = one_dictionary_each(pa.table({"s": ranks})).column("s")
    assert kept.type == ranks.type and kept.to_pylist() == ["hi", None]


@given(st.integers(1, 30), st.lists(st.tuples(st.integers(1, 30), st.lists(st.one_of(st.none(), st.integers(0, 29)),
                                                                           max_size=40)), min_size=1, max_size=12),
       st.sampled_from([pa.int8(), pa.int32()]), st.booleans())
def test_pieces_of_one_growing_dictionary_share_one_of_the_entries_they_use(size, pieces, index_type, ordered):
    # a file's pieces as the job's dictionary gives them: each holds the dictionary as it
    # stood (a start of the whole), its indices within that start
    words = pa.array([f"w{i:02d}" for i in range(size)])
    t = pa.dictionary(index_type, pa.string(), ordered=ordered)
    chunks = []
    for known, rows in pieces:
        known = min(known, size)
        indices = pa.array([None if i is None else i % known for i in rows], index_type)
        chunks.append(pa.DictionaryArray.from_arrays(indices, words.slice(0, known), ordered=ordered))
    column = pa.chunked_array(chunks, t)
    out = one_dictionary_each(pa.table({"s": column})).column("s")
    assert out.type == t and out.to_pylist() == column.to_pylist()
    assert all(c.dictionary.equals(out.chunk(0).dictionary) for c in out.chunks)
    used = {v for v in column.to_pylist() if v is not None}
    assert sorted(out.chunk(0).dictionary.to_pylist()) == sorted(used)


def _files(root) -> dict[str, list[int]]:
    """relative file path -> its values"""
    return {
        os.path.relpath(os.path.join(r, f), root): pq.read_table(os.path.join(r, f)).column("v").to_pylist()
        for r, _, files in os.walk(root) for f in files
    }


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "k=1/j=2", "c"]), st.integers(1, 5)), max_size=40),
       st.integers(1, 2))
def test_files_match_a_model_of_open_writers(tmp_path_factory, ops, max_open):
    root = tmp_path_factory.mktemp("out")
    pool = WriterPool(str(root), SCHEMA, "parquet", "none", max_open)
    model: dict[str, list[list[int]]] = {}  # directory -> values of each of its files, in order
    open_files: dict[str, int] = {}  # the pool's open writers (least recent first): rel -> its file
    value = 0
    for rel, n in ops:
        table = pa.table({"v": range(value, value + n)}, schema=SCHEMA)
        value += n
        if rel in open_files:  # an open file goes on, whatever was written beside it
            i = open_files.pop(rel)
            model[rel][i].extend(table.column("v").to_pylist())
        else:  # the least recently written file is closed; the directory gets its next file
            if len(open_files) >= max_open:
                del open_files[next(iter(open_files))]
            model.setdefault(rel, []).append(table.column("v").to_pylist())
            i = len(model[rel]) - 1
        open_files[rel] = i
        pool.write(rel, table)
    pool.close_all()
    expected = {
        os.path.join(rel, f"part-{i:05d}.parquet"): values
        for rel, files in model.items()
        for i, values in enumerate(files)
    }
    assert _files(root) == expected
    assert pool.files == len(expected) and pool.rows == value and pool.dirs == set(model)
