"""polars and the Arrow C stream interface in and out: properties against a pandas model."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.io.plugins import register_io_source
from polars.testing import assert_frame_equal as assert_polars_equal

import shuffle_kit as sk
from shuffle_kit.io.polars_frames import collected_whole
from shuffle_kit.io.readers import open_source


class CStream:
    """Any object that only speaks the Arrow PyCapsule stream protocol."""

    def __init__(self, table: pa.Table):
        self._table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self._table.__arrow_c_stream__(requested_schema)


KINDS = ["polars", "lazy", "c_stream"]


def _as(kind, df):
    return {"polars": lambda: df, "lazy": df.lazy, "c_stream": lambda: CStream(df.to_arrow())}[kind]()


@st.composite
def frames(draw):
    """A polars frame with a row number ``i``, null-bearing int and string keys, a
    categorical, an enum, floats with NaN and nulls."""
    n = draw(st.integers(0, 60))
    ks = draw(st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=n, max_size=n))
    ss = draw(st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "bb", "é"])), min_size=n, max_size=n))
    vs = draw(st.lists(st.one_of(st.none(), st.floats(allow_infinity=False)), min_size=n, max_size=n))
    cs = draw(st.lists(st.sampled_from(["x", "y", "z"]), min_size=n, max_size=n))
    es = draw(st.lists(st.one_of(st.none(), st.sampled_from(["lo", "hi"])), min_size=n, max_size=n))
    return pl.DataFrame(
        {"i": range(n), "k": ks, "s": ss, "v": vs, "c": cs, "e": es},
        schema={"i": pl.Int64, "k": pl.Int64, "s": pl.String, "v": pl.Float64, "c": pl.Categorical,
                "e": pl.Enum(["lo", "mid", "hi"])},
    )


ON = st.sampled_from([["k"], ["s"], ["k", "s"], ["c"], ["e", "k"]])


def _check_partitions(parts, model: pd.DataFrame, on: list, exact: bool = True) -> None:
    """Every row once, equal keys in one partition, input order kept within each."""
    frames = list(parts)
    assert len(frames) == parts.npartitions and [len(f) for f in frames] == parts.sizes
    got = pd.concat(frames, ignore_index=True).sort_values("i", ignore_index=True)
    pd.testing.assert_frame_equal(got, model, check_dtype=exact, check_categorical=exact)
    home: dict = {}
    for p, f in enumerate(frames):
        assert f["i"].is_monotonic_increasing
        for key in f[on].astype(object).where(f[on].notna(), None).itertuples(index=False):
            assert home.setdefault(tuple(key), p) == p


@pytest.mark.parametrize("kind", KINDS)
@given(df=frames(), on=ON, n=st.integers(1, 5))
def test_shuffle_equals_the_pandas_model(kind, df, on, n):
    with sk.shuffle(_as(kind, df), on, n, chunk_bytes=200, progress=False) as parts:
        # a C stream of no rows has no batch to carry the Enum's categories: only its type
        _check_partitions(parts, df.to_pandas(), on, exact=kind != "c_stream" or len(df) > 0)


@pytest.mark.parametrize("kind", KINDS)
@given(df=frames(), on=ON, chunks=st.lists(st.integers(64, 4096), min_size=2, max_size=2))
def test_partitions_do_not_depend_on_chunking(kind, df, on, chunks):
    results = []
    for chunk_bytes in chunks:
        with sk.shuffle(_as(kind, df), on, 3, chunk_bytes=chunk_bytes, progress=False) as parts:
            results.append(list(parts))
    for a, b in zip(*results):
        pd.testing.assert_frame_equal(a, b)  # dtypes too: categories alike


def _normal(key):
    """A group key with its nulls (None, NaN) as one value, so dict lookups match."""
    items = key if isinstance(key, tuple) else (key,)
    return tuple(None if pd.isna(x) else x for x in items)


@pytest.mark.parametrize("kind", KINDS)
@given(df=frames(), on=ON)
def test_groupby_shuffle_equals_pandas_groupby(kind, df, on):
    model = df.to_pandas()
    want = {_normal(k): g for k, g in model.groupby(on, dropna=False, observed=True)}
    with sk.groupby_shuffle(_as(kind, df), on, npartitions=3, chunk_bytes=200, progress=False) as grouped:
        got = {}
        for key, group in grouped:
            assert _normal(key) not in got  # every key exactly once
            got[_normal(key)] = group
    assert got.keys() == want.keys()
    for key, group in got.items():
        # Arrow ints with nulls become pandas floats only where a null is among the rows
        # converted together: a group's dtype may differ from the whole frame's, not its values
        pd.testing.assert_frame_equal(
            group.reset_index(drop=True), want[key].reset_index(drop=True), check_dtype=False
        )


def _same(a: pa.Table, b: pa.Table) -> None:
    """Equal tables, NaN equal to NaN (``Table.equals`` says NaN differs from itself)."""
    assert a.schema == b.schema
    assert_polars_equal(pl.from_arrow(a), pl.from_arrow(b))


@given(df=frames(), n=st.integers(1, 4))
def test_polars_and_arrow_results_round_trip(df, n):
    with sk.shuffle(df, "k", n, chunk_bytes=300, progress=False) as parts:
        assert_polars_equal(parts.to_polars().sort("i"), df)
        tables = list(parts.iter_arrow())
        assert [t.num_rows for t in tables] == parts.sizes
        _same(pa.concat_tables(tables), parts.to_arrow())
        polars_parts = list(parts.iter_polars())
        for i, (table, frame) in enumerate(zip(tables, polars_parts)):
            assert_polars_equal(frame, pl.from_arrow(table))
            assert_polars_equal(parts.partition(i, as_polars=True), frame)
            _same(parts.partition(i, as_arrow=True), table)
        whole = pl.concat(polars_parts) if polars_parts else parts.to_polars()
        assert_polars_equal(whole.sort("i"), df)


def test_a_pandas_result_to_polars_keeps_named_index_levels_only():
    df = pd.DataFrame({"k": [1, 2, 1], "x": [1.0, 2.0, 3.0]}, index=pd.Index([7, 8, 9], name="row"))
    with sk.shuffle(df, "k", 2, progress=False) as parts:
        out = parts.to_polars().sort("row")
        assert out.columns == ["k", "x", "row"] and out["row"].to_list() == [7, 8, 9]
    with sk.shuffle(df.reset_index(drop=True).iloc[[2, 0]], "k", 2, progress=False) as parts:
        assert parts.to_polars().columns == ["k", "x"]  # an unnamed index is pandas' bookkeeping


def test_partition_asks_for_one_type():
    with sk.shuffle(pl.DataFrame({"k": [1]}), "k", 1, progress=False) as parts:
        with pytest.raises(ValueError, match="as_arrow and as_polars"):
            parts.partition(0, as_arrow=True, as_polars=True)


# -- partition() --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=15)
@given(df=frames(), on=ON, n=st.integers(1, 4))
def test_partition_writes_files_that_read_back_to_the_input(tmp_path_factory, kind, df, on, n):
    out = tmp_path_factory.mktemp("p") / "out"
    summary = sk.partition(_as(kind, df), on, str(out), npartitions=n, progress=False)
    assert summary.rows_in == summary.rows_out == len(df) and summary.partitions == n
    files = sorted(os.listdir(out))
    # a file for each partition with rows (none for an empty one)
    rows = summary.sizes.rows.tolist()
    assert files == [f"part-{i:05d}.parquet" for i in range(n) if rows[i]] and summary.files == len(files)
    tables = [pq.read_table(out / f) for f in files]
    assert [t.num_rows for t in tables] == [r for r in rows if r]
    if tables:
        got = pl.concat([pl.from_arrow(t) for t in tables], how="vertical_relaxed").sort("i")
        assert_polars_equal(got, df, check_dtypes=False, categorical_as_str=True)
    home: dict = {}
    for p, t in enumerate(tables):
        for key in t.select(on).to_pylist():
            assert home.setdefault(tuple(key.values()), p) == p


def test_partition_by_value_from_a_lazy_frame(tmp_path):
    df = pl.DataFrame({"country": ["DE", "FR", "DE", None], "x": [1, 2, 3, 4]})
    summary = sk.partition(df.lazy(), "country", str(tmp_path / "out"), by_value=True, progress=False)
    assert summary.rows_out == 4 and "polars LazyFrame" in summary.lines()[1]
    back = pl.read_parquet(tmp_path / "out", hive_partitioning=True).sort("x")
    assert back["x"].to_list() == [1, 2, 3, 4] and back["country"].to_list() == ["DE", "FR", "DE", None]


def test_partition_refuses_what_it_cannot_read_in_one_line(tmp_path):
    from shuffle_kit.partitioning.job import JobError

    with pytest.raises(JobError, match="key column 'nope' is not in the input"):
        sk.partition(pl.DataFrame({"k": [1]}), "nope", str(tmp_path / "out"), progress=False)
    with pytest.raises(JobError, match="not a iterable of frames: concatenate it"):
        sk.partition(iter([pd.DataFrame({"k": [1]})]), "k", str(tmp_path / "out"), progress=False)
    with pytest.raises(JobError, match="Arrow C stream of a Series"):
        sk.partition(pl.Series([1, 2]), "k", str(tmp_path / "out"), progress=False)
    assert not os.path.exists(tmp_path / "out")


# -- streamed, never collected whole ------------------------------------------------------------


def test_a_lazy_frame_is_read_batch_by_batch():
    made = []

    def batches(with_columns, predicate, n_rows, batch_size):
        for b in range(100):
            made.append(b)
            yield pl.DataFrame({"k": np.arange(b * 10_000, (b + 1) * 10_000) % 97, "b": np.full(10_000, b)})

    lf = register_io_source(batches, schema={"k": pl.Int64, "b": pl.Int64})
    chunk_bytes = 200_000
    source = open_source(lf, chunk_bytes)
    assert source.columns == ["k", "b"] and not made  # the schema is known before the query runs
    chunks = source.chunks()
    first = next(chunks)
    assert 0 < len(made) < 100  # the first chunk arrives while most batches are not made yet
    sizes = [first.nbytes] + [c.nbytes for c in chunks]
    assert len(made) == 100 and len(sizes) >= 1_600_000 // chunk_bytes
    assert max(sizes) <= chunk_bytes + 160_000  # coalesced batches: at most one batch over


def test_a_lazy_scan_of_a_larger_parquet_file_comes_in_several_chunks(tmp_path):
    n = 200_000
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"k": np.arange(n) % 1000, "x": np.arange(n, dtype="float64")}), path,
                   row_group_size=20_000)
    chunk_bytes = 400_000
    sizes = [(c.num_rows, c.nbytes) for c in open_source(pl.scan_parquet(path), chunk_bytes).chunks()]
    # batches are joined until a chunk holds chunk_bytes: each is under twice that
    assert sum(r for r, _ in sizes) == n and max(b for _, b in sizes) < 2 * chunk_bytes
    assert len(sizes) >= n * 16 // (2 * chunk_bytes)
    with sk.shuffle(pl.scan_parquet(path), "k", 8, chunk_bytes=chunk_bytes, progress=False) as parts:
        assert sum(parts.sizes) == n
        got = parts.to_polars().sort("x")
        assert got["k"].to_list() == (np.arange(n) % 1000).tolist()


def test_without_collect_batches_a_lazy_frame_is_collected_whole_with_a_warning():
    lf = pl.LazyFrame({"k": [1, 2, 3]})
    with pytest.warns(UserWarning, match="polars 0.20 has no LazyFrame.collect_batches"):
        (table,) = list(collected_whole(lf, "0.20"))
    assert table.column("k").to_pylist() == [1, 2, 3]


def test_a_c_stream_that_is_not_a_table_is_refused_in_one_line():
    with pytest.raises(TypeError, match="cannot read the Arrow C stream of a CStream as record batches"):
        sk.shuffle(CStream(pa.chunked_array([[1, 2]])), "k")


# -- polars stays optional ----------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_shuffle_kit_does_not_import_polars():
    r = _python(
        "import sys, pandas as pd, shuffle_kit as sk\n"
        "with sk.shuffle(pd.DataFrame({'k': [1, 2]}), 'k', 2, progress=False) as p: p.to_pandas()\n"
        "print('polars' in sys.modules)"
    )
    assert r.stdout.strip() == "False", r.stderr


def test_to_polars_without_polars_says_how_to_install_it():
    r = _python(
        "import sys; sys.modules['polars'] = None\n"  # as if it were not installed
        "import pandas as pd, shuffle_kit as sk\n"
        "p = sk.shuffle(pd.DataFrame({'k': [1, 2]}), 'k', 2, progress=False)\n"
        "p.to_polars()"
    )
    last = r.stderr.strip().splitlines()[-1]
    assert last == "ImportError: to_polars() needs polars, which is not installed: pip install 'shuffle_kit[polars]'"
