"""shuffle() and groupby_shuffle(): properties over random frames, inputs, results, errors."""

import glob
import os
import statistics

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shuffle_kit import Dict, File, groupby_shuffle, shuffle
from shuffle_kit.codecs import ArrowIPC, TableBuffer
from shuffle_kit.defaults import STREAM_NPARTITIONS
from shuffle_kit.kernels.hashing import UnhashableKeyError
from tests.helpers.models import frames, norm, pandas_groups

# -- random frames ------------------------------------------------------------------------------


def _key_set(df, on):
    return {tuple(norm(v) for v in row) for row in df[on].itertuples(index=False)}


@given(frames(), st.integers(1, 9), st.booleans())
def test_shuffle_properties(case, npartitions, single):
    df, on, chunks = case
    res = shuffle(chunks, on[0] if single else on, npartitions, progress=False)
    with res:
        parts = list(res)
        assert len(parts) == npartitions == len(res)
        assert [len(p) for p in parts] == res.sizes
        # within a partition, input order
        for p in parts:
            assert p["rid"].is_monotonic_increasing
        keys = on[:1] if single else on
        seen = set()
        for p in parts:
            ks = _key_set(p, keys)
            assert not (ks & seen)  # no key value in two partitions
            seen |= ks
        # the union is the input, as a multiset of rows (rid is unique)
        back = pd.concat(parts).sort_values("rid").reset_index(drop=True)
        pd.testing.assert_frame_equal(back, df, check_exact=True, check_categorical=True)


@given(frames(), st.integers(1, 5), st.booleans())
def test_groupby_shuffle_equals_pandas(case, npartitions, single):
    df, on, chunks = case
    by = on[0] if single else on
    src = df if single else chunks
    with groupby_shuffle(src, on=by, npartitions=npartitions, progress=False) as g:
        got = {}
        for k, grp in g:
            k = norm(k) if not isinstance(k, tuple) else tuple(map(norm, k))
            assert k not in got
            got[k] = grp
    want = pandas_groups(df, by)
    assert got.keys() == want.keys()
    for k in want:
        pd.testing.assert_frame_equal(got[k], want[k], check_exact=True, check_index_type=False)


@given(frames(), st.integers(1, 5), st.booleans())
def test_groupby_shuffle_sorted_equals_pandas_in_order(case, npartitions, single):
    df, on, chunks = case
    by = on[0] if single else on
    with groupby_shuffle(df if single else chunks, on=by, sort=True, npartitions=npartitions, progress=False) as g:
        got = list(g)
    want = list(df.groupby(by, dropna=False, sort=True, observed=True))
    nested = lambda k: tuple(map(nested, k)) if isinstance(k, tuple) else norm(k)  # noqa: E731
    assert [nested(k) for k, _ in got] == [nested(k) for k, _ in want]
    for (_, a), (_, b) in zip(got, want):
        pd.testing.assert_frame_equal(a, b, check_exact=True, check_index_type=False)


def test_dropna():
    df = pd.DataFrame({"k": [1.0, None, 1.0, np.nan, 2.0], "v": range(5)})
    g = dict(iter(groupby_shuffle(df, on="k", dropna=True, npartitions=3, progress=False)))
    assert sorted(g) == [1.0, 2.0]
    assert g[1.0]["v"].tolist() == [0, 2]
    res = shuffle(df, "k", 3, progress=False)
    assert sum(res.sizes) == 5
    assert sum(shuffle(df, "k", 3, dropna=True, progress=False).sizes) == 3


def test_groupby_apply_and_multi_keys():
    df = pd.DataFrame({"a": [1, 1, 2, 2, 1], "b": ["x", "y", "x", "x", "x"], "v": [1.0, 2.0, 3.0, 4.0, 5.0]})
    g = groupby_shuffle(df, on=["a", "b"], npartitions=4, progress=False)
    sums = g.apply(lambda d: d["v"].sum())
    pd.testing.assert_series_equal(sums.sort_index(), df.groupby(["a", "b"])["v"].sum(), check_names=False)
    assert all(isinstance(k, tuple) for k, _ in g)
    frames_ = g.apply(lambda d: d.head(1))
    assert len(frames_) == 3


