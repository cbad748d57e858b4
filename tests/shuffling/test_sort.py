"""``shuffle(partitioner="range")`` and ``sort_values`` against pandas' ``sort_values``: every
key dtype with an order, nulls, NaN and -0.0, ties, several columns, either direction, NAs
first or last, every input kind (one frame, chunks of a stream, Arrow, Parquet), any
chunking, thread count and memory limit, and skew."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import shuffle_kit as sk
from shuffle_kit.errors import JobError, UnorderableKeyError
from shuffle_kit.frames import tables_to_frame
from shuffle_kit.shuffling.sorted_frame import SortedFrame
from tests.helpers.memory import WATCH_PEAK_RSS, assert_frame_held_within
from tests.helpers.models import ordered_column

KINDS = ["int", "Int64", "float", "str", "datetime_tz", "bool", "ordered", "unordered"]  # of ORDERED_KINDS


@st.composite
def cases(draw, max_rows: int = 80):
    n = draw(st.integers(0, max_rows))
    ncols = draw(st.integers(1, 2))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=ncols, max_size=ncols))
    codes = st.one_of(st.none(), st.integers(0, draw(st.sampled_from([1, 3, 10, 60]))))
    df = pd.DataFrame({f"k{i}": ordered_column(kind, draw(st.lists(codes, min_size=n, max_size=n)))
                       for i, kind in enumerate(kinds)})
    df["row"] = np.arange(n)
    df["s"] = [f"v{i}" for i in range(n)]
    by = [f"k{i}" for i in range(ncols)]
    ascending = draw(st.one_of(st.booleans(), st.lists(st.booleans(), min_size=ncols, max_size=ncols)))
    na_position = draw(st.sampled_from(["last", "first"]))
    return df, by, ascending, na_position


def expected(df: pd.DataFrame, by: list, ascending, na_position: str) -> pd.DataFrame:
    """pandas' stable sort, the index dropped as shuffle() drops an unnamed RangeIndex."""
    out = df.sort_values(by, ascending=ascending, na_position=na_position, kind="stable")
    if type(df.index) is pd.RangeIndex and df.index.name is None:
        out = out.reset_index(drop=True)
    return out


