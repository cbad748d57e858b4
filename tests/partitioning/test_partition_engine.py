"""The partition engine, against a simple model: file p holds exactly the input rows whose
partition id is p, in input order, with the input's schema; whichever way the files are
written (open files or sorted runs), for any chunking, budget and thread count; and the
memory it pins never exceeds its budget."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.io.readers import dictionary_encoded, open_source
from shuffle_kit.kernels.hashing import hash_columns, partition_ids
from shuffle_kit.partitioning import engine

WORDS = ["a", "", "b/../c", "é", "x" * 30, None]


def _table(seed: int, rows: int, distinct: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, distinct, rows)
    key = pa.array(keys, mask=rng.random(rows) < 0.05)
    words = pa.array([WORDS[i] for i in rng.integers(0, len(WORDS), rows)], pa.string())
    return pa.table({
        "k": key,
        "w": words,
        "u": pa.array([f"u{v}" for v in rng.integers(0, 10**9, rows)]),  # all distinct
        "x": rng.random(rows),
        "row": np.arange(rows),
    })


def _expected(table: pa.Table, n: int) -> list[pa.Table]:
    ids = partition_ids(table, ["k"], n)
    return [table.filter(pa.array(ids == p)) for p in range(n)]


def _read(directory, want: list[pa.Table], empty_files: bool = False) -> list[pa.Table]:
    """Every partition's file, read back: there is one exactly for each partition of the
    model ``want`` that has rows (for each partition, with ``empty_files``); a partition
    without a file reads as no rows."""
    n = len(want)
    have = [p for p in range(n) if want[p].num_rows or empty_files]
    assert sorted(os.listdir(directory)) == [f"part-{p:05d}.parquet" for p in have]
    return [
        pq.read_table(os.path.join(directory, f"part-{p:05d}.parquet")) if p in have else want[p].slice(0, 0)
        for p in range(n)
    ]


@given(
    seed=st.integers(0, 2**16), rows=st.integers(0, 3000), n=st.integers(1, 9),
    distinct=st.sampled_from([1, 3, 50, 10**6]), cuts=st.lists(st.integers(0, 3000), max_size=6),
    budget=st.sampled_from([1, 2_000, 50_000, 2**30]), direct=st.booleans(), empty_files=st.booleans(),
    hashed=st.sampled_from([None, "k", "row"]),
)
def test_files_equal_the_model_for_any_chunking_and_budget(
    tmp_path_factory, seed, rows, n, distinct, cuts, budget, direct, empty_files, hashed
):
    table = _table(seed, rows, distinct)
    bounds = sorted({0, rows, *(c for c in cuts if c < rows)})
    chunks = [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]
    # string columns arrive dictionary-encoded (as the job reads them) with a dictionary per
    # chunk; ``direct``: the writer is told, and writes them to the files as dictionaries
    chunks = [
        c.set_column(1, "w", c.column("w").dictionary_encode()).set_column(2, "u", c.column("u").dictionary_encode())
        for c in chunks
    ]
    if hashed:  # chunks that carry their hashes, of the key (used) or of another column (not)
        chunks = [engine.HashedChunk(c, hash_columns([c.column(hashed)]), (hashed,)) for c in chunks]
    d = tmp_path_factory.mktemp("out")
    written = []
    # a partition without rows has no file, unless the layout asks for one per partition
    files = engine.PartFiles.of(str(d), table.schema, "parquet", "none", dictionary=["w", "u"] if direct else [],
                                encode=["k"] if direct else [], layout=sk.Layout(empty_files=empty_files))
    sizes = np.full(n, -1, dtype=np.int64)
    rows_out = engine.partition_into(chunks, ["k"], n, files, engine.Resources(budget), written=written.append,
                                     sizes=sizes)
    assert rows_out == sum(written) == rows
    want = _expected(table, n)
    assert sizes.tolist() == [t.num_rows for t in want]  # every partition counted, the empty ones as 0
    for p, (got, model) in enumerate(zip(_read(d, want, empty_files), want)):
        assert got.schema.equals(table.schema, check_metadata=False)
        assert got.equals(model)
        if model.num_rows or empty_files:
            _check_row_groups(d / f"part-{p:05d}.parquet", key_encoded=direct)


def _check_row_groups(path, key_encoded: bool) -> None:
    """Every row group's string column is dictionary-encoded, with right min/max statistics;
    the key column is when asked (``encode``), and only then."""
    f = pq.ParquetFile(path)
    for i in range(f.metadata.num_row_groups):
        values = [v for v in f.read_row_group(i, columns=["w"]).column("w").to_pylist() if v is not None]
        stats = f.metadata.row_group(i).column(1).statistics
        if values:
            assert (stats.min, stats.max) == (min(values), max(values))
    assert dictionary_encoded(f.metadata, "w")
    if f.metadata.num_row_groups:  # (an empty file has no column chunks to tell)
        assert dictionary_encoded(f.metadata, "k") == key_encoded


def test_chunks_with_different_dictionaries_stay_dictionary_encoded(tmp_path):
    # each chunk has its own dictionary (as each input row group does); a row group of
    # pieces from several chunks still gets one dictionary page and index-only data pages
    table = _table(3, 80_000, 1000)
    chunks = [table.slice(i, 20_000) for i in range(0, table.num_rows, 20_000)]
    chunks = [c.set_column(1, "w", c.column("w").dictionary_encode()) for c in chunks]
    assert not chunks[0].column("w").chunk(0).dictionary.equals(chunks[1].column("w").chunk(0).dictionary)
    files = engine.PartFiles.of(str(tmp_path), table.schema, "parquet", "lz4", dictionary=["w"])
    engine.partition_into(chunks, ["k"], 2, files, engine.Resources(2**30))
    for p, (got, want) in enumerate(zip(_read(tmp_path, _expected(table, 2)), _expected(table, 2))):
        assert got.equals(want)
        meta = pq.read_metadata(tmp_path / f"part-{p:05d}.parquet")
        assert meta.num_row_groups == 1 and dictionary_encoded(meta, "w")
        # the stored Arrow schema is the plain one: readers take the strings as values
        assert pq.read_schema(tmp_path / f"part-{p:05d}.parquet").equals(table.schema)
        _check_row_groups(tmp_path / f"part-{p:05d}.parquet", key_encoded=False)


def _chunks(table: pa.Table, rows: int) -> list[pa.Table]:
    return [table.slice(i, rows) for i in range(0, table.num_rows, rows)]


def test_pinned_memory_stays_within_the_budget_with_open_files(monkeypatch, tmp_path):
    table = _table(1, 200_000, 5000)
    chunks = _chunks(table, 10_000)
    budget = 2 * engine.WRITER_BYTES * 4 + 3 * chunks[0].nbytes
    assert engine.keeps_files_open(2, budget)
    seen = []
    real_add = engine._OpenFiles.add

    def add(self, index, pieces, nbytes):
        real_add(self, index, pieces, nbytes)
        seen.append((self.pinned, len(self.chunks)))

    monkeypatch.setattr(engine._OpenFiles, "add", add)
    files = engine.PartFiles.of(str(tmp_path), table.schema, "parquet", "none")
    engine.partition_into(chunks, ["k"], 2, files, engine.Resources(budget))
    assert len(seen) == len(chunks)
    assert max(p for p, _ in seen) <= budget - 2 * engine.WRITER_BYTES  # the writers' share counted
    assert max(c for _, c in seen) >= 2  # chunks did overlap in memory: the bound was exercised
    for p, (got, want) in enumerate(zip(_read(tmp_path, _expected(table, 2)), _expected(table, 2))):
        assert got.equals(want)
        # each file was written as several row groups as the budget filled
        assert pq.ParquetFile(tmp_path / f"part-{p:05d}.parquet").metadata.num_row_groups > 1


def test_open_files_filling_at_one_pace_are_written_a_few_per_chunk(monkeypatch, tmp_path):
    # every partition gets about the same share of each chunk: were their row groups all
    # cut at one size, every file would be written on the same chunk (and the next chunks'
    # splits would wait behind those writes); their first row groups end at points spread
    # between half and all of a row group's share instead, and so do the later ones
    n = 8
    table = _table(5, 400_000, 10**9)
    chunks = _chunks(table, 4_000)
    budget = 2**23
    assert engine.keeps_files_open(n, budget)
    flushed: list[int] = []  # partitions handed to a writer on each chunk, as it is added
    real_add, real_flush = engine._OpenFiles.add, engine._OpenFiles.flush

    def add(self, index, pieces, nbytes):
        flushed.append(0)
        real_add(self, index, pieces, nbytes)

    def flush(self, p, last=False):
        if not last:
            flushed[-1] += 1
        real_flush(self, p, last)

    monkeypatch.setattr(engine._OpenFiles, "add", add)
    monkeypatch.setattr(engine._OpenFiles, "flush", flush)
    files = engine.PartFiles.of(str(tmp_path), table.schema, "parquet", "none")
    engine.partition_into(chunks, ["k"], n, files, engine.Resources(budget))
    assert sum(flushed) >= 3 * n  # several row groups a file
    assert max(flushed) <= n // 4, flushed
    first = []
    for p, (got, want) in enumerate(zip(_read(tmp_path, _expected(table, n)), _expected(table, n))):
        assert got.equals(want)
        meta = pq.read_metadata(tmp_path / f"part-{p:05d}.parquet")
        first.append(meta.row_group(0).num_rows)
        # later row groups are of one size again (the last one aside: what is left)
        later = [meta.row_group(i).num_rows for i in range(1, meta.num_row_groups - 1)]
        assert max(later) <= 1.2 * min(later)
    assert min(first) < 0.6 * max(first)


@pytest.mark.parametrize("skew", [False, True])
def test_sorted_runs_hold_at_most_the_budget_and_leave_nothing_behind(monkeypatch, tmp_path, skew):
    table = _table(4, 120_000, 3000)
    if skew:  # most rows share one key: that partition is written a bounded piece at a time
        common = np.random.default_rng(0).random(table.num_rows) < 0.9
        k = np.where(common, 7, np.asarray(table.column("k").fill_null(1)))
        table = table.set_column(0, "k", pa.array(k))
    chunks = _chunks(table, 7_000)
    budget = 3 * chunks[0].nbytes
    n = 300
    assert not engine.keeps_files_open(n, budget)
    spills, pinned = [], []
    real_spill, real_add = engine._SortedRuns.spill, engine._SortedRuns.add

    def spill(self):
        spills.append(self.pinned)
        real_spill(self)

    def add(self, index, chunk, nbytes):
        real_add(self, index, chunk, nbytes)
        pinned.append(self.pinned)

    monkeypatch.setattr(engine._SortedRuns, "spill", spill)
    monkeypatch.setattr(engine._SortedRuns, "add", add)
    spill_dir = tmp_path / "tmp"
    spill_dir.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    files = engine.PartFiles.of(str(out), table.schema, "parquet", "lz4")
    rows = engine.partition_into(chunks, ["k"], n, files, engine.Resources(budget, spill_dir=str(spill_dir)))
    assert rows == table.num_rows
    assert len(spills) >= 3 and max(pinned) <= budget
    assert list(spill_dir.iterdir()) == []  # the runs are gone
    for got, want in zip(_read(out, _expected(table, n)), _expected(table, n)):
        assert got.equals(want)
    if skew:
        big = max(range(n), key=lambda p: os.path.getsize(out / f"part-{p:05d}.parquet"))
        assert pq.ParquetFile(out / f"part-{big:05d}.parquet").metadata.num_row_groups > 1


@pytest.mark.parametrize("distinct", [2000, 5], ids=["every partition has rows", "most are empty"])
@pytest.mark.parametrize("empty_files", [False, True], ids=["no empty files", "empty files"])
@pytest.mark.parametrize("budget", [2**30, 400_000], ids=["open files", "sorted runs"])
def test_files_are_the_same_bytes_for_1_2_and_5_threads(tmp_path, budget, empty_files, distinct):
    table = _table(5, 60_000, distinct)
    chunks = [c.set_column(1, "w", c.column("w").dictionary_encode()) for c in _chunks(table, 4_000)]
    n = 16
    contents = []
    for threads in (1, 2, 5):
        d = tmp_path / f"t{threads}"
        d.mkdir()
        files = engine.PartFiles.of(str(d), table.schema, "parquet", "lz4", dictionary=["w"],
                                    layout=sk.Layout(empty_files=empty_files))
        engine.partition_into(chunks, ["k"], n, files, engine.Resources(budget, threads, str(tmp_path)))
        contents.append({f.name: f.read_bytes() for f in d.iterdir()})
    assert contents[0] == contents[1] == contents[2]
    want = _expected(table, n)
    assert any(t.num_rows == 0 for t in want) == (distinct < n)  # the case is what it says
    for got, model in zip(_read(tmp_path / "t1", want, empty_files), want):
        assert got.equals(model)


def test_runs_of_long_pieces_written_piece_by_piece_make_the_same_files_as_gathered_runs(monkeypatch, tmp_path):
    # pieces (a partition's rows of a chunk) of thousands of rows go into a run as batches
    # sliced from their chunks, short ones gathered into one batch per partition: the
    # files are the same bytes either way, for 1, 2 and 5 threads, and equal the model
    table = _table(6, 120_000, 5000)
    # chunks of two record batches each, of their own dictionaries, as a reader's are
    chunks = [pa.concat_tables([b.set_column(1, "w", b.column("w").dictionary_encode())
                                for b in (c.slice(0, 19_000), c.slice(19_000))]) for c in _chunks(table, 40_000)]
    n, budget = 2, 1_500_000
    assert not engine.keeps_files_open(n, budget)
    pieces = []
    real = engine._SpilledRun.write.__func__

    def write(cls, *args):
        run = real(cls, *args)
        pieces.append(int(run.pieces.max()))
        return run

    contents = []
    for sliced in (True, False):
        monkeypatch.setattr(engine, "SLICED_PIECE_ROWS", 4096 if sliced else 10**9)
        monkeypatch.setattr(engine._SpilledRun, "write", classmethod(write))
        for threads in (1, 2, 5):
            pieces.clear()
            d = tmp_path / f"{sliced}-{threads}"
            d.mkdir()
            files = engine.PartFiles.of(str(d), table.schema, "parquet", "lz4", dictionary=["w"])
            engine.partition_into(chunks, ["k"], n, files, engine.Resources(budget, threads, str(tmp_path)))
            contents.append({f.name: f.read_bytes() for f in d.iterdir()})
            # the case is what it says: several runs, whose partitions are several batches each
            assert len(pieces) > 2 and (min(pieces) > 1) == sliced
    assert all(c == contents[0] for c in contents)
    want = _expected(table, n)
    for got, model in zip(_read(tmp_path / "True-1", want), want):
        assert got.equals(model)


@pytest.mark.parametrize("budget", [2**30, 300_000], ids=["open files", "sorted runs"])
def test_pieces_of_wide_dictionaries_make_files_of_the_values_they_use(tmp_path, budget):
    # every chunk carries the whole 3,000-word dictionary, each in its own order (as each
    # input row group of a column with many distinct values does), and a file holds far
    # fewer rows than its pieces' dictionaries hold values
    rng = np.random.default_rng(7)
    vocabulary = np.array([f"word{i:05d}" for i in range(3000)], dtype=object)
    rows, n = 40_000, 64
    words = rng.integers(0, len(vocabulary), rows)
    table = pa.table({"k": rng.integers(0, 10**6, rows), "w": pa.array(vocabulary[words].tolist()),
                      "row": np.arange(rows)})
    chunks = []
    for start in range(0, rows, 5_000):
        order = rng.permutation(len(vocabulary))
        at = np.empty_like(order)
        at[order] = np.arange(len(order))  # where each word is in this chunk's dictionary
        w = pa.DictionaryArray.from_arrays(pa.array(at[words[start:start + 5_000]].astype(np.int32)),
                                           pa.array(vocabulary[order].tolist()))
        chunks.append(table.slice(start, 5_000).set_column(1, "w", w))
    contents = []
    for threads in (1, 2, 5):
        d = tmp_path / f"t{threads}"
        d.mkdir()
        files = engine.PartFiles.of(str(d), table.schema, "parquet", "lz4", dictionary=["w"])
        engine.partition_into(chunks, ["k"], n, files, engine.Resources(budget, threads, str(tmp_path)))
        contents.append({f.name: f.read_bytes() for f in d.iterdir()})
    assert contents[0] == contents[1] == contents[2]
    want = _expected(table, n)
    for p, (got, model) in enumerate(zip(_read(tmp_path / "t1", want), want)):
        assert got.equals(model)
        path = tmp_path / "t1" / f"part-{p:05d}.parquet"
        _check_row_groups(path, key_encoded=False)
        f = pq.ParquetFile(path, read_dictionary=["w"])
        for i in range(f.metadata.num_row_groups):  # a dictionary page of the values used, no more
            w = f.read_row_group(i, columns=["w"]).column("w")
            assert {len(c.dictionary) for c in w.chunks} == {len(set(w.to_pylist()))}


@pytest.mark.parametrize("budget", [2**30, 100_000], ids=["open files", "sorted runs"])
def test_a_failing_write_stops_the_job(monkeypatch, tmp_path, budget):
    table = _table(2, 50_000, 1000)
    chunks = _chunks(table, 5_000)
    calls = []
    real_write = engine.Writer.write

    def write(self, t):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_write(self, t)

    monkeypatch.setattr(engine.Writer, "write", write)
    spill_dir = tmp_path / "tmp"
    spill_dir.mkdir()
    with pytest.raises(OSError, match="No space left"):
        files = engine.PartFiles.of(str(tmp_path), table.schema, "parquet", "none")
        engine.partition_into(chunks, ["k"], 4, files, engine.Resources(budget, spill_dir=str(spill_dir)))
    assert list(spill_dir.iterdir()) == []


def test_unhashable_key_is_refused_before_any_file():
    t = pa.table({"k": [[1], [2]], "v": [1, 2]})
    with pytest.raises(TypeError, match="'k'"):
        engine.partition_into([t], ["k"], 2, engine.PartFiles.of("/nonexistent", t.schema, "parquet", "none"),
                              engine.Resources(2**20))


def test_files_stay_open_only_when_they_and_their_writers_fit(monkeypatch):
    assert engine.keeps_files_open(64, 500 * 2**20)
    assert not engine.keeps_files_open(4096, 500 * 2**20)  # the writers would hold > 1/4 of it
    assert not engine.keeps_files_open(64, 16 * 2**20)  # row groups below MIN_ROW_GROUP_BYTES
    monkeypatch.setattr(engine, "open_file_limit", lambda: 100)
    assert not engine.keeps_files_open(64, 500 * 2**20)  # more files than may be open


def test_open_file_limit_is_raised_to_the_hard_limit():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        assert engine.open_file_limit() == (hard if hard != resource.RLIM_INFINITY else 1 << 20)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_dictionary_encoded_tells_dictionary_pages_from_a_fallback(tmp_path):
    rng = np.random.default_rng(0)
    rows = 200_000
    t = pa.table({
        "few": pa.array([f"w{i}" for i in rng.integers(0, 100, rows)]),
        "many": pa.array([f"value-{i}" for i in rng.permutation(rows)]),  # overflows a 64 KiB dictionary
        "n": rng.integers(0, 10, rows),
    })
    p = tmp_path / "t.parquet"
    pq.write_table(t, p, dictionary_pagesize_limit=64 * 1024, row_group_size=50_000)
    meta = pq.read_metadata(p)
    assert dictionary_encoded(meta, "few")
    assert not dictionary_encoded(meta, "many")
    assert not dictionary_encoded(meta, "absent")
    pq.write_table(t, tmp_path / "plain.parquet", use_dictionary=False)
    assert not dictionary_encoded(pq.read_metadata(tmp_path / "plain.parquet"), "few")

    # the job's reads: only dictionary-encoded columns arrive as dictionaries, keys never
    source = open_source([str(p)], 2**20, dictionary_except=["n"])
    chunk = next(iter(source.chunks()))
    assert pa.types.is_dictionary(chunk.schema.field("few").type)
    assert chunk.schema.field("many").type == pa.string()
    assert source.schema.field("few").type == pa.string()  # the declared schema stays plain
    source = open_source([str(p)], 2**20, dictionary_except=["few"])
    assert next(iter(source.chunks())).schema.field("few").type == pa.string()
    assert next(iter(open_source([str(p)], 2**20).chunks())).schema.equals(t.schema, check_metadata=False)


@pytest.mark.parametrize("values", [40, 8000])
def test_dictionaries_larger_than_a_fifth_of_the_open_files_row_groups_go_through_sorted_runs(
        tmp_path, caplog, values):
    # each row group of an open file writes its own dictionary page: a dictionary of more
    # values than a fifth of the rows of the row groups open files would get makes the
    # engine write sorted runs, and each file whole, instead; the files are right either way
    rng = np.random.default_rng(5)
    rows = 200_000
    words = pa.array([f"w{i:05d}" for i in rng.permutation(values)])
    s = pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, values, rows).astype(np.int32)), words)
    table = pa.table({"k": rng.integers(0, 1000, rows), "s": s, "row": np.arange(rows)})
    plain = table.cast(pa.schema({"k": pa.int64(), "s": pa.string(), "row": pa.int64()}))
    chunks = _chunks(table, 10_000)
    budget = 2 * engine.WRITER_BYTES * 4 + 3 * chunks[0].nbytes
    assert engine.keeps_files_open(2, budget)  # by the writers' buffers and the row groups' bytes
    row_bytes = chunks[0].nbytes // chunks[0].num_rows
    group_rows = engine.row_group_bytes(2, budget) // row_bytes
    assert values < group_rows // engine.DICTIONARY_ROWS or values > group_rows // engine.DICTIONARY_ROWS
    files = engine.PartFiles.of(str(tmp_path), plain.schema, "parquet", "lz4", dictionary=["s"])
    with caplog.at_level("INFO", logger="shuffle_kit.partitioning.engine"):
        engine.partition_into(chunks, ["k"], 2, files, engine.Resources(budget))
    runs = values * engine.DICTIONARY_ROWS > group_rows
    assert ("sorted runs" in caplog.text) == runs and ("open files" in caplog.text) == (not runs)
    for p, (got, want) in enumerate(zip(_read(tmp_path, _expected(plain, 2)), _expected(plain, 2))):
        assert got.equals(want)
        f = pq.ParquetFile(tmp_path / f"part-{p:05d}.parquet")
        assert dictionary_encoded(f.metadata, "s")
        for i in range(f.metadata.num_row_groups):
            got_values = f.read_row_group(i, columns=["s"]).column("s").to_pylist()
            stats = f.metadata.row_group(i).column(1).statistics
            assert (stats.min, stats.max) == (min(got_values), max(got_values))


def test_a_chunk_with_hashes_of_another_length_is_refused():
    t = pa.table({"k": [1, 2, 3]})
    with pytest.raises(ValueError, match="2 hashes for a chunk of 3 rows"):
        engine.HashedChunk(t, hash_columns([t.column("k")])[:2], ("k",))
