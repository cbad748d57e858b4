"""How inputs become chunks and pieces become writes: batches are joined while they fit
in a chunk and large ones sliced into equal parts, Parquet row groups are read in equal
batches of about a chunk, and a writer gets few, large chunks instead of many pieces."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from shuffle_kit.io.readers import OVERSIZE, coalesce, open_source
from shuffle_kit.partitioning.writers import WRITE_BATCH_ROWS, fewer_chunks

ROW = 8  # bytes of an int64 row without nulls: nbytes is exact


def _batches(lengths: list[int]) -> list[pa.RecordBatch]:
    start, out = 0, []
    for n in lengths:
        out.append(pa.record_batch({"x": pa.array(np.arange(start, start + n, dtype=np.int64))}))
        start += n
    return out


@given(lengths=st.lists(st.integers(0, 300), max_size=30), chunk_rows=st.integers(1, 120))
def test_coalesce_keeps_the_rows_joins_what_fits_and_slices_evenly(lengths, chunk_rows):
    chunk_bytes = chunk_rows * ROW
    chunks = list(coalesce(_batches(lengths), pa.schema({"x": pa.int64()}), chunk_bytes))
    assert [v for c in chunks for v in c.column("x").to_pylist()] == list(range(sum(lengths)))
    assert all(c.num_rows for c in chunks)
    # at most chunk_bytes (a slice of a large batch: at most one row more; a batch within
    # OVERSIZE of a chunk is left whole, never cut in two halves)
    assert all(c.nbytes <= max(chunk_bytes + ROW, chunk_bytes * OVERSIZE) for c in chunks)
    starts = np.cumsum([0, *lengths])[:-1]
    large = {int(s): n for s, n in zip(starts, lengths) if n * ROW > chunk_bytes * OVERSIZE}
    for s, n in large.items():  # equal slices, as few as fit: no small last one
        mine = [c.num_rows for c in chunks if s <= c.column("x")[0].as_py() < s + n]
        assert sum(mine) == n and max(mine) - min(mine) <= 1 and len(mine) == math.ceil(n * ROW / chunk_bytes)
    whole = {int(s): n for s, n in zip(starts, lengths) if 0 < n * ROW <= chunk_bytes * OVERSIZE}
    for a, b in zip(chunks, chunks[1:]):
        first = b.column("x")[0].as_py()
        if a.column("x")[0].as_py() in whole and first in whole and a.nbytes <= chunk_bytes:
            # joined until the next batch would not fit
            assert a.nbytes + whole[first] * ROW > chunk_bytes


@settings(max_examples=25, deadline=None)
@given(groups=st.lists(st.integers(1, 5000), min_size=1, max_size=6), chunk_rows=st.integers(100, 3000))
def test_parquet_row_groups_are_read_in_equal_batches_of_about_a_chunk(tmp_path_factory, groups, chunk_rows):
    path = tmp_path_factory.mktemp("rg") / "f.parquet"
    total = sum(groups)
    table = pa.table({"x": np.arange(total, dtype=np.int64), "y": np.arange(total, dtype=np.float64)})
    with pq.ParquetWriter(path, table.schema) as w:
        start = 0
        for n in groups:
            w.write_table(table.slice(start, n))
            start += n
    chunk_bytes = chunk_rows * 16  # two 8-byte values a row (and validity bits)
    chunks = list(open_source([str(path)], chunk_bytes).chunks())
    assert pa.concat_tables(chunks).equals(table)
    assert all(c.nbytes <= 2 * chunk_bytes for c in chunks)  # (the first row group's width is a guess)
    assert all(c.nbytes <= chunk_bytes + 64 for c in chunks if c.column("x")[0].as_py() >= groups[0])
    bounds = np.cumsum([0, *[c.num_rows for c in chunks]])
    for i, (start, n) in enumerate(zip(np.cumsum([0, *groups])[:-1], groups)):
        # a row group is cut into equal parts (but the last, short by fewer rows than there
        # are parts): never a small remainder
        cuts = [int(start), *[int(b) for b in bounds if start < b < start + n], int(start + n)]
        parts = np.diff(cuts)
        assert len(set(parts[:-1])) <= 1 and parts[0] - parts[-1] < len(parts)
        if i:  # the batches read so far told the width of a row: the row groups after come in chunks
            # (16 bytes a row and the validity bitmaps: whole bytes, so a 1-row batch shows 18)
            assert len(parts) <= math.ceil(n * 18 / chunk_bytes)


@given(
    lengths=st.lists(st.integers(1, 3 * WRITE_BATCH_ROWS // 2), min_size=1, max_size=8),
    min_rows=st.integers(1, WRITE_BATCH_ROWS),
    words=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4),
)
@settings(max_examples=30, deadline=None)
def test_fewer_chunks_joins_runs_of_short_chunks_and_keeps_the_rows(lengths, min_rows, words):
    pieces = []
    for i, n in enumerate(lengths):
        # every piece with its own dictionary, as pieces of different input row groups
        s = pa.array([words[(i + j) % len(words)] for j in range(n)]).dictionary_encode()
        pieces.append(pa.table({"x": np.full(n, i, dtype=np.int64), "s": s}))
    table = pa.concat_tables(pieces)
    out = fewer_chunks(table, min_rows)
    assert out.schema.equals(table.schema) and out.to_pydict() == table.to_pydict()
    got = [b.num_rows for b in out.to_batches()]
    if all(n >= min_rows for n in lengths):
        assert got == lengths
    else:
        # joined only at the pieces' ends, and every chunk but the last holds min_rows
        assert set(np.cumsum(got).tolist()) <= set(np.cumsum(lengths).tolist())
        assert all(n >= min_rows for n in got[:-1])