def chunks_of(df: pd.DataFrame, cuts: list[int]) -> list[pd.DataFrame]:
    bounds = [0, *sorted(c % (len(df) + 1) for c in cuts), len(df)]
    return [df.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@given(cases(), st.integers(1, 9), st.sampled_from([1, 2, 5]), st.sampled_from(["frame", "chunks"]),
       st.lists(st.integers(0, 10**6), max_size=4))
def test_sort_values_equals_pandas(case, npartitions, threads, kind, cuts):
    df, by, ascending, na_position = case
    data = df if kind == "frame" else iter(chunks_of(df, cuts))
    with sk.sort_values(data, by, ascending, na_position, npartitions=npartitions, threads=threads,
                        progress=False) as rows:
        got = rows.to_pandas()
        parts = list(rows)
        assert len(parts) == npartitions
    want = expected(df, by, ascending, na_position)
    pd.testing.assert_frame_equal(got, want)
    # iterating gives the same rows, partition after partition
    assert pd.concat(parts)["row"].tolist() == want["row"].tolist()


@given(cases(max_rows=40), st.integers(1, 6), st.booleans())
def test_sort_values_of_arrow_and_parquet_equals_pandas(tmp_path_factory, case, npartitions, parquet):
    df, by, ascending, na_position = case
    table = pa.Table.from_pandas(df, preserve_index=False)
    if parquet:
        path = str(tmp_path_factory.mktemp("sort") / "in.parquet")
        pq.write_table(table, path, row_group_size=7)  # several batches
        data, model = path, pq.read_table(path).to_pandas()
    else:
        data, model = table, table.to_pandas()
    with sk.sort_values(data, by, ascending, na_position, npartitions=npartitions, progress=False) as rows:
        got = rows.to_pandas()
        arrow = rows.to_arrow()
    want = expected(model, by, ascending, na_position)
    pd.testing.assert_frame_equal(got, want)  # as the same conversion of the whole input gives it
    assert arrow.column("row").to_pylist() == want["row"].tolist()


def _same(a: tuple, b: tuple) -> bool:
    return all((pd.isna(x) and pd.isna(y)) or (not pd.isna(x) and not pd.isna(y) and x == y) for x, y in zip(a, b))


@given(cases(), st.integers(1, 9), st.sampled_from(["frame", "chunks"]), st.lists(st.integers(0, 10**6), max_size=3))
def test_range_partitions_follow_the_order_and_tell_their_boundaries(case, npartitions, kind, cuts):
    df, by, ascending, na_position = case
    data = df if kind == "frame" else iter(chunks_of(df, cuts))
    with sk.shuffle(data, by, npartitions, partitioner="range", ascending=ascending, na_position=na_position,
                    progress=False) as parts:
        frames = list(parts)
        bounds = parts.boundaries
    pid = np.empty(len(df), dtype=np.int64)
    for i, part in enumerate(frames):
        assert part["row"].is_monotonic_increasing  # input order kept within a partition
        pid[part["row"].to_numpy()] = i
    order = expected(df, by, ascending, na_position)["row"].to_numpy()
    # partition i's keys sort no later than partition i + 1's
    assert (np.diff(pid[order]) >= 0).all()
    keys = [tuple(r) for r in df[by].itertuples(index=False)]
    for a, b in zip(order[:-1], order[1:]):  # equal keys never split
        if _same(keys[a], keys[b]):
            assert pid[a] == pid[b]
    # the boundaries: the last key of each partition but the last, with the keys' dtypes
    assert list(bounds.columns) == by
    if len(df):
        assert len(bounds) == npartitions - 1
        assert list(bounds.dtypes) == list(df[by].dtypes)
        rank = {row: r for r, row in enumerate(order)}
        for i in range(npartitions - 1):
            b = tuple(bounds.iloc[i])
            if len(frames[i]):
                last = max(frames[i]["row"], key=rank.__getitem__)
                assert _same(b, keys[last]), (i, b, keys[last])
            else:  # an empty partition: no key between its neighbours' boundaries
                assert i > 0 and _same(b, tuple(bounds.iloc[i - 1]))
    else:
        assert len(bounds) == 0


def test_a_stream_larger_than_the_memory_limit_spills_and_stays_in_order():
    rng = np.random.default_rng(1)
    n = 150_000
    df = pd.DataFrame({"k": rng.integers(0, 5000, n), "f": rng.random(n), "s": rng.choice(["ab", "xyz", "q"], n)})
    df.loc[rng.random(n) < 0.05, "f"] = np.nan
    want = df.sort_values(["k", "f"], ascending=[False, True], kind="stable").reset_index(drop=True)
    frames = (df.iloc[i:i + 10_000] for i in range(0, n, 10_000))  # one-shot: read once
    with sk.sort_values(frames, ["k", "f"], [False, True], memory_limit="1MiB", npartitions=7, threads=2,
                        progress=False) as rows:
        store = rows.codec.store.path
        spilled = sum(os.path.getsize(os.path.join(store, f)) for f in os.listdir(store))
        got = rows.to_pandas()
        # a partition's pieces are the partition, sorted (one piece: it is sorted whole)
        pieces = [p for i in range(7) for p in rows.pieces(i)]
    assert spilled > 1 << 20  # the partitions went to disk, beyond the limit
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), want)


def test_a_heavy_key_fills_a_partition_of_its_own_and_is_named_as_skew():
    rng = np.random.default_rng(2)
    keys = np.where(rng.random(20_000) < 0.8, 500, rng.integers(0, 1000, 20_000))
    df = pd.DataFrame({"k": keys, "x": np.arange(20_000)}, index=pd.Index(np.arange(20_000) * 3, name="i"))
    with sk.sort_values(iter([df.iloc[:7000], df.iloc[7000:]]), "k", npartitions=8, progress=False) as rows:
        got = rows.to_pandas()
        big = [i for i, part in enumerate(rows) if (part["k"] == 500).any()]
        sizes = rows.partition_sizes
        heavy = rows.partition(big[0])
    pd.testing.assert_frame_equal(got, df.sort_values("k", kind="stable"))  # a named index is kept
    assert len(big) == 1  # every row of the heavy key in one partition
    assert (heavy["k"] == 500).all()  # and nothing else: the other keys spread over the rest
    assert sizes.skewed()[0].key == big[0]


def test_keep_index_and_index_levels_as_keys():
    df = pd.DataFrame({"x": [3, 1, 2, 1]}, index=pd.Index(["d", "a", "c", "b"], name="name"))
    with sk.sort_values(df, "name", npartitions=2, progress=False) as rows:
        pd.testing.assert_frame_equal(rows.to_pandas(), df.sort_values("name", kind="stable"))
    plain = df.reset_index(drop=True)
    with sk.sort_values(plain, "x", keep_index=True, npartitions=3, progress=False) as rows:
        got = rows.to_pandas()
    want = plain.sort_values("x", kind="stable")
    assert got.index.tolist() == want.index.tolist() and got["x"].tolist() == want["x"].tolist()