# -- inputs ------------------------------------------------------------------------------------
def _frame(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "k": rng.integers(0, 50, n), "s": pd.Series([f"v{i % 37}" for i in range(n)], dtype="str"),
        "x": rng.random(n),
    })


def _contents(res):
    # partition -> sorted rows, comparable across input kinds
    return [sorted(map(tuple, p[["k", "s", "x"]].itertuples(index=False))) for p in res]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    df = _frame()
    parts = [df.iloc[:1000], df.iloc[1000:2200], df.iloc[2200:]]
    for i, p in enumerate(parts):
        t = pa.Table.from_pandas(p, preserve_index=False)
        pq.write_table(t, d / f"part{i}.parquet", row_group_size=300)
        p.to_csv(d / f"part{i}.csv", index=False)
        with pa.OSFile(str(d / f"part{i}.arrow"), "wb") as f, pa.ipc.new_file(f, t.schema) as w:
            w.write_table(t, max_chunksize=250)
    return d, df


def test_every_input_kind_gives_the_same_partitions(files):
    import pyarrow.dataset as ds

    d, df = files
    want = _contents(shuffle(df, "k", 7, progress=False))
    table = pa.Table.from_pandas(df, preserve_index=False)
    inputs = {
        "chunks": [df.iloc[:500], df.iloc[500:]],
        "generator": (df.iloc[i : i + 700] for i in range(0, len(df), 700)),
        "table": table,
        "reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=100)),
        "tables": [table.slice(0, 10), table.slice(10)],
        "dataset": ds.dataset(sorted(glob.glob(str(d / "*.parquet"))), format="parquet"),
        "glob": str(d / "*.parquet"),
        "paths": sorted(glob.glob(str(d / "*.parquet"))),
        "directory_of_arrow": sorted(glob.glob(str(d / "*.arrow"))),
        "csv": str(d / "part*.csv"),
    }
    for name, data in inputs.items():
        res = shuffle(data, "k", 7, progress=False, chunk_bytes=20_000)
        assert _contents(res) == want, name
        res.close()


def test_small_chunks_and_spilling_store(tmp_path):
    df = _frame(80_000)
    want = _contents(shuffle(df, "k", 16, progress=False))
    res = shuffle(df, "k", 16, memory_limit="1MiB", chunk_bytes=30_000, progress=False)  # the least it takes
    assert isinstance(res.codec, TableBuffer) and res.codec.store.nbytes() > 2**20 // 2  # spilled
    assert _contents(res) == want
    path = res.codec.store.path
    res.close()
    assert not os.path.exists(path)  # the temporary store is gone
    with pytest.raises(ValueError, match="closed"):
        res[0]


def test_user_stores(tmp_path):
    df = _frame()
    want = _contents(shuffle(df, "k", 5, progress=False))
    for store in [str(tmp_path / "a"), File(tmp_path / "b"), ArrowIPC(Dict()), Dict()]:
        res = shuffle(df, "k", 5, store=store, progress=False)
        assert _contents(res) == want
        res.close()  # a user's store stays
        assert _contents(res) == want
    # partition i lives under key i
    assert ArrowIPC(File(tmp_path / "a")).get(2)["k"].tolist() == shuffle(df, "k", 5, progress=False)[2]["k"].tolist()


def test_index_kept_and_index_level_keys():
    df = _frame(500).set_index("s")
    res = shuffle(df, "s", 4, progress=False)
    back = res.to_pandas().sort_values("x")
    pd.testing.assert_frame_equal(back, df.sort_values("x"))
    # the default RangeIndex is dropped: each partition gets a fresh one
    res2 = shuffle(_frame(500), "k", 4, progress=False)
    assert all(p.index.equals(pd.RangeIndex(len(p))) for p in res2)
    mi = _frame(300).set_index(["k", "s"])
    g = dict(iter(groupby_shuffle(mi, on="k", npartitions=3, progress=False)))
    for k, grp in mi.groupby("k"):
        pd.testing.assert_frame_equal(g[k], grp)


