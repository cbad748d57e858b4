"""Many partitions read at once (one gather, one Arrow -> pandas conversion) equal a pandas
model and the partition-by-partition path; results do not depend on the thread count."""

from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shuffle_kit import Dict, File, groupby_shuffle, shuffle
from shuffle_kit.codecs import ArrowIPC, TableBuffer
from shuffle_kit.codecs import table_buffer as table_buffer_module
from shuffle_kit.frames import frame_to_table, table_to_frames, tables_to_frame
from shuffle_kit.kernels.hashing import id_dtype, partition_ids
from shuffle_kit.kernels.split import sorted_runs, split
from tests.helpers.models import KINDS, col, frames, norm, pandas_groups, tables

NPARTITIONS = st.sampled_from([1, 2, 7, 64, 1000, 5000])


class _Model:
    """Partition i: the rows of ``df`` whose key hashes to i, in input order."""

    def __init__(self, df, on, n, keep_index=None):
        keys = pa.Table.from_pandas(df[on].reset_index(drop=True), preserve_index=False)
        self.df, self.ids = df, partition_ids(keys, on, n)
        self.dropped = keep_index is False or (
            keep_index is None and isinstance(df.index, pd.RangeIndex) and df.index.name is None
        )

    def __getitem__(self, i):
        part = self.df[self.ids == i]
        return part.reset_index(drop=True) if self.dropped else part

    def concat(self):
        """``to_pandas()``: the partitions one after another (a dropped index renumbered)."""
        filled = [self[i] for i in np.unique(self.ids).tolist()]
        return filled[0] if len(filled) == 1 else pd.concat(filled, ignore_index=self.dropped)


def _equal(a, b, **kwargs):
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_categorical=True, **kwargs)


def _with_index(df, kind):
    if kind == "range":
        return df
    if kind == "named range":
        return df.rename_axis("r")
    if kind == "ints":
        return df.set_axis(pd.Index(np.arange(len(df)) * 3 - 7, name="i"), axis=0)
    return df.set_axis(pd.Index([f"r{i}" for i in range(len(df))], dtype=object), axis=0)