def test_write_parquet_writes_the_partitions_in_order(tmp_path):
    df = pd.DataFrame({"k": [5, 1, 4, 2, 3, 1, None], "x": range(7)})
    with sk.sort_values(df, "k", ascending=False, npartitions=3, progress=False) as rows:
        paths = rows.write_parquet(tmp_path)
        one = rows.partition(0, as_arrow=True)
    back = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    assert back["x"].tolist() == df.sort_values("k", ascending=False, kind="stable")["x"].tolist()
    assert one.column("k").to_pylist() == sorted(one.column("k").to_pylist(), reverse=True)


def test_range_arguments_are_checked_in_one_line():
    df = pd.DataFrame({"k": [1, 2], "o": [[1], [2]]})
    with pytest.raises(JobError, match="partitioner='range' only"):
        sk.shuffle(df, "k", 2, ascending=False)
    with pytest.raises(JobError, match="na_position must be"):
        sk.sort_values(df, "k", na_position="middle")
    with pytest.raises(sk.ArgumentTypeError, match="one bool per key column"):
        sk.sort_values(df, "k", ascending=[True, False])
    with pytest.raises(UnorderableKeyError, match="'o'"):
        sk.sort_values(df, "o")
    with pytest.raises(ValueError, match="partitioner='range'"):
        sk.shuffle(df, "k", 2, progress=False).sort_within_partitions()
    dask_graph = pytest.importorskip("shuffle_kit.dask._graph")
    dd = pytest.importorskip("dask.dataframe")
    dask = pytest.importorskip("dask")
    with dask.config.set({"dataframe.convert-string": False}):  # (else dask makes the lists strings)
        ddf = dd.from_pandas(df, npartitions=1)
    # the dask range shuffle: from its sample, taken in its own graph when it is computed
    with pytest.raises(UnorderableKeyError, match="'o'"):
        dask_graph.shuffle(ddf, "o", partitioner="range").compute(scheduler="sync")


def test_a_sample_holds_every_row_of_a_small_input_so_partitions_balance():
    df = pd.DataFrame({"k": np.random.default_rng(3).permutation(900)})
    with sk.shuffle(iter([df.iloc[:300], df.iloc[300:]]), "k", 9, partitioner="range", progress=False) as parts:
        assert parts.sizes == [100] * 9
        assert parts.boundaries["k"].tolist() == [99, 199, 299, 399, 499, 599, 699, 799]


def test_a_later_chunk_whose_keys_have_no_order_is_refused():
    # a slice holding only None is Arrow's null type (orderable); a later one mixing None
    # with NaN is pickled, and would be sorted by its pickles' bytes
    first = pd.DataFrame({"s": [None, None], "x": [0, 1]})
    later = pd.DataFrame({"s": pd.Series(["b", np.nan, None], dtype=object), "x": [2, 3, 4]})
    with pytest.raises(UnorderableKeyError, match="chunk .* key column 's' holds Python objects"):
        sk.sort_values(iter([first, later]), "s", npartitions=2, chunk_bytes=10, progress=False)
    # a frame that fits the memory limit is sorted whole, not in chunks: its column is refused
    with pytest.raises(UnorderableKeyError, match="key column 's' holds Python objects"):
        sk.sort_values(pd.concat([first, later], ignore_index=True), "s", npartitions=2, chunk_bytes=10,
                       progress=False)


RSS_SCRIPT = """
import json, sys
import shuffle_kit
""" + WATCH_PEAK_RSS + """
rows = shuffle_kit.sort_values(sys.argv[1], "key", memory_limit=int(sys.argv[2]), chunk_bytes=int(sys.argv[3]),
                               npartitions=64, progress=False)
n, last, ordered = 0, -1, True
for part in rows:  # one partition at a time, sorted when read
    n += len(part)
    if len(part):
        ordered = ordered and part["key"].is_monotonic_increasing and part["key"].iloc[0] >= last
        last = part["key"].iloc[-1]
stop_watching()
rows.close()
print(json.dumps({"base": base, "peak": peak[0], "rows": n, "ordered": bool(ordered)}))
"""