def test_result_object(tmp_path):
    df = _frame()
    # an iterator of frames goes through the default store (a frame that fits does not)
    with shuffle(iter([df]), ["k", "s"], 6, progress=False) as res:
        assert len(res) == 6 and sum(res.sizes) == len(df) and sum(res.nbytes) > 0
        assert res[-1].equals(res[5])
        assert [len(p) for p in res[1:3]] == res.sizes[1:3]
        with pytest.raises(IndexError):
            res[6]
        assert isinstance(res.partition(0, as_arrow=True), pa.Table)
        assert res.to_arrow().num_rows == len(df) == len(res.to_pandas())
        paths = res.write_parquet(tmp_path / "out")
        assert len(paths) == 6 and pq.read_table(paths[3]).num_rows == res.sizes[3]
        html = res._repr_html_()
        assert "Partitions" in html and f"{len(df):,}" in html and "TableBuffer(File(" in html
        assert "6 partitions" in repr(res)
    # an empty partition has the input's columns and dtypes
    one = shuffle(df.iloc[:1], "k", 3, progress=False)
    empty = [p for p in one if len(p) == 0][0]
    assert list(empty.dtypes) == list(df.dtypes)


def test_progress_bar(capsys):
    shuffle(_frame(), "k", 3, progress=True)
    assert "shuffle" in capsys.readouterr().err
    shuffle(_frame(), "k", 3, progress=False)
    assert capsys.readouterr().err == ""


# -- dask -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("on", ["k", "s", ["k", "s"]])
def test_dask_partitioner_matches_dask(on):
    import dask
    import dask.dataframe as dd

    df = _frame(2000)
    df["f"] = df["k"].astype("float64")
    n = 5
    with dask.config.set(scheduler="sync"):
        ddf = dd.from_pandas(df, npartitions=3).shuffle(on, npartitions=n, shuffle_method="tasks")
        want = [sorted(map(tuple, p.itertuples(index=False))) for p in ddf.partitions]
        want = [sorted(map(tuple, p.compute().itertuples(index=False))) for p in ddf.partitions]
    res = shuffle(df, on, n, partitioner="dask", progress=False)
    got = [sorted(map(tuple, p.itertuples(index=False))) for p in res]
    assert got == want


# -- errors ----------------------------------------------------------------------------------------
def test_errors_before_any_work(tmp_path):
    df = _frame(100)
    store = Dict()
    with pytest.raises(KeyError, match="'nope'"):
        shuffle(df, ["k", "nope"], 3, store=store)
    with pytest.raises(ValueError, match="at least 1"):
        shuffle(df, "k", 0, store=store)
    with pytest.raises(TypeError, match="int"):
        shuffle(df, "k", 2.5, store=store)
    with pytest.raises(TypeError, match="cannot shuffle a Series"):
        shuffle(df["k"], "k", store=store)
    with pytest.raises(TypeError, match="cannot shuffle a int"):
        shuffle(42, "k", store=store)
    lists = pd.DataFrame({"L": pd.Series([[1], [2]], dtype=pd.ArrowDtype(pa.list_(pa.int64())))})
    with pytest.raises(UnhashableKeyError, match="'L'"):
        shuffle(lists, "L", 2, store=store)
    with pytest.raises(ValueError, match="partitioner"):
        shuffle(df, "k", 2, partitioner="random", store=store)
    with pytest.raises(FileNotFoundError, match="missing"):
        shuffle(str(tmp_path / "missing*.parquet"), "k", store=store)
    with pytest.raises(ValueError, match="format"):
        (tmp_path / "x.txt").write_text("a")
        shuffle(str(tmp_path / "x.txt"), "k", store=store)
    pq.write_table(pa.table({"k": [1, 2]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"k": ["x", "y"]}), tmp_path / "b.parquet")
    with pytest.raises(ValueError, match="b.parquet' does not fit the others: its column 'k' is string"):
        shuffle(str(tmp_path / "*.parquet"), "k", store=store)
    with pytest.raises(TypeError, match="store"):
        shuffle(df, "k", 2, store=42)
    assert store._data == {}  # nothing was written
    # a stream whose later chunk does not fit fails with a clear message
    with pytest.raises(ValueError, match="chunk 1"):
        shuffle([pd.DataFrame({"k": [1]}), pd.DataFrame({"k": ["x"]})], "k", 2, progress=False)