@settings(max_examples=30, deadline=None)
@given(
    frames(), NPARTITIONS, st.sampled_from(["range", "named range", "ints", "strs"]),
    st.sampled_from([None, True, False]), st.sampled_from([None, 300]),
)
def test_partitions_equal_the_model_and_random_access(case, npartitions, index, keep_index, chunk_bytes):
    df, on, _ = case
    df = _with_index(df, index)
    cuts = np.linspace(0, len(df), 4).astype(int)
    chunks = [df.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    want = _Model(df, on, npartitions, keep_index)
    with shuffle(
        chunks, on, npartitions, keep_index=keep_index, chunk_bytes=chunk_bytes, progress=False, threads=2
    ) as res:
        got = list(res)
        assert len(got) == npartitions
        filled = np.flatnonzero(res.sizes).tolist()
        assert filled == np.unique(want.ids).tolist()
        # an object column all None in a chunk is stored as nulls there: such pieces are
        # joined by pandas.concat, which may read an object index as str
        loose = {"check_index_type": False}
        for i in filled + [0, npartitions - 1]:
            _equal(got[i], want[i], **loose)
            _equal(res[i], got[i])  # random access: the partition-by-partition path
        assert [i for i, _ in res.nonempty()] == filled
        if len(df):
            _equal(res.to_pandas(), want.concat(), **loose)


@settings(max_examples=25, deadline=None)
@given(frames(), NPARTITIONS, st.sampled_from([1, 2, 5]))
def test_groupby_shuffle_equals_pandas_for_many_partitions(case, npartitions, threads):
    df, on, chunks = case
    with groupby_shuffle(chunks, on=on, npartitions=npartitions, threads=threads, progress=False) as g:
        got = {(tuple(map(norm, k))): grp for k, grp in g}
    want = pandas_groups(df, on)
    assert got.keys() == want.keys()
    for k in want:
        pd.testing.assert_frame_equal(got[k], want[k], check_exact=True, check_index_type=False)


def _big_frame(rows, seed, kinds=KINDS):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({k: col(k, rows, rng) for k in kinds})
    df["k"] = rng.integers(0, rows // 2, rows)
    return df


@pytest.mark.parametrize("seed", [0, 1])
def test_results_do_not_depend_on_the_thread_count(seed):
    df = _big_frame(4000, seed, ["int64", "float64", "str", "category", "datetime_tz"])
    df.index = df.index[::-1]  # kept: not an unnamed RangeIndex
    chunks = [df.iloc[a : a + 700] for a in range(0, len(df), 700)]
    for n in (5, 400):
        want = _Model(df, ["k"], n)
        with shuffle(chunks, "k", n, threads=1, progress=False) as res:
            one = list(res)
            _equal(res.to_pandas(), want.concat())
        for threads in (2, 5):
            with shuffle(chunks, "k", n, threads=threads, progress=False) as res:
                for a, b in zip(res, one, strict=True):
                    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.parametrize("nulls", [False, True])
def test_arrow_chunks_of_several_batches_and_dictionaries(nulls):
    # batches with their own dictionaries, and (with nulls) an int column that pandas reads
    # as float only where it has a null: each partition as if read alone
    rng = np.random.default_rng(3)

    def batch(i):
        words = pa.array(rng.choice(["a", "b", "c", "d"][i % 3 :], 50)).dictionary_encode()
        ints = pa.array([None if nulls and j == 7 else j for j in range(50)], pa.int64())
        return pa.record_batch({"k": rng.integers(0, 30, 50), "w": words, "i": ints})

    chunks = [pa.Table.from_batches([batch(2 * c), batch(2 * c + 1)]) for c in range(3)]
    for n in (1, 7, 500):
        with shuffle(chunks, "k", n, progress=False) as res:
            for i, part in enumerate(res):
                _equal(part, res[i])
            assert sum(map(len, res)) == 300


def test_threads_are_checked():
    df = pd.DataFrame({"k": [1, 2]})
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            shuffle(df, "k", 2, threads=bad, progress=False)


def test_a_spilled_shuffle_reads_the_same_partitions():
    df = _big_frame(30_000, 2)
    chunks = [df.iloc[a : a + 2500] for a in range(0, len(df), 2500)]
    want = _Model(df, ["k"], 300)
    with shuffle(chunks, "k", 300, memory_limit="1MiB", progress=False) as res:  # the least it takes
        assert res.codec.store.nbytes() > 0  # spilled
        for i, part in enumerate(res):
            _equal(part, want[i])


@given(tables(), st.sampled_from([1, 5, 300, 20_000, 70_000]), st.integers(0, 2**32 - 1))
def test_sorted_runs_hold_the_pieces_of_split(case, npartitions, seed):
    table, _, _ = case
    ids = np.random.default_rng(seed).integers(0, npartitions, table.num_rows).astype(id_dtype(npartitions))
    pieces = split(table, ids, npartitions)
    runs = sorted_runs(table, ids, npartitions)
    assert sum(t.num_rows for t, _ in runs) == table.num_rows
    for p in range(npartitions) if npartitions < 500 else set(ids.tolist()):
        got = [t.slice(int(c[:p].sum()), int(c[p])) for t, c in runs if c[p]]
        if got:
            assert pa.concat_tables(got).to_pydict() == pieces[p].to_pydict()
        else:
            assert p not in pieces


# -- TableBuffer.append_sorted against one piece per key -------------------------------------------


@st.composite
def sorted_appends(draw):
    """Frames of a dropped index (numbered per key) or a kept one, cut into sorted appends."""
    n = draw(st.integers(1, 6))  # keys
    appends = []
    for _ in range(draw(st.integers(1, 4))):
        counts = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
        appends.append(counts)
    return n, appends, draw(st.booleans()), draw(st.sampled_from([10**9, 200])), draw(st.sampled_from([8, 2**16]))


@settings(max_examples=60, deadline=None)
@given(sorted_appends())
def test_append_sorted_reads_like_a_piece_per_key(case):
    n, appends, ranged, memory_limit, block_bytes = case
    with mock.patch.object(table_buffer_module, "SPILL_BLOCK_BYTES", block_bytes):  # blocks of a row or two
        _check_append_sorted(n, appends, ranged, memory_limit)


def _check_append_sorted(n, appends, ranged, memory_limit):
    sorted_tb = TableBuffer(Dict(), memory_limit=memory_limit, empty=True)
    pieces_tb = TableBuffer(Dict())
    sizes = np.zeros(n, dtype=np.int64)
    row = 0
    for counts in appends:
        total = int(counts.sum())
        keys = np.repeat(np.arange(n), counts)
        df = pd.DataFrame({"v": np.arange(row, row + total) * 1.5, "c": pd.Categorical(keys % 2)})
        if not ranged:
            df.index = pd.Index(np.arange(row, row + total) * 10, name="ix")
        row += total
        table = frame_to_table(df)
        starts = np.cumsum(counts) - counts
        sorted_tb.append_sorted(table, counts, index_starts=sizes if ranged else None)
        per_key = {}
        for k in np.flatnonzero(counts).tolist():
            part = df.iloc[starts[k] : starts[k] + counts[k]]
            if ranged:
                part = part.set_axis(pd.RangeIndex(sizes[k], sizes[k] + counts[k]), axis=0)
            per_key[k] = part
        pieces_tb.append(per_key)
        sizes += counts
    everything = list(range(n))
    for k, many in zip(everything, sorted_tb.get(everything)):
        alone = sorted_tb.get(k)
        _equal(alone, pieces_tb.get(k))
        if len(alone):
            _equal(many, alone)
        assert len(many) == sizes[k]
        assert sum(t.num_rows for t in sorted_tb.get_pieces([k])[0]) == sizes[k]
        assert sum(t.num_rows for t in sorted_tb.iter_pieces(k)) == sizes[k]
    sorted_tb.delete(0)
    assert len(sorted_tb.get(0)) == 0 and [len(f) for f in sorted_tb.get(everything)][1:] == sizes[1:].tolist()
    sorted_tb.flush()  # spilled blocks become records per key
    for k in everything[1:]:
        _equal(ArrowIPC(sorted_tb.store).get(k), pieces_tb.get(k))


def test_append_sorted_checks_the_counts():
    with pytest.raises(ValueError, match="add up"):
        TableBuffer(Dict()).append_sorted(pa.table({"a": [1, 2]}), np.array([1, 0, 0]))


def test_spilled_sorted_appends_read_back_from_the_store(tmp_path):
    tb = TableBuffer(File(tmp_path / "s"), memory_limit=1, empty=True)
    tb.append_sorted(pa.table({"a": [1, 2, 3]}), np.array([2, 1]))
    tb.append_sorted(pa.table({"a": [4]}), np.array([0, 1]))
    assert tb.memory_usage == 0  # both spilled
    assert [f["a"].tolist() for f in tb.get([0, 1])] == [[1, 2], [3, 4]]
    tb.append({1: pa.table({"a": [5]})})  # a record per key: the blocks before it become such records
    assert [f["a"].tolist() for f in tb.get([0, 1])] == [[1, 2], [3, 4, 5]]
    assert [t.num_rows for t in tb.iter_pieces(1)] == [1, 1, 1]
    tb.drop()
    tb.store.close()


def test_table_to_frames_refuses_what_depends_on_a_runs_values():
    with_nulls = pa.table({"a": pa.array([1, None, 3])})  # int64 alone, float64 with the null
    assert table_to_frames(with_nulls, [1, 2]) is None
    plain = pa.table({"a": [1, 2, 3], "b": ["x", "y", None]})
    for got, (a, b) in zip(table_to_frames(plain, [2, 0, 1]), [(0, 2), (2, 2), (2, 3)]):
        _equal(got, tables_to_frame([plain.slice(a, b - a)]))
    dropped = frame_to_table(pd.DataFrame({"a": [1, 2]}))
    assert table_to_frames(dropped, [1, 1]) is None  # a dropped index needs its starts
    freq = frame_to_table(pd.DataFrame({"a": [1, 2]}, index=pd.date_range("2020", periods=2)))
    assert table_to_frames(freq, [1, 1]) is None