@pytest.mark.slow
def test_sorting_parquet_larger_than_the_memory_limit_keeps_peak_rss_bounded(tmp_path):
    # the Parquet input is read once: its chunks are held between the passes within the
    # limit, the rest on disk, so peak memory does not grow with the input
    import json
    import subprocess
    import sys

    mb = 2**20
    limit, chunk = 24 * mb, 8 * mb
    rng = np.random.default_rng(0)
    n = 6_000_000
    table = pa.table({"key": rng.integers(0, 10**9, n), "x": rng.random(n), "y": rng.integers(0, 10**9, n)})
    assert table.nbytes > 5 * limit
    big, small = tmp_path / "big.parquet", tmp_path / "small.parquet"
    pq.write_table(table, big, row_group_size=100_000)
    pq.write_table(table.slice(0, n // 4), small, row_group_size=100_000)

    def run(path):
        out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(path), str(limit), str(chunk)],
                             capture_output=True, text=True, check=True, timeout=600).stdout
        return json.loads(out)

    r, r_small = run(big), run(small)
    assert r["rows"] == n and r["ordered"] and r_small["rows"] == n // 4
    extra = r["peak"] - r["base"]
    growth = extra - (r_small["peak"] - r_small["base"])
    print(f"input {table.nbytes / mb:.0f} MB: peak RSS above baseline {extra / mb:.0f} MB; "
          f"{growth / mb:.0f} MB more than for a quarter of the input")
    # the promise the README makes for out-of-core work: the limit plus ~300 MB for the
    # interpreter, the libraries (pandas and pyarrow load after the baseline) and the
    # chunks in flight; the growth bound below is the one that shows the input is never held
    assert extra < limit + 300 * mb, extra / mb
    assert growth < 5 * chunk, growth / mb  # 3/4 of the input is 103 MB


@given(cases(), st.integers(1, 9), st.sampled_from([1, 2, 5]))
def test_a_frame_sorted_whole_has_the_partitions_and_boundaries_of_its_range_shuffle(case, npartitions, threads):
    # an input no larger than the sample is sampled whole, so the shuffle's boundaries are
    # exact, as those of a frame sorted whole in memory are
    df, by, ascending, na_position = case
    with sk.sort_values(df, by, ascending, na_position, npartitions=npartitions, threads=threads,
                        progress=False) as whole:
        assert isinstance(whole, SortedFrame)
        with sk.sort_values(iter([df]), by, ascending, na_position, npartitions=npartitions,
                            progress=False) as shuffled:
            assert not isinstance(shuffled, SortedFrame)
            assert whole.sizes == shuffled.sizes
            # the same keys and dtypes (an object column's None stays None here; it is NaN there)
            assert list(whole.boundaries.dtypes) == list(shuffled.boundaries.dtypes)
            assert len(whole.boundaries) == len(shuffled.boundaries)
            for mine, theirs in zip(*(b.boundaries.itertuples(index=False) for b in (whole, shuffled))):
                assert _same(tuple(mine), tuple(theirs))
            for mine, theirs in zip(whole, shuffled):
                pd.testing.assert_frame_equal(mine, theirs)
            for mine, theirs in zip(whole.iter_arrow(), shuffled.iter_arrow()):
                assert mine.num_rows == theirs.num_rows
                if mine.num_rows:  # (an empty one keeps a categorical's categories here, not there)
                    # read back as the same frames (an object column of None only may be
                    # Arrow's null type in one and strings in the other)
                    pd.testing.assert_frame_equal(tables_to_frame([mine]), tables_to_frame([theirs]))


def test_a_frame_larger_than_the_memory_limit_goes_through_the_store():
    rng = np.random.default_rng(4)
    n = 200_000
    df = pd.DataFrame({"k": rng.integers(0, 1000, n), "s": rng.choice(["a", "bb", "ccc"], n), "x": rng.random(n)})
    want = df.sort_values(["s", "k"], ascending=[False, True], kind="stable").reset_index(drop=True)
    with sk.sort_values(df, ["s", "k"], [False, True], memory_limit="1MiB", npartitions=5, threads=2,
                        progress=False) as rows:
        assert not isinstance(rows, SortedFrame)
        assert os.listdir(rows.codec.store.path)  # spilled beyond the limit
        pd.testing.assert_frame_equal(rows.to_pandas(), want)
    with sk.sort_values(df, ["s", "k"], [False, True], npartitions=5, progress=False) as rows:
        assert isinstance(rows, SortedFrame)
        pd.testing.assert_frame_equal(rows.to_pandas(), want)
        assert sum(rows.sizes) == n and "memory" in repr(rows)
    with pytest.raises(JobError, match="closed"):
        rows.partition(0)