def test_default_npartitions():
    res = shuffle(_frame(100), "k", progress=False)
    assert len(res) == 1
    assert len(shuffle(iter([_frame(10)]), "k", progress=False)) == STREAM_NPARTITIONS


def test_a_server_is_not_taken_for_a_store():
    import pandas as pd

    import shuffle_kit as sk

    with sk.Server(sk.Dict()) as server:
        with pytest.raises(TypeError, match="store must be"):
            sk.shuffle(pd.DataFrame({"k": [1, 2]}), "k", 2, store=server)


def test_write_parquet_writes_the_users_schema_only(tmp_path):
    import pandas as pd
    import pyarrow.parquet as pq

    import shuffle_kit as sk

    df = pd.DataFrame({"k": [1, 2, 3, 1], "x": [1.0, 2.0, 3.0, 4.0]})
    with sk.shuffle(df, "k", 2, progress=False) as result:
        paths = result.write_parquet(tmp_path)
    for path in paths:
        meta = pq.read_schema(path).metadata or {}
        assert not [k for k in meta if k.startswith(b"shuffle_kit")]
    back = pd.concat([pd.read_parquet(p) for p in paths]).sort_values("x").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, df.sort_values("x").reset_index(drop=True))


@given(st.lists(st.integers(-5, 40), max_size=200), st.sampled_from([0, 3, 1500]), st.integers(1, 12))
def test_html_repr_shows_the_partition_sizes_of_the_actual_partitions(keys, heavy, npartitions):
    df = pd.DataFrame({"k": keys + [3] * heavy, "v": np.arange(len(keys) + heavy)})
    with shuffle(df, "k", npartitions, progress=False) as res:
        model = [len(p) for p in res]  # the partitions as read back
        page = res._repr_html_()
        stats = res.partition_sizes
    assert sum(model) == len(df)
    lo, mid, hi = min(model), statistics.median(model), max(model)
    mid_text = f"{int(mid):,}" if float(mid).is_integer() else f"{mid:,.1f}"
    assert f"min {lo:,}, median {mid_text}, max {hi:,}" in page
    biggest = model.index(hi)  # ties: the first
    assert f"Largest</th><td style='text-align:left'>partition {biggest} ({hi:,})" in page
    assert ("skew: partition" in page) == (hi > 10 * max(mid, 1)) == bool(stats.skewed())
    assert page.count("<svg") == 1


def test_the_store_is_a_keyword_in_both_siblings():
    # groupby_shuffle(df, "k", 8) once took 8 as its store; shuffle's third is npartitions
    df = _frame(20)
    with pytest.raises(TypeError):
        groupby_shuffle(df, "k", 8)
    assert sum(len(g) for _, g in groupby_shuffle(df, "k", store=Dict(), progress=False)) == 20


def test_the_default_store_spills_under_tmp(tmp_path, monkeypatch):
    import tempfile

    # a system temporary directory that is a file: anything written there fails
    (tmp_path / "not-a-directory").write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "not-a-directory"))
    mine = tmp_path / "mine"
    mine.mkdir()
    df = pd.DataFrame({"k": np.arange(200_000) % 97, "x": np.arange(200_000)})
    chunks = (df.iloc[i:i + 20_000] for i in range(0, len(df), 20_000))
    with shuffle(chunks, "k", 4, memory_limit="1MiB", progress=False, tmp=str(mine)) as parts:
        assert os.listdir(mine) != []
        assert sorted(pd.concat(list(parts))["x"].tolist()) == list(range(200_000))
    assert os.listdir(mine) == []