def test_a_frame_sorted_whole_reads_as_arrow_polars_and_parquet(tmp_path):
    pl = pytest.importorskip("polars")
    df = pd.DataFrame({"k": [3, 1, 2, 1, None], "s": list("abcde")}, index=pd.Index([9, 8, 7, 6, 5], name="i"))
    with sk.sort_values(df, "k", npartitions=3, progress=False) as rows:
        assert isinstance(rows, SortedFrame)
        want = df.sort_values("k", kind="stable")
        pd.testing.assert_frame_equal(rows.to_pandas(), want)  # a named index is kept
        assert rows.to_arrow().column("s").to_pylist() == want["s"].tolist()
        assert pl.concat(list(rows.iter_polars()))["s"].to_list() == want["s"].tolist()
        paths = rows.write_parquet(tmp_path / "whole")
        got = rows.to_pandas()
        got.loc[8, "s"] = "changed"  # a copy: the result is not changed
        assert rows.to_pandas()["s"].tolist() == want["s"].tolist()
    with sk.sort_values(iter([df]), "k", npartitions=3, progress=False) as shuffled:
        their_paths = shuffled.write_parquet(tmp_path / "shuffled")
    for mine, theirs in zip(paths, their_paths, strict=True):  # the same files as a range shuffle writes
        pd.testing.assert_frame_equal(pd.read_parquet(mine), pd.read_parquet(theirs))


FRAME_RSS_SCRIPT = """
import json, sys
import numpy as np, pandas as pd
import shuffle_kit
n = int(sys.argv[1])
rng = np.random.default_rng(0)
df = pd.DataFrame({"key": rng.integers(0, 10**5, n), "x": rng.random(n),
                   "s": pd.Series(np.array([f"w{i:08d}" for i in range(1000)])[rng.integers(0, 1000, n)], dtype="str")})
nbytes = int(df.memory_usage(deep=True).sum())
""" + WATCH_PEAK_RSS + """
with shuffle_kit.sort_values(df, sys.argv[2], memory_limit=sys.argv[3], progress=False) as rows:
    whole = type(rows).__name__ == "SortedFrame"
    out = rows.to_pandas()
stop_watching()
print(json.dumps({"base": base, "peak": peak[0], "nbytes": nbytes, "whole": whole, "rows": len(out)}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("key", ["key", "s"])
def test_a_frame_sorted_whole_holds_its_sorted_copy_keys_and_order_within_the_limit(key):
    # the sort of a frame in memory holds what fits() counts: the sorted copy, a copy of
    # the keys and 32 bytes per row
    assert_frame_held_within(FRAME_RSS_SCRIPT, key, 32, "sorted by")


def test_a_frame_sorted_whole_reads_partitions_and_pieces_as_a_shuffle_result_does():
    df = pd.DataFrame({"k": [4, 1, 3, 1, 2, 9], "x": range(6)})
    with sk.sort_values(df, "k", npartitions=4, progress=False) as rows:
        assert isinstance(rows, SortedFrame)
        parts = list(rows)
        for got, want in zip(rows.read(range(4)), parts, strict=True):
            pd.testing.assert_frame_equal(got, want)
        for i, part in enumerate(parts):
            pieces = list(rows.pieces(i))
            assert len(pieces) == (1 if len(part) else 0)
            if pieces:
                pd.testing.assert_frame_equal(pieces[0], part)
        pd.testing.assert_frame_equal(rows.empty(), df.iloc[:0])


@given(cases(max_rows=40), st.integers(1, 6), st.sampled_from(["table", "batch", "indexed"]))
def test_an_arrow_table_that_fits_is_sorted_whole_into_the_stores_partitions(case, npartitions, kind):
    df, by, ascending, na_position = case
    if kind == "indexed":  # an index in pandas' metadata comes back as the index
        df = df.set_index(pd.Index(np.arange(len(df))[::-1], name="i"))
    table = pa.Table.from_pandas(df, preserve_index=kind == "indexed")
    data = table.to_batches()[0] if kind == "batch" and table.num_rows else table
    with sk.sort_values(data, by, ascending, na_position, npartitions=npartitions, progress=False) as whole:
        assert isinstance(whole, SortedFrame)
        with sk.sort_values(iter([table]), by, ascending, na_position, npartitions=npartitions,
                            progress=False) as shuffled:
            assert not isinstance(shuffled, SortedFrame)
            pd.testing.assert_frame_equal(whole.to_pandas(), shuffled.to_pandas())
